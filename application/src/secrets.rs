//! Making and hashing high-entropy secrets (refresh tokens, link tokens) and
//! short codes, from the random port.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_domain::{EmailAddress, OneTimeCode, Purpose, TokenHash};
use sha2::{Digest, Sha256};

use crate::ports::random::RandomSource;

/// Bytes of randomness in a token (256 bits; OWASP ASVS 5.0 V7.2.3 and
/// V11.5.1 ask for at least 128).
pub const TOKEN_BYTES: usize = 32;

/// Length of a token's random part: base64url of [`TOKEN_BYTES`] bytes.
pub const TOKEN_BODY_LEN: usize = 43;

/// `prefix` followed by 256 random bits, base64url.
#[must_use]
pub fn new_token(prefix: &str, rng: &dyn RandomSource) -> String {
    let mut bytes = [0_u8; TOKEN_BYTES];
    rng.fill(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `token` is `prefix` followed by a body of the right shape; a cheap
/// filter before any storage look-up.
#[must_use]
pub fn has_token_shape(token: &str, prefix: &str) -> bool {
    token.strip_prefix(prefix).is_some_and(|body| {
        body.len() == TOKEN_BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// SHA-256 of a secret's text. A fast hash is right for 256-bit secrets:
/// there is nothing to brute-force, and look-ups stay index hits.
#[must_use]
pub fn hash_secret(secret: &str) -> TokenHash {
    TokenHash::from_bytes(Sha256::digest(secret.as_bytes()).into())
}

/// A uniformly random 6-digit code (rejection sampling, no modulo bias).
#[must_use]
pub fn new_code(rng: &dyn RandomSource) -> OneTimeCode {
    const LIMIT: u32 = u32::MAX - (u32::MAX % 1_000_000);
    loop {
        let mut bytes = [0_u8; 4];
        rng.fill(&mut bytes);
        let n = u32::from_le_bytes(bytes);
        if n < LIMIT {
            return OneTimeCode::from_number(n % 1_000_000);
        }
    }
}

/// The stored form of a short code: bound to its purpose and address, so
/// the same digits hash differently on every other verification.
#[must_use]
pub fn hash_code(purpose: Purpose, email: &EmailAddress, code: &OneTimeCode) -> TokenHash {
    hash_secret(&format!("{}:{}:{}", purpose.as_str(), email.as_str(), code.expose()))
}

/// Compares two hashes in constant time.
#[must_use]
pub fn hashes_equal(a: &TokenHash, b: &TokenHash) -> bool {
    a.as_bytes().iter().zip(b.as_bytes()).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeqRandom;

    #[test]
    fn tokens_have_the_prefix_and_256_random_bits() {
        let rng = SeqRandom::default();
        let a = new_token("ghv_", &rng);
        let b = new_token("ghv_", &rng);
        assert!(has_token_shape(&a, "ghv_"), "{a}");
        assert!(!has_token_shape(&a, "ghp_"));
        assert_ne!(a, b);
    }

    #[test]
    fn codes_are_six_digits() {
        let rng = SeqRandom::default();
        for _ in 0..100 {
            let code = new_code(&rng);
            assert_eq!(code.expose().len(), 6);
            assert!(OneTimeCode::parse(code.expose()).is_ok());
        }
    }

    #[test]
    fn code_hash_depends_on_purpose_and_address() {
        let code = OneTimeCode::parse("123456").unwrap_or_else(|_| OneTimeCode::from_number(0));
        let ann = EmailAddress::parse("ann@example.com").ok();
        let bob = EmailAddress::parse("bob@example.com").ok();
        let (Some(ann), Some(bob)) = (ann, bob) else { return };
        let h = hash_code(Purpose::VerifyEmail, &ann, &code);
        assert!(hashes_equal(&h, &hash_code(Purpose::VerifyEmail, &ann, &code)));
        assert!(!hashes_equal(&h, &hash_code(Purpose::ResetPassword, &ann, &code)));
        assert!(!hashes_equal(&h, &hash_code(Purpose::VerifyEmail, &bob, &code)));
    }
}
