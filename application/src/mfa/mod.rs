//! Second factors: enrolment and management (`MfaService`), and the login
//! challenge (`Login` → `SendMfaCode` → `VerifyMfa`); one file per use case.

mod confirm_factor;
mod enroll_email_factor;
mod enroll_phone_factor;
mod enroll_totp;
mod list_factors;
mod mfa_gate;
mod regenerate_backup_codes;
mod remove_factor;
mod send_mfa_code;
mod verify_mfa;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gatehouse_domain::{ChallengeClosed, EmailAddress, Factor, FactorKind, OneTimeCode, Password, TokenHash, UserId};
use uuid::Uuid;

pub use confirm_factor::ConfirmFactor;
pub use enroll_email_factor::EnrollEmailFactor;
pub use enroll_phone_factor::EnrollPhoneFactor;
pub use enroll_totp::{EnrollTotp, TotpEnrollment};
pub use list_factors::ListFactors;
pub use mfa_gate::{ChallengeView, FactorView, MfaGate};
pub use regenerate_backup_codes::RegenerateBackupCodes;
pub use remove_factor::RemoveFactor;
pub use send_mfa_code::SendMfaCode;
pub use verify_mfa::{MfaPassed, MfaProof, VerifyMfa};

use crate::account::PasswordProof;
use crate::error::{AppError, FieldViolation};
use crate::events::EventFactory;
use crate::ids::new_uuid_v7;
use crate::ports::clock::Clock;
use crate::ports::mfa::{FactorCode, MfaRepository, SecretBox, Totp};
use crate::ports::password::PasswordHasher;
use crate::ports::random::RandomSource;
use crate::ports::store::UserRepository;
use crate::ports::unit_of_work::{UnitOfWork, UnitOfWorkFactory};
use crate::secrets::{hash_secret, new_code};
use crate::settings::MfaSettings;

/// Bytes in a TOTP secret: 160 bits, what RFC 4226 recommends for SHA-1.
const TOTP_SECRET_BYTES: usize = 20;

/// What the MFA use cases are built from; each keeps only the ports it
/// uses (the checks most of them share are [`SecondFactors`]).
#[derive(Clone, Debug)]
pub struct MfaDeps {
    pub mfa: Arc<dyn MfaRepository>,
    pub uow: Arc<dyn UnitOfWorkFactory>,
    pub users: Arc<dyn UserRepository>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub totp: Arc<dyn Totp>,
    pub secrets: Arc<dyn SecretBox>,
    pub events: EventFactory,
    pub rng: Arc<dyn RandomSource>,
    pub clock: Arc<dyn Clock>,
    pub settings: MfaSettings,
    /// Limits on wrong passwords and on the codes sent by email and SMS.
    pub throttle: crate::throttle::Throttle,
}

/// A fresh proof of the user's presence before a sensitive change: the
/// current password, or a current code of one of their TOTP factors.
#[derive(Debug, Clone)]
pub enum FreshProof {
    Password(Password),
    TotpCode { factor_id: Uuid, code: OneTimeCode },
}

/// The second-factor checks the MFA use cases share, and the ports they
/// need: which kinds are enabled, a user's factor, a TOTP code accepted at
/// most once, new codes, and the per-account limit on wrong codes.
#[derive(Clone, Debug)]
pub struct SecondFactors {
    mfa: Arc<dyn MfaRepository>,
    totp: Arc<dyn Totp>,
    secrets: Arc<dyn SecretBox>,
    rng: Arc<dyn RandomSource>,
    clock: Arc<dyn Clock>,
    settings: MfaSettings,
    throttle: crate::throttle::Throttle,
}

impl From<&MfaDeps> for SecondFactors {
    fn from(d: &MfaDeps) -> Self {
        Self {
            mfa: d.mfa.clone(),
            totp: d.totp.clone(),
            secrets: d.secrets.clone(),
            rng: d.rng.clone(),
            clock: d.clock.clone(),
            settings: d.settings.clone(),
            throttle: d.throttle.clone(),
        }
    }
}

/// A fresh proof of presence checked against the account's limit: the
/// current password, or a current TOTP code. The one check behind every
/// change a stolen access token must not make alone (OWASP ASVS 5.0
/// V7.5.1): the account's login emails (`crate::account`) and its factors.
/// Built from [`MfaDeps`].
#[derive(Clone, Debug)]
pub struct FreshProofs {
    factors: SecondFactors,
    password: PasswordProof,
    /// Where attempts are counted against the account's limit.
    uow: Arc<dyn UnitOfWorkFactory>,
}

impl From<&MfaDeps> for FreshProofs {
    fn from(d: &MfaDeps) -> Self {
        let password = PasswordProof::new(d.users.clone(), d.hasher.clone(), d.throttle.clone());
        Self { factors: SecondFactors::from(d), password, uow: d.uow.clone() }
    }
}

fn unknown_factor() -> AppError {
    AppError::InvalidArgument(vec![FieldViolation::new("factor_id", "no such factor")])
}

impl SecondFactors {
    fn enabled(&self, kind: FactorKind) -> bool {
        let e = self.settings.enabled;
        match kind {
            FactorKind::Totp => e.totp,
            FactorKind::Email => e.email,
            FactorKind::Sms => e.sms,
        }
    }

    fn require_enabled(&self, kind: FactorKind) -> Result<(), AppError> {
        if self.enabled(kind) {
            Ok(())
        } else {
            Err(AppError::FailedPrecondition { reason: "FACTOR_DISABLED", message: "this kind of factor is disabled" })
        }
    }

    /// The user's factor `id`, or `INVALID_ARGUMENT` naming `factor_id`.
    async fn factor(&self, user: UserId, id: Uuid) -> Result<Factor, AppError> {
        self.mfa.factors(user).await?.into_iter().find(|f| f.id() == id).ok_or_else(unknown_factor)
    }

    /// A fresh code for an email or SMS factor, and its stored form.
    fn new_code(&self, factor: Uuid, challenge: Option<Uuid>, now: DateTime<Utc>) -> (OneTimeCode, FactorCode) {
        let code = new_code(self.rng.as_ref());
        let stored = FactorCode {
            id: new_uuid_v7(now, self.rng.as_ref()),
            factor_id: factor,
            challenge_id: challenge,
            code_hash: factor_code_hash(factor, &code),
            attempts: 0,
            max_attempts: self.settings.max_attempts,
            created_at: now,
            expires_at: now + self.settings.code_ttl,
        };
        (code, stored)
    }

    /// Checks a TOTP code and, if it matches, moves the factor's last step
    /// forward with a compare-and-set: a code (or an older one) is accepted
    /// at most once, however many requests race with it.
    async fn accept_totp(&self, factor: &Factor, code: &OneTimeCode, now: DateTime<Utc>) -> Result<bool, AppError> {
        let Some(step) = self.totp_step(factor, code, now)? else { return Ok(false) };
        Ok(self.mfa.advance_totp_step(factor.id(), step).await?)
    }

    /// The TOTP step `code` matches, if the factor may still accept it; the
    /// caller stores it with the compare-and-set that holds the factor's rule
    /// against parallel requests.
    fn totp_step(&self, factor: &Factor, code: &OneTimeCode, now: DateTime<Utc>) -> Result<Option<i64>, AppError> {
        let Some(sealed) = factor.secret() else { return Ok(None) };
        let secret = self.secrets.open(sealed)?;
        let step = self.totp.matching_step(&secret, code.expose(), now, self.settings.totp_skew);
        // The factor's rule on what it read.
        Ok(step.filter(|&step| factor.clone().accept_totp_step(step)))
    }

    /// Refuses when the account had too many wrong second-factor codes or
    /// fresh proofs lately (OWASP ASVS 5.0 V6.3.1). A read only, for opening
    /// a challenge (which checks no code); a check of a code decides under
    /// the account's lock with [`Self::check_account_limit_in`].
    async fn check_account_limit(&self, user: UserId, now: DateTime<Utc>) -> Result<(), AppError> {
        let failures = self.mfa.failures_since(user, now - self.settings.failure_window).await?;
        self.refuse_over_limit(user, failures)
    }

    /// The account's limit inside `uow`, which has locked the account: no
    /// other check of a code on this account runs until it ends, so the
    /// count read here is still true when its own failure is recorded.
    async fn check_account_limit_in(
        &self,
        uow: &dyn UnitOfWork,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let failures = uow.challenges().failures_since(user, now - self.settings.failure_window).await?;
        self.refuse_over_limit(user, failures)
    }

    /// The limit itself: `account_failure_limit` wrong codes per window.
    fn refuse_over_limit(&self, user: UserId, failures: u32) -> Result<(), AppError> {
        if failures >= self.settings.account_failure_limit {
            tracing::warn!(user_id = %user, "second-factor attempts limited for this account");
            let window = self.settings.failure_window;
            return Err(AppError::RateLimited { retry_after_secs: u64::try_from(window.num_seconds()).unwrap_or(900) });
        }
        Ok(())
    }

    /// Takes one attempt of the account's limit for a check that has no
    /// challenge of its own (a fresh proof), before the check runs: under the
    /// account's lock, the limit is read and the attempt stored as a failure
    /// (a spent one-attempt challenge) in one unit of work, so parallel proofs
    /// can never check more than the limit allows. The check itself (argon2
    /// for a password) runs after, holding no lock; a proof that turns out
    /// right gives its attempt back with [`Self::release_account_attempt`].
    async fn reserve_account_attempt(
        &self,
        uow: &dyn UnitOfWorkFactory,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Uuid, AppError> {
        let work = uow.begin().await?;
        work.accounts().lock(user).await?.ok_or(AppError::NotFound("user"))?;
        self.check_account_limit_in(work.as_ref(), user, now).await?;
        let attempt = gatehouse_domain::MfaChallenge::failed_proof(new_uuid_v7(now, self.rng.as_ref()), user, now);
        work.challenges().insert(&attempt).await?;
        work.commit().await?;
        Ok(attempt.id())
    }

    /// Gives back an attempt taken by [`Self::reserve_account_attempt`]: the
    /// proof was right, or never checked.
    async fn release_account_attempt(&self, uow: &dyn UnitOfWorkFactory, attempt: Uuid) -> Result<(), AppError> {
        let work = uow.begin().await?;
        work.challenges().delete(attempt).await?;
        work.commit().await?;
        Ok(())
    }

    /// New backup codes: what to show the user once, and what to store.
    fn new_backup_codes(&self, user: UserId) -> (Vec<String>, Vec<TokenHash>) {
        (0..self.settings.backup_code_count)
            .map(|_| {
                let mut bytes = [0_u8; 8];
                self.rng.fill(&mut bytes);
                let code = backup_code_text(u64::from_le_bytes(bytes));
                let hash = backup_code_hash(user, &code);
                (code, hash)
            })
            .unzip()
    }
}

impl FreshProofs {
    /// The limits, for use cases that check a proof and then send a message.
    pub(crate) fn throttle(&self) -> &crate::throttle::Throttle {
        &self.factors.throttle
    }

    /// Checks a fresh proof of presence; wrong proofs count toward the
    /// account's limit, so a stolen access token cannot guess TOTP codes.
    /// The attempt is counted before the check and given back when the
    /// proof was right, so parallel guesses cannot outrun the count. Call it
    /// before any change: a failed proof changes nothing but that count.
    pub(crate) async fn check(&self, user: UserId, proof: &FreshProof) -> Result<(), AppError> {
        let now = self.factors.clock.now();
        let attempt = self.factors.reserve_account_attempt(self.uow.as_ref(), user, now).await?;
        let result = self.matches(user, proof).await;
        if !matches!(result, Err(AppError::WrongPassword { .. } | AppError::CodeInvalid { .. })) {
            self.factors.release_account_attempt(self.uow.as_ref(), attempt).await?;
        }
        result
    }

    async fn matches(&self, user: UserId, proof: &FreshProof) -> Result<(), AppError> {
        match proof {
            FreshProof::Password(password) => self.password.check(user, password, "password").await,
            FreshProof::TotpCode { factor_id, code } => {
                // An unknown factor is reported against the field that named it.
                let factor = self.factors.factor(user, *factor_id).await.map_err(|e| match e {
                    AppError::InvalidArgument(_) => {
                        AppError::InvalidArgument(vec![FieldViolation::new("totp_code.factor_id", "no such factor")])
                    }
                    other => other,
                })?;
                if factor.kind() == FactorKind::Totp
                    && factor.active()
                    && self.factors.accept_totp(&factor, code, self.factors.clock.now()).await?
                {
                    Ok(())
                } else {
                    Err(AppError::CodeInvalid { field: "totp_code.code" })
                }
            }
        }
    }
}

/// The primary address of `user`, where notices go.
async fn primary_email(users: &dyn UserRepository, user: UserId) -> Result<Option<EmailAddress>, AppError> {
    Ok(users.get(user).await?.and_then(|a| a.primary_email().map(|e| e.email.clone())))
}

/// Stores a new pending factor (with its first code, for email and SMS),
/// replacing the user's pending factors of its kind, and `messages`.
async fn store_factor(
    uow: &dyn UnitOfWorkFactory,
    factor: &Factor,
    code: Option<&FactorCode>,
    messages: Vec<crate::ports::events::OutboxMessage>,
) -> Result<(), AppError> {
    let mut uow = uow.begin().await?;
    uow.accounts().lock(factor.user_id()).await?.ok_or(AppError::NotFound("user"))?;
    let replaced = factor.replaces(&uow.factors().list(factor.user_id()).await?);
    uow.factors().delete(&replaced).await?;
    uow.factors().insert(factor).await?;
    if let Some(code) = code {
        uow.factors().insert_code(code).await?;
    }
    uow.add_messages(messages);
    uow.commit().await?;
    Ok(())
}

/// The stored form of an email/SMS code, bound to its factor.
fn factor_code_hash(factor: Uuid, code: &OneTimeCode) -> TokenHash {
    hash_secret(&format!("mfa:{factor}:{}", code.expose()))
}

/// Crockford-style base32 without look-alikes (no i, l, o, u).
const BACKUP_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// 60 random bits as `xxxx-xxxx-xxxx`.
fn backup_code_text(mut n: u64) -> String {
    let mut out = String::with_capacity(14);
    for i in 0..12 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(BACKUP_ALPHABET[(n & 31) as usize]));
        n >>= 5;
    }
    out
}

/// A backup code as typed, normalized: lower case, no dashes or spaces.
/// `None` when it cannot be a backup code.
fn normalize_backup_code(input: &str) -> Option<String> {
    let code: String = input.chars().filter(|c| !matches!(c, '-' | ' ')).flat_map(char::to_lowercase).collect();
    (code.len() == 12 && code.bytes().all(|b| BACKUP_ALPHABET.contains(&b))).then_some(code)
}

/// The stored form of a backup code: salted with the user id, so equal
/// codes of two users differ and a leaked table cannot be attacked at once.
fn backup_code_hash(user: UserId, code: &str) -> TokenHash {
    let normalized = normalize_backup_code(code).unwrap_or_default();
    hash_secret(&format!("backup:{user}:{normalized}"))
}

/// RFC 4648 base32 without padding, as authenticator apps want the secret.
#[must_use]
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0_u32, 0_u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The challenge `id`, if a code may still be tried on it.
async fn live_challenge(
    factors: &SecondFactors,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<gatehouse_domain::MfaChallenge, AppError> {
    open_challenge(factors.mfa.challenge(id).await?, now)
}

/// `challenge`, if it exists and a code may still be tried on it at `now`.
fn open_challenge(
    challenge: Option<gatehouse_domain::MfaChallenge>,
    now: DateTime<Utc>,
) -> Result<gatehouse_domain::MfaChallenge, AppError> {
    let c = challenge.ok_or(AppError::ChallengeInvalid)?;
    c.open_at(now).map_err(|closed| match closed {
        ChallengeClosed::Used => AppError::ChallengeUsed,
        ChallengeClosed::Expired => AppError::ChallengeExpired,
        ChallengeClosed::AttemptsExhausted => AppError::AttemptsExhausted,
    })?;
    Ok(c)
}

/// Stores a pending email or SMS factor and sends its first code.
async fn enroll_with_code(
    factors: &SecondFactors,
    uow: &dyn UnitOfWorkFactory,
    events: &EventFactory,
    user: UserId,
    kind: FactorKind,
    destination: &str,
) -> Result<Uuid, AppError> {
    // Each enrolment sends a code: limited per recipient and per account, so
    // an account cannot pump texts to numbers it does not own.
    factors.throttle.message(destination, Some(user)).await?;
    let now = factors.clock.now();
    let factor = Factor::pending_code(new_uuid_v7(now, factors.rng.as_ref()), user, kind, destination.to_owned(), now);
    let (code, stored) = factors.new_code(factor.id(), None, now);
    let event = gatehouse_domain::Event::MfaCode {
        user_id: user,
        kind,
        destination: destination.to_owned(),
        code: gatehouse_domain::Secret::new(code.expose().to_owned()),
        expires_at: stored.expires_at,
    };
    store_factor(uow, &factor, Some(&stored), vec![events.message(now, event)]).await?;
    Ok(factor.id())
}

#[cfg(test)]
mod tests;
