//! A stand-in TOTP.

use super::*;

/// A stand-in TOTP: the code of step `s` is derived from the secret and `s`
/// by a simple formula, so tests can compute it. The real RFC 6238
/// implementation is tested with the RFC's vectors in the crypto adapter.
#[derive(Debug, Default)]
pub struct FakeTotp;

impl FakeTotp {
    /// The code a fake authenticator shows at `step`.
    #[must_use]
    pub fn code(secret: &[u8], step: i64) -> String {
        let seed: i64 = secret.iter().take(4).fold(0_i64, |acc, b| acc * 31 + i64::from(*b));
        format!("{:06}", (seed.wrapping_mul(7919).wrapping_add(step.wrapping_mul(104_729))).rem_euclid(1_000_000))
    }

    /// The step `now` falls in.
    #[must_use]
    pub fn step(now: DateTime<Utc>) -> i64 {
        now.timestamp().div_euclid(30)
    }
}

impl crate::ports::mfa::Totp for FakeTotp {
    fn matching_step(&self, secret: &[u8], code: &str, now: DateTime<Utc>, skew: u8) -> Option<i64> {
        let current = Self::step(now);
        (current - i64::from(skew)..=current + i64::from(skew)).rev().find(|s| Self::code(secret, *s) == code)
    }

    fn provisioning_uri(&self, secret: &[u8], issuer: &str, account: &str) -> String {
        format!("otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}", crate::mfa::base32(secret))
    }

    fn qr_png(&self, uri: &str) -> Result<Vec<u8>, crate::ports::mfa::QrError> {
        Ok(uri.as_bytes().to_vec())
    }
}
