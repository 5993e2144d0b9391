//! The proof that redeems a verification (`VerifyEmail`, `ResetPassword`):
//! the `proof` oneof of their requests, parsed into an application [`Proof`].

use gatehouse_application::auth::Proof;
use gatehouse_domain::{EmailAddress, OneTimeCode, Secret};

use crate::fields::Fields;
use crate::pb;

/// Longest link token accepted before any look-up; real ones are about 50 bytes.
const MAX_LINK_TOKEN_BYTES: usize = 256;

/// The `proof` oneof of either request, before parsing.
pub(crate) enum ProofField {
    Token(String),
    EmailCode(pb::EmailCode),
}

impl From<pb::verify_email_request::Proof> for ProofField {
    fn from(proof: pb::verify_email_request::Proof) -> Self {
        match proof {
            pb::verify_email_request::Proof::Token(t) => Self::Token(t),
            pb::verify_email_request::Proof::EmailCode(c) => Self::EmailCode(c),
        }
    }
}

impl From<pb::reset_password_request::Proof> for ProofField {
    fn from(proof: pb::reset_password_request::Proof) -> Self {
        match proof {
            pb::reset_password_request::Proof::Token(t) => Self::Token(t),
            pb::reset_password_request::Proof::EmailCode(c) => Self::EmailCode(c),
        }
    }
}

/// Parses the oneof, recording in `fields` every part that is missing or bad.
pub(crate) fn parse_proof(fields: &mut Fields, proof: Option<ProofField>) -> Option<Proof> {
    match proof {
        None => {
            fields.violation("proof", "token or email_code is required");
            None
        }
        Some(ProofField::Token(token)) => {
            let token = fields.required("token", &token, MAX_LINK_TOKEN_BYTES)?;
            Some(Proof::Token(Secret::new(token.to_owned())))
        }
        Some(ProofField::EmailCode(pb::EmailCode { email, code })) => {
            let email = fields.check("email_code.email", EmailAddress::parse(&email));
            let code = fields.check("email_code.code", OneTimeCode::parse(&code));
            Some(Proof::Code { email: email?, code: code? })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use gatehouse_application::AppError;

    use super::*;

    fn violations(proof: Option<ProofField>) -> Vec<&'static str> {
        let mut fields = Fields::default();
        let parsed = parse_proof(&mut fields, proof);
        match fields.finish() {
            Ok(()) => {
                assert!(parsed.is_some());
                vec![]
            }
            Err(AppError::InvalidArgument(v)) => v.iter().map(|v| v.field).collect(),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    fn email_code(email: &str, code: &str) -> Option<ProofField> {
        Some(ProofField::EmailCode(pb::EmailCode { email: email.into(), code: code.into() }))
    }

    #[test]
    fn a_missing_oneof_is_named() {
        assert_eq!(violations(None), ["proof"]);
    }

    #[test]
    fn token_is_required_and_bounded() {
        assert_eq!(violations(Some(ProofField::Token(String::new()))), ["token"]);
        assert_eq!(violations(Some(ProofField::Token("x".repeat(257)))), ["token"]);
        assert!(violations(Some(ProofField::Token("ghv_abc".into()))).is_empty());
    }

    #[test]
    fn email_code_names_each_bad_part() {
        assert!(violations(email_code("ann@example.com", "012345")).is_empty());
        assert_eq!(violations(email_code("", "12")), ["email_code.email", "email_code.code"]);
        assert_eq!(violations(email_code("ann@example.com", "abcdef")), ["email_code.code"]);
    }
}
