//! Gatehouse RabbitMQ adapter: publishes outbox events ([`RabbitPublisher`],
//! the `EventPublisher` port) to a durable topic exchange with lapin, one
//! persistent message per event, and reports `Ok` only once the broker has
//! confirmed it (publisher confirms) and routed it to a queue (`mandatory`:
//! an event nobody is bound for comes back as unroutable and stays in the
//! outbox). Also a health [`Probe`] named `broker`.
//!
//! The connection is lazy and self-healing: creating the publisher does not
//! touch the network, each publish (re)connects when it has to, and any
//! failure drops the connection so the next call starts afresh. Every call
//! ends within the configured timeout, so a dead or hung broker makes the
//! relay retry later and never blocks a request.
//!
//! [`Probe`]: gatehouse_application::ports::health::Probe

mod link;
mod publisher;

pub use publisher::RabbitPublisher;
