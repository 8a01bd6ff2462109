//! The stand-in's mutable world: identities, securables, grants, tokens; and the rules that read them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use serde::Serialize;

use super::privileges::SecurableKind;
use super::seed::{EntraIdentity, Seed, SeedGroup, SeedSecurable, SeedServicePrincipal, SeedUser};

/// Privileges per principal on one securable.
pub type Assignments = BTreeMap<String, BTreeSet<String>>;
/// All grants, keyed by (`catalog`|`schema`|`table`, full name).
pub type Grants = BTreeMap<(String, String), Assignments>;

/// The built-in account group every account user belongs to.
pub const ACCOUNT_USERS: &str = "account users";

/// An identity that resolve-by-external-id created in the account (the real API's side effect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedIdentity {
    /// `user`, `group` or `service_principal`.
    pub kind: &'static str,
    pub id: String,
    pub external_id: String,
    /// userName, displayName or applicationId.
    pub name: String,
}

#[derive(Debug)]
pub struct Model {
    pub seed: Seed,
    pub users: Vec<SeedUser>,
    pub groups: Vec<SeedGroup>,
    pub service_principals: Vec<SeedServicePrincipal>,
    pub entra_directory: Vec<EntraIdentity>,
    pub securables: BTreeMap<String, SeedSecurable>,
    pub grants: Grants,
    /// Grants as they were before the last PATCH, served to reads until the instant passes.
    pub lagged: Option<(Instant, Grants)>,
    /// Bearer token → principal name (userName or applicationId).
    pub tokens: HashMap<String, String>,
    /// The tokens the account token endpoint issued (a subset of `tokens`).
    pub account_tokens: HashSet<String>,
    /// Whether workspace APIs accept tokens from the account token endpoint (the real service does,
    /// per Databricks; `false` answers them 401 as an invalid token, to test a workspace that does not).
    pub account_tokens_on_workspaces: bool,
    pub token_issuances: u64,
    pub created: Vec<CreatedIdentity>,
    pub next_id: u64,
    /// Delta Sharing shares and recipients.
    pub sharing: super::sharing::SharingWorld,
    /// The SCIM answers' resources, built once per state of the identities (`scim.rs`).
    pub scim_cache: ScimCache,
}

/// The identities' SCIM JSON per (resource kind, with workspace-local groups), valid while the
/// identities are as they were when it was built. Identities are only ever added (each with a
/// [`Model::new_id`]), never changed in place, so the id counter and the three counts tell a change.
#[derive(Debug, Default)]
pub struct ScimCache {
    pub(crate) built_for: Option<(u64, usize, usize, usize)>,
    pub(crate) resources: HashMap<(&'static str, bool), Vec<serde_json::Value>>,
}

impl Model {
    pub fn from_seed(seed: Seed) -> Self {
        let mut users = seed.users.clone();
        for user in &mut users {
            user.user_name = user.user_name.to_lowercase();
        }
        let securables = seed
            .securables
            .iter()
            .map(|s| (s.full_name.to_lowercase(), s.clone()))
            .collect();
        let mut model = Self {
            users,
            groups: seed.groups.clone(),
            service_principals: seed.service_principals.clone(),
            entra_directory: seed.entra_directory.clone(),
            securables,
            grants: Grants::new(),
            lagged: None,
            tokens: seed.static_tokens.clone().into_iter().collect(),
            account_tokens: HashSet::new(),
            account_tokens_on_workspaces: true,
            token_issuances: 0,
            created: Vec::new(),
            next_id: 9000,
            sharing: super::sharing::SharingWorld::default(),
            scim_cache: ScimCache::default(),
            seed,
        };
        for grant in model.seed.grants.clone() {
            let principal = model
                .canonical_principal(&grant.principal)
                .unwrap_or_else(|| grant.principal.clone());
            model
                .grants
                .entry((grant.securable_type.clone(), grant.full_name.to_lowercase()))
                .or_default()
                .entry(principal)
                .or_default()
                .extend(grant.privileges.iter().cloned());
        }
        model
    }

    /// What the SCIM cache is valid for (see [`ScimCache`]).
    pub fn identities_state(&self) -> (u64, usize, usize, usize) {
        (
            self.next_id,
            self.users.len(),
            self.groups.len(),
            self.service_principals.len(),
        )
    }

    pub fn new_id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    /// The name a grant is stored under, or `None` when no account-level principal has that name:
    /// users by userName (case-insensitive, lower case), account groups by displayName (case-sensitive),
    /// service principals by applicationId.
    pub fn canonical_principal(&self, name: &str) -> Option<String> {
        if name == ACCOUNT_USERS {
            return Some(name.to_string());
        }
        if let Some(user) = self
            .users
            .iter()
            .find(|u| u.user_name.eq_ignore_ascii_case(name))
        {
            return Some(user.user_name.clone());
        }
        if let Some(group) = self
            .groups
            .iter()
            .find(|g| !g.workspace_local && g.display_name == name)
        {
            return Some(group.display_name.clone());
        }
        self.service_principals
            .iter()
            .find(|sp| sp.application_id.eq_ignore_ascii_case(name))
            .map(|sp| sp.application_id.clone())
    }

    fn principal_id(&self, name: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.user_name.eq_ignore_ascii_case(name))
            .map(|u| u.id.as_str())
            .or_else(|| {
                self.service_principals
                    .iter()
                    .find(|sp| sp.application_id.eq_ignore_ascii_case(name))
                    .map(|sp| sp.id.as_str())
            })
    }

    /// The caller's own name plus every account group it belongs to (`account users` included).
    pub fn identities_of(&self, caller: &str) -> Vec<String> {
        let mut names = vec![caller.to_string(), ACCOUNT_USERS.to_string()];
        if let Some(id) = self.principal_id(caller) {
            names.extend(
                self.groups
                    .iter()
                    .filter(|g| !g.workspace_local && g.member_ids.iter().any(|m| m == id))
                    .map(|g| g.display_name.clone()),
            );
        }
        names
    }

    pub fn is_metastore_admin(&self, caller: &str) -> bool {
        let names = self.identities_of(caller);
        self.seed
            .metastore_admins
            .iter()
            .any(|admin| names.iter().any(|n| n.eq_ignore_ascii_case(admin)))
    }

    /// The securable itself followed by its schema and catalog.
    pub fn lineage(&self, full_name: &str) -> Vec<&SeedSecurable> {
        let parts: Vec<&str> = full_name.split('.').collect();
        (1..=parts.len())
            .rev()
            .filter_map(|n| self.securables.get(&parts[..n].join(".")))
            .collect()
    }

    /// Metastore admins, owners of the securable or a parent, and holders of MANAGE on it or a parent may
    /// change its grants.
    pub fn may_manage(&self, caller: &str, full_name: &str) -> bool {
        if self.is_metastore_admin(caller) {
            return true;
        }
        let names = self.identities_of(caller);
        self.lineage(full_name).iter().any(|s| {
            names.iter().any(|n| n.eq_ignore_ascii_case(&s.owner))
                || self
                    .grants
                    .get(&(s.kind.path_type().to_string(), s.full_name.clone()))
                    .is_some_and(|a| {
                        names
                            .iter()
                            .any(|n| a.get(n).is_some_and(|p| p.contains("MANAGE")))
                    })
        })
    }

    /// The grants reads should see: the lagged copy while a lag window is open.
    pub fn visible_grants(&self) -> &Grants {
        match &self.lagged {
            Some((until, before)) if Instant::now() < *until => before,
            _ => &self.grants,
        }
    }

    pub fn securable(&self, path_type: &str, full_name: &str) -> Option<&SeedSecurable> {
        self.securables
            .get(full_name)
            .filter(|s| s.kind.path_type() == path_type)
    }
}

/// The 404 a lookup of a missing securable answers with, naming the first missing level.
pub fn missing_securable(
    model: &Model,
    path_type: &str,
    full_name: &str,
) -> (&'static str, String) {
    let parts: Vec<&str> = full_name.split('.').collect();
    let depth = match path_type {
        "catalog" => 1,
        "schema" => 2,
        _ => 3,
    };
    for n in 1..=depth.min(parts.len()) {
        let name = parts[..n].join(".");
        if !model.securables.contains_key(&name) {
            return match n {
                1 => (
                    "CATALOG_DOES_NOT_EXIST",
                    format!("Catalog '{name}' does not exist."),
                ),
                2 => (
                    "SCHEMA_DOES_NOT_EXIST",
                    format!("Schema '{name}' does not exist."),
                ),
                _ => (
                    "TABLE_DOES_NOT_EXIST",
                    format!("Table '{name}' does not exist."),
                ),
            };
        }
    }
    let kind = match path_type {
        "catalog" => SecurableKind::Catalog,
        "schema" => SecurableKind::Schema,
        _ => SecurableKind::Table,
    };
    let code = match kind {
        SecurableKind::Catalog => "CATALOG_DOES_NOT_EXIST",
        SecurableKind::Schema => "SCHEMA_DOES_NOT_EXIST",
        _ => "TABLE_DOES_NOT_EXIST",
    };
    (
        code,
        format!("{} '{full_name}' does not exist.", kind.word()),
    )
}
