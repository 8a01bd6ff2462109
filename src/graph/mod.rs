//! Microsoft Graph, read only: who an Entra object id is (a user, a service principal or a group), and
//! which of a list of groups an object belongs to. uc-access uses it to find a requester whose Databricks
//! identity carries no `externalId`, to refuse disabled accounts, and to expand approval assignees that
//! are groups (self-approval).
//!
//! One small hand-written client (as for Databricks): four GET/POST calls do not justify the generated
//! `msgraph` SDKs, and a hand-written one shares the process's HTTP client, honours the caller's
//! deadline and keeps Graph's own error code.

mod client;
mod error;
mod settings;
mod types;

use async_trait::async_trait;

pub use client::{GRAPH_SCOPE, GraphClient, MAX_GROUPS_PER_CHECK, StaticGraphToken};
pub use error::GraphError;
pub use settings::{DEFAULT_GRAPH_ENDPOINT, GraphAuth, GraphSettings};
pub use types::{EntraGroup, EntraObject, EntraServicePrincipal, EntraUser};

use crate::databricks::Deadline;
use crate::domain::EntraObjectId;

/// The Graph calls uc-access makes, behind a narrow trait (tests may fake it; the stand-in serves the
/// same HTTP API).
#[async_trait]
pub trait GraphApi: Send + Sync + std::fmt::Debug {
    /// `GET /users/{id}`; `None` for 404 (no such user).
    async fn user(
        &self,
        id: EntraObjectId,
        deadline: Deadline,
    ) -> Result<Option<EntraUser>, GraphError>;

    /// `GET /servicePrincipals/{id}`; `None` for 404.
    async fn service_principal(
        &self,
        id: EntraObjectId,
        deadline: Deadline,
    ) -> Result<Option<EntraServicePrincipal>, GraphError>;

    /// `GET /groups/{id}`; `None` for 404.
    async fn group(
        &self,
        id: EntraObjectId,
        deadline: Deadline,
    ) -> Result<Option<EntraGroup>, GraphError>;

    /// Of `groups`, those `member` belongs to, directly or through nested groups
    /// (`POST /directoryObjects/{member}/checkMemberGroups`, at most [`MAX_GROUPS_PER_CHECK`] a call).
    /// Empty when Graph knows no object `member`.
    async fn member_groups(
        &self,
        member: EntraObjectId,
        groups: &[EntraObjectId],
        deadline: Deadline,
    ) -> Result<Vec<EntraObjectId>, GraphError>;

    /// The object `id` names: a user, else a service principal, else a group; `None` when it names
    /// none of them.
    async fn object(
        &self,
        id: EntraObjectId,
        deadline: Deadline,
    ) -> Result<Option<EntraObject>, GraphError> {
        if let Some(user) = self.user(id, deadline).await? {
            return Ok(Some(EntraObject::User(user)));
        }
        if let Some(sp) = self.service_principal(id, deadline).await? {
            return Ok(Some(EntraObject::ServicePrincipal(sp)));
        }
        Ok(self.group(id, deadline).await?.map(EntraObject::Group))
    }
}
