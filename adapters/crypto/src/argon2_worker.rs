//! argon2 on one hashing thread, with its working memory kept from one hash
//! to the next.
//!
//! `Argon2::hash_password` and `verify_password` allocate `m_cost` KiB per
//! call and free them; with glibc each thread's arena then keeps those pages,
//! so memory grows with every thread that ever hashed. A worker allocates
//! its blocks once, on its first hash, and reuses them: the process holds
//! `threads × m_cost` KiB, whatever the load. The PHC strings are the ones
//! `hash_password` makes, byte for byte (a test holds them equal), and
//! verification is `verify_password`'s, including its constant-time
//! comparison.

use argon2::password_hash::{Error, Output, PasswordHash as Phc, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand_core::{OsRng, RngCore as _};

/// One thread's argon2 with the current parameters, and its memory.
pub(crate) struct Argon2Worker {
    argon2: Argon2<'static>,
    /// Allocated on first use, `argon2`'s block count long.
    blocks: Vec<Block>,
}

impl Argon2Worker {
    pub(crate) fn new(argon2: Argon2<'static>) -> Self {
        Self { argon2, blocks: Vec::new() }
    }

    /// A new PHC string of `password`, with a fresh 16-byte random salt.
    pub(crate) fn hash(&mut self, password: &[u8]) -> Result<String, Error> {
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        self.hash_with_salt(password, &SaltString::encode_b64(&salt)?)
    }

    /// What `Argon2::hash_password(password, salt)` returns, as a string.
    pub(crate) fn hash_with_salt(&mut self, password: &[u8], salt: &SaltString) -> Result<String, Error> {
        let salt = salt.as_salt();
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
        let params = self.argon2.params().clone();
        let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let argon2 = &self.argon2;
        let blocks = memory(&mut self.blocks, params.block_count());
        let output = Output::init_with(output_len, |out| {
            Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, blocks)?)
        })?;
        let phc = Phc {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: (&params).try_into()?,
            salt: Some(salt),
            hash: Some(output),
        };
        Ok(phc.to_string())
    }

    /// `Argon2::verify_password`: `Ok` when `password` matches, else
    /// [`Error::Password`], or another error when the hash cannot be
    /// checked. The hash's own algorithm, version and parameters are used;
    /// one that needs more memory than the current policy gets a buffer
    /// of its own for this check, so the kept memory stays bounded.
    pub(crate) fn verify(&mut self, password: &[u8], phc: &Phc<'_>) -> Result<(), Error> {
        let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else { return Err(Error::Password) };
        let algorithm = Algorithm::try_from(phc.algorithm)?;
        let version = phc.version.map(Version::try_from).transpose()?.unwrap_or_default();
        let params = Params::try_from(phc)?;
        let needed = params.block_count();
        let argon2 = Argon2::new(algorithm, version, params);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
        let mut one_off = Vec::new();
        let blocks = if needed <= self.argon2.params().block_count() {
            memory(&mut self.blocks, needed)
        } else {
            memory(&mut one_off, needed)
        };
        let computed = Output::init_with(expected.len(), |out| {
            Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, blocks)?)
        })?;
        // `Output`'s equality is constant-time.
        if computed == *expected { Ok(()) } else { Err(Error::Password) }
    }

    /// The parameters new hashes are made with.
    pub(crate) fn argon2(&self) -> &Argon2<'static> {
        &self.argon2
    }
}

/// The first `n` blocks of `kept`, grown (once) if it is shorter. argon2
/// overwrites every block before reading it, so what an earlier hash left
/// there does not matter.
fn memory(kept: &mut Vec<Block>, n: usize) -> &mut [Block] {
    if kept.len() < n {
        kept.resize(n, Block::default());
    }
    &mut kept[..n]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    fn owasp() -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
    }

    /// Existing hashes keep verifying and new ones look exactly as before:
    /// the same PHC string as `hash_password` for the same salt.
    #[test]
    fn the_phc_string_is_the_one_hash_password_makes() {
        let mut worker = Argon2Worker::new(owasp());
        for (password, salt) in
            [(&b"correct horse battery"[..], "c2FsdHNhbHRzYWx0c2FsdA"), (b"", "AAAAAAAAAAAAAAAAAAAAAA")]
        {
            let salt = SaltString::from_b64(salt).unwrap();
            let expected = owasp().hash_password(password, &salt).unwrap().to_string();
            assert_eq!(worker.hash_with_salt(password, &salt).unwrap(), expected);
            // Twice on the same memory: nothing left over changes the answer.
            assert_eq!(worker.hash_with_salt(password, &salt).unwrap(), expected);
        }
    }

    #[test]
    fn it_verifies_what_argon2_made_and_refuses_a_wrong_password() {
        let mut worker = Argon2Worker::new(owasp());
        let salt = SaltString::generate(&mut OsRng);
        let stored = owasp().hash_password(b"correct horse battery", &salt).unwrap();
        assert_eq!(worker.verify(b"correct horse battery", &stored), Ok(()));
        assert_eq!(worker.verify(b"correct horse batterY", &stored), Err(Error::Password));
        // And argon2 verifies what the worker made.
        let made = worker.hash(b"correct horse battery").unwrap();
        assert!(owasp().verify_password(b"correct horse battery", &Phc::new(&made).unwrap()).is_ok());
        assert_eq!(worker.blocks.len(), Params::DEFAULT.block_count(), "one block set, kept");
    }

    #[test]
    fn other_algorithms_and_larger_parameters_verify_without_growing_the_kept_memory() {
        let mut worker =
            Argon2Worker::new(Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(64, 1, 1, None).unwrap()));
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x10, Params::new(256, 2, 1, Some(24)).unwrap());
        let salt = SaltString::generate(&mut OsRng);
        let stored = argon2i.hash_password(b"legacy", &salt).unwrap();
        assert_eq!(worker.verify(b"legacy", &stored), Ok(()));
        assert_eq!(worker.verify(b"legacY", &stored), Err(Error::Password));
        assert!(worker.blocks.len() <= 64, "the larger buffer was not kept");
    }
}
