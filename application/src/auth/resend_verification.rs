//! ResendVerification and RequestPasswordReset: a fresh verification sent to
//! an address, with the same answer whether or not the address has an
//! account (OWASP ASVS 5.0 V6.3.8). A new one replaces the previous one.

use std::sync::Arc;

use gatehouse_domain::{EmailAddress, Purpose};

use crate::auth::verification::VerificationIssuer;
use crate::error::AppError;
use crate::ports::clock::Clock;
use crate::ports::store::UserRepository;
use crate::ports::unit_of_work::UnitOfWorkFactory;
use crate::ports::verifications::VerificationRepository;

/// Sends verifications on request.
#[derive(Clone, Debug)]
pub struct RequestVerification {
    users: Arc<dyn UserRepository>,
    verifications: Arc<dyn VerificationRepository>,
    uow: Arc<dyn UnitOfWorkFactory>,
    issuer: VerificationIssuer,
    clock: Arc<dyn Clock>,
}

impl RequestVerification {
    #[must_use]
    pub fn new(
        users: Arc<dyn UserRepository>,
        verifications: Arc<dyn VerificationRepository>,
        uow: Arc<dyn UnitOfWorkFactory>,
        issuer: VerificationIssuer,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { users, verifications, uow, issuer, clock }
    }

    /// `ResendVerification`: a new email verification, if `email` is an
    /// unverified login email. Otherwise nothing happens, silently.
    ///
    /// # Errors
    /// Only [`AppError::Unavailable`] and kin; never whether the address exists.
    pub async fn resend_verification(&self, email: &EmailAddress) -> Result<(), AppError> {
        match self.users.find_credentials(email).await? {
            Some(c) if !c.email_verified => self.send(c.user_id, email, Purpose::VerifyEmail).await,
            _ => Ok(()),
        }
    }

    /// `RequestPasswordReset`: a reset for the account `email` logs in to.
    /// Unknown addresses get the same answer and no email.
    ///
    /// # Errors
    /// Only [`AppError::Unavailable`] and kin; never whether the address exists.
    pub async fn request_password_reset(&self, email: &EmailAddress) -> Result<(), AppError> {
        match self.users.find_credentials(email).await? {
            Some(c) => self.send(c.user_id, email, Purpose::ResetPassword).await,
            None => Ok(()),
        }
    }

    async fn send(
        &self,
        user: gatehouse_domain::UserId,
        email: &EmailAddress,
        purpose: Purpose,
    ) -> Result<(), AppError> {
        let now = self.clock.now();
        let settings = self.issuer.settings();
        let activity = self.verifications.recent_activity(user, purpose, now - settings.activity_window).await?;
        if activity.issued >= settings.max_issued_per_window || activity.failures >= settings.max_failures_per_window {
            // Same answer as always; nothing is sent (OWASP ASVS 5.0 V6.3.1).
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
