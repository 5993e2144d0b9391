//! Organizations (tenants), their members, roles and invitations, and the
//! rules that hold them together.
//!
//! A member holds exactly one role. Three roles are built in and the same in
//! every organization (`owner`, `admin`, `member`, see [`BuiltinRole`]);
//! an organization may define its own roles, each a bounded set of
//! [`Permission`]s in the `resource:action` grammar (`documents:read`,
//! `documents:*`). An organization always keeps at least one owner
//! ([`ensure_an_owner_remains`]); only an owner may hand out, change or take
//! away the owner role ([`RoleChange::check`]), so an admin cannot promote
//! itself past the people who can delete the organization.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::email::EmailAddress;
use crate::ids::{OrganizationId, UserId};
use crate::token::TokenHash;

/// Why a name, slug, role or permission is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganizationInputError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must be {min} to {max} lower-case letters, digits and single hyphens, starting with a letter")]
    MalformedSlug { min: usize, max: usize },
    #[error("must be `resource:action` (lower-case letters, digits and `_`; the action may be `*`)")]
    MalformedPermission,
    #[error("must be lower-case letters, digits, `_` and `-`, starting with a letter, at most {max} characters")]
    MalformedRoleName { max: usize },
    #[error("`{0}` is a built-in role; pick another name")]
    BuiltinRoleName(String),
    #[error("at most {max} permissions")]
    TooManyPermissions { max: usize },
    #[error("must name at least one permission")]
    NoPermissions,
}

/// The display name of an organization: trimmed, 1 to 100 characters, no
/// control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganizationName(String);

impl OrganizationName {
    pub const MAX_CHARS: usize = 100;

    /// # Errors
    /// Empty after trimming, too long, or holding control characters.
    pub fn parse(input: &str) -> Result<Self, OrganizationInputError> {
        let name = input.trim();
        if name.is_empty() {
            return Err(OrganizationInputError::Empty);
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(OrganizationInputError::TooLong { max: Self::MAX_CHARS });
        }
        if name.chars().any(char::is_control) {
            return Err(OrganizationInputError::ControlCharacter);
        }
        Ok(Self(name.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A unique, URL-safe handle of an organization (`acme-corp`): 3 to 63
/// lower-case ASCII letters, digits and single hyphens (a DNS label), starting
/// with a letter and not ending with a hyphen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 63;

    /// # Errors
    /// [`OrganizationInputError::MalformedSlug`] for anything else.
    pub fn parse(input: &str) -> Result<Self, OrganizationInputError> {
        let bad = OrganizationInputError::MalformedSlug { min: Self::MIN_LEN, max: Self::MAX_LEN };
        let ok = (Self::MIN_LEN..=Self::MAX_LEN).contains(&input.len())
            && input.starts_with(|c: char| c.is_ascii_lowercase())
            && !input.ends_with('-')
            && !input.contains("--")
            && input.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok { Ok(Self(input.to_owned())) } else { Err(bad) }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One permission, `resource:action`: both lower-case ASCII letters, digits
/// and `_` (at most 32 each, starting with a letter); the action may be `*`,
/// every action on the resource.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission(String);

impl Permission {
    const MAX_PART: usize = 32;

    fn part_ok(part: &str) -> bool {
        (1..=Self::MAX_PART).contains(&part.len())
            && part.starts_with(|c: char| c.is_ascii_lowercase())
            && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }

    /// # Errors
    /// [`OrganizationInputError::MalformedPermission`].
    pub fn parse(input: &str) -> Result<Self, OrganizationInputError> {
        match input.split_once(':') {
            Some((resource, action)) if Self::part_ok(resource) && (action == "*" || Self::part_ok(action)) => {
                Ok(Self(input.to_owned()))
            }
            _ => Err(OrganizationInputError::MalformedPermission),
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn parts(&self) -> (&str, &str) {
        self.0.split_once(':').unwrap_or((&self.0, ""))
    }

    /// Whether holding `self` grants `wanted`: the same permission, or the
    /// resource's wildcard.
    #[must_use]
    pub fn grants(&self, wanted: &Self) -> bool {
        let ((resource, action), (want_resource, want_action)) = (self.parts(), wanted.parts());
        resource == want_resource && (action == "*" || action == want_action)
    }

    fn from_static(text: &'static str) -> Self {
        Self(text.to_owned())
    }

    /// Whether it is about one of the service's own resources, those the
    /// built-in roles define (see [`BuiltinRole`]): power over the
    /// organization itself rather than over an application's resources.
    #[must_use]
    pub fn is_builtin_resource(&self) -> bool {
        BuiltinRole::RESOURCES.contains(&self.parts().0)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The roles every organization has. Their permissions are fixed (and
/// documented in the README):
///
/// | resource | owner | admin | member |
/// |---|---|---|---|
/// | `organization` | `*` | `read`, `update` | `read` |
/// | `members` | `*` | `*` | `read` |
/// | `roles` | `*` | `*` | `read` |
/// | `invitations` | `*` | `*` | — |
/// | `clients` | `*` | `*` | — |
/// | `audit` | `*` | `read` | — |
///
/// `organization:delete`, and giving or taking the owner role, are the
/// owners' alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinRole {
    Owner,
    Admin,
    Member,
}

impl BuiltinRole {
    pub const ALL: [Self; 3] = [Self::Owner, Self::Admin, Self::Member];
    /// The resources of the service itself, on which the built-in roles'
    /// permissions are defined.
    pub const RESOURCES: [&'static str; 6] = ["organization", "members", "roles", "invitations", "clients", "audit"];

    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The fixed permission set.
    #[must_use]
    pub fn permissions(self) -> Vec<Permission> {
        let texts: &[&'static str] = match self {
            Self::Owner => &["organization:*", "members:*", "roles:*", "invitations:*", "clients:*", "audit:*"],
            Self::Admin => &[
                "organization:read",
                "organization:update",
                "members:*",
                "roles:*",
                "invitations:*",
                "clients:*",
                "audit:read",
            ],
            Self::Member => &["organization:read", "members:read", "roles:read"],
        };
        texts.iter().map(|t| Permission::from_static(t)).collect()
    }
}

/// The name of a role: a built-in one, or a custom one's (lower-case ASCII
/// letters, digits, `_` and `-`, starting with a letter, at most 32).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RoleName(String);

impl RoleName {
    pub const MAX_LEN: usize = 32;

    /// Any role name a member may be given, built-in or custom.
    ///
    /// # Errors
    /// [`OrganizationInputError::MalformedRoleName`], or `Empty`.
    pub fn parse(input: &str) -> Result<Self, OrganizationInputError> {
        if input.is_empty() {
            return Err(OrganizationInputError::Empty);
        }
        let ok = input.len() <= Self::MAX_LEN
            && input.starts_with(|c: char| c.is_ascii_lowercase())
            && input.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(OrganizationInputError::MalformedRoleName { max: Self::MAX_LEN })
        }
    }

    /// The name of a new custom role: also not a built-in name.
    ///
    /// # Errors
    /// As [`Self::parse`], and [`OrganizationInputError::BuiltinRoleName`].
    pub fn parse_custom(input: &str) -> Result<Self, OrganizationInputError> {
        let name = Self::parse(input)?;
        if name.builtin().is_some() {
            return Err(OrganizationInputError::BuiltinRoleName(name.0));
        }
        Ok(name)
    }

    #[must_use]
    pub fn of(role: BuiltinRole) -> Self {
        Self(role.name().to_owned())
    }

    #[must_use]
    pub fn builtin(&self) -> Option<BuiltinRole> {
        BuiltinRole::from_name(&self.0)
    }

    #[must_use]
    pub fn is_owner(&self) -> bool {
        self.builtin() == Some(BuiltinRole::Owner)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name read back from storage, where only valid names are written.
    #[must_use]
    pub const fn restore(name: String) -> Self {
        Self(name)
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The permissions of a custom role: 1 to [`PermissionSet::MAX`], without
/// duplicates, sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionSet(Vec<Permission>);

impl PermissionSet {
    /// Most permissions one custom role may hold.
    pub const MAX: usize = 50;

    /// # Errors
    /// The first malformed permission (with its index), too many, or none.
    pub fn parse<'a>(
        inputs: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, (Option<usize>, OrganizationInputError)> {
        let mut permissions = Vec::new();
        for (i, input) in inputs.into_iter().enumerate() {
            if i >= Self::MAX {
                return Err((None, OrganizationInputError::TooManyPermissions { max: Self::MAX }));
            }
            permissions.push(Permission::parse(input).map_err(|e| (Some(i), e))?);
        }
        if permissions.is_empty() {
            return Err((None, OrganizationInputError::NoPermissions));
        }
        permissions.sort();
        permissions.dedup();
        Ok(Self(permissions))
    }

    /// A set read back from storage.
    #[must_use]
    pub fn restore(permissions: Vec<Permission>) -> Self {
        Self(permissions)
    }

    #[must_use]
    pub fn as_slice(&self) -> &[Permission] {
        &self.0
    }
}

impl Permission {
    /// A permission read back from storage, where only valid ones are written.
    #[must_use]
    pub const fn restore(text: String) -> Self {
        Self(text)
    }
}

/// A role as a member holds it: its name and what it grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub name: RoleName,
    pub permissions: Vec<Permission>,
    pub builtin: bool,
}

impl Role {
    #[must_use]
    pub fn builtin(role: BuiltinRole) -> Self {
        Self { name: RoleName::of(role), permissions: role.permissions(), builtin: true }
    }

    #[must_use]
    pub fn custom(name: RoleName, permissions: PermissionSet) -> Self {
        Self { name, permissions: permissions.0, builtin: false }
    }

    /// Whether the role grants `wanted`.
    #[must_use]
    pub fn allows(&self, wanted: &Permission) -> bool {
        self.permissions.iter().any(|p| p.grants(wanted))
    }

    /// Whether a member holding `self` may hand out `permissions` (write
    /// them into a custom role, or give a member a role holding them): every
    /// one of them on the service's own resources must be one `self` grants,
    /// so nobody creates or hands out power over the organization that they
    /// do not hold themselves (an admin making a role with
    /// `organization:*` and taking it). Permissions on an application's
    /// resources (`documents:read`) are the organization's to define and
    /// need only `roles:write` or `members:write`.
    ///
    /// # Errors
    /// [`OrganizationRuleError::BeyondOwnRole`].
    pub fn may_hand_out(&self, permissions: &[Permission]) -> Result<(), OrganizationRuleError> {
        if permissions.iter().filter(|p| p.is_builtin_resource()).all(|p| self.allows(p)) {
            Ok(())
        } else {
            Err(OrganizationRuleError::BeyondOwnRole)
        }
    }
}

/// Permissions the use cases ask for.
pub mod permissions {
    use super::Permission;

    macro_rules! permission {
        ($($name:ident = $text:literal),+ $(,)?) => {$(
            #[must_use]
            pub fn $name() -> Permission {
                Permission::from_static($text)
            }
        )+};
    }
    permission!(
        organization_update = "organization:update",
        organization_delete = "organization:delete",
        members_read = "members:read",
        members_write = "members:write",
        roles_read = "roles:read",
        roles_write = "roles:write",
        invitations_read = "invitations:read",
        invitations_write = "invitations:write",
        audit_read = "audit:read",
    );
}

/// An organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: OrganizationName,
    pub slug: Option<Slug>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One user's place in an organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub organization: OrganizationId,
    pub user: UserId,
    pub role: RoleName,
    pub joined_at: DateTime<Utc>,
}

/// What the organization's rules refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OrganizationRuleError {
    #[error("an organization must keep at least one owner")]
    LastOwner,
    #[error("only an owner may give, change or take away the owner role")]
    OwnerOnly,
    #[error("the role holds permissions over the organization that your role does not")]
    BeyondOwnRole,
}

/// The last-owner rule: after a change that takes the owner role from one of
/// `owners` owners (demotion, removal, leaving), one must remain.
///
/// # Errors
/// [`OrganizationRuleError::LastOwner`].
pub const fn ensure_an_owner_remains(owners: u64) -> Result<(), OrganizationRuleError> {
    if owners <= 1 { Err(OrganizationRuleError::LastOwner) } else { Ok(()) }
}

/// A change of a member's role (or an addition, `from` = `None`; or a
/// removal, `to` = `None`) made by a member holding `actor`.
#[derive(Debug, Clone, Copy)]
pub struct RoleChange<'a> {
    pub actor: &'a RoleName,
    pub from: Option<&'a RoleName>,
    pub to: Option<&'a RoleName>,
}

impl RoleChange<'_> {
    /// Whether the actor's role may make this change at all (its permission
    /// to manage members is checked separately).
    ///
    /// # Errors
    /// [`OrganizationRuleError::OwnerOnly`] when the owner role is given or
    /// taken by someone who is not an owner.
    pub fn check(&self) -> Result<(), OrganizationRuleError> {
        let touches_owner = self.from.is_some_and(RoleName::is_owner) || self.to.is_some_and(RoleName::is_owner);
        if touches_owner && !self.actor.is_owner() { Err(OrganizationRuleError::OwnerOnly) } else { Ok(()) }
    }

    /// Whether the change takes the owner role from someone.
    #[must_use]
    pub fn demotes_an_owner(&self) -> bool {
        self.from.is_some_and(RoleName::is_owner) && !self.to.is_some_and(RoleName::is_owner)
    }
}

/// Why an invitation cannot be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvitationClosed {
    #[error("the invitation was already accepted")]
    Accepted,
    #[error("the invitation was revoked")]
    Revoked,
    #[error("the invitation has expired")]
    Expired,
}

/// An invitation to join an organization, sent to an address. Its link token
/// is stored only as a hash; it is single use and expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    pub id: uuid::Uuid,
    pub organization: OrganizationId,
    pub email: EmailAddress,
    pub role: RoleName,
    pub token_hash: TokenHash,
    pub invited_by: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Invitation {
    /// Link tokens of invitations start with this, so no other kind of link
    /// token is ever taken for one.
    pub const TOKEN_PREFIX: &'static str = "ghi_";

    /// Whether it may be accepted at `now`.
    ///
    /// # Errors
    /// Why not.
    pub fn acceptable(&self, now: DateTime<Utc>) -> Result<(), InvitationClosed> {
        if self.accepted_at.is_some() {
            Err(InvitationClosed::Accepted)
        } else if self.revoked_at.is_some() {
            Err(InvitationClosed::Revoked)
        } else if now >= self.expires_at {
            Err(InvitationClosed::Expired)
        } else {
            Ok(())
        }
    }

    /// Whether it is still open (listed as pending, revocable).
    #[must_use]
    pub fn pending(&self, now: DateTime<Utc>) -> bool {
        self.acceptable(now).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(s: &str) -> Permission {
        Permission::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(OrganizationName::parse("  Acme  ").map(|n| n.as_str().to_owned()), Ok("Acme".to_owned()));
        assert_eq!(OrganizationName::parse("   "), Err(OrganizationInputError::Empty));
        assert_eq!(OrganizationName::parse(&"x".repeat(101)), Err(OrganizationInputError::TooLong { max: 100 }));
        assert!(OrganizationName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(OrganizationName::parse("a\u{0}b"), Err(OrganizationInputError::ControlCharacter));
    }

    #[test]
    fn slugs_are_dns_labels_starting_with_a_letter() {
        for good in ["acme", "acme-corp", "a1b", &format!("a{}", "b".repeat(62))] {
            assert!(Slug::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "ab", "Acme", "1acme", "acme-", "-acme", "ac--me", "ac me", "acmé", &"a".repeat(64)] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn permissions_follow_the_resource_action_grammar() {
        for good in ["documents:read", "documents:*", "a:b", "audit_log:read2"] {
            assert!(Permission::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "documents", ":read", "documents:", "Documents:read", "*:read", "a:b:c", "a:re ad", "a:**"] {
            assert_eq!(Permission::parse(bad), Err(OrganizationInputError::MalformedPermission), "{bad}");
        }
    }

    #[test]
    fn a_wildcard_action_grants_every_action_of_its_resource_only() {
        assert!(perm("documents:*").grants(&perm("documents:read")));
        assert!(perm("documents:read").grants(&perm("documents:read")));
        assert!(!perm("documents:read").grants(&perm("documents:write")));
        assert!(!perm("documents:*").grants(&perm("invoices:read")));
        assert!(!perm("documents:read").grants(&perm("documents:*")));
    }

    #[test]
    fn permission_sets_are_bounded_deduplicated_and_name_the_bad_entry() {
        let set = PermissionSet::parse(["b:read", "a:read", "b:read"]).map(|s| s.as_slice().len());
        assert_eq!(set, Ok(2));
        assert_eq!(
            PermissionSet::parse(["a:read", "nope"]),
            Err((Some(1), OrganizationInputError::MalformedPermission))
        );
        let many: Vec<String> = (0..=PermissionSet::MAX).map(|i| format!("r{i}:read")).collect();
        assert_eq!(
            PermissionSet::parse(many.iter().map(String::as_str)),
            Err((None, OrganizationInputError::TooManyPermissions { max: PermissionSet::MAX }))
        );
        assert_eq!(PermissionSet::parse([]), Err((None, OrganizationInputError::NoPermissions)));
    }

    #[test]
    fn custom_role_names_cannot_take_a_builtin_name() {
        assert!(RoleName::parse_custom("editor").is_ok());
        assert_eq!(RoleName::parse_custom("owner"), Err(OrganizationInputError::BuiltinRoleName("owner".into())));
        assert!(RoleName::parse("owner").is_ok());
        assert!(RoleName::parse("Editor").is_err());
        assert!(RoleName::parse(&"a".repeat(33)).is_err());
    }

    #[test]
    fn builtin_roles_have_their_documented_permissions() {
        let owner = Role::builtin(BuiltinRole::Owner);
        let admin = Role::builtin(BuiltinRole::Admin);
        let member = Role::builtin(BuiltinRole::Member);
        assert!(owner.allows(&permissions::organization_delete()));
        assert!(!admin.allows(&permissions::organization_delete()));
        assert!(admin.allows(&permissions::members_write()) && admin.allows(&permissions::audit_read()));
        assert!(member.allows(&permissions::members_read()));
        assert!(!member.allows(&permissions::members_write()));
        assert!(!member.allows(&permissions::invitations_read()));
        assert!(!member.allows(&perm("documents:read")));
    }

    #[test]
    fn nobody_hands_out_power_over_the_organization_that_they_lack() {
        let admin = Role::builtin(BuiltinRole::Admin);
        let owner = Role::builtin(BuiltinRole::Owner);
        let set = |ps: &[&str]| ps.iter().map(|p| perm(p)).collect::<Vec<_>>();
        for beyond in
            [&["organization:*"][..], &["organization:delete"], &["audit:*"], &["audit:write", "documents:read"]]
        {
            assert_eq!(admin.may_hand_out(&set(beyond)), Err(OrganizationRuleError::BeyondOwnRole), "{beyond:?}");
            assert_eq!(owner.may_hand_out(&set(beyond)), Ok(()), "{beyond:?}");
        }
        for within in [&["members:*", "roles:write"][..], &["documents:*"], &["audit:read"], &[]] {
            assert_eq!(admin.may_hand_out(&set(within)), Ok(()), "{within:?}");
        }
        let member = Role::builtin(BuiltinRole::Member);
        assert_eq!(member.may_hand_out(&set(&["members:write"])), Err(OrganizationRuleError::BeyondOwnRole));
        assert_eq!(admin.may_hand_out(&owner.permissions), Err(OrganizationRuleError::BeyondOwnRole));
    }

    #[test]
    fn an_organization_keeps_an_owner() {
        assert_eq!(ensure_an_owner_remains(1), Err(OrganizationRuleError::LastOwner));
        assert_eq!(ensure_an_owner_remains(0), Err(OrganizationRuleError::LastOwner));
        assert_eq!(ensure_an_owner_remains(2), Ok(()));
    }

    #[test]
    fn only_owners_give_or_take_the_owner_role() {
        let (owner, admin, member) =
            (RoleName::of(BuiltinRole::Owner), RoleName::of(BuiltinRole::Admin), RoleName::of(BuiltinRole::Member));
        let change = |actor, from, to| RoleChange { actor, from, to };
        assert_eq!(change(&admin, None, Some(&owner)).check(), Err(OrganizationRuleError::OwnerOnly));
        assert_eq!(change(&admin, Some(&owner), Some(&member)).check(), Err(OrganizationRuleError::OwnerOnly));
        assert_eq!(change(&admin, Some(&owner), None).check(), Err(OrganizationRuleError::OwnerOnly));
        assert_eq!(change(&admin, Some(&member), Some(&admin)).check(), Ok(()));
        assert_eq!(change(&owner, Some(&member), Some(&owner)).check(), Ok(()));
        assert!(change(&owner, Some(&owner), Some(&member)).demotes_an_owner());
        assert!(change(&owner, Some(&owner), None).demotes_an_owner());
        assert!(!change(&owner, Some(&owner), Some(&owner)).demotes_an_owner());
    }

    #[test]
    fn an_invitation_is_single_use_revocable_and_expires() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let inv = Invitation {
            id: uuid::Uuid::nil(),
            organization: OrganizationId::from_uuid(uuid::Uuid::nil()),
            email: EmailAddress::parse("carol@example.com").unwrap_or_else(|e| panic!("{e}")),
            role: RoleName::of(BuiltinRole::Member),
            token_hash: TokenHash::from_bytes([0; 32]),
            invited_by: UserId::from_uuid(uuid::Uuid::nil()),
            created_at: at,
            expires_at: at + chrono::TimeDelta::days(7),
            accepted_at: None,
            revoked_at: None,
        };
        assert_eq!(inv.acceptable(at), Ok(()));
        assert_eq!(inv.acceptable(at + chrono::TimeDelta::days(7)), Err(InvitationClosed::Expired));
        let used = Invitation { accepted_at: Some(at), ..inv.clone() };
        assert_eq!(used.acceptable(at), Err(InvitationClosed::Accepted));
        let revoked = Invitation { revoked_at: Some(at), ..inv };
        assert_eq!(revoked.acceptable(at), Err(InvitationClosed::Revoked));
    }
}
