//! sea-orm entities mirroring the tables of `gatehouse-migration`. They stay
//! inside this crate: the repositories translate them to domain types.

pub(crate) mod account_tombstone;
pub(crate) mod audit_event;
pub(crate) mod backup_code;
pub(crate) mod mfa_challenge;
pub(crate) mod mfa_code;
pub(crate) mod mfa_factor;
pub(crate) mod organization;
pub(crate) mod organization_invitation;
pub(crate) mod organization_member;
pub(crate) mod organization_role;
pub(crate) mod outbox;
pub(crate) mod refresh_token;
pub(crate) mod session;
pub(crate) mod user;
pub(crate) mod user_email;
pub(crate) mod verification;
