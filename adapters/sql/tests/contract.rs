//! The storage contract: the same specifications run against the in-memory
//! fakes (`memory::`), SQLite (`sqlite::`) and PostgreSQL (`postgres::`).
//!
//! PostgreSQL must be running (`make services`); see `support` for the URL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_application::ports::health::Probe;
use gatehouse_application::ports::store::{NewRefreshToken, Rotation, StoreError};
use gatehouse_domain::{
    ClientInfo, DisplayName, EmailAddress, PasswordHash, RevokeReason, Session, SessionId, TokenHash, User, UserId,
};
use gatehouse_sql::{Database, PoolSettings};
use support::{Stores, TestDb};
use uuid::Uuid;

contract_tests! {
    ports: [
        create_user_then_find_credentials_by_email,
        find_credentials_for_unknown_email_is_none,
        duplicate_email_is_a_conflict,
        update_password_hash_replaces_the_stored_hash,
        rotating_a_current_token_extends_the_session,
        presenting_a_rotated_token_again_is_reuse,
        never_issued_token_is_unknown,
        token_at_its_expiry_is_expired,
        rotation_on_a_revoked_session_is_session_ended,
        rotation_on_an_expired_session_is_session_ended,
        revoke_keeps_the_first_revocation_time,
        revoke_of_an_unknown_session_is_none,
        revoked_since_lists_sessions_revoked_at_or_after,
        find_by_refresh_token_finds_the_session_of_a_rotated_token,
        concurrent_rotations_of_one_token_rotate_exactly_once,
    ],
    sql: [
        migrations_applied_twice_are_a_no_op,
        failed_sign_up_leaves_no_user_row,
        session_for_an_unknown_user_is_refused,
        deleting_a_user_cascades_to_emails_sessions_and_tokens,
        probe_answers,
    ],
}

// ---------------------------------------------------------------- fixtures

/// 2026-01-01T00:00:00.25Z: a fractional second, so ordering of stored
/// timestamps is exercised below the second (microsecond precision is kept).
fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 250_000_000).unwrap()
}

fn user(n: u128, email: &str) -> User {
    User {
        id: UserId::from_uuid(Uuid::from_u128(n)),
        email: EmailAddress::parse(email).unwrap(),
        display_name: DisplayName::parse("Ann Lee").unwrap(),
        password_hash: PasswordHash::from_phc(format!("$argon2id$v=19$m=19456,t=2,p=1$salt{n}$hash{n}")),
        created_at: t0(),
    }
}

fn hash(n: u8) -> TokenHash {
    let mut bytes = [n; 32];
    bytes[0] = 0xa5;
    TokenHash::from_bytes(bytes)
}

fn token(n: u8, issued_at: DateTime<Utc>, ttl: TimeDelta) -> NewRefreshToken {
    NewRefreshToken { hash: hash(n), issued_at, expires_at: issued_at + ttl }
}

fn session(n: u128, user: &User, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> Session {
    Session {
        id: SessionId::from_uuid(Uuid::from_u128(0x5e55_0000 + n)),
        user_id: user.id,
        created_at: now,
        last_used_at: now,
        expires_at,
        revoked_at: None,
        client: ClientInfo::new(Some("Mozilla/5.0 (X11; Linux x86_64)"), Some("203.0.113.7".into())),
    }
}

/// A signed-up user with one session whose first refresh token is `hash(1)`,
/// valid for 30 days from [`t0`].
async fn user_with_session(s: &Stores) -> (User, Session) {
    let ann = user(1, "ann@example.com");
    s.users.create(&ann).await.unwrap();
    let first = token(1, t0(), TimeDelta::days(30));
    let sess = session(1, &ann, t0(), first.expires_at);
    s.sessions.create(&sess, &first).await.unwrap();
    (ann, sess)
}

// ------------------------------------------------------------------ users

async fn create_user_then_find_credentials_by_email(s: Stores) {
    let ann = user(1, "Ann@Example.com");
    s.users.create(&ann).await.unwrap();
    s.users.create(&user(2, "bob@example.com")).await.unwrap();

    let found = s.users.find_credentials(&EmailAddress::parse("ANN@example.COM").unwrap()).await.unwrap().unwrap();
    assert_eq!(found.user_id, ann.id);
    assert_eq!(found.password_hash, ann.password_hash);
}

async fn find_credentials_for_unknown_email_is_none(s: Stores) {
    s.users.create(&user(1, "ann@example.com")).await.unwrap();
    let found = s.users.find_credentials(&EmailAddress::parse("nobody@example.com").unwrap()).await.unwrap();
    assert!(found.is_none());
}

async fn duplicate_email_is_a_conflict(s: Stores) {
    s.users.create(&user(1, "ann@example.com")).await.unwrap();
    let err = s.users.create(&user(2, "ANN@example.com")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // The first account is untouched.
    let found = s.users.find_credentials(&EmailAddress::parse("ann@example.com").unwrap()).await.unwrap().unwrap();
    assert_eq!(found.user_id, user(1, "ann@example.com").id);
}

async fn update_password_hash_replaces_the_stored_hash(s: Stores) {
    let ann = user(1, "ann@example.com");
    s.users.create(&ann).await.unwrap();
    let upgraded = PasswordHash::from_phc("$argon2id$v=19$m=65536,t=3,p=4$new$hash".into());
    s.users.update_password_hash(ann.id, &upgraded, t0() + TimeDelta::hours(1)).await.unwrap();

    let found = s.users.find_credentials(&ann.email).await.unwrap().unwrap();
    assert_eq!(found.password_hash, upgraded);
}

// --------------------------------------------------------------- rotation

async fn rotating_a_current_token_extends_the_session(s: Stores) {
    let (_, sess) = user_with_session(&s).await;
    let now = t0() + TimeDelta::hours(2) + TimeDelta::microseconds(1);
    let next = token(2, now, TimeDelta::days(30));

    let rotation = s.sessions.rotate_refresh_token(&hash(1), &next, now).await.unwrap();

    let expected = Session { last_used_at: now, expires_at: next.expires_at, ..sess.clone() };
    assert_eq!(rotation, Rotation::Rotated(expected.clone()));
    // The stored session changed too, and both tokens lead to it.
    assert_eq!(s.sessions.find_by_refresh_token(&hash(2)).await.unwrap(), Some(expected.clone()));
    assert_eq!(s.sessions.find_by_refresh_token(&hash(1)).await.unwrap(), Some(expected));
    // The new token rotates in turn.
    let later = now + TimeDelta::hours(1);
    let third = s.sessions.rotate_refresh_token(&hash(2), &token(3, later, TimeDelta::days(30)), later).await.unwrap();
    assert!(matches!(third, Rotation::Rotated(ref s) if s.last_used_at == later), "{third:?}");
}

async fn presenting_a_rotated_token_again_is_reuse(s: Stores) {
    let (_, sess) = user_with_session(&s).await;
    let now = t0() + TimeDelta::minutes(5);
    let first = s.sessions.rotate_refresh_token(&hash(1), &token(2, now, TimeDelta::days(30)), now).await.unwrap();
    assert!(matches!(first, Rotation::Rotated(_)), "{first:?}");

    let again = s.sessions.rotate_refresh_token(&hash(1), &token(3, now, TimeDelta::days(30)), now).await.unwrap();
    assert_eq!(again, Rotation::Reused { session_id: sess.id });
    // Nothing was stored for the refused attempt.
    assert_eq!(s.sessions.find_by_refresh_token(&hash(3)).await.unwrap(), None);
}

async fn never_issued_token_is_unknown(s: Stores) {
    user_with_session(&s).await;
    let now = t0() + TimeDelta::minutes(5);
    let rotation = s.sessions.rotate_refresh_token(&hash(99), &token(2, now, TimeDelta::days(30)), now).await.unwrap();
    assert_eq!(rotation, Rotation::Unknown);
    assert_eq!(s.sessions.find_by_refresh_token(&hash(2)).await.unwrap(), None);
}

async fn token_at_its_expiry_is_expired(s: Stores) {
    let ann = user(1, "ann@example.com");
    s.users.create(&ann).await.unwrap();
    // The token expires half a second in; the session lives on for a day.
    let short = token(1, t0(), TimeDelta::milliseconds(500));
    s.sessions.create(&session(1, &ann, t0(), t0() + TimeDelta::days(1)), &short).await.unwrap();

    let at_expiry = short.expires_at;
    let next = token(2, at_expiry, TimeDelta::days(30));
    assert_eq!(s.sessions.rotate_refresh_token(&hash(1), &next, at_expiry).await.unwrap(), Rotation::Expired);
    let later = at_expiry + TimeDelta::days(2);
    assert_eq!(s.sessions.rotate_refresh_token(&hash(1), &next, later).await.unwrap(), Rotation::Expired);

    // One microsecond earlier it was still good.
    let just_before = at_expiry - TimeDelta::microseconds(1);
    let rotation = s.sessions.rotate_refresh_token(&hash(1), &next, just_before).await.unwrap();
    assert!(matches!(rotation, Rotation::Rotated(_)), "{rotation:?}");
}

async fn rotation_on_a_revoked_session_is_session_ended(s: Stores) {
    let (_, sess) = user_with_session(&s).await;
    let now = t0() + TimeDelta::minutes(5);
    s.sessions.revoke(sess.id, RevokeReason::Logout, now).await.unwrap();

    let next = token(2, now, TimeDelta::days(30));
    assert_eq!(s.sessions.rotate_refresh_token(&hash(1), &next, now).await.unwrap(), Rotation::SessionEnded);
    // Nothing changed: the token was not retired (so it is not "reused") and
    // no new token was stored.
    assert_eq!(s.sessions.rotate_refresh_token(&hash(1), &next, now).await.unwrap(), Rotation::SessionEnded);
    assert_eq!(s.sessions.find_by_refresh_token(&hash(2)).await.unwrap(), None);
    let stored = s.sessions.find_by_refresh_token(&hash(1)).await.unwrap().unwrap();
    assert_eq!(stored.last_used_at, sess.last_used_at);
}

async fn rotation_on_an_expired_session_is_session_ended(s: Stores) {
    let ann = user(1, "ann@example.com");
    s.users.create(&ann).await.unwrap();
    // The token outlives its session (say the session was cut short).
    let long = token(1, t0(), TimeDelta::days(30));
    s.sessions.create(&session(1, &ann, t0(), t0() + TimeDelta::hours(1)), &long).await.unwrap();

    let now = t0() + TimeDelta::hours(1);
    let rotation = s.sessions.rotate_refresh_token(&hash(1), &token(2, now, TimeDelta::days(30)), now).await.unwrap();
    assert_eq!(rotation, Rotation::SessionEnded);
}

// ------------------------------------------------------------- revocation

async fn revoke_keeps_the_first_revocation_time(s: Stores) {
    let (_, sess) = user_with_session(&s).await;
    let first = t0() + TimeDelta::minutes(5);
    let revoked = s.sessions.revoke(sess.id, RevokeReason::Logout, first).await.unwrap();
    assert_eq!(revoked, Some(Session { revoked_at: Some(first), ..sess.clone() }));

    let second = first + TimeDelta::minutes(5);
    let again = s.sessions.revoke(sess.id, RevokeReason::RefreshTokenReuse, second).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(first));
}

async fn revoke_of_an_unknown_session_is_none(s: Stores) {
    user_with_session(&s).await;
    let unknown = SessionId::from_uuid(Uuid::from_u128(0xdead));
    assert_eq!(s.sessions.revoke(unknown, RevokeReason::Logout, t0()).await.unwrap(), None);
}

async fn revoked_since_lists_sessions_revoked_at_or_after(s: Stores) {
    let ann = user(1, "ann@example.com");
    s.users.create(&ann).await.unwrap();
    let expires = t0() + TimeDelta::days(30);
    let sessions: Vec<Session> = (1..=4).map(|n| session(n, &ann, t0(), expires)).collect();
    for (n, sess) in (1u8..).zip(&sessions) {
        s.sessions.create(sess, &token(n, t0(), TimeDelta::days(30))).await.unwrap();
    }
    let cut = t0() + TimeDelta::minutes(10);
    s.sessions.revoke(sessions[0].id, RevokeReason::Logout, cut - TimeDelta::microseconds(1)).await.unwrap();
    s.sessions.revoke(sessions[1].id, RevokeReason::Logout, cut).await.unwrap();
    s.sessions.revoke(sessions[2].id, RevokeReason::RefreshTokenReuse, cut + TimeDelta::hours(1)).await.unwrap();
    // sessions[3] is never revoked.

    let mut ids: Vec<SessionId> = s.sessions.revoked_since(cut).await.unwrap().iter().map(|s| s.id).collect();
    ids.sort();
    assert_eq!(ids, vec![sessions[1].id, sessions[2].id]);
    assert!(s.sessions.revoked_since(cut + TimeDelta::days(1)).await.unwrap().is_empty());
}

async fn find_by_refresh_token_finds_the_session_of_a_rotated_token(s: Stores) {
    let (_, sess) = user_with_session(&s).await;
    let now = t0() + TimeDelta::minutes(1);
    s.sessions.rotate_refresh_token(&hash(1), &token(2, now, TimeDelta::days(30)), now).await.unwrap();
    s.sessions.revoke(sess.id, RevokeReason::RefreshTokenReuse, now).await.unwrap();

    let found = s.sessions.find_by_refresh_token(&hash(1)).await.unwrap().unwrap();
    assert_eq!(found.id, sess.id);
    assert_eq!(found.revoked_at, Some(now));
    assert_eq!(s.sessions.find_by_refresh_token(&hash(77)).await.unwrap(), None);
}

// ------------------------------------------------------------ concurrency

async fn concurrent_rotations_of_one_token_rotate_exactly_once(s: Stores) {
    const RACERS: u8 = 20;
    let (_, sess) = user_with_session(&s).await;
    let now = t0() + TimeDelta::minutes(1);
    let start = Arc::new(tokio::sync::Barrier::new(usize::from(RACERS)));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let sessions = Arc::clone(&s.sessions);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                sessions.rotate_refresh_token(&hash(1), &token(100 + i, now, TimeDelta::days(30)), now).await
            })
        })
        .collect();

    let mut rotated = Vec::new();
    for (i, racer) in (0u8..).zip(racers) {
        match racer.await.unwrap() {
            Ok(Rotation::Rotated(_)) => rotated.push(i),
            Ok(Rotation::Reused { session_id }) => assert_eq!(session_id, sess.id),
            other => panic!("racer {i}: {other:?}"),
        }
    }
    assert_eq!(rotated.len(), 1, "exactly one rotation may win: {rotated:?}");
    // Only the winner's token was stored.
    for i in 0..RACERS {
        let stored = s.sessions.find_by_refresh_token(&hash(100 + i)).await.unwrap();
        assert_eq!(stored.is_some(), rotated.contains(&i), "token of racer {i}");
    }
}

// ---------------------------------------------------------------- SQL only

async fn migrations_applied_twice_are_a_no_op(t: TestDb) {
    let s = t.stores();
    let (ann, _) = user_with_session(&s).await;
    t.db.migrate().await.unwrap();
    t.db.migrate().await.unwrap();
    assert!(s.users.find_credentials(&ann.email).await.unwrap().is_some());
    assert_eq!(t.count("seaql_migrations").await, 1);
}

async fn failed_sign_up_leaves_no_user_row(t: TestDb) {
    let s = t.stores();
    s.users.create(&user(1, "ann@example.com")).await.unwrap();
    let err = s.users.create(&user(2, "ann@example.com")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(ref m) if m.contains("email")), "{err:?}");
    assert_eq!(t.count("users").await, 1);
    assert_eq!(t.count("user_emails").await, 1);
}

async fn session_for_an_unknown_user_is_refused(t: TestDb) {
    let s = t.stores();
    let ghost = user(9, "ghost@example.com");
    let first = token(1, t0(), TimeDelta::days(30));
    let err = s.sessions.create(&session(1, &ghost, t0(), first.expires_at), &first).await.unwrap_err();
    assert!(matches!(err, StoreError::Internal(_)), "{err:?}");
    assert_eq!(t.count("sessions").await, 0);
    assert_eq!(t.count("refresh_tokens").await, 0);
}

async fn deleting_a_user_cascades_to_emails_sessions_and_tokens(t: TestDb) {
    let s = t.stores();
    user_with_session(&s).await;
    let bob = user(2, "bob@example.com");
    s.users.create(&bob).await.unwrap();
    let bobs = session(2, &bob, t0(), t0() + TimeDelta::days(30));
    s.sessions.create(&bobs, &token(2, t0(), TimeDelta::days(30))).await.unwrap();

    t.execute("DELETE FROM users WHERE id IN (SELECT user_id FROM user_emails WHERE email = 'ann@example.com')").await;

    assert_eq!(t.count("users").await, 1);
    assert_eq!(t.count("user_emails").await, 1);
    assert_eq!(t.count("sessions").await, 1);
    assert_eq!(t.count("refresh_tokens").await, 1);
    assert_eq!(s.sessions.find_by_refresh_token(&hash(2)).await.unwrap().map(|s| s.id), Some(bobs.id));
    assert_eq!(s.sessions.find_by_refresh_token(&hash(1)).await.unwrap(), None);
}

async fn probe_answers(t: TestDb) {
    assert_eq!(t.db.name(), "database");
    t.db.check().await.unwrap();
}

// ------------------------------------------------------------- connecting

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode() {
    let path = std::env::temp_dir().join(format!("gh_test_{}.sqlite3", Uuid::now_v7().simple()));
    let url = format!("sqlite://{}", path.display());
    let db = Database::connect(&url, PoolSettings::default()).await.unwrap();
    db.migrate().await.unwrap();
    db.close().await.unwrap();
    assert!(path.exists(), "{} was not created", path.display());

    // journal_mode=wal is stored in the file, so a plain connection sees it.
    let t = TestDb { db: Database::connect(&url, PoolSettings::default()).await.unwrap(), url };
    let mode = t.query_string("PRAGMA journal_mode").await;
    t.db.close().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    assert_eq!(mode.to_lowercase(), "wal");
}

#[tokio::test]
async fn unsupported_database_url_is_refused() {
    let err = Database::connect("mysql://root@127.0.0.1/gatehouse", PoolSettings::default()).await.unwrap_err();
    assert!(matches!(err, StoreError::Internal(ref m) if m.contains("unsupported")), "{err:?}");
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable() {
    let settings = PoolSettings {
        connect_timeout: std::time::Duration::from_secs(2),
        acquire_timeout: std::time::Duration::from_secs(2),
        ..PoolSettings::default()
    };
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    let err = Database::connect("postgres://postgres@127.0.0.1:1/postgres", settings).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}
