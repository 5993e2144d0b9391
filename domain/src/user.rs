//! User accounts.

use chrono::{DateTime, Utc};

use crate::email::EmailAddress;
use crate::ids::UserId;
use crate::mfa::Factor;
#[cfg(test)]
use crate::mfa::FactorKind;
use crate::password::PasswordHash;

/// Why a display name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisplayNameError {
    #[error("display name must be at most {max} characters")]
    TooLong { max: usize },
    #[error("display name must not contain control characters")]
    ControlCharacter,
}

/// The name a user chose to be shown by; may be empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Longest display name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Trims and validates a display name.
    ///
    /// # Errors
    /// [`DisplayNameError`] naming the rule broken.
    pub fn parse(input: &str) -> Result<Self, DisplayNameError> {
        let trimmed = input.trim();
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(DisplayNameError::TooLong { max: Self::MAX_CHARS });
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DisplayNameError::ControlCharacter);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user account with its primary login email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    id: UserId,
    email: EmailAddress,
    display_name: DisplayName,
    password_hash: PasswordHash,
    created_at: DateTime<Utc>,
}

impl User {
    /// A new account signing up at `now` with `email` as its primary address.
    #[must_use]
    pub const fn new(
        id: UserId,
        email: EmailAddress,
        display_name: DisplayName,
        password_hash: PasswordHash,
        now: DateTime<Utc>,
    ) -> Self {
        Self { id, email, display_name, password_hash, created_at: now }
    }

    #[must_use]
    pub const fn id(&self) -> UserId {
        self.id
    }

    /// The primary login email it signed up with.
    #[must_use]
    pub const fn email(&self) -> &EmailAddress {
        &self.email
    }

    #[must_use]
    pub const fn display_name(&self) -> &DisplayName {
        &self.display_name
    }

    #[must_use]
    pub const fn password_hash(&self) -> &PasswordHash {
        &self.password_hash
    }

    #[must_use]
    pub const fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
}

/// One address a user can log in with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginEmail {
    pub email: EmailAddress,
    /// The address notices go to; exactly one per account.
    pub primary: bool,
    pub verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Why a change of an account's login emails is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("the account has no such login email")]
    NoSuchEmail,
    #[error("make another address primary before removing this one")]
    EmailIsPrimary,
    #[error("the last verified address cannot be removed")]
    LastVerifiedEmail,
    #[error("only a verified address can be primary")]
    EmailNotVerified,
}

/// What removing a login email takes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRemoval {
    /// The email second factors that send codes to the address: they go with
    /// it, since the address may belong to someone else tomorrow.
    pub factors: Vec<uuid::Uuid>,
    /// No active factor is left after that: the backup codes go too, as
    /// with the removal of a last factor.
    pub backup_codes: bool,
}

/// What making an address primary changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrimaryChange {
    /// It already was the primary address.
    Unchanged,
    /// It is now; `previous` is the address that was (and gets a notice).
    Changed { previous: Option<EmailAddress> },
}

/// An account as its owner sees it, and the rules of its login emails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    id: UserId,
    display_name: DisplayName,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Primary first, then by creation.
    emails: Vec<LoginEmail>,
}

impl Account {
    /// An account as stored; `emails` in any order (they are kept primary
    /// first, then by creation).
    #[must_use]
    pub fn restore(
        id: UserId,
        display_name: DisplayName,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
        mut emails: Vec<LoginEmail>,
    ) -> Self {
        emails.sort_by(|a, b| b.primary.cmp(&a.primary).then(a.created_at.cmp(&b.created_at)));
        Self { id, display_name, created_at, updated_at, emails }
    }

    #[must_use]
    pub const fn id(&self) -> UserId {
        self.id
    }

    #[must_use]
    pub const fn display_name(&self) -> &DisplayName {
        &self.display_name
    }

    #[must_use]
    pub const fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    #[must_use]
    pub const fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }

    /// The login emails, primary first, then by creation.
    #[must_use]
    pub fn emails(&self) -> &[LoginEmail] {
        &self.emails
    }

    /// The primary login email.
    #[must_use]
    pub fn primary_email(&self) -> Option<&LoginEmail> {
        self.emails.iter().find(|e| e.primary)
    }

    /// Removes a login email: never the primary one (another must be made
    /// primary first), never the last verified one (the account would have
    /// no address to recover through). `factors` are the account's second
    /// factors; the email factors sending codes to the address go with it.
    ///
    /// # Errors
    /// [`AccountError::NoSuchEmail`], [`AccountError::EmailIsPrimary`],
    /// [`AccountError::LastVerifiedEmail`]; nothing changes then.
    pub fn remove_email(&mut self, email: &EmailAddress, factors: &[Factor]) -> Result<EmailRemoval, AccountError> {
        let index = self.emails.iter().position(|e| &e.email == email).ok_or(AccountError::NoSuchEmail)?;
        let target = &self.emails[index];
        if target.primary {
            return Err(AccountError::EmailIsPrimary);
        }
        let verified = self.emails.iter().filter(|e| e.verified_at.is_some()).count();
        if target.verified_at.is_some() && verified <= 1 {
            return Err(AccountError::LastVerifiedEmail);
        }
        self.emails.remove(index);
        let gone: Vec<uuid::Uuid> = factors.iter().filter(|f| f.sends_to(email)).map(Factor::id).collect();
        let backup_codes = !gone.is_empty() && !factors.iter().any(|f| f.active() && !gone.contains(&f.id()));
        Ok(EmailRemoval { factors: gone, backup_codes })
    }

    /// Makes a verified login email the primary one.
    ///
    /// # Errors
    /// [`AccountError::NoSuchEmail`], [`AccountError::EmailNotVerified`];
    /// nothing changes then.
    pub fn set_primary_email(&mut self, email: &EmailAddress) -> Result<PrimaryChange, AccountError> {
        let target = self.emails.iter().find(|e| &e.email == email).ok_or(AccountError::NoSuchEmail)?;
        if target.primary {
            return Ok(PrimaryChange::Unchanged);
        }
        if target.verified_at.is_none() {
            return Err(AccountError::EmailNotVerified);
        }
        let previous = self.primary_email().map(|e| e.email.clone());
        for e in &mut self.emails {
            e.primary = &e.email == email;
        }
        self.emails.sort_by(|a, b| b.primary.cmp(&a.primary).then(a.created_at.cmp(&b.created_at)));
        Ok(PrimaryChange::Changed { previous })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn display_name_is_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Ann  ").map(|n| n.as_str().to_owned()), Ok("Ann".into()));
        assert_eq!(DisplayName::parse("").map(|n| n.as_str().to_owned()), Ok(String::new()));
        assert_eq!(DisplayName::parse(&"x".repeat(101)), Err(DisplayNameError::TooLong { max: 100 }));
        assert_eq!(DisplayName::parse("a\u{0007}b"), Err(DisplayNameError::ControlCharacter));
    }

    fn t(n: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::seconds(n)
    }

    fn email(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    fn login(address: &str, primary: bool, verified: bool, n: i64) -> LoginEmail {
        LoginEmail { email: email(address), primary, verified_at: verified.then(|| t(n)), created_at: t(n) }
    }

    fn account(emails: Vec<LoginEmail>) -> Account {
        let id = UserId::from_uuid(uuid::Uuid::nil());
        Account::restore(id, DisplayName::default(), t(0), t(0), emails)
    }

    fn email_factor(id: u128, to: &str) -> Factor {
        let user = UserId::from_uuid(uuid::Uuid::nil());
        let mut factor = Factor::pending_code(uuid::Uuid::from_u128(id), user, FactorKind::Email, to.to_owned(), t(0));
        factor.confirm(t(0));
        factor
    }

    #[test]
    fn the_primary_and_the_last_verified_address_stay() {
        let mut a = account(vec![
            login("ann@example.com", true, true, 1),
            login("new@example.com", false, false, 2),
            login("old@example.com", false, true, 3),
        ]);
        assert_eq!(a.remove_email(&email("ann@example.com"), &[]), Err(AccountError::EmailIsPrimary));
        assert_eq!(a.remove_email(&email("who@example.com"), &[]), Err(AccountError::NoSuchEmail));
        assert_eq!(
            a.remove_email(&email("old@example.com"), &[]),
            Ok(EmailRemoval { factors: vec![], backup_codes: false })
        );
        assert_eq!(a.emails().len(), 2);

        let mut lone = account(vec![login("ann@example.com", true, false, 1), login("v@example.com", false, true, 2)]);
        assert_eq!(lone.remove_email(&email("v@example.com"), &[]), Err(AccountError::LastVerifiedEmail));
        assert_eq!(lone.emails().len(), 2, "a refusal changes nothing");
    }

    #[test]
    fn an_email_factor_goes_with_its_address() {
        let mut a = account(vec![login("ann@example.com", true, true, 1), login("x@example.com", false, true, 2)]);
        let factors = [email_factor(1, "x@example.com"), email_factor(2, "ann@example.com")];
        let removal = a.remove_email(&email("x@example.com"), &factors).unwrap();
        assert_eq!(removal.factors, [uuid::Uuid::from_u128(1)]);
        assert!(!removal.backup_codes, "another active factor is left");
        let mut b = account(vec![login("ann@example.com", true, true, 1), login("x@example.com", false, true, 2)]);
        let last = b.remove_email(&email("x@example.com"), &factors[..1]).unwrap();
        assert!(last.backup_codes, "the last active factor takes the backup codes with it");
    }

    #[test]
    fn only_a_verified_address_becomes_primary() {
        let mut a = account(vec![login("ann@example.com", true, true, 1), login("new@example.com", false, false, 2)]);
        assert_eq!(a.set_primary_email(&email("new@example.com")), Err(AccountError::EmailNotVerified));
        assert_eq!(a.set_primary_email(&email("who@example.com")), Err(AccountError::NoSuchEmail));
        assert_eq!(a.set_primary_email(&email("ann@example.com")), Ok(PrimaryChange::Unchanged));
        let mut b = account(vec![login("ann@example.com", true, true, 1), login("v@example.com", false, true, 2)]);
        assert_eq!(
            b.set_primary_email(&email("v@example.com")),
            Ok(PrimaryChange::Changed { previous: Some(email("ann@example.com")) })
        );
        assert_eq!(b.primary_email().map(|e| e.email.as_str()), Some("v@example.com"));
        assert_eq!(b.emails().iter().filter(|e| e.primary).count(), 1);
    }
}
