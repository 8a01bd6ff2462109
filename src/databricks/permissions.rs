//! Unity Catalog permissions on a workspace: direct grants (read and change) and effective privileges.
//!
//! Unknown privilege names in answers do not fail a read: Databricks adds privileges over time, and a
//! grant we cannot name is still a grant someone else made. They are kept as raw strings in
//! `unrecognised`, beside the parsed set, so planning can ignore them and an audit can show them.

use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use url::Url;

use super::auth::DatabricksAuth;
use super::error::DatabricksError;
use super::http::{Call, Transport, decode, json_body};
use super::retry::{Deadline, Idempotency};
use super::uc_paths::UcPath;
use crate::domain::{Principal, Privilege, PrivilegeSet, Securable, TableKind};
use std::sync::Arc;

/// Pages larger than this are not requested; the API rejects 1–149, so smaller requests are raised.
const MIN_PAGE_SIZE: u32 = 150;
/// A runaway pager (a server that keeps sending tokens) stops here.
const MAX_PAGES: usize = 1000;

/// What one principal holds directly on a securable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeAssignment {
    /// The principal as Unity Catalog spells it (user name, group name or application id).
    pub principal: String,
    pub privileges: PrivilegeSet,
    /// Privilege names this version of uc-access does not know, as the API sent them.
    pub unrecognised: Vec<String>,
}

/// One change for one principal in a `PATCH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionsChange {
    pub principal: Principal,
    pub add: PrivilegeSet,
    pub remove: PrivilegeSet,
}

/// One privilege a principal effectively holds, and where it comes from when inherited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectivePrivilege {
    pub privilege: Privilege,
    /// `CATALOG`, `SCHEMA`, ... when inherited; `None` when granted on the securable itself.
    pub inherited_from_type: Option<String>,
    pub inherited_from_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveAssignment {
    pub principal: String,
    pub privileges: Vec<EffectivePrivilege>,
    pub unrecognised: Vec<String>,
}

/// Optional arguments of a permissions read.
#[derive(Debug, Clone, Default)]
pub struct GetPermissionsOptions {
    /// Only this principal's assignments.
    pub principal: Option<Principal>,
    /// Page size; unset lets the server choose (values below 150 are raised to 150).
    pub page_size: Option<u32>,
}

/// The grants operations the use cases need.
#[async_trait]
pub trait GrantsApi: Send + Sync {
    /// Direct assignments on `securable`, all pages.
    async fn get_direct(
        &self,
        workspace: &Url,
        securable: &Securable,
        options: &GetPermissionsOptions,
        deadline: Deadline,
    ) -> Result<Vec<PrivilegeAssignment>, DatabricksError>;

    /// Applies `changes` in one `PATCH`; answers the assignments of the changed principals after the
    /// change (Unity Catalog answers every principal's; the others are skipped unread).
    async fn update(
        &self,
        workspace: &Url,
        securable: &Securable,
        changes: &[PermissionsChange],
        deadline: Deadline,
    ) -> Result<Vec<PrivilegeAssignment>, DatabricksError>;

    /// Effective (direct and inherited) privileges on `securable`.
    async fn effective(
        &self,
        workspace: &Url,
        securable: &Securable,
        principal: Option<&Principal>,
        deadline: Deadline,
    ) -> Result<Vec<EffectiveAssignment>, DatabricksError>;

    /// What the `table` securable `table` really is (`GET /api/2.1/unity-catalog/tables/{full_name}`,
    /// its `table_type`): a table, a view, a materialized view... Asked only when a privilege depends on it.
    async fn table_kind(
        &self,
        workspace: &Url,
        table: &Securable,
        deadline: Deadline,
    ) -> Result<TableKind, DatabricksError>;
}

/// The part of a Tables API answer uc-access reads.
#[derive(Deserialize)]
struct RawTable {
    table_type: Option<String>,
}

/// The Unity Catalog permissions API of any workspace.
#[derive(Debug, Clone)]
pub struct GrantsClient {
    transport: Transport,
    auth: Arc<DatabricksAuth>,
}

#[derive(Deserialize)]
struct RawPage<A> {
    #[serde(default = "Vec::new")]
    privilege_assignments: Vec<A>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct RawAssignment {
    principal: String,
    #[serde(default)]
    privileges: Vec<String>,
}

#[derive(Deserialize)]
struct RawEffectiveAssignment {
    principal: String,
    #[serde(default)]
    privileges: Vec<RawEffectivePrivilege>,
}

#[derive(Deserialize)]
struct RawEffectivePrivilege {
    privilege: String,
    inherited_from_type: Option<String>,
    inherited_from_name: Option<String>,
}

/// A `PATCH` answer, borrowed from its bytes: Unity Catalog lists every principal's assignments on the
/// securable (thousands on a busy catalog) and a caller looks only at those it changed, so the others'
/// privileges are skipped without being copied.
#[derive(Deserialize)]
struct RawUpdated<'a> {
    #[serde(borrow, default = "Vec::new")]
    privilege_assignments: Vec<RawAssignmentRef<'a>>,
}

#[derive(Deserialize)]
struct RawAssignmentRef<'a> {
    #[serde(borrow)]
    principal: Cow<'a, str>,
    #[serde(borrow, default)]
    privileges: Option<&'a RawValue>,
}

/// The principals a `PATCH` changed, to pick theirs out of its answer: sorted by ASCII-lower-cased name
/// (Unity Catalog compares user names without case, [`Principal::matches_uc_name`]), so a sweep's
/// `PATCH` naming thousands is searched, not scanned, for each principal in the answer.
struct Changed<'c> {
    by_name: Vec<(String, &'c Principal)>,
}

impl<'c> Changed<'c> {
    fn new(changes: &'c [PermissionsChange]) -> Self {
        let mut by_name: Vec<(String, &Principal)> = changes
            .iter()
            .map(|c| (c.principal.uc_name().to_ascii_lowercase(), &c.principal))
            .collect();
        by_name.sort_by(|a, b| a.0.cmp(&b.0));
        Self { by_name }
    }

    /// Whether `uc_name` is one of the changed principals; `key` is a reused buffer.
    fn includes(&self, uc_name: &str, key: &mut String) -> bool {
        key.clear();
        key.extend(uc_name.chars().map(|c| c.to_ascii_lowercase()));
        let from = self.by_name.partition_point(|(k, _)| k < key);
        self.by_name[from..]
            .iter()
            .take_while(|(k, _)| k == key)
            .any(|(_, p)| p.matches_uc_name(uc_name))
    }
}

#[derive(Serialize)]
struct RawChanges<'a> {
    changes: Vec<RawChange<'a>>,
}

#[derive(Serialize)]
struct RawChange<'a> {
    principal: &'a str,
    #[serde(skip_serializing_if = "PrivilegeSet::is_empty")]
    add: &'a PrivilegeSet,
    #[serde(skip_serializing_if = "PrivilegeSet::is_empty")]
    remove: &'a PrivilegeSet,
}

fn parse_privileges(raw: Vec<String>) -> (PrivilegeSet, Vec<String>) {
    let mut known = PrivilegeSet::new();
    let mut unknown = Vec::new();
    for name in raw {
        match Privilege::parse(&name) {
            Ok(p) => {
                known.insert(p);
            }
            Err(_) => unknown.push(name),
        }
    }
    (known, unknown)
}

impl From<RawAssignment> for PrivilegeAssignment {
    fn from(raw: RawAssignment) -> Self {
        let (privileges, unrecognised) = parse_privileges(raw.privileges);
        Self {
            principal: raw.principal,
            privileges,
            unrecognised,
        }
    }
}

impl From<RawEffectiveAssignment> for EffectiveAssignment {
    fn from(raw: RawEffectiveAssignment) -> Self {
        let mut privileges = Vec::new();
        let mut unrecognised = Vec::new();
        for p in raw.privileges {
            match Privilege::parse(&p.privilege) {
                Ok(privilege) => privileges.push(EffectivePrivilege {
                    privilege,
                    inherited_from_type: p.inherited_from_type,
                    inherited_from_name: p.inherited_from_name,
                }),
                Err(_) => unrecognised.push(p.privilege),
            }
        }
        Self {
            principal: raw.principal,
            privileges,
            unrecognised,
        }
    }
}

impl GrantsClient {
    pub fn new(transport: Transport, auth: Arc<DatabricksAuth>) -> Self {
        Self { transport, auth }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The direct (`effective: false`) or effective permissions of `securable` on `workspace`.
    fn url(workspace: &Url, effective: bool, securable: &Securable) -> Url {
        let full_name = securable.full_name();
        let (securable_type, full_name) = (securable.securable_type().as_str(), full_name.as_str());
        let path = if effective {
            UcPath::EffectivePermissions {
                securable_type,
                full_name,
            }
        } else {
            UcPath::Permissions {
                securable_type,
                full_name,
            }
        };
        path.url(workspace)
    }

    /// Reads every page of a paged permissions answer.
    async fn all_pages<A: serde::de::DeserializeOwned>(
        &self,
        workspace: &Url,
        base: impl Fn() -> Call,
        deadline: Deadline,
    ) -> Result<Vec<A>, DatabricksError> {
        let tokens = self.auth.workspace(workspace);
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut call = base();
            if let Some(t) = &token {
                call = call.query("page_token", t.clone());
            }
            let page: RawPage<A> = self.transport.json(&*tokens, &call, deadline).await?;
            all.extend(page.privilege_assignments);
            // Pages may be empty yet carry a token: only a missing or empty token ends the listing.
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if Some(&next) == token.as_ref() => {
                    return Err(DatabricksError::Unexpected {
                        request: format!("GET {}", call.url.path()),
                        detail: "the server repeated a page token".into(),
                        upstream: None,
                    });
                }
                Some(next) => token = Some(next),
                None => return Ok(all),
            }
        }
        Err(DatabricksError::Unexpected {
            request: "GET permissions".into(),
            detail: format!("more than {MAX_PAGES} pages"),
            upstream: None,
        })
    }
}

#[async_trait]
impl GrantsApi for GrantsClient {
    #[tracing::instrument(skip_all, fields(securable = %securable))]
    async fn get_direct(
        &self,
        workspace: &Url,
        securable: &Securable,
        options: &GetPermissionsOptions,
        deadline: Deadline,
    ) -> Result<Vec<PrivilegeAssignment>, DatabricksError> {
        let url = Self::url(workspace, false, securable);
        let base = || {
            let mut call = Call::get(url.clone());
            if let Some(p) = &options.principal {
                call = call.query("principal", p.uc_name());
            }
            if let Some(size) = options.page_size {
                call = call.query("max_results", size.max(MIN_PAGE_SIZE).to_string());
            }
            call
        };
        let raw: Vec<RawAssignment> = self
            .all_pages(workspace, base, deadline)
            .await
            .map_err(|e| e.about_securable(securable))?;
        Ok(raw.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(skip_all, fields(securable = %securable, changes = changes.len()))]
    async fn update(
        &self,
        workspace: &Url,
        securable: &Securable,
        changes: &[PermissionsChange],
        deadline: Deadline,
    ) -> Result<Vec<PrivilegeAssignment>, DatabricksError> {
        let body: Vec<RawChange<'_>> = changes
            .iter()
            .map(|c| RawChange {
                principal: c.principal.uc_name(),
                add: &c.add,
                remove: &c.remove,
            })
            .collect();
        let call = Call {
            method: Method::PATCH,
            url: Self::url(workspace, false, securable),
            query: Vec::new(),
            body: Some(json_body(&RawChanges { changes: body })),
            // Additive set semantics make a replayed PATCH converge (see `Idempotency::Idempotent`).
            idempotency: Idempotency::Idempotent,
        };
        let tokens = self.auth.workspace(workspace);
        let answer = self
            .transport
            .body(&*tokens, &call, deadline)
            .await
            .map_err(|e| e.about_securable(securable))?;
        let page: RawUpdated<'_> =
            decode(&call, &answer).map_err(|e| e.about_securable(securable))?;
        let changed = Changed::new(changes);
        let mut key = String::new();
        let mut assignments = Vec::new();
        for raw in page.privilege_assignments {
            if !changed.includes(&raw.principal, &mut key) {
                continue;
            }
            let privileges: Vec<String> = match raw.privileges {
                Some(list) => decode(&call, list.get().as_bytes())
                    .map_err(|e| e.about_securable(securable))?,
                None => Vec::new(),
            };
            assignments.push(PrivilegeAssignment::from(RawAssignment {
                principal: raw.principal.into_owned(),
                privileges,
            }));
        }
        Ok(assignments)
    }

    #[tracing::instrument(skip_all, fields(securable = %securable))]
    async fn effective(
        &self,
        workspace: &Url,
        securable: &Securable,
        principal: Option<&Principal>,
        deadline: Deadline,
    ) -> Result<Vec<EffectiveAssignment>, DatabricksError> {
        let url = Self::url(workspace, true, securable);
        let base = || {
            let call = Call::get(url.clone());
            match principal {
                Some(p) => call.query("principal", p.uc_name()),
                None => call,
            }
        };
        let raw: Vec<RawEffectiveAssignment> = self
            .all_pages(workspace, base, deadline)
            .await
            .map_err(|e| e.about_securable(securable))?;
        Ok(raw.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(skip_all, fields(securable = %table))]
    async fn table_kind(
        &self,
        workspace: &Url,
        table: &Securable,
        deadline: Deadline,
    ) -> Result<TableKind, DatabricksError> {
        let call = Call::get(UcPath::Table(&table.full_name()).url(workspace));
        let tokens = self.auth.workspace(workspace);
        let raw: RawTable = self
            .transport
            .json(&*tokens, &call, deadline)
            .await
            .map_err(|e| e.about_securable(table))?;
        // An answer without a type names no kind uc-access knows: Unity Catalog decides.
        Ok(TableKind::from_table_type(
            raw.table_type.as_deref().unwrap_or_default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_privileges_are_kept_apart_instead_of_failing_the_read() {
        let raw: RawPage<RawAssignment> = serde_json::from_str(
            r#"{"privilege_assignments":[{"principal":"a@x.com","privileges":["SELECT","FUTURE_THING"]}]}"#,
        )
        .unwrap();
        let a: PrivilegeAssignment = raw.privilege_assignments.into_iter().next().unwrap().into();
        assert_eq!(a.privileges, PrivilegeSet::from([Privilege::Select]));
        assert_eq!(a.unrecognised, vec!["FUTURE_THING"]);
    }

    #[test]
    fn an_empty_object_means_no_assignments() {
        let raw: RawPage<RawAssignment> = serde_json::from_str("{}").unwrap();
        assert!(raw.privilege_assignments.is_empty());
        assert!(raw.next_page_token.is_none());
    }
}
