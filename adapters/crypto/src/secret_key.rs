//! The 256-bit keys that seal secrets at rest, their ids, and the key file
//! that holds one: a single line `<key id> <base64 key>`.

use std::fmt;
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::{OsRng, RngCore as _};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// Bytes in a key.
pub(crate) const KEY_LEN: usize = 32;

/// A secret-sealing key could not be read, written or parsed.
#[derive(Debug, thiserror::Error)]
pub enum SecretKeyError {
    #[error("cannot read secret key file {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write secret key file {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("secret key file {} is not one line `<key id> <base64 32-byte key>`: {reason}", path.display())]
    InvalidFile { path: PathBuf, reason: String },
    #[error("not a base64 32-byte secret key: {0}")]
    InvalidKey(String),
}

/// A 256-bit XChaCha20-Poly1305 key and its id. `Debug` shows only the id;
/// the bytes are wiped when the value is dropped.
#[derive(Clone)]
pub struct SecretKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: String,
}

impl SecretKey {
    /// A fresh key from the OS CSPRNG.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(bytes.as_mut());
        Self::from_zeroizing(bytes)
    }

    /// A key from its raw bytes (for a key supplied by configuration).
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self::from_zeroizing(Zeroizing::new(bytes))
    }

    /// A key from standard base64 (with or without padding) of 32 bytes.
    ///
    /// # Errors
    /// [`SecretKeyError::InvalidKey`] when it is not base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, SecretKeyError> {
        let trimmed = text.trim().trim_end_matches('=');
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(trimmed)
                .map_err(|e| SecretKeyError::InvalidKey(e.to_string()))?,
        );
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        if decoded.len() != KEY_LEN {
            return Err(SecretKeyError::InvalidKey(format!("{} bytes, not {KEY_LEN}", decoded.len())));
        }
        bytes.copy_from_slice(&decoded);
        Ok(Self::from_zeroizing(bytes))
    }

    /// Reads the key from a key file that must exist. The id in the file
    /// must be the key's own id, which catches a mangled file.
    ///
    /// # Errors
    /// [`SecretKeyError::Read`] or [`SecretKeyError::InvalidFile`], naming the path.
    pub fn load(path: &Path) -> Result<Self, SecretKeyError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| SecretKeyError::Read { path: path.to_owned(), source })?,
        );
        warn_if_readable_by_others(path);
        Self::from_line(&text).map_err(|reason| SecretKeyError::InvalidFile { path: path.to_owned(), reason })
    }

    /// Reads the key from `path`, or, when there is no such file, generates
    /// one and writes it there with mode 0600. The file is created with
    /// `create_new`, so when two processes start at once one writes and the
    /// other reads the winner's key.
    ///
    /// # Errors
    /// [`SecretKeyError`] naming the path when it cannot be read, written or parsed.
    pub fn load_or_generate(path: &Path) -> Result<Self, SecretKeyError> {
        match Self::load(path) {
            Err(SecretKeyError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        let key = Self::generate();
        let line = key.to_line();
        let write_err = |source| SecretKeyError::Write { path: path.to_owned(), source };
        let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(file) => file,
            // Another process won the race: use its key.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Self::load(path),
            Err(e) => return Err(write_err(e)),
        };
        file.write_all(line.as_bytes()).map_err(write_err)?;
        file.sync_all().map_err(write_err)?;
        tracing::info!(path = %path.display(), key_id = key.id(), "generated a new secret-sealing key");
        Ok(key)
    }

    /// The key id: lowercase hex of the first 8 bytes of SHA-256 of the key.
    /// It names the key in every sealed value; it reveals nothing useful
    /// about the key.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// The key file's content: `<key id> <base64 key>` and a newline.
    fn to_line(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{} {}\n", self.id, STANDARD.encode(self.bytes.as_ref())))
    }

    fn from_line(text: &str) -> Result<Self, String> {
        let mut parts = text.split_whitespace();
        let (Some(id), Some(key), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err("expected exactly a key id and a key".to_owned());
        };
        let key = Self::from_base64(key).map_err(|e| e.to_string())?;
        if key.id != id {
            return Err(format!("the key id {id} does not match the key (its id is {})", key.id));
        }
        Ok(key)
    }

    fn from_zeroizing(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let digest = Sha256::digest(bytes.as_ref());
        let id = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Self { bytes, id }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey").field("id", &self.id).finish_non_exhaustive()
    }
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the secret key file is readable by other users; chmod 600 it");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let mut suffix = [0u8; 8];
        OsRng.fill_bytes(&mut suffix);
        let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("gatehouse-crypto-{name}-{hex}"));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn id_is_hex_of_the_first_8_bytes_of_sha256() {
        let key = SecretKey::from_bytes([0u8; KEY_LEN]);
        // SHA-256 of 32 zero bytes starts 66687aadf862bd77.
        assert_eq!(key.id(), "66687aadf862bd77");
        let random = SecretKey::generate();
        assert_eq!(random.id().len(), 16);
        assert!(random.id().bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(random.id(), SecretKey::generate().id());
    }

    #[test]
    fn base64_round_trip_keeps_the_key() {
        let key = SecretKey::generate();
        let again = SecretKey::from_base64(&STANDARD.encode(key.bytes())).unwrap();
        assert_eq!(again.bytes(), key.bytes());
        assert_eq!(again.id(), key.id());
        assert!(matches!(SecretKey::from_base64("c2hvcnQ="), Err(SecretKeyError::InvalidKey(_))));
        assert!(matches!(SecretKey::from_base64("not base64!"), Err(SecretKeyError::InvalidKey(_))));
    }

    /// OWASP ASVS 5.0 V13.3: secrets kept with least privilege.
    #[test]
    fn load_or_generate_creates_a_0600_file_and_reloads_the_same_key() {
        let dir = temp_dir("secretkey");
        let path = dir.join("mfa.key");
        let first = SecretKey::load_or_generate(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&format!("{} ", first.id())), "{}", first.id());
        let second = SecretKey::load_or_generate(&path).unwrap();
        assert_eq!(second.id(), first.id());
        assert_eq!(second.bytes(), first.bytes());
        assert_eq!(SecretKey::load(&path).unwrap().bytes(), first.bytes());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn load_errors_name_the_path() {
        let dir = temp_dir("secretkeyerr");
        let missing = dir.join("missing.key");
        let err = SecretKey::load(&missing).unwrap_err();
        assert!(matches!(err, SecretKeyError::Read { .. }));
        assert!(err.to_string().contains("missing.key"));

        let bad = dir.join("bad.key");
        std::fs::write(&bad, "garbage").unwrap();
        let err = SecretKey::load_or_generate(&bad).unwrap_err();
        assert!(matches!(err, SecretKeyError::InvalidFile { .. }));
        assert!(err.to_string().contains("bad.key"), "{err}");

        let wrong_id = dir.join("wrong-id.key");
        let key = SecretKey::generate();
        std::fs::write(&wrong_id, format!("0000000000000000 {}\n", STANDARD.encode(key.bytes()))).unwrap();
        let err = SecretKey::load(&wrong_id).unwrap_err();
        assert!(matches!(err, SecretKeyError::InvalidFile { .. }));
        assert!(err.to_string().contains("wrong-id.key"), "{err}");

        let unwritable = dir.join("no-such-dir").join("mfa.key");
        let err = SecretKey::load_or_generate(&unwritable).unwrap_err();
        assert!(matches!(err, SecretKeyError::Write { .. }));
        assert!(err.to_string().contains("mfa.key"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn debug_shows_the_id_not_the_key() {
        let key = SecretKey::generate();
        let debug = format!("{key:?}");
        assert!(debug.contains(key.id()));
        assert!(!debug.contains(&STANDARD.encode(key.bytes())));
        let hex: String = key.bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!debug.contains(&hex));
    }
}
