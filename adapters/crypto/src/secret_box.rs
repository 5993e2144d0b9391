//! Secrets at rest (TOTP secrets) sealed with XChaCha20-Poly1305.
//!
//! A sealed value is `nonce (24 bytes) || ciphertext || tag (16 bytes)`
//! with the sealing key's id beside it. The nonce is random per seal (192
//! bits, so random nonces never realistically repeat), and the key id is the
//! associated data: a value cannot be made to open under another key by
//! editing its key id.

use std::collections::HashMap;
use std::fmt;

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use gatehouse_application::ports::mfa::{SealError, SecretBox};
use gatehouse_domain::SealedSecret;
use rand_core::{OsRng, RngCore as _};

use crate::secret_key::SecretKey;

/// Bytes in an XChaCha20 nonce.
const NONCE_LEN: usize = 24;
/// Bytes in a Poly1305 tag.
const TAG_LEN: usize = 16;

/// [`SecretBox`] with XChaCha20-Poly1305: seals with the current key and
/// opens with whichever key, current or previous, a value names. `Debug`
/// shows only key ids.
pub struct AeadSecretBox {
    current: String,
    ciphers: HashMap<String, XChaCha20Poly1305>,
}

impl AeadSecretBox {
    /// Seals with `current`; opens values sealed with `current` or any of
    /// `previous` (keys being rotated out).
    #[must_use]
    pub fn new(current: SecretKey, previous: Vec<SecretKey>) -> Self {
        let cipher = |key: &SecretKey| XChaCha20Poly1305::new(&Key::from(*key.bytes()));
        let mut ciphers: HashMap<String, XChaCha20Poly1305> =
            previous.iter().map(|key| (key.id().to_owned(), cipher(key))).collect();
        ciphers.insert(current.id().to_owned(), cipher(&current));
        Self { current: current.id().to_owned(), ciphers }
    }

    /// The id of the key that seals.
    #[must_use]
    pub fn current_key_id(&self) -> &str {
        &self.current
    }
}

impl SecretBox for AeadSecretBox {
    fn seal(&self, plaintext: &[u8]) -> Result<SealedSecret, SealError> {
        let cipher = self.ciphers.get(&self.current).ok_or_else(|| SealError("the current key is missing".into()))?;
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: self.current.as_bytes() })
            .map_err(|_| SealError("encryption failed".into()))?;
        let mut data = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        data.extend_from_slice(&nonce);
        data.extend_from_slice(&ciphertext);
        Ok(SealedSecret { key_id: self.current.clone(), data })
    }

    fn open(&self, sealed: &SealedSecret) -> Result<Vec<u8>, SealError> {
        let cipher = self
            .ciphers
            .get(&sealed.key_id)
            .ok_or_else(|| SealError(format!("unknown key id {:?}", sealed.key_id).into()))?;
        let too_short = || SealError(format!("sealed data is too short ({} bytes)", sealed.data.len()).into());
        if sealed.data.len() < NONCE_LEN + TAG_LEN {
            return Err(too_short());
        }
        let (nonce, ciphertext) = sealed.data.split_first_chunk::<NONCE_LEN>().ok_or_else(too_short)?;
        cipher
            .decrypt(&XNonce::from(*nonce), Payload { msg: ciphertext, aad: sealed.key_id.as_bytes() })
            .map_err(|_| SealError(format!("sealed data failed authentication under key {}", sealed.key_id).into()))
    }
}

impl fmt::Debug for AeadSecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&str> = self.ciphers.keys().map(String::as_str).collect();
        ids.sort_unstable();
        f.debug_struct("AeadSecretBox").field("current", &self.current).field("key_ids", &ids).finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"twenty byte secret!!";

    #[test]
    fn seal_then_open_round_trips() {
        let key = SecretKey::generate();
        let sealed_box = AeadSecretBox::new(key.clone(), vec![]);
        let sealed = sealed_box.seal(SECRET).unwrap();
        assert_eq!(sealed.key_id, key.id());
        assert_eq!(sealed.data.len(), NONCE_LEN + SECRET.len() + TAG_LEN);
        assert!(!sealed.data.windows(SECRET.len()).any(|w| w == SECRET), "no plaintext in the sealed data");
        assert_eq!(sealed_box.open(&sealed).unwrap(), SECRET);
    }

    #[test]
    fn sealing_twice_uses_fresh_nonces() {
        let sealed_box = AeadSecretBox::new(SecretKey::generate(), vec![]);
        let a = sealed_box.seal(SECRET).unwrap();
        let b = sealed_box.seal(SECRET).unwrap();
        assert_ne!(a.data[..NONCE_LEN], b.data[..NONCE_LEN]);
        assert_ne!(a.data, b.data);
    }

    #[test]
    fn tampered_data_is_refused() {
        let sealed_box = AeadSecretBox::new(SecretKey::generate(), vec![]);
        let sealed = sealed_box.seal(SECRET).unwrap();
        for i in [0, NONCE_LEN, sealed.data.len() - 1] {
            let mut tampered = sealed.clone();
            tampered.data[i] ^= 0x01;
            assert!(sealed_box.open(&tampered).is_err(), "byte {i} flipped");
        }
        let mut short = sealed.clone();
        short.data.truncate(NONCE_LEN + TAG_LEN - 1);
        assert!(sealed_box.open(&short).is_err());
        let mut empty = sealed;
        empty.data.clear();
        assert!(sealed_box.open(&empty).is_err());
    }

    #[test]
    fn value_sealed_with_a_previous_key_opens_after_rotation() {
        let old = SecretKey::generate();
        let sealed = AeadSecretBox::new(old.clone(), vec![]).seal(SECRET).unwrap();
        let new = SecretKey::generate();
        let rotated = AeadSecretBox::new(new.clone(), vec![old]);
        assert_eq!(rotated.open(&sealed).unwrap(), SECRET);
        let resealed = rotated.seal(SECRET).unwrap();
        assert_eq!(resealed.key_id, new.id());
        assert_eq!(rotated.current_key_id(), new.id());
    }

    #[test]
    fn unknown_key_id_is_refused() {
        let sealed = AeadSecretBox::new(SecretKey::generate(), vec![]).seal(SECRET).unwrap();
        let other = AeadSecretBox::new(SecretKey::generate(), vec![]);
        let err = other.open(&sealed).unwrap_err();
        assert!(err.0.to_string().contains("unknown key id"), "{err:?}");
    }

    /// The key id is authenticated: relabelling a value to another known
    /// key fails even though that key exists.
    #[test]
    fn relabelled_key_id_is_refused() {
        let a = SecretKey::generate();
        let b = SecretKey::generate();
        let sealed_box = AeadSecretBox::new(a, vec![b.clone()]);
        let mut sealed = sealed_box.seal(SECRET).unwrap();
        sealed.key_id = b.id().to_owned();
        assert!(sealed_box.open(&sealed).is_err());
    }

    /// Even with the same key bytes, a value opens only under the id it was sealed with.
    #[test]
    fn key_id_is_the_associated_data() {
        let key = SecretKey::generate();
        let cipher = XChaCha20Poly1305::new(&Key::from(*key.bytes()));
        let sealed = AeadSecretBox::new(key, vec![]).seal(SECRET).unwrap();
        let (nonce, ciphertext) = sealed.data.split_first_chunk::<NONCE_LEN>().unwrap();
        let open = |aad: &[u8]| cipher.decrypt(&XNonce::from(*nonce), Payload { msg: ciphertext, aad });
        assert_eq!(open(sealed.key_id.as_bytes()).unwrap(), SECRET);
        assert!(open(b"").is_err());
    }

    #[test]
    fn debug_shows_key_ids_not_keys() {
        let key = SecretKey::generate();
        let hex: String = key.bytes().iter().map(|b| format!("{b:02x}")).collect();
        let debug = format!("{:?}", AeadSecretBox::new(key.clone(), vec![]));
        assert!(debug.contains(key.id()), "{debug}");
        assert!(!debug.contains(&hex));
    }
}
