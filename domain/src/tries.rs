//! The state every one-time secret with a guess limit shares (a
//! verification, a login challenge): its wrong guesses against a limit, its
//! end, and whether it was used. One set of rules for both.

use chrono::{DateTime, Utc};

/// Why no more guesses may be made on a one-time secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Closed {
    #[error("already used or replaced")]
    Used,
    #[error("expired")]
    Expired,
    #[error("too many wrong codes")]
    AttemptsExhausted,
}

/// Wrong guesses so far and the limit, the end, and the use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tries {
    pub(crate) attempts: u32,
    pub(crate) max_attempts: u32,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) consumed_at: Option<DateTime<Utc>>,
}

impl Tries {
    /// Nothing guessed yet; open until `expires_at`.
    pub(crate) const fn fresh(max_attempts: u32, expires_at: DateTime<Utc>) -> Self {
        Self { attempts: 0, max_attempts, expires_at, consumed_at: None }
    }

    /// Whether a guess may be made at `now`, and if not why: used, expired,
    /// or out of attempts, in that order.
    pub(crate) fn open_at(&self, now: DateTime<Utc>) -> Result<(), Closed> {
        if self.consumed_at.is_some() {
            Err(Closed::Used)
        } else if now >= self.expires_at {
            Err(Closed::Expired)
        } else if self.attempts >= self.max_attempts {
            Err(Closed::AttemptsExhausted)
        } else {
            Ok(())
        }
    }

    /// Counts one wrong guess, only while unused and below the limit;
    /// `false` when nothing was counted.
    pub(crate) const fn count_failure(&mut self) -> bool {
        if self.consumed_at.is_some() || self.attempts >= self.max_attempts {
            return false;
        }
        self.attempts += 1;
        true
    }

    /// Marks it used at `now`.
    pub(crate) const fn consume(&mut self, now: DateTime<Utc>) {
        self.consumed_at = Some(now);
    }
}
