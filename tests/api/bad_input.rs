//! The bad-input corpus: every HTTP function against malformed, oversized, mistyped, smuggling and
//! escalating input. Each case asserts the specific status and error code (and, where the caller needs it,
//! the field the message names), and that nothing changed: the stand-in's grants and created identities,
//! the mutating requests it received, and every byte of the ledger. Cases that must be refused before any
//! Databricks call also assert the stand-in saw no request at all.

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uc_access_standin::demo;

use crate::helpers::{TestApp, callback_body};

const CALLBACK: &str = "/api/purview-callback";
const GRANT: &str = "/api/grant-access";
const RESOLVE: &str = "/api/resolve-principal";
const REVOKE: &str = "/api/revoke-access";
const LIST: &str = "/api/list-grants";
const DOCTOR: &str = "/api/doctor";

/// The POST functions with a caller each is allowed, and a body each accepts.
fn post_functions(app: &TestApp) -> Vec<(&'static str, String, String)> {
    vec![
        (CALLBACK, app.token("purview"), callback_body(json!({}))),
        (GRANT, app.token("operator"), grant_body(json!({}))),
        (
            RESOLVE,
            app.token("operator"),
            json!({"userName": demo::ALICE}).to_string(),
        ),
        (
            REVOKE,
            app.token("operator"),
            json!({"grantId": "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"}).to_string(),
        ),
    ]
}

fn grant_body(overrides: Value) -> String {
    let mut base = json!({
        "principal": {"userName": demo::ALICE},
        "securable": {"type": "table", "fullName": "sales.reporting.customers"},
        "duration": "PT8H",
    });
    for (k, v) in overrides.as_object().unwrap() {
        base[k] = v.clone();
    }
    base.to_string()
}

/// One bad request and what it must get.
struct Case {
    what: String,
    method: Method,
    path: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    status: StatusCode,
    code: &'static str,
    /// The message must start with this (the field it names), when given.
    field: Option<&'static str>,
    /// Refused before any Databricks call: the stand-in must not have been asked anything.
    before_databricks: bool,
}

impl Case {
    fn post(
        what: impl Into<String>,
        path: &'static str,
        token: &str,
        body: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            what: what.into(),
            method: Method::POST,
            path,
            headers: vec![
                ("authorization".into(), format!("Bearer {token}")),
                ("content-type".into(), "application/json".into()),
            ],
            body: body.into(),
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            field: None,
            before_databricks: true,
        }
    }

    fn expect(mut self, status: StatusCode, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }

    fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    /// The refusal needs the resolved principal, so the stand-in is read (never written).
    fn after_resolve(mut self) -> Self {
        self.before_databricks = false;
        self
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(k, _)| k != name);
        self.headers.push((name.into(), value.into()));
        self
    }

    fn without_header(mut self, name: &str) -> Self {
        self.headers.retain(|(k, _)| k != name);
        self
    }
}

/// Sends every case to one app and checks each; collects every failure before panicking.
async fn check_all(app: &TestApp, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in cases {
        let before = app.snapshot();
        let requests_before = app.standin_requests();
        let headers: Vec<(&str, &str)> = case
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let answer = app
            .send_raw(case.method.clone(), case.path, &headers, case.body.clone())
            .await;
        let json: Value = serde_json::from_str(&answer.text).unwrap_or(Value::Null);
        let mut problems = Vec::new();
        if answer.status != case.status {
            problems.push(format!("status {} (want {})", answer.status, case.status));
        }
        if json["error"] != case.code {
            problems.push(format!("error {} (want {})", json["error"], case.code));
        }
        if !answer
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json"))
        {
            problems.push(format!("content type {:?}", answer.content_type));
        }
        if let Some(field) = case.field {
            let message = json["message"].as_str().unwrap_or("");
            if !message.starts_with(&format!("{field}:")) && !message.starts_with(field) {
                problems.push(format!("message does not name {field}"));
            }
        }
        let after = app.snapshot();
        if after != before {
            problems.push("the stand-in or the ledger changed".into());
        }
        if case.before_databricks && app.standin_requests() != requests_before {
            problems.push("the stand-in was called".into());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} {} [{}]: {} — answer: {}",
                case.method,
                case.path,
                case.what,
                problems.join("; "),
                answer.text
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test]
async fn malformed_bodies_are_refused_by_every_post_function_before_anything_happens() {
    let app = TestApp::spawn().await;
    let limit = uc_access::settings::DEFAULT_MAX_BODY_BYTES;
    let mut cases = Vec::new();
    for (path, token, good) in post_functions(&app) {
        // Oversized: a declared length over the limit, and a valid JSON object padded past it.
        let padded = {
            let mut v: Value = serde_json::from_str(&good).unwrap();
            v["padding"] = json!("x".repeat(limit));
            v.to_string()
        };
        cases.push(
            Case::post("oversized", path, &token, padded)
                .expect(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        );
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/xml",
            "application/jsonp",
        ] {
            cases.push(
                Case::post(format!("content type {ct}"), path, &token, good.clone())
                    .header("content-type", ct)
                    .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            );
        }
        let malformed: Vec<(&str, Vec<u8>)> = vec![
            ("invalid UTF-8", b"{\"a\": \"\xff\xfe\"}".to_vec()),
            ("invalid UTF-8 outside strings", b"\xc3\x28".to_vec()),
            ("deeply nested arrays", nested(30_000).into_bytes()),
            (
                "deeply nested objects",
                format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).into_bytes(),
            ),
            ("empty body", Vec::new()),
            ("a JSON array", b"[]".to_vec()),
            ("a JSON string", b"\"{}\"".to_vec()),
            ("null", b"null".to_vec()),
            ("truncated", good.as_bytes()[..good.len() / 2].to_vec()),
            ("trailing garbage", format!("{good} x").into_bytes()),
            ("a NUL byte", b"{\"a\":\0}".to_vec()),
            ("a field given twice", {
                let mut v = good.trim_end().trim_end_matches('}').to_owned();
                let first = serde_json::from_str::<Value>(&good).unwrap();
                let (key, value) = first.as_object().unwrap().iter().next().unwrap();
                v.push_str(&format!(",{}:{}}}", json!(key), value));
                v.into_bytes()
            }),
            ("a UTF-8 byte order mark", {
                let mut b = b"\xef\xbb\xbf".to_vec();
                b.extend_from_slice(good.as_bytes());
                b
            }),
        ];
        for (what, body) in malformed {
            cases.push(
                Case::post(what, path, &token, body)
                    .expect(StatusCode::BAD_REQUEST, "malformed_body"),
            );
        }
        // Unknown fields (a typo, or an attempt to smuggle a setting) are named, not ignored.
        let mut extra: Value = serde_json::from_str(&good).unwrap();
        extra["allowAll"] = json!(true);
        cases.push(Case::post("unknown field", path, &token, extra.to_string()).field("allowAll"));
    }
    check_all(&app, cases).await;
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_without_a_length_is_refused_with_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let before = app.snapshot();
    let url = url::Url::parse(&app.base).unwrap();
    let mut stream = tokio::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap()))
        .await
        .unwrap();
    let head = format!(
        "POST /api/purview-callback HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        app.token("purview")
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 16 * 1024];
    // Up to 1 MiB in 16 KiB chunks; the server may answer and close long before the end.
    for _ in 0..64 {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"body_too_large\""), "{answer}");
    assert_eq!(app.snapshot(), before);
    assert_eq!(app.standin_requests(), 0);
}

#[tokio::test]
async fn names_unity_catalog_refuses_are_400s_and_look_alikes_reach_no_other_object() {
    let app = TestApp::spawn().await;
    let purview = app.token("purview");
    let operator = app.token("operator");
    let prefix = format!(
        "databricks://{}/catalogs/sales/schemas/reporting/tables/",
        demo::METASTORE_ID
    );
    // Names Unity Catalog itself refuses ('.', spaces, '/', control characters, too long), however
    // encoded, and a '%' that starts no escape: 400 naming the field, before any Databricks call.
    let refused = [
        "orders`; DROP TABLE x; --",
        "orders`;%20DROP%20TABLE%20x;%20--",
        "orders%",
        "orders%2",
        "orders%2e",
        "orders%00",
        "orders%0a",
        "..",
        "%2e%2e",
        "..%2f..%2fhr",
        "orders\\..\\x",
        "orders name",
        "ord\ters",
        &"a".repeat(256),
    ];
    let mut cases = Vec::new();
    for table in refused {
        cases.push(
            Case::post(
                format!("callback table {table:?}"),
                CALLBACK,
                &purview,
                callback_body(json!({"assetQualifiedName": format!("{prefix}{table}")})),
            )
            .field("assetQualifiedName"),
        );
        // The dotted form has no percent-decoding: only names refused as written apply.
        if !table.contains('%') {
            cases.push(
                Case::post(
                    format!("grant-access fullName table {table:?}"),
                    GRANT,
                    &operator,
                    grant_body(json!({"securable": {"type": "table", "fullName": format!("sales.reporting.{table}")}})),
                )
                .field("securable.fullName"),
            );
        }
    }
    // Names Unity Catalog allows (quotes, backticks, look-alike letters, invisible and full-width
    // characters, a literal "%2e"): each names its own object, never `orders`. None exists, so each is
    // 404 with nothing changed; no grant lands on the table it imitates.
    let look_alikes = [
        ("or`ders", "or`ders"),
        ("`orders`", "`orders`"),
        ("orders?x=1", "orders?x=1"),
        ("orders#hr", "orders#hr"),
        ("or\"ders", "or\"ders"),
        ("or'ders", "or'ders"),
        ("orders\u{037E}", "orders\u{037E}"), // Greek question mark, looks like ';'
        ("\u{043E}rders", "\u{043E}rders"),   // Cyrillic 'о'
        ("ord\u{0435}rs", "ord\u{0435}rs"),   // Cyrillic 'е'
        ("orders\u{200B}", "orders\u{200B}"), // zero-width space
        ("ｏrders", "ｏrders"),               // full-width 'o'
        ("orders%252e", "orders%2e"),
        ("%60orders%60", "`orders`"),
    ];
    for (qualified, dotted) in look_alikes {
        cases.push(
            Case::post(
                format!("callback look-alike {qualified:?}"),
                CALLBACK,
                &purview,
                callback_body(json!({"assetQualifiedName": format!("{prefix}{qualified}")})),
            )
            .expect(StatusCode::NOT_FOUND, "securable_not_found")
            .after_resolve(),
        );
        cases.push(
            Case::post(
                format!("grant-access look-alike {dotted:?}"),
                GRANT,
                &operator,
                grant_body(json!({"securable": {"type": "table", "fullName": format!("sales.reporting.{dotted}")}})),
            )
            .expect(StatusCode::NOT_FOUND, "securable_not_found")
            .after_resolve(),
        );
    }
    for qualified in [
        format!(
            "databricks://{}/catalogs/sales/schemas/reporting/tables/orders/../../../hr",
            demo::METASTORE_ID
        ),
        format!(
            "databricks://{}/catalogs/sales/schemas/../tables/orders",
            demo::METASTORE_ID
        ),
        format!("databricks://{}//catalogs/sales", demo::METASTORE_ID),
        format!("databricks://{}%2f..%2f/catalogs/sales", demo::METASTORE_ID),
        "https://evil.example/catalogs/sales/schemas/reporting/tables/orders".to_owned(),
        "file:///etc/passwd".to_owned(),
        "databricks://".to_owned(),
    ] {
        cases.push(
            Case::post(
                format!("callback {qualified:?}"),
                CALLBACK,
                &purview,
                callback_body(json!({"assetQualifiedName": qualified})),
            )
            .field("assetQualifiedName"),
        );
    }
    for full_name in [
        "sales.reporting.orders.extra",
        "sales..orders",
        ".reporting.orders",
        "sales.reporting.",
        "sales/reporting/orders",
        "sales.reporting",
    ] {
        cases.push(
            Case::post(
                format!("grant-access fullName {full_name:?}"),
                GRANT,
                &operator,
                grant_body(json!({"securable": {"type": "table", "fullName": full_name}})),
            )
            .field("securable.fullName"),
        );
    }
    // User names may hold any character an e-mail address may, so a backtick is not refused by form; they
    // are matched exactly (a look-alike finds nobody). Spaces and quotes never make a user name.
    for user in ["alice`@contoso.com", "al\u{0456}ce.analyst@contoso.com"] {
        cases.push(
            Case::post(
                format!("resolve userName {user:?}"),
                RESOLVE,
                &operator,
                json!({"userName": user}).to_string(),
            )
            .expect(StatusCode::NOT_FOUND, "principal_not_found")
            .after_resolve(),
        );
    }
    for user in [
        "x\" or userName pr or \"@contoso.com",
        "alice.analyst@contoso.com\\\" or \"1\"=\"1",
    ] {
        cases.push(
            Case::post(
                format!("resolve userName {user:?}"),
                RESOLVE,
                &operator,
                json!({"userName": user}).to_string(),
            )
            .field("userName"),
        );
    }
    // Group display names may hold quotes: they are escaped in the SCIM filter, so an injected clause
    // finds nobody instead of every group.
    for group in [
        "x\" or displayName pr or \"",
        "data-analysts\" or \"1\"=\"1",
    ] {
        cases.push(
            Case::post(
                format!("grant-access groupName {group:?}"),
                GRANT,
                &operator,
                grant_body(json!({"principal": {"groupName": group}})),
            )
            .expect(StatusCode::NOT_FOUND, "principal_not_found")
            .after_resolve(),
        );
    }
    cases.push(
        Case::post(
            "resolve an empty userName",
            RESOLVE,
            &operator,
            json!({"userName": ""}).to_string(),
        )
        .field("objectId|userName"),
    );
    check_all(&app, cases).await;
}

#[tokio::test]
async fn privilege_escalation_through_the_request_is_denied_naming_the_rule() {
    let app = TestApp::spawn().await;
    let purview = app.token("purview");
    let operator = app.token("operator");
    let catalog = format!("databricks://{}/catalogs/sales", demo::METASTORE_ID);
    let schema = format!(
        "databricks://{}/catalogs/sales/schemas/reporting",
        demo::METASTORE_ID
    );
    let mut cases = Vec::new();
    for privileges in [
        json!(["ALL_PRIVILEGES"]),
        json!(["MANAGE"]),
        json!(["MODIFY"]),
        json!(["SELECT", "MODIFY"]),
        json!("SELECT, MANAGE"),
        json!("select;all privileges"),
        json!(["apply tag"]),
        json!(["REFRESH"]),
    ] {
        cases.push(
            Case::post(
                format!("callback privileges {privileges}"),
                CALLBACK,
                &purview,
                callback_body(json!({"privileges": privileges})),
            )
            .expect(StatusCode::FORBIDDEN, "privilege_not_allowed"),
        );
        cases.push(
            Case::post(
                format!("grant-access privileges {privileges}"),
                GRANT,
                &operator,
                grant_body(json!({"privileges": privileges})),
            )
            .expect(StatusCode::FORBIDDEN, "privilege_not_allowed"),
        );
    }
    // A duplicate key must not let a later value override what an earlier reader saw.
    for body in [
        r#"{"requestorId":"5b1f2e3d-4c5b-4a69-8e7f-0a1b2c3d4e5f","assetQualifiedName":"databricks://m/catalogs/sales/schemas/reporting/tables/orders","approvalOutcome":"Approved","approvers":"7d3b4a5f-6e7d-4c8b-8a91-2c3d4e5f6071","privileges":"SELECT","privileges":"ALL_PRIVILEGES"}"#,
        r#"{"requestorId":"5b1f2e3d-4c5b-4a69-8e7f-0a1b2c3d4e5f","assetQualifiedName":"databricks://m/catalogs/sales/schemas/reporting/tables/orders","approvalOutcome":"Rejected","approvers":"7d3b4a5f-6e7d-4c8b-8a91-2c3d4e5f6071","approvalOutcome":"Approved"}"#,
    ] {
        cases.push(
            Case::post("a duplicated field", CALLBACK, &purview, body)
                .expect(StatusCode::BAD_REQUEST, "malformed_body"),
        );
    }
    // Privileges that do not exist on a table are a contract error, not a policy one.
    for privileges in [
        json!(["USE_CATALOG"]),
        json!(["CREATE_TABLE"]),
        json!(["OWN"]),
        json!(["SELECT\u{0000}"]),
        json!(["SEL\u{0415}CT"]),
    ] {
        cases.push(
            Case::post(
                format!("callback privileges {privileges}"),
                CALLBACK,
                &purview,
                callback_body(json!({"privileges": privileges})),
            )
            .field("privileges"),
        );
    }
    // Catalog- or schema-wide grants, which the default policy forbids (a grant there reaches every table).
    for (what, asset, privileges) in [
        ("catalog-wide SELECT", catalog.clone(), json!(["SELECT"])),
        ("catalog-wide default", catalog.clone(), json!(null)),
        (
            "catalog USE_CATALOG",
            catalog.clone(),
            json!(["USE_CATALOG"]),
        ),
        (
            "catalog ALL_PRIVILEGES",
            catalog.clone(),
            json!(["ALL_PRIVILEGES"]),
        ),
        ("schema-wide SELECT", schema.clone(), json!(["SELECT"])),
        ("schema MANAGE", schema.clone(), json!(["MANAGE"])),
    ] {
        cases.push(
            Case::post(
                what,
                CALLBACK,
                &purview,
                callback_body(json!({"assetQualifiedName": asset, "privileges": privileges})),
            )
            .expect(StatusCode::FORBIDDEN, "securable_type_not_allowed"),
        );
    }
    cases.push(
        Case::post(
            "grant-access catalog-wide SELECT",
            GRANT,
            &operator,
            grant_body(json!({"securable": {"type": "catalog", "fullName": "sales"}, "privileges": ["SELECT"]})),
        )
        .expect(StatusCode::FORBIDDEN, "securable_type_not_allowed"),
    );
    cases.push(
        Case::post(
            "a duration over the maximum",
            CALLBACK,
            &purview,
            callback_body(json!({"duration": "P91D"})),
        )
        .expect(StatusCode::FORBIDDEN, "duration_exceeds_maximum"),
    );
    for duration in [
        "P1Y",
        "P1.5D",
        "-P1D",
        "PT0S",
        "P100000D",
        "PT1S",
        "P30D\u{0000}",
    ] {
        cases.push(
            Case::post(
                format!("duration {duration:?}"),
                CALLBACK,
                &purview,
                callback_body(json!({"duration": duration})),
            )
            .field("duration"),
        );
    }
    for outcome in ["Rejected", "Pending", "APPROVED\u{200B}", "Appr\u{043E}ved"] {
        cases.push(
            Case::post(
                format!("outcome {outcome:?}"),
                CALLBACK,
                &purview,
                callback_body(json!({"approvalOutcome": outcome})),
            )
            .expect(StatusCode::FORBIDDEN, "not_approved"),
        );
    }
    check_all(&app, cases).await;
}

#[tokio::test]
async fn forbidden_principals_are_refused_without_any_change() {
    let app = TestApp::spawn().await;
    let operator = app.token("operator");
    let cases = vec![
        Case::post(
            "account users",
            GRANT,
            &operator,
            grant_body(json!({"principal": {"groupName": "account users"}})),
        )
        .expect(StatusCode::FORBIDDEN, "forbidden_principal"),
        Case::post(
            "account users in another case",
            GRANT,
            &operator,
            grant_body(json!({"principal": {"groupName": "Account Users"}})),
        )
        .expect(StatusCode::FORBIDDEN, "forbidden_principal"),
        Case::post(
            "a workspace-local group",
            GRANT,
            &operator,
            grant_body(json!({"principal": {"groupName": demo::WORKSPACE_LOCAL_GROUP}})),
        )
        .expect(StatusCode::UNPROCESSABLE_ENTITY, "workspace_local_group")
        .after_resolve(),
        Case::post(
            "the workspace-local admins group",
            GRANT,
            &operator,
            grant_body(json!({"principal": {"groupName": "admins"}})),
        )
        .expect(StatusCode::UNPROCESSABLE_ENTITY, "workspace_local_group")
        .after_resolve(),
        Case::post(
            "an inactive user",
            GRANT,
            &operator,
            grant_body(json!({"principal": {"userName": demo::DAVE_INACTIVE}})),
        )
        .expect(StatusCode::CONFLICT, "principal_inactive")
        .after_resolve(),
    ];
    check_all(&app, cases).await;
}

#[tokio::test]
async fn self_approval_is_denied_on_both_paths() {
    let app = TestApp::spawn().await;
    let purview = app.token("purview");
    // An operator who is Alice may not grant to Alice, however she is named.
    let alice_operator = app.token(&format!("user:{}:UcAccess.Operator", demo::ALICE_ENTRA_ID));
    let cases = vec![
        Case::post(
            "the requester approves",
            CALLBACK,
            &purview,
            callback_body(json!({"approvers": [demo::ALICE_ENTRA_ID]})),
        )
        .expect(StatusCode::FORBIDDEN, "self_approval"),
        Case::post(
            "the requester among several approvers",
            CALLBACK,
            &purview,
            callback_body(json!({"approvers": format!("{};{}", demo::CAROL_ENTRA_ID, demo::ALICE_ENTRA_ID.to_uppercase())})),
        )
        .expect(StatusCode::FORBIDDEN, "self_approval"),
        Case::post(
            "the recipient approves",
            CALLBACK,
            &purview,
            callback_body(json!({"recipientId": demo::BOB_ENTRA_ID, "approvers": demo::BOB_ENTRA_ID})),
        )
        .expect(StatusCode::FORBIDDEN, "self_approval"),
        Case::post(
            "an operator grants to herself by user name",
            GRANT,
            &alice_operator,
            grant_body(json!({"principal": {"userName": demo::ALICE}})),
        )
        .expect(StatusCode::FORBIDDEN, "self_approval")
        .after_resolve(),
        Case::post(
            "an operator grants to herself by object id",
            GRANT,
            &alice_operator,
            grant_body(json!({"principal": {"objectId": demo::ALICE_ENTRA_ID}})),
        )
        .expect(StatusCode::FORBIDDEN, "self_approval"),
    ];
    check_all(&app, cases).await;
}

#[tokio::test]
async fn a_group_spelled_like_a_forbidden_group_in_another_case_is_refused_without_any_change() {
    // Unity Catalog keeps `Platform Admins` and `platform admins` apart: the look-alike is a real
    // group, and the forbidden list must stop it too.
    let mut seed = uc_access_standin::Seed::demo();
    for (id, name) in [("3801", "Platform Admins"), ("3802", "platform admins")] {
        seed.groups.push(uc_access_standin::SeedGroup {
            id: id.into(),
            display_name: name.into(),
            external_id: None,
            member_ids: vec!["1003".into()],
            workspace_local: false,
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(
        &file,
        "[principals]\nforbidden_groups = [\"Platform Admins\"]\n",
    )
    .unwrap();
    let app =
        TestApp::spawn_seeded(&[("UC_ACCESS_POLICY_FILE", file.to_str().unwrap())], seed).await;
    let operator = app.token("operator");
    let cases = ["Platform Admins", "platform admins"]
        .into_iter()
        .map(|group| {
            Case::post(
                format!("group {group:?}"),
                GRANT,
                &operator,
                grant_body(json!({"principal": {"groupName": group}})),
            )
            .expect(StatusCode::FORBIDDEN, "forbidden_principal")
            .after_resolve()
        })
        .collect();
    check_all(&app, cases).await;
}

/// Frank was added to the account by e-mail: Databricks holds no Entra object id for him.
const FRANK: &str = "frank.contractor@contoso.com";
const FRANK_ENTRA_ID: &str = "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d";

fn seed_with_frank() -> uc_access_standin::Seed {
    let mut seed = uc_access_standin::Seed::demo();
    seed.users.push(uc_access_standin::SeedUser {
        id: "1009".into(),
        user_name: FRANK.into(),
        display_name: "Frank Contractor".into(),
        active: true,
        external_id: None,
    });
    seed
}

/// An app-only token of the ETL pipeline's application, given the operator role.
fn etl_operator(app: &TestApp) -> String {
    let mut claims = claims_of(&app.token(&format!("app:{}", demo::ETL_CLIENT_ID)));
    claims["roles"] = json!(["UcAccess.Operator"]);
    app.sign(&claims)
}

#[tokio::test]
async fn an_operator_cannot_grant_to_a_principal_that_cannot_be_told_apart_from_them() {
    let app = TestApp::spawn_seeded(&[], seed_with_frank()).await;
    // Frank signs in with his Entra identity; his Databricks user does not carry its object id.
    let frank = app.token(&format!("user:{FRANK_ENTRA_ID}:UcAccess.Operator"));
    let etl = etl_operator(&app);
    let cases = vec![
        Case::post(
            "a user without an externalId, by user name",
            GRANT,
            &frank,
            grant_body(json!({"principal": {"userName": FRANK}})),
        )
        .expect(StatusCode::FORBIDDEN, "self_approval_unverifiable")
        .after_resolve(),
        Case::post(
            "a user without an externalId, reached through fallbackUserName",
            GRANT,
            &frank,
            grant_body(json!({"principal": {
                "objectId": "4d5e6f70-8192-4a3b-8ccd-3e4f5a6b7c8d",
                "fallbackUserName": FRANK,
            }})),
        )
        .expect(StatusCode::FORBIDDEN, "self_approval_unverifiable")
        .after_resolve(),
        Case::post(
            "an application granting to itself, which has no externalId",
            GRANT,
            &etl,
            grant_body(json!({"principal": {"applicationId": demo::ETL_CLIENT_ID}})),
        )
        .expect(StatusCode::FORBIDDEN, "self_approval")
        .after_resolve(),
    ];
    check_all(&app, cases).await;

    // Each message says what could not be established and what to do.
    let (_, json) = app
        .post(
            GRANT,
            Some(&frank),
            grant_body(json!({"principal": {"userName": FRANK}})),
        )
        .await;
    let message = json["message"].as_str().unwrap();
    assert!(
        message.contains(FRANK) && message.contains("objectId"),
        "{message}"
    );

    // Proven different, the same principals are granted: an application is not a user, and a person is
    // not a service principal.
    let (status, json) = app
        .post(
            GRANT,
            Some(&etl),
            grant_body(json!({"principal": {"userName": FRANK}})),
        )
        .await;
    assert_eq!(
        (status, json["status"].as_str()),
        (StatusCode::OK, Some("granted")),
        "{json}"
    );
    let (status, json) = app
        .post(
            GRANT,
            Some(&frank),
            grant_body(json!({"principal": {"applicationId": demo::ETL_CLIENT_ID}})),
        )
        .await;
    assert_eq!(
        (status, json["status"].as_str()),
        (StatusCode::OK, Some("granted")),
        "{json}"
    );
    let held = app.standin.grants_on("table", "sales.reporting.customers");
    assert_eq!(held[FRANK], vec!["SELECT"]);
    assert_eq!(held[demo::ETL_CLIENT_ID], vec!["SELECT"]);
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn credentials_for_another_function_audience_or_time_are_refused_before_the_body_is_read() {
    let app = TestApp::spawn().await;
    let purview = app.token("purview");
    let operator = app.token("operator");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let with = |change: Value, base: &str| {
        let mut claims = claims_of(base);
        for (k, v) in change.as_object().unwrap() {
            claims[k] = v.clone();
        }
        app.sign(&claims)
    };
    let other_audience = with(json!({"aud": "api://another-app"}), &purview);
    let expired = with(
        json!({"exp": now - 3600, "nbf": now - 7200, "iat": now - 7200}),
        &purview,
    );
    let not_yet = with(json!({"nbf": now + 3600, "exp": now + 7200}), &purview);
    let other_tenant = with(
        json!({"tid": "11111111-2222-4333-8444-555555555555"}),
        &purview,
    );
    let no_app = {
        let mut c = claims_of(&purview);
        c.as_object_mut().unwrap().remove("azp");
        c.as_object_mut().unwrap().remove("appid");
        app.sign(&c)
    };
    let parts: Vec<&str> = purview.split('.').collect();
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    let alg_hs256 = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "HS256", "typ": "JWT"})),
        parts[1],
        parts[2]
    );
    let tampered = {
        let mut c = claims_of(&purview);
        c["roles"] = json!(["UcAccess.Operator"]);
        format!("{}.{}.{}", parts[0], b64(&c), parts[2])
    };
    let unknown_kid = {
        let mut h: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[0])
                .unwrap(),
        )
        .unwrap();
        h["kid"] = json!("../../etc/passwd");
        format!("{}.{}.{}", b64(&h), parts[1], parts[2])
    };
    // Padded past the limit so the body must not be read: authentication answers first.
    let huge = vec![b'x'; 2 * uc_access::settings::DEFAULT_MAX_BODY_BYTES];
    let mut cases = Vec::new();
    for (path, good) in [
        (CALLBACK, callback_body(json!({}))),
        (GRANT, grant_body(json!({}))),
        (RESOLVE, json!({"userName": demo::ALICE}).to_string()),
        (
            REVOKE,
            json!({"grantId": "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"}).to_string(),
        ),
    ] {
        // The confused deputy: a token valid for one function replayed on another.
        // On the callback the operator's token is a person's: refused as a delegated token.
        let (wrong_caller, refused_as) = if path == CALLBACK {
            (&operator, "delegated_token_not_accepted")
        } else {
            (&purview, "caller_not_allowed")
        };
        cases.push(
            Case::post(
                "a token for another function",
                path,
                wrong_caller,
                good.clone(),
            )
            .expect(StatusCode::UNAUTHORIZED, refused_as),
        );
        cases.push(
            Case::post(
                "an app with no role",
                path,
                &app.token("app:0b8c1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"),
                good.clone(),
            )
            .expect(StatusCode::UNAUTHORIZED, "caller_not_allowed"),
        );
        let right = if path == CALLBACK {
            &purview
        } else {
            &operator
        };
        for (what, token, code) in [
            ("another audience", other_audience.clone(), "wrong_audience"),
            ("expired", expired.clone(), "token_expired"),
            ("not yet valid", not_yet.clone(), "token_not_yet_valid"),
            ("another tenant", other_tenant.clone(), "wrong_tenant"),
            ("no application claim", no_app.clone(), "missing_claim"),
            ("alg none", alg_none.clone(), "unsupported_algorithm"),
            ("alg HS256", alg_hs256.clone(), "unsupported_algorithm"),
            ("tampered claims", tampered.clone(), "invalid_signature"),
            ("an unknown kid", unknown_kid.clone(), "unknown_signing_key"),
            ("not a JWT", "abc".to_owned(), "malformed_token"),
            ("an oversized token", "a".repeat(20_000), "malformed_token"),
        ] {
            if path != CALLBACK
                && matches!(
                    what,
                    "another audience"
                        | "expired"
                        | "not yet valid"
                        | "another tenant"
                        | "no application claim"
                        | "tampered claims"
                )
            {
                // Built from the Purview token; on the operator functions that is covered by
                // `a token for another function`. Same verification code either way.
                continue;
            }
            // The first unknown key id makes uc-access refetch the key set, which proves it unknown (401);
            // on the next functions the refetch is held back for the interval, so the key might still
            // be a new one and the answer is retryable instead (503 with Retry-After).
            if what == "an unknown kid" && path != CALLBACK {
                cases.push(
                    Case::post(what, path, &token, good.clone())
                        .expect(StatusCode::SERVICE_UNAVAILABLE, "signing_key_not_yet_known"),
                );
                continue;
            }
            cases.push(
                Case::post(what, path, &token, good.clone()).expect(StatusCode::UNAUTHORIZED, code),
            );
        }
        cases.push(
            Case::post("no credentials", path, right, good.clone())
                .without_header("authorization")
                .expect(StatusCode::UNAUTHORIZED, "missing_credentials"),
        );
        cases.push(
            Case::post("an unknown scheme", path, right, good.clone())
                .header("authorization", &format!("Token {right}"))
                .expect(StatusCode::UNAUTHORIZED, "missing_credentials"),
        );
        cases.push(
            Case::post("Basic where Basic is off", path, right, good.clone())
                .header("authorization", "Basic cHVydmlldzpodW50ZXIy")
                .expect(StatusCode::UNAUTHORIZED, "basic_not_enabled"),
        );
        cases.push(
            Case::post(
                "no credentials and an oversized body",
                path,
                right,
                huge.clone(),
            )
            .without_header("authorization")
            .expect(StatusCode::UNAUTHORIZED, "missing_credentials"),
        );
    }
    check_all(&app, cases).await;
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let app = TestApp::spawn().await;
    let before = app.snapshot();
    let resp = reqwest::Client::new()
        .post(format!("{}api/purview-callback", app.base))
        .header("authorization", format!("Bearer {}", app.token("purview")))
        .header("authorization", format!("Bearer {}", app.token("operator")))
        .header("content-type", "application/json")
        .body(callback_body(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["error"], "missing_credentials");
    assert_eq!(app.snapshot(), before);
    assert_eq!(app.standin_requests(), 0);
}

#[tokio::test]
async fn operator_functions_refuse_bad_ids_and_queries() {
    let app = TestApp::spawn().await;
    let operator = app.token("operator");
    let mut cases = Vec::new();
    for id in [
        json!("not-a-guid"),
        json!(42),
        json!(""),
        json!("../0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"),
        json!(["0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"]),
    ] {
        cases.push(
            Case::post(
                format!("grantId {id}"),
                REVOKE,
                &operator,
                json!({"grantId": id}).to_string(),
            )
            .field("grantId"),
        );
    }
    cases.push(
        Case::post(
            "an unknown grant",
            REVOKE,
            &operator,
            json!({"grantId": "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"}).to_string(),
        )
        .expect(StatusCode::NOT_FOUND, "grant_not_found"),
    );
    for query in [
        "state=everything",
        "securable=sales.my%20reporting",
        "securable=sales.a%2Fb",
        "securable=a.b.c.d",
        "limit=-1",
        "limit=100000000000000000000",
        "expiresBefore=yesterday",
        "unknown=1",
    ] {
        let mut case = Case::post(format!("list-grants ?{query}"), LIST, &operator, Vec::new())
            .without_header("content-type");
        case.method = Method::GET;
        case.path = Box::leak(format!("{LIST}?{query}").into_boxed_str());
        cases.push(case);
    }
    // The GET functions authenticate like the others: Purview's token is not an operator's.
    let purview = app.token("purview");
    for path in [LIST, DOCTOR] {
        let mut case = Case::post(format!("GET {path} as Purview"), path, &purview, Vec::new())
            .without_header("content-type")
            .expect(StatusCode::UNAUTHORIZED, "caller_not_allowed");
        case.method = Method::GET;
        cases.push(case);
        let mut case = Case::post(
            format!("GET {path} without a token"),
            path,
            &purview,
            Vec::new(),
        )
        .without_header("content-type")
        .without_header("authorization")
        .expect(StatusCode::UNAUTHORIZED, "missing_credentials");
        case.method = Method::GET;
        cases.push(case);
    }
    // GET functions refuse other methods with a JSON 405, and POST functions refuse GET.
    for (path, method) in [
        (LIST, Method::POST),
        (DOCTOR, Method::POST),
        (CALLBACK, Method::GET),
        (GRANT, Method::DELETE),
    ] {
        let mut case = Case::post(format!("{method} {path}"), path, &operator, Vec::new())
            .expect(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        case.method = method;
        cases.push(case);
    }
    check_all(&app, cases).await;
}

#[tokio::test]
async fn bad_invocation_payloads_are_refused_without_side_effects() {
    let app = TestApp::spawn().await;
    let purview = app.token("purview");
    let host = |body: Value| serde_json::to_vec(&body).unwrap();
    let mut cases = Vec::new();
    for (what, body) in [
        ("not JSON", b"{".to_vec()),
        ("Data not an object", host(json!({"Data": [1]}))),
        (
            "a timer that is not an object",
            host(json!({"Data": {"timer": 42}})),
        ),
        (
            "a timer string that is not JSON",
            host(json!({"Data": {"timer": "{"}})),
        ),
        (
            "IsPastDue not a boolean",
            host(json!({"Data": {"timer": {"IsPastDue": 3}}})),
        ),
        ("deeply nested", nested(30_000).into_bytes()),
    ] {
        let mut case = Case::post(what, "/revoke-expired", &purview, body)
            .expect(StatusCode::BAD_REQUEST, "malformed_body");
        case.headers.retain(|(k, _)| k != "authorization");
        cases.push(case);
    }
    // Over the invocation limit: the same JSON error shape as everywhere else, not a plain-text rejection.
    let huge = vec![b' '; uc_access::app::MAX_INVOCATION_BYTES + 1];
    for path in ["/revoke-expired", "/purview-callback", "/grant-access"] {
        let mut case = Case::post("an oversized invocation", path, &purview, huge.clone())
            .expect(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
        case.headers.retain(|(k, _)| k != "authorization");
        cases.push(case);
    }
    let mut case = Case::post("not JSON", "/purview-callback", &purview, b"\xff".to_vec())
        .expect(StatusCode::BAD_REQUEST, "malformed_body");
    case.headers.retain(|(k, _)| k != "authorization");
    cases.push(case);
    check_all(&app, cases).await;

    // A bridged request the host cannot have meant is refused inside Outputs.res (the invocation itself
    // succeeds: the host fails a non-2xx invocation), and so is an escalation, as on the forwarded path.
    for (what, payload) in [
        ("no Data.req", json!({"Data": {}})),
        (
            "a bad method",
            json!({"Data": {"req": {"Method": "P OST"}}}),
        ),
        (
            "a bad header name",
            json!({"Data": {"req": {"Headers": {"bad header": ["x"]}}}}),
        ),
    ] {
        let before = app.snapshot();
        let (status, json) = app
            .post("/purview-callback", None, payload.to_string())
            .await;
        assert_eq!(status, StatusCode::OK, "{what}: {json}");
        assert_eq!(json["Outputs"]["res"]["statusCode"], 400, "{what}: {json}");
        let inner: Value =
            serde_json::from_str(json["Outputs"]["res"]["body"].as_str().unwrap()).unwrap();
        assert_eq!(inner["error"], "malformed_body", "{what}: {json}");
        assert_eq!(app.snapshot(), before, "{what}");
    }
    let before = app.snapshot();
    let payload = json!({
        "Data": {"req": {
            "Method": "POST",
            "Headers": {"Authorization": [format!("Bearer {purview}")], "Content-Type": ["application/json"]},
            "Body": callback_body(json!({"privileges": ["ALL_PRIVILEGES"]})),
        }},
        "Metadata": {}
    });
    let (status, json) = app
        .post("/purview-callback", None, payload.to_string())
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["Outputs"]["res"]["statusCode"], 403, "{json}");
    let inner: Value = match &json["Outputs"]["res"]["body"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    };
    assert_eq!(inner["error"], "privilege_not_allowed", "{json}");
    assert_eq!(app.snapshot(), before);
}
