//! SignUp: a new account from an email address and a password.
//!
//! Sign-ups are limited per client address, and their verification emails
//! per recipient, before any hashing. While logins need a verified address
//! (the default), a sign-up with an address that already has an account is
//! answered exactly like a new one, after the same hashing work, and the
//! address's owner is emailed `email.signup_attempted` instead: the answer
//! does not tell whether an address has an account (OWASP ASVS 5.0 V6.3.8,
//! as Supabase Auth does). With verification off the caller could log in
//! straight away, so there is nothing to conceal and `ALREADY_EXISTS` stays.

use std::sync::Arc;

use gatehouse_domain::{ClientInfo, DisplayName, EmailAddress, Event, Password, Purpose, User, UserId};

use crate::auth::verification::VerificationIssuer;
use crate::error::AppError;
use crate::events::Audit;
use crate::ids::new_uuid_v7;
use crate::password_strength::PasswordStrength;
use crate::ports::clock::Clock;
use crate::ports::password::PasswordHasher;
use crate::ports::random::RandomSource;
use crate::ports::store::UserRepository;
use crate::ports::unit_of_work::UnitOfWorkFactory;
use crate::throttle::Throttle;

/// Input of [`SignUp`], already parsed into valid domain values.
#[derive(Debug, Clone)]
pub struct SignUpCommand {
    pub email: EmailAddress,
    pub password: Password,
    pub display_name: DisplayName,
    pub client: ClientInfo,
}

/// The audit row of an unverified claim given up to someone signing up or
/// adding the address.
pub(crate) fn released(
    events: &crate::events::EventFactory,
    now: chrono::DateTime<chrono::Utc>,
    loser: UserId,
    email: &EmailAddress,
) -> crate::ports::events::OutboxMessage {
    events.audit(now, Audit::of("email.unverified_claim_released").subject(loser).detail("email", email))
}

/// Creates accounts.
#[derive(Clone, Debug)]
pub struct SignUp {
    uow: Arc<dyn UnitOfWorkFactory>,
    hasher: Arc<dyn PasswordHasher>,
    strength: PasswordStrength,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
    issuer: VerificationIssuer,
    throttle: Throttle,
    users: Arc<dyn UserRepository>,
    conceal_taken: bool,
}

impl SignUp {
    /// `users` finds the owner of a taken address. Taken addresses are
    /// concealed unless [`SignUp::reveal_taken_addresses`] says otherwise.
    #[must_use]
    #[allow(clippy::too_many_arguments, reason = "each is a port or policy of its own; a bundle would only hide them")]
    pub fn new(
        uow: Arc<dyn UnitOfWorkFactory>,
        users: Arc<dyn UserRepository>,
        hasher: Arc<dyn PasswordHasher>,
        strength: PasswordStrength,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
        issuer: VerificationIssuer,
        throttle: Throttle,
    ) -> Self {
        Self { uow, hasher, strength, clock, rng, issuer, throttle, users, conceal_taken: true }
    }

    /// Answers `ALREADY_EXISTS` for a taken address: right only when logins
    /// do not need a verified address, so a sign-up could log in at once.
    #[must_use]
    pub fn reveal_taken_addresses(mut self, reveal: bool) -> Self {
        self.conceal_taken = !reveal;
        self
    }

    /// Hashes the password and stores the account, with a verification of
    /// its email whose event goes out through the outbox.
    ///
    /// # Errors
    /// [`AppError::InvalidArgument`] (`password`) when the password is too
    /// easy to guess or built from the address or name;
    /// [`AppError::EmailTaken`] when the (normalized) email already has an
    /// account and taken addresses are revealed; [`AppError::RateLimited`]
    /// past the sign-up or message limits.
    pub async fn execute(&self, cmd: SignUpCommand) -> Result<UserId, AppError> {
        self.strength.check_new_account(&cmd.password, &cmd.email, &cmd.display_name, "password")?;
        self.throttle.sign_up(cmd.client.ip.as_deref()).await?;
        self.throttle.message(cmd.email.as_str(), None).await?;
        let password_hash = self.hasher.hash(&cmd.password).await?;
        let now = self.clock.now();
        let id = UserId::from_uuid(new_uuid_v7(now, self.rng.as_ref()));
        let user = User::new(id, cmd.email, cmd.display_name, password_hash, now);
        let issued = self.issuer.issue(user.id(), user.email(), Purpose::VerifyEmail, now);
        let audit = self.issuer.events().audit(now, Audit::by("user.signed_up", user.id()));
        let result = async {
            let mut uow = self.uow.begin().await?;
            // An address another account only added and never verified
            // proves nothing: it must not keep its real owner out.
            if let Some(loser) = uow.accounts().release_unverified_claim(user.email()).await? {
                uow.add_messages(vec![released(self.issuer.events(), now, loser, user.email())]);
            }
            uow.accounts().insert(&user).await.map_err(AppError::email_taken_on_conflict)?;
            uow.verifications().insert(&issued.verification).await?;
            uow.add_messages(vec![issued.message, audit]);
            uow.commit().await.map_err(AppError::email_taken_on_conflict)
        }
        .await;
        match result {
            Ok(()) => {
                tracing::info!(user_id = %user.id(), "user signed up");
                Ok(user.id())
            }
            Err(AppError::EmailTaken) if self.conceal_taken => {
                self.tell_owner(user.email(), &cmd.client).await?;
                // The id of an account that was never stored: the same shape
                // of answer as a new sign-up, pointing at nothing.
                Ok(user.id())
            }
            Err(e) => Err(e),
        }
    }

    /// Emails the owner of the taken `email` that someone tried to sign up
    /// with it. The answer to the caller does not depend on it.
    async fn tell_owner(&self, email: &EmailAddress, client: &ClientInfo) -> Result<(), AppError> {
        let Some(owner) = self.users.find_credentials(email).await? else {
            // The address was freed in between: nothing to tell.
            return Ok(());
        };
        let now = self.clock.now();
        tracing::info!(user_id = %owner.user_id, "sign-up with a taken address");
        let events = self.issuer.events();
        let attempted =
            Event::SignupAttempted { user_id: owner.user_id, email: email.clone(), ip: client.ip.clone(), at: now };
        let audit = Audit::of("user.signup_attempted").failure().subject(owner.user_id).client(client);
        let mut uow = self.uow.begin().await?;
        uow.add_messages(vec![events.message(now, attempted), events.audit(now, audit)]);
        uow.commit().await?;
        Ok(())
    }
}
