//! Second factors: TOTP apps, email codes, SMS codes, backup codes, and the
//! login challenge that asks for one of them.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::email::EmailAddress;
use crate::ids::UserId;
use crate::session::ClientInfo;
use crate::tries::{Closed, Tries};

/// The kinds of second factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FactorKind {
    /// An authenticator app (RFC 6238 TOTP).
    Totp,
    /// A code sent to one of the user's verified email addresses. Weaker
    /// than TOTP (NIST SP 800-63B-4 no longer counts email as out-of-band),
    /// offered because users asked for it; configuration can disable it.
    Email,
    /// A code sent by SMS to a verified phone number.
    Sms,
}

impl FactorKind {
    /// Stable text stored with the factor.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }

    /// Reads the stored text back.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "totp" => Some(Self::Totp),
            "email" => Some(Self::Email),
            "sms" => Some(Self::Sms),
            _ => None,
        }
    }
}

/// Why a phone number is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number must be in E.164 form: + then 8 to 15 digits, e.g. +447700900123")]
    Format,
}

/// A phone number in E.164 form (`+` and 8 to 15 digits, no leading zero).
/// Spaces, dashes, dots and parentheses typed by people are removed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// # Errors
    /// [`PhoneError::Format`] when the input is no E.164 number.
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let compact: String = input.trim().chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
        let digits = compact.strip_prefix('+').ok_or(PhoneError::Format)?;
        let ok =
            (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if ok { Ok(Self(compact)) } else { Err(PhoneError::Format) }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A TOTP secret sealed with an AEAD key: what storage holds.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// Which key sealed it, so keys can be rotated.
    pub key_id: String,
    /// Nonce followed by ciphertext and tag.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedSecret(key {}, {} bytes)", self.key_id, self.data.len())
    }
}

/// How long a pending factor waits for its confirmation: ample time to scan
/// a QR code or read a code (which itself lives 10 minutes), short enough
/// that a secret shown once does not stay confirmable for days.
pub const ENROLMENT_TTL: TimeDelta = TimeDelta::hours(1);

/// One second factor of a user. It is pending until confirmed with a code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Factor {
    id: Uuid,
    user_id: UserId,
    kind: FactorKind,
    /// The address or number codes go to (email and SMS factors).
    destination: Option<String>,
    /// The sealed TOTP secret (TOTP factors).
    secret: Option<SealedSecret>,
    active: bool,
    created_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    /// The newest TOTP time step accepted; older and equal steps are refused.
    last_totp_step: Option<i64>,
}

impl Factor {
    /// A new authenticator-app factor, pending until confirmed.
    #[must_use]
    pub const fn pending_totp(id: Uuid, user_id: UserId, secret: SealedSecret, now: DateTime<Utc>) -> Self {
        Self::pending(id, user_id, FactorKind::Totp, None, Some(secret), now)
    }

    /// A new email or SMS factor sending to `destination`, pending until confirmed.
    #[must_use]
    pub const fn pending_code(
        id: Uuid,
        user_id: UserId,
        kind: FactorKind,
        destination: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self::pending(id, user_id, kind, Some(destination), None, now)
    }

    const fn pending(
        id: Uuid,
        user_id: UserId,
        kind: FactorKind,
        destination: Option<String>,
        secret: Option<SealedSecret>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            user_id,
            kind,
            destination,
            secret,
            active: false,
            created_at: now,
            confirmed_at: None,
            last_totp_step: None,
        }
    }

    /// A factor as storage holds it, one argument per stored column.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub const fn restore(
        id: Uuid,
        user_id: UserId,
        kind: FactorKind,
        destination: Option<String>,
        secret: Option<SealedSecret>,
        active: bool,
        created_at: DateTime<Utc>,
        confirmed_at: Option<DateTime<Utc>>,
        last_totp_step: Option<i64>,
    ) -> Self {
        Self { id, user_id, kind, destination, secret, active, created_at, confirmed_at, last_totp_step }
    }

    #[must_use]
    pub const fn id(&self) -> Uuid {
        self.id
    }

    #[must_use]
    pub const fn user_id(&self) -> UserId {
        self.user_id
    }

    #[must_use]
    pub const fn kind(&self) -> FactorKind {
        self.kind
    }

    /// The address or number codes go to (email and SMS factors).
    #[must_use]
    pub fn destination(&self) -> Option<&str> {
        self.destination.as_deref()
    }

    /// The sealed TOTP secret (TOTP factors).
    #[must_use]
    pub const fn secret(&self) -> Option<&SealedSecret> {
        self.secret.as_ref()
    }

    /// Confirmed, so it counts as a second factor.
    #[must_use]
    pub const fn active(&self) -> bool {
        self.active
    }

    #[must_use]
    pub const fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    #[must_use]
    pub const fn confirmed_at(&self) -> Option<DateTime<Utc>> {
        self.confirmed_at
    }

    /// The newest TOTP time step accepted.
    #[must_use]
    pub const fn last_totp_step(&self) -> Option<i64> {
        self.last_totp_step
    }

    /// Confirms a pending factor at `now`.
    pub const fn confirm(&mut self, now: DateTime<Utc>) {
        self.active = true;
        self.confirmed_at = Some(now);
    }

    /// Accepts TOTP time step `step` if it is newer than every step accepted
    /// before: a code, or any older one, is never accepted twice. `false`
    /// (nothing changes) for a step already used or older.
    pub fn accept_totp_step(&mut self, step: i64) -> bool {
        if self.last_totp_step.is_some_and(|last| step <= last) {
            return false;
        }
        self.last_totp_step = Some(step);
        true
    }

    /// Whether this factor sends its codes to `email`.
    #[must_use]
    pub fn sends_to(&self, email: &EmailAddress) -> bool {
        self.kind == FactorKind::Email && self.destination.as_deref() == Some(email.as_str())
    }

    /// The factors of `existing` that a new enrolment of this one replaces:
    /// the same user's pending factors of the same kind, and their expired
    /// enrolments of any kind. An abandoned enrolment must not linger, nor
    /// pile up: a user has at most one pending factor of each kind, which is
    /// what someone who starts over expects (the newest QR code or code sent
    /// is the one that works).
    #[must_use]
    pub fn replaces(&self, existing: &[Self]) -> Vec<Uuid> {
        existing
            .iter()
            .filter(|f| f.id != self.id && f.user_id == self.user_id && !f.active)
            .filter(|f| f.kind == self.kind || f.enrolment_expired(self.created_at))
            .map(|f| f.id)
            .collect()
    }

    /// A pending factor not confirmed within [`ENROLMENT_TTL`] of its
    /// enrolment can no longer be confirmed (its secret or code was shown
    /// long ago); an active factor never expires.
    #[must_use]
    pub fn enrolment_expired(&self, now: DateTime<Utc>) -> bool {
        !self.active && now >= self.created_at + ENROLMENT_TTL
    }

    /// A masked hint a login screen can show: `a***@example.com`,
    /// `+44 **** **12`, `authenticator app`.
    #[must_use]
    pub fn hint(&self) -> String {
        match (self.kind, self.destination.as_deref()) {
            (FactorKind::Totp, _) | (_, None) => "authenticator app".to_owned(),
            (FactorKind::Email, Some(email)) => mask_email(email),
            (FactorKind::Sms, Some(phone)) => mask_phone(phone),
        }
    }
}

fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let country: String = digits.iter().take(2).collect();
    let last: String = digits.iter().skip(digits.len().saturating_sub(2)).collect();
    format!("+{country} **** **{last}")
}

/// What confirming a pending factor does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activation {
    /// It is the account's first active factor: backup codes are issued with it.
    pub first: bool,
}

/// What removing a factor takes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removal {
    /// No active factor is left: the backup codes go too (they are a second
    /// factor only beside another one).
    pub backup_codes: bool,
}

/// Confirms the pending factor `id` among a user's `factors`; `None` when
/// there is no such pending factor.
#[must_use]
pub fn activate(factors: &[Factor], id: Uuid) -> Option<Activation> {
    factors.iter().find(|f| f.id == id && !f.active)?;
    Some(Activation { first: !factors.iter().any(|f| f.active) })
}

/// Removes the factor `id` among a user's `factors`; `None` when there is no such factor.
#[must_use]
pub fn remove(factors: &[Factor], id: Uuid) -> Option<Removal> {
    factors.iter().find(|f| f.id == id)?;
    Some(Removal { backup_codes: !factors.iter().any(|f| f.active && f.id != id) })
}

/// A login waiting for its second factor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfaChallenge {
    id: Uuid,
    user_id: UserId,
    /// Where the login came from; the session gets it when the challenge passes.
    client: ClientInfo,
    created_at: DateTime<Utc>,
    /// Wrong codes, the end, and when it was passed.
    tries: Tries,
}

/// Why a code may not be tried on a challenge.
pub type ChallengeClosed = Closed;

impl MfaChallenge {
    /// A challenge a login opens at `now`, live until `expires_at`, dying after `max_attempts` wrong codes.
    #[must_use]
    pub const fn open(
        id: Uuid,
        user_id: UserId,
        client: ClientInfo,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        max_attempts: u32,
    ) -> Self {
        Self { id, user_id, client, created_at: now, tries: Tries::fresh(max_attempts, expires_at) }
    }

    /// One wrong fresh proof at `now`, kept as a spent one-attempt challenge
    /// so that it counts toward the account's limit like a wrong login code.
    #[must_use]
    pub const fn failed_proof(id: Uuid, user_id: UserId, now: DateTime<Utc>) -> Self {
        Self {
            id,
            user_id,
            client: ClientInfo { user_agent: None, ip: None },
            created_at: now,
            tries: Tries { attempts: 1, max_attempts: 1, expires_at: now, consumed_at: Some(now) },
        }
    }

    /// A challenge as storage holds it, one argument per stored column.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub const fn restore(
        id: Uuid,
        user_id: UserId,
        client: ClientInfo,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        attempts: u32,
        max_attempts: u32,
        consumed_at: Option<DateTime<Utc>>,
    ) -> Self {
        Self { id, user_id, client, created_at, tries: Tries { attempts, max_attempts, expires_at, consumed_at } }
    }

    #[must_use]
    pub const fn id(&self) -> Uuid {
        self.id
    }

    #[must_use]
    pub const fn user_id(&self) -> UserId {
        self.user_id
    }

    /// Where the login came from.
    #[must_use]
    pub const fn client(&self) -> &ClientInfo {
        &self.client
    }

    #[must_use]
    pub const fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    #[must_use]
    pub const fn expires_at(&self) -> DateTime<Utc> {
        self.tries.expires_at
    }

    /// Wrong codes so far.
    #[must_use]
    pub const fn attempts(&self) -> u32 {
        self.tries.attempts
    }

    #[must_use]
    pub const fn max_attempts(&self) -> u32 {
        self.tries.max_attempts
    }

    #[must_use]
    pub const fn consumed_at(&self) -> Option<DateTime<Utc>> {
        self.tries.consumed_at
    }

    /// Whether a code may still be tried at `now`, and if not why: passed
    /// already, expired, or out of wrong-code attempts, in that order.
    ///
    /// # Errors
    /// The [`ChallengeClosed`] reason.
    pub fn open_at(&self, now: DateTime<Utc>) -> Result<(), ChallengeClosed> {
        self.tries.open_at(now)
    }

    /// Whether a code may still be tried at `now`.
    #[must_use]
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.open_at(now).is_ok()
    }

    /// Counts one wrong code, only while unpassed and below the limit;
    /// `false` when nothing was counted.
    pub const fn count_failure(&mut self) -> bool {
        self.tries.count_failure()
    }

    /// Passes the challenge at `now`, if it is unpassed and unexpired: `true`
    /// exactly once. Attempts are not checked here: the code was accepted
    /// before, and wrong codes racing with the right one must not lock it
    /// out after that.
    pub fn pass(&mut self, now: DateTime<Utc>) -> bool {
        if self.tries.consumed_at.is_some() || now >= self.tries.expires_at {
            return false;
        }
        self.tries.consume(now);
        true
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_challenge_counts_wrong_codes_to_its_limit_and_passes_once() {
        let now = DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::days(20_000);
        let user = UserId::from_uuid(Uuid::nil());
        let open = || {
            MfaChallenge::open(Uuid::nil(), user, ClientInfo::default(), now, now + chrono::TimeDelta::minutes(5), 2)
        };
        let mut c = open();
        assert_eq!(c.open_at(now), Ok(()));
        assert!(c.count_failure() && c.count_failure() && !c.count_failure());
        assert_eq!(c.open_at(now), Err(ChallengeClosed::AttemptsExhausted));
        let mut p = open();
        assert!(p.pass(now) && !p.pass(now), "passes exactly once");
        assert_eq!(p.open_at(now), Err(ChallengeClosed::Used));
        assert!(!open().pass(now + chrono::TimeDelta::minutes(5)), "not once expired");
        assert_eq!(open().open_at(now + chrono::TimeDelta::minutes(5)), Err(ChallengeClosed::Expired));
        assert_eq!(MfaChallenge::failed_proof(Uuid::nil(), user, now).attempts(), 1);
    }

    use super::*;

    /// OWASP ASVS 5.0 V6.4.1 (enrolment is bounded and short-lived): one
    /// pending factor per kind, and an expired enrolment of any kind goes
    /// with the next one.
    #[test]
    fn an_enrolment_replaces_pending_factors_of_its_kind_and_expired_ones() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000);
        let user = UserId::from_uuid(Uuid::nil());
        let other = UserId::from_uuid(Uuid::from_u128(9));
        let sms = |id: u128, user: UserId, at: DateTime<Utc>| {
            Factor::pending_code(Uuid::from_u128(id), user, FactorKind::Sms, "+447700900123".into(), at)
        };
        let email = |id: u128, at: DateTime<Utc>| {
            Factor::pending_code(Uuid::from_u128(id), user, FactorKind::Email, "ann@example.com".into(), at)
        };
        let mut active = sms(1, user, t0);
        active.confirm(t0);
        let existing = vec![active, sms(2, user, t0), sms(3, other, t0), email(4, t0), email(5, t0 + ENROLMENT_TTL)];

        let soon = sms(10, user, t0 + TimeDelta::minutes(59));
        assert_eq!(soon.replaces(&existing), [Uuid::from_u128(2)], "same kind only; the active one stays");
        let later = sms(11, user, t0 + ENROLMENT_TTL);
        assert_eq!(later.replaces(&existing), [Uuid::from_u128(2), Uuid::from_u128(4)], "and the expired email one");
    }

    #[test]
    fn a_pending_factor_expires_an_hour_after_enrolment_and_an_active_one_never() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000);
        let mut f = Factor::pending_code(
            Uuid::nil(),
            UserId::from_uuid(Uuid::nil()),
            FactorKind::Sms,
            "+447700900123".into(),
            t0,
        );
        assert!(!f.enrolment_expired(t0 + ENROLMENT_TTL - TimeDelta::seconds(1)));
        assert!(f.enrolment_expired(t0 + ENROLMENT_TTL));
        f.confirm(t0);
        assert!(!f.enrolment_expired(t0 + TimeDelta::days(400)));
    }

    #[test]
    fn phone_numbers_must_be_e164() {
        assert_eq!(PhoneNumber::parse(" +44 7700 900-123 ").map(|p| p.as_str().to_owned()), Ok("+447700900123".into()));
        for bad in ["447700900123", "+0447700900", "+1234567", "+1234567890123456", "+44 77OO 900123", "", "+"] {
            assert_eq!(PhoneNumber::parse(bad), Err(PhoneError::Format), "{bad:?}");
        }
    }

    #[test]
    fn hints_mask_the_destination() {
        let factor = |kind, destination: Option<&str>| Factor {
            id: Uuid::nil(),
            user_id: UserId::from_uuid(Uuid::nil()),
            kind,
            destination: destination.map(str::to_owned),
            secret: None,
            active: true,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            confirmed_at: None,
            last_totp_step: None,
        };
        assert_eq!(factor(FactorKind::Email, Some("ann@example.com")).hint(), "a***@example.com");
        assert_eq!(factor(FactorKind::Sms, Some("+447700900112")).hint(), "+44 **** **12");
        assert_eq!(factor(FactorKind::Totp, None).hint(), "authenticator app");
    }

    #[test]
    fn factor_kinds_round_trip() {
        for k in [FactorKind::Totp, FactorKind::Email, FactorKind::Sms] {
            assert_eq!(FactorKind::parse(k.as_str()), Some(k));
        }
    }
}
