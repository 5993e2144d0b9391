//! `gatehouse serve` and `gatehouse migrate`.

use std::process::ExitCode;

use anyhow::Context as _;
use gatehouse::config::{Config, LogFormat};
use gatehouse::wiring;
use tokio::net::TcpListener;

const USAGE: &str = "usage: gatehouse [serve|migrate|help] [--flag value]...

  serve    apply migrations, then serve gRPC (the default)
  migrate  apply migrations and exit

Every flag can also be set by its environment variable:
";

#[tokio::main]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let command = if args.first().is_some_and(|a| !a.starts_with('-')) { args.remove(0) } else { "serve".to_owned() };
    if matches!(command.as_str(), "help" | "-h" | "--help") || args.iter().any(|a| a == "--help" || a == "-h") {
        eprintln!("{USAGE}{}", Config::help());
        return ExitCode::SUCCESS;
    }
    let config = match Config::load(&args, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    let result = match command.as_str() {
        "serve" => serve(config).await,
        "migrate" => wiring::open_database(&config).await.map(|_| tracing::info!("migrations applied")),
        other => {
            eprintln!("gatehouse: unknown command {other:?}\n\n{USAGE}{}", Config::help());
            return ExitCode::from(2);
        }
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

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
