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
use crate::tries::{Closed, Tries};
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
    id: Uuid,
    user_id: UserId,
    email: EmailAddress,
    purpose: Purpose,
    /// SHA-256 of the link token.
    token_hash: TokenHash,
    /// SHA-256 of `purpose:email:code`, so equal codes of two rows differ.
    code_hash: TokenHash,
    created_at: DateTime<Utc>,
    /// Wrong codes, the end, and when it was redeemed or superseded.
    tries: Tries,
}

/// Why a verification cannot be redeemed.
pub type Unredeemable = Closed;

impl Verification {
    /// A new verification issued at `now`: live until `expires_at`, with
    /// `max_attempts` wrong codes allowed. Only the secrets' hashes are kept.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub const fn issue(
        id: Uuid,
        user_id: UserId,
        email: EmailAddress,
        purpose: Purpose,
        token_hash: TokenHash,
        code_hash: TokenHash,
        max_attempts: u32,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            user_id,
            email,
            purpose,
            token_hash,
            code_hash,
            created_at: now,
            tries: Tries::fresh(max_attempts, expires_at),
        }
    }

    /// A verification as storage holds it, one argument per stored column.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub const fn restore(
        id: Uuid,
        user_id: UserId,
        email: EmailAddress,
        purpose: Purpose,
        token_hash: TokenHash,
        code_hash: TokenHash,
        attempts: u32,
        max_attempts: u32,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        consumed_at: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            id,
            user_id,
            email,
            purpose,
            token_hash,
            code_hash,
            created_at,
            tries: Tries { attempts, max_attempts, expires_at, consumed_at },
        }
    }

    #[must_use]
    pub const fn id(&self) -> Uuid {
        self.id
    }

    #[must_use]
    pub const fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The address it was sent to.
    #[must_use]
    pub const fn email(&self) -> &EmailAddress {
        &self.email
    }

    #[must_use]
    pub const fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// SHA-256 of the link token.
    #[must_use]
    pub const fn token_hash(&self) -> &TokenHash {
        &self.token_hash
    }

    /// SHA-256 of `purpose:email:code`.
    #[must_use]
    pub const fn code_hash(&self) -> &TokenHash {
        &self.code_hash
    }

    /// Wrong codes so far.
    #[must_use]
    pub const fn attempts(&self) -> u32 {
        self.tries.attempts
    }

    #[must_use]
    pub const fn max_attempts(&self) -> u32 {
        self.tries.max_attempts
    }

    #[must_use]
    pub const fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    #[must_use]
    pub const fn expires_at(&self) -> DateTime<Utc> {
        self.tries.expires_at
    }

    /// When it was redeemed or superseded.
    #[must_use]
    pub const fn consumed_at(&self) -> Option<DateTime<Utc>> {
        self.tries.consumed_at
    }

    /// Whether it can still be redeemed at `now`.
    #[must_use]
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.redeemable(now).is_ok()
    }

    /// Whether it can still be redeemed at `now`, and if not why: used (or
    /// replaced), expired, or out of wrong-code attempts, in that order.
    ///
    /// # Errors
    /// The [`Unredeemable`] reason.
    pub fn redeemable(&self, now: DateTime<Utc>) -> Result<(), Unredeemable> {
        self.tries.open_at(now)
    }

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

    /// Marks it consumed at `now` (redeemed, or retired by a newer one).
    pub const fn consume(&mut self, now: DateTime<Utc>) {
        self.tries.consume(now);
    }

    /// Counts one wrong code, only below the limit and while unconsumed;
    /// `false` when nothing was counted.
    pub const fn count_failure(&mut self) -> bool {
        self.tries.count_failure()
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

    fn issued(now: DateTime<Utc>) -> Verification {
        let email = EmailAddress::parse("ann@example.com").unwrap_or_else(|e| panic!("{e}"));
        let hash = TokenHash::from_bytes([7; 32]);
        let user = UserId::from_uuid(Uuid::nil());
        Verification::issue(
            Uuid::nil(),
            user,
            email,
            Purpose::VerifyEmail,
            hash,
            hash,
            2,
            now,
            now + chrono::TimeDelta::hours(1),
        )
    }

    #[test]
    fn a_verification_is_redeemable_until_used_expired_or_out_of_attempts() {
        let now = DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::days(20_000);
        let v = issued(now);
        assert_eq!(v.redeemable(now), Ok(()));
        assert_eq!(v.redeemable(v.expires_at()), Err(Unredeemable::Expired));
        let mut guessed = issued(now);
        assert!(guessed.count_failure() && guessed.count_failure());
        assert!(!guessed.count_failure(), "never past the limit");
        assert_eq!((guessed.attempts(), guessed.redeemable(now)), (2, Err(Unredeemable::AttemptsExhausted)));
        let mut used = issued(now);
        used.consume(now);
        assert_eq!(used.redeemable(now), Err(Unredeemable::Used));
        assert!(!used.count_failure(), "a used one counts nothing");
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
