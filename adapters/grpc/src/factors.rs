//! Second factors on the wire, both ways: factor kinds and the login
//! challenge as messages, and the proofs requests carry (`VerifyMfa`'s code,
//! the fresh proof of account changes and factor management) as
//! application values.

use gatehouse_application::mfa::{ChallengeView, FactorView, FreshProof, MfaProof};
use gatehouse_domain::{Factor, FactorKind, OneTimeCode, Password, Secret};

use crate::fields::Fields;
use crate::pb;
use crate::timestamp;

/// Longest backup code accepted before any look-up; real ones are 14
/// characters, a few more allow for spaces typed by people.
const MAX_BACKUP_CODE_BYTES: usize = 64;

/// The `MfaFactorType` of a factor kind, as the `i32` prost stores.
pub(crate) fn factor_type(kind: FactorKind) -> i32 {
    match kind {
        FactorKind::Totp => pb::MfaFactorType::Totp,
        FactorKind::Email => pb::MfaFactorType::Email,
        FactorKind::Sms => pb::MfaFactorType::Sms,
    }
    .into()
}

/// The `MfaChallenge` a login returns instead of tokens.
pub(crate) fn challenge(view: ChallengeView) -> pb::MfaChallenge {
    pb::MfaChallenge {
        challenge_id: view.id.to_string(),
        factors: view.factors.into_iter().map(challenge_factor).collect(),
        expires_at: Some(timestamp(view.expires_at)),
    }
}

fn challenge_factor(factor: FactorView) -> pb::MfaFactor {
    pb::MfaFactor { factor_id: factor.id.to_string(), r#type: factor_type(factor.kind), hint: factor.hint }
}

/// A factor as its owner sees it (`ListFactors`).
pub(crate) fn factor(factor: &Factor) -> pb::Factor {
    pb::Factor {
        factor_id: factor.id().to_string(),
        r#type: factor_type(factor.kind()),
        hint: factor.hint(),
        active: factor.active(),
        created_at: Some(timestamp(factor.created_at())),
        confirmed_at: factor.confirmed_at().map(timestamp),
    }
}

/// The proof of a `VerifyMfa` request: with an empty `factor_id`, `code` is
/// a backup code; otherwise `factor_id` must be a UUID and `code` 6 digits.
pub(crate) fn mfa_proof(fields: &mut Fields, factor_id: &str, code: &str) -> Option<MfaProof> {
    if factor_id.is_empty() {
        let code = fields.required("code", code, MAX_BACKUP_CODE_BYTES)?;
        return Some(MfaProof::BackupCode(Secret::new(code.to_owned())));
    }
    let factor_id = fields.uuid("factor_id", factor_id);
    let code = fields.check("code", OneTimeCode::parse(code));
    Some(MfaProof::Factor { factor_id: factor_id?, code: code? })
}

/// The `proof` oneof of every request that needs a fresh proof of presence
/// (account changes, factor enrolment and management), before parsing.
pub(crate) enum FreshProofField {
    Password(String),
    TotpCode(pb::ProofCode),
}

/// Each request declares its own `proof` oneof with the same two fields;
/// they all parse through [`fresh_proof`], so the answers cannot drift.
macro_rules! fresh_proof_fields {
    ($($request:ident),+ $(,)?) => {$(
        impl From<pb::$request::Proof> for FreshProofField {
            fn from(proof: pb::$request::Proof) -> Self {
                match proof {
                    pb::$request::Proof::Password(p) => Self::Password(p),
                    pb::$request::Proof::TotpCode(c) => Self::TotpCode(c),
                }
            }
        }
    )+};
}

fresh_proof_fields!(
    remove_factor_request,
    list_factors_request,
    regenerate_backup_codes_request,
    enroll_totp_request,
    enroll_email_factor_request,
    enroll_phone_factor_request,
    add_login_email_request,
    set_primary_email_request,
    remove_login_email_request,
);

/// Parses the fresh proof, recording in `fields` every part that is missing or bad.
pub(crate) fn fresh_proof(fields: &mut Fields, proof: Option<FreshProofField>) -> Option<FreshProof> {
    match proof {
        None => {
            fields.violation("proof", "password or totp_code is required");
            None
        }
        Some(FreshProofField::Password(password)) => {
            fields.check("password", Password::candidate(password)).map(FreshProof::Password)
        }
        Some(FreshProofField::TotpCode(pb::ProofCode { factor_id, code })) => {
            let factor_id = fields.uuid("totp_code.factor_id", &factor_id);
            let code = fields.check("totp_code.code", OneTimeCode::parse(&code));
            Some(FreshProof::TotpCode { factor_id: factor_id?, code: code? })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::{TimeZone, Utc};
    use gatehouse_application::AppError;
    use gatehouse_domain::UserId;
    use uuid::Uuid;

    use super::*;

    const FACTOR: &str = "01936b2e-7c1a-7d3e-9f00-0123456789ab";

    /// The parsed value, or the names of the violated fields.
    fn parse<T>(f: impl FnOnce(&mut Fields) -> Option<T>) -> Result<T, Vec<&'static str>> {
        let mut fields = Fields::default();
        let parsed = f(&mut fields);
        match fields.finish() {
            Ok(()) => Ok(parsed.unwrap()),
            Err(AppError::InvalidArgument(v)) => Err(v.iter().map(|v| v.field).collect()),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn an_empty_factor_id_makes_the_code_a_backup_code() {
        let proof = parse(|f| mfa_proof(f, "", "abcd-efgh-jkmn")).unwrap();
        assert!(matches!(proof, MfaProof::BackupCode(c) if c.expose() == "abcd-efgh-jkmn"));
        assert_eq!(parse(|f| mfa_proof(f, "", "")).unwrap_err(), ["code"]);
        assert_eq!(parse(|f| mfa_proof(f, "", &"x".repeat(65))).unwrap_err(), ["code"]);
    }

    #[test]
    fn a_factor_code_needs_a_uuid_and_six_digits() {
        let proof = parse(|f| mfa_proof(f, FACTOR, "012345")).unwrap();
        assert!(
            matches!(proof, MfaProof::Factor { factor_id, code } if factor_id.to_string() == FACTOR && code.expose() == "012345")
        );
        assert_eq!(parse(|f| mfa_proof(f, "factor-1", "012345")).unwrap_err(), ["factor_id"]);
        assert_eq!(parse(|f| mfa_proof(f, FACTOR, "12345")).unwrap_err(), ["code"]);
        assert_eq!(parse(|f| mfa_proof(f, FACTOR, "1234567")).unwrap_err(), ["code"]);
        assert_eq!(parse(|f| mfa_proof(f, "nope", "abc")).unwrap_err(), ["factor_id", "code"]);
    }

    #[test]
    fn a_missing_fresh_proof_is_named() {
        assert_eq!(parse(|f| fresh_proof(f, None)).unwrap_err(), ["proof"]);
    }

    #[test]
    fn a_fresh_proof_is_a_password_or_a_totp_code() {
        let password = parse(|f| fresh_proof(f, Some(FreshProofField::Password("hunter22".into())))).unwrap();
        assert!(matches!(password, FreshProof::Password(p) if p.expose() == "hunter22"));
        assert_eq!(
            parse(|f| fresh_proof(f, Some(FreshProofField::Password(String::new())))).unwrap_err(),
            ["password"]
        );

        let code = |factor_id: &str, code: &str| {
            Some(FreshProofField::TotpCode(pb::ProofCode { factor_id: factor_id.into(), code: code.into() }))
        };
        assert!(matches!(parse(|f| fresh_proof(f, code(FACTOR, "123456"))).unwrap(), FreshProof::TotpCode { .. }));
        assert_eq!(parse(|f| fresh_proof(f, code("", "12"))).unwrap_err(), ["totp_code.factor_id", "totp_code.code"]);
    }

    #[test]
    fn a_challenge_lists_its_factors_with_types_and_hints() {
        let expires_at = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
        let id = Uuid::try_parse(FACTOR).unwrap();
        let view = ChallengeView {
            id,
            factors: vec![
                FactorView { id, kind: FactorKind::Totp, hint: "authenticator app".into() },
                FactorView { id, kind: FactorKind::Sms, hint: "+44 **** **12".into() },
            ],
            expires_at,
        };
        let c = challenge(view);
        assert_eq!(c.challenge_id, FACTOR);
        assert_eq!(c.expires_at.unwrap().seconds, expires_at.timestamp());
        let types: Vec<_> = c.factors.iter().map(pb::MfaFactor::r#type).collect();
        assert_eq!(types, [pb::MfaFactorType::Totp, pb::MfaFactorType::Sms]);
        assert_eq!(c.factors[1].hint, "+44 **** **12");
    }

    #[test]
    fn a_pending_factor_has_no_confirmation_time() {
        let created_at = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
        let id = Uuid::try_parse(FACTOR).unwrap();
        let user = UserId::from_uuid(Uuid::nil());
        let mut f = Factor::pending_code(id, user, FactorKind::Email, "ann@example.com".into(), created_at);
        let pending = factor(&f);
        assert_eq!(pending.r#type(), pb::MfaFactorType::Email);
        assert_eq!(pending.hint, "a***@example.com");
        assert!(!pending.active && pending.confirmed_at.is_none());

        f.confirm(created_at);
        let active = factor(&f);
        assert!(active.active && active.confirmed_at.is_some());
    }
}
