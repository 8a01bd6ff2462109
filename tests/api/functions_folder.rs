//! `functions/<name>/function.json` and the router must agree: a folder the host finds is a route the
//! binary serves, with the trigger, methods and auth level the binary expects.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;
use uc_access::auth::Callers;
use uc_access::functions::{AuthLevel, FUNCTIONS, Trigger};

use crate::helpers::TestApp;

fn function_folders() -> Vec<(String, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("functions");
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(path.join("function.json"))
                .unwrap_or_else(|e| panic!("functions/{name}/function.json: {e}"));
            folders.push((name, serde_json::from_str(&text).unwrap()));
        }
    }
    folders
}

#[test]
fn every_function_folder_is_a_function_of_the_binary_and_the_other_way_round() {
    let folders: BTreeSet<String> = function_folders().into_iter().map(|(n, _)| n).collect();
    let served: BTreeSet<String> = FUNCTIONS.iter().map(|f| f.name.to_owned()).collect();
    assert_eq!(folders, served);
}

#[test]
fn each_function_json_declares_the_trigger_the_binary_expects() {
    for (name, json) in function_folders() {
        let spec = FUNCTIONS.iter().find(|f| f.name == name).unwrap();
        let bindings = json["bindings"].as_array().unwrap();
        let trigger = &bindings[0];
        match spec.trigger {
            Trigger::Http {
                methods,
                callers,
                auth_level,
            } => {
                assert_eq!(trigger["type"], "httpTrigger", "{name}");
                assert_eq!(trigger["name"], "req", "{name}");
                assert_eq!(
                    trigger["authLevel"],
                    auth_level.as_str(),
                    "{name}: the lock the host checks is the one the binary (and its doctor) states"
                );
                // The functions Purview calls keep the host key as a second lock; the ones the connector
                // calls with a person's token alone are anonymous at the host (docs/authentication.md).
                let expected = match callers {
                    Callers::Services => AuthLevel::Function,
                    Callers::People => AuthLevel::Anonymous,
                };
                assert_eq!(auth_level, expected, "{name}");
                let declared: Vec<&str> = trigger["methods"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m.as_str().unwrap())
                    .collect();
                assert_eq!(declared, methods, "{name}");
                // No custom route: folder name = function name = route.
                assert!(trigger.get("route").is_none(), "{name}");
                assert!(
                    bindings
                        .iter()
                        .any(|b| b["type"] == "http" && b["name"] == "res"),
                    "{name} needs an http output binding named res"
                );
            }
            Trigger::Timer { schedule_setting } => {
                assert_eq!(trigger["type"], "timerTrigger", "{name}");
                assert_eq!(trigger["name"], "timer", "{name}");
                assert_eq!(
                    trigger["schedule"],
                    format!("%{schedule_setting}%"),
                    "{name}"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_function_has_a_route_in_the_router() {
    let app = TestApp::spawn().await;
    for spec in FUNCTIONS {
        let (status, _) = app.post(&format!("/{}", spec.name), None, "{}").await;
        assert_ne!(status, StatusCode::NOT_FOUND, "POST /{}", spec.name);
        if matches!(spec.trigger, Trigger::Http { .. }) {
            let (status, _) = app.post(&format!("/api/{}", spec.name), None, "{}").await;
            assert_ne!(status, StatusCode::NOT_FOUND, "POST /api/{}", spec.name);
        }
    }
}

#[test]
fn host_json_runs_this_binary_proxying_http_where_the_host_can_and_forwarding_where_it_cannot() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("host.json")).unwrap();
    let host: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(host["version"], "2.0");
    let handler = &host["customHandler"];
    assert_eq!(handler["description"]["defaultExecutablePath"], "uc-access");
    // A host that knows proxying uses it (it is checked first); one that does not ignores the key and
    // forwards (the legacy setting). Either way HTTP functions reach /api/<name> unchanged.
    assert_eq!(handler["enableProxyingHttpRequest"], true);
    assert_eq!(handler["enableForwardingHttpRequest"], true);
    // Proxying keeps the original path, so the route prefix must stay `api` (the router's and the
    // connector's basePath).
    assert!(
        host.pointer("/extensions/http/routePrefix").is_none(),
        "the default route prefix `api` is what the router serves"
    );
}
