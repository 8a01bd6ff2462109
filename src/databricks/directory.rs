//! Finding account-level principals: account SCIM lookups, Automatic Identity Management's resolve, and
//! the workspace-local group check, behind one narrow trait the use cases depend on.

use async_trait::async_trait;
use url::Url;

use super::error::DatabricksError;
use super::identity::{IdentityClient, ResolvedIdentity};
use super::retry::Deadline;
use super::scim::{ScimClient, ScimCollection, ScimResource, eq_filter};
use crate::domain::{ApplicationId, EntraObjectId, Principal, PrincipalKind, PrincipalStatus};

/// An account-level identity, ready to be named in a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub principal: Principal,
    /// The Databricks id (SCIM `id` or identity `internal_id`).
    pub id: String,
    /// The Entra object id, when Databricks has it.
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    /// Groups carry no status and count as active.
    pub status: PrincipalStatus,
}

#[async_trait]
pub trait DirectoryApi: Send + Sync {
    /// Account SCIM `externalId eq`. Whether the account API honours this filter is unconfirmed: a
    /// refusal surfaces as `InvalidParameter`. Only an identity whose `externalId` is this object id is
    /// answered.
    async fn find_by_external_id(
        &self,
        kind: PrincipalKind,
        external_id: EntraObjectId,
        deadline: Deadline,
    ) -> Result<Option<DirectoryEntry>, DatabricksError>;

    async fn find_user_by_name(
        &self,
        user_name: &str,
        deadline: Deadline,
    ) -> Result<Option<DirectoryEntry>, DatabricksError>;

    async fn find_service_principal(
        &self,
        application_id: ApplicationId,
        deadline: Deadline,
    ) -> Result<Option<DirectoryEntry>, DatabricksError>;

    /// An account group by display name (case-sensitive).
    async fn find_group(
        &self,
        display_name: &str,
        deadline: Deadline,
    ) -> Result<Option<DirectoryEntry>, DatabricksError>;

    /// Automatic Identity Management resolve: creates the identity when missing. Fails with
    /// `Disabled` unless `UC_ACCESS_RESOLVE_BY_EXTERNAL_ID` is on.
    async fn resolve_by_external_id(
        &self,
        kind: PrincipalKind,
        external_id: EntraObjectId,
        deadline: Deadline,
    ) -> Result<DirectoryEntry, DatabricksError>;

    /// Whether the workspace knows `display_name` only as a workspace-local group.
    async fn is_workspace_local_group(
        &self,
        workspace: &Url,
        display_name: &str,
        deadline: Deadline,
    ) -> Result<bool, DatabricksError>;

    /// The direct members of the account group with Databricks id `group_id` (empty when the group is
    /// gone).
    async fn group_members(
        &self,
        group_id: &str,
        deadline: Deadline,
    ) -> Result<Vec<GroupMember>, DatabricksError>;
}

/// A direct member of an account group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The member's Databricks id.
    pub id: String,
    /// A user, a service principal or a nested group; `None` when the answer does not say.
    pub kind: Option<PrincipalKind>,
}

/// The account directory over SCIM and the identity API.
#[derive(Debug, Clone)]
pub struct DirectoryClient {
    scim: ScimClient,
    identity: IdentityClient,
    resolve_enabled: bool,
}

fn bad_answer(what: &str, detail: impl std::fmt::Display) -> DatabricksError {
    DatabricksError::Unexpected {
        request: what.to_owned(),
        detail: detail.to_string(),
        upstream: None,
    }
}

fn status_of(active: Option<bool>) -> PrincipalStatus {
    if active.unwrap_or(true) {
        PrincipalStatus::Active
    } else {
        PrincipalStatus::Inactive
    }
}

/// Delta Sharing recipients live in the metastore, not in the account directory: nothing resolves to one.
fn not_in_directory() -> DatabricksError {
    DatabricksError::Unexpected {
        request: "directory lookup".into(),
        detail: "a Delta Sharing recipient is not an account identity".into(),
        upstream: None,
    }
}

fn from_scim(kind: PrincipalKind, r: ScimResource) -> Result<DirectoryEntry, DatabricksError> {
    let missing = |field| bad_answer("SCIM", format!("resource {} has no {field}", r.id));
    let principal = match kind {
        PrincipalKind::User => {
            Principal::user(r.user_name.as_deref().ok_or_else(|| missing("userName"))?)
                .map_err(|e| bad_answer("SCIM", format!("userName {e}")))?
        }
        PrincipalKind::Group => Principal::group(
            r.display_name
                .as_deref()
                .ok_or_else(|| missing("displayName"))?,
        )
        .map_err(|e| bad_answer("SCIM", format!("displayName {e}")))?,
        PrincipalKind::ServicePrincipal => Principal::service_principal(
            ApplicationId::parse(
                r.application_id
                    .as_deref()
                    .ok_or_else(|| missing("applicationId"))?,
            )
            .map_err(|e| bad_answer("SCIM", format!("applicationId {e}")))?,
        ),
        PrincipalKind::Recipient => return Err(not_in_directory()),
    };
    Ok(DirectoryEntry {
        principal,
        status: status_of(r.active),
        id: r.id,
        external_id: r.external_id,
        display_name: r.display_name,
    })
}

fn from_resolved(
    kind: PrincipalKind,
    r: ResolvedIdentity,
) -> Result<DirectoryEntry, DatabricksError> {
    let what = "resolve-by-external-id";
    let principal = match kind {
        PrincipalKind::User => Principal::user(r.username.as_deref().unwrap_or_default())
            .map_err(|e| bad_answer(what, format!("username {e}")))?,
        PrincipalKind::Group => Principal::group(r.group_name.as_deref().unwrap_or_default())
            .map_err(|e| bad_answer(what, format!("group_name {e}")))?,
        PrincipalKind::ServicePrincipal => Principal::service_principal(
            ApplicationId::parse(r.application_id.as_deref().unwrap_or_default())
                .map_err(|e| bad_answer(what, format!("application_id {e}")))?,
        ),
        PrincipalKind::Recipient => return Err(not_in_directory()),
    };
    let active = r
        .status
        .as_deref()
        .map(|s| !s.eq_ignore_ascii_case("INACTIVE"));
    Ok(DirectoryEntry {
        principal,
        id: r.internal_id.unwrap_or_default(),
        external_id: r.external_id,
        display_name: r.display_name.or(r.group_name),
        status: status_of(active),
    })
}

impl DirectoryClient {
    pub fn new(scim: ScimClient, identity: IdentityClient, resolve_enabled: bool) -> Self {
        Self {
            scim,
            identity,
            resolve_enabled,
        }
    }

    async fn first(
        &self,
        kind: PrincipalKind,
        filter: String,
        deadline: Deadline,
    ) -> Result<Option<DirectoryEntry>, DatabricksError> {
        self.first_where(kind, filter, |_| true, deadline).await
    }

    /// The first resource matching `filter` that `keep` accepts.
    async fn first_where(
        &self,
        kind: PrincipalKind,
        filter: String,
        keep: impl Fn(&ScimResource) -> bool + Send,
        deadline: Deadline,
    ) -> Result<Option<DirectoryEntry>, DatabricksError> {
        let collection = match kind {
            PrincipalKind::User => ScimCollection::Users,
            PrincipalKind::Group => ScimCollection::Groups,
            PrincipalKind::ServicePrincipal => ScimCollection::ServicePrincipals,
            PrincipalKind::Recipient => return Err(not_in_directory()),
        };
        let mut found = self.scim.list(collection, &filter, deadline).await?;
        found.retain(|r| keep(r));
        if found.len() > 1 {
            tracing::warn!(
                count = found.len(),
                kind = kind.as_str(),
                "SCIM filter matched several; using the first"
            );
        }
        found
            .into_iter()
            .next()
            .map(|r| from_scim(kind, r))
            .transpose()
    }
}

#[async_trait]
impl DirectoryApi for DirectoryClient {
    #[tracing::instrument(skip_all)]
    async fn find_by_external_id(
        &self,
        kind: PrincipalKind,
        external_id: EntraObjectId,
        deadline: Deadline,
    ) -> Result<Option<DirectoryEntry>, DatabricksError> {
        let wanted = external_id.to_string();
        // Only an identity that carries this object id counts: an API that ignored the filter (it is
        // "reserved for future use" in Databricks' own models) would answer with everyone.
        let carries = |r: &ScimResource| {
            r.external_id
                .as_deref()
                .is_some_and(|id| id.trim().eq_ignore_ascii_case(&wanted))
        };
        self.first_where(kind, eq_filter("externalId", &wanted), carries, deadline)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn find_user_by_name(
        &self,
        user_name: &str,
        deadline: Deadline,
    ) -> Result<Option<DirectoryEntry>, DatabricksError> {
        // User names are case-insensitive in Databricks; only a user with this name counts (an API
        // ignoring the filter would answer with everyone).
        let carries = |r: &ScimResource| {
            r.user_name
                .as_deref()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case(user_name.trim()))
        };
        self.first_where(
            PrincipalKind::User,
            eq_filter("userName", user_name),
            carries,
            deadline,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn find_service_principal(
        &self,
        application_id: ApplicationId,
        deadline: Deadline,
    ) -> Result<Option<DirectoryEntry>, DatabricksError> {
        let filter = eq_filter("applicationId", &application_id.to_string());
        self.first(PrincipalKind::ServicePrincipal, filter, deadline)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn find_group(
        &self,
        display_name: &str,
        deadline: Deadline,
    ) -> Result<Option<DirectoryEntry>, DatabricksError> {
        self.first(
            PrincipalKind::Group,
            eq_filter("displayName", display_name),
            deadline,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn resolve_by_external_id(
        &self,
        kind: PrincipalKind,
        external_id: EntraObjectId,
        deadline: Deadline,
    ) -> Result<DirectoryEntry, DatabricksError> {
        if !self.resolve_enabled {
            return Err(DatabricksError::Disabled {
                feature: "resolve-by-external-id (it creates missing identities)",
                setting: "UC_ACCESS_RESOLVE_BY_EXTERNAL_ID",
            });
        }
        let resolved = self.identity.resolve(kind, external_id, deadline).await?;
        from_resolved(kind, resolved)
    }

    #[tracing::instrument(skip_all)]
    async fn is_workspace_local_group(
        &self,
        workspace: &Url,
        display_name: &str,
        deadline: Deadline,
    ) -> Result<bool, DatabricksError> {
        let groups = self
            .scim
            .workspace_groups(workspace, display_name, deadline)
            .await?;
        // Only an exact name match counts: SCIM `eq` on displayName may ignore case.
        Ok(groups
            .iter()
            .filter(|g| g.display_name.as_deref() == Some(display_name))
            .any(ScimResource::is_workspace_local))
    }

    #[tracing::instrument(skip_all)]
    async fn group_members(
        &self,
        group_id: &str,
        deadline: Deadline,
    ) -> Result<Vec<GroupMember>, DatabricksError> {
        let group = self
            .scim
            .get(ScimCollection::Groups, group_id, deadline)
            .await?;
        Ok(group
            .map(|g| {
                g.members
                    .iter()
                    .map(|m| GroupMember {
                        id: m.value.clone(),
                        kind: m.kind(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}
