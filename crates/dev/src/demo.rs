//! `uc-access-dev demo`: the whole loop on the local run, non-interactively, narrated — an approval becomes a
//! grant, the grant expires, the timer revokes it. Every step is checked against the Databricks stand-in;
//! the demo succeeds only if all of it really happened.
//!
//! Time: the grant lasts two minutes. Rather than make a newcomer wait, the demo moves the app's clock
//! forward (it says so when it does); everything else is the real code path over HTTP.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::local::LocalRun;
use crate::local_issuer::{LOCAL_AUDIENCE, LocalCaller};
use uc_access::settings::Env;
use uc_access::usecases::Clock;
use uc_access_standin::{StandInState, demo};

fn say(step: &str, text: &str) {
    println!("\n[{step}] {text}");
}

fn held(state: &StandInState, kind: &str, name: &str, who: &str) -> Vec<String> {
    state
        .grants_on(kind, name)
        .get(who)
        .cloned()
        .unwrap_or_default()
}

async fn post(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.context("the local app did not answer")?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

fn timer_payload() -> Value {
    json!({"Data": {"timer": {"Schedule": {"AdjustForDST": false}, "ScheduleStatus": null, "IsPastDue": false}},
           "Metadata": {"sys": {"MethodName": "revoke-expired"}}})
}

/// Runs the demo with its state under `data_dir` (a fresh ledger each time).
pub async fn run(data_dir: &Path) -> anyhow::Result<()> {
    let ledger = data_dir.join("demo-ledger");
    let _ = std::fs::remove_dir_all(&ledger);
    let skew = Arc::new(AtomicI64::new(0));
    let clock_skew = skew.clone();
    let clock: Clock = Arc::new(move || {
        OffsetDateTime::now_utc() + time::Duration::seconds(clock_skew.load(Ordering::SeqCst))
    });
    let env = Env::from_process()
        .with("LEDGER_BACKEND", "local")
        .with("LEDGER_DIR", ledger.to_string_lossy());
    let run = LocalRun::start_with_clock(env, 0, data_dir, clock).await?;
    let base = run.base_url.to_string();
    let state = run.standin.state().clone();
    let token = run.issuer.mint(
        &LocalCaller::Purview,
        LOCAL_AUDIENCE,
        Duration::from_secs(600),
    )?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run.serve(async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let table = ("table", "sales.reporting.orders");

    say(
        "1/6",
        &format!(
            "uc-access is running at {base} with a local Databricks stand-in and a local token issuer.\n      \
         Alice ({}) asked for the table sales.reporting.orders in Purview; Carol approved.",
            demo::ALICE
        ),
    );
    ensure!(
        held(&state, table.0, table.1, demo::ALICE).is_empty(),
        "Alice should start with no access"
    );

    let callback = json!({
        "requestorId": demo::ALICE_ENTRA_ID,
        "recipientId": "",
        "assetQualifiedName": format!("databricks://{}/catalogs/sales/schemas/reporting/tables/orders", demo::METASTORE_ID),
        "approvalOutcome": "Approved",
        "assignees": [demo::CAROL_ENTRA_ID],
        "duration": "PT2M"
    });
    say(
        "2/6",
        &format!(
            "The Purview workflow's HTTP action calls purview-callback (Service Principal token):\n      {callback}"
        ),
    );
    let (status, answer) = post(
        &client,
        format!("{base}api/purview-callback"),
        Some(&token),
        callback.clone(),
    )
    .await?;
    println!("      HTTP {status}: {answer}");
    ensure!(
        status == 200 && answer["status"] == "granted",
        "the approval was not granted"
    );

    say("3/6", "Unity Catalog (the stand-in) now holds:");
    for (kind, name) in [("catalog", "sales"), ("schema", "sales.reporting"), table] {
        let privileges = held(&state, kind, name, demo::ALICE);
        println!("      {kind} {name}: {}", privileges.join(", "));
        ensure!(
            !privileges.is_empty(),
            "{kind} {name} is missing Alice's privilege"
        );
    }

    say(
        "4/6",
        "The same approval delivered again (workflows retry) changes nothing:",
    );
    let patches_before = state
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    let (_, again) = post(
        &client,
        format!("{base}api/purview-callback"),
        Some(&token),
        callback,
    )
    .await?;
    let patches_after = state
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    println!(
        "      status {}, same grant {}, PATCH calls: {patches_before} before, {patches_after} after",
        again["status"],
        again["grantId"] == answer["grantId"]
    );
    ensure!(
        patches_after == patches_before && again["grantId"] == answer["grantId"],
        "the duplicate changed something"
    );

    say(
        "5/6",
        "The grant lasts two minutes. The demo moves the app's clock forward three minutes,\n      then the revoke-expired timer fires (a host-shaped timer payload):",
    );
    skew.fetch_add(180, Ordering::SeqCst);
    let (status, run_report) = post(
        &client,
        format!("{base}revoke-expired"),
        None,
        timer_payload(),
    )
    .await?;
    println!("      HTTP {status}: {}", run_report["Logs"]);
    ensure!(
        status == 200 && run_report["ReturnValue"]["revoked"] == 1,
        "the timer did not revoke the grant"
    );

    say("6/6", "Unity Catalog after the revoke:");
    for (kind, name) in [("catalog", "sales"), ("schema", "sales.reporting"), table] {
        let privileges = held(&state, kind, name, demo::ALICE);
        println!(
            "      {kind} {name}: {}",
            if privileges.is_empty() {
                "(nothing for Alice)".into()
            } else {
                privileges.join(", ")
            }
        );
        ensure!(
            privileges.is_empty(),
            "Alice still holds {privileges:?} on {kind} {name}"
        );
    }
    let bob = held(&state, table.0, table.1, demo::BOB);
    println!(
        "      Bob's own SELECT (granted before uc-access, never its to revoke): {}",
        bob.join(", ")
    );
    if bob != ["SELECT"] {
        bail!("Bob's pre-existing grant was touched");
    }

    println!(
        "\nDone: the approval became a grant within one request, and the grant was revoked when it expired."
    );
    let _ = tx.send(());
    let _ = server.await;
    Ok(())
}
