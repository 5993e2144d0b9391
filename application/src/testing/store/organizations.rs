//! Organizations, members, roles and invitations, read on the store and in
//! a unit of work, and written in a unit of work.

use gatehouse_domain::{Invitation, Membership, Organization, OrganizationId, Role, RoleName};

use super::*;
use crate::ports::organizations::{MemberOf, OrganizationReads, OrganizationWrites};

/// The organization tables.
#[derive(Clone, Debug, Default)]
pub(super) struct Orgs {
    organizations: Vec<Organization>,
    members: Vec<Membership>,
    roles: Vec<(OrganizationId, Role)>,
    invitations: Vec<Invitation>,
}

impl Orgs {
    /// What deleting a user cascades to.
    pub(super) fn forget_user(&mut self, user: UserId) {
        self.members.retain(|m| m.user != user);
    }

    fn get(&self, id: OrganizationId) -> Option<Organization> {
        self.organizations.iter().find(|o| o.id == id).cloned()
    }

    fn membership(&self, org: OrganizationId, user: UserId) -> Option<Membership> {
        self.members.iter().find(|m| m.organization == org && m.user == user).cloned()
    }

    fn roles(&self, org: OrganizationId) -> Vec<Role> {
        let mut roles: Vec<Role> = self.roles.iter().filter(|(o, _)| *o == org).map(|(_, r)| r.clone()).collect();
        roles.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        roles
    }

    fn member_of(&self, user: UserId, after: Option<OrganizationId>, limit: u32) -> Vec<MemberOf> {
        let mut found: Vec<MemberOf> = self
            .members
            .iter()
            .filter(|m| m.user == user && after.is_none_or(|a| m.organization > a))
            .filter_map(|m| self.get(m.organization).map(|o| (o, m.role.clone())))
            .collect();
        found.sort_by_key(|(o, _)| o.id);
        found.truncate(limit as usize);
        found
    }

    fn members(&self, org: OrganizationId, after: Option<UserId>, limit: u32) -> Vec<Membership> {
        let mut found: Vec<Membership> = self
            .members
            .iter()
            .filter(|m| m.organization == org && after.is_none_or(|a| m.user > a))
            .cloned()
            .collect();
        found.sort_by_key(|m| m.user);
        found.truncate(limit as usize);
        found
    }

    fn open_invitations(&self, org: OrganizationId, now: DateTime<Utc>) -> Vec<Invitation> {
        let mut found: Vec<Invitation> =
            self.invitations.iter().filter(|i| i.organization == org && i.pending(now)).cloned().collect();
        found.sort_by_key(|i| (i.created_at, i.id));
        found
    }
}

/// The reads over a state, for the store (locking it) and a unit of work.
macro_rules! reads {
    ($ty:ty) => {
        #[async_trait]
        impl OrganizationReads for $ty {
            async fn get(&self, id: OrganizationId) -> Result<Option<Organization>, StoreError> {
                Ok(self.read(|state: &State| state.orgs.get(id)))
            }

            async fn membership(&self, org: OrganizationId, user: UserId) -> Result<Option<Membership>, StoreError> {
                Ok(self.read(|state: &State| state.orgs.membership(org, user)))
            }

            async fn role(&self, org: OrganizationId, name: &RoleName) -> Result<Option<Role>, StoreError> {
                Ok(self.read(|state: &State| state.orgs.roles(org).into_iter().find(|r| &r.name == name)))
            }

            async fn roles(&self, org: OrganizationId) -> Result<Vec<Role>, StoreError> {
                Ok(self.read(|state: &State| state.orgs.roles(org)))
            }

            async fn member_of(
                &self,
                user: UserId,
                after: Option<OrganizationId>,
                limit: u32,
            ) -> Result<Vec<MemberOf>, StoreError> {
                Ok(self.read(|state: &State| state.orgs.member_of(user, after, limit)))
            }

            async fn members(
                &self,
                org: OrganizationId,
                after: Option<UserId>,
                limit: u32,
            ) -> Result<Vec<Membership>, StoreError> {
                Ok(self.read(|state: &State| state.orgs.members(org, after, limit)))
            }

            async fn open_invitations(
                &self,
                org: OrganizationId,
                now: DateTime<Utc>,
            ) -> Result<Vec<Invitation>, StoreError> {
                Ok(self.read(|state: &State| state.orgs.open_invitations(org, now)))
            }

            async fn invitation_by_token(&self, hash: &TokenHash) -> Result<Option<Invitation>, StoreError> {
                Ok(self.read(|state: &State| state.orgs.invitations.iter().find(|i| &i.token_hash == hash).cloned()))
            }
        }
    };
}

impl InMemoryStore {
    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock_blocking())
    }
}

impl MemoryUnitOfWork {
    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        self.with(|state| f(state))
    }
}

reads!(InMemoryStore);
reads!(MemoryUnitOfWork);

#[async_trait]
impl OrganizationWrites for MemoryUnitOfWork {
    async fn insert(&self, org: &Organization) -> Result<(), StoreError> {
        self.with(|s| {
            if org.slug.is_some() && s.orgs.organizations.iter().any(|o| o.slug == org.slug) {
                return Err(StoreError::Conflict("organizations_slug_key".into()));
            }
            s.orgs.organizations.push(org.clone());
            Ok(())
        })
    }

    async fn lock(&self, id: OrganizationId) -> Result<Option<Organization>, StoreError> {
        Ok(self.with(|s| s.orgs.get(id)))
    }

    async fn update(&self, org: &Organization) -> Result<(), StoreError> {
        self.with(|s| {
            if org.slug.is_some() && s.orgs.organizations.iter().any(|o| o.id != org.id && o.slug == org.slug) {
                return Err(StoreError::Conflict("organizations_slug_key".into()));
            }
            if let Some(stored) = s.orgs.organizations.iter_mut().find(|o| o.id == org.id) {
                *stored = Organization { created_at: stored.created_at, ..org.clone() };
            }
            Ok(())
        })
    }

    async fn delete(&self, id: OrganizationId) -> Result<(), StoreError> {
        self.with(|s| {
            s.orgs.organizations.retain(|o| o.id != id);
            s.orgs.members.retain(|m| m.organization != id);
            s.orgs.roles.retain(|(o, _)| *o != id);
            s.orgs.invitations.retain(|i| i.organization != id);
        });
        Ok(())
    }

    async fn add_member(&self, m: &Membership) -> Result<(), StoreError> {
        self.with(|s| {
            s.require_user(m.user, "membership")?;
            if s.orgs.membership(m.organization, m.user).is_some() {
                return Err(StoreError::Conflict("organization_members_pkey".into()));
            }
            s.orgs.members.push(m.clone());
            Ok(())
        })
    }

    async fn set_role(&self, org: OrganizationId, user: UserId, role: &RoleName) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let found = s.orgs.members.iter_mut().find(|m| m.organization == org && m.user == user);
            found.map(|m| m.role = role.clone()).is_some()
        }))
    }

    async fn remove_member(&self, org: OrganizationId, user: UserId) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let before = s.orgs.members.len();
            s.orgs.members.retain(|m| !(m.organization == org && m.user == user));
            s.orgs.members.len() < before
        }))
    }

    async fn count_holding(&self, org: OrganizationId, role: &RoleName) -> Result<u64, StoreError> {
        Ok(self.with(|s| s.orgs.members.iter().filter(|m| m.organization == org && &m.role == role).count() as u64))
    }

    async fn insert_role(&self, org: OrganizationId, role: &Role, _now: DateTime<Utc>) -> Result<(), StoreError> {
        self.with(|s| {
            if s.orgs.roles.iter().any(|(o, r)| *o == org && r.name == role.name) {
                return Err(StoreError::Conflict("organization_roles_pkey".into()));
            }
            s.orgs.roles.push((org, role.clone()));
            Ok(())
        })
    }

    async fn update_role(&self, org: OrganizationId, role: &Role, _now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let found = s.orgs.roles.iter_mut().find(|(o, r)| *o == org && r.name == role.name);
            found.map(|(_, r)| r.permissions.clone_from(&role.permissions)).is_some()
        }))
    }

    async fn delete_role(&self, org: OrganizationId, name: &RoleName) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let before = s.orgs.roles.len();
            s.orgs.roles.retain(|(o, r)| !(*o == org && &r.name == name));
            s.orgs.roles.len() < before
        }))
    }

    async fn insert_invitation(&self, invitation: &Invitation) -> Result<(), StoreError> {
        self.with(|s| {
            if s.orgs.invitations.iter().any(|i| i.token_hash == invitation.token_hash) {
                return Err(StoreError::Conflict("organization_invitations_token_hash_key".into()));
            }
            s.orgs.invitations.push(invitation.clone());
            Ok(())
        })
    }

    async fn accept_invitation(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let found = s.orgs.invitations.iter_mut().find(|i| i.id == id && i.acceptable(now).is_ok());
            found.map(|i| i.accepted_at = Some(now)).is_some()
        }))
    }

    async fn revoke_invitation(&self, org: OrganizationId, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let found = s
                .orgs
                .invitations
                .iter_mut()
                .find(|i| i.id == id && i.organization == org && i.accepted_at.is_none() && i.revoked_at.is_none());
            found.map(|i| i.revoked_at = Some(now)).is_some()
        }))
    }
}
