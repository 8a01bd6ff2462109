//! Load: many callbacks from many concurrent clients, every grant delivered twice (as Purview retries),
//! against the app over HTTP with the stand-in and the local ledger. Afterwards none is lost, none is
//! duplicated, and the ledger and the stand-in agree; after expiry the timer leaves nothing behind.
//!
//! `.ci/run` runs it small. The full size from docs/testing.md:
//!     UC_ACCESS_LOAD_CALLBACKS=10000 UC_ACCESS_LOAD_CONCURRENCY=200 \
//!       cargo test --release --test api load -- --nocapture

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Semaphore;
use uc_access::ledger::{GrantState, LedgerStore, ListFilter, LocalLedger};
use uc_access_standin::privileges::SecurableKind;
use uc_access_standin::{Seed, SeedSecurable, SeedUser, demo};

use crate::helpers::TestApp;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A stable Entra object id for load user `i`.
fn object_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

fn user_name(i: usize) -> String {
    format!("load-user-{i}@contoso.com")
}

/// The demo account plus `users` account users and `tables` tables in `sales.load`.
fn seed(users: usize, tables: usize) -> Seed {
    let mut seed = Seed::demo();
    for i in 0..users {
        seed.users.push(SeedUser {
            id: format!("{}", 900_000 + i),
            user_name: user_name(i),
            display_name: format!("Load User {i}"),
            active: true,
            external_id: Some(object_id(i)),
        });
    }
    let owner = demo::CAROL.to_owned();
    seed.securables.push(SeedSecurable {
        kind: SecurableKind::Schema,
        full_name: "sales.load".into(),
        owner: owner.clone(),
    });
    for t in 0..tables {
        seed.securables.push(SeedSecurable {
            kind: SecurableKind::Table,
            full_name: format!("sales.load.t{t}"),
            owner: owner.clone(),
        });
    }
    seed.with_page_size(100)
}

fn body(user: usize, table: usize) -> String {
    json!({
        "requestorId": object_id(user),
        "recipientId": "",
        "assetQualifiedName": format!(
            "databricks://{}/catalogs/sales/schemas/load/tables/t{table}",
            demo::METASTORE_ID
        ),
        "approvalOutcome": "Approved",
        "approvers": demo::CAROL_ENTRA_ID,
        "duration": "PT30M",
    })
    .to_string()
}

/// Sends one callback like Purview would: retryable answers (429, 503) are retried after a pause.
async fn deliver(app: &TestApp, token: &str, body: String) -> serde_json::Value {
    for attempt in 0..20u64 {
        let (status, answer) = app
            .post("/api/purview-callback", Some(token), body.clone())
            .await;
        match status {
            StatusCode::OK => return answer,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
            }
            other => panic!("callback answered {other}: {answer}"),
        }
    }
    panic!("callback still retryable after 20 attempts: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callbacks_under_load_are_granted_exactly_once_and_agree_with_unity_catalog() {
    let callbacks = setting("UC_ACCESS_LOAD_CALLBACKS", 400).max(2);
    let concurrency = setting("UC_ACCESS_LOAD_CONCURRENCY", 50).max(1);
    // Every grant is delivered twice: half as many distinct grants as callbacks.
    let grants = callbacks / 2;
    let tables = grants.clamp(1, 50);
    let users = grants.div_ceil(tables);
    let app = Arc::new(TestApp::spawn_seeded(&[], seed(users, tables)).await);
    let token: Arc<str> = app.token("purview").into();

    let pairs: Vec<(usize, usize)> = (0..grants).map(|g| (g / tables, g % tables)).collect();
    // Both deliveries of a grant go out close together, interleaved with others.
    let mut deliveries: Vec<(usize, usize)> = pairs.iter().flat_map(|p| [*p, *p]).collect();
    deliveries.rotate_left(1);

    let gate = Arc::new(Semaphore::new(concurrency));
    let started = std::time::Instant::now();
    let mut tasks = Vec::with_capacity(deliveries.len());
    for (user, table) in deliveries {
        let (app, token, gate) = (app.clone(), token.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let answer = deliver(&app, &token, body(user, table)).await;
            ((user, table), answer)
        }));
    }
    let mut ids: BTreeMap<(usize, usize), BTreeSet<String>> = BTreeMap::new();
    for task in tasks {
        let (pair, answer) = task.await.unwrap();
        assert!(
            matches!(
                answer["status"].as_str(),
                Some("granted" | "already_granted")
            ),
            "{answer}"
        );
        ids.entry(pair)
            .or_default()
            .insert(answer["grantId"].as_str().unwrap().to_owned());
    }
    eprintln!(
        "load: {callbacks} callbacks ({grants} grants × 2) from {concurrency} concurrent clients in {:?}",
        started.elapsed()
    );

    // None lost, none duplicated: both deliveries answered with the same grant, one record each.
    assert_eq!(ids.len(), grants, "every grant answered");
    for (pair, set) in &ids {
        assert_eq!(
            set.len(),
            1,
            "{pair:?} answered with two grant ids: {set:?}"
        );
    }
    let ledger = LocalLedger::new(app.ledger_dir());
    let records: Vec<_> = ledger
        .list(&ListFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.record)
        .collect();
    assert_eq!(records.len(), grants, "one record per grant");
    let keys: BTreeSet<_> = records.iter().map(|r| r.idempotency_key.clone()).collect();
    assert_eq!(keys.len(), grants, "no idempotency key twice");
    assert!(
        records.iter().all(|r| r.state == GrantState::Active),
        "all active"
    );

    // The ledger and the stand-in agree: each load user holds exactly what their records say.
    for user in 0..users {
        let who = user_name(user);
        let mine: BTreeSet<usize> = pairs
            .iter()
            .filter(|(u, _)| *u == user)
            .map(|(_, t)| *t)
            .collect();
        for t in 0..tables {
            let held = app.held("table", &format!("sales.load.t{t}"), &who);
            let want: Vec<String> = if mine.contains(&t) {
                vec!["SELECT".into()]
            } else {
                Vec::new()
            };
            assert_eq!(held, want, "{who} on t{t}");
        }
        let parents = !mine.is_empty();
        assert_eq!(
            app.held("schema", "sales.load", &who) == ["USE_SCHEMA"],
            parents,
            "{who} USE_SCHEMA"
        );
        assert_eq!(
            app.held("catalog", "sales", &who) == ["USE_CATALOG"],
            parents,
            "{who} USE_CATALOG"
        );
    }

    // After expiry one timer run removes every load grant and its parents, and keeps Bob's.
    app.advance(time::Duration::minutes(31));
    let report = app.run_timer().await;
    assert_eq!(report["revoked"], grants, "{report}");
    for user in 0..users {
        let who = user_name(user);
        assert!(app.held("catalog", "sales", &who).is_empty(), "{who}");
        assert!(app.held("schema", "sales.load", &who).is_empty(), "{who}");
    }
    for t in 0..tables {
        let grants_on = app.standin.grants_on("table", &format!("sales.load.t{t}"));
        assert!(grants_on.is_empty(), "t{t}: {grants_on:?}");
    }
    assert_eq!(
        app.held("table", "sales.reporting.orders", demo::BOB),
        ["SELECT"]
    );
    let records = ledger.list(&ListFilter::default()).await.unwrap();
    assert!(
        records
            .iter()
            .all(|v| v.record.state == GrantState::Revoked)
    );
}
