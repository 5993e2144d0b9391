//! Gatehouse crypto adapter: implements the application's credential and
//! second-factor ports with real cryptography.
//!
//! - [`Argon2Hasher`] adapts `PasswordHasher`: argon2id with the OWASP
//!   parameters, on a fixed set of low-priority hashing threads that each
//!   reuse one argon2 memory block, behind a bounded queue.
//! - [`JwtKeys`] adapts `AccessTokenSigner` and `AccessTokenVerifier`:
//!   Ed25519-signed JWT access tokens (RFC 9068 `at+jwt`) with a `kid` that is
//!   the key's RFC 7638 thumbprint, and the JWKS of the keys that verify.
//! - [`CachingVerifier`] wraps any `AccessTokenVerifier` with a bounded
//!   cache of tokens that already verified, so a token presented again
//!   costs no signature check.
//! - [`TotpRs`] adapts `Totp`: RFC 6238 codes (SHA-1, 6 digits, 30 s),
//!   the `otpauth://` provisioning URI and its QR code as a PNG.
//! - [`AeadSecretBox`] adapts `SecretBox`: XChaCha20-Poly1305 sealing of
//!   secrets at rest under a [`SecretKey`] named by its id, so keys rotate.
//! - [`SystemClock`] adapts `Clock`; [`OsRandom`] adapts `RandomSource`.

mod argon2_worker;
mod hash_pool;
mod jwt;
mod keys;
mod password;
mod secret_box;
mod secret_key;
mod system;
mod token_cache;
mod totp;

pub use jwt::JwtKeys;
pub use keys::{KeyError, PublicKey, SigningKey};
pub use password::Argon2Hasher;
pub use secret_box::AeadSecretBox;
pub use secret_key::{SecretKey, SecretKeyError};
pub use system::{OsRandom, SystemClock};
pub use token_cache::{CacheStats, CachingVerifier};
pub use totp::TotpRs;
