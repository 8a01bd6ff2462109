//! The ways a caller may name the principal to resolve: an Entra object id (a Purview requester), a user
//! name, an application id, a group name or a group's Entra object id.

use std::fmt;

use serde::Serialize;

use super::object_id::{ApplicationId, EntraObjectId};
use super::principal::{Principal, PrincipalError};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase", tag = "by")]
pub enum PrincipalQuery {
    /// An Entra object id of a user or service principal (Purview's `Workflow.Requestor`), with an
    /// optional user name to try when the account cannot be searched by external id.
    ObjectId {
        id: EntraObjectId,
        fallback_user_name: Option<String>,
    },
    /// A user by user name (UPN or email), stored lower case.
    UserName {
        user_name: String,
    },
    ApplicationId {
        id: ApplicationId,
    },
    /// An account group by display name (case-sensitive).
    GroupName {
        name: String,
    },
    GroupExternalId {
        id: EntraObjectId,
    },
}

impl PrincipalQuery {
    pub fn object_id(id: EntraObjectId) -> Self {
        Self::ObjectId {
            id,
            fallback_user_name: None,
        }
    }

    /// A user-name query, checked like a grant principal would be.
    pub fn user_name(raw: &str) -> Result<Self, PrincipalError> {
        Ok(Self::UserName {
            user_name: Principal::user(raw)?.uc_name().to_owned(),
        })
    }

    pub fn group_name(raw: &str) -> Result<Self, PrincipalError> {
        Ok(Self::GroupName {
            name: Principal::group(raw)?.uc_name().to_owned(),
        })
    }
}

impl fmt::Display for PrincipalQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ObjectId { id, .. } => write!(f, "object id {id}"),
            Self::UserName { user_name } => write!(f, "user {user_name}"),
            Self::ApplicationId { id } => write!(f, "application id {id}"),
            Self::GroupName { name } => write!(f, "group {name:?}"),
            Self::GroupExternalId { id } => write!(f, "group with object id {id}"),
        }
    }
}
