//! The Functions host's side of the contract: readiness, the timer invocation, unknown routes, and who
//! may send invocation payloads.

use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::json;
use uc_access::standin::demo;

use crate::helpers::{TestApp, callback_body, fixture};

/// A peer that is not the Functions host: an address on the machine's network, not loopback.
fn remote_peer() -> SocketAddr {
    "10.1.2.3:51234".parse().unwrap()
}

#[tokio::test]
async fn the_readiness_probe_is_answered_at_the_root() {
    let app = TestApp::spawn().await;
    let (status, json) = app.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["status"], "ready");
}

#[tokio::test]
async fn a_timer_invocation_with_schedule_status_answers_outputs_logs_and_return_value() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            "/revoke-expired",
            None,
            fixture("host/timer-with-schedule-status.json"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(json["Outputs"].is_object());
    assert!(!json["Logs"].as_array().unwrap().is_empty());
    assert_eq!(json["ReturnValue"]["pastDue"], false);
    assert_eq!(json["ReturnValue"]["due"], 0);
}

#[tokio::test]
async fn a_timer_invocation_without_schedule_status_is_accepted() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            "/revoke-expired",
            None,
            fixture("host/timer-without-schedule-status.json"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["ReturnValue"]["pastDue"], false);
}

#[tokio::test]
async fn a_past_due_timer_sent_as_a_string_with_lenient_times_is_reported_past_due() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            "/revoke-expired",
            None,
            fixture("host/timer-past-due-lenient-times.json"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["ReturnValue"]["pastDue"], true);
    let logs = json["Logs"].to_string();
    assert!(logs.contains("past due"), "{logs}");
}

#[tokio::test]
async fn a_timer_invocation_that_is_not_json_is_refused_with_the_error_shape() {
    let app = TestApp::spawn().await;
    let (status, json) = app.post("/revoke-expired", None, "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["error"], "malformed_body");
    assert!(json["requestId"].is_string());
}

#[tokio::test]
async fn an_unknown_route_answers_404_in_the_error_shape() {
    let app = TestApp::spawn().await;
    let (status, json) = app.post("/api/drop-everything", None, "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json["error"], "not_found");
}

#[tokio::test]
async fn invocation_payloads_from_a_non_loopback_peer_are_refused_with_403_and_change_nothing() {
    let app = TestApp::spawn().await;
    let (status, json) = app
        .post(
            "/api/purview-callback",
            Some(&app.token("purview")),
            callback_body(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    app.advance(time::Duration::minutes(3));

    // The grant is due, but a timer payload from another address starts no revoke run.
    let (status, json) = app
        .post_from(
            remote_peer(),
            "/revoke-expired",
            fixture("host/timer-with-schedule-status.json"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
    assert_eq!(json["error"], "invocation_not_from_host");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("UC_ACCESS_ALLOW_REMOTE_INVOCATIONS"),
        "{json}"
    );
    assert_eq!(
        app.held("table", "sales.reporting.orders", demo::ALICE),
        vec!["SELECT"],
        "nothing was revoked"
    );

    // Nor does a bridged HTTP invocation reach the function, whatever token it carries.
    let bridged = json!({"Data": {"req": {
        "Method": "POST",
        "Headers": {"Authorization": [format!("Bearer {}", app.token("purview"))],
                    "Content-Type": ["application/json"]},
        "Body": callback_body(json!({"requestorId": demo::BOB_ENTRA_ID}))
    }}, "Metadata": {}});
    let before = app.snapshot();
    for (peer, path) in [
        (remote_peer(), "/purview-callback"),
        ("[fd00::2]:443".parse().unwrap(), "/purview-callback"),
        ("[::ffff:10.1.2.3]:443".parse().unwrap(), "/grant-access"),
    ] {
        let (status, json) = app.post_from(peer, path, bridged.to_string()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{peer} {path}: {json}");
        assert_eq!(json["error"], "invocation_not_from_host");
    }
    assert_eq!(app.snapshot(), before);

    // The same timer payload over loopback, as the host sends it, revokes the grant.
    let (status, json) = app
        .post_from(
            "127.0.0.1:40000".parse().unwrap(),
            "/revoke-expired",
            fixture("host/timer-with-schedule-status.json"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["ReturnValue"]["revoked"], 1, "{json}");
    // The forwarded HTTP routes authenticate their callers themselves and answer any peer.
    let (status, json) = app
        .post_from(remote_peer(), "/api/purview-callback", "{}")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{json}");
    assert_eq!(json["error"], "missing_credentials");
}

#[tokio::test]
async fn a_non_loopback_peer_may_send_a_timer_payload_only_when_the_setting_allows_remote_invocations()
 {
    for (env, expected) in [
        (vec![], StatusCode::FORBIDDEN),
        (
            vec![("UC_ACCESS_ALLOW_REMOTE_INVOCATIONS", "false")],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![("UC_ACCESS_ALLOW_REMOTE_INVOCATIONS", "true")],
            StatusCode::OK,
        ),
    ] {
        let app = TestApp::spawn_with(&env).await;
        let (status, json) = app
            .post_from(
                remote_peer(),
                "/revoke-expired",
                fixture("host/timer-with-schedule-status.json"),
            )
            .await;
        assert_eq!(status, expected, "{env:?}: {json}");
    }
}
