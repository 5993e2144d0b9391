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

    /// Unknown addresses get the same answer and no email.
    ///
    /// # Errors
    /// Only [`AppError::Unavailable`] and kin; never whether the address exists.
    pub async fn execute(&self, email: &EmailAddress) -> Result<(), AppError> {
        self.sender.admit(email).await?;
        match self.users.find_credentials(email).await? {
            Some(c) => self.sender.send(c.user_id, email, Purpose::ResetPassword).await,
            None => Ok(()),
        }
    }
}
