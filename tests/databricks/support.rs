//! A running stand-in and our clients wired to it, as the local run wires them.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use uc_access::databricks::{
    DatabricksAuth, DatabricksClients, Deadline, RetryPolicy, StaticToken, Transport,
};
use uc_access::domain::{
    AccessRequest, Approval, ApprovalOutcome, EntraObjectId, GrantDuration, PrincipalQuery,
    RequestSource, Securable, SecurableType, WorkspaceRef,
};
use uc_access::ledger::{GrantRecord, GrantState, LedgerStore, ListFilter, LocalLedger};
use uc_access::policy::Policy;
use uc_access::usecases::resolve::Resolver;
use uc_access::usecases::{Clock, Context};
use uc_access_standin::{RunningStandIn, Seed, StandIn, demo};
use url::Url;

pub struct World {
    pub standin: RunningStandIn,
    pub clients: DatabricksClients,
}

impl World {
    pub async fn start(seed: Seed, resolve_by_external_id: bool) -> Self {
        let standin = StandIn::builder()
            .seed(seed)
            .start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let auth = Arc::new(DatabricksAuth::shared(Arc::new(StaticToken::new(
            SecretString::from(demo::PRODUCT_TOKEN),
        ))));
        let retry = RetryPolicy {
            max_attempts: 4,
            ..RetryPolicy::default()
        };
        let transport = Transport::new(
            uc_access::outbound::http_client(),
            retry,
            Duration::from_secs(5),
        );
        let clients = DatabricksClients::new(
            transport,
            auth,
            Url::parse(standin.base_url()).unwrap(),
            demo::ACCOUNT_ID.to_owned(),
            resolve_by_external_id,
        );
        Self { standin, clients }
    }

    /// Microsoft Graph served by this stand-in, with its token.
    pub fn graph(&self) -> Arc<uc_access::graph::GraphClient> {
        Arc::new(uc_access::graph::GraphClient::new(
            uc_access::outbound::http_client(),
            &Url::parse(self.standin.base_url()).unwrap(),
            Arc::new(uc_access::graph::StaticGraphToken::new(SecretString::from(
                demo::GRAPH_TOKEN,
            ))),
        ))
    }

    /// [`World::context`] with a resolver that also uses this stand-in's Graph.
    pub fn context_with_graph(&self, dir: &std::path::Path, policy: Policy) -> Context {
        let mut ctx = self.context(dir, policy);
        ctx.resolver = Resolver::new(
            self.clients.directory.clone(),
            Duration::from_secs(60),
            false,
        )
        .with_graph(self.graph());
        ctx
    }

    /// The recorded requests as `METHOD path?query`, Graph's and Databricks' alike, tokens left out.
    pub fn calls(&self) -> Vec<String> {
        self.standin
            .requests()
            .into_iter()
            .filter(|r| !r.path.starts_with("/oidc/"))
            .map(|r| match &r.query {
                Some(q) => format!(
                    "{} {}?{}",
                    r.method,
                    r.path,
                    percent_encoding::percent_decode_str(&q.replace('+', " ")).decode_utf8_lossy()
                ),
                None => format!("{} {}", r.method, r.path),
            })
            .collect()
    }

    pub fn workspace(&self) -> Url {
        Url::parse(self.standin.base_url()).unwrap()
    }

    /// The use cases wired to this stand-in, a ledger in `dir`, `policy` and the real clock.
    pub fn context(&self, dir: &std::path::Path, policy: Policy) -> Context {
        Context {
            policy,
            resolver: Resolver::new(
                self.clients.directory.clone(),
                Duration::from_secs(60),
                false,
            ),
            grants: self.clients.grants.clone(),
            ledger: Arc::new(LocalLedger::new(dir)),
            clock: Arc::new(time::OffsetDateTime::now_utc),
            sharing: self.sharing(),
        }
    }

    /// Delta Sharing through this stand-in, with the default naming rule.
    pub fn sharing(&self) -> uc_access::usecases::share::Sharing {
        uc_access::usecases::share::Sharing {
            api: self.clients.sharing.clone(),
            naming: Default::default(),
        }
    }

    /// Alice asks for `sales.reporting.orders` for `duration` (ISO 8601), approved by Carol.
    pub fn table_request(&self, duration: &str) -> AccessRequest {
        let alice = EntraObjectId::parse(demo::ALICE_ENTRA_ID).unwrap();
        AccessRequest {
            requester: alice,
            target: None,
            grantee: PrincipalQuery::object_id(alice),
            workspace: WorkspaceRef {
                name: "default".into(),
                host: self.workspace(),
            },
            securable: Securable::parse(SecurableType::Table, "sales.reporting.orders").unwrap(),
            privileges: None,
            duration: Some(GrantDuration::parse(duration).unwrap()),
            approval: Approval {
                id: None,
                outcome: ApprovalOutcome::Approved,
                approvers: vec![EntraObjectId::parse(demo::CAROL_ENTRA_ID).unwrap()],
                operator: None,
            },
            idempotency_key: None,
            dry_run: false,
            source: RequestSource::PurviewCallback,
            provisioning: None,
        }
    }

    /// Alice's privileges on the orders table's lineage, as the stand-in really holds them.
    pub fn alice_holds(&self) -> Vec<(String, Vec<String>)> {
        [
            ("catalog", "sales"),
            ("schema", "sales.reporting"),
            ("table", "sales.reporting.orders"),
        ]
        .iter()
        .filter_map(|(k, n)| {
            self.standin
                .state()
                .grants_on(k, n)
                .get(demo::ALICE)
                .cloned()
                .map(|p| (n.to_string(), p))
        })
        .collect()
    }

    /// Nothing half-applied: every privilege Alice holds is planned or added by a record that is not
    /// revoked (pending, active, failed or revoking), so the timer will finish or remove it.
    pub async fn assert_alice_covered(&self, ledger: &dyn LedgerStore, when: &str) {
        let records = all_records(ledger).await;
        for (securable, privileges) in self.alice_holds() {
            for p in privileges {
                let covered = records.iter().any(|r| {
                    r.state != GrantState::Revoked
                        && r.plan.iter().chain(r.added.iter()).any(|c| {
                            c.securable.full_name() == securable
                                && c.privileges.iter().any(|x| x.as_str() == p)
                        })
                });
                assert!(
                    covered,
                    "{when}: {p} on {securable} has no live record: {records:?}"
                );
            }
        }
    }

    /// Bob's grants, seeded before uc-access ran, are exactly as seeded.
    pub fn assert_bob_untouched(&self) {
        let state = self.standin.state();
        assert_eq!(
            state.grants_on("table", "sales.reporting.orders")[demo::BOB],
            vec!["SELECT"]
        );
        assert_eq!(
            state.grants_on("schema", "sales.reporting")[demo::BOB],
            vec!["USE_SCHEMA"]
        );
        assert_eq!(
            state.grants_on("catalog", "sales")[demo::BOB],
            vec!["USE_CATALOG"]
        );
    }
}

pub fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}

/// The real clock plus `skew` seconds: tests move time forward to make grants due.
pub fn skewed_clock(skew: Arc<AtomicI64>) -> Clock {
    Arc::new(move || {
        time::OffsetDateTime::now_utc() + time::Duration::seconds(skew.load(Ordering::SeqCst))
    })
}

/// Every record in the ledger, in any state.
pub async fn all_records(ledger: &dyn LedgerStore) -> Vec<GrantRecord> {
    ledger
        .list(&ListFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.record)
        .collect()
}

pub use crate::hooks::HookedGrants;

impl World {
    /// A change made by hand by an administrator (Carol, a metastore admin), through the permissions
    /// API as any admin would make it: what uc-access did not do and must never undo.
    pub async fn admin_patch(
        &self,
        kind: &str,
        full_name: &str,
        principal: &str,
        add: &[&str],
        remove: &[&str],
    ) {
        let url = format!(
            "{}/api/2.1/unity-catalog/permissions/{kind}/{full_name}",
            self.standin.base_url().trim_end_matches('/')
        );
        let answer = uc_access::outbound::http_client()
            .patch(url)
            .bearer_auth(demo::ADMIN_TOKEN)
            .json(&serde_json::json!({
                "changes": [{"principal": principal, "add": add, "remove": remove}]
            }))
            .send()
            .await
            .unwrap();
        assert!(
            answer.status().is_success(),
            "admin PATCH: {}",
            answer.status()
        );
    }

    /// What `principal` holds directly on a securable, as the stand-in really holds it.
    pub fn holds(&self, principal: &str, kind: &str, full_name: &str) -> Vec<String> {
        self.standin
            .state()
            .grants_on(kind, full_name)
            .get(principal)
            .cloned()
            .unwrap_or_default()
    }
}
