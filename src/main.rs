//! The `uc-access` binary: read settings, start telemetry, build the app, serve. Everything else lives in
//! the library so it can be tested without a process.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use uc_access::app::{AppState, Application, Services, router, unconfigured_router};
use uc_access::auth::TokenVersion;
use uc_access::auth::local_issuer::{LocalCaller, LocalIssuer, local_audience};
use uc_access::local::{self, DEFAULT_DATA_DIR, LocalRun};
use uc_access::secrets::with_vault_secrets;
use uc_access::settings::{DEFAULT_PORT, Env, ServerSettings, Settings, SettingsError};
use uc_access::standin::{Seed, serve_standin};
use uc_access::telemetry::{self, LogFormat};
use uc_access::usecases::doctor::{Check, Report};

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
    /// Run locally on embedded defaults: a Databricks stand-in, a local token issuer, no cloud account.
    Local {
        /// Port to listen on.
        #[arg(long, default_value_t = DEFAULT_PORT)]
        port: u16,
        /// Where the local run keeps its state (the issuer's key, the ledger).
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Port for the Databricks stand-in. Fixed by default because the local ledger remembers each
        /// grant's workspace URL across restarts (0 picks any free port).
        #[arg(long, default_value_t = 7072)]
        standin_port: u16,
    },
    /// Print a bearer token that `uc-access local` accepts: `purview`, `operator`, `app:<guid>`,
    /// `user:<guid>[:Role,Role]`.
    Token {
        caller: String,
        /// The port `uc-access local` listens on (the issuer URL depends on it).
        #[arg(long, default_value_t = DEFAULT_PORT)]
        port: u16,
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Token lifetime in minutes.
        #[arg(long, default_value_t = 60)]
        minutes: u64,
        /// A v1.0 token (issuer `…/local-issuer/`, caller in `appid`, `aud` the application id URI)
        /// instead of v2.0 (issuer `…/local-issuer/v2.0`, caller in `azp`, `aud` the client id).
        #[arg(long)]
        v1: bool,
    },
    /// Show the whole loop locally, non-interactively: approval → grant → expiry → revoke.
    Demo {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Check a deployment like a connector's "Test connection": settings, Databricks tokens, account
    /// SCIM, each workspace, MANAGE on each governed catalog, the ledger. Exits non-zero on any failure.
    Doctor {
        /// Check a local run instead (the stand-in and the local ledger under `--data-dir`).
        #[arg(long)]
        local: bool,
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Print the report as JSON (what `GET /api/doctor` answers).
        #[arg(long)]
        json: bool,
    },
    /// Serve only the Databricks stand-in (account and workspace APIs) on a port.
    Standin {
        #[arg(long, default_value_t = 7072)]
        port: u16,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("uc-access: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<ExitCode> = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(Env::from_process()).await,
            Command::Local {
                port,
                data_dir,
                standin_port,
            } => run_local(port, data_dir, standin_port).await,
            Command::Token {
                caller,
                port,
                data_dir,
                minutes,
                v1,
            } => print_token(&caller, port, &data_dir, minutes, v1),
            Command::Demo { data_dir } => {
                telemetry::init(LogFormat::Quiet);
                uc_access::demo::run(&data_dir).await
            }
            Command::Doctor {
                local,
                data_dir,
                json,
            } => return run_doctor(local, &data_dir, json).await,
            Command::Standin { port } => {
                telemetry::init(LogFormat::Text);
                serve_standin(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), Seed::demo())
                    .await
                    .map_err(Into::into)
            }
        }
        .map(|()| ExitCode::SUCCESS)
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("uc-access: {e:#}");
            ExitCode::FAILURE
        }
    }
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

/// Runs the doctor with the process's settings (or on a local run) and prints the report.
async fn run_doctor(
    local: bool,
    data_dir: &std::path::Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    telemetry::init(LogFormat::Quiet);
    let env = Env::from_process();
    let report = if local {
        let run = LocalRun::start(env, 0, data_dir).await?;
        uc_access::functions::doctor::run(&run.services).await
    } else {
        match Settings::from_env(&env) {
            Ok(settings) => {
                uc_access::functions::doctor::run(&Services::build(
                    &settings,
                    uc_access::outbound::http_client(),
                )?)
                .await
            }
            // Nothing else can be checked without settings: report the one that stopped them.
            Err(e) => Report::new(vec![Check::settings(Err(&e))]),
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn run_local(port: u16, data_dir: PathBuf, standin_port: u16) -> anyhow::Result<()> {
    telemetry::init(LogFormat::Text);
    let env = Env::from_process().with("UC_ACCESS_LOCAL_STANDIN_PORT", standin_port.to_string());
    let run = LocalRun::start(env, port, &data_dir).await?;
    println!(
        "\nuc-access is running locally at {base}\n\
         \x20 Databricks stand-in (account + workspace): {standin}\n\
         \x20 local token issuer: {base}local-issuer\n\n\
         Try it:\n\
         \x20 TOKEN=$(cargo run -q -- token operator --port {port})\n\
         \x20 curl -s {base}api/resolve-principal -H \"Authorization: Bearer $TOKEN\" \\\n\
         \x20      -H 'Content-Type: application/json' -d '{{\"userName\":\"alice.analyst@contoso.com\"}}'\n",
        base = run.base_url,
        port = run.base_url.port().unwrap_or(port),
        standin = run.standin.base_url(),
    );
    run.serve_with_timer(shutdown_signal()).await?;
    Ok(())
}

fn print_token(
    caller: &str,
    port: u16,
    data_dir: &std::path::Path,
    minutes: u64,
    v1: bool,
) -> anyhow::Result<()> {
    let caller: LocalCaller = caller.parse()?;
    let issuer = LocalIssuer::load_or_create(&local::issuer_dir(data_dir), &local::base_url(port))?;
    let version = if v1 {
        TokenVersion::V1
    } else {
        TokenVersion::V2
    };
    let token = issuer.mint_as(
        version,
        &caller,
        &local_audience(version),
        Duration::from_secs(minutes * 60),
    )?;
    println!("{token}");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            sig.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
