//! The naming rule for what Delta Sharing provisioning creates: one share per table, one TOKEN recipient
//! per person (Entra object id). Templates are checked at start; every name they produce is a safe Unity
//! Catalog identifier (lower-case letters, digits and `_`).

use crate::domain::{EntraObjectId, Principal, Securable};
use crate::env::{Env, SettingsError};

/// The share name template; placeholders `{catalog}`, `{schema}`, `{table}` (all three required).
pub const SHARE_NAME: &str = "UC_ACCESS_SHARE_NAME";
/// The recipient name template; placeholder `{object_id}` (required).
pub const RECIPIENT_NAME: &str = "UC_ACCESS_RECIPIENT_NAME";
pub const DEFAULT_SHARE_NAME: &str = "uc_access_{catalog}_{schema}_{table}";
pub const DEFAULT_RECIPIENT_NAME: &str = "uc_access_{object_id}";
/// Longest name produced; longer ones are cut and given a hash suffix so they stay distinct.
pub const MAX_GENERATED_NAME: usize = 255;

const SHARE_PLACEHOLDERS: [&str; 3] = ["catalog", "schema", "table"];
const RECIPIENT_PLACEHOLDERS: [&str; 1] = ["object_id"];

/// The validated naming rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareNaming {
    share: String,
    recipient: String,
}

impl Default for ShareNaming {
    fn default() -> Self {
        Self {
            share: DEFAULT_SHARE_NAME.to_owned(),
            recipient: DEFAULT_RECIPIENT_NAME.to_owned(),
        }
    }
}

/// Lower case; every character outside `[a-z0-9_]` becomes `_`.
fn sanitize(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Fills `template` with sanitized values. Names longer than [`MAX_GENERATED_NAME`] are cut and given a
/// hash suffix so they stay distinct. With `keep_distinct`, a value sanitizing changed (`kunden_ä` and
/// `kunden_ö` both read `kunden__`) also gets a suffix, the hash of the values as they were, so two tables
/// never map to one share; names of plain `[a-z0-9_]` tables are unchanged by this.
fn fill(template: &str, values: &[(&str, &str)], keep_distinct: bool) -> String {
    let mut out = template.to_owned();
    let mut lossy = false;
    for (key, value) in values {
        let clean = sanitize(value);
        lossy |= clean != *value;
        out = out.replace(&format!("{{{key}}}"), &clean);
    }
    let digest = if keep_distinct && lossy {
        let raw: Vec<&str> = values.iter().map(|(_, v)| *v).collect();
        crate::ledger::hash_hex(&raw)
    } else if out.len() > MAX_GENERATED_NAME {
        crate::ledger::hash_hex(&[&out])
    } else {
        return out;
    };
    out.truncate(MAX_GENERATED_NAME - 17);
    out.push('_');
    out.push_str(&digest[..16]);
    out
}

/// Checks a template: known placeholders only, every required one present, literal text `[a-z0-9_]`.
fn check(key: &str, template: &str, required: &[&str]) -> Result<String, SettingsError> {
    let mut literal = String::new();
    let mut rest = template.trim();
    let mut seen = Vec::new();
    while let Some(open) = rest.find('{') {
        literal.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            return Err(SettingsError::new(key, "has a { without a closing }"));
        };
        let name = &rest[open + 1..open + close];
        if !required.contains(&name) {
            return Err(SettingsError::new(
                key,
                format!(
                    "has an unknown placeholder {{{name}}}; use {}",
                    required
                        .iter()
                        .map(|r| format!("{{{r}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        seen.push(name.to_owned());
        rest = &rest[open + close + 1..];
    }
    literal.push_str(rest);
    if let Some(missing) = required.iter().find(|r| !seen.iter().any(|s| s == *r)) {
        return Err(SettingsError::new(
            key,
            format!("must contain {{{missing}}}, or two requests could share one name"),
        ));
    }
    if !literal
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(SettingsError::new(
            key,
            "may hold only lower-case letters, digits, _ and placeholders",
        ));
    }
    Ok(template.trim().to_owned())
}

impl ShareNaming {
    /// Reads `UC_ACCESS_SHARE_NAME` and `UC_ACCESS_RECIPIENT_NAME` (both optional).
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        Ok(Self {
            share: check(
                SHARE_NAME,
                env.get(SHARE_NAME).unwrap_or(DEFAULT_SHARE_NAME),
                &SHARE_PLACEHOLDERS,
            )?,
            recipient: check(
                RECIPIENT_NAME,
                env.get(RECIPIENT_NAME).unwrap_or(DEFAULT_RECIPIENT_NAME),
                &RECIPIENT_PLACEHOLDERS,
            )?,
        })
    }

    /// The share for a table (`None` for catalogs and schemas: sharing provisions tables only).
    pub fn share_for(&self, table: &Securable) -> Option<String> {
        let Securable::Table {
            catalog,
            schema,
            table,
        } = table
        else {
            return None;
        };
        Some(fill(
            &self.share,
            &[
                ("catalog", catalog.as_str()),
                ("schema", schema.as_str()),
                ("table", table.as_str()),
            ],
            true,
        ))
    }

    /// The recipient for a person.
    pub fn recipient_for(&self, object_id: EntraObjectId) -> Principal {
        // A GUID's '-' becoming '_' loses nothing: the format is fixed.
        let name = fill(
            &self.recipient,
            &[("object_id", &object_id.to_string())],
            false,
        );
        Principal::recipient(&name).expect("templates are checked and values sanitized")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SecurableType;

    fn env(pairs: &[(&'static str, &'static str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn the_default_rule_names_a_share_per_table_and_a_recipient_per_person() {
        let naming = ShareNaming::from_env(&env(&[])).unwrap();
        let table = Securable::parse(SecurableType::Table, "sales.reporting.orders").unwrap();
        assert_eq!(
            naming.share_for(&table).unwrap(),
            "uc_access_sales_reporting_orders"
        );
        let id = EntraObjectId::parse("5B1F2E3D-4C5B-4A69-8E7F-0A1B2C3D4E5F").unwrap();
        assert_eq!(
            naming.recipient_for(id).uc_name(),
            "uc_access_5b1f2e3d_4c5b_4a69_8e7f_0a1b2c3d4e5f"
        );
        let schema = Securable::parse(SecurableType::Schema, "sales.reporting").unwrap();
        assert_eq!(naming.share_for(&schema), None);
    }

    #[test]
    fn templates_must_name_every_part_and_only_safe_text() {
        for (key, bad) in [
            (SHARE_NAME, "share_{catalog}_{table}"),
            (SHARE_NAME, "Share_{catalog}_{schema}_{table}"),
            (SHARE_NAME, "s-{catalog}_{schema}_{table}"),
            (SHARE_NAME, "s_{catalog}_{schema}_{table}_{owner}"),
            (SHARE_NAME, "s_{catalog_{schema}_{table}"),
            (RECIPIENT_NAME, "recipient_fixed"),
        ] {
            let err = ShareNaming::from_env(&env(&[(key, bad)])).unwrap_err();
            assert_eq!(err.key, key, "{bad}");
        }
        let custom = ShareNaming::from_env(&env(&[
            (SHARE_NAME, "ds_{schema}_{table}_{catalog}"),
            (RECIPIENT_NAME, "pbi_{object_id}"),
        ]))
        .unwrap();
        let table = Securable::parse(SecurableType::Table, "a.b.c").unwrap();
        assert_eq!(custom.share_for(&table).unwrap(), "ds_b_c_a");
    }

    #[test]
    fn tables_whose_names_sanitize_alike_get_distinct_shares() {
        let naming = ShareNaming::default();
        let share = |name: &str| {
            naming
                .share_for(&Securable::parse(SecurableType::Table, name).unwrap())
                .unwrap()
        };
        let (a, o) = (share("sales.eu.kunden_ä"), share("sales.eu.kunden_ö"));
        assert_ne!(a, o);
        assert!(a.starts_with("uc_access_sales_eu_kunden__"), "{a}");
        assert_eq!(a.len(), "uc_access_sales_eu_kunden__".len() + 17);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
        // The same table always gets the same share.
        assert_eq!(a, share("SALES.eu.Kunden_Ä"));
        assert_ne!(share("s.r.sales$2024"), share("s.r.sales_2024"));
        assert_ne!(share("s.r.a-b"), share("s.r.a_b"));
        // Plain names keep the name earlier releases gave them.
        assert_eq!(share("sales.eu.kunden"), "uc_access_sales_eu_kunden");
    }

    #[test]
    fn over_long_names_are_cut_with_a_distinguishing_suffix() {
        let long = "t".repeat(250);
        let a = Securable::parse(SecurableType::Table, &format!("a.b.{long}x")).unwrap();
        let b = Securable::parse(SecurableType::Table, &format!("a.b.{long}y")).unwrap();
        let naming = ShareNaming::default();
        let (na, nb) = (naming.share_for(&a).unwrap(), naming.share_for(&b).unwrap());
        assert_eq!(na.len(), MAX_GENERATED_NAME);
        assert_ne!(na, nb);
    }
}
