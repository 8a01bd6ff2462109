//! The Functions host's side of the contract: readiness, the timer invocation, unknown routes.

use reqwest::StatusCode;

use crate::helpers::{TestApp, fixture};

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
