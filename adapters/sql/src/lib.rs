//! Gatehouse SQL adapter: the storage ports ([`UserRepository`],
//! [`SessionRepository`], [`VerificationRepository`], [`MfaRepository`],
//! [`OutboxStore`], [`AuditLog`]) and the database health [`Probe`] over sea-orm, for
//! PostgreSQL (production) and SQLite (embedded mode).
//!
//! Changes that span tables run in a unit of work ([`SqlUnitOfWorkFactory`]):
//! one transaction whose outbox messages, and the audit rows they carry, are
//! written at its commit, so an event is stored if and only if its change
//! is. The repositories store what the domain decided and hold no rule.
//!
//! Both backends run the one migration history of `gatehouse-migration` and
//! pass the same contract tests (`tests/contract.rs`), which also hold the
//! in-memory fakes of `gatehouse_application::testing` to the same outcomes.
//! sea-orm types never leave this crate: the public API speaks only domain
//! and application types.
//!
//! [`UserRepository`]: gatehouse_application::ports::store::UserRepository
//! [`SessionRepository`]: gatehouse_application::ports::store::SessionRepository
//! [`VerificationRepository`]: gatehouse_application::ports::verifications::VerificationRepository
//! [`MfaRepository`]: gatehouse_application::ports::mfa::MfaRepository
//! [`OutboxStore`]: gatehouse_application::ports::events::OutboxStore
//! [`AuditLog`]: gatehouse_application::ports::audit::AuditLog
//! [`Probe`]: gatehouse_application::ports::health::Probe

mod audit;
mod convert;
mod database;
mod entity;
mod error;
mod mfa;
mod outbox;
mod pool;
mod sessions;
mod transaction;
mod unit_of_work;
mod users;
mod verifications;

pub use audit::SqlAuditLog;
pub use database::{Database, PoolSettings};
pub use mfa::SqlMfaRepository;
pub use outbox::SqlOutboxStore;
pub use sessions::SqlSessionRepository;
pub use unit_of_work::SqlUnitOfWorkFactory;
pub use users::SqlUserRepository;
pub use verifications::SqlVerificationRepository;
