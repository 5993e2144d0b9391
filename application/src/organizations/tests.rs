//! Use-case tests of organizations over the in-memory fakes: the
//! last-owner and owner-only rules, isolation, invitations, custom roles,
//! and the invitation limit. OWASP ASVS 5.0 V8.2.1, V8.2.2.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono::TimeDelta;
use futures_executor::block_on;
use gatehouse_domain::{
    DisplayName, EmailAddress, Event, OrganizationId, OrganizationName, PasswordHash, Permission, PermissionSet,
    RoleName, Secret, User,
};

use super::*;
use crate::events::EventFactory;
use crate::ports::rate_limit::Limit;
use crate::settings::TokenSettings;
use crate::testing::{FakeDenylist, FakeRateLimiter, FixedClock, InMemoryStore, RecordingEncoder, SeqRandom, user_id};
use crate::throttle::RateLimits;

struct H {
    store: Arc<InMemoryStore>,
    encoder: Arc<RecordingEncoder>,
    deps: OrganizationDeps,
}

const ALICE: u128 = 1;
const BOB: u128 = 2;
const CAROL: u128 = 3;

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn role(name: &str) -> RoleName {
    RoleName::parse(name).unwrap()
}

fn perm(s: &str) -> Permission {
    Permission::parse(s).unwrap()
}

impl H {
    fn new() -> Self {
        Self::with_limits(RateLimits::default())
    }

    /// Alice, bob and carol have accounts, each with a verified address.
    fn with_limits(limits: RateLimits) -> Self {
        let clock = Arc::new(FixedClock::new());
        let rng = Arc::new(SeqRandom::default());
        let store = Arc::new(InMemoryStore::default());
        let encoder = Arc::new(RecordingEncoder::default());
        let events = EventFactory::new(encoder.clone(), rng.clone(), store.clone());
        let revoker = crate::auth::SessionRevoker::new(
            store.clone(),
            Arc::new(FakeDenylist::default()),
            events.clone(),
            TokenSettings::default(),
        );
        let now = clock.now();
        for (n, address) in [(ALICE, "alice@example.com"), (BOB, "bob@example.com"), (CAROL, "carol@example.com")] {
            let user =
                User::new(user_id(n), email(address), DisplayName::default(), PasswordHash::from_phc("x".into()), now);
            block_on(async {
                let uow = store.begin().await.unwrap();
                uow.accounts().insert(&user).await.unwrap();
                uow.accounts().mark_email_verified(user.id(), &email(address), now).await.unwrap();
                uow.commit().await.unwrap();
            });
        }
        let deps = OrganizationDeps {
            organizations: store.clone(),
            users: store.clone(),
            audit: store.clone(),
            uow: store.clone(),
            events,
            revoker,
            throttle: crate::throttle::Throttle::new(Arc::new(FakeRateLimiter::default()), clock.clone(), limits),
            clock,
            rng,
            settings: OrganizationSettings {
                public_url: "https://id.example/".into(),
                ..OrganizationSettings::default()
            },
        };
        Self { store, encoder, deps }
    }

    /// As [`Self::new`], with at most `n` invitations per organization an hour.
    fn with_invitations_per_hour(n: u32) -> Self {
        let limit = Limit::new(n, TimeDelta::hours(1)).unwrap();
        Self::with_limits(RateLimits { invitation_organization: limit, ..RateLimits::default() })
    }

    /// An organization with alice as its owner.
    fn org(&self) -> OrganizationId {
        let name = OrganizationName::parse("Acme").unwrap();
        block_on(CreateOrganization::new(self.deps.clone()).execute(user_id(ALICE), name, None)).unwrap().id
    }

    fn add(&self, caller: u128, org: OrganizationId, user: u128, r: &str) -> Result<Added, AppError> {
        block_on(AddMember::new(self.deps.clone()).execute(user_id(caller), org, Invitee::User(user_id(user)), role(r)))
    }

    fn set_role(&self, caller: u128, org: OrganizationId, user: u128, r: &str) -> Result<Membership, AppError> {
        block_on(UpdateMember::new(self.deps.clone()).execute(user_id(caller), org, user_id(user), role(r)))
    }

    fn invite(&self, caller: u128, org: OrganizationId, to: &str) -> Result<Added, AppError> {
        let invitee = Invitee::Email(email(to));
        block_on(AddMember::new(self.deps.clone()).execute(user_id(caller), org, invitee, role("member")))
    }

    /// The link token of the newest invitation sent to `to`.
    fn token_sent_to(&self, to: &str) -> Secret<String> {
        let events = self.encoder.events.lock().unwrap();
        events
            .iter()
            .rev()
            .find_map(|e| match &e.event {
                Event::OrganizationInvitation { email, token, link, .. } if email.as_str() == to => {
                    assert_eq!(
                        link.expose(),
                        &format!("https://id.example/accept-invitation?token={}", token.expose())
                    );
                    Some(token.clone())
                }
                _ => None,
            })
            .expect("an invitation was sent")
    }

    fn accept(&self, caller: u128, token: &Secret<String>) -> Result<Membership, AppError> {
        block_on(AcceptInvitation::new(self.deps.clone()).execute(user_id(caller), token))
    }

    fn check(&self, caller: u128, org: OrganizationId, subject: u128, p: &str) -> Result<bool, AppError> {
        let answers = block_on(CheckPermission::new(self.deps.clone()).execute(
            user_id(caller),
            org,
            user_id(subject),
            &[perm(p)],
        ))?;
        Ok(answers[0].allowed)
    }
}

fn reason(e: &AppError) -> &'static str {
    match e {
        AppError::FailedPrecondition { reason, .. }
        | AppError::PermissionDenied { reason, .. }
        | AppError::AlreadyExists { reason, .. } => reason,
        AppError::NotFound(what) => what,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn the_creator_owns_the_organization_and_the_last_owner_stays() {
    let h = H::new();
    let org = h.org();
    let (found, r) = block_on(GetOrganization::new(h.deps.clone()).execute(user_id(ALICE), org)).unwrap();
    assert_eq!((found.id, r.as_str()), (org, "owner"));
    let leave = block_on(LeaveOrganization::new(h.deps.clone()).execute(user_id(ALICE), org)).unwrap_err();
    assert_eq!(reason(&leave), "LAST_OWNER");
    assert_eq!(reason(&h.set_role(ALICE, org, ALICE, "admin").unwrap_err()), "LAST_OWNER");
    let remove = block_on(RemoveMember::new(h.deps.clone()).execute(user_id(ALICE), org, user_id(ALICE))).unwrap_err();
    assert_eq!(reason(&remove), "LAST_OWNER");
    // With a second owner, the first may step down.
    h.add(ALICE, org, BOB, "owner").unwrap();
    h.set_role(ALICE, org, ALICE, "admin").unwrap();
    assert_eq!(reason(&h.set_role(BOB, org, BOB, "member").unwrap_err()), "LAST_OWNER");
}

#[test]
fn only_owners_give_or_take_the_owner_role_and_members_change_nothing() {
    let h = H::new();
    let org = h.org();
    h.add(ALICE, org, BOB, "admin").unwrap();
    assert_eq!(reason(&h.add(BOB, org, CAROL, "owner").unwrap_err()), "OWNER_ONLY");
    assert_eq!(reason(&h.set_role(BOB, org, ALICE, "member").unwrap_err()), "OWNER_ONLY");
    h.add(BOB, org, CAROL, "member").unwrap();
    assert_eq!(reason(&h.set_role(CAROL, org, BOB, "member").unwrap_err()), "PERMISSION_DENIED");
    assert_eq!(reason(&h.add(ALICE, org, CAROL, "member").unwrap_err()), "ALREADY_MEMBER");
    let unknown = h.add(ALICE, org, 99, "member").unwrap_err();
    assert!(matches!(unknown, AppError::NotFound("user")), "{unknown:?}");
    let ghost = h.add(ALICE, org, 99, "ghost").unwrap_err();
    assert!(matches!(&ghost, AppError::InvalidArgument(v) if v[0].field == "role"), "{ghost:?}");
}

#[test]
fn a_non_member_finds_nothing_of_the_organization() {
    let h = H::new();
    let org = h.org();
    let never = OrganizationId::from_uuid(uuid::Uuid::from_u128(0xdead));
    for id in [org, never] {
        let d = &h.deps;
        let results: Vec<AppError> = vec![
            block_on(GetOrganization::new(d.clone()).execute(user_id(BOB), id)).unwrap_err(),
            block_on(ListMembers::new(d.clone()).execute(user_id(BOB), id, 0, None)).unwrap_err(),
            block_on(ListRoles::new(d.clone()).execute(user_id(BOB), id)).unwrap_err(),
            block_on(ListInvitations::new(d.clone()).execute(user_id(BOB), id)).unwrap_err(),
            block_on(ListOrganizationAuditEvents::new(d.clone()).execute(user_id(BOB), id, 0, None)).unwrap_err(),
            h.check(BOB, id, BOB, "members:read").unwrap_err(),
            h.add(BOB, id, BOB, "owner").unwrap_err(),
            h.invite(BOB, id, "eve@example.com").unwrap_err(),
            block_on(DeleteOrganization::new(d.clone()).execute(user_id(BOB), id)).unwrap_err(),
        ];
        for e in results {
            assert!(matches!(e, AppError::NotFound("organization")), "{id}: {e:?}");
        }
    }
    assert!(h.encoder.events.lock().unwrap().iter().all(|e| !matches!(e.event, Event::OrganizationInvitation { .. })));
}

#[test]
fn an_invitation_is_for_its_address_and_used_once() {
    let h = H::new();
    let org = h.org();
    let Added::Invited(invitation) = h.invite(ALICE, org, "carol@example.com").unwrap() else { panic!("invited") };
    assert_eq!(invitation.expires_at - invitation.created_at, TimeDelta::days(7));
    let token = h.token_sent_to("carol@example.com");
    // Stored only as its hash.
    assert_eq!(invitation.token_hash, crate::secrets::hash_secret(token.expose()));
    assert_eq!(reason(&h.accept(BOB, &token).unwrap_err()), "INVITATION_FOR_ANOTHER_ADDRESS");
    let joined = h.accept(CAROL, &token).unwrap();
    assert_eq!((joined.organization, joined.role.as_str()), (org, "member"));
    assert_eq!(reason(&h.accept(CAROL, &token).unwrap_err()), "INVITATION_USED");
    let wrong = h.accept(CAROL, &Secret::new("ghv_not_an_invitation".into())).unwrap_err();
    assert!(matches!(&wrong, AppError::InvalidArgument(v) if v[0].field == "token"), "{wrong:?}");

    let Added::Invited(second) = h.invite(ALICE, org, "bob@example.com").unwrap() else { panic!("invited") };
    let bobs = h.token_sent_to("bob@example.com");
    block_on(RevokeInvitation::new(h.deps.clone()).execute(user_id(ALICE), org, second.id)).unwrap();
    assert_eq!(reason(&h.accept(BOB, &bobs).unwrap_err()), "INVITATION_REVOKED");
    let kinds: Vec<String> = h.store.audit_rows().into_iter().map(|r| r.kind).collect();
    for kind in ["organization.created", "member.invited", "invitation.accepted", "invitation.revoked"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing from {kinds:?}");
    }
}

#[test]
fn a_custom_role_grants_its_permissions_and_stays_while_held() {
    let h = H::new();
    let org = h.org();
    let reader = RoleName::parse_custom("reader").unwrap();
    let perms = PermissionSet::parse(["documents:read"]).unwrap();
    block_on(CreateRole::new(h.deps.clone()).execute(user_id(ALICE), org, reader.clone(), perms)).unwrap();
    h.add(ALICE, org, BOB, "reader").unwrap();
    h.add(ALICE, org, CAROL, "member").unwrap();
    assert!(h.check(ALICE, org, BOB, "documents:read").unwrap());
    assert!(!h.check(ALICE, org, CAROL, "documents:read").unwrap());
    // A reader may ask about itself, not about others (no members:read).
    assert!(h.check(BOB, org, BOB, "documents:read").unwrap());
    assert_eq!(reason(&h.check(BOB, org, CAROL, "documents:read").unwrap_err()), "PERMISSION_DENIED");
    let delete = block_on(DeleteRole::new(h.deps.clone()).execute(user_id(ALICE), org, reader.clone())).unwrap_err();
    assert_eq!(reason(&delete), "ROLE_IN_USE");
    // A wider role reaches its holder at once.
    let wider = PermissionSet::parse(["documents:*"]).unwrap();
    block_on(UpdateRole::new(h.deps.clone()).execute(user_id(ALICE), org, reader.clone(), wider)).unwrap();
    assert!(h.check(ALICE, org, BOB, "documents:write").unwrap());
    h.set_role(ALICE, org, BOB, "member").unwrap();
    block_on(DeleteRole::new(h.deps.clone()).execute(user_id(ALICE), org, reader)).unwrap();
    assert!(!h.check(ALICE, org, BOB, "documents:read").unwrap());
}

#[test]
fn invitations_are_limited_per_organization() {
    let h = H::with_invitations_per_hour(2);
    let org = h.org();
    h.invite(ALICE, org, "one@example.com").unwrap();
    h.invite(ALICE, org, "two@example.com").unwrap();
    let third = h.invite(ALICE, org, "three@example.com").unwrap_err();
    assert!(matches!(third, AppError::RateLimited { .. }), "{third:?}");
    let sent = h
        .encoder
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e.event, Event::OrganizationInvitation { .. }))
        .count();
    assert_eq!(sent, 2);
}

/// A refused invitation (a role the sender may not give, or none at all)
/// does not spend the organization's allowance, so an admin's mistakes do
/// not lock out its owners' invitations.
#[test]
fn refused_invitations_do_not_spend_the_limit() {
    let h = H::with_invitations_per_hour(1);
    let org = h.org();
    h.add(ALICE, org, BOB, "admin").unwrap();
    assert_eq!(reason(&invite_as(&h, BOB, org, "eve@example.com", "owner").unwrap_err()), "OWNER_ONLY");
    let ghost = invite_as(&h, BOB, org, "eve@example.com", "ghost").unwrap_err();
    assert!(matches!(&ghost, AppError::InvalidArgument(v) if v[0].field == "role"), "{ghost:?}");
    invite_as(&h, ALICE, org, "eve@example.com", "member").unwrap();
}

#[test]
fn removing_a_member_ends_only_their_sessions_scoped_to_it() {
    let h = H::new();
    let org = h.org();
    h.add(ALICE, org, BOB, "member").unwrap();
    let now = h.deps.clock.now();
    let session = |n: u128, scoped: Option<OrganizationId>| {
        let s = gatehouse_domain::Session::open(
            gatehouse_domain::SessionId::from_uuid(uuid::Uuid::from_u128(n)),
            user_id(BOB),
            gatehouse_domain::ClientInfo::default(),
            now,
            now + TimeDelta::days(1),
            now + TimeDelta::days(2),
        )
        .with_organization(scoped);
        let token = crate::ports::store::NewRefreshToken {
            hash: gatehouse_domain::TokenHash::from_bytes([u8::try_from(n).unwrap(); 32]),
            issued_at: now,
            expires_at: now + TimeDelta::days(1),
        };
        block_on(async {
            let uow = h.store.begin().await.unwrap();
            uow.sessions().insert(&s, &token).await.unwrap();
            uow.commit().await.unwrap();
        });
        s.id()
    };
    let (scoped, plain) = (session(10, Some(org)), session(11, None));
    block_on(RemoveMember::new(h.deps.clone()).execute(user_id(ALICE), org, user_id(BOB))).unwrap();
    assert!(h.store.get_session(scoped).unwrap().revoked_at().is_some());
    assert!(h.store.get_session(plain).unwrap().revoked_at().is_none());
    assert_eq!(block_on(h.deps.organizations.membership(org, user_id(BOB))).unwrap(), None);
}

fn create_role(h: &H, caller: u128, org: OrganizationId, name: &str, perms: &[&str]) -> Result<Role, AppError> {
    let (name, perms) = (RoleName::parse_custom(name).unwrap(), PermissionSet::parse(perms.iter().copied()).unwrap());
    block_on(CreateRole::new(h.deps.clone()).execute(user_id(caller), org, name, perms))
}

fn update_role(h: &H, caller: u128, org: OrganizationId, name: &str, perms: &[&str]) -> Result<Role, AppError> {
    let (name, perms) = (RoleName::parse_custom(name).unwrap(), PermissionSet::parse(perms.iter().copied()).unwrap());
    block_on(UpdateRole::new(h.deps.clone()).execute(user_id(caller), org, name, perms))
}

fn invite_as(h: &H, caller: u128, org: OrganizationId, to: &str, r: &str) -> Result<Added, AppError> {
    block_on(AddMember::new(h.deps.clone()).execute(user_id(caller), org, Invitee::Email(email(to)), role(r)))
}

/// OWASP ASVS 5.0 V8.2.1, V8.2.2: an admin holds `roles:*` and `members:*`,
/// but neither writes nor takes a role with more power over the
/// organization than its own (`organization:*` would let it delete the
/// organization), nor manages a member above it.
#[test]
fn an_admin_cannot_make_or_take_a_role_above_its_own() {
    let h = H::new();
    let org = h.org();
    h.add(ALICE, org, BOB, "admin").unwrap();
    for beyond in [&["organization:*"][..], &["organization:delete"], &["audit:*", "documents:read"]] {
        assert_eq!(reason(&create_role(&h, BOB, org, "super", beyond).unwrap_err()), "BEYOND_OWN_ROLE", "{beyond:?}");
    }
    // Application resources, and what the admin holds, are its to hand out.
    create_role(&h, BOB, org, "docs", &["documents:*", "members:read"]).unwrap();
    assert_eq!(reason(&update_role(&h, BOB, org, "docs", &["organization:*"]).unwrap_err()), "BEYOND_OWN_ROLE");
    // A role an owner wrote above the admin's: not taken, given, narrowed, nor its holder managed.
    create_role(&h, ALICE, org, "auditor", &["audit:*"]).unwrap();
    assert_eq!(reason(&h.set_role(BOB, org, BOB, "auditor").unwrap_err()), "BEYOND_OWN_ROLE");
    assert_eq!(reason(&h.add(BOB, org, CAROL, "auditor").unwrap_err()), "BEYOND_OWN_ROLE");
    assert_eq!(reason(&invite_as(&h, BOB, org, "eve@example.com", "auditor").unwrap_err()), "BEYOND_OWN_ROLE");
    assert_eq!(reason(&update_role(&h, BOB, org, "auditor", &["audit:read"]).unwrap_err()), "BEYOND_OWN_ROLE");
    h.add(ALICE, org, CAROL, "auditor").unwrap();
    assert_eq!(reason(&h.set_role(BOB, org, CAROL, "member").unwrap_err()), "BEYOND_OWN_ROLE");
    let remove = block_on(RemoveMember::new(h.deps.clone()).execute(user_id(BOB), org, user_id(CAROL))).unwrap_err();
    assert_eq!(reason(&remove), "BEYOND_OWN_ROLE");
    assert_eq!(block_on(h.deps.organizations.membership(org, user_id(BOB))).unwrap().unwrap().role.as_str(), "admin");
    // A custom role that may only manage members does not promote its holder to admin.
    create_role(&h, ALICE, org, "recruiter", &["members:write"]).unwrap();
    h.set_role(ALICE, org, CAROL, "recruiter").unwrap();
    assert_eq!(reason(&h.set_role(CAROL, org, CAROL, "admin").unwrap_err()), "BEYOND_OWN_ROLE");
    // The owner may do all of it.
    h.set_role(ALICE, org, CAROL, "docs").unwrap();
    update_role(&h, ALICE, org, "auditor", &["audit:read"]).unwrap();
}

/// OWASP ASVS 5.0 V8.2.1: deleting is the owners' alone, also for the holder
/// of a custom role an owner wrote with `organization:*`.
#[test]
fn only_an_owner_deletes_even_with_organization_wildcard() {
    let h = H::new();
    let org = h.org();
    create_role(&h, ALICE, org, "deputy", &["organization:*"]).unwrap();
    h.add(ALICE, org, BOB, "deputy").unwrap();
    let delete = block_on(DeleteOrganization::new(h.deps.clone()).execute(user_id(BOB), org)).unwrap_err();
    assert_eq!(reason(&delete), "OWNER_ONLY");
    assert!(block_on(h.deps.organizations.membership(org, user_id(ALICE))).unwrap().is_some());
}

/// OWASP ASVS 5.0 V8.2.2: an invitation holds only while its inviter could
/// still send it; removing or demoting the inviter closes the doors they opened.
#[test]
fn an_invitation_dies_with_its_inviters_right() {
    let h = H::new();
    let org = h.org();
    h.add(ALICE, org, BOB, "admin").unwrap();
    invite_as(&h, BOB, org, "carol@example.com", "admin").unwrap();
    let token = h.token_sent_to("carol@example.com");
    block_on(RemoveMember::new(h.deps.clone()).execute(user_id(ALICE), org, user_id(BOB))).unwrap();
    assert_eq!(reason(&h.accept(CAROL, &token).unwrap_err()), "INVITER_LOST_RIGHT");
    assert_eq!(block_on(h.deps.organizations.membership(org, user_id(CAROL))).unwrap(), None);

    // An owner's invitation into the owner role dies when the inviter is no owner anymore.
    h.add(ALICE, org, CAROL, "owner").unwrap();
    invite_as(&h, CAROL, org, "bob@example.com", "owner").unwrap();
    let bobs = h.token_sent_to("bob@example.com");
    h.set_role(ALICE, org, CAROL, "admin").unwrap();
    assert_eq!(reason(&h.accept(BOB, &bobs).unwrap_err()), "INVITER_LOST_RIGHT");
    h.set_role(ALICE, org, CAROL, "owner").unwrap();
    assert_eq!(h.accept(BOB, &bobs).unwrap().role.as_str(), "owner");
}
