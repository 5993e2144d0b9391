//! sea-orm entities mirroring the tables of `gatehouse-migration`. They stay
//! inside this crate: the repositories translate them to domain types.

pub(crate) mod outbox;
pub(crate) mod refresh_token;
pub(crate) mod session;
pub(crate) mod user;
pub(crate) mod user_email;
pub(crate) mod verification;
