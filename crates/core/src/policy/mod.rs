//! The grant policy: what may be granted, on what, to whom, for how long. Loaded once from a TOML file
//! (`UC_ACCESS_POLICY_FILE`) over safe defaults; decisions are pure functions of the policy, the request
//! and an injected time. The file format and every rule are documented in `docs/policy.md`.

mod decide;
mod file;
mod location;
mod patterns;

#[cfg(test)]
mod decide_tests;
#[cfg(test)]
mod file_tests;

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

pub use decide::{
    Decision, Denial, check_not_self_approved, check_object_id, check_principal, decide,
};
pub use file::{POLICY_FILE, PolicyError};
pub use patterns::{NamePattern, PatternError, Patterns};

use crate::domain::{GrantDuration, Privilege, PrivilegeSet, ProvisioningMode, SecurableType};

/// What may be granted on one securable type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRules {
    /// Every privilege a request may ask for on this type.
    pub privileges: PrivilegeSet,
    /// What a request that names no privileges receives; a non-empty subset of `privileges`.
    pub default_privileges: PrivilegeSet,
    /// Overrides of the policy-wide durations for this type (never above the policy-wide maximum).
    pub default_duration: Option<GrantDuration>,
    pub maximum_duration: Option<GrantDuration>,
}

impl TypeRules {
    /// Only `SELECT`, the least a reader needs.
    fn select_only() -> Self {
        Self {
            privileges: PrivilegeSet::from([Privilege::Select]),
            default_privileges: PrivilegeSet::from([Privilege::Select]),
            default_duration: None,
            maximum_duration: None,
        }
    }
}

/// Which principals may receive grants. Every forbidden name is kept lower case and matched in any case:
/// user names and application ids are case-insensitive in Unity Catalog, and group display names, which
/// are case-sensitive there, are matched in any case too so that a forbidden group's look-alike in
/// another case is forbidden with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRules {
    pub allow_groups: bool,
    pub forbidden_users: BTreeSet<String>,
    pub forbidden_groups: BTreeSet<String>,
    pub forbidden_service_principals: BTreeSet<String>,
    /// Entra object ids (people, groups or applications) that may not receive access on any path.
    pub forbidden_object_ids: BTreeSet<crate::domain::EntraObjectId>,
}

impl Default for PrincipalRules {
    fn default() -> Self {
        Self {
            allow_groups: true,
            forbidden_users: BTreeSet::new(),
            forbidden_groups: BTreeSet::new(),
            forbidden_service_principals: BTreeSet::new(),
            forbidden_object_ids: BTreeSet::new(),
        }
    }
}

/// Which provisioning mode a request gets: the request's own choice where `requestable` lists it, else
/// the rule for its catalog, else the rule for its workspace, else `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningRules {
    pub default: ProvisioningMode,
    /// Modes a request may name in its `provisioning` field.
    pub requestable: BTreeSet<ProvisioningMode>,
    /// Per catalog name (lower case).
    pub catalogs: BTreeMap<String, ProvisioningMode>,
    /// Per configured workspace name.
    pub workspaces: BTreeMap<String, ProvisioningMode>,
}

impl Default for ProvisioningRules {
    fn default() -> Self {
        Self {
            default: ProvisioningMode::Direct,
            requestable: BTreeSet::new(),
            catalogs: BTreeMap::new(),
            workspaces: BTreeMap::new(),
        }
    }
}

impl ProvisioningRules {
    /// Whether any request can end up provisioned through Delta Sharing.
    pub fn may_share(&self) -> bool {
        let sharing = ProvisioningMode::DeltaSharing;
        self.default == sharing
            || self.requestable.contains(&sharing)
            || self.catalogs.values().any(|m| *m == sharing)
            || self.workspaces.values().any(|m| *m == sharing)
    }

    /// The mode policy itself chooses for a securable in a workspace (no request preference).
    pub fn chosen_for(&self, catalog: &str, workspace: &str) -> ProvisioningMode {
        self.catalogs
            .get(&catalog.to_lowercase())
            .or_else(|| self.workspaces.get(workspace))
            .copied()
            .unwrap_or(self.default)
    }
}

/// A validated policy. Only [`Policy::default`] and the loaders build one, so every policy in the
/// process has passed the load-time checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    types: BTreeMap<SecurableType, TypeRules>,
    allow: Patterns,
    deny: Patterns,
    default_duration: GrantDuration,
    maximum_duration: GrantDuration,
    redelivery_window: GrantDuration,
    principals: PrincipalRules,
    allow_requests_for_others: bool,
    block_self_approval: bool,
    provisioning: ProvisioningRules,
}

/// Grant length when a request names none.
pub const DEFAULT_DURATION_DAYS: i64 = 30;
/// Longest grant the default policy allows.
pub const MAXIMUM_DURATION_DAYS: i64 = 90;
/// How long identical deliveries without an approval id count as one approval, by default: longer than
/// an Entra access token lives by default (60 to 90 minutes, Microsoft Learn, "Configurable token
/// lifetimes"), so a body replayed with its token, and every workflow retry, falls inside it.
pub const REDELIVERY_WINDOW_MINUTES: i64 = 120;

impl Default for Policy {
    /// The safe default: tables only, `SELECT` only, 30 days unless asked, 90 at most, no name
    /// patterns, `account users` forbidden, groups allowed, requests for others allowed, self-approval
    /// blocked.
    fn default() -> Self {
        Self {
            types: BTreeMap::from([(SecurableType::Table, TypeRules::select_only())]),
            allow: Patterns::default(),
            deny: Patterns::default(),
            default_duration: GrantDuration::days(DEFAULT_DURATION_DAYS)
                .expect("30 days is within the duration bounds"),
            maximum_duration: GrantDuration::days(MAXIMUM_DURATION_DAYS)
                .expect("90 days is within the duration bounds"),
            redelivery_window: GrantDuration::from_seconds(REDELIVERY_WINDOW_MINUTES * 60)
                .expect("two hours is within the duration bounds"),
            principals: PrincipalRules::default(),
            allow_requests_for_others: true,
            block_self_approval: true,
            provisioning: ProvisioningRules::default(),
        }
    }
}

impl Policy {
    /// The securable types a request may name.
    pub fn allowed_types(&self) -> impl Iterator<Item = SecurableType> + '_ {
        self.types.keys().copied()
    }

    /// The rules for a type, `None` when the type is not allowed.
    pub fn type_rules(&self, kind: SecurableType) -> Option<&TypeRules> {
        self.types.get(&kind)
    }

    /// Privileges a request may ask for on a type (empty when the type is not allowed).
    pub fn privileges_for(&self, kind: SecurableType) -> PrivilegeSet {
        self.types
            .get(&kind)
            .map(|r| r.privileges.clone())
            .unwrap_or_default()
    }

    pub fn allow(&self) -> &Patterns {
        &self.allow
    }

    pub fn deny(&self) -> &Patterns {
        &self.deny
    }

    pub fn principals(&self) -> &PrincipalRules {
        &self.principals
    }

    pub fn allow_requests_for_others(&self) -> bool {
        self.allow_requests_for_others
    }

    pub fn block_self_approval(&self) -> bool {
        self.block_self_approval
    }

    pub fn provisioning(&self) -> &ProvisioningRules {
        &self.provisioning
    }

    /// The duration a request on this type gets when it names none.
    pub fn default_duration_for(&self, kind: SecurableType) -> GrantDuration {
        self.types
            .get(&kind)
            .and_then(|r| r.default_duration)
            .unwrap_or(self.default_duration)
    }

    /// The longest duration a request on this type may ask for.
    pub fn maximum_duration_for(&self, kind: SecurableType) -> GrantDuration {
        self.types
            .get(&kind)
            .and_then(|r| r.maximum_duration)
            .unwrap_or(self.maximum_duration)
    }

    /// The policy-wide maximum, which no per-type maximum exceeds.
    pub fn maximum_duration(&self) -> GrantDuration {
        self.maximum_duration
    }

    pub fn default_duration(&self) -> GrantDuration {
        self.default_duration
    }

    /// How long identical deliveries that carry no approval id count as one approval
    /// (`durations.redelivery`): a duplicate within it changes nothing, and a re-delivery of an approval
    /// that has ended is refused within it.
    pub fn redelivery_window(&self) -> time::Duration {
        self.redelivery_window.as_duration()
    }

    /// The expiry of an active grant approved again: the later of the current expiry and
    /// `now + duration`, where the added length is capped at the policy-wide maximum. It never
    /// shortens a grant: an approval must not silently take access away that another approval gave.
    /// `duration` comes from a [`Decision`], which already respects the type's own maximum.
    pub fn renewal_expiry(
        &self,
        current_expiry: OffsetDateTime,
        duration: GrantDuration,
        now: OffsetDateTime,
    ) -> OffsetDateTime {
        let added = duration
            .as_duration()
            .min(self.maximum_duration.as_duration());
        current_expiry.max(now + added)
    }
}
