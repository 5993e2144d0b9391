//! The Gatehouse server as a library: configuration, wiring and the serve
//! loop, shared by `main` and by the end-to-end tests (which build the app
//! with exactly the same wiring and serve it on port 0).

pub mod background;
pub mod config;
pub mod wiring;

use std::future::Future;
use std::time::Duration;

use gatehouse_application::auth::RebuildDenylist;
use tokio::net::TcpListener;

use crate::wiring::App;

/// How many times the start-up denylist refill is tried before giving up.
const START_REFILL_ATTEMPTS: u32 = 10;

/// The first and the longest pause between rebuild attempts while the
/// denylist is stale: short, since validation fails closed until one works.
const REBUILD_RETRY_FIRST: Duration = Duration::from_millis(100);
const REBUILD_RETRY_MAX: Duration = Duration::from_secs(2);

/// Serves `app` on `listener` until `shutdown` completes. The denylist is
/// rebuilt from SQL *before* the first call is answered (a restarted
/// in-process denylist is empty; answering earlier would let a revoked token
/// through), again every resync interval, and at once whenever it goes
/// stale (Redis lost data or could not be reached, or a write failed).
///
/// # Errors
/// When the denylist cannot be refilled at start, or the gRPC server fails.
pub async fn serve(app: App, listener: TcpListener, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let rebuild = app.rebuild_denylist.clone();
    let mut attempt = 1;
    loop {
        match rebuild.execute().await {
            Ok(n) => {
                tracing::info!(entries = n, "denylist refilled from sessions");
                break;
            }
            Err(error) if attempt < START_REFILL_ATTEMPTS => {
                tracing::warn!(%error, attempt, "denylist refill failed; retrying before serving");
                tokio::time::sleep(Duration::from_secs(1)).await;
                attempt += 1;
            }
            Err(error) => anyhow::bail!("cannot refill the denylist from sessions: {error}"),
        }
    }
    let resync = tokio::spawn(keep_denylist_complete(rebuild, app.denylist_resync_interval));
    let (stop_relay, relay_stopped) = tokio::sync::watch::channel(false);
    let mut relay = tokio::spawn(relay_outbox(app.relay, app.outbox_poll_interval, relay_stopped));
    let prune = tokio::spawn(prune_sessions(app.prune_sessions, app.session_prune_interval));
    let result = app.grpc.serve(listener, shutdown).await;
    resync.abort();
    // The relay finishes its round (bounded by half its lease), so no row
    // is left claimed for a lease's length; past the bound it is cut short.
    let _ = stop_relay.send(true);
    if tokio::time::timeout(RELAY_STOP_BOUND, &mut relay).await.is_err() {
        tracing::warn!("the outbox relay did not finish its round in time; its claimed rows wait out their lease");
        relay.abort();
    }
    prune.abort();
    if let Some(cache) = &app.token_cache {
        let stats = cache.stats();
        tracing::info!(hits = stats.hits, misses = stats.misses, entries = stats.entries, "verified-token cache");
    }
    Ok(result?)
}

/// Rebuilds the denylist every `interval`, and at once when it goes stale;
/// a failed rebuild is retried with a short backoff until one succeeds, so
/// the window in which validation fails closed is the outage plus one
/// rebuild, and a write that failed reaches the denylist from SQL.
async fn keep_denylist_complete(rebuild: RebuildDenylist, interval: Duration) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let urgent = tokio::select! {
            _ = ticker.tick() => false,
            () = rebuild.needed() => true,
        };
        let mut pause = REBUILD_RETRY_FIRST;
        loop {
            match rebuild.execute().await {
                Ok(n) if urgent => {
                    tracing::info!(entries = n, "denylist was stale; rebuilt from sessions");
                    break;
                }
                Ok(n) => {
                    tracing::debug!(entries = n, "denylist resynced from sessions");
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = pause.as_millis(), "denylist rebuild failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(REBUILD_RETRY_MAX);
                }
            }
        }
        ticker.reset();
    }
}

/// Deletes ended sessions every `interval`, for as long as the server runs.
async fn prune_sessions(prune: gatehouse_application::sessions::PruneSessions, interval: std::time::Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(error) = prune.execute().await {
            tracing::warn!(%error, "session pruning failed; will retry");
        }
    }
}

/// How often sent outbox rows past their retention are deleted.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long a graceful stop waits for the relay's round to end.
const RELAY_STOP_BOUND: Duration = Duration::from_secs(5);

/// Publishes the outbox until `stop` turns true: straight on while rows keep
/// coming, a poll interval's pause when idle or failing. A stop waits for
/// the round in progress, whose rows then end sent or handed back; only a
/// round cut short (a `kill -9`, or the stop bound) leaves rows claimed, and
/// they are sent again after their lease (consumers de-duplicate by event id).
async fn relay_outbox(
    relay: gatehouse_application::events::RelayOutbox,
    poll: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut next_prune = tokio::time::Instant::now();
    while !*stop.borrow() {
        let busy = match relay.run_once().await {
            // Under steady load a round every poll interval carries what
            // gathered meanwhile; going again at once after every small
            // round cost a claim per event or two.
            Ok(report) => report.more_due,
            Err(error) => {
                tracing::warn!(%error, "outbox relay round failed; will retry");
                false
            }
        };
        if tokio::time::Instant::now() >= next_prune {
            match relay.prune().await {
                Ok(n) if n > 0 => tracing::info!(rows = n, "pruned sent outbox rows"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "outbox prune failed"),
            }
            next_prune = tokio::time::Instant::now() + PRUNE_EVERY;
        }
        if !busy {
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                _ = stop.changed() => {}
            }
        }
    }
}
