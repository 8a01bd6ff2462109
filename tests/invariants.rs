//! The provisioning invariants as properties: random sequences of approvals (callbacks and operator
//! grants, to users and a group), duplicates, renewals, clock moves, early revokes, timer runs, and
//! injected failures (the stand-in answering 503 or dropping connections; the ledger refusing writes),
//! run against the real use cases (`provision`, `sweep`, `revoke_now`) with the production Databricks
//! clients talking to the stand-in over HTTP and the local ledger.
//!
//! After every step:
//! - nothing the account held before uc-access started (the seed, including grants to the same principals
//!   uc-access grants to) has been removed;
//! - every privilege in Unity Catalog that is not in the seed is known to the ledger (in a live record's
//!   `added` or `plan`), so a timer run can always find it;
//! - no idempotency key has two records;
//! - after a timer run with no fault armed, nothing is due any more: no grant is left past its expiry.
//!
//! At the end, with the faults healed and time moved past every expiry and backoff, the timer converges:
//! Unity Catalog holds exactly the seed again and every record is `revoked`.
//!
//! `PROPTEST_CASES` sets the number of sequences (default here: 24, a few seconds); for a long run:
//! `PROPTEST_CASES=2000 cargo test --release --test invariants` (docs/testing.md).

#![allow(clippy::unwrap_used)] // a test panics with the failing value

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use proptest::prelude::*;
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;
use uc_access::app::Services;
use uc_access::contract::{grant_access, purview};
use uc_access::databricks::Deadline;
use uc_access::domain::{EntraObjectId, Principal};
use uc_access::functions::http_function_names;
use uc_access::ledger::{DueQuery, GrantRecord, GrantState, LedgerError, LedgerStore, ListFilter};
use uc_access::settings::{Env, Settings};
use uc_access::usecases::{Clock, Context, expire, provision};
use uc_access_dev::local_issuer::local_auth_settings;
use uc_access_standin::{Fault, FaultKind, RunningStandIn, Seed, StandIn, demo};

#[path = "common/hooks.rs"]
mod hooks;
use hooks::{Held, Hook, HookedLedger, held};

const START: OffsetDateTime = datetime!(2026-03-02 09:00 UTC);

/// Storage that refuses the next `n` writes, as storage that is throttled or down would.
#[derive(Debug, Default)]
struct FailingWrites(AtomicU32);

impl Hook for FailingWrites {
    fn before_change(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    fn refuse_write(&self) -> Option<LedgerError> {
        let left = self.0.load(Ordering::SeqCst);
        (left > 0).then(|| {
            self.0.store(left - 1, Ordering::SeqCst);
            LedgerError::Unavailable {
                message: "injected write failure".into(),
            }
        })
    }
}

/// One step of a sequence.
#[derive(Debug, Clone)]
enum Op {
    /// A Purview callback (grantee 0 = Alice, 1 = Bob) or an operator grant to a group (2).
    Approve {
        grantee: usize,
        table: usize,
        minutes: i64,
        key: Option<u8>,
    },
    Advance {
        minutes: i64,
    },
    Timer,
    /// Revoke the n-th record (modulo how many there are) early.
    Revoke {
        pick: usize,
    },
    /// The next `count` Databricks requests (PATCHes only, or any) fail: 503, or a dropped connection.
    FailDatabricks {
        count: u32,
        patches_only: bool,
        drop: bool,
    },
    FailLedger {
        count: u32,
    },
    Heal,
}

const TABLES: [&str; 4] = [
    "sales.reporting.orders",
    "sales.reporting.customers",
    "sales.raw.events",
    "hr.people.employees",
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, 0..TABLES.len(), prop::sample::select(vec![2_i64, 30, 600, 1440]), prop::option::of(0..2u8))
            .prop_map(|(grantee, table, minutes, key)| Op::Approve { grantee, table, minutes, key }),
        3 => (1..1500_i64).prop_map(|minutes| Op::Advance { minutes }),
        3 => Just(Op::Timer),
        1 => (0..8usize).prop_map(|pick| Op::Revoke { pick }),
        1 => (1..6u32, any::<bool>(), any::<bool>())
            .prop_map(|(count, patches_only, drop)| Op::FailDatabricks { count, patches_only, drop }),
        1 => (1..4u32).prop_map(|count| Op::FailLedger { count }),
        1 => Just(Op::Heal),
    ]
}

/// The seed: demo, plus grants the product must never remove held by the principals it grants to.
fn seed() -> Seed {
    Seed::demo()
        .with_grant("table", "hr.people.employees", demo::ALICE, &["SELECT"])
        .with_grant("schema", "sales.raw", demo::ALICE, &["USE_SCHEMA"])
        .with_grant("catalog", "hr", demo::BOB, &["USE_CATALOG"])
        .with_grant(
            "schema",
            "sales.reporting",
            demo::ANALYSTS_GROUP,
            &["USE_SCHEMA"],
        )
}

struct World {
    standin: RunningStandIn,
    services: Services,
    ledger: Arc<HookedLedger>,
    failing_writes: Arc<FailingWrites>,
    skew: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
}

impl World {
    async fn start() -> Self {
        let standin = StandIn::builder()
            .seed(seed())
            .start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let standin_url = url::Url::parse(standin.base_url()).unwrap();
        let env = uc_access_dev::local::local_env(
            Env::from_pairs([("UC_ACCESS_DATABRICKS_MAX_ATTEMPTS", "2")]),
            &standin_url,
            dir.path(),
        );
        let base = url::Url::parse("http://127.0.0.1:9").unwrap();
        let settings =
            Settings::with_auth(&env, local_auth_settings(&base, &http_function_names())).unwrap();
        let (auth, clients) =
            uc_access::app::outbound_clients(&settings, uc_access::outbound::http_client())
                .unwrap();
        let failing_writes = Arc::new(FailingWrites::default());
        let ledger = Arc::new(HookedLedger {
            inner: uc_access::ledger::open(&settings.ledger, &uc_access::outbound::http_client())
                .unwrap(),
            hook: failing_writes.clone(),
        });
        let skew = Arc::new(AtomicI64::new(0));
        let clock_skew = skew.clone();
        let clock: Clock =
            Arc::new(move || START + time::Duration::seconds(clock_skew.load(Ordering::SeqCst)));
        let services = Services::assemble(&settings, auth, clients, ledger.clone(), clock);
        Self {
            standin,
            services,
            ledger,
            failing_writes,
            skew,
            _dir: dir,
        }
    }

    fn ctx(&self) -> &Context {
        &self.services.provisioning().unwrap().context
    }

    fn now(&self) -> OffsetDateTime {
        self.ctx().now()
    }

    fn faults_armed(&self) -> bool {
        !self.standin.state().pending_faults().is_empty()
            || self.failing_writes.0.load(Ordering::SeqCst) > 0
    }

    fn heal(&self) {
        self.standin.state().clear_faults();
        self.failing_writes.0.store(0, Ordering::SeqCst);
    }

    async fn records(&self) -> Vec<GrantRecord> {
        self.ledger
            .list(&ListFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.record)
            .collect()
    }

    async fn approve(&self, grantee: usize, table: usize, minutes: i64, key: Option<u8>) {
        let securable = TABLES[table];
        let mut body = json!({
            "privileges": ["SELECT"],
            "duration": format!("PT{minutes}M"),
        });
        if let Some(k) = key {
            body["idempotencyKey"] = json!(format!("key-{k}"));
        }
        let workspaces = &self.services.workspaces;
        let request = if grantee < 2 {
            let requester = [demo::ALICE_ENTRA_ID, demo::BOB_ENTRA_ID][grantee];
            body["requestorId"] = json!(requester);
            body["approvers"] = json!(demo::CAROL_ENTRA_ID);
            body["approvalOutcome"] = json!("Approved");
            let (c, rest) = securable.split_once('.').unwrap();
            let (s, t) = rest.split_once('.').unwrap();
            body["assetQualifiedName"] = json!(format!(
                "databricks://{}/catalogs/{c}/schemas/{s}/tables/{t}",
                demo::METASTORE_ID
            ));
            purview::parse(body.to_string().as_bytes(), workspaces).unwrap()
        } else {
            body["principal"] = json!({"groupName": demo::ANALYSTS_GROUP});
            body["securable"] = json!({"type": "table", "fullName": securable});
            let operator = EntraObjectId::parse(demo::CAROL_ENTRA_ID).unwrap();
            grant_access::parse(body.to_string().as_bytes(), workspaces, operator).unwrap()
        };
        // Errors (a failure injected, a busy duplicate, a reused key) are legitimate answers; what
        // matters is the state they leave, which the checks look at.
        let _ = provision::provision(
            self.ctx(),
            &request,
            Deadline::after(Duration::from_millis(800)),
        )
        .await;
    }

    async fn step(&self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Approve {
                grantee,
                table,
                minutes,
                key,
            } => self.approve(*grantee, *table, *minutes, *key).await,
            Op::Advance { minutes } => {
                self.skew.fetch_add(minutes * 60, Ordering::SeqCst);
            }
            Op::Timer => {
                let clean = !self.faults_armed();
                let now = self.now();
                let report =
                    expire::sweep(self.ctx(), now, Deadline::after(Duration::from_secs(10))).await;
                if clean {
                    prop_assert!(report.is_ok(), "a clean timer run failed: {report:?}");
                    let due = self.ledger.find_due(&DueQuery::at(now)).await.unwrap();
                    prop_assert!(
                        due.is_empty(),
                        "after a clean timer run, still due: {:?}",
                        due.iter()
                            .map(|v| (
                                v.record.state,
                                v.record.expires_at,
                                v.record.next_attempt_at
                            ))
                            .collect::<Vec<_>>()
                    );
                    for r in self.records().await {
                        prop_assert!(
                            !(r.state == GrantState::Active
                                && r.expires_at.is_some_and(|e| e <= now)),
                            "grant {} is active past its expiry after a timer run",
                            r.id
                        );
                    }
                }
            }
            Op::Revoke { pick } => {
                let records = self.records().await;
                if !records.is_empty() {
                    let id = records[pick % records.len()].id;
                    let _ =
                        expire::revoke_now(self.ctx(), id, Deadline::after(Duration::from_secs(5)))
                            .await;
                }
            }
            Op::FailDatabricks {
                count,
                patches_only,
                drop,
            } => {
                let kind = if *drop {
                    FaultKind::Drop
                } else {
                    FaultKind::Unavailable {
                        retry_after_secs: Some(0),
                    }
                };
                let mut fault = Fault::new(kind, *count).on_path_prefix("/api/2.1/unity-catalog");
                if *patches_only {
                    fault = fault.on_method("PATCH");
                }
                self.standin.state().inject(fault);
            }
            Op::FailLedger { count } => {
                self.failing_writes.0.store(*count, Ordering::SeqCst);
            }
            Op::Heal => self.heal(),
        }
        Ok(())
    }

    /// The invariants that hold after every step.
    async fn check(&self, seed: &Held) -> Result<(), TestCaseError> {
        let now_held = held(&self.standin);
        let removed: Vec<_> = seed.difference(&now_held).collect();
        prop_assert!(
            removed.is_empty(),
            "privileges uc-access did not add were removed: {removed:?}"
        );

        let records = self.records().await;
        let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
        for r in &records {
            *per_key.entry(r.idempotency_key.to_string()).or_default() += 1;
        }
        prop_assert!(
            per_key.values().all(|n| *n == 1),
            "two records for one idempotency key: {per_key:?}"
        );

        // Every privilege uc-access may have added is somewhere a timer run will look.
        let mut known: BTreeSet<(String, String, String)> = BTreeSet::new();
        for r in records.iter().filter(|r| r.state != GrantState::Revoked) {
            for c in r.added.iter().chain(r.plan.iter()) {
                for p in c.privileges.iter() {
                    known.insert((
                        c.securable.to_string(),
                        principal_key(&r.principal),
                        p.to_string(),
                    ));
                }
            }
        }
        for (kind, name, principal, privilege) in now_held.difference(seed) {
            let key = (
                format!("{kind} {name}"),
                principal.to_lowercase(),
                privilege.clone(),
            );
            prop_assert!(
                known.contains(&key),
                "{privilege} on {kind} {name} for {principal} is held but no live record knows it: {known:?}"
            );
        }
        Ok(())
    }

    /// Heal, move past every expiry and backoff, run the timer until it converges.
    async fn converge(&self, seed: &Held) -> Result<(), TestCaseError> {
        self.heal();
        for _ in 0..4 {
            self.skew.fetch_add(3 * 24 * 3600, Ordering::SeqCst);
            let now = self.now();
            expire::sweep(self.ctx(), now, Deadline::after(Duration::from_secs(10)))
                .await
                .unwrap();
        }
        let now_held = held(&self.standin);
        prop_assert_eq!(
            &now_held,
            seed,
            "after convergence Unity Catalog should hold exactly the seed"
        );
        for r in self.records().await {
            prop_assert_eq!(r.state, GrantState::Revoked, "grant {} did not end", r.id);
        }
        Ok(())
    }
}

fn principal_key(p: &Principal) -> String {
    p.uc_name().to_lowercase()
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn config() -> ProptestConfig {
    // PROPTEST_CASES overrides this default (the long run in docs/testing.md).
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    ProptestConfig {
        cases,
        max_shrink_iters: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_sequence_breaks_the_provisioning_invariants(ops in prop::collection::vec(op(), 1..28)) {
        runtime().block_on(async {
            let world = World::start().await;
            let seed = held(&world.standin);
            world.check(&seed).await?;
            for op in &ops {
                world.step(op).await?;
                world.check(&seed).await?;
            }
            world.converge(&seed).await
        })?;
    }
}

/// The harness itself: an approval really grants and a timer run really revokes, so the properties above
/// are checked against a world where things happen.
#[test]
fn the_harness_grants_and_revokes_for_real() {
    runtime().block_on(async {
        let world = World::start().await;
        let seed = held(&world.standin);
        let orders = (
            "table".to_owned(),
            "sales.reporting.orders".to_owned(),
            demo::ALICE.to_owned(),
            "SELECT".to_owned(),
        );
        world
            .step(&Op::Approve {
                grantee: 0,
                table: 0,
                minutes: 30,
                key: None,
            })
            .await
            .unwrap();
        assert!(held(&world.standin).contains(&orders));
        world
            .step(&Op::Approve {
                grantee: 2,
                table: 1,
                minutes: 30,
                key: Some(1),
            })
            .await
            .unwrap();
        world.check(&seed).await.unwrap();
        assert_eq!(world.records().await.len(), 2);
        world.step(&Op::Advance { minutes: 31 }).await.unwrap();
        world.step(&Op::Timer).await.unwrap();
        assert_eq!(held(&world.standin), seed);
        assert!(
            world
                .records()
                .await
                .iter()
                .all(|r| r.state == GrantState::Revoked)
        );
    });
}
