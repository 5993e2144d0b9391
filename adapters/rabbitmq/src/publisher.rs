//! The `EventPublisher` port over RabbitMQ, with a lazy, self-healing link.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use gatehouse_application::ports::BoxError;
use gatehouse_application::ports::events::{EventPublisher, OutboxMessage, PublishError};
use gatehouse_application::ports::health::Probe;
use tokio::sync::Mutex;

use crate::link::{Link, broker_error};

/// Publishes events to a durable topic exchange, routing key = event type,
/// and returns `Ok` only for a message the broker confirmed.
///
/// It holds at most one connection (with one confirming channel), opened on
/// first use and dropped on any error or timeout, so the next call
/// reconnects: the server can start while the broker is down, and a broker
/// that restarts is picked up again without help. Publishes are serialised
/// on that channel, each waiting for its confirm.
///
/// A broker that accepts TCP connections but never answers makes each
/// attempt time out; lapin's I/O thread for such an attempt lingers until
/// the peer closes the socket, so the caller's retry backoff bounds how many
/// pile up.
pub struct RabbitPublisher {
    url: String,
    /// `url` without its credentials, for errors and `Debug`.
    location: String,
    exchange: String,
    timeout: Duration,
    link: Mutex<Option<Link>>,
}

impl RabbitPublisher {
    /// A publisher for `exchange` on the broker at `url`
    /// (`amqp://user:password@host:port/vhost`; lapin is built without TLS,
    /// so only `amqp://` URLs work). Does not connect: the first
    /// publish (or [`Probe::check`]) does. Every call is bounded by `timeout`.
    #[must_use]
    pub fn new(url: &str, exchange: &str, timeout: Duration) -> Self {
        Self {
            url: url.to_owned(),
            location: without_credentials(url),
            exchange: exchange.to_owned(),
            timeout,
            link: Mutex::new(None),
        }
    }

    /// Like [`RabbitPublisher::new`], but connects (and declares the
    /// exchange) now, for callers that want to fail at start-up when the
    /// broker is unreachable. The publisher still reconnects later.
    ///
    /// # Errors
    /// The broker cannot be reached, refuses the credentials or the exchange
    /// declaration, or does not answer within `timeout`.
    pub async fn connect(url: &str, exchange: &str, timeout: Duration) -> Result<Self, PublishError> {
        let publisher = Self::new(url, exchange, timeout);
        publisher.ensure_link().await?;
        Ok(publisher)
    }

    /// The exchange events are published to.
    #[must_use]
    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// Opens the link unless an open one is held, within the timeout.
    async fn ensure_link(&self) -> Result<(), PublishError> {
        self.bounded("connect", async {
            let mut slot = self.link.lock().await;
            if !slot.as_ref().is_some_and(Link::is_open) {
                *slot = None;
                *slot = Some(Link::open(&self.url, &self.exchange, &self.location).await?);
            }
            Ok(())
        })
        .await
    }

    /// Runs `call` within the timeout; a call cut short is an error.
    async fn bounded(
        &self,
        what: &str,
        call: impl Future<Output = Result<(), PublishError>>,
    ) -> Result<(), PublishError> {
        tokio::time::timeout(self.timeout, call).await.unwrap_or_else(|_| {
            Err(broker_error(
                &self.location,
                format!("{what} did not finish within {} ms", self.timeout.as_millis()),
                None,
            ))
        })
    }
}

#[async_trait]
impl EventPublisher for RabbitPublisher {
    async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError> {
        self.bounded("publish", async {
            let mut slot = self.link.lock().await;
            // The link is taken out while in use: if this call fails or is cut
            // short by the timeout, it is dropped and the next call reconnects.
            let link = match slot.take() {
                Some(link) if link.is_open() => link,
                _ => Link::open(&self.url, &self.exchange, &self.location).await?,
            };
            link.publish(&self.exchange, message, &self.location).await?;
            *slot = Some(link);
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Probe for RabbitPublisher {
    fn name(&self) -> &'static str {
        "broker"
    }

    /// Succeeds when a connection is open or can be opened within the timeout.
    async fn check(&self) -> Result<(), BoxError> {
        self.ensure_link().await.map_err(|e| Box::new(e).into())
    }
}

impl fmt::Debug for RabbitPublisher {
    /// Never prints the URL's credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitPublisher")
            .field("location", &self.location)
            .field("exchange", &self.exchange)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// `amqp://user:secret@host:5672/vhost` → `amqp://host:5672/vhost`.
fn without_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    if scheme.is_empty() { rest.to_owned() } else { format!("{scheme}://{rest}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_and_debug_never_show_credentials() {
        assert_eq!(without_credentials("amqp://guest:s3cret@127.0.0.1:5672/%2f"), "amqp://127.0.0.1:5672/%2f");
        assert_eq!(without_credentials("amqp://u:p@ss@host"), "amqp://host");
        assert_eq!(without_credentials("amqp://host:5672"), "amqp://host:5672");
        let publisher = RabbitPublisher::new("amqp://guest:s3cret@127.0.0.1:5672/%2f", "x", Duration::from_secs(1));
        assert!(!format!("{publisher:?}").contains("s3cret"));
    }
}
