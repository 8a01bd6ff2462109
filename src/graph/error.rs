//! Graph failures, classified by what the caller can do: retry later (throttled, unavailable,
//! unreachable), or have the operators fix uc-access's identity or its Graph permissions.

use std::time::Duration;

use serde::Deserialize;

/// Graph's error body: `{"error":{"code":"Request_ResourceNotFound","message":"…","innerError":{…}}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphError {
    /// 401 or 403: the token was refused, or the identity lacks an application permission.
    #[error("Microsoft Graph refused {request} ({status} {code}): {message}")]
    Refused {
        request: String,
        status: u16,
        code: String,
        message: String,
    },
    /// 429, 503, 504 (or another 5xx): try again later.
    #[error("Microsoft Graph is unavailable for {request} ({status} {code}): {message}")]
    Unavailable {
        request: String,
        status: u16,
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Nothing reached Graph, or no answer came back in time.
    #[error("Microsoft Graph could not be reached for {request}: {detail}")]
    Unreachable { request: String, detail: String },
    /// No token for Graph: the managed identity (or the local token) could not be used.
    #[error("no Microsoft Graph token: {detail}")]
    Token { detail: String },
    /// Any other answer: a 4xx uc-access did not expect, or a body it cannot read.
    #[error("Microsoft Graph answered {request} unexpectedly ({status} {code}): {message}")]
    Unexpected {
        request: String,
        status: u16,
        code: String,
        message: String,
    },
}

impl GraphError {
    /// Whether the same request may succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Unreachable { .. })
    }

    /// The server's `Retry-After`, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// What the operators should change, for the log and the doctor.
    pub fn operator_hint(&self) -> &'static str {
        match self {
            Self::Refused { .. } => {
                "grant the Function app's managed identity the Microsoft Graph application permissions User.Read.All, GroupMember.Read.All and Application.Read.All (admin consent), see docs/deploy.md"
            }
            Self::Token { .. } => {
                "the managed identity (ARM_CLIENT_ID / AZURE_CLIENT_ID for a user-assigned one) must be able to get tokens for https://graph.microsoft.com/.default"
            }
            Self::Unavailable { .. } | Self::Unreachable { .. } => {
                "Graph was throttling or unreachable; check GRAPH_ENDPOINT and the outbound network"
            }
            Self::Unexpected { .. } => {
                "check GRAPH_ENDPOINT: it must be the Graph root, without /v1.0"
            }
        }
    }

    /// An error answer with `status`, from its body (Graph's error shape, or anything else).
    pub(crate) fn from_answer(
        request: String,
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Self {
        let (code, message) = match serde_json::from_slice::<ErrorBody>(body) {
            Ok(b) => (
                b.error.code.unwrap_or_default(),
                b.error.message.unwrap_or_default(),
            ),
            Err(_) => (
                String::new(),
                String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            ),
        };
        match status {
            401 | 403 => Self::Refused {
                request,
                status,
                code,
                message,
            },
            429 | 500..=599 => Self::Unavailable {
                request,
                status,
                code,
                message,
                retry_after,
            },
            _ => Self::Unexpected {
                request,
                status,
                code,
                message,
            },
        }
    }
}
