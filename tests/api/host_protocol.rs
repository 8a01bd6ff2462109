//! The Functions host's side of the contract: readiness, the timer invocation, unknown routes, and who
//! may send invocation payloads.

use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::json;
use uc_access_standin::demo;

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

/// Where the log lines of the requests sent on this thread go (the router runs in-process on it).
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Logs {
    /// The invocation id of each answered request, in order, as the request span logged it.
    fn invocation_ids(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["fields"]["message"] == "answered")
            .map(|l| l["span"]["invocation_id"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

/// A caller's request as it reaches the Functions front end.
struct Original {
    method: &'static str,
    path_and_query: String,
    headers: Vec<(&'static str, String)>,
    body: String,
}

const HOST_VERSION: &str = "4.1041.200.0";

fn request(
    method: &str,
    uri: &str,
    headers: &[(String, String)],
    body: String,
) -> axum::http::Request<axum::body::Body> {
    let mut builder = axum::http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(axum::body::Body::from(body)).unwrap()
}

/// What the host's proxy (`enableProxyingHttpRequest`, YARP's default transformer) sends: every header
/// but `Host`, `X-Forwarded-*` added, the host's version and invocation id set over any the caller sent,
/// the same path, query and body.
fn proxied(o: &Original, invocation_id: Option<&str>) -> axum::http::Request<axum::body::Body> {
    let overridden = [
        "x-azure-functions-invocationid",
        "x-azure-functions-hostversion",
        "x-ms-invocation-id",
    ];
    let mut headers: Vec<(String, String)> = o
        .headers
        .iter()
        .filter(|(n, _)| !overridden.contains(n))
        .map(|(n, v)| ((*n).to_owned(), v.clone()))
        .collect();
    headers.extend([
        ("host".into(), "127.0.0.1:40111".into()),
        ("x-forwarded-for".into(), "203.0.113.7".into()),
        ("x-forwarded-proto".into(), "https".into()),
        (
            "x-forwarded-host".into(),
            "func-uc-access.azurewebsites.net".into(),
        ),
        ("x-azure-functions-hostversion".into(), HOST_VERSION.into()),
    ]);
    if let Some(id) = invocation_id {
        headers.push(("x-azure-functions-invocationid".into(), id.into()));
        headers.push(("x-ms-invocation-id".into(), id.into()));
    }
    request(o.method, &o.path_and_query, &headers, o.body.clone())
}

/// What the legacy forwarding (`enableForwardingHttpRequest`) sends: the request rebuilt with its
/// headers, the host's headers *added* after them.
fn forwarded(o: &Original, invocation_id: Option<&str>) -> axum::http::Request<axum::body::Body> {
    let mut headers: Vec<(String, String)> = o
        .headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.clone()))
        .collect();
    headers.push(("x-azure-functions-hostversion".into(), HOST_VERSION.into()));
    headers.push((
        "user-agent".into(),
        format!("Azure-Functions-Host/{HOST_VERSION}"),
    ));
    if let Some(id) = invocation_id {
        headers.push(("x-azure-functions-invocationid".into(), id.into()));
    }
    request(o.method, &o.path_and_query, &headers, o.body.clone())
}

/// What a host that neither proxies nor forwards sends: the invocation payload at `/<function>`.
fn payload(o: &Original, invocation_id: Option<&str>) -> axum::http::Request<axum::body::Body> {
    let (path, query) = o
        .path_and_query
        .split_once('?')
        .unwrap_or((&o.path_and_query, ""));
    let function = path.trim_start_matches("/api/");
    let query: serde_json::Map<String, serde_json::Value> =
        url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), json!(v)))
            .collect();
    let mut headers = serde_json::Map::new();
    for (name, value) in &o.headers {
        headers.insert((*name).to_owned(), json!([value]));
    }
    let body = json!({
        "Data": {"req": {
            "Url": format!("https://func-uc-access.azurewebsites.net{}", o.path_and_query),
            "Method": o.method,
            "Query": query,
            "Headers": headers,
            "Params": {},
            "Body": o.body,
        }},
        "Metadata": {},
    });
    let mut outer = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(id) = invocation_id {
        outer.push(("x-azure-functions-invocationid".into(), id.into()));
    }
    request("POST", &format!("/{function}"), &outer, body.to_string())
}

/// The answer the caller gets: the proxied or forwarded one as it is, the payload's from `Outputs.res`.
fn caller_answer(
    status: StatusCode,
    mut json: serde_json::Value,
    from_payload: bool,
) -> (u16, serde_json::Value) {
    let (status, mut body) = if from_payload {
        assert_eq!(
            status,
            StatusCode::OK,
            "the invocation itself succeeds: {json}"
        );
        let res = json["Outputs"]["res"].take();
        let body = serde_json::from_str(res["body"].as_str().unwrap()).unwrap();
        (res["statusCode"].as_u64().unwrap() as u16, body)
    } else {
        (status.as_u16(), json)
    };
    // The one thing that differs by design: each request gets its own id.
    body.as_object_mut().unwrap().remove("requestId");
    (status, body)
}

#[tokio::test]
async fn a_request_proxied_forwarded_or_sent_as_an_invocation_payload_reaches_the_router_alike() {
    let app = TestApp::spawn().await;
    let loopback: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    // One grant, so that a list filtered by the query differs from the list without it.
    let (status, json) = app
        .post(
            "/api/purview-callback",
            Some(&app.token("purview")),
            callback_body(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let before = app.snapshot();

    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .json()
            .with_writer(logs.clone())
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .finish(),
    );
    let callers = [
        Original {
            method: "POST",
            path_and_query: "/api/purview-callback".into(),
            headers: vec![
                ("authorization", format!("Bearer {}", app.token("purview"))),
                ("content-type", "application/json; charset=utf-8".into()),
                ("x-caller-note", "kept as sent".into()),
            ],
            body: callback_body(json!({"dryRun": true, "requestorId": demo::BOB_ENTRA_ID})),
        },
        Original {
            method: "GET",
            path_and_query: format!("/api/list-grants?principal={}&state=revoked", demo::ALICE),
            headers: vec![
                ("authorization", format!("Bearer {}", app.token("operator"))),
                // A caller that names its own invocation id: it must never be logged as the host's.
                (
                    "x-azure-functions-invocationid",
                    "chosen-by-the-caller".into(),
                ),
            ],
            body: String::new(),
        },
    ];
    // The host's proxy and its forwarding both add the invocation id to every request (the host's
    // DefaultHttpWorkerService); an invocation payload may come without one on the host's own request.
    let host_id = "6f1d2c3b-4a59-4687-9a1b-2c3d4e5f6071";
    for caller in &callers {
        let mut answers = Vec::new();
        for (shape, req) in [
            ("proxied", proxied(caller, Some(host_id))),
            ("forwarded", forwarded(caller, Some(host_id))),
            ("payload", payload(caller, Some(host_id))),
            ("payload without an invocation id", payload(caller, None)),
        ] {
            let (status, json) = app.send_from(loopback, req).await;
            answers.push((
                shape,
                caller_answer(status, json, shape.starts_with("payload")),
            ));
        }
        let (_, first) = &answers[0];
        assert_eq!(first.0, 200, "{} {first:?}", caller.path_and_query);
        for (shape, answer) in &answers {
            assert_eq!(answer, first, "{shape} {}", caller.path_and_query);
        }
    }
    // What each answer shows came through: the body (a dry-run plan for Bob) and the query (a filter
    // on revoked grants, of which there are none, while one grant is active).
    let (_, plan) = caller_answer(
        StatusCode::OK,
        app.send_from(loopback, proxied(&callers[0], Some(host_id)))
            .await
            .1,
        false,
    );
    assert_eq!(plan["status"], "planned", "{plan}");
    let (_, list) = caller_answer(
        StatusCode::OK,
        app.send_from(loopback, payload(&callers[1], None)).await.1,
        true,
    );
    assert_eq!(list["grants"], json!([]), "{list}");
    let (_, unfiltered) = caller_answer(
        StatusCode::OK,
        app.get_as("/api/list-grants", Some(&app.token("operator")))
            .await
            .1,
        false,
    );
    assert_eq!(
        unfiltered["grants"].as_array().unwrap().len(),
        1,
        "{unfiltered}"
    );
    assert_eq!(app.snapshot(), before, "dry runs and lists change nothing");

    // The invocation id in the log is the host's in every shape, and none when the host's request
    // carried none, whatever the caller put in its own headers (the proxy overrides the caller's, the
    // forwarding adds the host's after it, the bridge replaces it).
    let ids = logs.invocation_ids();
    let mut expected: Vec<&str> = Vec::new();
    for _ in &callers {
        expected.extend([host_id, host_id, host_id, ""]);
    }
    expected.extend([host_id, "", ""]);
    assert_eq!(ids, expected);
}
