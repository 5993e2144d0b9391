//! The errors a use case returns: one enum whose variants a caller can act
//! on. Each adapter maps it exactly once (the gRPC adapter into a `Status`
//! with a stable `ErrorInfo` reason).

use gatehouse_domain::AccountError;

use crate::ports::BoxError;
use crate::ports::denylist::DenylistError;
use crate::ports::events::PublishError;
use crate::ports::mfa::{QrError, SealError};
use crate::ports::password::HashError;
use crate::ports::rate_limit::RateLimitError;
use crate::ports::store::StoreError;
use crate::ports::tokens::SigningError;

/// Why an access token was refused before the denylist was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token is not an access token")]
    WrongType,
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    #[error("the token uses an algorithm this key does not allow")]
    WrongAlgorithm,
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token is missing a required claim")]
    MissingClaim,
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future, or `iat` is further ahead than clock drift explains.
    #[error("the token is not yet valid")]
    NotYetValid,
}

/// One field of a request that broke a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's name as in the API (`email`, `password`).
    pub field: &'static str,
    /// What is wrong, for a person to read.
    pub description: String,
}

impl FieldViolation {
    #[must_use]
    pub fn new(field: &'static str, description: impl ToString) -> Self {
        Self { field, description: description.to_string() }
    }
}

/// What went wrong in a use case.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed; nothing was changed. Raised where input
    /// becomes domain values (the transport adapters).
    #[error("invalid request: {}", .0.iter().map(|v| v.field).collect::<Vec<_>>().join(", "))]
    InvalidArgument(Vec<FieldViolation>),
    /// Unknown email or wrong password; deliberately indistinguishable.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Sign-up with an address that already has an account.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// The password was right but the address is not verified yet.
    #[error("email address not verified")]
    EmailNotVerified,
    /// A signed-in user's password check failed (ChangePassword, DeleteMe).
    #[error("{field} is wrong")]
    WrongPassword { field: &'static str },
    /// A verification or reset link token that was never issued, or is of the other kind.
    #[error("invalid or unknown token")]
    VerificationInvalid,
    /// The verification has expired; ask for a new one.
    #[error("the verification has expired")]
    VerificationExpired,
    /// The verification was already used or replaced by a newer one.
    #[error("the verification was already used")]
    VerificationUsed,
    /// A wrong short code; `field` is the request field that carried it
    /// (`code`, `email_code.code`, `totp_code.code`).
    #[error("wrong code")]
    CodeInvalid { field: &'static str },
    /// Too many wrong codes; ask for a new verification.
    #[error("too many wrong codes")]
    AttemptsExhausted,
    /// An MFA challenge id that was never issued.
    #[error("unknown login challenge")]
    ChallengeInvalid,
    /// The MFA challenge has expired; log in again.
    #[error("the login challenge has expired")]
    ChallengeExpired,
    /// The MFA challenge was already passed.
    #[error("the login challenge was already used")]
    ChallengeUsed,
    /// Too many failures for this account lately; retry after the delay.
    #[error("too many attempts; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The caller has no such resource (named).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is valid but the state forbids it; `reason` is stable.
    #[error("{message}")]
    FailedPrecondition { reason: &'static str, message: &'static str },
    /// The caller may see the resource but not do this to it; `reason` is stable.
    #[error("{message}")]
    PermissionDenied { reason: &'static str, message: &'static str },
    /// What the request would create exists already; `reason` is stable.
    #[error("{message}")]
    AlreadyExists { reason: &'static str, message: &'static str },
    /// The request carried no usable credential at all.
    #[error("authentication required")]
    Unauthenticated,
    /// An access token failed verification.
    #[error("invalid access token: {0}")]
    InvalidToken(TokenRejection),
    /// A refresh token that was never issued (or is malformed).
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// A token that was valid but is past its expiry.
    #[error("token expired")]
    TokenExpired,
    /// A token whose session was revoked (logout, reuse detection).
    #[error("token revoked")]
    TokenRevoked,
    /// The change is saved (the sessions are ended in storage, where
    /// validation's rebuilds read them) but the denylist could not be
    /// written, so a replica that has not noticed the outage may still
    /// accept their access tokens for a moment. The server keeps rewriting
    /// the denylist from storage until it succeeds; repeating the call is
    /// safe and, once the denylist answers, completes the job.
    #[error("the change is saved; its revocation is still being propagated")]
    RevocationPending(#[source] BoxError),
    /// This replica is at capacity for the work asked (every password
    /// hashing thread busy, the queue full); nothing was done. Retry in a
    /// moment, here or on another replica.
    #[error("the server is busy; retry shortly")]
    Busy,
    /// A dependency (database, denylist) cannot be reached; retry later.
    /// The source says which and why, for the log only.
    #[error("service unavailable")]
    Unavailable(#[source] BoxError),
    /// A bug or an unexpected state no caller can fix; the source is for the log only.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl AppError {
    /// An internal error for a broken invariant the core itself detected.
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        Self::Internal(cause.into())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::Unavailable(Box::new(e)),
            // A request racing the deletion of its account (a login, a code
            // request) finds it gone: for the caller that is what happened.
            StoreError::Gone(_) => Self::NotFound("account"),
            StoreError::Conflict(_) | StoreError::Internal(_) => Self::Internal(Box::new(e)),
        }
    }
}

impl From<DenylistError> for AppError {
    fn from(e: DenylistError) -> Self {
        Self::Unavailable(Box::new(e))
    }
}

/// A limiter that cannot be asked refuses: throttled operations fail closed.
impl From<RateLimitError> for AppError {
    fn from(e: RateLimitError) -> Self {
        Self::Unavailable(Box::new(e))
    }
}

impl From<PublishError> for AppError {
    fn from(e: PublishError) -> Self {
        Self::Unavailable(Box::new(e))
    }
}

impl AppError {
    /// A refused unique value is an address that another account has
    /// (sign-up, AddLoginEmail); anything else maps as usual.
    #[must_use]
    pub fn email_taken_on_conflict(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => Self::EmailTaken,
            other => other.into(),
        }
    }
}

/// A rule of the account refused the change.
impl From<AccountError> for AppError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NoSuchEmail => Self::NotFound("login email"),
            AccountError::EmailIsPrimary => Self::FailedPrecondition {
                reason: "EMAIL_IS_PRIMARY",
                message: "make another address primary before removing this one",
            },
            AccountError::LastVerifiedEmail => Self::FailedPrecondition {
                reason: "LAST_VERIFIED_EMAIL",
                message: "the last verified address cannot be removed",
            },
            AccountError::EmailNotVerified => Self::FailedPrecondition {
                reason: "EMAIL_NOT_VERIFIED",
                message: "only a verified address can be primary",
            },
        }
    }
}

/// Failures of pure computations (hashing, signing, sealing, drawing) that no
/// caller can fix.
macro_rules! internal_from {
    ($($error:ty),+) => {$(
        impl From<$error> for AppError {
            fn from(e: $error) -> Self {
                Self::Internal(Box::new(e))
            }
        }
    )+};
}
internal_from!(SigningError, SealError, QrError);

/// A full hashing queue is a moment's overload, which the caller can wait
/// out; any other hashing failure is internal.
impl From<HashError> for AppError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => Self::Busy,
            HashError::Failed(_) => Self::Internal(Box::new(e)),
        }
    }
}

/// `error` and its sources, outermost first, joined by `": "`: the whole
/// cause in one log field.
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_rate_limiter_fails_closed_as_unavailable() {
        assert!(matches!(AppError::from(RateLimitError("down".into())), AppError::Unavailable(_)));
    }

    #[test]
    fn a_full_hashing_queue_is_busy_and_a_failed_hash_internal() {
        assert!(matches!(AppError::from(HashError::Busy), AppError::Busy));
        assert!(matches!(AppError::from(HashError::Failed("panicked".into())), AppError::Internal(_)));
    }

    #[test]
    fn a_row_gone_meanwhile_is_not_found_and_other_store_failures_keep_their_kind() {
        assert!(matches!(
            AppError::from(StoreError::Gone("sessions_user_id_fkey".into())),
            AppError::NotFound("account")
        ));
        assert!(matches!(AppError::from(StoreError::Unavailable("down".into())), AppError::Unavailable(_)));
        assert!(matches!(AppError::from(StoreError::Internal("bad row".into())), AppError::Internal(_)));
        let taken = AppError::email_taken_on_conflict(StoreError::Conflict("user_emails_email_key".into()));
        assert!(matches!(taken, AppError::EmailTaken));
    }
}
