//! GetJwks: the public keys that verify Gatehouse access tokens.

use std::sync::Arc;

use crate::ports::tokens::{AccessTokenVerifier, PublicJwk};

/// Publishes the verification keys.
#[derive(Clone, Debug)]
pub struct GetJwks {
    verifier: Arc<dyn AccessTokenVerifier>,
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
