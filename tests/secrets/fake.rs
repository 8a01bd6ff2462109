//! A Key Vault on the SDK's transport seam: it answers an unauthenticated request with Key Vault's 401
//! challenge, checks the bearer token, then plays scripted answers, recording every request it saw.
//! With a fake token credential, the real `SecretClient` runs through its whole pipeline offline.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::headers::{AUTHORIZATION, CONTENT_TYPE, Headers};
use azure_core::http::{AsyncRawResponse, HttpClient, Request, StatusCode, Transport};
use serde_json::{Value, json};
use time::OffsetDateTime;
use url::Url;

pub const VAULT: &str = "https://kv-uc-test.vault.azure.net/";
pub const TOKEN: &str = "fake-vault-token";
/// What Key Vault's challenge names: tokens are asked for this scope.
pub const SCOPE: &str = "https://vault.azure.net/.default";
/// A value the tests look for in every printed thing.
pub const VALUE: &str = "s3cr3t-VALUE-7f3a";

/// One answer of the fake vault to an authorized request.
#[derive(Debug, Clone)]
pub enum Answer {
    Status {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Value,
    },
    /// The connection fails before any answer.
    ConnectionError,
    /// No answer ever.
    Hang,
}

impl Answer {
    pub fn secret(name: &str, value: &str) -> Self {
        Self::Status {
            status: 200,
            headers: vec![],
            body: json!({
                "value": value,
                "id": format!("{VAULT}secrets/{name}/5b2c0d9e1f8a4e6b9c3d7a1e2f4b6c8d"),
                "attributes": {"enabled": true, "created": 1_700_000_000, "updated": 1_700_000_000, "recoveryLevel": "Recoverable+Purgeable"},
                "tags": {}
            }),
        }
    }

    pub fn error(status: u16, code: &str, message: &str) -> Self {
        Self::Status {
            status,
            headers: vec![],
            body: json!({"error": {"code": code, "message": message}}),
        }
    }

    pub fn with_body(status: u16, body: Value) -> Self {
        Self::Status {
            status,
            headers: vec![],
            body,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        if let Self::Status { headers, .. } = &mut self {
            headers.push((name, value.to_owned()));
        }
        self
    }
}

/// A request as the vault saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub url: Url,
    pub authorization: Option<String>,
}

#[derive(Debug)]
pub struct FakeVault {
    /// The resource Key Vault's challenge names (another one tests the client's domain check).
    pub challenge_resource: String,
    answers: Mutex<VecDeque<Answer>>,
    seen: Mutex<Vec<Seen>>,
}

impl FakeVault {
    pub fn new(answers: Vec<Answer>) -> Arc<Self> {
        Self::challenging_for("https://vault.azure.net", answers)
    }

    pub fn challenging_for(resource: &str, answers: Vec<Answer>) -> Arc<Self> {
        Arc::new(Self {
            challenge_resource: resource.to_owned(),
            answers: Mutex::new(answers.into()),
            seen: Mutex::new(Vec::new()),
        })
    }

    pub fn transport(self: &Arc<Self>) -> Transport {
        Transport::new(self.clone())
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn respond(status: u16, headers: &[(&'static str, String)], body: &Value) -> AsyncRawResponse {
        let mut h = Headers::new();
        h.insert(CONTENT_TYPE, "application/json; charset=utf-8");
        for (name, value) in headers {
            h.insert(*name, value.clone());
        }
        AsyncRawResponse::from_bytes(StatusCode::from(status), h, body.to_string().into_bytes())
    }
}

#[async_trait]
impl HttpClient for FakeVault {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let authorization = request
            .headers()
            .get_optional_str(&AUTHORIZATION)
            .map(str::to_owned);
        self.seen.lock().unwrap().push(Seen {
            method: request.method().to_string(),
            url: request.url().clone(),
            authorization: authorization.clone(),
        });
        match authorization.as_deref() {
            None => {
                let challenge = format!(
                    "Bearer authorization=\"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47\", resource=\"{}\"",
                    self.challenge_resource
                );
                return Ok(Self::respond(
                    401,
                    &[("www-authenticate", challenge)],
                    &json!({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}),
                ));
            }
            Some(header) if header != format!("Bearer {TOKEN}") => {
                return Ok(Self::respond(
                    401,
                    &[],
                    &json!({"error": {"code": "Unauthorized", "message": "AKV10032: Invalid issuer."}}),
                ));
            }
            Some(_) => {}
        }
        let answer = {
            let mut answers = self.answers.lock().unwrap();
            if answers.len() > 1 {
                answers.pop_front()
            } else {
                answers.front().cloned()
            }
        };
        match answer.expect("the test scripted no answer") {
            Answer::Status {
                status,
                headers,
                body,
            } => Ok(Self::respond(status, &headers, &body)),
            Answer::ConnectionError => Err(azure_core::Error::with_message(
                ErrorKind::Connection,
                "connection refused (os error 111)",
            )),
            Answer::Hang => std::future::pending().await,
        }
    }
}

/// Hands out [`TOKEN`], recording the scopes it was asked for; or fails as a managed identity can.
#[derive(Debug, Default)]
pub struct FakeCredential {
    pub fail: bool,
    pub token: Option<&'static str>,
    calls: AtomicUsize,
    scopes: Mutex<Vec<String>>,
}

impl FakeCredential {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn failing() -> Arc<Self> {
        Arc::new(Self {
            fail: true,
            ..Self::default()
        })
    }

    pub fn handing_out(token: &'static str) -> Arc<Self> {
        Arc::new(Self {
            token: Some(token),
            ..Self::default()
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn scopes(&self) -> Vec<String> {
        self.scopes.lock().unwrap().clone()
    }
}

#[async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.scopes
            .lock()
            .unwrap()
            .extend(scopes.iter().map(|s| (*s).to_owned()));
        if self.fail {
            return Err(azure_core::Error::with_message(
                ErrorKind::Credential,
                "ManagedIdentityCredential authentication unavailable: no identity assigned",
            ));
        }
        Ok(AccessToken::new(
            self.token.unwrap_or(TOKEN),
            OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}
