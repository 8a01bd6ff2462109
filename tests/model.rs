//! The product's promise, checked against the world: a model-based test whose oracle is the
//! *approvals*, not the ledger.
//!
//! Random sequences of approvals (Purview callbacks for oneself, operator grants to a group; catalog,
//! schema and table targets; `SELECT` and `MODIFY`; direct grants and Delta Sharing; siblings and nested
//! scopes; with and without approval ids), re-deliveries (duplicates, and after an early revoke or an
//! expiry), early revokes, clock moves, timer runs, an administrator's grants by hand, Databricks and
//! ledger faults, and crashes (the running operation dropped at its k-th change), run against the real
//! use cases with the production clients over HTTP to the Databricks stand-in and the local ledger.
//!
//! The model keeps, per request, which approvals it has seen and what the product answered, and from that
//! alone (never from the ledger) which access is justified. After every step it reads **Unity Catalog
//! itself** (the stand-in's grants and shares) and checks:
//! - every privilege that neither existed before nor was granted by hand is one an approval justifies —
//!   its own privileges on its own securable, or `USE_*` on its parents — for an approval that is live,
//!   or whose end (or whose failed attempt) a timer run may not yet have cleaned up;
//! - every live approval's access works: each privilege it needs is effective (held directly or
//!   inherited, `ALL_PRIVILEGES` counting), and a live shared approval's recipient holds `SELECT` on a
//!   share holding the table;
//! - no privilege that existed before uc-access, or that an administrator granted by hand, is removed;
//! - an activation link goes only to the approval of the person it is for, and no link is handed out by
//!   two approvals.
//!
//! In sequences without faults, the first check is strict at every timer run: an ended approval's
//! access must be gone. Every sequence ends by healing the faults and moving time past every expiry and
//! backoff: Unity Catalog must then hold exactly what existed before plus the grants made by hand.
//!
//! `PROPTEST_CASES` sets the number of sequences (default below); the long run is in docs/testing.md.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use proptest::prelude::*;
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;
use uc_access::app::Services;
use uc_access::contract::{grant_access, purview};
use uc_access::databricks::Deadline;
use uc_access::domain::EntraObjectId;
use uc_access::functions::http_function_names;
use uc_access::ledger::{GrantId, GrantState, LedgerError, LedgerStore, ListFilter};
use uc_access::settings::{Env, Settings};
use uc_access::usecases::provision::{Outcome, ProvisionError, provision};
use uc_access::usecases::resolve::Resolver;
use uc_access::usecases::share::Sharing;
use uc_access::usecases::{Clock, Context, expire};
use uc_access_dev::local_issuer::local_auth_settings;
use uc_access_standin::{Fault, FaultKind, RunningStandIn, Seed, StandIn, demo};
use url::Url;

#[path = "common/hooks.rs"]
mod hooks;
use hooks::{Held, Hook, HookedGrants, HookedLedger, HookedSharing, held};

const START: OffsetDateTime = datetime!(2026-03-02 09:00 UTC);
/// The policy's re-delivery window (`durations.redelivery`).
const WINDOW_MINUTES: i64 = 120;

const POLICY: &str = r#"
[durations]
redelivery = "PT2H"
[securables.catalog]
privileges = ["SELECT", "MODIFY"]
[securables.schema]
privileges = ["SELECT", "MODIFY"]
[securables.table]
privileges = ["SELECT", "MODIFY"]
[provisioning]
requestable = ["delta-sharing"]
"#;

// ---- the world's crash and fault points ---------------------------------------------------------

/// Counts the mutating steps of one operation (ledger writes, `PATCH`es, sharing changes) and, when armed,
/// never finishes the k-th: the operation is then dropped, as a process killed there.
#[derive(Debug, Default)]
struct Crash {
    armed: AtomicU32,
    seen: AtomicU32,
    crashed: AtomicBool,
    /// Ledger writes refused while > 0 (storage throttled or down).
    failing_writes: AtomicU32,
}

impl Crash {
    async fn step(&self) {
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if self.armed.load(Ordering::SeqCst) == n {
            self.crashed.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
    }
    fn arm(&self, at: u32) {
        self.seen.store(0, Ordering::SeqCst);
        self.armed.store(at, Ordering::SeqCst);
        self.crashed.store(false, Ordering::SeqCst);
    }
    fn disarm(&self) {
        self.armed.store(0, Ordering::SeqCst);
    }
    fn write(&self) -> Result<(), LedgerError> {
        let left = self.failing_writes.load(Ordering::SeqCst);
        if left > 0 {
            self.failing_writes.store(left - 1, Ordering::SeqCst);
            return Err(LedgerError::Unavailable {
                message: "injected write failure".into(),
            });
        }
        Ok(())
    }
}

impl Hook for Crash {
    fn before_change(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.step())
    }
    fn refuse_write(&self) -> Option<LedgerError> {
        self.write().err()
    }
}

// ---- what may be asked ---------------------------------------------------------------------------

/// Who asks: Alice and Bob for themselves through Purview, or an operator for the analysts group.
const WHO: [&str; 3] = [demo::ALICE, demo::BOB, demo::ANALYSTS_GROUP];
const OBJECT_IDS: [&str; 2] = [demo::ALICE_ENTRA_ID, demo::BOB_ENTRA_ID];

/// Targets: nested scopes and siblings (kind, full name).
const TARGETS: [(&str, &str); 7] = [
    ("catalog", "sales"),
    ("schema", "sales.reporting"),
    ("schema", "sales.raw"),
    ("table", "sales.reporting.orders"),
    ("table", "sales.reporting.customers"),
    ("table", "sales.raw.events"),
    ("table", "hr.people.employees"),
];

const PRIVILEGES: [&[&str]; 3] = [&["SELECT"], &["MODIFY"], &["MODIFY", "SELECT"]];

/// One request, as the workflow would send it again and again.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Request {
    who: usize,
    target: usize,
    privileges: usize,
    shared: bool,
}

impl Request {
    /// What policy lets through: sharing is for people asking for themselves, for tables, SELECT only.
    fn normalised(mut self) -> Self {
        if self.shared {
            self.who %= 2;
            self.target = 3 + self.target % 4;
            self.privileges = 0;
        }
        self
    }
    fn principal(&self) -> String {
        if self.shared {
            format!("uc_access_{}", OBJECT_IDS[self.who].replace('-', "_"))
        } else {
            WHO[self.who].to_owned()
        }
    }
    fn table(&self) -> &'static str {
        TARGETS[self.target].1
    }
    fn share(&self) -> String {
        format!("uc_access_{}", self.table().replace('.', "_"))
    }
}

/// One step of a sequence.
#[derive(Debug, Clone)]
enum Op {
    /// Deliver a request: a new approval (`approval` = Some(n): with approval id n; None: no id).
    Approve {
        request: Request,
        minutes: i64,
        approval: Option<u8>,
    },
    /// Deliver again, exactly, an earlier delivery (the n-th, modulo how many there were).
    Redeliver {
        pick: usize,
    },
    Advance {
        minutes: i64,
    },
    Timer,
    /// End the n-th request's grant early.
    Revoke {
        pick: usize,
    },
    /// An administrator grants a privilege by hand (when nothing of uc-access's claims it).
    AdminGrant {
        who: usize,
        target: usize,
        privilege: usize,
    },
    /// The next `count` Unity Catalog requests fail (503 or dropped), PATCHes only or all.
    FailDatabricks {
        count: u32,
        patches_only: bool,
        drop: bool,
    },
    FailLedger {
        count: u32,
    },
    /// The next operation is killed at its k-th change.
    Crash {
        at: u32,
    },
    Heal,
}

fn request() -> impl Strategy<Value = Request> {
    (
        0..3usize,
        0..TARGETS.len(),
        0..PRIVILEGES.len(),
        prop::bool::weighted(0.25),
    )
        .prop_map(|(who, target, privileges, shared)| {
            Request {
                who,
                target,
                privileges,
                shared,
            }
            .normalised()
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (request(), prop::sample::select(vec![2_i64, 30, 240, 2880]), prop::option::weighted(0.4, 0..3u8))
            .prop_map(|(request, minutes, approval)| Op::Approve { request, minutes, approval }),
        3 => (0..16usize).prop_map(|pick| Op::Redeliver { pick }),
        4 => prop::sample::select(vec![1_i64, 5, 35, 150, 300, 1500]).prop_map(|minutes| Op::Advance { minutes }),
        4 => Just(Op::Timer),
        2 => (0..16usize).prop_map(|pick| Op::Revoke { pick }),
        1 => (0..3usize, 0..TARGETS.len(), 0..2usize)
            .prop_map(|(who, target, privilege)| Op::AdminGrant { who, target, privilege }),
        1 => (1..6u32, any::<bool>(), any::<bool>())
            .prop_map(|(count, patches_only, drop)| Op::FailDatabricks { count, patches_only, drop }),
        1 => (1..3u32).prop_map(|count| Op::FailLedger { count }),
        1 => (1..8u32).prop_map(|at| Op::Crash { at }),
        1 => Just(Op::Heal),
    ]
}

// ---- the model: what the approvals justify --------------------------------------------------------

/// What the model knows of one request, from the approvals it was given and the answers it got.
#[derive(Debug, Clone, Default)]
struct Known {
    /// The approval ids delivered for it.
    ids: BTreeSet<u8>,
    /// When the current approval was accepted (first delivery, renewal or reopening).
    approved_at: Option<OffsetDateTime>,
    /// Until when the product said it holds (an answer's `expiresAt`).
    live_until: Option<OffsetDateTime>,
    /// It was ended early, successfully, at this time, while it would have lasted until `live_until`.
    revoked_early: Option<(OffsetDateTime, OffsetDateTime)>,
    /// An operation on it failed or crashed part-way at this time: its privileges may exist until then
    /// plus its duration (a dead approval's record is finished from when it was requested), and until a
    /// timer run has cleaned up after that.
    maybe_until: Option<OffsetDateTime>,
    /// Ended (expired or revoked) but a timer run may not yet have removed it.
    lingering: bool,
    /// An early revoke failed or was killed: the grant may still hold, until this expiry at most.
    uncertain_until: Option<OffsetDateTime>,
    /// The grant id the product named for it.
    grant: Option<GrantId>,
}

/// A delivery as sent: the request and the approval id it carried, and the body.
#[derive(Debug, Clone)]
struct Delivery {
    request: Request,
    approval: Option<u8>,
    minutes: i64,
}

/// Pairs of names: (share, recipient) holding SELECT, or (share, table) in the share.
type Pairs = BTreeSet<(String, String)>;

/// (share, recipient) pairs holding SELECT, and (share, table) objects.
fn sharing_state(standin: &RunningStandIn) -> (Pairs, Pairs) {
    let dump = standin.state().dump();
    let (mut select, mut objects) = (BTreeSet::new(), BTreeSet::new());
    for share in dump["shares"].as_array().unwrap() {
        let name = share["name"].as_str().unwrap().to_owned();
        for o in share["objects"].as_array().unwrap() {
            objects.insert((name.clone(), o.as_str().unwrap().to_owned()));
        }
        if let Some(perms) = share["permissions"].as_object() {
            for (recipient, privs) in perms {
                if privs
                    .as_array()
                    .is_some_and(|p| p.iter().any(|x| x == "SELECT"))
                {
                    select.insert((name.clone(), recipient.clone()));
                }
            }
        }
    }
    (select, objects)
}

/// The parents of a full name, outermost first, with their kinds.
fn lineage(kind: &str, name: &str) -> Vec<(&'static str, String)> {
    let parts: Vec<&str> = name.split('.').collect();
    let mut out = vec![("catalog", parts[0].to_owned())];
    if parts.len() > 1 {
        out.push(("schema", format!("{}.{}", parts[0], parts[1])));
    }
    if parts.len() > 2 {
        out.push(("table", name.to_owned()));
    }
    assert_eq!(out.last().unwrap().0, kind);
    out
}

/// What a direct approval justifies, written from Unity Catalog's privilege model (not from the product):
/// its privileges on its own securable, `USE_CATALOG` on its catalog and `USE_SCHEMA` on its schema; a
/// catalog grant also carries `USE_CATALOG` and `USE_SCHEMA` on the catalog, a schema grant `USE_SCHEMA`.
fn justified(request: &Request) -> BTreeSet<(String, String, String)> {
    let (kind, name) = TARGETS[request.target];
    let mut out = BTreeSet::new();
    for (level, full) in lineage(kind, name) {
        let usage = match level {
            "catalog" => vec!["USE_CATALOG"],
            "schema" => vec!["USE_SCHEMA"],
            _ => vec![],
        };
        for u in usage {
            out.insert((level.to_owned(), full.clone(), u.to_owned()));
        }
    }
    for p in PRIVILEGES[request.privileges] {
        out.insert((kind.to_owned(), name.to_owned(), (*p).to_owned()));
    }
    if kind == "catalog" {
        out.insert(("catalog".into(), name.into(), "USE_SCHEMA".into()));
    }
    out
}

/// Whether `privilege` on `kind name` is effective for `principal` in `world`: held directly on it or a
/// parent, or `ALL_PRIVILEGES` there.
fn effective(world: &Held, principal: &str, kind: &str, name: &str, privilege: &str) -> bool {
    lineage(kind, name).iter().any(|(level, full)| {
        ["ALL_PRIVILEGES", privilege].iter().any(|p| {
            world.contains(&(
                (*level).to_owned(),
                full.clone(),
                principal.to_owned(),
                (*p).to_owned(),
            ))
        })
    })
}

struct World {
    standin: RunningStandIn,
    services: Services,
    ctx: Context,
    crash: Arc<Crash>,
    skew: Arc<AtomicI64>,
    /// What the model knows, per request.
    known: Mutex<BTreeMap<Request, Known>>,
    deliveries: Mutex<Vec<Delivery>>,
    /// Privileges granted by hand: never to be removed.
    by_hand: Mutex<Held>,
    /// Activation links handed out, and to which request.
    links: Mutex<BTreeMap<String, Request>>,
    /// A fault or crash happened in this sequence (checks at timer runs are strict only without).
    faulted: AtomicBool,
    _dir: tempfile::TempDir,
}

impl World {
    async fn start() -> Self {
        let standin = StandIn::builder()
            .seed(Seed::demo())
            .start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, POLICY).unwrap();
        let standin_url = Url::parse(standin.base_url()).unwrap();
        let env = uc_access_dev::local::local_env(
            Env::from_pairs([
                ("UC_ACCESS_DATABRICKS_MAX_ATTEMPTS", "2"),
                ("UC_ACCESS_POLICY_FILE", policy.to_str().unwrap()),
            ]),
            &standin_url,
            dir.path(),
        );
        let base = Url::parse("http://127.0.0.1:9").unwrap();
        let settings =
            Settings::with_auth(&env, local_auth_settings(&base, &http_function_names())).unwrap();
        let (auth, clients) =
            uc_access::app::outbound_clients(&settings, uc_access::outbound::http_client())
                .unwrap();
        let clients = clients.unwrap();
        let crash = Arc::new(Crash::default());
        let ledger: Arc<dyn LedgerStore> = Arc::new(HookedLedger {
            inner: uc_access::ledger::open(&settings.ledger, &uc_access::outbound::http_client())
                .unwrap(),
            hook: crash.clone(),
        });
        let skew = Arc::new(AtomicI64::new(0));
        let clock_skew = skew.clone();
        let clock: Clock =
            Arc::new(move || START + time::Duration::seconds(clock_skew.load(Ordering::SeqCst)));
        let services = Services::assemble(
            &settings,
            auth,
            Some(clients.clone()),
            ledger.clone(),
            clock.clone(),
        );
        let base_ctx = &services.provisioning().unwrap().context;
        let ctx = Context {
            policy: base_ctx.policy.clone(),
            resolver: Resolver::new(clients.directory.clone(), Duration::from_secs(600), false),
            grants: Arc::new(HookedGrants::with_hook(
                clients.grants.clone(),
                crash.clone(),
            )),
            ledger,
            clock,
            sharing: Sharing {
                api: Arc::new(HookedSharing {
                    inner: clients.sharing.clone(),
                    hook: crash.clone(),
                }),
                naming: base_ctx.sharing.naming.clone(),
            },
        };
        Self {
            standin,
            services,
            ctx,
            crash,
            skew,
            known: Mutex::default(),
            deliveries: Mutex::default(),
            by_hand: Mutex::default(),
            links: Mutex::default(),
            faulted: AtomicBool::new(false),
            _dir: dir,
        }
    }

    fn now(&self) -> OffsetDateTime {
        self.ctx.now()
    }

    fn faults_armed(&self) -> bool {
        !self.standin.state().pending_faults().is_empty()
            || self.crash.failing_writes.load(Ordering::SeqCst) > 0
            || self.crash.armed.load(Ordering::SeqCst) > 0
    }

    fn heal(&self) {
        self.standin.state().clear_faults();
        self.crash.failing_writes.store(0, Ordering::SeqCst);
        self.crash.disarm();
    }

    /// Runs one operation of the product; `None` when it was killed by an armed crash.
    async fn run<T>(&self, op: impl std::future::Future<Output = T>) -> Option<T> {
        let crash = self.crash.clone();
        let killed = async move {
            while !crash.crashed.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        let result = tokio::select! {
            out = op => Some(out),
            () = killed => None,
        };
        self.crash.disarm();
        result
    }

    fn body(&self, d: &Delivery) -> (String, bool) {
        let r = &d.request;
        let (kind, name) = TARGETS[r.target];
        let mut body = json!({
            "privileges": PRIVILEGES[r.privileges],
            "duration": format!("PT{}M", d.minutes),
        });
        if let Some(id) = d.approval {
            body["approvalId"] = json!(format!("approval-{id}"));
        }
        if r.who < 2 {
            let parts: Vec<&str> = name.split('.').collect();
            let mut qn = format!("databricks://{}/catalogs/{}", demo::METASTORE_ID, parts[0]);
            if parts.len() > 1 {
                qn.push_str(&format!("/schemas/{}", parts[1]));
            }
            if parts.len() > 2 {
                qn.push_str(&format!("/tables/{}", parts[2]));
            }
            body["requestorId"] = json!(OBJECT_IDS[r.who]);
            body["approvers"] = json!(demo::CAROL_ENTRA_ID);
            body["approvalOutcome"] = json!("Approved");
            body["assetQualifiedName"] = json!(qn);
            if r.shared {
                body["provisioning"] = json!("delta-sharing");
            }
            (body.to_string(), true)
        } else {
            body["principal"] = json!({"groupName": demo::ANALYSTS_GROUP});
            body["securable"] = json!({"type": kind, "fullName": name});
            (body.to_string(), false)
        }
    }

    /// Delivers `d` and checks the answer against what the model allows; updates the model.
    async fn deliver(&self, d: Delivery) -> Result<(), TestCaseError> {
        let (body, from_purview) = self.body(&d);
        let workspaces = &self.services.workspaces;
        let request = if from_purview {
            purview::parse(body.as_bytes(), workspaces).unwrap()
        } else {
            let operator = EntraObjectId::parse(demo::CAROL_ENTRA_ID).unwrap();
            grant_access::parse(body.as_bytes(), workspaces, operator).unwrap()
        };
        let now = self.now();
        let before = self
            .known
            .lock()
            .unwrap()
            .get(&d.request)
            .cloned()
            .unwrap_or_default();
        // Whether this delivery is one the product must refuse: a re-delivery of an approval that ended.
        let same_approval = match d.approval {
            Some(id) if !before.ids.is_empty() => before.ids.contains(&id),
            _ => before
                .approved_at
                .is_some_and(|t| now - t < time::Duration::minutes(WINDOW_MINUTES)),
        };
        let ended = before.live_until.is_none()
            && before.approved_at.is_some()
            && before.uncertain_until.is_none();
        let held_early = before.revoked_early.is_some_and(|(_, until)| now < until)
            && (d.approval.is_none() || before.ids.is_empty());
        let must_refuse = ended && (same_approval || held_early);

        let result = self
            .run(provision(
                &self.ctx,
                &request,
                Deadline::after(Duration::from_secs(2)),
            ))
            .await;
        // A delivery that failed leaves its approval id known to the product only if a record of the
        // request holds it (a failed create leaves none): a later delivery of an id the product could not
        // have learned is a new approval to it, not a re-delivery.
        let recorded = match (&result, d.approval) {
            (Some(Ok(_)), _) | (_, None) => false,
            (_, Some(id)) => self.records_approval(&d.request, id).await,
        };
        self.deliveries.lock().unwrap().push(d.clone());
        let mut known = self.known.lock().unwrap();
        let k = known.entry(d.request.clone()).or_default();
        match result {
            Some(Ok(outcome)) => {
                if must_refuse {
                    // A grant the timer has not yet closed may answer from its record; it must not
                    // give the access back.
                    let expires = outcome.record.as_ref().and_then(|r| r.expires_at);
                    prop_assert!(
                        expires.is_some_and(|e| e <= now),
                        "a re-delivery of an ended approval was answered {} until {:?} for {:?}",
                        outcome.status.as_str(),
                        expires,
                        d
                    );
                } else {
                    if let Some(until) = k.uncertain_until.take()
                        && same_approval
                    {
                        // The revoke did not go through: the same approval may find its grant, never
                        // a longer one.
                        let expires = outcome.record.as_ref().and_then(|r| r.expires_at);
                        prop_assert!(
                            expires.is_some_and(|e| e <= until),
                            "a re-delivery after a failed revoke extended the grant: {expires:?} > {until}"
                        );
                        k.live_until = Some(until);
                    }
                    self.accept(k, &d, &outcome, now, same_approval)?;
                }
            }
            Some(Err(ProvisionError::ApprovalEnded { .. })) => {
                prop_assert!(
                    ended || before.uncertain_until.is_some(),
                    "approval_ended for a request whose approval had not ended: {d:?} {before:?}"
                );
                // A revoke that failed has been finished by a timer run since.
                if let Some(until) = k.uncertain_until.take() {
                    k.revoked_early = Some((now, until));
                }
            }
            Some(Err(_)) | None => {
                // Failed or killed part-way: what it may have done lasts at most its duration from now,
                // and until a timer run cleans up after it.
                let until = now + time::Duration::minutes(d.minutes.max(11));
                k.maybe_until = Some(k.maybe_until.map_or(until, |u| u.max(until)));
                if let Some(id) = d.approval.filter(|_| recorded) {
                    k.ids.insert(id);
                }
            }
        }
        Ok(())
    }

    /// Whether a record of `request` (its principal and securable) holds approval `id`.
    async fn records_approval(&self, request: &Request, id: u8) -> bool {
        let (kind, name) = TARGETS[request.target];
        let principal = request.principal();
        let approval = format!("approval-{id}");
        self.ctx
            .ledger
            .list(&ListFilter::default())
            .await
            .unwrap()
            .iter()
            .any(|v| {
                let r = &v.record;
                r.principal.uc_name().eq_ignore_ascii_case(&principal)
                    && r.securable.full_name() == name
                    && r.securable.securable_type().as_str() == kind
                    && r.approvals.contains(&approval)
            })
    }

    fn accept(
        &self,
        k: &mut Known,
        d: &Delivery,
        outcome: &Outcome,
        now: OffsetDateTime,
        same_approval: bool,
    ) -> Result<(), TestCaseError> {
        let record = outcome.record.as_ref().unwrap();
        let expires = record.expires_at.unwrap();
        if let Some(until) = k.live_until
            && same_approval
        {
            prop_assert_eq!(
                expires,
                until,
                "another delivery of the same approval moved the expiry ({:?})",
                d
            );
        }
        // The product counts an approval from its first delivery, a reopening or a renewal that moved
        // the expiry; a delivery that changed nothing leaves it as it was.
        if k.live_until.is_none() || outcome.status.as_str() == "extended" {
            k.approved_at = Some(now);
        }
        if let Some(id) = d.approval {
            k.ids.insert(id);
        }
        k.live_until = (expires > now).then_some(expires);
        if expires <= now {
            k.lingering = true;
        }
        k.revoked_early = None;
        k.grant = Some(record.id);
        if let Some(link) = outcome
            .sharing
            .as_ref()
            .and_then(|s| s.activation_url.clone())
        {
            let mut links = self.links.lock().unwrap();
            if let Some(earlier) = links.get(&link) {
                prop_assert_eq!(
                    earlier,
                    &d.request,
                    "one activation link was handed out by two approvals"
                );
            }
            links.insert(link.clone(), d.request.clone());
            // The link is this person's own recipient's.
            let recipient = d.request.principal();
            let view = self.standin.state().recipient(&recipient).unwrap();
            let tokens = view["tokens"].as_array().unwrap();
            prop_assert!(
                tokens.iter().any(|t| t["activation_url"] == link.as_str()),
                "an activation link handed out for {recipient} is not its recipient's"
            );
            prop_assert!(d.request.who < 2 && d.request.shared);
        }
        Ok(())
    }

    /// Time passed: approvals past their expiry are no longer live (a timer run removes them).
    fn expire_model(&self) {
        let now = self.now();
        for k in self.known.lock().unwrap().values_mut() {
            if k.live_until.is_some_and(|u| u <= now) {
                k.live_until = None;
                k.lingering = true;
            }
            if k.uncertain_until.is_some_and(|u| u <= now) {
                k.uncertain_until = None;
            }
        }
    }

    async fn step(&self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Approve {
                request,
                minutes,
                approval,
            } => {
                self.deliver(Delivery {
                    request: request.clone(),
                    approval: *approval,
                    minutes: *minutes,
                })
                .await?;
            }
            Op::Redeliver { pick } => {
                let d = {
                    let all = self.deliveries.lock().unwrap();
                    (!all.is_empty()).then(|| all[pick % all.len()].clone())
                };
                if let Some(d) = d {
                    self.deliver(d).await?;
                }
            }
            Op::Advance { minutes } => {
                self.skew.fetch_add(minutes * 60, Ordering::SeqCst);
                self.expire_model();
            }
            Op::Timer => {
                let clean = !self.faults_armed();
                let now = self.now();
                let report = self
                    .run(expire::sweep(
                        &self.ctx,
                        now,
                        Deadline::after(Duration::from_secs(10)),
                    ))
                    .await;
                if clean && !self.faulted.load(Ordering::SeqCst) {
                    let report = report.unwrap();
                    prop_assert!(report.is_ok(), "a clean timer run failed: {report:?}");
                    for k in self.known.lock().unwrap().values_mut() {
                        k.lingering = false;
                        if k.maybe_until.is_some_and(|u| u <= now) {
                            k.maybe_until = None;
                        }
                    }
                }
            }
            Op::Revoke { pick } => {
                let target = {
                    let known = self.known.lock().unwrap();
                    let with_grant: Vec<(Request, GrantId)> = known
                        .iter()
                        .filter_map(|(r, k)| k.grant.map(|g| (r.clone(), g)))
                        .collect();
                    (!with_grant.is_empty()).then(|| with_grant[pick % with_grant.len()].clone())
                };
                if let Some((request, id)) = target {
                    let now = self.now();
                    let result = self
                        .run(expire::revoke_now(
                            &self.ctx,
                            id,
                            Deadline::after(Duration::from_secs(5)),
                        ))
                        .await;
                    let mut known = self.known.lock().unwrap();
                    let k = known.get_mut(&request).unwrap();
                    match result {
                        Some(Ok(_)) => {
                            if let Some(until) = k.live_until.take().or(k.uncertain_until.take()) {
                                k.revoked_early = Some((now, until));
                            }
                            k.maybe_until = None;
                        }
                        // Not revocable (pending, already revoked): nothing changed. Failed or
                        // killed: it ends, and a timer run finishes it.
                        Some(Err(expire::RevokeError::NotRevocable { .. }))
                        | Some(Err(expire::RevokeError::NotFound(_))) => {}
                        Some(Err(_)) | None => {
                            if let Some(until) = k.live_until.take() {
                                k.uncertain_until = Some(until);
                                k.maybe_until = Some(until);
                            }
                            k.lingering = true;
                        }
                    }
                }
            }
            Op::AdminGrant {
                who,
                target,
                privilege,
            } => self.admin_grant(*who, *target, *privilege).await,
            Op::FailDatabricks {
                count,
                patches_only,
                drop,
            } => {
                self.faulted.store(true, Ordering::SeqCst);
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
                self.faulted.store(true, Ordering::SeqCst);
                self.crash.failing_writes.store(*count, Ordering::SeqCst);
            }
            Op::Crash { at } => {
                self.faulted.store(true, Ordering::SeqCst);
                self.crash.arm(*at);
            }
            Op::Heal => self.heal(),
        }
        Ok(())
    }

    /// An administrator grants a privilege by hand, unless Unity Catalog holds it already or a record of
    /// uc-access names it (the documented race: uc-access cannot tell such a grant from its own).
    async fn admin_grant(&self, who: usize, target: usize, privilege: usize) {
        let (kind, name) = TARGETS[target];
        let principal = WHO[who];
        let privilege = ["SELECT", "MODIFY"][privilege];
        let key = (
            kind.to_owned(),
            name.to_owned(),
            principal.to_owned(),
            privilege.to_owned(),
        );
        // Injected faults would hit the administrator's call too: they grant when Databricks answers.
        if held(&self.standin).contains(&key) || !self.standin.state().pending_faults().is_empty() {
            return;
        }
        let records = self.ctx.ledger.list(&ListFilter::default()).await.unwrap();
        let claimed = records.iter().any(|v| {
            v.record.state != GrantState::Revoked
                && v.record.principal.uc_name().eq_ignore_ascii_case(principal)
                && v.record.plan.iter().chain(v.record.added.iter()).any(|c| {
                    c.securable.full_name() == name
                        && c.securable.securable_type().as_str() == kind
                        && c.privileges.iter().any(|p| p.as_str() == privilege)
                })
        });
        if claimed {
            return;
        }
        let url = format!(
            "{}/api/2.1/unity-catalog/permissions/{kind}/{name}",
            self.standin.base_url().trim_end_matches('/')
        );
        let answer = uc_access::outbound::http_client()
            .patch(url)
            .bearer_auth(demo::ADMIN_TOKEN)
            .json(&json!({"changes": [{"principal": principal, "add": [privilege]}]}))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
        self.by_hand.lock().unwrap().insert(key);
    }

    /// The checks against the world, after every step.
    fn check(&self, seed: &Held) -> Result<(), TestCaseError> {
        let world = held(&self.standin);
        let by_hand = self.by_hand.lock().unwrap().clone();
        let known = self.known.lock().unwrap().clone();
        let now = self.now();

        // Nothing that existed before, or was granted by hand, is ever removed.
        let lost: Vec<_> = seed
            .union(&by_hand)
            .filter(|g| !world.contains(*g))
            .collect();
        prop_assert!(
            lost.is_empty(),
            "privileges uc-access did not add were removed: {lost:?}"
        );

        // Every other privilege is justified by an approval that is live, or whose end or failure a
        // timer run may not yet have cleaned up — by its own securable, privileges and parents.
        let may_hold = |k: &Known| {
            k.live_until.is_some_and(|u| u > now)
                || k.maybe_until.is_some()
                || k.lingering
                || k.live_until.is_some()
        };
        let mut allowed: BTreeSet<(String, String, String, String)> = BTreeSet::new();
        for (r, k) in &known {
            if r.shared || !may_hold(k) {
                continue;
            }
            for (kind, name, p) in justified(r) {
                allowed.insert((kind, name, r.principal(), p));
            }
        }
        for g in world.difference(seed) {
            if by_hand.contains(g) {
                continue;
            }
            prop_assert!(
                allowed.contains(&(g.0.clone(), g.1.clone(), g.2.clone(), g.3.clone())),
                "{} on {} {} for {} is held, but no approval justifies it",
                g.3,
                g.0,
                g.1,
                g.2
            );
        }

        // Every live approval's access works.
        let (select, objects) = sharing_state(&self.standin);
        for (r, k) in &known {
            if k.live_until.is_none_or(|u| u <= now) {
                continue;
            }
            if r.shared {
                prop_assert!(
                    select.contains(&(r.share(), r.principal())),
                    "live shared approval {r:?}: the recipient lacks SELECT on its share"
                );
                prop_assert!(
                    objects.contains(&(r.share(), r.table().to_owned())),
                    "live shared approval {r:?}: the table is not in its share"
                );
                continue;
            }
            for (kind, name, p) in justified(r) {
                prop_assert!(
                    effective(&world, &r.principal(), &kind, &name, &p),
                    "live approval {r:?}: {p} on {kind} {name} is not effective for {}",
                    r.principal()
                );
            }
        }

        // A recipient's SELECT on a share is justified by a shared approval of that person and table.
        for (share, recipient) in &select {
            let justified = known.iter().any(|(r, k)| {
                r.shared && &r.share() == share && &r.principal() == recipient && may_hold(k)
            });
            prop_assert!(
                justified,
                "recipient {recipient} holds SELECT on {share} with no approval for it"
            );
        }
        Ok(())
    }

    /// Heal, move past every expiry and backoff, run the timer until it converges: what remains is
    /// exactly what existed before and what was granted by hand.
    async fn converge(&self, seed: &Held) -> Result<(), TestCaseError> {
        self.heal();
        for _ in 0..4 {
            self.skew.fetch_add(3 * 24 * 3600, Ordering::SeqCst);
            let now = self.now();
            expire::sweep(&self.ctx, now, Deadline::after(Duration::from_secs(10)))
                .await
                .unwrap();
        }
        let expected: Held = seed.union(&self.by_hand.lock().unwrap()).cloned().collect();
        prop_assert_eq!(
            &held(&self.standin),
            &expected,
            "after convergence Unity Catalog should hold exactly what existed before and what was granted by hand"
        );
        let (select, _) = sharing_state(&self.standin);
        prop_assert!(select.is_empty(), "shares still grant: {select:?}");
        Ok(())
    }
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

/// The sequences are run by two tests of half of them each (`PROPTEST_CASES` counts both), which the test
/// harness runs on two threads: one sequence is a request-answer ping-pong that keeps about one core busy.
fn config(half: u32) -> ProptestConfig {
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    ProptestConfig {
        cases: if half == 0 {
            cases / 2
        } else {
            cases - cases / 2
        },
        max_shrink_iters: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One random sequence: every step checked against the approvals, then convergence.
fn run_sequence(ops: &[Op]) -> Result<(), TestCaseError> {
    runtime().block_on(async {
        let world = World::start().await;
        let seed = held(&world.standin);
        world.check(&seed)?;
        for op in ops {
            world.step(op).await?;
            world.check(&seed)?;
        }
        world.converge(&seed).await
    })
}

proptest! {
    #![proptest_config(config(0))]

    #[test]
    fn access_is_what_the_approvals_justify_and_nothing_else(ops in prop::collection::vec(op(), 1..30)) {
        run_sequence(&ops)?;
    }
}

proptest! {
    #![proptest_config(config(1))]

    #[test]
    fn access_is_what_the_approvals_justify_and_nothing_else_second_half(ops in prop::collection::vec(op(), 1..30)) {
        run_sequence(&ops)?;
    }
}

/// The harness itself: each kind of approval really grants, a re-delivery after an early revoke really
/// is refused, and a timer run really revokes, so the property above is checked in a world where things
/// happen.
#[test]
fn the_model_harness_grants_refuses_and_revokes_for_real() {
    runtime().block_on(async {
        let world = World::start().await;
        let seed = held(&world.standin);
        let table = Request {
            who: 0,
            target: 5,
            privileges: 2,
            shared: false,
        };
        let schema = Request {
            who: 0,
            target: 2,
            privileges: 0,
            shared: false,
        };
        let shared = Request {
            who: 1,
            target: 3,
            privileges: 0,
            shared: true,
        };
        let group = Request {
            who: 2,
            target: 0,
            privileges: 0,
            shared: false,
        };
        for (r, minutes) in [(&schema, 2), (&table, 600), (&shared, 600), (&group, 30)] {
            world
                .step(&Op::Approve {
                    request: r.clone(),
                    minutes,
                    approval: None,
                })
                .await
                .unwrap();
            world.check(&seed).unwrap();
        }
        let known = world.known.lock().unwrap().clone();
        assert!(known.values().all(|k| k.live_until.is_some()), "{known:?}");
        assert!(
            !world.links.lock().unwrap().is_empty(),
            "the shared approval handed out its link"
        );
        assert!(held(&world.standin).len() > seed.len());

        world.step(&Op::Revoke { pick: 0 }).await.unwrap();
        let revoked = world
            .known
            .lock()
            .unwrap()
            .values()
            .filter(|k| k.revoked_early.is_some())
            .count();
        assert_eq!(revoked, 1);
        for pick in 0..4 {
            world.step(&Op::Redeliver { pick }).await.unwrap();
            world.check(&seed).unwrap();
        }
        world.step(&Op::Advance { minutes: 35 }).await.unwrap();
        world.step(&Op::Timer).await.unwrap();
        world.check(&seed).unwrap();
        world.converge(&seed).await.unwrap();
    });
}
