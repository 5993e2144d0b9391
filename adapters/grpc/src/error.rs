//! The one place where a use-case error becomes a gRPC status.
//!
//! Every status carries a `google.rpc.ErrorInfo` whose `reason` is stable and
//! machine-readable; bad input also carries `google.rpc.BadRequest` field
//! violations, and `UNAVAILABLE` and `RESOURCE_EXHAUSTED`/`RATE_LIMITED` a
//! `RetryInfo`. Internal details are logged,
//! never sent (OWASP ASVS 5.0 V16.5.1).

use std::collections::HashMap;
use std::time::Duration;

use gatehouse_application::{AppError, TokenRejection, error_chain};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every Gatehouse error.
pub const ERROR_DOMAIN: &str = "gatehouse";

/// Maps an application error to the status the caller sees: the one entry
/// point (the orphan rule forbids `impl From<AppError> for Status` in this
/// crate, since both types are foreign). It picks the code, the `ErrorInfo`
/// reason and the field violations; the field a violation names comes from
/// the error itself. The cause of an internal or unavailable error is logged
/// here, whole (with every source), and never sent.
#[must_use]
pub fn status(error: AppError) -> Status {
    let mut details = ErrorDetails::new();
    let (code, reason, message) = match &error {
        AppError::InvalidArgument(violations) => {
            for v in violations {
                details.add_bad_request_violation(v.field, v.description.clone());
            }
            (Code::InvalidArgument, "INVALID_ARGUMENT", error.to_string())
        }
        AppError::InvalidCredentials => {
            (Code::Unauthenticated, "INVALID_CREDENTIALS", "invalid email or password".to_owned())
        }
        AppError::EmailTaken => {
            (Code::AlreadyExists, "EMAIL_TAKEN", "an account with this email already exists".to_owned())
        }
        AppError::EmailNotVerified => (Code::FailedPrecondition, "EMAIL_NOT_VERIFIED", error.to_string()),
        AppError::WrongPassword { field } => {
            details.add_bad_request_violation(*field, error.to_string());
            (Code::InvalidArgument, "INVALID_CREDENTIALS", error.to_string())
        }
        AppError::VerificationInvalid => {
            details.add_bad_request_violation("token", error.to_string());
            (Code::InvalidArgument, "VERIFICATION_INVALID", error.to_string())
        }
        AppError::VerificationExpired => (Code::FailedPrecondition, "VERIFICATION_EXPIRED", error.to_string()),
        AppError::VerificationUsed => (Code::FailedPrecondition, "VERIFICATION_USED", error.to_string()),
        AppError::CodeInvalid { field } => {
            details.add_bad_request_violation(*field, error.to_string());
            (Code::InvalidArgument, "CODE_INVALID", error.to_string())
        }
        AppError::AttemptsExhausted => (Code::ResourceExhausted, "ATTEMPTS_EXHAUSTED", error.to_string()),
        AppError::ChallengeInvalid => {
            details.add_bad_request_violation("challenge_id", error.to_string());
            (Code::InvalidArgument, "CHALLENGE_INVALID", error.to_string())
        }
        AppError::ChallengeExpired => (Code::FailedPrecondition, "CHALLENGE_EXPIRED", error.to_string()),
        AppError::ChallengeUsed => (Code::FailedPrecondition, "CHALLENGE_USED", error.to_string()),
        AppError::RateLimited { retry_after_secs } => {
            details.set_retry_info(Some(Duration::from_secs(*retry_after_secs)));
            (Code::ResourceExhausted, "RATE_LIMITED", error.to_string())
        }
        AppError::NotFound(_) => (Code::NotFound, "NOT_FOUND", error.to_string()),
        AppError::FailedPrecondition { reason, message } => (Code::FailedPrecondition, *reason, (*message).to_owned()),
        AppError::PermissionDenied { reason, message } => (Code::PermissionDenied, *reason, (*message).to_owned()),
        AppError::AlreadyExists { reason, message } => (Code::AlreadyExists, *reason, (*message).to_owned()),
        AppError::Unauthenticated => (Code::Unauthenticated, "UNAUTHENTICATED", "authentication required".to_owned()),
        AppError::InvalidToken(rejection) => {
            let mut metadata = HashMap::new();
            metadata.insert("cause".to_owned(), rejection_cause(*rejection).to_owned());
            details.set_error_info("TOKEN_INVALID", ERROR_DOMAIN, metadata);
            return Status::with_error_details(Code::Unauthenticated, error.to_string(), details);
        }
        AppError::InvalidRefreshToken => {
            (Code::Unauthenticated, "REFRESH_TOKEN_INVALID", "invalid refresh token".to_owned())
        }
        AppError::TokenExpired => (Code::Unauthenticated, "TOKEN_EXPIRED", "token expired".to_owned()),
        AppError::TokenRevoked => (Code::Unauthenticated, "TOKEN_REVOKED", "token revoked".to_owned()),
        AppError::RevocationPending(cause) => {
            tracing::warn!(cause = %error_chain(cause.as_ref()), "revocation saved, denylist write pending");
            details.set_retry_info(Some(Duration::from_secs(1)));
            (Code::Unavailable, "REVOCATION_PENDING", error.to_string())
        }
        // The same answer as a request past the server's in-flight limit:
        // this replica is full for now, retry shortly or elsewhere.
        AppError::Busy => {
            details.set_retry_info(Some(Duration::from_secs(1)));
            (Code::ResourceExhausted, "SERVER_BUSY", error.to_string())
        }
        AppError::Unavailable(cause) => {
            tracing::warn!(cause = %error_chain(cause.as_ref()), "dependency unavailable");
            details.set_retry_info(Some(Duration::from_secs(1)));
            (Code::Unavailable, "UNAVAILABLE", "service temporarily unavailable; retry later".to_owned())
        }
        AppError::Internal(cause) => {
            tracing::error!(cause = %error_chain(cause.as_ref()), "internal error");
            (Code::Internal, "INTERNAL", "internal error".to_owned())
        }
    };
    details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(code, message, details)
}

/// Stable text for each token rejection, sent as `ErrorInfo.metadata.cause`.
const fn rejection_cause(r: TokenRejection) -> &'static str {
    match r {
        TokenRejection::Malformed => "malformed",
        TokenRejection::WrongType => "wrong_type",
        TokenRejection::UnknownKey => "unknown_key",
        TokenRejection::WrongAlgorithm => "wrong_algorithm",
        TokenRejection::BadSignature => "bad_signature",
        TokenRejection::WrongIssuer => "wrong_issuer",
        TokenRejection::WrongAudience => "wrong_audience",
        TokenRejection::MissingClaim => "missing_claim",
        TokenRejection::Expired => "expired",
        TokenRejection::NotYetValid => "not_yet_valid",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use gatehouse_application::FieldViolation;

    use super::*;

    #[test]
    fn invalid_argument_names_every_field_and_has_a_reason() {
        let s = status(AppError::InvalidArgument(vec![
            FieldViolation::new("email", "email must not be empty"),
            FieldViolation::new("password", "too short"),
        ]));
        assert_eq!(s.code(), Code::InvalidArgument);
        let d = s.get_error_details();
        let fields: Vec<_> = d.bad_request().unwrap().field_violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["email", "password"]);
        assert_eq!(d.error_info().unwrap().reason, "INVALID_ARGUMENT");
    }

    /// OWASP ASVS 5.0 V16.5.1: internal details stay in the log.
    #[test]
    fn internal_and_unavailable_errors_hide_their_cause() {
        let s = status(AppError::internal("db password is hunter2"));
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("hunter2"));
        let s = status(AppError::Unavailable("redis at 10.0.0.7 refused".into()));
        assert_eq!(s.code(), Code::Unavailable);
        assert!(!s.message().contains("10.0.0.7"));
        assert!(s.get_error_details().retry_info().is_some());
    }

    fn violations(s: &Status) -> Vec<String> {
        let d = s.get_error_details();
        d.bad_request().map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect()).unwrap_or_default()
    }

    fn reason(s: &Status) -> String {
        s.get_error_details().error_info().unwrap().reason.clone()
    }

    #[test]
    fn wrong_password_names_the_field_it_came_from() {
        let s = status(AppError::WrongPassword { field: "current_password" });
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(reason(&s), "INVALID_CREDENTIALS");
        assert_eq!(violations(&s), ["current_password"]);
    }

    #[test]
    fn verification_errors_have_their_own_codes_reasons_and_fields() {
        for (e, code, expected_reason, fields) in [
            (AppError::VerificationInvalid, Code::InvalidArgument, "VERIFICATION_INVALID", vec!["token"]),
            (
                AppError::CodeInvalid { field: "email_code.code" },
                Code::InvalidArgument,
                "CODE_INVALID",
                vec!["email_code.code"],
            ),
            (AppError::VerificationExpired, Code::FailedPrecondition, "VERIFICATION_EXPIRED", vec![]),
            (AppError::VerificationUsed, Code::FailedPrecondition, "VERIFICATION_USED", vec![]),
            (AppError::AttemptsExhausted, Code::ResourceExhausted, "ATTEMPTS_EXHAUSTED", vec![]),
        ] {
            let s = status(e);
            assert_eq!(s.code(), code, "{expected_reason}");
            assert_eq!(reason(&s), expected_reason);
            assert_eq!(violations(&s), fields, "{expected_reason}");
        }
    }

    #[test]
    fn challenge_errors_have_their_own_codes_reasons_and_fields() {
        for (e, code, expected_reason, fields) in [
            (AppError::ChallengeInvalid, Code::InvalidArgument, "CHALLENGE_INVALID", vec!["challenge_id"]),
            (AppError::ChallengeExpired, Code::FailedPrecondition, "CHALLENGE_EXPIRED", vec![]),
            (AppError::ChallengeUsed, Code::FailedPrecondition, "CHALLENGE_USED", vec![]),
        ] {
            let s = status(e);
            assert_eq!(s.code(), code, "{expected_reason}");
            assert_eq!(reason(&s), expected_reason);
            assert_eq!(violations(&s), fields, "{expected_reason}");
            assert!(s.get_error_details().retry_info().is_none(), "{expected_reason}");
        }
    }

    #[test]
    fn rate_limited_says_how_long_to_wait() {
        let s = status(AppError::RateLimited { retry_after_secs: 900 });
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(reason(&s), "RATE_LIMITED");
        let retry = s.get_error_details().retry_info().unwrap().retry_delay;
        assert_eq!(retry, Some(Duration::from_secs(900)));
        assert!(violations(&s).is_empty());
    }

    /// A full password-hashing queue: RESOURCE_EXHAUSTED with RetryInfo,
    /// like a request past the in-flight limit (OWASP ASVS 5.0 V15.2.2).
    #[test]
    fn busy_is_resource_exhausted_server_busy_with_retry_info() {
        let s = status(AppError::Busy);
        assert_eq!((s.code(), reason(&s)), (Code::ResourceExhausted, "SERVER_BUSY".to_owned()));
        let retry = s.get_error_details().retry_info().unwrap().retry_delay;
        assert_eq!(retry, Some(Duration::from_secs(1)));
    }

    #[test]
    fn a_wrong_code_names_the_field_the_error_carries() {
        let s = status(AppError::CodeInvalid { field: "code" });
        assert_eq!(
            (s.code(), reason(&s), violations(&s)),
            (Code::InvalidArgument, "CODE_INVALID".into(), vec!["code".to_owned()])
        );
        assert_eq!(violations(&status(AppError::CodeInvalid { field: "totp_code.code" })), ["totp_code.code"]);
    }

    #[test]
    fn unverified_email_is_a_failed_precondition() {
        let s = status(AppError::EmailNotVerified);
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(reason(&s), "EMAIL_NOT_VERIFIED");
    }

    #[test]
    fn not_found_names_what_is_missing() {
        let s = status(AppError::NotFound("login email"));
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(reason(&s), "NOT_FOUND");
        assert_eq!(s.message(), "login email not found");
    }

    #[test]
    fn failed_precondition_keeps_the_use_case_reason_and_message() {
        let s = status(AppError::FailedPrecondition {
            reason: "LAST_VERIFIED_EMAIL",
            message: "the last verified address cannot be removed",
        });
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(reason(&s), "LAST_VERIFIED_EMAIL");
        assert_eq!(s.message(), "the last verified address cannot be removed");
    }

    #[test]
    fn permission_denied_and_already_exists_keep_the_use_case_reason() {
        let s = status(AppError::PermissionDenied { reason: "OWNER_ONLY", message: "owners only" });
        assert_eq!((s.code(), reason(&s), s.message()), (Code::PermissionDenied, "OWNER_ONLY".into(), "owners only"));
        let s = status(AppError::AlreadyExists { reason: "SLUG_TAKEN", message: "taken" });
        assert_eq!((s.code(), reason(&s)), (Code::AlreadyExists, "SLUG_TAKEN".into()));
    }

    #[test]
    fn token_errors_are_unauthenticated_with_distinct_reasons() {
        for (e, reason) in [
            (AppError::TokenExpired, "TOKEN_EXPIRED"),
            (AppError::TokenRevoked, "TOKEN_REVOKED"),
            (AppError::InvalidToken(TokenRejection::BadSignature), "TOKEN_INVALID"),
            (AppError::InvalidCredentials, "INVALID_CREDENTIALS"),
        ] {
            let s = status(e);
            assert_eq!(s.code(), Code::Unauthenticated);
            assert_eq!(s.get_error_details().error_info().unwrap().reason, reason);
        }
    }

    /// A token whose validity time span has not begun (OWASP ASVS 5.0
    /// V9.2.1) is invalid, not expired, and says why in a stable cause.
    #[test]
    fn not_yet_valid_token_is_token_invalid_with_its_cause() {
        let s = status(AppError::InvalidToken(TokenRejection::NotYetValid));
        assert_eq!(s.code(), Code::Unauthenticated);
        let info = s.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "TOKEN_INVALID");
        assert_eq!(info.metadata.get("cause").map(String::as_str), Some("not_yet_valid"));
    }
}
