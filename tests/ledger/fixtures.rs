//! Grant records for the ledger tests, at fixed times (no clock).

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uc_access::domain::{
    EntraObjectId, GrantDuration, Principal, Privilege, Securable, SecurableType,
};
use uc_access::ledger::{GrantRecord, IdempotencyKey, NewGrant, SecurableChange, WorkspaceRef};

/// The instant the tests call "now".
pub const NOW: OffsetDateTime = datetime!(2025-03-01 12:00 UTC);

pub fn alice() -> Principal {
    Principal::user("alice@contoso.com").unwrap()
}

pub fn bob() -> Principal {
    Principal::user("bob@contoso.com").unwrap()
}

pub fn table(full_name: &str) -> Securable {
    Securable::parse(SecurableType::Table, full_name).unwrap()
}

/// What an approval of `principal` on `securable` in workspace `prod` records (`USE_*` on the parents and
/// `SELECT` planned).
pub fn new_grant(key: &str, principal: Principal, securable: Securable) -> NewGrant {
    let plan: Vec<SecurableChange> = securable
        .lineage()
        .into_iter()
        .map(|s| SecurableChange {
            privileges: match s.securable_type() {
                SecurableType::Catalog => [Privilege::UseCatalog].into(),
                SecurableType::Schema => [Privilege::UseSchema].into(),
                SecurableType::Table => [Privilege::Select].into(),
            },
            securable: s,
        })
        .collect();
    NewGrant {
        idempotency_key: IdempotencyKey::parse(key).unwrap(),
        requester: EntraObjectId::parse("a1b2c3d4-0000-4000-8000-00000000000f").unwrap(),
        target: None,
        principal,
        workspace: WorkspaceRef {
            name: "prod".into(),
            host: "adb-1234567890123456.7.azuredatabricks.net".into(),
        },
        securable,
        requested_privileges: [Privilege::Select].into(),
        duration: GrantDuration::days(1).unwrap(),
        plan,
        approvers: vec!["owner@contoso.com".into()],
        source: "purview-callback".into(),
        approval_id: None,
    }
}

/// A pending record for `principal` on `securable` in workspace `prod`, requested at `requested_at`.
pub fn grant_at(
    key: &str,
    principal: Principal,
    securable: Securable,
    requested_at: OffsetDateTime,
) -> GrantRecord {
    GrantRecord::new(new_grant(key, principal, securable), requested_at)
}

/// A record requested a minute before [`NOW`] (fresh, so not a stale pending one).
pub fn grant(key: &str) -> GrantRecord {
    grant_at(
        key,
        alice(),
        table("main.sales.orders"),
        NOW - Duration::minutes(1),
    )
}

/// An active record that was applied at `applied_at` (so it expires a day later).
pub fn active(key: &str, principal: Principal, applied_at: OffsetDateTime) -> GrantRecord {
    let mut r = grant_at(
        key,
        principal,
        table("main.sales.orders"),
        applied_at - Duration::seconds(5),
    );
    let added = r.plan.clone();
    r.mark_active(added, applied_at).unwrap();
    r
}
