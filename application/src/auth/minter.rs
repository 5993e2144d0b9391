//! Minting token pairs: the part of login and refresh that is the same.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gatehouse_domain::{AccessClaims, RefreshToken, Role, Secret, Session, TokenHash, TokenId, TokenPair};

use crate::error::AppError;
use crate::ids::new_uuid_v7;
use crate::ports::clock::Clock;
use crate::ports::random::RandomSource;
use crate::ports::store::NewRefreshToken;
use crate::ports::tokens::AccessTokenSigner;
use crate::secrets::{has_token_shape, hash_secret, new_token};
use crate::settings::TokenSettings;

/// Makes refresh tokens and signed access tokens for a session.
#[derive(Clone, Debug)]
pub struct TokenMinter {
    signer: Arc<dyn AccessTokenSigner>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
    settings: TokenSettings,
}

impl TokenMinter {
    #[must_use]
    pub fn new(
        signer: Arc<dyn AccessTokenSigner>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
        settings: TokenSettings,
    ) -> Self {
        Self { signer, clock, rng, settings }
    }

    /// The clock the minter stamps tokens with.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The random source ids are made from.
    #[must_use]
    pub fn rng(&self) -> &dyn RandomSource {
        self.rng.as_ref()
    }

    /// The token lifetimes in force.
    #[must_use]
    pub const fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// A fresh refresh token and the record to store for it.
    #[must_use]
    pub fn new_refresh_token(&self, now: DateTime<Utc>) -> (RefreshToken, NewRefreshToken) {
        let token = RefreshToken::new(new_token(RefreshToken::PREFIX, self.rng.as_ref()));
        let record = NewRefreshToken {
            hash: hash_refresh_token(&token),
            issued_at: now,
            expires_at: now + self.settings.refresh_ttl,
        };
        (token, record)
    }

    /// Signs an access token for `session` and pairs it with `refresh`; a
    /// session scoped to an organization carries `role` (the member's) too.
    ///
    /// # Errors
    /// [`AppError::Internal`] when the signer fails.
    pub fn token_pair(
        &self,
        session: &Session,
        role: Option<&Role>,
        refresh: RefreshToken,
        refresh_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<TokenPair, AppError> {
        let claims = AccessClaims {
            user_id: session.user_id(),
            session_id: session.id(),
            token_id: TokenId::from_uuid(new_uuid_v7(now, self.rng.as_ref())),
            issued_at: now,
            expires_at: now + self.settings.access_ttl,
            organization_id: session.organization().map(|o| o.to_string()),
            scopes: Vec::new(),
            role: role.map(|r| r.name.to_string()),
            permissions: role.map(|r| r.permissions.iter().map(ToString::to_string).collect()).unwrap_or_default(),
        };
        let access = self.signer.sign(&claims)?;
        Ok(TokenPair {
            access_token: Secret::new(access),
            access_token_expires_at: claims.expires_at,
            refresh_token: refresh,
            refresh_token_expires_at: refresh_expires_at,
            session_id: session.id(),
            user_id: session.user_id(),
        })
    }
}

/// Whether `token` has the shape of a refresh token we issue; a cheap filter
/// before any storage look-up.
#[must_use]
pub fn looks_like_refresh_token(token: &RefreshToken) -> bool {
    has_token_shape(token.expose(), RefreshToken::PREFIX)
}

/// The stored form of a refresh token: SHA-256 of its text.
#[must_use]
pub fn hash_refresh_token(token: &RefreshToken) -> TokenHash {
    hash_secret(token.expose())
}
