//! Self-approval through assignee groups. Purview's `Approval.Assigned To` lists who the approval was
//! assigned to, users **or groups** (Entra object ids). Anyone in an assignee group can approve, so a
//! requester (or the person who receives the access) inside one could approve their own request.
//!
//! With Microsoft Graph each assignee is classified (`GET /groups/{id}`: a group, or not one) and each
//! person's membership in the assignee groups is asked once (`checkMemberGroups`, transitive). Without
//! Graph a group cannot be told from a user by its object id alone; the account directory is asked
//! instead (`externalId` among users, service principals and groups), and an assignee it does not know
//! as any of them fails the check closed: it may be a group uc-access cannot expand.

use super::{GroupApproval, ResolveError, Resolver, Unverifiable};
use crate::databricks::{DatabricksError, Deadline, DirectoryEntry};
use crate::domain::{EntraObjectId, PrincipalKind};
use crate::graph::GraphError;

/// What an approval assignee was found to be.
#[derive(Debug, Clone)]
pub(super) enum AssigneeKind {
    /// A user or a service principal (or, in Graph, nothing at all): it has no members.
    Person,
    /// An Entra group, expanded through Graph.
    EntraGroup,
    /// An account group (found by `externalId`), expanded through account SCIM.
    AccountGroup(DirectoryEntry),
}

/// What the check established about the people of a request and the approval's assignees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeCheck {
    /// Nobody is inside an assignee group.
    Outside,
    /// `member` is inside the assignee group `group`, directly or through nested groups.
    InGroup {
        group: EntraObjectId,
        member: EntraObjectId,
    },
    /// Whether someone is inside an assignee group could not be established; the caller must refuse.
    Unverifiable(AssigneeUnverifiable),
}

/// Why [`AssigneeCheck::Unverifiable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeUnverifiable {
    /// Without Graph: the account knows this assignee neither as a user or service principal nor as a
    /// group, so it may be an Entra group whose members uc-access cannot read.
    UnknownAssignee(EntraObjectId),
    /// Without Graph: the account SCIM API refused the `externalId` filter.
    ExternalIdFilterRefused,
    /// Graph refused to read a group or a membership (a permission the identity lacks).
    GraphRefused,
    /// The members of the account group `group` could not be checked.
    AccountGroup {
        group: EntraObjectId,
        why: Unverifiable,
    },
}

impl Resolver {
    /// Whether any of `people` (the requester, the recipient, the grantee) is inside a group among
    /// `assignees`. Assignees equal to a person are the plain self-approval rule's, checked before.
    pub async fn people_in_assignee_groups(
        &self,
        people: &[EntraObjectId],
        assignees: &[EntraObjectId],
        deadline: Deadline,
    ) -> Result<AssigneeCheck, ResolveError> {
        let mut entra_groups = Vec::new();
        let mut account_groups = Vec::new();
        for assignee in assignees.iter().filter(|a| !people.contains(a)) {
            let kind = match self.assignee_kind(*assignee, deadline).await {
                Ok(Ok(kind)) => kind,
                Ok(Err(why)) => return Ok(AssigneeCheck::Unverifiable(why)),
                Err(ResolveError::Graph(GraphError::Refused { .. })) => {
                    tracing::warn!("Microsoft Graph refused to read an assignee group");
                    return Ok(AssigneeCheck::Unverifiable(
                        AssigneeUnverifiable::GraphRefused,
                    ));
                }
                Err(e) => return Err(e),
            };
            match kind {
                AssigneeKind::Person => {}
                AssigneeKind::EntraGroup => entra_groups.push(*assignee),
                AssigneeKind::AccountGroup(entry) => account_groups.push((*assignee, entry)),
            }
        }
        if let (Some(graph), false) = (&self.graph, entra_groups.is_empty()) {
            for person in people {
                match graph.member_groups(*person, &entra_groups, deadline).await {
                    Ok(inside) => {
                        if let Some(group) = inside.first() {
                            return Ok(AssigneeCheck::InGroup {
                                group: *group,
                                member: *person,
                            });
                        }
                    }
                    Err(GraphError::Refused { .. }) => {
                        tracing::warn!("Microsoft Graph refused checkMemberGroups");
                        return Ok(AssigneeCheck::Unverifiable(
                            AssigneeUnverifiable::GraphRefused,
                        ));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        for (group, entry) in account_groups {
            match self
                .approver_in_group(people, None, &entry, deadline)
                .await?
            {
                GroupApproval::Outside => {}
                GroupApproval::Member(member) => {
                    return Ok(AssigneeCheck::InGroup { group, member });
                }
                GroupApproval::Unverifiable(why) => {
                    return Ok(AssigneeCheck::Unverifiable(
                        AssigneeUnverifiable::AccountGroup { group, why },
                    ));
                }
            }
        }
        Ok(AssigneeCheck::Outside)
    }

    /// What `assignee` is, cached once known; `Ok(Err(_))` when that cannot be established.
    async fn assignee_kind(
        &self,
        assignee: EntraObjectId,
        deadline: Deadline,
    ) -> Result<Result<AssigneeKind, AssigneeUnverifiable>, ResolveError> {
        if let Some(kind) = self.assignee_kinds.get(&assignee) {
            return Ok(Ok(kind));
        }
        let kind = match &self.graph {
            Some(graph) => match graph.group(assignee, deadline).await? {
                Some(_) => AssigneeKind::EntraGroup,
                // A user, a service principal, or no object at all (a deleted owner): no members.
                None => AssigneeKind::Person,
            },
            None => match self.account_kind(assignee, deadline).await? {
                Ok(kind) => kind,
                Err(why) => return Ok(Err(why)),
            },
        };
        self.assignee_kinds.insert(assignee, kind.clone());
        Ok(Ok(kind))
    }

    /// Without Graph: the assignee's kind by the identity that carries its object id in the account.
    async fn account_kind(
        &self,
        assignee: EntraObjectId,
        deadline: Deadline,
    ) -> Result<Result<AssigneeKind, AssigneeUnverifiable>, ResolveError> {
        for kind in [
            PrincipalKind::User,
            PrincipalKind::ServicePrincipal,
            PrincipalKind::Group,
        ] {
            match self
                .directory
                .find_by_external_id(kind, assignee, deadline)
                .await
            {
                Ok(Some(entry)) if kind == PrincipalKind::Group => {
                    return Ok(Ok(AssigneeKind::AccountGroup(entry)));
                }
                Ok(Some(_)) => return Ok(Ok(AssigneeKind::Person)),
                Ok(None) => {}
                Err(DatabricksError::InvalidParameter { .. }) => {
                    return Ok(Err(AssigneeUnverifiable::ExternalIdFilterRefused));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Err(AssigneeUnverifiable::UnknownAssignee(assignee)))
    }
}
