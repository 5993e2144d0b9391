//! The rate limiter: counts attempts per key (an account, a client address,
//! a recipient…) and says whether one more is allowed, the same way on every
//! replica. It is what makes guessing and message pumping slow.
//!
//! The algorithm is GCRA (the generic cell rate algorithm, a token bucket
//! stored as one timestamp): a [`Limit`] of `max` per `window` lets a burst of
//! `max` through at once, then one more every `window / max`. It is a sliding
//! limit, so an attacker cannot fit `2 × max` attempts around a window
//! boundary as a fixed window allows, and it is one key of O(1) state, so the
//! Redis adapter decides in one small script and memory stays bounded. The
//! arithmetic lives here, in [`Limit::decide`], so every adapter computes the
//! same answer.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::ports::BoxError;

/// How many attempts a key may make, and over how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    max: u32,
    window: TimeDelta,
}

/// A [`Limit`] that would allow nothing, or finer than the microsecond the
/// adapters count in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a rate limit needs max ≥ 1 and a window of at least max microseconds")]
pub struct InvalidLimit;

impl Limit {
    /// At most `max` attempts in any `window`.
    ///
    /// # Errors
    /// When `max` is zero, or the window is shorter than `max` microseconds
    /// (so the interval between attempts would round to nothing).
    pub fn new(max: u32, window: TimeDelta) -> Result<Self, InvalidLimit> {
        let window_us = window.num_microseconds().ok_or(InvalidLimit)?;
        if max == 0 || window_us < i64::from(max) {
            return Err(InvalidLimit);
        }
        Ok(Self { max, window })
    }

    /// The attempts allowed in one burst.
    #[must_use]
    pub const fn max(&self) -> u32 {
        self.max
    }

    /// The window the limit is measured over.
    #[must_use]
    pub const fn window(&self) -> TimeDelta {
        self.window
    }

    /// The time one attempt occupies, in microseconds: `window / max`,
    /// rounded down (so the burst is exactly `max`).
    #[must_use]
    pub fn interval_micros(&self) -> i64 {
        // `new` checked the window fits in microseconds and is ≥ max ≥ 1.
        self.window.num_microseconds().unwrap_or(i64::MAX) / i64::from(self.max)
    }

    /// How far the key's theoretical arrival time may run ahead of now:
    /// `max` intervals.
    #[must_use]
    pub fn tolerance_micros(&self) -> i64 {
        self.interval_micros().saturating_mul(i64::from(self.max))
    }

    /// The GCRA decision for one attempt at `now_us` against the key's stored
    /// theoretical arrival time `tat_us` (`None` when the key is unknown or
    /// expired), both in microseconds since the epoch. Returns the decision
    /// and, when allowed, the new arrival time to store; a limited attempt
    /// stores nothing, so it costs no capacity. The stored value may be
    /// forgotten once `now_us` reaches it: it is then the same as `None`.
    ///
    /// The Redis adapter's script repeats these lines; keep them in step.
    #[must_use]
    pub fn decide(&self, tat_us: Option<i64>, now_us: i64) -> (Decision, Option<i64>) {
        let tat = tat_us.map_or(now_us, |t| t.max(now_us));
        let new_tat = tat.saturating_add(self.interval_micros());
        let allow_at = new_tat - self.tolerance_micros();
        if now_us < allow_at {
            (Decision::Limited { retry_after: TimeDelta::microseconds(allow_at - now_us), rule: 0 }, None)
        } else {
            (Decision::Allowed, Some(new_tat))
        }
    }

    /// The arrival time after giving one counted attempt back (an attempt
    /// that turned out to be a success, where only failures should count),
    /// or `None` when nothing is left to count, so the key can be dropped.
    ///
    /// The Redis adapter's refund script repeats these lines.
    #[must_use]
    pub fn refund(&self, tat_us: Option<i64>, now_us: i64) -> Option<i64> {
        let tat = tat_us?.saturating_sub(self.interval_micros());
        (tat > now_us).then_some(tat)
    }
}

/// One limit on one key: what [`RateLimiter::check_all`] decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub key: RateKey,
    pub limit: Limit,
}

impl Rule {
    #[must_use]
    pub const fn new(key: RateKey, limit: Limit) -> Self {
        Self { key, limit }
    }
}

/// The answer for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Counted; go ahead.
    Allowed,
    /// Refused and not counted; one attempt will be allowed again after
    /// `retry_after` (positive, at most the limit's window). `rule` is the
    /// index of the rule that refused it (the longest wait when several
    /// did; 0 for a single check).
    Limited { retry_after: TimeDelta, rule: usize },
}

impl Decision {
    /// Whether the attempt may go ahead.
    #[must_use]
    pub const fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed)
    }
}

/// What is being limited: a scope (such as `login.account_ip`) and the parts
/// that identify one counter in it (an account id, a client address).
///
/// The text form, `scope:part:part`, is the adapters' key. A `:` or `%` in
/// a part is percent-escaped, so parts that contain colons (IPv6 addresses)
/// cannot make two different keys collide. Built once per check into one
/// buffer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateKey(String);

impl RateKey {
    /// A key in `scope`, a fixed name made of letters, digits, `.` and `_`.
    #[must_use]
    pub fn new(scope: &'static str) -> Self {
        debug_assert!(
            scope.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_'),
            "rate-limit scope {scope:?} must be letters, digits, '.' and '_'"
        );
        let mut text = String::with_capacity(scope.len() + 64);
        text.push_str(scope);
        Self(text)
    }

    /// The key with one more identifying part.
    #[must_use]
    pub fn with(mut self, part: &str) -> Self {
        self.0.reserve(part.len() + 1);
        self.0.push(':');
        for c in part.chars() {
            match c {
                '%' => self.0.push_str("%25"),
                ':' => self.0.push_str("%3A"),
                c => self.0.push(c),
            }
        }
        self
    }

    /// The text form adapters store it under.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The rate limiter could not be asked. Throttled operations treat this as
/// "cannot tell" and refuse (fail closed).
#[derive(Debug, thiserror::Error)]
#[error("rate limiter unavailable")]
pub struct RateLimitError(#[source] pub BoxError);

/// The shared rate limiter.
#[async_trait]
pub trait RateLimiter: std::fmt::Debug + Send + Sync {
    /// Counts one attempt on `key` under `limit`, atomically: of many
    /// concurrent checks on one key, on any replica, exactly as many are
    /// allowed as the limit has room for. A limited attempt is not counted.
    ///
    /// `now` is the caller's clock; an adapter shared between replicas may
    /// use its own single clock instead, so that replicas whose clocks drift
    /// still agree. One key should always be checked under the same limit.
    async fn check(&self, key: &RateKey, limit: &Limit, now: DateTime<Utc>) -> Result<Decision, RateLimitError> {
        self.check_all(&[Rule::new(key.clone(), *limit)], now).await
    }

    /// Counts one attempt on every rule's key, all or nothing, atomically:
    /// the attempt is allowed only if every rule has room, and then counted
    /// by every one; when any refuses, none counts it. This is how one login
    /// is held to its per-pair, per-account and per-address limits in one
    /// round trip, with no count taken for an attempt another rule refused.
    async fn check_all(&self, rules: &[Rule], now: DateTime<Utc>) -> Result<Decision, RateLimitError>;

    /// Gives one counted attempt back to `rule`'s key: the attempt was a
    /// success, and only failures should use up the limit.
    async fn refund(&self, rule: &Rule, now: DateTime<Utc>) -> Result<(), RateLimitError>;

    /// Forgets every attempt counted on `key` (a successful login clears
    /// its account-and-address pair).
    async fn reset(&self, key: &RateKey) -> Result<(), RateLimitError>;
}

/// The decision over several rules from each rule's stored arrival time,
/// the same way in every in-process adapter: the arrival times to store
/// when allowed, or the refusal with the longest wait.
#[must_use]
pub fn decide_all(rules: &[Rule], tats: &[Option<i64>], now_us: i64) -> (Decision, Vec<i64>) {
    let mut next = Vec::with_capacity(rules.len());
    let mut refusal: Option<(TimeDelta, usize)> = None;
    for (index, (rule, tat)) in rules.iter().zip(tats).enumerate() {
        match rule.limit.decide(*tat, now_us) {
            (_, Some(new_tat)) => next.push(new_tat),
            (Decision::Limited { retry_after, .. }, None) => {
                if refusal.is_none_or(|(longest, _)| retry_after > longest) {
                    refusal = Some((retry_after, index));
                }
            }
            (Decision::Allowed, None) => {}
        }
    }
    match refusal {
        Some((retry_after, rule)) => (Decision::Limited { retry_after, rule }, Vec::new()),
        None => (Decision::Allowed, next),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const NOW: i64 = 1_767_225_600_000_000;

    fn limit(max: u32, secs: i64) -> Limit {
        Limit::new(max, TimeDelta::seconds(secs)).unwrap()
    }

    #[test]
    fn zero_or_sub_microsecond_limits_are_refused() {
        assert_eq!(Limit::new(0, TimeDelta::seconds(1)), Err(InvalidLimit));
        assert_eq!(Limit::new(10, TimeDelta::microseconds(9)), Err(InvalidLimit));
        assert_eq!(Limit::new(1, TimeDelta::zero()), Err(InvalidLimit));
        assert!(Limit::new(10, TimeDelta::microseconds(10)).is_ok());
    }

    #[test]
    fn a_burst_of_max_is_allowed_then_one_per_interval() {
        let l = limit(3, 3);
        let mut tat = None;
        for _ in 0..3 {
            let (d, next) = l.decide(tat, NOW);
            assert_eq!(d, Decision::Allowed);
            tat = next;
        }
        let (d, next) = l.decide(tat, NOW);
        assert_eq!(d, Decision::Limited { retry_after: TimeDelta::seconds(1), rule: 0 });
        assert_eq!(next, None);
        assert_eq!(l.decide(tat, NOW + 1_000_000).0, Decision::Allowed);
    }

    #[test]
    fn retry_after_is_never_more_than_the_window() {
        let l = limit(1, 60);
        let (_, tat) = l.decide(None, NOW);
        let Decision::Limited { retry_after, .. } = l.decide(tat, NOW).0 else { panic!("not limited") };
        assert_eq!(retry_after, TimeDelta::seconds(60));
    }

    #[test]
    fn a_refund_gives_one_attempt_back_and_forgets_an_empty_key() {
        let l = limit(2, 2);
        let (_, tat) = l.decide(None, NOW);
        let (_, tat) = l.decide(tat, NOW);
        assert!(!l.decide(tat, NOW).0.is_allowed());
        let refunded = l.refund(tat, NOW);
        assert!(l.decide(refunded, NOW).0.is_allowed(), "the refunded attempt is usable");
        assert_eq!(l.refund(l.refund(refunded, NOW), NOW), None, "nothing left to count");
        assert_eq!(l.refund(None, NOW), None);
    }

    #[test]
    fn several_rules_allow_only_together_and_name_the_longest_wait() {
        let short = Rule::new(RateKey::new("a"), limit(1, 1));
        let long = Rule::new(RateKey::new("b"), limit(1, 60));
        let rules = [short.clone(), long.clone()];
        let (d, next) = decide_all(&rules, &[None, None], NOW);
        assert_eq!(d, Decision::Allowed);
        assert_eq!(next.len(), 2);
        let (d, next) = decide_all(&rules, &[Some(next[0]), Some(next[1])], NOW);
        assert_eq!(d, Decision::Limited { retry_after: TimeDelta::seconds(60), rule: 1 });
        assert!(next.is_empty(), "a refusal stores nothing");
        // One rule with room does not let the attempt through the other.
        let (d, _) = decide_all(&rules, &[None, Some(NOW + 60_000_000)], NOW);
        assert_eq!(d, Decision::Limited { retry_after: TimeDelta::seconds(60), rule: 1 });
    }

    #[test]
    fn key_parts_are_escaped_so_keys_cannot_collide() {
        let a = RateKey::new("login.account_ip").with("a:b").with("c");
        let b = RateKey::new("login.account_ip").with("a").with("b:c");
        assert_ne!(a, b);
        assert_eq!(a.as_str(), "login.account_ip:a%3Ab:c");
        assert_eq!(RateKey::new("s").with("100%").as_str(), "s:100%25");
    }
}
