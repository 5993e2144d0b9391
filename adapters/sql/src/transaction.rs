//! The transactions of single port methods that need more than one statement
//! (the units of work have their own, in `unit_of_work`).

use gatehouse_application::ports::store::StoreError;
use sea_orm::{DatabaseTransaction, DbErr};

use crate::error::{abandon, store_error};
use crate::pool::Pool;

/// Opens a transaction on `conn`.
pub(crate) async fn begin(conn: &Pool) -> Result<DatabaseTransaction, StoreError> {
    conn.begin().await.map_err(store_error)
}

/// Commits `txn` when its steps succeeded; an error rolls back.
pub(crate) async fn finish<T>(txn: DatabaseTransaction, outcome: Result<T, DbErr>) -> Result<T, StoreError> {
    match outcome {
        Ok(value) => {
            txn.commit().await.map_err(store_error)?;
            Ok(value)
        }
        Err(err) => Err(abandon(txn, err).await),
    }
}
