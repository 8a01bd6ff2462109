//! Authentication settings: the tenant, the audiences, where the signing keys are published, and per
//! function who may call (deny by default). Loaded once at start; every error names the key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;
use uuid::Uuid;

use super::audience::{self, AudienceNotice};
use crate::env::{Env, SettingsError};
use crate::secrets::LiveSecret;

pub const TENANT_ID: &str = "AUTH_TENANT_ID";
pub const AUDIENCE: &str = "AUTH_AUDIENCE";
pub const OPENID_CONFIGURATION_URL: &str = "AUTH_OPENID_CONFIGURATION_URL";
pub const V1_OPENID_CONFIGURATION_URL: &str = "AUTH_V1_OPENID_CONFIGURATION_URL";
pub const CLOCK_SKEW_SECONDS: &str = "AUTH_CLOCK_SKEW_SECONDS";

/// Tolerated difference between our clock and Entra's when checking `exp` and `nbf`. Small, because
/// Entra tokens live about an hour and both sides sync their clocks; a minute absorbs ordinary drift.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;
/// More skew than this would mostly extend the life of stolen tokens.
const MAX_CLOCK_SKEW_SECONDS: u64 = 300;

/// Everything the [`Authenticator`](super::Authenticator) needs.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub tenant_id: Uuid,
    /// Accepted `aud` values: the application id URI (v1.0 tokens asked for by URI) and/or the client id
    /// (every v2.0 token) of uc-access's app registration.
    pub audiences: Vec<String>,
    /// `AUTH_AUDIENCE` entries changed on load (a `/.default` scope), logged at start and shown by the doctor.
    pub audience_notices: Vec<AudienceNotice>,
    /// The tenant's v2.0 OpenID configuration document: the issuer and signing keys of v2.0 tokens.
    pub openid_configuration_url: Url,
    /// The v1.0 document (issuer `https://sts.windows.net/{tenant}/`), for v1.0 tokens; `None` when it is
    /// neither set nor derivable from the v2.0 URL, and then v1.0 tokens are refused.
    pub v1_openid_configuration_url: Option<Url>,
    pub clock_skew: Duration,
    pub key_refresh: KeyRefreshPolicy,
    functions: BTreeMap<String, FunctionAccess>,
}

/// When the cached signing keys are fetched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRefreshPolicy {
    /// Keys older than this are refreshed before use (Entra publishes new keys well before signing with them).
    pub max_age: Duration,
    /// At most one refetch triggered by an unknown key id per this interval, so forged key ids cannot make
    /// us hammer Entra; also the pause between attempts while Entra is unreachable.
    pub min_refetch_interval: Duration,
    /// Timeout for each HTTP request to the OpenID configuration and key set.
    pub http_timeout: Duration,
}

impl Default for KeyRefreshPolicy {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(24 * 60 * 60),
            min_refetch_interval: Duration::from_secs(60),
            http_timeout: Duration::from_secs(10),
        }
    }
}

/// Whom a function serves, which decides whether a person's delegated token may call it at all.
///
/// The default is [`Callers::Services`]: a function nobody marked as meant for people refuses delegated
/// tokens, whatever roles the person holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Callers {
    /// Services only, with app-only tokens (`purview-callback`: Purview's HTTP action always authenticates
    /// as a service principal). A delegated token is refused.
    #[default]
    Services,
    /// People too (the operator functions, which the Power Automate connector calls with delegated user
    /// tokens): an app role assigned to the person lets a delegated token in.
    People,
}

/// Who may call one function. Empty means nobody (deny by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionAccess {
    /// Client ids whose **app-only** tokens are accepted (e.g. the service principal of Purview's
    /// credential). A person signed in through a listed client gets nothing from this list.
    pub allowed_app_ids: BTreeSet<Uuid>,
    /// App roles any one of which lets a token in: an application's app-only token, or, on a function for
    /// [`Callers::People`], a person's delegated token.
    pub allowed_roles: BTreeSet<String>,
    /// Whether delegated tokens may call this function at all.
    pub callers: Callers,
    /// HTTP Basic credentials, when this function accepts them (Purview's *Basic* option).
    pub basic: Option<BasicCredentials>,
}

/// A username and password for HTTP Basic. The password is never printed.
#[derive(Clone)]
pub struct BasicCredentials {
    pub username: String,
    /// Fixed, or read from Key Vault through its cache so a rotation needs no restart.
    pub password: LiveSecret,
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

impl PartialEq for BasicCredentials {
    // Settings equality is for tests; comparing the username is enough and keeps the secret sealed.
    fn eq(&self, other: &Self) -> bool {
        self.username == other.username
    }
}
impl Eq for BasicCredentials {}

impl BasicCredentials {
    pub fn new(username: impl Into<String>, password: SecretString) -> Self {
        Self::rotating(username, LiveSecret::fixed(password))
    }

    /// Credentials whose password may change while the process runs (Key Vault).
    pub fn rotating(username: impl Into<String>, password: LiveSecret) -> Self {
        Self {
            username: username.into(),
            password,
        }
    }
}

/// `purview-callback` → `PURVIEW_CALLBACK`, the prefix of that function's settings.
pub fn setting_prefix(function: &str) -> String {
    function.replace('-', "_").to_ascii_uppercase()
}

/// The default OpenID configuration document of a tenant (v2.0 endpoint).
pub fn default_openid_configuration_url(tenant_id: Uuid) -> Url {
    let raw = format!(
        "https://login.microsoftonline.com/{tenant_id}/v2.0/.well-known/openid-configuration"
    );
    Url::parse(&raw).expect("a GUID makes a valid URL path")
}

/// The v1.0 OpenID configuration beside a v2.0 one: Learn's rule, "remove the /v2.0 in the URL if you
/// validate v1.0 tokens". `None` when `v2` does not end in `/v2.0/.well-known/openid-configuration`.
pub fn derive_v1_openid_configuration_url(v2: &Url) -> Option<Url> {
    const V2_SUFFIX: &str = "/v2.0/.well-known/openid-configuration";
    let base = v2.path().strip_suffix(V2_SUFFIX)?;
    let mut v1 = v2.clone();
    v1.set_path(&format!("{base}/.well-known/openid-configuration"));
    Some(v1)
}

/// HTTPS, except on the loopback interface where the local issuer serves plain HTTP.
pub(crate) fn is_acceptable_key_url(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

impl AuthSettings {
    /// Settings with no function allowed yet; add access with [`AuthSettings::with_function`]. The v1.0
    /// document is derived from the v2.0 one when it has Entra's shape.
    pub fn new(tenant_id: Uuid, audiences: Vec<String>, openid_configuration_url: Url) -> Self {
        Self {
            tenant_id,
            audiences,
            audience_notices: Vec::new(),
            v1_openid_configuration_url: derive_v1_openid_configuration_url(
                &openid_configuration_url,
            ),
            openid_configuration_url,
            clock_skew: Duration::from_secs(DEFAULT_CLOCK_SKEW_SECONDS),
            key_refresh: KeyRefreshPolicy::default(),
            functions: BTreeMap::new(),
        }
    }

    /// Reads the settings for `functions` (each a name, e.g. `purview-callback`, and whom it serves) from
    /// `env`.
    pub fn from_env(env: &Env, functions: &[(&str, Callers)]) -> Result<Self, SettingsError> {
        Self::from_env_with_basic_passwords(env, functions, BTreeMap::new())
    }

    /// Like [`AuthSettings::from_env`], with Basic passwords supplied by the caller (e.g. read from Key
    /// Vault) per function name; a supplied password wins over `<FUNCTION>_BASIC_PASSWORD`.
    pub fn from_env_with_basic_passwords(
        env: &Env,
        functions: &[(&str, Callers)],
        mut passwords: BTreeMap<String, SecretString>,
    ) -> Result<Self, SettingsError> {
        let tenant_id = parse_guid(TENANT_ID, env.required(TENANT_ID)?)?;
        let (audiences, audience_notices) = audiences(env)?;
        let openid_configuration_url = match env.get(OPENID_CONFIGURATION_URL) {
            None => default_openid_configuration_url(tenant_id),
            Some(raw) => key_url(OPENID_CONFIGURATION_URL, raw)?,
        };
        let v1_openid_configuration_url = match env.get(V1_OPENID_CONFIGURATION_URL) {
            None => derive_v1_openid_configuration_url(&openid_configuration_url),
            Some(raw) => Some(key_url(V1_OPENID_CONFIGURATION_URL, raw)?),
        };
        let skew: u64 = env.parse_or(CLOCK_SKEW_SECONDS, DEFAULT_CLOCK_SKEW_SECONDS)?;
        if skew > MAX_CLOCK_SKEW_SECONDS {
            return Err(SettingsError::new(
                CLOCK_SKEW_SECONDS,
                format!("must be at most {MAX_CLOCK_SKEW_SECONDS}"),
            ));
        }

        let mut settings = Self::new(tenant_id, audiences, openid_configuration_url);
        settings.v1_openid_configuration_url = v1_openid_configuration_url;
        settings.audience_notices = audience_notices;
        settings.clock_skew = Duration::from_secs(skew);
        for &(function, callers) in functions {
            let mut access = function_access(env, function, passwords.remove(function))?;
            access.callers = callers;
            settings.functions.insert(function.to_owned(), access);
        }
        if let Some(unknown) = passwords.keys().next() {
            return Err(SettingsError::new(
                &format!("{}_BASIC_PASSWORD", setting_prefix(unknown)),
                "supplied for a function that is not served",
            ));
        }
        Ok(settings)
    }

    /// Sets who may call `function`, replacing what was there.
    pub fn with_function(mut self, function: &str, access: FunctionAccess) -> Self {
        self.functions.insert(function.to_owned(), access);
        self
    }

    /// Sets or replaces the Basic credentials of `function` (e.g. once Key Vault has answered).
    pub fn set_basic_credentials(&mut self, function: &str, credentials: BasicCredentials) {
        self.functions.entry(function.to_owned()).or_default().basic = Some(credentials);
    }

    /// Who may call `function`; `None` when it was never configured (then nobody may).
    pub fn function(&self, function: &str) -> Option<&FunctionAccess> {
        self.functions.get(function)
    }
}

/// `AUTH_AUDIENCE`, each entry normalized ([`audience::normalize`]); a rewritten entry is logged once here.
fn audiences(env: &Env) -> Result<(Vec<String>, Vec<AudienceNotice>), SettingsError> {
    let mut audiences = Vec::new();
    let mut notices = Vec::new();
    for entry in env.list(AUDIENCE) {
        let (audience, notice) =
            audience::normalize(&entry).map_err(|problem| SettingsError::new(AUDIENCE, problem))?;
        if let Some(notice) = notice {
            tracing::warn!(event = "auth.audience_scope", given = %notice.given, used = %notice.used, "{notice}");
            notices.push(notice);
        }
        if !audiences.contains(&audience) {
            audiences.push(audience);
        }
    }
    if audiences.is_empty() {
        return Err(SettingsError::new(AUDIENCE, "is required but not set"));
    }
    Ok((audiences, notices))
}

/// An OpenID configuration URL: https, or plain http on loopback (the local issuer).
fn key_url(key: &str, raw: &str) -> Result<Url, SettingsError> {
    let url = Url::parse(raw).map_err(|e| SettingsError::new(key, format!("not a URL: {e}")))?;
    if !is_acceptable_key_url(&url) {
        return Err(SettingsError::new(
            key,
            "must be https (plain http only on localhost)",
        ));
    }
    Ok(url)
}

fn function_access(
    env: &Env,
    function: &str,
    supplied_password: Option<SecretString>,
) -> Result<FunctionAccess, SettingsError> {
    let prefix = setting_prefix(function);
    let app_ids_key = format!("{prefix}_ALLOWED_APP_IDS");
    let allowed_app_ids = env
        .list(&app_ids_key)
        .iter()
        .map(|raw| parse_guid(&app_ids_key, raw))
        .collect::<Result<_, _>>()?;
    let allowed_roles = env
        .list(&format!("{prefix}_ALLOWED_ROLES"))
        .into_iter()
        .collect();

    let user_key = format!("{prefix}_BASIC_USERNAME");
    let password_key = format!("{prefix}_BASIC_PASSWORD");
    let password = supplied_password.or_else(|| {
        env.get(&password_key)
            .map(|p| SecretString::from(p.to_owned()))
    });
    let basic = match (env.get(&user_key), password) {
        (None, None) => None,
        (Some(username), Some(password)) => {
            if username.contains(':') {
                // RFC 7617: the user-id cannot contain a colon, or the header could not be split.
                return Err(SettingsError::new(&user_key, "must not contain ':'"));
            }
            // Only a supplied value can be blank here (the environment counts blank as unset).
            if super::basic::is_blank(&password) {
                return Err(SettingsError::new(
                    &password_key,
                    "is empty: an empty Basic password would let anyone who sends the username in; set a real password (or unset the username to turn Basic off)",
                ));
            }
            Some(BasicCredentials::new(username, password))
        }
        (Some(_), None) => {
            return Err(SettingsError::new(
                &password_key,
                format!("is required when {user_key} is set"),
            ));
        }
        (None, Some(_)) => {
            return Err(SettingsError::new(
                &user_key,
                format!("is required when a password is set for {function}"),
            ));
        }
    };
    Ok(FunctionAccess {
        allowed_app_ids,
        allowed_roles,
        callers: Callers::Services,
        basic,
    })
}

fn parse_guid(key: &str, raw: &str) -> Result<Uuid, SettingsError> {
    // Entra GUIDs are written hyphenated; reject other spellings to catch pasted names early.
    if raw.len() != 36 {
        return Err(SettingsError::new(key, format!("{raw:?} is not a GUID")));
    }
    Uuid::parse_str(raw).map_err(|_| SettingsError::new(key, format!("{raw:?} is not a GUID")))
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
