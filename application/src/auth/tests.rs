//! Use-case tests over the in-memory fakes and a fixed clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::TimeDelta;
use futures_executor::block_on;
use gatehouse_domain::{
    ClientInfo, DisplayName, EmailAddress, Password, PasswordHash, PasswordPolicy, RefreshToken, TokenPair,
};

use super::*;
use crate::auth::login::SessionOpener;
use crate::error::{AppError, TokenRejection};
use crate::events::EventFactory;
use crate::mfa::MfaGate;
use crate::password_strength::PasswordStrength;
use crate::ports::denylist::{DenyKey, Denylist as _};
use crate::ports::password::{PasswordCheck, PasswordHasher};
use crate::ports::store::UserRepository;
use crate::settings::TokenSettings;
use crate::testing::{FakeDenylist, FakeHasher, FakeTokens, FixedClock, InMemoryStore, RecordingEncoder, SeqRandom};

struct Harness {
    clock: Arc<FixedClock>,
    store: Arc<InMemoryStore>,
    hasher: Arc<FakeHasher>,
    denylist: Arc<FakeDenylist>,
    limiter: Arc<crate::testing::FakeRateLimiter>,
    sign_up: SignUp,
    login: Login,
    refresh: crate::auth::RefreshToken,
    logout: Logout,
    validate: ValidateToken,
    rebuild: RebuildDenylist,
    settings: TokenSettings,
}

impl Harness {
    fn new() -> Self {
        let clock = Arc::new(FixedClock::new());
        let rng = Arc::new(SeqRandom::default());
        let store = Arc::new(InMemoryStore::default());
        let (users, sessions) = (store.clone(), store.clone());
        let hasher = Arc::new(FakeHasher::default());
        let denylist = Arc::new(FakeDenylist::default());
        let tokens = Arc::new(FakeTokens);
        let settings = TokenSettings::default();
        let minter = TokenMinter::new(tokens.clone(), clock.clone(), rng.clone(), settings);
        let factory = EventFactory::new(Arc::new(RecordingEncoder::default()), rng.clone(), store.clone());
        let revoker = SessionRevoker::new(store.clone(), denylist.clone(), factory.clone(), settings);
        let issuer = VerificationIssuer::new(rng.clone(), factory.clone(), crate::VerificationSettings::default());
        let limiter = Arc::new(crate::testing::FakeRateLimiter::default());
        Self {
            sign_up: SignUp::new(
                store.clone(),
                store.clone(),
                hasher.clone(),
                PasswordStrength::new(store.clone(), PasswordPolicy::default()),
                clock.clone(),
                rng,
                issuer,
                crate::testing::throttle(&limiter, &clock),
            )
            .reveal_taken_addresses(true),
            login: Login::new(
                users.clone(),
                hasher.clone(),
                minter.clone(),
                false,
                MfaGate::new(crate::testing::mfa_deps(
                    &store,
                    &clock,
                    &Arc::new(RecordingEncoder::default()),
                    crate::MfaSettings::default(),
                )),
                SessionOpener {
                    sessions: sessions.clone(),
                    organizations: store.clone(),
                    uow: store.clone(),
                    users: users.clone(),
                    events: factory.clone(),
                },
                crate::testing::throttle(&limiter, &clock),
            ),
            refresh: crate::auth::RefreshToken::new(sessions.clone(), minter, revoker.clone()),
            logout: Logout::new(sessions.clone(), revoker.clone(), tokens.clone(), clock.clone()),
            validate: ValidateToken::new(tokens.clone(), denylist.clone(), clock.clone()),
            rebuild: RebuildDenylist::new(sessions.clone(), denylist.clone(), revoker, clock.clone(), settings),
            clock,
            store,
            hasher,
            denylist,
            limiter,
            settings,
        }
    }

    fn sign_up(&self, email: &str, password: &str) -> Result<gatehouse_domain::UserId, AppError> {
        self.sign_up_from(email, password, "192.0.2.1")
    }

    fn sign_up_from(&self, email: &str, password: &str, ip: &str) -> Result<gatehouse_domain::UserId, AppError> {
        block_on(self.sign_up.execute(SignUpCommand {
            email: EmailAddress::parse(email).unwrap(),
            password: Password::new(password.into()).unwrap(),
            display_name: DisplayName::parse("Ann").unwrap(),
            client: ClientInfo::new(None, Some(ip.into())),
        }))
    }

    fn login(&self, email: &str, password: &str) -> Result<TokenPair, AppError> {
        self.login_from(email, password, "192.0.2.7")
    }

    fn login_from(&self, email: &str, password: &str, ip: &str) -> Result<TokenPair, AppError> {
        let outcome = block_on(self.login.execute(LoginCommand {
            email: EmailAddress::parse(email).unwrap(),
            password: Password::candidate(password.into()).unwrap(),
            client: ClientInfo::new(Some("test-agent/1.0"), Some(ip.into())),
            organization: None,
        }))?;
        match outcome {
            LoginOutcome::Tokens(pair) => Ok(pair),
            LoginOutcome::MfaRequired(c) => panic!("unexpected challenge {c:?}"),
        }
    }

    fn validate(&self, pair: &TokenPair) -> Result<gatehouse_domain::AccessClaims, AppError> {
        block_on(self.validate.execute(pair.access_token.expose()))
    }

    fn signed_up_and_logged_in(&self) -> TokenPair {
        self.sign_up("ann@example.com", "correct horse").unwrap();
        self.login("ann@example.com", "correct horse").unwrap()
    }
}

/// What is stored is the hasher's output for the password: that the hash is
/// a salted Argon2id one, never the plain text, is the hasher's own test
/// (`adapters/crypto/src/password.rs`).
#[test]
fn sign_up_stores_the_hashers_hash_of_the_password() {
    let h = Harness::new();
    let id = h.sign_up("Ann@Example.com", "correct horse").unwrap();
    let users = h.store.users();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].id(), id);
    assert_eq!(users[0].email().as_str(), "ann@example.com");
    let expected = block_on(h.hasher.hash(&Password::new("correct horse".into()).unwrap())).unwrap();
    assert_eq!(users[0].password_hash(), &expected);
    let check =
        |p: &str| block_on(h.hasher.verify(&Password::candidate(p.into()).unwrap(), Some(users[0].password_hash())));
    assert_eq!(check("correct horse").unwrap(), PasswordCheck::Match { needs_rehash: false });
    assert_eq!(check("correct horsE").unwrap(), PasswordCheck::Mismatch);
}

#[test]
fn sign_up_with_a_taken_email_in_any_case_is_refused() {
    let h = Harness::new();
    h.sign_up("ann@example.com", "correct horse").unwrap();
    let second = h.sign_up("  ANN@example.COM", "another password");
    assert!(matches!(second, Err(AppError::EmailTaken)), "{second:?}");
    assert_eq!(h.store.users().len(), 1);
}

#[test]
fn login_opens_a_session_with_the_client_data_and_returns_a_pair() {
    let h = Harness::new();
    let pair = h.signed_up_and_logged_in();
    let session = h.store.get_session(pair.session_id).unwrap();
    assert_eq!(session.client().user_agent.as_deref(), Some("test-agent/1.0"));
    assert_eq!(session.client().ip.as_deref(), Some("192.0.2.7"));
    let now = h.clock.now_for_tests();
    assert_eq!(pair.access_token_expires_at, now + TimeDelta::minutes(15));
    assert_eq!(pair.refresh_token_expires_at, now + TimeDelta::days(30));
    assert!(pair.refresh_token.expose().starts_with("ghr_"));
    let claims = h.validate(&pair).unwrap();
    assert_eq!((claims.user_id, claims.session_id), (pair.user_id, pair.session_id));
}

/// OWASP ASVS 5.0 V6.3.8: the answer and the hashing
/// work are the same for an unknown email and a wrong password.
#[test]
fn unknown_email_and_wrong_password_are_indistinguishable() {
    let h = Harness::new();
    h.sign_up("ann@example.com", "correct horse").unwrap();
    let unknown = h.login("bob@example.com", "correct horse");
    let wrong = h.login("ann@example.com", "wrong horse!");
    assert!(matches!(unknown, Err(AppError::InvalidCredentials)));
    assert!(matches!(wrong, Err(AppError::InvalidCredentials)));
    assert_eq!(h.hasher.verifications.load(Ordering::Relaxed), 2, "both paths must run the hasher");
    assert_eq!(h.store.session_count(), 0);
}

#[test]
fn login_with_an_outdated_hash_stores_a_fresh_one() {
    let h = Harness::new();
    let id = h.sign_up("ann@example.com", "correct horse").unwrap();
    block_on(h.store.update_password_hash(
        id,
        &PasswordHash::from_phc("fake1$correct horse".into()),
        h.clock.now_for_tests(),
    ))
    .unwrap();
    h.login("ann@example.com", "correct horse").unwrap();
    let stored = h.store.users()[0].password_hash().clone();
    let expected = block_on(h.hasher.hash(&Password::new("correct horse".into()).unwrap())).unwrap();
    assert_eq!(stored, expected);
}

/// NIST SP 800-63B-4 §3.1.1.2, OWASP ASVS 5.0 V6.2.4 and V6.2.11: common
/// passwords and the account's own address or name are refused, naming
/// `password`, before anything is hashed or stored.
#[test]
fn sign_up_refuses_common_passwords_and_the_accounts_own_words() {
    let h = Harness::new();
    for weak in ["password", "12345678", "aaaaaaaa", "annabel.lee@example.com", "annabel.lee", "Annabel Lee!"] {
        let r = block_on(h.sign_up.execute(SignUpCommand {
            email: EmailAddress::parse("annabel.lee@example.com").unwrap(),
            password: Password::new(weak.into()).unwrap(),
            display_name: DisplayName::parse("Annabel Lee").unwrap(),
            client: ClientInfo::default(),
        }));
        let Err(AppError::InvalidArgument(v)) = r else { panic!("{weak}: {r:?}") };
        assert_eq!(v.iter().map(|v| v.field).collect::<Vec<_>>(), ["password"], "{weak}");
    }
    assert!(h.store.users().is_empty());
    assert!(h.store.outbox().is_empty());
    h.sign_up("annabel.lee@example.com", "correct horse battery").unwrap();
}

/// NIST SP 800-63B-4 §3.1.1.2: hashes stored before passwords were
/// normalised were made from the text as typed. That text still logs in,
/// and the login replaces the hash with one of the NFKC form, which every
/// way of typing the password then matches.
#[test]
fn a_hash_of_the_unnormalised_password_logs_in_and_is_rehashed() {
    let h = Harness::new();
    let nfc = "cr\u{e8}me br\u{fb}l\u{e9}e \u{e0} minuit";
    let nfd = "cre\u{300}me bru\u{302}le\u{301}e a\u{300} minuit";
    let id = h.sign_up("ann@example.com", nfc).unwrap();
    // What the hasher stored when it hashed the NFD text as it came.
    let legacy = PasswordHash::from_phc(format!("fake2${nfd}"));
    block_on(h.store.update_password_hash(id, &legacy, h.clock.now_for_tests())).unwrap();
    let check = |p: &str| block_on(h.hasher.verify(&Password::candidate(p.into()).unwrap(), Some(&legacy))).unwrap();
    assert_eq!(check(nfd), PasswordCheck::Match { needs_rehash: true });

    h.login("ann@example.com", nfd).unwrap();
    let stored = h.store.users()[0].password_hash().clone();
    assert_eq!(stored, PasswordHash::from_phc(format!("fake2${nfc}")), "rehashed from the NFKC form");
    h.login("ann@example.com", nfc).unwrap();
    h.login("ann@example.com", nfd).unwrap();
    let recheck = block_on(h.hasher.verify(&Password::candidate(nfd.into()).unwrap(), Some(&stored))).unwrap();
    assert_eq!(recheck, PasswordCheck::Match { needs_rehash: false }, "no further rehash");
}

#[test]
fn refresh_returns_a_new_pair_and_kills_the_old_refresh_token() {
    let h = Harness::new();
    let first = h.signed_up_and_logged_in();
    h.clock.advance(TimeDelta::minutes(5));
    let second = block_on(h.refresh.execute(&first.refresh_token, &ClientInfo::default())).unwrap();
    assert_eq!(second.session_id, first.session_id);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    assert!(h.validate(&second).is_ok());
    let session = h.store.get_session(first.session_id).unwrap();
    assert_eq!(session.last_used_at(), h.clock.now_for_tests());
}

/// RFC 9700 §4.14.2, OWASP ASVS 5.0 V10.4.5: a rotated refresh token
/// presented again revokes the whole session.
#[test]
fn refresh_with_rotated_token_revokes_session() {
    let h = Harness::new();
    let first = h.signed_up_and_logged_in();
    let second = block_on(h.refresh.execute(&first.refresh_token, &ClientInfo::default())).unwrap();
    let reuse = block_on(h.refresh.execute(&first.refresh_token, &ClientInfo::default()));
    assert!(matches!(reuse, Err(AppError::TokenRevoked)), "{reuse:?}");
    assert!(h.store.get_session(first.session_id).unwrap().revoked_at().is_some());
    assert!(matches!(h.validate(&second), Err(AppError::TokenRevoked)));
    assert!(matches!(h.validate(&first), Err(AppError::TokenRevoked)));
    let after = block_on(h.refresh.execute(&second.refresh_token, &ClientInfo::default()));
    assert!(matches!(after, Err(AppError::TokenRevoked)), "{after:?}");
}

#[test]
fn refresh_with_unknown_or_malformed_token_is_invalid() {
    let h = Harness::new();
    h.signed_up_and_logged_in();
    let forged = RefreshToken::new(format!("ghr_{}", "A".repeat(43)));
    assert!(matches!(block_on(h.refresh.execute(&forged, &ClientInfo::default())), Err(AppError::InvalidRefreshToken)));
    let junk = RefreshToken::new("not a token".into());
    assert!(matches!(block_on(h.refresh.execute(&junk, &ClientInfo::default())), Err(AppError::InvalidRefreshToken)));
}

#[test]
fn refresh_token_expires_after_its_lifetime() {
    let h = Harness::new();
    let pair = h.signed_up_and_logged_in();
    h.clock.advance(h.settings.refresh_ttl);
    assert!(matches!(
        block_on(h.refresh.execute(&pair.refresh_token, &ClientInfo::default())),
        Err(AppError::TokenExpired)
    ));
}

#[test]
fn access_token_expires_after_its_lifetime() {
    let h = Harness::new();
    let pair = h.signed_up_and_logged_in();
    h.clock.advance(h.settings.access_ttl - TimeDelta::seconds(1));
    assert!(h.validate(&pair).is_ok());
    h.clock.advance(TimeDelta::seconds(1));
    assert!(matches!(h.validate(&pair), Err(AppError::TokenExpired)));
}

#[test]
fn malformed_access_token_is_invalid() {
    let h = Harness::new();
    let r = block_on(h.validate.execute("garbage"));
    assert!(matches!(r, Err(AppError::InvalidToken(TokenRejection::Malformed))), "{r:?}");
}

#[test]
fn logout_denies_the_session_for_the_longest_remaining_token_life() {
    let h = Harness::new();
    let pair = h.signed_up_and_logged_in();
    let claims = h.validate(&pair).unwrap();
    h.clock.advance(TimeDelta::minutes(2));
    block_on(h.logout.execute(LogoutTarget::AccessToken(pair.access_token.clone()), &ClientInfo::default())).unwrap();
    assert!(matches!(h.validate(&pair), Err(AppError::TokenRevoked)));
    // Idempotent: the revoked token still names its session.
    block_on(h.logout.execute(LogoutTarget::AccessToken(pair.access_token.clone()), &ClientInfo::default())).unwrap();
    assert_eq!(h.denylist.until(DenyKey::Session(pair.session_id)), Some(claims.issued_at + h.settings.access_ttl));
    assert_eq!(h.denylist.until(DenyKey::Token(claims.token_id)), Some(claims.expires_at));
    assert!(matches!(
        block_on(h.refresh.execute(&pair.refresh_token, &ClientInfo::default())),
        Err(AppError::TokenRevoked)
    ));
}

#[test]
fn logout_by_refresh_token_ends_that_session_and_is_idempotent() {
    let h = Harness::new();
    let pair = h.signed_up_and_logged_in();
    block_on(h.logout.execute(LogoutTarget::RefreshToken(pair.refresh_token.clone()), &ClientInfo::default())).unwrap();
    block_on(h.logout.execute(LogoutTarget::RefreshToken(pair.refresh_token.clone()), &ClientInfo::default())).unwrap();
    assert!(matches!(h.validate(&pair), Err(AppError::TokenRevoked)));
    let forged = RefreshToken::new(format!("ghr_{}", "B".repeat(43)));
    assert!(matches!(
        block_on(h.logout.execute(LogoutTarget::RefreshToken(forged), &ClientInfo::default())),
        Err(AppError::InvalidRefreshToken)
    ));
}

/// OWASP ASVS 5.0 V16.5.3: validation fails closed when the denylist is
/// down, and after it comes back until a rebuild (it may have missed writes).
#[test]
fn validation_fails_closed_when_the_denylist_is_unreachable() {
    let h = Harness::new();
    let pair = h.signed_up_and_logged_in();
    h.denylist.set_down(true);
    assert!(matches!(h.validate(&pair), Err(AppError::Unavailable(_))));
    h.denylist.set_down(false);
    assert!(matches!(h.validate(&pair), Err(AppError::Unavailable(_))), "answered before a rebuild");
    block_on(h.rebuild.execute()).unwrap();
    assert!(h.validate(&pair).is_ok());
}

/// OWASP ASVS 5.0 V7.4.1: a denylist that lost its data refuses to answer
/// (never "valid") until it is rebuilt from the session rows.
#[test]
fn a_lost_denylist_fails_closed_until_rebuilt_from_the_session_rows() {
    let h = Harness::new();
    let revoked = h.signed_up_and_logged_in();
    let live = h.login("ann@example.com", "correct horse").unwrap();
    block_on(h.logout.execute(LogoutTarget::RefreshToken(revoked.refresh_token.clone()), &ClientInfo::default()))
        .unwrap();
    h.denylist.clear();
    assert!(matches!(h.validate(&revoked), Err(AppError::Unavailable(_))));
    assert!(matches!(h.validate(&live), Err(AppError::Unavailable(_))));
    assert_eq!(block_on(h.rebuild.execute()).unwrap(), 1);
    assert!(matches!(h.validate(&revoked), Err(AppError::TokenRevoked)));
    assert!(h.validate(&live).is_ok());
}

/// ASVS 5.0 V7.4.1: a logout whose denylist write fails says so (the
/// session is ended, the propagation pending); the rebuild writes what the
/// logout could not, and a retry of the logout succeeds and is effective.
#[test]
fn logout_during_a_denylist_outage_reports_pending_and_the_rebuild_completes_it() {
    let h = Harness::new();
    let pair = h.signed_up_and_logged_in();
    h.denylist.set_down(true);
    let target = LogoutTarget::RefreshToken(pair.refresh_token.clone());
    let outcome = block_on(h.logout.execute(target.clone(), &ClientInfo::default()));
    assert!(matches!(outcome, Err(AppError::RevocationPending(_))), "{outcome:?}");
    assert!(h.store.get_session(pair.session_id).unwrap().revoked_at().is_some(), "the session is ended in storage");

    h.denylist.set_down(false);
    assert!(matches!(h.validate(&pair), Err(AppError::Unavailable(_))), "stale until rebuilt");
    block_on(h.rebuild.execute()).unwrap();
    assert!(matches!(h.validate(&pair), Err(AppError::TokenRevoked)));
    block_on(h.logout.execute(target, &ClientInfo::default())).unwrap();
    assert!(matches!(h.validate(&pair), Err(AppError::TokenRevoked)));
}

/// ASVS 5.0 V7.4.1: a rebuild that began before a failed write read the
/// session rows too early to hold it, so it must not mark the denylist
/// complete; the next one does.
#[test]
fn a_rebuild_that_overlaps_a_failed_write_does_not_count() {
    let h = Harness::new();
    let pair = h.signed_up_and_logged_in();
    let ticket = block_on(h.denylist.begin_rebuild()).unwrap();
    h.denylist.set_down(true);
    assert!(
        block_on(h.logout.execute(LogoutTarget::RefreshToken(pair.refresh_token.clone()), &ClientInfo::default()))
            .is_err()
    );
    h.denylist.set_down(false);
    assert!(block_on(h.denylist.complete_rebuild(ticket, &[], h.clock.now_for_tests())).is_err());
    assert!(matches!(h.validate(&pair), Err(AppError::Unavailable(_))));
    block_on(h.rebuild.execute()).unwrap();
    assert!(matches!(h.validate(&pair), Err(AppError::TokenRevoked)));
}

#[test]
fn rebuild_skips_sessions_whose_tokens_have_all_expired() {
    let h = Harness::new();
    let pair = h.signed_up_and_logged_in();
    block_on(h.logout.execute(LogoutTarget::RefreshToken(pair.refresh_token), &ClientInfo::default())).unwrap();
    h.clock.advance(h.settings.access_ttl + TimeDelta::seconds(1));
    h.denylist.clear();
    assert_eq!(block_on(h.rebuild.execute()).unwrap(), 0);
}

trait NowForTests {
    fn now_for_tests(&self) -> chrono::DateTime<chrono::Utc>;
}

impl NowForTests for FixedClock {
    fn now_for_tests(&self) -> chrono::DateTime<chrono::Utc> {
        crate::ports::clock::Clock::now(self)
    }
}

#[path = "throttle_tests.rs"]
mod throttle;
