//! The one place where database errors become [`StoreError`]s.

use gatehouse_application::ports::store::StoreError;
use sea_orm::sqlx;
use sea_orm::sqlx::postgres::PgDatabaseError;
use sea_orm::sqlx::sqlite::SqliteError;
use sea_orm::{DatabaseTransaction, DbErr, RuntimeErr, SqlErr};

/// Maps a sea-orm error to the port's error: a refused unique value is a
/// [`StoreError::Conflict`] (its message names the constraint), an unreachable,
/// overloaded or timed-out database is [`StoreError::Unavailable`], the rest is
/// [`StoreError::Internal`].
pub(crate) fn store_error(err: DbErr) -> StoreError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) => return StoreError::Conflict(message),
        Some(SqlErr::ForeignKeyConstraintViolation(message)) => return StoreError::Gone(message),
        _ => {}
    }
    if is_unavailable(&err) { StoreError::Unavailable(Box::new(err)) } else { StoreError::Internal(Box::new(err)) }
}

/// Rolls back after `err` and returns it as a [`StoreError`]; a failed
/// rollback is only logged, since the pool discards the transaction anyway.
pub(crate) async fn abandon(txn: DatabaseTransaction, err: DbErr) -> StoreError {
    if let Err(rollback) = txn.rollback().await {
        tracing::warn!(error = %rollback, "rollback after a failed write failed");
    }
    store_error(err)
}

fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e)) => !matches!(e, sqlx::Error::Configuration(_)),
        DbErr::Conn(RuntimeErr::Internal(_)) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => is_transient(e),
        _ => false,
    }
}

/// No connection to be had: the pool timed out or closed, or the socket
/// failed. Unlike "unavailable", a statement timeout or a serialization
/// failure does not count: the database answered.
pub(crate) fn is_lost_connection(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => is_socket_failure(e),
        _ => false,
    }
}

fn is_socket_failure(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

/// Errors that say "not now" rather than "never": lost or refused connections,
/// pool time-outs, and the database asking the client to come back later.
fn is_transient(err: &sqlx::Error) -> bool {
    if is_socket_failure(err) {
        return true;
    }
    match err {
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
                is_transient_sqlstate(pg.code())
            } else if db.try_downcast_ref::<SqliteError>().is_some() {
                // SQLITE_BUSY / SQLITE_LOCKED and their extended codes: the
                // busy timeout ran out while another connection held the lock.
                db.code().and_then(|code| code.parse::<i32>().ok()).is_some_and(|code| matches!(code & 0xff, 5 | 6))
            } else {
                false
            }
        }
        _ => false,
    }
}

/// SQLSTATE classes 08 (connection exception), 53 (insufficient resources),
/// 57P (operator intervention: shutdown, cannot connect now), 57014 (statement
/// cancelled, e.g. by a timeout), and 40001/40P01 (serialization failure,
/// deadlock: the transaction can be retried).
fn is_transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || matches!(code, "57014" | "40001" | "40P01")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ConnAcquireErr;

    #[test]
    fn pool_timeouts_are_unavailable() {
        let err = store_error(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }

    #[test]
    fn lost_connections_are_unavailable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let err = store_error(DbErr::Query(RuntimeErr::SqlxError(sqlx::Error::Io(io))));
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }

    #[test]
    fn other_errors_are_internal() {
        let err = store_error(DbErr::Type("bad column".into()));
        assert!(matches!(err, StoreError::Internal(_)), "{err:?}");
    }

    #[test]
    fn transient_sqlstates() {
        for code in ["08006", "53300", "57P01", "40001", "40P01"] {
            assert!(is_transient_sqlstate(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02"] {
            assert!(!is_transient_sqlstate(code), "{code}");
        }
    }
}
