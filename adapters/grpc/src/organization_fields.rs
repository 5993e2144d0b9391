//! `OrganizationService` requests into domain values, and organization
//! values into messages. Every bad field is an `INVALID_ARGUMENT`
//! violation naming it, so a caller learns about all of them at once.

use std::fmt::Display;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_domain::{
    Invitation, Membership, Organization, OrganizationId, OrganizationName, Permission, PermissionSet, Role, RoleName,
    Slug, UserId,
};
use uuid::Uuid;

use crate::fields::Fields;
use crate::{pb, timestamp};

/// Longest page token accepted before decoding; real ones are 48 bytes.
const MAX_PAGE_TOKEN_BYTES: usize = 64;
/// Longest string field checked before parsing (names, slugs, roles,
/// permissions are far shorter; this only bounds the work on junk).
const MAX_FIELD_BYTES: usize = 1024;

/// `"<field> <what is wrong>"`.
fn described<E: Display>(field: &'static str) -> impl FnOnce(E) -> String {
    move |e| format!("{field} {e}")
}

pub(crate) fn organization_id(fields: &mut Fields, field: &'static str, value: &str) -> Option<OrganizationId> {
    fields.uuid(field, value).map(OrganizationId::from_uuid)
}

pub(crate) fn user_id(fields: &mut Fields, field: &'static str, value: &str) -> Option<UserId> {
    fields.uuid(field, value).map(UserId::from_uuid)
}

pub(crate) fn name(fields: &mut Fields, value: &str) -> Option<OrganizationName> {
    let value = fields.required("name", value, MAX_FIELD_BYTES)?;
    fields.check("name", OrganizationName::parse(value).map_err(described("name")))
}

/// An optional slug: empty is none.
pub(crate) fn slug(fields: &mut Fields, value: &str) -> Option<Option<Slug>> {
    if value.is_empty() {
        return Some(None);
    }
    fields.check("slug", Slug::parse(value).map_err(described("slug"))).map(Some)
}

/// The name of a role a member is given (built-in or custom).
pub(crate) fn role(fields: &mut Fields, field: &'static str, value: &str) -> Option<RoleName> {
    let value = fields.required(field, value, MAX_FIELD_BYTES)?;
    fields.check(field, RoleName::parse(value).map_err(described(field)))
}

/// The name of a new custom role.
pub(crate) fn custom_role(fields: &mut Fields, value: &str) -> Option<RoleName> {
    let value = fields.required("name", value, MAX_FIELD_BYTES)?;
    fields.check("name", RoleName::parse_custom(value).map_err(described("name")))
}

pub(crate) fn permission(fields: &mut Fields, field: &'static str, value: &str) -> Option<Permission> {
    let value = fields.required(field, value, MAX_FIELD_BYTES)?;
    fields.check(field, Permission::parse(value).map_err(described(field)))
}

/// The permissions of a role: each well-formed, at most the limit.
pub(crate) fn permission_set(fields: &mut Fields, values: &[String]) -> Option<PermissionSet> {
    let parsed = PermissionSet::parse(values.iter().map(String::as_str)).map_err(|(index, e)| match index {
        Some(i) => format!("permissions[{i}] {e}"),
        None => format!("permissions: {e}"),
    });
    fields.check("permissions", parsed)
}

/// Permissions to check: 1 to the role limit, each well-formed.
pub(crate) fn permissions_to_check(fields: &mut Fields, values: &[String]) -> Option<Vec<Permission>> {
    permission_set(fields, values)?;
    values.iter().map(|v| Permission::parse(v).ok()).collect()
}

/// The opaque page token of a list keyed by id: base64url of the last id.
pub(crate) fn page_token(last: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(last.to_string())
}

/// The id a page token [`page_token`] handed out names; empty is the first page.
pub(crate) fn page_start(fields: &mut Fields, token: &str) -> Option<Option<Uuid>> {
    if token.is_empty() {
        return Some(None);
    }
    let decoded = (token.len() <= MAX_PAGE_TOKEN_BYTES)
        .then(|| URL_SAFE_NO_PAD.decode(token).ok())
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| Uuid::try_parse(&text).ok());
    match decoded {
        Some(id) => Some(Some(id)),
        None => {
            fields.violation("page_token", "page_token is not one this server handed out");
            None
        }
    }
}

pub(crate) fn organization(org: Organization) -> pb::Organization {
    pb::Organization {
        id: org.id.to_string(),
        name: org.name.as_str().to_owned(),
        slug: org.slug.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        create_time: Some(timestamp(org.created_at)),
        update_time: Some(timestamp(org.updated_at)),
    }
}

pub(crate) fn member(m: Membership) -> pb::Member {
    pb::Member { user_id: m.user.to_string(), role: m.role.to_string(), join_time: Some(timestamp(m.joined_at)) }
}

pub(crate) fn invitation(i: Invitation) -> pb::Invitation {
    pb::Invitation {
        id: i.id.to_string(),
        email: i.email.as_str().to_owned(),
        role: i.role.to_string(),
        invited_by: i.invited_by.to_string(),
        create_time: Some(timestamp(i.created_at)),
        expire_time: Some(timestamp(i.expires_at)),
    }
}

pub(crate) fn role_message(r: Role) -> pb::Role {
    pb::Role {
        name: r.name.to_string(),
        permissions: r.permissions.iter().map(ToString::to_string).collect(),
        builtin: r.builtin,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use gatehouse_application::AppError;

    use super::*;

    fn violations(fields: Fields) -> Vec<(&'static str, String)> {
        match fields.finish() {
            Err(AppError::InvalidArgument(v)) => v.into_iter().map(|v| (v.field, v.description)).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn bad_names_slugs_roles_and_permissions_name_their_field() {
        let mut f = Fields::default();
        assert!(name(&mut f, "").is_none());
        assert!(name(&mut f, &"x".repeat(101)).is_none());
        assert!(slug(&mut f, "Bad Slug").is_none());
        assert!(role(&mut f, "role", "Not A Role").is_none());
        assert!(custom_role(&mut f, "owner").is_none());
        assert!(permission(&mut f, "permission", "documents").is_none());
        let got: Vec<_> = violations(f).into_iter().map(|(field, _)| field).collect();
        assert_eq!(got, ["name", "name", "slug", "role", "name", "permission"]);
    }

    #[test]
    fn a_malformed_permission_is_named_by_its_index_and_too_many_are_refused() {
        let mut f = Fields::default();
        assert!(permission_set(&mut f, &["documents:read".into(), "nope".into()]).is_none());
        let many: Vec<String> = (0..=PermissionSet::MAX).map(|i| format!("r{i}:read")).collect();
        assert!(permission_set(&mut f, &many).is_none());
        let got = violations(f);
        assert_eq!(got[0].0, "permissions");
        assert!(got[0].1.starts_with("permissions[1]"), "{}", got[0].1);
        assert!(got[1].1.contains("at most 50"), "{}", got[1].1);
    }

    #[test]
    fn page_tokens_round_trip_and_junk_is_refused() {
        let id = Uuid::from_u128(7);
        let mut f = Fields::default();
        assert_eq!(page_start(&mut f, &page_token(id)), Some(Some(id)));
        assert_eq!(page_start(&mut f, ""), Some(None));
        assert_eq!(page_start(&mut f, "not-a-token"), None);
        assert_eq!(f.page_size(101), None);
        assert_eq!(f.page_size(0), Some(0));
        let got: Vec<_> = violations(f).into_iter().map(|(field, _)| field).collect();
        assert_eq!(got, ["page_token", "page_size"]);
    }
}
