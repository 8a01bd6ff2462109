//! The HTTP plumbing every Databricks client shares: bearer token, per-request timeout bounded by the
//! caller's deadline, the retry policy, error classification, and a count of requests sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use super::error::{DatabricksError, Upstream};
use super::retry::{Deadline, Failure, Idempotency, RetryPolicy, parse_retry_after};
use super::token::{BearerToken, TokenSource};

/// Everything but RFC 3986 unreserved characters is encoded in a path segment, so a name can never
/// change the path (`/`), start a query (`?`) or a fragment (`#`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment.
pub fn encode_segment(raw: &str) -> String {
    utf8_percent_encode(raw, SEGMENT).to_string()
}

/// Requests sent to Databricks (each attempt counts), shared by clones; the benchmarks report it per
/// approval.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<AtomicU64>);

impl RequestCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// One request to make, before retries.
#[derive(Debug)]
pub(crate) struct Call {
    pub method: Method,
    pub url: Url,
    pub query: Vec<(&'static str, String)>,
    /// A JSON body, serialised once: retries send the same bytes, and a large body (a sweep's `PATCH`
    /// naming thousands of principals) never exists as a `serde_json::Value` tree.
    pub body: Option<Bytes>,
    pub idempotency: Idempotency,
}

/// `value` as a JSON request body.
pub(crate) fn json_body(value: &impl Serialize) -> Bytes {
    // The bodies are derived structs and `json!` values with string keys, which serde_json always
    // serialises; a failure would be a programming error, not an input the caller can fix.
    Bytes::from(serde_json::to_vec(value).expect("request bodies always serialise to JSON"))
}

/// Reads the JSON answer to `call` (an empty body reads as `{}`).
pub(crate) fn decode<'a, T: Deserialize<'a>>(
    call: &Call,
    body: &'a [u8],
) -> Result<T, DatabricksError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| DatabricksError::Unexpected {
        request: call.label(),
        detail: format!("cannot read the answer: {e}"),
        upstream: None,
    })
}

impl Call {
    pub fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            query: Vec::new(),
            body: None,
            idempotency: Idempotency::Safe,
        }
    }

    pub fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    pub(crate) fn label(&self) -> String {
        format!("{} {}", self.method, self.url.path())
    }
}

/// The shared HTTP core. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Transport {
    http: reqwest::Client,
    retry: RetryPolicy,
    request_timeout: Duration,
    requests: RequestCounter,
}

impl Transport {
    pub fn new(http: reqwest::Client, retry: RetryPolicy, request_timeout: Duration) -> Self {
        Self {
            http,
            retry,
            request_timeout,
            requests: RequestCounter::default(),
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn requests(&self) -> &RequestCounter {
        &self.requests
    }

    /// Sends `call` with retries and decodes a JSON answer (an empty body reads as `{}`).
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        tokens: &dyn TokenSource,
        call: &Call,
        deadline: Deadline,
    ) -> Result<T, DatabricksError> {
        let body = self.body(tokens, call, deadline).await?;
        decode(call, &body)
    }

    /// Sends `call` with retries and answers the successful answer's bytes, to be read with [`decode`]
    /// into a type that borrows from them.
    pub(crate) async fn body(
        &self,
        tokens: &dyn TokenSource,
        call: &Call,
        deadline: Deadline,
    ) -> Result<Vec<u8>, DatabricksError> {
        self.retry
            .run(call.idempotency, deadline, |_| {
                self.once(tokens, call, deadline)
            })
            .await
    }

    /// One attempt: a token, the request, and (when the API refuses the token and the source has another
    /// kind to offer, as OAuth M2M has for a workspace that refuses the account-level token) the same
    /// request once more with the new token. A refused request was not carried out, so resending it is
    /// safe whatever its idempotency. A token that cannot be had fails the attempt before the request
    /// leaves.
    async fn once(
        &self,
        tokens: &dyn TokenSource,
        call: &Call,
        deadline: Deadline,
    ) -> Result<Vec<u8>, Failure> {
        let token = self
            .token(tokens, call, deadline)
            .await
            .map_err(Failure::not_sent)?;
        match self.send(call, &token, deadline).await {
            Err(f) if f.error.is_token_refusal() && tokens.refused(&token).await => {
                let token = self
                    .token(tokens, call, deadline)
                    .await
                    .map_err(Failure::not_sent)?;
                self.send(call, &token, deadline).await
            }
            answer => answer,
        }
    }

    /// This request's timeout: the configured one, cut to what is left of the caller's deadline.
    fn timeout(&self, call: &Call, deadline: Deadline) -> Result<Duration, DatabricksError> {
        let timeout = self.request_timeout.min(deadline.remaining());
        if timeout.is_zero() {
            return Err(DatabricksError::Timeout {
                request: call.label(),
                after: Duration::ZERO,
            });
        }
        Ok(timeout)
    }

    async fn token(
        &self,
        tokens: &dyn TokenSource,
        call: &Call,
        deadline: Deadline,
    ) -> Result<BearerToken, DatabricksError> {
        let timeout = self.timeout(call, deadline)?;
        // A token fetch (Entra, OAuth) must not outlive the caller's deadline either.
        tokio::time::timeout(timeout, tokens.token())
            .await
            .map_err(|_| DatabricksError::Timeout {
                request: format!("token for {}", call.label()),
                after: timeout,
            })?
    }

    /// Sends the request once. A failure to connect sent nothing; any later failure may have reached
    /// Databricks.
    async fn send(
        &self,
        call: &Call,
        token: &BearerToken,
        deadline: Deadline,
    ) -> Result<Vec<u8>, Failure> {
        let label = call.label();
        let timeout = self.timeout(call, deadline).map_err(Failure::not_sent)?;
        let mut request = self
            .http
            .request(call.method.clone(), call.url.clone())
            .bearer_auth(token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(timeout);
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(body) = &call.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        self.requests.bump();
        let response = request.send().await.map_err(|e| {
            let error = transport_error(&label, timeout, &e);
            if matches!(error, DatabricksError::Unreachable { .. }) {
                Failure::not_sent(error)
            } else {
                Failure::sent(error)
            }
        })?;
        let status = response.status();
        let retry_after = retry_after_header(&response);
        let body = response
            .bytes()
            .await
            .map_err(|e| Failure::sent(answer_error(&label, timeout, &e)))?;
        if status.is_success() {
            Ok(body.to_vec())
        } else {
            let upstream = Upstream::from_body(label, status.as_u16(), &body);
            tracing::debug!(%upstream, "Databricks error answer");
            Err(Failure::sent(DatabricksError::from_response(
                upstream,
                retry_after,
            )))
        }
    }
}

pub(crate) fn retry_after_header(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()
        .and_then(parse_retry_after)
}

/// Classifies a failure to send a request and get its answer's head. A failure to connect (DNS, TCP,
/// TLS, a connect timeout) happens before anything is sent; a timeout or a broken connection after that
/// may have reached Databricks. reqwest's messages carry the URL, never headers, so no token leaks.
pub(crate) fn transport_error(
    request: &str,
    timeout: Duration,
    error: &reqwest::Error,
) -> DatabricksError {
    if error.is_connect() {
        DatabricksError::Unreachable {
            request: request.to_owned(),
            detail: error_chain(error),
        }
    } else if error.is_timeout() {
        DatabricksError::Timeout {
            request: request.to_owned(),
            after: timeout,
        }
    } else if error.is_request() {
        DatabricksError::ConnectionLost {
            request: request.to_owned(),
            detail: error_chain(error),
        }
    } else {
        DatabricksError::Unexpected {
            request: request.to_owned(),
            detail: error_chain(error),
            upstream: None,
        }
    }
}

/// Classifies a failure to read an answer's body: the request was sent and answered, so Databricks
/// may have carried it out.
pub(crate) fn answer_error(
    request: &str,
    timeout: Duration,
    error: &reqwest::Error,
) -> DatabricksError {
    if error.is_timeout() {
        DatabricksError::Timeout {
            request: request.to_owned(),
            after: timeout,
        }
    } else {
        DatabricksError::ConnectionLost {
            request: request.to_owned(),
            detail: error_chain(error),
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_encode_everything_that_could_change_the_url() {
        assert_eq!(encode_segment("main.sales.orders"), "main.sales.orders");
        assert_eq!(encode_segment("a#b?c/d e%"), "a%23b%3Fc%2Fd%20e%25");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }
}
