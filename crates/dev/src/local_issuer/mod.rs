//! A local stand-in for Entra ID so a newcomer can curl the local run: its own RSA key persisted on disk,
//! a v2.0 and a v1.0 OpenID configuration and key set served over HTTP (laid out as Entra lays them out),
//! and tokens minted for preset callers in either version's shape. The local run validates these tokens
//! with the very same [`Authenticator`](uc_access::auth::Authenticator) as production. Production never reaches
//! into this module; only the local run, the tests and the benchmarks do.

mod caller;
mod key;
mod router;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use url::Url;
use uuid::Uuid;

pub use caller::{InvalidLocalCaller, LocalCaller};

use uc_access::auth::TokenVersion;
use uc_access::auth::{AuthSettings, Callers, FunctionAccess};

/// Where the lead mounts [`LocalIssuer::router`]: `app.nest(MOUNT_PATH, issuer.router())`.
pub const MOUNT_PATH: &str = "/local-issuer";
/// The fixed tenant of the local run ("10ca1" reads "local").
pub const LOCAL_TENANT_ID: Uuid = Uuid::from_u128(0x10ca1000_0000_4000_8000_000000000000);
/// The application id of the local stand-in for Purview's service principal.
pub const LOCAL_PURVIEW_APP_ID: Uuid = Uuid::from_u128(0x10ca1000_0000_4000_8000_0000000000a1);
/// The client application people use locally (the Power Automate connector's stand-in).
pub const LOCAL_CONNECTOR_APP_ID: Uuid = Uuid::from_u128(0x10ca1000_0000_4000_8000_0000000000c1);
/// The object id of the `operator` preset.
pub const LOCAL_OPERATOR_OBJECT_ID: Uuid = Uuid::from_u128(0x10ca1000_0000_4000_8000_0000000000b1);
/// The application id URI of the local uc-access registration: the `aud` of v1.0 tokens asked for by URI.
pub const LOCAL_AUDIENCE: &str = "api://uc-access-local";
/// The client id of the local uc-access registration: the `aud` of every v2.0 token for it.
pub const LOCAL_API_CLIENT_ID: Uuid = Uuid::from_u128(0x10ca1000_0000_4000_8000_0000000000ac);
/// The app role that lets people use the operator functions.
pub const OPERATOR_ROLE: &str = "UcAccess.Operator";
/// The function Purview calls; only it accepts the local Purview application.
const PURVIEW_FUNCTION: &str = "purview-callback";

/// The local issuer could not load its key or sign.
#[derive(Debug, thiserror::Error)]
pub enum LocalIssuerError {
    #[error("local issuer key {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("local issuer key: {0}")]
    Key(String),
    #[error("local issuer could not sign: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

impl LocalIssuerError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What Entra puts in `aud` of a token for the local uc-access registration, per version: the client id
/// in v2.0 tokens, the application id URI in v1.0 tokens asked for with `api://uc-access-local/.default`.
pub fn local_audience(version: TokenVersion) -> String {
    match version {
        TokenVersion::V1 => LOCAL_AUDIENCE.to_owned(),
        TokenVersion::V2 => LOCAL_API_CLIENT_ID.to_string(),
    }
}

/// Where the issuer's documents live on a server whose base URL is `base_url` (e.g. `http://127.0.0.1:7071`).
fn mount_url(base_url: &Url) -> String {
    format!("{}{MOUNT_PATH}", base_url.as_str().trim_end_matches('/'))
}

/// The `iss` of each version's tokens and document: `<mount>/v2.0` and `<mount>/`, as Entra's differ
/// (`https://login.microsoftonline.com/{tenant}/v2.0` and `https://sts.windows.net/{tenant}/`).
pub fn issuer_url(base_url: &Url, version: TokenVersion) -> String {
    match version {
        TokenVersion::V2 => format!("{}/v2.0", mount_url(base_url)),
        TokenVersion::V1 => format!("{}/", mount_url(base_url)),
    }
}

/// The v2.0 OpenID configuration URL the local run's [`AuthSettings`] point at; the v1.0 one is derived
/// from it by the production rule (drop `/v2.0`).
pub fn openid_configuration_url(base_url: &Url) -> Url {
    let raw = format!(
        "{}{}",
        mount_url(base_url),
        router::V2_OPENID_CONFIGURATION_PATH
    );
    Url::parse(&raw).expect("a base URL plus a fixed path is a URL")
}

/// The settings of the local run: the local tenant and audience, keys from the local issuer, the local
/// Purview application allowed on `purview-callback` (a function for services, as in production), and the
/// `UcAccess.Operator` role on every other function in `functions` (functions for people).
pub fn local_auth_settings(base_url: &Url, functions: &[&str]) -> AuthSettings {
    let mut settings = AuthSettings::new(
        LOCAL_TENANT_ID,
        vec![
            local_audience(TokenVersion::V1),
            local_audience(TokenVersion::V2),
        ],
        openid_configuration_url(base_url),
    );
    for function in functions {
        let mut access = FunctionAccess::default();
        if *function == PURVIEW_FUNCTION {
            access.allowed_app_ids.insert(LOCAL_PURVIEW_APP_ID);
            access.callers = Callers::Services;
        } else {
            access.allowed_roles.insert(OPERATOR_ROLE.to_owned());
            access.callers = Callers::People;
        }
        settings = settings.with_function(function, access);
    }
    settings
}

/// Signs tokens for local callers and publishes the matching public key.
pub struct LocalIssuer {
    /// Where the documents are served: `<base URL>/local-issuer`.
    mount: String,
    kid: String,
    signing_key: EncodingKey,
    jwk: Jwk,
}

impl fmt::Debug for LocalIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalIssuer")
            .field("mount", &self.mount)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl LocalIssuer {
    /// Loads the key kept in `dir` (e.g. `.uc-access/local-issuer`), generating it on first use, for the
    /// server at `base_url`. Every process given the same directory signs with the same key.
    pub fn load_or_create(dir: &Path, base_url: &Url) -> Result<Self, LocalIssuerError> {
        let der = key::load_or_create(dir)?;
        let signing_key = EncodingKey::from_rsa_pem(key::pkcs8_pem(&der).as_bytes())?;
        let mut jwk = Jwk::from_encoding_key(&signing_key, Algorithm::RS256)?;
        // The RFC 7638 thumbprint: stable for a key, different for another, like Entra's key ids.
        let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            mount: mount_url(base_url),
            kid,
            signing_key,
            jwk,
        })
    }

    /// The `iss` of minted tokens of `version` and of that version's OpenID configuration.
    pub fn issuer(&self, version: TokenVersion) -> String {
        match version {
            TokenVersion::V2 => format!("{}/v2.0", self.mount),
            TokenVersion::V1 => format!("{}/", self.mount),
        }
    }

    /// The key id in the header of minted tokens.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (with `kid`, `use: sig`, `alg: RS256`).
    pub fn jwk(&self) -> Value {
        serde_json::to_value(&self.jwk).expect("a JWK serializes")
    }

    /// The key set document: `{"keys": [jwk]}`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk()] })
    }

    /// The OpenID configuration document of `version`, shaped like Entra's (only the fields validation
    /// uses, and a few that tools expect). Both versions publish the one key, as Entra's documents do.
    pub fn openid_configuration(&self, version: TokenVersion) -> Value {
        let jwks = match version {
            TokenVersion::V2 => router::V2_JWKS_PATH,
            TokenVersion::V1 => router::V1_JWKS_PATH,
        };
        json!({
            "issuer": self.issuer(version),
            "jwks_uri": format!("{}{jwks}", self.mount),
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": [],
            "response_types_supported": ["token"],
            "subject_types_supported": ["pairwise"],
            "tenant_region_scope": "local",
        })
    }

    /// The axum router serving both versions' documents; nest it at [`MOUNT_PATH`].
    pub fn router(&self) -> Router {
        router::router(
            self.openid_configuration(TokenVersion::V2),
            self.openid_configuration(TokenVersion::V1),
            self.jwks(),
        )
    }

    /// The claims of a v2.0 token for `caller`, valid from now for `lifetime`.
    pub fn claims(&self, caller: &LocalCaller, audience: &str, lifetime: Duration) -> Value {
        self.claims_as(TokenVersion::V2, caller, audience, lifetime)
    }

    /// The claims of a token for `caller` in `version`'s shape, as Entra issues them (*Access token claims
    /// reference*): v2.0 names the caller in `azp`/`azpacr` and a person in `preferred_username`; v1.0 in
    /// `appid`/`appidacr` and `unique_name`/`upn`; each has its own issuer.
    pub fn claims_as(
        &self,
        version: TokenVersion,
        caller: &LocalCaller,
        audience: &str,
        lifetime: Duration,
    ) -> Value {
        let id = caller.identity();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut claims = json!({
            "aud": audience,
            "iss": self.issuer(version),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime.as_secs(),
            "tid": LOCAL_TENANT_ID,
            "oid": id.object_id,
            "sub": id.object_id,
            "ver": version.as_claim(),
        });
        match version {
            TokenVersion::V2 => {
                claims["azp"] = json!(id.app_id);
                claims["azpacr"] = json!("1");
            }
            TokenVersion::V1 => {
                claims["appid"] = json!(id.app_id);
                claims["appidacr"] = json!("1");
            }
        }
        if !id.roles.is_empty() {
            claims["roles"] = json!(id.roles);
        }
        if id.delegated {
            claims["scp"] = json!("user_impersonation");
            let name = match caller {
                LocalCaller::Operator => "operator".to_owned(),
                _ => id.object_id.to_string(),
            };
            let username = json!(format!("{name}@uc-access.local"));
            match version {
                TokenVersion::V2 => claims["preferred_username"] = username,
                TokenVersion::V1 => {
                    claims["unique_name"] = username.clone();
                    claims["upn"] = username;
                }
            }
        } else {
            claims["idtyp"] = json!("app");
        }
        claims
    }

    /// A signed v2.0 token for `caller`.
    pub fn mint(
        &self,
        caller: &LocalCaller,
        audience: &str,
        lifetime: Duration,
    ) -> Result<String, LocalIssuerError> {
        self.mint_as(TokenVersion::V2, caller, audience, lifetime)
    }

    /// A signed token for `caller` in `version`'s shape (what `uc-access-dev token <caller>` prints).
    pub fn mint_as(
        &self,
        version: TokenVersion,
        caller: &LocalCaller,
        audience: &str,
        lifetime: Duration,
    ) -> Result<String, LocalIssuerError> {
        self.sign_claims(&self.claims_as(version, caller, audience, lifetime))
    }

    /// Signs arbitrary claims with the issuer's key (RS256, its `kid`): for tests of every refusal.
    pub fn sign_claims(&self, claims: &Value) -> Result<String, LocalIssuerError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.signing_key)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://127.0.0.1:7071/").unwrap()
    }

    #[test]
    fn the_key_is_persisted_with_owner_only_permissions_and_reused_by_the_next_load() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join(".uc-access/local-issuer");
        let first = LocalIssuer::load_or_create(&keys, &base()).unwrap();
        let second = LocalIssuer::load_or_create(&keys, &base()).unwrap();
        assert_eq!(first.kid(), second.kid());
        assert_eq!(first.jwk(), second.jwk());
        let other = LocalIssuer::load_or_create(&dir.path().join("other"), &base()).unwrap();
        assert_ne!(first.kid(), other.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(keys.join("signing-key.pk8"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir_mode = std::fs::metadata(&keys).unwrap().permissions().mode();
            assert_eq!(dir_mode & 0o777, 0o700);
        }
    }

    #[test]
    fn a_corrupt_key_file_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("signing-key.pk8"), b"not a key").unwrap();
        let err = LocalIssuer::load_or_create(dir.path(), &base()).unwrap_err();
        assert!(err.to_string().contains("delete it"), "{err}");
    }

    #[test]
    fn documents_point_at_the_mount_path_of_the_server_laid_out_as_entra_lays_them_out() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = LocalIssuer::load_or_create(dir.path(), &base()).unwrap();
        let v2 = issuer.openid_configuration(TokenVersion::V2);
        assert_eq!(v2["issuer"], "http://127.0.0.1:7071/local-issuer/v2.0");
        assert_eq!(
            v2["jwks_uri"],
            "http://127.0.0.1:7071/local-issuer/discovery/v2.0/keys"
        );
        let v1 = issuer.openid_configuration(TokenVersion::V1);
        assert_eq!(v1["issuer"], "http://127.0.0.1:7071/local-issuer/");
        assert_eq!(
            v1["jwks_uri"],
            "http://127.0.0.1:7071/local-issuer/discovery/keys"
        );
        assert_eq!(
            issuer_url(&base(), TokenVersion::V1),
            issuer.issuer(TokenVersion::V1)
        );
        let v2_url = openid_configuration_url(&base());
        assert_eq!(
            v2_url.as_str(),
            "http://127.0.0.1:7071/local-issuer/v2.0/.well-known/openid-configuration"
        );
        assert_eq!(
            uc_access::auth::derive_v1_openid_configuration_url(&v2_url)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:7071/local-issuer/.well-known/openid-configuration",
            "the production rule finds the local v1.0 document"
        );
        let jwk = issuer.jwk();
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["kid"], issuer.kid());
        assert!(
            jwk.get("d").is_none(),
            "the private exponent must never be published"
        );
    }

    #[test]
    fn local_settings_allow_purview_on_the_callback_and_operators_elsewhere() {
        let s = local_auth_settings(&base(), &["purview-callback", "grant-access"]);
        assert_eq!(s.tenant_id, LOCAL_TENANT_ID);
        assert_eq!(
            s.audiences,
            vec![LOCAL_AUDIENCE.to_owned(), LOCAL_API_CLIENT_ID.to_string()]
        );
        assert!(s.v1_openid_configuration_url.is_some());
        let purview = s.function("purview-callback").unwrap();
        assert!(purview.allowed_app_ids.contains(&LOCAL_PURVIEW_APP_ID));
        assert!(purview.allowed_roles.is_empty());
        assert_eq!(purview.callers, Callers::Services);
        let grant = s.function("grant-access").unwrap();
        assert!(grant.allowed_roles.contains(OPERATOR_ROLE));
        assert!(grant.allowed_app_ids.is_empty());
        assert_eq!(grant.callers, Callers::People);
    }

    #[test]
    fn each_version_names_the_caller_and_the_person_in_its_own_claims() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = LocalIssuer::load_or_create(dir.path(), &base()).unwrap();
        let minute = Duration::from_secs(60);
        let v1 = issuer.claims_as(
            TokenVersion::V1,
            &LocalCaller::Operator,
            LOCAL_AUDIENCE,
            minute,
        );
        assert_eq!(v1["ver"], "1.0");
        assert_eq!(v1["iss"], "http://127.0.0.1:7071/local-issuer/");
        assert_eq!(v1["appid"], json!(LOCAL_CONNECTOR_APP_ID));
        assert!(v1.get("azp").is_none() && v1.get("preferred_username").is_none());
        assert_eq!(v1["unique_name"], "operator@uc-access.local");
        let v2 = issuer.claims(
            &LocalCaller::Purview,
            &local_audience(TokenVersion::V2),
            minute,
        );
        assert_eq!(v2["ver"], "2.0");
        assert_eq!(v2["aud"], LOCAL_API_CLIENT_ID.to_string());
        assert_eq!(v2["azp"], json!(LOCAL_PURVIEW_APP_ID));
        assert!(v2.get("appid").is_none());
        assert_eq!(v2["idtyp"], "app");
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = LocalIssuer::load_or_create(dir.path(), &base()).unwrap();
        let printed = format!("{issuer:?}");
        assert!(
            printed.contains("kid") && !printed.contains("signing_key"),
            "{printed}"
        );
    }
}
