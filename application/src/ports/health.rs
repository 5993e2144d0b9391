//! Dependency checks behind the `grpc.health.v1` service.

use async_trait::async_trait;

use crate::ports::BoxError;

/// One dependency whose reachability decides whether this replica can serve.
#[async_trait]
pub trait Probe: std::fmt::Debug + Send + Sync {
    /// A short name for logs (`database`, `denylist`).
    fn name(&self) -> &'static str;

    /// Succeeds when the dependency answers right now; the error says why not.
    async fn check(&self) -> Result<(), BoxError>;

    /// Resolves once the dependency may have gone up or down since the
    /// change counter stood at `seen`, with the counter's new value. An
    /// adapter that sees requests fail for want of a connection says so
    /// here, and health follows at once instead of at the next probe. The
    /// default never resolves: the periodic check alone decides.
    async fn changed(&self, seen: u64) -> u64 {
        std::future::pending::<()>().await;
        seen
    }
}
