//! Serving: the gatehouse services plus `grpc.health.v1` and reflection
//! (v1 and v1alpha, so older grpcurl builds work too), under the server's
//! [`ServerLimits`], with graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_application::error_chain;
use gatehouse_application::ports::health::Probe;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::caller::Identify;
use crate::limits::ServerLimits;
use crate::pb::audit_service_server::AuditServiceServer;
use crate::pb::auth_service_server::AuthServiceServer;
use crate::pb::mfa_service_server::MfaServiceServer;
use crate::pb::session_service_server::SessionServiceServer;
use crate::pb::token_service_server::TokenServiceServer;
use crate::pb::user_service_server::UserServiceServer;
use crate::{AuditApi, AuthApi, ClientIpPolicy, FILE_DESCRIPTOR_SET, MfaApi, SessionApi, TokenApi, UserApi};

/// The gRPC server failed to start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection service")]
    Reflection(#[source] tonic_reflection::server::Error),
}

/// Everything the gRPC side needs to serve.
#[derive(Clone)]
pub struct GrpcServer {
    auth: AuthApi,
    token: TokenApi,
    user: UserApi,
    mfa: MfaApi,
    sessions: SessionApi,
    audit: AuditApi,
    identify: Identify,
    probes: Vec<Arc<dyn Probe>>,
    health_interval: Duration,
    limits: ServerLimits,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("health_interval", &self.health_interval)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl GrpcServer {
    /// `client_ip` is the one policy for finding a client's address behind
    /// trusted proxies, for every service. Callers' Bearer tokens are checked
    /// by `token.validate`, the check `ValidateToken` answers gateways with,
    /// so a token is good for all of Gatehouse or for none of it. `probes`
    /// decide the health status, per service by what it needs (`SERVICE_NEEDS`).
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        auth: AuthApi,
        token: TokenApi,
        user: UserApi,
        mfa: MfaApi,
        sessions: SessionApi,
        audit: AuditApi,
        client_ip: ClientIpPolicy,
        probes: Vec<Arc<dyn Probe>>,
        health_interval: Duration,
    ) -> Self {
        let identify = Identify::new(client_ip, token.validate.clone());
        let limits = ServerLimits::default();
        Self { auth, token, user, mfa, sessions, audit, identify, probes, health_interval, limits }
    }

    /// The server with `limits` instead of the defaults.
    #[must_use]
    pub const fn with_limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves on `listener` until `shutdown` completes, then drains in-flight calls.
    ///
    /// # Errors
    /// [`ServeError`] when the services cannot be built.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        report_health(&reporter, &self.probes).await;
        let health_task = tokio::spawn(watch_health(reporter, self.probes, self.health_interval));

        let reflection_v1 = reflection().build_v1().map_err(ServeError::Reflection)?;
        let reflection_v1alpha = reflection().build_v1alpha().map_err(ServeError::Reflection)?;

        // Each service says what it needs of its callers. TokenService needs
        // nothing: ValidateToken takes its token in the body, and the hot
        // path must not pay for a second validation or a client look-up.
        // Each also refuses a message over the limit itself, behind the
        // guard that refuses it from its length prefix.
        let id = &self.identify;
        let max = self.limits.max_message_bytes;
        let routes = Routes::new(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(id.anonymous(AuthServiceServer::new(self.auth).max_decoding_message_size(max)))
            .add_service(TokenServiceServer::new(self.token).max_decoding_message_size(max))
            .add_service(id.signed_in(UserServiceServer::new(self.user).max_decoding_message_size(max)))
            .add_service(id.signed_in(MfaServiceServer::new(self.mfa).max_decoding_message_size(max)))
            .add_service(id.signed_in(SessionServiceServer::new(self.sessions).max_decoding_message_size(max)))
            .add_service(id.signed_in(AuditServiceServer::new(self.audit).max_decoding_message_size(max)))
            .prepare();
        crate::connection::serve(listener, routes, self.limits, shutdown).await;
        health_task.abort();
        Ok(())
    }
}

/// Reflection over our services, health, and the `google.rpc` error
/// details, so grpcurl can print an error's `ErrorInfo` and `BadRequest`.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// Probes every `every`, and at once whenever a probe says its dependency
/// went up or down (a request found no connection), so health follows a
/// failure within one probe interval even when it falls between ticks.
async fn watch_health(reporter: HealthReporter, probes: Vec<Arc<dyn Probe>>, every: Duration) {
    let nudge = Arc::new(tokio::sync::Notify::new());
    let listeners: Vec<_> = probes
        .iter()
        .map(|probe| {
            let (probe, nudge) = (Arc::clone(probe), Arc::clone(&nudge));
            tokio::spawn(async move {
                let mut seen = 0;
                loop {
                    seen = probe.changed(seen).await;
                    // A stored permit: a change during a report is not lost.
                    nudge.notify_one();
                }
            })
        })
        .collect();
    let _stop_listeners = AbortOnDrop(listeners);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = nudge.notified() => ticker.reset(),
        }
        report_health(&reporter, &probes).await;
    }
}

/// Aborts its tasks when dropped, as the health task is when serving stops.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Longest a probe may take before its dependency counts as down: a
/// connection that stops answering must not freeze the status at SERVING.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What each service needs to answer, by probe name: `TokenService`
/// validates with the keys (in memory) and the denylist only, so a database
/// outage must not take the hot path out of a load balancer's rotation; the
/// account services need the database, and those that revoke or throttle
/// also need the denylist or the rate limiter. The whole server (`""`)
/// needs every probe. A probe not named here counts for `""` only.
const SERVICE_NEEDS: [(&str, &[&str]); 6] = [
    (<AuthServiceServer<AuthApi> as NamedService>::NAME, &["database", "denylist", "rate_limiter"]),
    (<TokenServiceServer<TokenApi> as NamedService>::NAME, &["denylist"]),
    (<UserServiceServer<UserApi> as NamedService>::NAME, &["database", "denylist", "rate_limiter"]),
    (<MfaServiceServer<MfaApi> as NamedService>::NAME, &["database", "rate_limiter"]),
    (<SessionServiceServer<SessionApi> as NamedService>::NAME, &["database", "denylist"]),
    (<AuditServiceServer<AuditApi> as NamedService>::NAME, &["database"]),
];

/// The status of every health name given the probes that failed.
fn statuses(failed: &[&str]) -> Vec<(&'static str, ServingStatus)> {
    let status = |ok: bool| if ok { ServingStatus::Serving } else { ServingStatus::NotServing };
    let mut all = vec![("", status(failed.is_empty()))];
    all.extend(SERVICE_NEEDS.iter().map(|(name, needs)| (*name, status(!needs.iter().any(|n| failed.contains(n))))));
    all
}

async fn report_health(reporter: &HealthReporter, probes: &[Arc<dyn Probe>]) {
    let mut failed = Vec::new();
    for probe in probes {
        let error = match tokio::time::timeout(PROBE_TIMEOUT, probe.check()).await {
            Ok(Ok(())) => continue,
            Ok(Err(error)) => error_chain(error.as_ref()),
            Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
        };
        tracing::warn!(dependency = probe.name(), %error, "health check failed");
        failed.push(probe.name());
    }
    for (name, status) in statuses(&failed) {
        reporter.set_service_status(name, status).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(failed: &[&str], name: &str) -> ServingStatus {
        statuses(failed).into_iter().find(|(n, _)| *n == name).map(|(_, s)| s).unwrap_or(ServingStatus::Unknown)
    }

    const TOKEN: &str = <TokenServiceServer<TokenApi> as NamedService>::NAME;
    const USER: &str = <UserServiceServer<UserApi> as NamedService>::NAME;

    #[test]
    fn a_database_outage_leaves_token_validation_serving() {
        assert_eq!(status_of(&["database"], TOKEN), ServingStatus::Serving);
        assert_eq!(status_of(&["database"], USER), ServingStatus::NotServing);
        assert_eq!(status_of(&["database"], ""), ServingStatus::NotServing);
    }

    #[test]
    fn a_denylist_outage_takes_token_validation_out() {
        assert_eq!(status_of(&["denylist"], TOKEN), ServingStatus::NotServing);
        let audit = <AuditServiceServer<AuditApi> as NamedService>::NAME;
        assert_eq!(status_of(&["denylist"], audit), ServingStatus::Serving);
    }

    #[test]
    fn every_routed_service_and_the_whole_server_are_reported() {
        let names: Vec<&str> = statuses(&[]).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 7);
        assert!(statuses(&[]).iter().all(|(_, s)| *s == ServingStatus::Serving));
        assert!(names.contains(&"") && names.contains(&TOKEN) && names.contains(&USER));
    }
}
