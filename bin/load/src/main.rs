//! `gatehouse-load`: starts the server (or uses one already running), runs
//! the scenarios, prints one Markdown table and writes the JSON.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Parser;
use gatehouse_load::report::{ModeReport, Report};
use gatehouse_load::server::{Mode, Server, production_services_up};
use gatehouse_load::{Fixture, Options, Scenario, argon2id_rate, run};

/// Load a Gatehouse server over gRPC and report req/s, latency and status codes.
#[derive(Debug, Parser)]
#[command(name = "gatehouse-load")]
struct Cli {
    /// The server binary to start [default: `gatehouse` next to this one]
    #[arg(long)]
    server: Option<PathBuf>,
    /// Load a server already running at HOST:PORT instead of starting one
    /// (it needs the settings in `server::LOAD_SETTINGS`)
    #[arg(long, conflicts_with = "server")]
    addr: Option<String>,
    /// Deployments to start [default: embedded, and production when PostgreSQL, Redis and RabbitMQ are up]
    #[arg(long, value_delimiter = ',')]
    modes: Vec<Mode>,
    /// Scenarios to run, in order [default: all]
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<Scenario>,
    /// HTTP/2 connections
    #[arg(long, default_value = "4")]
    connections: usize,
    /// Concurrent streams per connection
    #[arg(long, default_value = "16")]
    streams: usize,
    /// How long each scenario runs
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Fixed total rate (calls/s) instead of as fast as answers come
    #[arg(long)]
    rate: Option<f64>,
    /// `mixed`: the validation rate
    #[arg(long, default_value = "500")]
    mixed_rate: f64,
    /// `mixed`: concurrent logins [default: twice the hashing threads, plus two]
    #[arg(long)]
    mixed_logins: Option<usize>,
    /// Accounts (and sessions validated) per run
    #[arg(long, default_value = "64")]
    accounts: usize,
    /// Pin the server to these CPUs (a `taskset -c` list, e.g. `0`)
    #[arg(long)]
    server_cpus: Option<String>,
    /// Where the JSON goes
    #[arg(long, default_value = "target/load")]
    out: PathBuf,
    /// Only print the raw argon2id rate on this many threads (how the tool
    /// measures it on the server's CPUs, under `taskset`)
    #[arg(long, hide = true)]
    raw_argon2_threads: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(threads) = cli.raw_argon2_threads {
        #[allow(clippy::print_stdout, reason = "read by the parent process")]
        {
            println!("{}", argon2id_rate(threads, RAW_ARGON2_TIME));
        }
        return Ok(());
    }
    // The server's hashing threads default to its cores: those it is pinned to.
    let hash_threads = cli
        .server_cpus
        .as_deref()
        .map_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get), cpu_count);
    let options = Options {
        connections: cli.connections,
        streams: cli.streams,
        duration: cli.duration,
        rate: cli.rate,
        mixed_validate_rate: cli.mixed_rate,
        mixed_logins: cli.mixed_logins.unwrap_or(2 * hash_threads + 2),
        accounts: cli.accounts,
    };
    let scenarios = if cli.scenarios.is_empty() { Scenario::ALL.to_vec() } else { cli.scenarios.clone() };

    let mut modes = Vec::new();
    if let Some(addr) = &cli.addr {
        eprintln!("load: {addr} (external)");
        let outcomes = run_all(addr, &scenarios, &options).await?;
        modes.push(ModeReport { mode: "external".into(), outcomes, cold_start: None, peak_rss: None, hash_threads });
    } else {
        let binary = match &cli.server {
            Some(path) => path.clone(),
            None => std::env::current_exe()?.with_file_name("gatehouse"),
        };
        let wanted = if cli.modes.is_empty() {
            let mut wanted = vec![Mode::Embedded];
            if production_services_up() {
                wanted.push(Mode::Production);
            } else {
                eprintln!("load: PostgreSQL, Redis or RabbitMQ is down; production mode not measured");
            }
            wanted
        } else {
            cli.modes.clone()
        };
        for mode in wanted {
            let server = Server::start(&binary, mode, cli.server_cpus.as_deref()).await?;
            eprintln!("load: {} server on {} (SERVING after {:?})", mode.name(), server.addr, server.cold_start);
            let outcomes = run_all(&server.addr.to_string(), &scenarios, &options).await?;
            modes.push(ModeReport {
                mode: mode.name().into(),
                outcomes,
                cold_start: Some(server.cold_start),
                peak_rss: server.peak_rss(),
                hash_threads,
            });
        }
    }
    eprintln!("load: raw argon2id on {hash_threads} thread(s)");
    let argon2id_per_s = match &cli.server_cpus {
        Some(cpus) => raw_argon2_on(cpus, hash_threads)?,
        None => argon2id_rate(hash_threads, RAW_ARGON2_TIME),
    };
    let report =
        Report { modes, argon2id_per_s, connections: cli.connections, streams: cli.streams, duration: cli.duration };

    std::fs::create_dir_all(&cli.out).with_context(|| format!("creating {}", cli.out.display()))?;
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let path = cli.out.join(format!("load-{stamp}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&report.to_json())?)?;
    #[allow(clippy::print_stdout, reason = "the table is the tool's output")]
    {
        print!("{}", report.markdown());
        println!("JSON: {}", path.display());
    }
    let failed: u64 = report.modes.iter().flat_map(|m| &m.outcomes).map(|o| o.summary.failed()).sum();
    if failed > 0 {
        eprintln!("load: {failed} calls did not answer OK (see the table)");
    }
    Ok(())
}

async fn run_all(
    addr: &str,
    scenarios: &[Scenario],
    options: &Options,
) -> anyhow::Result<Vec<gatehouse_load::Outcome>> {
    let tag =
        format!("{}-{}", std::process::id(), SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()));
    let fixture = Arc::new(Fixture::prepare(addr, &tag, options).await?);
    let mut outcomes = Vec::new();
    for scenario in scenarios {
        eprintln!("load:   {}", scenario.name());
        outcomes.extend(run(&fixture, *scenario, options).await?);
    }
    Ok(outcomes)
}

/// How long the raw argon2id rate is measured.
const RAW_ARGON2_TIME: Duration = Duration::from_secs(3);

/// The raw argon2id rate on the CPUs the server ran on (it has stopped by
/// then): this tool again, under `taskset`, so `Login` is compared with
/// argon2 on the same cores.
fn raw_argon2_on(cpus: &str, threads: usize) -> anyhow::Result<f64> {
    let output = std::process::Command::new("taskset")
        .args(["-c", cpus])
        .arg(std::env::current_exe()?)
        .args(["--raw-argon2-threads", &threads.to_string()])
        .output()
        .context("running taskset")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim().parse().with_context(|| format!("raw argon2id rate: {text:?}"))
}

/// How many CPUs a `taskset -c` list names (`0`, `0,2`, `1-3`).
fn cpu_count(list: &str) -> usize {
    list.split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => match (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 1,
            },
            None => 1,
        })
        .sum::<usize>()
        .max(1)
}
