//! Use-case tests of the caller's sessions, session lifetimes, new-login
//! notices and pruning, over the fakes with a moved clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono::TimeDelta;
use futures_executor::block_on;
use gatehouse_domain::{AccessClaims, ClientInfo, DisplayName, EmailAddress, Password, TokenPair};

use super::*;
use crate::auth::SessionRevoker;
use crate::auth::login::SessionOpener;
use crate::auth::{
    Login, LoginCommand, LoginOutcome, RefreshToken, SignUp, SignUpCommand, TokenMinter, ValidateToken,
    VerificationIssuer,
};
use crate::error::AppError;
use crate::events::EventFactory;
use crate::mfa::MfaGate;
use crate::ports::clock::Clock;
use crate::ports::store::SessionRepository;
use crate::settings::TokenSettings;
use crate::settings::VerificationSettings;
use crate::testing::{FakeDenylist, FakeHasher, FakeTokens, FixedClock, InMemoryStore, RecordingEncoder, SeqRandom};

struct H {
    clock: Arc<FixedClock>,
    store: Arc<InMemoryStore>,
    login: Login,
    refresh: RefreshToken,
    validate: ValidateToken,
    revoker: SessionRevoker,
    settings: TokenSettings,
}

impl H {
    fn new() -> Self {
        let clock = Arc::new(FixedClock::new());
        let rng = Arc::new(SeqRandom::default());
        let store = Arc::new(InMemoryStore::default());
        let events = Arc::new(RecordingEncoder::default());
        let hasher = Arc::new(FakeHasher::default());
        let denylist = Arc::new(FakeDenylist::default());
        let tokens = Arc::new(FakeTokens);
        let settings = TokenSettings {
            access_ttl: TimeDelta::minutes(15),
            refresh_ttl: TimeDelta::days(7),
            session_lifetime: TimeDelta::days(20),
        };
        let factory = EventFactory::new(events.clone(), rng.clone(), store.clone());
        let issuer = VerificationIssuer::new(rng.clone(), factory.clone(), VerificationSettings::default());
        let minter = TokenMinter::new(tokens.clone(), clock.clone(), rng.clone(), settings);
        let revoker = SessionRevoker::new(store.clone(), denylist.clone(), factory.clone(), settings);
        let opener = SessionOpener {
            sessions: store.clone(),
            organizations: store.clone(),
            uow: store.clone(),
            users: store.clone(),
            events: factory,
        };
        let strength = crate::PasswordStrength::new(store.clone(), gatehouse_domain::PasswordPolicy::default());
        let signup = SignUp::new(
            store.clone(),
            store.clone(),
            hasher.clone(),
            strength,
            clock.clone(),
            rng,
            issuer,
            crate::testing::throttle(&Arc::new(crate::testing::FakeRateLimiter::default()), &clock),
        );
        for email in ["ann@example.com", "bob@example.com"] {
            block_on(signup.execute(SignUpCommand {
                email: EmailAddress::parse(email).unwrap(),
                password: Password::new("correct horse battery".into()).unwrap(),
                display_name: DisplayName::default(),
                client: ClientInfo::new(None, Some("192.0.2.1".into())),
            }))
            .unwrap();
        }
        let mfa = MfaGate::new(crate::testing::mfa_deps(&store, &clock, &events, crate::MfaSettings::default()));
        Self {
            login: Login::new(
                store.clone(),
                hasher,
                minter.clone(),
                false,
                mfa,
                opener,
                crate::testing::throttle(&Arc::new(crate::testing::FakeRateLimiter::default()), &clock),
            ),
            refresh: RefreshToken::new(store.clone(), minter, revoker.clone()),
            validate: ValidateToken::new(tokens, denylist, clock.clone()),
            revoker,
            clock,
            store,
            settings,
        }
    }

    fn login_from(&self, email: &str, ip: &str, agent: &str) -> TokenPair {
        let outcome = block_on(self.login.execute(LoginCommand {
            email: EmailAddress::parse(email).unwrap(),
            password: Password::candidate("correct horse battery".into()).unwrap(),
            client: ClientInfo::new(Some(agent), Some(ip.into())),
            organization: None,
        }))
        .unwrap();
        match outcome {
            LoginOutcome::Tokens(pair) => pair,
            LoginOutcome::MfaRequired(_) => panic!("no factors here"),
        }
    }

    fn claims(&self, pair: &TokenPair) -> Result<AccessClaims, AppError> {
        block_on(self.validate.execute(pair.access_token.expose()))
    }

    fn notices(&self) -> usize {
        self.store.outbox().iter().filter(|m| m.event_type == "email.login_notice").count()
    }

    fn refresh(&self, pair: &TokenPair, ip: &str) -> Result<TokenPair, AppError> {
        block_on(self.refresh.execute(&pair.refresh_token, &ClientInfo::new(Some("Firefox/1"), Some(ip.into()))))
    }
}

#[test]
fn sessions_are_listed_newest_first_with_the_current_one_marked() {
    let h = H::new();
    let first = h.login_from("ann@example.com", "192.0.2.1", "Firefox/133 (X11; Linux)");
    h.clock.advance(TimeDelta::seconds(1));
    let second = h.login_from("ann@example.com", "192.0.2.2", "Safari (iPhone)");
    h.login_from("bob@example.com", "192.0.2.3", "curl/8");
    let caller = h.claims(&first).unwrap();
    let listed = block_on(ListSessions::new(h.store.clone(), h.clock.clone()).execute(&caller)).unwrap();
    let ids: Vec<_> = listed.iter().map(|v| (v.session.id(), v.current)).collect();
    assert_eq!(ids, [(second.session_id, false), (first.session_id, true)]);
    assert_eq!(listed[1].session.client().ip.as_deref(), Some("192.0.2.1"));
}

/// A user cannot revoke (or learn about) another user's session.
#[test]
fn revoking_another_users_session_is_not_found() {
    let h = H::new();
    let ann = h.login_from("ann@example.com", "192.0.2.1", "a");
    let bob = h.login_from("bob@example.com", "192.0.2.2", "b");
    let caller = h.claims(&ann).unwrap();
    let r = block_on(RevokeSession::new(h.store.clone(), h.revoker.clone(), h.clock.clone()).execute(
        &caller,
        bob.session_id,
        &ClientInfo::default(),
    ));
    assert!(matches!(r, Err(AppError::NotFound("session"))), "{r:?}");
    assert!(h.claims(&bob).is_ok());
}

#[test]
fn revoking_a_session_and_the_others_ends_their_tokens() {
    let h = H::new();
    let here = h.login_from("ann@example.com", "192.0.2.1", "a");
    let phone = h.login_from("ann@example.com", "192.0.2.2", "b");
    let laptop = h.login_from("ann@example.com", "192.0.2.3", "c");
    let caller = h.claims(&here).unwrap();
    block_on(RevokeSession::new(h.store.clone(), h.revoker.clone(), h.clock.clone()).execute(
        &caller,
        phone.session_id,
        &ClientInfo::default(),
    ))
    .unwrap();
    assert!(matches!(h.claims(&phone), Err(AppError::TokenRevoked)));
    assert!(matches!(h.refresh(&phone, "192.0.2.2"), Err(AppError::TokenRevoked)));
    assert_eq!(
        block_on(
            RevokeOtherSessions::new(h.store.clone(), h.revoker.clone(), h.clock.clone())
                .execute(&caller, &ClientInfo::default())
        )
        .unwrap(),
        1
    );
    assert!(matches!(h.claims(&laptop), Err(AppError::TokenRevoked)));
    assert!(h.claims(&here).is_ok());
}

/// OWASP ASVS 5.0 V7.3.1: no refresh for the idle timeout ends the session.
#[test]
fn an_idle_session_ends_after_the_refresh_token_life() {
    let h = H::new();
    let pair = h.login_from("ann@example.com", "192.0.2.1", "a");
    h.clock.advance(h.settings.refresh_ttl);
    assert!(matches!(h.refresh(&pair, "192.0.2.1"), Err(AppError::TokenExpired)));
}

/// OWASP ASVS 5.0 V7.3.2, V10.4.8: an active session still ends at its absolute lifetime.
#[test]
fn an_active_session_ends_at_its_absolute_lifetime() {
    let h = H::new();
    let mut pair = h.login_from("ann@example.com", "192.0.2.1", "a");
    let started = h.clock.now();
    for _ in 0..3 {
        h.clock.advance(TimeDelta::days(6));
        pair = h.refresh(&pair, "198.51.100.7").unwrap();
    }
    // Day 18: the new refresh token may not outlive day 20.
    assert_eq!(pair.refresh_token_expires_at, started + h.settings.session_lifetime);
    let session = block_on(h.store.get(pair.session_id)).unwrap().unwrap();
    assert_eq!(session.client().ip.as_deref(), Some("198.51.100.7"), "the address follows the refresh");
    assert_eq!(session.last_used_at(), h.clock.now());
    // Day 20: the refresh token ends with the session, though its own life
    // of 30 days from day 18 would run on.
    h.clock.advance(TimeDelta::days(2));
    let r = h.refresh(&pair, "198.51.100.7");
    assert!(matches!(r, Err(AppError::TokenExpired)), "{r:?}");
}

#[test]
fn a_login_from_a_new_device_sends_a_notice_once() {
    let h = H::new();
    h.login_from("ann@example.com", "192.0.2.1", "Firefox/133");
    assert_eq!(h.notices(), 1, "the first login is from a new device");
    h.login_from("ann@example.com", "192.0.2.1", "Firefox/133");
    assert_eq!(h.notices(), 1, "same address and browser: no notice");
    h.login_from("ann@example.com", "203.0.113.9", "Firefox/133");
    assert_eq!(h.notices(), 2, "a new address is a new device");
}

#[test]
fn pruning_keeps_revoked_sessions_while_their_tokens_could_live() {
    let h = H::new();
    let pair = h.login_from("ann@example.com", "192.0.2.1", "a");
    let caller = h.claims(&pair).unwrap();
    let other = h.login_from("ann@example.com", "192.0.2.2", "b");
    block_on(RevokeSession::new(h.store.clone(), h.revoker.clone(), h.clock.clone()).execute(
        &caller,
        other.session_id,
        &ClientInfo::default(),
    ))
    .unwrap();
    let prune = PruneSessions::new(h.store.clone(), h.clock.clone(), h.settings);
    assert_eq!(block_on(prune.execute()).unwrap(), 0);
    h.clock.advance(h.settings.access_ttl + TimeDelta::minutes(2));
    assert_eq!(block_on(prune.execute()).unwrap(), 1);
    assert!(block_on(h.store.get(other.session_id)).unwrap().is_none());
    assert!(block_on(h.store.get(pair.session_id)).unwrap().is_some());
}
