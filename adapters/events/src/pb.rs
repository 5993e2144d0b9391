//! The generated `gatehouse.events.v1` messages.
//!
//! Their `Debug` is written here rather than derived: link tokens, codes and
//! links are printed as `[redacted]`, so formatting a message never leaks
//! them.

use std::fmt;

pub use generated::*;

mod generated {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/gatehouse.events.v1.rs"));
}

const REDACTED: &str = "[redacted]";

impl fmt::Debug for VerificationRequested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationRequested")
            .field("event_id", &self.event_id)
            .field("occurred_at", &self.occurred_at)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("token", &REDACTED)
            .field("code", &REDACTED)
            .field("link", &REDACTED)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl fmt::Debug for PasswordResetRequested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordResetRequested")
            .field("event_id", &self.event_id)
            .field("occurred_at", &self.occurred_at)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("token", &REDACTED)
            .field("code", &REDACTED)
            .field("link", &REDACTED)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl fmt::Debug for PasswordChanged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordChanged")
            .field("event_id", &self.event_id)
            .field("occurred_at", &self.occurred_at)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .finish()
    }
}

impl fmt::Debug for EmailChanged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChanged")
            .field("event_id", &self.event_id)
            .field("occurred_at", &self.occurred_at)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("new_email", &self.new_email)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_tokens_codes_or_links() {
        let message = VerificationRequested {
            token: "tok-secret".into(),
            code: "123456".into(),
            link: "https://x.test/verify?token=tok-secret".into(),
            email: "ann@example.com".into(),
            ..Default::default()
        };
        let reset = PasswordResetRequested { token: "tok-secret".into(), code: "123456".into(), ..Default::default() };
        for shown in [format!("{message:?}"), format!("{reset:?}")] {
            assert!(!shown.contains("tok-secret") && !shown.contains("123456"), "{shown}");
        }
        assert!(format!("{message:?}").contains("ann@example.com"));
    }
}
