//! [`AuditLog`] over the `audit_events` table, and the insert the outbox
//! uses to write the audit rows of a change in that change's transaction.
//! A fact with no change to ride on is recorded the same way: its outbox
//! message and audit row in one transaction of their own.
//!
//! A page is `… WHERE (actor_id = u OR subject_id = u) AND (occurred_at < t
//! OR (occurred_at = t AND id < i)) ORDER BY occurred_at DESC, id DESC LIMIT
//! n`: the cursor `(t, i)` is the last row of the previous page, and the id
//! breaks ties between rows of the same instant, so paging returns every row
//! exactly once.
//!
//! The details are stored as a JSON object of strings, in their order
//! (`{"reason":"invalid_credentials"}`), written and read by the small codec
//! below; a stored value that is not such an object is reported, not guessed at.

use async_trait::async_trait;
use gatehouse_application::ports::audit::{AuditCursor, AuditLog};
use gatehouse_application::ports::events::OutboxMessage;
use gatehouse_application::ports::store::StoreError;
use gatehouse_domain::{AuditOutcome, AuditRecord, ClientInfo, UserId};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::database::Database;
use crate::entity::audit_event;
use crate::error::store_error;
use crate::outbox::insert_outbox;
use crate::pool::Pool;
use crate::transaction::{begin, finish};

/// The audit trail in SQL.
#[derive(Debug, Clone)]
pub struct SqlAuditLog {
    conn: Pool,
}

impl SqlAuditLog {
    /// An audit log over `db`'s pool.
    #[must_use]
    pub fn new(db: &Database) -> Self {
        Self { conn: db.conn.clone() }
    }
}

#[async_trait]
impl AuditLog for SqlAuditLog {
    async fn record(&self, messages: &[OutboxMessage]) -> Result<(), StoreError> {
        if messages.is_empty() {
            return Ok(());
        }
        let txn = begin(&self.conn).await?;
        let outcome = insert_outbox(&txn, messages).await;
        finish(txn, outcome).await
    }

    async fn list(&self, user: UserId, after: Option<AuditCursor>, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let user = *user.as_uuid();
        let mut query = audit_event::Entity::find().filter(
            Condition::any().add(audit_event::Column::ActorId.eq(user)).add(audit_event::Column::SubjectId.eq(user)),
        );
        if let Some(c) = after {
            query = query.filter(
                Condition::any().add(audit_event::Column::OccurredAt.lt(c.occurred_at)).add(
                    Condition::all()
                        .add(audit_event::Column::OccurredAt.eq(c.occurred_at))
                        .add(audit_event::Column::Id.lt(c.id)),
                ),
            );
        }
        let rows = query
            .order_by_desc(audit_event::Column::OccurredAt)
            .order_by_desc(audit_event::Column::Id)
            .limit(u64::from(limit))
            .all(&self.conn)
            .await
            .map_err(store_error)?;
        rows.into_iter().map(to_domain).collect::<Result<_, DbErr>>().map_err(store_error)
    }
}

/// Writes `records` to the audit table in `txn` (the transaction of the
/// change they report).
pub(crate) async fn insert_audit<'a>(
    conn: &DatabaseTransaction,
    records: impl Iterator<Item = &'a AuditRecord>,
) -> Result<(), DbErr> {
    let rows: Vec<audit_event::ActiveModel> = records.map(to_row).collect();
    if rows.is_empty() {
        return Ok(());
    }
    audit_event::Entity::insert_many(rows).exec_without_returning(conn).await?;
    Ok(())
}

fn to_row(r: &AuditRecord) -> audit_event::ActiveModel {
    audit_event::ActiveModel {
        id: Set(r.id),
        kind: Set(r.kind.clone()),
        occurred_at: Set(r.occurred_at),
        actor_id: Set(r.actor.map(|u| *u.as_uuid())),
        subject_id: Set(r.subject.map(|u| *u.as_uuid())),
        organization_id: Set(r.organization.clone()),
        client_ip: Set(r.client.ip.clone()),
        user_agent: Set(r.client.user_agent.clone()),
        outcome: Set(r.outcome.as_str().to_owned()),
        details: Set(details_to_json(&r.details)),
    }
}

fn to_domain(row: audit_event::Model) -> Result<AuditRecord, DbErr> {
    let outcome = AuditOutcome::parse(&row.outcome)
        .ok_or_else(|| DbErr::Custom(format!("stored audit outcome {:?} is unknown", row.outcome)))?;
    let details = details_from_json(&row.details)
        .ok_or_else(|| DbErr::Custom(format!("stored audit details of {} are not a JSON object of strings", row.id)))?;
    Ok(AuditRecord {
        id: row.id,
        kind: row.kind,
        occurred_at: row.occurred_at,
        actor: row.actor_id.map(UserId::from_uuid),
        subject: row.subject_id.map(UserId::from_uuid),
        organization: row.organization_id,
        client: ClientInfo { user_agent: row.user_agent, ip: row.client_ip },
        outcome,
        details,
    })
}

/// The details as a JSON object, keys in order.
fn details_to_json(details: &[(String, String)]) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in details.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(&mut out, key);
        out.push(':');
        write_json_string(&mut out, value);
    }
    out.push('}');
    out
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Reads a JSON object whose values are all strings, keeping the order (and
/// any repeated key); `None` for anything else.
fn details_from_json(text: &str) -> Option<Vec<(String, String)>> {
    let mut p = Parser { chars: text.chars().peekable() };
    p.skip_ws();
    p.expect('{')?;
    let mut pairs = Vec::new();
    p.skip_ws();
    if p.eat('}') {
        p.skip_ws();
        return p.chars.peek().is_none().then_some(pairs);
    }
    loop {
        p.skip_ws();
        let key = p.string()?;
        p.skip_ws();
        p.expect(':')?;
        p.skip_ws();
        let value = p.string()?;
        pairs.push((key, value));
        p.skip_ws();
        if p.eat(',') {
            continue;
        }
        p.expect('}')?;
        p.skip_ws();
        return p.chars.peek().is_none().then_some(pairs);
    }
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.chars.next_if(|c| matches!(c, ' ' | '\t' | '\n' | '\r')).is_some() {}
    }

    fn eat(&mut self, c: char) -> bool {
        self.chars.next_if_eq(&c).is_some()
    }

    fn expect(&mut self, c: char) -> Option<()> {
        self.eat(c).then_some(())
    }

    fn string(&mut self) -> Option<String> {
        self.expect('"')?;
        let mut out = String::new();
        loop {
            match self.chars.next()? {
                '"' => return Some(out),
                '\\' => match self.chars.next()? {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    '/' => out.push('/'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'u' => {
                        let high = self.hex4()?;
                        let code = if (0xd800..0xdc00).contains(&high) {
                            self.expect('\\')?;
                            self.expect('u')?;
                            let low = self.hex4()?;
                            if !(0xdc00..0xe000).contains(&low) {
                                return None;
                            }
                            0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
                        } else {
                            high
                        };
                        out.push(char::from_u32(code)?);
                    }
                    _ => return None,
                },
                c if u32::from(c) < 0x20 => return None,
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut n = 0;
        for _ in 0..4 {
            n = n * 16 + self.chars.next()?.to_digit(16)?;
        }
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn details_are_a_json_object_in_order() {
        let d = pairs(&[("reason", "invalid_credentials"), ("factor", "totp")]);
        let json = details_to_json(&d);
        assert_eq!(json, r#"{"reason":"invalid_credentials","factor":"totp"}"#);
        assert_eq!(details_from_json(&json), Some(d));
        assert_eq!(details_to_json(&[]), "{}");
        assert_eq!(details_from_json("{}"), Some(Vec::new()));
    }

    #[test]
    fn details_escape_and_round_trip_any_text() {
        let d = pairs(&[("q\"u\\o/te", "line\nbreak\ttab\r\u{1}\u{7f}"), ("ünï", "😀 ☃"), ("k", "k"), ("k", "")]);
        let json = details_to_json(&d);
        assert!(!json.contains('\n') && !json.contains('\u{1}'), "{json}");
        assert_eq!(details_from_json(&json), Some(d));
    }

    #[test]
    fn details_read_standard_json_escapes() {
        let json = r#" { "a" : "\u00e9\ud83d\ude00\/\b\f" , "b":"" } "#;
        assert_eq!(details_from_json(json), Some(pairs(&[("a", "é😀/\u{8}\u{c}"), ("b", "")])));
    }

    #[test]
    fn malformed_details_are_refused() {
        for bad in [
            "",
            "[]",
            "{",
            r#"{"a"}"#,
            r#"{"a":1}"#,
            r#"{"a":"b",}"#,
            r#"{"a":"b"} x"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\ud83d"}"#,
            "{\"a\":\"\n\"}",
        ] {
            assert_eq!(details_from_json(bad), None, "{bad}");
        }
    }
}
