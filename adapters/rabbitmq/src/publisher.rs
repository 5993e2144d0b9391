//! The `EventPublisher` port over RabbitMQ, with a lazy, self-healing link.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gatehouse_application::ports::BoxError;
use gatehouse_application::ports::events::{EventPublisher, OutboxMessage, PublishError};
use gatehouse_application::ports::health::Probe;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

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
/// A broker that accepts TCP connections but never answers makes a
/// connection attempt hang, and lapin's I/O thread for it lives until the
/// socket closes. So there is at most one attempt at a time: a call whose
/// timeout cuts the attempt short leaves it running, and the next call waits
/// for that one instead of starting another. An attempt still hanging after
/// [`ABANDON_AFTER`] is given up for a fresh one. Open connections carry
/// AMQP heartbeats (unless the URL sets its own), so a broker that falls
/// silent later is noticed and its connection closed.
pub struct RabbitPublisher {
    url: String,
    /// `url` without its credentials, for errors and `Debug`.
    location: String,
    exchange: String,
    timeout: Duration,
    link: Mutex<Slot>,
}

/// How long a connection attempt may hang before a new one replaces it.
const ABANDON_AFTER: Duration = Duration::from_secs(120);

/// The heartbeat interval asked of the broker, in seconds, unless the URL
/// names one: a silent peer is declared dead after two missed beats.
const HEARTBEAT_SECS: u16 = 10;

/// The open link, and the connection attempt under way.
#[derive(Default)]
struct Slot {
    link: Option<Link>,
    opening: Option<Opening>,
}

struct Opening {
    started: Instant,
    task: JoinHandle<Result<Link, PublishError>>,
}

impl RabbitPublisher {
    /// A publisher for `exchange` on the broker at `url`
    /// (`amqp://user:password@host:port/vhost`; lapin is built without TLS,
    /// so only `amqp://` URLs work). Does not connect: the first
    /// publish (or [`Probe::check`]) does. Every call is bounded by `timeout`.
    #[must_use]
    pub fn new(url: &str, exchange: &str, timeout: Duration) -> Self {
        Self {
            url: with_heartbeat(url),
            location: without_credentials(url),
            exchange: exchange.to_owned(),
            timeout,
            link: Mutex::new(Slot::default()),
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
            let link = self.take_link(&mut slot).await?;
            slot.link = Some(link);
            Ok(())
        })
        .await
    }

    /// Takes the open link out of `slot`, or the one the attempt under way
    /// (or a new one) opens. Cancel-safe: a caller cut short by its timeout
    /// leaves the attempt in `slot`, running.
    async fn take_link(&self, slot: &mut Slot) -> Result<Link, PublishError> {
        if let Some(link) = slot.link.take().filter(Link::is_open) {
            return Ok(link);
        }
        if let Some(stale) = slot.opening.take_if(|o| o.started.elapsed() > ABANDON_AFTER) {
            stale.task.abort();
        }
        let opening = slot.opening.get_or_insert_with(|| {
            let (url, exchange, location) = (self.url.clone(), self.exchange.clone(), self.location.clone());
            Opening {
                started: Instant::now(),
                task: tokio::spawn(async move { Link::open(&url, &exchange, &location).await }),
            }
        });
        let outcome = (&mut opening.task).await;
        slot.opening = None;
        outcome.unwrap_or_else(|_| Err(broker_error(&self.location, "connection attempt ended".to_owned(), None)))
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
            // An unroutable message is the broker answering, not a broken
            // link: reconnecting for each one made every retry of an event
            // nobody listens for cost the broker a whole handshake.
            let link = self.take_link(&mut slot).await?;
            let result = link.publish(&self.exchange, message, &self.location).await;
            if matches!(result, Ok(()) | Err(PublishError::Unroutable { .. })) {
                slot.link = Some(link);
            }
            result
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

/// `url` asking for [`HEARTBEAT_SECS`] heartbeats unless it names its own.
fn with_heartbeat(url: &str) -> String {
    if url.split_once('?').is_some_and(|(_, query)| query.split('&').any(|p| p.starts_with("heartbeat="))) {
        url.to_owned()
    } else {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}heartbeat={HEARTBEAT_SECS}")
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
    fn heartbeats_are_asked_for_unless_the_url_names_them() {
        assert_eq!(with_heartbeat("amqp://h/%2f"), "amqp://h/%2f?heartbeat=10");
        assert_eq!(with_heartbeat("amqp://h/%2f?frame_max=8192"), "amqp://h/%2f?frame_max=8192&heartbeat=10");
        assert_eq!(with_heartbeat("amqp://h/%2f?heartbeat=30"), "amqp://h/%2f?heartbeat=30");
    }

    #[test]
    fn location_and_debug_never_show_credentials() {
        assert_eq!(without_credentials("amqp://guest:s3cret@127.0.0.1:5672/%2f"), "amqp://127.0.0.1:5672/%2f");
        assert_eq!(without_credentials("amqp://u:p@ss@host"), "amqp://host");
        assert_eq!(without_credentials("amqp://host:5672"), "amqp://host:5672");
        let publisher = RabbitPublisher::new("amqp://guest:s3cret@127.0.0.1:5672/%2f", "x", Duration::from_secs(1));
        assert!(!format!("{publisher:?}").contains("s3cret"));
    }
}
