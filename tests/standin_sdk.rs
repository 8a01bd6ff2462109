//! Cross-check of the Databricks stand-in with the official Python SDK (tests/sdk/crosscheck.py).
//!
//! Needs a Python with databricks-sdk 0.162.0: `UC_ACCESS_PYTHON`, else `.venv/bin/python` in the repo root.
//! Install it as docs/standin.md says. A missing interpreter or SDK fails this test; it never skips.

#![allow(clippy::unwrap_used)] // a test: a failing unwrap shows the value

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::{Value, json};
use uc_access_standin::{Seed, StandIn, demo};

fn python() -> PathBuf {
    std::env::var_os("UC_ACCESS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

const HOW_TO_INSTALL: &str = "create it with: python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt \
     && .venv/bin/pip install --no-deps -r tests/requirements-sdk.txt (or set UC_ACCESS_PYTHON); see docs/standin.md";

async fn require_sdk(python: &PathBuf) {
    let probe = tokio::process::Command::new(python)
        .args([
            "-c",
            "import databricks.sdk.version as v; assert v.__version__ == '0.162.0', v.__version__",
        ])
        .output()
        .await;
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "{} lacks databricks-sdk 0.162.0 ({}); {HOW_TO_INSTALL}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!(
            "no Python interpreter at {} ({e}); {HOW_TO_INSTALL}",
            python.display()
        ),
    }
}

#[tokio::test]
async fn the_official_python_sdk_sees_the_stand_in_behave_like_databricks() {
    let python = python();
    require_sdk(&python).await;
    let standin = StandIn::builder()
        .seed(Seed::demo())
        .start("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("stand-in starts");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/crosscheck.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .env("STANDIN_URL", standin.base_url())
        .env("STANDIN_ACCOUNT_ID", demo::ACCOUNT_ID)
        .env("STANDIN_PRODUCT_TOKEN", demo::PRODUCT_TOKEN)
        .env("STANDIN_CLIENT_ID", demo::PRODUCT_CLIENT_ID)
        .env("STANDIN_CLIENT_SECRET", demo::PRODUCT_CLIENT_SECRET)
        .env("STANDIN_ALICE", demo::ALICE)
        .env("STANDIN_BOB", demo::BOB)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "crosscheck.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(&stdout).expect("crosscheck prints JSON");

    assert_eq!(
        seen["token_auth_empty_get"],
        json!({"assignments": {}, "raw": {}})
    );
    let alice_select = json!({ demo::ALICE: ["SELECT"] });
    assert_eq!(seen["m2m_update_add"], alice_select);
    assert_eq!(seen["m2m_update_readd"], alice_select);
    assert_eq!(seen["get_after_update"], alice_select);
    assert_eq!(seen["get_for_principal"], alice_select);

    assert_eq!(seen["add_and_remove_same"]["type"], "InvalidParameterValue");
    assert_eq!(
        seen["add_and_remove_same"]["error_code"],
        "INVALID_PARAMETER_VALUE"
    );
    assert_eq!(seen["missing_table"]["type"], "NotFound");
    assert_eq!(seen["missing_table"]["error_code"], "TABLE_DOES_NOT_EXIST");
    assert_eq!(
        seen["workspace_local_group"]["error_code"],
        "PRINCIPAL_DOES_NOT_EXIST"
    );
    assert!(
        seen["workspace_local_group"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Could not find principal with name users")),
        "{}",
        seen["workspace_local_group"]
    );

    assert_eq!(
        seen["effective_bob"],
        json!([{
            "principal": demo::BOB,
            "privileges": [
                ["SELECT", null, null],
                ["USE_CATALOG", "CATALOG", "sales"],
                ["USE_SCHEMA", "SCHEMA", "sales.reporting"],
            ],
        }])
    );

    assert_eq!(
        seen["account_users_filtered"],
        json!([{"userName": demo::ALICE, "active": true, "externalId": demo::ALICE_ENTRA_ID}])
    );
    let groups = seen["account_groups"].as_array().expect("groups");
    assert!(groups.contains(&json!(demo::ANALYSTS_GROUP)));
    assert!(
        !groups.contains(&json!(demo::WORKSPACE_LOCAL_GROUP)),
        "account SCIM must not list workspace-local groups"
    );

    assert_eq!(seen["retried_through_429"]["assignments"], alice_select);

    // Delta Sharing through the SDK's sharing service.
    assert_eq!(seen["recipient_created"]["name"], "sdk_recipient");
    assert_eq!(seen["recipient_created"]["authentication_type"], "TOKEN");
    assert_eq!(
        seen["recipient_created"]["properties"]["uc_access_managed"],
        "true"
    );
    assert_eq!(
        seen["recipient_created"]["token_expiry_matches"],
        json!([true])
    );
    assert_eq!(seen["recipient_created"]["has_activation_url"], true);
    assert_eq!(
        seen["recipient_again"]["error_code"],
        "RECIPIENT_ALREADY_EXISTS"
    );
    assert_eq!(seen["recipient_again"]["type"], "ResourceConflict");
    assert_eq!(seen["share_again"]["error_code"], "SHARE_ALREADY_EXISTS");
    assert_eq!(seen["table_again"]["error_code"], "RESOURCE_ALREADY_EXISTS");
    assert_eq!(seen["table_again"]["type"], "ResourceAlreadyExists");
    // Names as Unity Catalog allows them, and privileges per kind of table, as the SDK sees them.
    assert_eq!(seen["unicode_update"], alice_select);
    assert_eq!(seen["unicode_get_upper"], alice_select);
    assert_eq!(seen["punctuation_update"], alice_select);
    assert_eq!(seen["dollar_get"], json!({}));
    assert_eq!(
        seen["table_types"],
        json!({
            "sales.reporting.orders": "MANAGED",
            "sales.reporting.orders_summary": "VIEW",
            "sales.reporting.daily_totals": "MATERIALIZED_VIEW",
            "sales.intl.kunden_ä": "MANAGED",
        })
    );
    for refused in ["modify_on_view", "refresh_on_table"] {
        assert_eq!(seen[refused]["type"], "InvalidParameterValue", "{refused}");
        assert!(
            seen[refused]["message"]
                .as_str()
                .is_some_and(|m| m.contains("is not applicable to this entity")),
            "{refused}: {}",
            seen[refused]
        );
    }
    assert_eq!(
        seen["refresh_on_materialized_view"],
        json!({ demo::ALICE: ["REFRESH"] })
    );
    assert_eq!(seen["share_objects"], json!(["sales.reporting.orders"]));
    assert_eq!(seen["share_read"], json!(["sales.reporting.orders"]));
    assert_eq!(
        seen["share_permissions_after_add"],
        json!({"sdk_recipient": ["SELECT"]})
    );
    assert_eq!(
        seen["share_permissions_read"],
        json!({"sdk_recipient": ["SELECT"]})
    );
    assert_eq!(
        seen["grant_to_missing_recipient"]["error_code"],
        "RECIPIENT_DOES_NOT_EXIST"
    );
    assert_eq!(seen["share_permissions_after_remove"], json!({}));
    assert_eq!(seen["missing_share"]["error_code"], "SHARE_DOES_NOT_EXIST");
    assert_eq!(seen["missing_share"]["type"], "NotFound");
    assert_eq!(
        seen["missing_recipient"]["error_code"],
        "RECIPIENT_DOES_NOT_EXIST"
    );
    assert_eq!(seen["recipient_expiry_moved"], true);
    assert_eq!(seen["tokens_after_rotate"], 2);
    assert!(
        seen["retried_through_429"]["elapsed_seconds"]
            .as_f64()
            .is_some_and(|s| s >= 2.0),
        "the SDK should wait Retry-After twice: {}",
        seen["retried_through_429"]
    );

    // What the stand-in saw agrees with what the SDK reported.
    let recorded = standin.requests();
    let unicode_patch = recorded
        .iter()
        .find(|r| r.method == "PATCH" && r.path.contains("/sales.intl.kunden"))
        .expect("the SDK's PATCH of kunden_ä");
    assert_eq!(
        unicode_patch.path, "/api/2.1/unity-catalog/permissions/table/sales.intl.kunden_%C3%A4",
        "the SDK's HTTP library encodes the name as UTF-8"
    );
    assert_eq!(
        standin.state().grants_on("table", "sales.intl.kunden_ä"),
        [(demo::ALICE.to_string(), vec!["SELECT".to_string()])].into()
    );

    let throttled = recorded.iter().filter(|r| r.status == 429).count();
    assert_eq!(throttled, 2, "two 429s were injected and answered");
    let patches: Vec<_> = recorded
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/permissions/"))
        .collect();
    assert_eq!(
        patches.len(),
        9,
        "add, re-add, add+remove, local group, two names, MODIFY on a view, REFRESH on a table and on a materialized view"
    );
    assert_eq!(
        patches.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![200, 200, 400, 404, 200, 200, 400, 400, 200]
    );
    assert!(
        recorded
            .iter()
            .any(|r| r.path == "/.well-known/databricks-config" && r.status == 404),
        "the SDK probes the well-known config"
    );
    assert!(
        standin.state().token_issuances() >= 2,
        "workspace and account M2M tokens"
    );
    assert_eq!(
        standin
            .state()
            .grants_on("table", "sales.reporting.customers"),
        [(demo::ALICE.to_string(), vec!["SELECT".to_string()])].into()
    );

    our_client_sees_what_the_sdk_saw(&standin, &seen).await;
}

/// The product's own Rust clients, against the same stand-in after the SDK's run, see the same grants,
/// effective privileges, users and errors the SDK reported.
async fn our_client_sees_what_the_sdk_saw(
    standin: &uc_access_standin::RunningStandIn,
    seen: &Value,
) {
    use std::sync::Arc;
    use std::time::Duration;
    use uc_access::databricks::{
        DatabricksAuth, DatabricksClients, DatabricksError, Deadline, DirectoryApi,
        GetPermissionsOptions, GrantsApi, PermissionsChange, RetryPolicy, StaticToken, Transport,
    };
    use uc_access::domain::{Principal, Privilege, PrivilegeSet, Securable, SecurableType};

    let base = url::Url::parse(standin.base_url()).unwrap();
    let auth = Arc::new(DatabricksAuth::shared(Arc::new(StaticToken::new(
        secrecy::SecretString::from(demo::PRODUCT_TOKEN),
    ))));
    let transport = Transport::new(
        uc_access::outbound::http_client(),
        RetryPolicy::default(),
        Duration::from_secs(5),
    );
    let clients = DatabricksClients::new(
        transport,
        auth,
        base.clone(),
        demo::ACCOUNT_ID.to_owned(),
        false,
    );
    let deadline = || Deadline::after(Duration::from_secs(10));
    let table = |name: &str| Securable::parse(SecurableType::Table, name).unwrap();

    // Grants: the same assignments as the SDK's get after its update.
    let ours = clients
        .grants
        .get_direct(
            &base,
            &table("sales.reporting.customers"),
            &GetPermissionsOptions::default(),
            deadline(),
        )
        .await
        .unwrap();
    let ours: serde_json::Map<String, Value> = ours
        .iter()
        .map(|a| {
            (
                a.principal.clone(),
                json!(a.privileges.iter().map(|p| p.as_str()).collect::<Vec<_>>()),
            )
        })
        .collect();
    assert_eq!(Value::Object(ours), seen["get_after_update"]);

    // Effective privileges: the same triples.
    let bob = Principal::user(demo::BOB).unwrap();
    let effective = clients
        .grants
        .effective(
            &base,
            &table("sales.reporting.orders"),
            Some(&bob),
            deadline(),
        )
        .await
        .unwrap();
    let mut triples: Vec<Value> = effective[0]
        .privileges
        .iter()
        .map(|p| {
            json!([
                p.privilege.as_str(),
                p.inherited_from_type,
                p.inherited_from_name
            ])
        })
        .collect();
    triples.sort_by_key(|v| v.to_string());
    assert_eq!(json!(triples), seen["effective_bob"][0]["privileges"]);

    // Errors: the same error codes, classified.
    let select = PrivilegeSet::from([Privilege::Select]);
    let both = [PermissionsChange {
        principal: Principal::user(demo::ALICE).unwrap(),
        add: select.clone(),
        remove: select.clone(),
    }];
    let err = clients
        .grants
        .update(
            &base,
            &table("sales.reporting.customers"),
            &both,
            deadline(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DatabricksError::InvalidParameter { .. }),
        "{err}"
    );
    assert_eq!(
        err.error_code(),
        seen["add_and_remove_same"]["error_code"].as_str()
    );
    let missing = clients
        .grants
        .get_direct(
            &base,
            &table("sales.reporting.no_such_table"),
            &GetPermissionsOptions::default(),
            deadline(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(missing, DatabricksError::SecurableNotFound { .. }),
        "{missing}"
    );
    assert_eq!(
        missing.error_code(),
        seen["missing_table"]["error_code"].as_str()
    );

    // Account SCIM: the same user behind the filter.
    let alice = clients
        .directory
        .find_user_by_name(demo::ALICE, deadline())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        alice.principal.uc_name(),
        seen["account_users_filtered"][0]["userName"]
    );
    assert_eq!(
        alice.external_id.as_deref(),
        seen["account_users_filtered"][0]["externalId"].as_str()
    );

    // Names and kinds of table: our client reads what the SDK wrote and saw, by the same names.
    let kunden = clients
        .grants
        .get_direct(
            &base,
            &table("Sales.Intl.Kunden_Ä"),
            &GetPermissionsOptions::default(),
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(
        kunden
            .iter()
            .map(|a| (a.principal.as_str(), a.privileges.len()))
            .collect::<Vec<_>>(),
        [(demo::ALICE, 1)]
    );
    for (name, sdk_type) in seen["table_types"].as_object().unwrap() {
        let kind = clients
            .grants
            .table_kind(&base, &table(name), deadline())
            .await
            .unwrap();
        assert_eq!(
            kind,
            uc_access::domain::TableKind::from_table_type(sdk_type.as_str().unwrap()),
            "{name}"
        );
    }
}
