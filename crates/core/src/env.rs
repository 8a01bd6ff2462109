//! A snapshot of the process environment (the Function app's settings), read once, with typed accessors
//! whose errors name the key that is missing or wrong.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A setting that is missing or cannot be used; the message names the key so an operator can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting {key}: {problem}")]
pub struct SettingsError {
    pub key: String,
    pub problem: String,
}

/// The problem text of a required setting that is absent.
const MISSING: &str = "is required but not set";

impl SettingsError {
    /// Whether the setting is simply absent (as opposed to present with a bad value).
    pub fn is_missing(&self) -> bool {
        self.problem == MISSING
    }

    pub fn new(key: &str, problem: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Environment variables captured once. Empty values count as unset, as they do in the Azure portal.
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

// Values may be secrets: never print them.
impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("keys", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Env {
    /// Captures the current process environment.
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars())
    }

    /// Builds an environment from explicit pairs (tests, the local run).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Returns a copy with `key` set (later values win).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(key.into(), value.into());
        self
    }

    /// Returns a copy with `key` set only where it is not set already (embedded defaults).
    pub fn with_default(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        if self.get(&key).is_none() {
            self.vars.insert(key, value.into());
        }
        self
    }

    /// The trimmed value, or `None` when unset or blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value of the first key that is set, with that key (a name and its legacy alias).
    pub fn get_first<'k>(&self, keys: &[&'k str]) -> Option<(&'k str, &str)> {
        keys.iter().find_map(|k| self.get(k).map(|v| (*k, v)))
    }

    pub fn required(&self, key: &str) -> Result<&str, SettingsError> {
        self.get(key)
            .ok_or_else(|| SettingsError::new(key, MISSING))
    }

    /// Parses `key` with `FromStr`, using `default` when unset.
    pub fn parse_or<T>(&self, key: &str, default: T) -> Result<T, SettingsError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        Ok(self.parse_opt(key)?.unwrap_or(default))
    }

    /// Parses `key` with `FromStr` when set.
    pub fn parse_opt<T>(&self, key: &str) -> Result<Option<T>, SettingsError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.get(key)
            .map(|raw| {
                raw.parse()
                    .map_err(|e| SettingsError::new(key, format!("cannot parse {raw:?}: {e}")))
            })
            .transpose()
    }

    /// A boolean: `true`/`false`/`1`/`0`/`yes`/`no` (any case).
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, SettingsError> {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(SettingsError::new(
                key,
                format!("expected true or false, got {other:?}"),
            )),
        }
    }

    /// A comma- or semicolon-separated list; empty items are dropped.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|raw| {
                raw.split([',', ';'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_count_as_unset() {
        let env = Env::from_pairs([("A", "  "), ("B", " x ")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B"), Some("x"));
        assert_eq!(
            env.required("A").unwrap_err().to_string(),
            "setting A: is required but not set"
        );
    }

    #[test]
    fn parse_errors_name_the_key_and_the_value() {
        let env = Env::from_pairs([("PORT", "eighty")]);
        let err = env.parse_or::<u16>("PORT", 1).unwrap_err();
        assert_eq!(err.key, "PORT");
        assert!(err.problem.contains("\"eighty\""), "{err}");
    }

    #[test]
    fn flags_accept_common_spellings_and_reject_others() {
        let env = Env::from_pairs([("A", "YES"), ("B", "0"), ("C", "maybe")]);
        assert!(env.flag("A", false).unwrap());
        assert!(!env.flag("B", true).unwrap());
        assert!(env.flag("C", true).is_err());
        assert!(env.flag("D", true).unwrap());
    }

    #[test]
    fn lists_split_on_commas_and_semicolons() {
        let env = Env::from_pairs([("L", "a, b;;c ,")]);
        assert_eq!(env.list("L"), vec!["a", "b", "c"]);
        assert!(env.list("missing").is_empty());
    }

    #[test]
    fn the_first_set_alias_wins() {
        let env = Env::from_pairs([("LEGACY", "1")]);
        assert_eq!(env.get_first(&["NEW", "LEGACY"]), Some(("LEGACY", "1")));
        assert_eq!(env.with_default("LEGACY", "2").get("LEGACY"), Some("1"));
    }
}
