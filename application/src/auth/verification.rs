//! The mechanics shared by email verification and password reset: issuing a
//! verification (link token + short code, hashed) with its event, and
//! checking what a caller presents against it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gatehouse_domain::{EmailAddress, Event, OneTimeCode, Purpose, Secret, Unredeemable, UserId, Verification};

use crate::error::AppError;
use crate::events::EventFactory;
use crate::ids::new_uuid_v7;
use crate::ports::events::OutboxMessage;
use crate::ports::random::RandomSource;
use crate::ports::unit_of_work::UnitOfWork;
use crate::ports::verifications::VerificationRepository;
use crate::secrets::{has_token_shape, hash_code, hash_secret, hashes_equal, new_code, new_token};
use crate::settings::VerificationSettings;

/// The request field that carries an emailed code (`VerifyEmail`, `ResetPassword`).
const EMAIL_CODE: &str = "email_code.code";

/// What a caller presents to redeem a verification.
#[derive(Debug, Clone)]
pub enum Proof {
    /// The link token alone.
    Token(Secret<String>),
    /// The short code, always together with its address.
    Code { email: EmailAddress, code: OneTimeCode },
}

/// A new verification and the event that delivers its secrets.
#[derive(Debug, Clone)]
pub struct Issued {
    pub verification: Verification,
    pub message: OutboxMessage,
}

/// Issues verifications.
#[derive(Clone, Debug)]
pub struct VerificationIssuer {
    rng: Arc<dyn RandomSource>,
    events: EventFactory,
    settings: VerificationSettings,
}

impl VerificationIssuer {
    #[must_use]
    pub fn new(rng: Arc<dyn RandomSource>, events: EventFactory, settings: VerificationSettings) -> Self {
        Self { rng, events, settings }
    }

    /// The settings in force.
    #[must_use]
    pub const fn settings(&self) -> &VerificationSettings {
        &self.settings
    }

    /// The event factory, for other events of the same use case.
    #[must_use]
    pub const fn events(&self) -> &EventFactory {
        &self.events
    }

    /// A fresh verification of `purpose` for `email`, and its event.
    #[must_use]
    pub fn issue(&self, user_id: UserId, email: &EmailAddress, purpose: Purpose, now: DateTime<Utc>) -> Issued {
        let token = new_token(purpose.token_prefix(), self.rng.as_ref());
        let code = new_code(self.rng.as_ref());
        let (ttl, path) = match purpose {
            Purpose::VerifyEmail => (self.settings.verify_email_ttl, "verify-email"),
            Purpose::ResetPassword => (self.settings.reset_password_ttl, "reset-password"),
        };
        let link = format!("{}/{path}?token={token}", self.settings.public_url.trim_end_matches('/'));
        let verification = Verification::issue(
            new_uuid_v7(now, self.rng.as_ref()),
            user_id,
            email.clone(),
            purpose,
            hash_secret(&token),
            hash_code(purpose, email, &code),
            self.settings.max_code_attempts,
            now,
            now + ttl,
        );
        let (token, code, link) = (Secret::new(token), Secret::new(code.expose().to_owned()), Secret::new(link));
        let email = email.clone();
        let expires_at = verification.expires_at();
        let event = match purpose {
            Purpose::VerifyEmail => Event::VerificationRequested { user_id, email, token, code, link, expires_at },
            Purpose::ResetPassword => Event::PasswordResetRequested { user_id, email, token, code, link, expires_at },
        };
        Issued { verification, message: self.events.message(now, event) }
    }
}

/// Checks proofs and consumes verifications.
#[derive(Clone, Debug)]
pub struct Redeemer {
    verifications: Arc<dyn VerificationRepository>,
    settings: VerificationSettings,
}

impl Redeemer {
    #[must_use]
    pub fn new(verifications: Arc<dyn VerificationRepository>, settings: VerificationSettings) -> Self {
        Self { verifications, settings }
    }

    /// The verification `proof` names, if it may be consumed now. A wrong
    /// code is counted (atomically, never past the limit).
    ///
    /// # Errors
    /// For a token: `VerificationInvalid` (never issued, or a token of the
    /// other kind), `VerificationUsed`, `VerificationExpired`. For an email
    /// and code: `CodeInvalid`, whatever the reason.
    pub async fn check(&self, purpose: Purpose, proof: &Proof, now: DateTime<Utc>) -> Result<Verification, AppError> {
        let verification = match proof {
            Proof::Token(token) => {
                let token = token.expose();
                if !has_token_shape(token, purpose.token_prefix()) {
                    return Err(AppError::VerificationInvalid);
                }
                self.verifications
                    .find_by_token(purpose, &hash_secret(token))
                    .await?
                    .ok_or(AppError::VerificationInvalid)?
            }
            Proof::Code { email, .. } => self
                .verifications
                .find_latest(purpose, email)
                .await?
                .ok_or(AppError::CodeInvalid { field: EMAIL_CODE })?,
        };
        if let Proof::Code { email, code } = proof {
            // On the email + code path every refusal is the same "wrong
            // code": a used, expired or exhausted verification exists only
            // for a real account, so telling those apart would reveal which
            // addresses have one (OWASP ASVS 5.0 V6.3.8). A link token is
            // unguessable, so its path may say what went wrong.
            let wrong = AppError::CodeInvalid { field: EMAIL_CODE };
            if verification.redeemable(now).is_err() {
                return Err(wrong);
            }
            // The per-user budget: requesting new codes buys no more guesses.
            let since = now - self.settings.activity_window;
            let activity = self.verifications.recent_activity(verification.user_id(), purpose, since).await?;
            if activity.failures >= self.settings.max_failures_per_window {
                return Err(wrong);
            }
            if hashes_equal(verification.code_hash(), &hash_code(purpose, email, code)) {
                return Ok(verification);
            }
            // Counted atomically, never past the limit; the answer is the
            // same whether or not this was the last allowed attempt.
            self.verifications.record_failed_attempt(verification.id()).await?;
            return Err(wrong);
        }
        verification.redeemable(now).map_err(|e| match e {
            Unredeemable::Used => AppError::VerificationUsed,
            Unredeemable::Expired => AppError::VerificationExpired,
            Unredeemable::AttemptsExhausted => AppError::AttemptsExhausted,
        })?;
        Ok(verification)
    }

    /// Consumes `verification` inside `uow` (one guarded statement: of two
    /// parallel redemptions exactly one gets here); the caller applies the
    /// effect in the same unit of work.
    ///
    /// # Errors
    /// `VerificationUsed` when a parallel request consumed it first (or the
    /// last attempt was used meanwhile).
    pub async fn consume(
        uow: &dyn UnitOfWork,
        verification: &Verification,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        if uow.verifications().consume(verification.id(), now).await? {
            Ok(())
        } else {
            Err(AppError::VerificationUsed)
        }
    }
}
