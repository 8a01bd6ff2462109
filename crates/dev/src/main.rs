//! `uc-access-dev`, the developer binary (never shipped): the local run on embedded defaults, the demo,
//! tokens the local run accepts, the doctor of a local run, and the stand-in on its own.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use uc_access::app::{run_main, shutdown_signal};
use uc_access::auth::TokenVersion;
use uc_access::settings::{DEFAULT_PORT, Env};
use uc_access::telemetry::{self, LogFormat};
use uc_access_dev::local::{self, DEFAULT_DATA_DIR, LocalRun};
use uc_access_dev::local_issuer::{LocalCaller, LocalIssuer, local_audience};
use uc_access_standin::{Seed, serve_standin};

#[derive(Debug, Parser)]
#[command(
    name = "uc-access-dev",
    version,
    about = "uc-access on your machine: the local run, the demo, local tokens, the Databricks stand-in"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
    /// Print a bearer token that `uc-access-dev local` accepts: `purview`, `operator`, `app:<guid>`,
    /// `user:<guid>[:Role,Role]`.
    Token {
        caller: String,
        /// The port `uc-access-dev local` listens on (the issuer URL depends on it).
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
    /// The doctor of a local run: the stand-in and the local ledger under `--data-dir`.
    Doctor {
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
    run_main("uc-access-dev", async {
        match cli.command {
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
                uc_access_dev::demo::run(&data_dir).await
            }
            Command::Doctor { data_dir, json } => {
                telemetry::init(LogFormat::Quiet);
                let run = LocalRun::start(Env::from_process(), 0, &data_dir).await?;
                let report = uc_access::functions::doctor::run(&run.services).await;
                return uc_access::functions::doctor::print(&report, json);
            }
            Command::Standin { port } => {
                telemetry::init(LogFormat::Text);
                serve_standin(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), Seed::demo())
                    .await
                    .map_err(Into::into)
            }
        }
        .map(|()| ExitCode::SUCCESS)
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
         \x20 TOKEN=$(cargo run -q -p uc-access-dev -- token operator --port {port})\n\
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
