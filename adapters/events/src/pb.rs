//! The generated `gatehouse.events.v1` messages.
//!
//! Their `Debug` is written here rather than derived: link tokens, codes
//! (verification and MFA codes alike) and links are printed as `[redacted]`,
//! so formatting a message never leaks them.

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

impl fmt::Debug for MfaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaCode")
            .field("event_id", &self.event_id)
            .field("occurred_at", &self.occurred_at)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("phone", &self.phone)
            .field("code", &REDACTED)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl fmt::Debug for MfaFactorAdded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaFactorAdded")
            .field("event_id", &self.event_id)
            .field("occurred_at", &self.occurred_at)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("factor_id", &self.factor_id)
            .field("factor_type", &self.factor_type)
            .finish()
    }
}

impl fmt::Debug for MfaFactorRemoved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaFactorRemoved")
            .field("event_id", &self.event_id)
            .field("occurred_at", &self.occurred_at)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("factor_id", &self.factor_id)
            .field("factor_type", &self.factor_type)
            .finish()
    }
}

impl fmt::Debug for BackupCodeUsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupCodeUsed")
            .field("event_id", &self.event_id)
            .field("occurred_at", &self.occurred_at)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl fmt::Debug for BackupCodesRegenerated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupCodesRegenerated")
            .field("event_id", &self.event_id)
            .field("occurred_at", &self.occurred_at)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .finish()
    }
}

impl fmt::Debug for LoginNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginNotice")
            .field("event_id", &self.event_id)
            .field("occurred_at", &self.occurred_at)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("ip", &self.ip)
            .field("device", &self.device)
            .field("at", &self.at)
            .finish()
    }
}

impl fmt::Debug for LoginThrottled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginThrottled")
            .field("event_id", &self.event_id)
            .field("occurred_at", &self.occurred_at)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("ip", &self.ip)
            .field("until", &self.until)
            .finish()
    }
}

impl fmt::Debug for SignupAttempted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignupAttempted")
            .field("event_id", &self.event_id)
            .field("occurred_at", &self.occurred_at)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("ip", &self.ip)
            .field("at", &self.at)
            .finish()
    }
}

impl fmt::Debug for OrganizationInvitation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrganizationInvitation")
            .field("event_id", &self.event_id)
            .field("occurred_at", &self.occurred_at)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("organization_id", &self.organization_id)
            .field("organization_name", &self.organization_name)
            .field("role", &self.role)
            .field("token", &REDACTED)
            .field("link", &REDACTED)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl fmt::Debug for AuditEvent {
    /// An audit event never carries a secret: every field is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditEvent")
            .field("event_id", &self.event_id)
            .field("occurred_at", &self.occurred_at)
            .field("kind", &self.kind)
            .field("actor_id", &self.actor_id)
            .field("subject_id", &self.subject_id)
            .field("organization_id", &self.organization_id)
            .field("client_ip", &self.client_ip)
            .field("user_agent", &self.user_agent)
            .field("outcome", &self.outcome)
            .field("details", &self.details)
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

    #[test]
    fn mfa_code_debug_shows_the_recipient_but_not_the_code() {
        let sms = MfaCode { phone: "+447700900123".into(), code: "987654".into(), ..Default::default() };
        let shown = format!("{sms:?}");
        assert!(!shown.contains("987654"), "{shown}");
        assert!(shown.contains("+447700900123") && shown.contains(REDACTED), "{shown}");
    }
}
