//! Gatehouse crypto adapter: implements the application's credential ports
//! with real cryptography.
//!
//! - [`Argon2Hasher`] adapts `PasswordHasher`: argon2id with the OWASP
//!   parameters, run off the async runtime with bounded concurrency.
//! - [`JwtKeys`] adapts `AccessTokenSigner` and `AccessTokenVerifier`:
//!   Ed25519-signed JWT access tokens (RFC 9068 `at+jwt`) with a `kid` that is
//!   the key's RFC 7638 thumbprint, and the JWKS of the keys that verify.
//! - [`SystemClock`] adapts `Clock`; [`OsRandom`] adapts `RandomSource`.

mod jwt;
mod keys;
mod password;
mod system;

pub use jwt::JwtKeys;
pub use keys::{KeyError, PublicKey, SigningKey};
pub use password::Argon2Hasher;
pub use system::{OsRandom, SystemClock};
