//! Ending a transaction the way its steps decided.

use gatehouse_application::ports::store::StoreError;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};

use crate::error::{abandon, store_error};

/// What a transaction's steps decided: keep their writes, or undo them
/// because the outcome is a refusal that must change nothing.
pub(crate) enum Decision<T> {
    Commit(T),
    Rollback(T),
}

/// Opens a transaction on `conn`.
pub(crate) async fn begin(conn: &DatabaseConnection) -> Result<DatabaseTransaction, StoreError> {
    conn.begin().await.map_err(store_error)
}

/// Commits or rolls back `txn` as `outcome` says; an error rolls back.
pub(crate) async fn finish<T>(txn: DatabaseTransaction, outcome: Result<Decision<T>, DbErr>) -> Result<T, StoreError> {
    match outcome {
        Ok(Decision::Commit(value)) => {
            txn.commit().await.map_err(store_error)?;
            Ok(value)
        }
        Ok(Decision::Rollback(value)) => {
            txn.rollback().await.map_err(store_error)?;
            Ok(value)
        }
        Err(err) => Err(abandon(txn, err).await),
    }
}
