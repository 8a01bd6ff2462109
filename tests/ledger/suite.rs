//! The behaviour every ledger backend must have, as async functions over `&dyn LedgerStore`.

use std::collections::BTreeSet;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use uc_access::domain::{Privilege, Securable, SecurableType};
use uc_access::ledger::{
    DueQuery, GrantId, GrantRecord, GrantState, IdempotencyKey, LedgerError, LedgerStore,
    ListFilter, SecurableChange, Versioned,
};

use crate::fixtures::{NOW, active, alice, bob, grant, grant_at, table};

/// A store for one test, with whatever must live as long as it (a temporary folder).
pub struct TestStore {
    pub store: Arc<dyn LedgerStore>,
    pub _keep: Option<Box<dyn std::any::Any + Send>>,
}

impl TestStore {
    pub fn as_ref(&self) -> &dyn LedgerStore {
        self.store.as_ref()
    }
}

fn ids(records: &[Versioned<GrantRecord>]) -> BTreeSet<GrantId> {
    records.iter().map(|v| v.record.id).collect()
}

fn ids_of(records: &[&GrantRecord]) -> BTreeSet<GrantId> {
    records.iter().map(|r| r.id).collect()
}

async fn store_all(store: &dyn LedgerStore, records: &[&GrantRecord]) {
    for r in records {
        store.create((*r).clone()).await.unwrap();
    }
}

pub async fn a_created_record_can_be_read_by_id_and_by_key(store: &dyn LedgerStore) {
    let record = grant("purview:run-1");
    let created = store.create(record.clone()).await.unwrap();
    assert_eq!(created.record, record);
    assert!(!created.version.is_empty());

    let by_id = store.get(record.id).await.unwrap();
    assert_eq!(by_id.record, record);
    assert_eq!(by_id.version, created.version);
    let by_key = store.get_by_key(&record.idempotency_key).await.unwrap();
    assert_eq!(by_key, by_id);
}

pub async fn a_duplicate_create_is_refused_and_leaves_the_first_record(store: &dyn LedgerStore) {
    let first = grant("purview:dup");
    store.create(first.clone()).await.unwrap();
    let mut second = grant("purview:dup");
    second.source = "grant-access".into();

    let err = store.create(second).await.unwrap_err();
    assert!(
        matches!(err, LedgerError::AlreadyExists { id } if id == first.id),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let stored = store.get_by_key(&first.idempotency_key).await.unwrap();
    assert_eq!(stored.record.source, "purview-callback");
}

pub async fn of_fifty_concurrent_creates_of_one_key_exactly_one_wins(store: &dyn LedgerStore) {
    let attempts = (0..50).map(|i| {
        let mut r = grant("purview:race");
        r.source = format!("attempt-{i}");
        store.create(r)
    });
    let results = futures::future::join_all(attempts).await;

    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one create must win");
    for loser in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(loser, LedgerError::AlreadyExists { .. }),
            "{loser:?}"
        );
    }
    let stored = store.get(winners[0].record.id).await.unwrap();
    assert_eq!(stored.record.source, winners[0].record.source);
    assert_eq!(stored.version, winners[0].version);
}

pub async fn an_update_from_a_stale_version_is_a_conflict(store: &dyn LedgerStore) {
    let created = store.create(grant("purview:upd")).await.unwrap();

    let mut first = created.clone();
    first
        .record
        .mark_active(created.record.plan.clone(), NOW)
        .unwrap();
    let updated = store.update(&first).await.unwrap();
    assert_ne!(updated.version, created.version);

    let mut stale = created.clone();
    stale
        .record
        .mark_failed("lost the race", NOW, NOW + Duration::minutes(5))
        .unwrap();
    let err = store.update(&stale).await.unwrap_err();
    assert!(
        matches!(err, LedgerError::Conflict { id } if id == created.record.id),
        "{err:?}"
    );
    assert!(err.is_retryable());

    let stored = store.get(created.record.id).await.unwrap();
    assert_eq!(stored.record.state, GrantState::Active);
    assert_eq!(stored.version, updated.version);
}

/// Twenty writers update one record from the version they all read while every other record gets one
/// update of its own and a batch updates more: one writer of the contested record wins, the others get a
/// conflict, and no update of another record is refused or lost.
pub async fn of_concurrent_updates_from_one_version_exactly_one_wins(store: &dyn LedgerStore) {
    let contested = store.create(grant("purview:contested")).await.unwrap();
    let mut others = Vec::new();
    for i in 0..40 {
        others.push(
            store
                .create(grant(&format!("purview:bystander-{i}")))
                .await
                .unwrap(),
        );
    }
    let (singles, batched) = others.split_at(20);
    let failed = |mut v: Versioned<GrantRecord>, reason: String| {
        v.record
            .mark_failed(&reason, NOW, NOW + Duration::minutes(5))
            .unwrap();
        v
    };
    let writers: Vec<_> = (0..20)
        .map(|i| failed(contested.clone(), format!("writer {i}")))
        .collect();
    let contested_updates = futures::future::join_all(writers.into_iter().map(|v| async move {
        let outcome = store.update(&v).await;
        (v, outcome)
    }));
    let single_updates = futures::future::join_all(
        singles
            .iter()
            .map(|v| failed(v.clone(), "single".into()))
            .map(|v| async move { (store.update(&v).await, v) }),
    );
    let batch: Vec<_> = batched
        .iter()
        .map(|v| failed(v.clone(), "batched".into()))
        .collect();
    let batch_update = store.update_many(batch.clone());
    let (contested_results, single_results, batch_results) =
        futures::join!(contested_updates, single_updates, batch_update);

    let winners: Vec<_> = contested_results
        .iter()
        .filter_map(|(v, r)| r.as_ref().ok().map(|stored| (v, stored)))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one writer of one version wins");
    for (_, outcome) in &contested_results {
        if let Err(e) = outcome {
            assert!(
                matches!(e, LedgerError::Conflict { id } if *id == contested.record.id),
                "{e:?}"
            );
        }
    }
    let (winner, written) = winners[0];
    let stored = store.get(contested.record.id).await.unwrap();
    assert_eq!(stored.version, written.version);
    assert_eq!(stored.record, winner.record);

    for (outcome, sent) in single_results {
        let written = outcome.unwrap();
        let stored = store.get(sent.record.id).await.unwrap();
        assert_eq!(
            (&stored.record, &stored.version),
            (&sent.record, &written.version)
        );
    }
    assert_eq!(batch_results.len(), batch.len());
    for (outcome, sent) in batch_results.into_iter().zip(&batch) {
        let written = outcome.unwrap();
        let stored = store.get(sent.record.id).await.unwrap();
        assert_eq!(
            (&stored.record, &stored.version),
            (&sent.record, &written.version)
        );
    }
}

pub async fn a_missing_grant_is_not_found(store: &dyn LedgerStore) {
    let never = grant("purview:never-stored");
    let err = store.get(never.id).await.unwrap_err();
    assert!(matches!(err, LedgerError::NotFound { .. }), "{err:?}");
    let err = store.get_by_key(&never.idempotency_key).await.unwrap_err();
    assert!(matches!(err, LedgerError::NotFound { .. }), "{err:?}");
}

pub async fn find_due_returns_each_kind_of_due_record_and_nothing_else(store: &dyn LedgerStore) {
    let query = DueQuery::at(NOW);
    let later = NOW + Duration::minutes(5);
    // Due: expired active, revoking and failed whose retry time came, pending left half-done.
    let expired = active("due:expired", alice(), NOW - Duration::days(2));
    let expiring_now = active("due:expiring-now", alice(), NOW - Duration::days(1));
    let mut revoking = active("due:revoking", alice(), NOW - Duration::days(2));
    revoking
        .begin_revoke(NOW - Duration::minutes(10), NOW - Duration::minutes(1))
        .unwrap();
    let mut failed = grant("due:failed");
    failed.mark_failed("503", NOW, NOW).unwrap();
    let stale = grant_at(
        "due:stale",
        bob(),
        table("main.hr.people"),
        NOW - Duration::hours(1),
    );
    // Not due: unexpired, retries in the future, a fresh pending, and anything revoked.
    let unexpired = active("not:unexpired", alice(), NOW - Duration::hours(1));
    let mut revoking_later = active("not:revoking-later", alice(), NOW - Duration::days(2));
    revoking_later.begin_revoke(NOW, later).unwrap();
    let mut failed_later = grant("not:failed-later");
    failed_later.mark_failed("503", NOW, later).unwrap();
    let fresh = grant("not:fresh-pending");
    let mut revoked = active("not:revoked", alice(), NOW - Duration::days(2));
    revoked.begin_revoke(NOW, NOW).unwrap();
    revoked.mark_revoked(NOW).unwrap();

    store_all(
        store,
        &[
            &expired,
            &expiring_now,
            &revoking,
            &failed,
            &stale,
            &unexpired,
            &revoking_later,
            &failed_later,
            &fresh,
            &revoked,
        ],
    )
    .await;

    let due = store.find_due(&query).await.unwrap();
    assert_eq!(
        ids(&due),
        ids_of(&[&expired, &expiring_now, &revoking, &failed, &stale])
    );
    assert_eq!(due.len(), 5, "no record is returned twice");
    assert_eq!(due[0].record.id, expired.id, "oldest debt first");
}

pub async fn find_due_follows_a_record_through_its_updates(store: &dyn LedgerStore) {
    let query = DueQuery::at(NOW);
    let created = store
        .create(active("follow:1", alice(), NOW - Duration::days(2)))
        .await
        .unwrap();
    assert_eq!(
        ids(&store.find_due(&query).await.unwrap()),
        ids_of(&[&created.record])
    );

    let mut revoking = created.clone();
    revoking
        .record
        .begin_revoke(NOW, NOW + Duration::minutes(5))
        .unwrap();
    let revoking = store.update(&revoking).await.unwrap();
    assert!(
        store.find_due(&query).await.unwrap().is_empty(),
        "retry not yet due"
    );
    let due_later = store
        .find_due(&DueQuery::at(NOW + Duration::minutes(5)))
        .await
        .unwrap();
    assert_eq!(due_later[0].record.state, GrantState::Revoking);

    let mut revoked = revoking;
    revoked.record.mark_revoked(NOW).unwrap();
    store.update(&revoked).await.unwrap();
    let much_later = DueQuery::at(NOW + Duration::days(365));
    assert!(store.find_due(&much_later).await.unwrap().is_empty());
}

pub async fn list_filters_by_principal_workspace_securable_and_state(store: &dyn LedgerStore) {
    let alice_orders = active("list:1", alice(), NOW);
    let alice_people = grant_at("list:2", alice(), table("main.hr.people"), NOW);
    let bob_orders = grant_at("list:3", bob(), table("main.sales.orders"), NOW);
    let mut other_ws = grant_at("list:4", alice(), table("main.sales.orders"), NOW);
    other_ws.workspace.name = "dev".into();
    store_all(
        store,
        &[&alice_orders, &alice_people, &bob_orders, &other_ws],
    )
    .await;

    let list = |filter: ListFilter| async move { ids(&store.list(&filter).await.unwrap()) };
    assert_eq!(
        list(ListFilter::default()).await,
        ids_of(&[&alice_orders, &alice_people, &bob_orders, &other_ws])
    );
    assert_eq!(
        list(ListFilter {
            principal: Some(alice()),
            workspace: Some("prod".into()),
            ..ListFilter::default()
        })
        .await,
        ids_of(&[&alice_orders, &alice_people])
    );
    assert_eq!(
        list(ListFilter {
            securable: Some(table("main.sales.orders")),
            ..ListFilter::default()
        })
        .await,
        ids_of(&[&alice_orders, &bob_orders, &other_ws])
    );
    assert_eq!(
        list(ListFilter {
            state: Some(GrantState::Active),
            ..ListFilter::default()
        })
        .await,
        ids_of(&[&alice_orders])
    );
    assert!(
        list(ListFilter {
            principal: Some(bob()),
            state: Some(GrantState::Active),
            ..ListFilter::default()
        })
        .await
        .is_empty()
    );
}

pub async fn active_for_principal_keeps_pending_and_active_grants_of_that_principal_only(
    store: &dyn LedgerStore,
) {
    let schema = Securable::parse(SecurableType::Schema, "main.sales").unwrap();
    let mut on_schema = grant_at("afp:1", alice(), schema.clone(), NOW);
    on_schema
        .mark_active(
            vec![SecurableChange {
                securable: schema,
                privileges: [Privilege::UseSchema, Privilege::Select].into(),
            }],
            NOW,
        )
        .unwrap();
    let pending = grant_at("afp:2", alice(), table("main.sales.orders"), NOW);
    let mut revoking = active("afp:3", alice(), NOW);
    revoking.begin_revoke(NOW, NOW).unwrap();
    let bobs = active("afp:4", bob(), NOW);
    let mut other_ws = active("afp:5", alice(), NOW);
    other_ws.workspace.name = "dev".into();
    store_all(store, &[&on_schema, &pending, &revoking, &bobs, &other_ws]).await;

    let kept = store.active_for_principal("prod", &alice()).await.unwrap();
    assert_eq!(ids(&kept), ids_of(&[&on_schema, &pending]));
    let stored = kept.iter().find(|v| v.record.id == on_schema.id).unwrap();
    assert_eq!(stored.record.added, on_schema.added);
}

pub async fn a_probe_succeeds_and_leaves_no_record_behind(store: &dyn LedgerStore) {
    let record = grant("purview:probe-neighbour");
    store.create(record.clone()).await.unwrap();
    for _ in 0..2 {
        let done = store.probe().await.unwrap();
        assert!(!done.is_empty());
    }
    let listed = store.list(&ListFilter::default()).await.unwrap();
    assert_eq!(ids(&listed), BTreeSet::from([record.id]));
    assert_eq!(store.get(record.id).await.unwrap().record, record);
}

pub async fn update_many_changes_each_record_at_its_version_and_refuses_stale_ones(
    store: &dyn LedgerStore,
) {
    let a = store.create(grant("many:a")).await.unwrap();
    let b = store.create(grant("many:b")).await.unwrap();
    let c = store.create(grant("many:c")).await.unwrap();
    // Someone else changes b first: the batch's copy of b is stale.
    let mut other = b.clone();
    other
        .record
        .mark_active(b.record.plan.clone(), NOW)
        .unwrap();
    let b_now = store.update(&other).await.unwrap();

    let batch: Vec<Versioned<GrantRecord>> = [&a, &b, &c]
        .into_iter()
        .map(|v| {
            let mut next = v.clone();
            next.record
                .mark_failed("batch", NOW, NOW + Duration::minutes(1))
                .unwrap();
            next
        })
        .collect();
    let results = store.update_many(batch).await;
    assert_eq!(results.len(), 3);
    let stored_a = results[0].as_ref().unwrap();
    assert!(
        matches!(&results[1], Err(LedgerError::Conflict { id }) if *id == b.record.id),
        "{:?}",
        results[1]
    );
    let stored_c = results[2].as_ref().unwrap();
    for (stored, id) in [(stored_a, a.record.id), (stored_c, c.record.id)] {
        let read = store.get(id).await.unwrap();
        assert_eq!(read.record.state, GrantState::Failed);
        assert_eq!(read.version, stored.version);
    }
    let read_b = store.get(b.record.id).await.unwrap();
    assert_eq!(read_b.record.state, GrantState::Active);
    assert_eq!(read_b.version, b_now.version);
    assert!(store.update_many(Vec::new()).await.is_empty());
}

pub async fn find_due_groups_name_the_due_records_by_catalog_oldest_first(store: &dyn LedgerStore) {
    let older = active("entries:older", alice(), NOW - Duration::days(3));
    let newer = active("entries:newer", bob(), NOW - Duration::days(2));
    let mut elsewhere = grant_at(
        "entries:other-catalog",
        alice(),
        table("hr.people.salaries"),
        NOW - Duration::days(5),
    );
    let plan = elsewhere.plan.clone();
    elsewhere
        .mark_active(plan, NOW - Duration::days(4))
        .unwrap();
    let not_due = active("entries:not-due", alice(), NOW);
    store_all(store, &[&newer, &not_due, &elsewhere, &older]).await;

    let groups = store.find_due_groups(&DueQuery::at(NOW)).await.unwrap();
    let host = older.workspace.host.clone();
    let brief: Vec<(&str, &str, Vec<GrantId>, OffsetDateTime)> = groups
        .iter()
        .map(|g| {
            (
                g.workspace.as_str(),
                g.catalog.as_str(),
                g.ids.clone(),
                g.since,
            )
        })
        .collect();
    assert_eq!(
        brief,
        vec![
            (
                host.as_str(),
                "hr",
                vec![elsewhere.id],
                elsewhere.expires_at.unwrap()
            ),
            (
                host.as_str(),
                "main",
                vec![older.id, newer.id],
                older.expires_at.unwrap()
            ),
        ]
    );
    let ids: Vec<GrantId> = groups.iter().flat_map(|g| g.ids.clone()).collect();
    let full: Vec<GrantId> = store
        .find_due(&DueQuery::at(NOW))
        .await
        .unwrap()
        .iter()
        .map(|v| v.record.id)
        .collect();
    assert_eq!(full, ids);
    assert_eq!(
        store
            .get_many(&[
                newer.id,
                GrantId::for_key(&IdempotencyKey::parse("entries:none").unwrap()),
                older.id
            ])
            .await
            .into_iter()
            .map(|r| r
                .map(|v| v.record.id)
                .map_err(|e| matches!(e, LedgerError::NotFound { .. })))
            .collect::<Vec<_>>(),
        vec![Ok(newer.id), Err(true), Ok(older.id)],
        "get_many answers each id on its own, in order"
    );
}

pub async fn live_grants_sharing_keeps_live_grants_of_those_principals_in_those_catalogs(
    store: &dyn LedgerStore,
) {
    let ending = active("share:ending", alice(), NOW - Duration::days(2));
    let staying = active("share:staying", alice(), NOW);
    let pending = grant_at("share:pending", alice(), table("main.sales.customers"), NOW);
    let other_catalog = {
        let mut r = grant_at("share:hr", alice(), table("hr.people.salaries"), NOW);
        let plan = r.plan.clone();
        r.mark_active(plan, NOW).unwrap();
        r
    };
    let bobs = active("share:bob", bob(), NOW);
    let mut revoked = active("share:revoked", alice(), NOW);
    revoked.begin_revoke(NOW, NOW).unwrap();
    revoked.mark_revoked(NOW).unwrap();
    store_all(
        store,
        &[&ending, &staying, &pending, &other_catalog, &bobs, &revoked],
    )
    .await;

    let found = store
        .live_grants_sharing(
            "prod",
            &BTreeSet::from(["main".to_owned()]),
            &BTreeSet::from([alice()]),
            &BTreeSet::from([ending.id]),
        )
        .await
        .unwrap();
    assert_eq!(ids(&found), ids_of(&[&staying, &pending]));
    let none = store
        .live_grants_sharing(
            "dev",
            &BTreeSet::from(["main".to_owned()]),
            &BTreeSet::from([alice()]),
            &BTreeSet::new(),
        )
        .await
        .unwrap();
    assert!(none.is_empty());
}
