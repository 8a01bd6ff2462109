//! The grant policy: what may be granted, on what, to whom, for how long. Loaded once from a TOML file
//! (`UC_ACCESS_POLICY_FILE`) with safe defaults; decisions are pure functions of the policy, the request
//! and an injected time, tested without I/O.

mod decide;
mod file;

use std::collections::{BTreeMap, BTreeSet};

pub use decide::{Decision, Denial, check_not_self_approved, check_principal, decide};
pub use file::POLICY_FILE;

use crate::domain::{GrantDuration, Privilege, PrivilegeSet, Securable, SecurableType};
use globset::GlobSet;
use time::OffsetDateTime;

/// A compiled policy. `Policy::default()` is the safe default: tables only, `SELECT` only, 30 days by
/// default and 90 at most, `account users` forbidden, self-approval blocked.
#[derive(Debug, Clone)]
pub struct Policy {
    pub securable_types: BTreeSet<SecurableType>,
    pub privileges: BTreeMap<SecurableType, PrivilegeSet>,
    /// What a request that names no privileges gets, per type.
    pub default_privileges: BTreeMap<SecurableType, PrivilegeSet>,
    pub allow: Patterns,
    pub deny: Patterns,
    pub default_duration: GrantDuration,
    pub maximum_duration: GrantDuration,
    /// Principal names that may never receive a grant (besides `account users`, always forbidden).
    pub forbidden_principals: Vec<String>,
    pub allow_groups: bool,
    pub allow_requests_for_others: bool,
    pub block_self_approval: bool,
}

/// Glob patterns over full names (`sales.*`, `*.pii_*`), matched case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct Patterns {
    pub sources: Vec<String>,
    set: GlobSet,
}

impl Patterns {
    pub fn new(sources: Vec<String>) -> Result<Self, globset::Error> {
        let mut builder = globset::GlobSetBuilder::new();
        for s in &sources {
            builder.add(
                globset::GlobBuilder::new(&s.to_ascii_lowercase())
                    .case_insensitive(true)
                    .build()?,
            );
        }
        Ok(Self {
            sources,
            set: builder.build()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The first pattern matching the securable or one of its parents.
    pub fn matching(&self, securable: &Securable) -> Option<&str> {
        securable.lineage().iter().find_map(|s| {
            self.set
                .matches(s.full_name())
                .first()
                .map(|i| self.sources[*i].as_str())
        })
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            securable_types: BTreeSet::from([SecurableType::Table]),
            privileges: BTreeMap::from([(
                SecurableType::Table,
                PrivilegeSet::from([Privilege::Select]),
            )]),
            default_privileges: BTreeMap::from([(
                SecurableType::Table,
                PrivilegeSet::from([Privilege::Select]),
            )]),
            allow: Patterns::default(),
            deny: Patterns::default(),
            default_duration: GrantDuration::days(30).expect("30 days is within bounds"),
            maximum_duration: GrantDuration::days(90).expect("90 days is within bounds"),
            forbidden_principals: Vec::new(),
            allow_groups: true,
            allow_requests_for_others: true,
            block_self_approval: true,
        }
    }
}

impl Policy {
    /// The expiry of an active grant approved again: the later of the current expiry and
    /// `now + duration`, never beyond `now + maximum`, never shorter than it was.
    pub fn renewal_expiry(
        &self,
        current: OffsetDateTime,
        duration: GrantDuration,
        now: OffsetDateTime,
    ) -> OffsetDateTime {
        let wanted = now
            + duration
                .as_duration()
                .min(self.maximum_duration.as_duration());
        current.max(wanted)
    }

    /// Privileges allowed on a securable type (empty when the type is not allowed).
    pub fn privileges_for(&self, kind: SecurableType) -> PrivilegeSet {
        self.privileges.get(&kind).cloned().unwrap_or_default()
    }
}
