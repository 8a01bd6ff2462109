//! The Microsoft Graph checks: one read per application permission uc-access needs, of an object id no
//! tenant holds. Graph answers 404 when the permission is granted and 403 `Authorization_RequestDenied`
//! when it is not, so each check proves one permission without reading anyone.

use std::time::Duration;

use super::Check;
use crate::databricks::Deadline;
use crate::domain::EntraObjectId;
use crate::graph::{GraphApi, GraphError};

/// The nil GUID: a valid object id that names no object.
const PROBE_ID: &str = "00000000-0000-0000-0000-000000000000";

/// One check per permission, or advice when Graph is off.
pub async fn checks(graph: Option<&dyn GraphApi>, budget: Duration) -> Vec<Check> {
    let Some(graph) = graph else {
        return vec![
            Check::pass("graph", "not configured: object ids are looked up in the Databricks account only").advise(
                "set UC_ACCESS_RESOLVE_WITH_GRAPH=true to find requesters Databricks holds no Entra object id for and to expand group assignees (docs/databricks.md)",
            ),
        ];
    };
    let id = EntraObjectId::parse(PROBE_ID).expect("the nil GUID parses");
    let deadline = || Deadline::after(budget);
    vec![
        verdict(
            "graph.users",
            "User.Read.All",
            graph.user(id, deadline()).await.map(|_| ()),
        ),
        verdict(
            "graph.groups",
            "GroupMember.Read.All",
            graph.group(id, deadline()).await.map(|_| ()),
        ),
        verdict(
            "graph.service_principals",
            "Application.Read.All",
            graph.service_principal(id, deadline()).await.map(|_| ()),
        ),
    ]
}

fn verdict(name: &str, permission: &str, outcome: Result<(), GraphError>) -> Check {
    match outcome {
        Ok(()) => Check::pass(
            name,
            format!("Microsoft Graph answers: {permission} is granted"),
        ),
        Err(e @ GraphError::Refused { .. }) => Check::fail(
            name,
            e.to_string(),
            format!(
                "grant the Function app's managed identity the Microsoft Graph application permission {permission} and give admin consent (docs/deploy.md)"
            ),
        ),
        Err(e) => Check::fail(name, e.to_string(), e.operator_hint()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use secrecy::SecretString;

    use super::*;
    use crate::graph::{GraphClient, StaticGraphToken};
    use uc_access_standin::{Seed, StandIn, demo};

    #[tokio::test]
    async fn each_graph_permission_is_its_own_check_and_a_missing_one_names_the_permission() {
        let mut seed = Seed::demo();
        seed.graph.denied = vec!["groups".into()];
        let standin = StandIn::builder()
            .seed(seed)
            .start("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("stand-in");
        let graph = GraphClient::new(
            crate::outbound::http_client(),
            &url::Url::parse(standin.base_url()).expect("url"),
            Arc::new(StaticGraphToken::new(SecretString::from(demo::GRAPH_TOKEN))),
        );
        let checks = checks(Some(&graph), Duration::from_secs(5)).await;
        let verdicts: Vec<(&str, bool)> = checks.iter().map(|c| (c.name.as_str(), c.ok)).collect();
        assert_eq!(
            verdicts,
            [
                ("graph.users", true),
                ("graph.groups", false),
                ("graph.service_principals", true)
            ]
        );
        assert!(
            checks[1]
                .fix
                .as_deref()
                .unwrap_or_default()
                .contains("GroupMember.Read.All")
        );
    }

    #[tokio::test]
    async fn without_graph_the_doctor_advises_how_to_switch_it_on() {
        let checks = checks(None, Duration::from_secs(1)).await;
        assert_eq!(checks.len(), 1);
        assert!(checks[0].ok);
        assert!(
            checks[0]
                .fix
                .as_deref()
                .unwrap_or_default()
                .contains("UC_ACCESS_RESOLVE_WITH_GRAPH")
        );
    }
}
