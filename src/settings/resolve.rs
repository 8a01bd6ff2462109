//! `UC_ACCESS_RESOLVE_ORDER`: the paths an Entra object id is looked up along, in order.

use crate::settings::{Env, SettingsError};
use crate::usecases::resolve::ResolvePath;

pub const RESOLVE_ORDER: &str = "UC_ACCESS_RESOLVE_ORDER";

/// The order given, or the default: `scim-external-id`, then `graph` when Graph is on, then
/// `resolve-by-external-id` when it is allowed. A path named but not switched on is refused, so a
/// deployment never believes it resolves through Graph, or creates identities, when it does not.
pub fn resolve_order(
    env: &Env,
    graph: bool,
    resolve_by_external_id: bool,
) -> Result<Vec<ResolvePath>, SettingsError> {
    let names = env.list(RESOLVE_ORDER);
    if env.get(RESOLVE_ORDER).is_none() {
        return Ok(ResolvePath::default_order(graph, resolve_by_external_id));
    }
    if names.is_empty() {
        return Err(SettingsError::new(
            RESOLVE_ORDER,
            "names no path; list some of scim-external-id, graph, resolve-by-external-id, or leave it unset",
        ));
    }
    let mut order = Vec::new();
    for name in &names {
        let path = ResolvePath::parse(name).ok_or_else(|| {
            SettingsError::new(
                RESOLVE_ORDER,
                format!("{name:?} is not one of scim-external-id, graph, resolve-by-external-id"),
            )
        })?;
        if order.contains(&path) {
            return Err(SettingsError::new(
                RESOLVE_ORDER,
                format!("names {name} twice"),
            ));
        }
        match path {
            ResolvePath::Graph if !graph => {
                return Err(SettingsError::new(
                    RESOLVE_ORDER,
                    "names graph, but Microsoft Graph is off; set UC_ACCESS_RESOLVE_WITH_GRAPH=true",
                ));
            }
            ResolvePath::ResolveByExternalId if !resolve_by_external_id => {
                return Err(SettingsError::new(
                    RESOLVE_ORDER,
                    "names resolve-by-external-id, which creates identities; allow it with UC_ACCESS_RESOLVE_BY_EXTERNAL_ID=true",
                ));
            }
            _ => {}
        }
        order.push(path);
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResolvePath::*;

    fn order(raw: Option<&str>, graph: bool, aim: bool) -> Result<Vec<ResolvePath>, SettingsError> {
        let env = match raw {
            Some(v) => Env::from_pairs([(RESOLVE_ORDER, v)]),
            None => Env::from_pairs(Vec::<(String, String)>::new()),
        };
        resolve_order(&env, graph, aim)
    }

    #[test]
    fn the_default_order_searches_before_it_creates() {
        assert_eq!(order(None, false, false).unwrap(), [ScimExternalId]);
        assert_eq!(order(None, true, false).unwrap(), [ScimExternalId, Graph]);
        assert_eq!(
            order(None, true, true).unwrap(),
            [ScimExternalId, Graph, ResolveByExternalId]
        );
    }

    #[test]
    fn an_explicit_order_is_kept_as_written() {
        assert_eq!(
            order(Some("graph, scim-external-id"), true, false).unwrap(),
            [Graph, ScimExternalId]
        );
    }

    #[test]
    fn an_order_naming_a_path_that_is_off_unknown_or_twice_is_refused_naming_the_key() {
        for (raw, graph, aim, says) in [
            ("graph", false, false, "UC_ACCESS_RESOLVE_WITH_GRAPH"),
            ("resolve-by-external-id", true, false, "creates identities"),
            ("scim", true, true, "is not one of"),
            ("graph,graph", true, true, "twice"),
            (" , ", true, true, "names no path"),
        ] {
            let err = order(Some(raw), graph, aim).unwrap_err();
            assert_eq!(err.key, RESOLVE_ORDER);
            assert!(err.problem.contains(says), "{raw}: {}", err.problem);
        }
    }
}
