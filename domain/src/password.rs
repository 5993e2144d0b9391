//! Passwords and their stored hashes.
//!
//! Policy follows NIST SP 800-63B §3.1.1.2 and OWASP ASVS 5.0 §6.2: at least 8
//! characters, at most 128, counted as Unicode code points; every character is
//! allowed (spaces and emoji too) and there are no composition rules. The
//! password is kept inside a [`Secret`] so it never reaches a log.

use std::fmt;

use crate::secret::Secret;

/// Why a password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {min} characters")]
    TooShort { min: usize },
    #[error("password must be at most {max} characters")]
    TooLong { max: usize },
}

/// A password that meets the policy.
#[derive(Clone, Debug)]
pub struct Password(Secret<String>);

impl Password {
    /// Minimum length in characters (NIST SP 800-63B: 8 when another factor may be added).
    pub const MIN_CHARS: usize = 8;
    /// Maximum length in characters; bounds the hashing work an attacker can ask for.
    pub const MAX_CHARS: usize = 128;

    /// Checks a new password against the policy.
    ///
    /// # Errors
    /// [`PasswordError`] naming the limit broken.
    pub fn new(value: String) -> Result<Self, PasswordError> {
        let chars = value.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(PasswordError::TooShort { min: Self::MIN_CHARS });
        }
        if chars > Self::MAX_CHARS {
            return Err(PasswordError::TooLong { max: Self::MAX_CHARS });
        }
        Ok(Self(Secret::new(value)))
    }

    /// A password typed at login. It is checked only against the stored hash,
    /// never against the policy (the policy may have changed since sign-up),
    /// but its length is still capped so a huge input cannot buy hashing work.
    ///
    /// # Errors
    /// [`PasswordError::TooLong`] beyond the maximum; an empty one is `TooShort`.
    pub fn candidate(value: String) -> Result<Self, PasswordError> {
        if value.is_empty() {
            return Err(PasswordError::TooShort { min: 1 });
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(PasswordError::TooLong { max: Self::MAX_CHARS });
        }
        Ok(Self(Secret::new(value)))
    }

    /// The password bytes, for the hasher only.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// A password hash in PHC string format (`$argon2id$v=19$m=…`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string produced by the hasher or read from storage.
    #[must_use]
    pub const fn from_phc(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OWASP ASVS 5.0 V6.2.1 (at least 8), V6.2.9 (64 and more allowed);
    /// NIST SP 800-63B-4 §3.1.1.2.
    #[test]
    fn password_length_policy_nist_800_63b() {
        assert_eq!(Password::new("1234567".into()).err(), Some(PasswordError::TooShort { min: 8 }));
        assert!(Password::new("12345678".into()).is_ok());
        assert!(Password::new("x".repeat(128)).is_ok());
        assert_eq!(Password::new("x".repeat(129)).err(), Some(PasswordError::TooLong { max: 128 }));
    }

    #[test]
    fn password_length_counts_characters_not_bytes() {
        // Seven characters, 28 bytes: still too short.
        assert!(Password::new("🔑🔑🔑🔑🔑🔑🔑".into()).is_err());
        // 128 four-byte characters: allowed.
        assert!(Password::new("🔑".repeat(128)).is_ok());
    }

    /// OWASP ASVS 5.0 V6.2.5: any composition, no character-class rules.
    #[test]
    fn password_allows_any_characters_without_composition_rules() {
        assert!(Password::new("correct horse battery staple".into()).is_ok());
        assert!(Password::new("aaaaaaaa".into()).is_ok());
    }

    #[test]
    fn login_candidate_skips_policy_but_caps_length() {
        assert!(Password::candidate("short".into()).is_ok());
        assert!(Password::candidate(String::new()).is_err());
        assert!(Password::candidate("x".repeat(129)).is_err());
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::new("supersecret".into()).ok();
        assert!(!format!("{p:?}").contains("supersecret"));
    }
}
