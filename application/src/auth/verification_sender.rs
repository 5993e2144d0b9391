//! Sending a fresh verification on request (`ResendVerification`,
//! `RequestPasswordReset`): throttled per user and purpose, and a new one
//! retires the older ones it replaces.

use std::sync::Arc;

use gatehouse_domain::{EmailAddress, Purpose, UserId};

use crate::auth::verification::VerificationIssuer;
use crate::error::AppError;
use crate::ports::background::{Background, Task};
use crate::ports::clock::Clock;
use crate::ports::unit_of_work::UnitOfWorkFactory;
use crate::ports::verifications::VerificationRepository;
use crate::throttle::Throttle;

/// Issues and stores verifications that a caller asked for.
#[derive(Clone, Debug)]
pub struct VerificationSender {
    verifications: Arc<dyn VerificationRepository>,
    uow: Arc<dyn UnitOfWorkFactory>,
    issuer: VerificationIssuer,
    clock: Arc<dyn Clock>,
    throttle: Throttle,
    background: Arc<dyn Background>,
}

impl VerificationSender {
    #[must_use]
    pub fn new(
        verifications: Arc<dyn VerificationRepository>,
        uow: Arc<dyn UnitOfWorkFactory>,
        issuer: VerificationIssuer,
        clock: Arc<dyn Clock>,
        throttle: Throttle,
        background: Arc<dyn Background>,
    ) -> Self {
        Self { verifications, uow, issuer, clock, throttle, background }
    }

    /// Runs `task` after the answer when the background has room, else now.
    pub(crate) async fn after_answer(&self, name: &'static str, task: Task) {
        if let Err(task) = self.background.start(name, task) {
            task.await;
        }
    }

    /// Counts one requested message to `email` against its recipient limit,
    /// before anything is looked up, so the answer is the same for an
    /// address with or without an account.
    ///
    /// # Errors
    /// [`AppError::RateLimited`] past the limit; `UNAVAILABLE` when the
    /// limiter cannot be asked.
    pub async fn admit(&self, email: &EmailAddress) -> Result<(), AppError> {
        self.throttle.message(email.as_str(), None).await
    }

    /// Sends a new verification of `purpose` to `email` of `user`, unless the
    /// user asked for too many or guessed too many codes lately: then nothing
    /// is sent, with the same answer (OWASP ASVS 5.0 V6.3.1), so asking again
    /// buys no extra guesses.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn send(&self, user: UserId, email: &EmailAddress, purpose: Purpose) -> Result<(), AppError> {
        let now = self.clock.now();
        let settings = self.issuer.settings();
        let activity = self.verifications.recent_activity(user, purpose, now - settings.activity_window).await?;
        if activity.issued >= settings.max_issued_per_window || activity.failures >= settings.max_failures_per_window {
            tracing::info!(user_id = %user, purpose = purpose.as_str(), "verification request throttled");
            return Ok(());
        }
        let issued = self.issuer.issue(user, email, purpose, now);
        let v = &issued.verification;
        let mut uow = self.uow.begin().await?;
        uow.verifications().retire(user, purpose, v.retires_for(), now).await?;
        uow.verifications().insert(v).await?;
        uow.add_messages(vec![issued.message]);
        uow.commit().await?;
        tracing::info!(user_id = %user, purpose = purpose.as_str(), "verification sent");
        Ok(())
    }
}
