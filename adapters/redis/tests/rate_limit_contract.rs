//! The rate-limiter contract, run against both adapters
//! ([`MemoryRateLimiter`] for the embedded mode, [`RedisRateLimiter`] for
//! production) and the use-case tests' fake, so they cannot drift; plus the
//! Redis adapter's key layout, expiry, atomicity across replicas and
//! behaviour when Redis is gone.
//!
//! What the limiter is for: OWASP ASVS 5.0 V6.3.1 (controls against
//! credential stuffing and password brute force) and NIST SP 800-63B-4
//! §3.2.2 (rate limiting failed authentication attempts). Login throttling
//! and the per-recipient message limits are built on these guarantees:
//! a burst of at most `max`, refused attempts that cost nothing, capacity
//! that returns gradually, one count shared by every replica, and an error
//! (so the caller fails closed) when the shared store cannot be reached.
//!
//! The Redis tests use the real server at `GATEHOUSE_TEST_REDIS_URL`
//! (default `redis://127.0.0.1:6379`, started by `make services`), each under
//! its own key prefix whose keys are deleted when it ends. Time moves by
//! argument for memory and the fake, by real sleeps of about a second for
//! Redis, which reads its own clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_application::ports::rate_limit::{Decision, Limit, RateKey, RateLimiter, Rule};
use gatehouse_memory::MemoryRateLimiter;
use gatehouse_redis::RedisRateLimiter;
use uuid::Uuid;

/// The wall clock (Redis counts in real time).
fn now() -> DateTime<Utc> {
    DateTime::from(std::time::SystemTime::now())
}

/// The cases every `RateLimiter` adapter must pass, written against a
/// harness that hides how time passes and how replicas are made.
mod contract {
    use super::*;

    /// One adapter under test.
    pub(crate) trait Harness: Sized {
        async fn start() -> Self;

        fn limiter(&self) -> Arc<dyn RateLimiter>;

        /// Limiters that share one count, as replicas do: two separate
        /// instances for Redis, the one instance for in-process adapters.
        async fn replicas(&self) -> Vec<Arc<dyn RateLimiter>>;

        /// Lets `by` pass for the limiter and returns the new `now`: only the
        /// argument moves for memory, real time for Redis.
        async fn elapse(&self, now: DateTime<Utc>, by: TimeDelta) -> DateTime<Utc>;

        /// How many keys the adapter holds that still count something.
        async fn stored(&self, now: DateTime<Utc>) -> usize;
    }

    pub(crate) fn key() -> RateKey {
        RateKey::new("test.login").with(&Uuid::now_v7().to_string())
    }

    pub(crate) fn limit(max: u32, window_ms: i64) -> Limit {
        Limit::new(max, TimeDelta::milliseconds(window_ms)).unwrap()
    }

    /// A window long enough that no capacity returns during a test.
    const LONG_MS: i64 = 60_000;

    async fn allowed(h: &impl Harness, key: &RateKey, limit: &Limit, now: DateTime<Utc>) -> bool {
        h.limiter().check(key, limit, now).await.unwrap().is_allowed()
    }

    async fn retry_after(h: &impl Harness, key: &RateKey, limit: &Limit, now: DateTime<Utc>) -> TimeDelta {
        match h.limiter().check(key, limit, now).await.unwrap() {
            Decision::Limited { retry_after, .. } => retry_after,
            Decision::Allowed => panic!("allowed past the limit"),
        }
    }

    async fn exhaust(h: &impl Harness, key: &RateKey, limit: &Limit, now: DateTime<Utc>) {
        for n in 0..limit.max() {
            assert!(allowed(h, key, limit, now).await, "attempt {} of {} refused", n + 1, limit.max());
        }
    }

    /// ASVS 5.0 V6.3.1: at most `max` attempts, then a refusal saying when
    /// to come back (the `RetryInfo` a caller is given).
    pub(crate) async fn allows_up_to_max_then_limits_with_a_bounded_retry_after(h: &impl Harness) {
        let (now, key, limit) = (now(), key(), limit(5, LONG_MS));
        exhaust(h, &key, &limit, now).await;
        let wait = retry_after(h, &key, &limit, now).await;
        assert!(wait > TimeDelta::zero(), "retry_after {wait}");
        assert!(wait <= limit.window(), "retry_after {wait} beyond the window {}", limit.window());
    }

    /// NIST SP 800-63B-4 §3.2.2: refused attempts are not counted, so a
    /// caller hammering a limited key does not push its own (or the
    /// victim's) wait further out.
    pub(crate) async fn limited_attempts_do_not_consume_capacity(h: &impl Harness) {
        // One attempt comes back every second.
        let (now, key, limit) = (now(), key(), limit(2, 2_000));
        exhaust(h, &key, &limit, now).await;
        let first_wait = retry_after(h, &key, &limit, now).await;
        for _ in 0..20 {
            assert!(!allowed(h, &key, &limit, now).await);
        }
        let later = h.elapse(now, first_wait + TimeDelta::milliseconds(100)).await;
        assert!(allowed(h, &key, &limit, later).await, "the refused attempts were counted");
    }

    /// The limit slides: one interval (window / max) after a full burst, one
    /// attempt is allowed again, not the whole burst.
    pub(crate) async fn capacity_returns_gradually(h: &impl Harness) {
        let (now, key, limit) = (now(), key(), limit(2, 2_000));
        exhaust(h, &key, &limit, now).await;
        let later = h.elapse(now, TimeDelta::milliseconds(1_100)).await;
        assert!(allowed(h, &key, &limit, later).await, "one interval later");
        let wait = retry_after(h, &key, &limit, later).await;
        assert!(wait <= TimeDelta::seconds(1), "retry_after {wait} longer than one interval");
    }

    pub(crate) async fn capacity_returns_in_full_after_the_window(h: &impl Harness) {
        let (now, key, limit) = (now(), key(), limit(3, 1_500));
        exhaust(h, &key, &limit, now).await;
        assert!(!allowed(h, &key, &limit, now).await);
        let later = h.elapse(now, TimeDelta::milliseconds(1_600)).await;
        exhaust(h, &key, &limit, later).await;
        assert!(!allowed(h, &key, &limit, later).await, "more than max after the window");
    }

    pub(crate) async fn keys_are_independent(h: &impl Harness) {
        let (now, limit) = (now(), limit(2, LONG_MS));
        let id = Uuid::now_v7().to_string();
        let pair = RateKey::new("test.account_ip").with(&id).with("2001:db8::1");
        exhaust(h, &pair, &limit, now).await;
        assert!(!allowed(h, &pair, &limit, now).await);

        let other_address = RateKey::new("test.account_ip").with(&id).with("2001:db8::2");
        let other_scope = RateKey::new("test.account").with(&id).with("2001:db8::1");
        let joined = RateKey::new("test.account_ip").with(&format!("{id}:2001:db8::1"));
        for other in [other_address, other_scope, joined] {
            assert!(allowed(h, &other, &limit, now).await, "{other} shares a count with {pair}");
        }
    }

    /// A successful login clears its (account, address) pair.
    pub(crate) async fn reset_clears_the_count(h: &impl Harness) {
        let (now, key, limit) = (now(), key(), limit(3, LONG_MS));
        let bystander = super::contract::key();
        exhaust(h, &key, &limit, now).await;
        exhaust(h, &bystander, &limit, now).await;
        h.limiter().reset(&key).await.unwrap();
        exhaust(h, &key, &limit, now).await;
        assert!(!allowed(h, &key, &limit, now).await);
        assert!(!allowed(h, &bystander, &limit, now).await, "reset cleared another key");
    }

    pub(crate) async fn resetting_an_unknown_key_succeeds(h: &impl Harness) {
        h.limiter().reset(&key()).await.unwrap();
        assert_eq!(h.stored(now()).await, 0);
    }

    /// Atomicity: of 50 concurrent checks on one key (spread over replicas
    /// where the adapter has them) exactly `max` are allowed, so parallel
    /// guessers cannot race the count.
    pub(crate) async fn concurrent_checks_allow_exactly_max(h: &impl Harness) {
        let (now, key, limit) = (now(), key(), limit(10, LONG_MS));
        let replicas = h.replicas().await;
        let tasks: Vec<_> = (0..50)
            .map(|n| {
                let (limiter, key) = (replicas[n % replicas.len()].clone(), key.clone());
                tokio::spawn(async move { limiter.check(&key, &limit, now).await.unwrap().is_allowed() })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            allowed += usize::from(task.await.unwrap());
        }
        assert_eq!(allowed, 10, "over {} replica(s)", replicas.len());
    }

    /// A login is held to several limits at once (pair, account, address):
    /// it goes through only when all have room, and a refusal by one is
    /// counted by none, so an attacker limited on one key does not use up
    /// the victim's budget on another.
    pub(crate) async fn several_rules_count_all_or_nothing(h: &impl Harness) {
        let now = now();
        let (tight, loose) = (Rule::new(key(), limit(2, LONG_MS)), Rule::new(key(), limit(5, LONG_MS)));
        let rules = [loose.clone(), tight.clone()];
        for _ in 0..2 {
            assert!(h.limiter().check_all(&rules, now).await.unwrap().is_allowed());
        }
        for _ in 0..5 {
            match h.limiter().check_all(&rules, now).await.unwrap() {
                Decision::Limited { rule, retry_after } => {
                    assert_eq!(rule, 1, "the tight rule refused");
                    assert!(retry_after > TimeDelta::zero());
                }
                Decision::Allowed => panic!("allowed past the tight rule"),
            }
        }
        // The loose key counted only the two allowed attempts: three remain.
        for n in 0..3 {
            assert!(allowed(h, &loose.key, &loose.limit, now).await, "attempt {} of the 3 left", n + 1);
        }
        assert!(!allowed(h, &loose.key, &loose.limit, now).await);
    }

    /// Successes do not use up a failure budget: a refund gives one counted
    /// attempt back, and refunding a key that counts nothing is harmless.
    pub(crate) async fn a_refund_gives_one_attempt_back(h: &impl Harness) {
        let (now, rule) = (now(), Rule::new(key(), limit(3, LONG_MS)));
        exhaust(h, &rule.key, &rule.limit, now).await;
        assert!(!allowed(h, &rule.key, &rule.limit, now).await);
        h.limiter().refund(&rule, now).await.unwrap();
        assert!(allowed(h, &rule.key, &rule.limit, now).await, "the refunded attempt");
        assert!(!allowed(h, &rule.key, &rule.limit, now).await, "only one came back");

        let unknown = Rule::new(key(), limit(3, LONG_MS));
        h.limiter().refund(&unknown, now).await.unwrap();
        assert_eq!(h.stored(now).await, 1, "a refund created a key");
        exhaust(h, &unknown.key, &unknown.limit, now).await;
        assert!(!allowed(h, &unknown.key, &unknown.limit, now).await, "a refund on nothing gave credit");
    }

    /// Bounded memory: a key that counts nothing any more is not kept.
    pub(crate) async fn run_out_keys_are_not_kept(h: &impl Harness) {
        let (now, limit) = (now(), limit(2, 1_000));
        let (used, limited) = (key(), key());
        assert!(allowed(h, &used, &limit, now).await);
        exhaust(h, &limited, &limit, now).await;
        assert!(!allowed(h, &limited, &limit, now).await);
        assert_eq!(h.stored(now).await, 2);
        let later = h.elapse(now, TimeDelta::milliseconds(1_200)).await;
        assert_eq!(h.stored(later).await, 0);
    }
}

/// One multi-threaded `#[tokio::test]` per contract case, against one harness.
macro_rules! contract_suite {
    ($harness:ty) => {
        contract_suite!(
            $harness;
            allows_up_to_max_then_limits_with_a_bounded_retry_after,
            limited_attempts_do_not_consume_capacity,
            capacity_returns_gradually,
            capacity_returns_in_full_after_the_window,
            keys_are_independent,
            reset_clears_the_count,
            resetting_an_unknown_key_succeeds,
            concurrent_checks_allow_exactly_max,
            run_out_keys_are_not_kept,
            several_rules_count_all_or_nothing,
            a_refund_gives_one_attempt_back,
        );
    };
    ($harness:ty; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = <$harness as crate::contract::Harness>::start().await;
                crate::contract::$case(&harness).await;
            }
        )*
    };
}

mod memory {
    use super::*;
    use crate::contract::Harness;

    pub(crate) struct MemoryHarness(Arc<MemoryRateLimiter>);

    impl Harness for MemoryHarness {
        async fn start() -> Self {
            Self(Arc::new(MemoryRateLimiter::new()))
        }

        fn limiter(&self) -> Arc<dyn RateLimiter> {
            self.0.clone()
        }

        async fn replicas(&self) -> Vec<Arc<dyn RateLimiter>> {
            vec![self.0.clone()]
        }

        async fn elapse(&self, now: DateTime<Utc>, by: TimeDelta) -> DateTime<Utc> {
            now + by
        }

        async fn stored(&self, now: DateTime<Utc>) -> usize {
            self.0.purge_expired(now);
            self.0.len()
        }
    }

    contract_suite!(MemoryHarness);
}

/// The fake the use-case tests run on is held to the same contract.
mod fake {
    use gatehouse_application::testing::FakeRateLimiter;

    use super::*;
    use crate::contract::Harness;

    pub(crate) struct FakeHarness(Arc<FakeRateLimiter>);

    impl Harness for FakeHarness {
        async fn start() -> Self {
            Self(Arc::new(FakeRateLimiter::default()))
        }

        fn limiter(&self) -> Arc<dyn RateLimiter> {
            self.0.clone()
        }

        async fn replicas(&self) -> Vec<Arc<dyn RateLimiter>> {
            vec![self.0.clone()]
        }

        async fn elapse(&self, now: DateTime<Utc>, by: TimeDelta) -> DateTime<Utc> {
            now + by
        }

        async fn stored(&self, now: DateTime<Utc>) -> usize {
            // The fake keeps run-out keys (it never lives long) but treats
            // them as absent, which is what the contract observes.
            self.0.live(now)
        }
    }

    contract_suite!(FakeHarness);

    #[tokio::test]
    async fn a_fake_that_is_down_fails_and_counts_nothing() {
        let fake = FakeRateLimiter::default();
        let (key, limit) = (contract::key(), contract::limit(1, 60_000));
        fake.set_down(true);
        assert!(fake.check(&key, &limit, now()).await.is_err());
        assert!(fake.reset(&key).await.is_err());
        fake.set_down(false);
        assert!(fake.check(&key, &limit, now()).await.unwrap().is_allowed());
        assert_eq!(fake.checks(&key), 1);
    }
}

mod redis_server {
    use ::redis::aio::MultiplexedConnection;
    use gatehouse_testkit::redis::RedisPrefix;
    use gatehouse_testkit::{FaultProxy, fails_within};

    use super::*;
    use crate::contract::Harness;

    const TIMEOUT: Duration = Duration::from_secs(2);

    fn unreachable(e: &dyn std::fmt::Display) -> ! {
        panic!(
            "Redis at {} is unreachable ({e}); start it with `make services` or set GATEHOUSE_TEST_REDIS_URL",
            gatehouse_testkit::redis::url()
        )
    }

    async fn connect(prefix: &RedisPrefix, url: &str, timeout: Duration) -> RedisRateLimiter {
        RedisRateLimiter::connect(url, prefix.prefix(), timeout).await.unwrap_or_else(|e| unreachable(&e))
    }

    /// A limiter under a fresh key prefix, with a connection of its own to
    /// look at the keys. Its keys are deleted when it is dropped.
    pub(crate) struct RedisHarness {
        limiter: Arc<RedisRateLimiter>,
        inspect: MultiplexedConnection,
        // Declared last so it drops last, after the limiter's connections.
        prefix: RedisPrefix,
    }

    impl Harness for RedisHarness {
        async fn start() -> Self {
            // Armed before anything is written, so even a failing test cleans up.
            let prefix = RedisPrefix::new("gh-test");
            let url = gatehouse_testkit::redis::url();
            let limiter = Arc::new(connect(&prefix, &url, TIMEOUT).await);
            let client = ::redis::Client::open(url.as_str()).unwrap_or_else(|e| unreachable(&e));
            let inspect = client.get_multiplexed_async_connection().await.unwrap_or_else(|e| unreachable(&e));
            Self { limiter, inspect, prefix }
        }

        fn limiter(&self) -> Arc<dyn RateLimiter> {
            self.limiter.clone()
        }

        /// Two replicas: two limiters, each with its own connection.
        async fn replicas(&self) -> Vec<Arc<dyn RateLimiter>> {
            let other = connect(&self.prefix, &gatehouse_testkit::redis::url(), TIMEOUT).await;
            vec![self.limiter.clone(), Arc::new(other)]
        }

        async fn elapse(&self, now: DateTime<Utc>, by: TimeDelta) -> DateTime<Utc> {
            tokio::time::sleep(by.to_std().unwrap()).await;
            now + by
        }

        async fn stored(&self, _now: DateTime<Utc>) -> usize {
            self.prefix.keys().await.len()
        }
    }

    contract_suite!(RedisHarness);

    #[tokio::test]
    async fn one_key_per_rate_key_expiring_when_it_counts_nothing() {
        let h = RedisHarness::start().await;
        let key = RateKey::new("test.account_ip").with("42").with("::1");
        let limit = contract::limit(3, 30_000);
        h.limiter.check(&key, &limit, now()).await.unwrap();

        let expected = format!("{}rl:test.account_ip:42:%3A%3A1", h.prefix.prefix());
        assert_eq!(h.prefix.keys().await, vec![expected.clone()]);
        // One attempt of three occupies a third of the window.
        let ttl: i64 = ::redis::cmd("PTTL").arg(&expected).query_async(&mut h.inspect.clone()).await.unwrap();
        assert!((5_000..=10_000).contains(&ttl), "PTTL {ttl} ms, expected about 10 000");

        h.limiter.reset(&key).await.unwrap();
        assert!(h.prefix.keys().await.is_empty(), "reset deletes the key");
    }

    /// Replicas agree whatever `now` they pass: Redis's clock decides.
    #[tokio::test]
    async fn replicas_with_drifting_clocks_share_one_count() {
        let h = RedisHarness::start().await;
        let (key, limit) = (contract::key(), contract::limit(2, 60_000));
        let replicas = h.replicas().await;
        assert!(replicas[0].check(&key, &limit, now()).await.unwrap().is_allowed());
        let ahead = now() + TimeDelta::hours(1);
        assert!(replicas[1].check(&key, &limit, ahead).await.unwrap().is_allowed());
        assert!(!replicas[1].check(&key, &limit, ahead).await.unwrap().is_allowed());
        assert!(!replicas[0].check(&key, &limit, now() - TimeDelta::hours(1)).await.unwrap().is_allowed());
    }

    #[tokio::test]
    async fn the_script_is_reloaded_after_redis_forgets_it() {
        let h = RedisHarness::start().await;
        let (key, limit) = (contract::key(), contract::limit(2, 60_000));
        assert!(h.limiter.check(&key, &limit, now()).await.unwrap().is_allowed());
        ::redis::cmd("SCRIPT").arg("FLUSH").exec_async(&mut h.inspect.clone()).await.unwrap();
        assert!(h.limiter.check(&key, &limit, now()).await.unwrap().is_allowed());
        assert!(!h.limiter.check(&key, &limit, now()).await.unwrap().is_allowed());
    }

    /// The timeout given to the limiter behind the fault proxy.
    const OUTAGE_TIMEOUT: Duration = Duration::from_millis(300);

    /// Many times the timeout, so a loaded machine cannot fail the test, yet
    /// far below the reconnection backoff and the OS's TCP timeouts.
    const FAIL_WITHIN: Duration = Duration::from_secs(3);

    /// Fail closed: a Redis that stops answering, or goes away, makes every
    /// check an error within about the timeout, never a hang and never an
    /// `Allowed` (NIST SP 800-63B-4 §3.2.2 limits must hold in an outage).
    #[tokio::test]
    async fn unreachable_redis_fails_checks_within_the_timeout() {
        tokio::time::timeout(Duration::from_secs(30), async {
            let proxy = FaultProxy::start(gatehouse_testkit::redis::upstream()).await;
            let prefix = RedisPrefix::new("gh-test-outage");
            let url = gatehouse_testkit::redis::url_via(proxy.addr());
            let limiter = connect(&prefix, &url, OUTAGE_TIMEOUT).await;
            let (key, limit) = (contract::key(), contract::limit(5, 60_000));
            assert!(limiter.check(&key, &limit, now()).await.unwrap().is_allowed());

            proxy.blackhole();
            fails_within("check (silent)", FAIL_WITHIN, limiter.check(&key, &limit, now())).await;
            fails_within("reset (silent)", FAIL_WITHIN, limiter.reset(&key)).await;

            proxy.cut();
            for _ in 0..3 {
                fails_within("check (gone)", FAIL_WITHIN, limiter.check(&key, &limit, now())).await;
            }
        })
        .await
        .expect("the limiter hung on an unreachable Redis");
    }

    #[tokio::test]
    async fn nothing_listening_fails_connect_instead_of_hanging() {
        let attempt = RedisRateLimiter::connect("redis://127.0.0.1:1", "gh-test:", OUTAGE_TIMEOUT);
        let outcome = tokio::time::timeout(Duration::from_secs(15), attempt).await.expect("connect hung");
        let error = outcome.expect_err("connected to a port with nothing listening");
        assert!(error.0.downcast_ref::<::redis::RedisError>().is_some(), "the cause is Redis's own: {error:?}");
    }
}
