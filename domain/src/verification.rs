//! One-time verifications: proving control of an email address, either to
//! verify it or to reset a password.
//!
//! Each verification carries two secrets, sent together in one email: a long
//! link token (256 bits, URL-safe, for the link) and a short 6-digit code (to
//! type). Only their hashes are stored. Either redeems the verification,
//! once; the code only together with its email address, and only within a
//! small number of attempts, since a 6-digit code can be guessed.

use chrono::{DateTime, Utc};

use crate::email::EmailAddress;
use crate::ids::UserId;
use crate::secret::Secret;
use crate::token::TokenHash;
use uuid::Uuid;

/// What a verification proves control of the address for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Mark the address verified.
    VerifyEmail,
    /// Replace the account's password.
    ResetPassword,
}

impl Purpose {
    /// Stable text stored with the verification.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }

    /// Reads the stored text back.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "verify_email" => Some(Self::VerifyEmail),
            "reset_password" => Some(Self::ResetPassword),
            _ => None,
        }
    }

    /// The prefix of this purpose's link tokens. A token of one kind is
    /// refused for the other before any look-up.
    #[must_use]
    pub const fn token_prefix(self) -> &'static str {
        match self {
            Self::VerifyEmail => "ghv_",
            Self::ResetPassword => "ghp_",
        }
    }
}

impl Verification {
    /// The address whose older live verifications of the same purpose this
    /// one retires, or `None` for all of the user's: a new email
    /// verification replaces only those of its own address (each address is
    /// verified on its own), a new or completed reset every other reset of
    /// the account (only the newest link may work).
    #[must_use]
    pub fn retires_for(&self) -> Option<&EmailAddress> {
        match self.purpose {
            Purpose::VerifyEmail => Some(&self.email),
            Purpose::ResetPassword => None,
        }
    }
}

/// Why a short code is not acceptable input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("code must be exactly {len} digits")]
    Format { len: usize },
}

/// A short numeric one-time code as typed by a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneTimeCode(Secret<String>);

impl OneTimeCode {
    /// Digits in a code.
    pub const LEN: usize = 6;

    /// Accepts exactly six ASCII digits (surrounding spaces trimmed).
    ///
    /// # Errors
    /// [`CodeError::Format`] otherwise.
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let code = input.trim();
        if code.len() == Self::LEN && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(Secret::new(code.to_owned())))
        } else {
            Err(CodeError::Format { len: Self::LEN })
        }
    }

    /// Builds a code from a number below 10^6 (the generator's output).
    #[must_use]
    pub fn from_number(n: u32) -> Self {
        Self(Secret::new(format!("{:06}", n % 1_000_000)))
    }

    /// The digits.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// A verification as stored: hashes only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    pub id: Uuid,
    pub user_id: UserId,
    pub email: EmailAddress,
    pub purpose: Purpose,
    /// SHA-256 of the link token.
    pub token_hash: TokenHash,
    /// SHA-256 of `purpose:email:code`, so equal codes of two rows differ.
    pub code_hash: TokenHash,
    /// Wrong codes so far.
    pub attempts: u32,
    pub max_attempts: u32,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When it was redeemed or superseded by a newer one.
    pub consumed_at: Option<DateTime<Utc>>,
}

impl Verification {
    /// Whether it can still be redeemed at `now`.
    #[must_use]
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.consumed_at.is_none() && now < self.expires_at && self.attempts < self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_six_digits_exactly() {
        assert!(OneTimeCode::parse("012345").is_ok());
        assert!(OneTimeCode::parse(" 012345 ").is_ok());
        for bad in ["12345", "1234567", "12345a", "", "١٢٣٤٥٦"] {
            assert_eq!(OneTimeCode::parse(bad), Err(CodeError::Format { len: 6 }), "{bad}");
        }
    }

    #[test]
    fn generated_codes_keep_leading_zeros() {
        assert_eq!(OneTimeCode::from_number(42).expose(), "000042");
        assert_eq!(OneTimeCode::from_number(999_999).expose(), "999999");
    }

    #[test]
    fn purposes_have_distinct_prefixes_and_round_trip() {
        assert_ne!(Purpose::VerifyEmail.token_prefix(), Purpose::ResetPassword.token_prefix());
        for p in [Purpose::VerifyEmail, Purpose::ResetPassword] {
            assert_eq!(Purpose::parse(p.as_str()), Some(p));
        }
    }
}
