//! Use-case tests of second factors and the login challenge, over the fakes
//! and a fixed clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono::TimeDelta;
use futures_executor::block_on;
use gatehouse_domain::{
    ClientInfo, DisplayName, EmailAddress, Event, OneTimeCode, Password, PasswordHash, PhoneNumber, Secret, User,
    UserId,
};
use uuid::Uuid;

use super::*;
use crate::auth::TokenMinter;
use crate::auth::login::SessionOpener;
use crate::settings::{EnabledFactors, TokenSettings};
use crate::testing::{FakeSecretBox, FakeTokens, FakeTotp, FixedClock, InMemoryStore, RecordingEncoder, SeqRandom};

struct H {
    clock: Arc<FixedClock>,
    store: Arc<InMemoryStore>,
    events: Arc<RecordingEncoder>,
    deps: MfaDeps,
    gate: MfaGate,
    verify: VerifyMfa,
    send: SendMfaCode,
    user: UserId,
}

const PASSWORD: &str = "correct horse battery";

fn code(s: &str) -> OneTimeCode {
    OneTimeCode::parse(s).unwrap()
}

/// The user's password as a fresh proof.
fn password() -> FreshProof {
    FreshProof::Password(Password::candidate(PASSWORD.into()).unwrap())
}

impl H {
    fn with(settings: crate::MfaSettings) -> Self {
        let clock = Arc::new(FixedClock::new());
        let store = Arc::new(InMemoryStore::default());
        let events = Arc::new(RecordingEncoder::default());
        let deps = crate::testing::mfa_deps(&store, &clock, &events, settings);
        let minter = TokenMinter::new(
            Arc::new(FakeTokens),
            clock.clone(),
            Arc::new(SeqRandom::default()),
            TokenSettings::default(),
        );
        let now = clock.now_for_tests();
        let user = UserId::from_uuid(Uuid::from_u128(7));
        let email = EmailAddress::parse("ann@example.com").unwrap();
        let hash = PasswordHash::from_phc(format!("fake2${PASSWORD}"));
        let ann = User::new(user, email.clone(), DisplayName::default(), hash, now);
        block_on(async {
            let uow = store.begin().await.unwrap();
            uow.accounts().insert(&ann).await.unwrap();
            uow.accounts().mark_email_verified(user, &email, now).await.unwrap();
            uow.commit().await.unwrap();
        });
        let opener = SessionOpener {
            sessions: store.clone(),
            organizations: store.clone(),
            uow: store.clone(),
            users: store.clone(),
            events: deps.events.clone(),
        };
        Self {
            gate: MfaGate::new(deps.clone()),
            verify: VerifyMfa::new(deps.clone(), opener, minter),
            send: SendMfaCode::new(deps.clone()),
            deps,
            clock,
            store,
            events,
            user,
        }
    }

    fn new() -> Self {
        Self::with(crate::MfaSettings::default())
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now_for_tests()
    }

    fn secret(&self, factor: Uuid) -> Vec<u8> {
        let f = block_on(self.store.factors(self.user)).unwrap().into_iter().find(|f| f.id() == factor).unwrap();
        FakeSecretBox.open(f.secret().as_ref().unwrap()).unwrap()
    }

    fn totp_now(&self, factor: Uuid) -> OneTimeCode {
        code(&FakeTotp::code(&self.secret(factor), FakeTotp::step(self.now())))
    }

    /// An active TOTP factor; returns it and the backup codes.
    fn totp_factor(&self) -> (Uuid, Vec<String>) {
        let enrolment = block_on(EnrollTotp::new(self.deps.clone()).execute(self.user, &password())).unwrap();
        let codes = block_on(ConfirmFactor::new(self.deps.clone()).execute(
            self.user,
            enrolment.factor_id,
            &self.totp_now(enrolment.factor_id),
        ))
        .unwrap()
        .unwrap_or_default();
        self.clock.advance(TimeDelta::seconds(30)); // the confirming code is spent
        (enrolment.factor_id, codes)
    }

    fn challenge(&self) -> ChallengeView {
        block_on(self.gate.challenge(self.user, ClientInfo::default(), self.now())).unwrap().expect("a challenge")
    }

    fn pass(&self, challenge: Uuid, factor: Uuid, digits: &str) -> Result<MfaPassed, AppError> {
        block_on(self.verify.execute(challenge, MfaProof::Factor { factor_id: factor, code: code(digits) }))
    }

    fn last_code(&self, event_type: &str) -> String {
        let recorded = self.events.events.lock().unwrap();
        recorded
            .iter()
            .rev()
            .find_map(|e| match &e.event {
                Event::MfaCode { code, .. } if e.event.event_type() == event_type => Some(code.expose().clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {event_type} event"))
    }
}

trait NowForTests {
    fn now_for_tests(&self) -> chrono::DateTime<chrono::Utc>;
}

impl NowForTests for FixedClock {
    fn now_for_tests(&self) -> chrono::DateTime<chrono::Utc> {
        crate::ports::clock::Clock::now(self)
    }
}

/// The fields an `INVALID_ARGUMENT` names; empty for any other outcome.
fn violated<T>(r: &Result<T, AppError>) -> Vec<&'static str> {
    match r {
        Err(AppError::InvalidArgument(violations)) => violations.iter().map(|v| v.field).collect(),
        _ => Vec::new(),
    }
}

fn wrong(digits: &str) -> String {
    format!("{:06}", (digits.parse::<u32>().unwrap() + 1) % 1_000_000)
}

#[test]
fn totp_enrolment_gives_an_otpauth_uri_and_the_first_confirmation_ten_backup_codes() {
    let h = H::new();
    let enrolment = block_on(EnrollTotp::new(h.deps.clone()).execute(h.user, &password())).unwrap();
    assert_eq!(enrolment.secret.len(), 32, "160 bits in base32");
    assert!(enrolment.uri.starts_with("otpauth://totp/Gatehouse:ann@example.com?secret="));
    assert!(enrolment.uri.contains(&enrolment.secret));
    let stored = block_on(h.store.factors(h.user)).unwrap();
    assert!(!stored[0].active());
    assert_ne!(stored[0].secret().as_ref().unwrap().data, h.secret(enrolment.factor_id), "sealed at rest");

    let confirm = ConfirmFactor::new(h.deps.clone());
    let wrong_code = code(&wrong(h.totp_now(enrolment.factor_id).expose()));
    assert!(matches!(
        block_on(confirm.execute(h.user, enrolment.factor_id, &wrong_code)),
        Err(AppError::CodeInvalid { field: "code" })
    ));
    let codes =
        block_on(confirm.execute(h.user, enrolment.factor_id, &h.totp_now(enrolment.factor_id))).unwrap().unwrap();
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| c.len() == 14 && c.matches('-').count() == 2), "{codes:?}");

    // A second factor does not re-issue backup codes.
    h.clock.advance(TimeDelta::seconds(30));
    let second = block_on(EnrollTotp::new(h.deps.clone()).execute(h.user, &password())).unwrap();
    assert_eq!(block_on(confirm.execute(h.user, second.factor_id, &h.totp_now(second.factor_id))).unwrap(), None);
}

#[test]
fn a_user_without_factors_gets_no_challenge() {
    let h = H::new();
    assert!(block_on(h.gate.challenge(h.user, ClientInfo::default(), h.now())).unwrap().is_none());
}

/// OWASP ASVS 5.0 V6.5.1: a TOTP code is accepted once, and older codes never.
#[test]
fn a_totp_code_passes_the_challenge_once() {
    let h = H::new();
    let (factor, _) = h.totp_factor();
    let challenge = h.challenge();
    assert_eq!(challenge.factors.len(), 1);
    assert_eq!(challenge.factors[0].hint, "authenticator app");
    assert_eq!(challenge.expires_at, h.now() + TimeDelta::minutes(5));
    let current = h.totp_now(factor);
    assert!(matches!(
        h.pass(challenge.id, factor, &wrong(current.expose())),
        Err(AppError::CodeInvalid { field: "code" })
    ));
    let passed = h.pass(challenge.id, factor, current.expose()).unwrap();
    assert_eq!(passed.tokens.user_id, h.user);
    assert_eq!(passed.backup_codes_remaining, None);
    assert!(matches!(h.pass(challenge.id, factor, current.expose()), Err(AppError::ChallengeUsed)));

    let again = h.challenge();
    assert!(
        matches!(h.pass(again.id, factor, current.expose()), Err(AppError::CodeInvalid { field: "code" })),
        "replayed code"
    );
    let previous = FakeTotp::code(&h.secret(factor), FakeTotp::step(h.now()) - 1);
    assert!(matches!(h.pass(again.id, factor, &previous), Err(AppError::CodeInvalid { field: "code" })), "older code");
}

#[test]
fn a_backup_code_works_once_and_tells_how_many_remain() {
    let h = H::new();
    let (_, codes) = h.totp_factor();
    let challenge = h.challenge();
    let proof = |c: &str| MfaProof::BackupCode(Secret::new(c.to_uppercase()));
    let passed = block_on(h.verify.execute(challenge.id, proof(&codes[0]))).unwrap();
    assert_eq!(passed.backup_codes_remaining, Some(9));
    let notices: Vec<_> = h.store.outbox().into_iter().filter(|m| m.event_type == "audit.backup_code_used").collect();
    assert_eq!(notices.len(), 1);
    let again = h.challenge();
    assert!(matches!(
        block_on(h.verify.execute(again.id, proof(&codes[0]))),
        Err(AppError::CodeInvalid { field: "code" })
    ));
    let r = block_on(h.verify.execute(again.id, proof("not-a-code")));
    assert_eq!(violated(&r), ["code"], "{r:?}");
}

#[test]
fn an_email_factor_needs_a_verified_address_and_its_code() {
    let h = H::new();
    let enroll = EnrollEmailFactor::new(h.deps.clone());
    let other = EmailAddress::parse("bob@example.com").unwrap();
    let r = block_on(enroll.execute(h.user, &other, &password()));
    assert_eq!(violated(&r), ["email"], "{r:?}");
    let factor =
        block_on(enroll.execute(h.user, &EmailAddress::parse("ann@example.com").unwrap(), &password())).unwrap();
    let sent = h.last_code("email.mfa_code");
    block_on(ConfirmFactor::new(h.deps.clone()).execute(h.user, factor, &code(&sent))).unwrap();

    let challenge = h.challenge();
    assert_eq!(challenge.factors[0].hint, "a***@example.com");
    block_on(h.send.execute(challenge.id, factor)).unwrap();
    let first = h.last_code("email.mfa_code");
    block_on(h.send.execute(challenge.id, factor)).unwrap();
    let second = h.last_code("email.mfa_code");
    assert_ne!(first, second, "the fake random source never repeats a code");
    assert!(
        matches!(h.pass(challenge.id, factor, &first), Err(AppError::CodeInvalid { field: "code" })),
        "a resent code retires the old one"
    );
    h.pass(challenge.id, factor, &second).unwrap();
}

/// SMS pumping (OWASP ASVS 5.0 V6.3.1 applied to messages that cost
/// money): codes sent by enrolment and by SendMfaCode are limited per
/// recipient and per account, before a code is stored or sent.
#[test]
fn codes_are_limited_per_recipient_and_per_account() {
    let h = H::new();
    let limits = crate::throttle::RateLimits::default();
    let enroll = EnrollPhoneFactor::new(h.deps.clone());
    let same = PhoneNumber::parse("+447700900100").unwrap();
    for n in 0..limits.message_recipient.max() {
        block_on(enroll.execute(h.user, &same, &password())).unwrap_or_else(|e| panic!("code {}: {e:?}", n + 1));
    }
    let sent = h.store.outbox().len();
    let r = block_on(enroll.execute(h.user, &same, &password()));
    assert!(matches!(r, Err(AppError::RateLimited { .. })), "the recipient's limit: {r:?}");
    assert_eq!(h.store.outbox().len(), sent, "nothing sent past the limit");
    for n in limits.message_recipient.max()..limits.message_account.max() {
        let other = PhoneNumber::parse(&format!("+4477009002{n:02}")).unwrap();
        block_on(enroll.execute(h.user, &other, &password())).unwrap_or_else(|e| panic!("code {}: {e:?}", n + 1));
    }
    let fresh = PhoneNumber::parse("+447700900399").unwrap();
    let r = block_on(enroll.execute(h.user, &fresh, &password()));
    assert!(matches!(r, Err(AppError::RateLimited { .. })), "the account's limit: {r:?}");
}

#[test]
fn an_sms_factor_goes_to_the_number_and_totp_needs_no_sending() {
    let h = H::new();
    let phone = PhoneNumber::parse("+447700900112").unwrap();
    let factor = block_on(EnrollPhoneFactor::new(h.deps.clone()).execute(h.user, &phone, &password())).unwrap();
    block_on(ConfirmFactor::new(h.deps.clone()).execute(h.user, factor, &code(&h.last_code("sms.mfa_code")))).unwrap();
    let (totp, _) = h.totp_factor();
    let challenge = h.challenge();
    assert!(challenge.factors.iter().any(|f| f.hint == "+44 **** **12"));
    let r = block_on(h.send.execute(challenge.id, totp));
    assert!(matches!(r, Err(AppError::FailedPrecondition { reason: "CODE_NOT_NEEDED", .. })), "{r:?}");
    block_on(h.send.execute(challenge.id, factor)).unwrap();
    h.pass(challenge.id, factor, &h.last_code("sms.mfa_code")).unwrap();
}

#[test]
fn a_challenge_expires_after_five_minutes() {
    let h = H::new();
    let (factor, _) = h.totp_factor();
    let challenge = h.challenge();
    h.clock.advance(TimeDelta::minutes(5));
    let r = h.pass(challenge.id, factor, h.totp_now(factor).expose());
    assert!(matches!(r, Err(AppError::ChallengeExpired)), "{r:?}");
    assert!(matches!(h.pass(Uuid::nil(), factor, "123456"), Err(AppError::ChallengeInvalid)));
}

#[test]
fn the_sixth_wrong_code_kills_the_challenge_and_the_account_limit_holds_across_challenges() {
    let h = H::new();
    let (factor, _) = h.totp_factor();
    let challenge = h.challenge();
    let right = h.totp_now(factor);
    for _ in 0..5 {
        assert!(matches!(
            h.pass(challenge.id, factor, &wrong(right.expose())),
            Err(AppError::CodeInvalid { field: "code" })
        ));
    }
    assert!(matches!(h.pass(challenge.id, factor, &wrong(right.expose())), Err(AppError::AttemptsExhausted)));
    assert!(matches!(h.pass(challenge.id, factor, right.expose()), Err(AppError::AttemptsExhausted)));
    let second = h.challenge();
    for _ in 0..4 {
        assert!(matches!(
            h.pass(second.id, factor, &wrong(right.expose())),
            Err(AppError::CodeInvalid { field: "code" })
        ));
    }
    // The tenth wrong code of the window: the limit, not the challenge, refuses next.
    assert!(matches!(h.pass(second.id, factor, &wrong(right.expose())), Err(AppError::CodeInvalid { field: "code" })));
    // Ten wrong codes within the window: no new challenge for a while.
    let r = block_on(h.gate.challenge(h.user, ClientInfo::default(), h.now()));
    assert!(matches!(r, Err(AppError::RateLimited { retry_after_secs: 900 })), "{r:?}");
    h.clock.advance(TimeDelta::minutes(16));
    assert!(block_on(h.gate.challenge(h.user, ClientInfo::default(), h.now())).unwrap().is_some());
}

/// OWASP ASVS 5.0 V6.3.1, NIST SP 800-63B-4 §3.2.2 (rate limiting): the
/// account's limit of ten wrong second-factor codes per window holds on a
/// challenge that was opened before the limit was reached and still has
/// attempts of its own, so opening challenges in advance buys no guesses.
#[test]
fn the_account_limit_stops_an_open_challenge_with_attempts_left() {
    let h = H::new();
    let (factor, _) = h.totp_factor();
    let challenges = [h.challenge(), h.challenge(), h.challenge()];
    let right = h.totp_now(factor);
    for (challenge, wrong_codes) in challenges.iter().zip([4, 4, 2]) {
        for _ in 0..wrong_codes {
            assert!(matches!(
                h.pass(challenge.id, factor, &wrong(right.expose())),
                Err(AppError::CodeInvalid { field: "code" })
            ));
        }
    }
    let last = block_on(h.store.challenge(challenges[2].id)).unwrap().unwrap();
    assert!(last.attempts() < last.max_attempts(), "the challenge itself would allow more: {last:?}");
    let r = h.pass(challenges[2].id, factor, right.expose());
    assert!(matches!(r, Err(AppError::RateLimited { retry_after_secs: 900 })), "{r:?}");
    h.clock.advance(TimeDelta::minutes(1));
    let r = h.pass(challenges[2].id, factor, h.totp_now(factor).expose());
    assert!(matches!(r, Err(AppError::RateLimited { .. })), "still within the window: {r:?}");
}

#[test]
fn removing_a_factor_needs_a_fresh_proof_and_takes_the_backup_codes_with_the_last() {
    let h = H::new();
    let (factor, codes) = h.totp_factor();
    let remove = RemoveFactor::new(h.deps.clone());
    let wrong_password = FreshProof::Password(Password::candidate("guess guess".into()).unwrap());
    assert!(matches!(block_on(remove.execute(h.user, factor, &wrong_password)), Err(AppError::WrongPassword { .. })));
    let stale = FreshProof::TotpCode { factor_id: factor, code: code("000000") };
    assert!(matches!(
        block_on(remove.execute(h.user, factor, &stale)),
        Err(AppError::CodeInvalid { field: "totp_code.code" })
    ));
    let r = block_on(remove.execute(h.user, Uuid::nil(), &wrong_password));
    assert_eq!(violated(&r), ["factor_id"], "{r:?}");
    let proof = FreshProof::TotpCode { factor_id: factor, code: h.totp_now(factor) };
    block_on(remove.execute(h.user, factor, &proof)).unwrap();
    assert!(block_on(h.store.factors(h.user)).unwrap().is_empty());
    assert!(block_on(h.gate.challenge(h.user, ClientInfo::default(), h.now())).unwrap().is_none());
    let notices: Vec<_> = h.store.outbox().into_iter().map(|m| m.event_type).collect();
    assert!(
        notices.contains(&"audit.mfa_factor_added".to_owned())
            && notices.contains(&"audit.mfa_factor_removed".to_owned())
    );
    // The old backup codes died with the last factor.
    let (_, _) = h.totp_factor();
    let c = h.challenge();
    assert!(matches!(
        block_on(h.verify.execute(c.id, MfaProof::BackupCode(Secret::new(codes[1].clone())))),
        Err(AppError::CodeInvalid { field: "code" })
    ));
}

#[test]
fn regenerated_backup_codes_replace_the_old_ones() {
    let h = H::new();
    let regenerate = RegenerateBackupCodes::new(h.deps.clone());
    let proof = FreshProof::Password(Password::candidate(PASSWORD.into()).unwrap());
    let r = block_on(regenerate.execute(h.user, &proof));
    assert!(matches!(r, Err(AppError::FailedPrecondition { reason: "NO_ACTIVE_FACTOR", .. })), "{r:?}");
    let (_, old) = h.totp_factor();
    let new = block_on(regenerate.execute(h.user, &proof)).unwrap();
    assert_eq!(new.len(), 10);
    let c = h.challenge();
    assert!(matches!(
        block_on(h.verify.execute(c.id, MfaProof::BackupCode(Secret::new(old[0].clone())))),
        Err(AppError::CodeInvalid { field: "code" })
    ));
    assert_eq!(
        block_on(h.verify.execute(c.id, MfaProof::BackupCode(Secret::new(new[0].clone()))))
            .unwrap()
            .backup_codes_remaining,
        Some(9)
    );
}

#[test]
fn disabled_factor_kinds_cannot_be_enrolled() {
    let h = H::with(crate::MfaSettings {
        enabled: EnabledFactors { totp: true, email: false, sms: false },
        ..crate::MfaSettings::default()
    });
    let email = EmailAddress::parse("ann@example.com").unwrap();
    let r = block_on(EnrollEmailFactor::new(h.deps.clone()).execute(h.user, &email, &password()));
    assert!(matches!(r, Err(AppError::FailedPrecondition { reason: "FACTOR_DISABLED", .. })), "{r:?}");
    let phone = PhoneNumber::parse("+15555550100").unwrap();
    let r = block_on(EnrollPhoneFactor::new(h.deps.clone()).execute(h.user, &phone, &password()));
    assert!(matches!(r, Err(AppError::FailedPrecondition { reason: "FACTOR_DISABLED", .. })), "{r:?}");
}

#[test]
fn base32_matches_rfc_4648() {
    assert_eq!(base32(b""), "");
    assert_eq!(base32(b"f"), "MY");
    assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
}

/// OWASP ASVS 5.0 V6.3.1: wrong fresh proofs count toward the account limit,
/// so a stolen access token cannot guess TOTP codes to remove a factor.
#[test]
fn wrong_fresh_proofs_are_limited_per_account() {
    let h = H::new();
    let (factor, _) = h.totp_factor();
    let remove = RemoveFactor::new(h.deps.clone());
    let right = h.totp_now(factor);
    let guess = FreshProof::TotpCode { factor_id: factor, code: code(&wrong(right.expose())) };
    for _ in 0..10 {
        assert!(matches!(
            block_on(remove.execute(h.user, factor, &guess)),
            Err(AppError::CodeInvalid { field: "totp_code.code" })
        ));
    }
    let proof = FreshProof::TotpCode { factor_id: factor, code: right };
    let r = block_on(remove.execute(h.user, factor, &proof));
    assert!(matches!(r, Err(AppError::RateLimited { retry_after_secs: 900 })), "{r:?}");
}

/// OWASP ASVS 5.0 V6.3.1, NIST SP 800-63B-4 §3.2.2 (rate limiting): 100
/// wrong codes sent at once over 20 challenges of one account are checked
/// no more often than the account's limit allows. The limit is read, the
/// code checked and the failure recorded under the account's lock, so no
/// guess is checked on a count that a parallel guess has already moved on.
#[test]
fn parallel_wrong_codes_across_challenges_are_checked_no_more_than_the_account_limit() {
    let h = H::new();
    let (factor, _) = h.totp_factor();
    let challenges: Vec<_> = (0..20).map(|_| h.challenge().id).collect();
    h.store.delay_reads(std::time::Duration::from_millis(2));
    let right = h.totp_now(factor);
    let guess = wrong(right.expose());
    let outcomes: Vec<Result<MfaPassed, AppError>> = std::thread::scope(|scope| {
        let running: Vec<_> = (0..100)
            .map(|n| {
                let (verify, challenge, guess) = (&h.verify, challenges[n % 20], guess.clone());
                scope.spawn(move || {
                    block_on(verify.execute(challenge, MfaProof::Factor { factor_id: factor, code: code(&guess) }))
                })
            })
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let checked = outcomes.iter().filter(|r| matches!(r, Err(AppError::CodeInvalid { field: "code" }))).count();
    let refused = outcomes
        .iter()
        .filter(|r| matches!(r, Err(AppError::RateLimited { .. } | AppError::AttemptsExhausted)))
        .count();
    let limit = MfaSettings::default().account_failure_limit as usize;
    assert_eq!((checked, refused), (limit, 100 - limit), "{outcomes:?}");
    let since = h.now() - TimeDelta::hours(1);
    assert_eq!(block_on(h.store.failures_since(h.user, since)).unwrap() as usize, limit, "failures recorded");
    // And the right code is refused too while the window lasts.
    let r = h.pass(challenges[19], factor, right.expose());
    assert!(matches!(r, Err(AppError::RateLimited { .. })), "{r:?}");
}

/// OWASP ASVS 5.0 V6.3.1, NIST SP 800-63B-4 §3.2.2: parallel wrong fresh
/// proofs are counted before they are checked, so no more than the limit
/// are checked; a right proof gives its attempt back.
#[test]
fn parallel_wrong_fresh_proofs_are_checked_no_more_than_the_account_limit() {
    let h = H::new();
    let (factor, _) = h.totp_factor();
    let remove = RemoveFactor::new(h.deps.clone());
    let right = FreshProof::Password(Password::candidate(PASSWORD.into()).unwrap());
    block_on(RegenerateBackupCodes::new(h.deps.clone()).execute(h.user, &right)).unwrap();
    let since = h.now() - TimeDelta::hours(1);
    assert_eq!(block_on(h.store.failures_since(h.user, since)).unwrap(), 0, "a right proof costs nothing");
    h.store.delay_reads(std::time::Duration::from_millis(2));
    let guess = FreshProof::Password(Password::candidate("guess guess".into()).unwrap());
    let outcomes: Vec<Result<(), AppError>> = std::thread::scope(|scope| {
        let running: Vec<_> =
            (0..40).map(|_| scope.spawn(|| block_on(remove.execute(h.user, factor, &guess)))).collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let checked = outcomes.iter().filter(|r| matches!(r, Err(AppError::WrongPassword { .. }))).count();
    let limited = outcomes.iter().filter(|r| matches!(r, Err(AppError::RateLimited { .. }))).count();
    assert_eq!((checked, limited), (10, 30), "{outcomes:?}");
    assert_eq!(block_on(h.store.failures_since(h.user, since)).unwrap(), 10);
}

/// A backup code is spent only with the challenge it passes: of ten
/// different backup codes sent at once on one challenge, one passes it and
/// the nine others stay usable.
#[test]
fn backup_codes_racing_on_one_challenge_spend_only_the_winner() {
    let h = H::new();
    let (_, codes) = h.totp_factor();
    let c = h.challenge();
    h.store.delay_reads(std::time::Duration::from_millis(2));
    let outcomes: Vec<Result<MfaPassed, AppError>> = std::thread::scope(|scope| {
        let running: Vec<_> = codes
            .iter()
            .map(|backup| {
                let (verify, backup) = (&h.verify, backup.clone());
                scope.spawn(move || block_on(verify.execute(c.id, MfaProof::BackupCode(Secret::new(backup)))))
            })
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let winners: Vec<_> = outcomes.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert_eq!(winners[0].backup_codes_remaining, Some(9));
    assert!(outcomes.iter().all(|r| r.is_ok() || matches!(r, Err(AppError::ChallengeUsed))), "{outcomes:?}");
    // Every loser's code still passes a challenge of its own.
    let mut remaining = 9;
    for (backup, outcome) in codes.iter().zip(&outcomes) {
        if outcome.is_err() {
            let next = h.challenge();
            let passed = block_on(h.verify.execute(next.id, MfaProof::BackupCode(Secret::new(backup.clone()))));
            remaining -= 1;
            assert_eq!(passed.unwrap().backup_codes_remaining, Some(remaining));
        }
    }
    assert_eq!(remaining, 0);
}

/// What the store holds that a failed enrolment must not have touched.
fn snapshot(h: &H) -> (Vec<gatehouse_domain::Factor>, usize) {
    (block_on(h.store.factors(h.user)).unwrap(), h.store.outbox().len())
}

/// OWASP ASVS 5.0 V7.5.1 and NIST SP 800-63B-4 §4.1.2 (binding another
/// authenticator needs an authenticated subscriber, not just a session):
/// enrolling any factor needs a fresh proof, and a wrong or missing one
/// changes nothing but the account's count of wrong proofs.
#[test]
fn enrolment_needs_a_fresh_proof_and_a_failed_one_changes_nothing() {
    let h = H::new();
    let (totp, _) = h.totp_factor();
    let email = EmailAddress::parse("ann@example.com").unwrap();
    let phone = PhoneNumber::parse("+447700900112").unwrap();
    let enroll_totp = EnrollTotp::new(h.deps.clone());
    let enroll_email = EnrollEmailFactor::new(h.deps.clone());
    let enroll_phone = EnrollPhoneFactor::new(h.deps.clone());
    let before = snapshot(&h);

    let wrong_password = FreshProof::Password(Password::candidate("guess guess".into()).unwrap());
    let r = block_on(enroll_totp.execute(h.user, &wrong_password)).map(|e| e.factor_id);
    assert!(matches!(r, Err(AppError::WrongPassword { field: "password" })), "{r:?}");
    let r = block_on(enroll_email.execute(h.user, &email, &wrong_password));
    assert!(matches!(r, Err(AppError::WrongPassword { field: "password" })), "{r:?}");
    let guess = FreshProof::TotpCode { factor_id: totp, code: code(&wrong(h.totp_now(totp).expose())) };
    let r = block_on(enroll_phone.execute(h.user, &phone, &guess));
    assert!(matches!(r, Err(AppError::CodeInvalid { field: "totp_code.code" })), "{r:?}");
    let unknown = FreshProof::TotpCode { factor_id: Uuid::nil(), code: code("123456") };
    let r = block_on(enroll_phone.execute(h.user, &phone, &unknown));
    assert_eq!(violated(&r), ["totp_code.factor_id"], "{r:?}");

    assert_eq!(snapshot(&h), before, "no factor stored and no code sent");
    let failures = block_on(h.store.failures_since(h.user, h.now() - TimeDelta::minutes(1))).unwrap();
    assert_eq!(failures, 3, "each wrong proof counts toward the account's limit");

    let proof = FreshProof::TotpCode { factor_id: totp, code: h.totp_now(totp) };
    let factor = block_on(enroll_phone.execute(h.user, &phone, &proof)).unwrap();
    assert_eq!(h.last_code("sms.mfa_code").len(), 6);
    assert!(block_on(h.store.factors(h.user)).unwrap().iter().any(|f| f.id() == factor && !f.active()));
}

/// OWASP ASVS 5.0 V6.4.1: pending enrolments are bounded, one per kind; a
/// new one replaces the pending one of its kind (the newest QR code or code
/// is the one that works), so no number of calls piles them up.
#[test]
fn pending_enrolments_are_bounded_to_one_per_kind() {
    let h = H::new();
    let enroll = EnrollTotp::new(h.deps.clone());
    let enrolments: Vec<_> = (0..20).map(|_| block_on(enroll.execute(h.user, &password())).unwrap()).collect();
    let email = EmailAddress::parse("ann@example.com").unwrap();
    block_on(EnrollEmailFactor::new(h.deps.clone()).execute(h.user, &email, &password())).unwrap();
    block_on(EnrollEmailFactor::new(h.deps.clone()).execute(h.user, &email, &password())).unwrap();
    let phone = PhoneNumber::parse("+447700900112").unwrap();
    block_on(EnrollPhoneFactor::new(h.deps.clone()).execute(h.user, &phone, &password())).unwrap();

    let stored = block_on(h.store.factors(h.user)).unwrap();
    let mut kinds: Vec<_> = stored.iter().map(|f| f.kind().as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["email", "sms", "totp"], "{stored:?}");
    let last = enrolments.last().unwrap();
    let totp: Vec<_> = stored.iter().filter(|f| f.kind() == FactorKind::Totp).map(|f| f.id()).collect();
    assert_eq!(totp, [last.factor_id], "the newest TOTP enrolment is the one kept");
    let r = block_on(ConfirmFactor::new(h.deps.clone()).execute(h.user, enrolments[0].factor_id, &code("123456")));
    assert_eq!(violated(&r), ["factor_id"], "a replaced enrolment is gone: {r:?}");
    block_on(ConfirmFactor::new(h.deps.clone()).execute(h.user, last.factor_id, &h.totp_now(last.factor_id))).unwrap();
}

/// OWASP ASVS 5.0 V6.4.1: an enrolment expires an hour after it started;
/// it cannot be confirmed, is not listed, and the next enrolment deletes it.
#[test]
fn an_expired_enrolment_cannot_be_confirmed_and_goes_with_the_next_one() {
    let h = H::new();
    let stale = block_on(EnrollTotp::new(h.deps.clone()).execute(h.user, &password())).unwrap().factor_id;
    h.clock.advance(gatehouse_domain::mfa::ENROLMENT_TTL);
    let confirm = ConfirmFactor::new(h.deps.clone());
    let r = block_on(confirm.execute(h.user, stale, &h.totp_now(stale)));
    assert!(matches!(r, Err(AppError::FailedPrecondition { reason: "FACTOR_EXPIRED", .. })), "{r:?}");
    assert!(block_on(h.store.factors(h.user)).unwrap().iter().all(|f| !f.active()), "nothing activated");
    assert!(block_on(ListFactors::new(h.deps.clone()).execute(h.user, &password())).unwrap().is_empty());

    let phone = PhoneNumber::parse("+447700900112").unwrap();
    let sms = block_on(EnrollPhoneFactor::new(h.deps.clone()).execute(h.user, &phone, &password())).unwrap();
    let ids: Vec<_> = block_on(h.store.factors(h.user)).unwrap().iter().map(gatehouse_domain::Factor::id).collect();
    assert_eq!(ids, [sms], "the expired TOTP enrolment was deleted");
}
