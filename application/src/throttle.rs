//! Throttling: the limits that make guessing passwords and pumping messages
//! slow, on top of the [`RateLimiter`] port, so every replica counts the
//! same attempts.
//!
//! Logins are held to three limits at once (OWASP ASVS 5.0 V6.3.1, NIST SP
//! 800-63B-4 §3.2.2):
//! - per account and client address, in tiers, so a few typos cost nothing
//!   and a guesser waits longer and longer;
//! - per account across every address, a ceiling on consecutive failures
//!   (NIST: no more than 100), reached only by guessing from many addresses;
//! - per client address across accounts, against credential stuffing.
//!
//! Only failures use the limits up: every attempt is counted before the
//! password is checked (so parallel guessers cannot race past a limit, and a
//! refused attempt costs no argon2 work), and a success gives its count back.
//! A login whose address has no account is counted under the address itself,
//! so it is throttled exactly like one that has.
//!
//! IPv6 clients are counted per /64, the block one subscriber gets, so a
//! guesser cannot rotate through the addresses of its own network.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_domain::{EmailAddress, OrganizationId, UserId};

use crate::error::AppError;
use crate::ports::clock::Clock;
use crate::ports::rate_limit::{Decision, Limit, RateKey, RateLimiter, Rule};

/// The limits, all configurable (`bin`'s settings name each one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Login failures per (account, client address), tightest first; each
    /// tier is a burst and then a slower rate, so the wait grows with the
    /// failures. Default 5/1m, 10/10m, 20/1h: five free tries, then one per
    /// 12 s, then one per minute, then one per three minutes.
    pub login_pair: Vec<Limit>,
    /// Login failures per account from anywhere. Default 100/24h: the NIST
    /// ceiling, then one per 15 minutes. Reaching it emails the owner.
    pub login_account: Limit,
    /// Login failures per client address across accounts. Default 100/1h.
    pub login_address: Limit,
    /// Wrong passwords per account where a signed-in user proves presence
    /// (`ChangePassword`, `DeleteMe`, fresh proofs). Default 10/1h.
    pub password_check: Limit,
    /// Sign-ups per client address. Default 20/1h.
    pub sign_up_address: Limit,
    /// Messages (emails, texts) per recipient. Default 10/1h: above the
    /// five verifications a user may be sent per hour, which are refused
    /// silently, so an address with an account and one without reach this
    /// limit after the same number of requests.
    pub message_recipient: Limit,
    /// Messages per account, whatever the recipient. Default 20/1h.
    pub message_account: Limit,
    /// Invitations per organization, whoever sends them. Default 50/1h.
    pub invitation_organization: Limit,
}

fn limit(max: u32, window: TimeDelta) -> Limit {
    // The defaults are well-formed constants.
    Limit::new(max, window).unwrap_or_else(|_| unreachable!("default limit {max}/{window}"))
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login_pair: vec![
                limit(5, TimeDelta::minutes(1)),
                limit(10, TimeDelta::minutes(10)),
                limit(20, TimeDelta::hours(1)),
            ],
            login_account: limit(100, TimeDelta::hours(24)),
            login_address: limit(100, TimeDelta::hours(1)),
            password_check: limit(10, TimeDelta::hours(1)),
            sign_up_address: limit(20, TimeDelta::hours(1)),
            message_recipient: limit(10, TimeDelta::hours(1)),
            message_account: limit(20, TimeDelta::hours(1)),
            invitation_organization: limit(50, TimeDelta::hours(1)),
        }
    }
}

/// Who a login is for: the account when the address has one, else the
/// address itself, so an unknown address is throttled the same way.
#[derive(Debug, Clone, Copy)]
pub enum LoginSubject<'a> {
    Account(UserId),
    Unknown(&'a EmailAddress),
}

/// A login that may go ahead. Its attempt is counted; tell the throttle
/// how it ended with [`Throttle::login_succeeded`] or
/// [`Throttle::login_unchecked`] (a failure keeps it).
#[derive(Debug)]
#[must_use = "a successful login must give its count back"]
pub struct LoginAttempt {
    pair: Vec<Rule>,
    account: Rule,
    address: Rule,
}

/// The answer of [`Throttle::login`].
#[derive(Debug)]
pub enum LoginGate {
    Go(LoginAttempt),
    /// Refused without checking the password. `account_ceiling` when the
    /// per-account limit refused it, which the owner is told about.
    Refused {
        retry_after: TimeDelta,
        account_ceiling: bool,
    },
}

/// A password check by a signed-in user, counted; a match gives it back.
#[derive(Debug)]
#[must_use = "a matching password must give its count back"]
pub struct PasswordAttempt(Rule);

/// Applies the limits.
#[derive(Clone, Debug)]
pub struct Throttle {
    limiter: Arc<dyn RateLimiter>,
    clock: Arc<dyn Clock>,
    limits: Arc<RateLimits>,
}

/// The counter part of a client address: the address, or its /64 for IPv6;
/// `unknown` when the address is not known (one shared bucket, which fails
/// safe: unidentifiable clients are limited together).
fn client_part(ip: Option<&str>) -> String {
    match ip.and_then(|ip| ip.parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "unknown".to_owned(),
    }
}

fn subject_part(subject: LoginSubject<'_>) -> String {
    match subject {
        LoginSubject::Account(user) => user.to_string(),
        LoginSubject::Unknown(email) => format!("email={email}"),
    }
}

/// `RESOURCE_EXHAUSTED` with the wait, rounded up to whole seconds.
#[must_use]
pub fn limited(retry_after: TimeDelta) -> AppError {
    let millis = u64::try_from(retry_after.num_milliseconds()).unwrap_or(0);
    AppError::RateLimited { retry_after_secs: millis.div_ceil(1000).max(1) }
}

impl Throttle {
    #[must_use]
    pub fn new(limiter: Arc<dyn RateLimiter>, clock: Arc<dyn Clock>, limits: RateLimits) -> Self {
        Self { limiter, clock, limits: Arc::new(limits) }
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Counts one login attempt for `subject` from `ip` under every login
    /// limit, before the password is checked.
    ///
    /// # Errors
    /// `UNAVAILABLE` when the limiter cannot be asked (fail closed).
    pub async fn login(&self, subject: LoginSubject<'_>, ip: Option<&str>) -> Result<LoginGate, AppError> {
        let (who, client) = (subject_part(subject), client_part(ip));
        let pair: Vec<Rule> = self
            .limits
            .login_pair
            .iter()
            .enumerate()
            .map(|(tier, limit)| {
                Rule::new(RateKey::new("login.pair").with(&tier.to_string()).with(&who).with(&client), *limit)
            })
            .collect();
        let account = Rule::new(RateKey::new("login.account").with(&who), self.limits.login_account);
        let address = Rule::new(RateKey::new("login.address").with(&client), self.limits.login_address);
        let mut rules = pair.clone();
        rules.push(account.clone());
        rules.push(address.clone());
        match self.limiter.check_all(&rules, self.now()).await? {
            Decision::Allowed => Ok(LoginGate::Go(LoginAttempt { pair, account, address })),
            Decision::Limited { retry_after, rule } => {
                Ok(LoginGate::Refused { retry_after, account_ceiling: rule == self.limits.login_pair.len() })
            }
        }
    }

    /// Ends a login whose password matched: its pair and the account's run
    /// of failures start again, and the address gets its attempt back. A
    /// limiter failure here does not fail the login (it only leaves counts
    /// higher than they should be); it is logged.
    pub async fn login_succeeded(&self, attempt: LoginAttempt) {
        let now = self.now();
        let mut result = Ok(());
        for rule in attempt.pair.iter().chain([&attempt.account]) {
            result = result.and(self.limiter.reset(&rule.key).await);
        }
        result = result.and(self.limiter.refund(&attempt.address, now).await);
        if let Err(error) = result {
            tracing::warn!(error = %crate::error_chain(&error), "could not clear login throttling after a success");
        }
    }

    /// Ends a login whose password was never checked (the hasher was busy
    /// or failed): every limit gets its attempt back, and earlier failures
    /// stay counted. A refusal for load is not a guess.
    pub async fn login_unchecked(&self, attempt: LoginAttempt) {
        let now = self.now();
        let mut result = Ok(());
        for rule in attempt.pair.iter().chain([&attempt.account, &attempt.address]) {
            result = result.and(self.limiter.refund(rule, now).await);
        }
        if let Err(error) = result {
            tracing::warn!(error = %crate::error_chain(&error), "could not give back an unchecked login attempt");
        }
    }

    /// Whether the owner of `user` should be told that the account ceiling
    /// was reached: true once per ceiling window, however many refused
    /// attempts follow.
    ///
    /// # Errors
    /// `UNAVAILABLE` when the limiter cannot be asked.
    pub async fn first_ceiling_notice(&self, user: UserId) -> Result<bool, AppError> {
        let once = limit(1, self.limits.login_account.window());
        let key = RateKey::new("login.ceiling_notice").with(&user.to_string());
        Ok(self.limiter.check(&key, &once, self.now()).await?.is_allowed())
    }

    /// Clears the account's run of login failures: a password reset proves
    /// the owner, who must not stay locked out by someone else's guessing.
    ///
    /// # Errors
    /// `UNAVAILABLE` when the limiter cannot be asked.
    pub async fn clear_account(&self, user: UserId) -> Result<(), AppError> {
        let key = RateKey::new("login.account").with(&subject_part(LoginSubject::Account(user)));
        Ok(self.limiter.reset(&key).await?)
    }

    /// Counts one password check by signed-in `user` (a proof of presence
    /// with a stolen access token must not become a guessing oracle).
    ///
    /// # Errors
    /// `RESOURCE_EXHAUSTED` (`RATE_LIMITED`) past the limit; `UNAVAILABLE`
    /// when the limiter cannot be asked.
    pub async fn password_check(&self, user: UserId) -> Result<PasswordAttempt, AppError> {
        let rule = Rule::new(RateKey::new("password.check").with(&user.to_string()), self.limits.password_check);
        match self.limiter.check_all(std::slice::from_ref(&rule), self.now()).await? {
            Decision::Allowed => Ok(PasswordAttempt(rule)),
            Decision::Limited { retry_after, .. } => {
                tracing::warn!(user_id = %user, "password checks limited for this account");
                Err(limited(retry_after))
            }
        }
    }

    /// The password matched, or was never compared (the hasher was busy or
    /// failed): the check does not count.
    pub async fn password_matched(&self, attempt: PasswordAttempt) {
        if let Err(error) = self.limiter.refund(&attempt.0, self.now()).await {
            tracing::warn!(error = %crate::error_chain(&error), "could not give a password check back");
        }
    }

    /// Counts one sign-up from `ip`.
    ///
    /// # Errors
    /// `RESOURCE_EXHAUSTED` past the limit; `UNAVAILABLE` when the limiter
    /// cannot be asked.
    pub async fn sign_up(&self, ip: Option<&str>) -> Result<(), AppError> {
        let key = RateKey::new("signup.address").with(&client_part(ip));
        self.allow(&[Rule::new(key, self.limits.sign_up_address)]).await
    }

    /// Counts one message to `recipient` (an email address or phone
    /// number, in its normalised form) on behalf of `account`, if known:
    /// per recipient so nobody is flooded, per account so one account
    /// cannot pump messages to many recipients (SMS pumping).
    ///
    /// # Errors
    /// `RESOURCE_EXHAUSTED` past either limit; `UNAVAILABLE` when the
    /// limiter cannot be asked.
    pub async fn message(&self, recipient: &str, account: Option<UserId>) -> Result<(), AppError> {
        let to = Rule::new(RateKey::new("message.recipient").with(recipient), self.limits.message_recipient);
        match account {
            Some(user) => {
                let from =
                    Rule::new(RateKey::new("message.account").with(&user.to_string()), self.limits.message_account);
                self.allow(&[to, from]).await
            }
            None => self.allow(&[to]).await,
        }
    }

    /// Counts one invitation sent for `organization` to `recipient` by
    /// `account`: per organization (so one cannot mail the world) and as a
    /// message (per recipient and per account).
    ///
    /// # Errors
    /// `RESOURCE_EXHAUSTED` past a limit; `UNAVAILABLE` when the limiter
    /// cannot be asked.
    pub async fn invitation(
        &self,
        organization: OrganizationId,
        recipient: &str,
        account: UserId,
    ) -> Result<(), AppError> {
        let key = RateKey::new("invitation.organization").with(&organization.to_string());
        self.allow(&[Rule::new(key, self.limits.invitation_organization)]).await?;
        self.message(recipient, Some(account)).await
    }

    async fn allow(&self, rules: &[Rule]) -> Result<(), AppError> {
        match self.limiter.check_all(rules, self.now()).await? {
            Decision::Allowed => Ok(()),
            Decision::Limited { retry_after, rule } => {
                tracing::info!(key = %rules[rule].key, "rate limited");
                Err(limited(retry_after))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn ipv6_clients_share_their_slash_64_and_mapped_v4_is_v4() {
        assert_eq!(client_part(Some("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(client_part(Some("2001:db8:1:2:ffff::9")), client_part(Some("2001:db8:1:2::7")));
        assert_ne!(client_part(Some("2001:db8:1:3::1")), client_part(Some("2001:db8:1:2::1")));
        assert_eq!(client_part(Some("::ffff:192.0.2.1")), "192.0.2.1");
        assert_eq!(client_part(Some("192.0.2.1")), "192.0.2.1");
        assert_eq!(client_part(None), "unknown");
        assert_eq!(client_part(Some("not an address")), "unknown");
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        let secs = |ms| match limited(TimeDelta::milliseconds(ms)) {
            AppError::RateLimited { retry_after_secs } => retry_after_secs,
            other => panic!("{other:?}"),
        };
        assert_eq!(secs(1), 1);
        assert_eq!(secs(1_000), 1);
        assert_eq!(secs(1_001), 2);
        assert_eq!(secs(0), 1);
    }

    #[test]
    fn the_default_pair_tiers_grow_the_wait() {
        let tiers = RateLimits::default().login_pair;
        let intervals: Vec<i64> = tiers.iter().map(Limit::interval_micros).collect();
        assert!(intervals.windows(2).all(|w| w[0] < w[1]), "{intervals:?}");
    }
}
