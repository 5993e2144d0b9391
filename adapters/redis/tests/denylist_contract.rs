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
use gatehouse_domain::{SessionId, TokenId, UserId};
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
        /// A denylist as a process starts it: never rebuilt.
        async fn start_unbuilt() -> Self;

        /// A denylist after its first (empty) rebuild, as the server
        /// answers from it.
        async fn start() -> Self {
            let h = Self::start_unbuilt().await;
            rebuild(h.denylist(), &[]).await;
            h
        }

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

    pub(crate) fn user() -> UserId {
        UserId::from_uuid(Uuid::now_v7())
    }

    pub(crate) async fn rebuild(d: &dyn Denylist, entries: &[DenyEntry]) {
        let ticket = d.begin_rebuild().await.unwrap();
        d.complete_rebuild(ticket, entries, now()).await.unwrap();
    }

    /// OWASP ASVS 5.0 V7.4.1: a denylist that has not been filled from
    /// storage cannot tell a revoked token from a live one, so it answers
    /// nothing (validation fails closed) and asks for a rebuild.
    pub(crate) async fn a_denylist_answers_nothing_before_its_first_rebuild<H: Harness>(_rebuilt: &H) {
        let h = H::start_unbuilt().await;
        let d = h.denylist();
        assert!(d.is_denied(session(), token(), user(), now()).await.is_err());
        tokio::time::timeout(Duration::from_secs(5), d.stale()).await.expect("a fresh denylist asks for a rebuild");

        let revoked = session();
        rebuild(d, &[deny_session(revoked, now() + TimeDelta::minutes(15))]).await;
        assert!(d.is_denied(revoked, token(), user(), now()).await.unwrap());
        assert!(!d.is_denied(session(), token(), user(), now()).await.unwrap());
        assert!(
            tokio::time::timeout(Duration::from_millis(200), d.stale()).await.is_err(),
            "a complete denylist does not ask for a rebuild"
        );
    }

    /// ASVS 5.0 V7.4.1 / V7.4.2: deleting an account ends every session of it.
    pub(crate) async fn denied_user_refuses_every_token_of_the_account(h: &impl Harness) {
        let now = now();
        let (deleted, other) = (user(), user());
        let entry = DenyEntry { key: DenyKey::User(deleted), until: now + TimeDelta::minutes(15) };
        h.denylist().deny(&[entry], now).await.unwrap();

        let d = h.denylist();
        assert!(d.is_denied(session(), token(), deleted, now).await.unwrap());
        assert!(!d.is_denied(session(), token(), other, now).await.unwrap());
        // A session id equal to the user id is a different key.
        assert!(!d.is_denied(SessionId::from_uuid(*deleted.as_uuid()), token(), other, now).await.unwrap());
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
        assert!(d.is_denied(revoked, token(), user(), now).await.unwrap());
        assert!(d.is_denied(revoked, token(), user(), now).await.unwrap());
        assert!(!d.is_denied(other, token(), user(), now).await.unwrap());
    }

    pub(crate) async fn denied_token_refuses_only_that_token(h: &impl Harness) {
        let now = now();
        let (sid, revoked) = (session(), token());
        h.denylist().deny(&[deny_token(revoked, now + TimeDelta::minutes(15))], now).await.unwrap();

        let d = h.denylist();
        assert!(d.is_denied(sid, revoked, user(), now).await.unwrap());
        assert!(!d.is_denied(sid, token(), user(), now).await.unwrap(), "a sibling token of the same session");
        assert!(d.is_denied(session(), revoked, user(), now).await.unwrap(), "the jti is refused whatever the sid");
    }

    pub(crate) async fn unknown_keys_are_not_denied(h: &impl Harness) {
        let now = now();
        let d = h.denylist();
        assert!(!d.is_denied(session(), token(), user(), now).await.unwrap(), "empty denylist");

        let (sid, jti) = (session(), token());
        d.deny(&[deny_session(sid, now + TimeDelta::minutes(1)), deny_token(jti, now + TimeDelta::minutes(1))], now)
            .await
            .unwrap();
        assert!(!d.is_denied(session(), token(), user(), now).await.unwrap());
        // A session id that happens to equal a denied jti is a different key.
        let same_uuid = SessionId::from_uuid(*jti.as_uuid());
        assert!(!d.is_denied(same_uuid, token(), user(), now).await.unwrap());
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
        assert!(h.denylist().is_denied(short, token(), user(), now).await.unwrap());

        let later = h.elapse(now, TimeDelta::milliseconds(3500)).await;
        assert!(!h.denylist().is_denied(short, token(), user(), later).await.unwrap());
        assert!(h.denylist().is_denied(long, token(), user(), later).await.unwrap());
    }

    pub(crate) async fn already_expired_entries_are_not_written(h: &impl Harness) {
        let now = now();
        let (past, at_now) = (session(), token());
        h.denylist()
            .deny(&[deny_session(past, now - TimeDelta::seconds(1)), deny_token(at_now, now)], now)
            .await
            .unwrap();

        assert_eq!(h.stored().await, 0);
        assert!(!h.denylist().is_denied(past, at_now, user(), now).await.unwrap());
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
        assert!(h.denylist().is_denied(live, token(), user(), now).await.unwrap());
        assert!(!h.denylist().is_denied(expired, token(), user(), now).await.unwrap());
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
            assert!(h.denylist().is_denied(*s, token(), user(), now).await.unwrap());
        }
        for t in &tokens {
            assert!(h.denylist().is_denied(session(), *t, user(), now).await.unwrap());
        }
    }

    /// Lookups in flight together (the Redis adapter sends them to Redis as
    /// one batch) each get the answer for their own token: a revoked one
    /// among them is refused, the others are not.
    pub(crate) async fn concurrent_lookups_each_get_their_own_answer(h: &impl Harness) {
        let now = now();
        let until = now + TimeDelta::minutes(15);
        let asks: Vec<_> = (0..300).map(|_| (session(), token(), user())).collect();
        // Every fifth revoked, by session, token or account in turn.
        let mut entries = Vec::new();
        for (i, (s, t, u)) in asks.iter().enumerate().filter(|(i, _)| i % 5 == 0) {
            entries.push(match (i / 5) % 3 {
                0 => deny_session(*s, until),
                1 => deny_token(*t, until),
                _ => DenyEntry { key: DenyKey::User(*u), until },
            });
        }
        h.denylist().deny(&entries, now).await.unwrap();

        let answers = all(asks.iter().map(|(s, t, u)| h.denylist().is_denied(*s, *t, *u, now))).await;
        for (i, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer.unwrap(), i % 5 == 0, "lookup {i}");
        }
    }

    /// Runs every future at once and returns their outputs in order.
    pub(crate) async fn all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
        let mut pending: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
        let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut done = true;
            for (slot, output) in pending.iter_mut().zip(outputs.iter_mut()) {
                if let Some(future) = slot {
                    match future.as_mut().poll(cx) {
                        std::task::Poll::Ready(value) => {
                            *output = Some(value);
                            *slot = None;
                        }
                        std::task::Poll::Pending => done = false,
                    }
                }
            }
            if done { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
        })
        .await;
        outputs.into_iter().map(|o| o.expect("every future finished")).collect()
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
            a_denylist_answers_nothing_before_its_first_rebuild,
            denied_user_refuses_every_token_of_the_account,
            denied_session_refuses_every_token_of_it,
            denied_token_refuses_only_that_token,
            unknown_keys_are_not_denied,
            entry_past_its_until_is_no_longer_denied,
            already_expired_entries_are_not_written,
            only_live_entries_of_a_mixed_batch_are_written,
            many_entries_are_denied_in_one_call,
            concurrent_lookups_each_get_their_own_answer,
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
        async fn start_unbuilt() -> Self {
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
        async fn start_unbuilt() -> Self {
            Self(FakeDenylist::unbuilt())
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
        async fn start_unbuilt() -> Self {
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
            self.entry_keys().await.len()
        }
    }

    impl RedisHarness {
        /// The entries' keys, without the generation marker.
        async fn entry_keys(&self) -> Vec<String> {
            let marker = format!("{}denylist:", self.prefix.prefix());
            self.prefix.keys().await.into_iter().filter(|k| !k.starts_with(&marker)).collect()
        }

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
        let mut keys = h.entry_keys().await;
        keys.sort();
        let mut expected = vec![format!("{prefix}jti:{jti}"), format!("{prefix}sid:{sid}")];
        expected.sort();
        assert_eq!(keys, expected);

        let sid_ttl = h.pttl(&format!("{prefix}sid:{sid}")).await;
        assert!((55_000..=60_000).contains(&sid_ttl), "PTTL {sid_ttl} ms, expected about 60 000");
        let jti_ttl = h.pttl(&format!("{prefix}jti:{jti}")).await;
        assert!((20_000..=30_000).contains(&jti_ttl), "PTTL {jti_ttl} ms, expected about 30 000");
    }

    fn deny(sid: SessionId) -> DenyEntry {
        DenyEntry { key: DenyKey::Session(sid), until: now() + TimeDelta::minutes(15) }
    }

    /// How many `MGET`s the Redis server has run, from `INFO commandstats`.
    async fn mgets_run(h: &RedisHarness) -> u64 {
        let info: String = ::redis::cmd("INFO").arg("commandstats").query_async(&mut h.inspect.clone()).await.unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_mget:calls="))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().unwrap())
    }

    /// Lookups in flight together go to Redis as a few `MGET`s, not one
    /// each. Other tests share the server and may add a few of their own,
    /// so the bound is loose; one command per lookup would exceed it.
    #[tokio::test]
    async fn concurrent_lookups_share_their_round_trips() {
        let h = RedisHarness::start().await;
        let now = now();
        let revoked = contract::session();
        h.denylist.deny(&[deny(revoked)], now).await.unwrap();
        let before = mgets_run(&h).await;
        let lookups = 400;
        let answers = contract::all((0..lookups).map(|i| {
            let session = if i == 0 { revoked } else { contract::session() };
            h.denylist.is_denied(session, contract::token(), contract::user(), now)
        }))
        .await;
        let sent = mgets_run(&h).await - before;
        assert!(answers[0].as_ref().unwrap(), "the revoked session is refused");
        assert!(answers[1..].iter().all(|a| !a.as_ref().unwrap()), "the others are not");
        assert!(sent < lookups / 4, "{sent} MGETs for {lookups} concurrent lookups");
    }

    /// Within the bound, `stale()` must complete.
    async fn asks_for_a_rebuild(d: &RedisDenylist) {
        tokio::time::timeout(Duration::from_secs(5), d.stale()).await.expect("the denylist did not ask for a rebuild");
    }

    /// OWASP ASVS 5.0 V7.4.1: a Redis that lost its keys (FLUSHALL, a restart
    /// without persistence; here: this test's own keys deleted) must not
    /// answer "not revoked" for a revoked token. The missing marker is seen
    /// by the first lookup, which fails closed, and the rebuild is asked for.
    #[tokio::test]
    async fn lost_keys_are_refused_until_the_next_rebuild() {
        let h = RedisHarness::start().await;
        let revoked = contract::session();
        h.denylist.deny(&[deny(revoked)], now()).await.unwrap();
        assert!(h.denylist.is_denied(revoked, contract::token(), contract::user(), now()).await.unwrap());

        assert!(gatehouse_testkit::redis::delete_keys(h.prefix.prefix()) >= 2, "marker and entry were lost");
        for _ in 0..3 {
            let answer = h.denylist.is_denied(revoked, contract::token(), contract::user(), now()).await;
            assert!(answer.is_err(), "a lost denylist answered {answer:?}");
        }
        asks_for_a_rebuild(&h.denylist).await;

        contract::rebuild(&h.denylist, &[deny(revoked)]).await;
        assert!(h.denylist.is_denied(revoked, contract::token(), contract::user(), now()).await.unwrap());
    }

    /// Health follows completeness, not just reachability: a denylist that
    /// cannot vouch for its lookups makes validation answer UNAVAILABLE, so
    /// its probe fails too, and every change is announced at once rather
    /// than at the next probe (OWASP ASVS 5.0 V16.5.2).
    #[tokio::test]
    async fn health_fails_while_the_denylist_is_incomplete_and_hears_of_each_change() {
        let h = RedisHarness::start_unbuilt().await;
        assert!(h.denylist.check().await.is_err(), "not rebuilt yet: not serving");
        let change = |seen| tokio::time::timeout(Duration::from_secs(5), h.denylist.changed(seen));

        contract::rebuild(&h.denylist, &[]).await;
        let complete = change(0).await.expect("the rebuild is announced");
        h.denylist.check().await.unwrap();

        let _ = gatehouse_testkit::redis::delete_keys(h.prefix.prefix());
        assert!(h.denylist.is_denied(contract::session(), contract::token(), contract::user(), now()).await.is_err());
        let lost = change(complete).await.expect("the loss is announced");
        assert!(h.denylist.check().await.is_err(), "Redis answers, but the denylist lost its entries");

        contract::rebuild(&h.denylist, &[]).await;
        assert_ne!(change(lost).await.expect("the new rebuild is announced"), lost);
        h.denylist.check().await.unwrap();
    }

    /// ASVS 5.0 V7.4.1: keys lost after the rebuild read storage may include
    /// a revocation the read missed, so such a rebuild must not mark the
    /// denylist complete.
    #[tokio::test]
    async fn keys_lost_while_a_rebuild_runs_refuse_its_write() {
        let h = RedisHarness::start().await;
        let ticket = h.denylist.begin_rebuild().await.unwrap();
        let _ = gatehouse_testkit::redis::delete_keys(h.prefix.prefix());
        assert!(h.denylist.complete_rebuild(ticket, &[deny(contract::session())], now()).await.is_err());
        assert_eq!(h.stored().await, 0, "nothing of the refused rebuild was written");
        assert!(h.denylist.is_denied(contract::session(), contract::token(), contract::user(), now()).await.is_err());

        contract::rebuild(&h.denylist, &[]).await;
        assert!(!h.denylist.is_denied(contract::session(), contract::token(), contract::user(), now()).await.unwrap());
    }

    /// ASVS 5.0 V7.4.1: a marker older than one already seen means Redis came
    /// back from an older copy (a snapshot, a lagging replica) that lacks the
    /// revocations written since.
    #[tokio::test]
    async fn a_marker_older_than_one_seen_is_refused() {
        let h = RedisHarness::start().await;
        contract::rebuild(&h.denylist, &[]).await;
        let marker = format!("{}denylist:generation", h.prefix.prefix());
        let generation: u64 = ::redis::cmd("GET").arg(&marker).query_async(&mut h.inspect.clone()).await.unwrap();
        assert_eq!(generation, 2, "each rebuild bumps the marker");

        let _: () = ::redis::cmd("SET").arg(&marker).arg(1).query_async(&mut h.inspect.clone()).await.unwrap();
        assert!(h.denylist.is_denied(contract::session(), contract::token(), contract::user(), now()).await.is_err());
        asks_for_a_rebuild(&h.denylist).await;
        contract::rebuild(&h.denylist, &[]).await;
        assert!(!h.denylist.is_denied(contract::session(), contract::token(), contract::user(), now()).await.unwrap());
    }

    /// A rebuild that completes while a lookup is in flight moves the marker
    /// past the one the lookup read: that is no loss, and the lookup answers.
    #[tokio::test]
    async fn lookups_racing_rebuilds_still_answer() {
        let h = RedisHarness::start().await;
        for _ in 0..200 {
            let lookup = h.denylist.is_denied(contract::session(), contract::token(), contract::user(), now());
            let (answer, ()) = tokio::join!(lookup, contract::rebuild(&h.denylist, &[]));
            assert!(!answer.unwrap(), "a racing lookup failed or denied");
        }
    }

    /// Replicas share the marker: another replica's rebuild moves it forward
    /// and that is no loss.
    #[tokio::test]
    async fn another_replicas_rebuild_is_no_loss() {
        let h = RedisHarness::start().await;
        let url = gatehouse_testkit::redis::url();
        let other = RedisDenylist::connect(&url, h.prefix.prefix(), TIMEOUT).await.unwrap();
        contract::rebuild(&other, &[deny(contract::session())]).await;
        contract::rebuild(&other, &[]).await;
        assert!(!h.denylist.is_denied(contract::session(), contract::token(), contract::user(), now()).await.unwrap());
        assert!(!other.is_denied(contract::session(), contract::token(), contract::user(), now()).await.unwrap());
    }

    #[tokio::test]
    async fn probe_pings_redis() {
        let h = RedisHarness::start().await;
        assert_eq!(h.denylist.name(), "denylist");
        h.denylist.check().await.unwrap();
    }
}
