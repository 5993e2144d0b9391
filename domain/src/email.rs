//! Email addresses as login identifiers.
//!
//! An address is normalized once, at the border: surrounding whitespace is
//! trimmed and the whole address is lower-cased, so uniqueness and look-ups are
//! case-insensitive (`Ann@Example.com` and `ann@example.com` are one account).
//! Validation is deliberately pragmatic (RFC 5321 lengths, one `@`, a dotted
//! domain of DNS labels), not a full RFC 5322 grammar: the real proof that an
//! address works is the verification email.

use std::fmt;

/// Why a string is not an acceptable email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email must not be empty")]
    Empty,
    #[error("email must be at most {max} characters")]
    TooLong { max: usize },
    #[error("email must contain exactly one '@' with text on both sides")]
    MissingAt,
    #[error("the part before '@' must be at most {max} characters")]
    LocalPartTooLong { max: usize },
    #[error("email must not contain spaces, control characters or quotes")]
    InvalidCharacter,
    #[error("the domain must be a dotted host name such as example.com")]
    InvalidDomain,
}

/// A syntactically valid, normalized (trimmed, lower-case) email address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Longest address that fits in an SMTP path (RFC 5321 §4.5.3.1.3).
    pub const MAX_LEN: usize = 254;
    /// Longest local part (RFC 5321 §4.5.3.1.1).
    pub const MAX_LOCAL_LEN: usize = 64;

    /// Normalizes and validates an address typed by a person.
    ///
    /// # Errors
    /// The first rule the input breaks.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.chars().count() > Self::MAX_LEN {
            return Err(EmailError::TooLong { max: Self::MAX_LEN });
        }
        if trimmed
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | ',' | ';' | '\\'))
        {
            return Err(EmailError::InvalidCharacter);
        }
        let normalized = trimmed.to_lowercase();
        let (local, domain) = match normalized.split_once('@') {
            Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@') => (l, d),
            _ => return Err(EmailError::MissingAt),
        };
        if local.chars().count() > Self::MAX_LOCAL_LEN {
            return Err(EmailError::LocalPartTooLong { max: Self::MAX_LOCAL_LEN });
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(EmailError::InvalidCharacter);
        }
        if !valid_domain(domain) {
            return Err(EmailError::InvalidDomain);
        }
        Ok(Self(normalized))
    }

    /// The normalized address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.chars().count() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        let email = EmailAddress::parse("  Ann.Lee@Example.COM \n").map(|e| e.to_string());
        assert_eq!(email, Ok("ann.lee@example.com".to_owned()));
    }

    #[test]
    fn malformed_emails_are_refused_with_the_rule_they_break() {
        assert_eq!(EmailAddress::parse("   "), Err(EmailError::Empty));
        assert_eq!(EmailAddress::parse("ann.example.com"), Err(EmailError::MissingAt));
        assert_eq!(EmailAddress::parse("@example.com"), Err(EmailError::MissingAt));
        assert_eq!(EmailAddress::parse("ann@"), Err(EmailError::MissingAt));
        assert_eq!(EmailAddress::parse("a@b@example.com"), Err(EmailError::MissingAt));
        assert_eq!(EmailAddress::parse("ann lee@example.com"), Err(EmailError::InvalidCharacter));
        assert_eq!(EmailAddress::parse("ann..lee@example.com"), Err(EmailError::InvalidCharacter));
        assert_eq!(EmailAddress::parse("ann@localhost"), Err(EmailError::InvalidDomain));
        assert_eq!(EmailAddress::parse("ann@-bad.com"), Err(EmailError::InvalidDomain));
        assert_eq!(EmailAddress::parse("ann@exa_mple.com"), Err(EmailError::InvalidDomain));
    }

    #[test]
    fn email_length_limits_follow_rfc_5321() {
        let local = "a".repeat(65);
        assert_eq!(EmailAddress::parse(&format!("{local}@example.com")), Err(EmailError::LocalPartTooLong { max: 64 }));
        let long_domain = format!("{}.com", "d".repeat(250));
        assert_eq!(EmailAddress::parse(&format!("a@{long_domain}")), Err(EmailError::TooLong { max: 254 }));
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(64))).is_ok());
    }
}
