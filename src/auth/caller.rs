//! Who called: an application (app-only token), a user (delegated token) or a Basic credential.
//! It never holds the raw token, only the identifiers that later steps and the audit log need.

use uuid::Uuid;

/// An authenticated and allowed caller of one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An application calling with its own identity (client credentials), e.g. Purview's service principal.
    Application(ApplicationCaller),
    /// A person, through a client application with a delegated token, e.g. the Power Automate connector.
    User(UserCaller),
    /// A holder of the function's HTTP Basic credentials (Purview's *Basic* option).
    Basic(BasicCaller),
}

/// An app-only bearer token's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationCaller {
    /// `azp` (v2) or `appid` (v1): the calling application's client id.
    pub app_id: Uuid,
    /// `oid`: the service principal's object id, when present.
    pub object_id: Option<Uuid>,
    /// `roles`: application permissions granted to the caller.
    pub roles: Vec<String>,
    pub allowed_by: AllowedBy,
}

/// A delegated bearer token's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCaller {
    /// The client application the person used.
    pub app_id: Uuid,
    /// `oid`: the person's object id.
    pub object_id: Option<Uuid>,
    /// `upn` or `preferred_username`, for logs meant for people; never an identifier to decide on.
    pub display_name: Option<String>,
    /// `roles`: app roles assigned to the person on our application.
    pub roles: Vec<String>,
    /// `scp`: the delegated scopes, space-separated in the token.
    pub scopes: Vec<String>,
    pub allowed_by: AllowedBy,
}

/// The holder of Basic credentials; the username is configuration, not a secret, and is kept for audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicCaller {
    pub username: String,
}

/// Which allow-list entry let a bearer caller in (for the audit trail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedBy {
    AppId,
    Role(String),
}

impl Caller {
    /// `application`, `user` or `basic`, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Caller::Application(_) => "application",
            Caller::User(_) => "user",
            Caller::Basic(_) => "basic",
        }
    }

    /// The calling application's client id, for bearer callers.
    pub fn app_id(&self) -> Option<Uuid> {
        match self {
            Caller::Application(a) => Some(a.app_id),
            Caller::User(u) => Some(u.app_id),
            Caller::Basic(_) => None,
        }
    }

    /// The caller's Entra object id (service principal or person), when the token carried one.
    pub fn object_id(&self) -> Option<Uuid> {
        match self {
            Caller::Application(a) => a.object_id,
            Caller::User(u) => u.object_id,
            Caller::Basic(_) => None,
        }
    }
}
