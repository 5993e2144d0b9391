//! An in-memory rate limiter that can be switched off and tells what it was
//! asked.

use super::*;
use crate::ports::rate_limit::{Decision, RateKey, RateLimitError, RateLimiter, Rule, decide_all};

/// A rate limiter in a map, computing the same GCRA decisions as the
/// adapters ([`Limit::decide`]), that can be switched off to simulate an
/// outage and counts the checks made per key.
#[derive(Debug, Default)]
pub struct FakeRateLimiter {
    state: Mutex<FakeState>,
    down: AtomicBool,
}

#[derive(Debug, Default)]
struct FakeState {
    /// Theoretical arrival time per key, in microseconds since the epoch.
    tats: HashMap<RateKey, i64>,
    checks: HashMap<RateKey, usize>,
    resets: HashMap<RateKey, usize>,
    refunds: HashMap<RateKey, usize>,
}

impl FakeRateLimiter {
    /// Simulates the limiter becoming unreachable (or reachable again).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    /// How many checks were made on `key`, allowed or not.
    #[must_use]
    pub fn checks(&self, key: &RateKey) -> usize {
        self.state.lock().unwrap().checks.get(key).copied().unwrap_or(0)
    }

    /// How many times `key` was reset.
    #[must_use]
    pub fn resets(&self, key: &RateKey) -> usize {
        self.state.lock().unwrap().resets.get(key).copied().unwrap_or(0)
    }

    /// How many attempts were given back on `key`.
    #[must_use]
    pub fn refunds(&self, key: &RateKey) -> usize {
        self.state.lock().unwrap().refunds.get(key).copied().unwrap_or(0)
    }

    /// How many keys still count something at `now`.
    #[must_use]
    pub fn live(&self, now: DateTime<Utc>) -> usize {
        let now_us = now.timestamp_micros();
        self.state.lock().unwrap().tats.values().filter(|tat| **tat > now_us).count()
    }

    fn check_up(&self) -> Result<(), RateLimitError> {
        if self.down.load(Ordering::Relaxed) { Err(RateLimitError("simulated outage".into())) } else { Ok(()) }
    }
}

#[async_trait]
impl RateLimiter for FakeRateLimiter {
    async fn check_all(&self, rules: &[Rule], now: DateTime<Utc>) -> Result<Decision, RateLimitError> {
        self.check_up()?;
        let now_us = now.timestamp_micros();
        let mut state = self.state.lock().unwrap();
        for rule in rules {
            *state.checks.entry(rule.key.clone()).or_default() += 1;
        }
        let tats: Vec<Option<i64>> =
            rules.iter().map(|r| state.tats.get(&r.key).copied().filter(|t| *t > now_us)).collect();
        let (decision, next) = decide_all(rules, &tats, now_us);
        for (rule, tat) in rules.iter().zip(next) {
            state.tats.insert(rule.key.clone(), tat);
        }
        Ok(decision)
    }

    async fn refund(&self, rule: &Rule, now: DateTime<Utc>) -> Result<(), RateLimitError> {
        self.check_up()?;
        let mut state = self.state.lock().unwrap();
        *state.refunds.entry(rule.key.clone()).or_default() += 1;
        let tat = state.tats.get(&rule.key).copied();
        match rule.limit.refund(tat, now.timestamp_micros()) {
            Some(tat) => state.tats.insert(rule.key.clone(), tat),
            None => state.tats.remove(&rule.key),
        };
        Ok(())
    }

    async fn reset(&self, key: &RateKey) -> Result<(), RateLimitError> {
        self.check_up()?;
        let mut state = self.state.lock().unwrap();
        state.tats.remove(key);
        *state.resets.entry(key.clone()).or_default() += 1;
        Ok(())
    }
}
