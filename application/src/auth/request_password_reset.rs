//! RequestPasswordReset: a reset for the account an address logs in to, with
//! the same answer whether or not the address has an account (OWASP ASVS 5.0
//! V6.3.8). A new one retires every older reset of the account.

use std::sync::Arc;

use gatehouse_domain::{EmailAddress, Purpose};

use crate::auth::verification_sender::VerificationSender;
use crate::error::AppError;
use crate::ports::store::UserRepository;

/// Sends password resets.
#[derive(Clone, Debug)]
pub struct RequestPasswordReset {
    users: Arc<dyn UserRepository>,
    sender: VerificationSender,
}

impl RequestPasswordReset {
    #[must_use]
    pub fn new(users: Arc<dyn UserRepository>, sender: VerificationSender) -> Self {
        Self { users, sender }
    }

    /// Unknown addresses get the same answer and no email. The answer comes
    /// before the address is looked up: the look-up and the reset run after
    /// it, so its time is the same for any address, and a failure there is
    /// logged rather than answered.
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
                Ok(Some(c)) => sender.send(c.user_id, &email, Purpose::ResetPassword).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e.into()),
            };
            if let Err(error) = result {
                tracing::warn!(error = %crate::error_chain(&error), "sending a password reset failed");
            }
        };
        self.sender.after_answer("request_password_reset", Box::pin(task)).await;
        Ok(())
    }
}
