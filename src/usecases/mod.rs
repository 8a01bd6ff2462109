//! Use cases: resolve a principal, provision an approval, expire and reconcile. They gather facts
//! through the adapters' narrow traits, call the pure decisions, and apply the result.

pub mod apply;
pub mod expire;
pub mod provision;
pub mod resolve;
pub mod share;
pub mod unshare;

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::databricks::GrantsApi;
use crate::ledger::LedgerStore;
use crate::policy::Policy;
use resolve::Resolver;

/// The time source: the system clock in production, a controlled one in tests and the demo.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The system clock, in UTC.
pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// What the use cases work with: the policy, the Databricks ports, the ledger, the clock.
pub struct Context {
    pub policy: Policy,
    pub resolver: Resolver,
    pub grants: Arc<dyn GrantsApi>,
    pub ledger: Arc<dyn LedgerStore>,
    pub clock: Clock,
    /// Delta Sharing provisioning (shares, recipients) and its naming rule.
    pub sharing: share::Sharing,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("resolver", &self.resolver)
            .field("ledger", &self.ledger)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub fn now(&self) -> OffsetDateTime {
        (self.clock)().to_offset(time::UtcOffset::UTC)
    }
}
