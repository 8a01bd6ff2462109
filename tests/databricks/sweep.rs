//! The revoke timer on a backlog larger than one chunk ([`SWEEP_CHUNK`]) of one catalog: the records are
//! read and marked in chunks, but the run still sends one `PATCH` per securable, hands over what a live
//! grant needs and closes every record.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use time::OffsetDateTime;
use uc_access::databricks::Deadline;
use uc_access::domain::{
    EntraObjectId, GrantDuration, Principal, Privilege, PrivilegeSet, Securable, SecurableType,
};
use uc_access::ledger::{
    GrantRecord, GrantState, IdempotencyKey, NewGrant, SecurableChange, WorkspaceRef,
};
use uc_access::policy::Policy;
use uc_access::usecases::expire::{SWEEP_CHUNK, sweep};
use uc_access::usecases::provision::provision;
use uc_access_standin::privileges::SecurableKind;
use uc_access_standin::{Seed, SeedGrant, SeedSecurable, SeedUser, demo};

use super::support::World;

const PRINCIPALS: usize = 150;
const GRANTS_EACH: usize = 8;
const SCHEMAS: usize = 3;
const TABLES_EACH: usize = 10;

fn principal(p: usize) -> String {
    format!("p{p:03}@chunk.example")
}

fn table(t: usize) -> String {
    format!("big.s{}.t{}", t / TABLES_EACH, t % TABLES_EACH)
}

fn schema_of(table: &str) -> String {
    table.rsplit_once('.').unwrap().0.to_owned()
}

/// A grant on `table` that `added` what it lists, applied `applied_at`, lasting one day.
fn record(key: &str, who: &str, table: &str, added: Vec<SecurableChange>, host: &str) -> NewGrant {
    NewGrant {
        idempotency_key: IdempotencyKey::parse(key).unwrap(),
        requester: EntraObjectId::parse("5eee0000-0000-4000-8000-000000000001").unwrap(),
        target: None,
        principal: Principal::user(who).unwrap(),
        workspace: WorkspaceRef {
            name: "default".into(),
            host: host.to_owned(),
        },
        securable: Securable::parse(SecurableType::Table, table).unwrap(),
        requested_privileges: PrivilegeSet::from([Privilege::Select]),
        duration: GrantDuration::days(1).unwrap(),
        plan: added,
        approvers: vec![demo::CAROL_ENTRA_ID.into()],
        source: "purview-callback".into(),
        approval_id: None,
    }
}

fn change(kind: SecurableType, name: &str, privilege: Privilege) -> SecurableChange {
    SecurableChange {
        securable: Securable::parse(kind, name).unwrap(),
        privileges: PrivilegeSet::from([privilege]),
    }
}

fn held(dump: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (securable, by_principal) in dump["grants"].as_object().unwrap() {
        for (who, privileges) in by_principal.as_object().unwrap() {
            for p in privileges.as_array().unwrap() {
                out.insert((
                    securable.clone(),
                    who.clone(),
                    p.as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out
}

#[tokio::test]
async fn a_backlog_larger_than_a_chunk_is_revoked_with_one_patch_per_securable_and_a_handover() {
    const {
        assert!(
            PRINCIPALS * GRANTS_EACH > 2 * SWEEP_CHUNK,
            "the backlog spans several chunks"
        )
    };
    let mut seed = Seed::demo();
    let owner = demo::CAROL.to_owned();
    seed.securables.push(SeedSecurable {
        kind: SecurableKind::Catalog,
        full_name: "big".into(),
        owner: owner.clone(),
    });
    seed.grants.push(SeedGrant {
        securable_type: "catalog".into(),
        full_name: "big".into(),
        principal: demo::PRODUCT_CLIENT_ID.into(),
        privileges: vec!["MANAGE".into()],
    });
    for s in 0..SCHEMAS {
        seed.securables.push(SeedSecurable {
            kind: SecurableKind::Schema,
            full_name: format!("big.s{s}"),
            owner: owner.clone(),
        });
    }
    for t in 0..SCHEMAS * TABLES_EACH {
        seed.securables.push(SeedSecurable {
            kind: SecurableKind::Table,
            full_name: table(t),
            owner: owner.clone(),
        });
    }
    // Not uc-access's: must stay.
    seed.grants.push(SeedGrant {
        securable_type: "table".into(),
        full_name: table(0),
        principal: demo::CAROL.into(),
        privileges: vec!["SELECT".into()],
    });
    for p in 0..PRINCIPALS {
        seed.users.push(SeedUser {
            id: format!("{}", 7_000_000 + p),
            user_name: principal(p),
            display_name: principal(p),
            active: true,
            external_id: None,
        });
    }

    // Every principal: GRANTS_EACH tables, the first grant under a catalog/schema adding its USE_*.
    let mut grants: Vec<(usize, usize, String, Vec<SecurableChange>)> = Vec::new();
    let mut held_by_seed: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for p in 0..PRINCIPALS {
        let mut under: BTreeSet<String> = BTreeSet::new();
        for k in 0..GRANTS_EACH {
            let t = table((p * 7 + k * 11) % (SCHEMAS * TABLES_EACH));
            let mut added = Vec::new();
            if under.insert("big".into()) {
                added.push(change(SecurableType::Catalog, "big", Privilege::UseCatalog));
            }
            if under.insert(schema_of(&t)) {
                added.push(change(
                    SecurableType::Schema,
                    &schema_of(&t),
                    Privilege::UseSchema,
                ));
            }
            added.push(change(SecurableType::Table, &t, Privilege::Select));
            for c in &added {
                held_by_seed
                    .entry((
                        c.securable.securable_type().as_str().to_owned(),
                        c.securable.full_name(),
                        principal(p),
                    ))
                    .or_default()
                    .extend(c.privileges.iter().map(|x| x.as_str().to_owned()));
            }
            grants.push((p, k, t, added));
        }
    }
    // p000 also holds a live grant on a table of a schema its ending grants opened: it needs their
    // USE_CATALOG and USE_SCHEMA, so those are handed over, not removed.
    let (_, _, first_table, _) = grants[0].clone();
    let staying_table = format!("{}.tstay", schema_of(&first_table));
    seed.securables.push(SeedSecurable {
        kind: SecurableKind::Table,
        full_name: staying_table.clone(),
        owner,
    });
    held_by_seed.insert(
        ("table".into(), staying_table.clone(), principal(0)),
        vec!["SELECT".into()],
    );
    for ((kind, name, who), privileges) in &held_by_seed {
        seed.grants.push(SeedGrant {
            securable_type: kind.clone(),
            full_name: name.clone(),
            principal: who.clone(),
            privileges: privileges.clone(),
        });
    }
    let touched: BTreeSet<(String, String)> = held_by_seed
        .keys()
        .filter(|(_, name, _)| *name != staying_table)
        .map(|(kind, name, _)| (kind.clone(), name.clone()))
        .collect();

    let world = World::start(seed, false).await;
    let dir = tempfile::tempdir_in(scratch()).unwrap();
    let ctx = world.context(dir.path(), Policy::default());
    let host = world.standin.base_url().to_owned();
    let now = OffsetDateTime::now_utc();
    let applied = now - time::Duration::days(2);
    let mut ids = Vec::new();
    for (p, k, t, added) in grants {
        let mut r = GrantRecord::new(
            record(
                &format!("chunk:{p}:{k}"),
                &principal(p),
                &t,
                added.clone(),
                &host,
            ),
            applied,
        );
        r.mark_active(added, applied).unwrap();
        ids.push(ctx.ledger.create(r).await.unwrap().record.id);
    }
    let stay_added = vec![change(
        SecurableType::Table,
        &staying_table,
        Privilege::Select,
    )];
    let mut stay = GrantRecord::new(
        record(
            "chunk:stay",
            &principal(0),
            &staying_table,
            stay_added.clone(),
            &host,
        ),
        now,
    );
    stay.mark_active(stay_added, now).unwrap();
    let stay_id = ctx.ledger.create(stay).await.unwrap().record.id;

    let state = world.standin.state().clone();
    state.clear_requests();
    let report = sweep(
        &ctx,
        now,
        Deadline::after(std::time::Duration::from_secs(120)),
    )
    .await
    .unwrap();

    assert_eq!(report.due, ids.len() as u64);
    assert_eq!(report.revoked, ids.len() as u64, "{report:?}");
    assert_eq!((report.failed, report.finished), (0, 0));
    assert_eq!(report.kept, 2, "USE_CATALOG and USE_SCHEMA handed over");

    // One PATCH per securable touched, never two.
    let patched: Vec<String> = state
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.path.clone())
        .collect();
    let distinct: BTreeSet<&String> = patched.iter().collect();
    assert_eq!(distinct.len(), patched.len(), "a securable patched twice");
    assert_eq!(patched.len(), touched.len());

    // What is left: Carol's own grant, uc-access's service principal, and exactly what p000's live
    // grant needs.
    let left: BTreeSet<(String, String, String)> = held(&state.dump())
        .into_iter()
        .filter(|(_, who, _)| who.ends_with("@chunk.example"))
        .collect();
    let want: BTreeSet<(String, String, String)> = [
        ("catalog/big".to_owned(), "USE_CATALOG"),
        (
            format!("schema/{}", schema_of(&staying_table)),
            "USE_SCHEMA",
        ),
        (format!("table/{staying_table}"), "SELECT"),
    ]
    .into_iter()
    .map(|(s, p)| (s, principal(0), p.to_owned()))
    .collect();
    assert_eq!(left, want);
    assert!(held(&state.dump()).contains(&(
        format!("table/{}", table(0)),
        demo::CAROL.to_owned(),
        "SELECT".to_owned()
    )));

    // Every ending record closed; the live one now owns the parents it kept.
    for result in ctx.ledger.get_many(&ids).await {
        assert_eq!(result.unwrap().record.state, GrantState::Revoked);
    }
    let stay = ctx.ledger.get(stay_id).await.unwrap().record;
    assert_eq!(stay.state, GrantState::Active);
    let owned: BTreeSet<String> = stay.added.iter().map(|c| c.securable.full_name()).collect();
    assert_eq!(
        owned,
        BTreeSet::from([
            "big".to_owned(),
            schema_of(&staying_table),
            staying_table.clone()
        ])
    );

    // A second run finds nothing due and sends nothing.
    state.clear_requests();
    let again = sweep(
        &ctx,
        now,
        Deadline::after(std::time::Duration::from_secs(60)),
    )
    .await
    .unwrap();
    assert_eq!((again.due, again.revoked), (0, 0));
    assert!(state.requests().is_empty());
}

/// Ledger files on tmpfs where there is one: creating 1,200 records flushes each.
fn scratch() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

#[tokio::test]
async fn a_run_out_of_time_starts_nothing_and_leaves_the_due_grants_to_the_next_run() {
    let world = World::start(Seed::demo(), false).await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = world.context(dir.path(), Policy::default());
    provision(
        &ctx,
        &world.table_request("P1D"),
        Deadline::after(std::time::Duration::from_secs(30)),
    )
    .await
    .unwrap();
    assert!(!world.alice_holds().is_empty());
    let later = OffsetDateTime::now_utc() + time::Duration::days(2);
    let state = world.standin.state().clone();
    state.clear_requests();

    let spent = sweep(&ctx, later, Deadline::after(std::time::Duration::ZERO))
        .await
        .unwrap();
    assert_eq!((spent.due, spent.deferred, spent.revoked), (1, 1, 0));
    assert!(state.requests().is_empty(), "nothing sent without time");
    let records = ctx.ledger.list(&Default::default()).await.unwrap();
    assert_eq!(
        records[0].record.state,
        GrantState::Active,
        "left as it was"
    );

    let next = sweep(
        &ctx,
        later,
        Deadline::after(std::time::Duration::from_secs(60)),
    )
    .await
    .unwrap();
    assert_eq!((next.due, next.deferred, next.revoked), (1, 0, 1));
    assert!(world.alice_holds().is_empty());
}
