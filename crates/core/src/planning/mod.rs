//! Pure decisions about Unity Catalog changes: from facts read first to the minimal change, with no I/O.

pub mod grant;
pub mod revoke;
pub mod share;

pub use grant::{GrantPlan, Holdings, PlannedChange, plan_grant};
