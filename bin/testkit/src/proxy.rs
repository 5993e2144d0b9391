//! A TCP proxy in front of a real service that a test can cut, blackhole and
//! restore, to stage an outage without touching the service other tests use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bytes flow both ways: the service is reachable.
    Forward,
    /// Every connection is closed, and new ones are closed as soon as they
    /// are accepted: a stopped service, or a refused connection.
    Cut,
    /// Connections are accepted and kept open, but no byte moves either way
    /// until the proxy is restored: a hung service or a network partition.
    /// Nothing is lost; on restore the held bytes flow on.
    Blackhole,
}

/// A TCP proxy on `127.0.0.1:<ephemeral>` to one upstream `host:port`. It
/// starts forwarding; dropping it closes every connection through it.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: watch::Sender<State>,
    accepted: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens for connections and forwards each to `upstream` (`host:port`).
    pub async fn start(upstream: impl Into<String>) -> Self {
        let upstream = upstream.into();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("the fault proxy binds a port");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let (state, _) = watch::channel(State::Forward);
        let accepted = Arc::new(AtomicUsize::new(0));
        let accept = tokio::spawn({
            let (state, accepted) = (state.clone(), accepted.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(relay(client, upstream.clone(), state.subscribe()));
                }
            }
        });
        Self { addr, state, accepted, accept }
    }

    /// How many connections clients have opened through the proxy so far.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// The address clients connect to instead of the service's.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection and refuses new ones (accepts and closes at
    /// once) until [`restore`](Self::restore).
    pub fn cut(&self) {
        self.state.send_replace(State::Cut);
    }

    /// Keeps connections open and silent, old and new, until
    /// [`restore`](Self::restore) or [`cut`](Self::cut).
    pub fn blackhole(&self) {
        self.state.send_replace(State::Blackhole);
    }

    /// Forwards again: held connections resume, new ones reach the service.
    pub fn restore(&self) {
        self.state.send_replace(State::Forward);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Ends every relay: they watch the state.
        self.state.send_replace(State::Cut);
    }
}

/// Waits while blackholed; `false` once cut (or the proxy is gone).
async fn may_flow(state: &mut watch::Receiver<State>) -> bool {
    loop {
        match *state.borrow_and_update() {
            State::Forward => return true,
            State::Cut => return false,
            State::Blackhole => {}
        }
        if state.changed().await.is_err() {
            return false;
        }
    }
}

/// One client connection: connects upstream once traffic may flow, then
/// copies both ways until either side closes or the proxy cuts.
async fn relay(client: TcpStream, upstream: String, mut state: watch::Receiver<State>) {
    if !may_flow(&mut state).await {
        return;
    }
    let Ok(server) = TcpStream::connect(&upstream).await else { return };
    let (from_client, to_client) = client.into_split();
    let (from_server, to_server) = server.into_split();
    tokio::select! {
        () = pump(from_client, to_server, state.clone()) => {}
        () = pump(from_server, to_client, state) => {}
    }
}

/// Copies bytes one way, holding them while blackholed. The state is
/// checked before each read and again before each write, and a change wins
/// over a ready read: bytes a client sends after [`FaultProxy::cut`]
/// returned never reach the service, however late this task runs.
async fn pump(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin, mut state: watch::Receiver<State>) {
    let mut buf = vec![0_u8; 16 * 1024];
    loop {
        if !may_flow(&mut state).await {
            return;
        }
        let n = tokio::select! {
            biased;
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        if !may_flow(&mut state).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
