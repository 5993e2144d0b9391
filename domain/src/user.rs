//! User accounts.

use chrono::{DateTime, Utc};

use crate::email::EmailAddress;
use crate::ids::UserId;
use crate::password::PasswordHash;

/// Why a display name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisplayNameError {
    #[error("display name must be at most {max} characters")]
    TooLong { max: usize },
    #[error("display name must not contain control characters")]
    ControlCharacter,
}

/// The name a user chose to be shown by; may be empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Longest display name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Trims and validates a display name.
    ///
    /// # Errors
    /// [`DisplayNameError`] naming the rule broken.
    pub fn parse(input: &str) -> Result<Self, DisplayNameError> {
        let trimmed = input.trim();
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(DisplayNameError::TooLong { max: Self::MAX_CHARS });
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DisplayNameError::ControlCharacter);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user account with its primary login email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: EmailAddress,
    pub display_name: DisplayName,
    pub password_hash: PasswordHash,
    pub created_at: DateTime<Utc>,
}

/// One address a user can log in with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginEmail {
    pub email: EmailAddress,
    /// The address notices go to; exactly one per account.
    pub primary: bool,
    pub verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// An account as its owner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: UserId,
    pub display_name: DisplayName,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Primary first, then by creation.
    pub emails: Vec<LoginEmail>,
}

impl Account {
    /// The primary login email.
    #[must_use]
    pub fn primary_email(&self) -> Option<&LoginEmail> {
        self.emails.iter().find(|e| e.primary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_name_is_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Ann  ").map(|n| n.as_str().to_owned()), Ok("Ann".into()));
        assert_eq!(DisplayName::parse("").map(|n| n.as_str().to_owned()), Ok(String::new()));
        assert_eq!(DisplayName::parse(&"x".repeat(101)), Err(DisplayNameError::TooLong { max: 100 }));
        assert_eq!(DisplayName::parse("a\u{0007}b"), Err(DisplayNameError::ControlCharacter));
    }
}
