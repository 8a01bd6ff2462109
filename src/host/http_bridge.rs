//! When neither proxying nor forwarding applies (a host without `enableProxyingHttpRequest`, with
//! forwarding off), the host sends an HTTP trigger as an invocation payload
//! (`Data.req` = `{Url, Method, Query, Headers, Params, Body}`) and expects the answer in
//! `Outputs.res` = `{statusCode, headers, body}`. This module replays such a payload through the same
//! router that serves proxied and forwarded requests at `/api/<function>`, so authentication, limits,
//! parsing and error mapping are one code path, and the replayed request is what a proxied one would be:
//! the same method, path, query, headers and body, with the host's own invocation id.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderName, HeaderValue, Method, Request};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use super::{InvocationRequest, InvocationResponse};

/// Name of the HTTP trigger binding in every `function.json` (`"name": "req"`).
pub const HTTP_TRIGGER_BINDING: &str = "req";
/// Name of the HTTP output binding (`"name": "res"`).
pub const HTTP_OUTPUT_BINDING: &str = "res";

/// Largest answer body the bridge will buffer (our answers are small JSON documents).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Why an invocation payload could not be turned into a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    #[error("Data.{HTTP_TRIGGER_BINDING} is missing: this function expects an HTTP trigger")]
    MissingRequest,
    #[error("Data.{HTTP_TRIGGER_BINDING}.Method {0:?} is not an HTTP method")]
    BadMethod(String),
    #[error("Data.{HTTP_TRIGGER_BINDING}.Headers.{0} cannot be used as an HTTP header")]
    BadHeader(String),
}

/// Builds the request the host would have proxied: `/api/<function>` with the original method, query,
/// headers and body. `invocation_id` (from the host's own request) replaces any
/// `x-azure-functions-invocationid` the caller sent, as the host's proxy overrides it: a caller cannot
/// choose the id its request is logged under. Without one, the caller's is dropped too.
pub fn to_http_request(
    function: &str,
    invocation: &InvocationRequest,
    invocation_id: Option<&HeaderValue>,
) -> Result<Request<Body>, BridgeError> {
    let req = invocation
        .data
        .get(HTTP_TRIGGER_BINDING)
        .and_then(Value::as_object)
        .ok_or(BridgeError::MissingRequest)?;

    let method_raw = req.get("Method").and_then(Value::as_str).unwrap_or("POST");
    let method = Method::from_bytes(method_raw.to_ascii_uppercase().as_bytes())
        .map_err(|_| BridgeError::BadMethod(method_raw.to_owned()))?;

    let mut uri = format!("/api/{function}");
    let query = query_pairs(req.get("Query"));
    if !query.is_empty() {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        uri.push('?');
        uri.push_str(&encoded);
    }

    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(Value::Object(headers)) = req.get("Headers") {
        for (name, values) in headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| BridgeError::BadHeader(name.clone()))?;
            if header == crate::telemetry::INVOCATION_ID_HEADER {
                continue;
            }
            for value in header_values(values) {
                let value = HeaderValue::from_str(&value)
                    .map_err(|_| BridgeError::BadHeader(name.clone()))?;
                builder = builder.header(header.clone(), value);
            }
        }
    }
    if let Some(id) = invocation_id {
        builder = builder.header(crate::telemetry::INVOCATION_ID_HEADER, id.clone());
    }

    let body = match req.get("Body") {
        None | Some(Value::Null) => Body::empty(),
        Some(Value::String(s)) => Body::from(s.clone()),
        // Some hosts hand a JSON body over already parsed; send it back as the JSON it was.
        Some(other) => Body::from(other.to_string()),
    };
    builder.body(body).map_err(|_| BridgeError::MissingRequest)
}

fn query_pairs(query: Option<&Value>) -> Vec<(String, String)> {
    let object = match query {
        Some(Value::String(s)) => serde_json::from_str::<Map<String, Value>>(s).unwrap_or_default(),
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    object
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            Value::Null => None,
            other => Some((k, other.to_string())),
        })
        .collect()
}

fn header_values(values: &Value) -> Vec<String> {
    match values {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

/// Runs the invocation through `router` and wraps its answer for the host. The invocation itself
/// always succeeds (2xx to the host); the HTTP status the caller sees is `Outputs.res.statusCode`.
pub async fn invoke(
    router: Router,
    function: &str,
    invocation: &InvocationRequest,
    invocation_id: Option<&HeaderValue>,
) -> InvocationResponse {
    let response = match to_http_request(function, invocation, invocation_id) {
        Ok(request) => router.oneshot(request).await.unwrap_or_else(|e| match e {}),
        Err(problem) => {
            let err = crate::error::ApiError::malformed_body(problem.to_string());
            axum::response::IntoResponse::into_response(err)
        }
    };
    let status = response.status().as_u16();
    let mut headers = Map::new();
    for (name, value) in response.headers() {
        if let Ok(v) = value.to_str() {
            headers.insert(name.as_str().to_owned(), Value::String(v.to_owned()));
        }
    }
    let body = match to_bytes(response.into_body(), MAX_ANSWER_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let mut outputs = Map::new();
    outputs.insert(
        HTTP_OUTPUT_BINDING.to_owned(),
        json!({ "statusCode": status, "headers": headers, "body": body }),
    );
    InvocationResponse {
        outputs,
        logs: vec![format!("{function} answered {status}")],
        return_value: Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;

    fn invocation(req: Value) -> InvocationRequest {
        serde_json::from_value(json!({"Data": {"req": req}, "Metadata": {}})).unwrap()
    }

    #[test]
    fn the_request_is_rebuilt_with_method_path_query_headers_and_body() {
        let inv = invocation(json!({
            "Url": "https://x/api/grant-access?dryRun=true",
            "Method": "post",
            "Query": "{\"dryRun\":\"true\"}",
            "Headers": {"Content-Type": ["application/json"], "X-Two": ["a", "b"]},
            "Body": "{\"a\":1}"
        }));
        let req = to_http_request("grant-access", &inv, None).unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), "/api/grant-access?dryRun=true");
        assert_eq!(req.headers()["content-type"], "application/json");
        assert_eq!(req.headers().get_all("x-two").iter().count(), 2);
    }

    #[test]
    fn the_hosts_invocation_id_replaces_one_the_caller_sent_and_none_is_invented() {
        let inv = invocation(json!({
            "Method": "POST",
            "Headers": {"X-Azure-Functions-InvocationId": ["forged-by-the-caller"]},
        }));
        let host = HeaderValue::from_static("6f1d2c3b-4a59-4687-9a1b-2c3d4e5f6071");
        let req = to_http_request("grant-access", &inv, Some(&host)).unwrap();
        let ids: Vec<_> = req
            .headers()
            .get_all(crate::telemetry::INVOCATION_ID_HEADER)
            .iter()
            .collect();
        assert_eq!(ids, vec![&host]);
        let req = to_http_request("grant-access", &inv, None).unwrap();
        assert!(
            req.headers()
                .get(crate::telemetry::INVOCATION_ID_HEADER)
                .is_none()
        );
    }

    #[test]
    fn a_payload_without_an_http_request_is_refused() {
        let inv: InvocationRequest =
            serde_json::from_value(json!({"Data": {}, "Metadata": {}})).unwrap();
        assert_eq!(
            to_http_request("x", &inv, None).unwrap_err(),
            BridgeError::MissingRequest
        );
        let bad = invocation(json!({"Method": "GE T"}));
        assert!(matches!(
            to_http_request("x", &bad, None),
            Err(BridgeError::BadMethod(_))
        ));
    }

    #[tokio::test]
    async fn the_answer_comes_back_in_outputs_res() {
        let router = Router::new().route(
            "/api/echo",
            post(|body: String| async move { (axum::http::StatusCode::CREATED, body) }),
        );
        let inv = invocation(json!({"Method": "POST", "Body": "hello"}));
        let out = invoke(router, "echo", &inv, None).await;
        assert_eq!(out.outputs["res"]["statusCode"], 201);
        assert_eq!(out.outputs["res"]["body"], "hello");
    }
}
