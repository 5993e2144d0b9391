//! EnrollTotp: a new authenticator-app factor, pending until `ConfirmFactor`.
//! Needs a fresh proof (OWASP ASVS 5.0 V7.5.1): whoever holds the secret
//! passes the account's second factor.

use std::sync::Arc;

use gatehouse_domain::{Factor, FactorKind, UserId};
use uuid::Uuid;

use super::{FreshProof, FreshProofs, MfaDeps, TOTP_SECRET_BYTES, base32, primary_email, store_factor};
use crate::error::AppError;
use crate::ids::new_uuid_v7;
use crate::ports::store::UserRepository;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// What an authenticator app needs, shown once.
#[derive(Clone)]
pub struct TotpEnrollment {
    pub factor_id: Uuid,
    /// The secret in base32, for typing it in by hand.
    pub secret: String,
    /// The `otpauth://` URI.
    pub uri: String,
    /// The URI as a QR code PNG.
    pub qr_png: Vec<u8>,
}

impl std::fmt::Debug for TotpEnrollment {
    /// The secret (and the URI and QR code that contain it) never print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrollment").field("factor_id", &self.factor_id).finish_non_exhaustive()
    }
}

/// Starts a TOTP enrolment.
#[derive(Clone, Debug)]
pub struct EnrollTotp {
    proofs: FreshProofs,
    uow: Arc<dyn UnitOfWorkFactory>,
    users: Arc<dyn UserRepository>,
}

impl EnrollTotp {
    #[must_use]
    pub fn new(deps: MfaDeps) -> Self {
        let proofs = FreshProofs::from(&deps);
        let uow = deps.uow;
        let users = deps.users;
        Self { proofs, uow, users }
    }

    /// A new pending TOTP factor with a 160-bit secret, sealed at rest.
    ///
    /// It replaces the user's pending TOTP factor, if any.
    ///
    /// # Errors
    /// `FailedPrecondition` when TOTP factors are disabled; a failed fresh
    /// proof, which changes nothing.
    pub async fn execute(&self, user: UserId, proof: &FreshProof) -> Result<TotpEnrollment, AppError> {
        let f = &self.proofs.factors;
        f.require_enabled(FactorKind::Totp)?;
        self.proofs.check(user, proof).await?;
        let now = f.clock.now();
        let mut secret = [0_u8; TOTP_SECRET_BYTES];
        f.rng.fill(&mut secret);
        let account =
            primary_email(self.users.as_ref(), user).await?.map_or_else(|| user.to_string(), |e| e.to_string());
        let uri = f.totp.provisioning_uri(&secret, &f.settings.issuer, &account);
        let qr_png = f.totp.qr_png(&uri)?;
        let sealed = f.secrets.seal(&secret)?;
        let factor = Factor::pending_totp(new_uuid_v7(now, f.rng.as_ref()), user, sealed, now);
        store_factor(self.uow.as_ref(), &factor, None, Vec::new()).await?;
        Ok(TotpEnrollment { factor_id: factor.id(), secret: base32(&secret), uri, qr_png })
    }
}
