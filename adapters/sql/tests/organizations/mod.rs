//! The storage contract of organizations, members, roles and invitations,
//! through the unit of work (memory, SQLite, PostgreSQL).

use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_application::ports::store::StoreError;
use gatehouse_application::ports::unit_of_work::UnitOfWork;
use gatehouse_domain::{
    BuiltinRole, Invitation, Membership, Organization, OrganizationId, OrganizationName, PermissionSet, Role, RoleName,
    Slug, UserId, ensure_an_owner_remains,
};
use uuid::Uuid;

use super::{Stores, digest, email, race, sign_up, t0, token, user};
use crate::ops;

fn org(n: u128, slug: Option<&str>) -> Organization {
    Organization {
        id: OrganizationId::from_uuid(Uuid::from_u128(0x0a9_0000 + n)),
        name: OrganizationName::parse(&format!("Org {n}")).unwrap(),
        slug: slug.map(|s| Slug::parse(s).unwrap()),
        created_at: t0(),
        updated_at: t0(),
    }
}

fn role(name: &str, permissions: &[&str]) -> Role {
    Role::custom(RoleName::parse_custom(name).unwrap(), PermissionSet::parse(permissions.iter().copied()).unwrap())
}

fn builtin(role: BuiltinRole) -> RoleName {
    RoleName::of(role)
}

fn member(org: &Organization, user: UserId, role: BuiltinRole) -> Membership {
    Membership { organization: org.id, user, role: builtin(role), joined_at: t0() }
}

fn invitation(n: u128, org: &Organization, inviter: UserId, to: &str, expires_at: DateTime<Utc>) -> Invitation {
    Invitation {
        id: Uuid::from_u128(0x1a71_0000 + n),
        organization: org.id,
        email: email(to),
        role: builtin(BuiltinRole::Member),
        token_hash: digest(0x1a, n),
        invited_by: inviter,
        created_at: t0() + TimeDelta::seconds(i64::try_from(n).unwrap()),
        expires_at,
        accepted_at: None,
        revoked_at: None,
    }
}

async fn in_uow<T>(s: &Stores, f: impl AsyncFnOnce(&dyn UnitOfWork) -> Result<T, StoreError>) -> Result<T, StoreError> {
    let uow = s.uow.begin().await?;
    let out = f(uow.as_ref()).await?;
    uow.commit().await?;
    Ok(out)
}

/// Two signed-up users, ann (1) and bob (2).
async fn ann_and_bob(s: &Stores) -> (UserId, UserId) {
    let (ann, bob) = (user(1, "ann@example.com"), user(2, "bob@example.com"));
    sign_up(s, &ann).await;
    sign_up(s, &bob).await;
    (ann.id(), bob.id())
}

/// An organization with ann as its owner.
async fn org_of(s: &Stores, n: u128, owner: UserId) -> Organization {
    let o = org(n, None);
    in_uow(s, async |u| {
        u.organizations().insert(&o).await?;
        u.organizations().add_member(&member(&o, owner, BuiltinRole::Owner)).await
    })
    .await
    .unwrap();
    o
}

pub async fn an_organization_is_stored_with_its_owner_and_read_back(s: Stores) {
    let (ann, bob) = ann_and_bob(&s).await;
    let o = org(1, Some("acme"));
    in_uow(&s, async |u| {
        u.organizations().insert(&o).await?;
        u.organizations().add_member(&member(&o, ann, BuiltinRole::Owner)).await
    })
    .await
    .unwrap();
    assert_eq!(s.organizations.get(o.id).await.unwrap(), Some(o.clone()));
    assert_eq!(s.organizations.membership(o.id, ann).await.unwrap(), Some(member(&o, ann, BuiltinRole::Owner)));
    assert_eq!(s.organizations.membership(o.id, bob).await.unwrap(), None);
    assert_eq!(s.organizations.member_of(ann, None, 10).await.unwrap(), vec![(o.clone(), builtin(BuiltinRole::Owner))]);
    assert!(s.organizations.member_of(bob, None, 10).await.unwrap().is_empty());
    assert_eq!(s.organizations.members(o.id, None, 10).await.unwrap(), vec![member(&o, ann, BuiltinRole::Owner)]);
    assert_eq!(s.organizations.get(org(9, None).id).await.unwrap(), None);
}

pub async fn a_dropped_unit_of_work_stores_no_organization(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let o = org(1, None);
    let uow = s.uow.begin().await.unwrap();
    uow.organizations().insert(&o).await.unwrap();
    uow.organizations().add_member(&member(&o, ann, BuiltinRole::Owner)).await.unwrap();
    drop(uow);
    assert_eq!(s.organizations.get(o.id).await.unwrap(), None);
    assert!(s.organizations.member_of(ann, None, 10).await.unwrap().is_empty());
}

pub async fn slugs_are_optional_and_unique(s: Stores) {
    in_uow(&s, async |u| {
        u.organizations().insert(&org(1, None)).await?;
        u.organizations().insert(&org(2, None)).await?;
        u.organizations().insert(&org(3, Some("acme"))).await
    })
    .await
    .unwrap();
    let taken = in_uow(&s, async |u| u.organizations().insert(&org(4, Some("acme"))).await).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let renamed = Organization { slug: Some(Slug::parse("acme").unwrap()), ..org(1, None) };
    let taken = in_uow(&s, async |u| u.organizations().update(&renamed).await).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let renamed = Organization {
        name: OrganizationName::parse("Renamed").unwrap(),
        slug: Some(Slug::parse("other").unwrap()),
        updated_at: t0() + TimeDelta::hours(1),
        ..org(1, None)
    };
    in_uow(&s, async |u| u.organizations().update(&renamed).await).await.unwrap();
    assert_eq!(s.organizations.get(renamed.id).await.unwrap(), Some(renamed));
}

pub async fn memberships_are_unique_and_need_an_existing_user(s: Stores) {
    let (ann, bob) = ann_and_bob(&s).await;
    let o = org_of(&s, 1, ann).await;
    let again = in_uow(&s, async |u| u.organizations().add_member(&member(&o, ann, BuiltinRole::Member)).await).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let ghost = UserId::from_uuid(Uuid::from_u128(99));
    let gone = in_uow(&s, async |u| u.organizations().add_member(&member(&o, ghost, BuiltinRole::Member)).await).await;
    assert!(matches!(gone, Err(StoreError::Gone(_))), "{gone:?}");
    in_uow(&s, async |u| u.organizations().add_member(&member(&o, bob, BuiltinRole::Member)).await).await.unwrap();
    let admin = builtin(BuiltinRole::Admin);
    let changed = in_uow(&s, async |u| u.organizations().set_role(o.id, bob, &admin).await).await.unwrap();
    assert!(changed);
    assert_eq!(s.organizations.membership(o.id, bob).await.unwrap().map(|m| m.role), Some(admin.clone()));
    let owners = builtin(BuiltinRole::Owner);
    let counts = in_uow(&s, async |u| {
        Ok((
            u.organizations().count_holding(o.id, &owners).await?,
            u.organizations().count_holding(o.id, &admin).await?,
        ))
    })
    .await
    .unwrap();
    assert_eq!(counts, (1, 1));
    let removed = in_uow(&s, async |u| u.organizations().remove_member(o.id, bob).await).await.unwrap();
    let again = in_uow(&s, async |u| u.organizations().remove_member(o.id, bob).await).await.unwrap();
    assert_eq!((removed, again), (true, false));
    assert!(!in_uow(&s, async |u| u.organizations().set_role(o.id, bob, &admin).await).await.unwrap());
}

pub async fn lists_are_paged_by_id(s: Stores) {
    let (ann, bob) = ann_and_bob(&s).await;
    let orgs = [org_of(&s, 3, ann).await, org_of(&s, 1, ann).await, org_of(&s, 2, ann).await];
    let first = s.organizations.member_of(ann, None, 2).await.unwrap();
    let ids: Vec<_> = first.iter().map(|(o, _)| o.id).collect();
    assert_eq!(ids, [orgs[1].id, orgs[2].id]);
    let rest = s.organizations.member_of(ann, Some(orgs[2].id), 2).await.unwrap();
    assert_eq!(rest.iter().map(|(o, _)| o.id).collect::<Vec<_>>(), [orgs[0].id]);
    in_uow(&s, async |u| u.organizations().add_member(&member(&orgs[0], bob, BuiltinRole::Member)).await)
        .await
        .unwrap();
    let users: Vec<_> =
        s.organizations.members(orgs[0].id, None, 10).await.unwrap().into_iter().map(|m| m.user).collect();
    assert_eq!(users, [ann, bob]);
    let after: Vec<_> =
        s.organizations.members(orgs[0].id, Some(ann), 10).await.unwrap().into_iter().map(|m| m.user).collect();
    assert_eq!(after, [bob]);
}

pub async fn custom_roles_are_stored_changed_and_deleted(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let o = org_of(&s, 1, ann).await;
    let other = org_of(&s, 2, ann).await;
    let editor = role("editor", &["documents:read", "documents:write"]);
    in_uow(&s, async |u| u.organizations().insert_role(o.id, &editor, t0()).await).await.unwrap();
    let twice = in_uow(&s, async |u| u.organizations().insert_role(o.id, &editor, t0()).await).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    assert_eq!(s.organizations.role(o.id, &editor.name).await.unwrap(), Some(editor.clone()));
    assert_eq!(s.organizations.role(other.id, &editor.name).await.unwrap(), None);
    let viewer = role("viewer", &["documents:read"]);
    in_uow(&s, async |u| u.organizations().insert_role(o.id, &viewer, t0()).await).await.unwrap();
    assert_eq!(s.organizations.roles(o.id).await.unwrap(), vec![editor.clone(), viewer.clone()]);
    let wider = role("editor", &["documents:*"]);
    assert!(in_uow(&s, async |u| u.organizations().update_role(o.id, &wider, t0()).await).await.unwrap());
    assert_eq!(s.organizations.role(o.id, &editor.name).await.unwrap(), Some(wider));
    assert!(!in_uow(&s, async |u| u.organizations().update_role(other.id, &viewer, t0()).await).await.unwrap());
    assert!(in_uow(&s, async |u| u.organizations().delete_role(o.id, &viewer.name).await).await.unwrap());
    assert!(!in_uow(&s, async |u| u.organizations().delete_role(o.id, &viewer.name).await).await.unwrap());
    assert_eq!(s.organizations.roles(o.id).await.unwrap().len(), 1);
}

pub async fn an_invitation_is_accepted_once_and_never_after_revocation_or_expiry(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let o = org_of(&s, 1, ann).await;
    let week = t0() + TimeDelta::days(7);
    let (carol, dave, erin) = (
        invitation(1, &o, ann, "carol@example.com", week),
        invitation(2, &o, ann, "dave@example.com", week),
        invitation(3, &o, ann, "erin@example.com", t0() + TimeDelta::hours(1)),
    );
    in_uow(&s, async |u| {
        for i in [&carol, &dave, &erin] {
            u.organizations().insert_invitation(i).await?;
        }
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(s.organizations.invitation_by_token(&carol.token_hash).await.unwrap(), Some(carol.clone()));
    assert_eq!(s.organizations.invitation_by_token(&digest(0x1a, 9)).await.unwrap(), None);
    let now = t0() + TimeDelta::minutes(5);
    let open = async |at| s.organizations.open_invitations(o.id, at).await.unwrap();
    assert_eq!(open(now).await, vec![carol.clone(), dave.clone(), erin.clone()]);
    let accept = async |i: &Invitation, at| {
        in_uow(&s, async |u| u.organizations().accept_invitation(i.id, at).await).await.unwrap()
    };
    let revoke = async |i: &Invitation| {
        in_uow(&s, async |u| u.organizations().revoke_invitation(o.id, i.id, now).await).await.unwrap()
    };
    assert!(accept(&carol, now).await);
    assert!(!accept(&carol, now).await, "single use");
    assert!(!revoke(&carol).await, "an accepted invitation is not revoked");
    assert!(revoke(&dave).await);
    assert!(!revoke(&dave).await);
    assert!(!accept(&dave, now).await, "revoked");
    assert!(!accept(&erin, t0() + TimeDelta::hours(1)).await, "expired");
    let stored = s.organizations.invitation_by_token(&carol.token_hash).await.unwrap().unwrap();
    assert_eq!(stored.accepted_at, Some(now));
    assert_eq!(open(now).await, vec![erin]);
    // Expired ones are not read at all: the list never grows with age.
    assert_eq!(open(t0() + TimeDelta::hours(1)).await, vec![]);
    let other = org_of(&s, 2, ann).await;
    let elsewhere = invitation(4, &other, ann, "fay@example.com", week);
    in_uow(&s, async |u| u.organizations().insert_invitation(&elsewhere).await).await.unwrap();
    assert!(!in_uow(&s, async |u| u.organizations().revoke_invitation(o.id, elsewhere.id, now).await).await.unwrap());
}

pub async fn deleting_an_organization_takes_its_members_roles_and_invitations(s: Stores) {
    let (ann, bob) = ann_and_bob(&s).await;
    let o = org_of(&s, 1, ann).await;
    let kept = org_of(&s, 2, ann).await;
    let inv = invitation(1, &o, ann, "carol@example.com", t0() + TimeDelta::days(7));
    in_uow(&s, async |u| {
        u.organizations().add_member(&member(&o, bob, BuiltinRole::Member)).await?;
        u.organizations().insert_role(o.id, &role("editor", &["documents:read"]), t0()).await?;
        u.organizations().insert_invitation(&inv).await?;
        u.organizations().lock(o.id).await?;
        u.organizations().delete(o.id).await
    })
    .await
    .unwrap();
    assert_eq!(s.organizations.get(o.id).await.unwrap(), None);
    assert!(s.organizations.members(o.id, None, 10).await.unwrap().is_empty());
    assert!(s.organizations.roles(o.id).await.unwrap().is_empty());
    assert_eq!(s.organizations.invitation_by_token(&inv.token_hash).await.unwrap(), None);
    assert_eq!(s.organizations.member_of(ann, None, 10).await.unwrap().len(), 1);
    assert_eq!(s.organizations.get(kept.id).await.unwrap(), Some(kept));
}

pub async fn deleting_a_user_ends_their_memberships(s: Stores) {
    let (ann, bob) = ann_and_bob(&s).await;
    let o = org_of(&s, 1, ann).await;
    in_uow(&s, async |u| u.organizations().add_member(&member(&o, bob, BuiltinRole::Member)).await).await.unwrap();
    ops::delete_user(&s, bob, &[], t0()).await.unwrap();
    assert_eq!(s.organizations.members(o.id, None, 10).await.unwrap(), vec![member(&o, ann, BuiltinRole::Owner)]);
}

pub async fn a_session_keeps_the_organization_it_is_scoped_to(s: Stores) {
    let (ann, _) = ann_and_bob(&s).await;
    let o = org_of(&s, 1, ann).await;
    let first = token(1, t0(), TimeDelta::days(30));
    let ann_user = user(1, "ann@example.com");
    let scoped = super::session(1, &ann_user, t0(), first.expires_at).with_organization(Some(o.id));
    ops::create_session(&s, &scoped, &first, &[]).await.unwrap();
    assert_eq!(s.sessions.get(scoped.id()).await.unwrap().and_then(|x| x.organization()), Some(o.id));
    let moved = scoped.clone().with_organization(None);
    let next = token(2, t0(), TimeDelta::days(30));
    in_uow(&s, async |u| {
        u.sessions().save_rotation(&moved, &next).await?;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(s.sessions.get(scoped.id()).await.unwrap().and_then(|x| x.organization()), None);
}

/// Two owners demote each other at the same moment, each in a unit of work
/// that locks the organization, counts its owners and decides with the
/// domain's rule: one demotion wins, the other sees the last owner.
pub async fn concurrent_demotions_of_two_owners_leave_one(s: Stores) {
    let (ann, bob) = ann_and_bob(&s).await;
    for round in 1..=super::ROUNDS {
        let o = org_of(&s, round, ann).await;
        in_uow(&s, async |u| u.organizations().add_member(&member(&o, bob, BuiltinRole::Owner)).await).await.unwrap();
        let racers = std::sync::Mutex::new(vec![ann, bob]);
        let id = o.id;
        let outcomes = race(2, || {
            let (s, target) = (s.clone(), racers.lock().unwrap().pop().unwrap());
            async move {
                let uow = s.uow.begin().await.unwrap();
                uow.organizations().lock(id).await.unwrap().unwrap();
                let owners = uow.organizations().count_holding(id, &builtin(BuiltinRole::Owner)).await.unwrap();
                if ensure_an_owner_remains(owners).is_err() {
                    return false;
                }
                uow.organizations().set_role(id, target, &builtin(BuiltinRole::Member)).await.unwrap();
                uow.commit().await.unwrap();
                true
            }
        })
        .await;
        let mut outcomes = outcomes;
        outcomes.sort_unstable();
        assert_eq!(outcomes, vec![false, true], "round {round}");
        let owners = s.organizations.members(o.id, None, 10).await.unwrap();
        assert_eq!(owners.iter().filter(|m| m.role.is_owner()).count(), 1, "round {round}");
    }
}

/// An organization's audit trail: its rows only, newest first, paged by
/// the (time, id) cursor so every row comes once.
pub async fn an_organizations_audit_trail_lists_its_rows_newest_first(s: Stores) {
    use gatehouse_application::ports::audit::AuditCursor;

    let (ann, _) = ann_and_bob(&s).await;
    let (acme, other) = (org(1, None).id, org(2, None).id);
    let at = |m: i64| t0() + TimeDelta::minutes(m);
    let about = |n: u128, m: i64, o: Option<OrganizationId>| gatehouse_domain::AuditRecord {
        organization: o.map(|o| o.to_string()),
        ..super::audit_record(n, "member.added", at(m), Some(ann), Some(ann))
    };
    // Two rows of one instant: the id breaks the tie.
    let rows = [about(1, 1, Some(acme)), about(2, 2, Some(other)), about(3, 3, Some(acme)), about(4, 3, Some(acme))];
    let rows = rows.into_iter().chain([about(5, 4, None)]).collect::<Vec<_>>();
    s.audit.record(&super::facts(&rows)).await.unwrap();
    let all = s.audit.list_organization(acme, None, 10).await.unwrap();
    assert_eq!(all, vec![rows[3].clone(), rows[2].clone(), rows[0].clone()]);
    let first = s.audit.list_organization(acme, None, 2).await.unwrap();
    let last = &first[1];
    let cursor = AuditCursor { occurred_at: last.occurred_at, id: last.id };
    let rest = s.audit.list_organization(acme, Some(cursor), 2).await.unwrap();
    assert_eq!(rest, vec![rows[0].clone()]);
    assert!(s.audit.list_organization(org(9, None).id, None, 10).await.unwrap().is_empty());
}
