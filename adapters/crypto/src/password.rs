//! Password hashing with argon2id (OWASP Password Storage Cheat Sheet:
//! m=19456 KiB, t=2, p=1), stored as PHC strings.
//!
//! New hashes are made from the password's NFKC form. Hashes stored before
//! passwords were normalised were made from the text as typed: when the NFKC
//! form does not match and the typed text differs from it, the typed text is
//! tried too, and a match that way reports `needs_rehash`, so the next login
//! stores an NFKC hash.
//!
//! Each hash takes tens of milliseconds of CPU and 19 MiB of memory, so it
//! runs on a fixed set of hashing threads ([`HashPool`]), each reusing one
//! argon2 memory block ([`Argon2Worker`]) at a lower scheduling priority
//! than the async workers that validate tokens, behind a bounded queue:
//! memory stays at `threads × m`, a login flood slows validation little,
//! and work past the queue is refused ([`HashError::Busy`]) instead of
//! waiting without bound.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash as Phc, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use gatehouse_application::ports::password::{HashError, PasswordCheck, PasswordHasher};
use gatehouse_domain::{Password, PasswordHash};
use rand_core::{OsRng, RngCore as _};

use crate::argon2_worker::Argon2Worker;
use crate::hash_pool::{Full, HashPool};

/// What an unknown account's login is checked against; the value is never
/// compared with anything that matters, only the work counts.
const DUMMY_PASSWORD: &[u8] = b"gatehouse dummy password: no account has it";

/// The argon2id adapter of [`PasswordHasher`].
#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    /// A hash made at construction with the current parameters, verified
    /// against when there is no account, so that costs a real check.
    dummy: Arc<str>,
    pool: Arc<HashPool<Argon2Worker>>,
}

impl Argon2Hasher {
    /// OWASP memory cost, KiB.
    pub const M_COST: u32 = 19_456;
    /// OWASP iterations.
    pub const T_COST: u32 = 2;
    /// OWASP parallelism.
    pub const P_COST: u32 = 1;

    /// The production hasher with the OWASP parameters: `threads` hashing
    /// threads (at least one) and up to `queue` hashes waiting for them.
    ///
    /// # Errors
    /// [`HashError::Failed`] when the OS refuses a thread.
    pub fn new(threads: usize, queue: usize) -> Result<Self, HashError> {
        // The OWASP numbers are argon2's own defaults, valid by construction.
        Self::build(Params::DEFAULT, threads, queue)
    }

    /// One hashing thread per available CPU, the usual choice.
    #[must_use]
    pub fn default_concurrency() -> usize {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    }

    /// A hasher with other argon2id parameters (cheap ones in tests, or a
    /// stronger policy). Hashes made with different parameters report
    /// `needs_rehash` when verified.
    ///
    /// # Errors
    /// [`HashError::Failed`] when argon2 refuses the parameters or the OS a thread.
    pub fn with_params(m_cost: u32, t_cost: u32, p_cost: u32, threads: usize, queue: usize) -> Result<Self, HashError> {
        let params = Params::new(m_cost, t_cost, p_cost, None).map_err(|e| HashError::Failed(Box::new(e)))?;
        Self::build(params, threads, queue)
    }

    fn build(params: Params, threads: usize, queue: usize) -> Result<Self, HashError> {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy = hash_with(&argon2, DUMMY_PASSWORD).unwrap_or_else(|e| {
            // Not expected with parameters argon2 accepted; a dummy with the
            // wrong parameters only weakens the timing disguise.
            tracing::error!(error = %e, "cannot compute the dummy password hash");
            FALLBACK_DUMMY.to_owned()
        });
        let pool = HashPool::start("argon2", threads, queue, move || Argon2Worker::new(argon2.clone()))
            .map_err(|e| HashError::Failed(Box::new(e)))?;
        Ok(Self { dummy: dummy.into(), pool: Arc::new(pool) })
    }

    /// Runs `work` on a hashing thread, or refuses at once when the threads
    /// and the queue are full. A caller that stops waiting before a thread
    /// takes its work costs no hash.
    async fn run<T, F>(&self, work: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Argon2Worker) -> T + Send + 'static,
    {
        let answer = self.pool.submit(work).map_err(|Full| HashError::Busy)?;
        answer.await.map_err(|e| HashError::Failed(Box::new(e)))
    }
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let password = password.clone();
        self.run(move |worker| worker.hash(password.expose().as_bytes()))
            .await?
            .map(PasswordHash::from_phc)
            .map_err(|e| HashError::Failed(Box::new(e)))
    }

    async fn verify(&self, password: &Password, hash: Option<&PasswordHash>) -> Result<PasswordCheck, HashError> {
        let password = password.clone();
        let stored = hash.map(|h| h.as_str().to_owned());
        let dummy = Arc::clone(&self.dummy);
        self.run(move |worker| check(worker, Forms::of(&password), stored.as_deref(), &dummy)).await
    }
}

/// A hash made the way argon2 makes it, allocating its memory: for the
/// dummy at start-up and for tests that make hashes of other kinds.
fn hash_with(argon2: &Argon2<'_>, password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)?;
    Ok(argon2.hash_password(password, &salt)?.to_string())
}

/// The texts a stored hash may have been made from.
#[derive(Clone, Copy)]
struct Forms<'a> {
    /// The NFKC form, what every new hash is made from.
    normalized: &'a [u8],
    /// The text as typed, when it is not NFKC: older hashes were made from it.
    as_received: Option<&'a [u8]>,
}

impl<'a> Forms<'a> {
    fn of(password: &'a Password) -> Self {
        Self { normalized: password.expose().as_bytes(), as_received: password.expose_as_received().map(str::as_bytes) }
    }

    /// How many argon2 hashes a check that does not match runs.
    fn count(self) -> usize {
        1 + usize::from(self.as_received.is_some())
    }
}

/// The blocking part of `verify`. A check that does not match runs one
/// argon2 hash per form, whether or not the account exists or its stored
/// hash can be read, so the time says nothing about the account (OWASP ASVS
/// 5.0 V6.3.8).
fn check(worker: &mut Argon2Worker, forms: Forms<'_>, stored: Option<&str>, dummy: &str) -> PasswordCheck {
    let Some(stored) = stored else {
        verify_dummy(worker, forms, dummy);
        return PasswordCheck::Mismatch;
    };
    let phc = match Phc::new(stored) {
        Ok(phc) => phc,
        Err(e) => {
            tracing::warn!(error = %e, "stored password hash is not a PHC string; treating as mismatch");
            verify_dummy(worker, forms, dummy);
            return PasswordCheck::Mismatch;
        }
    };
    // Verification uses the algorithm and parameters recorded in the hash.
    match verify_one(worker, forms.normalized, &phc) {
        Verified::Match => return PasswordCheck::Match { needs_rehash: needs_rehash(worker.argon2(), &phc) },
        Verified::Mismatch => {}
        Verified::Unverifiable => {
            verify_dummy(worker, forms, dummy);
            return PasswordCheck::Mismatch;
        }
    }
    match forms.as_received.map(|typed| verify_one(worker, typed, &phc)) {
        // Made before normalisation: store the NFKC form's hash from now on.
        Some(Verified::Match) => PasswordCheck::Match { needs_rehash: true },
        Some(Verified::Mismatch | Verified::Unverifiable) | None => PasswordCheck::Mismatch,
    }
}

enum Verified {
    Match,
    Mismatch,
    /// The stored hash cannot be checked at all (a broken or foreign PHC string).
    Unverifiable,
}

fn verify_one(worker: &mut Argon2Worker, password: &[u8], phc: &Phc<'_>) -> Verified {
    match worker.verify(password, phc) {
        Ok(()) => Verified::Match,
        Err(argon2::password_hash::Error::Password) => Verified::Mismatch,
        Err(e) => {
            tracing::warn!(error = %e, "stored password hash cannot be verified; treating as mismatch");
            Verified::Unverifiable
        }
    }
}

/// One dummy check per form: the cost of checking a real hash in vain.
fn verify_dummy(worker: &mut Argon2Worker, forms: Forms<'_>, dummy: &str) {
    if let Ok(phc) = Phc::new(dummy) {
        for _ in 0..forms.count() {
            // The answer is irrelevant: the work is the point.
            let _ = worker.verify(forms.normalized, &phc);
        }
    }
}

/// The stored hash was made with another algorithm, version or parameters
/// than the current policy (including the output length).
fn needs_rehash(argon2: &Argon2<'_>, phc: &Phc<'_>) -> bool {
    let current = argon2.params();
    let same_params = Params::try_from(phc).is_ok_and(|p| {
        p.m_cost() == current.m_cost()
            && p.t_cost() == current.t_cost()
            && p.p_cost() == current.p_cost()
            && p.output_len() == Some(current.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN))
    });
    phc.algorithm != Algorithm::Argon2id.ident() || phc.version != Some(Version::V0x13.into()) || !same_params
}

/// A real argon2id hash of [`DUMMY_PASSWORD`] with the OWASP parameters, used
/// only if the dummy hash cannot be computed at start-up.
const FALLBACK_DUMMY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$yUaspXi8TJ9SjxR2+O1iBw$cgo5ov2kct7hjMTfvGxbFvzy1jWlHljBf8ONZKpDQL0";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use argon2::password_hash::PasswordVerifier as _;

    use super::*;

    fn password(text: &str) -> Password {
        Password::new(text.to_owned()).unwrap()
    }

    /// One password with composed accents (NFC, also NFKC) and decomposed ones (NFD).
    const CREME_NFC: &str = "cr\u{e8}me br\u{fb}l\u{e9}e \u{e0} minuit";
    const CREME_NFD: &str = "cre\u{300}me bru\u{302}le\u{301}e a\u{300} minuit";

    /// Cheap parameters so most tests stay fast; the OWASP ones are covered once.
    fn cheap() -> Argon2Hasher {
        Argon2Hasher::with_params(64, 1, 1, 2, 16).unwrap()
    }

    /// What `cheap()` hashes with.
    fn cheap_argon2() -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(64, 1, 1, None).unwrap())
    }

    /// What `Argon2Hasher::new` hashes with.
    fn owasp_argon2() -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
    }

    /// OWASP ASVS 5.0 V11.4.2; OWASP Password Storage Cheat Sheet (argon2id, m=19 MiB, t=2, p=1).
    #[tokio::test]
    async fn owasp_hash_is_argon2id_phc_and_verifies() {
        let hasher = Argon2Hasher::new(2, 4).unwrap();
        let pw = password("correct horse battery staple");
        let hash = hasher.hash(&pw).await.unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", hash.as_str());
        let salt = Phc::new(hash.as_str()).unwrap().salt.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(salt.decode_b64(&mut buf).unwrap().len(), 16, "16-byte random salt");
        assert_eq!(hasher.verify(&pw, Some(&hash)).await.unwrap(), PasswordCheck::Match { needs_rehash: false });
    }

    #[tokio::test]
    async fn hashing_twice_uses_different_salts() {
        let hasher = cheap();
        let pw = password("correct horse battery staple");
        assert_ne!(hasher.hash(&pw).await.unwrap(), hasher.hash(&pw).await.unwrap());
    }

    #[tokio::test]
    async fn wrong_password_is_a_mismatch() {
        let hasher = cheap();
        let hash = hasher.hash(&password("correct horse battery staple")).await.unwrap();
        let check = hasher.verify(&password("correct horse battery stapler"), Some(&hash)).await.unwrap();
        assert_eq!(check, PasswordCheck::Mismatch);
    }

    /// OWASP ASVS 5.0 V6.3.8 (no account enumeration by timing): an unknown
    /// account is checked against a real hash with the current parameters.
    #[tokio::test]
    async fn unknown_account_is_a_mismatch_against_a_real_dummy_hash() {
        let hasher = Argon2Hasher::new(1, 4).unwrap();
        let dummy = Phc::new(&hasher.dummy).unwrap();
        assert_eq!(dummy.algorithm, Algorithm::Argon2id.ident());
        assert_eq!(Params::try_from(&dummy).unwrap().m_cost(), Argon2Hasher::M_COST);
        assert!(!needs_rehash(&owasp_argon2(), &dummy), "the dummy costs what a real check costs");
        let check = hasher.verify(&password("whatever password"), None).await.unwrap();
        assert_eq!(check, PasswordCheck::Mismatch);
        // Even the dummy's own password never matches an absent account.
        let dummy_pw = Password::candidate(String::from_utf8(DUMMY_PASSWORD.to_vec()).unwrap()).unwrap();
        assert_eq!(hasher.verify(&dummy_pw, None).await.unwrap(), PasswordCheck::Mismatch);
    }

    #[test]
    fn fallback_dummy_is_a_valid_owasp_argon2id_hash() {
        let phc = Phc::new(FALLBACK_DUMMY).unwrap();
        assert!(!needs_rehash(&owasp_argon2(), &phc));
        assert!(owasp_argon2().verify_password(DUMMY_PASSWORD, &phc).is_ok());
    }

    #[tokio::test]
    async fn hash_with_other_params_needs_rehash() {
        let old = cheap();
        let pw = password("correct horse battery staple");
        let hash = old.hash(&pw).await.unwrap();
        let current = Argon2Hasher::with_params(128, 1, 1, 2, 4).unwrap();
        assert_eq!(current.verify(&pw, Some(&hash)).await.unwrap(), PasswordCheck::Match { needs_rehash: true });
        assert_eq!(old.verify(&pw, Some(&hash)).await.unwrap(), PasswordCheck::Match { needs_rehash: false });
    }

    #[tokio::test]
    async fn argon2i_hash_verifies_but_needs_rehash() {
        let hasher = cheap();
        let pw = password("correct horse battery staple");
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::new(64, 1, 1, None).unwrap());
        let hash = PasswordHash::from_phc(hash_with(&argon2i, pw.expose().as_bytes()).unwrap());
        assert_eq!(hasher.verify(&pw, Some(&hash)).await.unwrap(), PasswordCheck::Match { needs_rehash: true });
    }

    #[tokio::test]
    async fn unparsable_stored_hash_is_a_mismatch_not_a_panic() {
        let hasher = cheap();
        let pw = password("correct horse battery staple");
        for junk in ["", "plaintext", "$2b$12$abcdefghijklmnopqrstuu", "$argon2id$v=19$m=x$$"] {
            let stored = PasswordHash::from_phc(junk.to_owned());
            assert_eq!(hasher.verify(&pw, Some(&stored)).await.unwrap(), PasswordCheck::Mismatch, "{junk}");
        }
    }

    /// NIST SP 800-63B-4 §3.1.1.2: the NFKC form is hashed, so the password
    /// typed with decomposed accents (NFD) matches one set with composed ones.
    #[tokio::test]
    async fn nfc_and_nfd_typings_match_one_nfkc_hash() {
        let hasher = cheap();
        let hash = hasher.hash(&password(CREME_NFC)).await.unwrap();
        let nfd = Password::candidate(CREME_NFD.to_owned()).unwrap();
        assert_eq!(hasher.verify(&nfd, Some(&hash)).await.unwrap(), PasswordCheck::Match { needs_rehash: false });
        // The hash is the NFKC text's, byte for byte.
        assert!(cheap_argon2().verify_password(CREME_NFC.as_bytes(), &Phc::new(hash.as_str()).unwrap()).is_ok());
    }

    /// A hash made from the text as typed, before passwords were normalised,
    /// still matches that text, and asks for a rehash so the NFKC one is stored.
    #[tokio::test]
    async fn a_hash_of_the_unnormalised_text_matches_and_needs_rehash() {
        let hasher = cheap();
        let legacy = PasswordHash::from_phc(hash_with(&cheap_argon2(), CREME_NFD.as_bytes()).unwrap());
        let nfd = Password::candidate(CREME_NFD.to_owned()).unwrap();
        assert_eq!(hasher.verify(&nfd, Some(&legacy)).await.unwrap(), PasswordCheck::Match { needs_rehash: true });
        let wrong = Password::candidate("cre\u{300}me bru\u{302}le\u{301}e a\u{300} midi".to_owned()).unwrap();
        assert_eq!(hasher.verify(&wrong, Some(&legacy)).await.unwrap(), PasswordCheck::Mismatch);
        let rehashed = hasher.hash(&nfd).await.unwrap();
        let nfc = Password::candidate(CREME_NFC.to_owned()).unwrap();
        assert_eq!(hasher.verify(&nfc, Some(&rehashed)).await.unwrap(), PasswordCheck::Match { needs_rehash: false });
    }

    /// OWASP ASVS 5.0 V6.3.8: a text that is not NFKC is checked twice
    /// against a real hash (both forms), so it is checked twice against the
    /// dummy too when there is no account, or no readable hash.
    #[test]
    fn every_mismatch_path_runs_one_hash_per_form() {
        let nfd = Password::candidate(CREME_NFD.to_owned()).unwrap();
        assert_eq!(Forms::of(&nfd).count(), 2);
        assert_eq!(Forms::of(&password(CREME_NFC)).count(), 1);
    }

    /// More concurrent logins than hashing threads: they wait in the queue
    /// and every one gets the right answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn more_concurrent_checks_than_threads_all_finish_correctly() {
        let hasher = Argon2Hasher::with_params(1024, 1, 1, 2, 30).unwrap();
        let right = password("correct horse battery staple");
        let stored = hasher.hash(&right).await.unwrap();
        let checks = (0..32).map(|n| {
            let (hasher, stored) = (hasher.clone(), stored.clone());
            let candidate = if n % 2 == 0 { right.clone() } else { password("correct horse battery stapler") };
            tokio::spawn(async move { (n, hasher.verify(&candidate, Some(&stored)).await.unwrap()) })
        });
        for check in checks.collect::<Vec<_>>() {
            let (n, outcome) = check.await.unwrap();
            let expected =
                if n % 2 == 0 { PasswordCheck::Match { needs_rehash: false } } else { PasswordCheck::Mismatch };
            assert_eq!(outcome, expected, "check {n}");
        }
    }

    /// OWASP ASVS 5.0 V15.2.2: past the threads and the queue, a hash is
    /// refused at once as busy (which Login answers RESOURCE_EXHAUSTED with
    /// RetryInfo), not queued without bound.
    #[tokio::test]
    async fn a_full_queue_is_busy_at_once() {
        let hasher = Argon2Hasher::with_params(64, 1, 1, 1, 1).unwrap();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let blocked = hasher.pool.submit(move |_| wait.recv().unwrap()).unwrap();
        let queued = hasher.pool.submit(|_| 7).unwrap();
        let pw = password("correct horse battery staple");
        assert!(matches!(hasher.hash(&pw).await, Err(HashError::Busy)));
        assert!(matches!(hasher.verify(&pw, None).await, Err(HashError::Busy)));
        release.send(()).unwrap();
        blocked.await.unwrap();
        assert_eq!(queued.await.unwrap(), 7);
        let hash = hasher.hash(&pw).await.unwrap();
        assert_eq!(hasher.verify(&pw, Some(&hash)).await.unwrap(), PasswordCheck::Match { needs_rehash: false });
    }

    #[test]
    fn default_concurrency_is_at_least_one() {
        assert!(Argon2Hasher::default_concurrency() >= 1);
    }

    #[test]
    fn invalid_params_are_refused() {
        assert!(Argon2Hasher::with_params(1, 1, 1, 1, 0).is_err());
    }
}
