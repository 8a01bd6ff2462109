//! The policy file: its TOML shape, loading and the load-time checks. Every key is optional and falls
//! back to the safe default; unknown keys are errors, so a typo can neither weaken nor silently drop a
//! rule. Errors name the file, the line, the column and the field.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::location::Location;
use super::patterns::{NamePattern, Patterns};
use super::{Policy, PrincipalRules, ProvisioningRules, TypeRules};
use crate::domain::{
    ApplicationId, EntraObjectId, GrantDuration, Principal, Privilege, PrivilegeSet,
    ProvisioningMode, SecurableType,
};
use crate::env::{Env, SettingsError};

/// The setting naming the policy file. Unset: the safe default policy.
pub const POLICY_FILE: &str = "UC_ACCESS_POLICY_FILE";

/// Why a policy could not be loaded: where, and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// The file, when the policy came from one.
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The dotted field (`securables.table.privileges`), when known.
    pub field: Option<String>,
    pub problem: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(file) = &self.file {
            write!(f, "{file}")?;
            sep = ": ";
        }
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{sep}line {line}, column {column}")?;
            sep = ", ";
        }
        if let Some(field) = &self.field {
            write!(f, "{sep}field {field}")?;
            sep = ": ";
        } else if !sep.is_empty() {
            sep = ": ";
        }
        write!(f, "{sep}{}", self.problem)
    }
}

impl PolicyError {
    fn at(source: &str, span: &std::ops::Range<usize>, field: &str, problem: String) -> Self {
        let location = Location::of(source, span);
        Self {
            file: None,
            line: Some(location.line),
            column: Some(location.column),
            field: Some(field.to_owned()),
            problem,
        }
    }

    fn from_toml(source: &str, error: &toml::de::Error) -> Self {
        let location = error.span().map(|span| Location::of(source, &span));
        Self {
            file: None,
            line: location.as_ref().map(|l| l.line),
            column: location.as_ref().map(|l| l.column),
            field: location.and_then(|l| l.field),
            // The message alone: toml's Display adds a multi-line source excerpt, which does not
            // belong in a one-line settings error.
            problem: error.message().trim().to_owned(),
        }
    }

    fn in_file(mut self, file: &Path) -> Self {
        self.file = Some(file.display().to_string());
        self
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    allow_requests_for_others: Option<bool>,
    block_self_approval: Option<bool>,
    #[serde(default)]
    durations: DurationsSection,
    securables: Option<Spanned<BTreeMap<SecurableType, TypeSection>>>,
    #[serde(default)]
    names: NamesSection,
    #[serde(default)]
    principals: PrincipalsSection,
    #[serde(default)]
    provisioning: ProvisioningSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvisioningSection {
    default: Option<ProvisioningMode>,
    #[serde(default)]
    requestable: Vec<ProvisioningMode>,
    #[serde(default)]
    catalogs: BTreeMap<String, ProvisioningMode>,
    #[serde(default)]
    workspaces: BTreeMap<String, ProvisioningMode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DurationsSection {
    default: Option<Spanned<GrantDuration>>,
    maximum: Option<Spanned<GrantDuration>>,
    redelivery: Option<Spanned<GrantDuration>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeSection {
    privileges: Spanned<Vec<Spanned<Privilege>>>,
    default_privileges: Option<Spanned<Vec<Spanned<Privilege>>>>,
    default_duration: Option<Spanned<GrantDuration>>,
    maximum_duration: Option<Spanned<GrantDuration>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamesSection {
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    deny: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalsSection {
    allow_groups: Option<bool>,
    #[serde(default)]
    forbidden_users: Vec<Spanned<String>>,
    #[serde(default)]
    forbidden_groups: Vec<Spanned<String>>,
    #[serde(default)]
    forbidden_service_principals: Vec<Spanned<String>>,
    #[serde(default)]
    forbidden_object_ids: Vec<Spanned<String>>,
}

impl Policy {
    /// Reads the policy named by `UC_ACCESS_POLICY_FILE`, or the safe default when it is unset.
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        match env.get(POLICY_FILE) {
            None => Ok(Self::default()),
            Some(path) => Self::from_file(Path::new(path))
                .map_err(|e| SettingsError::new(POLICY_FILE, e.to_string())),
        }
    }

    /// Reads and checks a policy file.
    pub fn from_file(path: &Path) -> Result<Self, PolicyError> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            PolicyError {
                file: None,
                line: None,
                column: None,
                field: None,
                problem: format!("cannot read the policy file: {e}"),
            }
            .in_file(path)
        })?;
        Self::from_toml(&source).map_err(|e| e.in_file(path))
    }

    /// Parses and checks a policy from TOML text. An empty text is the default policy.
    pub fn from_toml(source: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile =
            toml::from_str(source).map_err(|e| PolicyError::from_toml(source, &e))?;
        build(source, file)
    }
}

fn build(source: &str, file: PolicyFile) -> Result<Policy, PolicyError> {
    let defaults = Policy::default();
    let default_duration = file
        .durations
        .default
        .as_ref()
        .map_or(defaults.default_duration, |d| *d.get_ref());
    let maximum_duration = file
        .durations
        .maximum
        .as_ref()
        .map_or(defaults.maximum_duration, |d| *d.get_ref());
    if maximum_duration < default_duration {
        let (span, field) = match (&file.durations.maximum, &file.durations.default) {
            (Some(m), _) => (m.span(), "durations.maximum"),
            (None, Some(d)) => (d.span(), "durations.default"),
            (None, None) => unreachable!("the built-in default is below the built-in maximum"),
        };
        return Err(PolicyError::at(
            source,
            &span,
            field,
            format!(
                "the maximum {maximum_duration} is shorter than the default {default_duration}"
            ),
        ));
    }

    let types = match file.securables {
        None => defaults.types,
        Some(sections) => {
            let span = sections.span();
            let sections = sections.into_inner();
            if sections.is_empty() {
                return Err(PolicyError::at(
                    source,
                    &span,
                    "securables",
                    "allows no securable type, so every request would be denied; add [securables.table] or remove [securables] for the default".into(),
                ));
            }
            let mut types = BTreeMap::new();
            for (kind, section) in sections {
                let rules = type_rules(source, kind, section, default_duration, maximum_duration)?;
                types.insert(kind, rules);
            }
            types
        }
    };

    Ok(Policy {
        types,
        allow: patterns(source, "names.allow", file.names.allow)?,
        deny: patterns(source, "names.deny", file.names.deny)?,
        default_duration,
        maximum_duration,
        redelivery_window: file
            .durations
            .redelivery
            .as_ref()
            .map_or(defaults.redelivery_window, |d| *d.get_ref()),
        principals: principals(source, file.principals)?,
        allow_requests_for_others: file
            .allow_requests_for_others
            .unwrap_or(defaults.allow_requests_for_others),
        block_self_approval: file
            .block_self_approval
            .unwrap_or(defaults.block_self_approval),
        provisioning: ProvisioningRules {
            default: file
                .provisioning
                .default
                .unwrap_or(ProvisioningMode::Direct),
            requestable: file.provisioning.requestable.into_iter().collect(),
            catalogs: file
                .provisioning
                .catalogs
                .into_iter()
                .map(|(name, mode)| (name.to_lowercase(), mode))
                .collect(),
            workspaces: file.provisioning.workspaces,
        },
    })
}

fn privilege_set(
    source: &str,
    kind: SecurableType,
    field: &str,
    list: &Spanned<Vec<Spanned<Privilege>>>,
) -> Result<PrivilegeSet, PolicyError> {
    if list.get_ref().is_empty() {
        return Err(PolicyError::at(
            source,
            &list.span(),
            field,
            "is empty; name at least one privilege".into(),
        ));
    }
    let mut set = PrivilegeSet::new();
    for privilege in list.get_ref() {
        let p = *privilege.get_ref();
        if matches!(p, Privilege::AllPrivileges | Privilege::Manage) {
            return Err(PolicyError::at(
                source,
                &privilege.span(),
                field,
                format!(
                    "{p} may never be granted through uc-access: {}; list the privileges the requests need instead",
                    if p == Privilege::Manage {
                        "it lets the grantee grant and revoke others' access"
                    } else {
                        "it includes privileges Databricks adds later, and MANAGE-like rights on what it covers"
                    }
                ),
            ));
        }
        if !p.valid_on(kind) {
            return Err(PolicyError::at(
                source,
                &privilege.span(),
                field,
                format!("{p} cannot be granted on a {kind}"),
            ));
        }
        set.insert(p);
    }
    Ok(set)
}

fn type_rules(
    source: &str,
    kind: SecurableType,
    section: TypeSection,
    global_default: GrantDuration,
    global_maximum: GrantDuration,
) -> Result<TypeRules, PolicyError> {
    let field = |name: &str| format!("securables.{kind}.{name}");
    let privileges = privilege_set(source, kind, &field("privileges"), &section.privileges)?;
    let default_privileges = match &section.default_privileges {
        Some(list) => privilege_set(source, kind, &field("default_privileges"), list)?,
        None => PrivilegeSet::from([Privilege::Select]),
    };
    if let Some(extra) = default_privileges.difference(&privileges).next() {
        let span = section
            .default_privileges
            .as_ref()
            .map_or(section.privileges.span(), Spanned::span);
        let problem = if section.default_privileges.is_some() {
            format!("{extra} is a default but not in privileges")
        } else {
            format!(
                "privileges does not include {extra}, the default for requests that name none; set default_privileges"
            )
        };
        return Err(PolicyError::at(
            source,
            &span,
            &field("default_privileges"),
            problem,
        ));
    }

    let default_duration = section.default_duration.as_ref().map(|d| *d.get_ref());
    let maximum_duration = section.maximum_duration.as_ref().map(|d| *d.get_ref());
    if let Some(m) = &section.maximum_duration
        && *m.get_ref() > global_maximum
    {
        return Err(PolicyError::at(
            source,
            &m.span(),
            &field("maximum_duration"),
            format!(
                "{} is longer than durations.maximum ({global_maximum}); a type may only tighten it",
                m.get_ref()
            ),
        ));
    }
    let effective_default = default_duration.unwrap_or(global_default);
    let effective_maximum = maximum_duration.unwrap_or(global_maximum);
    if effective_maximum < effective_default {
        let (span, name) = match (&section.default_duration, &section.maximum_duration) {
            (Some(d), _) => (d.span(), "default_duration"),
            (None, Some(m)) => (m.span(), "maximum_duration"),
            (None, None) => unreachable!("the policy-wide durations were checked first"),
        };
        return Err(PolicyError::at(
            source,
            &span,
            &field(name),
            format!(
                "the default {effective_default} is longer than the maximum {effective_maximum}; set both for this type"
            ),
        ));
    }
    Ok(TypeRules {
        privileges,
        default_privileges,
        default_duration,
        maximum_duration,
    })
}

fn patterns(source: &str, field: &str, raw: Vec<Spanned<String>>) -> Result<Patterns, PolicyError> {
    raw.iter()
        .map(|p| {
            NamePattern::parse(p.get_ref()).map_err(|e| {
                PolicyError::at(
                    source,
                    &p.span(),
                    field,
                    format!("pattern {:?} {e}", p.get_ref()),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Patterns::new)
}

fn principals(source: &str, section: PrincipalsSection) -> Result<PrincipalRules, PolicyError> {
    fn names<T: Ord>(
        source: &str,
        field: &str,
        raw: &[Spanned<String>],
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<BTreeSet<T>, PolicyError> {
        raw.iter()
            .map(|n| {
                parse(n.get_ref()).map_err(|e| {
                    PolicyError::at(source, &n.span(), field, format!("{:?} {e}", n.get_ref()))
                })
            })
            .collect()
    }
    Ok(PrincipalRules {
        allow_groups: section
            .allow_groups
            .unwrap_or(PrincipalRules::default().allow_groups),
        forbidden_users: names(
            source,
            "principals.forbidden_users",
            &section.forbidden_users,
            |n| {
                Principal::user(n)
                    .map(|p| p.uc_name().to_owned())
                    .map_err(|e| e.to_string())
            },
        )?,
        forbidden_groups: names(
            source,
            "principals.forbidden_groups",
            &section.forbidden_groups,
            // Kept lower case and matched in any case (see `check_principal`).
            |n| {
                Principal::group(n)
                    .map(|p| p.uc_name().to_lowercase())
                    .map_err(|e| e.to_string())
            },
        )?,
        forbidden_service_principals: names(
            source,
            "principals.forbidden_service_principals",
            &section.forbidden_service_principals,
            |n| {
                ApplicationId::parse(n)
                    .map(|id| id.to_string())
                    .map_err(|e| e.to_string())
            },
        )?,
        forbidden_object_ids: names(
            source,
            "principals.forbidden_object_ids",
            &section.forbidden_object_ids,
            |n| EntraObjectId::parse(n).map_err(|e| e.to_string()),
        )?,
    })
}
