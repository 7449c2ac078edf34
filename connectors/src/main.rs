//! `postern-connector run --config connector.toml`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use postern_connector::{config::Config, engine};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "postern-connector",
    version,
    about = "Postern connector: syncs back ends inside the firewall with the gateway over one outbound stream"
)]
struct Cli {
    /// Log format: text or json.
    #[arg(
        long,
        env = "POSTERN_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect to the gateway and sync the configured sources until stopped.
    Run {
        /// The connector's config file.
        #[arg(long, env = "POSTERN_CONNECTOR_CONFIG")]
        config: PathBuf,
    },
    /// Check a config file and exit.
    Check {
        /// The connector's config file.
        #[arg(long, env = "POSTERN_CONNECTOR_CONFIG")]
        config: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("POSTERN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    let (Command::Run { config } | Command::Check { config }) = &cli.command;
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Check { .. } => {
            println!(
                "config ok: {} source(s), gateway {}",
                config.sources.len(),
                config.gateway
            );
            ExitCode::SUCCESS
        }
        Command::Run { .. } => {
            tokio::select! {
                r = engine::run(config) => match r {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => { eprintln!("error: {e}"); ExitCode::FAILURE }
                },
                _ = stop_signal() => ExitCode::SUCCESS,
            }
        }
    }
}

/// Ctrl-C or SIGTERM: stop at once. Nothing is lost: whatever was not pushed to the
/// gateway is found again by the next round of any connector.
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
