//! SignUp: a new account from an email address and a password.

use std::sync::Arc;

use gatehouse_domain::{DisplayName, EmailAddress, Password, Purpose, User, UserId};

use crate::auth::verification::VerificationIssuer;
use crate::error::AppError;
use crate::events::Audit;
use crate::ids::new_uuid_v7;
use crate::password_strength::PasswordStrength;
use crate::ports::clock::Clock;
use crate::ports::password::PasswordHasher;
use crate::ports::random::RandomSource;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Input of [`SignUp`], already parsed into valid domain values.
#[derive(Debug, Clone)]
pub struct SignUpCommand {
    pub email: EmailAddress,
    pub password: Password,
    pub display_name: DisplayName,
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
}

impl SignUp {
    #[must_use]
    pub fn new(
        uow: Arc<dyn UnitOfWorkFactory>,
        hasher: Arc<dyn PasswordHasher>,
        strength: PasswordStrength,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
        issuer: VerificationIssuer,
    ) -> Self {
        Self { uow, hasher, strength, clock, rng, issuer }
    }

    /// Hashes the password and stores the account, with a verification of
    /// its email whose event goes out through the outbox.
    ///
    /// # Errors
    /// [`AppError::InvalidArgument`] (`password`) when the password is too
    /// easy to guess or built from the address or name;
    /// [`AppError::EmailTaken`] when the (normalized) email already has an account.
    pub async fn execute(&self, cmd: SignUpCommand) -> Result<UserId, AppError> {
        self.strength.check_new_account(&cmd.password, &cmd.email, &cmd.display_name, "password")?;
        let password_hash = self.hasher.hash(&cmd.password).await?;
        let now = self.clock.now();
        let id = UserId::from_uuid(new_uuid_v7(now, self.rng.as_ref()));
        let user = User::new(id, cmd.email, cmd.display_name, password_hash, now);
        let issued = self.issuer.issue(user.id(), user.email(), Purpose::VerifyEmail, now);
        let audit = self.issuer.events().audit(now, Audit::by("user.signed_up", user.id()));
        let mut uow = self.uow.begin().await?;
        uow.accounts().insert(&user).await.map_err(AppError::email_taken_on_conflict)?;
        uow.verifications().insert(&issued.verification).await?;
        uow.add_messages(vec![issued.message, audit]);
        uow.commit().await.map_err(AppError::email_taken_on_conflict)?;
        tracing::info!(user_id = %user.id(), "user signed up");
        Ok(user.id())
    }
}
