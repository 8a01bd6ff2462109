//! Loading the policy file: defaults, the example, and errors that name the line and the field.

use std::io::Write;

use super::{POLICY_FILE, Policy, PolicyError};
use crate::domain::{GrantDuration, Privilege, PrivilegeSet, SecurableType};
use crate::env::Env;

fn error(toml: &str) -> PolicyError {
    Policy::from_toml(toml).expect_err("expected the policy to be refused")
}

fn days(n: i64) -> GrantDuration {
    GrantDuration::days(n).unwrap()
}

#[test]
fn an_empty_file_is_the_default_policy() {
    assert_eq!(Policy::from_toml("").unwrap(), Policy::default());
    assert_eq!(
        Policy::from_toml("# only a comment\n").unwrap(),
        Policy::default()
    );
}

#[test]
fn the_default_policy_allows_select_on_tables_for_thirty_days_up_to_ninety() {
    let p = Policy::default();
    assert_eq!(
        p.allowed_types().collect::<Vec<_>>(),
        [SecurableType::Table]
    );
    assert_eq!(
        p.privileges_for(SecurableType::Table),
        PrivilegeSet::from([Privilege::Select])
    );
    assert!(p.privileges_for(SecurableType::Catalog).is_empty());
    assert_eq!(p.default_duration_for(SecurableType::Table), days(30));
    assert_eq!(p.maximum_duration_for(SecurableType::Table), days(90));
    assert!(p.allow().is_empty() && p.deny().is_empty());
    assert!(p.principals().allow_groups);
    assert!(p.allow_requests_for_others());
    assert!(p.block_self_approval());
}

#[test]
fn the_example_policy_at_the_repository_root_loads() {
    let source = include_str!("../../../../policy.example.toml");
    let p = Policy::from_toml(source).unwrap();
    assert_eq!(
        p.allowed_types().collect::<Vec<_>>(),
        [SecurableType::Schema, SecurableType::Table]
    );
    assert_eq!(p.maximum_duration_for(SecurableType::Schema), days(30));
    assert_eq!(p.maximum_duration_for(SecurableType::Table), days(90));
    assert!(p.principals().forbidden_groups.contains("platform admins"));
    assert!(
        p.principals()
            .forbidden_users
            .contains("break-glass@contoso.com")
    );
}

#[test]
fn keys_left_out_keep_their_defaults() {
    let p = Policy::from_toml("[durations]\nmaximum = \"P180D\"").unwrap();
    assert_eq!(p.maximum_duration(), days(180));
    assert_eq!(p.default_duration(), days(30));
    assert_eq!(
        p.privileges_for(SecurableType::Table),
        PrivilegeSet::from([Privilege::Select])
    );
    assert!(p.block_self_approval());
}

#[test]
fn an_unknown_top_level_key_is_refused_naming_it_and_its_line() {
    let e = error("allow_requests_for_others = true\nblock_self_aproval = false\n");
    assert_eq!(e.line, Some(2));
    assert_eq!(e.field.as_deref(), Some("block_self_aproval"));
    assert!(
        e.problem.contains("unknown field `block_self_aproval`"),
        "{e}"
    );
}

#[test]
fn an_unknown_key_in_a_table_is_refused_naming_the_table() {
    let e = error("[durations]\ndefault = \"P7D\"\nmaxmum = \"P9D\"\n");
    assert_eq!(e.line, Some(3));
    assert_eq!(e.field.as_deref(), Some("durations.maxmum"));
    let e = error("[principals]\nforbiden_users = []\n");
    assert_eq!(e.field.as_deref(), Some("principals.forbiden_users"));
    let e = error("[securables.table]\nprivileges = [\"SELECT\"]\nmax_duration = \"P1D\"\n");
    assert_eq!(e.field.as_deref(), Some("securables.table.max_duration"));
}

#[test]
fn an_unknown_securable_type_is_refused() {
    let e = error("[securables.view]\nprivileges = [\"SELECT\"]\n");
    assert_eq!(e.line, Some(1));
    assert!(e.problem.contains("view"), "{e}");
}

#[test]
fn a_value_of_the_wrong_type_is_refused_naming_the_field() {
    let e = error("[durations]\ndefault = 30\n");
    assert_eq!(e.line, Some(2));
    assert_eq!(e.field.as_deref(), Some("durations.default"));
    let e = error("block_self_approval = \"no\"\n");
    assert_eq!(e.field.as_deref(), Some("block_self_approval"));
}

#[test]
fn a_duration_that_is_not_iso_8601_is_refused_with_the_reason() {
    let e = error("[durations]\nmaximum = \"3 months\"\n");
    assert_eq!(e.field.as_deref(), Some("durations.maximum"));
    assert!(e.problem.contains("ISO 8601"), "{e}");
    let e = error("[durations]\nmaximum = \"P3M\"\n");
    assert!(e.problem.contains("years or months"), "{e}");
}

#[test]
fn a_maximum_shorter_than_the_default_is_refused() {
    let e = error("[durations]\ndefault = \"P30D\"\nmaximum = \"P7D\"\n");
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(3), Some("durations.maximum"))
    );
    // Against the built-in maximum too.
    let e = error("[durations]\ndefault = \"P100D\"\n");
    assert_eq!(e.field.as_deref(), Some("durations.default"));
}

#[test]
fn a_type_may_not_loosen_the_policy_wide_maximum() {
    let e = error("[securables.table]\nprivileges = [\"SELECT\"]\nmaximum_duration = \"P120D\"\n");
    assert_eq!(
        e.field.as_deref(),
        Some("securables.table.maximum_duration")
    );
    assert_eq!(e.line, Some(3));
}

#[test]
fn a_type_maximum_below_the_default_in_effect_is_refused() {
    let e = error("[securables.table]\nprivileges = [\"SELECT\"]\nmaximum_duration = \"P7D\"\n");
    assert_eq!(
        e.field.as_deref(),
        Some("securables.table.maximum_duration")
    );
    assert!(Policy::from_toml(
        "[securables.table]\nprivileges = [\"SELECT\"]\nmaximum_duration = \"P7D\"\ndefault_duration = \"P1D\"\n"
    )
    .is_ok());
}

#[test]
fn an_unknown_privilege_is_refused_naming_the_field() {
    let e = error("[securables.table]\nprivileges = [\"SELECT\", \"USAGE\"]\n");
    assert_eq!(e.field.as_deref(), Some("securables.table.privileges"));
    assert!(e.problem.contains("USAGE"), "{e}");
}

#[test]
fn a_privilege_that_cannot_be_granted_on_its_type_is_refused() {
    let e = error("[securables.table]\nprivileges = [\n  \"SELECT\",\n  \"USE_SCHEMA\",\n]\n");
    assert_eq!(e.line, Some(4));
    assert_eq!(e.field.as_deref(), Some("securables.table.privileges"));
    assert_eq!(e.problem, "USE_SCHEMA cannot be granted on a table");
}

#[test]
fn privileges_accept_the_spellings_unity_catalog_accepts() {
    let p = Policy::from_toml("[securables.schema]\nprivileges = [\"select\", \"use schema\"]\n")
        .unwrap();
    assert_eq!(
        p.privileges_for(SecurableType::Schema),
        PrivilegeSet::from([Privilege::Select, Privilege::UseSchema])
    );
}

#[test]
fn a_type_without_privileges_or_with_an_empty_list_is_refused() {
    let e = error("[securables.table]\ndefault_duration = \"P1D\"\n");
    assert!(e.problem.contains("privileges"), "{e}");
    let e = error("[securables.table]\nprivileges = []\n");
    assert_eq!(e.field.as_deref(), Some("securables.table.privileges"));
}

#[test]
fn default_privileges_must_be_allowed_privileges() {
    let e =
        error("[securables.table]\nprivileges = [\"SELECT\"]\ndefault_privileges = [\"MODIFY\"]\n");
    assert_eq!(
        e.field.as_deref(),
        Some("securables.table.default_privileges")
    );
    assert_eq!(e.line, Some(3));
    // SELECT is the implicit default; a type without it must say what its default is.
    let e = error("[securables.schema]\nprivileges = [\"USE_SCHEMA\"]\n");
    assert_eq!(
        e.field.as_deref(),
        Some("securables.schema.default_privileges")
    );
    assert!(e.problem.contains("set default_privileges"), "{e}");
}

#[test]
fn an_empty_securables_section_is_refused_since_it_would_deny_everything() {
    let e = error("[securables]\n");
    assert_eq!(e.field.as_deref(), Some("securables"));
}

#[test]
fn a_pattern_that_does_not_compile_is_refused_naming_it() {
    let e = error("[names]\nallow = [\"sales\"]\ndeny = [\"sales.[a-\"]\n");
    assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("names.deny")));
    assert!(e.problem.contains("sales.[a-"), "{e}");
    let e = error("[names]\nallow = [\"a.b.c.d\"]\n");
    assert_eq!(e.field.as_deref(), Some("names.allow"));
}

#[test]
fn forbidden_principals_must_be_valid_names_of_their_kind() {
    let e = error("[principals]\nforbidden_users = [\"not-an-email\"]\n");
    assert_eq!(e.field.as_deref(), Some("principals.forbidden_users"));
    let e = error("[principals]\nforbidden_service_principals = [\"app\"]\n");
    assert_eq!(
        e.field.as_deref(),
        Some("principals.forbidden_service_principals")
    );
}

#[test]
fn a_file_that_is_not_toml_is_refused_with_its_line() {
    let e = error("[durations\n");
    assert_eq!(e.line, Some(1));
    assert!(!e.problem.is_empty());
}

#[test]
fn without_the_setting_the_default_policy_applies() {
    assert_eq!(
        Policy::from_env(&Env::default()).unwrap(),
        Policy::default()
    );
}

#[test]
fn the_setting_names_a_file_that_is_loaded() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"allow_requests_for_others = false\n")
        .unwrap();
    let env = Env::default().with(POLICY_FILE, file.path().to_str().unwrap());
    assert!(!Policy::from_env(&env).unwrap().allow_requests_for_others());
}

#[test]
fn errors_from_the_setting_name_the_setting_the_file_and_the_line() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"\n[durations]\nmaxmum = \"P1D\"\n")
        .unwrap();
    let path = file.path().to_str().unwrap().to_owned();
    let env = Env::default().with(POLICY_FILE, path.clone());
    let e = Policy::from_env(&env).unwrap_err();
    assert_eq!(e.key, "UC_ACCESS_POLICY_FILE");
    assert!(
        e.problem.starts_with(&format!(
            "{path}: line 3, column 1, field durations.maxmum: unknown field"
        )),
        "{e}"
    );
}

#[test]
fn a_missing_file_is_refused_naming_it() {
    let env = Env::default().with(POLICY_FILE, "/nonexistent/policy.toml");
    let e = Policy::from_env(&env).unwrap_err();
    assert_eq!(e.key, POLICY_FILE);
    assert!(
        e.problem
            .starts_with("/nonexistent/policy.toml: cannot read"),
        "{e}"
    );
}

#[test]
fn all_privileges_and_manage_are_refused_on_every_type_naming_the_field() {
    for kind in ["table", "schema", "catalog"] {
        for privilege in ["ALL_PRIVILEGES", "MANAGE", "all privileges"] {
            let e = error(&format!(
                "[securables.{kind}]\nprivileges = [\"SELECT\", \"{privilege}\"]\n"
            ));
            assert_eq!(
                e.field.as_deref(),
                Some(format!("securables.{kind}.privileges").as_str())
            );
            assert!(e.problem.contains("never"), "{e}");
        }
    }
}

#[test]
fn the_redelivery_window_defaults_to_two_hours_and_can_be_set() {
    assert_eq!(
        Policy::default().redelivery_window(),
        time::Duration::hours(2)
    );
    let p = Policy::from_toml("[durations]\nredelivery = \"P1D\"\n").unwrap();
    assert_eq!(p.redelivery_window(), time::Duration::days(1));
    assert!(
        error("[durations]\nredelivery = \"P1M\"\n")
            .to_string()
            .contains("redelivery")
    );
}
