//! Domain types that can only hold valid values: names, securables, privileges, principals, ids,
//! durations. Raw strings stop at the edge; everything past it speaks these types.

mod duration;
mod name;
mod object_id;
mod principal;
mod principal_query;
mod privilege;
mod provisioning;
mod request;
mod securable;
mod workspace;

pub use duration::{DurationError, GrantDuration};
pub use name::{MAX_NAME_LEN, Name, NameError, is_refused_in_names};
pub use object_id::{ApplicationId, EntraObjectId, GuidError};
pub use principal::{ACCOUNT_USERS, Principal, PrincipalError, PrincipalKind, PrincipalStatus};
pub use principal_query::PrincipalQuery;
pub use privilege::{Privilege, PrivilegeError, PrivilegeSet, TableKind};
pub use provisioning::{ProvisioningMode, UnknownMode};
pub use request::{
    AccessRequest, Approval, ApprovalOutcome, MAX_REQUEST_KEY_LEN, Operator, RequestKey,
    RequestKeyError, RequestSource,
};
pub use securable::{FullNameError, Securable, SecurableType};
pub use workspace::{UnknownWorkspace, WorkspaceRef, Workspaces};
