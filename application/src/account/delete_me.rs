//! DeleteMe: with the password as a fresh proof, the account and all it
//! owns are deleted, and its tokens stop validating at once and for good: a
//! tombstone row outlives the account until its last access token has
//! expired, so every denylist rebuild (after a restart, after Redis lost its
//! keys) refuses them again (OWASP ASVS 5.0 V7.4.1).

use std::collections::BTreeSet;
use std::sync::Arc;

use gatehouse_domain::{Password, UserId, ensure_an_owner_remains};

use super::PasswordProof;
use crate::auth::SessionRevoker;
use crate::error::AppError;
use crate::events::{Audit, EventFactory};
use crate::ports::clock::Clock;
use crate::ports::unit_of_work::UnitOfWorkFactory;

/// Deletes the caller's account.
#[derive(Clone, Debug)]
pub struct DeleteMe {
    proof: PasswordProof,
    uow: Arc<dyn UnitOfWorkFactory>,
    revoker: SessionRevoker,
    events: EventFactory,
    clock: Arc<dyn Clock>,
}

impl DeleteMe {
    #[must_use]
    pub fn new(
        proof: PasswordProof,
        uow: Arc<dyn UnitOfWorkFactory>,
        revoker: SessionRevoker,
        events: EventFactory,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { proof, uow, revoker, events, clock }
    }

    /// # Errors
    /// [`AppError::WrongPassword`] (`password`) when the password is wrong;
    /// `FAILED_PRECONDITION` (`LAST_OWNER`) for the last owner of an organization.
    pub async fn execute(&self, user: UserId, password: &Password) -> Result<(), AppError> {
        self.proof.check(user, password, "password").await?;
        let now = self.clock.now();
        let mut uow = self.uow.begin().await?;
        if uow.accounts().lock(user).await?.is_none() {
            return Ok(());
        }
        // An organization always keeps an owner: the last one hands the role
        // on (or deletes the organization) before deleting the account. Every
        // organization she is in is locked first (in id order, as each round
        // finds them), and her roles are read again under those locks until
        // no new one appears: a promotion to owner committed meanwhile is
        // seen, and, her row being locked, no membership can be added after.
        // Checking only the organizations she owned when first read would let
        // "promote her, then leave" leave one without an owner.
        let mut locked = BTreeSet::new();
        let memberships = loop {
            let memberships = uow.organizations().member_of(user, None, u32::MAX).await?;
            let mut unlocked: Vec<_> =
                memberships.iter().map(|(org, _)| org.id).filter(|id| !locked.contains(id)).collect();
            if unlocked.is_empty() {
                break memberships;
            }
            unlocked.sort_unstable();
            for id in unlocked {
                uow.organizations().lock(id).await?;
                locked.insert(id);
            }
        };
        for (org, role) in memberships {
            if role.is_owner() {
                ensure_an_owner_remains(uow.organizations().count_holding(org.id, &role).await?)?;
            }
        }
        // Read under the lock: no login can add a session between this list
        // and the delete, so none escapes the denylist.
        let sessions = uow.sessions().unrevoked(user).await?;
        let tombstone = self.revoker.account_entry(user, now);
        uow.accounts().delete(user, tombstone.until).await?;
        uow.add_messages(vec![self.events.audit(now, Audit::by("account.deleted", user))]);
        uow.commit().await?;
        let mut entries: Vec<_> = sessions.iter().filter_map(|s| self.revoker.session_entry(s, now)).collect();
        entries.push(tombstone);
        self.revoker.deny(&entries, now).await?;
        tracing::info!(user_id = %user, sessions = sessions.len(), "account deleted");
        Ok(())
    }
}
