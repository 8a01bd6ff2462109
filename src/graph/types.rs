//! What uc-access reads of Entra objects, as Graph answers them (`$select`ed properties, camelCase).

use serde::Deserialize;

/// The properties of a user uc-access selects: `id,userPrincipalName,mail,accountEnabled,userType`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntraUser {
    pub id: String,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    /// `None` when Graph left it out (it is not a default property; `$select` asks for it).
    #[serde(default)]
    pub account_enabled: Option<bool>,
    /// `Member` or `Guest`.
    #[serde(default)]
    pub user_type: Option<String>,
}

/// Marks the user principal name Entra gives a B2B guest (`alice_fabrikam.com#EXT#@contoso.onmicrosoft.com`).
pub const GUEST_UPN_MARK: &str = "#EXT#";

impl EntraUser {
    /// A B2B guest: `userType` `Guest`, or a user principal name carrying `#EXT#`.
    pub fn is_guest(&self) -> bool {
        self.user_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("Guest"))
            || self
                .user_principal_name
                .as_deref()
                .is_some_and(|upn| upn.to_ascii_uppercase().contains(GUEST_UPN_MARK))
    }

    /// Whether Entra says the account is disabled (`accountEnabled: false`); an absent value is not.
    pub fn is_disabled(&self) -> bool {
        self.account_enabled == Some(false)
    }

    /// The Databricks `userName`s this user may have, most likely first, lower case, without repeats.
    ///
    /// A member's Databricks user name is usually the user principal name (the default mapping of
    /// Entra's provisioning connector), else the mail address (users added by e-mail). A guest's user
    /// principal name is the rewritten `…#EXT#@tenant` form, so the mail address (the address the guest
    /// was invited with) comes first; the `#EXT#` form is still tried, since an account provisioned with
    /// the default mapping carries it. Which one Databricks holds for a guest is not documented by
    /// Databricks or Microsoft: trying both finds either.
    pub fn user_name_candidates(&self) -> Vec<String> {
        let upn = self.user_principal_name.as_deref();
        let mail = self.mail.as_deref();
        let ordered = if self.is_guest() {
            [mail, upn]
        } else {
            [upn, mail]
        };
        let mut names: Vec<String> = Vec::new();
        for name in ordered.into_iter().flatten() {
            let name = name.trim().to_lowercase();
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
}

/// The properties of a service principal uc-access selects: `id,appId,accountEnabled,displayName`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntraServicePrincipal {
    pub id: String,
    /// The application id: what Databricks knows a service principal by.
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    #[serde(default)]
    pub display_name: Option<String>,
}

impl EntraServicePrincipal {
    pub fn is_disabled(&self) -> bool {
        self.account_enabled == Some(false)
    }
}

/// A group: `id,displayName`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntraGroup {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// What an object id names in Entra ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntraObject {
    User(EntraUser),
    ServicePrincipal(EntraServicePrincipal),
    Group(EntraGroup),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(upn: &str, mail: Option<&str>, kind: Option<&str>) -> EntraUser {
        EntraUser {
            id: "x".into(),
            user_principal_name: Some(upn.into()),
            mail: mail.map(Into::into),
            account_enabled: Some(true),
            user_type: kind.map(Into::into),
        }
    }

    #[test]
    fn a_member_is_tried_by_user_principal_name_then_mail_in_lower_case() {
        let u = user(
            "Ivan@Contoso.onmicrosoft.com",
            Some("ivan.mail@contoso.com"),
            Some("Member"),
        );
        assert_eq!(
            u.user_name_candidates(),
            ["ivan@contoso.onmicrosoft.com", "ivan.mail@contoso.com"]
        );
    }

    #[test]
    fn a_guest_is_tried_by_mail_first_whether_user_type_or_the_ext_mark_says_so() {
        let upn = "judy_fabrikam.com#EXT#@contoso.onmicrosoft.com";
        for u in [
            user(upn, Some("Judy@Fabrikam.com"), Some("Guest")),
            user(upn, Some("Judy@Fabrikam.com"), None),
        ] {
            assert!(u.is_guest());
            // Lower case, as Databricks stores user names.
            assert_eq!(
                u.user_name_candidates(),
                ["judy@fabrikam.com", &upn.to_lowercase()]
            );
        }
    }

    #[test]
    fn equal_names_are_tried_once_and_absent_ones_not_at_all() {
        let u = user("a@contoso.com", Some("A@contoso.com"), None);
        assert_eq!(u.user_name_candidates(), ["a@contoso.com"]);
        let u = user("a@contoso.com", None, None);
        assert_eq!(u.user_name_candidates(), ["a@contoso.com"]);
    }

    #[test]
    fn only_an_explicit_false_is_a_disabled_account() {
        let mut u = user("a@contoso.com", None, None);
        assert!(!u.is_disabled());
        u.account_enabled = None;
        assert!(!u.is_disabled());
        u.account_enabled = Some(false);
        assert!(u.is_disabled());
    }
}
