//! Resolve a principal: an Entra object id, a user name, an application id or a group becomes the
//! account-level Databricks principal that Unity Catalog grants name, with its status.
//!
//! An Entra object id (a Purview requester) is looked up along the paths the settings choose, in their
//! order ([`ResolvePath`], `UC_ACCESS_RESOLVE_ORDER`): account SCIM by `externalId`; Microsoft Graph (the
//! object's user principal name and mail, or a service principal's application id, then account SCIM by
//! `userName` / `applicationId`); Automatic Identity Management's resolve-by-external-id (which creates
//! the identity when it is missing). A path that finds nothing, or cannot search (a refused `externalId`
//! filter), hands over to the next: no match by `externalId` means "unknown", not "absent".
//!
//! Answers are cached for a while (a requester who asks again is not looked up again); misses are not,
//! so a user provisioned a minute ago resolves at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

mod assignees;

use mini_moka::sync::Cache;
use url::Url;

use crate::databricks::{DatabricksError, Deadline, DirectoryApi, DirectoryEntry};
use crate::domain::{ApplicationId, EntraObjectId, Operator, PrincipalKind, PrincipalQuery};
use crate::graph::{EntraObject, GraphApi, GraphError};

use assignees::AssigneeKind;
pub use assignees::{AssigneeCheck, AssigneeUnverifiable};

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
    /// Entra ID says the account is disabled (`accountEnabled: false`): a leaver, or a blocked account.
    #[error(
        "the Entra ID account of {who} is disabled; a disabled account receives no access (ask an administrator to enable it if this is wrong)"
    )]
    Disabled { who: String },
    #[error(transparent)]
    Databricks(#[from] DatabricksError),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

impl ResolveError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Databricks(e) => e.is_retryable(),
            Self::Graph(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// One way of finding the account identity of an Entra object id, in the order the settings give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResolvePath {
    /// Account SCIM `externalId eq` among users, then service principals. Never creates anything.
    ScimExternalId,
    /// Microsoft Graph: a user's `userPrincipalName` / `mail` (guests: mail first), then account SCIM
    /// `userName eq`; a service principal's `appId`, then `applicationId eq`. Never creates anything.
    Graph,
    /// Automatic Identity Management: creates the identity in the account when Entra has it.
    ResolveByExternalId,
}

impl ResolvePath {
    pub const ALL: [Self; 3] = [Self::ScimExternalId, Self::Graph, Self::ResolveByExternalId];

    /// The name used in `UC_ACCESS_RESOLVE_ORDER`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ScimExternalId => "scim-external-id",
            Self::Graph => "graph",
            Self::ResolveByExternalId => "resolve-by-external-id",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(raw.trim()))
    }

    /// The default order: the searches that create nothing first, creation last.
    pub fn default_order(graph: bool, resolve_by_external_id: bool) -> Vec<Self> {
        Self::ALL
            .into_iter()
            .filter(|p| match p {
                Self::ScimExternalId => true,
                Self::Graph => graph,
                Self::ResolveByExternalId => resolve_by_external_id,
            })
            .collect()
    }
}

/// Looks principals up in the account directory, with a TTL cache.
pub struct Resolver {
    directory: Arc<dyn DirectoryApi>,
    cache: Cache<(PrincipalQuery, Option<String>), DirectoryEntry>,
    /// The paths an object id is looked up along, in order.
    order: Vec<ResolvePath>,
    /// Microsoft Graph, when configured (`UC_ACCESS_RESOLVE_WITH_GRAPH`).
    graph: Option<Arc<dyn GraphApi>>,
    /// What each approval assignee was found to be (users and service principals stay what they are).
    assignee_kinds: Cache<EntraObjectId, AssigneeKind>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("cached", &self.cache.entry_count())
            .field("order", &self.order)
            .field("graph", &self.graph.is_some())
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

    /// A resolver over the account directory, without Graph; resolve-by-external-id (which creates
    /// identities) is the last path when `resolve_by_external_id` is on.
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
            order: ResolvePath::default_order(false, resolve_by_external_id),
            graph: None,
            assignee_kinds: Cache::builder()
                .time_to_live(ttl)
                .max_capacity(10_000)
                .build(),
        }
    }

    /// Uses Microsoft Graph: as a resolution path (inserted before resolve-by-external-id unless an
    /// order is set afterwards), for the state of Entra accounts, and to expand group assignees.
    pub fn with_graph(mut self, graph: Arc<dyn GraphApi>) -> Self {
        if !self.order.contains(&ResolvePath::Graph) {
            let at = self
                .order
                .iter()
                .position(|p| *p == ResolvePath::ResolveByExternalId)
                .unwrap_or(self.order.len());
            self.order.insert(at, ResolvePath::Graph);
        }
        self.graph = Some(graph);
        self
    }

    /// Looks object ids up along `order` (`UC_ACCESS_RESOLVE_ORDER`). A `graph` path without
    /// [`Resolver::with_graph`] is skipped (the settings refuse that combination).
    pub fn with_order(mut self, order: Vec<ResolvePath>) -> Self {
        self.order = order;
        self
    }

    /// Whether Microsoft Graph is configured.
    pub fn has_graph(&self) -> bool {
        self.graph.is_some()
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
                let mut entra = EntraMemo::default();
                for path in &self.order {
                    if let Some(entry) = self.by_path(*path, *id, &mut entra, deadline).await? {
                        self.check_enabled(*id, &mut entra, deadline).await?;
                        return Ok(entry);
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
    /// principals and groups, then (with Graph) by the user's names or the application id, without ever
    /// creating one. `None`: no match, which does not prove there is no such identity (`externalId` is
    /// not kept everywhere, and the filter may be refused). A disabled Entra account is an error.
    pub async fn identify(
        &self,
        id: EntraObjectId,
        deadline: Deadline,
    ) -> Result<Option<DirectoryEntry>, ResolveError> {
        let mut entra = EntraMemo::default();
        for kind in [
            PrincipalKind::User,
            PrincipalKind::ServicePrincipal,
            PrincipalKind::Group,
        ] {
            match self.directory.find_by_external_id(kind, id, deadline).await {
                Ok(Some(entry)) => {
                    self.check_enabled(id, &mut entra, deadline).await?;
                    return Ok(Some(entry));
                }
                Ok(None) => {}
                Err(DatabricksError::InvalidParameter { .. }) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if self.graph.is_none() {
            return Ok(None);
        }
        self.via_graph(id, &mut entra, deadline).await
    }

    /// One path of [`ResolvePath`] for the object id `id`: the identity it finds, or `None` when it
    /// finds none or cannot search.
    async fn by_path(
        &self,
        path: ResolvePath,
        id: EntraObjectId,
        entra: &mut EntraMemo,
        deadline: Deadline,
    ) -> Result<Option<DirectoryEntry>, ResolveError> {
        let d = &self.directory;
        match path {
            ResolvePath::ScimExternalId => {
                // A requester is usually a user, sometimes an application acting for itself.
                for kind in [PrincipalKind::User, PrincipalKind::ServicePrincipal] {
                    match d.find_by_external_id(kind, id, deadline).await {
                        Ok(Some(entry)) => return Ok(Some(found_by(entry, id))),
                        Ok(None) => {}
                        // The account API may refuse an externalId filter (unconfirmed): the next
                        // path gets its turn.
                        Err(DatabricksError::InvalidParameter { .. }) => return Ok(None),
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(None)
            }
            ResolvePath::Graph => self.via_graph(id, entra, deadline).await,
            ResolvePath::ResolveByExternalId => {
                match d
                    .resolve_by_external_id(PrincipalKind::User, id, deadline)
                    .await
                {
                    Ok(entry) => Ok(Some(found_by(entry, id))),
                    Err(e) if is_absent(&e) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Graph's word on `id`, asked once per lookup.
    async fn entra_object(
        &self,
        id: EntraObjectId,
        entra: &mut EntraMemo,
        deadline: Deadline,
    ) -> Result<Option<EntraObject>, ResolveError> {
        let Some(graph) = &self.graph else {
            return Ok(None);
        };
        if entra.0.is_none() {
            entra.0 = Some(graph.object(id, deadline).await?);
        }
        Ok(entra.0.clone().flatten())
    }

    /// With Graph, an identity found by any path is refused when its Entra account is disabled.
    async fn check_enabled(
        &self,
        id: EntraObjectId,
        entra: &mut EntraMemo,
        deadline: Deadline,
    ) -> Result<(), ResolveError> {
        let disabled = match self.entra_object(id, entra, deadline).await? {
            Some(EntraObject::User(u)) => u.is_disabled(),
            Some(EntraObject::ServicePrincipal(sp)) => sp.is_disabled(),
            _ => false,
        };
        if disabled {
            return Err(ResolveError::Disabled {
                who: format!("object id {id}"),
            });
        }
        Ok(())
    }

    /// The account identity of `id` by what Graph says it is: a user by each of their possible user
    /// names (see [`crate::graph::EntraUser::user_name_candidates`]), a service principal by its
    /// application id. The object id is then established for the identity: Graph tied it to that name.
    async fn via_graph(
        &self,
        id: EntraObjectId,
        entra: &mut EntraMemo,
        deadline: Deadline,
    ) -> Result<Option<DirectoryEntry>, ResolveError> {
        let d = &self.directory;
        match self.entra_object(id, entra, deadline).await? {
            Some(EntraObject::User(user)) => {
                if user.is_disabled() {
                    return Err(ResolveError::Disabled {
                        who: format!("object id {id}"),
                    });
                }
                for name in user.user_name_candidates() {
                    if let Some(entry) = d.find_user_by_name(&name, deadline).await? {
                        return Ok(Some(found_by(entry, id)));
                    }
                }
                Ok(None)
            }
            Some(EntraObject::ServicePrincipal(sp)) => {
                if sp.is_disabled() {
                    return Err(ResolveError::Disabled {
                        who: format!("object id {id}"),
                    });
                }
                let Some(app_id) = sp
                    .app_id
                    .as_deref()
                    .and_then(|raw| ApplicationId::parse(raw).ok())
                else {
                    return Ok(None);
                };
                Ok(d.find_service_principal(app_id, deadline)
                    .await?
                    .map(|entry| found_by(entry, id)))
            }
            // A group names no requester; nothing named `id` is found in Entra either.
            Some(EntraObject::Group(_)) | None => Ok(None),
        }
    }
}

/// Graph's answer for one object id, fetched at most once per lookup (`None` until asked).
#[derive(Debug, Default)]
struct EntraMemo(Option<Option<EntraObject>>);

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
