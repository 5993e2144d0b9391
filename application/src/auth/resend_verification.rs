//! ResendVerification: a fresh email verification for an unverified login
//! email, with the same answer whether or not the address has an account
//! (OWASP ASVS 5.0 V6.3.8). A new one replaces the previous one.

use std::sync::Arc;

use gatehouse_domain::{EmailAddress, Purpose};

use crate::auth::verification_sender::VerificationSender;
use crate::error::AppError;
use crate::ports::store::UserRepository;

/// Sends email verifications again.
#[derive(Clone, Debug)]
pub struct ResendVerification {
    users: Arc<dyn UserRepository>,
    sender: VerificationSender,
}

impl ResendVerification {
    #[must_use]
    pub fn new(users: Arc<dyn UserRepository>, sender: VerificationSender) -> Self {
        Self { users, sender }
    }

    /// A new email verification, if `email` is an unverified login email.
    /// Otherwise nothing happens, silently. The answer comes before the
    /// address is looked up (see [`super::RequestPasswordReset::execute`]).
    ///
    /// # Errors
    /// [`AppError::RateLimited`] past the recipient's limit, and
    /// `UNAVAILABLE` when the limiter cannot be asked: never whether the
    /// address exists.
    pub async fn execute(&self, email: &EmailAddress) -> Result<(), AppError> {
        self.sender.admit(email).await?;
        let (users, sender, email) = (self.users.clone(), self.sender.clone(), email.clone());
        let task = async move {
            let result = match users.find_credentials(&email).await {
                Ok(Some(c)) if !c.email_verified => sender.send(c.user_id, &email, Purpose::VerifyEmail).await,
                Ok(_) => Ok(()),
                Err(e) => Err(e.into()),
            };
            if let Err(error) = result {
                tracing::warn!(error = %crate::error_chain(&error), "resending a verification failed");
            }
        };
        self.sender.after_answer("resend_verification", Box::pin(task)).await;
        Ok(())
    }
}
