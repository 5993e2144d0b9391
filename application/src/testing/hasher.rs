//! A transparent password hasher.

use super::*;

/// A transparent "hash" (`fake2$<password>`, of the NFKC form) that counts
/// its verifications. A stored `fake1$…` hash matches but asks for a rehash,
/// and so does one made from the text as typed when that is not NFKC (as
/// hashes were before passwords were normalised), like the argon2 adapter.
#[derive(Debug, Default)]
pub struct FakeHasher {
    pub verifications: AtomicUsize,
    /// Answers every call [`HashError::Busy`] while set, as a full hashing queue does.
    pub busy: AtomicBool,
}

#[async_trait]
impl PasswordHasher for FakeHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        if self.busy.load(Ordering::Relaxed) {
            return Err(HashError::Busy);
        }
        Ok(PasswordHash::from_phc(format!("fake2${}", password.expose())))
    }

    async fn verify(&self, password: &Password, hash: Option<&PasswordHash>) -> Result<PasswordCheck, HashError> {
        if self.busy.load(Ordering::Relaxed) {
            return Err(HashError::Busy);
        }
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let Some(hash) = hash else { return Ok(PasswordCheck::Mismatch) };
        let (version, stored) = hash.as_str().split_once('$').unwrap_or_default();
        Ok(if stored == password.expose() {
            PasswordCheck::Match { needs_rehash: version != "fake2" }
        } else if password.expose_as_received() == Some(stored) {
            PasswordCheck::Match { needs_rehash: true }
        } else {
            PasswordCheck::Mismatch
        })
    }
}
