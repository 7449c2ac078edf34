//! `postern-connector run --config connector.toml`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use postern_connector::{config::Config, engine};
use postern_telemetry::{LogFormat, Telemetry};

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
    log_format: LogFormat,
    /// OTLP/gRPC endpoint (`http://collector:4317`) to export traces to: each sync
    /// round is one trace, continued by the gateway. Nothing is exported without it.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    otlp_endpoint: Option<String>,
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
    let _telemetry = match Telemetry::init(
        "postern-connector",
        cli.log_format,
        cli.otlp_endpoint.as_deref(),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
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
