//! EnrollEmailFactor: one of the user's verified addresses as a factor;
//! a code is sent, and it stays pending until `ConfirmFactor`.

use gatehouse_domain::{EmailAddress, FactorKind, UserId};
use uuid::Uuid;

use super::{MfaDeps, enroll_with_code};
use crate::error::{AppError, FieldViolation};

/// Starts enrolling one of the user's verified email addresses.
#[derive(Clone, Debug)]
pub struct EnrollEmailFactor(MfaDeps);

impl EnrollEmailFactor {
    #[must_use]
    pub const fn new(deps: MfaDeps) -> Self {
        Self(deps)
    }

    /// A pending email factor; a code goes to the address (`email.mfa_code`).
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` (`email`) unless it is a verified login email of the user.
    pub async fn execute(&self, user: UserId, email: &EmailAddress) -> Result<Uuid, AppError> {
        self.0.require_enabled(FactorKind::Email)?;
        let account = self.0.users.get(user).await?.ok_or(AppError::NotFound("user"))?;
        if !account.emails().iter().any(|e| &e.email == email && e.verified_at.is_some()) {
            return Err(AppError::InvalidArgument(vec![FieldViolation::new(
                "email",
                "must be one of your verified login emails",
            )]));
        }
        enroll_with_code(&self.0, user, FactorKind::Email, email.as_str()).await
    }
}
