use time::macros::datetime;

use super::*;
use crate::domain::{Privilege, SecurableType};

fn new_grant() -> NewGrant {
    let table = Securable::parse(SecurableType::Table, "main.sales.orders").unwrap();
    NewGrant {
        idempotency_key: IdempotencyKey::parse("purview:run-1").unwrap(),
        requester: EntraObjectId::parse("a1b2c3d4-0000-4000-8000-00000000000f").unwrap(),
        target: None,
        principal: Principal::user("alice@contoso.com").unwrap(),
        workspace: WorkspaceRef {
            name: "prod".into(),
            host: "adb-1.2.azuredatabricks.net".into(),
        },
        securable: table.clone(),
        requested_privileges: [Privilege::Select].into(),
        duration: GrantDuration::days(30).unwrap(),
        plan: vec![SecurableChange {
            securable: table,
            privileges: [Privilege::Select].into(),
        }],
        approvers: vec!["owner@contoso.com".into()],
        source: "purview-callback".into(),
        approval_id: None,
    }
}

fn record() -> GrantRecord {
    GrantRecord::new(new_grant(), datetime!(2025-01-01 08:00 UTC))
}

const NOW: time::OffsetDateTime = datetime!(2025-01-01 08:00:05 UTC);

#[test]
fn a_new_record_is_pending_with_an_id_derived_from_its_key() {
    let r = record();
    assert_eq!(r.state, GrantState::Pending);
    assert_eq!(r.id, GrantId::for_key(&r.idempotency_key));
    assert_eq!(r.events.len(), 1);
    assert!(r.check_integrity().is_ok());
}

#[test]
fn activation_records_what_was_added_and_the_expiry_from_the_duration() {
    let mut r = record();
    let added = r.plan.clone();
    r.mark_active(added.clone(), NOW).unwrap();
    assert_eq!(r.state, GrantState::Active);
    assert_eq!(r.added, added);
    assert_eq!(r.expires_at, Some(NOW + time::Duration::days(30)));
}

#[test]
fn a_revoke_ends_access_an_hour_after_the_revoked_time() {
    let mut r = record();
    r.mark_active(vec![], NOW).unwrap();
    r.begin_revoke(NOW, NOW + time::Duration::minutes(5))
        .unwrap();
    r.mark_revoked(NOW).unwrap();
    assert_eq!(r.revoked_at, Some(NOW));
    assert_eq!(r.access_ends_by, Some(NOW + VENDED_CREDENTIAL_LIFETIME));
    assert_eq!(r.next_attempt_at, None);
}

#[test]
fn a_revoked_grant_can_never_become_active_or_be_revoked_again() {
    let mut r = record();
    r.begin_revoke(NOW, NOW).unwrap();
    r.mark_revoked(NOW).unwrap();
    let before = r.clone();
    assert!(matches!(
        r.mark_active(vec![], NOW),
        Err(TransitionError::Illegal {
            from: GrantState::Revoked,
            to: GrantState::Active,
            ..
        })
    ));
    assert!(r.begin_revoke(NOW, NOW).is_err());
    assert!(r.mark_failed("x", NOW, NOW).is_err());
    assert_eq!(
        r, before,
        "a refused transition leaves the record unchanged"
    );
}

#[test]
fn an_active_grant_cannot_be_revoked_without_passing_through_revoking() {
    let mut r = record();
    r.mark_active(vec![], NOW).unwrap();
    assert!(r.mark_revoked(NOW).is_err());
    assert!(r.mark_failed("x", NOW, NOW).is_err());
}

#[test]
fn failures_count_attempts_clip_the_error_and_schedule_a_retry() {
    let mut r = record();
    let retry = NOW + time::Duration::minutes(5);
    r.mark_failed(&"e".repeat(5000), NOW, retry).unwrap();
    r.mark_failed("again", NOW, retry).unwrap();
    assert_eq!(r.state, GrantState::Failed);
    assert_eq!(r.attempts, 2);
    assert_eq!(r.last_error.as_deref(), Some("again"));
    assert_eq!(r.events[1].detail.chars().count(), MAX_DETAIL_CHARS);
    assert_eq!(r.next_attempt_at, Some(retry));
    r.begin_revoke(NOW, retry).unwrap();
    assert_eq!(r.state, GrantState::Revoking);
}

#[test]
fn an_extension_must_move_the_expiry_later() {
    let mut r = record();
    r.mark_active(vec![], NOW).unwrap();
    let current = r.expires_at.unwrap();
    assert!(matches!(
        r.extend(current, NOW, None),
        Err(TransitionError::NotLater { .. })
    ));
    r.extend(current + time::Duration::days(1), NOW, None)
        .unwrap();
    assert_eq!(r.expires_at, Some(current + time::Duration::days(1)));
}

#[test]
fn the_json_uses_camel_case_names_and_round_trips() {
    let mut r = record();
    r.mark_active(r.plan.clone(), NOW).unwrap();
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["schemaVersion"], 1);
    assert_eq!(json["state"], "active");
    assert_eq!(json["idempotencyKey"], "purview:run-1");
    assert_eq!(json["expiresAt"], "2025-01-31T08:00:05Z");
    assert_eq!(json["added"][0]["privileges"][0], "SELECT");
    assert_eq!(json["workspace"]["host"], "adb-1.2.azuredatabricks.net");
    let back: GrantRecord = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn a_record_whose_id_does_not_match_its_key_fails_the_integrity_check() {
    let mut r = record();
    r.idempotency_key = IdempotencyKey::parse("purview:run-2").unwrap();
    assert!(r.check_integrity().is_err());
    let mut newer = record();
    newer.schema_version = SCHEMA_VERSION + 1;
    assert!(newer.check_integrity().is_err());
}

#[test]
fn deliveries_are_told_apart_by_approval_id_or_by_the_window() {
    use crate::ledger::Delivery;
    let window = Duration::hours(2);
    let mut grant = NewGrant {
        approval_id: Some("a1".into()),
        ..new_grant()
    };
    let mut r = GrantRecord::new(grant.clone(), NOW);
    r.mark_active(r.plan.clone(), NOW).unwrap();
    let later = NOW + Duration::hours(3);
    assert_eq!(r.delivery(Some("a1"), later, window), Delivery::Same);
    assert_eq!(r.delivery(Some("a2"), NOW, window), Delivery::New);
    assert_eq!(
        r.delivery(None, NOW + Duration::minutes(30), window),
        Delivery::Same
    );
    assert_eq!(r.delivery(None, later, window), Delivery::New);

    // Revoked early, a day into seven.
    let revoked_at = NOW + Duration::days(1);
    r.begin_revoke(revoked_at, revoked_at).unwrap();
    r.mark_revoked(revoked_at).unwrap();
    assert_eq!(
        r.delivery(Some("a1"), NOW + Duration::days(30), window),
        Delivery::Ended {
            until: None,
            early: true
        }
    );
    assert_eq!(r.delivery(Some("a2"), revoked_at, window), Delivery::New);
    let expiry = r.expires_at.unwrap();
    assert_eq!(
        r.delivery(None, revoked_at, window),
        Delivery::Ended {
            until: Some(expiry),
            early: true
        }
    );
    assert_eq!(r.delivery(None, expiry, window), Delivery::New);

    // An apply that failed and was undone: the workflow's retry gets the grant.
    grant.approval_id = None;
    let mut undone = GrantRecord::new(grant, NOW);
    undone.mark_failed("503", NOW, NOW).unwrap();
    undone.begin_revoke(NOW, NOW).unwrap();
    undone.mark_revoked(NOW).unwrap();
    assert_eq!(undone.delivery(None, NOW, window), Delivery::New);
}
