//! An event encoder that records what it was given.

use super::*;

/// An encoder that records every envelope (secrets included, as a mailer
/// would receive them) and enqueues a stand-in payload. The real encoding
/// is tested where it lives (the events adapter).
#[derive(Debug, Default)]
pub struct RecordingEncoder {
    pub events: Mutex<Vec<gatehouse_domain::EventEnvelope>>,
}

impl crate::ports::events::EventEncoder for RecordingEncoder {
    fn encode(&self, e: &gatehouse_domain::EventEnvelope) -> OutboxMessage {
        self.events.lock().unwrap().push(e.clone());
        OutboxMessage {
            id: e.id,
            event_type: e.event.event_type().to_owned(),
            payload: e.id.as_bytes().to_vec(),
            occurred_at: e.occurred_at,
            audit: None,
        }
    }
}
