//! The `uc-access` binary: read settings, start telemetry, build the app, serve. Everything else lives in
//! the library so it can be tested without a process.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use uc_access::app::{AppState, Application};
use uc_access::settings::{Env, ServerSettings};
use uc_access::telemetry::{self, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "uc-access",
    version,
    about = "Approved access requests become expiring Unity Catalog grants"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the functions for the Azure Functions host (the default; settings from the environment).
    Serve,
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
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(Env::from_process()).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("uc-access: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(env: Env) -> anyhow::Result<()> {
    telemetry::init(LogFormat::Json);
    let server = ServerSettings::from_env(&env)?;
    let app = Application::bind(server.addr, AppState::default()).await?;
    tracing::info!(addr = %app.local_addr()?, "uc-access listening");
    app.serve(shutdown_signal()).await?;
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
