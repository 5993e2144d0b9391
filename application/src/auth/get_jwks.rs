//! GetJwks: the public keys that verify Gatehouse access tokens.

use std::sync::Arc;

use crate::ports::tokens::{AccessTokenVerifier, PublicJwk};

/// Publishes the verification keys.
#[derive(Clone)]
pub struct GetJwks {
    verifier: Arc<dyn AccessTokenVerifier>,
}

impl std::fmt::Debug for GetJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetJwks").finish_non_exhaustive()
    }
}

impl GetJwks {
    #[must_use]
    pub fn new(verifier: Arc<dyn AccessTokenVerifier>) -> Self {
        Self { verifier }
    }

    /// The current key and any still-valid previous keys.
    #[must_use]
    pub fn execute(&self) -> Vec<PublicJwk> {
        self.verifier.public_keys()
    }
}
