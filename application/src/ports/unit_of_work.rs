//! The unit of work: one transaction across the repositories, so that a
//! change, the events it causes and the audit facts it leaves are stored
//! together or not at all.
//!
//! A use case opens one with [`UnitOfWorkFactory::begin`], reads and writes
//! through the repositories it hands out, adds its outbox and audit messages
//! with [`UnitOfWork::add_messages`], and calls [`UnitOfWork::commit`].
//! Dropping it without a commit rolls everything back, so a use case that
//! refuses (a rule in the domain said no) simply returns its error.
//!
//! A use case that reads, lets the domain decide and writes locks the
//! account first ([`AccountWrites::lock`]; SQLite's unit of work holds the
//! database's write lock from `begin` anyway), so units of work on one
//! account that decide run one after the other and never on a stale read,
//! and they take their locks in one order (the account's row before its
//! sessions, factors and verifications), so they cannot deadlock each other.
//! Writes that decide nothing (a new session, a new code) take no lock; a new
//! session's foreign-key check waits for a locked account.
//!
//! The limits whose guarantee is one guarded statement stay compare-and-swap
//! statements: consuming a verification, retiring a refresh token and using a
//! backup code inside the unit of work that applies their effect; counting a
//! wrong code, advancing a TOTP step, using an emailed code and passing a
//! challenge as single methods of the repositories outside, and inside a unit
//! of work ([`FactorWrites`], [`ChallengeWrites`]) where a limit across rows
//! (the account's wrong second-factor codes) must be read, checked and
//! counted as one decision under the account's lock.
//!
//! The repositories here only store what the domain decided: none of them
//! holds a business rule.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_domain::{
    Account, EmailAddress, Factor, MfaChallenge, PasswordHash, Purpose, RevokeReason, Session, SessionId, TokenHash,
    User, UserId, Verification,
};
use uuid::Uuid;

use crate::ports::events::OutboxMessage;
use crate::ports::mfa::FactorCode;
use crate::ports::organizations::OrganizationWrites;
use crate::ports::store::{NewRefreshToken, Retirement, StoreError};

/// Opens units of work.
#[async_trait]
pub trait UnitOfWorkFactory: fmt::Debug + Send + Sync {
    /// Begins a transaction.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be reached.
    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError>;
}

/// One open transaction and the repositories that write through it.
#[async_trait]
pub trait UnitOfWork: fmt::Debug + Send + Sync {
    /// Accounts and their login emails.
    fn accounts(&self) -> &dyn AccountWrites;
    /// Sessions and their refresh tokens.
    fn sessions(&self) -> &dyn SessionWrites;
    /// Email verifications and password resets.
    fn verifications(&self) -> &dyn VerificationWrites;
    /// Second factors, their codes and the backup codes.
    fn factors(&self) -> &dyn FactorWrites;
    /// Login challenges and the account's wrong second-factor codes.
    fn challenges(&self) -> &dyn ChallengeWrites;
    /// Organizations, their members, roles and invitations.
    fn organizations(&self) -> &dyn OrganizationWrites;

    /// Messages (events, and the audit facts they carry) to store with the
    /// change; written at commit, in the same transaction.
    fn add_messages(&mut self, messages: Vec<OutboxMessage>);

    /// Stores everything this unit of work did, atomically.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when a uniqueness rule refused a write (also
    /// reported by the write itself where the database checks at once).
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Accounts inside a unit of work.
#[async_trait]
pub trait AccountWrites: fmt::Debug + Send + Sync {
    /// Stores a new user with `user.email` as its primary, unverified login email.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the email is a login email of any account.
    async fn insert(&self, user: &User) -> Result<(), StoreError>;

    /// The account, locked against concurrent changes until this unit of
    /// work ends; `None` when there is no such user.
    async fn lock(&self, user: UserId) -> Result<Option<Account>, StoreError>;

    /// Adds an unverified login email.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the address is a login email of any account.
    async fn add_email(&self, user: UserId, email: &EmailAddress, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Drops another account's claim on `email` when that claim proves
    /// nothing: an added (not primary) login email that was never verified.
    /// Returns the account that lost it. Called before `email` is claimed,
    /// so an unverified address cannot block its real owner.
    async fn release_unverified_claim(&self, email: &EmailAddress) -> Result<Option<UserId>, StoreError>;

    /// Deletes a login email.
    async fn remove_email(&self, user: UserId, email: &EmailAddress) -> Result<(), StoreError>;

    /// Makes `email` the primary login email and every other one not primary.
    async fn set_primary_email(&self, user: UserId, email: &EmailAddress, now: DateTime<Utc>)
    -> Result<(), StoreError>;

    /// Marks a login email verified, keeping an earlier verification time.
    async fn mark_email_verified(
        &self,
        user: UserId,
        email: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Replaces the password hash; `false` when there is no such user.
    async fn set_password_hash(
        &self,
        user: UserId,
        hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Deletes the account and everything it owns, leaving a tombstone (the
    /// user id) until `tombstone_until`; its audit rows stay.
    async fn delete(&self, user: UserId, tombstone_until: DateTime<Utc>) -> Result<(), StoreError>;
}

/// Sessions inside a unit of work.
#[async_trait]
pub trait SessionWrites: fmt::Debug + Send + Sync {
    /// Stores a new session with its first refresh token.
    async fn insert(&self, session: &Session, refresh: &NewRefreshToken) -> Result<(), StoreError>;

    /// One session by id, in any state, locked until this unit of work ends.
    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError>;

    /// The user's unrevoked sessions (expired ones too), oldest first, locked
    /// until this unit of work ends. With the account locked first, a login
    /// that is adding a session waits for this unit of work to end (its
    /// foreign-key check needs the account's row); it adds the session after
    /// the commit, or fails if the account was deleted.
    async fn unrevoked(&self, user: UserId) -> Result<Vec<Session>, StoreError>;

    /// Stores the revocation of these sessions (time and reason as the
    /// domain set them on each).
    async fn save_revocations(&self, sessions: &[Session], reason: RevokeReason) -> Result<(), StoreError>;

    /// The user whose session a refresh token (current or retired) belongs
    /// to, read without a lock: a refresh locks that account first, as every
    /// unit of work on an account does.
    async fn owner_of_refresh_token(&self, presented: &TokenHash) -> Result<Option<UserId>, StoreError>;

    /// Retires the presented refresh token if it is current: one guarded
    /// statement, so of two refreshes with one token exactly one sees
    /// [`Retirement::Retired`] (the other waits, then sees
    /// [`Retirement::Reused`]).
    async fn retire_refresh_token(&self, presented: &TokenHash, now: DateTime<Utc>) -> Result<Retirement, StoreError>;

    /// Stores a session as a refresh left it (last use, end, client data)
    /// with its next refresh token.
    async fn save_rotation(&self, session: &Session, next: &NewRefreshToken) -> Result<(), StoreError>;
}

/// Verifications inside a unit of work.
#[async_trait]
pub trait VerificationWrites: fmt::Debug + Send + Sync {
    /// Stores a new verification.
    async fn insert(&self, verification: &Verification) -> Result<(), StoreError>;

    /// Retires (consumes at `now`) every live verification of `user` for
    /// `purpose`, only those for `email` when it is given; returns how many.
    async fn retire(
        &self,
        user: UserId,
        purpose: Purpose,
        email: Option<&EmailAddress>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Consumes the verification if it is unconsumed, unexpired at `now` and
    /// within its attempts: one guarded statement, so of two parallel
    /// redemptions exactly one sees `true`.
    async fn consume(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError>;
}

/// Second factors inside a unit of work.
#[async_trait]
pub trait FactorWrites: fmt::Debug + Send + Sync {
    /// The user's factors, pending and active, oldest first.
    async fn list(&self, user: UserId) -> Result<Vec<Factor>, StoreError>;

    /// Stores a new factor.
    async fn insert(&self, factor: &Factor) -> Result<(), StoreError>;

    /// Makes a factor active.
    async fn activate(&self, factor: Uuid, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Deletes factors (with their codes).
    async fn delete(&self, factors: &[Uuid]) -> Result<(), StoreError>;

    /// Stores a new code for a factor, retiring that factor's unused codes for
    /// the same challenge (or for enrolment, when `challenge_id` is `None`).
    async fn insert_code(&self, code: &FactorCode) -> Result<(), StoreError>;

    /// Replaces the user's backup codes (none: deletes them).
    async fn replace_backup_codes(
        &self,
        user: UserId,
        hashes: &[TokenHash],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Consumes the user's unused backup code with `hash` (one guarded
    /// statement) and returns how many unused ones are left, or `None` when
    /// there was no such unused code.
    async fn use_backup_code(
        &self,
        user: UserId,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError>;

    // The second-factor checks a use case makes under the account's lock;
    // the same guarded statements as `MfaRepository`'s, in this transaction.

    /// Records `step` as the factor's newest accepted TOTP step, only if it
    /// is newer than the stored one; `false` when it (or a newer one) was used.
    async fn advance_totp_step(&self, factor: Uuid, step: i64) -> Result<bool, StoreError>;

    /// Consumes the newest usable code of `factor` (and `challenge`) if its
    /// hash is `hash`, otherwise counts a wrong attempt on it; `true` when consumed.
    async fn use_code(
        &self,
        factor: Uuid,
        challenge: Option<Uuid>,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// Login challenges inside a unit of work. A use case that checks a second
/// factor locks the account first, then counts the account's recent wrong
/// codes, checks the code and records a wrong one here before it commits, so
/// parallel guesses on one account are decided one after the other and never
/// pass the account's limit.
#[async_trait]
pub trait ChallengeWrites: fmt::Debug + Send + Sync {
    /// One challenge by id, in any state.
    async fn get(&self, id: Uuid) -> Result<Option<MfaChallenge>, StoreError>;

    /// Stores a challenge (a wrong fresh proof is stored as a spent one).
    async fn insert(&self, challenge: &MfaChallenge) -> Result<(), StoreError>;

    /// Deletes a challenge; nothing when there is none.
    async fn delete(&self, id: Uuid) -> Result<(), StoreError>;

    /// Wrong codes summed over the user's challenges created at or after `since`.
    async fn failures_since(&self, user: UserId, since: DateTime<Utc>) -> Result<u32, StoreError>;

    /// Counts one wrong code on the challenge, only while it is unconsumed
    /// and below its limit; returns the new count, `None` if nothing counted.
    async fn record_failure(&self, id: Uuid) -> Result<Option<u32>, StoreError>;

    /// Marks the challenge passed if it is unconsumed and unexpired at `now`;
    /// `true` exactly once. Attempts are not checked here: the caller checked
    /// them before accepting the code, and wrong codes racing with the right
    /// one must not lock it out after it was accepted.
    async fn pass(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError>;
}
