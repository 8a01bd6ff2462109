//! A scripted HTTP fake on 127.0.0.1:0 that records every request it sees.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use uc_access::databricks::{
    DatabricksAuth, DatabricksClients, RetryPolicy, StaticToken, Transport,
};
use url::Url;

pub const ACCOUNT: &str = "11111111-2222-3333-4444-555555555555";

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    /// The path exactly as sent, still percent-encoded.
    pub raw_path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: String,
}

impl Seen {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Script = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

#[derive(Clone)]
pub struct Fake {
    pub url: Url,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    /// Serves `script(request, index)` for every request (index counts from 0).
    pub async fn start(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let recorder = seen.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let recorder = recorder.clone();
                let script = script.clone();
                async move {
                    let request = Seen {
                        method,
                        raw_path: uri.path().to_owned(),
                        query: url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                            .into_owned()
                            .collect(),
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    };
                    let index = {
                        let mut all = recorder.lock().expect("fake setup");
                        all.push(request.clone());
                        all.len() - 1
                    };
                    let reply = script(&request, index);
                    tokio::time::sleep(reply.delay).await;
                    let mut response: Response = (
                        StatusCode::from_u16(reply.status).expect("fake setup"),
                        reply.body,
                    )
                        .into_response();
                    for (name, value) in reply.headers {
                        response
                            .headers_mut()
                            .insert(name, value.parse().expect("fake setup"));
                    }
                    response
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake setup");
        let url = Url::parse(&format!(
            "http://{}",
            listener.local_addr().expect("fake setup")
        ))
        .expect("fake setup");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("fake setup") });
        Self { url, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("fake setup").clone()
    }
}

/// A reqwest client that never goes through a proxy (the fakes are on loopback).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("fake setup")
}

/// Clients talking to `fake` for both the account and the workspace, with a static token.
pub fn clients(
    fake: &Fake,
    retry: RetryPolicy,
    timeout: Duration,
    resolve: bool,
) -> DatabricksClients {
    let transport = Transport::new(http(), retry, timeout);
    let auth = Arc::new(DatabricksAuth::shared(Arc::new(StaticToken::new(
        SecretString::from("test-token"),
    ))));
    DatabricksClients::new(transport, auth, fake.url.clone(), ACCOUNT.into(), resolve)
}

pub fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}
