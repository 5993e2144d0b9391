//! Passwords and their stored hashes.
//!
//! Policy follows NIST SP 800-63B-4 §3.1.1.2 and OWASP ASVS 5.0 §6.2: at least
//! 8 characters, at most 128; every character is allowed (spaces and emoji
//! too) and there are no composition rules. Whether a new password is too easy
//! to guess is [`PasswordPolicy`](crate::PasswordPolicy)'s question, since it
//! needs the account's email and name.
//!
//! A password is normalised to Unicode NFKC as it arrives (NIST SP 800-63B-4
//! §3.1.1.2 asks for NFKC or NFKD), so the same password typed on two keyboards
//! that compose accents differently is one password. The limits count
//! characters (code points) of the normalised form. The password is kept
//! inside a [`Secret`] so it never reaches a log.

use std::fmt;

use unicode_normalization::{UnicodeNormalization as _, is_nfkc};

use crate::secret::Secret;

/// Why a password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {min} characters")]
    TooShort { min: usize },
    #[error("password must be at most {max} characters")]
    TooLong { max: usize },
    /// A common password, a pattern (`aaaaaaaa`, `12345678`), or too few
    /// guesses for the policy; `advice` is zxcvbn's feedback, for a person.
    #[error("password is too easy to guess: {advice}")]
    TooGuessable { advice: String },
    /// Built from the account's own email address or name, or the service's name.
    #[error("password must not be built from the email address, the display name or the service's name")]
    FromAccountDetails,
}

/// A password that meets the length policy, in NFKC.
#[derive(Clone, Debug)]
pub struct Password {
    /// The NFKC form: what is hashed, and what a stored hash is checked against first.
    normalized: Secret<String>,
    /// The text as received, kept only when it is not already NFKC: hashes
    /// stored before passwords were normalised were made from it.
    as_received: Option<Secret<String>>,
}

impl Password {
    /// Minimum length in characters (NIST SP 800-63B-4: 8 when another factor may be added).
    pub const MIN_CHARS: usize = 8;
    /// Maximum length in characters; bounds the hashing work an attacker can ask for.
    pub const MAX_CHARS: usize = 128;
    /// Longest input normalised at all, in characters: composition shrinks a
    /// text at most fourfold (`ᾅ` is four code points decomposed), so no
    /// password within [`MAX_CHARS`](Self::MAX_CHARS) once normalised is
    /// longer than this as typed.
    const MAX_INPUT_CHARS: usize = 4 * Self::MAX_CHARS;

    /// Checks a new password against the length policy, counted on its NFKC form.
    ///
    /// # Errors
    /// [`PasswordError`] naming the limit broken.
    pub fn new(value: String) -> Result<Self, PasswordError> {
        let password = Self::normalize(value)?;
        let chars = password.expose().chars().count();
        if chars < Self::MIN_CHARS {
            return Err(PasswordError::TooShort { min: Self::MIN_CHARS });
        }
        if chars > Self::MAX_CHARS {
            return Err(PasswordError::TooLong { max: Self::MAX_CHARS });
        }
        Ok(password)
    }

    /// A password typed at login. It is checked only against the stored hash,
    /// never against the policy (the policy may have changed since sign-up),
    /// but its length is still capped so a huge input cannot buy hashing work.
    /// Either form may be within the cap: a password set before normalisation
    /// was limited as typed.
    ///
    /// # Errors
    /// [`PasswordError::TooLong`] beyond the maximum; an empty one is `TooShort`.
    pub fn candidate(value: String) -> Result<Self, PasswordError> {
        if value.is_empty() {
            return Err(PasswordError::TooShort { min: 1 });
        }
        let password = Self::normalize(value)?;
        let within = |text: &str| text.chars().count() <= Self::MAX_CHARS;
        if !within(password.expose()) && !password.expose_as_received().is_some_and(within) {
            return Err(PasswordError::TooLong { max: Self::MAX_CHARS });
        }
        Ok(password)
    }

    fn normalize(value: String) -> Result<Self, PasswordError> {
        if value.chars().nth(Self::MAX_INPUT_CHARS).is_some() {
            return Err(PasswordError::TooLong { max: Self::MAX_CHARS });
        }
        if is_nfkc(&value) {
            return Ok(Self { normalized: Secret::new(value), as_received: None });
        }
        let normalized = value.nfkc().collect();
        Ok(Self { normalized: Secret::new(normalized), as_received: Some(Secret::new(value)) })
    }

    /// The NFKC form: what the hasher hashes, and checks a stored hash against first.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.normalized.expose()
    }

    /// The text as received, when it differs from its NFKC form. A hash stored
    /// before passwords were normalised was made from it: a verifier tries it
    /// when [`expose`](Self::expose) does not match, and a match this way asks
    /// for a rehash (which then stores the NFKC form).
    #[must_use]
    pub fn expose_as_received(&self) -> Option<&str> {
        self.as_received.as_ref().map(|s| s.expose().as_str())
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// "é" as one code point (NFC) and as "e" + combining acute (NFD).
    const CAFE_NFC: &str = "caf\u{e9} au lait, s'il vous pla\u{ee}t";
    const CAFE_NFD: &str = "cafe\u{301} au lait, s'il vous plai\u{302}t";

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

    /// NIST SP 800-63B-4 §3.1.1.2: passwords are normalised (NFKC) before
    /// they are hashed or checked, so NFC and NFD input are one password.
    #[test]
    fn nfc_and_nfd_input_become_the_same_nfkc_password() {
        let nfc = Password::new(CAFE_NFC.into()).unwrap();
        let nfd = Password::new(CAFE_NFD.into()).unwrap();
        assert_eq!(nfc.expose(), nfd.expose());
        assert_eq!(nfc.expose(), CAFE_NFC);
        assert_eq!(nfc.expose_as_received(), None, "already NFKC: nothing else to try");
        assert_eq!(nfd.expose_as_received(), Some(CAFE_NFD), "kept for hashes made before normalisation");
        // Compatibility forms fold too: a ligature and full-width letters.
        let folded = Password::candidate("\u{fb01}sh \u{ff26}\u{ff29}\u{ff33}\u{ff28}".into()).unwrap();
        assert_eq!(folded.expose(), "fish FISH");
    }

    /// The limits count characters of the NFKC form: eight NFD letters with
    /// accents are sixteen code points as typed, and eight once composed.
    #[test]
    fn length_limits_count_the_normalised_form() {
        assert!(Password::new("e\u{301}".repeat(8)).is_ok());
        assert_eq!(Password::new("e\u{301}".repeat(7)).err(), Some(PasswordError::TooShort { min: 8 }));
        assert!(Password::new("e\u{301}".repeat(128)).is_ok(), "256 code points typed, 128 composed");
        // U+FDFA expands to 18 characters: 8 of them are 144, too long.
        assert_eq!(Password::new("\u{fdfa}".repeat(8)).err(), Some(PasswordError::TooLong { max: 128 }));
        // Huge inputs are refused before any normalisation work.
        assert_eq!(Password::candidate("e\u{301}".repeat(300)).err(), Some(PasswordError::TooLong { max: 128 }));
    }

    #[test]
    fn login_candidate_skips_policy_but_caps_length() {
        assert!(Password::candidate("short".into()).is_ok());
        assert!(Password::candidate(String::new()).is_err());
        assert!(Password::candidate("x".repeat(129)).is_err());
        // Set before normalisation with 8 characters as typed, 144 once
        // normalised: it may still log in (and be rehashed).
        let legacy = Password::candidate("\u{fdfa}".repeat(8)).unwrap();
        assert_eq!(legacy.expose().chars().count(), 144);
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::new("supersecret".into()).ok();
        assert!(!format!("{p:?}").contains("supersecret"));
        let nfd = Password::new(CAFE_NFD.into()).ok();
        assert!(!format!("{nfd:?}").contains("lait"));
    }
}
