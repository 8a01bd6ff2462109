//! The identities the local issuer can mint tokens for, parsed from the `uc-access-dev token <caller>` argument.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use super::{
    LOCAL_CONNECTOR_APP_ID, LOCAL_OPERATOR_OBJECT_ID, LOCAL_PURVIEW_APP_ID, OPERATOR_ROLE,
};

/// Who a locally minted token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalCaller {
    /// `purview`: the local stand-in of Purview's service principal (app-only token).
    Purview,
    /// `operator`: a person with the `UcAccess.Operator` app role, through the local connector (delegated).
    Operator,
    /// `app:<appid>`: any application, with no roles (app-only token).
    App(Uuid),
    /// `user:<oid>[:Role1,Role2]`: any person, with the given app roles (delegated token).
    User { object_id: Uuid, roles: Vec<String> },
}

/// A `LocalCaller` string that does not parse; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown caller {0:?}: expected purview, operator, app:<app id GUID> or user:<object id GUID>[:Role1,Role2]"
)]
pub struct InvalidLocalCaller(pub String);

impl FromStr for LocalCaller {
    type Err = InvalidLocalCaller;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidLocalCaller(s.to_owned());
        let guid = |raw: &str| Uuid::parse_str(raw).map_err(|_| bad());
        match s.split_once(':') {
            None if s == "purview" => Ok(LocalCaller::Purview),
            None if s == "operator" => Ok(LocalCaller::Operator),
            Some(("app", id)) => Ok(LocalCaller::App(guid(id)?)),
            Some(("user", rest)) => {
                let (oid, roles) = rest.split_once(':').unwrap_or((rest, ""));
                let roles = roles
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect();
                Ok(LocalCaller::User {
                    object_id: guid(oid)?,
                    roles,
                })
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for LocalCaller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalCaller::Purview => f.write_str("purview"),
            LocalCaller::Operator => f.write_str("operator"),
            LocalCaller::App(id) => write!(f, "app:{id}"),
            LocalCaller::User { object_id, roles } if roles.is_empty() => {
                write!(f, "user:{object_id}")
            }
            LocalCaller::User { object_id, roles } => {
                write!(f, "user:{object_id}:{}", roles.join(","))
            }
        }
    }
}

/// What goes into the token for a caller.
pub(super) struct Identity {
    pub app_id: Uuid,
    pub object_id: Uuid,
    pub roles: Vec<String>,
    /// Delegated (user) tokens carry a scope and a username; app-only tokens do not.
    pub delegated: bool,
}

impl LocalCaller {
    pub(super) fn identity(&self) -> Identity {
        match self {
            LocalCaller::Purview => Identity {
                app_id: LOCAL_PURVIEW_APP_ID,
                // A service principal's object id differs from its app id; derive a stable one.
                object_id: Uuid::from_u128(LOCAL_PURVIEW_APP_ID.as_u128() ^ 0xff),
                roles: Vec::new(),
                delegated: false,
            },
            LocalCaller::Operator => Identity {
                app_id: LOCAL_CONNECTOR_APP_ID,
                object_id: LOCAL_OPERATOR_OBJECT_ID,
                roles: vec![OPERATOR_ROLE.to_owned()],
                delegated: true,
            },
            LocalCaller::App(app_id) => Identity {
                app_id: *app_id,
                object_id: Uuid::from_u128(app_id.as_u128() ^ 0xff),
                roles: Vec::new(),
                delegated: false,
            },
            LocalCaller::User { object_id, roles } => Identity {
                app_id: LOCAL_CONNECTOR_APP_ID,
                object_id: *object_id,
                roles: roles.clone(),
                delegated: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_forms_parse_and_print_back() {
        for s in [
            "purview",
            "operator",
            "app:0b5e8b4e-1a2b-4c3d-8e9f-001122334455",
            "user:6f1d2c3b-4a59-4687-9a1b-2c3d4e5f6071",
            "user:6f1d2c3b-4a59-4687-9a1b-2c3d4e5f6071:UcAccess.Operator,UcAccess.Admin",
        ] {
            let caller: LocalCaller = s.parse().unwrap();
            assert_eq!(caller.to_string(), s);
        }
        assert_eq!(
            "user:6f1d2c3b-4a59-4687-9a1b-2c3d4e5f6071:A, B".parse::<LocalCaller>(),
            Ok(LocalCaller::User {
                object_id: Uuid::parse_str("6f1d2c3b-4a59-4687-9a1b-2c3d4e5f6071").unwrap(),
                roles: vec!["A".into(), "B".into()],
            })
        );
    }

    #[test]
    fn unknown_presets_and_non_guid_ids_are_rejected() {
        for s in ["", "admin", "app:", "app:purview", "user:bob", "group:x"] {
            assert_eq!(
                s.parse::<LocalCaller>(),
                Err(InvalidLocalCaller(s.into())),
                "{s}"
            );
        }
    }
}
