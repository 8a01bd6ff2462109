//! The Power Automate connector (`connector/apiDefinition.swagger.json`) must describe the binary as it
//! is: one path per HTTP function with the method it declares, request schemas that list exactly the
//! fields the contracts accept, and answer schemas that list exactly the keys the Rust answer types
//! serialize, with their types. Answers are built from the real types with sample data, every optional
//! field filled, so a field added to an answer (or a contract) fails here until the document has it.

#![allow(clippy::unwrap_used)] // a test panics with the failing value

use std::collections::BTreeSet;
use std::path::Path;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use time::macros::datetime;
use tower::ServiceExt;
use uc_access::contract::{grant_access, principal, purview};
use uc_access::databricks::DirectoryEntry;
use uc_access::databricks::grant_calls as calls;
use uc_access::domain::{
    EntraObjectId, GrantDuration, Principal, PrincipalKind, PrincipalStatus, Privilege, Securable,
    SecurableType, WorkspaceRef as DomainWorkspace, Workspaces,
};
use uc_access::error::{ApiError, ErrorBody};
use uc_access::functions::answer::Answer;
use uc_access::functions::list_grants::{ListAnswer, ListQuery, QUERY_PARAMETERS};
use uc_access::functions::revoke_access::{self, RevokeAnswer};
use uc_access::functions::{FUNCTIONS, Trigger, resolve_principal};
use uc_access::ledger::{
    EventKind, GrantEvent, GrantRecord, GrantState, IdempotencyKey, NewGrant, SecurableChange,
    ShareGrant, WorkspaceRef,
};
use uc_access::planning::PlannedChange;
use uc_access::settings::{Env, Settings};
use uc_access::usecases::provision::Status;

const ALICE_OID: &str = "5b1f2e3d-4c5b-4a69-8e7f-0a1b2c3d4e5f";
const BOB_OID: &str = "6c2a3f4e-5d6c-4b7a-9f80-1b2c3d4e5f60";
const CAROL_OID: &str = "7d3b4a5f-6e7d-4c8b-8a91-2c3d4e5f6071";
const GRANT_ID: &str = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f";

/// The HTTP methods a Swagger 2.0 path item may hold.
const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

/// The error statuses every operation documents with the error schema.
const ERROR_STATUSES: [&str; 12] = [
    "400", "401", "403", "404", "409", "413", "415", "422", "429", "500", "502", "503",
];

fn connector_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("connector")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn document() -> Value {
    serde_json::from_str(&connector_file("apiDefinition.swagger.json")).unwrap()
}

/// Follows a `$ref` to `#/definitions/<name>` (schemas only; the document uses no other kind).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/definitions/")
                .unwrap_or_else(|| panic!("unsupported $ref {reference}"));
            resolve(doc, &doc["definitions"][name])
        }
        None => schema,
    }
}

fn property_names(schema: &Value) -> BTreeSet<String> {
    schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no properties in {schema}"))
        .keys()
        .cloned()
        .collect()
}

fn names(fields: &[&str]) -> BTreeSet<String> {
    fields.iter().map(|f| (*f).to_owned()).collect()
}

/// The HTTP functions as `(path, method)`, from the binary's own list.
fn http_functions() -> BTreeSet<(String, String)> {
    FUNCTIONS
        .iter()
        .filter_map(|f| match f.trigger {
            Trigger::Http { methods, .. } => Some(
                methods
                    .iter()
                    .map(|m| (format!("/api/{}", f.name), m.to_ascii_lowercase()))
                    .collect::<Vec<_>>(),
            ),
            Trigger::Timer { .. } => None,
        })
        .flatten()
        .collect()
}

/// Every `(path, method, operation)` of the document, the path including `basePath`.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let base = doc["basePath"].as_str().unwrap().trim_end_matches('/');
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if METHODS.contains(&method.as_str()) {
                ops.push((format!("{base}{path}"), method.clone(), op));
            }
        }
    }
    ops
}

/// The operation of one function.
fn operation<'a>(doc: &'a Value, function: &str) -> &'a Value {
    let path = format!("/api/{function}");
    let mut found = operations(doc)
        .into_iter()
        .filter(|(p, _, _)| *p == path)
        .map(|(_, _, op)| op);
    let op = found
        .next()
        .unwrap_or_else(|| panic!("no operation for {path}"));
    assert!(found.next().is_none(), "{path} has more than one operation");
    op
}

fn body_schema<'a>(doc: &'a Value, function: &str) -> &'a Value {
    let op = operation(doc, function);
    let body = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["in"] == "body")
        .unwrap_or_else(|| panic!("{function} has no body parameter"));
    resolve(doc, &body["schema"])
}

fn answer_schema<'a>(doc: &'a Value, function: &str, status: &str) -> &'a Value {
    let response = &operation(doc, function)["responses"][status];
    assert!(
        response.is_object(),
        "{function} documents no {status} answer"
    );
    resolve(doc, &response["schema"])
}

/// Checks `value` against `schema`. With `complete`, the value must hold every documented property
/// (build it with every optional field filled) and nothing else; without, it must hold the required
/// ones and nothing undocumented. `null` is accepted only where the schema says `x-nullable`.
fn conforms(doc: &Value, schema: &Value, value: &Value, complete: bool, at: &str) {
    let schema = resolve(doc, schema);
    if value.is_null() {
        assert_eq!(
            schema["x-nullable"], true,
            "{at} is null but the document does not say x-nullable"
        );
        return;
    }
    let kind = schema["type"]
        .as_str()
        .unwrap_or_else(|| panic!("{at}: no type in the document"));
    match kind {
        "object" => {
            let object = value
                .as_object()
                .unwrap_or_else(|| panic!("{at}: expected an object, got {value}"));
            let documented = property_names(schema);
            let present: BTreeSet<String> = object.keys().cloned().collect();
            if complete {
                assert_eq!(
                    present, documented,
                    "{at}: the keys the Rust type serializes (left) differ from the documented properties (right)"
                );
            } else {
                let undocumented: Vec<_> = present.difference(&documented).collect();
                assert!(
                    undocumented.is_empty(),
                    "{at}: undocumented keys {undocumented:?}"
                );
                for required in schema["required"].as_array().into_iter().flatten() {
                    let required = required.as_str().unwrap();
                    assert!(
                        present.contains(required),
                        "{at}: required {required} is missing"
                    );
                }
            }
            for (key, item) in object {
                conforms(
                    doc,
                    &schema["properties"][key],
                    item,
                    complete,
                    &format!("{at}.{key}"),
                );
            }
        }
        "array" => {
            let items = value
                .as_array()
                .unwrap_or_else(|| panic!("{at}: expected an array, got {value}"));
            assert!(
                !items.is_empty() || !complete,
                "{at}: fill the sample array so its items are checked"
            );
            for (i, item) in items.iter().enumerate() {
                conforms(doc, &schema["items"], item, complete, &format!("{at}[{i}]"));
            }
        }
        "string" => {
            let text = value
                .as_str()
                .unwrap_or_else(|| panic!("{at}: expected a string, got {value}"));
            if let Some(allowed) = schema["enum"].as_array() {
                assert!(
                    allowed.iter().any(|a| a == text),
                    "{at}: {text:?} is not in the documented enum {allowed:?}"
                );
            }
            match schema["format"].as_str() {
                Some("date-time") => {
                    time::OffsetDateTime::parse(
                        text,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .unwrap_or_else(|e| panic!("{at}: {text:?} is not RFC 3339: {e}"));
                }
                Some("uuid") => {
                    uuid::Uuid::parse_str(text)
                        .unwrap_or_else(|e| panic!("{at}: {text:?} is not a uuid: {e}"));
                }
                _ => {}
            }
        }
        "integer" => assert!(
            value.is_i64() || value.is_u64(),
            "{at}: expected an integer, got {value}"
        ),
        "boolean" => assert!(value.is_boolean(), "{at}: expected a boolean, got {value}"),
        other => panic!("{at}: unexpected type {other} in the document"),
    }
}

fn enum_of(schema: &Value) -> BTreeSet<String> {
    schema["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("no enum in {schema}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn serialized<T: serde::Serialize>(values: impl IntoIterator<Item = T>) -> BTreeSet<String> {
    values
        .into_iter()
        .map(|v| {
            serde_json::to_value(v)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

// ---- sample answers, built from the real types -------------------------------------------------

fn oid(raw: &str) -> EntraObjectId {
    EntraObjectId::parse(raw).unwrap()
}

fn orders() -> Securable {
    Securable::parse(SecurableType::Table, "sales.reporting.orders").unwrap()
}

fn select() -> std::collections::BTreeSet<Privilege> {
    [Privilege::Select].into_iter().collect()
}

/// A grant answer with every optional field filled (`calls` comes from the real dry-run helper).
fn grant_answer() -> Value {
    let planned = [PlannedChange {
        securable: orders(),
        add: select(),
    }];
    serde_json::to_value(Answer {
        status: Status::Granted.as_str(),
        grant_id: Some(GRANT_ID.to_owned()),
        principal: "alice@contoso.com".to_owned(),
        principal_kind: PrincipalKind::User.as_str(),
        workspace: "default".to_owned(),
        securable: orders().full_name(),
        securable_type: SecurableType::Table.as_str(),
        privileges: "SELECT".to_owned(),
        added: "SELECT on table sales.reporting.orders".to_owned(),
        already_held: "USE_CATALOG on catalog sales".to_owned(),
        expires_at: Some("2030-01-08T09:00:00Z".to_owned()),
        message: "Granted SELECT on sales.reporting.orders to alice@contoso.com.".to_owned(),
        calls: Some(calls(&planned, "alice@contoso.com")),
        provisioning: "delta-sharing",
        share: Some("uc_access_sales_reporting_orders".to_owned()),
        activation_url: Some(
            "https://adb-1.1.azuredatabricks.net/delta_sharing/retrieve_config.html?x".to_owned(),
        ),
    })
    .unwrap()
}

fn directory_entry(external_id: Option<String>, display_name: Option<String>) -> DirectoryEntry {
    DirectoryEntry {
        principal: Principal::user("alice@contoso.com").unwrap(),
        id: "1234567890".to_owned(),
        external_id,
        display_name,
        status: PrincipalStatus::Active,
    }
}

fn resolve_answer() -> Value {
    let entry = directory_entry(Some(ALICE_OID.to_owned()), Some("Alice Analyst".to_owned()));
    serde_json::to_value(resolve_principal::Answer::from(entry)).unwrap()
}

fn revoke_answer(revoked: bool) -> Value {
    let at = revoked.then(|| "2030-01-08T09:00:00Z".to_owned());
    serde_json::to_value(RevokeAnswer {
        status: "revoked",
        grant_id: GRANT_ID.to_owned(),
        principal: "alice@contoso.com".to_owned(),
        securable: orders().full_name(),
        revoked_at: at.clone(),
        access_ends_by: at.map(|_| "2030-01-08T10:00:00Z".to_owned()),
        message: "Revoked.".to_owned(),
    })
    .unwrap()
}

/// A fresh `pending` record: the optional fields as a new grant has them.
fn pending_record() -> GrantRecord {
    let now = datetime!(2030-01-01 09:00 UTC);
    let change = SecurableChange {
        securable: orders(),
        privileges: select(),
    };
    GrantRecord::new(
        NewGrant {
            idempotency_key: IdempotencyKey::parse("purview:run-1").unwrap(),
            requester: oid(ALICE_OID),
            target: None,
            principal: Principal::user("alice@contoso.com").unwrap(),
            workspace: WorkspaceRef {
                name: "default".to_owned(),
                host: "adb-1.1.azuredatabricks.net".to_owned(),
            },
            securable: orders(),
            requested_privileges: select(),
            duration: GrantDuration::parse("P7D").unwrap(),
            plan: vec![change],
            approvers: vec![CAROL_OID.to_owned()],
            source: "purview-callback".to_owned(),
            approval_id: None,
        },
        now,
    )
}

/// A record with every optional field filled: applied, revoked, with a target, an error and a retry.
fn complete_record() -> GrantRecord {
    let mut record = pending_record();
    let applied = datetime!(2030-01-01 09:00:05 UTC);
    let added = record.plan.clone();
    record.mark_active(added, applied).unwrap();
    record
        .begin_revoke(
            datetime!(2030-01-08 09:00 UTC),
            datetime!(2030-01-08 09:05 UTC),
        )
        .unwrap();
    record
        .mark_revoked(datetime!(2030-01-08 09:00:02 UTC))
        .unwrap();
    record.target = Some(oid(BOB_OID));
    record.note_approval("approval-1".to_owned());
    record.set_sharing(ShareGrant::new(
        "uc_access_sales_reporting_orders".to_owned(),
        "uc_access_5b1f2e3d_4c5b_4a69_8e7f_0a1b2c3d4e5f".to_owned(),
        oid(ALICE_OID),
    ));
    record.last_error = Some("Databricks answered 503".to_owned());
    record.next_attempt_at = Some(datetime!(2030-01-08 09:10 UTC));
    record.events.push(GrantEvent {
        at: datetime!(2030-01-08 09:00:03 UTC),
        kind: EventKind::Failed,
        detail: "an earlier attempt failed".to_owned(),
    });
    // `detail` is left out when empty: give every event one, so each is complete.
    for event in &mut record.events {
        if event.detail.is_empty() {
            event.detail = format!("{:?}", event.kind);
        }
    }
    record
}

fn list_answer(records: Vec<GrantRecord>) -> Value {
    serde_json::to_value(ListAnswer {
        grants: records,
        truncated: false,
    })
    .unwrap()
}

async fn error_answer(error: ApiError) -> Value {
    let bytes = error
        .into_response()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

// ---- paths and methods ------------------------------------------------------------------------

#[test]
fn every_http_function_has_exactly_one_path_with_its_method_and_nothing_else_is_documented() {
    let doc = document();
    let documented: Vec<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(p, m, _)| (p, m))
        .collect();
    let unique: BTreeSet<(String, String)> = documented.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        documented.len(),
        "an operation is documented twice"
    );
    assert_eq!(
        unique,
        http_functions(),
        "documented operations (left) differ from the binary's HTTP functions (right)"
    );
    for spec in FUNCTIONS {
        if matches!(spec.trigger, Trigger::Timer { .. }) {
            assert!(
                operations(&doc)
                    .iter()
                    .all(|(p, _, _)| !p.ends_with(&format!("/{}", spec.name))),
                "the timer {} is not an HTTP operation",
                spec.name
            );
        }
    }
}

#[tokio::test]
async fn the_router_serves_every_documented_operation_and_only_those() {
    let ledger = tempfile::tempdir().unwrap();
    let env = Env::from_pairs([
        ("AUTH_TENANT_ID", "10ca1000-0000-4000-8000-000000000000"),
        ("AUTH_AUDIENCE", "api://uc-access"),
        ("LEDGER_DIR", &*ledger.path().to_string_lossy()),
    ]);
    let settings = Settings::from_env(&env).unwrap();
    let services =
        uc_access::app::Services::build(&settings, uc_access::outbound::http_client()).unwrap();
    let router = uc_access::app::router(uc_access::app::AppState::new(services));
    let call = |method: &str, path: &str| {
        let router = router.clone();
        let request = Request::builder()
            .method(Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap())
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        async move { router.oneshot(request).await.unwrap() }
    };
    let doc = document();
    for (path, method, _) in operations(&doc) {
        // Served: authentication comes first, and no credential was sent.
        let answer = call(&method, &path).await;
        assert_eq!(
            answer.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} is documented but not served"
        );
        let other = if method == "get" { "post" } else { "get" };
        assert_eq!(
            call(other, &path).await.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{other} {path} is served but not documented"
        );
    }
    assert_eq!(
        call("post", "/api/not-a-function").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn no_operation_has_path_parameters_and_any_would_carry_url_encoding() {
    let doc = document();
    for (path, method, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            if p["in"] == "path" {
                assert!(
                    p["x-ms-url-encoding"].is_string(),
                    "{method} {path}: path parameter {} needs x-ms-url-encoding",
                    p["name"]
                );
            }
        }
        assert!(
            !path.contains('{'),
            "{path}: every route is a fixed function name"
        );
    }
}

// ---- request schemas --------------------------------------------------------------------------

#[test]
fn request_bodies_list_exactly_the_fields_the_contracts_accept() {
    let doc = document();
    assert_eq!(
        property_names(body_schema(&doc, "purview-callback")),
        names(&purview::FIELDS)
    );
    let grant = body_schema(&doc, "grant-access");
    assert_eq!(property_names(grant), names(&grant_access::FIELDS));
    assert_eq!(
        property_names(resolve(&doc, &grant["properties"]["principal"])),
        names(&principal::FIELDS)
    );
    assert_eq!(
        property_names(resolve(&doc, &grant["properties"]["securable"])),
        names(&grant_access::SECURABLE_FIELDS)
    );
    assert_eq!(
        property_names(body_schema(&doc, "resolve-principal")),
        names(&principal::FIELDS)
    );
    assert_eq!(
        property_names(body_schema(&doc, "revoke-access")),
        names(&revoke_access::FIELDS)
    );
}

/// The field names `ListQuery` accepts, as serde lists them when it refuses an unknown one.
fn list_query_fields() -> BTreeSet<String> {
    let err = serde_json::from_value::<ListQuery>(json!({"not-a-parameter": "x"})).unwrap_err();
    let text = err.to_string();
    let expected = text
        .split_once("expected")
        .unwrap_or_else(|| panic!("unexpected serde message: {text}"))
        .1;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn list_grants_documents_exactly_the_query_parameters_the_function_accepts() {
    let doc = document();
    let op = operation(&doc, "list-grants");
    let params = op["parameters"].as_array().unwrap();
    assert!(
        params
            .iter()
            .all(|p| p["in"] == "query" && p["required"] == false),
        "list-grants takes optional query parameters only"
    );
    let documented: BTreeSet<String> = params
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(documented, names(&QUERY_PARAMETERS));
    assert_eq!(list_query_fields(), names(&QUERY_PARAMETERS));
    let state = params.iter().find(|p| p["name"] == "state").unwrap();
    assert_eq!(enum_of(state), serialized(GrantState::ALL));
}

fn workspaces() -> Workspaces {
    Workspaces::new(Some(DomainWorkspace {
        name: "default".into(),
        host: url::Url::parse("https://adb-1.1.azuredatabricks.net").unwrap(),
    }))
}

fn required(schema: &Value) -> BTreeSet<String> {
    schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_fields_marked_required_are_the_ones_the_callback_parser_requires() {
    let doc = document();
    let schema = body_schema(&doc, "purview-callback");
    let minimal = json!({
        "requestorId": ALICE_OID,
        "assetQualifiedName": "databricks://metastore/catalogs/sales/schemas/reporting/tables/orders",
        "approvalOutcome": "Approved",
        "assignees": [CAROL_OID],
    });
    assert_eq!(
        required(schema),
        minimal.as_object().unwrap().keys().cloned().collect(),
        "the minimal body below is the documented required set"
    );
    purview::parse(&serde_json::to_vec(&minimal).unwrap(), &workspaces()).unwrap();
    for field in required(schema) {
        let mut body = minimal.clone();
        body.as_object_mut().unwrap().remove(&field);
        let err = purview::parse(&serde_json::to_vec(&body).unwrap(), &workspaces()).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!("{field}:")),
            "without {field}: {err}"
        );
    }
}

#[test]
fn the_fields_marked_required_are_the_ones_grant_and_revoke_require() {
    let doc = document();
    assert_eq!(
        required(body_schema(&doc, "grant-access")),
        names(&["principal"])
    );
    let operator = oid(CAROL_OID);
    let without_principal = json!({"securable": {"type": "table", "fullName": "a.b.c"}});
    let err = grant_access::parse(
        &serde_json::to_vec(&without_principal).unwrap(),
        &workspaces(),
        operator,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("principal:"), "{err}");
    let grant = body_schema(&doc, "grant-access");
    assert_eq!(
        required(resolve(&doc, &grant["properties"]["securable"])),
        names(&grant_access::SECURABLE_FIELDS)
    );
    assert_eq!(
        required(body_schema(&doc, "revoke-access")),
        names(&revoke_access::FIELDS)
    );
    // Exactly one of several fields is required: Swagger 2.0 cannot say so, the description does.
    assert!(required(body_schema(&doc, "resolve-principal")).is_empty());
}

// ---- answer schemas ---------------------------------------------------------------------------

#[test]
fn grant_answers_document_every_key_the_answer_type_serializes() {
    let doc = document();
    let answer = grant_answer();
    for function in ["purview-callback", "grant-access"] {
        conforms(
            &doc,
            answer_schema(&doc, function, "200"),
            &answer,
            true,
            function,
        );
    }
}

#[test]
fn a_dry_run_answer_without_grant_id_or_expiry_is_valid_too() {
    let doc = document();
    let mut answer = grant_answer();
    let object = answer.as_object_mut().unwrap();
    object.remove("grantId");
    object.remove("expiresAt");
    object["status"] = json!(Status::Planned.as_str());
    conforms(
        &doc,
        answer_schema(&doc, "grant-access", "200"),
        &answer,
        false,
        "dry run",
    );
}

#[test]
fn the_resolve_answer_documents_every_key_and_the_optional_ones_may_be_absent() {
    let doc = document();
    let schema = answer_schema(&doc, "resolve-principal", "200");
    conforms(&doc, schema, &resolve_answer(), true, "resolve");
    let bare =
        serde_json::to_value(resolve_principal::Answer::from(directory_entry(None, None))).unwrap();
    conforms(
        &doc,
        schema,
        &bare,
        false,
        "resolve without optional fields",
    );
}

#[test]
fn the_revoke_answer_documents_every_key_and_its_times_may_be_null() {
    let doc = document();
    let schema = answer_schema(&doc, "revoke-access", "200");
    conforms(&doc, schema, &revoke_answer(true), true, "revoke");
    conforms(
        &doc,
        schema,
        &revoke_answer(false),
        true,
        "revoke with null times",
    );
}

#[test]
fn the_list_answer_documents_every_key_of_a_grant_record() {
    let doc = document();
    let schema = answer_schema(&doc, "list-grants", "200");
    conforms(
        &doc,
        schema,
        &list_answer(vec![complete_record()]),
        true,
        "list",
    );
    conforms(
        &doc,
        schema,
        &list_answer(vec![pending_record()]),
        false,
        "list of a pending grant",
    );
}

#[tokio::test]
async fn every_error_status_of_every_operation_documents_the_error_body() {
    let doc = document();
    let retryable =
        error_answer(ApiError::unavailable("databricks_unavailable", "later").with_retry_after(5))
            .await;
    let denied = error_answer(ApiError::denied("self_approval", "no")).await;
    let constructed = serde_json::to_value(ErrorBody {
        status: "error",
        error: "invalid_request",
        message: "duration: bad",
        request_id: "abc".to_owned(),
        retry_after_seconds: Some(1),
    })
    .unwrap();
    for (path, method, op) in operations(&doc) {
        for status in ERROR_STATUSES {
            let response = &op["responses"][status];
            assert!(
                response.is_object(),
                "{method} {path} does not document {status}"
            );
            let schema = resolve(&doc, &response["schema"]);
            let at = format!("{method} {path} {status}");
            conforms(&doc, schema, &retryable, true, &at);
            conforms(&doc, schema, &constructed, true, &at);
            conforms(&doc, schema, &denied, false, &at);
            if status == "429" || status == "503" {
                assert!(
                    response["headers"]["Retry-After"].is_object(),
                    "{at}: Retry-After header"
                );
            }
        }
    }
}

/// Every variant, by an exhaustive match: a new variant fails to compile here until it is listed.
fn all_statuses() -> Vec<Status> {
    let all = vec![
        Status::Granted,
        Status::AlreadyGranted,
        Status::Extended,
        Status::Planned,
    ];
    for s in &all {
        match s {
            Status::Granted | Status::AlreadyGranted | Status::Extended | Status::Planned => {}
        }
    }
    all
}

fn all_principal_kinds() -> Vec<PrincipalKind> {
    let all = vec![
        PrincipalKind::User,
        PrincipalKind::Group,
        PrincipalKind::ServicePrincipal,
        PrincipalKind::Recipient,
    ];
    for k in &all {
        match k {
            PrincipalKind::User
            | PrincipalKind::Group
            | PrincipalKind::ServicePrincipal
            | PrincipalKind::Recipient => {}
        }
    }
    all
}

fn all_principal_statuses() -> Vec<PrincipalStatus> {
    let all = vec![PrincipalStatus::Active, PrincipalStatus::Inactive];
    for s in &all {
        match s {
            PrincipalStatus::Active | PrincipalStatus::Inactive => {}
        }
    }
    all
}

fn all_event_kinds() -> Vec<EventKind> {
    let all = vec![
        EventKind::Recorded,
        EventKind::Reopened,
        EventKind::Applied,
        EventKind::Extended,
        EventKind::RevokeStarted,
        EventKind::Revoked,
        EventKind::Failed,
    ];
    for k in &all {
        match k {
            EventKind::Recorded
            | EventKind::Reopened
            | EventKind::Applied
            | EventKind::Extended
            | EventKind::RevokeStarted
            | EventKind::Revoked
            | EventKind::Failed => {}
        }
    }
    all
}

#[test]
fn documented_enums_are_exactly_the_values_the_rust_enums_serialize() {
    let doc = document();
    let defs = &doc["definitions"];
    let grant = &defs["GrantAnswer"]["properties"];
    let statuses: BTreeSet<String> = all_statuses()
        .into_iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    assert_eq!(enum_of(&grant["status"]), statuses);
    let kinds = serialized(all_principal_kinds());
    assert_eq!(enum_of(&grant["principalKind"]), kinds);
    // Resolution finds account identities only; a Delta Sharing recipient is never resolved.
    let account_kinds: BTreeSet<String> = kinds
        .iter()
        .filter(|k| *k != PrincipalKind::Recipient.as_str())
        .cloned()
        .collect();
    assert_eq!(
        enum_of(&defs["ResolvePrincipalAnswer"]["properties"]["kind"]),
        account_kinds
    );
    assert_eq!(enum_of(&defs["Principal"]["properties"]["kind"]), kinds);
    assert_eq!(
        enum_of(&defs["ResolvePrincipalAnswer"]["properties"]["status"]),
        serialized(all_principal_statuses())
    );
    let types = serialized(SecurableType::ALL);
    assert_eq!(enum_of(&grant["securableType"]), types);
    assert_eq!(enum_of(&defs["SecurableRef"]["properties"]["type"]), types);
    assert_eq!(
        enum_of(&defs["GrantRecord"]["properties"]["state"]),
        serialized(GrantState::ALL)
    );
    assert_eq!(
        enum_of(&defs["GrantEvent"]["properties"]["kind"]),
        serialized(all_event_kinds())
    );
}

// ---- what Power Automate and certification expect ---------------------------------------------

#[test]
fn every_operation_has_an_id_a_summary_a_description_and_a_visibility() {
    let doc = document();
    let mut ids = BTreeSet::new();
    for (path, method, op) in operations(&doc) {
        let at = format!("{method} {path}");
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: operationId"));
        assert!(
            ids.insert(id.to_owned()),
            "{at}: operationId {id} is used twice"
        );
        let summary = op["summary"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: summary"));
        assert!(
            !summary.is_empty() && summary.len() <= 80 && !summary.ends_with('.'),
            "{at}: a summary is a short title without a final period: {summary:?}"
        );
        let description = op["description"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: description"));
        assert!(
            description.len() > summary.len(),
            "{at}: the description says more than the summary"
        );
        let visibility = op["x-ms-visibility"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: x-ms-visibility"));
        assert!(
            ["important", "advanced", "internal"].contains(&visibility),
            "{at}: x-ms-visibility {visibility}"
        );
        assert_eq!(op["produces"], json!(["application/json"]), "{at}");
        assert!(
            op["responses"]["200"]["schema"].is_object(),
            "{at}: 200 schema"
        );
    }
}

/// Walks a schema and every schema under it, by `$ref` into definitions too (each definition once).
fn each_property(
    doc: &Value,
    schema: &Value,
    at: &str,
    seen: &mut BTreeSet<String>,
    f: &mut dyn FnMut(&str, &Value),
) {
    if let Some(r) = schema["$ref"].as_str()
        && !seen.insert(r.to_owned())
    {
        return;
    }
    let schema = resolve(doc, schema);
    if let Some(props) = schema["properties"].as_object() {
        for (name, prop) in props {
            let here = format!("{at}.{name}");
            f(&here, prop);
            each_property(doc, prop, &here, seen, f);
        }
    }
    if schema["items"].is_object() {
        each_property(doc, &schema["items"], &format!("{at}[]"), seen, f);
    }
}

#[test]
fn every_parameter_and_every_schema_property_has_a_summary_and_a_description() {
    let doc = document();
    let mut seen = BTreeSet::new();
    let mut missing = Vec::new();
    for (path, method, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            let at = format!("{method} {path} parameter {}", p["name"]);
            if !p["x-ms-summary"].is_string() || !p["description"].is_string() {
                missing.push(at.clone());
            }
            if p["schema"].is_object() {
                each_property(&doc, &p["schema"], &at, &mut seen, &mut |here, prop| {
                    if !prop["x-ms-summary"].is_string() || !prop["description"].is_string() {
                        missing.push(here.to_owned());
                    }
                });
            }
        }
        for (status, response) in op["responses"].as_object().unwrap() {
            let at = format!("{method} {path} {status}");
            assert!(response["description"].is_string(), "{at}: description");
            each_property(
                &doc,
                &response["schema"],
                &at,
                &mut seen,
                &mut |here, prop| {
                    if !prop["x-ms-summary"].is_string() || !prop["description"].is_string() {
                        missing.push(here.to_owned());
                    }
                },
            );
        }
    }
    assert!(
        missing.is_empty(),
        "without x-ms-summary or description: {missing:#?}"
    );
}

#[test]
fn the_document_is_swagger_2_under_one_megabyte_with_placeholders_for_the_host() {
    let text = connector_file("apiDefinition.swagger.json");
    assert!(text.len() < 1_000_000, "{} bytes", text.len());
    let doc = document();
    assert_eq!(doc["swagger"], "2.0");
    assert_eq!(doc["basePath"], "/api", "the Functions host's route prefix");
    assert_eq!(doc["schemes"], json!(["https"]));
    assert_eq!(
        doc["host"], "your-function-app.azurewebsites.net",
        "the README's placeholder"
    );
}

#[test]
fn each_variant_has_exactly_one_security_definition_oauth_here_and_the_function_key_in_api_key() {
    let doc = document();
    let defs = doc["securityDefinitions"].as_object().unwrap();
    assert_eq!(
        defs.keys().collect::<Vec<_>>(),
        vec!["oauth2-entra"],
        "Power Automate uses the first definition: the OAuth variant has no other"
    );
    assert_eq!(defs["oauth2-entra"]["type"], "oauth2");
    assert_eq!(defs["oauth2-entra"]["flow"], "accessCode");
    assert_eq!(doc["security"], json!([{"oauth2-entra": []}]));

    // What scripts/connector-variant puts in place of OAuth for the key variant.
    let key: Value =
        serde_json::from_str(&connector_file("api-key/securityDefinitions.json")).unwrap();
    let defs = key["securityDefinitions"].as_object().unwrap();
    assert_eq!(defs.keys().collect::<Vec<_>>(), vec!["function-key"]);
    assert_eq!(defs["function-key"]["type"], "apiKey");
    assert_eq!(defs["function-key"]["in"], "header");
    assert_eq!(defs["function-key"]["name"], "x-functions-key");
    assert_eq!(key["security"], json!([{"function-key": []}]));
    let props: Value = serde_json::from_str(&connector_file("api-key/apiProperties.json")).unwrap();
    assert_eq!(
        props["properties"]["connectionParameters"]["api_key"]["type"],
        "securestring"
    );
}

#[test]
fn the_oauth_connection_signs_in_with_entra_id_and_needs_no_function_key() {
    let props: Value = serde_json::from_str(&connector_file("apiProperties.json")).unwrap();
    let p = &props["properties"];
    assert!(p["iconBrandColor"].as_str().unwrap().starts_with('#'));
    assert!(p["capabilities"].is_array());
    let params = p["connectionParameters"].as_object().unwrap();
    assert_eq!(
        params.keys().collect::<Vec<_>>(),
        vec!["token"],
        "no parameter beside the OAuth setting: whether an import keeps one is unconfirmed"
    );
    let oauth = &params["token"]["oAuthSettings"];
    assert_eq!(params["token"]["type"], "oauthSetting");
    assert_eq!(oauth["identityProvider"], "aad");
    let resource = oauth["customParameters"]["resourceUri"]["value"]
        .as_str()
        .unwrap();
    assert_eq!(
        oauth["properties"]["AzureActiveDirectoryResourceId"],
        resource
    );
    assert!(
        resource.starts_with("api://"),
        "uc-access's application id URI"
    );
    assert!(
        oauth.get("clientSecret").is_none(),
        "the secret is given to paconn, never committed"
    );
    assert!(
        !p["policyTemplateInstances"]
            .to_string()
            .contains("x-functions-key"),
        "no policy sends a host key"
    );

    // So every function a person can use through it must ask the host for no key: those serve people
    // (a delegated token) and are anonymous at the host; the one that keeps the key refuses people anyway.
    let doc = document();
    for spec in FUNCTIONS {
        if let Trigger::Http {
            callers,
            auth_level,
            ..
        } = spec.trigger
        {
            let usable = callers == uc_access::auth::Callers::People;
            assert_eq!(
                usable,
                auth_level == uc_access::functions::AuthLevel::Anonymous,
                "{}: a function people call through the connector must be anonymous at the host",
                spec.name
            );
            let unauthorized = operation(&doc, spec.name)["responses"]["401"]["description"]
                .as_str()
                .unwrap();
            assert_eq!(
                unauthorized.contains("x-functions-key"),
                !usable,
                "{}: the 401 description says whether the host asks for a key: {unauthorized}",
                spec.name
            );
        }
    }
}

#[test]
fn the_doctor_report_documents_every_key_of_a_check() {
    use uc_access::doctor::{Check, Report};
    let doc = document();
    let report = serde_json::to_value(Report::new(vec![Check::fail(
        "catalog.sales",
        "no MANAGE",
        "grant MANAGE on catalog `sales`",
    )]))
    .unwrap();
    let schema = answer_schema(&doc, "doctor", "200");
    conforms(&doc, schema, &report, true, "doctor");
    let passed =
        serde_json::to_value(Report::new(vec![Check::pass("settings", "loaded")])).unwrap();
    conforms(&doc, schema, &passed, false, "doctor with a passed check");
}
