//! The `uc-access` binary, the one that ships: read settings, start telemetry, build the app, serve; and
//! the doctor. Everything else lives in the library so it can be tested without a process. The local run,
//! the demo, the token minter and the stand-in are the developer binary's (`uc-access-dev`, crates/dev):
//! nothing of them links into this one.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use uc_access::app::{
    AppState, Application, Services, router, run_main, shutdown_signal, unconfigured_router,
};
use uc_access::doctor::{Check, Report};
use uc_access::settings::with_vault_secrets;
use uc_access::settings::{Env, ServerSettings, Settings, SettingsError};
use uc_access::telemetry::{self, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "uc-access",
    version,
    about = "Approved access requests become exact, expiring Unity Catalog grants"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the functions for the Azure Functions host (the default; settings from the environment).
    Serve,
    /// Check a deployment like a connector's "Test connection": settings, Databricks tokens, account
    /// SCIM, each workspace, MANAGE on each governed catalog, the ledger. Exits non-zero on any failure.
    Doctor {
        /// Print the report as JSON (what `GET /api/doctor` answers).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    run_main("uc-access", async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(Env::from_process()).await.map(|()| ExitCode::SUCCESS),
            Command::Doctor { json } => run_doctor(json).await,
        }
    })
}

async fn serve(env: Env) -> anyhow::Result<()> {
    telemetry::init(LogFormat::Json);
    let server = ServerSettings::from_env(&env)?;
    // Bind before anything else: the host polls GET / and waits for any answer.
    let app = Application::bind(server.addr).await?;
    // The host reaches us over loopback; anything wider is worth a line in every start's log.
    if let Some(warning) = server.exposure_warning() {
        tracing::warn!(alert = "listener_beyond_loopback", exposure = ?server.exposure(), "{warning}");
    }
    // Secrets from Key Vault (when KEY_VAULT_URL is set) become settings; an unreadable one leaves the
    // process up, answering 503 with the secret's name and the fix, like a missing setting.
    // One HTTP client for every outbound call of the process (uc_access::outbound).
    let http = uc_access::outbound::http_client();
    let from_vault = match with_vault_secrets(env, &http).await? {
        Ok(from_vault) => from_vault,
        Err(e) => {
            tracing::error!(error = %e, "a secret could not be read from Key Vault; every function answers 503");
            let problem = SettingsError::new(e.setting, e.to_string());
            app.serve(unconfigured_router(problem), shutdown_signal())
                .await?;
            return Ok(());
        }
    };
    let router = match Settings::from_env(&from_vault.env) {
        Ok(mut settings) => {
            // From here on the secrets are read through Key Vault's cache: rotations need no restart.
            from_vault.keep_live(&mut settings);
            router(AppState::new(Services::build(&settings, http)?))
        }
        // A required setting is absent: stay up, answer every invocation with 503 naming it.
        Err(missing) if missing.is_missing() => {
            tracing::error!(setting = %missing.key, problem = %missing.problem, "uc-access is not configured; every function answers 503 until the setting is given");
            unconfigured_router(missing)
        }
        // A setting is present but wrong: stop, naming it.
        Err(bad) => return Err(bad.into()),
    };
    tracing::info!(addr = %app.local_addr()?, "uc-access listening");
    app.serve(router, shutdown_signal()).await?;
    Ok(())
}

/// Runs the doctor with the process's settings and prints the report.
async fn run_doctor(json: bool) -> anyhow::Result<ExitCode> {
    telemetry::init(LogFormat::Quiet);
    let report = match Settings::from_env(&Env::from_process()) {
        Ok(settings) => {
            uc_access::functions::doctor::run(&Services::build(
                &settings,
                uc_access::outbound::http_client(),
            )?)
            .await
        }
        // Nothing else can be checked without settings: report the one that stopped them.
        Err(e) => Report::new(vec![Check::settings(Err(&e))]),
    };
    uc_access::functions::doctor::print(&report, json)
}
