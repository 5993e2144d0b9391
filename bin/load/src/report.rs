//! One run's results as a Markdown table (what `make load` prints) and as
//! JSON (what it keeps under `target/load/`).

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{Outcome, Scenario};

/// Everything measured against one server.
#[derive(Debug, Clone)]
pub struct ModeReport {
    /// `embedded`, `production` or `external`.
    pub mode: String,
    pub outcomes: Vec<Outcome>,
    pub cold_start: Option<Duration>,
    pub peak_rss: Option<u64>,
    /// The server's password-hashing threads (`Login`'s ceiling is that many cores of argon2).
    pub hash_threads: usize,
}

/// A whole run: each server measured, and the raw argon2id rate on the
/// hashing threads' number of cores.
#[derive(Debug, Clone)]
pub struct Report {
    pub modes: Vec<ModeReport>,
    pub argon2id_per_s: f64,
    pub connections: usize,
    pub streams: usize,
    pub duration: Duration,
}

impl ModeReport {
    fn find(&self, scenario: Scenario, part: &str) -> Option<&Outcome> {
        self.outcomes.iter().find(|o| o.scenario == scenario && o.part == part)
    }

    /// What a row is measured against, for the table's last column.
    fn ratio(&self, outcome: &Outcome, argon2id_per_s: f64) -> String {
        let rate = outcome.summary.ok_per_second();
        let health = self.find(Scenario::Health, "").map(|h| h.summary.ok_per_second()).filter(|r| *r > 0.0);
        match (outcome.scenario, outcome.part) {
            (Scenario::Validate, _) => health.map_or_else(String::new, |h| format!("{:.2} × health", rate / h)),
            (Scenario::Login, _) if argon2id_per_s > 0.0 => format!("{:.2} × raw argon2id", rate / argon2id_per_s),
            _ => String::new(),
        }
    }
}

impl Report {
    /// The Markdown table, with a line of notes under it.
    #[must_use]
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| mode | scenario | OK calls/s | p50 ms | p90 ms | p99 ms | max ms | calls | not OK | ratio |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
        );
        let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
        for mode in &self.modes {
            for o in &mode.outcomes {
                let s = &o.summary;
                let name = if o.part.is_empty() {
                    o.scenario.name().to_owned()
                } else {
                    format!("{}: {}", o.scenario.name(), o.part)
                };
                let failed = if s.failed() == 0 {
                    "0".to_owned()
                } else {
                    let codes: Vec<String> =
                        s.codes.iter().filter(|(c, _)| c.as_str() != "OK").map(|(c, n)| format!("{n} {c}")).collect();
                    codes.join(", ")
                };
                let _ = writeln!(
                    out,
                    "| {} | {name} | {:.0} | {} | {} | {} | {} | {} | {failed} | {} |",
                    mode.mode,
                    s.ok_per_second(),
                    ms(s.p50),
                    ms(s.p90),
                    ms(s.p99),
                    ms(s.max),
                    s.calls,
                    mode.ratio(o, self.argon2id_per_s),
                );
            }
        }
        let threads = self.modes.first().map_or(1, |m| m.hash_threads);
        let _ = write!(
            out,
            "\nraw argon2id (m=19456 KiB, t=2, p=1) on {threads} thread(s): {:.1}/s; {} connections × {} streams, {} per scenario",
            self.argon2id_per_s,
            self.connections,
            self.streams,
            humantime::format_duration(self.duration),
        );
        for mode in &self.modes {
            if let Some(rss) = mode.peak_rss {
                #[allow(clippy::cast_precision_loss)]
                let _ = write!(out, "; {} peak RSS {:.0} MiB", mode.mode, rss as f64 / 1_048_576.0);
            }
            if let Some(cold) = mode.cold_start {
                let _ = write!(out, ", cold start to SERVING {:.0} ms", cold.as_secs_f64() * 1000.0);
            }
        }
        out.push('\n');
        out
    }

    #[must_use]
    pub fn to_json(&self) -> Value {
        let modes: Vec<Value> = self
            .modes
            .iter()
            .map(|m| {
                let scenarios: Vec<Value> = m
                    .outcomes
                    .iter()
                    .map(|o| {
                        let mut v = o.summary.to_json();
                        v["scenario"] = json!(o.scenario.name());
                        v["part"] = json!(o.part);
                        v
                    })
                    .collect();
                json!({
                    "mode": m.mode,
                    "cold_start_ms": m.cold_start.map(|d| d.as_secs_f64() * 1000.0),
                    "peak_rss_bytes": m.peak_rss,
                    "hash_threads": m.hash_threads,
                    "scenarios": scenarios,
                })
            })
            .collect();
        json!({
            "argon2id_per_s": self.argon2id_per_s,
            "connections": self.connections,
            "streams": self.streams,
            "duration_s": self.duration.as_secs_f64(),
            "modes": modes,
        })
    }
}
