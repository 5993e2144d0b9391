//! The audit trail's storage. Facts that come with a state change ride on
//! that change's outbox messages ([`OutboxMessage::audit`]), so their rows
//! are written in the same transaction; facts with no change to go with (a
//! failed login) are recorded on their own.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_domain::{AuditRecord, OrganizationId, UserId};
use uuid::Uuid;

use crate::ports::events::OutboxMessage;
use crate::ports::store::StoreError;

/// Where a page of audit rows starts: after this (time, id), newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditCursor {
    pub occurred_at: DateTime<Utc>,
    pub id: Uuid,
}

/// The audit table.
#[async_trait]
pub trait AuditLog: std::fmt::Debug + Send + Sync {
    /// Records facts that have no state change to ride on: writes these
    /// outbox messages, and the audit rows they carry, in one transaction
    /// (so the facts are also published on the audit stream).
    async fn record(&self, messages: &[OutboxMessage]) -> Result<(), StoreError>;

    /// The rows whose actor or subject is `user`, newest first (by time,
    /// then id), strictly after `after` when given, at most `limit`.
    async fn list(&self, user: UserId, after: Option<AuditCursor>, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;

    /// The rows about organization `org`, newest first (by time, then id),
    /// strictly after `after` when given, at most `limit`.
    async fn list_organization(
        &self,
        org: OrganizationId,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;
}
