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
