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

    /// Pending and active factors, oldest first. Needs a fresh proof: the
    /// list reveals where codes go.
    ///
    /// # Errors
    /// A failed fresh proof; storage failures.
    pub async fn execute(&self, user: UserId, proof: &FreshProof) -> Result<Vec<Factor>, AppError> {
        let d = self;
        d.proofs.check(user, proof).await?;
        Ok(d.proofs.factors.mfa.factors(user).await?)
    }
}
