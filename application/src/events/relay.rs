//! The outbox relay: publishes outbox rows and marks them sent only once the
//! destination confirmed them. While the broker is down, rows wait with an
//! exponential backoff and requests keep succeeding; several relays (one per
//! replica) share the table without publishing a row twice while its lease
//! runs. Delivery is at least once: a relay that dies between the broker's
//! confirm and `mark_sent` leaves the row to be sent again after its lease,
//! so consumers de-duplicate by event id. The rows a round published are
//! marked sent together when it ends, in one statement: one per event made
//! the relay the costliest writer of a login (two events each).
//!
//! A message the broker could not route (no queue bound for its routing key)
//! is not sent: it waits with its own backoff and is retried, with a warning
//! naming the key, until someone binds a queue for it; the rest of the batch
//! goes on, since the broker is up.
//!
//! When the broker comes back, the first confirmed publish makes every row
//! this relay had put into backoff for the outage due at once, so the
//! backlog drains within a poll interval or two instead of each row waiting
//! out its own (up to `max_backoff`) delay.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};

use crate::error::AppError;
use crate::ports::clock::Clock;
use crate::ports::events::{ClaimedMessage, EventPublisher, OutboxStore, PublishError};

/// How the relay paces itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelaySettings {
    /// Rows claimed per round.
    pub batch_size: u32,
    /// How long a claimed row stays hidden from other relays.
    pub lease: TimeDelta,
    /// First retry delay after a failed publish; doubles per failure.
    pub base_backoff: TimeDelta,
    /// Longest retry delay.
    pub max_backoff: TimeDelta,
    /// How long sent rows are kept before pruning.
    pub retention: TimeDelta,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 100,
            lease: TimeDelta::seconds(30),
            base_backoff: TimeDelta::seconds(1),
            max_backoff: TimeDelta::seconds(60),
            retention: TimeDelta::hours(1),
        }
    }
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayReport {
    pub claimed: usize,
    pub published: usize,
    /// Put back because the destination failed (likely down).
    pub failed: usize,
    /// Put back because no queue is bound for their routing key.
    pub unroutable: usize,
    /// Handed back unpublished because the lease was running out.
    pub deferred: usize,
    /// Whether more rows may be due at once: the round claimed a full batch
    /// or handed rows back, and nothing failed.
    pub more_due: bool,
}

/// At most this many rows waiting out an outage are remembered for the
/// reset; the rest keep their own backoff.
const MAX_WAITING: usize = 10_000;

/// What one round has done so far.
#[derive(Default)]
struct Round {
    report: RelayReport,
    /// The first publish failure: the rest of the round is put back.
    failure: Option<String>,
    /// Rows put into backoff by that failure.
    failed_ids: Vec<uuid::Uuid>,
    /// Rows the broker confirmed, marked sent when the round ends.
    sent: Vec<uuid::Uuid>,
}

/// Relays the outbox to an [`EventPublisher`].
#[derive(Clone, Debug)]
pub struct RelayOutbox {
    store: Arc<dyn OutboxStore>,
    publisher: Arc<dyn EventPublisher>,
    clock: Arc<dyn Clock>,
    settings: RelaySettings,
    /// Rows this relay put into backoff because the broker failed.
    waiting: Arc<Mutex<HashSet<uuid::Uuid>>>,
}

impl RelayOutbox {
    #[must_use]
    pub fn new(
        store: Arc<dyn OutboxStore>,
        publisher: Arc<dyn EventPublisher>,
        clock: Arc<dyn Clock>,
        settings: RelaySettings,
    ) -> Self {
        Self { store, publisher, clock, settings, waiting: Arc::default() }
    }

    /// Claims one batch and publishes it in order. After the first failure
    /// the rest of the batch is put back with the same delay: the broker is
    /// likely down, and hammering it helps nobody.
    ///
    /// # Errors
    /// [`AppError::Unavailable`] when the outbox table cannot be reached.
    pub async fn run_once(&self) -> Result<RelayReport, AppError> {
        let now = self.clock.now();
        let batch = self.store.claim(self.settings.batch_size, now, now + self.settings.lease).await?;
        // Publishing must end well inside the lease, or another replica could
        // claim rows this one is still publishing.
        let deadline = now + self.settings.lease / 2;
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            for claimed in &batch {
                waiting.remove(&claimed.message.id);
            }
        }
        let full = batch.len() >= self.settings.batch_size as usize;
        let mut round =
            Round { report: RelayReport { claimed: batch.len(), ..RelayReport::default() }, ..Round::default() };
        let published = async {
            for claimed in batch {
                self.publish_one(&mut round, claimed, deadline).await?;
            }
            Ok::<(), AppError>(())
        }
        .await;
        // What was confirmed is marked even when the round stopped on an
        // error: a row left unmarked would be published again.
        if !round.sent.is_empty() {
            self.store.mark_sent(&round.sent, self.clock.now()).await?;
        }
        published?;
        let Round { mut report, failure, failed_ids, .. } = round;
        report.more_due = failure.is_none() && (full || report.deferred > 0);
        if let Some(error) = failure {
            tracing::warn!(%error, failed = report.failed, "event publishing failed; will retry");
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            let room = MAX_WAITING.saturating_sub(waiting.len());
            waiting.extend(failed_ids.into_iter().take(room));
        } else if report.published > 0 {
            self.release_waiting().await?;
        }
        Ok(report)
    }

    /// Publishes one claimed row, or puts it back: for later after a
    /// failure (this one's or an earlier one's in the round), at once when
    /// the round is out of time.
    async fn publish_one(
        &self,
        round: &mut Round,
        claimed: ClaimedMessage,
        deadline: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let id = claimed.message.id;
        if round.failure.is_none() && self.clock.now() >= deadline {
            // Out of time, not failed: due again at once, attempts unchanged.
            self.store.retry_later(id, claimed.attempts, self.clock.now()).await?;
            round.report.deferred += 1;
            return Ok(());
        }
        let attempts = claimed.attempts.saturating_add(1);
        if round.failure.is_none() {
            match self.publisher.publish(&claimed.message).await {
                Ok(()) => {
                    round.sent.push(id);
                    round.report.published += 1;
                    return Ok(());
                }
                Err(PublishError::Unroutable { routing_key }) => {
                    tracing::warn!(
                        %routing_key,
                        event_id = %id,
                        attempts,
                        "no queue is bound for this routing key; the event stays in the outbox and is retried"
                    );
                    self.store.retry_later(id, attempts, self.clock.now() + self.backoff(attempts)).await?;
                    round.report.unroutable += 1;
                    return Ok(());
                }
                Err(e @ PublishError::Failed(_)) => round.failure = Some(crate::error::error_chain(&e)),
            }
        }
        self.store.retry_later(id, attempts, self.clock.now() + self.backoff(attempts)).await?;
        round.failed_ids.push(id);
        round.report.failed += 1;
        Ok(())
    }

    /// The broker confirmed a publish: the rows that waited out its outage
    /// are due now.
    async fn release_waiting(&self) -> Result<(), AppError> {
        let ids: Vec<uuid::Uuid> = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            if waiting.is_empty() {
                return Ok(());
            }
            waiting.drain().collect()
        };
        let due = self.store.retry_now(&ids, self.clock.now()).await?;
        tracing::info!(events = due, "the broker is back; events that waited for it are due now");
        Ok(())
    }

    /// Deletes rows sent longer ago than the retention period.
    ///
    /// # Errors
    /// [`AppError::Unavailable`] when the outbox table cannot be reached.
    pub async fn prune(&self) -> Result<u64, AppError> {
        Ok(self.store.prune_sent(self.clock.now() - self.settings.retention).await?)
    }

    /// `base * 2^(attempts-1)`, capped at `max_backoff`.
    fn backoff(&self, attempts: u32) -> TimeDelta {
        let factor = 1_i32.checked_shl(attempts.saturating_sub(1).min(20)).unwrap_or(i32::MAX);
        self.settings
            .base_backoff
            .checked_mul(factor)
            .map_or(self.settings.max_backoff, |d| d.min(self.settings.max_backoff))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use futures_executor::block_on;
    use gatehouse_domain::Event;

    use super::*;
    use crate::events::EventFactory;
    use crate::ports::audit::AuditLog;
    use crate::ports::events::{OutboxMessage, PublishError};
    use crate::testing::{FixedClock, InMemoryStore, RecordingEncoder, SeqRandom};

    #[derive(Debug, Default)]
    struct Broker {
        down: AtomicBool,
        /// Routing keys some queue is bound for; `None`: every key.
        bound: Mutex<Option<Vec<String>>>,
        received: Mutex<Vec<uuid::Uuid>>,
    }

    #[async_trait]
    impl EventPublisher for Broker {
        async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(PublishError::Failed("connection refused".into()));
            }
            if self.bound.lock().unwrap().as_ref().is_some_and(|keys| !keys.contains(&message.event_type)) {
                return Err(PublishError::Unroutable { routing_key: message.event_type.clone() });
            }
            self.received.lock().unwrap().push(message.id);
            Ok(())
        }
    }

    fn setup() -> (Arc<FixedClock>, Arc<InMemoryStore>, Arc<Broker>, RelayOutbox, EventFactory) {
        let clock = Arc::new(FixedClock::new());
        let store = Arc::new(InMemoryStore::default());
        let broker = Arc::new(Broker::default());
        let relay = RelayOutbox::new(store.clone(), broker.clone(), clock.clone(), RelaySettings::default());
        let factory =
            EventFactory::new(Arc::new(RecordingEncoder::default()), Arc::new(SeqRandom::default()), store.clone());
        (clock, store, broker, relay, factory)
    }

    fn enqueue(store: &InMemoryStore, factory: &EventFactory, clock: &FixedClock, n: usize) {
        let user = crate::testing::user_id(1);
        let email = gatehouse_domain::EmailAddress::parse("a@example.com").unwrap();
        for _ in 0..n {
            let msg = factory.message(clock.now(), Event::PasswordChanged { user_id: user, email: email.clone() });
            block_on(store.record(&[msg])).unwrap();
        }
    }

    #[test]
    fn relay_publishes_each_row_once_and_marks_it_sent() {
        let (clock, store, broker, relay, factory) = setup();
        enqueue(&store, &factory, &clock, 3);
        let report = block_on(relay.run_once()).unwrap();
        assert_eq!((report.claimed, report.published, report.failed, report.deferred), (3, 3, 0, 0));
        assert_eq!(block_on(relay.run_once()).unwrap().claimed, 0);
        let ids: Vec<_> = store.outbox().iter().map(|m| m.id).collect();
        assert_eq!(*broker.received.lock().unwrap(), ids);
    }

    /// A round that took a full batch says more may be waiting, so the loop
    /// goes again at once; a partial round waits for the next poll, and a
    /// failed one for its backoff.
    #[test]
    fn only_a_full_round_asks_for_another_at_once() {
        let (clock, store, broker, relay, factory) = setup();
        let batch = RelaySettings::default().batch_size as usize;
        enqueue(&store, &factory, &clock, batch + 1);
        let report = block_on(relay.run_once()).unwrap();
        assert_eq!((report.published, report.more_due), (batch, true));
        let report = block_on(relay.run_once()).unwrap();
        assert_eq!((report.published, report.more_due), (1, false));
        assert_eq!(broker.received.lock().unwrap().len(), batch + 1, "each row once");

        enqueue(&store, &factory, &clock, batch);
        broker.down.store(true, Ordering::SeqCst);
        let report = block_on(relay.run_once()).unwrap();
        assert_eq!((report.claimed, report.failed, report.more_due), (batch, batch, false));
    }

    #[test]
    fn broker_outage_keeps_rows_and_backs_off_until_it_returns() {
        let (clock, store, broker, relay, factory) = setup();
        enqueue(&store, &factory, &clock, 2);
        broker.down.store(true, Ordering::SeqCst);
        let report = block_on(relay.run_once()).unwrap();
        assert_eq!((report.published, report.failed), (0, 2));
        // Not due again until the backoff has passed.
        assert_eq!(block_on(relay.run_once()).unwrap().claimed, 0);
        clock.advance(TimeDelta::seconds(1));
        assert_eq!(block_on(relay.run_once()).unwrap().failed, 2);
        // Second failure: two seconds.
        clock.advance(TimeDelta::seconds(1));
        assert_eq!(block_on(relay.run_once()).unwrap().claimed, 0);
        broker.down.store(false, Ordering::SeqCst);
        clock.advance(TimeDelta::seconds(1));
        assert_eq!(block_on(relay.run_once()).unwrap().published, 2);
        assert_eq!(broker.received.lock().unwrap().len(), 2);
    }

    /// After an outage the backlog must not wait out each row's own
    /// backoff: the first confirmed publish makes the rest due at once.
    #[test]
    fn the_first_confirmed_publish_after_an_outage_releases_the_backlog() {
        let (clock, store, broker, relay, factory) = setup();
        broker.down.store(true, Ordering::SeqCst);
        enqueue(&store, &factory, &clock, 3);
        for _ in 0..4 {
            // Failures pile up: the backoff grows to 8 s.
            assert_eq!(block_on(relay.run_once()).unwrap().failed, 3);
            clock.advance(TimeDelta::seconds(8));
        }
        assert_eq!(block_on(relay.run_once()).unwrap().failed, 3, "backoff now 16 s");
        broker.down.store(false, Ordering::SeqCst);
        clock.advance(TimeDelta::seconds(1));
        assert_eq!(block_on(relay.run_once()).unwrap().claimed, 0, "the backlog still waits");
        // A new event goes out at once and proves the broker is back.
        enqueue(&store, &factory, &clock, 1);
        assert_eq!(block_on(relay.run_once()).unwrap().published, 1);
        let drained = block_on(relay.run_once()).unwrap();
        assert_eq!((drained.claimed, drained.published), (3, 3), "the backlog is due at once");
        assert_eq!(broker.received.lock().unwrap().len(), 4);
    }

    /// An event nobody is bound for is not sent and not lost: it waits with
    /// its own backoff while the rest of the batch is delivered, and goes out
    /// once a queue is bound for its key.
    #[test]
    fn an_unroutable_event_waits_alone_until_a_queue_is_bound() {
        let (clock, store, broker, relay, factory) = setup();
        let user = crate::testing::user_id(1);
        let email = gatehouse_domain::EmailAddress::parse("a@example.com").unwrap();
        let audit = factory.audit(clock.now(), crate::events::Audit::by("user.signed_up", user));
        let mail = factory.message(clock.now(), Event::PasswordChanged { user_id: user, email });
        let (audit_key, mail_key) = (audit.event_type.clone(), mail.event_type.clone());
        block_on(store.record(&[audit.clone(), mail.clone()])).unwrap();
        *broker.bound.lock().unwrap() = Some(vec![mail_key.clone()]);

        let report = block_on(relay.run_once()).unwrap();
        assert_eq!((report.published, report.unroutable, report.failed), (1, 1, 0), "{report:?}");
        assert_eq!(*broker.received.lock().unwrap(), [mail.id]);
        // Retried with its backoff, and still not sent while nobody listens.
        assert_eq!(block_on(relay.run_once()).unwrap().claimed, 0);
        clock.advance(TimeDelta::seconds(1));
        assert_eq!(block_on(relay.run_once()).unwrap().unroutable, 1);

        broker.bound.lock().unwrap().as_mut().unwrap().push(audit_key);
        clock.advance(TimeDelta::seconds(2));
        assert_eq!(block_on(relay.run_once()).unwrap().published, 1);
        assert_eq!(*broker.received.lock().unwrap(), [mail.id, audit.id]);
        assert_eq!(block_on(relay.run_once()).unwrap().claimed, 0, "sent once, then never again");
    }

    /// A slow broker must not let the lease run out mid-batch: the rest of
    /// the batch is handed back, due at once.
    #[test]
    fn a_batch_stops_before_its_lease_runs_out() {
        #[derive(Debug)]
        struct Slow(Arc<FixedClock>, Arc<Broker>);
        #[async_trait]
        impl EventPublisher for Slow {
            async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError> {
                self.0.advance(TimeDelta::seconds(6)); // a slow confirm
                self.1.publish(message).await
            }
        }
        let (clock, store, broker, _, factory) = setup();
        let relay = RelayOutbox::new(
            store.clone(),
            Arc::new(Slow(clock.clone(), broker.clone())),
            clock.clone(),
            RelaySettings::default(),
        );
        enqueue(&store, &factory, &clock, 5);
        let report = block_on(relay.run_once()).unwrap();
        // 30 s lease: publishing stops at 15 s, after three 6-second publishes.
        assert_eq!((report.published, report.deferred, report.failed), (3, 2, 0));
        let next = block_on(relay.run_once()).unwrap();
        assert_eq!(next.claimed, 2, "deferred rows are due again at once");
        assert_eq!(broker.received.lock().unwrap().len(), 5);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let (_, _, _, relay, _) = setup();
        assert_eq!(relay.backoff(1), TimeDelta::seconds(1));
        assert_eq!(relay.backoff(2), TimeDelta::seconds(2));
        assert_eq!(relay.backoff(5), TimeDelta::seconds(16));
        assert_eq!(relay.backoff(7), TimeDelta::seconds(60));
        assert_eq!(relay.backoff(u32::MAX), TimeDelta::seconds(60));
    }

    #[test]
    fn sent_rows_are_pruned_after_the_retention() {
        let (clock, store, _, relay, factory) = setup();
        enqueue(&store, &factory, &clock, 2);
        block_on(relay.run_once()).unwrap();
        assert_eq!(block_on(relay.prune()).unwrap(), 0);
        clock.advance(TimeDelta::hours(1) + TimeDelta::seconds(1));
        assert_eq!(block_on(relay.prune()).unwrap(), 2);
        assert!(store.outbox().is_empty());
    }
}
