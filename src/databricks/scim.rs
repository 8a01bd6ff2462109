//! SCIM reads: account users, groups and service principals by filter (all pages), and the workspace
//! SCIM groups endpoint, which alone tells a workspace-local group from an account group.

use std::sync::Arc;

use serde::Deserialize;
use url::Url;

use super::auth::DatabricksAuth;
use super::error::DatabricksError;
use super::http::{Call, Transport, encode_segment};
use super::retry::Deadline;
use crate::domain::PrincipalKind;

/// SCIM pages asked for; Databricks caps them server-side anyway.
const PAGE_SIZE: usize = 100;
const MAX_PAGES: usize = 100;

/// The account SCIM resource collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimCollection {
    Users,
    Groups,
    ServicePrincipals,
}

impl ScimCollection {
    fn path(self) -> &'static str {
        match self {
            Self::Users => "Users",
            Self::Groups => "Groups",
            Self::ServicePrincipals => "ServicePrincipals",
        }
    }
}

/// `attribute eq "value"`, with `\` and `"` escaped so a value cannot end the string and add clauses.
pub fn eq_filter(attribute: &str, value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{attribute} eq \"{escaped}\"")
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ScimMeta {
    #[serde(rename = "resourceType")]
    pub resource_type: Option<String>,
}

/// A SCIM user, group or service principal; fields a collection lacks stay `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScimResource {
    pub id: String,
    pub user_name: Option<String>,
    pub display_name: Option<String>,
    /// Users and service principals; absent on groups.
    pub active: Option<bool>,
    pub external_id: Option<String>,
    pub application_id: Option<String>,
    #[serde(default)]
    pub meta: ScimMeta,
    /// Groups: direct members (users, service principals, groups).
    #[serde(default)]
    pub members: Vec<ScimMember>,
}

/// One member of a SCIM group: its id, and `$ref` (or `type`) saying which collection it is in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ScimMember {
    pub value: String,
    #[serde(rename = "$ref")]
    pub reference: Option<String>,
    /// `User`, `Group` or `ServicePrincipal`, where the API fills it.
    #[serde(rename = "type")]
    pub member_type: Option<String>,
    pub display: Option<String>,
}

impl ScimMember {
    /// Whether the member is itself a group (`$ref` `Groups/<id>`, absolute or relative).
    pub fn is_group(&self) -> bool {
        self.kind() == Some(PrincipalKind::Group)
    }

    /// The member's kind from `$ref` (`Users/<id>`, `Groups/<id>`, `ServicePrincipals/<id>`, absolute
    /// or relative), else from `type`; `None` when the answer says neither.
    pub fn kind(&self) -> Option<PrincipalKind> {
        let from_ref = self.reference.as_deref().and_then(|r| {
            let collection = r.trim_end_matches('/').rsplit('/').nth(1)?;
            kind_named(collection.strip_suffix('s').unwrap_or(collection))
        });
        from_ref.or_else(|| self.member_type.as_deref().and_then(kind_named))
    }
}

fn kind_named(name: &str) -> Option<PrincipalKind> {
    match name {
        n if n.eq_ignore_ascii_case("User") => Some(PrincipalKind::User),
        n if n.eq_ignore_ascii_case("Group") => Some(PrincipalKind::Group),
        n if n.eq_ignore_ascii_case("ServicePrincipal") => Some(PrincipalKind::ServicePrincipal),
        _ => None,
    }
}

impl ScimResource {
    /// The name Unity Catalog grants use for this identity: a service principal's application id, else
    /// the user name (for `/Me` of a service principal, whether `applicationId` is filled is unverified,
    /// so the user name is the fallback), else the display name.
    pub fn grant_name(&self) -> Option<&str> {
        self.application_id
            .as_deref()
            .or(self.user_name.as_deref())
            .or(self.display_name.as_deref())
    }

    /// `WorkspaceGroup`: a group that exists only in one workspace and cannot hold Unity Catalog grants.
    pub fn is_workspace_local(&self) -> bool {
        self.meta.resource_type.as_deref() == Some("WorkspaceGroup")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListResponse {
    #[serde(default)]
    total_results: usize,
    #[serde(default, rename = "Resources")]
    resources: Vec<ScimResource>,
}

/// Account and workspace SCIM.
#[derive(Debug, Clone)]
pub struct ScimClient {
    transport: Transport,
    auth: Arc<DatabricksAuth>,
    account_host: Url,
    account_id: String,
}

impl ScimClient {
    pub fn new(
        transport: Transport,
        auth: Arc<DatabricksAuth>,
        account_host: Url,
        account_id: String,
    ) -> Self {
        Self {
            transport,
            auth,
            account_host,
            account_id,
        }
    }

    /// Every account resource in `collection` matching `filter` (a SCIM filter; build it with
    /// [`eq_filter`]), following `startIndex`/`count` until `totalResults` is reached.
    #[tracing::instrument(skip_all, fields(collection = ?collection))]
    pub async fn list(
        &self,
        collection: ScimCollection,
        filter: &str,
        deadline: Deadline,
    ) -> Result<Vec<ScimResource>, DatabricksError> {
        let mut url = self.account_host.clone();
        url.set_path(&format!(
            "/api/2.0/accounts/{}/scim/v2/{}",
            encode_segment(&self.account_id),
            collection.path()
        ));
        self.pages(&url, filter, self.auth.account(), deadline)
            .await
    }

    /// One account resource by its SCIM id (`GET …/scim/v2/<collection>/<id>`); `None` when it is gone.
    #[tracing::instrument(skip_all, fields(collection = ?collection))]
    pub async fn get(
        &self,
        collection: ScimCollection,
        id: &str,
        deadline: Deadline,
    ) -> Result<Option<ScimResource>, DatabricksError> {
        let mut url = self.account_host.clone();
        url.set_path(&format!(
            "/api/2.0/accounts/{}/scim/v2/{}/{}",
            encode_segment(&self.account_id),
            collection.path(),
            encode_segment(id)
        ));
        match self
            .transport
            .json(&*self.auth.account(), &Call::get(url), deadline)
            .await
        {
            Ok(resource) => Ok(Some(resource)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Groups named `display_name` as the workspace sees them (account groups and workspace-local).
    #[tracing::instrument(skip_all)]
    pub async fn workspace_groups(
        &self,
        workspace: &Url,
        display_name: &str,
        deadline: Deadline,
    ) -> Result<Vec<ScimResource>, DatabricksError> {
        let mut url = workspace.clone();
        url.set_path("/api/2.0/preview/scim/v2/Groups");
        let filter = eq_filter("displayName", display_name);
        self.pages(&url, &filter, self.auth.workspace(workspace), deadline)
            .await
    }

    /// One resource of `collection`, no filter: the cheapest read that proves the account SCIM API
    /// accepts our token and lets us list identities. Answers how many the account holds.
    #[tracing::instrument(skip_all, fields(collection = ?collection))]
    pub async fn probe(
        &self,
        collection: ScimCollection,
        deadline: Deadline,
    ) -> Result<usize, DatabricksError> {
        let mut url = self.account_host.clone();
        url.set_path(&format!(
            "/api/2.0/accounts/{}/scim/v2/{}",
            encode_segment(&self.account_id),
            collection.path()
        ));
        let call = Call::get(url).query("startIndex", "1").query("count", "1");
        let page: ListResponse = self
            .transport
            .json(&*self.auth.account(), &call, deadline)
            .await?;
        Ok(page.total_results.max(page.resources.len()))
    }

    /// Who the workspace says we are (`/api/2.0/preview/scim/v2/Me`): a cheap authenticated read that
    /// proves the workspace is reachable and names the principal uc-access acts as.
    #[tracing::instrument(skip_all)]
    pub async fn workspace_me(
        &self,
        workspace: &Url,
        deadline: Deadline,
    ) -> Result<ScimResource, DatabricksError> {
        let mut url = workspace.clone();
        url.set_path("/api/2.0/preview/scim/v2/Me");
        self.transport
            .json(&*self.auth.workspace(workspace), &Call::get(url), deadline)
            .await
    }

    async fn pages(
        &self,
        url: &Url,
        filter: &str,
        tokens: Arc<dyn super::token::TokenSource>,
        deadline: Deadline,
    ) -> Result<Vec<ScimResource>, DatabricksError> {
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            // SCIM indexes from 1.
            let call = Call::get(url.clone())
                .query("filter", filter)
                .query("startIndex", (all.len() + 1).to_string())
                .query("count", PAGE_SIZE.to_string());
            let page: ListResponse = self.transport.json(&*tokens, &call, deadline).await?;
            let received = page.resources.len();
            all.extend(page.resources);
            if received == 0 || all.len() >= page.total_results {
                return Ok(all);
            }
        }
        Err(DatabricksError::Unexpected {
            request: format!("GET {}", url.path()),
            detail: format!("more than {MAX_PAGES} pages"),
            upstream: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_cannot_break_out_of_their_quotes() {
        assert_eq!(
            eq_filter("displayName", r#"a" or userName sw "x\"#),
            r#"displayName eq "a\" or userName sw \"x\\""#
        );
        assert_eq!(eq_filter("userName", "a@b.com"), r#"userName eq "a@b.com""#);
    }

    #[test]
    fn a_member_kind_comes_from_its_ref_or_else_its_type() {
        let member = |json: &str| serde_json::from_str::<ScimMember>(json).unwrap().kind();
        assert_eq!(
            member(r#"{"value":"1","$ref":"Users/1"}"#),
            Some(PrincipalKind::User)
        );
        assert_eq!(
            member(
                r#"{"value":"2","$ref":"https://a.example/api/2.0/accounts/x/scim/v2/Groups/2"}"#
            ),
            Some(PrincipalKind::Group)
        );
        assert_eq!(
            member(r#"{"value":"3","$ref":"ServicePrincipals/3"}"#),
            Some(PrincipalKind::ServicePrincipal)
        );
        assert_eq!(
            member(r#"{"value":"4","type":"Group"}"#),
            Some(PrincipalKind::Group)
        );
        assert_eq!(member(r#"{"value":"5","display":"someone"}"#), None);
        assert_eq!(member(r#"{"value":"6","$ref":"Things/6"}"#), None);
    }

    #[test]
    fn workspace_local_groups_are_recognised_by_their_resource_type() {
        let g: ScimResource = serde_json::from_str(
            r#"{"id":"1","displayName":"users","meta":{"resourceType":"WorkspaceGroup"}}"#,
        )
        .unwrap();
        assert!(g.is_workspace_local());
        let g: ScimResource = serde_json::from_str(
            r#"{"id":"2","displayName":"eng","meta":{"resourceType":"Group"}}"#,
        )
        .unwrap();
        assert!(!g.is_workspace_local());
    }
}
