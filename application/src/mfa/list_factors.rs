//! ListFactors: the caller's factors with masked hints; needs a fresh proof
//! of presence, since the list shows where codes go.

use gatehouse_domain::{Factor, UserId};

use super::{FreshProof, FreshProofs, MfaDeps};
use crate::error::AppError;

/// Lists the caller's factors.
#[derive(Clone, Debug)]
pub struct ListFactors {
    proofs: FreshProofs,
}

impl ListFactors {
    #[must_use]
    pub fn new(deps: MfaDeps) -> Self {
        let proofs = FreshProofs::from(&deps);
        Self { proofs }
    }

    /// Active factors and unexpired pending ones, oldest first. Needs a
    /// fresh proof: the list reveals where codes go.
    ///
    /// # Errors
    /// A failed fresh proof; storage failures.
    pub async fn execute(&self, user: UserId, proof: &FreshProof) -> Result<Vec<Factor>, AppError> {
        let d = self;
        d.proofs.check(user, proof).await?;
        let now = d.proofs.factors.clock.now();
        // An expired enrolment can no longer be confirmed; the next one
        // deletes it, and until then it is nobody's concern.
        let mut factors = d.proofs.factors.mfa.factors(user).await?;
        factors.retain(|f| !f.enrolment_expired(now));
        Ok(factors)
    }
}
