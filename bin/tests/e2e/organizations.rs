//! Organizations end to end: members, invitations (through RabbitMQ in the
//! production mode), custom roles and permission checks, the last-owner
//! rule under concurrency, organization-scoped tokens, isolation between
//! organizations, and bad input. OWASP ASVS 5.0 V8.2.1 (function-level
//! access control), V8.2.2 (data-specific access: one tenant never sees
//! another's), V8.3.1 (authorization enforced on the server).

use gatehouse_grpc::pb;
use gatehouse_grpc::pb::audit_service_client::AuditServiceClient;
use gatehouse_grpc::pb::organization_service_client::OrganizationServiceClient;
use gatehouse_testkit::rabbitmq::TestConsumer;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::harness::{
    Mail, Mode, PASSWORD, TestApp, assert_error, authed, code_and_reason, sleep_past, violated_fields,
};

crate::in_both_modes!(
    alice_builds_an_organization_that_bob_and_carol_join,
    two_owners_demoting_each_other_at_once_leave_one,
    organization_scoped_tokens_follow_the_membership,
    a_member_of_one_organization_sees_nothing_of_another,
    invitation_tokens_are_single_use_revocable_and_for_their_address,
    invitations_expire,
    bad_input_names_the_field_and_changes_nothing,
    an_organization_is_renamed_listed_and_deleted,
    an_admin_cannot_write_or_take_a_role_above_its_own,
    an_invitation_dies_with_its_inviters_right,
    a_token_for_one_organization_does_not_act_in_another,
    racing_for_one_slug_or_one_invitation_has_one_winner,
);

fn orgs(app: &TestApp) -> OrganizationServiceClient<Channel> {
    OrganizationServiceClient::new(app.channel.clone())
}

async fn create(app: &TestApp, access: &str, name: &str) -> Result<pb::Organization, Status> {
    let req = pb::CreateOrganizationRequest { name: name.into(), slug: String::new() };
    orgs(app).create_organization(authed(req, access)).await.map(|r| r.into_inner().organization.unwrap())
}

async fn add_user(app: &TestApp, access: &str, org: &str, user: &str, role: &str) -> Result<pb::Member, Status> {
    let req = pb::AddMemberRequest {
        organization_id: org.into(),
        invitee: Some(pb::add_member_request::Invitee::UserId(user.into())),
        role: role.into(),
    };
    orgs(app).add_member(authed(req, access)).await.map(|r| r.into_inner().member.unwrap())
}

async fn invite(app: &TestApp, access: &str, org: &str, email: &str) -> Result<pb::Invitation, Status> {
    let req = pb::AddMemberRequest {
        organization_id: org.into(),
        invitee: Some(pb::add_member_request::Invitee::Email(email.into())),
        role: "member".into(),
    };
    orgs(app).add_member(authed(req, access)).await.map(|r| r.into_inner().invitation.unwrap())
}

async fn create_role(app: &TestApp, access: &str, org: &str, name: &str, perms: &[&str]) -> Result<pb::Role, Status> {
    let req = pb::CreateRoleRequest {
        organization_id: org.into(),
        name: name.into(),
        permissions: perms.iter().map(|p| (*p).to_owned()).collect(),
    };
    orgs(app).create_role(authed(req, access)).await.map(|r| r.into_inner().role.unwrap())
}

async fn accept(app: &TestApp, access: &str, token: &str) -> Result<pb::AcceptInvitationResponse, Status> {
    let req = pb::AcceptInvitationRequest { token: token.into() };
    orgs(app).accept_invitation(authed(req, access)).await.map(tonic::Response::into_inner)
}

async fn set_role(app: &TestApp, access: &str, org: &str, user: &str, role: &str) -> Result<pb::Member, Status> {
    let req = pb::UpdateMemberRequest { organization_id: org.into(), user_id: user.into(), role: role.into() };
    orgs(app).update_member(authed(req, access)).await.map(|r| r.into_inner().member.unwrap())
}

async fn check(app: &TestApp, access: &str, org: &str, subject: &str, permission: &str) -> pb::CheckPermissionResponse {
    let req = pb::CheckPermissionRequest {
        organization_id: org.into(),
        subject: subject.into(),
        permission: permission.into(),
    };
    orgs(app).check_permission(authed(req, access)).await.unwrap().into_inner()
}

async fn members(app: &TestApp, access: &str, org: &str) -> Vec<pb::Member> {
    let req = pb::ListMembersRequest { organization_id: org.into(), ..Default::default() };
    orgs(app).list_members(authed(req, access)).await.unwrap().into_inner().members
}

/// Logs in scoped to `org`.
async fn login_into(app: &TestApp, email: &str, org: &str) -> Result<pb::TokenPair, Status> {
    let req = pb::LoginRequest { email: email.into(), password: PASSWORD.into(), organization_id: org.into() };
    match app.auth.clone().login(req).await?.into_inner().result {
        Some(pb::login_response::Result::Tokens(pair)) => Ok(pair),
        other => panic!("login returned no tokens: {other:?}"),
    }
}

/// Where invitations are read: RabbitMQ in the production mode (a mailer's
/// queue), the outbox in the embedded mode (whose relay only logs).
struct Mailbox(Option<TestConsumer>);

impl Mailbox {
    async fn open(app: &TestApp) -> Self {
        match app.mode {
            Mode::Production => Self(Some(TestConsumer::bind_keys(&app.config.amqp_exchange, &["email.#"]).await)),
            Mode::Embedded => Self(None),
        }
    }

    async fn invitation(&mut self, app: &TestApp, email: &str) -> Mail {
        match &mut self.0 {
            Some(consumer) => {
                let what = format!("email.org_invitation for {email}");
                let d = consumer
                    .next_matching(&what, |d| {
                        d.routing_key.as_str() == "email.org_invitation"
                            && Mail::decode(d.routing_key.as_str(), &d.data).email == email
                    })
                    .await;
                Mail::decode(d.routing_key.as_str(), &d.data)
            }
            None => app.last_event("email.org_invitation", email).await,
        }
    }
}

async fn alice_builds_an_organization_that_bob_and_carol_join(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let alice = app.user_session("alice@example.com").await.access_token;
    let bob_id = app.verified_user("bob@example.com").await;
    let bob = app.login("bob@example.com", PASSWORD).await.unwrap().access_token;
    let org = create(&app, &alice, "Acme").await.unwrap();

    assert_eq!(add_user(&app, &alice, &org.id, &bob_id, "member").await.unwrap().role, "member");
    let mut mailbox = Mailbox::open(&app).await;
    let invitation = invite(&app, &alice, &org.id, "carol@example.com").await.unwrap();
    assert_eq!(invitation.email, "carol@example.com");
    let mail = mailbox.invitation(&app, "carol@example.com").await;
    assert!(mail.token.starts_with("ghi_"), "{mail:?}");
    assert_eq!(mail.link, format!("https://id.example.test/accept-invitation?token={}", mail.token));

    // Carol has no account yet: she signs up, verifies her address and accepts.
    let carol_id = app.verified_user("carol@example.com").await;
    let carol = app.login("carol@example.com", PASSWORD).await.unwrap().access_token;
    let joined = accept(&app, &carol, &mail.token).await.unwrap();
    assert_eq!((joined.organization_id.as_str(), joined.member.unwrap().role.as_str()), (org.id.as_str(), "member"));
    let mut ids: Vec<String> = members(&app, &alice, &org.id).await.into_iter().map(|m| m.user_id).collect();
    ids.sort();
    let mut expected = vec![bob_id.clone(), carol_id.clone()];
    expected.push(app.validate(&alice).await.unwrap().user_id);
    expected.sort();
    assert_eq!(ids, expected);

    // A member cannot add members; the owner can.
    let dave_id = app.verified_user("dave@example.com").await;
    assert_error(add_user(&app, &bob, &org.id, &dave_id, "member").await, Code::PermissionDenied, "PERMISSION_DENIED");
    assert_error(invite(&app, &bob, &org.id, "erin@example.com").await, Code::PermissionDenied, "PERMISSION_DENIED");
    add_user(&app, &alice, &org.id, &dave_id, "member").await.unwrap();

    // A custom role: its permission is granted to its holder only.
    let role = pb::CreateRoleRequest {
        organization_id: org.id.clone(),
        name: "reader".into(),
        permissions: vec!["documents:read".into()],
    };
    orgs(&app).create_role(authed(role, &alice)).await.unwrap();
    set_role(&app, &alice, &org.id, &carol_id, "reader").await.unwrap();
    let carol_reads = check(&app, &alice, &org.id, &carol_id, "documents:read").await;
    assert_eq!((carol_reads.allowed, carol_reads.role.as_str()), (true, "reader"));
    assert!(!check(&app, &alice, &org.id, &bob_id, "documents:read").await.allowed);
    assert!(!check(&app, &alice, &org.id, &carol_id, "documents:write").await.allowed);
    // Asking about oneself needs nothing; about others, members:read.
    assert!(check(&app, &carol, &org.id, &carol_id, "documents:read").await.allowed);
    let batch = pb::CheckPermissionsRequest {
        organization_id: org.id.clone(),
        subject: carol_id.clone(),
        permissions: vec!["documents:read".into(), "members:write".into()],
    };
    let answers = orgs(&app).check_permissions(authed(batch, &bob)).await.unwrap().into_inner().results;
    assert_eq!(answers.iter().map(|a| a.allowed).collect::<Vec<_>>(), [true, false]);
    // The role cannot go while someone holds it.
    let delete = pb::DeleteRoleRequest { organization_id: org.id.clone(), name: "reader".into() };
    assert_error(orgs(&app).delete_role(authed(delete, &alice)).await, Code::FailedPrecondition, "ROLE_IN_USE");

    // The last owner can neither leave nor be demoted; an admin cannot make owners.
    let alice_id = app.validate(&alice).await.unwrap().user_id;
    let leave = pb::LeaveOrganizationRequest { organization_id: org.id.clone() };
    assert_error(orgs(&app).leave_organization(authed(leave, &alice)).await, Code::FailedPrecondition, "LAST_OWNER");
    assert_error(set_role(&app, &alice, &org.id, &alice_id, "admin").await, Code::FailedPrecondition, "LAST_OWNER");
    // Nor delete the account and leave the organization without one.
    let delete_me = pb::DeleteMeRequest { password: PASSWORD.into() };
    assert_error(app.user.clone().delete_me(authed(delete_me, &alice)).await, Code::FailedPrecondition, "LAST_OWNER");
    set_role(&app, &alice, &org.id, &bob_id, "admin").await.unwrap();
    assert_error(set_role(&app, &bob, &org.id, &bob_id, "owner").await, Code::PermissionDenied, "OWNER_ONLY");
    assert_error(set_role(&app, &bob, &org.id, &alice_id, "member").await, Code::PermissionDenied, "OWNER_ONLY");

    // Every change is on the organization's audit trail, for audit:read holders.
    let audit = |access: &str| {
        let req = pb::ListAuditEventsRequest { organization_id: org.id.clone(), ..Default::default() };
        let mut client = AuditServiceClient::new(app.channel.clone());
        let req = authed(req, access);
        async move { client.list_audit_events(req).await.map(|r| r.into_inner().events) }
    };
    let trail = audit(&alice).await.unwrap();
    let kinds: Vec<&str> = trail.iter().map(|e| e.kind.as_str()).collect();
    for kind in [
        "organization.created",
        "member.added",
        "member.invited",
        "invitation.accepted",
        "role.created",
        "member.role_changed",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert!(trail.iter().all(|e| e.organization_id == org.id));
    assert_error(audit(&carol).await, Code::PermissionDenied, "PERMISSION_DENIED");
}

async fn remove(app: &TestApp, access: &str, org: &str, user: &str) -> Result<(), Status> {
    let req = pb::RemoveMemberRequest { organization_id: org.into(), user_id: user.into() };
    orgs(app).remove_member(authed(req, access)).await.map(drop)
}

async fn two_owners_demoting_each_other_at_once_leave_one(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let alice = app.user_session("alice@example.com").await.access_token;
    let bob_id = app.verified_user("bob@example.com").await;
    let bob = app.login("bob@example.com", PASSWORD).await.unwrap().access_token;
    let alice_id = app.validate(&alice).await.unwrap().user_id;
    for round in 0..6 {
        let org = create(&app, &alice, &format!("Race {round}")).await.unwrap();
        add_user(&app, &alice, &org.id, &bob_id, "owner").await.unwrap();
        // Even rounds demote, odd rounds remove: both take the owner role away.
        let (a, b) = if round % 2 == 0 {
            tokio::join!(async { set_role(&app, &alice, &org.id, &bob_id, "member").await.map(drop) }, async {
                set_role(&app, &bob, &org.id, &alice_id, "member").await.map(drop)
            },)
        } else {
            tokio::join!(remove(&app, &alice, &org.id, &bob_id), remove(&app, &bob, &org.id, &alice_id))
        };
        // Whoever won is still the owner, and may look.
        let survivor = if a.is_ok() { &alice } else { &bob };
        let refused: Vec<(Code, String)> =
            [a, b].into_iter().filter_map(Result::err).map(|s| code_and_reason(&s)).collect();
        assert_eq!(refused.len(), 1, "round {round}: exactly one change wins, {refused:?}");
        // The loser saw the last owner, or had been demoted already (a
        // member may not change roles at all), or removed (no longer a
        // member: the organization is not found).
        assert!(
            refused[0] == (Code::FailedPrecondition, "LAST_OWNER".into())
                || refused[0] == (Code::PermissionDenied, "PERMISSION_DENIED".into())
                || refused[0] == (Code::NotFound, "NOT_FOUND".into()),
            "round {round}: {refused:?}"
        );
        let owners = members(&app, survivor, &org.id).await.into_iter().filter(|m| m.role == "owner").count();
        assert_eq!(owners, 1, "round {round}");
    }
}

async fn organization_scoped_tokens_follow_the_membership(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let alice = app.user_session("alice@example.com").await.access_token;
    let bob_id = app.verified_user("bob@example.com").await;
    let org = create(&app, &alice, "Acme").await.unwrap();
    // Not a member yet: no token for it.
    assert_error(login_into(&app, "bob@example.com", &org.id).await, Code::NotFound, "NOT_FOUND");
    add_user(&app, &alice, &org.id, &bob_id, "member").await.unwrap();

    let bob = login_into(&app, "bob@example.com", &org.id).await.unwrap();
    let claims = app.validate(&bob.access_token).await.unwrap();
    assert_eq!((claims.organization_id.as_str(), claims.role.as_str()), (org.id.as_str(), "member"));
    assert_eq!(claims.permissions, ["organization:read", "members:read", "roles:read"]);

    // A role change counts for CheckPermission at once, for tokens at the next refresh.
    set_role(&app, &alice, &org.id, &bob_id, "admin").await.unwrap();
    assert!(check(&app, &alice, &org.id, &bob_id, "members:write").await.allowed);
    assert_eq!(app.validate(&bob.access_token).await.unwrap().role, "member");
    let refreshed = app.refresh(&bob.refresh_token).await.unwrap();
    let claims = app.validate(&refreshed.access_token).await.unwrap();
    assert_eq!((claims.organization_id.as_str(), claims.role.as_str()), (org.id.as_str(), "admin"));

    // Removed: CheckPermission says no at once, and the refresh into the organization is refused.
    let remove = pb::RemoveMemberRequest { organization_id: org.id.clone(), user_id: bob_id.clone() };
    orgs(&app).remove_member(authed(remove, &alice)).await.unwrap();
    assert!(!check(&app, &alice, &org.id, &bob_id, "members:read").await.allowed);
    // Removal ended bob's sessions scoped to the organization.
    assert_error(app.refresh(&refreshed.refresh_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    assert_error(app.validate(&refreshed.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    assert_error(login_into(&app, "bob@example.com", &org.id).await, Code::NotFound, "NOT_FOUND");
    // Bob's own account still works outside the organization.
    let plain = app.login("bob@example.com", PASSWORD).await.unwrap();
    assert_eq!(app.validate(&plain.access_token).await.unwrap().organization_id, "");
    // Nor can a refresh move a session into it; the refresh token stays usable.
    let into = pb::RefreshTokenRequest { refresh_token: plain.refresh_token.clone(), organization_id: org.id.clone() };
    assert_error(app.auth.clone().refresh_token(into).await, Code::NotFound, "NOT_FOUND");
    let still = app.refresh(&plain.refresh_token).await.unwrap();
    assert_eq!(app.validate(&still.access_token).await.unwrap().organization_id, "");
}

async fn a_member_of_one_organization_sees_nothing_of_another(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let alice = app.user_session("alice@example.com").await.access_token;
    let dave = app.user_session("dave@example.com").await.access_token;
    let a = create(&app, &alice, "Alpha").await.unwrap();
    create(&app, &dave, "Beta").await.unwrap();
    let dave_id = app.validate(&dave).await.unwrap().user_id;
    let never = "01930000-0000-7000-8000-000000000001".to_owned();
    let reader = pb::CreateRoleRequest {
        organization_id: a.id.clone(),
        name: "reader".into(),
        permissions: vec!["documents:read".into()],
    };
    orgs(&app).create_role(authed(reader, &alice)).await.unwrap();
    let invitation = invite(&app, &alice, &a.id, "erin@example.com").await.unwrap();

    // What dave is told about alice's organization is exactly what he is
    // told about one that was never created.
    for org in [a.id.clone(), never] {
        let o = org.clone();
        let mut c = orgs(&app);
        let answers: Vec<Status> = vec![
            c.get_organization(authed(pb::GetOrganizationRequest { organization_id: o.clone() }, &dave))
                .await
                .unwrap_err(),
            c.list_members(authed(pb::ListMembersRequest { organization_id: o.clone(), ..Default::default() }, &dave))
                .await
                .unwrap_err(),
            c.list_roles(authed(pb::ListRolesRequest { organization_id: o.clone() }, &dave)).await.unwrap_err(),
            c.list_invitations(authed(pb::ListInvitationsRequest { organization_id: o.clone() }, &dave))
                .await
                .unwrap_err(),
            c.check_permission(authed(
                pb::CheckPermissionRequest {
                    organization_id: o.clone(),
                    subject: dave_id.clone(),
                    permission: "members:read".into(),
                },
                &dave,
            ))
            .await
            .unwrap_err(),
            add_user(&app, &dave, &o, &dave_id, "owner").await.unwrap_err(),
            c.delete_organization(authed(pb::DeleteOrganizationRequest { organization_id: o.clone() }, &dave))
                .await
                .unwrap_err(),
            AuditServiceClient::new(app.channel.clone())
                .list_audit_events(authed(
                    pb::ListAuditEventsRequest { organization_id: o.clone(), ..Default::default() },
                    &dave,
                ))
                .await
                .unwrap_err(),
        ];
        // Every change, too: the ids of alice's members, roles and
        // invitations are as unknown to dave as the organization.
        let alice_id = app.validate(&alice).await.unwrap().user_id;
        let mask = prost_types::FieldMask { paths: vec!["name".into()] };
        let changes: Vec<Status> = vec![
            c.update_organization(authed(
                pb::UpdateOrganizationRequest {
                    organization_id: o.clone(),
                    name: "Mine".into(),
                    update_mask: Some(mask),
                    ..Default::default()
                },
                &dave,
            ))
            .await
            .unwrap_err(),
            set_role(&app, &dave, &o, &alice_id, "member").await.unwrap_err(),
            remove(&app, &dave, &o, &alice_id).await.unwrap_err(),
            c.leave_organization(authed(pb::LeaveOrganizationRequest { organization_id: o.clone() }, &dave))
                .await
                .unwrap_err(),
            create_role(&app, &dave, &o, "spy", &["documents:read"]).await.unwrap_err(),
            c.update_role(authed(
                pb::UpdateRoleRequest {
                    organization_id: o.clone(),
                    name: "reader".into(),
                    permissions: vec!["a:b".into()],
                },
                &dave,
            ))
            .await
            .unwrap_err(),
            c.delete_role(authed(pb::DeleteRoleRequest { organization_id: o.clone(), name: "reader".into() }, &dave))
                .await
                .unwrap_err(),
            c.revoke_invitation(authed(
                pb::RevokeInvitationRequest { organization_id: o.clone(), invitation_id: invitation.id.clone() },
                &dave,
            ))
            .await
            .unwrap_err(),
            c.check_permissions(authed(
                pb::CheckPermissionsRequest {
                    organization_id: o.clone(),
                    subject: alice_id.clone(),
                    permissions: vec!["members:read".into()],
                },
                &dave,
            ))
            .await
            .unwrap_err(),
        ];
        for status in answers.into_iter().chain(changes) {
            assert_eq!(code_and_reason(&status), (Code::NotFound, "NOT_FOUND".into()), "{org}: {status:?}");
            assert_eq!(status.message(), "organization not found", "{org}");
        }
    }
    // And alice's organization is untouched.
    assert_eq!(members(&app, &alice, &a.id).await.len(), 1);
    let get = pb::GetOrganizationRequest { organization_id: a.id.clone() };
    let kept = orgs(&app).get_organization(authed(get, &alice)).await.unwrap().into_inner().organization.unwrap();
    assert_eq!(kept.name, "Alpha");
    let open = pb::ListInvitationsRequest { organization_id: a.id.clone() };
    assert_eq!(orgs(&app).list_invitations(authed(open, &alice)).await.unwrap().into_inner().invitations.len(), 1);
}

async fn invitation_tokens_are_single_use_revocable_and_for_their_address(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let alice = app.user_session("alice@example.com").await.access_token;
    let org = create(&app, &alice, "Acme").await.unwrap();
    let mut mailbox = Mailbox::open(&app).await;
    invite(&app, &alice, &org.id, "carol@example.com").await.unwrap();
    let mail = mailbox.invitation(&app, "carol@example.com").await;

    // Another signed-in address cannot use it.
    let erin = app.user_session("erin@example.com").await.access_token;
    assert_error(accept(&app, &erin, &mail.token).await, Code::PermissionDenied, "INVITATION_FOR_ANOTHER_ADDRESS");
    let carol = app.user_session("carol@example.com").await.access_token;
    accept(&app, &carol, &mail.token).await.unwrap();
    // Single use.
    assert_error(accept(&app, &carol, &mail.token).await, Code::FailedPrecondition, "INVITATION_USED");

    // Revoked before use: refused.
    let pending = invite(&app, &alice, &org.id, "erin@example.com").await.unwrap();
    let erins = mailbox.invitation(&app, "erin@example.com").await;
    let listed = pb::ListInvitationsRequest { organization_id: org.id.clone() };
    let open = orgs(&app).list_invitations(authed(listed.clone(), &alice)).await.unwrap().into_inner().invitations;
    assert_eq!(open.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), [pending.id.as_str()]);
    let revoke = pb::RevokeInvitationRequest { organization_id: org.id.clone(), invitation_id: pending.id.clone() };
    orgs(&app).revoke_invitation(authed(revoke, &alice)).await.unwrap();
    assert_error(accept(&app, &erin, &erins.token).await, Code::FailedPrecondition, "INVITATION_REVOKED");
    assert!(orgs(&app).list_invitations(authed(listed, &alice)).await.unwrap().into_inner().invitations.is_empty());

    // A token never issued.
    let forged = format!("ghi_{}", "A".repeat(43));
    let status = assert_error(accept(&app, &carol, &forged).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["token"]);
}

async fn invitations_expire(mode: Mode) {
    let app = TestApp::spawn_with(mode, |c| c.invitation_ttl = std::time::Duration::from_secs(2)).await;
    let alice = app.user_session("alice@example.com").await.access_token;
    let carol = app.user_session("carol@example.com").await.access_token;
    let org = create(&app, &alice, "Acme").await.unwrap();
    let mut mailbox = Mailbox::open(&app).await;
    let invitation = invite(&app, &alice, &org.id, "carol@example.com").await.unwrap();
    let mail = mailbox.invitation(&app, "carol@example.com").await;
    sleep_past(invitation.expire_time.as_ref()).await;
    assert_error(accept(&app, &carol, &mail.token).await, Code::FailedPrecondition, "INVITATION_EXPIRED");
}

async fn bad_input_names_the_field_and_changes_nothing(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let alice = app.user_session("alice@example.com").await.access_token;
    let bob_id = app.verified_user("bob@example.com").await;
    let bad_create = |name: &str, slug: &str| pb::CreateOrganizationRequest { name: name.into(), slug: slug.into() };
    for (req, field) in [
        (bad_create("", ""), "name"),
        (bad_create("   ", ""), "name"),
        (bad_create(&"x".repeat(101), ""), "name"),
        (bad_create("Acme", "Not A Slug"), "slug"),
        (bad_create("Acme", "ab"), "slug"),
        (bad_create("Acme", "-acme"), "slug"),
    ] {
        let status = assert_error(
            orgs(&app).create_organization(authed(req, &alice)).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), [field]);
    }
    let list = pb::ListOrganizationsRequest::default();
    assert!(orgs(&app).list_organizations(authed(list, &alice)).await.unwrap().into_inner().organizations.is_empty());

    let org = create(&app, &alice, "Acme").await.unwrap();
    let role = |name: &str, permissions: Vec<String>| pb::CreateRoleRequest {
        organization_id: org.id.clone(),
        name: name.into(),
        permissions,
    };
    let too_many: Vec<String> = (0..51).map(|i| format!("r{i}:read")).collect();
    for (req, field) in [
        (role("editor", vec!["documents".into()]), "permissions"),
        (role("editor", vec!["Documents:read".into()]), "permissions"),
        (role("editor", vec!["documents:read:all".into()]), "permissions"),
        (role("editor", too_many), "permissions"),
        (role("editor", vec![]), "permissions"),
        (role("owner", vec!["documents:read".into()]), "name"),
        (role("Bad Name", vec!["documents:read".into()]), "name"),
    ] {
        let status =
            assert_error(orgs(&app).create_role(authed(req, &alice)).await, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert_eq!(violated_fields(&status), [field]);
    }
    let roles = pb::ListRolesRequest { organization_id: org.id.clone() };
    assert_eq!(orgs(&app).list_roles(authed(roles, &alice)).await.unwrap().into_inner().roles.len(), 3);

    // An unknown role, a malformed one, a malformed permission to check.
    let status = assert_error(
        add_user(&app, &alice, &org.id, &bob_id, "ghost").await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["role"]);
    let status =
        assert_error(add_user(&app, &alice, &org.id, &bob_id, "Bad!").await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["role"]);
    assert_eq!(members(&app, &alice, &org.id).await.len(), 1);
    let req =
        pb::CheckPermissionRequest { organization_id: org.id.clone(), subject: bob_id.clone(), permission: "x".into() };
    let status =
        assert_error(orgs(&app).check_permission(authed(req, &alice)).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["permission"]);
    let req = pb::GetOrganizationRequest { organization_id: "not-a-uuid".into() };
    let status =
        assert_error(orgs(&app).get_organization(authed(req, &alice)).await, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&status), ["organization_id"]);
}

async fn an_organization_is_renamed_listed_and_deleted(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let alice = app.user_session("alice@example.com").await.access_token;
    let bob_id = app.verified_user("bob@example.com").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(create(&app, &alice, &format!("Org {n}")).await.unwrap().id);
    }
    let taken = pb::CreateOrganizationRequest { name: "Acme".into(), slug: "acme".into() };
    let acme = orgs(&app).create_organization(authed(taken.clone(), &alice)).await.unwrap().into_inner();
    let acme = acme.organization.unwrap();
    assert_eq!(acme.slug, "acme");
    assert_error(orgs(&app).create_organization(authed(taken, &alice)).await, Code::AlreadyExists, "SLUG_TAKEN");

    // Paged: two at a time, every organization once.
    let (mut seen, mut token) = (Vec::new(), String::new());
    loop {
        let req = pb::ListOrganizationsRequest { page_size: 2, page_token: token.clone() };
        let page = orgs(&app).list_organizations(authed(req, &alice)).await.unwrap().into_inner();
        assert!(page.organizations.len() <= 2);
        seen.extend(page.organizations.into_iter().map(|m| (m.organization.unwrap().id, m.role)));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    ids.push(acme.id.clone());
    ids.sort();
    assert_eq!(seen.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), ids);
    assert!(seen.iter().all(|(_, role)| role == "owner"));

    // Renamed through the field mask; only the named fields change.
    let mask = |paths: &[&str]| Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() });
    let rename = pb::UpdateOrganizationRequest {
        organization_id: acme.id.clone(),
        name: "Acme Corp".into(),
        slug: "ignored-slug".into(),
        update_mask: mask(&["name"]),
    };
    let renamed = orgs(&app).update_organization(authed(rename, &alice)).await.unwrap().into_inner();
    let renamed = renamed.organization.unwrap();
    assert_eq!((renamed.name.as_str(), renamed.slug.as_str()), ("Acme Corp", "acme"));
    let bad = pb::UpdateOrganizationRequest {
        organization_id: acme.id.clone(),
        update_mask: mask(&["owner"]),
        ..Default::default()
    };
    let status = assert_error(
        orgs(&app).update_organization(authed(bad, &alice)).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["update_mask"]);
    let get = pb::GetOrganizationRequest { organization_id: acme.id.clone() };
    let got = orgs(&app).get_organization(authed(get.clone(), &alice)).await.unwrap().into_inner();
    assert_eq!((got.organization.unwrap().name.as_str(), got.role.as_str()), ("Acme Corp", "owner"));

    // An admin may rename but not delete; deleting ends the sessions scoped to it.
    add_user(&app, &alice, &acme.id, &bob_id, "admin").await.unwrap();
    let bob = login_into(&app, "bob@example.com", &acme.id).await.unwrap();
    let delete = pb::DeleteOrganizationRequest { organization_id: acme.id.clone() };
    assert_error(
        orgs(&app).delete_organization(authed(delete.clone(), &bob.access_token)).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
    );
    orgs(&app).delete_organization(authed(delete, &alice)).await.unwrap();
    assert_error(app.validate(&bob.access_token).await, Code::Unauthenticated, "TOKEN_REVOKED");
    assert_error(orgs(&app).get_organization(authed(get, &alice)).await, Code::NotFound, "NOT_FOUND");
    // The slug is free again.
    let again = pb::CreateOrganizationRequest { name: "Acme".into(), slug: "acme".into() };
    orgs(&app).create_organization(authed(again, &alice)).await.unwrap();
}

/// Alice's organization with bob as its admin, both signed in.
struct Acme {
    alice: String,
    bob_id: String,
    bob: String,
    org: pb::Organization,
}

impl Acme {
    async fn with_admin_bob(app: &TestApp) -> Self {
        let alice = app.user_session("alice@example.com").await.access_token;
        let bob_id = app.verified_user("bob@example.com").await;
        let bob = app.login("bob@example.com", PASSWORD).await.unwrap().access_token;
        let org = create(app, &alice, "Acme").await.unwrap();
        add_user(app, &alice, &org.id, &bob_id, "admin").await.unwrap();
        Self { alice, bob_id, bob, org }
    }
}

/// OWASP ASVS 5.0 V8.2.1: an admin (`roles:*`, `members:*`) neither writes
/// a role with power over the organization it lacks nor takes one an owner
/// wrote; and a custom `organization:*` does not make its holder an owner.
async fn an_admin_cannot_write_or_take_a_role_above_its_own(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let Acme { alice, bob_id, bob, org } = Acme::with_admin_bob(&app).await;
    let carol_id = app.verified_user("carol@example.com").await;
    let carol = app.login("carol@example.com", PASSWORD).await.unwrap().access_token;

    let superuser = create_role(&app, &bob, &org.id, "super", &["organization:*", "audit:*"]).await;
    assert_error(superuser, Code::PermissionDenied, "BEYOND_OWN_ROLE");
    create_role(&app, &bob, &org.id, "editor", &["documents:*"]).await.unwrap();
    create_role(&app, &alice, &org.id, "deputy", &["organization:*"]).await.unwrap();
    assert_error(set_role(&app, &bob, &org.id, &bob_id, "deputy").await, Code::PermissionDenied, "BEYOND_OWN_ROLE");
    add_user(&app, &alice, &org.id, &carol_id, "deputy").await.unwrap();
    assert_error(set_role(&app, &bob, &org.id, &carol_id, "member").await, Code::PermissionDenied, "BEYOND_OWN_ROLE");
    let delete = pb::DeleteOrganizationRequest { organization_id: org.id.clone() };
    assert_error(orgs(&app).delete_organization(authed(delete, &carol)).await, Code::PermissionDenied, "OWNER_ONLY");
    let roles: Vec<(String, String)> =
        members(&app, &alice, &org.id).await.into_iter().map(|m| (m.user_id, m.role)).collect();
    assert!(roles.contains(&(bob_id, "admin".into())) && roles.contains(&(carol_id, "deputy".into())), "{roles:?}");
}

/// OWASP ASVS 5.0 V8.2.2: an invitation holds only while whoever sent it
/// still could; removing the inviter closes the door they opened.
async fn an_invitation_dies_with_its_inviters_right(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let Acme { alice, bob_id, bob, org } = Acme::with_admin_bob(&app).await;
    let mut mailbox = Mailbox::open(&app).await;
    invite(&app, &bob, &org.id, "carol@example.com").await.unwrap();
    let mail = mailbox.invitation(&app, "carol@example.com").await;
    let remove = pb::RemoveMemberRequest { organization_id: org.id.clone(), user_id: bob_id };
    orgs(&app).remove_member(authed(remove, &alice)).await.unwrap();

    app.verified_user("carol@example.com").await;
    let carol = app.login("carol@example.com", PASSWORD).await.unwrap().access_token;
    assert_error(accept(&app, &carol, &mail.token).await, Code::FailedPrecondition, "INVITER_LOST_RIGHT");
    assert_eq!(members(&app, &alice, &org.id).await.len(), 1);
}

/// OWASP ASVS 5.0 V8.2.2: a token issued for one organization (handed to
/// that tenant's services) does not act in another its user belongs to,
/// and says the same for an organization that does not exist.
async fn a_token_for_one_organization_does_not_act_in_another(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let alice = app.user_session("alice@example.com").await.access_token;
    let a = create(&app, &alice, "Alpha").await.unwrap();
    let b = create(&app, &alice, "Beta").await.unwrap();
    let scoped = login_into(&app, "alice@example.com", &a.id).await.unwrap().access_token;
    let get = |org: &str| pb::GetOrganizationRequest { organization_id: org.into() };
    assert_eq!(orgs(&app).get_organization(authed(get(&a.id), &scoped)).await.unwrap().into_inner().role, "owner");
    let never = "01930000-0000-7000-8000-000000000001";
    for org in [b.id.as_str(), never] {
        let refused = orgs(&app).get_organization(authed(get(org), &scoped)).await;
        assert_error(refused, Code::PermissionDenied, "TOKEN_FOR_ANOTHER_ORGANIZATION");
        let delete = pb::DeleteOrganizationRequest { organization_id: org.into() };
        let refused = orgs(&app).delete_organization(authed(delete, &scoped)).await;
        assert_error(refused, Code::PermissionDenied, "TOKEN_FOR_ANOTHER_ORGANIZATION");
        let trail = pb::ListAuditEventsRequest { organization_id: org.into(), ..Default::default() };
        let refused = AuditServiceClient::new(app.channel.clone()).list_audit_events(authed(trail, &scoped)).await;
        assert_error(refused, Code::PermissionDenied, "TOKEN_FOR_ANOTHER_ORGANIZATION");
    }
    // An unscoped token still reaches both.
    assert_eq!(orgs(&app).get_organization(authed(get(&b.id), &alice)).await.unwrap().into_inner().role, "owner");
}

/// Parallel requests for one slug, or to accept one invitation, have one
/// winner; the others get the answer a sequential loser gets, never INTERNAL.
async fn racing_for_one_slug_or_one_invitation_has_one_winner(mode: Mode) {
    let app = TestApp::spawn(mode).await;
    let alice = app.user_session("alice@example.com").await.access_token;
    let (app, alice) = (&app, &alice);
    let race = |i: u32| {
        let req = pb::CreateOrganizationRequest { name: format!("Race {i}"), slug: "race".into() };
        async move { orgs(app).create_organization(authed(req, alice)).await.map(drop) }
    };
    let (a, b, c, d) = tokio::join!(race(0), race(1), race(2), race(3));
    let results = [a, b, c, d];
    let refused: Vec<(Code, String)> = results.iter().filter_map(|r| r.as_ref().err()).map(code_and_reason).collect();
    assert_eq!(results.len() - refused.len(), 1, "{refused:?}");
    assert!(refused.iter().all(|r| *r == (Code::AlreadyExists, "SLUG_TAKEN".into())), "{refused:?}");

    let org = create(app, alice, "Acme").await.unwrap();
    let mut mailbox = Mailbox::open(app).await;
    invite(app, alice, &org.id, "carol@example.com").await.unwrap();
    let mail = mailbox.invitation(app, "carol@example.com").await;
    app.verified_user("carol@example.com").await;
    let carol = app.login("carol@example.com", PASSWORD).await.unwrap().access_token;
    let once = || accept(app, &carol, &mail.token);
    let (a, b, c, d) = tokio::join!(once(), once(), once(), once());
    let results = [a.map(drop), b.map(drop), c.map(drop), d.map(drop)];
    let refused: Vec<(Code, String)> = results.iter().filter_map(|r| r.as_ref().err()).map(code_and_reason).collect();
    assert_eq!(results.len() - refused.len(), 1, "{refused:?}");
    let lost = |r: &(Code, String)| {
        *r == (Code::FailedPrecondition, "INVITATION_USED".into())
            || *r == (Code::AlreadyExists, "ALREADY_MEMBER".into())
    };
    assert!(refused.iter().all(lost), "{refused:?}");
    assert_eq!(members(app, alice, &org.id).await.len(), 2);
}
