//! Conversions between column values and domain values that can fail on
//! data no Gatehouse version writes; such a row is reported, not guessed at.

use gatehouse_domain::{EmailAddress, TokenHash};
use sea_orm::DbErr;

/// A count for an `integer` column.
pub(crate) fn to_i32(n: u32) -> Result<i32, DbErr> {
    i32::try_from(n).map_err(|_| DbErr::Custom(format!("{n} does not fit an integer column")))
}

/// A count read from an `integer` column.
pub(crate) fn to_u32(n: i32) -> Result<u32, DbErr> {
    u32::try_from(n).map_err(|_| DbErr::Custom(format!("stored count {n} is negative")))
}

/// A stored (already normalized) email address.
pub(crate) fn to_email(stored: &str) -> Result<EmailAddress, DbErr> {
    EmailAddress::parse(stored).map_err(|e| DbErr::Custom(format!("stored email is invalid: {e}")))
}

/// A stored SHA-256 digest.
pub(crate) fn to_token_hash(stored: Vec<u8>) -> Result<TokenHash, DbErr> {
    <[u8; 32]>::try_from(stored)
        .map(TokenHash::from_bytes)
        .map_err(|bytes| DbErr::Custom(format!("stored digest has {} bytes, not 32", bytes.len())))
}
