//! Graph settings: whether uc-access uses Microsoft Graph, where it is, and how uc-access gets its
//! token (the Function app's managed identity; a fixed token for the local stand-in only).

use std::fmt;

use secrecy::SecretString;
use url::Url;

use crate::env::{Env, SettingsError};

pub const DEFAULT_GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";
/// The switch: Graph is used only when it is `true`.
pub const RESOLVE_WITH_GRAPH: &str = "UC_ACCESS_RESOLVE_WITH_GRAPH";
pub const GRAPH_ENDPOINT: &str = "GRAPH_ENDPOINT";
pub const GRAPH_TOKEN: &str = "GRAPH_TOKEN";
/// Where the client id of a user-assigned managed identity is read (as the ledger and Key Vault read it).
const CLIENT_ID_KEYS: [&str; 2] = ["ARM_CLIENT_ID", "AZURE_CLIENT_ID"];

/// How uc-access gets its Graph token.
#[derive(Clone)]
pub enum GraphAuth {
    /// The Function app's managed identity; `client_id` picks a user-assigned one.
    ManagedIdentity { client_id: Option<String> },
    /// `GRAPH_TOKEN`: a fixed token, accepted only for a loopback `GRAPH_ENDPOINT` (the stand-in).
    Static { token: SecretString },
}

impl fmt::Debug for GraphAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ManagedIdentity { client_id } => f
                .debug_struct("ManagedIdentity")
                .field("client_id", client_id)
                .finish(),
            Self::Static { .. } => f.debug_struct("Static").finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GraphSettings {
    /// `GRAPH_ENDPOINT`: the Graph root (`https://graph.microsoft.com`; national clouds have their own),
    /// without `/v1.0`.
    pub endpoint: Url,
    pub auth: GraphAuth,
}

impl GraphSettings {
    /// `None` unless `UC_ACCESS_RESOLVE_WITH_GRAPH` is `true`.
    pub fn from_env(env: &Env) -> Result<Option<Self>, SettingsError> {
        if !env.flag(RESOLVE_WITH_GRAPH, false)? {
            return Ok(None);
        }
        let endpoint = crate::databricks::parse_host(
            GRAPH_ENDPOINT,
            env.get(GRAPH_ENDPOINT).unwrap_or(DEFAULT_GRAPH_ENDPOINT),
        )?;
        let loopback = endpoint.scheme() == "http";
        let auth = match env.get(GRAPH_TOKEN) {
            Some(token) if loopback => GraphAuth::Static {
                token: SecretString::from(token.to_owned()),
            },
            Some(_) => {
                return Err(SettingsError::new(
                    GRAPH_TOKEN,
                    "is only for the local stand-in (a GRAPH_ENDPOINT on 127.0.0.1); in Azure uc-access uses its managed identity",
                ));
            }
            None => GraphAuth::ManagedIdentity {
                client_id: env.get_first(&CLIENT_ID_KEYS).map(|(_, v)| v.to_owned()),
            },
        };
        Ok(Some(Self { endpoint, auth }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn graph_is_off_unless_switched_on() {
        assert!(GraphSettings::from_env(&env(&[])).unwrap().is_none());
        assert!(
            GraphSettings::from_env(&env(&[(GRAPH_ENDPOINT, "http://127.0.0.1:1")]))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn graph_defaults_to_the_global_endpoint_and_the_managed_identity() {
        let s = GraphSettings::from_env(&env(&[
            (RESOLVE_WITH_GRAPH, "true"),
            ("AZURE_CLIENT_ID", "abc"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.endpoint.as_str(), "https://graph.microsoft.com/");
        assert!(
            matches!(s.auth, GraphAuth::ManagedIdentity { client_id: Some(ref id) } if id == "abc")
        );
    }

    #[test]
    fn a_fixed_graph_token_is_refused_for_anything_but_loopback() {
        let err =
            GraphSettings::from_env(&env(&[(RESOLVE_WITH_GRAPH, "true"), (GRAPH_TOKEN, "t")]))
                .unwrap_err();
        assert_eq!(err.key, GRAPH_TOKEN);
        let s = GraphSettings::from_env(&env(&[
            (RESOLVE_WITH_GRAPH, "true"),
            (GRAPH_ENDPOINT, "http://127.0.0.1:9"),
            (GRAPH_TOKEN, "t"),
        ]))
        .unwrap()
        .unwrap();
        assert!(matches!(s.auth, GraphAuth::Static { .. }));
    }

    #[test]
    fn a_graph_endpoint_with_a_path_is_refused_naming_the_key() {
        let err = GraphSettings::from_env(&env(&[
            (RESOLVE_WITH_GRAPH, "true"),
            (GRAPH_ENDPOINT, "https://graph.microsoft.com/v1.0"),
        ]))
        .unwrap_err();
        assert_eq!(err.key, GRAPH_ENDPOINT);
    }
}
