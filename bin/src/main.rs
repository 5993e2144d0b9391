//! `gatehouse serve` and `gatehouse migrate`.

use std::process::ExitCode;

use anyhow::Context as _;
use gatehouse::config::{Command, Config, ConfigError, LogFormat};
use gatehouse::wiring;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    let command = match Command::load(std::env::args_os()) {
        Ok(command) => command,
        // Help and version go to stdout with success, usage errors to
        // stderr with clap's exit code.
        Err(ConfigError::Usage(e)) => e.exit(),
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(command.config());
    let result = match command {
        Command::Serve(config) => serve(config).await,
        Command::Migrate(config) => wiring::open_database(&config).await.map(|_| tracing::info!("migrations applied")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "gatehouse stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = wiring::build(&config).await?;
    let listener =
        TcpListener::bind(config.grpc_addr).await.with_context(|| format!("binding {}", config.grpc_addr))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        database = if config.database_url.is_some() { "configured" } else { "embedded sqlite" },
        denylist = if config.redis_url.is_some() { "redis" } else { "in-process" },
        "gatehouse serving gRPC"
    );
    gatehouse::serve(app, listener, shutdown_signal()).await?;
    tracing::info!("gatehouse stopped gracefully");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutdown requested; draining in-flight calls");
}

#[allow(clippy::expect_used, reason = "a constant directive; the log-hygiene test runs it")]
fn init_logging(config: &Config) {
    // The filter was checked when the configuration was read. Whatever it
    // says, lapin's own line for a message the broker returned stays off: it
    // prints the payload (link tokens, codes); the relay's warning names the
    // routing key instead.
    let filter = tracing_subscriber::EnvFilter::new(&config.log_filter)
        .add_directive("lapin::returned_messages=off".parse().expect("a valid directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
