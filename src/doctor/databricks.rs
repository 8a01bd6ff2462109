//! The doctor's Databricks checks: a token per host, account SCIM, each workspace (and who we are
//! there), and `MANAGE` or ownership on each governed catalog.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Check, no_governed_catalogs};
use crate::databricks::{
    DatabricksClients, DatabricksError, Deadline, GrantsApi, ScimCollection, TokenSource,
};
use crate::domain::{ApplicationId, Principal, Privilege, Securable, WorkspaceRef, Workspaces};
use crate::settings::{GovernedCatalog, GovernedCatalogs, GovernedSource};

/// The failing check for a Databricks error: its message, and its operator hint as the fix.
fn failed(name: String, e: &DatabricksError) -> Check {
    Check::fail(name, e.to_string(), e.operator_hint())
}

async fn token_check(
    name: String,
    host: &str,
    source: &dyn TokenSource,
    budget: Duration,
) -> Check {
    match tokio::time::timeout(budget, source.token()).await {
        Ok(Ok(_)) => Check::pass(name, format!("got a token for {host}")),
        Ok(Err(e)) => failed(name, &e),
        Err(_) => Check::fail(
            name,
            format!("no token for {host} within {budget:?}"),
            "check outbound network access to the token endpoint (Entra ID or the Databricks host)",
        ),
    }
}

/// Who uc-access is in a workspace, as Unity Catalog names principals in grants.
fn principal_of(name: &str) -> Option<Principal> {
    match ApplicationId::parse(name) {
        Ok(app) => Some(Principal::service_principal(app)),
        Err(_) => Principal::user(name).ok(),
    }
}

/// Runs the Databricks checks in order: tokens, account SCIM, workspaces, catalogs.
pub(super) async fn checks(
    clients: &DatabricksClients,
    workspaces: &Workspaces,
    governed: &GovernedCatalogs,
    sharing: bool,
    budget: Duration,
) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(
        token_check(
            "token.account".into(),
            "the account API",
            &*clients.auth.account(),
            budget,
        )
        .await,
    );
    for ws in workspaces.all() {
        // With OAuth M2M a workspace is sent the account-level token (checked above) until it refuses
        // it; the workspace's own token endpoint, which the fallback needs, is checked here.
        let (source, what) = match clients.auth.m2m_workspace(&ws.host) {
            Some(tokens) => (
                tokens.workspace_level(),
                format!("{} (its workspace-level OAuth token)", ws.host),
            ),
            None => (clients.auth.workspace(&ws.host), ws.host.to_string()),
        };
        checks.push(
            token_check(
                format!("token.workspace.{}", ws.name),
                &what,
                &*source,
                budget,
            )
            .await,
        );
    }
    checks.push(
        match clients
            .scim
            .probe(ScimCollection::Users, Deadline::after(budget))
            .await
        {
            Ok(n) => Check::pass(
                "account.scim",
                format!("account SCIM lists users ({n} in the account)"),
            ),
            Err(e) => failed("account.scim".into(), &e),
        },
    );
    if workspaces.all().next().is_none() {
        checks.push(Check::fail(
            "workspaces",
            "no workspace is configured",
            "set DATABRICKS_HOST (and UC_ACCESS_WORKSPACES for more workspaces)",
        ));
    }
    // Who we are in each reachable workspace: the catalog checks ask about that principal.
    let mut me: BTreeMap<String, Principal> = BTreeMap::new();
    for ws in workspaces.all() {
        let name = format!("workspace.{}", ws.name);
        match clients
            .scim
            .workspace_me(&ws.host, Deadline::after(budget))
            .await
        {
            Ok(who) => match who.grant_name().and_then(principal_of) {
                Some(p) => {
                    let token = match clients.auth.m2m_workspace(&ws.host) {
                        Some(t) if t.uses_workspace_token() => {
                            " with its workspace-level token (it refused the account-level one)"
                        }
                        Some(_) => " with the account-level token",
                        None => "",
                    };
                    checks.push(Check::pass(
                        name,
                        format!(
                            "{} is reachable{token}; uc-access acts there as `{}`",
                            ws.host,
                            p.uc_name()
                        ),
                    ));
                    me.insert(ws.name.clone(), p);
                }
                None => checks.push(Check::fail(
                    name,
                    format!(
                        "{} answered /Me without a usable user name or application id",
                        ws.host
                    ),
                    "report this answer: uc-access cannot tell which principal it acts as",
                )),
            },
            Err(e) => checks.push(failed(name, &e)),
        }
    }
    if governed.catalogs.is_empty() {
        checks.push(no_governed_catalogs());
        return checks;
    }
    for catalog in &governed.catalogs {
        checks
            .push(catalog_check(clients, workspaces, governed.source, catalog, &me, budget).await);
        if sharing {
            checks.push(sharing_check(clients, workspaces, catalog, &me, budget).await);
        }
    }
    checks
}

/// Delta Sharing: the share owner (uc-access) must hold `SELECT` on every table it adds to a share.
/// `CREATE_SHARE` and `CREATE_RECIPIENT` on the metastore are not checked here (see docs/delta-sharing.md).
async fn sharing_check(
    clients: &DatabricksClients,
    workspaces: &Workspaces,
    catalog: &GovernedCatalog,
    me: &BTreeMap<String, Principal>,
    budget: Duration,
) -> Check {
    let name = format!(
        "sharing.{}",
        catalog_check_name(catalog).trim_start_matches("catalog.")
    );
    let known = workspaces
        .by_name(catalog.workspace.as_deref())
        .ok()
        .and_then(|ws| me.get(&ws.name).map(|p| (ws, p)));
    let Some((ws, principal)) = known else {
        return Check::fail(
            name,
            "not checked: the workspace or the principal uc-access acts as is unknown",
            "fix the workspace and catalog checks first",
        );
    };
    let held = match held_on_catalog(clients, ws, catalog, principal, budget).await {
        Ok(held) => held,
        Err(e) => return failed(name, &e),
    };
    let holds_select = held
        .iter()
        .any(|p| matches!(p, Privilege::Select | Privilege::AllPrivileges));
    if holds_select {
        Check::pass(
            name,
            format!(
                "uc-access holds SELECT on catalog `{}`, so it can add its tables to shares",
                catalog.catalog
            ),
        )
    } else {
        Check::fail(
            name,
            format!(
                "policy can share tables of catalog `{}` through Delta Sharing, but `{}` does not hold SELECT there; \
                 adding a table to a share will fail",
                catalog.catalog,
                principal.uc_name()
            ),
            format!(
                "GRANT SELECT ON CATALOG `{}` TO `{}` (and, on the metastore, CREATE_SHARE and CREATE_RECIPIENT)",
                catalog.catalog,
                principal.uc_name()
            ),
        )
    }
}

/// The privileges `principal` effectively holds on the catalog under its own name (effective
/// permissions with `?principal=`; what it holds only through a group is not attributed to it).
async fn held_on_catalog(
    clients: &DatabricksClients,
    ws: &WorkspaceRef,
    catalog: &GovernedCatalog,
    principal: &Principal,
    budget: Duration,
) -> Result<Vec<Privilege>, DatabricksError> {
    let securable = Securable::catalog(catalog.catalog.clone());
    let effective = clients
        .grants
        .effective(
            &ws.host,
            &securable,
            Some(principal),
            Deadline::after(budget),
        )
        .await?;
    Ok(effective
        .iter()
        .filter(|a| a.principal.eq_ignore_ascii_case(principal.uc_name()))
        .flat_map(|a| &a.privileges)
        .map(|p| p.privilege)
        .collect())
}

fn catalog_check_name(catalog: &GovernedCatalog) -> String {
    match &catalog.workspace {
        Some(w) => format!("catalog.{w}:{}", catalog.catalog),
        None => format!("catalog.{}", catalog.catalog),
    }
}

/// The fix for a catalog where uc-access holds neither `MANAGE` nor ownership.
pub fn manage_fix(catalog: &str, principal: &str) -> String {
    format!(
        "grant the uc-access service principal MANAGE on catalog `{catalog}`: \
         GRANT MANAGE ON CATALOG `{catalog}` TO `{principal}` (or make it the catalog's owner)"
    )
}

async fn catalog_check(
    clients: &DatabricksClients,
    workspaces: &Workspaces,
    source: GovernedSource,
    catalog: &GovernedCatalog,
    me: &BTreeMap<String, Principal>,
    budget: Duration,
) -> Check {
    let name = catalog_check_name(catalog);
    let from = match source {
        GovernedSource::Setting => "listed in UC_ACCESS_GOVERNED_CATALOGS",
        _ => "named by the policy's allow patterns",
    };
    let ws: &WorkspaceRef = match workspaces.by_name(catalog.workspace.as_deref()) {
        Ok(ws) => ws,
        Err(e) => {
            return Check::fail(
                name,
                e.to_string(),
                "set DATABRICKS_HOST, or name the workspace in UC_ACCESS_GOVERNED_CATALOGS (`workspace:catalog`)",
            );
        }
    };
    let Some(principal) = me.get(&ws.name) else {
        return Check::fail(
            name,
            format!(
                "not checked: workspace {} did not tell who uc-access is",
                ws.name
            ),
            format!("fix the workspace.{} check first", ws.name),
        );
    };
    let info = match clients
        .catalogs
        .get(&ws.host, &catalog.catalog, Deadline::after(budget))
        .await
    {
        Ok(info) => info,
        Err(e) => return failed(name, &e),
    };
    if info
        .owner
        .as_deref()
        .is_some_and(|o| o.eq_ignore_ascii_case(principal.uc_name()))
    {
        return Check::pass(
            name,
            format!("uc-access owns catalog `{}` ({from})", catalog.catalog),
        );
    }
    let held = match held_on_catalog(clients, ws, catalog, principal, budget).await {
        Ok(held) => held,
        Err(e) => return failed(name, &e),
    };
    let holds_manage = held.contains(&Privilege::Manage);
    if holds_manage {
        Check::pass(
            name,
            format!(
                "uc-access holds MANAGE on catalog `{}` ({from})",
                catalog.catalog
            ),
        )
    } else {
        Check::fail(
            name,
            format!(
                "`{}` holds neither MANAGE on nor ownership of catalog `{}` ({from}); grants there will fail \
                 with PERMISSION_DENIED (MANAGE held only through a group is not seen by this check)",
                principal.uc_name(),
                catalog.catalog
            ),
            manage_fix(catalog.catalog.as_str(), principal.uc_name()),
        )
    }
}
