//! The Graph client: `GET /v1.0/users|servicePrincipals|groups/{id}?$select=…` and
//! `POST /v1.0/directoryObjects/{id}/checkMemberGroups`, with the Function app's token, a per-request
//! timeout bounded by the caller's deadline, and retries of throttled and unavailable answers that honour
//! `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use url::Url;

use super::GraphApi;
use super::error::GraphError;
use super::settings::{GraphAuth, GraphSettings};
use super::types::{EntraGroup, EntraServicePrincipal, EntraUser};
use crate::databricks::{Deadline, encode_segment, parse_retry_after};
use crate::domain::EntraObjectId;

/// The scope of a token for Microsoft Graph with the application permissions granted to the identity.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// `checkMemberGroups` takes at most 20 group ids a request.
pub const MAX_GROUPS_PER_CHECK: usize = 20;
const USER_SELECT: &str = "id,userPrincipalName,mail,accountEnabled,userType";
const SP_SELECT: &str = "id,appId,accountEnabled,displayName";
const GROUP_SELECT: &str = "id,displayName";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ATTEMPTS: u32 = 4;
const BASE_DELAY: Duration = Duration::from_millis(250);
/// A `Retry-After` longer than this ends the retries: the caller's answer carries it instead.
const MAX_DELAY: Duration = Duration::from_secs(30);

/// A fixed Graph token (`GRAPH_TOKEN`), for the local stand-in and tests.
#[derive(Debug)]
pub struct StaticGraphToken(SecretString);

impl StaticGraphToken {
    pub fn new(token: SecretString) -> Self {
        Self(token)
    }
}

#[async_trait]
impl TokenCredential for StaticGraphToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0.expose_secret().to_owned(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

/// Microsoft Graph v1.0 over the process's HTTP client. The managed identity credential caches its
/// tokens until shortly before they expire (`azure_identity`'s token cache), so no cache is kept here.
#[derive(Debug, Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    /// The root with `/v1.0/` appended.
    base: Url,
    credential: Arc<dyn TokenCredential>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckMemberGroups<'a> {
    group_ids: &'a [String],
}

#[derive(Deserialize)]
struct StringCollection {
    #[serde(default)]
    value: Vec<String>,
}

impl GraphClient {
    /// A client for the Graph root `endpoint` (`https://graph.microsoft.com`).
    pub fn new(
        http: reqwest::Client,
        endpoint: &Url,
        credential: Arc<dyn TokenCredential>,
    ) -> Self {
        let mut base = endpoint.clone();
        base.set_path("/v1.0/");
        Self {
            http,
            base,
            credential,
        }
    }

    /// The client the settings describe, over `http` (the process's one client).
    pub fn from_settings(
        settings: &GraphSettings,
        http: reqwest::Client,
    ) -> Result<Self, GraphError> {
        let credential: Arc<dyn TokenCredential> = match &settings.auth {
            GraphAuth::ManagedIdentity { client_id } => {
                crate::outbound::managed_identity(client_id.clone(), &http).map_err(|e| {
                    GraphError::Token {
                        detail: format!("cannot set up the managed identity credential: {e}"),
                    }
                })?
            }
            GraphAuth::Static { token } => Arc::new(StaticGraphToken::new(token.clone())),
        };
        Ok(Self::new(http, &settings.endpoint, credential))
    }

    /// `GRAPH_ENDPOINT` as configured, for the doctor.
    pub fn endpoint(&self) -> String {
        let mut root = self.base.clone();
        root.set_path("/");
        root.to_string()
    }

    fn url(&self, segments: &[&str], select: Option<&str>) -> Url {
        let path: Vec<String> = segments.iter().map(|s| encode_segment(s)).collect();
        let mut url = self
            .base
            .join(&path.join("/"))
            .expect("encoded segments always join onto the base");
        // `$` and `,` stay literal, as Graph's documentation writes them.
        url.set_query(select.map(|s| format!("$select={s}")).as_deref());
        url
    }

    async fn token(&self) -> Result<String, GraphError> {
        let token = self
            .credential
            .get_token(&[GRAPH_SCOPE], None)
            .await
            .map_err(|e| GraphError::Token {
                detail: e.to_string(),
            })?;
        Ok(token.token.secret().to_owned())
    }

    /// One call with retries. `Ok(None)` for 404: Graph knows no such object.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        deadline: Deadline,
    ) -> Result<Option<T>, GraphError> {
        let label = format!("{method} {}", url.path());
        let mut attempt = 1;
        loop {
            let error = match self
                .attempt(&method, &url, body.as_deref(), &label, deadline)
                .await
            {
                Ok(answer) => return Ok(answer),
                Err(e) => e,
            };
            if !error.is_retryable() || attempt >= MAX_ATTEMPTS {
                return Err(error);
            }
            let wait = error.retry_after().unwrap_or_else(|| backoff(attempt));
            if wait > MAX_DELAY || Instant::now() + wait >= deadline.instant() {
                return Err(error);
            }
            tracing::debug!(attempt, ?wait, error = %error, "retrying Microsoft Graph call");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
        label: &str,
        deadline: Deadline,
    ) -> Result<Option<T>, GraphError> {
        let timeout = REQUEST_TIMEOUT.min(deadline.remaining());
        if timeout.is_zero() {
            return Err(GraphError::Unreachable {
                request: label.to_owned(),
                detail: "the request's time budget was spent before it could be sent".into(),
            });
        }
        let token = self.token().await?;
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(timeout);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let unreachable = |e: reqwest::Error| GraphError::Unreachable {
            request: label.to_owned(),
            detail: e.to_string(),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = response.bytes().await.map_err(unreachable)?;
        match status {
            200..=299 => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| GraphError::Unexpected {
                        request: label.to_owned(),
                        status,
                        code: String::new(),
                        message: format!("the answer is not the expected JSON: {e}"),
                    })
            }
            404 => Ok(None),
            _ => Err(GraphError::from_answer(
                label.to_owned(),
                status,
                &bytes,
                retry_after,
            )),
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        collection: &str,
        id: EntraObjectId,
        select: &str,
        deadline: Deadline,
    ) -> Result<Option<T>, GraphError> {
        let url = self.url(&[collection, &id.to_string()], Some(select));
        self.call(Method::GET, url, None, deadline).await
    }
}

/// Half fixed, half random exponential backoff, as for Databricks.
fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let ceiling = BASE_DELAY
        .saturating_mul(1u32 << (attempt - 1).min(8))
        .min(MAX_DELAY);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    let half = millis / 2;
    Duration::from_millis(half + rand::rng().random_range(0..=half))
}

/// An id Graph answered is compared by value; an id that is no GUID names nothing uc-access asked for.
fn same_id(raw: &str, id: EntraObjectId) -> bool {
    EntraObjectId::parse(raw).is_ok_and(|parsed| parsed == id)
}

#[async_trait]
impl GraphApi for GraphClient {
    #[tracing::instrument(skip_all)]
    async fn user(
        &self,
        id: EntraObjectId,
        deadline: Deadline,
    ) -> Result<Option<EntraUser>, GraphError> {
        let found: Option<EntraUser> = self.get("users", id, USER_SELECT, deadline).await?;
        // Only the object asked for counts (a proxy answering another one would name someone else).
        Ok(found.filter(|u| same_id(&u.id, id)))
    }

    #[tracing::instrument(skip_all)]
    async fn service_principal(
        &self,
        id: EntraObjectId,
        deadline: Deadline,
    ) -> Result<Option<EntraServicePrincipal>, GraphError> {
        let found: Option<EntraServicePrincipal> = self
            .get("servicePrincipals", id, SP_SELECT, deadline)
            .await?;
        Ok(found.filter(|sp| same_id(&sp.id, id)))
    }

    #[tracing::instrument(skip_all)]
    async fn group(
        &self,
        id: EntraObjectId,
        deadline: Deadline,
    ) -> Result<Option<EntraGroup>, GraphError> {
        let found: Option<EntraGroup> = self.get("groups", id, GROUP_SELECT, deadline).await?;
        Ok(found.filter(|g| same_id(&g.id, id)))
    }

    #[tracing::instrument(skip_all, fields(groups = groups.len()))]
    async fn member_groups(
        &self,
        member: EntraObjectId,
        groups: &[EntraObjectId],
        deadline: Deadline,
    ) -> Result<Vec<EntraObjectId>, GraphError> {
        let url = self.url(
            &["directoryObjects", &member.to_string(), "checkMemberGroups"],
            None,
        );
        let mut found = Vec::new();
        for chunk in groups.chunks(MAX_GROUPS_PER_CHECK) {
            let ids: Vec<String> = chunk.iter().map(ToString::to_string).collect();
            let body = serde_json::to_vec(&CheckMemberGroups { group_ids: &ids })
                .expect("a list of strings always serialises");
            let answer: Option<StringCollection> = self
                .call(Method::POST, url.clone(), Some(body), deadline)
                .await?;
            let Some(answer) = answer else {
                // Graph knows no object `member`: it belongs to no group.
                return Ok(Vec::new());
            };
            // Only ids that were asked about count.
            found.extend(
                chunk
                    .iter()
                    .filter(|g| answer.value.iter().any(|raw| same_id(raw, **g))),
            );
        }
        Ok(found)
    }
}
