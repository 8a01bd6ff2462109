//! The shared handle on a stand-in's state: what tests, the admin API and the handlers all hold.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};

use super::faults::{Decision, Fault, FaultKind, Faults};
use super::model::{CreatedIdentity, Model};
use super::recording::RecordedRequest;
use super::seed::Seed;

/// A cheap, cloneable handle on one stand-in's world, its records and its faults.
#[derive(Debug, Clone)]
pub struct StandInState {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    model: Mutex<Model>,
    records: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<Faults>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in one handler must not take the whole fake down with it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StandInState {
    pub fn new(seed: Seed) -> Self {
        Self {
            shared: Arc::new(Shared {
                model: Mutex::new(Model::from_seed(seed)),
                records: Mutex::new(Vec::new()),
                faults: Mutex::new(Faults::default()),
            }),
        }
    }

    pub(crate) fn model(&self) -> MutexGuard<'_, Model> {
        lock(&self.shared.model)
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        lock(&self.shared.records).push(request);
    }

    pub(crate) fn decide(&self, method: &str, path: &str) -> Decision {
        lock(&self.shared.faults).decide(method, path)
    }

    pub(crate) fn read_lag(&self) -> Option<Duration> {
        lock(&self.shared.faults).read_lag()
    }

    /// Every recorded request, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.records).clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.records).clear();
    }

    /// Adds a scripted fault.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// The next `count` requests answer 429 with `Retry-After: retry_after_secs`.
    pub fn fail_next_with_429(&self, count: u32, retry_after_secs: u64) {
        self.inject(Fault::new(
            FaultKind::TooManyRequests { retry_after_secs },
            count,
        ));
    }

    /// Scripted faults not yet used up.
    pub fn pending_faults(&self) -> Vec<Fault> {
        lock(&self.shared.faults).pending()
    }

    /// Every answer waits this long first (`None` to stop).
    pub fn set_delay(&self, delay: Option<Duration>) {
        lock(&self.shared.faults).set_delay(delay);
    }

    /// After a PATCH, permission reads answer the state from before it for this long (`None` to stop).
    pub fn set_read_lag(&self, lag: Option<Duration>) {
        lock(&self.shared.faults).set_read_lag(lag);
        if lag.is_none() {
            self.model().lagged = None;
        }
    }

    /// At most this many requests per second; the excess answers 429 with `Retry-After: 1`.
    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        lock(&self.shared.faults).set_rate_limit(per_second);
    }

    /// Removes every fault, delay, lag and rate limit.
    pub fn clear_faults(&self) {
        *lock(&self.shared.faults) = Faults::default();
        self.model().lagged = None;
    }

    /// The true current privileges per principal on a securable (no lag), privileges sorted.
    pub fn grants_on(
        &self,
        securable_type: &str,
        full_name: &str,
    ) -> BTreeMap<String, Vec<String>> {
        self.model()
            .grants
            .get(&(securable_type.to_string(), full_name.to_lowercase()))
            .map(|a| {
                a.iter()
                    .filter(|(_, p)| !p.is_empty())
                    .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A share's data objects (full names), `None` when there is no such share.
    pub fn share_objects(&self, name: &str) -> Option<Vec<String>> {
        self.model()
            .sharing
            .shares
            .get(&name.to_lowercase())
            .map(|s| s.objects.iter().map(|o| o.name.clone()).collect())
    }

    /// A share's comment and owner, `None` when there is no such share.
    pub fn share_comment_and_owner(&self, name: &str) -> Option<(Option<String>, String)> {
        self.model()
            .sharing
            .shares
            .get(&name.to_lowercase())
            .map(|s| (s.comment.clone(), s.owner.clone()))
    }

    /// Privileges per recipient on a share (empty when none or no such share).
    pub fn share_permissions(&self, name: &str) -> BTreeMap<String, Vec<String>> {
        self.model()
            .sharing
            .shares
            .get(&name.to_lowercase())
            .map(|s| {
                s.permissions
                    .iter()
                    .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A recipient as the API shows it (`None` when there is no such recipient).
    pub fn recipient(&self, name: &str) -> Option<Value> {
        let model = self.model();
        let r = model.sharing.recipients.get(&name.to_lowercase())?;
        Some(super::sharing::recipient_view(r))
    }

    /// How many recipients and shares exist.
    pub fn sharing_counts(&self) -> (usize, usize) {
        let model = self.model();
        (model.sharing.recipients.len(), model.sharing.shares.len())
    }

    /// Whether workspace APIs accept tokens issued by the account token endpoint (`true` at start, as
    /// Databricks says the real service does); `false` answers them 401 `UNAUTHENTICATED`, the answer to
    /// an invalid token. Account APIs accept them either way. `reset` turns it back on.
    pub fn set_account_tokens_on_workspaces(&self, accepted: bool) {
        self.model().account_tokens_on_workspaces = accepted;
    }

    /// How many OAuth tokens the token endpoints issued.
    pub fn token_issuances(&self) -> u64 {
        self.model().token_issuances
    }

    /// Identities resolve-by-external-id created in the account, oldest first.
    pub fn created_identities(&self) -> Vec<CreatedIdentity> {
        self.model().created.clone()
    }

    /// A JSON dump of grants, created identities and token count (also `GET /__standin/state`).
    pub fn dump(&self) -> Value {
        let model = self.model();
        let grants: BTreeMap<String, BTreeMap<String, Vec<String>>> = model
            .grants
            .iter()
            .filter(|(_, a)| a.values().any(|p| !p.is_empty()))
            .map(|((t, n), a)| {
                (
                    format!("{t}/{n}"),
                    a.iter()
                        .filter(|(_, p)| !p.is_empty())
                        .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                        .collect(),
                )
            })
            .collect();
        json!({
            "account_id": model.seed.account_id,
            "workspace_id": model.seed.workspace_id,
            "metastore_id": model.seed.metastore_id,
            "grants": grants,
            "created_identities": model.created,
            "token_issuances": model.token_issuances,
            "shares": model.sharing.shares.values().map(|s| json!({
                "name": s.name,
                "owner": s.owner,
                "comment": s.comment,
                "objects": s.objects.iter().map(|o| o.name.clone()).collect::<Vec<_>>(),
                "permissions": s.permissions,
            })).collect::<Vec<_>>(),
            "recipients": model.sharing.recipients.values().map(|r| json!({
                "name": r.name,
                "owner": r.owner,
                "properties": r.properties,
                "expiration_time": r.expiration_time,
                "activated": r.activated,
            })).collect::<Vec<_>>(),
        })
    }

    /// Back to the seed: grants, identities and tokens reset; records and faults cleared.
    pub fn reset(&self) {
        let seed = self.model().seed.clone();
        *self.model() = Model::from_seed(seed);
        self.clear_requests();
        self.clear_faults();
    }
}
