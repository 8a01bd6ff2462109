//! The Azure Functions custom-handler protocol: the invocation payload (`POST /<function>` with
//! `Data`/`Metadata`, answered 2xx with `Outputs`/`Logs`/`ReturnValue`), the HTTP trigger binding inside
//! it, and the timer trigger's payload.
//!
//! HTTP functions are normally forwarded unchanged (`enableForwardingHttpRequest`) to `/api/<function>`;
//! when forwarding is off, the host wraps the request in the invocation payload instead, and
//! [`http_bridge`] replays it through the very same router so both paths share one core. Invocation
//! payloads are accepted from the host's side of loopback only ([`peer`]).

pub mod catalog;
pub mod http_bridge;
pub mod peer;
pub mod timer;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What the host posts to `/<function>` for a non-forwarded invocation.
#[derive(Debug, Clone, Deserialize)]
pub struct InvocationRequest {
    #[serde(rename = "Data", default)]
    pub data: Map<String, Value>,
    #[serde(rename = "Metadata", default)]
    pub metadata: Value,
}

/// What the handler answers; the host fails the invocation on a non-2xx status.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InvocationResponse {
    #[serde(rename = "Outputs")]
    pub outputs: Map<String, Value>,
    /// Lines the host logs in the invocation's context (they reach Application Insights correlated).
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    #[serde(rename = "ReturnValue")]
    pub return_value: Value,
}

impl InvocationRequest {
    /// The trigger value bound under `name`, decoding it when the host sent it as a JSON string.
    pub fn binding(&self, name: &str) -> Option<Value> {
        match self.data.get(name)? {
            Value::String(s) => serde_json::from_str(s)
                .ok()
                .or(Some(Value::String(s.clone()))),
            other => Some(other.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_sent_as_a_json_string_is_decoded() {
        let req: InvocationRequest = serde_json::from_value(serde_json::json!({
            "Data": {"timer": "{\"IsPastDue\":true}"},
            "Metadata": {}
        }))
        .unwrap();
        assert_eq!(req.binding("timer").unwrap()["IsPastDue"], true);
        assert!(req.binding("missing").is_none());
    }

    #[test]
    fn the_response_uses_the_hosts_field_names() {
        let json = serde_json::to_value(InvocationResponse {
            logs: vec!["x".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"Outputs": {}, "Logs": ["x"], "ReturnValue": null})
        );
    }
}
