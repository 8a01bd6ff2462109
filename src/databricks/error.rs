//! Typed errors from the Databricks APIs: the service's own `error_code` and message kept, classified by
//! `error_code` first (the HTTP status only as a fallback), each with a retry verdict and an operator hint.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::Securable;

/// What Databricks answered, kept as it said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The request as `METHOD /path` (no query: filters may hold personal names).
    pub request: String,
    pub status: u16,
    /// `error_code` (REST), `scimType`/`status` (SCIM) or `error` (OAuth), when the body had one.
    pub error_code: Option<String>,
    pub message: String,
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} answered {}", self.request, self.status)?;
        if let Some(code) = &self.error_code {
            write!(f, " {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// A failed call to Databricks. Carries no HTTP status for *our* callers: the edge maps it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DatabricksError {
    /// Our credentials were refused, by the token endpoint or by the API.
    #[error("Databricks did not accept uc-access's credentials: {detail}")]
    Unauthenticated {
        detail: String,
        upstream: Option<Box<Upstream>>,
    },
    /// Our principal lacks the right (typically `MANAGE` on the securable).
    #[error("permission denied: {upstream}")]
    PermissionDenied {
        upstream: Upstream,
        securable: Option<Box<Securable>>,
    },
    /// `CATALOG_DOES_NOT_EXIST`, `SCHEMA_DOES_NOT_EXIST`, `TABLE_DOES_NOT_EXIST`, ...
    #[error("securable not found: {upstream}")]
    SecurableNotFound {
        upstream: Upstream,
        securable: Option<Box<Securable>>,
    },
    /// `PRINCIPAL_DOES_NOT_EXIST`: unknown to the account, or a workspace-local group.
    #[error("principal not found: {upstream}")]
    PrincipalNotFound { upstream: Upstream },
    #[error("invalid parameter: {upstream}")]
    InvalidParameter { upstream: Upstream },
    #[error("rate limited: {upstream}")]
    RateLimited {
        upstream: Upstream,
        retry_after: Option<Duration>,
    },
    #[error("temporarily unavailable: {upstream}")]
    Unavailable {
        upstream: Upstream,
        retry_after: Option<Duration>,
    },
    /// No answer within the request timeout, after the request was sent: Databricks may have carried
    /// it out.
    #[error("{request} timed out after {after:?}")]
    Timeout { request: String, after: Duration },
    /// Connection, DNS or TLS failure before the request was sent: Databricks never saw it.
    #[error("{request} could not reach Databricks: {detail}")]
    Unreachable { request: String, detail: String },
    /// The connection broke after the request was sent and before the whole answer arrived:
    /// Databricks may have carried it out.
    #[error("{request} lost its connection to Databricks: {detail}")]
    ConnectionLost { request: String, detail: String },
    /// A request that changes something failed in a way that does not say whether Databricks carried
    /// it out (`cause`: a timeout, a lost connection, a 5xx other than 503), and it was not repeated
    /// because a replay could duplicate it; or an idempotent change was repeated after such a failure
    /// and then failed otherwise. The caller learns the outcome by reading back.
    #[error("the outcome is unknown: {cause}")]
    OutcomeUnknown { cause: Box<DatabricksError> },
    /// A create (or an addition) whose outcome was unknown, and the read that followed found what it
    /// asked for in place: made by that request, or by someone else meanwhile. Callers treat it as an
    /// `*_ALREADY_EXISTS` answer: they read the object and check uc-access's ownership mark.
    #[error("{request}: found in place after a lost answer ({cause})")]
    FoundAfterLostAnswer {
        request: String,
        cause: Box<DatabricksError>,
    },
    /// A feature this call needs is switched off in settings.
    #[error("{feature} is disabled (setting {setting})")]
    Disabled {
        feature: &'static str,
        setting: &'static str,
    },
    #[error("unexpected answer from {request}: {detail}")]
    Unexpected {
        request: String,
        detail: String,
        upstream: Option<Box<Upstream>>,
    },
}

/// The longest upstream message kept; bodies are otherwise unbounded.
const MAX_MESSAGE: usize = 512;

/// The error bodies Databricks sends: REST (`error_code`/`message`), SCIM (`scimType`/`detail`/`status`
/// as a string) and OAuth token endpoints (`error`/`error_description`). One lenient shape reads all three.
#[derive(Deserialize, Default)]
struct ErrorBody {
    error_code: Option<String>,
    message: Option<String>,
    #[serde(rename = "scimType")]
    scim_type: Option<String>,
    detail: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

impl Upstream {
    /// Reads an error body of any of the shapes Databricks uses; unknown bodies are kept as text.
    pub fn from_body(request: String, status: u16, body: &[u8]) -> Self {
        let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
        let error_code = parsed.error_code.or(parsed.scim_type).or(parsed.error);
        let message = parsed
            .message
            .or(parsed.detail)
            .or(parsed.error_description)
            .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
        Self {
            request,
            status,
            error_code,
            message: truncate(message),
        }
    }
}

/// Whether an error message says the bearer token is invalid (`Invalid access token.`).
fn says_invalid_token(message: &str) -> bool {
    message
        .to_ascii_lowercase()
        .contains("invalid access token")
}

impl DatabricksError {
    /// Classifies an error answer: by `error_code` first, because Databricks reuses statuses (a 404 may be
    /// a missing table or a missing principal), then by status.
    pub fn from_response(upstream: Upstream, retry_after: Option<Duration>) -> Self {
        let code = upstream.error_code.as_deref().unwrap_or("");
        match code {
            "UNAUTHENTICATED"
            | "INVALID_TOKEN"
            | "invalid_client"
            | "invalid_grant"
            | "unauthorized_client" => {
                return Self::Unauthenticated {
                    detail: upstream.message.clone(),
                    upstream: Some(Box::new(upstream)),
                };
            }
            "PERMISSION_DENIED" => {
                return Self::PermissionDenied {
                    upstream,
                    securable: None,
                };
            }
            "PRINCIPAL_DOES_NOT_EXIST" => return Self::PrincipalNotFound { upstream },
            "CATALOG_DOES_NOT_EXIST" | "SCHEMA_DOES_NOT_EXIST" | "TABLE_DOES_NOT_EXIST" => {
                return Self::SecurableNotFound {
                    upstream,
                    securable: None,
                };
            }
            "INVALID_PARAMETER_VALUE"
            | "INVALID_FILTER"
            | "BAD_REQUEST"
            | "invalidFilter"
            | "invalidValue"
            | "invalid_request"
            | "invalid_scope" => {
                return Self::InvalidParameter { upstream };
            }
            "REQUEST_LIMIT_EXCEEDED" | "RESOURCE_EXHAUSTED" | "TOO_MANY_REQUESTS" => {
                return Self::RateLimited {
                    upstream,
                    retry_after,
                };
            }
            "TEMPORARILY_UNAVAILABLE" => {
                return Self::Unavailable {
                    upstream,
                    retry_after,
                };
            }
            _ => {}
        }
        match upstream.status {
            401 => Self::Unauthenticated {
                detail: upstream.message.clone(),
                upstream: Some(Box::new(upstream)),
            },
            // A 403 with no specific error code whose message says the token itself is invalid (the
            // workspace REST APIs have answered bad tokens this way: `{"error_code":"403","message":
            // "Invalid access token."}`; unverified for every API) is about authentication, not a right.
            403 if says_invalid_token(&upstream.message) => Self::Unauthenticated {
                detail: upstream.message.clone(),
                upstream: Some(Box::new(upstream)),
            },
            403 => Self::PermissionDenied {
                upstream,
                securable: None,
            },
            400 => Self::InvalidParameter { upstream },
            429 => Self::RateLimited {
                upstream,
                retry_after,
            },
            503 => Self::Unavailable {
                upstream,
                retry_after,
            },
            _ => Self::Unexpected {
                request: upstream.request.clone(),
                detail: format!("status {}", upstream.status),
                upstream: Some(Box::new(upstream)),
            },
        }
    }

    /// For the answer to an API request made with a bearer token: whether it says the token itself is not
    /// accepted (401, or a 403 whose error code or message says the token is invalid), as opposed to a
    /// permission denial, which another token of the same principal would get too.
    pub fn is_token_refusal(&self) -> bool {
        matches!(
            self,
            Self::Unauthenticated { upstream: Some(u), .. } if u.status == 401 || u.status == 403
        )
    }

    /// Whether a request that failed this way may still have been carried out: it was sent and then
    /// timed out or lost its connection, or the service answered 5xx other than 503 (a 504
    /// `TEMPORARILY_UNAVAILABLE` is Databricks' gateway giving up on a request still being processed).
    /// A 429, a 503 and every 4xx answer are refusals, and a connection that never opened sent nothing:
    /// those say it was not carried out.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::OutcomeUnknown { .. }
            | Self::FoundAfterLostAnswer { .. }
            | Self::Timeout { .. }
            | Self::ConnectionLost { .. } => true,
            _ => !self.proves_not_processed() && self.upstream().is_some_and(|u| u.status >= 500),
        }
    }

    /// Whether the failure itself shows that Databricks did not carry the request out, so that even a
    /// request a replay could duplicate may be sent again: nothing was sent (the connection never
    /// opened), or the answer is a refusal — 429 (or `REQUEST_LIMIT_EXCEEDED`), 503, or any other 4xx.
    /// 503 counts as a refusal as in Databricks' own SDK for Java, whose retry strategy for
    /// non-idempotent requests retries 429, 501 and 503 as "request not processed by server" and
    /// connection failures that happen before sending, nothing else.
    pub fn proves_not_processed(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::RateLimited { .. } => true,
            Self::OutcomeUnknown { .. }
            | Self::FoundAfterLostAnswer { .. }
            | Self::Timeout { .. }
            | Self::ConnectionLost { .. }
            | Self::Disabled { .. } => false,
            _ => self
                .upstream()
                .is_some_and(|u| u.status == 503 || (400..500).contains(&u.status)),
        }
    }

    /// Whether another attempt may succeed where this one failed (the retry policy decides whether
    /// it may be made: see [`super::retry::Idempotency`]).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Unavailable { .. }
                | Self::Timeout { .. }
                | Self::Unreachable { .. }
                | Self::ConnectionLost { .. }
        )
    }

    /// Whether the thing asked for does not exist (a 404, or a principal Databricks does not know).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::PrincipalNotFound { .. })
            || self.upstream().is_some_and(|u| u.status == 404)
    }

    /// Names the securable a permission or not-found error is about, for the operator hint.
    pub fn about_securable(mut self, target: &Securable) -> Self {
        match &mut self {
            Self::PermissionDenied { securable, .. }
            | Self::SecurableNotFound { securable, .. } => {
                *securable = Some(Box::new(target.clone()));
            }
            _ => {}
        }
        self
    }

    /// Whether trying again later can succeed: the failure is transient, or the outcome of a change is
    /// unknown (a later delivery reads back and finds out).
    pub fn is_retryable(&self) -> bool {
        self.is_transient()
            || matches!(
                self,
                Self::OutcomeUnknown { .. } | Self::FoundAfterLostAnswer { .. }
            )
    }

    /// Whether Unity Catalog refused a change because a privilege does not apply to the securable
    /// (`INVALID_PARAMETER_VALUE`, "Privilege MODIFY is not applicable to this entity [<name>:TABLE/TABLE_VIEW]…"):
    /// a request that can never succeed as asked.
    pub fn is_privilege_not_applicable(&self) -> bool {
        matches!(self, Self::InvalidParameter { upstream }
            if upstream.message.contains("is not applicable to this entity"))
    }

    /// How long Databricks asked us to wait, when it said so (or when the retry policy gave up before
    /// waiting that long).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Unavailable { retry_after, .. } => {
                *retry_after
            }
            Self::OutcomeUnknown { cause } => cause.retry_after(),
            _ => None,
        }
    }

    /// Sets the wait to pass on when none was given (the retry policy stopping at its deadline).
    pub(crate) fn or_retry_after(mut self, wait: Duration) -> Self {
        if let Self::RateLimited { retry_after, .. } | Self::Unavailable { retry_after, .. } =
            &mut self
        {
            retry_after.get_or_insert(wait);
        }
        self
    }

    /// The upstream `error_code`, when Databricks sent one.
    pub fn error_code(&self) -> Option<&str> {
        self.upstream()?.error_code.as_deref()
    }

    pub fn upstream(&self) -> Option<&Upstream> {
        match self {
            Self::PermissionDenied { upstream, .. }
            | Self::SecurableNotFound { upstream, .. }
            | Self::PrincipalNotFound { upstream }
            | Self::InvalidParameter { upstream }
            | Self::RateLimited { upstream, .. }
            | Self::Unavailable { upstream, .. } => Some(upstream),
            Self::Unauthenticated { upstream, .. } | Self::Unexpected { upstream, .. } => {
                upstream.as_deref()
            }
            Self::OutcomeUnknown { cause } | Self::FoundAfterLostAnswer { cause, .. } => {
                cause.upstream()
            }
            Self::Timeout { .. }
            | Self::Unreachable { .. }
            | Self::ConnectionLost { .. }
            | Self::Disabled { .. } => None,
        }
    }

    /// What an operator should change so this stops happening.
    pub fn operator_hint(&self) -> String {
        match self {
            Self::Unauthenticated { .. } => "check DATABRICKS_AUTH_TYPE and its credentials: for azure-msi, \
                 add the managed identity (ARM_CLIENT_ID) to the Databricks account as a service principal; \
                 for oauth-m2m or azure-client-secret, check the client id and that the secret has not expired"
                .into(),
            Self::PermissionDenied {
                securable: Some(s), ..
            } => format!(
                "grant the uc-access service principal MANAGE on catalog `{}` (or make it the owner of {s})",
                s.catalog_name()
            ),
            Self::PermissionDenied { .. } => "grant the uc-access service principal MANAGE on the governed \
                 catalogs, and account-level read access to users, groups and service principals"
                .into(),
            Self::SecurableNotFound {
                securable: Some(s), ..
            } => format!(
                "{s} does not exist in this workspace's metastore: check the Purview asset and the workspace \
                 map, or whether it was dropped"
            ),
            Self::SecurableNotFound { .. } => "the catalog, schema or table does not exist in this \
                 workspace's metastore: check the Purview asset and the workspace map"
                .into(),
            Self::PrincipalNotFound { .. } => "the principal is not an account-level identity: provision it \
                 to the Databricks account (SCIM or Automatic Identity Management); workspace-local groups \
                 cannot hold Unity Catalog grants"
                .into(),
            Self::InvalidParameter { .. } => "Databricks refused the request as malformed: report it with \
                 the upstream message"
                .into(),
            Self::RateLimited { .. } => "Databricks is throttling uc-access: retry later, and spread timer \
                 schedules if it persists"
                .into(),
            Self::Unavailable { .. } | Self::Timeout { .. } => "Databricks is slow or unavailable: retry \
                 later; raise UC_ACCESS_DATABRICKS_TIMEOUT_SECS if it persists"
                .into(),
            Self::Unreachable { .. } => "check DATABRICKS_HOST / DATABRICKS_ACCOUNT_HOST, DNS, and outbound \
                 network access from the Function app"
                .into(),
            Self::ConnectionLost { .. } => "connections to Databricks break after requests are sent: check \
                 outbound networking from the Function app (proxies, firewalls that reset connections)"
                .into(),
            Self::OutcomeUnknown { cause } => format!(
                "Databricks did not confirm a change, and uc-access does not repeat a change a replay \
                 could duplicate: the next delivery or timer run reads back what is in place. Cause: {}",
                cause.operator_hint()
            ),
            Self::FoundAfterLostAnswer { .. } => "a create whose answer was lost was found in place; the \
                 caller checks whether it is uc-access's own"
                .into(),
            Self::Disabled { setting, .. } => {
                format!("set {setting}=true to enable it (read the docs on its side effects first)")
            }
            Self::Unexpected { .. } => "an answer uc-access does not understand: report it with the \
                 upstream message"
                .into(),
        }
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
