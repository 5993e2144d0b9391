//! The storage contract: the same specifications run against the in-memory
//! fakes (`memory::`), SQLite (`sqlite::`) and PostgreSQL (`postgres::`).
//!
//! PostgreSQL must be running (`make services`); see `support` for the URL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;
mod ops;
mod organizations;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_application::ports::audit::AuditCursor;
use gatehouse_application::ports::events::{ClaimedMessage, OutboxMessage};
use gatehouse_application::ports::health::Probe;
use gatehouse_application::ports::mfa::FactorCode;
use gatehouse_application::ports::store::{NewRefreshToken, StoreError, Tombstone};
use gatehouse_domain::mfa::Activation;
use gatehouse_domain::{
    AuditOutcome, AuditRecord, ClientInfo, DisplayName, EmailAddress, Factor, FactorKind, MfaChallenge, PasswordHash,
    Purpose, RevokeReason, SealedSecret, Session, SessionId, TokenHash, User, UserId, Verification,
};
use gatehouse_sql::{Database, PoolSettings};
use ops::{Consumed, Effect, EmailRemoval, PrimaryChange, Rotation};
use organizations::*;
use sea_orm::{ConnectionTrait, TransactionTrait};
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
        deleting_an_account_leaves_a_tombstone_until_its_last_token_expires,
        find_by_refresh_token_finds_the_session_of_a_rotated_token,
        create_session_writes_its_outbox_atomically,
        rotation_never_extends_a_session_past_its_absolute_end,
        rotation_records_the_last_use_and_the_clients_address_and_agent,
        get_returns_a_session_in_any_state,
        list_live_lists_the_users_unrevoked_unexpired_sessions_newest_first,
        seen_device_matches_address_and_agent_of_any_session,
        revoke_all_revokes_every_session_but_the_kept_one,
        prune_deletes_sessions_that_ended_before_the_cut,
        concurrent_rotations_of_one_token_rotate_exactly_once,
        create_writes_the_verification_and_outbox_atomically,
        find_credentials_reports_whether_that_email_is_verified,
        get_lists_emails_primary_first_then_by_creation,
        update_display_name_changes_the_name,
        password_hash_reads_the_stored_hash,
        change_password_revokes_every_session_but_the_kept_one,
        change_password_of_an_unknown_user_changes_nothing,
        add_email_is_a_conflict_for_any_accounts_address,
        only_an_added_unverified_address_is_released,
        remove_email_outcomes,
        set_primary_email_outcomes,
        delete_returns_live_sessions_and_removes_everything,
        replace_retires_the_previous_live_verification,
        find_by_token_respects_the_purpose,
        find_latest_is_the_newest_unconsumed,
        record_failed_attempt_stops_at_the_limit,
        recent_activity_counts_issues_and_failures_per_user_and_purpose,
        a_new_or_completed_reset_retires_every_other_reset_of_the_account,
        removing_a_login_email_removes_its_email_factor,
        concurrent_failed_attempts_stop_at_the_limit,
        consume_verifies_the_email_once,
        concurrent_consumes_apply_exactly_once,
        consume_is_refused_when_expired_exhausted_or_consumed,
        reset_password_changes_the_hash_verifies_the_email_and_revokes_every_session,
        claim_returns_due_rows_oldest_first_and_hides_them_until_the_lease,
        sent_rows_are_never_claimed_again,
        a_round_of_rows_is_marked_sent_at_once,
        retry_later_delays_and_counts_attempts,
        prune_sent_deletes_rows_sent_before,
        retry_now_makes_rows_in_backoff_due_and_leaves_the_rest,
        two_relays_claim_every_row_exactly_once,
        add_factor_stores_it_and_replaces_pending_factors_of_its_kind,
        activate_factor_activates_only_the_users_pending_factor,
        remove_factor_takes_the_backup_codes_with_the_last_active_factor,
        concurrent_removals_of_the_last_active_factors_take_the_backup_codes,
        advance_totp_step_only_moves_forward,
        concurrent_totp_steps_are_accepted_once,
        backup_codes_are_used_once_and_count_down,
        concurrent_uses_of_one_backup_code_succeed_once,
        concurrent_regenerations_leave_one_set_of_backup_codes,
        a_code_is_used_once,
        wrong_codes_count_until_the_limit,
        an_expired_code_fails,
        a_newer_code_retires_the_older,
        challenge_codes_and_enrolment_codes_are_kept_apart,
        challenges_are_stored_and_read_back,
        challenge_failures_stop_at_the_limit,
        concurrent_challenge_failures_stop_at_the_limit,
        a_challenge_passes_once_while_live,
        concurrent_passes_of_a_challenge_succeed_once,
        concurrent_uses_of_one_code_succeed_once,
        failures_since_sums_the_users_challenges,
        a_unit_of_work_checks_codes_and_counts_failures_in_its_own_transaction,
        checks_under_the_accounts_lock_never_pass_the_account_limit,
        audit_rows_ride_on_outbox_messages_atomically,
        record_then_list_newest_first_with_every_field,
        list_finds_rows_by_actor_or_subject,
        paging_with_the_cursor_returns_every_row_once,
        revoke_writes_its_outbox_only_when_the_session_exists,
        revoke_all_writes_its_outbox_with_the_revocations,
        remove_email_writes_its_outbox_only_when_removed,
        delete_writes_its_outbox_only_when_the_user_existed,
        audit_rows_survive_the_users_deletion,
        rows_of_an_unknown_user_factor_or_challenge_are_refused,
        find_latest_breaks_a_tie_by_the_higher_id,
        list_live_breaks_ties_by_the_higher_id,
        audit_list_breaks_ties_by_the_higher_id,
        factors_are_listed_oldest_first_ties_by_the_lower_id,
        claim_breaks_ties_by_the_lower_id,
        concurrent_confirmations_issue_backup_codes_once,
        concurrent_removals_of_the_last_two_verified_addresses_leave_one,
        concurrent_removal_and_promotion_of_one_address_never_lose_the_primary,
        concurrent_enrolments_of_one_kind_leave_one_pending_factor,
        concurrent_sign_ups_with_one_address_succeed_once,
        concurrent_additions_of_one_address_succeed_once,
        a_login_racing_the_accounts_deletion_is_refused_or_reported,
        an_organization_is_stored_with_its_owner_and_read_back,
        a_dropped_unit_of_work_stores_no_organization,
        slugs_are_optional_and_unique,
        memberships_are_unique_and_need_an_existing_user,
        lists_are_paged_by_id,
        custom_roles_are_stored_changed_and_deleted,
        an_invitation_is_accepted_once_and_never_after_revocation_or_expiry,
        deleting_an_organization_takes_its_members_roles_and_invitations,
        deleting_a_user_ends_their_memberships,
        a_session_keeps_the_organization_it_is_scoped_to,
        concurrent_demotions_of_two_owners_leave_one,
        an_organizations_audit_trail_lists_its_rows_newest_first,
    ],
    sql: [
        migrations_applied_twice_are_a_no_op,
        failed_sign_up_leaves_no_user_row,
        session_for_an_unknown_user_is_refused,
        prune_deletes_the_refresh_tokens_of_pruned_sessions,
        migration_gives_existing_sessions_their_expiry_as_absolute_end,
        deleting_a_user_cascades_to_emails_sessions_and_tokens,
        deleting_a_user_cascades_to_factors_codes_challenges_and_backup_codes,
        removing_a_factor_deletes_its_codes,
        mfa_changes_for_an_unknown_user_store_nothing,
        probe_answers,
        audit_details_are_stored_as_a_json_object,
        a_refused_change_writes_no_audit_row,
        migration_creates_and_drops_the_audit_table,
    ],
    postgres: [
        claim_skips_rows_another_transaction_has_locked,
        replicas_migrating_at_once_do_not_collide,
        a_statement_that_runs_too_long_is_cancelled,
    ],
}

// ---------------------------------------------------------------- fixtures

/// 2026-01-01T00:00:00.25Z: a fractional second, so ordering of stored
/// timestamps is exercised below the second (microsecond precision is kept).
fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 250_000_000).unwrap()
}

fn user(n: u128, email: &str) -> User {
    User::new(
        UserId::from_uuid(Uuid::from_u128(n)),
        EmailAddress::parse(email).unwrap(),
        DisplayName::parse("Ann Lee").unwrap(),
        PasswordHash::from_phc(format!("$argon2id$v=19$m=19456,t=2,p=1$salt{n}$hash{n}")),
        t0(),
    )
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
    Session::restore(
        SessionId::from_uuid(Uuid::from_u128(0x5e55_0000 + n)),
        user.id(),
        now,
        now,
        expires_at,
        now + TimeDelta::days(90),
        None,
        ClientInfo::new(Some("Mozilla/5.0 (X11; Linux x86_64)"), Some("203.0.113.7".into())),
    )
}

/// A session's stored fields, for spelling out what a test expects storage
/// to hold (the domain type keeps its own private).
#[derive(Clone)]
struct SessionFields {
    id: SessionId,
    user_id: UserId,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    absolute_expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    client: ClientInfo,
}

fn fields(s: &Session) -> SessionFields {
    SessionFields {
        id: s.id(),
        user_id: s.user_id(),
        created_at: s.created_at(),
        last_used_at: s.last_used_at(),
        expires_at: s.expires_at(),
        absolute_expires_at: s.absolute_expires_at(),
        revoked_at: s.revoked_at(),
        client: s.client().clone(),
    }
}

fn stored(f: SessionFields) -> Session {
    Session::restore(
        f.id,
        f.user_id,
        f.created_at,
        f.last_used_at,
        f.expires_at,
        f.absolute_expires_at,
        f.revoked_at,
        f.client,
    )
}

/// A digest tagged by its use, so fixtures of different kinds never collide.
fn digest(tag: u8, n: u128) -> TokenHash {
    let mut bytes = [0; 32];
    bytes[0] = tag;
    bytes[16..].copy_from_slice(&n.to_be_bytes());
    TokenHash::from_bytes(bytes)
}

/// A live verification number `n`, made at `now`, with 5 attempts for 5 days.
fn verification(n: u128, user: UserId, email: &str, purpose: Purpose, now: DateTime<Utc>) -> Verification {
    Verification::issue(
        Uuid::from_u128(0x7e51_0000 + n),
        user,
        EmailAddress::parse(email).unwrap(),
        purpose,
        digest(0x7e, n),
        digest(0xc0, n),
        5,
        now,
        now + TimeDelta::days(5),
    )
}

/// The verification sign-up stores for `user`.
fn first_verification(user: &User) -> Verification {
    verification(
        user.id().as_uuid().as_u128(),
        user.id(),
        user.email().as_str(),
        Purpose::VerifyEmail,
        user.created_at(),
    )
}

/// Outbox message number `n`.
fn message(n: u128, occurred_at: DateTime<Utc>) -> OutboxMessage {
    OutboxMessage {
        id: Uuid::from_u128(0xe0e0_0000 + n),
        event_type: "email.verification_requested".into(),
        payload: format!("payload {n}").into_bytes(),
        occurred_at,
        audit: None,
    }
}

/// Signs `user` up with its first verification and no events.
async fn sign_up(s: &Stores, user: &User) {
    ops::create_user(s, user, &first_verification(user), &[]).await.unwrap();
}

/// Verifies `email` of `user` through a fresh verification number `n`.
async fn verify(s: &Stores, n: u128, user: UserId, email: &str, now: DateTime<Utc>) {
    let v = verification(n, user, email, Purpose::VerifyEmail, now);
    ops::replace(s, &v, &[]).await.unwrap();
    let consumed = ops::consume(s, &v, &Effect::VerifyEmail, &[], now).await.unwrap();
    assert_eq!(consumed, Consumed::Applied { revoked: Vec::new() });
}

/// Far enough ahead that every row is due.
fn far_future() -> DateTime<Utc> {
    t0() + TimeDelta::days(3650)
}

/// The ids of every unsent outbox message. Claims them until [`far_future`],
/// which leaves them claimable by later calls of this function.
async fn pending(s: &Stores) -> Vec<Uuid> {
    s.outbox.claim(10_000, far_future(), far_future()).await.unwrap().into_iter().map(|c| c.message.id).collect()
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn sorted(mut sessions: Vec<Session>) -> Vec<Session> {
    sessions.sort_by_key(|s| s.id());
    sessions
}

/// A signed-up user with one session whose first refresh token is `hash(1)`,
/// valid for 30 days from [`t0`].
async fn user_with_session(s: &Stores) -> (User, Session) {
    let ann = user(1, "ann@example.com");
    sign_up(s, &ann).await;
    let first = token(1, t0(), TimeDelta::days(30));
    let sess = session(1, &ann, t0(), first.expires_at);
    ops::create_session(s, &sess, &first, &[]).await.unwrap();
    (ann, sess)
}

// ------------------------------------------------------------------ users

async fn create_user_then_find_credentials_by_email(s: Stores) {
    let ann = user(1, "Ann@Example.com");
    sign_up(&s, &ann).await;
    sign_up(&s, &user(2, "bob@example.com")).await;

    let found = s.users.find_credentials(&EmailAddress::parse("ANN@example.COM").unwrap()).await.unwrap().unwrap();
    assert_eq!(found.user_id, ann.id());
    assert_eq!(&found.password_hash, ann.password_hash());
}

async fn find_credentials_for_unknown_email_is_none(s: Stores) {
    sign_up(&s, &user(1, "ann@example.com")).await;
    let found = s.users.find_credentials(&EmailAddress::parse("nobody@example.com").unwrap()).await.unwrap();
    assert!(found.is_none());
}

async fn duplicate_email_is_a_conflict(s: Stores) {
    sign_up(&s, &user(1, "ann@example.com")).await;
    let bob = user(2, "ANN@example.com");
    let err = ops::create_user(&s, &bob, &first_verification(&bob), &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // The first account is untouched.
    let found = s.users.find_credentials(&EmailAddress::parse("ann@example.com").unwrap()).await.unwrap().unwrap();
    assert_eq!(found.user_id, user(1, "ann@example.com").id());
}

async fn update_password_hash_replaces_the_stored_hash(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let upgraded = PasswordHash::from_phc("$argon2id$v=19$m=65536,t=3,p=4$new$hash".into());
    s.users.update_password_hash(ann.id(), &upgraded, t0() + TimeDelta::hours(1)).await.unwrap();

    let found = s.users.find_credentials(ann.email()).await.unwrap().unwrap();
    assert_eq!(found.password_hash, upgraded);
}

// --------------------------------------------------------------- rotation

async fn rotating_a_current_token_extends_the_session(s: Stores) {
    let (_, sess) = user_with_session(&s).await;
    let now = t0() + TimeDelta::hours(2) + TimeDelta::microseconds(1);
    let next = token(2, now, TimeDelta::days(30));

    let rotation = ops::rotate(&s, &hash(1), &next, &ClientInfo::default(), now).await.unwrap();

    let expected = stored(SessionFields { last_used_at: now, expires_at: next.expires_at, ..fields(&sess.clone()) });
    assert_eq!(rotation, Rotation::Rotated(expected.clone()));
    // The stored session changed too, and both tokens lead to it.
    assert_eq!(s.sessions.find_by_refresh_token(&hash(2)).await.unwrap(), Some(expected.clone()));
    assert_eq!(s.sessions.find_by_refresh_token(&hash(1)).await.unwrap(), Some(expected));
    // The new token rotates in turn.
    let later = now + TimeDelta::hours(1);
    let third =
        ops::rotate(&s, &hash(2), &token(3, later, TimeDelta::days(30)), &ClientInfo::default(), later).await.unwrap();
    assert!(matches!(third, Rotation::Rotated(ref s) if s.last_used_at() == later), "{third:?}");
}

async fn presenting_a_rotated_token_again_is_reuse(s: Stores) {
    let (_, sess) = user_with_session(&s).await;
    let now = t0() + TimeDelta::minutes(5);
    let first =
        ops::rotate(&s, &hash(1), &token(2, now, TimeDelta::days(30)), &ClientInfo::default(), now).await.unwrap();
    assert!(matches!(first, Rotation::Rotated(_)), "{first:?}");

    let again =
        ops::rotate(&s, &hash(1), &token(3, now, TimeDelta::days(30)), &ClientInfo::default(), now).await.unwrap();
    assert_eq!(again, Rotation::Reused { session_id: sess.id() });
    // Nothing was stored for the refused attempt.
    assert_eq!(s.sessions.find_by_refresh_token(&hash(3)).await.unwrap(), None);
}

async fn never_issued_token_is_unknown(s: Stores) {
    user_with_session(&s).await;
    let now = t0() + TimeDelta::minutes(5);
    let rotation =
        ops::rotate(&s, &hash(99), &token(2, now, TimeDelta::days(30)), &ClientInfo::default(), now).await.unwrap();
    assert_eq!(rotation, Rotation::Unknown);
    assert_eq!(s.sessions.find_by_refresh_token(&hash(2)).await.unwrap(), None);
}

async fn token_at_its_expiry_is_expired(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    // The token expires half a second in; the session lives on for a day.
    let short = token(1, t0(), TimeDelta::milliseconds(500));
    ops::create_session(&s, &session(1, &ann, t0(), t0() + TimeDelta::days(1)), &short, &[]).await.unwrap();

    let at_expiry = short.expires_at;
    let next = token(2, at_expiry, TimeDelta::days(30));
    assert_eq!(ops::rotate(&s, &hash(1), &next, &ClientInfo::default(), at_expiry).await.unwrap(), Rotation::Expired);
    let later = at_expiry + TimeDelta::days(2);
    assert_eq!(ops::rotate(&s, &hash(1), &next, &ClientInfo::default(), later).await.unwrap(), Rotation::Expired);

    // One microsecond earlier it was still good.
    let just_before = at_expiry - TimeDelta::microseconds(1);
    let rotation = ops::rotate(&s, &hash(1), &next, &ClientInfo::default(), just_before).await.unwrap();
    assert!(matches!(rotation, Rotation::Rotated(_)), "{rotation:?}");
}

async fn rotation_on_a_revoked_session_is_session_ended(s: Stores) {
    let (_, sess) = user_with_session(&s).await;
    let now = t0() + TimeDelta::minutes(5);
    ops::revoke(&s, sess.id(), RevokeReason::Logout, &[], now).await.unwrap();

    let next = token(2, now, TimeDelta::days(30));
    assert_eq!(ops::rotate(&s, &hash(1), &next, &ClientInfo::default(), now).await.unwrap(), Rotation::SessionEnded);
    // Nothing changed: the token was not retired (so it is not "reused") and
    // no new token was stored.
    assert_eq!(ops::rotate(&s, &hash(1), &next, &ClientInfo::default(), now).await.unwrap(), Rotation::SessionEnded);
    assert_eq!(s.sessions.find_by_refresh_token(&hash(2)).await.unwrap(), None);
    let stored = s.sessions.find_by_refresh_token(&hash(1)).await.unwrap().unwrap();
    assert_eq!(stored.last_used_at(), sess.last_used_at());
}

async fn rotation_on_an_expired_session_is_session_ended(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    // The token outlives its session (say the session was cut short).
    let long = token(1, t0(), TimeDelta::days(30));
    ops::create_session(&s, &session(1, &ann, t0(), t0() + TimeDelta::hours(1)), &long, &[]).await.unwrap();

    let now = t0() + TimeDelta::hours(1);
    let rotation =
        ops::rotate(&s, &hash(1), &token(2, now, TimeDelta::days(30)), &ClientInfo::default(), now).await.unwrap();
    assert_eq!(rotation, Rotation::SessionEnded);
}

// ------------------------------------------------------------- revocation

async fn revoke_keeps_the_first_revocation_time(s: Stores) {
    let (_, sess) = user_with_session(&s).await;
    let first = t0() + TimeDelta::minutes(5);
    let revoked = ops::revoke(&s, sess.id(), RevokeReason::Logout, &[], first).await.unwrap();
    assert_eq!(revoked, Some(stored(SessionFields { revoked_at: Some(first), ..fields(&sess.clone()) })));

    let second = first + TimeDelta::minutes(5);
    let again = ops::revoke(&s, sess.id(), RevokeReason::RefreshTokenReuse, &[], second).await.unwrap().unwrap();
    assert_eq!(again.revoked_at(), Some(first));
}

async fn revoke_of_an_unknown_session_is_none(s: Stores) {
    user_with_session(&s).await;
    let unknown = SessionId::from_uuid(Uuid::from_u128(0xdead));
    assert_eq!(ops::revoke(&s, unknown, RevokeReason::Logout, &[], t0()).await.unwrap(), None);
}

async fn revoked_since_lists_sessions_revoked_at_or_after(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let expires = t0() + TimeDelta::days(30);
    let sessions: Vec<Session> = (1..=4).map(|n| session(n, &ann, t0(), expires)).collect();
    for (n, sess) in (1u8..).zip(&sessions) {
        ops::create_session(&s, sess, &token(n, t0(), TimeDelta::days(30)), &[]).await.unwrap();
    }
    let cut = t0() + TimeDelta::minutes(10);
    ops::revoke(&s, sessions[0].id(), RevokeReason::Logout, &[], cut - TimeDelta::microseconds(1)).await.unwrap();
    ops::revoke(&s, sessions[1].id(), RevokeReason::Logout, &[], cut).await.unwrap();
    ops::revoke(&s, sessions[2].id(), RevokeReason::RefreshTokenReuse, &[], cut + TimeDelta::hours(1)).await.unwrap();
    // sessions[3] is never revoked.

    let mut ids: Vec<SessionId> = s.sessions.revoked_since(cut).await.unwrap().iter().map(|s| s.id()).collect();
    ids.sort();
    assert_eq!(ids, vec![sessions[1].id(), sessions[2].id()]);
    assert!(s.sessions.revoked_since(cut + TimeDelta::days(1)).await.unwrap().is_empty());
}

async fn find_by_refresh_token_finds_the_session_of_a_rotated_token(s: Stores) {
    let (_, sess) = user_with_session(&s).await;
    let now = t0() + TimeDelta::minutes(1);
    ops::rotate(&s, &hash(1), &token(2, now, TimeDelta::days(30)), &ClientInfo::default(), now).await.unwrap();
    ops::revoke(&s, sess.id(), RevokeReason::RefreshTokenReuse, &[], now).await.unwrap();

    let found = s.sessions.find_by_refresh_token(&hash(1)).await.unwrap().unwrap();
    assert_eq!(found.id(), sess.id());
    assert_eq!(found.revoked_at(), Some(now));
    assert_eq!(s.sessions.find_by_refresh_token(&hash(77)).await.unwrap(), None);
}

// ---------------------------------------------------- session lifetimes

fn device(ip: Option<&str>, user_agent: Option<&str>) -> ClientInfo {
    ClientInfo { ip: ip.map(str::to_owned), user_agent: user_agent.map(str::to_owned) }
}

async fn create_session_writes_its_outbox_atomically(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let sess = session(1, &ann, t0(), t0() + TimeDelta::days(30));
    ops::create_session(&s, &sess, &token(1, t0(), TimeDelta::days(30)), &[message(1, t0())]).await.unwrap();
    assert_eq!(s.sessions.get(sess.id()).await.unwrap(), Some(sess));
    assert_eq!(pending(&s).await, vec![message(1, t0()).id]);

    // A refused session (no such user) writes neither itself nor its event.
    let ghost = user(9, "ghost@example.com");
    let refused = session(2, &ghost, t0(), t0() + TimeDelta::days(30));
    let result = ops::create_session(&s, &refused, &token(2, t0(), TimeDelta::days(30)), &[message(2, t0())]).await;
    assert!(matches!(result, Err(StoreError::Gone(_))), "the foreign key refuses it: {result:?}");
    assert_eq!(s.sessions.get(refused.id()).await.unwrap(), None);
    assert_eq!(s.sessions.find_by_refresh_token(&hash(2)).await.unwrap(), None);
    assert_eq!(pending(&s).await, vec![message(1, t0()).id]);
}

async fn rotation_never_extends_a_session_past_its_absolute_end(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let end = t0() + TimeDelta::days(40);
    let sess = stored(SessionFields {
        absolute_expires_at: end,
        ..fields(&session(1, &ann, t0(), t0() + TimeDelta::days(30)))
    });
    ops::create_session(&s, &sess, &token(1, t0(), TimeDelta::days(30)), &[]).await.unwrap();

    // Early on, the new token's own expiry comes first and is kept.
    let early = t0() + TimeDelta::days(1);
    let next = token(2, early, TimeDelta::days(30));
    let rotation = ops::rotate(&s, &hash(1), &next, &ClientInfo::default(), early).await.unwrap();
    let expected = stored(SessionFields { last_used_at: early, expires_at: next.expires_at, ..fields(&sess.clone()) });
    assert_eq!(rotation, Rotation::Rotated(expected));

    // Later the asked-for expiry (day 50) is cut to the absolute end (day 40).
    let now = t0() + TimeDelta::days(20);
    let next = token(3, now, TimeDelta::days(30));
    let rotation = ops::rotate(&s, &hash(2), &next, &ClientInfo::default(), now).await.unwrap();
    let expected = stored(SessionFields { last_used_at: now, expires_at: end, ..fields(&sess.clone()) });
    assert_eq!(rotation, Rotation::Rotated(expected.clone()));
    assert_eq!(s.sessions.get(sess.id()).await.unwrap(), Some(expected));

    // The new token was capped as well: it works until the end and not at it.
    let before_end = end - TimeDelta::microseconds(1);
    let last = token(4, before_end, TimeDelta::days(30));
    let rotation = ops::rotate(&s, &hash(3), &last, &ClientInfo::default(), before_end).await.unwrap();
    assert!(matches!(rotation, Rotation::Rotated(ref r) if r.expires_at() == end), "{rotation:?}");
    let at_end = token(5, end, TimeDelta::days(30));
    let rotation = ops::rotate(&s, &hash(4), &at_end, &ClientInfo::default(), end).await.unwrap();
    assert_eq!(rotation, Rotation::Expired);
    assert_eq!(s.sessions.find_by_refresh_token(&hash(5)).await.unwrap(), None);
}

async fn rotation_records_the_last_use_and_the_clients_address_and_agent(s: Stores) {
    let (_, sess) = user_with_session(&s).await;
    let rotate = |n: u8, at: DateTime<Utc>, client: ClientInfo| {
        let s = s.clone();
        async move {
            let next = token(n + 1, at, TimeDelta::days(30));
            match ops::rotate(&s, &hash(n), &next, &client, at).await.unwrap() {
                Rotation::Rotated(session) => session,
                other => panic!("rotation {n}: {other:?}"),
            }
        }
    };

    // A new address; no user agent sent: the stored one stays.
    let first = t0() + TimeDelta::hours(1);
    let rotated = rotate(1, first, device(Some("198.51.100.4"), None)).await;
    let expected = stored(SessionFields {
        last_used_at: first,
        expires_at: first + TimeDelta::days(30),
        client: device(Some("198.51.100.4"), sess.client().user_agent.as_deref()),
        ..fields(&sess.clone())
    });
    assert_eq!(rotated, expected);
    assert_eq!(s.sessions.get(sess.id()).await.unwrap(), Some(expected.clone()));

    // A new user agent; no address: the stored one stays.
    let second = first + TimeDelta::hours(1);
    let rotated = rotate(2, second, device(None, Some("Gatehouse-CLI/2.0"))).await;
    let expected = stored(SessionFields {
        last_used_at: second,
        expires_at: second + TimeDelta::days(30),
        client: device(Some("198.51.100.4"), Some("Gatehouse-CLI/2.0")),
        ..fields(&sess.clone())
    });
    assert_eq!(rotated, expected);
    assert_eq!(s.sessions.find_by_refresh_token(&hash(3)).await.unwrap(), Some(expected.clone()));

    // Nothing sent: only the time moves.
    let third = second + TimeDelta::hours(1);
    let rotated = rotate(3, third, ClientInfo::default()).await;
    assert_eq!(
        rotated,
        stored(SessionFields { last_used_at: third, expires_at: third + TimeDelta::days(30), ..fields(&expected) })
    );
    assert_eq!(s.sessions.get(sess.id()).await.unwrap(), Some(rotated));
}

async fn get_returns_a_session_in_any_state(s: Stores) {
    let (ann, live) = user_with_session(&s).await;
    assert_eq!(s.sessions.get(live.id()).await.unwrap(), Some(live.clone()));

    let expired = session(2, &ann, t0(), t0() + TimeDelta::hours(1));
    ops::create_session(&s, &expired, &token(2, t0(), TimeDelta::hours(1)), &[]).await.unwrap();
    assert_eq!(s.sessions.get(expired.id()).await.unwrap(), Some(expired));

    let now = t0() + TimeDelta::days(2);
    ops::revoke(&s, live.id(), RevokeReason::RevokedByUser, &[], now).await.unwrap();
    assert_eq!(
        s.sessions.get(live.id()).await.unwrap(),
        Some(stored(SessionFields { revoked_at: Some(now), ..fields(&live) }))
    );

    assert_eq!(s.sessions.get(SessionId::from_uuid(Uuid::from_u128(0xdead))).await.unwrap(), None);
}

async fn list_live_lists_the_users_unrevoked_unexpired_sessions_newest_first(s: Stores) {
    let (ann, oldest) = user_with_session(&s).await;
    let now = t0() + TimeDelta::hours(2);
    let expires = t0() + TimeDelta::days(30);
    // Created one microsecond and one hour after the first.
    let newer = session(2, &ann, t0() + TimeDelta::microseconds(1), expires);
    let newest = session(3, &ann, t0() + TimeDelta::hours(1), expires);
    // Revoked, expired before now, and expiring exactly now.
    let revoked = session(4, &ann, t0() + TimeDelta::hours(1), expires);
    let expired = session(5, &ann, t0() + TimeDelta::hours(1), now - TimeDelta::microseconds(1));
    let ending = session(6, &ann, t0() + TimeDelta::hours(1), now);
    for (n, sess) in (2u8..).zip([&newer, &newest, &revoked, &expired, &ending]) {
        ops::create_session(&s, sess, &token(n, sess.created_at(), TimeDelta::days(30)), &[]).await.unwrap();
    }
    ops::revoke(&s, revoked.id(), RevokeReason::Logout, &[], now - TimeDelta::minutes(1)).await.unwrap();
    // Another user's live session.
    let bob = user(2, "bob@example.com");
    sign_up(&s, &bob).await;
    let bobs = session(7, &bob, t0() + TimeDelta::hours(1), expires);
    ops::create_session(&s, &bobs, &token(7, t0(), TimeDelta::days(30)), &[]).await.unwrap();

    assert_eq!(s.sessions.list_live(ann.id(), now).await.unwrap(), vec![newest.clone(), newer, oldest]);
    assert_eq!(s.sessions.list_live(bob.id(), now).await.unwrap(), vec![bobs]);
    assert_eq!(s.sessions.list_live(ann.id(), expires).await.unwrap(), Vec::<Session>::new());
    assert!(s.sessions.list_live(UserId::from_uuid(Uuid::from_u128(404)), now).await.unwrap().is_empty());
}

async fn seen_device_matches_address_and_agent_of_any_session(s: Stores) {
    let (ann, first) = user_with_session(&s).await;
    let (ip, ua) = (first.client().ip.clone().unwrap(), first.client().user_agent.clone().unwrap());
    // That session has ended; it still counts.
    ops::revoke(&s, first.id(), RevokeReason::Logout, &[], t0()).await.unwrap();
    // An expired session without an address.
    let bare = stored(SessionFields {
        client: device(None, Some("Gatehouse-CLI/2.0")),
        ..fields(&session(2, &ann, t0(), t0() + TimeDelta::hours(1)))
    });
    ops::create_session(&s, &bare, &token(2, t0(), TimeDelta::hours(1)), &[]).await.unwrap();
    let bob = user(2, "bob@example.com");
    sign_up(&s, &bob).await;
    let later = t0() + TimeDelta::days(3);

    let seen = |user: UserId, client: ClientInfo| {
        let sessions = Arc::clone(&s.sessions);
        async move { sessions.seen_device(user, &client).await.unwrap() }
    };
    assert!(seen(ann.id(), device(Some(&ip), Some(&ua))).await);
    assert!(!seen(ann.id(), device(Some("198.51.100.4"), Some(&ua))).await, "another address");
    assert!(!seen(ann.id(), device(Some(&ip), Some("Gatehouse-CLI/2.0"))).await, "another agent");
    assert!(!seen(ann.id(), device(Some(&ip), None)).await, "no agent");
    assert!(!seen(bob.id(), device(Some(&ip), Some(&ua))).await, "another user's device");
    // A missing value matches a missing value, and only that.
    assert!(seen(ann.id(), device(None, Some("Gatehouse-CLI/2.0"))).await);
    assert!(!seen(ann.id(), device(None, None)).await);
    assert!(!seen(ann.id(), device(None, Some(&ua))).await);

    // Bob's first session makes his device known to him alone.
    let bobs = stored(SessionFields {
        client: device(Some(&ip), Some(&ua)),
        ..fields(&session(3, &bob, later, later + TimeDelta::days(30)))
    });
    ops::create_session(&s, &bobs, &token(3, later, TimeDelta::days(30)), &[]).await.unwrap();
    assert!(seen(bob.id(), device(Some(&ip), Some(&ua))).await);
    assert!(!seen(bob.id(), device(None, Some("Gatehouse-CLI/2.0"))).await);
}

async fn revoke_all_revokes_every_session_but_the_kept_one(s: Stores) {
    let (ann, kept) = user_with_session(&s).await;
    let expires = t0() + TimeDelta::days(30);
    let others: Vec<Session> = (2..=3).map(|n| session(n, &ann, t0(), expires)).collect();
    for (n, sess) in (2u8..).zip(&others) {
        ops::create_session(&s, sess, &token(n, t0(), TimeDelta::days(30)), &[]).await.unwrap();
    }
    let earlier = session(4, &ann, t0(), expires);
    ops::create_session(&s, &earlier, &token(4, t0(), TimeDelta::days(30)), &[]).await.unwrap();
    let logout = t0() + TimeDelta::minutes(1);
    ops::revoke(&s, earlier.id(), RevokeReason::Logout, &[], logout).await.unwrap();
    let bob = user(2, "bob@example.com");
    sign_up(&s, &bob).await;
    let bobs = session(5, &bob, t0(), expires);
    ops::create_session(&s, &bobs, &token(5, t0(), TimeDelta::days(30)), &[]).await.unwrap();

    let now = t0() + TimeDelta::hours(1);
    let revoked = ops::revoke_all(&s, ann.id(), Some(kept.id()), RevokeReason::RevokedByUser, &[], now).await.unwrap();
    let expected: Vec<Session> =
        others.iter().map(|o| stored(SessionFields { revoked_at: Some(now), ..fields(&o.clone()) })).collect();
    assert_eq!(sorted(revoked), sorted(expected.clone()));
    assert_eq!(s.sessions.get(kept.id()).await.unwrap(), Some(kept.clone()));
    assert_eq!(s.sessions.get(others[0].id()).await.unwrap(), Some(expected[0].clone()));
    assert_eq!(s.sessions.get(earlier.id()).await.unwrap().unwrap().revoked_at(), Some(logout));
    assert_eq!(s.sessions.get(bobs.id()).await.unwrap(), Some(bobs));
    assert_eq!(s.sessions.list_live(ann.id(), now).await.unwrap(), vec![kept.clone()]);

    // Without a session to keep, the last live one goes too; then none is left.
    let later = now + TimeDelta::hours(1);
    let revoked = ops::revoke_all(&s, ann.id(), None, RevokeReason::RevokedByUser, &[], later).await.unwrap();
    assert_eq!(revoked, vec![stored(SessionFields { revoked_at: Some(later), ..fields(&kept) })]);
    assert!(ops::revoke_all(&s, ann.id(), None, RevokeReason::RevokedByUser, &[], later).await.unwrap().is_empty());
    let nobody = UserId::from_uuid(Uuid::from_u128(404));
    assert!(ops::revoke_all(&s, nobody, None, RevokeReason::RevokedByUser, &[], later).await.unwrap().is_empty());
}

async fn prune_deletes_sessions_that_ended_before_the_cut(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let bob = user(2, "bob@example.com");
    sign_up(&s, &bob).await;
    let cut = t0() + TimeDelta::days(10);
    let month = t0() + TimeDelta::days(30);
    let sessions = [
        // (session, revoked at, pruned)
        (session(1, &ann, t0(), cut - TimeDelta::microseconds(1)), None, true),
        (session(2, &ann, t0(), cut), None, false),
        (session(3, &ann, t0(), month), Some(cut - TimeDelta::microseconds(1)), true),
        (session(4, &ann, t0(), month), Some(cut), false),
        (session(5, &ann, t0(), month), None, false),
        (session(6, &bob, t0(), t0() + TimeDelta::days(1)), None, true),
        // Revoked long ago, and long expired too: counted once.
        (session(7, &bob, t0(), t0() + TimeDelta::days(1)), Some(t0()), true),
    ];
    for (n, (sess, _, _)) in (1u8..).zip(&sessions) {
        ops::create_session(&s, sess, &token(n, t0(), TimeDelta::days(30)), &[]).await.unwrap();
    }
    // Session 3 (pruned) has a retired token too.
    let rotated_at = t0() + TimeDelta::hours(1);
    let next = token(11, rotated_at, TimeDelta::days(30));
    let rotation = ops::rotate(&s, &hash(3), &next, &ClientInfo::default(), rotated_at).await.unwrap();
    assert!(matches!(rotation, Rotation::Rotated(_)), "{rotation:?}");
    for (sess, revoked_at, _) in &sessions {
        if let Some(at) = revoked_at {
            ops::revoke(&s, sess.id(), RevokeReason::Logout, &[], *at).await.unwrap();
        }
    }

    assert_eq!(s.sessions.prune(cut).await.unwrap(), 4);

    for (n, (sess, _, pruned)) in (1u8..).zip(&sessions) {
        assert_eq!(s.sessions.get(sess.id()).await.unwrap().is_none(), *pruned, "session {n}");
        assert_eq!(s.sessions.find_by_refresh_token(&hash(n)).await.unwrap().is_none(), *pruned, "token {n}");
    }
    assert_eq!(s.sessions.find_by_refresh_token(&hash(11)).await.unwrap(), None);
    assert_eq!(s.sessions.prune(cut).await.unwrap(), 0);
}

// ------------------------------------------------------------ concurrency

async fn concurrent_rotations_of_one_token_rotate_exactly_once(s: Stores) {
    const RACERS: u8 = 20;
    let (_, sess) = user_with_session(&s).await;
    let now = t0() + TimeDelta::minutes(1);
    let start = Arc::new(tokio::sync::Barrier::new(usize::from(RACERS)));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let s = s.clone();
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                ops::rotate(&s, &hash(1), &token(100 + i, now, TimeDelta::days(30)), &ClientInfo::default(), now).await
            })
        })
        .collect();

    let mut rotated = Vec::new();
    for (i, racer) in (0u8..).zip(racers) {
        match racer.await.unwrap() {
            Ok(Rotation::Rotated(_)) => rotated.push(i),
            Ok(Rotation::Reused { session_id }) => assert_eq!(session_id, sess.id()),
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

// ------------------------------------------------------- accounts (users)

async fn create_writes_the_verification_and_outbox_atomically(s: Stores) {
    let ann = user(1, "ann@example.com");
    let v = first_verification(&ann);
    ops::create_user(&s, &ann, &v, &[message(1, t0())]).await.unwrap();
    assert_eq!(s.verifications.find_by_token(Purpose::VerifyEmail, v.token_hash()).await.unwrap(), Some(v));

    // A refused sign-up writes neither its verification nor its event.
    let bob = user(2, "ANN@example.com");
    let refused = first_verification(&bob);
    let err = ops::create_user(&s, &bob, &refused, &[message(2, t0())]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.verifications.find_by_token(Purpose::VerifyEmail, refused.token_hash()).await.unwrap(), None);
    assert_eq!(s.users.password_hash(bob.id()).await.unwrap(), None);

    let claimed = s.outbox.claim(10, t0(), t0() + TimeDelta::minutes(1)).await.unwrap();
    assert_eq!(claimed, vec![ClaimedMessage { message: message(1, t0()), attempts: 0 }]);
}

async fn find_credentials_reports_whether_that_email_is_verified(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let found = s.users.find_credentials(ann.email()).await.unwrap().unwrap();
    assert!(!found.email_verified);

    let later = t0() + TimeDelta::minutes(1);
    let work = verification(10, ann.id(), "ann@work.example", Purpose::VerifyEmail, later);
    ops::add_email(&s, ann.id(), work.email(), &work, &[], later).await.unwrap();
    let found = s.users.find_credentials(work.email()).await.unwrap().unwrap();
    assert_eq!(
        (found.user_id, found.password_hash, found.email_verified),
        (ann.id(), ann.password_hash().clone(), false)
    );

    ops::consume(&s, &work, &Effect::VerifyEmail, &[], later).await.unwrap();
    assert!(s.users.find_credentials(work.email()).await.unwrap().unwrap().email_verified);
    // Each address answers for itself.
    assert!(!s.users.find_credentials(ann.email()).await.unwrap().unwrap().email_verified);
}

async fn get_lists_emails_primary_first_then_by_creation(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    // Added out of alphabetical order, one microsecond apart.
    let (b_at, c_at) = (t0() + TimeDelta::microseconds(1), t0() + TimeDelta::microseconds(2));
    let b = verification(10, ann.id(), "zed@example.com", Purpose::VerifyEmail, b_at);
    let c = verification(11, ann.id(), "abe@example.com", Purpose::VerifyEmail, c_at);
    ops::add_email(&s, ann.id(), b.email(), &b, &[], b_at).await.unwrap();
    ops::add_email(&s, ann.id(), c.email(), &c, &[], c_at).await.unwrap();

    let account = s.users.get(ann.id()).await.unwrap().unwrap();
    assert_eq!((account.id(), account.display_name()), (ann.id(), ann.display_name()));
    assert_eq!((account.created_at(), account.updated_at()), (t0(), t0()));
    let listed: Vec<_> =
        account.emails().iter().map(|e| (e.email.as_str(), e.primary, e.verified_at, e.created_at)).collect();
    assert_eq!(
        listed,
        vec![
            ("ann@example.com", true, None, t0()),
            ("zed@example.com", false, None, b_at),
            ("abe@example.com", false, None, c_at)
        ]
    );

    // A new primary moves to the front; the rest keep their creation order.
    let now = t0() + TimeDelta::hours(1);
    verify(&s, 20, ann.id(), "abe@example.com", now).await;
    assert_eq!(ops::set_primary_email(&s, ann.id(), c.email(), &[], now).await.unwrap(), PrimaryChange::Changed);
    let account = s.users.get(ann.id()).await.unwrap().unwrap();
    let order: Vec<_> = account.emails().iter().map(|e| (e.email.as_str(), e.primary)).collect();
    assert_eq!(order, vec![("abe@example.com", true), ("ann@example.com", false), ("zed@example.com", false)]);
    assert_eq!(account.primary_email().map(|e| e.verified_at), Some(Some(now)));

    assert_eq!(s.users.get(UserId::from_uuid(Uuid::from_u128(404))).await.unwrap(), None);
}

async fn update_display_name_changes_the_name(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let now = t0() + TimeDelta::hours(1);
    let name = DisplayName::parse("Ann Lee-Smith").unwrap();
    assert!(s.users.update_display_name(ann.id(), &name, now).await.unwrap());
    let account = s.users.get(ann.id()).await.unwrap().unwrap();
    assert_eq!((account.display_name(), account.updated_at(), account.created_at()), (&name, now, t0()));

    let nobody = UserId::from_uuid(Uuid::from_u128(404));
    assert!(!s.users.update_display_name(nobody, &name, now).await.unwrap());
}

async fn password_hash_reads_the_stored_hash(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    assert_eq!(s.users.password_hash(ann.id()).await.unwrap(), Some(ann.password_hash().clone()));
    assert_eq!(s.users.password_hash(UserId::from_uuid(Uuid::from_u128(404))).await.unwrap(), None);
}

async fn change_password_revokes_every_session_but_the_kept_one(s: Stores) {
    let (ann, kept) = user_with_session(&s).await;
    let expires = t0() + TimeDelta::days(30);
    let others: Vec<Session> = (2..=3).map(|n| session(n, &ann, t0(), expires)).collect();
    for (n, sess) in (2u8..).zip(&others) {
        ops::create_session(&s, sess, &token(n, t0(), TimeDelta::days(30)), &[]).await.unwrap();
    }
    let earlier = session(4, &ann, t0(), expires);
    ops::create_session(&s, &earlier, &token(4, t0(), TimeDelta::days(30)), &[]).await.unwrap();
    let logout = t0() + TimeDelta::minutes(1);
    ops::revoke(&s, earlier.id(), RevokeReason::Logout, &[], logout).await.unwrap();
    // Another user's session is not touched.
    let bob = user(2, "bob@example.com");
    sign_up(&s, &bob).await;
    let bobs = session(5, &bob, t0(), expires);
    ops::create_session(&s, &bobs, &token(5, t0(), TimeDelta::days(30)), &[]).await.unwrap();

    let now = t0() + TimeDelta::hours(1);
    let new_hash = PasswordHash::from_phc("$argon2id$v=19$m=19456,t=2,p=1$new$new".into());
    let revoked =
        ops::change_password(&s, ann.id(), &new_hash, Some(kept.id()), &[message(1, now)], now).await.unwrap();

    let expected: Vec<Session> =
        others.iter().map(|o| stored(SessionFields { revoked_at: Some(now), ..fields(&o.clone()) })).collect();
    assert_eq!(sorted(revoked), sorted(expected));
    assert_eq!(s.users.password_hash(ann.id()).await.unwrap(), Some(new_hash));
    assert_eq!(s.sessions.find_by_refresh_token(&hash(1)).await.unwrap(), Some(kept));
    assert_eq!(s.sessions.find_by_refresh_token(&hash(4)).await.unwrap().unwrap().revoked_at(), Some(logout));
    assert_eq!(s.sessions.find_by_refresh_token(&hash(5)).await.unwrap(), Some(bobs));
    assert_eq!(pending(&s).await, vec![message(1, now).id]);

    // Without a session to keep, the last live one goes too.
    let later = now + TimeDelta::hours(1);
    let revoked = ops::change_password(&s, ann.id(), ann.password_hash(), None, &[], later).await.unwrap();
    assert_eq!(
        revoked.iter().map(|r| (r.id(), r.revoked_at())).collect::<Vec<_>>(),
        vec![(session(1, &ann, t0(), expires).id(), Some(later))]
    );
}

async fn change_password_of_an_unknown_user_changes_nothing(s: Stores) {
    sign_up(&s, &user(1, "ann@example.com")).await;
    let nobody = UserId::from_uuid(Uuid::from_u128(404));
    let hash = PasswordHash::from_phc("$argon2id$x".into());
    let revoked = ops::change_password(&s, nobody, &hash, None, &[message(1, t0())], t0()).await.unwrap();
    assert!(revoked.is_empty());
    assert!(pending(&s).await.is_empty());
}

async fn add_email_is_a_conflict_for_any_accounts_address(s: Stores) {
    let ann = user(1, "ann@example.com");
    let bob = user(2, "bob@example.com");
    sign_up(&s, &ann).await;
    sign_up(&s, &bob).await;
    let now = t0() + TimeDelta::minutes(1);
    for (n, taken) in [(10, "BOB@example.com"), (11, "ann@example.com")] {
        let v = verification(n, ann.id(), taken, Purpose::VerifyEmail, now);
        let err = ops::add_email(&s, ann.id(), v.email(), &v, &[message(n, now)], now).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{taken}: {err:?}");
        assert_eq!(s.verifications.find_by_token(Purpose::VerifyEmail, v.token_hash()).await.unwrap(), None);
    }
    assert!(pending(&s).await.is_empty());
    assert_eq!(s.users.get(ann.id()).await.unwrap().unwrap().emails().len(), 1);
    assert_eq!(s.users.find_credentials(bob.email()).await.unwrap().unwrap().user_id, bob.id());

    // A free address is added, unverified, with its verification and event.
    let v = verification(12, ann.id(), "ann@work.example", Purpose::VerifyEmail, now);
    ops::add_email(&s, ann.id(), v.email(), &v, &[message(12, now)], now).await.unwrap();
    assert_eq!(s.verifications.find_latest(Purpose::VerifyEmail, v.email()).await.unwrap(), Some(v.clone()));
    assert_eq!(pending(&s).await, vec![message(12, now).id]);
    let added = s.users.get(ann.id()).await.unwrap().unwrap().emails().last().cloned().unwrap();
    assert_eq!(
        (added.email, added.primary, added.verified_at, added.created_at),
        (v.email().clone(), false, None, now)
    );
}

/// An address another account added and never verified proves nothing,
/// so it cannot keep its owner out; a primary or verified one keeps its
/// account (OWASP ASVS 5.0 V6.3.8: no squatting on others' addresses).
async fn only_an_added_unverified_address_is_released(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let now = t0() + TimeDelta::minutes(1);
    for (n, address) in [(10, "ann@work.example"), (11, "ann@home.example")] {
        let v = verification(n, ann.id(), address, Purpose::VerifyEmail, now);
        ops::add_email(&s, ann.id(), v.email(), &v, &[], now).await.unwrap();
    }
    verify(&s, 20, ann.id(), "ann@home.example", now).await;
    let release = |address: &'static str| {
        let s = s.clone();
        async move {
            let uow = s.uow.begin().await.unwrap();
            let released = uow.accounts().release_unverified_claim(&email(address)).await.unwrap();
            uow.commit().await.unwrap();
            released
        }
    };
    for kept in ["ann@example.com", "ann@home.example", "nobody@example.com"] {
        assert_eq!(release(kept).await, None, "{kept}");
    }
    assert_eq!(release("ann@work.example").await, Some(ann.id()));
    let left: Vec<String> =
        s.users.get(ann.id()).await.unwrap().unwrap().emails().iter().map(|e| e.email.to_string()).collect();
    assert_eq!(left, ["ann@example.com", "ann@home.example"]);
    assert!(s.users.find_credentials(&email("ann@work.example")).await.unwrap().is_none());
}

async fn remove_email_outcomes(s: Stores) {
    let ann = user(1, "ann@example.com");
    let bob = user(2, "bob@example.com");
    sign_up(&s, &ann).await;
    sign_up(&s, &bob).await;
    let now = t0() + TimeDelta::minutes(1);
    for (n, address) in [(10, "ann@work.example"), (11, "ann@home.example")] {
        let v = verification(n, ann.id(), address, Purpose::VerifyEmail, now);
        ops::add_email(&s, ann.id(), v.email(), &v, &[], now).await.unwrap();
    }
    // Only ann@work.example is verified; the primary is not.
    verify(&s, 20, ann.id(), "ann@work.example", now).await;

    let ann_id = ann.id();
    let remove = |address: &'static str| {
        let s = s.clone();
        async move { ops::remove_email(&s, ann_id, &email(address), &[], now).await.unwrap() }
    };
    assert_eq!(remove("nobody@example.com").await, EmailRemoval::NotFound);
    assert_eq!(remove("bob@example.com").await, EmailRemoval::NotFound);
    assert_eq!(remove("ann@example.com").await, EmailRemoval::IsPrimary);
    assert_eq!(remove("ann@work.example").await, EmailRemoval::LastVerified);
    assert_eq!(remove("ann@home.example").await, EmailRemoval::Removed);
    assert_eq!(remove("ann@home.example").await, EmailRemoval::NotFound);
    let nobody = UserId::from_uuid(Uuid::from_u128(404));
    assert_eq!(
        ops::remove_email(&s, nobody, &email("ann@work.example"), &[], now).await.unwrap(),
        EmailRemoval::NotFound
    );

    // With a second verified address, the first may go.
    verify(&s, 21, ann.id(), "ann@example.com", now).await;
    assert_eq!(remove("ann@work.example").await, EmailRemoval::Removed);
    let left: Vec<_> =
        s.users.get(ann.id()).await.unwrap().unwrap().emails().iter().map(|e| e.email.as_str().to_owned()).collect();
    assert_eq!(left, vec!["ann@example.com"]);
    assert!(s.users.find_credentials(&email("ann@work.example")).await.unwrap().is_none());
    assert!(s.users.find_credentials(bob.email()).await.unwrap().is_some());
}

async fn set_primary_email_outcomes(s: Stores) {
    let ann = user(1, "ann@example.com");
    let bob = user(2, "bob@example.com");
    sign_up(&s, &ann).await;
    sign_up(&s, &bob).await;
    verify(&s, 20, bob.id(), "bob@example.com", t0()).await;
    let now = t0() + TimeDelta::minutes(1);
    let work = verification(10, ann.id(), "ann@work.example", Purpose::VerifyEmail, now);
    ops::add_email(&s, ann.id(), work.email(), &work, &[], now).await.unwrap();

    let ann_id = ann.id();
    let set = |address: &'static str, n: u128| {
        let s = s.clone();
        async move { ops::set_primary_email(&s, ann_id, &email(address), &[message(n, now)], now).await.unwrap() }
    };
    assert_eq!(set("nobody@example.com", 1).await, PrimaryChange::NotFound);
    assert_eq!(set("bob@example.com", 2).await, PrimaryChange::NotFound);
    assert_eq!(set("ann@work.example", 3).await, PrimaryChange::NotVerified);
    let nobody = UserId::from_uuid(Uuid::from_u128(404));
    let unknown = ops::set_primary_email(&s, nobody, work.email(), &[message(4, now)], now).await.unwrap();
    assert_eq!(unknown, PrimaryChange::NotFound);
    // Refusals change nothing and send nothing.
    assert!(pending(&s).await.is_empty());
    assert_eq!(s.users.get(ann.id()).await.unwrap().unwrap().updated_at(), t0());

    verify(&s, 21, ann.id(), "ann@work.example", now).await;
    let later = now + TimeDelta::minutes(1);
    let changed = ops::set_primary_email(&s, ann.id(), work.email(), &[message(5, later)], later).await.unwrap();
    assert_eq!(changed, PrimaryChange::Changed);
    let account = s.users.get(ann.id()).await.unwrap().unwrap();
    let flags: Vec<_> = account.emails().iter().map(|e| (e.email.as_str(), e.primary)).collect();
    assert_eq!(flags, vec![("ann@work.example", true), ("ann@example.com", false)]);
    assert_eq!(account.updated_at(), later);
    // Already primary: still Changed.
    assert_eq!(set("ann@work.example", 6).await, PrimaryChange::Changed);
    let primaries = s.users.get(ann.id()).await.unwrap().unwrap().emails().iter().filter(|e| e.primary).count();
    assert_eq!(primaries, 1);
    // Bob's primary is untouched.
    assert!(s.users.get(bob.id()).await.unwrap().unwrap().emails()[0].primary);
    let mut sent = pending(&s).await;
    sent.sort();
    assert_eq!(sent, vec![message(5, later).id, message(6, now).id]);
}

async fn delete_returns_live_sessions_and_removes_everything(s: Stores) {
    let (ann, live) = user_with_session(&s).await;
    let revoked = session(2, &ann, t0(), t0() + TimeDelta::days(30));
    ops::create_session(&s, &revoked, &token(2, t0(), TimeDelta::days(30)), &[]).await.unwrap();
    ops::revoke(&s, revoked.id(), RevokeReason::Logout, &[], t0()).await.unwrap();
    let expired = session(3, &ann, t0(), t0() + TimeDelta::hours(1));
    ops::create_session(&s, &expired, &token(3, t0(), TimeDelta::days(30)), &[]).await.unwrap();
    let bob = user(2, "bob@example.com");
    sign_up(&s, &bob).await;
    let bobs = session(4, &bob, t0(), t0() + TimeDelta::days(30));
    ops::create_session(&s, &bobs, &token(4, t0(), TimeDelta::days(30)), &[]).await.unwrap();
    // An event about ann, still waiting to be published.
    let reset = verification(10, ann.id(), "ann@example.com", Purpose::ResetPassword, t0());
    ops::replace(&s, &reset, &[message(1, t0())]).await.unwrap();

    let now = t0() + TimeDelta::hours(1);
    assert_eq!(ops::delete_user(&s, ann.id(), &[], now).await.unwrap(), vec![live]);

    assert_eq!(s.users.get(ann.id()).await.unwrap(), None);
    assert_eq!(s.users.password_hash(ann.id()).await.unwrap(), None);
    assert!(s.users.find_credentials(ann.email()).await.unwrap().is_none());
    for n in 1..=3 {
        assert_eq!(s.sessions.find_by_refresh_token(&hash(n)).await.unwrap(), None, "token {n}");
    }
    for v in [first_verification(&ann), reset] {
        assert_eq!(s.verifications.find_by_token(v.purpose(), v.token_hash()).await.unwrap(), None);
    }
    // Bob is untouched, the pending event still goes out, and the address is free again.
    assert_eq!(s.sessions.find_by_refresh_token(&hash(4)).await.unwrap(), Some(bobs));
    assert!(s.users.get(bob.id()).await.unwrap().is_some());
    assert_eq!(pending(&s).await, vec![message(1, t0()).id]);
    assert!(ops::delete_user(&s, ann.id(), &[], now).await.unwrap().is_empty());
    sign_up(&s, &user(3, "ann@example.com")).await;
}

/// OWASP ASVS 5.0 V7.4.1: a deleted account's sessions are gone, so the
/// denylist rebuild reads its tombstone instead, for as long as one of its
/// access tokens could live; pruning removes it only after that.
async fn deleting_an_account_leaves_a_tombstone_until_its_last_token_expires(s: Stores) {
    let (ann, bob) = (user(1, "ann@example.com"), user(2, "bob@example.com"));
    sign_up(&s, &ann).await;
    sign_up(&s, &bob).await;
    let now = t0() + TimeDelta::hours(1);
    let until = now + TimeDelta::minutes(15);
    ops::delete_user_until(&s, ann.id(), &[], now, until).await.unwrap();

    let expected = vec![Tombstone { user: ann.id(), until }];
    assert_eq!(s.sessions.tombstones(now).await.unwrap(), expected);
    assert_eq!(s.sessions.tombstones(until - TimeDelta::microseconds(1)).await.unwrap(), expected);
    assert!(s.sessions.tombstones(until).await.unwrap().is_empty(), "no token of it lives past `until`");

    assert_eq!(s.sessions.prune(until).await.unwrap(), 0, "kept while a token may live");
    assert_eq!(s.sessions.tombstones(now).await.unwrap(), expected);
    assert_eq!(s.sessions.prune(until + TimeDelta::microseconds(1)).await.unwrap(), 1);
    assert!(s.sessions.tombstones(now).await.unwrap().is_empty());
    // An unknown user leaves nothing behind.
    ops::delete_user(&s, UserId::from_uuid(Uuid::from_u128(404)), &[], now).await.unwrap();
    assert!(s.sessions.tombstones(now).await.unwrap().is_empty());
}

// ----------------------------------------------------------- verifications

async fn replace_retires_the_previous_live_verification(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let first = first_verification(&ann);
    let reset = verification(10, ann.id(), "ann@example.com", Purpose::ResetPassword, t0());
    ops::replace(&s, &reset, &[]).await.unwrap();

    let now = t0() + TimeDelta::minutes(10);
    let second = verification(11, ann.id(), "ann@example.com", Purpose::VerifyEmail, now);
    ops::replace(&s, &second, &[message(1, now)]).await.unwrap();

    let retired = s.verifications.find_by_token(Purpose::VerifyEmail, first.token_hash()).await.unwrap().unwrap();
    let mut expected = first.clone();
    expected.consume(now);
    assert_eq!(retired, expected);
    assert_eq!(s.verifications.find_latest(Purpose::VerifyEmail, ann.email()).await.unwrap(), Some(second.clone()));
    // Another purpose is another verification.
    assert_eq!(s.verifications.find_by_token(Purpose::ResetPassword, reset.token_hash()).await.unwrap(), Some(reset));
    assert_eq!(pending(&s).await, vec![message(1, now).id]);
    // The retired one can no longer be redeemed; the new one can.
    let later = now + TimeDelta::minutes(1);
    assert_eq!(ops::consume(&s, &first, &Effect::VerifyEmail, &[], later).await.unwrap(), Consumed::Unavailable);
    assert!(matches!(
        ops::consume(&s, &second, &Effect::VerifyEmail, &[], later).await.unwrap(),
        Consumed::Applied { .. }
    ));
}

async fn find_by_token_respects_the_purpose(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let v = first_verification(&ann);
    assert_eq!(s.verifications.find_by_token(Purpose::VerifyEmail, v.token_hash()).await.unwrap(), Some(v.clone()));
    assert_eq!(s.verifications.find_by_token(Purpose::ResetPassword, v.token_hash()).await.unwrap(), None);
    assert_eq!(s.verifications.find_by_token(Purpose::VerifyEmail, v.code_hash()).await.unwrap(), None);
    assert_eq!(s.verifications.find_by_token(Purpose::VerifyEmail, &digest(0x7e, 404)).await.unwrap(), None);
}

async fn find_latest_is_the_newest_unconsumed(s: Stores) {
    let ann = user(1, "ann@example.com");
    let bob = user(2, "bob@example.com");
    sign_up(&s, &ann).await;
    sign_up(&s, &bob).await;
    // Ann adds an address and drops it unverified; Bob then adds it too.
    let shared = "shared@example.com";
    let at = t0() + TimeDelta::minutes(1);
    let anns = verification(10, ann.id(), shared, Purpose::VerifyEmail, at);
    ops::add_email(&s, ann.id(), anns.email(), &anns, &[], at).await.unwrap();
    assert_eq!(ops::remove_email(&s, ann.id(), anns.email(), &[], at).await.unwrap(), EmailRemoval::Removed);
    let later = at + TimeDelta::microseconds(1);
    let bobs = verification(11, bob.id(), shared, Purpose::VerifyEmail, later);
    ops::add_email(&s, bob.id(), bobs.email(), &bobs, &[], later).await.unwrap();

    assert_eq!(s.verifications.find_latest(Purpose::VerifyEmail, &email(shared)).await.unwrap(), Some(bobs.clone()));
    assert_eq!(s.verifications.find_latest(Purpose::ResetPassword, &email(shared)).await.unwrap(), None);
    assert_eq!(s.verifications.find_latest(Purpose::VerifyEmail, &email("nobody@example.com")).await.unwrap(), None);
    // Ann's verification died with her address: once Bob's is consumed,
    // nothing live is left for it.
    ops::consume(&s, &bobs, &Effect::VerifyEmail, &[], later).await.unwrap();
    assert_eq!(s.verifications.find_latest(Purpose::VerifyEmail, &email(shared)).await.unwrap(), None);
    let retired = s.verifications.find_by_token(Purpose::VerifyEmail, anns.token_hash()).await.unwrap();
    assert_eq!(retired.and_then(|v| v.consumed_at()), Some(at));
}

async fn record_failed_attempt_stops_at_the_limit(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let v = first_verification(&ann);
    for expected in 1..=5 {
        assert_eq!(s.verifications.record_failed_attempt(v.id()).await.unwrap(), Some(expected));
    }
    assert_eq!(s.verifications.record_failed_attempt(v.id()).await.unwrap(), None);
    let stored = s.verifications.find_by_token(Purpose::VerifyEmail, v.token_hash()).await.unwrap().unwrap();
    assert_eq!(stored.attempts(), 5);
    assert!(!stored.is_live(t0()));
    assert_eq!(s.verifications.record_failed_attempt(Uuid::from_u128(404)).await.unwrap(), None);

    // A consumed verification counts nothing.
    let other = verification(10, ann.id(), "ann@example.com", Purpose::ResetPassword, t0());
    ops::replace(&s, &other, &[]).await.unwrap();
    ops::consume(&s, &other, &Effect::VerifyEmail, &[], t0()).await.unwrap();
    assert_eq!(s.verifications.record_failed_attempt(other.id()).await.unwrap(), None);
}

async fn concurrent_failed_attempts_stop_at_the_limit(s: Stores) {
    const RACERS: usize = 20;
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let v = first_verification(&ann);
    let id = v.id();
    let start = Arc::new(tokio::sync::Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let verifications = Arc::clone(&s.verifications);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                verifications.record_failed_attempt(id).await
            })
        })
        .collect();
    let mut counted = Vec::new();
    for racer in racers {
        if let Some(n) = racer.await.unwrap().unwrap() {
            counted.push(n);
        }
    }
    counted.sort_unstable();
    assert_eq!(counted, vec![1, 2, 3, 4, 5]);
    let stored = s.verifications.find_by_token(Purpose::VerifyEmail, v.token_hash()).await.unwrap().unwrap();
    assert_eq!(stored.attempts(), 5);
}

async fn consume_verifies_the_email_once(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let v = first_verification(&ann);
    let now = t0() + TimeDelta::hours(1);
    let consumed = ops::consume(&s, &v, &Effect::VerifyEmail, &[message(1, now)], now).await.unwrap();
    assert_eq!(consumed, Consumed::Applied { revoked: Vec::new() });

    let stored = s.verifications.find_by_token(Purpose::VerifyEmail, v.token_hash()).await.unwrap().unwrap();
    assert_eq!(stored.consumed_at(), Some(now));
    assert_eq!(s.verifications.find_latest(Purpose::VerifyEmail, ann.email()).await.unwrap(), None);
    let account = s.users.get(ann.id()).await.unwrap().unwrap();
    assert_eq!(account.emails()[0].verified_at, Some(now));
    assert!(s.users.find_credentials(ann.email()).await.unwrap().unwrap().email_verified);

    let again = now + TimeDelta::minutes(1);
    let second = ops::consume(&s, &v, &Effect::VerifyEmail, &[message(2, again)], again).await.unwrap();
    assert_eq!(second, Consumed::Unavailable);
    assert_eq!(pending(&s).await, vec![message(1, now).id]);
}

async fn concurrent_consumes_apply_exactly_once(s: Stores) {
    const RACERS: u128 = 20;
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let v = first_verification(&ann);
    let now = t0() + TimeDelta::hours(1);
    let start = Arc::new(tokio::sync::Barrier::new(usize::try_from(RACERS).unwrap()));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let (s, v) = (s.clone(), v.clone());
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                ops::consume(&s, &v, &Effect::VerifyEmail, &[message(i, now)], now).await
            })
        })
        .collect();
    let mut applied = Vec::new();
    for (i, racer) in (0..RACERS).zip(racers) {
        match racer.await.unwrap().unwrap() {
            Consumed::Applied { revoked } => {
                assert!(revoked.is_empty());
                applied.push(i);
            }
            Consumed::Unavailable => {}
        }
    }
    assert_eq!(applied.len(), 1, "exactly one redemption may win: {applied:?}");
    // Only the winner's event was written.
    assert_eq!(pending(&s).await, vec![message(applied[0], now).id]);
}

async fn consume_is_refused_when_expired_exhausted_or_consumed(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let v = first_verification(&ann);
    let consume = |v: Verification, at: DateTime<Utc>| {
        let s = s.clone();
        async move { ops::consume(&s, &v, &Effect::VerifyEmail, &[message(9, at)], at).await.unwrap() }
    };

    // At its expiry it is gone.
    assert_eq!(consume(v.clone(), v.expires_at()).await, Consumed::Unavailable);
    let never_issued = verification(404, ann.id(), "ann@example.com", Purpose::VerifyEmail, t0());
    assert_eq!(consume(never_issued, t0()).await, Consumed::Unavailable);
    // Out of attempts.
    for _ in 0..5 {
        s.verifications.record_failed_attempt(v.id()).await.unwrap();
    }
    assert_eq!(consume(v.clone(), t0()).await, Consumed::Unavailable);
    // Refusals changed nothing.
    assert!(pending(&s).await.is_empty());
    assert!(!s.users.find_credentials(ann.email()).await.unwrap().unwrap().email_verified);
    let stored = s.verifications.find_by_token(Purpose::VerifyEmail, v.token_hash()).await.unwrap().unwrap();
    assert_eq!(stored.consumed_at(), None);

    // A fresh one, one microsecond before its expiry, then never again.
    let fresh = verification(10, ann.id(), "ann@example.com", Purpose::VerifyEmail, t0());
    ops::replace(&s, &fresh, &[]).await.unwrap();
    let just_before = fresh.expires_at() - TimeDelta::microseconds(1);
    assert!(matches!(consume(fresh.clone(), just_before).await, Consumed::Applied { .. }));
    assert_eq!(consume(fresh, just_before).await, Consumed::Unavailable);
}

async fn reset_password_changes_the_hash_verifies_the_email_and_revokes_every_session(s: Stores) {
    let (ann, first) = user_with_session(&s).await;
    let second = session(2, &ann, t0(), t0() + TimeDelta::days(30));
    ops::create_session(&s, &second, &token(2, t0(), TimeDelta::days(30)), &[]).await.unwrap();
    let earlier = session(3, &ann, t0(), t0() + TimeDelta::days(30));
    ops::create_session(&s, &earlier, &token(3, t0(), TimeDelta::days(30)), &[]).await.unwrap();
    ops::revoke(&s, earlier.id(), RevokeReason::Logout, &[], t0()).await.unwrap();
    let bob = user(2, "bob@example.com");
    sign_up(&s, &bob).await;
    let bobs = session(4, &bob, t0(), t0() + TimeDelta::days(30));
    ops::create_session(&s, &bobs, &token(4, t0(), TimeDelta::days(30)), &[]).await.unwrap();

    let asked = t0() + TimeDelta::minutes(1);
    let reset = verification(10, ann.id(), "ann@example.com", Purpose::ResetPassword, asked);
    ops::replace(&s, &reset, &[message(1, asked)]).await.unwrap();
    let now = asked + TimeDelta::minutes(5);
    let new_hash = PasswordHash::from_phc("$argon2id$v=19$m=19456,t=2,p=1$reset$reset".into());
    let effect = Effect::ResetPassword { hash: new_hash.clone() };
    let Consumed::Applied { revoked } = ops::consume(&s, &reset, &effect, &[message(2, now)], now).await.unwrap()
    else {
        panic!("reset refused")
    };

    let expected = vec![
        stored(SessionFields { revoked_at: Some(now), ..fields(&first) }),
        stored(SessionFields { revoked_at: Some(now), ..fields(&second) }),
    ];
    assert_eq!(sorted(revoked), sorted(expected));
    assert_eq!(s.users.password_hash(ann.id()).await.unwrap(), Some(new_hash));
    assert_eq!(s.users.password_hash(bob.id()).await.unwrap(), Some(bob.password_hash().clone()));
    assert!(s.users.find_credentials(ann.email()).await.unwrap().unwrap().email_verified);
    assert_eq!(s.users.get(ann.id()).await.unwrap().unwrap().updated_at(), now);
    assert_eq!(s.sessions.find_by_refresh_token(&hash(3)).await.unwrap().unwrap().revoked_at(), Some(t0()));
    assert_eq!(s.sessions.find_by_refresh_token(&hash(4)).await.unwrap(), Some(bobs));
    assert_eq!(pending(&s).await, vec![message(1, asked).id, message(2, now).id]);
    assert_eq!(ops::consume(&s, &reset, &effect, &[], now).await.unwrap(), Consumed::Unavailable);
}

// ------------------------------------------------------------------ outbox

/// Writes message `n` (occurring at `at`) through a state change: a new
/// reset verification of user 1, who must exist.
async fn enqueue(s: &Stores, n: u128, at: DateTime<Utc>) -> OutboxMessage {
    let m = message(n, at);
    let v =
        verification(1000 + n, UserId::from_uuid(Uuid::from_u128(1)), "ann@example.com", Purpose::ResetPassword, at);
    ops::replace(s, &v, std::slice::from_ref(&m)).await.unwrap();
    m
}

fn claimed(messages: &[&OutboxMessage], attempts: u32) -> Vec<ClaimedMessage> {
    messages.iter().map(|m| ClaimedMessage { message: (*m).clone(), attempts }).collect()
}

async fn claim_returns_due_rows_oldest_first_and_hides_them_until_the_lease(s: Stores) {
    sign_up(&s, &user(1, "ann@example.com")).await;
    let m1 = enqueue(&s, 1, t0() + TimeDelta::milliseconds(1)).await;
    let m2 = enqueue(&s, 2, t0() + TimeDelta::milliseconds(2)).await;
    let m3 = enqueue(&s, 3, t0() + TimeDelta::milliseconds(3)).await;
    let now = t0() + TimeDelta::minutes(1);
    let not_yet = enqueue(&s, 4, now + TimeDelta::seconds(1)).await;
    let lease = now + TimeDelta::seconds(30);

    assert_eq!(s.outbox.claim(2, now, lease).await.unwrap(), claimed(&[&m1, &m2], 0));
    assert_eq!(s.outbox.claim(10, now, lease).await.unwrap(), claimed(&[&m3], 0));
    assert!(s.outbox.claim(10, now, lease).await.unwrap().is_empty());
    // Just before the lease ends, only the row that has come due since is claimed.
    let just_before = lease - TimeDelta::microseconds(1);
    assert_eq!(s.outbox.claim(10, just_before, lease).await.unwrap(), claimed(&[&not_yet], 0));
    assert!(s.outbox.claim(0, lease, lease).await.unwrap().is_empty());
    // At the lease's end every unsent row is due again, oldest first.
    let all = s.outbox.claim(10, lease, lease + TimeDelta::seconds(30)).await.unwrap();
    assert_eq!(all, claimed(&[&m1, &m2, &m3, &not_yet], 0));
}

async fn sent_rows_are_never_claimed_again(s: Stores) {
    sign_up(&s, &user(1, "ann@example.com")).await;
    let m1 = enqueue(&s, 1, t0()).await;
    let m2 = enqueue(&s, 2, t0() + TimeDelta::milliseconds(1)).await;
    let now = t0() + TimeDelta::minutes(1);
    assert_eq!(s.outbox.claim(10, now, now + TimeDelta::seconds(30)).await.unwrap(), claimed(&[&m1, &m2], 0));
    s.outbox.mark_sent(&[m1.id], now).await.unwrap();
    // Marking twice, or an unknown id, is harmless.
    s.outbox.mark_sent(&[m1.id], now).await.unwrap();
    s.outbox.mark_sent(&[Uuid::from_u128(404)], now).await.unwrap();

    let later = now + TimeDelta::minutes(1);
    assert_eq!(s.outbox.claim(10, later, later).await.unwrap(), claimed(&[&m2], 0));
    assert_eq!(pending(&s).await, vec![m2.id]);
}

/// The relay marks what a round published in one call, many ids at once
/// (more than one SQL chunk); an id sent before keeps its first time.
async fn a_round_of_rows_is_marked_sent_at_once(s: Stores) {
    sign_up(&s, &user(1, "ann@example.com")).await;
    let mut rows = Vec::new();
    for n in 0..600_u32 {
        rows.push(enqueue(&s, u128::from(n) + 1, t0() + TimeDelta::milliseconds(i64::from(n))).await);
    }
    let now = t0() + TimeDelta::minutes(1);
    assert_eq!(s.outbox.claim(1000, now, now + TimeDelta::seconds(30)).await.unwrap().len(), 600);
    let kept = rows.pop().unwrap();
    let ids: Vec<Uuid> = rows.iter().map(|m| m.id).collect();
    s.outbox.mark_sent(&ids, now).await.unwrap();

    let later = now + TimeDelta::minutes(1);
    assert_eq!(s.outbox.claim(1000, later, later).await.unwrap(), claimed(&[&kept], 0));
    assert_eq!(pending(&s).await, vec![kept.id]);
}

async fn retry_later_delays_and_counts_attempts(s: Stores) {
    sign_up(&s, &user(1, "ann@example.com")).await;
    let m1 = enqueue(&s, 1, t0()).await;
    let now = t0() + TimeDelta::minutes(1);
    s.outbox.claim(10, now, now + TimeDelta::seconds(30)).await.unwrap();
    let retry_at = now + TimeDelta::minutes(5);
    s.outbox.retry_later(m1.id, 1, retry_at).await.unwrap();

    // The lease has run out, but the retry is not due yet.
    let before = retry_at - TimeDelta::microseconds(1);
    assert!(s.outbox.claim(10, before, before + TimeDelta::seconds(30)).await.unwrap().is_empty());
    assert_eq!(s.outbox.claim(10, retry_at, retry_at + TimeDelta::seconds(30)).await.unwrap(), claimed(&[&m1], 1));
    s.outbox.retry_later(m1.id, 2, retry_at).await.unwrap();
    assert_eq!(s.outbox.claim(10, retry_at, retry_at).await.unwrap(), claimed(&[&m1], 2));
}

async fn prune_sent_deletes_rows_sent_before(s: Stores) {
    sign_up(&s, &user(1, "ann@example.com")).await;
    let m1 = enqueue(&s, 1, t0()).await;
    let m2 = enqueue(&s, 2, t0() + TimeDelta::milliseconds(1)).await;
    let m3 = enqueue(&s, 3, t0() + TimeDelta::milliseconds(2)).await;
    let (sent1, sent2) = (t0() + TimeDelta::minutes(1), t0() + TimeDelta::minutes(2));
    s.outbox.mark_sent(&[m1.id], sent1).await.unwrap();
    s.outbox.mark_sent(&[m2.id], sent2).await.unwrap();

    assert_eq!(s.outbox.prune_sent(sent1).await.unwrap(), 0);
    assert_eq!(s.outbox.prune_sent(sent2).await.unwrap(), 1);
    assert_eq!(s.outbox.prune_sent(sent2 + TimeDelta::microseconds(1)).await.unwrap(), 1);
    assert_eq!(s.outbox.prune_sent(far_future()).await.unwrap(), 0);
    // The unsent row stays, whatever its age.
    assert_eq!(pending(&s).await, vec![m3.id]);
}

/// The broker is back: rows waiting out a backoff are due at once; sent
/// rows, rows already due and rows not named stay as they are.
async fn retry_now_makes_rows_in_backoff_due_and_leaves_the_rest(s: Stores) {
    sign_up(&s, &user(1, "ann@example.com")).await;
    let m1 = enqueue(&s, 1, t0()).await;
    let m2 = enqueue(&s, 2, t0() + TimeDelta::milliseconds(1)).await;
    let m3 = enqueue(&s, 3, t0() + TimeDelta::milliseconds(2)).await;
    let now = t0() + TimeDelta::minutes(1);
    for m in [&m1, &m2, &m3] {
        s.outbox.retry_later(m.id, 5, now + TimeDelta::minutes(1)).await.unwrap();
    }
    s.outbox.mark_sent(&[m3.id], now).await.unwrap();
    assert!(s.outbox.claim(10, now, now + TimeDelta::seconds(30)).await.unwrap().is_empty(), "all in backoff");

    assert_eq!(s.outbox.retry_now(&[m1.id, m3.id], now).await.unwrap(), 1, "the sent row is left alone");
    let claimed = s.outbox.claim(10, now, now + TimeDelta::seconds(30)).await.unwrap();
    let ids: Vec<_> = claimed.iter().map(|c| (c.message.id, c.attempts)).collect();
    assert_eq!(ids, vec![(m1.id, 5)], "due again, its attempts kept; m2 was not named");
    assert_eq!(s.outbox.retry_now(&[], now).await.unwrap(), 0);
}

async fn two_relays_claim_every_row_exactly_once(s: Stores) {
    const ROWS: u128 = 50;
    let ann = user(1, "ann@example.com");
    let batch: Vec<OutboxMessage> =
        (0..ROWS).map(|n| message(n, t0() + TimeDelta::milliseconds(i64::try_from(n).unwrap()))).collect();
    ops::create_user(&s, &ann, &first_verification(&ann), &batch).await.unwrap();

    let now = t0() + TimeDelta::minutes(1);
    let start = Arc::new(tokio::sync::Barrier::new(2));
    let relays: Vec<_> = (0..2)
        .map(|_| {
            let outbox = Arc::clone(&s.outbox);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                let mut published = Vec::new();
                loop {
                    let batch = outbox.claim(3, now, now + TimeDelta::hours(1)).await.unwrap();
                    if batch.is_empty() {
                        return published;
                    }
                    for c in batch {
                        outbox.mark_sent(&[c.message.id], now).await.unwrap();
                        published.push(c.message.id);
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for relay in relays {
        all.extend(relay.await.unwrap());
    }
    let distinct: HashSet<Uuid> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "a row was claimed twice");
    assert_eq!(distinct, batch.iter().map(|m| m.id).collect::<HashSet<_>>());
    assert!(pending(&s).await.is_empty());
}

// --------------------------------------------------------------------- mfa

/// A pending factor number `n` of `user`: TOTP factors carry a sealed
/// secret, email and SMS factors a destination.
fn factor(n: u128, user: UserId, kind: FactorKind, created_at: DateTime<Utc>) -> Factor {
    let tag = u8::try_from(n % 256).unwrap();
    let id = Uuid::from_u128(0xfac0_0000 + n);
    match kind {
        FactorKind::Totp => {
            let secret = SealedSecret { key_id: "key-2026".into(), data: (0..44).map(|b: u8| b ^ tag).collect() };
            Factor::pending_totp(id, user, secret, created_at)
        }
        FactorKind::Email => Factor::pending_code(id, user, kind, format!("ann+{n}@example.com"), created_at),
        FactorKind::Sms => Factor::pending_code(id, user, kind, "+447700900123".into(), created_at),
    }
}

/// The digest of code number `n`.
fn code_hash(n: u128) -> TokenHash {
    digest(0xcd, n)
}

/// Code number `n` of `factor` (for `challenge`, or for enrolment), with 3
/// attempts for 10 minutes.
fn factor_code(n: u128, factor: &Factor, challenge: Option<Uuid>, created_at: DateTime<Utc>) -> FactorCode {
    FactorCode {
        id: Uuid::from_u128(0xc0de_0000 + n),
        factor_id: factor.id(),
        challenge_id: challenge,
        code_hash: code_hash(n),
        attempts: 0,
        max_attempts: 3,
        created_at,
        expires_at: created_at + TimeDelta::minutes(10),
    }
}

/// Login challenge number `n` of `user`, with 5 attempts for 5 minutes.
fn challenge(n: u128, user: UserId, created_at: DateTime<Utc>) -> MfaChallenge {
    challenge_from(
        n,
        user,
        ClientInfo::new(Some("Mozilla/5.0 (X11; Linux x86_64)"), Some("198.51.100.4".into())),
        created_at,
    )
}

/// Login challenge number `n` of `user` from `client`, with 5 attempts for 5 minutes.
fn challenge_from(n: u128, user: UserId, client: ClientInfo, created_at: DateTime<Utc>) -> MfaChallenge {
    MfaChallenge::open(
        Uuid::from_u128(0xc4a1_0000 + n),
        user,
        client,
        created_at,
        created_at + TimeDelta::minutes(5),
        5,
    )
}

/// The digest of backup code number `n`.
fn backup(n: u128) -> TokenHash {
    digest(0xbc, n)
}

fn backups(ns: std::ops::RangeInclusive<u128>) -> Vec<TokenHash> {
    ns.map(backup).collect()
}

/// The outbox notice `use_backup_code` writes: message `base + remaining`.
fn notice(base: u128, at: DateTime<Utc>) -> impl Fn(u32) -> Vec<OutboxMessage> + Send + Sync {
    move |remaining| vec![message(base + u128::from(remaining), at)]
}

/// The unsent outbox messages as a set: messages of one instant have no
/// order among themselves.
async fn pending_ids(s: &Stores) -> HashSet<Uuid> {
    pending(s).await.into_iter().collect()
}

fn ids<const N: usize>(messages: [OutboxMessage; N]) -> HashSet<Uuid> {
    messages.iter().map(|m| m.id).collect()
}

/// Ann (user 1) and Bob (user 2), signed up.
async fn ann_and_bob(s: &Stores) -> (UserId, UserId) {
    let (ann, bob) = (user(1, "ann@example.com"), user(2, "bob@example.com"));
    sign_up(s, &ann).await;
    sign_up(s, &bob).await;
    (ann.id(), bob.id())
}

/// An active factor number `n` of `user`, added and activated at `at`
/// (with `codes` as backup codes, if any).
async fn active_factor(s: &Stores, n: u128, user: UserId, kind: FactorKind, codes: &[TokenHash]) -> Factor {
    let at = t0() + TimeDelta::seconds(i64::try_from(n).unwrap());
    let f = factor(n, user, kind, at);
    ops::add_factor(s, &f, None, &[]).await.unwrap();
    assert!(ops::activate_factor(s, user, f.id(), codes, &[], at).await.unwrap().is_some());
    let mut active = f;
    active.confirm(at);
    active
}

/// Runs `racers` copies of what `start` makes at once and collects their results.
async fn race<T, Fut>(racers: usize, start: impl Fn() -> Fut) -> Vec<T>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(racers));
    let tasks: Vec<_> = (0..racers)
        .map(|_| {
            let run = start();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                run.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(racers);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

async fn add_factor_stores_it_and_replaces_pending_factors_of_its_kind(s: Stores) {
    let (ann, bob) = ann_and_bob(&s).await;
    let totp = factor(1, ann, FactorKind::Totp, t0());
    ops::add_factor(&s, &totp, None, &[message(1, t0())]).await.unwrap();
    let email = factor(2, ann, FactorKind::Email, t0() + TimeDelta::seconds(1));
    let code = factor_code(1, &email, None, email.created_at());
    ops::add_factor(&s, &email, Some(&code), &[message(2, email.created_at())]).await.unwrap();
    // The sealed secret, the destination and every other field round-trip.
    assert_eq!(s.mfa.factors(ann).await.unwrap(), vec![totp.clone(), email.clone()]);
    assert!(s.mfa.factors(bob).await.unwrap().is_empty());

    // A new pending TOTP factor replaces the pending one; the email factor stays.
    let totp2 = factor(3, ann, FactorKind::Totp, t0() + TimeDelta::seconds(2));
    ops::add_factor(&s, &totp2, None, &[message(3, totp2.created_at())]).await.unwrap();
    assert_eq!(s.mfa.factors(ann).await.unwrap(), vec![email.clone(), totp2.clone()]);

    // An active factor of the same kind is not replaced.
    let now = t0() + TimeDelta::seconds(3);
    assert!(ops::activate_factor(&s, ann, totp2.id(), &[], &[], now).await.unwrap().is_some());
    let totp3 = factor(4, ann, FactorKind::Totp, t0() + TimeDelta::seconds(4));
    ops::add_factor(&s, &totp3, None, &[]).await.unwrap();
    let mut active2 = totp2.clone();
    active2.confirm(now);
    assert_eq!(s.mfa.factors(ann).await.unwrap(), vec![email.clone(), active2.clone(), totp3.clone()]);

    // A replaced factor's codes go with it.
    let email2 = factor(5, ann, FactorKind::Email, t0() + TimeDelta::seconds(5));
    ops::add_factor(&s, &email2, Some(&factor_code(2, &email2, None, email2.created_at())), &[]).await.unwrap();
    assert_eq!(s.mfa.factors(ann).await.unwrap(), vec![active2, totp3, email2.clone()]);
    assert!(!s.mfa.use_code(email.id(), None, &code_hash(1), email2.created_at()).await.unwrap());
    assert!(s.mfa.use_code(email2.id(), None, &code_hash(2), email2.created_at()).await.unwrap());
    assert_eq!(
        pending_ids(&s).await,
        ids([message(1, t0()), message(2, email.created_at()), message(3, totp2.created_at())])
    );
}

async fn activate_factor_activates_only_the_users_pending_factor(s: Stores) {
    let (ann, bob) = ann_and_bob(&s).await;
    let anns = factor(1, ann, FactorKind::Totp, t0());
    let bobs = factor(2, bob, FactorKind::Totp, t0());
    ops::add_factor(&s, &anns, None, &[]).await.unwrap();
    ops::add_factor(&s, &bobs, None, &[]).await.unwrap();
    let now = t0() + TimeDelta::minutes(1);

    // Another user's factor, an unknown factor: nothing changes, nothing is written.
    assert_eq!(ops::activate_factor(&s, bob, anns.id(), &backups(1..=3), &[message(1, now)], now).await.unwrap(), None);
    assert_eq!(ops::activate_factor(&s, ann, bobs.id(), &backups(1..=3), &[message(2, now)], now).await.unwrap(), None);
    let unknown = Uuid::from_u128(0xdead);
    assert_eq!(ops::activate_factor(&s, ann, unknown, &backups(1..=3), &[message(3, now)], now).await.unwrap(), None);
    assert_eq!(s.mfa.factors(ann).await.unwrap(), vec![anns.clone()]);
    assert_eq!(ops::use_backup_code(&s, bob, &backup(1), &notice(100, now), now).await.unwrap(), None);

    // The first activation stores the backup codes.
    let first = ops::activate_factor(&s, ann, anns.id(), &backups(1..=3), &[message(4, now)], now).await.unwrap();
    assert_eq!(first, Some(Activation { first: true }));
    let mut active = anns.clone();
    active.confirm(now);
    assert_eq!(s.mfa.factors(ann).await.unwrap(), vec![active.clone()]);
    assert_eq!(ops::use_backup_code(&s, ann, &backup(1), &notice(100, now), now).await.unwrap(), Some(2));

    // An active factor is not activated again, and its codes are not replaced.
    let later = now + TimeDelta::minutes(1);
    assert_eq!(
        ops::activate_factor(&s, ann, anns.id(), &backups(7..=9), &[message(5, later)], later).await.unwrap(),
        None
    );
    assert_eq!(s.mfa.factors(ann).await.unwrap(), vec![active]);
    assert_eq!(ops::use_backup_code(&s, ann, &backup(7), &notice(200, later), later).await.unwrap(), None);

    // A second factor is not the first: it stores no backup codes and keeps the user's.
    let email = factor(3, ann, FactorKind::Email, later);
    ops::add_factor(&s, &email, None, &[]).await.unwrap();
    let second = ops::activate_factor(&s, ann, email.id(), &backups(7..=9), &[message(6, later)], later).await.unwrap();
    assert_eq!(second, Some(Activation { first: false }));
    assert_eq!(ops::use_backup_code(&s, ann, &backup(7), &notice(200, later), later).await.unwrap(), None);
    assert_eq!(ops::use_backup_code(&s, ann, &backup(2), &notice(200, later), later).await.unwrap(), Some(1));
    assert_eq!(
        pending_ids(&s).await,
        ids([message(4, now), message(102, now), message(6, later), message(201, later)])
    );
}

async fn remove_factor_takes_the_backup_codes_with_the_last_active_factor(s: Stores) {
    let (ann, bob) = ann_and_bob(&s).await;
    let totp = active_factor(&s, 1, ann, FactorKind::Totp, &backups(1..=4)).await;
    let email = active_factor(&s, 2, ann, FactorKind::Email, &[]).await;
    let sms = factor(3, ann, FactorKind::Sms, t0() + TimeDelta::seconds(3));
    ops::add_factor(&s, &sms, Some(&factor_code(1, &sms, None, sms.created_at())), &[]).await.unwrap();
    let now = t0() + TimeDelta::minutes(1);

    // Not Bob's to remove, and an unknown factor: nothing changes, nothing is written.
    assert!(!ops::remove_factor(&s, bob, totp.id(), &[message(1, now)]).await.unwrap());
    assert!(!ops::remove_factor(&s, ann, Uuid::from_u128(0xdead), &[message(2, now)]).await.unwrap());
    assert_eq!(s.mfa.factors(ann).await.unwrap().len(), 3);

    // A pending factor, then one of two active ones: the backup codes stay.
    assert!(ops::remove_factor(&s, ann, sms.id(), &[message(3, now)]).await.unwrap());
    assert!(!s.mfa.use_code(sms.id(), None, &code_hash(1), now).await.unwrap());
    assert!(ops::remove_factor(&s, ann, totp.id(), &[message(4, now)]).await.unwrap());
    assert_eq!(s.mfa.factors(ann).await.unwrap(), vec![email.clone()]);
    assert_eq!(ops::use_backup_code(&s, ann, &backup(1), &notice(100, now), now).await.unwrap(), Some(3));

    // The last active factor takes them with it.
    assert!(ops::remove_factor(&s, ann, email.id(), &[message(5, now)]).await.unwrap());
    assert!(s.mfa.factors(ann).await.unwrap().is_empty());
    assert_eq!(ops::use_backup_code(&s, ann, &backup(2), &notice(200, now), now).await.unwrap(), None);
    assert!(!ops::remove_factor(&s, ann, email.id(), &[message(6, now)]).await.unwrap());
    assert_eq!(pending_ids(&s).await, ids([message(3, now), message(4, now), message(5, now), message(103, now)]));
}

async fn concurrent_removals_of_the_last_active_factors_take_the_backup_codes(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let first = active_factor(&s, 1, ann, FactorKind::Totp, &backups(1..=3)).await;
    let second = active_factor(&s, 2, ann, FactorKind::Email, &[]).await;
    // Each removal alone still sees the other active factor: only when the
    // second waits for the first does it see that none is left.
    let ids = std::sync::Mutex::new(vec![first.id(), second.id()]);
    let removed = race(2, || {
        let (s, id) = (s.clone(), ids.lock().unwrap().pop().unwrap());
        async move { ops::remove_factor(&s, ann, id, &[]).await.unwrap() }
    })
    .await;
    assert_eq!(removed, vec![true, true]);
    let now = t0() + TimeDelta::minutes(1);
    assert_eq!(ops::use_backup_code(&s, ann, &backup(1), &notice(100, now), now).await.unwrap(), None);
}

async fn advance_totp_step_only_moves_forward(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let totp = active_factor(&s, 1, ann, FactorKind::Totp, &[]).await;
    assert!(s.mfa.advance_totp_step(totp.id(), 100).await.unwrap());
    assert!(!s.mfa.advance_totp_step(totp.id(), 100).await.unwrap(), "the same step twice");
    assert!(!s.mfa.advance_totp_step(totp.id(), 99).await.unwrap(), "an older step");
    assert!(s.mfa.advance_totp_step(totp.id(), 101).await.unwrap());
    assert!(s.mfa.advance_totp_step(totp.id(), 1_000_000_000_000).await.unwrap(), "far beyond 32 bits");
    assert!(!s.mfa.advance_totp_step(Uuid::from_u128(0xdead), 5).await.unwrap());
    assert_eq!(s.mfa.factors(ann).await.unwrap()[0].last_totp_step(), Some(1_000_000_000_000));
}

async fn concurrent_totp_steps_are_accepted_once(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let totp = active_factor(&s, 1, ann, FactorKind::Totp, &[]).await;
    let (mfa, totp) = (Arc::clone(&s.mfa), totp.id());
    let results = race(20, || {
        let mfa = Arc::clone(&mfa);
        async move { mfa.advance_totp_step(totp, 55_000_000).await.unwrap() }
    })
    .await;
    assert_eq!(results.iter().filter(|&&won| won).count(), 1, "{results:?}");
    assert_eq!(s.mfa.factors(ann).await.unwrap()[0].last_totp_step(), Some(55_000_000));
}

async fn backup_codes_are_used_once_and_count_down(s: Stores) {
    let (ann, bob) = ann_and_bob(&s).await;
    let now = t0() + TimeDelta::minutes(1);
    ops::replace_backup_codes(&s, ann, &backups(1..=3), &[message(1, now)], now).await.unwrap();
    ops::replace_backup_codes(&s, bob, &backups(7..=7), &[], now).await.unwrap();

    assert_eq!(ops::use_backup_code(&s, ann, &backup(1), &notice(100, now), now).await.unwrap(), Some(2));
    assert_eq!(ops::use_backup_code(&s, ann, &backup(1), &notice(200, now), now).await.unwrap(), None, "used");
    assert_eq!(ops::use_backup_code(&s, ann, &backup(9), &notice(200, now), now).await.unwrap(), None, "unknown");
    assert_eq!(ops::use_backup_code(&s, ann, &backup(7), &notice(200, now), now).await.unwrap(), None, "Bob's");
    assert_eq!(ops::use_backup_code(&s, ann, &backup(3), &notice(300, now), now).await.unwrap(), Some(1));

    // Replacing discards the old codes, used or not.
    let later = now + TimeDelta::minutes(1);
    ops::replace_backup_codes(&s, ann, &backups(4..=5), &[message(2, later)], later).await.unwrap();
    assert_eq!(ops::use_backup_code(&s, ann, &backup(2), &notice(400, later), later).await.unwrap(), None);
    assert_eq!(ops::use_backup_code(&s, ann, &backup(5), &notice(500, later), later).await.unwrap(), Some(1));
    assert_eq!(ops::use_backup_code(&s, ann, &backup(4), &notice(600, later), later).await.unwrap(), Some(0));
    assert_eq!(ops::use_backup_code(&s, bob, &backup(7), &notice(700, later), later).await.unwrap(), Some(0));
    assert_eq!(
        pending_ids(&s).await,
        ids([
            message(1, now),
            message(102, now),
            message(301, now),
            message(2, later),
            message(501, later),
            message(600, later),
            message(700, later),
        ])
    );
}

/// OWASP ASVS 5.0 V6.5.1: regenerated backup codes replace the old ones;
/// two regenerations at once must not leave both sets working.
async fn concurrent_regenerations_leave_one_set_of_backup_codes(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    active_factor(&s, 1, ann, FactorKind::Totp, &backups(1..=3)).await;
    let now = t0() + TimeDelta::minutes(1);
    for round in 0..5_u128 {
        let sets = std::sync::Mutex::new(vec![
            backups(100 * round + 10..=100 * round + 12),
            backups(100 * round + 20..=100 * round + 22),
        ]);
        race(2, || {
            let (s, set) = (s.clone(), sets.lock().unwrap().pop().unwrap());
            async move { ops::replace_backup_codes(&s, ann, &set, &[], now).await.unwrap() }
        })
        .await;
        let mut working = Vec::new();
        for n in (100 * round + 10..=100 * round + 12).chain(100 * round + 20..=100 * round + 22) {
            if ops::use_backup_code(&s, ann, &backup(n), &notice(1000 * (round + 1), now), now).await.unwrap().is_some()
            {
                working.push(n / 10 % 10);
            }
        }
        assert_eq!(working.len(), 3, "round {round}: exactly one set of three works: {working:?}");
        assert!(working.iter().all(|set| *set == working[0]), "round {round}: codes of both sets work: {working:?}");
    }
}

async fn concurrent_uses_of_one_backup_code_succeed_once(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let now = t0() + TimeDelta::minutes(1);
    ops::replace_backup_codes(&s, ann, &backups(1..=3), &[], now).await.unwrap();
    let results = race(20, || {
        let s = s.clone();
        async move { ops::use_backup_code(&s, ann, &backup(2), &notice(100, now), now).await.unwrap() }
    })
    .await;
    let used: Vec<u32> = results.into_iter().flatten().collect();
    assert_eq!(used, vec![2]);
    assert_eq!(pending_ids(&s).await, ids([message(102, now)]));
}

async fn a_code_is_used_once(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let email = factor(1, ann, FactorKind::Email, t0());
    ops::add_factor(&s, &email, Some(&factor_code(1, &email, None, t0())), &[]).await.unwrap();
    let now = t0() + TimeDelta::minutes(1);
    assert!(!s.mfa.use_code(email.id(), None, &code_hash(2), now).await.unwrap(), "wrong code");
    assert!(s.mfa.use_code(email.id(), None, &code_hash(1), now).await.unwrap());
    assert!(!s.mfa.use_code(email.id(), None, &code_hash(1), now).await.unwrap(), "used");
    // Another factor's code of the same value does not count for this one.
    let sms = factor(2, ann, FactorKind::Sms, t0());
    ops::add_factor(&s, &sms, Some(&factor_code(3, &sms, None, t0())), &[]).await.unwrap();
    assert!(!s.mfa.use_code(email.id(), None, &code_hash(3), now).await.unwrap());
    assert!(s.mfa.use_code(sms.id(), None, &code_hash(3), now).await.unwrap());
}

async fn wrong_codes_count_until_the_limit(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let email = factor(1, ann, FactorKind::Email, t0());
    ops::add_factor(&s, &email, Some(&factor_code(1, &email, None, t0())), &[]).await.unwrap();
    let now = t0() + TimeDelta::minutes(1);
    // Two wrong codes leave one attempt of three.
    for wrong in [8, 9] {
        assert!(!s.mfa.use_code(email.id(), None, &code_hash(wrong), now).await.unwrap());
    }
    assert!(s.mfa.use_code(email.id(), None, &code_hash(1), now).await.unwrap());

    // A third wrong code uses it up: then even the right code fails.
    ops::add_code(&s, &factor_code(2, &email, None, now), &[message(1, now)]).await.unwrap();
    for wrong in [7, 8, 9] {
        assert!(!s.mfa.use_code(email.id(), None, &code_hash(wrong), now).await.unwrap());
    }
    assert!(!s.mfa.use_code(email.id(), None, &code_hash(2), now).await.unwrap());
    assert_eq!(pending_ids(&s).await, ids([message(1, now)]));
}

async fn an_expired_code_fails(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let email = factor(1, ann, FactorKind::Email, t0());
    let code = factor_code(1, &email, None, t0());
    ops::add_factor(&s, &email, Some(&code), &[]).await.unwrap();
    assert!(!s.mfa.use_code(email.id(), None, &code_hash(1), code.expires_at).await.unwrap());
    // Wrong codes after expiry count nothing: the code still works just before it.
    for _ in 0..3 {
        assert!(!s.mfa.use_code(email.id(), None, &code_hash(9), code.expires_at).await.unwrap());
    }
    let just_before = code.expires_at - TimeDelta::microseconds(1);
    assert!(s.mfa.use_code(email.id(), None, &code_hash(1), just_before).await.unwrap());
}

async fn a_newer_code_retires_the_older(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let sms = factor(1, ann, FactorKind::Sms, t0());
    ops::add_factor(&s, &sms, Some(&factor_code(1, &sms, None, t0())), &[]).await.unwrap();
    let resent = t0() + TimeDelta::minutes(1);
    ops::add_code(&s, &factor_code(2, &sms, None, resent), &[message(1, resent)]).await.unwrap();
    let now = resent + TimeDelta::seconds(10);
    assert!(!s.mfa.use_code(sms.id(), None, &code_hash(1), now).await.unwrap(), "the retired code");
    assert!(s.mfa.use_code(sms.id(), None, &code_hash(2), now).await.unwrap());
    assert_eq!(pending_ids(&s).await, ids([message(1, resent)]));
}

async fn challenge_codes_and_enrolment_codes_are_kept_apart(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let email = factor(1, ann, FactorKind::Email, t0());
    ops::add_factor(&s, &email, Some(&factor_code(1, &email, None, t0())), &[]).await.unwrap();
    let (login, other) = (challenge(1, ann, t0()), challenge(2, ann, t0()));
    s.mfa.create_challenge(&login).await.unwrap();
    s.mfa.create_challenge(&other).await.unwrap();
    // A code for the login does not retire the enrolment code.
    let sent = t0() + TimeDelta::seconds(1);
    ops::add_code(&s, &factor_code(2, &email, Some(login.id()), sent), &[]).await.unwrap();
    let now = t0() + TimeDelta::minutes(1);

    assert!(!s.mfa.use_code(email.id(), None, &code_hash(2), now).await.unwrap(), "login code for enrolment");
    assert!(
        !s.mfa.use_code(email.id(), Some(login.id()), &code_hash(1), now).await.unwrap(),
        "enrolment code for login"
    );
    assert!(!s.mfa.use_code(email.id(), Some(other.id()), &code_hash(2), now).await.unwrap(), "another challenge");
    assert!(s.mfa.use_code(email.id(), Some(login.id()), &code_hash(2), now).await.unwrap());
    assert!(s.mfa.use_code(email.id(), None, &code_hash(1), now).await.unwrap());
}

async fn challenges_are_stored_and_read_back(s: Stores) {
    let (ann, bob) = ann_and_bob(&s).await;
    let login = challenge(1, ann, t0());
    let bare = challenge_from(2, bob, ClientInfo::new(None, None), t0());
    s.mfa.create_challenge(&login).await.unwrap();
    s.mfa.create_challenge(&bare).await.unwrap();
    assert_eq!(s.mfa.challenge(login.id()).await.unwrap(), Some(login));
    assert_eq!(s.mfa.challenge(bare.id()).await.unwrap(), Some(bare));
    assert_eq!(s.mfa.challenge(Uuid::from_u128(0xdead)).await.unwrap(), None);
}

async fn challenge_failures_stop_at_the_limit(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let login = challenge(1, ann, t0());
    s.mfa.create_challenge(&login).await.unwrap();
    for n in 1..=5 {
        assert_eq!(ops::record_challenge_failure(&s, login.id()).await.unwrap(), Some(n));
    }
    assert_eq!(ops::record_challenge_failure(&s, login.id()).await.unwrap(), None);
    assert_eq!(s.mfa.challenge(login.id()).await.unwrap().unwrap().attempts(), 5);
    assert_eq!(ops::record_challenge_failure(&s, Uuid::from_u128(0xdead)).await.unwrap(), None);
    // A passed challenge counts no more failures.
    let passed = challenge(2, ann, t0());
    s.mfa.create_challenge(&passed).await.unwrap();
    assert!(ops::pass_challenge(&s, passed.id(), t0()).await.unwrap());
    assert_eq!(ops::record_challenge_failure(&s, passed.id()).await.unwrap(), None);
}

async fn concurrent_challenge_failures_stop_at_the_limit(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let login = challenge(1, ann, t0());
    s.mfa.create_challenge(&login).await.unwrap();
    let id = login.id();
    let results = race(20, || {
        let s = s.clone();
        async move { ops::record_challenge_failure(&s, id).await.unwrap() }
    })
    .await;
    let mut counted: Vec<u32> = results.into_iter().flatten().collect();
    counted.sort_unstable();
    assert_eq!(counted, vec![1, 2, 3, 4, 5]);
    assert_eq!(s.mfa.challenge(login.id()).await.unwrap().unwrap().attempts(), 5);
}

async fn a_challenge_passes_once_while_live(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let login = challenge(1, ann, t0());
    s.mfa.create_challenge(&login).await.unwrap();
    let now = t0() + TimeDelta::minutes(1);
    assert!(ops::pass_challenge(&s, login.id(), now).await.unwrap());
    assert!(!ops::pass_challenge(&s, login.id(), now).await.unwrap(), "passed already");
    assert_eq!(s.mfa.challenge(login.id()).await.unwrap().unwrap().consumed_at(), Some(now));
    assert!(!ops::pass_challenge(&s, Uuid::from_u128(0xdead), now).await.unwrap());

    let expiring = challenge(2, ann, t0());
    s.mfa.create_challenge(&expiring).await.unwrap();
    assert!(!ops::pass_challenge(&s, expiring.id(), expiring.expires_at()).await.unwrap(), "expired");
    let just_before = expiring.expires_at() - TimeDelta::microseconds(1);
    assert!(ops::pass_challenge(&s, expiring.id(), just_before).await.unwrap());

    let exhausted = challenge(3, ann, t0());
    s.mfa.create_challenge(&exhausted).await.unwrap();
    for _ in 0..5 {
        ops::record_challenge_failure(&s, exhausted.id()).await.unwrap();
    }
    // Attempts are the caller's check (before a code is accepted): wrong codes
    // racing with an accepted right one must not lock it out.
    assert!(ops::pass_challenge(&s, exhausted.id(), now).await.unwrap(), "attempts are not checked here");
    assert!(!ops::pass_challenge(&s, exhausted.id(), now).await.unwrap(), "but still only once");
}

async fn concurrent_passes_of_a_challenge_succeed_once(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let login = challenge(1, ann, t0());
    s.mfa.create_challenge(&login).await.unwrap();
    let now = t0() + TimeDelta::minutes(1);
    let id = login.id();
    let results = race(20, || {
        let s = s.clone();
        async move { ops::pass_challenge(&s, id, now).await.unwrap() }
    })
    .await;
    assert_eq!(results.iter().filter(|&&passed| passed).count(), 1, "{results:?}");
}

async fn concurrent_uses_of_one_code_succeed_once(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let sms = factor(1, ann, FactorKind::Sms, t0());
    ops::add_factor(&s, &sms, Some(&factor_code(1, &sms, None, t0())), &[]).await.unwrap();
    let now = t0() + TimeDelta::minutes(1);
    let (mfa, sms) = (Arc::clone(&s.mfa), sms.id());
    let results = race(20, || {
        let mfa = Arc::clone(&mfa);
        async move { mfa.use_code(sms, None, &code_hash(1), now).await.unwrap() }
    })
    .await;
    assert_eq!(results.iter().filter(|&&used| used).count(), 1, "{results:?}");
}

async fn failures_since_sums_the_users_challenges(s: Stores) {
    let (ann, bob) = ann_and_bob(&s).await;
    assert_eq!(s.mfa.failures_since(ann, t0()).await.unwrap(), 0);
    let later = t0() + TimeDelta::minutes(1);
    for (c, failures) in [(challenge(1, ann, t0()), 2), (challenge(2, ann, later), 3), (challenge(3, bob, later), 4)] {
        s.mfa.create_challenge(&c).await.unwrap();
        for _ in 0..failures {
            ops::record_challenge_failure(&s, c.id()).await.unwrap();
        }
    }
    assert_eq!(s.mfa.failures_since(ann, t0() - TimeDelta::hours(1)).await.unwrap(), 5);
    assert_eq!(s.mfa.failures_since(ann, t0()).await.unwrap(), 5);
    assert_eq!(s.mfa.failures_since(ann, t0() + TimeDelta::microseconds(1)).await.unwrap(), 3);
    assert_eq!(s.mfa.failures_since(ann, later).await.unwrap(), 3);
    assert_eq!(s.mfa.failures_since(ann, later + TimeDelta::microseconds(1)).await.unwrap(), 0);
    assert_eq!(s.mfa.failures_since(bob, t0()).await.unwrap(), 4);
}

/// The second-factor checks of a unit of work (challenges, TOTP steps,
/// codes) are the repository's guarded statements inside its transaction:
/// it reads its own writes, and dropping it uncommitted keeps none of them.
async fn a_unit_of_work_checks_codes_and_counts_failures_in_its_own_transaction(s: Stores) {
    let (ann, bob) = ann_and_bob(&s).await;
    let now = t0() + TimeDelta::minutes(1);
    let login = challenge(1, ann, t0());
    s.mfa.create_challenge(&login).await.unwrap();
    let (totp, sms) = (factor(1, ann, FactorKind::Totp, t0()), factor(2, ann, FactorKind::Sms, t0()));
    ops::add_factor(&s, &totp, None, &[]).await.unwrap();
    ops::add_factor(&s, &sms, Some(&factor_code(1, &sms, Some(login.id()), t0())), &[]).await.unwrap();
    let proof = MfaChallenge::failed_proof(Uuid::from_u128(0xfa11), ann, now);
    {
        let uow = s.uow.begin().await.unwrap();
        uow.accounts().lock(ann).await.unwrap().unwrap();
        assert_eq!(uow.challenges().record_failure(login.id()).await.unwrap(), Some(1));
        assert!(uow.factors().advance_totp_step(totp.id(), 100).await.unwrap());
        assert!(uow.factors().use_code(sms.id(), Some(login.id()), &code_hash(1), now).await.unwrap());
        uow.challenges().insert(&proof).await.unwrap();
        assert_eq!(uow.challenges().failures_since(ann, t0()).await.unwrap(), 2, "its own writes");
    }
    assert_eq!(s.mfa.failures_since(ann, t0()).await.unwrap(), 0, "dropped: nothing kept");
    assert!(s.mfa.advance_totp_step(totp.id(), 100).await.unwrap(), "dropped: the step is free");
    // (The code it consumed is still usable: see below.)

    let uow = s.uow.begin().await.unwrap();
    uow.accounts().lock(ann).await.unwrap().unwrap();
    assert_eq!(uow.challenges().get(login.id()).await.unwrap(), Some(login.clone()));
    assert_eq!(uow.challenges().get(Uuid::from_u128(0xdead)).await.unwrap(), None);
    for n in 1..=5 {
        assert_eq!(uow.challenges().record_failure(login.id()).await.unwrap(), Some(n));
    }
    assert_eq!(uow.challenges().record_failure(login.id()).await.unwrap(), None, "at its limit");
    assert!(!uow.factors().advance_totp_step(totp.id(), 100).await.unwrap(), "used outside");
    assert!(uow.factors().advance_totp_step(totp.id(), 101).await.unwrap());
    assert!(!uow.factors().use_code(sms.id(), Some(login.id()), &code_hash(9), now).await.unwrap(), "wrong");
    assert!(uow.factors().use_code(sms.id(), Some(login.id()), &code_hash(1), now).await.unwrap());
    uow.challenges().insert(&proof).await.unwrap();
    assert_eq!(uow.challenges().failures_since(ann, t0()).await.unwrap(), 6);
    assert_eq!(uow.challenges().failures_since(bob, t0()).await.unwrap(), 0);
    uow.commit().await.unwrap();
    assert_eq!(s.mfa.failures_since(ann, t0()).await.unwrap(), 6);
    assert!(!s.mfa.advance_totp_step(totp.id(), 101).await.unwrap());
    assert!(!s.mfa.use_code(sms.id(), Some(login.id()), &code_hash(1), now).await.unwrap(), "consumed");

    let second = challenge(2, ann, t0());
    s.mfa.create_challenge(&second).await.unwrap();
    let uow = s.uow.begin().await.unwrap();
    assert!(uow.challenges().pass(second.id(), now).await.unwrap());
    assert!(!uow.challenges().pass(second.id(), now).await.unwrap(), "passes once");
    assert!(!uow.challenges().pass(Uuid::from_u128(0xdead), now).await.unwrap());
    uow.challenges().delete(proof.id()).await.unwrap();
    uow.challenges().delete(Uuid::from_u128(0xdead)).await.unwrap();
    uow.commit().await.unwrap();
    assert_eq!(s.mfa.challenge(second.id()).await.unwrap().unwrap().consumed_at(), Some(now));
    assert_eq!(s.mfa.challenge(proof.id()).await.unwrap(), None);
    assert_eq!(s.mfa.failures_since(ann, t0()).await.unwrap(), 5);

    let ghost = UserId::from_uuid(Uuid::from_u128(9));
    let uow = s.uow.begin().await.unwrap();
    let r = uow.challenges().insert(&MfaChallenge::failed_proof(Uuid::from_u128(0xfa12), ghost, now)).await;
    assert!(matches!(r, Err(StoreError::Gone(_))), "a challenge of an unknown user: {r:?}");
}

/// OWASP ASVS 5.0 V6.3.1, NIST SP 800-63B-4 §3.2.2: checks that read the
/// account's recent failures and record one under the account's lock are
/// decided one after the other, so 30 at once record exactly the limit (10).
async fn checks_under_the_accounts_lock_never_pass_the_account_limit(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let mut ids = Vec::new();
    for n in 1..=6 {
        let c = challenge(n, ann, t0());
        s.mfa.create_challenge(&c).await.unwrap();
        ids.push(c.id());
    }
    let (uow, ids) = (Arc::clone(&s.uow), Arc::new(ids));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = race(30, || {
        let (uow, ids, next) = (Arc::clone(&uow), Arc::clone(&ids), Arc::clone(&next));
        async move {
            let id = ids[next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % ids.len()];
            let work = uow.begin().await.unwrap();
            work.accounts().lock(ann).await.unwrap().unwrap();
            if work.challenges().failures_since(ann, t0()).await.unwrap() >= 10 {
                return false;
            }
            let counted = work.challenges().record_failure(id).await.unwrap().is_some();
            work.commit().await.unwrap();
            counted
        }
    })
    .await;
    assert_eq!(counted.iter().filter(|&&c| c).count(), 10, "{counted:?}");
    assert_eq!(s.mfa.failures_since(ann, t0()).await.unwrap(), 10);
}

// ------------------------------------------------------------------- audit

/// Audit record number `n`: `kind` at `at`, by `actor` about `subject`.
fn audit_record(n: u128, kind: &str, at: DateTime<Utc>, actor: Option<UserId>, subject: Option<UserId>) -> AuditRecord {
    AuditRecord {
        id: Uuid::from_u128(0xa0d1_0000 + n),
        kind: kind.into(),
        occurred_at: at,
        actor,
        subject,
        organization: None,
        client: ClientInfo::new(Some("Mozilla/5.0 (X11; Linux x86_64)"), Some("203.0.113.7".into())),
        outcome: AuditOutcome::Success,
        details: vec![("n".into(), n.to_string())],
    }
}

/// Outbox message `n` carrying `record`.
fn audited(n: u128, record: &AuditRecord) -> OutboxMessage {
    OutboxMessage { audit: Some(record.clone()), ..message(n, record.occurred_at) }
}

/// Facts with no change to ride on, each on its own outbox message (whose
/// id is derived from the record's), as `AuditLog::record` takes them.
fn facts(records: &[AuditRecord]) -> Vec<OutboxMessage> {
    records
        .iter()
        .map(|r| OutboxMessage {
            id: Uuid::from_u128(0xfac7_0000_0000 + r.id.as_u128()),
            event_type: "audit.recorded".into(),
            payload: r.kind.clone().into_bytes(),
            occurred_at: r.occurred_at,
            audit: Some(r.clone()),
        })
        .collect()
}

/// Every audit row of `user`, newest first (one large page).
async fn trail(s: &Stores, user: UserId) -> Vec<AuditRecord> {
    s.audit.list(user, None, 1000).await.unwrap()
}

/// The ids of `records`.
fn audit_ids(records: &[AuditRecord]) -> Vec<Uuid> {
    records.iter().map(|r| r.id).collect()
}

async fn audit_rows_ride_on_outbox_messages_atomically(s: Stores) {
    let ann = user(1, "ann@example.com");
    let signed_up = audit_record(1, "user.signed_up", t0(), Some(ann.id()), Some(ann.id()));
    ops::create_user(&s, &ann, &first_verification(&ann), &[audited(1, &signed_up)]).await.unwrap();
    assert_eq!(trail(&s, ann.id()).await, vec![signed_up.clone()]);

    // A refused sign-up writes neither its user, its event nor its audit row.
    let bob = user(2, "ANN@example.com");
    let refused = audit_record(2, "user.signed_up", t0(), Some(bob.id()), Some(bob.id()));
    let err = ops::create_user(&s, &bob, &first_verification(&bob), &[audited(2, &refused)]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(trail(&s, bob.id()).await.is_empty());

    // A new session's audit row comes with it; a refused one's does not.
    let now = t0() + TimeDelta::minutes(1);
    let sess = session(1, &ann, now, now + TimeDelta::days(30));
    let login = audit_record(3, "login.succeeded", now, Some(ann.id()), Some(ann.id()));
    ops::create_session(&s, &sess, &token(1, now, TimeDelta::days(30)), &[audited(3, &login)]).await.unwrap();
    let ghost = user(9, "ghost@example.com");
    let ghosts = session(2, &ghost, now, now + TimeDelta::days(30));
    let ghost_login = audit_record(4, "login.succeeded", now, Some(ghost.id()), Some(ghost.id()));
    let result =
        ops::create_session(&s, &ghosts, &token(2, now, TimeDelta::days(30)), &[audited(4, &ghost_login)]).await;
    assert!(matches!(result, Err(StoreError::Gone(_))), "the foreign key refuses it: {result:?}");
    assert!(trail(&s, ghost.id()).await.is_empty());

    assert_eq!(trail(&s, ann.id()).await, vec![login, signed_up]);
    let mut sent = pending(&s).await;
    sent.sort();
    assert_eq!(sent, vec![message(1, t0()).id, message(3, now).id]);
    // A message without an audit record writes no audit row.
    let other = session(3, &ann, now, now + TimeDelta::days(30));
    ops::create_session(&s, &other, &token(3, now, TimeDelta::days(30)), &[message(5, now)]).await.unwrap();
    assert_eq!(trail(&s, ann.id()).await.len(), 2);
}

async fn record_then_list_newest_first_with_every_field(s: Stores) {
    let ann = UserId::from_uuid(Uuid::from_u128(1));
    let bob = UserId::from_uuid(Uuid::from_u128(2));
    s.audit.record(&facts(&[])).await.unwrap();
    let failed = AuditRecord {
        outcome: AuditOutcome::Failure,
        actor: None,
        organization: Some("org_42".into()),
        client: ClientInfo::default(),
        details: vec![
            ("reason".into(), "invalid_credentials".into()),
            ("note".into(), "quote \" backslash \\ newline \n tab \t nul \u{0} ünïcödé 😀 {\"x\":[1]}".into()),
            ("empty".into(), String::new()),
        ],
        ..audit_record(1, "login.failed", t0() + TimeDelta::microseconds(1), None, Some(ann))
    };
    let signed_up =
        AuditRecord { details: Vec::new(), ..audit_record(2, "user.signed_up", t0(), Some(ann), Some(ann)) };
    let later = audit_record(3, "session.revoked", t0() + TimeDelta::hours(1), Some(ann), Some(ann));
    let bobs = audit_record(4, "login.succeeded", t0() + TimeDelta::minutes(1), Some(bob), Some(bob));
    s.audit.record(&facts(&[failed.clone(), signed_up.clone(), bobs.clone()])).await.unwrap();
    s.audit.record(&facts(std::slice::from_ref(&later))).await.unwrap();
    // Each fact's message goes out too.
    let mut sent = pending(&s).await;
    sent.sort();
    let mut expected: Vec<Uuid> =
        facts(&[failed.clone(), signed_up.clone(), bobs.clone(), later.clone()]).into_iter().map(|m| m.id).collect();
    expected.sort();
    assert_eq!(sent, expected);

    assert_eq!(trail(&s, ann).await, vec![later.clone(), failed.clone(), signed_up]);
    assert_eq!(trail(&s, bob).await, vec![bobs]);
    assert_eq!(s.audit.list(ann, None, 2).await.unwrap(), vec![later, failed]);
    assert!(s.audit.list(ann, None, 0).await.unwrap().is_empty());
    assert!(trail(&s, UserId::from_uuid(Uuid::from_u128(404))).await.is_empty());
}

async fn list_finds_rows_by_actor_or_subject(s: Stores) {
    let ann = UserId::from_uuid(Uuid::from_u128(1));
    let bob = UserId::from_uuid(Uuid::from_u128(2));
    let at = |m: i64| t0() + TimeDelta::minutes(m);
    let ann_on_bob = audit_record(1, "admin.user_locked", at(1), Some(ann), Some(bob));
    let bob_on_ann = audit_record(2, "admin.user_locked", at(2), Some(bob), Some(ann));
    let anonymous_on_ann = audit_record(3, "login.failed", at(3), None, Some(ann));
    let bob_alone = audit_record(4, "login.succeeded", at(4), Some(bob), Some(bob));
    let ann_alone = audit_record(5, "login.succeeded", at(5), Some(ann), Some(ann));
    let ann_no_subject = audit_record(6, "org.created", at(6), Some(ann), None);
    let nobody = audit_record(7, "login.failed", at(7), None, None);
    s.audit
        .record(&facts(&[
            ann_on_bob.clone(),
            bob_on_ann.clone(),
            anonymous_on_ann.clone(),
            bob_alone.clone(),
            ann_alone.clone(),
            ann_no_subject.clone(),
            nobody,
        ]))
        .await
        .unwrap();

    // A row whose actor and subject are both the user is listed once.
    assert_eq!(
        trail(&s, ann).await,
        vec![ann_no_subject, ann_alone, anonymous_on_ann, bob_on_ann.clone(), ann_on_bob.clone()]
    );
    assert_eq!(trail(&s, bob).await, vec![bob_alone, bob_on_ann, ann_on_bob]);
}

async fn paging_with_the_cursor_returns_every_row_once(s: Stores) {
    let ann = UserId::from_uuid(Uuid::from_u128(1));
    let bob = UserId::from_uuid(Uuid::from_u128(2));
    let same = t0() + TimeDelta::minutes(1);
    // (record number, time): several rows share an instant, and ids do not
    // follow time, so only the id can order rows of one instant.
    let rows = [
        (9, t0()),
        (5, same),
        (1, same),
        (7, same),
        (3, same + TimeDelta::microseconds(1)),
        (8, same - TimeDelta::microseconds(1)),
        (2, t0() + TimeDelta::hours(1)),
        (6, t0() + TimeDelta::hours(1)),
        (4, t0() + TimeDelta::days(1)),
    ];
    let records: Vec<AuditRecord> =
        rows.iter().map(|&(n, at)| audit_record(n, "login.succeeded", at, Some(ann), Some(ann))).collect();
    s.audit.record(&facts(&records)).await.unwrap();
    // Another user's rows in the same instants never show up.
    s.audit.record(&facts(&[audit_record(10, "login.succeeded", same, Some(bob), Some(bob))])).await.unwrap();

    let mut newest_first = records.clone();
    newest_first.sort_by_key(|r| std::cmp::Reverse((r.occurred_at, r.id)));
    assert_eq!(trail(&s, ann).await, newest_first);

    for limit in 1..=4 {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = s.audit.list(ann, after, limit).await.unwrap();
            assert!(page.len() <= limit as usize, "limit {limit}: {page:?}");
            let Some(last) = page.last() else { break };
            after = Some(AuditCursor { occurred_at: last.occurred_at, id: last.id });
            seen.extend(page);
        }
        assert_eq!(audit_ids(&seen), audit_ids(&newest_first), "limit {limit}");
    }

    // The cursor need not be a stored row: strictly after it, in that order.
    let cursor = AuditCursor { occurred_at: same, id: Uuid::from_u128(0xa0d1_0000 + 6) };
    let after = s.audit.list(ann, Some(cursor), 100).await.unwrap();
    let expected: Vec<_> =
        newest_first.iter().filter(|r| (r.occurred_at, r.id) < (cursor.occurred_at, cursor.id)).cloned().collect();
    assert_eq!(audit_ids(&after), audit_ids(&expected));
    assert_eq!(audit_ids(&after), [5, 1, 8, 9].map(|n| Uuid::from_u128(0xa0d1_0000 + n)));
}

async fn revoke_writes_its_outbox_only_when_the_session_exists(s: Stores) {
    let (ann, sess) = user_with_session(&s).await;
    let now = t0() + TimeDelta::minutes(5);
    let unknown = SessionId::from_uuid(Uuid::from_u128(0xdead));
    let nothing = audit_record(1, "session.revoked", now, Some(ann.id()), Some(ann.id()));
    assert_eq!(ops::revoke(&s, unknown, RevokeReason::Logout, &[audited(1, &nothing)], now).await.unwrap(), None);
    assert!(pending(&s).await.is_empty());
    assert!(trail(&s, ann.id()).await.is_empty());

    let revoked = audit_record(2, "session.revoked", now, Some(ann.id()), Some(ann.id()));
    let got = ops::revoke(&s, sess.id(), RevokeReason::Logout, &[audited(2, &revoked)], now).await.unwrap();
    assert_eq!(got, Some(stored(SessionFields { revoked_at: Some(now), ..fields(&sess.clone()) })));
    assert_eq!(pending(&s).await, vec![message(2, now).id]);
    assert_eq!(trail(&s, ann.id()).await, vec![revoked]);
}

async fn revoke_all_writes_its_outbox_with_the_revocations(s: Stores) {
    let (ann, sess) = user_with_session(&s).await;
    let now = t0() + TimeDelta::minutes(5);
    let fact = audit_record(1, "session.revoked_all", now, Some(ann.id()), Some(ann.id()));
    let revoked =
        ops::revoke_all(&s, ann.id(), None, RevokeReason::RevokedByUser, &[audited(1, &fact)], now).await.unwrap();
    assert_eq!(revoked, vec![stored(SessionFields { revoked_at: Some(now), ..fields(&sess) })]);
    assert_eq!(pending(&s).await, vec![message(1, now).id]);
    assert_eq!(trail(&s, ann.id()).await, vec![fact]);
}

async fn remove_email_writes_its_outbox_only_when_removed(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let now = t0() + TimeDelta::minutes(1);
    let v = verification(10, ann.id(), "ann@work.example", Purpose::VerifyEmail, now);
    ops::add_email(&s, ann.id(), v.email(), &v, &[], now).await.unwrap();

    let ann_id = ann.id();
    let attempt = |n: u128, address: &'static str| {
        let s = s.clone();
        let fact = audit_record(n, "email.removed", now, Some(ann_id), Some(ann_id));
        async move { ops::remove_email(&s, ann_id, &email(address), &[audited(n, &fact)], now).await.unwrap() }
    };
    assert_eq!(attempt(1, "nobody@example.com").await, EmailRemoval::NotFound);
    assert_eq!(attempt(2, "ann@example.com").await, EmailRemoval::IsPrimary);
    assert!(pending(&s).await.is_empty());
    assert!(trail(&s, ann.id()).await.is_empty());

    assert_eq!(attempt(3, "ann@work.example").await, EmailRemoval::Removed);
    assert_eq!(pending(&s).await, vec![message(3, now).id]);
    assert_eq!(audit_ids(&trail(&s, ann.id()).await), vec![Uuid::from_u128(0xa0d1_0000 + 3)]);
}

async fn delete_writes_its_outbox_only_when_the_user_existed(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let now = t0() + TimeDelta::hours(1);
    let nobody = UserId::from_uuid(Uuid::from_u128(404));
    let nothing = audit_record(1, "user.deleted", now, Some(nobody), Some(nobody));
    assert!(ops::delete_user(&s, nobody, &[audited(1, &nothing)], now).await.unwrap().is_empty());
    assert!(pending(&s).await.is_empty());
    assert!(trail(&s, nobody).await.is_empty());

    let deleted = audit_record(2, "user.deleted", now, Some(ann.id()), Some(ann.id()));
    ops::delete_user(&s, ann.id(), &[audited(2, &deleted)], now).await.unwrap();
    assert_eq!(pending(&s).await, vec![message(2, now).id]);
    assert_eq!(trail(&s, ann.id()).await, vec![deleted]);

    // Deleting it again changes and writes nothing.
    let again = audit_record(3, "user.deleted", now, Some(ann.id()), Some(ann.id()));
    assert!(ops::delete_user(&s, ann.id(), &[audited(3, &again)], now).await.unwrap().is_empty());
    assert_eq!(pending(&s).await, vec![message(2, now).id]);
    assert_eq!(trail(&s, ann.id()).await.len(), 1);
}

async fn audit_rows_survive_the_users_deletion(s: Stores) {
    let ann = user(1, "ann@example.com");
    let signed_up = audit_record(1, "user.signed_up", t0(), Some(ann.id()), Some(ann.id()));
    ops::create_user(&s, &ann, &first_verification(&ann), &[audited(1, &signed_up)]).await.unwrap();
    let failed = AuditRecord {
        outcome: AuditOutcome::Failure,
        ..audit_record(2, "login.failed", t0() + TimeDelta::minutes(1), None, Some(ann.id()))
    };
    s.audit.record(&facts(std::slice::from_ref(&failed))).await.unwrap();

    let now = t0() + TimeDelta::hours(1);
    let deleted = audit_record(3, "user.deleted", now, Some(ann.id()), Some(ann.id()));
    ops::delete_user(&s, ann.id(), &[audited(3, &deleted)], now).await.unwrap();
    assert_eq!(s.users.get(ann.id()).await.unwrap(), None);
    assert_eq!(trail(&s, ann.id()).await, vec![deleted, failed, signed_up]);
    // A new account with the same address does not inherit the trail.
    let again = user(2, "ann@example.com");
    sign_up(&s, &again).await;
    assert!(trail(&s, again.id()).await.is_empty());
}

// ---------------------------------------------------------------- SQL only

async fn migrations_applied_twice_are_a_no_op(t: TestDb) {
    let s = t.stores();
    let (ann, _) = user_with_session(&s).await;
    t.db.migrate().await.unwrap();
    t.db.migrate().await.unwrap();
    assert!(s.users.find_credentials(ann.email()).await.unwrap().is_some());
    assert_eq!(t.count("seaql_migrations").await, 7);
}

async fn failed_sign_up_leaves_no_user_row(t: TestDb) {
    let s = t.stores();
    let ann = user(1, "ann@example.com");
    ops::create_user(&s, &ann, &first_verification(&ann), &[message(1, t0())]).await.unwrap();
    let bob = user(2, "ann@example.com");
    let err = ops::create_user(&s, &bob, &first_verification(&bob), &[message(2, t0())]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(ref m) if m.contains("email")), "{err:?}");
    assert_eq!(t.count("users").await, 1);
    assert_eq!(t.count("user_emails").await, 1);
    assert_eq!(t.count("verifications").await, 1);
    assert_eq!(t.count("outbox").await, 1);
}

async fn session_for_an_unknown_user_is_refused(t: TestDb) {
    let s = t.stores();
    let ghost = user(9, "ghost@example.com");
    let first = token(1, t0(), TimeDelta::days(30));
    let err = ops::create_session(&s, &session(1, &ghost, t0(), first.expires_at), &first, &[message(1, t0())])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Gone(_)), "{err:?}");
    assert_eq!(t.count("sessions").await, 0);
    assert_eq!(t.count("refresh_tokens").await, 0);
    assert_eq!(t.count("outbox").await, 0);
}

async fn prune_deletes_the_refresh_tokens_of_pruned_sessions(t: TestDb) {
    let s = t.stores();
    let (ann, sess) = user_with_session(&s).await;
    let now = t0() + TimeDelta::hours(1);
    ops::rotate(&s, &hash(1), &token(2, now, TimeDelta::days(30)), &ClientInfo::default(), now).await.unwrap();
    ops::revoke(&s, sess.id(), RevokeReason::Logout, &[], now).await.unwrap();
    let expired = session(2, &ann, t0(), t0() + TimeDelta::days(1));
    ops::create_session(&s, &expired, &token(3, t0(), TimeDelta::days(1)), &[]).await.unwrap();
    let live = session(3, &ann, t0(), t0() + TimeDelta::days(30));
    ops::create_session(&s, &live, &token(4, t0(), TimeDelta::days(30)), &[]).await.unwrap();
    assert_eq!(t.count("refresh_tokens").await, 4);

    assert_eq!(s.sessions.prune(t0() + TimeDelta::days(5)).await.unwrap(), 2);
    assert_eq!(t.count("sessions").await, 1);
    assert_eq!(t.count("refresh_tokens").await, 1);
    assert_eq!(s.sessions.find_by_refresh_token(&hash(4)).await.unwrap(), Some(live));
}

/// Sessions stored before `absolute_expires_at` existed end when they were
/// going to: the migration copies their `expires_at`. (Rolled back and
/// applied again here, which also exercises its `down`.)
async fn migration_gives_existing_sessions_their_expiry_as_absolute_end(t: TestDb) {
    use gatehouse_migration::{Migrator, MigratorTrait};

    let s = t.stores();
    let (_, sess) = user_with_session(&s).await;
    assert_ne!(sess.absolute_expires_at(), sess.expires_at());
    let raw = t.raw().await;
    // Back to before the session-lifetimes migration (and the audit,
    // tombstone and organization tables after it).
    Migrator::down(&raw, Some(4)).await.unwrap();
    assert_eq!(t.count("seaql_migrations").await, 3);
    Migrator::up(&raw, None).await.unwrap();
    raw.close().await.unwrap();
    assert_eq!(t.count("seaql_migrations").await, 7);

    let migrated = s.sessions.get(sess.id()).await.unwrap();
    assert_eq!(
        migrated,
        Some(stored(SessionFields { absolute_expires_at: sess.expires_at(), ..fields(&sess.clone()) }))
    );
    // And such a session still rotates, up to that end.
    let now = t0() + TimeDelta::days(1);
    let rotation =
        ops::rotate(&s, &hash(1), &token(2, now, TimeDelta::days(60)), &ClientInfo::default(), now).await.unwrap();
    assert!(matches!(rotation, Rotation::Rotated(ref r) if r.expires_at() == sess.expires_at()), "{rotation:?}");
}

async fn deleting_a_user_cascades_to_emails_sessions_and_tokens(t: TestDb) {
    let s = t.stores();
    user_with_session(&s).await;
    let bob = user(2, "bob@example.com");
    sign_up(&s, &bob).await;
    let bobs = session(2, &bob, t0(), t0() + TimeDelta::days(30));
    ops::create_session(&s, &bobs, &token(2, t0(), TimeDelta::days(30)), &[]).await.unwrap();

    t.execute("DELETE FROM users WHERE id IN (SELECT user_id FROM user_emails WHERE email = 'ann@example.com')").await;

    assert_eq!(t.count("users").await, 1);
    assert_eq!(t.count("user_emails").await, 1);
    assert_eq!(t.count("sessions").await, 1);
    assert_eq!(t.count("refresh_tokens").await, 1);
    assert_eq!(t.count("verifications").await, 1);
    assert_eq!(s.sessions.find_by_refresh_token(&hash(2)).await.unwrap().map(|s| s.id()), Some(bobs.id()));
    assert_eq!(s.sessions.find_by_refresh_token(&hash(1)).await.unwrap(), None);
}

async fn deleting_a_user_cascades_to_factors_codes_challenges_and_backup_codes(t: TestDb) {
    let s = t.stores();
    let (ann, bob) = ann_and_bob(&s).await;
    for (n, user) in [(1, ann), (2, bob)] {
        let email = active_factor(&s, n, user, FactorKind::Email, &backups(10 * n..=10 * n + 1)).await;
        let login = challenge(n, user, t0());
        s.mfa.create_challenge(&login).await.unwrap();
        ops::add_code(&s, &factor_code(n, &email, Some(login.id()), t0()), &[]).await.unwrap();
    }
    t.execute("DELETE FROM users WHERE id IN (SELECT user_id FROM user_emails WHERE email = 'ann@example.com')").await;

    assert_eq!(t.count("mfa_factors").await, 1);
    assert_eq!(t.count("mfa_codes").await, 1);
    assert_eq!(t.count("mfa_challenges").await, 1);
    assert_eq!(t.count("backup_codes").await, 2);
    assert_eq!(s.mfa.factors(bob).await.unwrap().len(), 1);
}

async fn removing_a_factor_deletes_its_codes(t: TestDb) {
    let s = t.stores();
    let (ann, _) = ann_and_bob(&s).await;
    let email = factor(1, ann, FactorKind::Email, t0());
    ops::add_factor(&s, &email, Some(&factor_code(1, &email, None, t0())), &[]).await.unwrap();
    ops::add_code(&s, &factor_code(2, &email, None, t0() + TimeDelta::seconds(1)), &[]).await.unwrap();
    assert_eq!(t.count("mfa_codes").await, 2);
    assert!(ops::remove_factor(&s, ann, email.id(), &[]).await.unwrap());
    assert_eq!(t.count("mfa_codes").await, 0);
}

async fn mfa_changes_for_an_unknown_user_store_nothing(t: TestDb) {
    let s = t.stores();
    let ghost = UserId::from_uuid(Uuid::from_u128(9));
    let f = factor(1, ghost, FactorKind::Email, t0());
    let err = ops::add_factor(&s, &f, Some(&factor_code(1, &f, None, t0())), &[message(1, t0())]).await.unwrap_err();
    assert!(matches!(err, StoreError::Gone(_)), "{err:?}");
    let err = ops::replace_backup_codes(&s, ghost, &backups(1..=2), &[message(2, t0())], t0()).await.unwrap_err();
    assert!(matches!(err, StoreError::Gone(_)), "{err:?}");
    let err = s.mfa.create_challenge(&challenge(1, ghost, t0())).await.unwrap_err();
    assert!(matches!(err, StoreError::Gone(_)), "{err:?}");
    for table in ["mfa_factors", "mfa_codes", "mfa_challenges", "backup_codes", "outbox"] {
        assert_eq!(t.count(table).await, 0, "{table}");
    }
}

async fn probe_answers(t: TestDb) {
    assert_eq!(t.db.name(), "database");
    t.db.check().await.unwrap();
}

async fn claim_skips_rows_another_transaction_has_locked(t: TestDb) {
    let s = t.stores();
    sign_up(&s, &user(1, "ann@example.com")).await;
    let m1 = enqueue(&s, 1, t0()).await;
    let m2 = enqueue(&s, 2, t0() + TimeDelta::milliseconds(1)).await;
    let now = t0() + TimeDelta::minutes(1);

    // Another relay's claim, still in flight, holds the oldest row.
    let other = t.raw().await;
    let txn = other.begin().await.unwrap();
    let id = m1.id.simple().to_string();
    txn.execute_unprepared(&format!("SELECT id FROM outbox WHERE id = '{id}' FOR UPDATE")).await.unwrap();

    assert_eq!(s.outbox.claim(10, now, now + TimeDelta::seconds(30)).await.unwrap(), claimed(&[&m2], 0));
    txn.rollback().await.unwrap();
    other.close().await.unwrap();
    assert_eq!(s.outbox.claim(10, now, now + TimeDelta::seconds(30)).await.unwrap(), claimed(&[&m1], 0));
}

async fn audit_details_are_stored_as_a_json_object(t: TestDb) {
    let s = t.stores();
    let ann = UserId::from_uuid(Uuid::from_u128(1));
    let record = AuditRecord {
        details: vec![("reason".into(), "invalid_credentials".into()), ("q".into(), "a\"b\\c\nd".into())],
        ..audit_record(1, "login.failed", t0(), None, Some(ann))
    };
    s.audit.record(&facts(std::slice::from_ref(&record))).await.unwrap();
    assert_eq!(
        t.query_string("SELECT details FROM audit_events").await,
        r#"{"reason":"invalid_credentials","q":"a\"b\\c\nd"}"#
    );
    assert_eq!(t.query_string("SELECT outcome FROM audit_events").await, "success");
    assert_eq!(trail(&s, ann).await, vec![record]);

    // A value no Gatehouse version writes is reported, not guessed at.
    t.execute("UPDATE audit_events SET details = '[\"not\",\"an object\"]'").await;
    let err = s.audit.list(ann, None, 10).await.unwrap_err();
    assert!(matches!(err, StoreError::Internal(_)), "{err:?}");
}

async fn a_refused_change_writes_no_audit_row(t: TestDb) {
    let s = t.stores();
    let ann = user(1, "ann@example.com");
    let fact = audit_record(1, "user.signed_up", t0(), Some(ann.id()), Some(ann.id()));
    ops::create_user(&s, &ann, &first_verification(&ann), &[audited(1, &fact)]).await.unwrap();
    let bob = user(2, "ann@example.com");
    let refused = audit_record(2, "user.signed_up", t0(), Some(bob.id()), Some(bob.id()));
    let err = ops::create_user(&s, &bob, &first_verification(&bob), &[audited(2, &refused)]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "the address is taken: {err:?}");
    assert_eq!(t.count("audit_events").await, 1);
    assert_eq!(t.count("outbox").await, 1);

    // A duplicate audit id fails the whole change: the session is not stored either.
    let sess = session(1, &ann, t0(), t0() + TimeDelta::days(30));
    let result = ops::create_session(&s, &sess, &token(1, t0(), TimeDelta::days(30)), &[audited(3, &fact)]).await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "the audit row's key is taken: {result:?}");
    assert_eq!(t.count("sessions").await, 0);
    assert_eq!(t.count("audit_events").await, 1);
    assert_eq!(t.count("outbox").await, 1);
}

/// The audit migration's `down` drops the table and `up` creates it again.
async fn migration_creates_and_drops_the_audit_table(t: TestDb) {
    use gatehouse_migration::{Migrator, MigratorTrait};

    let s = t.stores();
    let ann = UserId::from_uuid(Uuid::from_u128(1));
    s.audit.record(&facts(&[audit_record(1, "login.failed", t0(), None, Some(ann))])).await.unwrap();
    let raw = t.raw().await;
    // The organization tables, the tombstone table, then the audit table.
    Migrator::down(&raw, Some(3)).await.unwrap();
    assert_eq!(t.count("seaql_migrations").await, 4);
    let gone = s.audit.list(ann, None, 10).await;
    assert!(matches!(gone, Err(StoreError::Internal(_))), "no audit table: {gone:?}");
    Migrator::up(&raw, None).await.unwrap();
    raw.close().await.unwrap();
    assert_eq!(t.count("seaql_migrations").await, 7);
    assert!(trail(&s, ann).await.is_empty());
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
    assert!(matches!(err, StoreError::Internal(ref m) if m.to_string().contains("unsupported")), "{err:?}");
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
    // The operator reads the real cause, not the pool's "timed out".
    let cause = gatehouse_application::error_chain(&err);
    assert!(cause.to_lowercase().contains("refused"), "{cause}");
}

#[tokio::test]
async fn an_unknown_postgres_host_is_named_as_such() {
    let settings = PoolSettings {
        connect_timeout: std::time::Duration::from_secs(2),
        acquire_timeout: std::time::Duration::from_secs(2),
        ..PoolSettings::default()
    };
    let err = Database::connect("postgres://postgres@no-such-host.invalid/postgres", settings).await.unwrap_err();
    let cause = gatehouse_application::error_chain(&err);
    assert!(!cause.contains("timed out"), "{cause}");
    assert!(cause.to_lowercase().contains("lookup") || cause.to_lowercase().contains("resolve"), "{cause}");
}

/// Several replicas start at once against a fresh database: the advisory
/// lock lets one migrate while the others wait, and all of them succeed.
async fn replicas_migrating_at_once_do_not_collide(t: TestDb) {
    t.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public").await;
    let replicas: Vec<_> = (0..4)
        .map(|_| {
            let url = t.url.clone();
            tokio::spawn(async move {
                let db = gatehouse_sql::Database::connect(&url, gatehouse_sql::PoolSettings::default()).await?;
                let result = db.migrate().await;
                db.close().await?;
                result
            })
        })
        .collect();
    for r in replicas {
        r.await.unwrap().unwrap();
    }
    assert_eq!(t.count("seaql_migrations").await, 7);
}

/// A statement that would wait forever (here on a row another transaction
/// holds) fails after the configured timeout instead of holding the request.
async fn a_statement_that_runs_too_long_is_cancelled(t: TestDb) {
    use gatehouse_application::ports::store::UserRepository;
    use sea_orm::{ConnectionTrait, TransactionTrait};

    let s = t.stores();
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let settings = gatehouse_sql::PoolSettings {
        statement_timeout: std::time::Duration::from_millis(200),
        ..gatehouse_sql::PoolSettings::default()
    };
    let db = gatehouse_sql::Database::connect(&t.url, settings).await.unwrap();
    let users = gatehouse_sql::SqlUserRepository::new(&db);

    let raw = t.raw().await;
    let holder = raw.begin().await.unwrap();
    holder.execute_unprepared(&format!("SELECT id FROM users WHERE id = '{}' FOR UPDATE", ann.id())).await.unwrap();
    let started = std::time::Instant::now();
    let name = gatehouse_domain::DisplayName::parse("Blocked").unwrap();
    let result = users.update_display_name(ann.id(), &name, t0()).await;
    let waited = started.elapsed();
    holder.rollback().await.unwrap();
    // Cancelled, and reported as "not now" so the caller may retry.
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "the blocked update should have been cancelled: {result:?}"
    );
    assert!(waited < std::time::Duration::from_secs(3), "waited {waited:?}");
    // Once the lock is gone the same call works.
    assert!(users.update_display_name(ann.id(), &name, t0()).await.unwrap());
}

/// The per-user budget behind verification throttling: requests and wrong
/// codes of one purpose since a time, whatever address they went to.
async fn recent_activity_counts_issues_and_failures_per_user_and_purpose(s: Stores) {
    let ann = user(1, "ann@example.com");
    let bob = user(2, "bob@example.com");
    sign_up(&s, &ann).await;
    sign_up(&s, &bob).await;
    let early = t0() + TimeDelta::minutes(1);
    let late = t0() + TimeDelta::minutes(30);
    let first = verification(30, ann.id(), "ann@example.com", Purpose::ResetPassword, early);
    ops::replace(&s, &first, &[]).await.unwrap();
    s.verifications.record_failed_attempt(first.id()).await.unwrap();
    let second = verification(31, ann.id(), "ann@example.com", Purpose::ResetPassword, late);
    ops::replace(&s, &second, &[]).await.unwrap();
    for _ in 0..2 {
        s.verifications.record_failed_attempt(second.id()).await.unwrap();
    }
    let bobs = verification(32, bob.id(), "bob@example.com", Purpose::ResetPassword, late);
    ops::replace(&s, &bobs, &[]).await.unwrap();
    s.verifications.record_failed_attempt(bobs.id()).await.unwrap();

    let all = s.verifications.recent_activity(ann.id(), Purpose::ResetPassword, t0()).await.unwrap();
    assert_eq!((all.issued, all.failures), (2, 3), "retired verifications still count");
    let recent = s.verifications.recent_activity(ann.id(), Purpose::ResetPassword, late).await.unwrap();
    assert_eq!((recent.issued, recent.failures), (1, 2));
    let other = s.verifications.recent_activity(ann.id(), Purpose::VerifyEmail, early).await.unwrap();
    assert_eq!((other.issued, other.failures), (0, 0), "sign-up verifications predate `early`");
}

/// "A new request invalidates the older reset token", whatever address the
/// older one went to.
async fn a_new_or_completed_reset_retires_every_other_reset_of_the_account(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let at = t0() + TimeDelta::minutes(1);
    let v = verification(40, ann.id(), "ann@work.example", Purpose::VerifyEmail, at);
    ops::add_email(&s, ann.id(), v.email(), &v, &[], at).await.unwrap();
    let first = verification(41, ann.id(), "ann@example.com", Purpose::ResetPassword, at);
    ops::replace(&s, &first, &[]).await.unwrap();
    let second = verification(42, ann.id(), "ann@work.example", Purpose::ResetPassword, at + TimeDelta::seconds(1));
    ops::replace(&s, &second, &[]).await.unwrap();
    let stored = s.verifications.find_by_token(Purpose::ResetPassword, first.token_hash()).await.unwrap().unwrap();
    assert!(stored.consumed_at().is_some(), "a reset to another address retires the older one");
    // Email verifications stay per address.
    assert!(s.verifications.find_latest(Purpose::VerifyEmail, &email("ann@work.example")).await.unwrap().is_some());

    let hash = gatehouse_domain::PasswordHash::from_phc("$argon2id$new".into());
    let done = ops::consume(&s, &second, &Effect::ResetPassword { hash }, &[], at + TimeDelta::seconds(2)).await;
    assert!(matches!(done.unwrap(), Consumed::Applied { .. }));
    assert!(s.verifications.find_latest(Purpose::ResetPassword, &email("ann@example.com")).await.unwrap().is_none());
}

/// Codes must not keep going to an address the user gave up.
async fn removing_a_login_email_removes_its_email_factor(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let at = t0() + TimeDelta::minutes(1);
    verify(&s, 50, ann.id(), "ann@example.com", at).await;
    let f =
        Factor::pending_code(Uuid::from_u128(0xfac0_0051), ann.id(), FactorKind::Email, "ann@work.example".into(), at);
    let v = verification(52, ann.id(), "ann@work.example", Purpose::VerifyEmail, at);
    ops::add_email(&s, ann.id(), v.email(), &v, &[], at).await.unwrap();
    ops::add_factor(&s, &f, None, &[]).await.unwrap();
    let totp = factor(53, ann.id(), FactorKind::Totp, at);
    ops::add_factor(&s, &totp, None, &[]).await.unwrap();
    assert_eq!(
        ops::remove_email(&s, ann.id(), &email("ann@work.example"), &[], at).await.unwrap(),
        EmailRemoval::Removed
    );
    let left: Vec<_> = s.mfa.factors(ann.id()).await.unwrap().into_iter().map(|f| f.id()).collect();
    assert_eq!(left, [totp.id()]);
}

// ------------------------------------------- what the fakes must refuse too

/// The foreign keys of the MFA and verification tables: a row for an
/// unknown user, factor or challenge is refused (as `Gone`: the account was
/// deleted meanwhile), and the unit of work it was part of writes nothing. The
/// fakes refuse the same, so a use-case test cannot pass on a row SQL
/// would never store.
async fn rows_of_an_unknown_user_factor_or_challenge_are_refused(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let ghost = UserId::from_uuid(Uuid::from_u128(9));
    let gone = |r: Result<_, StoreError>| matches!(r, Err(StoreError::Gone(_)));

    let f = factor(1, ghost, FactorKind::Email, t0());
    let r = ops::add_factor(&s, &f, Some(&factor_code(1, &f, None, t0())), &[message(1, t0())]).await;
    assert!(gone(r), "a factor of an unknown user");
    let r = ops::replace_backup_codes(&s, ghost, &backups(1..=2), &[message(2, t0())], t0()).await;
    assert!(gone(r), "backup codes of an unknown user");
    assert!(gone(s.mfa.create_challenge(&challenge(1, ghost, t0())).await), "a challenge of an unknown user");
    let v = verification(99, ghost, "ghost@example.com", Purpose::ResetPassword, t0());
    let r = ops::replace(&s, &v, &[message(3, t0())]).await;
    assert!(matches!(r, Err(StoreError::Gone(_))), "a verification of an unknown user: {r:?}");

    let unknown = factor(2, ann, FactorKind::Email, t0());
    assert!(gone(ops::add_code(&s, &factor_code(2, &unknown, None, t0()), &[message(4, t0())]).await));
    let anns = factor(3, ann, FactorKind::Email, t0());
    ops::add_factor(&s, &anns, None, &[]).await.unwrap();
    let no_such_challenge = Some(Uuid::from_u128(0xdead));
    let r = ops::add_code(&s, &factor_code(3, &anns, no_such_challenge, t0()), &[message(5, t0())]).await;
    assert!(gone(r), "a code for an unknown challenge");

    assert!(s.mfa.factors(ghost).await.unwrap().is_empty());
    assert_eq!(s.mfa.challenge(challenge(1, ghost, t0()).id()).await.unwrap(), None);
    assert_eq!(s.mfa.failures_since(ghost, t0()).await.unwrap(), 0);
    assert_eq!(s.verifications.find_by_token(Purpose::ResetPassword, v.token_hash()).await.unwrap(), None);
    assert!(!s.mfa.use_code(anns.id(), no_such_challenge, &code_hash(3), t0()).await.unwrap());
    assert!(pending(&s).await.is_empty());
}

// ------------------------------------------------------- ties of one instant
//
// Rows made in one instant are common (a unit of work stamps all its rows
// with one `now`), so the fakes must break ties as SQL's ORDER BY does, or a
// use-case test could pass on an order PostgreSQL never returns. Each test
// stores the rows in an order that is neither the expected one nor its
// reverse.

/// `ORDER BY created_at DESC, id DESC`: of two live codes sent in one
/// instant, the one with the higher id is redeemed.
async fn find_latest_breaks_a_tie_by_the_higher_id(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let at = t0() + TimeDelta::minutes(1);
    let [low, high] = [20, 21].map(|n| verification(n, ann, "ann@example.com", Purpose::ResetPassword, at));
    let uow = s.uow.begin().await.unwrap();
    uow.verifications().insert(&high).await.unwrap();
    uow.verifications().insert(&low).await.unwrap();
    uow.commit().await.unwrap();
    let latest = s.verifications.find_latest(Purpose::ResetPassword, &email("ann@example.com")).await.unwrap();
    assert_eq!(latest, Some(high));
}

/// `ORDER BY created_at DESC, id DESC`.
async fn list_live_breaks_ties_by_the_higher_id(s: Stores) {
    let ann = user(1, "ann@example.com");
    sign_up(&s, &ann).await;
    let at = t0() + TimeDelta::minutes(1);
    let [a, b, c] = [2, 4, 3].map(|n| session(n, &ann, at, at + TimeDelta::days(30)));
    for (n, sess) in (1u8..).zip([&a, &b, &c]) {
        ops::create_session(&s, sess, &token(n, at, TimeDelta::days(30)), &[]).await.unwrap();
    }
    let ids: Vec<_> = s.sessions.list_live(ann.id(), at).await.unwrap().into_iter().map(|s| s.id()).collect();
    assert_eq!(ids, vec![b.id(), c.id(), a.id()]);
}

/// `ORDER BY occurred_at DESC, id DESC`, also across a page boundary.
async fn audit_list_breaks_ties_by_the_higher_id(s: Stores) {
    let ann = UserId::from_uuid(Uuid::from_u128(1));
    let at = t0() + TimeDelta::minutes(1);
    let records = [2, 4, 1, 3].map(|n| audit_record(n, "login.failed", at, None, Some(ann)));
    s.audit.record(&facts(&records)).await.unwrap();
    let newest_first = [4, 3, 2, 1].map(|n| audit_record(n, "login.failed", at, None, Some(ann)).id);
    assert_eq!(audit_ids(&trail(&s, ann).await), newest_first);
    let first = s.audit.list(ann, None, 2).await.unwrap();
    let last = first.last().unwrap();
    let cursor = AuditCursor { occurred_at: last.occurred_at, id: last.id };
    let rest = s.audit.list(ann, Some(cursor), 10).await.unwrap();
    assert_eq!([audit_ids(&first), audit_ids(&rest)].concat(), newest_first);
}

/// `ORDER BY created_at, id`: which factor a challenge offers first.
async fn factors_are_listed_oldest_first_ties_by_the_lower_id(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let at = t0() + TimeDelta::minutes(1);
    let sms = factor(3, ann, FactorKind::Sms, at);
    let totp = factor(1, ann, FactorKind::Totp, at);
    let email = factor(2, ann, FactorKind::Email, at);
    for f in [&sms, &totp, &email] {
        ops::add_factor(&s, f, None, &[]).await.unwrap();
    }
    let listed: Vec<_> = s.mfa.factors(ann).await.unwrap().into_iter().map(|f| f.id()).collect();
    assert_eq!(listed, vec![totp.id(), email.id(), sms.id()]);
}

/// `ORDER BY created_at, id`: the relay publishes events of one instant in
/// id order.
async fn claim_breaks_ties_by_the_lower_id(s: Stores) {
    sign_up(&s, &user(1, "ann@example.com")).await;
    let at = t0() + TimeDelta::milliseconds(1);
    let m2 = enqueue(&s, 2, at).await;
    let m3 = enqueue(&s, 3, at).await;
    let m1 = enqueue(&s, 1, at).await;
    let now = t0() + TimeDelta::minutes(1);
    let lease = now + TimeDelta::seconds(30);
    assert_eq!(s.outbox.claim(2, now, lease).await.unwrap(), claimed(&[&m1, &m2], 0));
    assert_eq!(s.outbox.claim(10, now, lease).await.unwrap(), claimed(&[&m3], 0));
    assert_eq!(s.outbox.claim(10, lease, lease).await.unwrap(), claimed(&[&m1, &m2, &m3], 0));
}

// ---------------------------------------------- rules that hold under races

/// ConfirmFactor of two pending factors at once: each alone would be the
/// first, but the account's lock makes exactly one the first, and only its
/// backup codes are stored (OWASP ASVS 5.0 V6.6.2: backup codes are issued
/// once, with the first factor).
async fn concurrent_confirmations_issue_backup_codes_once(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let totp = factor(1, ann, FactorKind::Totp, t0());
    let email = factor(2, ann, FactorKind::Email, t0());
    ops::add_factor(&s, &totp, None, &[]).await.unwrap();
    ops::add_factor(&s, &email, None, &[]).await.unwrap();
    let now = t0() + TimeDelta::minutes(1);
    // Factor 1 brings backup codes 11..=13, factor 2 brings 21..=23.
    let racers = std::sync::Mutex::new(vec![(totp.id(), 1_u128), (email.id(), 2)]);
    let outcomes = race(2, || {
        let (s, (id, n)) = (s.clone(), racers.lock().unwrap().pop().unwrap());
        async move {
            let codes = backups(10 * n + 1..=10 * n + 3);
            (n, ops::activate_factor(&s, ann, id, &codes, &[message(n, now)], now).await.unwrap())
        }
    })
    .await;
    let firsts: Vec<u128> = outcomes.iter().filter(|(_, a)| a.is_some_and(|a| a.first)).map(|(n, _)| *n).collect();
    assert_eq!(firsts.len(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|(_, a)| a.is_some()), "both are activated: {outcomes:?}");
    let (winner, loser) = if firsts[0] == 1 { (1, 2) } else { (2, 1) };
    assert_eq!(ops::use_backup_code(&s, ann, &backup(10 * loser + 1), &notice(100, now), now).await.unwrap(), None);
    let left = ops::use_backup_code(&s, ann, &backup(10 * winner + 1), &notice(200, now), now).await.unwrap();
    assert_eq!(left, Some(2));
    assert!(s.mfa.factors(ann).await.unwrap().iter().all(|f| f.active()));
}

/// Rounds of a race between two use cases on one account: a race is lost
/// only when both read before either writes, so one round alone would
/// pass too often without the lock it checks.
const ROUNDS: u128 = 5;

/// RemoveLoginEmail of the last two verified addresses at once: each alone
/// sees the other still verified, but the account's lock makes the second
/// see it is the last, so one stays (an account never loses its last way
/// to receive a reset).
async fn concurrent_removals_of_the_last_two_verified_addresses_leave_one(s: Stores) {
    let now = t0() + TimeDelta::minutes(1);
    for round in 1..=ROUNDS {
        // The primary is not verified; the two other addresses are.
        let ann = user(round, &format!("ann{round}@example.com"));
        sign_up(&s, &ann).await;
        let addresses = [format!("ann{round}@work.example"), format!("ann{round}@home.example")];
        for (n, address) in (100 * round..).zip(&addresses) {
            let v = verification(n, ann.id(), address, Purpose::VerifyEmail, now);
            ops::add_email(&s, ann.id(), v.email(), &v, &[], now).await.unwrap();
            verify(&s, n + 50, ann.id(), address, now).await;
        }
        let racers = std::sync::Mutex::new(addresses.to_vec());
        let ann_id = ann.id();
        let mut outcomes = race(2, || {
            let (s, address) = (s.clone(), racers.lock().unwrap().pop().unwrap());
            async move { ops::remove_email(&s, ann_id, &email(&address), &[], now).await.unwrap() }
        })
        .await;
        outcomes.sort_by_key(|o| *o == EmailRemoval::LastVerified);
        assert_eq!(outcomes, vec![EmailRemoval::Removed, EmailRemoval::LastVerified], "round {round}");
        let account = s.users.get(ann.id()).await.unwrap().unwrap();
        assert_eq!(account.emails().iter().filter(|e| e.verified_at.is_some()).count(), 1, "round {round}");
    }
}

/// SetPrimaryEmail and RemoveLoginEmail of one address at once: whichever
/// runs second sees what the first did, so the account ends with exactly
/// one primary that exists (removed and unchanged, or primary and kept).
async fn concurrent_removal_and_promotion_of_one_address_never_lose_the_primary(s: Stores) {
    let now = t0() + TimeDelta::minutes(1);
    for round in 1..=ROUNDS {
        let (home, work) = (format!("ann{round}@example.com"), format!("ann{round}@work.example"));
        let ann = user(round, &home);
        sign_up(&s, &ann).await;
        verify(&s, 100 * round, ann.id(), &home, t0()).await;
        let v = verification(100 * round + 1, ann.id(), &work, Purpose::VerifyEmail, now);
        ops::add_email(&s, ann.id(), v.email(), &v, &[], now).await.unwrap();
        verify(&s, 100 * round + 2, ann.id(), &work, now).await;

        // Racer `true` promotes the address, racer `false` removes it.
        let roles = std::sync::Mutex::new(vec![true, false]);
        let ann_id = ann.id();
        let mut outcomes = race(2, || {
            let (s, promote, work) = (s.clone(), roles.lock().unwrap().pop().unwrap(), email(&work));
            async move {
                if promote {
                    Ok(ops::set_primary_email(&s, ann_id, &work, &[], now).await.unwrap())
                } else {
                    Err(ops::remove_email(&s, ann_id, &work, &[], now).await.unwrap())
                }
            }
        })
        .await;
        outcomes.sort_by_key(Result::is_err);
        let [Ok(promoted), Err(removed)] = outcomes[..] else { panic!("{outcomes:?}") };
        let account = s.users.get(ann.id()).await.unwrap().unwrap();
        let primaries: Vec<_> = account.emails().iter().filter(|e| e.primary).map(|e| e.email.to_string()).collect();
        match (promoted, removed) {
            // Promoted first: the removal found the primary.
            (PrimaryChange::Changed, EmailRemoval::IsPrimary) => assert_eq!(primaries, [work]),
            // Removed first: the promotion found no such address.
            (PrimaryChange::NotFound, EmailRemoval::Removed) => assert_eq!(primaries, [home]),
            other => panic!("round {round}: not one after the other: {other:?}, primaries {primaries:?}"),
        }
    }
}

/// EnrollTotp twice at once: a new pending factor replaces the pending ones
/// of its kind under the account's lock, so one pending factor is left.
async fn concurrent_enrolments_of_one_kind_leave_one_pending_factor(s: Stores) {
    const RACERS: u128 = 4;
    for round in 1..=ROUNDS {
        let ann = user(round, &format!("ann{round}@example.com"));
        sign_up(&s, &ann).await;
        let next = std::sync::atomic::AtomicU32::new(0);
        let results = race(RACERS as usize, || {
            let n = RACERS * round + u128::from(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let (s, f) = (s.clone(), factor(n, ann.id(), FactorKind::Totp, t0() + TimeDelta::seconds(1)));
            async move { ops::add_factor(&s, &f, None, &[]).await }
        })
        .await;
        assert!(results.iter().all(Result::is_ok), "round {round}: {results:?}");
        let left = s.mfa.factors(ann.id()).await.unwrap();
        assert_eq!(left.len(), 1, "round {round}: {left:?}");
    }
}

/// SignUp twice with one address at once: the unique index lets one in and
/// refuses the other as a conflict, with nothing of it stored.
async fn concurrent_sign_ups_with_one_address_succeed_once(s: Stores) {
    let next = std::sync::atomic::AtomicU32::new(0);
    let results = race(2, || {
        let n = u128::from(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
        let (s, u) = (s.clone(), user(n, "ann@example.com"));
        async move { (u.id(), ops::create_user(&s, &u, &first_verification(&u), &[message(n, t0())]).await) }
    })
    .await;
    let winners: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).map(|(id, _)| *id).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(results.iter().any(|(_, r)| matches!(r, Err(StoreError::Conflict(_)))), "{results:?}");
    let found = s.users.find_credentials(&email("ann@example.com")).await.unwrap().unwrap();
    assert_eq!(found.user_id, winners[0]);
    assert_eq!(pending(&s).await.len(), 1);
}

/// AddLoginEmail of one address by two accounts at once: one gets it, the
/// other a conflict, and the loser's verification is not stored.
async fn concurrent_additions_of_one_address_succeed_once(s: Stores) {
    let (ann, bob) = ann_and_bob(&s).await;
    let now = t0() + TimeDelta::minutes(1);
    let users = std::sync::Mutex::new(vec![(ann, 10_u128), (bob, 11)]);
    let results = race(2, || {
        let (s, (user, n)) = (s.clone(), users.lock().unwrap().pop().unwrap());
        async move {
            let v = verification(n, user, "shared@example.com", Purpose::VerifyEmail, now);
            (v.clone(), ops::add_email(&s, user, v.email(), &v, &[], now).await)
        }
    })
    .await;
    let winners: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).map(|(v, _)| v.clone()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(results.iter().any(|(_, r)| matches!(r, Err(StoreError::Conflict(_)))), "{results:?}");
    let latest = s.verifications.find_latest(Purpose::VerifyEmail, &email("shared@example.com")).await.unwrap();
    assert_eq!(latest, Some(winners[0].clone()));
    let owner = s.users.find_credentials(&email("shared@example.com")).await.unwrap().unwrap();
    assert_eq!(owner.user_id, winners[0].user_id());
}

/// Login and DeleteMe at once: the new session either is refused (the
/// account is gone) or exists before the deletion reads the live sessions,
/// so DeleteMe denylists it; never a session that dies with the account
/// unreported, whose access token would outlive it (OWASP ASVS 5.0 V7.4.1).
async fn a_login_racing_the_accounts_deletion_is_refused_or_reported(s: Stores) {
    let now = t0() + TimeDelta::minutes(1);
    for round in 1..=ROUNDS {
        let ann = user(round, &format!("ann{round}@example.com"));
        sign_up(&s, &ann).await;
        let sess = session(round, &ann, now, now + TimeDelta::days(30));
        let n = u8::try_from(round).unwrap();
        let roles = std::sync::Mutex::new(vec![true, false]);
        let ann_id = ann.id();
        let mut outcomes = race(2, || {
            let (s, login, ann, sess) = (s.clone(), roles.lock().unwrap().pop().unwrap(), ann_id, sess.clone());
            async move {
                if login {
                    Ok(ops::create_session(&s, &sess, &token(n, now, TimeDelta::days(30)), &[]).await)
                } else {
                    Err(ops::delete_user(&s, ann, &[], now).await.unwrap())
                }
            }
        })
        .await;
        outcomes.sort_by_key(Result::is_err);
        let [Ok(login), Err(reported)] = &outcomes[..] else { panic!("{outcomes:?}") };
        match login {
            Ok(()) => assert_eq!(reported, &vec![sess.clone()], "round {round}: the deletion must report the session"),
            Err(e) => {
                assert!(matches!(e, StoreError::Gone(_)), "round {round}: {e:?}");
                assert!(reported.is_empty(), "round {round}: {reported:?}");
            }
        }
        assert_eq!(s.sessions.get(sess.id()).await.unwrap(), None, "round {round}");
    }
}
