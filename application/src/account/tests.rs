//! Use-case tests of email verification, password reset and the caller's
//! account, over the in-memory fakes and a fixed clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::TimeDelta;
use futures_executor::block_on;
use gatehouse_domain::{
    AccessClaims, ClientInfo, DisplayName, EmailAddress, Event, OneTimeCode, Password, PasswordPolicy, Secret,
    TokenPair, UserId,
};

use super::*;
use crate::auth::login::SessionOpener;
use crate::auth::{
    Login, LoginCommand, Proof, Redeemer, RequestPasswordReset, ResendVerification, ResetPassword, SessionRevoker,
    SignUp, SignUpCommand, TokenMinter, ValidateToken, VerificationIssuer, VerifyEmail,
};
use crate::error::AppError;
use crate::events::EventFactory;
use crate::mfa::{FreshProof, FreshProofs, MfaGate};
use crate::password_strength::PasswordStrength;
use crate::settings::{TokenSettings, VerificationSettings};
use crate::testing::{FakeDenylist, FakeHasher, FakeTokens, FixedClock, InMemoryStore, RecordingEncoder, SeqRandom};

/// What the account use cases are built from in these tests.
struct Parts {
    store: Arc<InMemoryStore>,
    hasher: Arc<FakeHasher>,
    strength: PasswordStrength,
    revoker: SessionRevoker,
    issuer: VerificationIssuer,
    proofs: FreshProofs,
    clock: Arc<FixedClock>,
    throttle: crate::throttle::Throttle,
    limiter: Arc<crate::testing::FakeRateLimiter>,
    background: Arc<crate::testing::FakeBackground>,
}

struct Harness {
    clock: Arc<FixedClock>,
    store: Arc<InMemoryStore>,
    events: Arc<RecordingEncoder>,
    sign_up: SignUp,
    login: Login,
    validate: ValidateToken,
    verify: VerifyEmail,
    resend: ResendVerification,
    request_reset: RequestPasswordReset,
    reset: ResetPassword,
    parts: Parts,
}

const PASSWORD: &str = "correct horse battery";
/// Another password good enough for the default policy.
const NEW_PASSWORD: &str = "mauve tractor on the hill";

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn pw(s: &str) -> Password {
    Password::candidate(s.into()).unwrap()
}

fn code(s: &str) -> OneTimeCode {
    OneTimeCode::parse(s).unwrap()
}

/// The password every test account signs up with, as a fresh proof.
fn fresh() -> FreshProof {
    FreshProof::Password(pw(PASSWORD))
}

impl Harness {
    fn new() -> Self {
        let clock = Arc::new(FixedClock::new());
        let rng = Arc::new(SeqRandom::default());
        let store = Arc::new(InMemoryStore::default());
        let events = Arc::new(RecordingEncoder::default());
        let hasher = Arc::new(FakeHasher::default());
        let denylist = Arc::new(FakeDenylist::default());
        let tokens = Arc::new(FakeTokens);
        let settings = TokenSettings::default();
        let verification =
            VerificationSettings { public_url: "https://id.example.com/".into(), ..VerificationSettings::default() };
        let factory = EventFactory::new(events.clone(), rng.clone(), store.clone());
        let issuer = VerificationIssuer::new(rng.clone(), factory.clone(), verification.clone());
        let minter = TokenMinter::new(tokens.clone(), clock.clone(), rng.clone(), settings);
        let revoker = SessionRevoker::new(store.clone(), denylist.clone(), factory.clone(), settings);
        let opener = SessionOpener {
            sessions: store.clone(),
            organizations: store.clone(),
            uow: store.clone(),
            users: store.clone(),
            events: factory.clone(),
        };
        let limiter = Arc::new(crate::testing::FakeRateLimiter::default());
        let background = Arc::new(crate::testing::FakeBackground::default());
        let redeemer = Redeemer::new(store.clone(), verification.clone());
        let sender = crate::auth::VerificationSender::new(
            store.clone(),
            store.clone(),
            issuer.clone(),
            clock.clone(),
            crate::testing::throttle(&limiter, &clock),
            background.clone(),
        );
        let strength = PasswordStrength::new(store.clone(), PasswordPolicy::default());
        Self {
            sign_up: SignUp::new(
                store.clone(),
                store.clone(),
                hasher.clone(),
                strength.clone(),
                clock.clone(),
                rng,
                issuer.clone(),
                crate::testing::throttle(&limiter, &clock),
            ),
            login: Login::new(
                store.clone(),
                hasher.clone(),
                minter,
                true,
                MfaGate::new(crate::testing::mfa_deps(&store, &clock, &events, crate::MfaSettings::default())),
                opener,
                crate::testing::throttle(&limiter, &clock),
            ),
            validate: ValidateToken::new(tokens, denylist, clock.clone()),
            verify: VerifyEmail::new(redeemer.clone(), store.clone(), factory, clock.clone()),
            resend: ResendVerification::new(store.clone(), sender.clone()),
            request_reset: RequestPasswordReset::new(store.clone(), sender),
            reset: ResetPassword::new(
                redeemer,
                store.clone(),
                hasher.clone(),
                strength.clone(),
                issuer.clone(),
                revoker.clone(),
                clock.clone(),
                crate::testing::throttle(&limiter, &clock),
            ),
            parts: Parts {
                store: store.clone(),
                hasher,
                strength,
                revoker,
                issuer,
                proofs: FreshProofs::from(&crate::testing::mfa_deps(
                    &store,
                    &clock,
                    &events,
                    crate::MfaSettings::default(),
                )),
                clock: clock.clone(),
                throttle: crate::testing::throttle(&limiter, &clock),
                limiter,
                background,
            },
            clock,
            store,
            events,
        }
    }

    fn proof(&self) -> PasswordProof {
        PasswordProof::new(self.parts.store.clone(), self.parts.hasher.clone(), self.parts.throttle.clone())
    }

    fn change_password(&self) -> ChangePassword {
        let p = &self.parts;
        ChangePassword::new(
            self.proof(),
            p.strength.clone(),
            p.store.clone(),
            p.revoker.clone(),
            p.issuer.events().clone(),
            p.clock.clone(),
        )
    }

    fn delete_me(&self) -> DeleteMe {
        let p = &self.parts;
        DeleteMe::new(self.proof(), p.store.clone(), p.revoker.clone(), p.issuer.events().clone(), p.clock.clone())
    }

    fn add_login_email(&self) -> AddLoginEmail {
        let p = &self.parts;
        AddLoginEmail::new(p.proofs.clone(), p.store.clone(), p.issuer.clone(), p.clock.clone())
    }

    fn set_primary_email(&self) -> SetPrimaryEmail {
        let p = &self.parts;
        SetPrimaryEmail::new(p.proofs.clone(), p.store.clone(), p.issuer.events().clone(), p.clock.clone())
    }

    fn remove_login_email(&self) -> RemoveLoginEmail {
        let p = &self.parts;
        RemoveLoginEmail::new(p.proofs.clone(), p.store.clone(), p.issuer.events().clone(), p.clock.clone())
    }

    fn get_me(&self) -> GetMe {
        GetMe::new(self.parts.store.clone())
    }

    fn update_me(&self) -> UpdateMe {
        UpdateMe::new(self.parts.store.clone(), self.parts.clock.clone())
    }

    fn sign_up(&self, address: &str) -> UserId {
        block_on(self.sign_up.execute(SignUpCommand {
            email: email(address),
            password: Password::new(PASSWORD.into()).unwrap(),
            display_name: DisplayName::default(),
            client: ClientInfo::new(None, Some("192.0.2.1".into())),
        }))
        .unwrap()
    }

    fn login(&self, address: &str, password: &str) -> Result<TokenPair, AppError> {
        let outcome = block_on(self.login.execute(LoginCommand {
            email: email(address),
            password: pw(password),
            client: ClientInfo::default(),
            organization: None,
        }))?;
        match outcome {
            crate::auth::LoginOutcome::Tokens(pair) => Ok(pair),
            crate::auth::LoginOutcome::MfaRequired(c) => panic!("unexpected challenge {c:?}"),
        }
    }

    /// Events of `event_type` that reached the outbox (an event encoded for
    /// a change that was then refused must not count), oldest first.
    fn committed(&self, event_type: &str) -> Vec<Event> {
        let ids: Vec<_> = self.store.outbox().iter().map(|m| m.id).collect();
        let recorded = self.events.events.lock().unwrap();
        recorded
            .iter()
            .filter(|e| ids.contains(&e.id) && e.event.event_type() == event_type)
            .map(|e| e.event.clone())
            .collect()
    }

    /// The (token, code, link) of the newest committed event of `event_type` for `address`.
    fn secrets(&self, event_type: &str, address: &str) -> (String, String, String) {
        let events = self.committed(event_type);
        let found = events.iter().rev().find_map(|e| match e {
            Event::VerificationRequested { email, token, code, link, .. }
            | Event::PasswordResetRequested { email, token, code, link, .. }
                if email.as_str() == address =>
            {
                Some((token.expose().clone(), code.expose().clone(), link.expose().clone()))
            }
            _ => None,
        });
        found.unwrap_or_else(|| panic!("no {event_type} event for {address}"))
    }

    fn verify_token(&self, token: &str) -> Result<(), AppError> {
        block_on(self.verify.execute(Proof::Token(Secret::new(token.to_owned()))))
    }

    fn verify_code(&self, address: &str, digits: &str) -> Result<(), AppError> {
        block_on(self.verify.execute(Proof::Code { email: email(address), code: code(digits) }))
    }

    fn signed_up_and_verified(&self, address: &str) -> UserId {
        let id = self.sign_up(address);
        let (token, _, _) = self.secrets("email.verification_requested", address);
        self.verify_token(&token).unwrap();
        id
    }

    fn claims(&self, pair: &TokenPair) -> Result<AccessClaims, AppError> {
        block_on(self.validate.execute(pair.access_token.expose()))
    }

    /// The types of the notifications written (audit facts left out).
    fn outbox_types(&self) -> Vec<String> {
        self.store.outbox().into_iter().filter(|m| m.audit.is_none()).map(|m| m.event_type).collect()
    }

    /// The kinds of the audit rows written, in order.
    fn audit_kinds(&self) -> Vec<String> {
        self.store.audit_rows().into_iter().map(|r| r.kind).collect()
    }
}

fn wrong(digits: &str) -> String {
    let n: u32 = digits.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

#[test]
fn sign_up_writes_the_verification_event_to_the_outbox_with_a_configured_link() {
    let h = Harness::new();
    h.sign_up("ann@example.com");
    assert_eq!(h.outbox_types(), ["email.verification_requested"]);
    let (token, code, link) = h.secrets("email.verification_requested", "ann@example.com");
    assert!(token.starts_with("ghv_") && token.len() == 47, "{token}");
    assert_eq!(code.len(), 6);
    assert_eq!(link, format!("https://id.example.com/verify-email?token={token}"));
    // Only hashes are stored: a token's, and a code's bound to its purpose
    // and address, so a code sent to one address redeems nothing for another.
    let stored = h.store.verifications();
    assert_eq!(stored.len(), 1);
    assert_eq!(*stored[0].token_hash(), crate::secrets::hash_secret(&token));
    let code = OneTimeCode::parse(&code).unwrap();
    let purpose = gatehouse_domain::Purpose::VerifyEmail;
    assert_eq!(*stored[0].code_hash(), crate::secrets::hash_code(purpose, &email("ann@example.com"), &code));
}

#[test]
fn login_needs_a_verified_email_but_says_so_only_after_the_password_matched() {
    let h = Harness::new();
    h.sign_up("ann@example.com");
    assert!(matches!(h.login("ann@example.com", "wrong password"), Err(AppError::InvalidCredentials)));
    assert!(matches!(h.login("ann@example.com", PASSWORD), Err(AppError::EmailNotVerified)));
    let (token, _, _) = h.secrets("email.verification_requested", "ann@example.com");
    h.verify_token(&token).unwrap();
    h.login("ann@example.com", PASSWORD).unwrap();
}

/// OWASP ASVS 5.0 V6.5.1: one-time secrets are usable once.
#[test]
fn a_link_token_verifies_once() {
    let h = Harness::new();
    h.sign_up("ann@example.com");
    let (token, code, _) = h.secrets("email.verification_requested", "ann@example.com");
    h.verify_token(&token).unwrap();
    assert!(matches!(h.verify_token(&token), Err(AppError::VerificationUsed)));
    assert!(matches!(h.verify_code("ann@example.com", &code), Err(AppError::CodeInvalid { field: "email_code.code" })));
}

#[test]
fn email_and_code_verify_and_a_code_for_another_email_does_not() {
    let h = Harness::new();
    h.sign_up("ann@example.com");
    h.sign_up("bob@example.com");
    let (_, ann_code, _) = h.secrets("email.verification_requested", "ann@example.com");
    let (_, bob_code, _) = h.secrets("email.verification_requested", "bob@example.com");
    assert_ne!(ann_code, bob_code, "the fake random source never repeats a code");
    assert!(matches!(
        h.verify_code("bob@example.com", &ann_code),
        Err(AppError::CodeInvalid { field: "email_code.code" })
    ));
    h.verify_code("bob@example.com", &bob_code).unwrap();
    h.verify_code("ann@example.com", &ann_code).unwrap();
    h.login("ann@example.com", PASSWORD).unwrap();
}

#[test]
fn the_code_dies_after_five_wrong_tries() {
    let h = Harness::new();
    h.sign_up("ann@example.com");
    let (token, code, _) = h.secrets("email.verification_requested", "ann@example.com");
    for _ in 0..5 {
        assert!(matches!(
            h.verify_code("ann@example.com", &wrong(&code)),
            Err(AppError::CodeInvalid { field: "email_code.code" })
        ));
    }
    // On the code path the exhausted code answers like a wrong one (OWASP
    // ASVS 5.0 V6.3.8); the unguessable link token may say why.
    let as_wrong = |r: Result<_, AppError>| matches!(r, Err(AppError::CodeInvalid { field: "email_code.code" }));
    assert!(as_wrong(h.verify_code("ann@example.com", &wrong(&code))));
    assert!(as_wrong(h.verify_code("ann@example.com", &code)));
    assert!(matches!(h.verify_token(&token), Err(AppError::AttemptsExhausted)));
    assert_eq!(h.store.verifications()[0].attempts(), 5);
}

#[test]
fn verification_expires_after_five_days() {
    let h = Harness::new();
    h.sign_up("ann@example.com");
    let (token, code, _) = h.secrets("email.verification_requested", "ann@example.com");
    h.clock.advance(TimeDelta::days(5));
    assert!(matches!(h.verify_token(&token), Err(AppError::VerificationExpired)));
    let r = h.verify_code("ann@example.com", &code);
    assert!(matches!(r, Err(AppError::CodeInvalid { field: "email_code.code" })), "expired answers like wrong: {r:?}");
}

#[test]
fn resending_replaces_the_previous_verification_and_says_nothing_about_unknown_addresses() {
    let h = Harness::new();
    h.sign_up("ann@example.com");
    let (old, _, _) = h.secrets("email.verification_requested", "ann@example.com");
    block_on(h.resend.execute(&email("ann@example.com"))).unwrap();
    let (new, _, _) = h.secrets("email.verification_requested", "ann@example.com");
    assert_ne!(old, new);
    assert!(matches!(h.verify_token(&old), Err(AppError::VerificationUsed)));
    h.verify_token(&new).unwrap();
    let before = h.outbox_types().len();
    block_on(h.resend.execute(&email("nobody@example.com"))).unwrap();
    block_on(h.resend.execute(&email("ann@example.com"))).unwrap(); // already verified
    assert_eq!(h.outbox_types().len(), before, "no event for unknown or verified addresses");
}

#[test]
fn a_token_of_the_other_kind_is_refused() {
    let h = Harness::new();
    h.signed_up_and_verified("ann@example.com");
    block_on(h.request_reset.execute(&email("ann@example.com"))).unwrap();
    let (reset_token, _, link) = h.secrets("email.password_reset_requested", "ann@example.com");
    assert!(link.starts_with("https://id.example.com/reset-password?token=ghp_"));
    assert!(matches!(h.verify_token(&reset_token), Err(AppError::VerificationInvalid)));
    let verify_token = reset_token.replacen("ghp_", "ghv_", 1);
    assert!(matches!(h.verify_token(&verify_token), Err(AppError::VerificationInvalid)));
}

/// OWASP ASVS 5.0 V7.4.3: a reset ends every session.
#[test]
fn password_reset_replaces_the_password_revokes_sessions_and_notifies() {
    let h = Harness::new();
    h.signed_up_and_verified("ann@example.com");
    let session = h.login("ann@example.com", PASSWORD).unwrap();
    block_on(h.request_reset.execute(&email("ann@example.com"))).unwrap();
    let (token, _, _) = h.secrets("email.password_reset_requested", "ann@example.com");
    let new = Password::new("a brand new secret".into()).unwrap();
    block_on(h.reset.execute(Proof::Token(Secret::new(token.clone())), new.clone())).unwrap();
    assert!(matches!(h.claims(&session), Err(AppError::TokenRevoked)));
    assert!(matches!(h.login("ann@example.com", PASSWORD), Err(AppError::InvalidCredentials)));
    h.login("ann@example.com", "a brand new secret").unwrap();
    assert_eq!(h.outbox_types().last().map(String::as_str), Some("email.password_changed"));
    assert!(matches!(
        block_on(h.reset.execute(Proof::Token(Secret::new(token)), new)),
        Err(AppError::VerificationUsed)
    ));
}

#[test]
fn password_reset_by_code_and_a_newer_request_retires_the_older() {
    let h = Harness::new();
    h.signed_up_and_verified("ann@example.com");
    block_on(h.request_reset.execute(&email("ann@example.com"))).unwrap();
    let (first, _, _) = h.secrets("email.password_reset_requested", "ann@example.com");
    block_on(h.request_reset.execute(&email("ann@example.com"))).unwrap();
    let (_, code, _) = h.secrets("email.password_reset_requested", "ann@example.com");
    let new = Password::new("another new secret".into()).unwrap();
    let r = block_on(h.reset.execute(Proof::Token(Secret::new(first)), new.clone()));
    assert!(matches!(r, Err(AppError::VerificationUsed)), "{r:?}");
    block_on(
        h.reset.execute(Proof::Code { email: email("ann@example.com"), code: OneTimeCode::parse(&code).unwrap() }, new),
    )
    .unwrap();
    h.login("ann@example.com", "another new secret").unwrap();
}

#[test]
fn reset_for_an_unknown_address_answers_the_same_and_sends_nothing() {
    let h = Harness::new();
    block_on(h.request_reset.execute(&email("nobody@example.com"))).unwrap();
    assert!(h.outbox_types().is_empty());
}

#[test]
fn reset_expires_after_two_hours() {
    let h = Harness::new();
    h.signed_up_and_verified("ann@example.com");
    block_on(h.request_reset.execute(&email("ann@example.com"))).unwrap();
    let (token, _, _) = h.secrets("email.password_reset_requested", "ann@example.com");
    h.clock.advance(TimeDelta::hours(2));
    let r = block_on(h.reset.execute(Proof::Token(Secret::new(token)), Password::new(NEW_PASSWORD.into()).unwrap()));
    assert!(matches!(r, Err(AppError::VerificationExpired)), "{r:?}");
}

/// NIST SP 800-63B-4 §3.1.1.2, OWASP ASVS 5.0 V6.2.4 and V6.2.11: a reset
/// to a common password, or one built from the account's addresses, is
/// refused naming `new_password`, and leaves the link and the code usable:
/// the strength is judged after the proof is checked, before anything is
/// consumed or hashed.
#[test]
fn reset_to_a_guessable_password_is_refused_and_consumes_nothing() {
    let h = Harness::new();
    let user = h.signed_up_and_verified("ann.lee@example.com");
    block_on(h.add_login_email().execute(user, &email("annie.work@corp.example"), &fresh())).unwrap();
    block_on(h.request_reset.execute(&email("ann.lee@example.com"))).unwrap();
    let (token, code, _) = h.secrets("email.password_reset_requested", "ann.lee@example.com");
    let by_token = || Proof::Token(Secret::new(token.clone()));
    let by_code = || Proof::Code { email: email("ann.lee@example.com"), code: self::code(&code) };
    let outbox = h.outbox_types();
    for weak in ["12345678", "password", "ann.lee@example.com", "annie.work@corp.example"] {
        for proof in [by_token(), by_code()] {
            let r = block_on(h.reset.execute(proof, Password::new(weak.into()).unwrap()));
            let Err(AppError::InvalidArgument(v)) = r else { panic!("{weak}: {r:?}") };
            assert_eq!(v.iter().map(|v| v.field).collect::<Vec<_>>(), ["new_password"], "{weak}");
        }
    }
    assert_eq!(h.outbox_types(), outbox, "nothing written");
    assert!(h.store.verifications().iter().all(|v| v.attempts() == 0), "no attempt counted");
    h.login("ann.lee@example.com", PASSWORD).unwrap();
    block_on(h.reset.execute(by_code(), Password::new(NEW_PASSWORD.into()).unwrap())).unwrap();
    h.login("ann.lee@example.com", NEW_PASSWORD).unwrap();
}

/// NIST SP 800-63B-4 §3.1.1.2, OWASP ASVS 5.0 V6.2.4: a guessable new
/// password is refused before the current one is even checked (no argon2
/// work), and nothing changes: no session ends, nobody is notified.
#[test]
fn change_to_a_guessable_password_is_refused_and_changes_nothing() {
    let h = Harness::new();
    h.signed_up_and_verified("ann@example.com");
    let here = h.login("ann@example.com", PASSWORD).unwrap();
    let elsewhere = h.login("ann@example.com", PASSWORD).unwrap();
    let caller = h.claims(&here).unwrap();
    let checks = h.parts.hasher.verifications.load(std::sync::atomic::Ordering::Relaxed);
    for (current, weak) in [(PASSWORD, "password1"), ("not my password", "qwertyuiop"), (PASSWORD, "ann@example.com")] {
        let r = block_on(h.change_password().execute(&caller, &pw(current), &Password::new(weak.into()).unwrap()));
        let Err(AppError::InvalidArgument(v)) = r else { panic!("{weak}: {r:?}") };
        assert_eq!(v.iter().map(|v| v.field).collect::<Vec<_>>(), ["new_password"], "{weak}");
        assert!(!v[0].description.is_empty());
    }
    assert_eq!(h.parts.hasher.verifications.load(std::sync::atomic::Ordering::Relaxed), checks);
    assert!(h.claims(&elsewhere).is_ok());
    assert!(!h.outbox_types().iter().any(|t| t == "email.password_changed"));
    h.login("ann@example.com", PASSWORD).unwrap();
}

/// OWASP ASVS 5.0 V7.4.3: changing the password ends the other sessions.
#[test]
fn change_password_needs_the_current_one_and_ends_the_other_sessions() {
    let h = Harness::new();
    h.signed_up_and_verified("ann@example.com");
    let here = h.login("ann@example.com", PASSWORD).unwrap();
    let elsewhere = h.login("ann@example.com", PASSWORD).unwrap();
    let caller = h.claims(&here).unwrap();
    let change = h.change_password();
    let new = Password::new("the new password".into()).unwrap();
    let r = block_on(change.execute(&caller, &pw("not my password"), &new));
    assert!(matches!(r, Err(AppError::WrongPassword { field: "current_password" })), "{r:?}");
    block_on(change.execute(&caller, &pw(PASSWORD), &new)).unwrap();
    assert!(h.claims(&here).is_ok());
    assert!(matches!(h.claims(&elsewhere), Err(AppError::TokenRevoked)));
    h.login("ann@example.com", "the new password").unwrap();
    assert_eq!(h.outbox_types().last().map(String::as_str), Some("email.password_changed"));
}

/// OWASP ASVS 5.0 V6.3.8: with verified addresses required, a sign-up with
/// a taken address is answered like a new one (an id, after the same hash
/// work) and stores nothing; the address's owner is told instead.
#[test]
fn a_sign_up_with_a_taken_address_looks_new_and_tells_the_owner() {
    let h = Harness::new();
    let owner = h.signed_up_and_verified("ann@example.com");
    let before = h.store.users().len();
    let answer = h.sign_up("ANN@example.com");
    assert_ne!(answer, owner, "the answer must not name the existing account");
    assert_eq!(h.store.users().len(), before, "nothing stored");
    let attempted: Vec<_> = h.store.outbox().into_iter().filter(|m| m.event_type == "email.signup_attempted").collect();
    assert_eq!(attempted.len(), 1);
    assert!(h.audit_kinds().contains(&"user.signup_attempted".to_owned()));
    // No verification was issued for the attempt.
    let verifications = h.outbox_types().iter().filter(|t| *t == "email.verification_requested").count();
    assert_eq!(verifications, 1);
}

/// Sign-ups are limited per client address, and each sign-up's email per
/// recipient, before any hashing (OWASP ASVS 5.0 V6.3.1 / V2.4.1 against
/// mass registration and mail bombing).
#[test]
fn sign_ups_are_limited_per_address_and_recipient() {
    let h = Harness::new();
    let limits = crate::throttle::RateLimits::default();
    for n in 0..limits.sign_up_address.max() {
        h.sign_up(&format!("user{n}@example.com"));
    }
    let r = block_on(h.sign_up.execute(SignUpCommand {
        email: email("one.more@example.com"),
        password: Password::new(PASSWORD.into()).unwrap(),
        display_name: DisplayName::default(),
        client: ClientInfo::new(None, Some("192.0.2.1".into())),
    }));
    assert!(matches!(r, Err(AppError::RateLimited { .. })), "{r:?}");
    let from = |ip: &str| {
        block_on(h.sign_up.execute(SignUpCommand {
            email: email("target@example.com"),
            password: Password::new(PASSWORD.into()).unwrap(),
            display_name: DisplayName::default(),
            client: ClientInfo::new(None, Some(ip.into())),
        }))
    };
    for n in 0..limits.message_recipient.max() {
        from(&format!("198.51.100.{n}")).unwrap();
    }
    let r = from("203.0.113.9");
    assert!(matches!(r, Err(AppError::RateLimited { .. })), "the recipient's limit: {r:?}");
}

/// OWASP ASVS 5.0 V6.3.8: `RequestPasswordReset` and `ResendVerification`
/// answer before the address is looked up, so their time cannot tell an
/// address with an account from one without; the work follows.
#[test]
fn reset_and_resend_answer_before_looking_the_address_up() {
    let h = Harness::new();
    h.sign_up("ann@example.com");
    let unverified = email("ann@example.com");
    h.parts.background.defer();
    let sent = |t: &str| h.outbox_types().iter().filter(|x| *x == t).count();
    let (resets, verifications) = (sent("email.password_reset_requested"), sent("email.verification_requested"));
    for address in [&unverified, &email("nobody@example.com")] {
        block_on(h.request_reset.execute(address)).unwrap();
        block_on(h.resend.execute(address)).unwrap();
    }
    assert_eq!(sent("email.password_reset_requested"), resets, "nothing happened before the answer");
    assert_eq!(
        h.parts.background.waiting(),
        ["request_password_reset", "resend_verification", "request_password_reset", "resend_verification"],
        "the same work is left for a known and an unknown address"
    );
    h.parts.background.run_waiting();
    assert_eq!(sent("email.password_reset_requested"), resets + 1, "the work ran after the answer");
    assert_eq!(sent("email.verification_requested"), verifications + 1);
}

/// NIST SP 800-63B-4 §3.2.2: the account ceiling must not lock the owner
/// out for good; a password reset proves the owner and lifts it.
#[test]
fn a_password_reset_lifts_the_account_ceiling() {
    let h = Harness::new();
    let user = h.signed_up_and_verified("ann@example.com");
    let throttle = &h.parts.throttle;
    let ceiling = crate::throttle::RateLimits::default().login_account.max();
    for n in 0..ceiling {
        let ip = format!("10.1.{}.{}", n / 4, n % 4);
        let gate = block_on(throttle.login(crate::throttle::LoginSubject::Account(user), Some(&ip))).unwrap();
        assert!(matches!(gate, crate::throttle::LoginGate::Go(_)), "attempt {}", n + 1);
    }
    let r = h.login("ann@example.com", PASSWORD);
    assert!(matches!(r, Err(AppError::RateLimited { .. })), "the ceiling holds: {r:?}");
    block_on(h.request_reset.execute(&email("ann@example.com"))).unwrap();
    let (token, _, _) = h.secrets("email.password_reset_requested", "ann@example.com");
    block_on(h.reset.execute(Proof::Token(Secret::new(token)), pw("a brand new passphrase"))).unwrap();
    h.login("ann@example.com", "a brand new passphrase").unwrap();
}

/// OWASP ASVS 5.0 V6.3.1: a stolen access token is no password oracle.
/// Wrong current passwords are limited per account (ChangePassword and
/// DeleteMe share the count), a refused check runs no hash, right ones do
/// not count, and with the limiter down the check fails closed.
#[test]
fn password_checks_of_a_signed_in_account_are_limited() {
    let h = Harness::new();
    let user = h.signed_up_and_verified("ann@example.com");
    let caller = h.claims(&h.login("ann@example.com", PASSWORD).unwrap()).unwrap();
    let (change, delete) = (h.change_password(), h.delete_me());
    let new = Password::new("the new password".into()).unwrap();
    let limit = crate::throttle::RateLimits::default().password_check.max();
    for _ in 0..limit / 2 {
        assert!(matches!(block_on(change.execute(&caller, &pw(PASSWORD), &new.clone())), Ok(())));
        block_on(change.execute(&caller, &pw("the new password"), &pw(PASSWORD))).unwrap();
    }
    for n in 0..limit {
        let r = if n % 2 == 0 {
            block_on(change.execute(&caller, &pw("not my password"), &new))
        } else {
            block_on(delete.execute(user, &pw("not my password")))
        };
        assert!(matches!(r, Err(AppError::WrongPassword { .. })), "check {}: {r:?}", n + 1);
    }
    let hashed = h.parts.hasher.verifications.load(Ordering::Relaxed);
    for r in [block_on(change.execute(&caller, &pw(PASSWORD), &new)), block_on(delete.execute(user, &pw(PASSWORD)))] {
        assert!(matches!(r, Err(AppError::RateLimited { .. })), "{r:?}");
    }
    assert_eq!(h.parts.hasher.verifications.load(Ordering::Relaxed), hashed, "a refused check ran the hasher");
    h.clock.advance(TimeDelta::hours(1));
    h.parts.limiter.set_down(true);
    let r = block_on(delete.execute(user, &pw(PASSWORD)));
    assert!(matches!(r, Err(AppError::Unavailable(_))), "{r:?}");
    h.parts.limiter.set_down(false);
    block_on(delete.execute(user, &pw(PASSWORD))).unwrap();
}

#[test]
fn login_emails_are_added_verified_made_primary_and_removed() {
    let h = Harness::new();
    let user = h.signed_up_and_verified("ann@example.com");
    block_on(h.add_login_email().execute(user, &email("ann@work.example"), &fresh())).unwrap();
    assert!(matches!(
        block_on(h.add_login_email().execute(user, &email("ann@example.com"), &fresh())),
        Err(AppError::EmailTaken)
    ));
    let set_primary = h.set_primary_email();
    let r = block_on(set_primary.execute(user, &email("ann@work.example"), &fresh()));
    assert!(matches!(r, Err(AppError::FailedPrecondition { reason: "EMAIL_NOT_VERIFIED", .. })), "{r:?}");
    assert!(matches!(h.login("ann@work.example", PASSWORD), Err(AppError::EmailNotVerified)));

    let (token, _, _) = h.secrets("email.verification_requested", "ann@work.example");
    h.verify_token(&token).unwrap();
    h.login("ann@work.example", PASSWORD).unwrap();

    block_on(set_primary.execute(user, &email("ann@work.example"), &fresh())).unwrap();
    let changed = h.committed("email.changed");
    assert!(matches!(&changed[..], [Event::EmailChanged { email, new_email, .. }]
        if email.as_str() == "ann@example.com" && new_email.as_str() == "ann@work.example"));
    let account = block_on(h.get_me().execute(user)).unwrap();
    assert_eq!(account.emails()[0].email.as_str(), "ann@work.example");
    assert!(account.emails()[0].primary);

    let remove = h.remove_login_email();
    let r = block_on(remove.execute(user, &email("ann@work.example"), &fresh()));
    assert!(matches!(r, Err(AppError::FailedPrecondition { reason: "EMAIL_IS_PRIMARY", .. })), "{r:?}");
    assert!(matches!(
        block_on(remove.execute(user, &email("zed@example.com"), &fresh())),
        Err(AppError::NotFound("login email"))
    ));
    block_on(remove.execute(user, &email("ann@example.com"), &fresh())).unwrap();
    assert!(matches!(h.login("ann@example.com", PASSWORD), Err(AppError::InvalidCredentials)));
}

#[test]
fn the_last_verified_email_cannot_be_removed() {
    let h = Harness::new();
    let user = h.sign_up("ann@example.com");
    block_on(h.add_login_email().execute(user, &email("ann@work.example"), &fresh())).unwrap();
    let (token, _, _) = h.secrets("email.verification_requested", "ann@work.example");
    h.verify_token(&token).unwrap();
    let r = block_on(h.remove_login_email().execute(user, &email("ann@work.example"), &fresh()));
    assert!(matches!(r, Err(AppError::FailedPrecondition { reason: "LAST_VERIFIED_EMAIL", .. })), "{r:?}");
}

#[test]
fn update_me_changes_the_display_name() {
    let h = Harness::new();
    let user = h.signed_up_and_verified("ann@example.com");
    h.clock.advance(TimeDelta::minutes(1));
    let account = block_on(h.update_me().execute(user, Some(DisplayName::parse("Ann Lee").unwrap()))).unwrap();
    assert_eq!(account.display_name().as_str(), "Ann Lee");
    assert!(account.updated_at() > account.created_at());
}

#[test]
fn delete_me_needs_the_password_and_ends_every_session() {
    let h = Harness::new();
    let user = h.signed_up_and_verified("ann@example.com");
    let pair = h.login("ann@example.com", PASSWORD).unwrap();
    let delete = h.delete_me();
    assert!(matches!(
        block_on(delete.execute(user, &pw("nope nope"))),
        Err(AppError::WrongPassword { field: "password" })
    ));
    block_on(delete.execute(user, &pw(PASSWORD))).unwrap();
    assert!(matches!(h.claims(&pair), Err(AppError::TokenRevoked)));
    assert!(matches!(h.login("ann@example.com", PASSWORD), Err(AppError::InvalidCredentials)));
    assert!(matches!(block_on(h.get_me().execute(user)), Err(AppError::NotFound("user"))));
}

/// OWASP ASVS 5.0 V7.4.1: the deleted account's sessions go with it, so a
/// tombstone stays until its last access token has expired; a denylist that
/// lost its data is rebuilt from it and refuses the token again.
#[test]
fn delete_me_leaves_a_tombstone_the_rebuild_denies_until_the_last_token_expires() {
    use crate::ports::store::SessionRepository as _;

    let h = Harness::new();
    let user = h.signed_up_and_verified("ann@example.com");
    let pair = h.login("ann@example.com", PASSWORD).unwrap();
    block_on(h.delete_me().execute(user, &pw(PASSWORD))).unwrap();
    let now = crate::ports::clock::Clock::now(h.clock.as_ref());
    let until = now + TokenSettings::default().access_ttl;
    let tombstones = block_on(h.store.tombstones(now)).unwrap();
    assert_eq!(tombstones, vec![crate::ports::store::Tombstone { user, until }]);

    let denylist = Arc::new(FakeDenylist::default());
    let rebuild = crate::auth::RebuildDenylist::new(
        h.store.clone(),
        denylist.clone(),
        h.parts.revoker.clone(),
        h.clock.clone(),
        TokenSettings::default(),
    );
    assert_eq!(block_on(rebuild.execute()).unwrap(), 1, "the tombstone alone: the sessions are gone");
    let validate = ValidateToken::new(Arc::new(FakeTokens), denylist, h.clock.clone());
    assert!(matches!(block_on(validate.execute(pair.access_token.expose())), Err(AppError::TokenRevoked)));

    // Pruned only once no token of the account can be alive.
    assert_eq!(block_on(h.store.prune(until)).unwrap(), 0);
    assert_eq!(block_on(h.store.prune(until + TimeDelta::seconds(1))).unwrap(), 1);
    assert!(block_on(h.store.tombstones(now)).unwrap().is_empty());
}

/// OWASP ASVS 5.0 V6.3.1, NIST SP 800-63B-4 §3.2.2 (rate limiting): asking
/// for new codes buys no extra guesses. The wrong codes are spread over four
/// resets so that none reaches its own limit of five: only the per-user
/// budget of ten per hour can refuse the fourth reset's right code.
#[test]
fn new_reset_requests_do_not_reset_the_guess_budget() {
    let h = Harness::new();
    h.signed_up_and_verified("ann@example.com");
    let reset = |digits: &str| {
        let proof = Proof::Code { email: email("ann@example.com"), code: code(digits) };
        block_on(h.reset.execute(proof, Password::new(NEW_PASSWORD.into()).unwrap()))
    };
    // 4 + 4 + 1 wrong codes, then a fourth reset is still sent (nine failures).
    for wrong_codes in [4, 4, 1, 0] {
        let before = h.committed("email.password_reset_requested").len();
        block_on(h.request_reset.execute(&email("ann@example.com"))).unwrap();
        assert_eq!(h.committed("email.password_reset_requested").len(), before + 1, "under the budget: sent");
        let (_, code, _) = h.secrets("email.password_reset_requested", "ann@example.com");
        for _ in 0..wrong_codes {
            assert!(matches!(reset(&wrong(&code)), Err(AppError::CodeInvalid { field: "email_code.code" })));
        }
    }
    let (_, code, _) = h.secrets("email.password_reset_requested", "ann@example.com");
    // The tenth wrong code, on a reset with four attempts left.
    assert!(matches!(reset(&wrong(&code)), Err(AppError::CodeInvalid { field: "email_code.code" })));
    assert!(h.store.verifications().iter().all(|v| v.attempts() < v.max_attempts()), "no reset reached its own limit");
    // Refused like any wrong code: an exhausted budget exists only for a
    // real account (OWASP ASVS 5.0 V6.3.8).
    let r = reset(&code);
    assert!(matches!(r, Err(AppError::CodeInvalid { field: "email_code.code" })), "{r:?}");
    h.login("ann@example.com", PASSWORD).unwrap();

    let before = h.outbox_types().len();
    block_on(h.request_reset.execute(&email("ann@example.com"))).unwrap();
    assert_eq!(h.outbox_types().len(), before, "throttled: nothing sent");
    h.clock.advance(TimeDelta::hours(1) + TimeDelta::seconds(1));
    block_on(h.request_reset.execute(&email("ann@example.com"))).unwrap();
    assert_eq!(h.outbox_types().len(), before + 1, "the budget returns after the window");
    let (_, code, _) = h.secrets("email.password_reset_requested", "ann@example.com");
    reset(&code).unwrap();
}

/// OWASP ASVS 5.0 V6.3.1: at most five codes are sent per user and purpose
/// per hour, so asking over and over cannot flood a mailbox or collect
/// codes; a throttled request is answered the same (nothing tells an
/// attacker it was throttled) and leaves the last code sent usable.
#[test]
fn at_most_five_resets_are_sent_per_hour_and_the_answer_stays_the_same() {
    let h = Harness::new();
    h.signed_up_and_verified("ann@example.com");
    for _ in 0..8 {
        block_on(h.request_reset.execute(&email("ann@example.com"))).unwrap();
    }
    assert_eq!(h.committed("email.password_reset_requested").len(), 5);
    let (_, code, _) = h.secrets("email.password_reset_requested", "ann@example.com");
    let proof = Proof::Code { email: email("ann@example.com"), code: OneTimeCode::parse(&code).unwrap() };
    block_on(h.reset.execute(proof, Password::new(NEW_PASSWORD.into()).unwrap())).unwrap();

    // The same throttle guards resending a verification; the sign-up's own
    // verification is the first of the five.
    h.sign_up("bob@example.com");
    for _ in 0..8 {
        block_on(h.resend.execute(&email("bob@example.com"))).unwrap();
    }
    let to_bob =
        |e: &&Event| matches!(e, Event::VerificationRequested { email, .. } if email.as_str() == "bob@example.com");
    assert_eq!(h.committed("email.verification_requested").iter().filter(to_bob).count(), 5);
    h.clock.advance(TimeDelta::hours(1) + TimeDelta::seconds(1));
    block_on(h.request_reset.execute(&email("ann@example.com"))).unwrap();
    assert_eq!(h.committed("email.password_reset_requested").len(), 6, "the window moved on");
}

/// OWASP ASVS 5.0 V16.3.1: sign-up, failed and successful logins, email
/// verification and password changes each leave an audit row; a failed login
/// never records the password.
#[test]
fn account_changes_and_logins_leave_audit_rows() {
    let h = Harness::new();
    h.sign_up("ann@example.com");
    assert!(matches!(h.login("ann@example.com", "wrong password"), Err(AppError::InvalidCredentials)));
    assert!(matches!(h.login("nobody@example.com", PASSWORD), Err(AppError::InvalidCredentials)));
    let (token, _, _) = h.secrets("email.verification_requested", "ann@example.com");
    h.verify_token(&token).unwrap();
    let pair = h.login("ann@example.com", PASSWORD).unwrap();
    let caller = h.claims(&pair).unwrap();
    let new = Password::new("the new password".into()).unwrap();
    block_on(h.change_password().execute(&caller, &pw(PASSWORD), &new)).unwrap();
    assert_eq!(
        h.audit_kinds(),
        ["user.signed_up", "login.failed", "login.failed", "email.verified", "login.succeeded", "password.changed"]
    );
    let rows = h.store.audit_rows();
    assert_eq!(rows[1].subject, Some(caller.user_id), "a wrong password is recorded against the account");
    assert_eq!(rows[2].subject, None, "an unknown address names no account");
    assert!(rows.iter().all(|r| r.details.iter().all(|(_, v)| !v.contains(PASSWORD))));
}

/// OWASP ASVS 5.0 V7.5.1: changing the login emails needs a fresh proof, so
/// an access token alone cannot point password resets at another address.
/// A wrong proof changes nothing, is answered against the field it names,
/// and counts toward the account's limit on wrong proofs.
#[test]
fn login_email_changes_need_a_fresh_proof_and_a_wrong_one_changes_nothing() {
    let h = Harness::new();
    let user = h.signed_up_and_verified("ann@example.com");
    block_on(h.add_login_email().execute(user, &email("ann@work.example"), &fresh())).unwrap();
    let (token, _, _) = h.secrets("email.verification_requested", "ann@work.example");
    h.verify_token(&token).unwrap();
    let before = (block_on(h.get_me().execute(user)).unwrap(), h.store.outbox().len());

    let wrong = FreshProof::Password(pw("not my password"));
    let r = block_on(h.add_login_email().execute(user, &email("thief@example.net"), &wrong));
    assert!(matches!(r, Err(AppError::WrongPassword { field: "password" })), "{r:?}");
    let r = block_on(h.set_primary_email().execute(user, &email("ann@work.example"), &wrong));
    assert!(matches!(r, Err(AppError::WrongPassword { field: "password" })), "{r:?}");
    let r = block_on(h.remove_login_email().execute(user, &email("ann@work.example"), &wrong));
    assert!(matches!(r, Err(AppError::WrongPassword { field: "password" })), "{r:?}");
    let no_such_factor = FreshProof::TotpCode { factor_id: uuid::Uuid::nil(), code: code("123456") };
    let r = block_on(h.remove_login_email().execute(user, &email("ann@work.example"), &no_such_factor));
    assert!(
        matches!(&r, Err(AppError::InvalidArgument(v)) if v.iter().map(|v| v.field).eq(["totp_code.factor_id"])),
        "{r:?}"
    );
    assert_eq!((block_on(h.get_me().execute(user)).unwrap(), h.store.outbox().len()), before, "nothing changed");

    // Ten wrong proofs in the window (three above): the right one is refused
    // for a while too, so a stolen token cannot keep guessing.
    for _ in 0..7 {
        let r = block_on(h.add_login_email().execute(user, &email("thief@example.net"), &wrong));
        assert!(matches!(r, Err(AppError::WrongPassword { .. })), "{r:?}");
    }
    let r = block_on(h.add_login_email().execute(user, &email("thief@example.net"), &fresh()));
    assert!(matches!(r, Err(AppError::RateLimited { .. })), "{r:?}");
    h.clock.advance(TimeDelta::minutes(16));
    block_on(h.set_primary_email().execute(user, &email("ann@work.example"), &fresh())).unwrap();
}
