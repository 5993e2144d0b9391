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
}
