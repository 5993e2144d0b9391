//! `gatehouse.v1.SessionService`: the caller's sessions. Served to signed-in
//! callers only (their Bearer token is checked before any RPC runs, see
//! `crate::caller`); every RPC acts on that user's sessions only (another
//! user's session is `NOT_FOUND`).

use gatehouse_application::AppError;
use gatehouse_application::sessions::{ListSessions, RevokeOtherSessions, RevokeSession, SessionView};
use gatehouse_domain::{SessionId, describe_device};
use tonic::{Request, Response, Status};

use crate::caller::{Caller, signed_in};
use crate::error::status;
use crate::fields::{Fields, parsed};
use crate::pb;
use crate::timestamp;

/// The use cases behind `SessionService`.
#[derive(Clone, Debug)]
pub struct SessionApi {
    pub list: ListSessions,
    pub revoke: RevokeSession,
    pub revoke_others: RevokeOtherSessions,
}

fn session(view: SessionView) -> pb::Session {
    let SessionView { session, current } = view;
    pb::Session {
        session_id: session.id().to_string(),
        created_at: Some(timestamp(session.created_at())),
        last_used_at: Some(timestamp(session.last_used_at())),
        expires_at: Some(timestamp(session.expires_at())),
        absolute_expires_at: Some(timestamp(session.absolute_expires_at())),
        device: describe_device(session.client().user_agent.as_deref()),
        user_agent: session.client().user_agent.clone().unwrap_or_default(),
        client_ip: session.client().ip.clone().unwrap_or_default(),
        current,
    }
}

/// Checks the paging fields of `ListSessions`. Every session fits in one
/// page, so no page token is ever handed out and none is accepted.
fn check_paging(req: &pb::ListSessionsRequest) -> Result<(), AppError> {
    let mut fields = Fields::default();
    fields.page_size(req.page_size);
    if !req.page_token.is_empty() {
        fields.violation("page_token", "page_token is not one this server handed out");
    }
    fields.finish()
}

impl SessionApi {
    async fn list_sessions(
        &self,
        mut request: Request<pb::ListSessionsRequest>,
    ) -> Result<pb::ListSessionsResponse, AppError> {
        let caller = signed_in(&mut request)?;
        check_paging(request.get_ref())?;
        let sessions = self.list.execute(&caller).await?;
        Ok(pb::ListSessionsResponse {
            sessions: sessions.into_iter().map(session).collect(),
            next_page_token: String::new(),
        })
    }

    async fn revoke_session(
        &self,
        mut request: Request<pb::RevokeSessionRequest>,
    ) -> Result<pb::RevokeSessionResponse, AppError> {
        let (caller, client) = Caller::take(&mut request)?.signed_in()?;
        let mut fields = Fields::default();
        let id = fields.uuid("session_id", &request.get_ref().session_id);
        let (id,) = parsed!(fields, id);
        self.revoke.execute(&caller, SessionId::from_uuid(id), &client).await?;
        Ok(pb::RevokeSessionResponse {})
    }

    async fn revoke_other_sessions(
        &self,
        mut request: Request<pb::RevokeOtherSessionsRequest>,
    ) -> Result<pb::RevokeOtherSessionsResponse, AppError> {
        let (caller, client) = Caller::take(&mut request)?.signed_in()?;
        let revoked = self.revoke_others.execute(&caller, &client).await?;
        Ok(pb::RevokeOtherSessionsResponse { revoked_count: i32::try_from(revoked).unwrap_or(i32::MAX) })
    }
}

#[tonic::async_trait]
impl pb::session_service_server::SessionService for SessionApi {
    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        Self::list_sessions(self, request).await.map(Response::new).map_err(status)
    }

    async fn revoke_session(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Result<Response<pb::RevokeSessionResponse>, Status> {
        Self::revoke_session(self, request).await.map(Response::new).map_err(status)
    }

    async fn revoke_other_sessions(
        &self,
        request: Request<pb::RevokeOtherSessionsRequest>,
    ) -> Result<Response<pb::RevokeOtherSessionsResponse>, Status> {
        Self::revoke_other_sessions(self, request).await.map(Response::new).map_err(status)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{TimeDelta, TimeZone, Utc};
    use gatehouse_domain::{ClientInfo, Session, UserId};
    use uuid::Uuid;

    use super::*;

    fn field_names(result: Result<(), AppError>) -> Vec<&'static str> {
        match result {
            Err(AppError::InvalidArgument(v)) => v.iter().map(|v| v.field).collect(),
            Err(other) => panic!("invalid argument expected, got {other:?}"),
            Ok(()) => vec![],
        }
    }

    #[test]
    fn page_size_is_checked_and_no_page_token_is_accepted() {
        let req = |page_size, page_token: &str| pb::ListSessionsRequest { page_size, page_token: page_token.into() };
        assert!(field_names(check_paging(&req(0, ""))).is_empty());
        assert!(field_names(check_paging(&req(100, ""))).is_empty());
        assert_eq!(field_names(check_paging(&req(101, ""))), ["page_size"]);
        assert_eq!(field_names(check_paging(&req(-1, "x"))), ["page_size", "page_token"]);
    }

    #[test]
    fn a_session_shows_its_times_client_and_device() {
        let at = Utc.with_ymd_and_hms(2025, 3, 14, 15, 9, 26).unwrap();
        let id = Uuid::from_u128(7);
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        let s = Session::restore(
            SessionId::from_uuid(id),
            UserId::from_uuid(Uuid::from_u128(1)),
            at,
            at + TimeDelta::hours(1),
            at + TimeDelta::days(14),
            at + TimeDelta::days(90),
            None,
            ClientInfo::new(Some(firefox), Some("203.0.113.9".into())),
        );
        let shown = session(SessionView { session: s, current: true });
        assert_eq!(shown.session_id, id.to_string());
        assert_eq!(shown.device, "Firefox on Linux");
        assert_eq!(shown.user_agent, firefox);
        assert_eq!(shown.client_ip, "203.0.113.9");
        assert!(shown.current);
        assert_eq!(shown.created_at, Some(timestamp(at)));
        assert_eq!(shown.last_used_at, Some(timestamp(at + TimeDelta::hours(1))));
        assert_eq!(shown.expires_at, Some(timestamp(at + TimeDelta::days(14))));
        assert_eq!(shown.absolute_expires_at, Some(timestamp(at + TimeDelta::days(90))));
    }
}
