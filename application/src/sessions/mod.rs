//! The caller's sessions (`SessionService`), and pruning ended ones; one
//! file per use case. Every use case acts on the caller's own sessions only:
//! another user's session id is answered with `NOT_FOUND`, exactly like an
//! unknown one.

mod list_sessions;
mod prune_sessions;
mod revoke_other_sessions;
mod revoke_session;

pub use list_sessions::{ListSessions, SessionView};
pub use prune_sessions::PruneSessions;
pub use revoke_other_sessions::RevokeOtherSessions;
pub use revoke_session::RevokeSession;

#[cfg(test)]
mod tests;
