//! The denylist contract, run against both adapters ([`MemoryDenylist`] for
//! the embedded mode, [`RedisDenylist`] for production) and the use-case
//! tests' fake, so they cannot drift,
//! plus the Redis adapter's own key layout, TTLs and probe. How it fails when
//! Redis is gone is in `redis_outage.rs`.
//!
//! The Redis tests use the real server at `GATEHOUSE_TEST_REDIS_URL`
//! (default `redis://127.0.0.1:6379`, started by `make services`). Each test
//! writes under its own key prefix and deletes its keys when it ends, passed
//! or failed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_application::ports::denylist::{DenyEntry, DenyKey, Denylist};
use gatehouse_application::ports::health::Probe;
use gatehouse_domain::{SessionId, TokenId};
use gatehouse_memory::MemoryDenylist;
use gatehouse_redis::RedisDenylist;
use uuid::Uuid;

/// The wall clock (Redis expires keys in real time).
fn now() -> DateTime<Utc> {
    DateTime::from(std::time::SystemTime::now())
}

/// The cases every `Denylist` adapter must pass, written against a harness
/// that hides how time passes and how entries are counted.
mod contract {
    use super::*;

    /// One adapter under test.
    pub(crate) trait Harness: Sized {
        async fn start() -> Self;

        fn denylist(&self) -> &dyn Denylist;

        /// Lets `by` pass for the denylist and returns the new `now`: only the
        /// argument moves for memory, real time for Redis.
        async fn elapse(&self, now: DateTime<Utc>, by: TimeDelta) -> DateTime<Utc>;

        /// How many entries the adapter holds.
        async fn stored(&self) -> usize;
    }

    pub(crate) fn session() -> SessionId {
        SessionId::from_uuid(Uuid::now_v7())
    }

    pub(crate) fn token() -> TokenId {
        TokenId::from_uuid(Uuid::now_v7())
    }

    fn deny_session(id: SessionId, until: DateTime<Utc>) -> DenyEntry {
        DenyEntry { key: DenyKey::Session(id), until }
    }

    fn deny_token(id: TokenId, until: DateTime<Utc>) -> DenyEntry {
        DenyEntry { key: DenyKey::Token(id), until }
    }

    pub(crate) async fn denied_session_refuses_every_token_of_it(h: &impl Harness) {
        let now = now();
        let (revoked, other) = (session(), session());
        h.denylist().deny(&[deny_session(revoked, now + TimeDelta::minutes(15))], now).await.unwrap();

        let d = h.denylist();
        assert!(d.is_denied(revoked, token(), now).await.unwrap());
        assert!(d.is_denied(revoked, token(), now).await.unwrap());
        assert!(!d.is_denied(other, token(), now).await.unwrap());
    }

    pub(crate) async fn denied_token_refuses_only_that_token(h: &impl Harness) {
        let now = now();
        let (sid, revoked) = (session(), token());
        h.denylist().deny(&[deny_token(revoked, now + TimeDelta::minutes(15))], now).await.unwrap();

        let d = h.denylist();
        assert!(d.is_denied(sid, revoked, now).await.unwrap());
        assert!(!d.is_denied(sid, token(), now).await.unwrap(), "a sibling token of the same session");
        assert!(d.is_denied(session(), revoked, now).await.unwrap(), "the jti is refused whatever the sid");
    }

    pub(crate) async fn unknown_keys_are_not_denied(h: &impl Harness) {
        let now = now();
        let d = h.denylist();
        assert!(!d.is_denied(session(), token(), now).await.unwrap(), "empty denylist");

        let (sid, jti) = (session(), token());
        d.deny(&[deny_session(sid, now + TimeDelta::minutes(1)), deny_token(jti, now + TimeDelta::minutes(1))], now)
            .await
            .unwrap();
        assert!(!d.is_denied(session(), token(), now).await.unwrap());
        // A session id that happens to equal a denied jti is a different key.
        let same_uuid = SessionId::from_uuid(*jti.as_uuid());
        assert!(!d.is_denied(same_uuid, token(), now).await.unwrap());
    }

    pub(crate) async fn entry_past_its_until_is_no_longer_denied(h: &impl Harness) {
        let now = now();
        let (short, long) = (session(), session());
        h.denylist()
            .deny(
                &[
                    // Long enough that a loaded machine still checks it before
                    // Redis, which expires keys in real time, drops it.
                    deny_session(short, now + TimeDelta::seconds(3)),
                    deny_session(long, now + TimeDelta::minutes(1)),
                ],
                now,
            )
            .await
            .unwrap();
        assert!(h.denylist().is_denied(short, token(), now).await.unwrap());

        let later = h.elapse(now, TimeDelta::milliseconds(3500)).await;
        assert!(!h.denylist().is_denied(short, token(), later).await.unwrap());
        assert!(h.denylist().is_denied(long, token(), later).await.unwrap());
    }

    pub(crate) async fn already_expired_entries_are_not_written(h: &impl Harness) {
        let now = now();
        let (past, at_now) = (session(), token());
        h.denylist()
            .deny(&[deny_session(past, now - TimeDelta::seconds(1)), deny_token(at_now, now)], now)
            .await
            .unwrap();

        assert_eq!(h.stored().await, 0);
        assert!(!h.denylist().is_denied(past, at_now, now).await.unwrap());
    }

    pub(crate) async fn only_live_entries_of_a_mixed_batch_are_written(h: &impl Harness) {
        let now = now();
        let (expired, live) = (session(), session());
        h.denylist()
            .deny(
                &[deny_session(expired, now - TimeDelta::seconds(1)), deny_session(live, now + TimeDelta::minutes(1))],
                now,
            )
            .await
            .unwrap();

        assert_eq!(h.stored().await, 1);
        assert!(h.denylist().is_denied(live, token(), now).await.unwrap());
        assert!(!h.denylist().is_denied(expired, token(), now).await.unwrap());
    }

    pub(crate) async fn many_entries_are_denied_in_one_call(h: &impl Harness) {
        let now = now();
        let until = now + TimeDelta::minutes(15);
        let sessions: Vec<_> = (0..250).map(|_| session()).collect();
        let tokens: Vec<_> = (0..250).map(|_| token()).collect();
        let entries: Vec<_> = sessions
            .iter()
            .map(|s| deny_session(*s, until))
            .chain(tokens.iter().map(|t| deny_token(*t, until)))
            .collect();
        h.denylist().deny(&entries, now).await.unwrap();

        assert_eq!(h.stored().await, 500);
        for s in &sessions {
            assert!(h.denylist().is_denied(*s, token(), now).await.unwrap());
        }
        for t in &tokens {
            assert!(h.denylist().is_denied(session(), *t, now).await.unwrap());
        }
    }

    pub(crate) async fn denying_nothing_succeeds(h: &impl Harness) {
        h.denylist().deny(&[], now()).await.unwrap();
        assert_eq!(h.stored().await, 0);
    }
}

/// One `#[tokio::test]` per contract case, against one harness.
macro_rules! contract_suite {
    ($harness:ty) => {
        contract_suite!(
            $harness;
            denied_session_refuses_every_token_of_it,
            denied_token_refuses_only_that_token,
            unknown_keys_are_not_denied,
            entry_past_its_until_is_no_longer_denied,
            already_expired_entries_are_not_written,
            only_live_entries_of_a_mixed_batch_are_written,
            many_entries_are_denied_in_one_call,
            denying_nothing_succeeds,
        );
    };
    ($harness:ty; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
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

    pub(crate) struct MemoryHarness(MemoryDenylist);

    impl Harness for MemoryHarness {
        async fn start() -> Self {
            Self(MemoryDenylist::new())
        }

        fn denylist(&self) -> &dyn Denylist {
            &self.0
        }

        async fn elapse(&self, now: DateTime<Utc>, by: TimeDelta) -> DateTime<Utc> {
            now + by
        }

        async fn stored(&self) -> usize {
            self.0.len()
        }
    }

    contract_suite!(MemoryHarness);
}

/// The fake the use-case tests run on is held to the same contract.
mod fake {
    use gatehouse_application::testing::FakeDenylist;

    use super::*;
    use crate::contract::Harness;

    pub(crate) struct FakeHarness(FakeDenylist);

    impl Harness for FakeHarness {
        async fn start() -> Self {
            Self(FakeDenylist::default())
        }

        fn denylist(&self) -> &dyn Denylist {
            &self.0
        }

        async fn elapse(&self, now: DateTime<Utc>, by: TimeDelta) -> DateTime<Utc> {
            now + by
        }

        async fn stored(&self) -> usize {
            self.0.len()
        }
    }

    contract_suite!(FakeHarness);
}

mod redis_server {
    use ::redis::aio::MultiplexedConnection;

    use gatehouse_testkit::redis::RedisPrefix;

    use super::*;
    use crate::contract::Harness;

    const TIMEOUT: Duration = Duration::from_secs(2);

    /// A denylist under a fresh key prefix, with a connection of its own to
    /// look at the keys. Its keys are deleted when it is dropped.
    pub(crate) struct RedisHarness {
        denylist: RedisDenylist,
        inspect: MultiplexedConnection,
        // Declared last so it drops last, after the denylist's connections.
        prefix: RedisPrefix,
    }

    impl Harness for RedisHarness {
        async fn start() -> Self {
            // Armed before anything is written, so even a failing test cleans up.
            let prefix = RedisPrefix::new("gh-test");
            let url = gatehouse_testkit::redis::url();
            let unreachable = |e: &dyn std::fmt::Display| -> ! {
                panic!(
                    "Redis at {url} is unreachable ({e}); start it with `make services` or set GATEHOUSE_TEST_REDIS_URL"
                )
            };
            let denylist =
                RedisDenylist::connect(&url, prefix.prefix(), TIMEOUT).await.unwrap_or_else(|e| unreachable(&e));
            let client = ::redis::Client::open(url.as_str()).unwrap_or_else(|e| unreachable(&e));
            let inspect = client.get_multiplexed_async_connection().await.unwrap_or_else(|e| unreachable(&e));
            Self { denylist, inspect, prefix }
        }

        fn denylist(&self) -> &dyn Denylist {
            &self.denylist
        }

        async fn elapse(&self, now: DateTime<Utc>, by: TimeDelta) -> DateTime<Utc> {
            tokio::time::sleep(by.to_std().unwrap()).await;
            now + by
        }

        async fn stored(&self) -> usize {
            self.prefix.keys().await.len()
        }
    }

    impl RedisHarness {
        async fn pttl(&self, key: &str) -> i64 {
            ::redis::cmd("PTTL").arg(key).query_async(&mut self.inspect.clone()).await.unwrap()
        }
    }

    contract_suite!(RedisHarness);

    #[tokio::test]
    async fn keys_are_named_by_prefix_kind_and_id_and_expire_at_until() {
        let h = RedisHarness::start().await;
        let now = now();
        let (sid, jti) = (contract::session(), contract::token());
        let entries = [
            DenyEntry { key: DenyKey::Session(sid), until: now + TimeDelta::seconds(60) },
            DenyEntry { key: DenyKey::Token(jti), until: now + TimeDelta::seconds(30) },
        ];
        h.denylist.deny(&entries, now).await.unwrap();

        let prefix = h.prefix.prefix();
        let mut keys = h.prefix.keys().await;
        keys.sort();
        let mut expected = vec![format!("{prefix}jti:{jti}"), format!("{prefix}sid:{sid}")];
        expected.sort();
        assert_eq!(keys, expected);

        let sid_ttl = h.pttl(&format!("{prefix}sid:{sid}")).await;
        assert!((55_000..=60_000).contains(&sid_ttl), "PTTL {sid_ttl} ms, expected about 60 000");
        let jti_ttl = h.pttl(&format!("{prefix}jti:{jti}")).await;
        assert!((20_000..=30_000).contains(&jti_ttl), "PTTL {jti_ttl} ms, expected about 30 000");
    }

    #[tokio::test]
    async fn probe_pings_redis() {
        let h = RedisHarness::start().await;
        assert_eq!(h.denylist.name(), "denylist");
        h.denylist.check().await.unwrap();
    }
}
