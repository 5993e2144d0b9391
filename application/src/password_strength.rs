//! The strength check every new password goes through, wherever it is chosen
//! (SignUp, ChangePassword, ResetPassword): the domain's [`PasswordPolicy`]
//! with the account's own words, refused as a bad request field. It runs
//! before any hashing and before anything is written, so a refused password
//! changes nothing and costs no argon2 work.

use std::sync::Arc;

use gatehouse_domain::{DisplayName, EmailAddress, Password, PasswordContext, PasswordPolicy, UserId};

use crate::error::{AppError, FieldViolation};
use crate::ports::store::UserRepository;

/// Judges new passwords.
#[derive(Clone, Debug)]
pub struct PasswordStrength {
    users: Arc<dyn UserRepository>,
    policy: PasswordPolicy,
}

impl PasswordStrength {
    #[must_use]
    pub fn new(users: Arc<dyn UserRepository>, policy: PasswordPolicy) -> Self {
        Self { users, policy }
    }

    /// The password of an account not yet stored, judged against its address and name.
    ///
    /// # Errors
    /// [`AppError::InvalidArgument`] naming `field`.
    pub fn check_new_account(
        &self,
        password: &Password,
        email: &EmailAddress,
        name: &DisplayName,
        field: &'static str,
    ) -> Result<(), AppError> {
        self.judge(password, &PasswordContext::default().with_email(email).with_name(name), field)
    }

    /// A new password of `user`, judged against every login email and the
    /// display name. An account gone meanwhile is judged without them: the
    /// use case finds it gone when it writes and answers as it always does.
    ///
    /// # Errors
    /// [`AppError::InvalidArgument`] naming `field`; store failures.
    pub async fn check_account(&self, user: UserId, password: &Password, field: &'static str) -> Result<(), AppError> {
        let context = self.users.get(user).await?.map(|a| PasswordContext::of_account(&a)).unwrap_or_default();
        self.judge(password, &context, field)
    }

    fn judge(&self, password: &Password, context: &PasswordContext, field: &'static str) -> Result<(), AppError> {
        self.policy.check(password, context).map_err(|e| AppError::InvalidArgument(vec![FieldViolation::new(field, e)]))
    }
}
