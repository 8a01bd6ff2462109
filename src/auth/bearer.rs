//! Entra ID bearer tokens: RS256 only, signature against the tenant's keys of the token's version, then
//! issuer, time, tenant, the claims that say who is calling, and the audience. The token is read here and
//! never kept.
//!
//! v1.0 and v2.0 tokens differ in their issuer (`https://sts.windows.net/{tenant}/` and
//! `https://login.microsoftonline.com/{tenant}/v2.0`) and in the claim naming the caller (`appid` and
//! `azp`). Learn's *Access tokens* page says a v1.0 token is validated against the v1.0 OpenID
//! configuration and a v2.0 token against the v2.0 one, whatever the API's own authority: so the `ver`
//! claim picks the document, and the token's issuer must then be exactly that document's issuer.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use uuid::Uuid;

use super::AuthError;
use super::audience::{AudienceMismatches, TokenVersion};
use super::keys::{KeyError, KeyStore};
use super::settings::AuthSettings;

/// Entra tokens are a few kilobytes; anything far larger is refused before any parsing work.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A refusal with the detail for the log (never sent to the caller).
pub(crate) struct Refusal {
    pub error: AuthError,
    pub detail: String,
}

impl Refusal {
    fn new(error: AuthError, detail: impl Into<String>) -> Self {
        Self {
            error,
            detail: detail.into(),
        }
    }
}

#[derive(Deserialize)]
struct UnverifiedHeader {
    alg: String,
    kid: Option<String>,
}

/// The one claim read before the signature is checked: which version's keys and issuer apply. It chooses
/// only between the two configured documents, never a URL of the token's.
#[derive(Deserialize)]
struct VersionClaim {
    ver: Option<String>,
}

/// `aud`: one value (what Entra sends) or a list.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum AudienceClaim {
    One(String),
    Many(Vec<String>),
}

impl AudienceClaim {
    fn values(&self) -> Vec<&str> {
        match self {
            AudienceClaim::One(one) => vec![one.as_str()],
            AudienceClaim::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}

/// The claims we read after the signature and the registered claims have been checked.
#[derive(Deserialize)]
pub(crate) struct IdentityClaims {
    pub aud: Option<AudienceClaim>,
    pub tid: Option<String>,
    /// v2 tokens: the client id of the calling application.
    pub azp: Option<String>,
    /// v1 tokens: the client id of the calling application.
    pub appid: Option<String>,
    pub oid: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Delegated scopes: only in tokens a person obtained through a client (user tokens).
    pub scp: Option<String>,
    /// The token type, an optional claim: `app` in app-only tokens; `user` (or `device`) in the others
    /// only when the API asks for it (`include_user_token`).
    pub idtyp: Option<String>,
    pub upn: Option<String>,
    /// v2.0 tokens: the person's username.
    pub preferred_username: Option<String>,
    /// v1.0 tokens: the person's username.
    pub unique_name: Option<String>,
}

/// Whether a token speaks for an application itself or for a person signed in through one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Client credentials: no `scp`, and `idtyp` is `app` when present.
    AppOnly,
    /// Anything else: `scp` present, or an `idtyp` other than `app` (a person, a device).
    Delegated,
}

impl TokenKind {
    /// Entra marks a user token by `scp` (only user tokens carry it) and, when the API asked for it, by
    /// `idtyp`; an app-only token has neither a scope nor an `idtyp` other than `app`. A token that
    /// contradicts itself (`scp` with `idtyp: app`) counts as delegated, the kind that is allowed less.
    fn of(scp: Option<&str>, idtyp: Option<&str>) -> Self {
        match (scp, idtyp) {
            (None, None | Some("app")) => TokenKind::AppOnly,
            _ => TokenKind::Delegated,
        }
    }
}

/// A token whose signature and claims are valid for this tenant and audience.
pub(crate) struct VerifiedToken {
    pub version: TokenVersion,
    pub kind: TokenKind,
    pub app_id: Uuid,
    pub object_id: Option<Uuid>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub display_name: Option<String>,
}

/// The signing keys of each token version: v2.0 always, v1.0 when its document is known.
pub(crate) struct KeySets<'a> {
    pub v2: &'a KeyStore,
    pub v1: Option<&'a KeyStore>,
}

pub(crate) async fn verify(
    token: &str,
    settings: &AuthSettings,
    keys: KeySets<'_>,
    mismatches: &AudienceMismatches,
) -> Result<VerifiedToken, Refusal> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Refusal::new(AuthError::MalformedToken, "token too long"));
    }
    let header = read_header(token)?;
    // Decide the algorithm from our policy, not from the token: this is what defeats `none` and the
    // HS256-with-the-public-key confusion. The library checks it again against the key's family.
    if header.alg != "RS256" {
        return Err(Refusal::new(
            AuthError::UnsupportedAlgorithm,
            format!("alg {:?}", header.alg),
        ));
    }
    let kid = header
        .kid
        .ok_or_else(|| Refusal::new(AuthError::MalformedToken, "header has no kid"))?;
    let version = read_version(token)?;
    let store = match version {
        TokenVersion::V2 => keys.v2,
        TokenVersion::V1 => keys.v1.ok_or_else(|| {
            Refusal::new(
                AuthError::WrongIssuer,
                "a v1.0 token, but no v1.0 OpenID configuration is known (set AUTH_V1_OPENID_CONFIGURATION_URL)",
            )
        })?,
    };
    let (snapshot, key) = store.key_for(&kid).await.map_err(|e| match e {
        KeyError::Unknown => Refusal::new(
            AuthError::UnknownSigningKey,
            format!("kid {kid:?} ({version} keys)"),
        ),
        KeyError::RefetchHeldBack { retry_after } => Refusal::new(
            AuthError::SigningKeyNotYetKnown,
            format!(
                "kid {kid:?} not in the cached {version} key set; next refetch allowed in {retry_after:?}"
            ),
        ),
        KeyError::Unavailable(detail) => Refusal::new(AuthError::KeySetUnavailable, detail),
    })?;

    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = settings.clock_skew.as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
    // The audience is checked below, last, so that a token refused only for it can be told apart (the
    // doctor names the value it carried). The library still requires the claim to be present.
    validation.validate_aud = false;
    // Exactly the issuer of the document of the token's version (OpenID Connect Core: "MUST exactly
    // match"), `{tenantid}` filled in.
    validation.set_issuer(std::slice::from_ref(&snapshot.issuer));
    let mut claims = jsonwebtoken::decode::<IdentityClaims>(token, &key, &validation)
        .map_err(|e| Refusal::new(map_jwt_error(e.kind()), format!("{e} ({version} token)")))?
        .claims;
    let aud = claims.aud.take();
    let token = identity(claims, settings.tenant_id, version)?;
    let values = aud.as_ref().map(AudienceClaim::values).unwrap_or_default();
    if !values
        .iter()
        .any(|value| settings.audiences.iter().any(|a| a == value))
    {
        if let Some(first) = values.first() {
            mismatches.record(version, first, token.app_id);
        }
        return Err(Refusal::new(
            AuthError::WrongAudience,
            format!(
                "{version} token of app {} for aud {values:?}; accepted: {:?}",
                token.app_id, settings.audiences
            ),
        ));
    }
    Ok(token)
}

/// The version the token claims, from its payload (unverified: it only chooses which configured keys and
/// issuer the token must then satisfy).
fn read_version(token: &str) -> Result<TokenVersion, Refusal> {
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| Refusal::new(AuthError::MalformedToken, format!("payload: {e}")))?;
    let claim: VersionClaim = serde_json::from_slice(&bytes)
        .map_err(|e| Refusal::new(AuthError::MalformedToken, format!("payload: {e}")))?;
    TokenVersion::from_claim(claim.ver.as_deref()).ok_or_else(|| {
        Refusal::new(
            AuthError::MalformedToken,
            format!("ver {:?} is neither 1.0 nor 2.0", claim.ver),
        )
    })
}

/// The checks on the identity claims, once the signature and the registered claims are verified. The
/// caller's client id is read from the claim of the token's own version only (`appid` in v1.0, `azp` in
/// v2.0), so a token cannot name its caller in the other version's claim.
fn identity(
    claims: IdentityClaims,
    tenant: Uuid,
    version: TokenVersion,
) -> Result<VerifiedToken, Refusal> {
    let tid = claims
        .tid
        .as_deref()
        .ok_or_else(|| Refusal::new(AuthError::MissingClaim, "tid"))?;
    if parse_guid(tid, "tid")? != tenant {
        return Err(Refusal::new(AuthError::WrongTenant, format!("tid {tid}")));
    }
    let claim = version.app_id_claim();
    let app_id = match version {
        TokenVersion::V1 => claims.appid.as_deref(),
        TokenVersion::V2 => claims.azp.as_deref(),
    }
    .ok_or_else(|| {
        Refusal::new(
            AuthError::MissingClaim,
            format!("{claim} ({version} token)"),
        )
    })?;
    let app_id = parse_guid(app_id, claim)?;
    let object_id = claims
        .oid
        .as_deref()
        .map(|oid| parse_guid(oid, "oid"))
        .transpose()?;
    let scopes = claims
        .scp
        .as_deref()
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(VerifiedToken {
        version,
        kind: TokenKind::of(claims.scp.as_deref(), claims.idtyp.as_deref()),
        app_id,
        object_id,
        roles: claims.roles,
        scopes,
        display_name: claims
            .upn
            .or(claims.preferred_username)
            .or(claims.unique_name),
    })
}

/// What [`check_unsigned`] read from a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedIdentity {
    pub kid: String,
    pub version: TokenVersion,
    pub kind: TokenKind,
    pub app_id: Uuid,
    pub object_id: Option<Uuid>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
}

/// The token handling that needs no key, as [`verify`] runs it: the size limit, the header (three
/// segments, `RS256`, a `kid`), the version, then the identity claims of the payload read as if the
/// signature had been checked (the audience and issuer are not checked: they need the settings). It grants nothing (the signature is not checked); it exists so the fuzz targets and the corpus
/// tests can drive this code without a key set.
pub fn check_unsigned(token: &str, tenant: Uuid) -> Result<UnsignedIdentity, AuthError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::MalformedToken);
    }
    let header = read_header(token).map_err(|r| r.error)?;
    if header.alg != "RS256" {
        return Err(AuthError::UnsupportedAlgorithm);
    }
    let kid = header.kid.ok_or(AuthError::MalformedToken)?;
    let version = read_version(token).map_err(|r| r.error)?;
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| AuthError::MalformedToken)?;
    let claims: IdentityClaims =
        serde_json::from_slice(&bytes).map_err(|_| AuthError::MalformedToken)?;
    let token = identity(claims, tenant, version).map_err(|r| r.error)?;
    Ok(UnsignedIdentity {
        kid,
        version: token.version,
        kind: token.kind,
        app_id: token.app_id,
        object_id: token.object_id,
        roles: token.roles,
        scopes: token.scopes,
    })
}

fn read_header(token: &str) -> Result<UnverifiedHeader, Refusal> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::new(
            AuthError::MalformedToken,
            "not three segments",
        ));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|e| Refusal::new(AuthError::MalformedToken, format!("header: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Refusal::new(AuthError::MalformedToken, format!("header: {e}")))
}

fn parse_guid(raw: &str, claim: &str) -> Result<Uuid, Refusal> {
    Uuid::parse_str(raw)
        .map_err(|_| Refusal::new(AuthError::MalformedToken, format!("{claim} is not a GUID")))
}

fn map_jwt_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature | ErrorKind::InvalidRsaKey(_) => AuthError::InvalidSignature,
        ErrorKind::ExpiredSignature => AuthError::TokenExpired,
        ErrorKind::ImmatureSignature => AuthError::TokenNotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(_) => AuthError::MissingClaim,
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            AuthError::UnsupportedAlgorithm
        }
        _ => AuthError::MalformedToken,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_app_only_only_without_scp_and_with_idtyp_app_or_none() {
        let cases = [
            (None, None, TokenKind::AppOnly),
            (None, Some("app"), TokenKind::AppOnly),
            (Some("user_impersonation"), None, TokenKind::Delegated),
            (Some(""), None, TokenKind::Delegated),
            (None, Some("user"), TokenKind::Delegated),
            (None, Some("device"), TokenKind::Delegated),
            (None, Some("APP"), TokenKind::Delegated),
            (
                Some("user_impersonation"),
                Some("app"),
                TokenKind::Delegated,
            ),
            (
                Some("user_impersonation"),
                Some("user"),
                TokenKind::Delegated,
            ),
        ];
        for (scp, idtyp, expected) in cases {
            assert_eq!(
                TokenKind::of(scp, idtyp),
                expected,
                "scp {scp:?} idtyp {idtyp:?}"
            );
        }
    }
}
