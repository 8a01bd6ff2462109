//! The one entry point every HTTP function calls first: credentials from the headers → an allowed
//! [`Caller`] or an [`AuthError`]. Production and the local run use this same code; only settings differ.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use super::audience::{AudienceMismatch, AudienceMismatches};
use super::bearer::{self, KeySets, Refusal, TokenKind, VerifiedToken};
use super::caller::{AllowedBy, ApplicationCaller, BasicCaller, Caller, UserCaller};
use super::keys::KeyStore;
use super::settings::{AuthSettings, Callers, FunctionAccess};
use super::{AuthError, basic};

/// Validates callers against the settings; holds the cached signing keys. Build once, share (`Arc`).
#[derive(Debug)]
pub struct Authenticator {
    settings: AuthSettings,
    /// The v2.0 document's keys.
    keys: KeyStore,
    /// The v1.0 document's keys, fetched only when a v1.0 token arrives.
    keys_v1: Option<KeyStore>,
    mismatches: AudienceMismatches,
}

impl Authenticator {
    /// An authenticator with its own HTTP client for the OpenID configuration and key set.
    pub fn new(settings: AuthSettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.key_refresh.http_timeout)
            .timeout(settings.key_refresh.http_timeout)
            // Key material must come from the configured origin, not wherever a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self::with_client(settings, http))
    }

    /// An authenticator using the given HTTP client (shared connection pool, custom TLS roots).
    pub fn with_client(settings: AuthSettings, http: reqwest::Client) -> Self {
        let store = |url: &url::Url| {
            KeyStore::new(
                http.clone(),
                url.clone(),
                settings.tenant_id,
                settings.key_refresh,
            )
        };
        let keys = store(&settings.openid_configuration_url);
        let keys_v1 = settings.v1_openid_configuration_url.as_ref().map(store);
        Self {
            settings,
            keys,
            keys_v1,
            mismatches: AudienceMismatches::default(),
        }
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Tokens of this tenant refused since start only because of their audience (everything else about
    /// them was valid), and how many more had audiences beyond those listed: what the doctor explains.
    pub fn audience_mismatches(&self) -> (Vec<AudienceMismatch>, u64) {
        self.mismatches.snapshot()
    }

    /// How long a caller refused with the retryable `error` should wait before trying again, when this
    /// authenticator knows: for [`AuthError::SigningKeyNotYetKnown`], the time left until a refetch of the
    /// key set is allowed (at least a second, so the retry does not arrive before it).
    pub fn retry_after(&self, error: AuthError) -> Option<std::time::Duration> {
        match error {
            AuthError::SigningKeyNotYetKnown => Some(
                self.keys
                    .unknown_kid_refetch_wait()
                    .into_iter()
                    .chain(
                        self.keys_v1
                            .iter()
                            .filter_map(KeyStore::unknown_kid_refetch_wait),
                    )
                    .max()
                    .unwrap_or_default()
                    .max(std::time::Duration::from_secs(1)),
            ),
            _ => None,
        }
    }

    /// Authenticates the caller of `function` (its folder name, e.g. `purview-callback`) and checks it is
    /// allowed there. Refusals are logged at warn with the detail; the token itself is never logged.
    #[tracing::instrument(name = "authenticate", skip_all, fields(function = %function))]
    pub async fn authenticate(
        &self,
        function: &str,
        headers: &HeaderMap,
    ) -> Result<Caller, AuthError> {
        match self.check(function, headers).await {
            Ok(caller) => {
                tracing::debug!(caller.kind = caller.kind(), "caller authenticated");
                Ok(caller)
            }
            Err(refusal) => {
                tracing::warn!(
                    reason = refusal.error.reason_code(),
                    detail = %refusal.detail,
                    "caller refused"
                );
                Err(refusal.error)
            }
        }
    }

    async fn check(&self, function: &str, headers: &HeaderMap) -> Result<Caller, Refusal> {
        let refuse = |error, detail: &str| Refusal {
            error,
            detail: detail.to_owned(),
        };
        let access = self.settings.function(function);
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(refuse(
                AuthError::MissingCredentials,
                "no single Authorization header",
            ));
        };
        let value = value
            .to_str()
            .map_err(|_| refuse(AuthError::MissingCredentials, "Authorization is not ASCII"))?;
        let (scheme, credentials) = value.trim().split_once(' ').unwrap_or((value, ""));
        let credentials = credentials.trim();

        if scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty() {
            let keys = KeySets {
                v2: &self.keys,
                v1: self.keys_v1.as_ref(),
            };
            let token = bearer::verify(credentials, &self.settings, keys, &self.mismatches).await?;
            let Some(access) = access else {
                return Err(refuse(
                    AuthError::CallerNotAllowed,
                    "function not configured",
                ));
            };
            allow(token, access)
        } else if scheme.eq_ignore_ascii_case("basic") {
            let Some(expected) = access.and_then(|a| a.basic.as_ref()) else {
                return Err(refuse(
                    AuthError::BasicNotEnabled,
                    "no Basic credentials configured",
                ));
            };
            let username = basic::check(credentials, expected)
                .await
                .map_err(|e| refuse(e, "Basic credentials did not match"))?;
            Ok(Caller::Basic(BasicCaller { username }))
        } else {
            Err(refuse(
                AuthError::MissingCredentials,
                "Authorization scheme is neither Bearer nor Basic",
            ))
        }
    }
}

/// The allow-list decision. An app-id entry admits only that application's app-only tokens; a role
/// admits an app-only token, or a person's delegated token on a function meant for people. A delegated
/// token never reaches a function for services, whatever it holds.
fn allow(token: VerifiedToken, access: &FunctionAccess) -> Result<Caller, Refusal> {
    let delegated = token.kind == TokenKind::Delegated;
    if delegated && access.callers == Callers::Services {
        return Err(Refusal {
            error: AuthError::DelegatedTokenNotAccepted,
            detail: format!(
                "delegated token through app {} on a function for services",
                token.app_id
            ),
        });
    }
    let app_listed = access.allowed_app_ids.contains(&token.app_id);
    let role = token
        .roles
        .iter()
        .find(|r| access.allowed_roles.contains(r.as_str()));
    let allowed_by = match (app_listed && !delegated, role) {
        (true, _) => AllowedBy::AppId,
        (false, Some(role)) => AllowedBy::Role(role.clone()),
        (false, None) if app_listed => {
            return Err(Refusal {
                error: AuthError::AppIdRequiresAppOnlyToken,
                detail: format!(
                    "app {} is listed, but this is a delegated token with roles {:?}",
                    token.app_id, token.roles
                ),
            });
        }
        (false, None) => {
            return Err(Refusal {
                error: AuthError::CallerNotAllowed,
                detail: format!(
                    "{} token of app {} with roles {:?} is not on the allow-list",
                    if delegated { "delegated" } else { "app-only" },
                    token.app_id,
                    token.roles
                ),
            });
        }
    };
    Ok(if delegated {
        Caller::User(UserCaller {
            app_id: token.app_id,
            object_id: token.object_id,
            display_name: token.display_name,
            roles: token.roles,
            scopes: token.scopes,
            allowed_by,
        })
    } else {
        Caller::Application(ApplicationCaller {
            app_id: token.app_id,
            object_id: token.object_id,
            roles: token.roles,
            allowed_by,
        })
    })
}
