//! Events: building outbox messages, and relaying the outbox to the broker.

mod relay;
mod sealed;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use gatehouse_domain::{Event, EventEnvelope};

pub use relay::{RelayOutbox, RelayReport, RelaySettings};
pub use sealed::{OpeningPublisher, SealingEncoder, unframe};

use crate::ids::new_uuid_v7;
use crate::ports::events::{EventEncoder, OutboxMessage};
use crate::ports::random::RandomSource;

/// Wraps events in envelopes (id, time) and encodes them for the outbox.
#[derive(Clone)]
pub struct EventFactory {
    encoder: Arc<dyn EventEncoder>,
    rng: Arc<dyn RandomSource>,
}

impl std::fmt::Debug for EventFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventFactory").finish_non_exhaustive()
    }
}

impl EventFactory {
    #[must_use]
    pub fn new(encoder: Arc<dyn EventEncoder>, rng: Arc<dyn RandomSource>) -> Self {
        Self { encoder, rng }
    }

    /// The outbox message for `event`, which happened at `now`.
    #[must_use]
    pub fn message(&self, now: DateTime<Utc>, event: Event) -> OutboxMessage {
        let envelope = EventEnvelope { id: new_uuid_v7(now, self.rng.as_ref()), occurred_at: now, event };
        self.encoder.encode(&envelope)
    }
}
