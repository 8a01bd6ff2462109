//! Ports that run a hook before every change they forward (a ledger write, a grants `PATCH`, a Delta
//! Sharing change): the tests stop an operation there (a "crash": the hook never finishes and the
//! operation is dropped), make storage refuse writes, or run something else in between. Reads pass
//! straight through. Shared by the test binaries that kill, fail or interleave operations.

#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use uc_access::databricks::{
    DatabricksError, Deadline, EffectiveAssignment, GetPermissionsOptions, GrantsApi, NewRecipient,
    ObjectAction, PermissionsChange, PrivilegeAssignment, RecipientInfo, ShareAssignment,
    ShareInfo, SharingApi,
};
use uc_access::domain::{Principal, Securable, TableKind};
use uc_access::ledger::{
    DueQuery, GrantId, GrantRecord, LedgerError, LedgerStore, ListFilter, Versioned,
};
use uc_access_standin::RunningStandIn;
use url::Url;

/// What runs before each change a hooked port forwards.
pub trait Hook: Send + Sync + fmt::Debug {
    /// Awaited before the change is sent; a future that never finishes stops the operation there.
    fn before_change(&self) -> BoxFuture<'_, ()>;
    /// For ledger writes only: an error to answer instead of writing (storage refusing writes).
    fn refuse_write(&self) -> Option<LedgerError> {
        None
    }
}

/// A ledger whose writes (`create`, `update`) run the hook first.
#[derive(Debug)]
pub struct HookedLedger {
    pub inner: Arc<dyn LedgerStore>,
    pub hook: Arc<dyn Hook>,
}

impl HookedLedger {
    async fn gate(&self) -> Result<(), LedgerError> {
        self.hook.before_change().await;
        self.hook.refuse_write().map_or(Ok(()), Err)
    }
}

#[async_trait]
impl LedgerStore for HookedLedger {
    async fn create(&self, record: GrantRecord) -> Result<Versioned<GrantRecord>, LedgerError> {
        self.gate().await?;
        self.inner.create(record).await
    }
    async fn get(&self, id: GrantId) -> Result<Versioned<GrantRecord>, LedgerError> {
        self.inner.get(id).await
    }
    async fn update(
        &self,
        current: &Versioned<GrantRecord>,
    ) -> Result<Versioned<GrantRecord>, LedgerError> {
        self.gate().await?;
        self.inner.update(current).await
    }
    async fn find_due(&self, query: &DueQuery) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        self.inner.find_due(query).await
    }
    async fn list(&self, filter: &ListFilter) -> Result<Vec<Versioned<GrantRecord>>, LedgerError> {
        self.inner.list(filter).await
    }
    async fn probe(&self) -> Result<String, LedgerError> {
        self.inner.probe().await
    }
}

/// What a [`HookedGrants`] awaits before each `PATCH`, given its changes.
type BeforePatch = Box<dyn Fn(&[PermissionsChange]) -> BoxFuture<'static, ()> + Send + Sync>;

/// A grants client that awaits a hook before every `PATCH` (then sends it): tests stop a grant or a
/// revoke there, or run something else in between.
pub struct HookedGrants {
    inner: Arc<dyn GrantsApi>,
    before_patch: BeforePatch,
}

impl HookedGrants {
    pub fn new(
        inner: Arc<dyn GrantsApi>,
        before_patch: impl Fn(&[PermissionsChange]) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner,
            before_patch: Box::new(before_patch),
        }
    }

    /// Runs `hook` before every `PATCH`, whatever it changes.
    pub fn with_hook(inner: Arc<dyn GrantsApi>, hook: Arc<dyn Hook>) -> Self {
        Self::new(inner, move |_| {
            let hook = hook.clone();
            Box::pin(async move { hook.before_change().await })
        })
    }
}

#[async_trait]
impl GrantsApi for HookedGrants {
    async fn get_direct(
        &self,
        w: &Url,
        s: &Securable,
        o: &GetPermissionsOptions,
        d: Deadline,
    ) -> Result<Vec<PrivilegeAssignment>, DatabricksError> {
        self.inner.get_direct(w, s, o, d).await
    }
    async fn update(
        &self,
        w: &Url,
        s: &Securable,
        c: &[PermissionsChange],
        d: Deadline,
    ) -> Result<Vec<PrivilegeAssignment>, DatabricksError> {
        (self.before_patch)(c).await;
        self.inner.update(w, s, c, d).await
    }
    async fn effective(
        &self,
        w: &Url,
        s: &Securable,
        p: Option<&Principal>,
        d: Deadline,
    ) -> Result<Vec<EffectiveAssignment>, DatabricksError> {
        self.inner.effective(w, s, p, d).await
    }
    async fn table_kind(
        &self,
        w: &Url,
        s: &Securable,
        d: Deadline,
    ) -> Result<TableKind, DatabricksError> {
        self.inner.table_kind(w, s, d).await
    }
}

/// A Delta Sharing client whose changes run the hook first.
pub struct HookedSharing {
    pub inner: Arc<dyn SharingApi>,
    pub hook: Arc<dyn Hook>,
}

#[async_trait]
impl SharingApi for HookedSharing {
    async fn get_share(
        &self,
        w: &Url,
        n: &str,
        d: Deadline,
    ) -> Result<Option<ShareInfo>, DatabricksError> {
        self.inner.get_share(w, n, d).await
    }
    async fn create_share(
        &self,
        w: &Url,
        n: &str,
        c: &str,
        d: Deadline,
    ) -> Result<ShareInfo, DatabricksError> {
        self.hook.before_change().await;
        self.inner.create_share(w, n, c, d).await
    }
    async fn update_table(
        &self,
        w: &Url,
        s: &str,
        a: ObjectAction,
        t: &str,
        d: Deadline,
    ) -> Result<(), DatabricksError> {
        self.hook.before_change().await;
        self.inner.update_table(w, s, a, t, d).await
    }
    async fn share_permissions(
        &self,
        w: &Url,
        s: &str,
        d: Deadline,
    ) -> Result<Vec<ShareAssignment>, DatabricksError> {
        self.inner.share_permissions(w, s, d).await
    }
    async fn set_select(
        &self,
        w: &Url,
        s: &str,
        r: &str,
        g: bool,
        d: Deadline,
    ) -> Result<Vec<ShareAssignment>, DatabricksError> {
        self.hook.before_change().await;
        self.inner.set_select(w, s, r, g, d).await
    }
    async fn get_recipient(
        &self,
        w: &Url,
        n: &str,
        d: Deadline,
    ) -> Result<Option<RecipientInfo>, DatabricksError> {
        self.inner.get_recipient(w, n, d).await
    }
    async fn create_recipient(
        &self,
        w: &Url,
        r: &NewRecipient,
        d: Deadline,
    ) -> Result<RecipientInfo, DatabricksError> {
        self.hook.before_change().await;
        self.inner.create_recipient(w, r, d).await
    }
    async fn set_recipient_expiry(
        &self,
        w: &Url,
        n: &str,
        e: i64,
        d: Deadline,
    ) -> Result<(), DatabricksError> {
        self.hook.before_change().await;
        self.inner.set_recipient_expiry(w, n, e, d).await
    }
    async fn rotate_token(
        &self,
        w: &Url,
        n: &str,
        d: Deadline,
    ) -> Result<RecipientInfo, DatabricksError> {
        self.hook.before_change().await;
        self.inner.rotate_token(w, n, d).await
    }
}

/// (securable type, full name, principal, privilege), as the stand-in holds grants.
pub type Held = BTreeSet<(String, String, String, String)>;

/// Every grant Unity Catalog (the stand-in) holds right now.
pub fn held(standin: &RunningStandIn) -> Held {
    let dump = standin.state().dump();
    let mut out = Held::new();
    for (securable, by_principal) in dump["grants"].as_object().into_iter().flatten() {
        let (kind, name) = securable.split_once('/').expect("kind/name");
        for (principal, privileges) in by_principal.as_object().into_iter().flatten() {
            for p in privileges.as_array().into_iter().flatten() {
                out.insert((
                    kind.to_owned(),
                    name.to_owned(),
                    principal.clone(),
                    p.as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
    }
    out
}
