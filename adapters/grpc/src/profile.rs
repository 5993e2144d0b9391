//! The caller's account on the wire, both ways: an [`Account`] as a
//! `pb::User`, and an `UpdateMe` request's field mask as the change it asks for.

use gatehouse_domain::{Account, DisplayName, LoginEmail};
use prost_types::FieldMask;

use crate::fields::Fields;
use crate::pb;
use crate::timestamp;

/// The `User` message of an account.
pub(crate) fn user(account: Account) -> pb::User {
    pb::User {
        id: account.id().to_string(),
        display_name: account.display_name().as_str().to_owned(),
        primary_email: account.primary_email().map(|e| e.email.as_str().to_owned()).unwrap_or_default(),
        created_at: Some(timestamp(account.created_at())),
        updated_at: Some(timestamp(account.updated_at())),
        emails: account.emails().iter().cloned().map(login_email).collect(),
    }
}

/// The `LoginEmail` message of a login email.
pub(crate) fn login_email(email: LoginEmail) -> pb::LoginEmail {
    pb::LoginEmail {
        email: email.email.as_str().to_owned(),
        primary: email.primary,
        verified: email.verified_at.is_some(),
        verified_at: email.verified_at.map(timestamp),
        created_at: Some(timestamp(email.created_at)),
    }
}

/// The only path `UpdateMe` supports.
const DISPLAY_NAME: &str = "display_name";

/// The new display name an `UpdateMe` request sets. The mask must name at
/// least one field and only supported ones; `user` must then be present.
/// Every problem is recorded in `fields`.
pub(crate) fn display_name_change(
    fields: &mut Fields,
    user: Option<pb::User>,
    mask: Option<FieldMask>,
) -> Option<DisplayName> {
    let paths = mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        fields.violation("update_mask", format!("update_mask must name the fields to change ({DISPLAY_NAME})"));
    }
    let mut sets_display_name = false;
    for path in &paths {
        if path == DISPLAY_NAME {
            sets_display_name = true;
        } else {
            fields.violation("update_mask", format!("unsupported path {path:?}; supported: {DISPLAY_NAME}"));
        }
    }
    if !sets_display_name {
        return None;
    }
    match user {
        Some(user) => fields.check("user.display_name", DisplayName::parse(&user.display_name)),
        None => {
            fields.violation("user", "user is required");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::{TimeZone, Utc};
    use gatehouse_application::AppError;
    use gatehouse_domain::{EmailAddress, UserId};

    use super::*;

    fn change(user: Option<&str>, paths: Option<&[&str]>) -> Result<DisplayName, Vec<&'static str>> {
        let mut fields = Fields::default();
        let user = user.map(|name| pb::User { display_name: name.into(), ..pb::User::default() });
        let mask = paths.map(|p| FieldMask { paths: p.iter().map(|&s| s.to_owned()).collect() });
        let name = display_name_change(&mut fields, user, mask);
        match fields.finish() {
            Ok(()) => Ok(name.unwrap()),
            Err(AppError::InvalidArgument(v)) => Err(v.iter().map(|v| v.field).collect()),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn display_name_path_sets_the_trimmed_name() {
        assert_eq!(change(Some("  Ann "), Some(&["display_name"])).unwrap().as_str(), "Ann");
    }

    #[test]
    fn empty_or_missing_mask_is_refused() {
        assert_eq!(change(Some("Ann"), None).unwrap_err(), ["update_mask"]);
        assert_eq!(change(Some("Ann"), Some(&[])).unwrap_err(), ["update_mask"]);
    }

    #[test]
    fn unknown_paths_are_refused_along_with_a_bad_name() {
        assert_eq!(change(Some("Ann"), Some(&["id"])).unwrap_err(), ["update_mask"]);
        let long = "x".repeat(101);
        assert_eq!(
            change(Some(&long), Some(&["display_name", "emails"])).unwrap_err(),
            ["update_mask", "user.display_name"]
        );
    }

    #[test]
    fn a_named_field_needs_the_user() {
        assert_eq!(change(None, Some(&["display_name"])).unwrap_err(), ["user"]);
    }

    #[test]
    fn account_becomes_user_with_its_primary_email() {
        let t = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
        let email = |s: &str, primary: bool, verified: bool| LoginEmail {
            email: EmailAddress::parse(s).unwrap(),
            primary,
            verified_at: verified.then_some(t),
            created_at: t,
        };
        let account = Account::restore(
            UserId::from_uuid(uuid::Uuid::nil()),
            DisplayName::parse("Ann").unwrap(),
            t,
            t,
            vec![email("ann@example.com", true, true), email("alt@example.com", false, false)],
        );
        let u = user(account);
        assert_eq!(u.primary_email, "ann@example.com");
        assert_eq!(u.display_name, "Ann");
        assert_eq!(u.emails.len(), 2);
        assert!(u.emails[0].verified && u.emails[0].verified_at.is_some());
        assert!(!u.emails[1].verified && u.emails[1].verified_at.is_none());
        assert_eq!(u.created_at.unwrap().seconds, t.timestamp());
    }
}
