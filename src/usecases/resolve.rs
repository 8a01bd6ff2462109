//! Resolve a principal: an Entra object id, a user name, an application id or a group becomes the
//! account-level Databricks principal that Unity Catalog grants name, with its status.
//!
//! Answers are cached for a while (a requester who asks again is not looked up again); misses are not,
//! so a user provisioned a minute ago resolves at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use mini_moka::sync::Cache;
use url::Url;

use crate::databricks::{DatabricksError, Deadline, DirectoryApi, DirectoryEntry};
use crate::domain::{EntraObjectId, Operator, PrincipalKind, PrincipalQuery};

/// Default time an answer stays cached.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no account-level Databricks principal matches {query}")]
    NotFound { query: String },
    #[error(
        "{name:?} is a workspace-local group; Unity Catalog grants need an account group (create it in the account console, or use an Entra group synced to the account)"
    )]
    WorkspaceLocalGroup { name: String },
    #[error(transparent)]
    Databricks(#[from] DatabricksError),
}

/// Looks principals up in the account directory, with a TTL cache.
pub struct Resolver {
    directory: Arc<dyn DirectoryApi>,
    cache: Cache<(PrincipalQuery, Option<String>), DirectoryEntry>,
    /// Use Automatic Identity Management's resolve (which creates missing identities) for object ids.
    resolve_by_external_id: bool,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("cached", &self.cache.entry_count())
            .field("resolve_by_external_id", &self.resolve_by_external_id)
            .finish()
    }
}

/// The most groups the membership check reads (the group and those nested in it).
pub const MAX_GROUPS_CHECKED: usize = 50;

/// What the group self-approval check established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupApproval {
    /// No approver is a member of the group, directly or through nested groups.
    Outside,
    /// This approver is a member.
    Member(EntraObjectId),
    /// Whether an approver is a member could not be established; the caller must refuse.
    Unverifiable(Unverifiable),
}

/// Why the group self-approval check could not establish membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverifiable {
    /// The account SCIM API refused the `externalId` filter: approvers cannot be looked up.
    ExternalIdFilterRefused,
    /// No Databricks identity carries this approver's object id, so they may be a member under an
    /// identity that has none (added by e-mail, Terraform or just in time).
    ApproverNotFound(EntraObjectId),
    /// The group nests more than [`MAX_GROUPS_CHECKED`] groups: the rest was not read.
    TooManyGroups,
}

impl Resolver {
    /// Whether any of `approvers` (Entra object ids) is a member of `group`, directly or through nested
    /// groups. `operator`, when given, says how the approver of a `grant-access` call (its only
    /// approver) signed in.
    ///
    /// Each approver is matched to the one Databricks identity that is theirs: a person (or an approver
    /// of unknown kind) by `externalId`, never created; an application by its application id. An
    /// application the account does not know cannot be a member. Anything short of that, a refused
    /// `externalId` filter, an approver no identity carries the object id of, or nesting beyond
    /// [`MAX_GROUPS_CHECKED`] groups, is [`GroupApproval::Unverifiable`]: membership was not
    /// established, and a pass would be a guess.
    pub async fn approver_in_group(
        &self,
        approvers: &[EntraObjectId],
        operator: Option<Operator>,
        group: &DirectoryEntry,
        deadline: Deadline,
    ) -> Result<GroupApproval, ResolveError> {
        let mut approver_ids = HashMap::new();
        for approver in approvers {
            match self
                .approver_identity(*approver, operator, deadline)
                .await?
            {
                Ok(Some(id)) => {
                    approver_ids.insert(id, *approver);
                }
                Ok(None) => {}
                Err(why) => return Ok(GroupApproval::Unverifiable(why)),
            }
        }
        if approver_ids.is_empty() {
            return Ok(GroupApproval::Outside);
        }
        let mut queue = VecDeque::from([group.id.clone()]);
        let mut seen = HashSet::from([group.id.clone()]);
        let mut beyond_limit = false;
        while let Some(id) = queue.pop_front() {
            for member in self.directory.group_members(&id, deadline).await? {
                if let Some(approver) = approver_ids.get(&member.id) {
                    return Ok(GroupApproval::Member(*approver));
                }
                // A member of unknown kind may be a group: it is read as one (a user or a service
                // principal reads as a group without members).
                let may_nest = matches!(member.kind, Some(PrincipalKind::Group) | None);
                if !may_nest || seen.contains(&member.id) {
                    continue;
                }
                if seen.len() >= MAX_GROUPS_CHECKED {
                    beyond_limit = true;
                    continue;
                }
                seen.insert(member.id.clone());
                queue.push_back(member.id);
            }
        }
        if beyond_limit {
            tracing::warn!(
                group = group.principal.uc_name(),
                limit = MAX_GROUPS_CHECKED,
                "nested groups beyond the limit; group self-approval could not be established"
            );
            return Ok(GroupApproval::Unverifiable(Unverifiable::TooManyGroups));
        }
        Ok(GroupApproval::Outside)
    }

    /// The Databricks id of the approver's own identity: `Ok(None)` when it is proven to have none.
    async fn approver_identity(
        &self,
        approver: EntraObjectId,
        operator: Option<Operator>,
        deadline: Deadline,
    ) -> Result<Result<Option<String>, Unverifiable>, ResolveError> {
        let d = &self.directory;
        let kinds: &[PrincipalKind] = match operator {
            // The application id is what the account knows an application by; no filter in doubt.
            Some(Operator::Application { app_id }) => {
                let found = d.find_service_principal(app_id, deadline).await?;
                return Ok(Ok(found.map(|e| e.id)));
            }
            Some(Operator::Person { .. }) => &[PrincipalKind::User],
            None => &[PrincipalKind::User, PrincipalKind::ServicePrincipal],
        };
        for kind in kinds {
            match d.find_by_external_id(*kind, approver, deadline).await {
                Ok(Some(entry)) => return Ok(Ok(Some(entry.id))),
                Ok(None) => {}
                Err(DatabricksError::InvalidParameter { .. }) => {
                    tracing::warn!(
                        "the account SCIM API refused an externalId filter; group self-approval cannot be established"
                    );
                    return Ok(Err(Unverifiable::ExternalIdFilterRefused));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Err(Unverifiable::ApproverNotFound(approver)))
    }

    pub fn new(
        directory: Arc<dyn DirectoryApi>,
        ttl: Duration,
        resolve_by_external_id: bool,
    ) -> Self {
        Self {
            directory,
            cache: Cache::builder()
                .time_to_live(ttl)
                .max_capacity(10_000)
                .build(),
            resolve_by_external_id,
        }
    }

    /// Resolves `query`; `workspace` is where a group name is checked for being workspace-local.
    pub async fn resolve(
        &self,
        query: &PrincipalQuery,
        workspace: &Url,
        deadline: Deadline,
    ) -> Result<DirectoryEntry, ResolveError> {
        // Only group names depend on the workspace (the workspace-local check).
        let key = (
            query.clone(),
            matches!(query, PrincipalQuery::GroupName { .. }).then(|| workspace.to_string()),
        );
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        let entry = self.lookup(query, workspace, deadline).await?;
        self.cache.insert(key, entry.clone());
        Ok(entry)
    }

    async fn lookup(
        &self,
        query: &PrincipalQuery,
        workspace: &Url,
        deadline: Deadline,
    ) -> Result<DirectoryEntry, ResolveError> {
        let not_found = || ResolveError::NotFound {
            query: query.to_string(),
        };
        let d = &self.directory;
        match query {
            PrincipalQuery::ObjectId {
                id,
                fallback_user_name,
            } => {
                if self.resolve_by_external_id {
                    match d
                        .resolve_by_external_id(PrincipalKind::User, *id, deadline)
                        .await
                    {
                        Ok(entry) => return Ok(found_by(entry, *id)),
                        Err(e) if is_absent(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                // A requester is usually a user, sometimes an application acting for itself.
                for kind in [PrincipalKind::User, PrincipalKind::ServicePrincipal] {
                    match d.find_by_external_id(kind, *id, deadline).await {
                        Ok(Some(entry)) => return Ok(found_by(entry, *id)),
                        Ok(None) => {}
                        // The account API may refuse an externalId filter (unconfirmed): fall back.
                        Err(DatabricksError::InvalidParameter { .. }) => break,
                        Err(e) => return Err(e.into()),
                    }
                }
                // Found by name, the entry is only known by the external id Databricks holds for it
                // (if any), not by the object id asked for.
                match fallback_user_name {
                    Some(name) => d
                        .find_user_by_name(name, deadline)
                        .await?
                        .ok_or_else(not_found),
                    None => Err(not_found()),
                }
            }
            PrincipalQuery::UserName { user_name } => d
                .find_user_by_name(user_name, deadline)
                .await?
                .ok_or_else(not_found),
            PrincipalQuery::ApplicationId { id } => d
                .find_service_principal(*id, deadline)
                .await?
                .ok_or_else(not_found),
            PrincipalQuery::GroupExternalId { id } => d
                .find_by_external_id(PrincipalKind::Group, *id, deadline)
                .await?
                .ok_or_else(not_found),
            PrincipalQuery::GroupName { name } => match d.find_group(name, deadline).await? {
                Some(entry) => Ok(entry),
                None if d
                    .is_workspace_local_group(workspace, name, deadline)
                    .await? =>
                {
                    Err(ResolveError::WorkspaceLocalGroup { name: name.clone() })
                }
                None => Err(not_found()),
            },
        }
    }
}

impl Resolver {
    /// The account identity an Entra object id names, looked up by `externalId` among users, service
    /// principals and groups, without ever creating one. `None`: no match, which does not prove there
    /// is no such identity (`externalId` is not kept everywhere, and the filter may be refused).
    pub async fn identify(
        &self,
        id: EntraObjectId,
        deadline: Deadline,
    ) -> Result<Option<DirectoryEntry>, ResolveError> {
        for kind in [
            PrincipalKind::User,
            PrincipalKind::ServicePrincipal,
            PrincipalKind::Group,
        ] {
            match self.directory.find_by_external_id(kind, id, deadline).await {
                Ok(Some(entry)) => return Ok(Some(entry)),
                Ok(None) => {}
                Err(DatabricksError::InvalidParameter { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }
}

/// An identity found by the Entra object id `id`: that id is established for it even where the answer
/// left `externalId` out, so the self-approval check can compare it with the approvers.
fn found_by(mut entry: DirectoryEntry, id: EntraObjectId) -> DirectoryEntry {
    if entry.external_id.is_none() {
        entry.external_id = Some(id.to_string());
    }
    entry
}

/// Resolve-by-external-id answers "not found" (404, `RESOURCE_DOES_NOT_EXIST`) when Entra has no such
/// identity either; then the account lookups get their turn.
fn is_absent(e: &DatabricksError) -> bool {
    matches!(e, DatabricksError::PrincipalNotFound { .. })
        || e.upstream().is_some_and(|u| u.status == 404)
}
