//! `gatehouse.v1.AuditService`: the caller's audit trail, newest first,
//! paged with an opaque token. Served to signed-in callers only (their Bearer
//! token is checked before any RPC runs, see `crate::caller`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use gatehouse_application::AppError;
use gatehouse_application::audit::ListAuditEvents;
use gatehouse_application::organizations::ListOrganizationAuditEvents;
use gatehouse_application::ports::audit::AuditCursor;
use gatehouse_domain::{AuditRecord, OrganizationId};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use gatehouse_application::paging::DEFAULT_PAGE_SIZE;

use crate::caller::{acting_in, signed_in};
use crate::error::status;
use crate::fields::{Fields, parsed};
use crate::pb;
use crate::timestamp;

/// Longest page token accepted before decoding; real ones are about 90 bytes.
const MAX_PAGE_TOKEN_BYTES: usize = 256;

/// The use cases behind `AuditService`.
#[derive(Clone, Debug)]
pub struct AuditApi {
    pub list: ListAuditEvents,
    /// An organization's trail (`organization_id` set).
    pub list_organization: ListOrganizationAuditEvents,
}

fn audit_event(record: AuditRecord) -> pb::AuditEvent {
    pb::AuditEvent {
        event_id: record.id.to_string(),
        occurred_at: Some(timestamp(record.occurred_at)),
        kind: record.kind,
        actor_id: record.actor.map(|u| u.to_string()).unwrap_or_default(),
        subject_id: record.subject.map(|u| u.to_string()).unwrap_or_default(),
        organization_id: record.organization.unwrap_or_default(),
        client_ip: record.client.ip.unwrap_or_default(),
        user_agent: record.client.user_agent.unwrap_or_default(),
        outcome: record.outcome.as_str().to_owned(),
        details: record.details.into_iter().collect(),
    }
}

/// The opaque page token of a cursor: base64url (no padding) of
/// `<occurred_at, RFC 3339 with microseconds>|<id>`.
fn page_token(cursor: AuditCursor) -> String {
    let text = format!("{}|{}", cursor.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true), cursor.id);
    URL_SAFE_NO_PAD.encode(text)
}

/// The cursor of a page token [`page_token`] handed out; `None` when it is
/// not one.
fn cursor(token: &str) -> Option<AuditCursor> {
    if token.len() > MAX_PAGE_TOKEN_BYTES {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (at, id) = text.split_once('|')?;
    let occurred_at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
    let id = Uuid::try_parse(id).ok()?;
    Some(AuditCursor { occurred_at, id })
}

/// The page size and start of a `ListAuditEvents` request.
fn paging(req: &pb::ListAuditEventsRequest) -> Result<(u32, Option<AuditCursor>), AppError> {
    let mut fields = Fields::default();
    let size = fields.page_size(req.page_size).map(|n| if n == 0 { DEFAULT_PAGE_SIZE } else { n });
    let start = if req.page_token.is_empty() {
        None
    } else {
        let start = cursor(&req.page_token);
        if start.is_none() {
            fields.violation("page_token", "page_token is not one this server handed out");
        }
        start
    };
    fields.finish()?;
    Ok((size.unwrap_or(DEFAULT_PAGE_SIZE), start))
}

impl AuditApi {
    async fn list_audit_events(
        &self,
        mut request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<pb::ListAuditEventsResponse, AppError> {
        let caller = signed_in(&mut request)?;
        let (page_size, start) = paging(request.get_ref())?;
        let page = if request.get_ref().organization_id.is_empty() {
            self.list.execute(&caller, page_size, start).await?
        } else {
            let mut fields = Fields::default();
            let org = fields.uuid("organization_id", &request.get_ref().organization_id);
            let (org,) = parsed!(fields, org);
            let org = OrganizationId::from_uuid(org);
            acting_in(&caller, org)?;
            self.list_organization.execute(caller.user_id, org, page_size, start).await?
        };
        Ok(pb::ListAuditEventsResponse {
            events: page.events.into_iter().map(audit_event).collect(),
            next_page_token: page.next.map(page_token).unwrap_or_default(),
        })
    }
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for AuditApi {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        Self::list_audit_events(self, request).await.map(Response::new).map_err(status)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{TimeDelta, TimeZone};
    use gatehouse_domain::{AuditOutcome, ClientInfo, UserId};

    use super::*;

    fn field_names<T: std::fmt::Debug>(result: Result<T, AppError>) -> Vec<&'static str> {
        match result {
            Err(AppError::InvalidArgument(v)) => v.iter().map(|v| v.field).collect(),
            Err(other) => panic!("invalid argument expected, got {other:?}"),
            Ok(_) => vec![],
        }
    }

    fn req(page_size: i32, page_token: &str) -> pb::ListAuditEventsRequest {
        pb::ListAuditEventsRequest { page_size, page_token: page_token.into(), organization_id: String::new() }
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 14, 15, 9, 26).unwrap() + TimeDelta::microseconds(535_897)
    }

    #[test]
    fn page_size_defaults_to_50_and_is_bounded() {
        assert_eq!(paging(&req(0, "")).unwrap(), (50, None));
        assert_eq!(paging(&req(1, "")).unwrap(), (1, None));
        assert_eq!(paging(&req(100, "")).unwrap(), (100, None));
        assert_eq!(field_names(paging(&req(101, ""))), ["page_size"]);
        assert_eq!(field_names(paging(&req(-1, "x"))), ["page_size", "page_token"]);
    }

    #[test]
    fn page_token_round_trips_its_cursor() {
        let start = AuditCursor { occurred_at: at(), id: Uuid::from_u128(0x0193_aaaa_bbbb_7ccc_8ddd_eeee_ffff_0001) };
        let token = page_token(start);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
        assert_eq!(cursor(&token), Some(start));
        assert_eq!(paging(&req(10, &token)).unwrap(), (10, Some(start)));
    }

    #[test]
    fn malformed_page_tokens_are_invalid_arguments() {
        let encode = |s: &str| URL_SAFE_NO_PAD.encode(s);
        for token in [
            "not base64!".to_owned(),
            encode("no separator"),
            encode("2025-03-14T15:09:26.535897Z|not-a-uuid"),
            encode(&format!("yesterday|{}", Uuid::nil())),
            "A".repeat(MAX_PAGE_TOKEN_BYTES + 1),
        ] {
            assert_eq!(cursor(&token), None, "{token}");
            assert_eq!(field_names(paging(&req(0, &token))), ["page_token"], "{token}");
        }
    }

    #[test]
    fn an_audit_row_shows_every_field() {
        let actor = UserId::from_uuid(Uuid::from_u128(1));
        let id = Uuid::from_u128(9);
        let shown = audit_event(AuditRecord {
            id,
            kind: "login.failed".into(),
            occurred_at: at(),
            actor: None,
            subject: Some(actor),
            organization: None,
            client: ClientInfo::new(Some("grpcurl/1.9"), Some("203.0.113.9".into())),
            outcome: AuditOutcome::Failure,
            details: vec![("reason".into(), "wrong_password".into())],
        });
        assert_eq!(shown.event_id, id.to_string());
        assert_eq!(shown.occurred_at, Some(timestamp(at())));
        assert_eq!(shown.kind, "login.failed");
        assert_eq!(shown.actor_id, "");
        assert_eq!(shown.subject_id, actor.to_string());
        assert_eq!(shown.organization_id, "");
        assert_eq!(shown.client_ip, "203.0.113.9");
        assert_eq!(shown.user_agent, "grpcurl/1.9");
        assert_eq!(shown.outcome, "failure");
        assert_eq!(shown.details.get("reason").map(String::as_str), Some("wrong_password"));
    }
}
