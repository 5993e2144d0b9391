//! Getting, using and ending a session: the `AuthService` and
//! `TokenService` use cases.

pub mod get_jwks;
pub mod login;
pub mod logout;
pub mod minter;
pub mod rebuild_denylist;
pub mod refresh_token;
pub mod request_password_reset;
pub mod resend_verification;
pub mod reset_password;
pub mod revoker;
pub mod sign_up;
pub mod validate_token;
pub mod verification;
pub mod verification_sender;
pub mod verify_email;

pub use get_jwks::GetJwks;
pub use login::{Login, LoginCommand, LoginOutcome};
pub use logout::{Logout, LogoutTarget};
pub use minter::TokenMinter;
pub use rebuild_denylist::RebuildDenylist;
pub use refresh_token::RefreshToken;
pub use request_password_reset::RequestPasswordReset;
pub use resend_verification::ResendVerification;
pub use reset_password::ResetPassword;
pub use revoker::SessionRevoker;
pub use sign_up::{SignUp, SignUpCommand};
pub use validate_token::ValidateToken;
pub use verification::{Proof, Redeemer, VerificationIssuer};
pub use verification_sender::VerificationSender;
pub use verify_email::VerifyEmail;

#[cfg(test)]
mod tests;
