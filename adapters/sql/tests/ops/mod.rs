//! The writes each use case makes, as units of work over the ports: the
//! contract tests run them against the fakes, SQLite and PostgreSQL, so the
//! storage under every use case is held to the same outcomes, atomicity and
//! concurrency. Where a use case asks the domain first (which address may be
//! removed, which factor is the first), these do the same, so a test of a
//! refusal checks that nothing was written.

use chrono::{DateTime, Utc};
use gatehouse_application::ports::events::OutboxMessage;
use gatehouse_application::ports::mfa::FactorCode;
use gatehouse_application::ports::store::{NewRefreshToken, Retirement, StoreError};
use gatehouse_domain::mfa::{Activation, activate, remove};
use gatehouse_domain::{
    AccountError, ClientInfo, EmailAddress, Factor, PasswordHash, PrimaryChange as Change, Purpose, RevokeReason,
    Session, SessionId, TokenHash, User, UserId, Verification, revoke_all as end_all,
};
use uuid::Uuid;

use crate::support::Stores;

/// What removing a login email came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailRemoval {
    Removed,
    NotFound,
    IsPrimary,
    LastVerified,
}

/// What making a login email primary came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimaryChange {
    Changed,
    NotFound,
    NotVerified,
}

/// What redeeming a verification does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    VerifyEmail,
    ResetPassword { hash: PasswordHash },
}

/// The outcome of redeeming a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    Applied { revoked: Vec<Session> },
    Unavailable,
}

/// The result of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    Rotated(Session),
    Reused { session_id: SessionId },
    Expired,
    SessionEnded,
    Unknown,
}

/// RefreshToken: the presented token is retired, the session decides
/// whether and until when it goes on, and `next` is stored with that end.
pub async fn rotate(
    s: &Stores,
    presented: &TokenHash,
    next: &NewRefreshToken,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<Rotation, StoreError> {
    let uow = s.uow.begin().await?;
    let Some(owner) = uow.sessions().owner_of_refresh_token(presented).await? else { return Ok(Rotation::Unknown) };
    uow.accounts().lock(owner).await?;
    let session_id = match uow.sessions().retire_refresh_token(presented, now).await? {
        Retirement::Retired { session_id } => session_id,
        Retirement::Reused { session_id } => return Ok(Rotation::Reused { session_id }),
        Retirement::Expired => return Ok(Rotation::Expired),
        Retirement::Unknown => return Ok(Rotation::Unknown),
    };
    let Some(mut session) = uow.sessions().get(session_id).await? else { return Ok(Rotation::Unknown) };
    let Ok(expires_at) = session.rotate(now, next.expires_at, client) else { return Ok(Rotation::SessionEnded) };
    uow.sessions().save_rotation(&session, &NewRefreshToken { expires_at, ..*next }).await?;
    uow.commit().await?;
    Ok(Rotation::Rotated(session))
}

/// SignUp: the user, its first verification and `outbox`.
pub async fn create_user(
    s: &Stores,
    user: &User,
    verification: &Verification,
    outbox: &[OutboxMessage],
) -> Result<(), StoreError> {
    let mut uow = s.uow.begin().await?;
    uow.accounts().insert(user).await?;
    uow.verifications().insert(verification).await?;
    uow.add_messages(outbox.to_vec());
    uow.commit().await
}

/// Login: a session with its first refresh token, and `outbox`.
pub async fn create_session(
    s: &Stores,
    session: &Session,
    refresh: &NewRefreshToken,
    outbox: &[OutboxMessage],
) -> Result<(), StoreError> {
    let mut uow = s.uow.begin().await?;
    uow.sessions().insert(session, refresh).await?;
    uow.add_messages(outbox.to_vec());
    uow.commit().await
}

/// Logout / RevokeSession: the session ends (an earlier end keeps its time);
/// `outbox` is written only when the session exists.
pub async fn revoke(
    s: &Stores,
    id: SessionId,
    reason: RevokeReason,
    outbox: &[OutboxMessage],
    now: DateTime<Utc>,
) -> Result<Option<Session>, StoreError> {
    let mut uow = s.uow.begin().await?;
    let Some(mut session) = uow.sessions().get(id).await? else { return Ok(None) };
    if session.revoke(now) {
        uow.sessions().save_revocations(std::slice::from_ref(&session), reason).await?;
    }
    uow.add_messages(outbox.to_vec());
    uow.commit().await?;
    Ok(Some(session))
}

/// RevokeOtherSessions: every unrevoked session of `user` but `keep` ends.
pub async fn revoke_all(
    s: &Stores,
    user: UserId,
    keep: Option<SessionId>,
    reason: RevokeReason,
    outbox: &[OutboxMessage],
    now: DateTime<Utc>,
) -> Result<Vec<Session>, StoreError> {
    let mut uow = s.uow.begin().await?;
    uow.accounts().lock(user).await?;
    let ended = end_all(uow.sessions().unrevoked(user).await?, keep, now);
    uow.sessions().save_revocations(&ended, reason).await?;
    uow.add_messages(outbox.to_vec());
    uow.commit().await?;
    Ok(ended)
}

/// AddLoginEmail: an unverified address with its verification.
pub async fn add_email(
    s: &Stores,
    user: UserId,
    email: &EmailAddress,
    verification: &Verification,
    outbox: &[OutboxMessage],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut uow = s.uow.begin().await?;
    uow.accounts().lock(user).await?;
    uow.accounts().add_email(user, email, now).await?;
    uow.verifications().insert(verification).await?;
    uow.add_messages(outbox.to_vec());
    uow.commit().await
}

/// ChangePassword: the new hash, and every session but `keep` ends; nothing
/// for an unknown user.
pub async fn change_password(
    s: &Stores,
    user: UserId,
    hash: &PasswordHash,
    keep: Option<SessionId>,
    outbox: &[OutboxMessage],
    now: DateTime<Utc>,
) -> Result<Vec<Session>, StoreError> {
    let mut uow = s.uow.begin().await?;
    if uow.accounts().lock(user).await?.is_none() {
        return Ok(Vec::new());
    }
    uow.accounts().set_password_hash(user, hash, now).await?;
    let ended = end_all(uow.sessions().unrevoked(user).await?, keep, now);
    uow.sessions().save_revocations(&ended, RevokeReason::PasswordChanged).await?;
    uow.add_messages(outbox.to_vec());
    uow.commit().await?;
    Ok(ended)
}

/// RemoveLoginEmail, as the account decides: the address, its live
/// verifications and the email factors that send to it go.
pub async fn remove_email(
    s: &Stores,
    user: UserId,
    email: &EmailAddress,
    outbox: &[OutboxMessage],
    now: DateTime<Utc>,
) -> Result<EmailRemoval, StoreError> {
    let mut uow = s.uow.begin().await?;
    let Some(mut account) = uow.accounts().lock(user).await? else { return Ok(EmailRemoval::NotFound) };
    let factors = uow.factors().list(user).await?;
    let removal = match account.remove_email(email, &factors) {
        Ok(removal) => removal,
        Err(AccountError::EmailIsPrimary) => return Ok(EmailRemoval::IsPrimary),
        Err(AccountError::LastVerifiedEmail) => return Ok(EmailRemoval::LastVerified),
        Err(AccountError::NoSuchEmail) => return Ok(EmailRemoval::NotFound),
        Err(other @ AccountError::EmailNotVerified) => panic!("not a refusal of RemoveLoginEmail: {other}"),
    };
    uow.accounts().remove_email(user, email).await?;
    for purpose in [Purpose::VerifyEmail, Purpose::ResetPassword] {
        uow.verifications().retire(user, purpose, Some(email), now).await?;
    }
    uow.factors().delete(&removal.factors).await?;
    if removal.backup_codes {
        uow.factors().replace_backup_codes(user, &[], now).await?;
    }
    uow.add_messages(outbox.to_vec());
    uow.commit().await?;
    Ok(EmailRemoval::Removed)
}

/// SetPrimaryEmail, as the account decides.
pub async fn set_primary_email(
    s: &Stores,
    user: UserId,
    email: &EmailAddress,
    outbox: &[OutboxMessage],
    now: DateTime<Utc>,
) -> Result<PrimaryChange, StoreError> {
    let mut uow = s.uow.begin().await?;
    let Some(mut account) = uow.accounts().lock(user).await? else { return Ok(PrimaryChange::NotFound) };
    match account.set_primary_email(email) {
        Ok(Change::Changed { .. }) => uow.accounts().set_primary_email(user, email, now).await?,
        Ok(Change::Unchanged) => {}
        Err(AccountError::EmailNotVerified) => return Ok(PrimaryChange::NotVerified),
        Err(AccountError::NoSuchEmail) => return Ok(PrimaryChange::NotFound),
        Err(other @ (AccountError::EmailIsPrimary | AccountError::LastVerifiedEmail)) => {
            panic!("not a refusal of SetPrimaryEmail: {other}")
        }
    }
    uow.add_messages(outbox.to_vec());
    uow.commit().await?;
    Ok(PrimaryChange::Changed)
}

/// DeleteMe: the account and all it owns go, leaving a tombstone for one
/// (default) access-token lifetime; returns its sessions that were still
/// live. Nothing is written for an unknown user.
pub async fn delete_user(
    s: &Stores,
    user: UserId,
    outbox: &[OutboxMessage],
    now: DateTime<Utc>,
) -> Result<Vec<Session>, StoreError> {
    delete_user_until(s, user, outbox, now, now + chrono::TimeDelta::minutes(15)).await
}

/// [`delete_user`] with the tombstone's end given.
pub async fn delete_user_until(
    s: &Stores,
    user: UserId,
    outbox: &[OutboxMessage],
    now: DateTime<Utc>,
    tombstone_until: DateTime<Utc>,
) -> Result<Vec<Session>, StoreError> {
    let mut uow = s.uow.begin().await?;
    if uow.accounts().lock(user).await?.is_none() {
        return Ok(Vec::new());
    }
    let live: Vec<Session> = uow.sessions().unrevoked(user).await?.into_iter().filter(|s| s.is_active(now)).collect();
    uow.accounts().delete(user, tombstone_until).await?;
    uow.add_messages(outbox.to_vec());
    uow.commit().await?;
    Ok(live)
}

/// ResendVerification / RequestPasswordReset: a new verification retires
/// the older live ones it replaces.
pub async fn replace(s: &Stores, verification: &Verification, outbox: &[OutboxMessage]) -> Result<(), StoreError> {
    let v = verification;
    let mut uow = s.uow.begin().await?;
    uow.verifications().retire(v.user_id(), v.purpose(), v.retires_for(), v.created_at()).await?;
    uow.verifications().insert(v).await?;
    uow.add_messages(outbox.to_vec());
    uow.commit().await
}

/// VerifyEmail / ResetPassword: the verification is consumed once, and its
/// effect applied with it.
pub async fn consume(
    s: &Stores,
    v: &Verification,
    effect: &Effect,
    outbox: &[OutboxMessage],
    now: DateTime<Utc>,
) -> Result<Consumed, StoreError> {
    let mut uow = s.uow.begin().await?;
    uow.accounts().lock(v.user_id()).await?;
    if !uow.verifications().consume(v.id(), now).await? {
        return Ok(Consumed::Unavailable);
    }
    let revoked = match effect {
        Effect::VerifyEmail => {
            uow.accounts().mark_email_verified(v.user_id(), v.email(), now).await?;
            Vec::new()
        }
        Effect::ResetPassword { hash } => {
            uow.accounts().set_password_hash(v.user_id(), hash, now).await?;
            uow.accounts().mark_email_verified(v.user_id(), v.email(), now).await?;
            uow.verifications().retire(v.user_id(), Purpose::ResetPassword, None, now).await?;
            let ended = end_all(uow.sessions().unrevoked(v.user_id()).await?, None, now);
            uow.sessions().save_revocations(&ended, RevokeReason::PasswordReset).await?;
            ended
        }
    };
    uow.add_messages(outbox.to_vec());
    uow.commit().await?;
    Ok(Consumed::Applied { revoked })
}

/// EnrollTotp / EnrollEmailFactor: a pending factor replaces the user's
/// pending ones of its kind.
pub async fn add_factor(
    s: &Stores,
    factor: &Factor,
    code: Option<&FactorCode>,
    outbox: &[OutboxMessage],
) -> Result<(), StoreError> {
    let mut uow = s.uow.begin().await?;
    uow.accounts().lock(factor.user_id()).await?;
    let replaced = factor.replaces(&uow.factors().list(factor.user_id()).await?);
    uow.factors().delete(&replaced).await?;
    uow.factors().insert(factor).await?;
    if let Some(code) = code {
        uow.factors().insert_code(code).await?;
    }
    uow.add_messages(outbox.to_vec());
    uow.commit().await
}

/// ConfirmFactor: a pending factor of `user` becomes active; the account's
/// first active factor also stores `backup_codes` (decided under the
/// account's lock, so of two confirmed at once exactly one is the first).
/// `None` when there is no such pending factor.
pub async fn activate_factor(
    s: &Stores,
    user: UserId,
    factor: Uuid,
    backup_codes: &[TokenHash],
    outbox: &[OutboxMessage],
    now: DateTime<Utc>,
) -> Result<Option<Activation>, StoreError> {
    let mut uow = s.uow.begin().await?;
    if uow.accounts().lock(user).await?.is_none() {
        return Ok(None);
    }
    let Some(activation) = activate(&uow.factors().list(user).await?, factor) else { return Ok(None) };
    uow.factors().activate(factor, now).await?;
    if activation.first {
        uow.factors().replace_backup_codes(user, backup_codes, now).await?;
    }
    uow.add_messages(outbox.to_vec());
    uow.commit().await?;
    Ok(Some(activation))
}

/// RemoveFactor: the factor and its codes go, and the backup codes with the
/// last active factor. `false` when the user has no such factor.
pub async fn remove_factor(
    s: &Stores,
    user: UserId,
    factor: Uuid,
    outbox: &[OutboxMessage],
) -> Result<bool, StoreError> {
    let mut uow = s.uow.begin().await?;
    if uow.accounts().lock(user).await?.is_none() {
        return Ok(false);
    }
    let Some(removal) = remove(&uow.factors().list(user).await?, factor) else { return Ok(false) };
    uow.factors().delete(&[factor]).await?;
    if removal.backup_codes {
        uow.factors().replace_backup_codes(user, &[], chrono::DateTime::UNIX_EPOCH).await?;
    }
    uow.add_messages(outbox.to_vec());
    uow.commit().await?;
    Ok(true)
}

/// RegenerateBackupCodes.
pub async fn replace_backup_codes(
    s: &Stores,
    user: UserId,
    hashes: &[TokenHash],
    outbox: &[OutboxMessage],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut uow = s.uow.begin().await?;
    uow.accounts().lock(user).await?;
    uow.factors().replace_backup_codes(user, hashes, now).await?;
    uow.add_messages(outbox.to_vec());
    uow.commit().await
}

/// VerifyMfa with a backup code: consumed once; the messages `notice` makes
/// from the count left are written with it.
pub async fn use_backup_code(
    s: &Stores,
    user: UserId,
    hash: &TokenHash,
    notice: &(dyn Fn(u32) -> Vec<OutboxMessage> + Send + Sync),
    now: DateTime<Utc>,
) -> Result<Option<u32>, StoreError> {
    let mut uow = s.uow.begin().await?;
    let Some(remaining) = uow.factors().use_backup_code(user, hash, now).await? else { return Ok(None) };
    uow.add_messages(notice(remaining));
    uow.commit().await?;
    Ok(Some(remaining))
}

/// SendMfaCode: a new code retires the older unused ones of its factor and challenge.
pub async fn add_code(s: &Stores, code: &FactorCode, outbox: &[OutboxMessage]) -> Result<(), StoreError> {
    let mut uow = s.uow.begin().await?;
    uow.factors().insert_code(code).await?;
    uow.add_messages(outbox.to_vec());
    uow.commit().await
}

/// One wrong code on a challenge, in its own unit of work (as VerifyMfa
/// records it): the new count, `None` when nothing was counted.
pub async fn record_challenge_failure(s: &Stores, id: Uuid) -> Result<Option<u32>, StoreError> {
    let uow = s.uow.begin().await?;
    let counted = uow.challenges().record_failure(id).await?;
    uow.commit().await?;
    Ok(counted)
}

/// Passes a challenge in its own unit of work: `true` exactly once.
pub async fn pass_challenge(s: &Stores, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let uow = s.uow.begin().await?;
    let passed = uow.challenges().pass(id, now).await?;
    uow.commit().await?;
    Ok(passed)
}
