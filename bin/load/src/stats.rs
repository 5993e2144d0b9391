//! What one scenario measured: every call's latency and its gRPC status.
//!
//! Latencies are kept whole (a few bytes a call, sorted once at the end), so
//! the percentiles are exact rather than bucketed; a run of minutes at tens
//! of thousands of calls a second stays in the tens of megabytes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tonic::Code;

/// One task's record.
#[derive(Debug, Default)]
pub struct Recorder {
    latencies_us: Vec<u32>,
    codes: BTreeMap<String, u64>,
}

impl Recorder {
    /// One call that took `latency` and ended with `code`.
    pub fn record(&mut self, latency: Duration, code: Code) {
        self.latencies_us.push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        *self.codes.entry(code_name(code)).or_default() += 1;
    }

    /// Adds `other`'s calls to these.
    pub fn merge(&mut self, other: Self) {
        self.latencies_us.extend(other.latencies_us);
        for (code, n) in other.codes {
            *self.codes.entry(code).or_default() += n;
        }
    }

    /// The summary over `elapsed` of wall-clock time.
    #[must_use]
    pub fn summarize(mut self, elapsed: Duration) -> Summary {
        self.latencies_us.sort_unstable();
        let calls = self.latencies_us.len() as u64;
        let at = |q: f64| -> Duration {
            if self.latencies_us.is_empty() {
                return Duration::ZERO;
            }
            // Nearest rank: the smallest latency at or above the q-quantile.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
            let rank = ((q * calls as f64).ceil() as usize).clamp(1, self.latencies_us.len());
            Duration::from_micros(u64::from(self.latencies_us[rank - 1]))
        };
        Summary {
            calls,
            ok: self.codes.get("OK").copied().unwrap_or(0),
            elapsed,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
            codes: self.codes,
        }
    }
}

/// A scenario's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub calls: u64,
    /// Calls that answered OK.
    pub ok: u64,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Calls by gRPC status code name (`OK`, `RESOURCE_EXHAUSTED`, …).
    pub codes: BTreeMap<String, u64>,
}

impl Summary {
    /// Successful calls per second: a throughput of errors is not a throughput.
    #[must_use]
    pub fn ok_per_second(&self) -> f64 {
        per_second(self.ok, self.elapsed)
    }

    /// Calls that did not answer OK.
    #[must_use]
    pub fn failed(&self) -> u64 {
        self.calls - self.ok
    }

    /// Every call answered OK, and there was at least one.
    #[must_use]
    pub fn all_ok(&self) -> bool {
        self.calls > 0 && self.failed() == 0
    }

    #[must_use]
    pub fn to_json(&self) -> Value {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        json!({
            "calls": self.calls,
            "ok": self.ok,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "ok_per_s": self.ok_per_second(),
            "p50_ms": ms(self.p50),
            "p90_ms": ms(self.p90),
            "p99_ms": ms(self.p99),
            "max_ms": ms(self.max),
            "codes": self.codes,
        })
    }
}

#[allow(clippy::cast_precision_loss)]
pub(crate) fn per_second(n: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() { 0.0 } else { n as f64 / elapsed.as_secs_f64() }
}

/// The canonical name of a gRPC status code, as in the gRPC spec.
fn code_name(code: Code) -> String {
    let name = match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    };
    name.to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_and_errors_are_not_throughput() {
        let mut r = Recorder::default();
        for ms in 1..=100 {
            r.record(Duration::from_millis(ms), if ms % 10 == 0 { Code::Unavailable } else { Code::Ok });
        }
        let s = r.summarize(Duration::from_secs(2));
        assert_eq!(
            (s.p50, s.p90, s.p99, s.max),
            (
                Duration::from_millis(50),
                Duration::from_millis(90),
                Duration::from_millis(99),
                Duration::from_millis(100)
            )
        );
        assert_eq!((s.calls, s.ok, s.failed()), (100, 90, 10));
        assert!((s.ok_per_second() - 45.0).abs() < 1e-9);
        assert_eq!(s.codes.get("UNAVAILABLE"), Some(&10));
        assert!(!s.all_ok());
    }

    #[test]
    fn no_calls_is_not_all_ok() {
        assert!(!Recorder::default().summarize(Duration::from_secs(1)).all_ok());
    }
}
