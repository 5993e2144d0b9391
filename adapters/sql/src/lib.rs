//! Gatehouse SQL adapter: the storage ports ([`UserRepository`],
//! [`SessionRepository`]) and the database health [`Probe`] over sea-orm, for
//! PostgreSQL (production) and SQLite (embedded mode).
//!
//! Both backends run the one migration history of `gatehouse-migration` and
//! pass the same contract tests (`tests/contract.rs`), which also hold the
//! in-memory fakes of `gatehouse_application::testing` to the same outcomes.
//! sea-orm types never leave this crate: the public API speaks only domain
//! and application types.
//!
//! [`UserRepository`]: gatehouse_application::ports::store::UserRepository
//! [`SessionRepository`]: gatehouse_application::ports::store::SessionRepository
//! [`Probe`]: gatehouse_application::ports::health::Probe

mod database;
mod entity;
mod error;
mod sessions;
mod users;

pub use database::{Database, PoolSettings};
pub use sessions::SqlSessionRepository;
pub use users::SqlUserRepository;
