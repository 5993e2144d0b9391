//! EnrollPhoneFactor: a phone number as a factor; a code is sent, and it
//! stays pending until `ConfirmFactor`.

use gatehouse_domain::{FactorKind, PhoneNumber, UserId};
use uuid::Uuid;

use super::{MfaDeps, enroll_with_code};
use crate::error::AppError;

/// Starts enrolling a phone number.
#[derive(Clone, Debug)]
pub struct EnrollPhoneFactor(MfaDeps);

impl EnrollPhoneFactor {
    #[must_use]
    pub const fn new(deps: MfaDeps) -> Self {
        Self(deps)
    }

    /// A pending SMS factor; a code goes to the number (`sms.mfa_code`), and
    /// confirming it proves the number is the user's.
    ///
    /// # Errors
    /// `FailedPrecondition` when SMS factors are disabled.
    pub async fn execute(&self, user: UserId, phone: &PhoneNumber) -> Result<Uuid, AppError> {
        self.0.require_enabled(FactorKind::Sms)?;
        enroll_with_code(&self.0, user, FactorKind::Sms, phone.as_str()).await
    }
}
