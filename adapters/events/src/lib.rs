//! Gatehouse events adapter: the wire format of the events in
//! `proto/gatehouse/events/v1/` (protobuf, so consumers in any language can
//! decode them) and the publisher of the embedded mode.
//!
//! - [`ProtoEventEncoder`] turns a domain [`gatehouse_domain::EventEnvelope`]
//!   into the outbox message the relay publishes.
//! - [`decode`] turns a published message back into its [`pb`] message; tests
//!   and [`LogPublisher`] use it.
//! - [`LogPublisher`] is the destination when no broker is configured: it
//!   writes each event to the log, secrets included (dev mode only).

mod decode;
mod encode;
mod log;
pub mod pb;

pub use decode::{DecodeError, DecodedEvent, decode};
pub use encode::ProtoEventEncoder;
pub use log::LogPublisher;
