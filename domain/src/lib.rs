//! Gatehouse domain: the entities, value objects and rules of accounts and
//! authentication. Nothing here performs I/O, knows a clock or a random source,
//! or depends on a runtime, ORM or transport crate: values arrive already read,
//! times arrive as arguments.
//!
//! Value objects can only be built valid ("parse, don't validate"): a value of
//! [`EmailAddress`] or [`Password`] that exists has passed its rules.

pub mod audit;
pub mod email;
pub mod events;
pub mod ids;
pub mod mfa;
pub mod organization;
pub mod password;
pub mod password_policy;
pub mod secret;
pub mod session;
pub mod token;
pub mod tries;
pub mod user;
pub mod verification;

pub use audit::{AuditOutcome, AuditRecord};
pub use email::{EmailAddress, EmailError};
pub use events::{Event, EventEnvelope};
pub use ids::{OrganizationId, SessionId, TokenId, UserId};
pub use mfa::{
    Activation, ChallengeClosed, Factor, FactorKind, MfaChallenge, PhoneError, PhoneNumber, Removal, SealedSecret,
};
pub use organization::{
    BuiltinRole, Invitation, InvitationClosed, Membership, Organization, OrganizationInputError, OrganizationName,
    OrganizationRuleError, Permission, PermissionSet, Role, RoleChange, RoleName, Slug, ensure_an_owner_remains,
    permissions,
};
pub use password::{Password, PasswordError, PasswordHash};
pub use password_policy::{PasswordContext, PasswordPolicy, ScoreOutOfRange};
pub use secret::Secret;
pub use session::{ClientInfo, RevokeReason, Session, SessionEnded, describe_device, revoke_all};
pub use token::{AccessClaims, RefreshToken, TokenHash, TokenPair};
pub use tries::Closed;
pub use user::{Account, AccountError, DisplayName, DisplayNameError, EmailRemoval, LoginEmail, PrimaryChange, User};
pub use verification::{CodeError, OneTimeCode, Purpose, Unredeemable, Verification};
