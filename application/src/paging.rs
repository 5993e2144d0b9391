//! The one paging rule of the list RPCs: a page size of 0 asks for the
//! default, more than the maximum is refused.

use crate::error::{AppError, FieldViolation};

/// Rows per page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Most rows per page.
pub const MAX_PAGE_SIZE: u32 = 100;

/// The page size of a list request: 0 means the default.
///
/// # Errors
/// `INVALID_ARGUMENT` (`page_size`) above [`MAX_PAGE_SIZE`].
pub(crate) fn page_size(requested: u32) -> Result<u32, AppError> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n <= MAX_PAGE_SIZE => Ok(n),
        _ => Err(AppError::InvalidArgument(vec![FieldViolation::new(
            "page_size",
            format!("page_size must be at most {MAX_PAGE_SIZE}"),
        )])),
    }
}
