//! Ed25519 keys for access tokens: the private signing key (kept in a PKCS#8
//! PEM file), its public half, and the key id (`kid`) both are known by.

use std::fmt;
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _};
use rand_core::OsRng;
use sha2::{Digest as _, Sha256};

/// A key could not be read, written or parsed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read signing key file {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write signing key file {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("signing key file {} is not an Ed25519 PKCS#8 PEM private key: {reason}", path.display())]
    InvalidFile { path: PathBuf, reason: String },
    #[error("not an Ed25519 PKCS#8 PEM private key: {0}")]
    InvalidPrivatePem(String),
    #[error("not an Ed25519 SPKI PEM public key: {0}")]
    InvalidPublicPem(String),
    #[error("cannot encode the signing key as PEM: {0}")]
    Encode(String),
}

/// An Ed25519 private key that signs access tokens. `Debug` shows only its `kid`.
#[derive(Clone)]
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    public: PublicKey,
}

impl SigningKey {
    /// A fresh key from the OS CSPRNG.
    #[must_use]
    pub fn generate() -> Self {
        Self::from_dalek(ed25519_dalek::SigningKey::generate(&mut OsRng))
    }

    /// Parses a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as written by
    /// [`to_pem`](Self::to_pem) or `openssl genpkey -algorithm ed25519`.
    ///
    /// # Errors
    /// [`KeyError::InvalidPrivatePem`] when it is not an Ed25519 PKCS#8 PEM.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(Self::from_dalek)
            .map_err(|e| KeyError::InvalidPrivatePem(e.to_string()))
    }

    /// The key as a PKCS#8 PEM. This is the secret: write it only to a file
    /// readable by the service alone.
    ///
    /// # Errors
    /// [`KeyError::Encode`] if PKCS#8 encoding fails (not expected for Ed25519).
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.as_str().to_owned())
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// Reads the key from a PEM file that must exist.
    ///
    /// # Errors
    /// [`KeyError::Read`] or [`KeyError::InvalidFile`], naming the path.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read { path: path.to_owned(), source })?;
        warn_if_readable_by_others(path);
        Self::from_pem(&pem).map_err(|e| KeyError::InvalidFile { path: path.to_owned(), reason: e.to_string() })
    }

    /// Reads the key from `path`, or, when there is no such file, generates
    /// one and writes it there with mode 0600. The file is created with
    /// `create_new`, so when two processes start at once one writes and the
    /// other reads the winner's key.
    ///
    /// # Errors
    /// [`KeyError`] naming the path when it cannot be read, written or parsed.
    pub fn load_or_generate(path: &Path) -> Result<Self, KeyError> {
        match Self::load(path) {
            Err(KeyError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        let key = Self::generate();
        let pem = key.to_pem()?;
        let write_err = |source| KeyError::Write { path: path.to_owned(), source };
        let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(file) => file,
            // Another process won the race: use its key.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Self::load(path),
            Err(e) => return Err(write_err(e)),
        };
        file.write_all(pem.as_bytes()).map_err(write_err)?;
        file.sync_all().map_err(write_err)?;
        tracing::info!(path = %path.display(), kid = key.kid(), "generated a new access-token signing key");
        Ok(key)
    }

    /// The key id: the RFC 7638 JWK thumbprint of the public key.
    #[must_use]
    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    /// The public half, which verifies this key's signatures.
    #[must_use]
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub(crate) const fn dalek(&self) -> &ed25519_dalek::SigningKey {
        &self.key
    }

    fn from_dalek(key: ed25519_dalek::SigningKey) -> Self {
        let public = PublicKey::from_dalek(key.verifying_key());
        Self { key, public }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid()).finish_non_exhaustive()
    }
}

/// An Ed25519 public key with its JWK `x` and `kid` computed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    key: ed25519_dalek::VerifyingKey,
    x: String,
    kid: String,
}

impl PublicKey {
    /// Parses an SPKI PEM (`-----BEGIN PUBLIC KEY-----`), for a retired key
    /// whose private half is gone.
    ///
    /// # Errors
    /// [`KeyError::InvalidPublicPem`] when it is not an Ed25519 SPKI PEM.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .map(Self::from_dalek)
            .map_err(|e| KeyError::InvalidPublicPem(e.to_string()))
    }

    /// The key id: the RFC 7638 JWK thumbprint.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWK `x` parameter: the raw public key, base64url without padding.
    #[must_use]
    pub fn x(&self) -> &str {
        &self.x
    }

    /// The raw 32-byte public key.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    fn from_dalek(key: ed25519_dalek::VerifyingKey) -> Self {
        let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
        let kid = jwk_thumbprint(&x);
        Self { key, x, kid }
    }
}

impl From<SigningKey> for PublicKey {
    fn from(key: SigningKey) -> Self {
        key.public
    }
}

impl From<&SigningKey> for PublicKey {
    fn from(key: &SigningKey) -> Self {
        key.public.clone()
    }
}

/// RFC 7638 §3: SHA-256 over the required members of the JWK in
/// lexicographic order with no whitespace (RFC 8037 §2 for OKP: crv, kty, x).
fn jwk_thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the signing key file is readable by other users; chmod 600 it");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let mut suffix = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut OsRng, &mut suffix);
        let dir = std::env::temp_dir().join(format!("gatehouse-crypto-{name}-{}", hex(&suffix)));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 7638 §3 (with RFC 8037 §2 members for OKP keys), computed here
    /// independently of the code under test.
    #[test]
    fn kid_is_the_rfc7638_jwk_thumbprint() {
        let key = SigningKey::generate();
        let x = URL_SAFE_NO_PAD.encode(key.dalek().verifying_key().as_bytes());
        let json = format!("{{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"{x}\"}}");
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes()));
        assert_eq!(key.kid(), expected);
        assert_eq!(key.public_key().x(), x);
        assert_eq!(key.kid().len(), 43, "base64url of 32 bytes, no padding");
    }

    /// RFC 8037 Appendix A.3: the thumbprint of the example Ed25519 key.
    #[test]
    fn kid_matches_the_rfc8037_test_vector() {
        assert_eq!(
            jwk_thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn pem_round_trip_keeps_the_key() {
        let key = SigningKey::generate();
        let pem = key.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(again.kid(), key.kid());
        assert_eq!(again.dalek().to_bytes(), key.dalek().to_bytes());
    }

    #[test]
    fn garbage_pem_is_refused() {
        assert!(matches!(SigningKey::from_pem("not a key"), Err(KeyError::InvalidPrivatePem(_))));
        assert!(matches!(PublicKey::from_pem("not a key"), Err(KeyError::InvalidPublicPem(_))));
    }

    #[test]
    fn public_key_reads_spki_pem() {
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        let key = SigningKey::generate();
        let pem = key.dalek().verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        let public = PublicKey::from_pem(&pem).unwrap();
        assert_eq!(&public, key.public_key());
    }

    /// OWASP ASVS 5.0 V13.3: secrets kept with least privilege.
    #[test]
    fn load_or_generate_creates_a_0600_file_and_reloads_the_same_key() {
        let dir = temp_dir("keygen");
        let path = dir.join("signing-key.pem");
        let first = SigningKey::load_or_generate(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = SigningKey::load_or_generate(&path).unwrap();
        assert_eq!(second.kid(), first.kid());
        assert_eq!(SigningKey::load(&path).unwrap().kid(), first.kid());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn load_errors_name_the_path() {
        let dir = temp_dir("keyerr");
        let missing = dir.join("missing.pem");
        let err = SigningKey::load(&missing).unwrap_err();
        assert!(matches!(err, KeyError::Read { .. }));
        assert!(err.to_string().contains("missing.pem"));

        let bad = dir.join("bad.pem");
        std::fs::write(&bad, "garbage").unwrap();
        let err = SigningKey::load_or_generate(&bad).unwrap_err();
        assert!(matches!(err, KeyError::InvalidFile { .. }));
        assert!(err.to_string().contains("bad.pem"));

        let unwritable = dir.join("no-such-dir").join("key.pem");
        let err = SigningKey::load_or_generate(&unwritable).unwrap_err();
        assert!(matches!(err, KeyError::Write { .. }));
        assert!(err.to_string().contains("key.pem"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn debug_shows_the_kid_not_the_key() {
        let key = SigningKey::generate();
        let debug = format!("{key:?}");
        assert!(debug.contains(key.kid()));
        assert!(!debug.contains(&hex(&key.dalek().to_bytes())));
    }
}
