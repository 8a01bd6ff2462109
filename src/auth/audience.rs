//! Audiences and token versions: what `AUTH_AUDIENCE` may hold, which `aud` each token version carries,
//! and a small record of tokens refused only for their audience, so the doctor can say which value is
//! missing.
//!
//! Facts this rests on (Microsoft Learn, *Access token claims reference* and *Access tokens*): in v2.0
//! tokens `aud` is always the API's client id; in v1.0 tokens it is the client id or the application id
//! URI, whichever the client asked for. The API's registration picks the version
//! (`accessTokenAcceptedVersion`: `null` or `1` → v1.0, `2` → v2.0). A client-credentials caller (Purview)
//! asks for a *scope*, `<application id URI or client id>/.default`, which is never an audience itself.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use uuid::Uuid;

/// The suffix of a client-credentials scope (Purview's *Audience* field, for example).
pub const DEFAULT_SCOPE_SUFFIX: &str = "/.default";
/// The most distinct refused audiences remembered; later ones are only counted.
const MAX_REMEMBERED: usize = 8;
/// Longer `aud` values are cut before they are kept (they come from a signed token of the tenant, but
/// nothing needs more to recognise a value).
const MAX_AUDIENCE_CHARS: usize = 200;

/// The access token format, from the `ver` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TokenVersion {
    /// `ver: "1.0"`: issuer `https://sts.windows.net/{tenant}/`, caller in `appid`.
    V1,
    /// `ver: "2.0"`: issuer `https://login.microsoftonline.com/{tenant}/v2.0`, caller in `azp`.
    V2,
}

impl TokenVersion {
    /// The version a `ver` claim names. A token without `ver` is read as v2.0, and must then satisfy
    /// every v2.0 rule (its issuer, `azp`); any other value is not an Entra access token.
    pub fn from_claim(ver: Option<&str>) -> Option<Self> {
        match ver {
            Some("1.0") => Some(TokenVersion::V1),
            Some("2.0") | None => Some(TokenVersion::V2),
            Some(_) => None,
        }
    }

    /// `1.0` or `2.0`, as in the claim.
    pub fn as_claim(self) -> &'static str {
        match self {
            TokenVersion::V1 => "1.0",
            TokenVersion::V2 => "2.0",
        }
    }

    /// The claim holding the calling application's client id in this version.
    pub fn app_id_claim(self) -> &'static str {
        match self {
            TokenVersion::V1 => "appid",
            TokenVersion::V2 => "azp",
        }
    }
}

impl fmt::Display for TokenVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.as_claim())
    }
}

/// What an accepted audience is: a client id (the `aud` of every v2.0 token, and of v1.0 tokens asked for
/// by client id) or an application id URI (the `aud` of v1.0 tokens asked for by URI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudienceKind {
    ClientId,
    Uri,
}

impl AudienceKind {
    pub fn of(audience: &str) -> Self {
        if is_guid(audience) {
            AudienceKind::ClientId
        } else {
            AudienceKind::Uri
        }
    }
}

/// An `AUTH_AUDIENCE` entry that was changed on load, for the log and the doctor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceNotice {
    /// The entry as configured.
    pub given: String,
    /// The audience accepted in its place.
    pub used: String,
}

impl fmt::Display for AudienceNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AUTH_AUDIENCE lists {:?}, a client-credentials scope (what Purview's Audience field takes), not an audience: \
             tokens for that scope carry {:?} in `aud`, so that is accepted; write {:?} in AUTH_AUDIENCE",
            self.given, self.used, self.used
        )
    }
}

/// One `AUTH_AUDIENCE` entry as uc-access uses it: a `/.default` scope becomes the audience its tokens carry
/// (Entra itself takes everything before the last `/` of such a scope as the v1.0 resource), and a client id
/// is written the way Entra writes GUIDs (lower case), since `aud` is compared exactly.
///
/// Stripping rather than refusing: the scope is the value Purview's *Audience* field needs, so pasting it
/// here too is the likeliest mistake, and what it means is not in doubt; refusing would stop every function
/// for a fix that is mechanical. The notice is logged at start and repeated by the doctor.
pub fn normalize(entry: &str) -> Result<(String, Option<AudienceNotice>), String> {
    let entry = entry.trim();
    if entry.chars().any(char::is_whitespace) {
        return Err(format!(
            "{entry:?} contains a space; separate audiences with commas"
        ));
    }
    let (stripped, was_scope) = match strip_default_scope(entry) {
        Some(rest) => (rest, true),
        None => (entry, false),
    };
    if stripped.is_empty() {
        return Err(format!(
            "{entry:?} is only a scope suffix: write the application id URI or the client id of uc-access's app registration"
        ));
    }
    let used = if is_guid(stripped) {
        stripped.to_ascii_lowercase()
    } else {
        stripped.to_owned()
    };
    let notice = was_scope.then(|| AudienceNotice {
        given: entry.to_owned(),
        used: used.clone(),
    });
    Ok((used, notice))
}

/// The resource a `<resource>/.default` scope names, when `value` is such a scope.
fn strip_default_scope(value: &str) -> Option<&str> {
    let cut = value.len().checked_sub(DEFAULT_SCOPE_SUFFIX.len())?;
    let (head, tail) = (value.get(..cut)?, value.get(cut..)?);
    tail.eq_ignore_ascii_case(DEFAULT_SCOPE_SUFFIX)
        .then_some(head)
}

/// A hyphenated GUID, the way Entra writes client ids.
fn is_guid(value: &str) -> bool {
    value.len() == 36 && Uuid::parse_str(value).is_ok()
}

/// Tokens of this tenant refused only because of their audience (signature, issuer, time and tenant were
/// valid): which `aud` they carried, in which version, from which application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceMismatch {
    pub version: TokenVersion,
    pub audience: String,
    /// The calling application of the latest such token.
    pub app_id: Uuid,
    pub count: u64,
}

/// The mismatches seen since this process started (bounded; nothing here is secret: an audience and a
/// client id are identifiers, and the token itself is never kept).
#[derive(Debug, Default)]
pub(crate) struct AudienceMismatches {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    by_audience: BTreeMap<(TokenVersion, String), (Uuid, u64)>,
    /// Mismatches of audiences beyond the remembered ones.
    others: u64,
}

impl AudienceMismatches {
    pub(crate) fn record(&self, version: TokenVersion, audience: &str, app_id: Uuid) {
        let audience: String = audience.chars().take(MAX_AUDIENCE_CHARS).collect();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let full = seen.by_audience.len() >= MAX_REMEMBERED;
        match seen.by_audience.get_mut(&(version, audience.clone())) {
            Some(entry) => {
                entry.0 = app_id;
                entry.1 += 1;
            }
            None if full => seen.others += 1,
            None => {
                seen.by_audience.insert((version, audience), (app_id, 1));
            }
        }
    }

    /// What was seen, and how many more mismatches had audiences beyond those remembered.
    pub(crate) fn snapshot(&self) -> (Vec<AudienceMismatch>, u64) {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let list = seen
            .by_audience
            .iter()
            .map(|((version, audience), (app_id, count))| AudienceMismatch {
                version: *version,
                audience: audience.clone(),
                app_id: *app_id,
                count: *count,
            })
            .collect();
        (list, seen.others)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT_ID: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";

    #[test]
    fn a_default_scope_becomes_the_audience_its_tokens_carry_with_a_notice() {
        for (given, used) in [
            ("api://uc-access/.default", "api://uc-access"),
            ("api://uc-access/.DEFAULT", "api://uc-access"),
            (
                "https://uc-access.contoso.com/.default",
                "https://uc-access.contoso.com",
            ),
            ("6E74172B-BE56-4843-9FF4-E66A39BB12E3/.default", CLIENT_ID),
        ] {
            let (value, notice) = normalize(given).unwrap();
            assert_eq!(value, used, "{given}");
            let notice = notice.expect("a scope is reported");
            assert_eq!(notice.given, given);
            assert_eq!(notice.used, used);
            assert!(notice.to_string().contains("scope"), "{notice}");
        }
    }

    #[test]
    fn uris_and_client_ids_are_kept_and_client_ids_are_lower_cased_without_a_notice() {
        assert_eq!(
            normalize("api://uc-access").unwrap(),
            ("api://uc-access".into(), None)
        );
        assert_eq!(
            normalize(" 6E74172B-BE56-4843-9FF4-E66A39BB12E3 ").unwrap(),
            (CLIENT_ID.into(), None)
        );
        // A trailing slash is part of the value (`aud` is compared exactly); only `/.default` is a scope.
        assert_eq!(
            normalize("https://contoso.com/api/").unwrap().0,
            "https://contoso.com/api/"
        );
        assert_eq!(AudienceKind::of(CLIENT_ID), AudienceKind::ClientId);
        assert_eq!(AudienceKind::of("api://uc-access"), AudienceKind::Uri);
        assert_eq!(
            AudienceKind::of("6e74172bbe5648439ff4e66a39bb12e3"),
            AudienceKind::Uri
        );
    }

    #[test]
    fn an_entry_that_is_only_a_scope_suffix_or_holds_a_space_is_refused() {
        for bad in ["/.default", "api://uc-access api://other"] {
            let problem = normalize(bad).unwrap_err();
            assert!(problem.contains(bad), "{problem}");
        }
    }

    #[test]
    fn the_version_comes_from_ver_and_a_token_without_ver_follows_the_v2_rules() {
        assert_eq!(
            TokenVersion::from_claim(Some("1.0")),
            Some(TokenVersion::V1)
        );
        assert_eq!(
            TokenVersion::from_claim(Some("2.0")),
            Some(TokenVersion::V2)
        );
        assert_eq!(TokenVersion::from_claim(None), Some(TokenVersion::V2));
        assert_eq!(TokenVersion::from_claim(Some("3.0")), None);
        assert_eq!(TokenVersion::from_claim(Some("1")), None);
        assert_eq!(TokenVersion::V1.app_id_claim(), "appid");
        assert_eq!(TokenVersion::V2.app_id_claim(), "azp");
    }

    #[test]
    fn mismatches_are_counted_per_version_and_audience_and_bounded() {
        let seen = AudienceMismatches::default();
        let app = Uuid::from_u128(7);
        seen.record(TokenVersion::V2, CLIENT_ID, app);
        seen.record(TokenVersion::V2, CLIENT_ID, app);
        seen.record(TokenVersion::V1, "api://other", app);
        let (list, others) = seen.snapshot();
        assert_eq!(others, 0);
        assert_eq!(list.len(), 2);
        let v2 = list.iter().find(|m| m.version == TokenVersion::V2).unwrap();
        assert_eq!((v2.audience.as_str(), v2.count), (CLIENT_ID, 2));
        for i in 0..20 {
            seen.record(TokenVersion::V2, &format!("api://x{i}"), app);
        }
        let (list, others) = seen.snapshot();
        assert_eq!(list.len(), MAX_REMEMBERED);
        assert_eq!(others, 14);
        let fresh = AudienceMismatches::default();
        fresh.record(TokenVersion::V1, &"a".repeat(10_000), app);
        assert_eq!(fresh.snapshot().0[0].audience.len(), MAX_AUDIENCE_CHARS);
    }
}
