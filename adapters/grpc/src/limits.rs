//! The server's resource limits: how much one client, one connection and
//! all of them together can make the process hold, and for how long.
//!
//! An unbounded server is a memory and file-descriptor leak that any caller
//! can trigger (OWASP ASVS 5.0 V13.1.3 / V15.2.2: resource limits against
//! denial of service). Each bound here answers one way of holding resources:
//! streams on one connection, requests in the whole process, connections,
//! time per request, connections that carry nothing, bytes per message.

use std::time::Duration;

/// Every limit the gRPC server enforces. The defaults suit a replica behind
/// a load balancer; `bin` sets each from its configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` advertised on every
    /// connection; a client opening more has the extra streams refused
    /// (`REFUSED_STREAM`), and one that keeps doing so loses the connection.
    pub max_concurrent_streams: u32,
    /// Requests in flight in the whole process, over every connection. One
    /// more is answered at once with `RESOURCE_EXHAUSTED` (reason
    /// `SERVER_BUSY`) rather than queued: queuing only moves the memory.
    pub max_concurrent_requests: usize,
    /// Open connections. One more is closed as soon as it is accepted, so
    /// the client fails fast and its balancer tries another replica.
    pub max_connections: usize,
    /// Longest a request may take, headers to response, before it is
    /// answered `DEADLINE_EXCEEDED` and its work dropped. A shorter
    /// `grpc-timeout` sent by the client wins.
    pub request_timeout: Duration,
    /// How often an HTTP/2 PING probes a connection, so a peer that vanished
    /// without closing is found.
    pub keepalive_interval: Duration,
    /// How long a PING may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
    /// A connection with no open stream for this long is closed (GOAWAY,
    /// then close), so idle clients cannot hold connections forever.
    pub idle_timeout: Duration,
    /// Largest request message, in bytes; a bigger one is answered
    /// `RESOURCE_EXHAUSTED` (reason `MESSAGE_TOO_LARGE`) as soon as its
    /// length prefix arrives, before its bytes are buffered.
    pub max_message_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 200,
            max_concurrent_requests: 1000,
            max_connections: 10_000,
            request_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(300),
            max_message_bytes: crate::MAX_REQUEST_BYTES,
        }
    }
}
