//! Account-level Databricks principals, spelled as Unity Catalog grants name them: a user by user name,
//! a group by display name, a service principal by application id.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::object_id::ApplicationId;

/// The built-in group of every account user: granting to it would grant to everyone.
pub const ACCOUNT_USERS: &str = "account users";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    Group,
    ServicePrincipal,
    /// A Delta Sharing recipient (open sharing): named in share permissions, not an account identity.
    Recipient,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
            Self::ServicePrincipal => "service_principal",
            Self::Recipient => "recipient",
        }
    }
}

/// Why a principal name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    #[error("is empty")]
    Empty,
    #[error("is longer than 255 characters")]
    TooLong,
    #[error("contains a control character")]
    ControlCharacter,
    #[error("is not a user name (expected an email or UPN such as alice@contoso.com)")]
    NotAUserName,
    #[error("is not a recipient name (letters, digits and _ only)")]
    NotARecipientName,
}

/// An account-level principal as Unity Catalog names it in grants.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Principal {
    kind: PrincipalKind,
    /// User name (lower case), group display name (case kept), or application id. Shared, not copied,
    /// when cloned: revoke plans name each principal once per securable.
    name: Arc<str>,
}

fn check_text(raw: &str) -> Result<&str, PrincipalError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(PrincipalError::Empty);
    }
    if raw.chars().count() > 255 {
        return Err(PrincipalError::TooLong);
    }
    if raw.chars().any(char::is_control) {
        return Err(PrincipalError::ControlCharacter);
    }
    Ok(raw)
}

impl Principal {
    /// A user by user name (email or UPN). Unity Catalog matches user names case-insensitively and
    /// answers them lower case, so they are stored lower case.
    pub fn user(user_name: &str) -> Result<Self, PrincipalError> {
        let name = check_text(user_name)?;
        let valid = name.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        }) && !name.contains(char::is_whitespace);
        if !valid {
            return Err(PrincipalError::NotAUserName);
        }
        Ok(Self {
            kind: PrincipalKind::User,
            name: name.to_lowercase().into(),
        })
    }

    /// An account group by display name (case-sensitive in Unity Catalog).
    pub fn group(display_name: &str) -> Result<Self, PrincipalError> {
        Ok(Self {
            kind: PrincipalKind::Group,
            name: check_text(display_name)?.into(),
        })
    }

    /// A service principal by application id.
    pub fn service_principal(application_id: ApplicationId) -> Self {
        Self {
            kind: PrincipalKind::ServicePrincipal,
            name: application_id.to_string().into(),
        }
    }

    /// A Delta Sharing recipient by name. uc-access only names recipients from its own naming rule, so
    /// only lower-case letters, digits and `_` are accepted (the safe subset of Unity Catalog names).
    pub fn recipient(name: &str) -> Result<Self, PrincipalError> {
        let name = check_text(name)?;
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(PrincipalError::NotARecipientName);
        }
        Ok(Self {
            kind: PrincipalKind::Recipient,
            name: name.to_ascii_lowercase().into(),
        })
    }

    pub fn kind(&self) -> PrincipalKind {
        self.kind
    }

    /// The name to put in a grant's `principal` field.
    pub fn uc_name(&self) -> &str {
        &self.name
    }

    /// `account users`: a grant to it is a grant to everyone in the account.
    pub fn is_all_account_users(&self) -> bool {
        self.kind == PrincipalKind::Group && self.name.eq_ignore_ascii_case(ACCOUNT_USERS)
    }

    /// Whether a grant's `principal` string names this principal, with Unity Catalog's case rules.
    pub fn matches_uc_name(&self, uc_name: &str) -> bool {
        match self.kind {
            PrincipalKind::Group => &*self.name == uc_name,
            PrincipalKind::User | PrincipalKind::ServicePrincipal | PrincipalKind::Recipient => {
                self.name.eq_ignore_ascii_case(uc_name)
            }
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.name)
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Principal({self})")
    }
}

/// Whether the account considers the principal able to use what it is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalStatus {
    Active,
    /// Users provisioned just in time stay inactive until their first login.
    Inactive,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_lower_cased_and_must_look_like_an_email() {
        assert_eq!(
            Principal::user("Alice@Contoso.com").unwrap().uc_name(),
            "alice@contoso.com"
        );
        for bad in [
            "alice",
            "@contoso.com",
            "alice@contoso",
            "a b@c.com",
            "a@b@c.com",
        ] {
            assert_eq!(
                Principal::user(bad),
                Err(PrincipalError::NotAUserName),
                "{bad}"
            );
        }
    }

    #[test]
    fn group_names_keep_their_case_and_match_case_sensitively() {
        let g = Principal::group("Data Analysts").unwrap();
        assert!(g.matches_uc_name("Data Analysts"));
        assert!(!g.matches_uc_name("data analysts"));
        let u = Principal::user("bob@contoso.com").unwrap();
        assert!(u.matches_uc_name("BOB@contoso.com"));
    }

    #[test]
    fn account_users_is_recognised_in_any_case() {
        assert!(
            Principal::group("Account Users")
                .unwrap()
                .is_all_account_users()
        );
        assert!(
            !Principal::group("account users team")
                .unwrap()
                .is_all_account_users()
        );
    }

    #[test]
    fn recipient_names_are_lower_case_identifiers() {
        let r = Principal::recipient("UC_Access_5b1f").unwrap();
        assert_eq!(r.uc_name(), "uc_access_5b1f");
        assert_eq!(r.kind(), PrincipalKind::Recipient);
        assert!(r.matches_uc_name("uc_access_5B1F"));
        assert_eq!(
            Principal::recipient("a-b"),
            Err(PrincipalError::NotARecipientName)
        );
        assert_eq!(
            Principal::recipient("a.b"),
            Err(PrincipalError::NotARecipientName)
        );
    }

    #[test]
    fn names_with_control_characters_are_refused() {
        assert_eq!(
            Principal::group("ops\u{0}"),
            Err(PrincipalError::ControlCharacter)
        );
        assert_eq!(Principal::group("  "), Err(PrincipalError::Empty));
    }
}
