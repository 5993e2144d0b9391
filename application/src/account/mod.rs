//! The caller's own account: the `UserService` use cases, one file each,
//! named after its RPC. Every one acts on the user named by a validated
//! access token, never on an id from the request, so no caller can reach
//! another user's account.

mod add_login_email;
mod change_password;
mod delete_me;
mod get_me;
mod password_proof;
mod remove_login_email;
mod set_primary_email;
mod update_me;

pub use add_login_email::AddLoginEmail;
pub use change_password::ChangePassword;
pub use delete_me::DeleteMe;
pub use get_me::GetMe;
pub use password_proof::PasswordProof;
pub use remove_login_email::RemoveLoginEmail;
pub use set_primary_email::SetPrimaryEmail;
pub use update_me::UpdateMe;

#[cfg(test)]
mod tests;
