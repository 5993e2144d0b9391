//! EnrollTotp: a new authenticator-app factor, pending until `ConfirmFactor`.

use std::sync::Arc;

use gatehouse_domain::{Factor, FactorKind, UserId};
use uuid::Uuid;

use super::{MfaDeps, SecondFactors, TOTP_SECRET_BYTES, base32, primary_email, store_factor};
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
    factors: SecondFactors,
    uow: Arc<dyn UnitOfWorkFactory>,
    users: Arc<dyn UserRepository>,
}

impl EnrollTotp {
    #[must_use]
    pub fn new(deps: MfaDeps) -> Self {
        let factors = SecondFactors::from(&deps);
        let uow = deps.uow;
        let users = deps.users;
        Self { factors, uow, users }
    }

    /// A new pending TOTP factor with a 160-bit secret, sealed at rest.
    ///
    /// # Errors
    /// `FailedPrecondition` when TOTP factors are disabled.
    pub async fn execute(&self, user: UserId) -> Result<TotpEnrollment, AppError> {
        let d = self;
        d.factors.require_enabled(FactorKind::Totp)?;
        let now = d.factors.clock.now();
        let mut secret = [0_u8; TOTP_SECRET_BYTES];
        d.factors.rng.fill(&mut secret);
        let account = primary_email(d.users.as_ref(), user).await?.map_or_else(|| user.to_string(), |e| e.to_string());
        let uri = d.factors.totp.provisioning_uri(&secret, &d.factors.settings.issuer, &account);
        let qr_png = d.factors.totp.qr_png(&uri)?;
        let sealed = d.factors.secrets.seal(&secret)?;
        let factor = Factor::pending_totp(new_uuid_v7(now, d.factors.rng.as_ref()), user, sealed, now);
        store_factor(d.uow.as_ref(), &factor, None, Vec::new()).await?;
        Ok(TotpEnrollment { factor_id: factor.id(), secret: base32(&secret), uri, qr_png })
    }
}
