//! Second factors: TOTP computation, sealing secrets at rest, and storage of
//! factors, codes, backup codes and login challenges.
//!
//! As with verifications, the store makes each step atomic and the use cases
//! decide: a TOTP time step only ever moves forward (so a code, or any older
//! one, is never accepted twice, even by parallel requests), a code or backup
//! code is consumed once, and a challenge counts wrong codes only below its
//! limit and passes once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_domain::{Factor, MfaChallenge, SealedSecret, TokenHash, UserId};
use uuid::Uuid;

use crate::ports::BoxError;
use crate::ports::store::StoreError;

/// RFC 6238 TOTP: SHA-1, 6 digits, 30-second steps (what authenticator apps accept).
pub trait Totp: std::fmt::Debug + Send + Sync {
    /// The time step whose code equals `code`, searching from `skew` steps
    /// before the current one to `skew` after, newest first; `None` when no
    /// step matches. The comparison is constant-time.
    fn matching_step(&self, secret: &[u8], code: &str, now: DateTime<Utc>, skew: u8) -> Option<i64>;

    /// The `otpauth://totp/...` URI an authenticator app scans.
    fn provisioning_uri(&self, secret: &[u8], issuer: &str, account: &str) -> String;

    /// A PNG of the QR code for `uri`.
    ///
    /// # Errors
    /// When the URI is too long for a QR code.
    fn qr_png(&self, uri: &str) -> Result<Vec<u8>, QrError>;
}

/// A secret could not be sealed or opened (unknown key, tampered data).
#[derive(Debug, thiserror::Error)]
#[error("secret box failed")]
pub struct SealError(#[source] pub BoxError);

/// A QR code could not be drawn (the URI is too long for one).
#[derive(Debug, thiserror::Error)]
#[error("QR code failed")]
pub struct QrError(#[source] pub BoxError);

/// Authenticated encryption of secrets at rest (TOTP secrets), with a key
/// id on every sealed value so keys can be rotated.
pub trait SecretBox: std::fmt::Debug + Send + Sync {
    /// Seals with the current key.
    ///
    /// # Errors
    /// [`SealError`] when encryption fails.
    fn seal(&self, plaintext: &[u8]) -> Result<SealedSecret, SealError>;

    /// Opens with the key named in `sealed` (current or previous).
    ///
    /// # Errors
    /// [`SealError`] for an unknown key or data that fails authentication.
    fn open(&self, sealed: &SealedSecret) -> Result<Vec<u8>, SealError>;
}

/// A short code sent for an email or SMS factor: only its hash is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactorCode {
    pub id: Uuid,
    pub factor_id: Uuid,
    /// The login challenge it was sent for; `None` for enrolment.
    pub challenge_id: Option<Uuid>,
    pub code_hash: TokenHash,
    pub attempts: u32,
    pub max_attempts: u32,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Factors, codes and challenges outside a unit of work: reads, and the
/// guarded single statements (a TOTP step, a code, a challenge's count).
/// Enrolling, confirming and removing factors and backup codes goes through
/// [`FactorWrites`].
///
/// [`FactorWrites`]: crate::ports::unit_of_work::FactorWrites
#[async_trait]
pub trait MfaRepository: std::fmt::Debug + Send + Sync {
    /// The user's factors, pending and active, oldest first.
    async fn factors(&self, user: UserId) -> Result<Vec<Factor>, StoreError>;

    /// Records `step` as the factor's newest accepted TOTP step, only if it is
    /// newer than the stored one (compare-and-set). `false` means the step,
    /// or a newer one, was already used.
    async fn advance_totp_step(&self, factor: Uuid, step: i64) -> Result<bool, StoreError>;

    /// Consumes the newest unused, unexpired code of `factor` (and
    /// `challenge`) if its hash is `hash` and its attempts are below the
    /// limit; otherwise counts a failed attempt on it. `true` when consumed.
    async fn use_code(
        &self,
        factor: Uuid,
        challenge: Option<Uuid>,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn create_challenge(&self, challenge: &MfaChallenge) -> Result<(), StoreError>;

    async fn challenge(&self, id: Uuid) -> Result<Option<MfaChallenge>, StoreError>;

    /// Wrong codes summed over the user's challenges created at or after
    /// `since`: the per-account limit that new challenges cannot reset.
    async fn failures_since(&self, user: UserId, since: DateTime<Utc>) -> Result<u32, StoreError>;
}
