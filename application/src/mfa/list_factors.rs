//! ListFactors: the caller's factors with masked hints; needs a fresh proof
//! of presence, since the list shows where codes go.

use gatehouse_domain::{Factor, UserId};

use super::{FreshProof, MfaDeps};
use crate::error::AppError;

/// Lists the caller's factors.
#[derive(Clone, Debug)]
pub struct ListFactors(MfaDeps);

impl ListFactors {
    #[must_use]
    pub const fn new(deps: MfaDeps) -> Self {
        Self(deps)
    }

    /// Pending and active factors, oldest first. Needs a fresh proof: the
    /// list reveals where codes go.
    ///
    /// # Errors
    /// A failed fresh proof; storage failures.
    pub async fn execute(&self, user: UserId, proof: &FreshProof) -> Result<Vec<Factor>, AppError> {
        self.0.check_fresh_proof(user, proof).await?;
        Ok(self.0.mfa.factors(user).await?)
    }
}
