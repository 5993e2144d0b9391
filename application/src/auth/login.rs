//! Login: email + password → a new session and its token pair.
//!
//! Unknown email and wrong password give the same error and cost the same
//! argon2 work (the hasher verifies against a dummy hash when there is no
//! account), so neither the answer nor its timing reveals whether an address
//! has an account (OWASP ASVS 5.0 V6.3.8).
//!
//! Every attempt passes the [`Throttle`] first, before any argon2 work, and
//! is counted the same way for an unknown address as for a known one; a
//! refused attempt answers `RESOURCE_EXHAUSTED` whatever the password.

use std::sync::Arc;

use gatehouse_domain::{
    ClientInfo, EmailAddress, Event, OrganizationId, Password, Session, SessionId, TokenPair, UserId, describe_device,
};

use crate::auth::minter::TokenMinter;
use crate::error::AppError;
use crate::events::{Audit, EventFactory};
use crate::ids::new_uuid_v7;
use crate::mfa::{ChallengeView, MfaGate};
use crate::organizations::{lock_for, member_role};
use crate::ports::organizations::OrganizationReads;
use crate::ports::password::{PasswordCheck, PasswordHasher};
use crate::ports::store::{SessionRepository, UserRepository};
use crate::ports::unit_of_work::UnitOfWorkFactory;
use crate::throttle::{LoginGate, LoginSubject, Throttle, limited};

/// What a successful password check leads to.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// No second factor: the session is open.
    Tokens(TokenPair),
    /// A second factor is needed first (`SendMfaCode`, `VerifyMfa`).
    MfaRequired(ChallengeView),
}

/// What opening a session needs: where to store it, and how to tell the
/// user about a new device.
#[derive(Clone, Debug)]
pub struct SessionOpener {
    pub sessions: Arc<dyn SessionRepository>,
    /// Where an organization-scoped session's membership is read.
    pub organizations: Arc<dyn OrganizationReads>,
    pub uow: Arc<dyn UnitOfWorkFactory>,
    pub users: Arc<dyn UserRepository>,
    pub events: EventFactory,
}

/// Opens a session for `user` and mints its first token pair: the end of a
/// login, with or without a second factor. A login from a device (IP address
/// and user agent) the account has not used before sends `email.login_notice`
/// to the primary address, in the same transaction as the new session.
pub(crate) async fn open_session(
    opener: &SessionOpener,
    minter: &TokenMinter,
    user: UserId,
    client: ClientInfo,
    second_factor: Option<&str>,
    organization: Option<OrganizationId>,
) -> Result<TokenPair, AppError> {
    let now = minter.now();
    let (refresh, mut record) = minter.new_refresh_token(now);
    let absolute_expires_at = now + minter.settings().session_lifetime;
    let login = Audit::by("login.succeeded", user).client(&client);
    let login = if let Some(factor) = second_factor { login.detail("second_factor", factor) } else { login };
    let mut outbox = vec![opener.events.audit(now, login)];
    if !opener.sessions.seen_device(user, &client).await? {
        let primary = opener.users.get(user).await?.and_then(|a| a.primary_email().map(|e| e.email.clone()));
        primary
            .map(|email| {
                let device = describe_device(client.user_agent.as_deref());
                opener
                    .events
                    .message(now, Event::LoginNotice { user_id: user, email, ip: client.ip.clone(), device, at: now })
            })
            .into_iter()
            .for_each(|m| outbox.push(m));
    }
    let id = SessionId::from_uuid(new_uuid_v7(now, minter.rng()));
    let session =
        Session::open(id, user, client, now, record.expires_at, absolute_expires_at).with_organization(organization);
    // The first refresh token ends with the session.
    record.expires_at = session.expires_at();
    let mut uow = opener.uow.begin().await?;
    // A member only, and the token then carries the member's role: read
    // under the organization's lock (after the account's, the order every
    // unit of work on an account takes), so a removal from the organization
    // either comes first and this login is refused, or comes after and
    // ends this session with the member's others.
    let role = match organization {
        Some(org) => {
            uow.accounts().lock(user).await?.ok_or(AppError::InvalidCredentials)?;
            Some(lock_for(uow.as_ref(), org, user).await?.role)
        }
        None => None,
    };
    uow.sessions().insert(&session, &record).await?;
    uow.add_messages(outbox);
    uow.commit().await?;
    tracing::info!(user_id = %session.user_id(), session_id = %session.id(), "login succeeded");
    minter.token_pair(&session, role.as_ref(), refresh, record.expires_at, now)
}

/// Input of [`Login`].
#[derive(Debug, Clone)]
pub struct LoginCommand {
    pub email: EmailAddress,
    pub password: Password,
    pub client: ClientInfo,
    /// The organization the session's tokens are for, if any (a member only).
    pub organization: Option<OrganizationId>,
}

/// Signs users in.
#[derive(Clone, Debug)]
pub struct Login {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    minter: TokenMinter,
    require_verified_email: bool,
    mfa: MfaGate,
    opener: SessionOpener,
    throttle: Throttle,
}

impl Login {
    #[must_use]
    pub fn new(
        users: Arc<dyn UserRepository>,
        hasher: Arc<dyn PasswordHasher>,
        minter: TokenMinter,
        require_verified_email: bool,
        mfa: MfaGate,
        opener: SessionOpener,
        throttle: Throttle,
    ) -> Self {
        Self { users, hasher, minter, require_verified_email, mfa, opener, throttle }
    }

    /// Checks the credentials and opens a session.
    ///
    /// # Errors
    /// [`AppError::InvalidCredentials`] for an unknown email or a wrong
    /// password; [`AppError::EmailNotVerified`] (only after the password
    /// matched, so it reveals nothing to a guesser) for an unverified address;
    /// [`AppError::RateLimited`] past a login limit, before the password is
    /// looked at; `UNAVAILABLE` when the limiter cannot be asked;
    /// [`AppError::Busy`] when every hashing thread is busy and the queue in
    /// front of them full (not counted as a failure: nothing was checked).
    pub async fn execute(&self, cmd: LoginCommand) -> Result<LoginOutcome, AppError> {
        let credentials = self.users.find_credentials(&cmd.email).await?;
        let subject =
            credentials.as_ref().map_or(LoginSubject::Unknown(&cmd.email), |c| LoginSubject::Account(c.user_id));
        let attempt = match self.throttle.login(subject, cmd.client.ip.as_deref()).await? {
            LoginGate::Go(attempt) => attempt,
            LoginGate::Refused { retry_after, account_ceiling } => {
                tracing::info!(account_ceiling, "login refused: throttled");
                if let (true, Some(c)) = (account_ceiling, &credentials) {
                    self.notify_ceiling(c.user_id, &cmd.client, retry_after).await?;
                }
                return Err(limited(retry_after));
            }
        };
        let check = match self.hasher.verify(&cmd.password, credentials.as_ref().map(|c| &c.password_hash)).await {
            Ok(check) => check,
            Err(error) => {
                // Nothing was checked (a full hashing queue, say), so it was no guess.
                self.throttle.login_unchecked(attempt).await;
                return Err(error.into());
            }
        };
        let (Some(credentials), PasswordCheck::Match { needs_rehash }) = (credentials.clone(), check) else {
            tracing::info!("login refused: invalid credentials");
            // OWASP ASVS 5.0 V16.3.1: failed authentications are logged; the
            // row names the account only when it exists, and never the password.
            let mut audit =
                Audit::of("login.failed").failure().client(&cmd.client).detail("reason", "invalid_credentials");
            if let Some(c) = credentials {
                audit = audit.subject(c.user_id);
            }
            self.opener.events.record(self.minter.now(), audit).await?;
            return Err(AppError::InvalidCredentials);
        };
        // The password is right: whatever follows, this was not guessing.
        self.throttle.login_succeeded(attempt).await;
        if self.require_verified_email && !credentials.email_verified {
            tracing::info!(user_id = %credentials.user_id, "login refused: email not verified");
            let audit = Audit::of("login.failed").failure().subject(credentials.user_id).client(&cmd.client);
            self.opener.events.record(self.minter.now(), audit.detail("reason", "email_not_verified")).await?;
            return Err(AppError::EmailNotVerified);
        }
        if needs_rehash {
            self.upgrade_hash(&cmd.password, credentials.user_id).await;
        }

        if let Some(org) = cmd.organization {
            // Refused before a challenge is opened; VerifyMfa checks again.
            member_role(self.opener.organizations.as_ref(), org, credentials.user_id).await?;
        }
        let now = self.minter.now();
        if let Some(challenge) = self.mfa.challenge(credentials.user_id, cmd.client.clone(), now).await? {
            tracing::info!(user_id = %credentials.user_id, "password accepted; second factor required");
            return Ok(LoginOutcome::MfaRequired(challenge));
        }
        let pair =
            open_session(&self.opener, &self.minter, credentials.user_id, cmd.client, None, cmd.organization).await?;
        Ok(LoginOutcome::Tokens(pair))
    }

    /// Emails the owner, once per throttling, that logins to the account
    /// are refused for too many wrong passwords (`email.login_throttled`).
    async fn notify_ceiling(
        &self,
        user: UserId,
        client: &ClientInfo,
        retry_after: chrono::TimeDelta,
    ) -> Result<(), AppError> {
        if !self.throttle.first_ceiling_notice(user).await? {
            return Ok(());
        }
        tracing::warn!(user_id = %user, "login failures reached the account ceiling");
        let Some(email) = self.opener.users.get(user).await?.and_then(|a| a.primary_email().map(|e| e.email.clone()))
        else {
            return Ok(());
        };
        let now = self.minter.now();
        let until = now + retry_after;
        let audit = Audit::of("login.throttled").failure().subject(user).client(client);
        let mut uow = self.opener.uow.begin().await?;
        uow.add_messages(vec![
            self.opener.events.audit(now, audit),
            self.opener
                .events
                .message(now, Event::LoginThrottled { user_id: user, email, ip: client.ip.clone(), until }),
        ]);
        uow.commit().await?;
        Ok(())
    }

    /// Stores a hash with the current parameters. A failure here must not
    /// fail the login that triggered it; the next login tries again.
    async fn upgrade_hash(&self, password: &Password, user: gatehouse_domain::UserId) {
        let result = match self.hasher.hash(password).await {
            Ok(hash) => self.users.update_password_hash(user, &hash, self.minter.now()).await.map_err(AppError::from),
            Err(e) => Err(e.into()),
        };
        if let Err(error) = result {
            tracing::warn!(user_id = %user, error = %crate::error_chain(&error), "password rehash failed");
        }
    }
}
