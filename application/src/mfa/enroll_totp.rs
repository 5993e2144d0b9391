//! EnrollTotp: a new authenticator-app factor, pending until `ConfirmFactor`.

use gatehouse_domain::{Factor, FactorKind, UserId};
use uuid::Uuid;

use super::{MfaDeps, TOTP_SECRET_BYTES, base32};
use crate::error::AppError;
use crate::ids::new_uuid_v7;

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
pub struct EnrollTotp(MfaDeps);

impl EnrollTotp {
    #[must_use]
    pub const fn new(deps: MfaDeps) -> Self {
        Self(deps)
    }

    /// A new pending TOTP factor with a 160-bit secret, sealed at rest.
    ///
    /// # Errors
    /// `FailedPrecondition` when TOTP factors are disabled.
    pub async fn execute(&self, user: UserId) -> Result<TotpEnrollment, AppError> {
        let d = &self.0;
        d.require_enabled(FactorKind::Totp)?;
        let now = d.clock.now();
        let mut secret = [0_u8; TOTP_SECRET_BYTES];
        d.rng.fill(&mut secret);
        let account = d.primary_email(user).await?.map_or_else(|| user.to_string(), |e| e.to_string());
        let uri = d.totp.provisioning_uri(&secret, &d.settings.issuer, &account);
        let qr_png = d.totp.qr_png(&uri)?;
        let sealed = d.secrets.seal(&secret)?;
        let factor = Factor::pending_totp(new_uuid_v7(now, d.rng.as_ref()), user, sealed, now);
        d.store_factor(&factor, None, Vec::new()).await?;
        Ok(TotpEnrollment { factor_id: factor.id(), secret: base32(&secret), uri, qr_png })
    }
}
