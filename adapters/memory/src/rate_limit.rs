//! [`MemoryRateLimiter`]: GCRA arrival times in a map behind a mutex.
//!
//! Every check writes, so a plain mutex is held for one map operation. An
//! entry whose arrival time has passed counts nothing and is dropped: the
//! key's own check drops it, and the whole map is swept once it has doubled
//! since the last sweep, so memory stays proportional to the keys active
//! within one window. A hard cap bounds it even under a flood of distinct
//! keys: when full, a new key is refused (the caller fails closed) rather
//! than evicting live counts, and the full map is swept for room at most
//! once a second.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_application::ports::rate_limit::{Decision, RateKey, RateLimitError, RateLimiter, Rule, decide_all};

/// Below this many keys a check never sweeps.
const MIN_SWEEP_LEN: usize = 1024;

/// The default cap on live keys: about 100 MB at the longest keys used.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// How often, at most, a full map is swept in search of room, in
/// microseconds: a flood of new keys against a map full of live ones must
/// not make every check walk the whole map.
const FULL_SWEEP_EVERY_US: i64 = 1_000_000;

/// The rate limiter of a single-process deployment.
///
/// The counts are lost when the process stops, which only gives an attacker
/// a fresh budget after each restart.
#[derive(Debug)]
pub struct MemoryRateLimiter {
    state: Mutex<State>,
    max_keys: usize,
}

#[derive(Debug)]
struct State {
    /// Theoretical arrival time per key, in microseconds since the epoch.
    tats: HashMap<RateKey, i64>,
    /// A check sweeps expired keys once the map reaches this size.
    sweep_at: usize,
    /// When the map was last swept because it was full.
    full_sweep_at_us: i64,
}

/// The map is full of live keys; a new key is refused rather than letting
/// a flood of keys evict the counts of the ones under attack.
#[derive(Debug, thiserror::Error)]
#[error("in-process rate limiter full ({0} live keys)")]
struct Full(usize);

impl MemoryRateLimiter {
    /// An empty limiter holding at most [`DEFAULT_MAX_KEYS`] live keys.
    #[must_use]
    pub fn new() -> Self {
        Self::with_max_keys(DEFAULT_MAX_KEYS)
    }

    /// An empty limiter holding at most `max_keys` live keys. A check on a
    /// new key when that many are live fails (and the caller fails closed).
    #[must_use]
    pub fn with_max_keys(max_keys: usize) -> Self {
        Self {
            state: Mutex::new(State { tats: HashMap::new(), sweep_at: MIN_SWEEP_LEN, full_sweep_at_us: i64::MIN }),
            max_keys,
        }
    }

    /// Drops every key whose count has run out by `now`, and returns how many
    /// were dropped. Checks do this by themselves as the map grows.
    pub fn purge_expired(&self, now: DateTime<Utc>) -> usize {
        self.lock().purge_expired(now.timestamp_micros())
    }

    /// How many keys are held, including expired ones not yet purged.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().tats.len()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().tats.is_empty()
    }

    // No code panics while holding the lock, and every write leaves the map
    // consistent, so a poisoned lock still guards valid data: use it.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    fn purge_expired(&mut self, now_us: i64) -> usize {
        let before = self.tats.len();
        self.tats.retain(|_, tat| *tat > now_us);
        self.sweep_at = MIN_SWEEP_LEN.max(self.tats.len().saturating_mul(2));
        before - self.tats.len()
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check_all(&self, rules: &[Rule], now: DateTime<Utc>) -> Result<Decision, RateLimitError> {
        let now_us = now.timestamp_micros();
        let mut state = self.lock();
        let tats: Vec<Option<i64>> =
            rules.iter().map(|r| state.tats.get(&r.key).copied().filter(|t| *t > now_us)).collect();
        let (decision, next) = decide_all(rules, &tats, now_us);
        if !decision.is_allowed() {
            return Ok(decision);
        }
        let new_keys = rules.iter().zip(&tats).filter(|(r, tat)| tat.is_none() && !state.tats.contains_key(&r.key));
        let new_keys = new_keys.count();
        if new_keys > 0 {
            if state.tats.len() >= state.sweep_at {
                state.purge_expired(now_us);
            }
            if state.tats.len() + new_keys > self.max_keys {
                if now_us.saturating_sub(state.full_sweep_at_us) >= FULL_SWEEP_EVERY_US {
                    state.full_sweep_at_us = now_us;
                    state.purge_expired(now_us);
                }
                // After a purge, keys that had run out are gone and count as new.
                let missing = rules.iter().filter(|r| !state.tats.contains_key(&r.key)).count();
                if state.tats.len() + missing > self.max_keys {
                    return Err(RateLimitError(Box::new(Full(state.tats.len()))));
                }
            }
        }
        for (rule, tat) in rules.iter().zip(next) {
            state.tats.insert(rule.key.clone(), tat);
        }
        Ok(decision)
    }

    async fn refund(&self, rule: &Rule, now: DateTime<Utc>) -> Result<(), RateLimitError> {
        let now_us = now.timestamp_micros();
        let mut state = self.lock();
        let tat = state.tats.get(&rule.key).copied();
        match rule.limit.refund(tat, now_us) {
            Some(tat) => state.tats.insert(rule.key.clone(), tat),
            None => state.tats.remove(&rule.key),
        };
        Ok(())
    }

    async fn reset(&self, key: &RateKey) -> Result<(), RateLimitError> {
        self.lock().tats.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::TimeDelta;
    use gatehouse_application::ports::rate_limit::Limit;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).unwrap()
    }

    fn key(n: usize) -> RateKey {
        RateKey::new("test").with(&n.to_string())
    }

    #[tokio::test]
    async fn checks_sweep_expired_keys_as_the_map_grows() {
        let limiter = MemoryRateLimiter::new();
        let limit = Limit::new(5, TimeDelta::seconds(1)).unwrap();
        let mut t = now();
        for n in 0..10 * MIN_SWEEP_LEN {
            assert!(limiter.check(&key(n), &limit, t).await.unwrap().is_allowed());
            t += TimeDelta::seconds(2);
        }
        assert!(limiter.len() <= MIN_SWEEP_LEN, "{} keys kept", limiter.len());
    }

    #[tokio::test]
    async fn a_full_limiter_refuses_new_keys_but_keeps_counting_known_ones() {
        let limiter = MemoryRateLimiter::with_max_keys(3);
        let limit = Limit::new(5, TimeDelta::minutes(1)).unwrap();
        let t = now();
        for n in 0..3 {
            limiter.check(&key(n), &limit, t).await.unwrap();
        }
        assert!(limiter.check(&key(3), &limit, t).await.is_err(), "a fourth live key");
        assert!(limiter.check(&key(0), &limit, t).await.unwrap().is_allowed());
        // Once the others have run out there is room again.
        let later = t + TimeDelta::minutes(2);
        assert!(limiter.check(&key(3), &limit, later).await.unwrap().is_allowed());
        assert_eq!(limiter.len(), 1);
    }

    #[tokio::test]
    async fn purge_expired_drops_only_run_out_keys() {
        let limiter = MemoryRateLimiter::new();
        let t = now();
        limiter.check(&key(1), &Limit::new(1, TimeDelta::seconds(10)).unwrap(), t).await.unwrap();
        limiter.check(&key(2), &Limit::new(1, TimeDelta::seconds(60)).unwrap(), t).await.unwrap();
        assert_eq!(limiter.purge_expired(t + TimeDelta::seconds(10)), 1);
        assert_eq!(limiter.len(), 1);
    }
}
