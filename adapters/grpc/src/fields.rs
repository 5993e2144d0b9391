//! Turning request fields into domain values, collecting every violation so
//! a caller learns about all bad fields at once.

use std::fmt::Display;

use gatehouse_application::paging::MAX_PAGE_SIZE;
use gatehouse_application::{AppError, FieldViolation};
use uuid::Uuid;

/// Collects field violations while a request is parsed.
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<FieldViolation>);

impl Fields {
    /// Keeps the value of `parsed`, or records its error against `field`.
    pub(crate) fn check<T, E: Display>(&mut self, field: &'static str, parsed: Result<T, E>) -> Option<T> {
        parsed.map_err(|e| self.0.push(FieldViolation::new(field, e))).ok()
    }

    /// A non-empty string of at most `max` bytes.
    pub(crate) fn required<'a>(&mut self, field: &'static str, value: &'a str, max: usize) -> Option<&'a str> {
        if value.is_empty() {
            self.violation(field, format!("{field} is required"));
            None
        } else if value.len() > max {
            self.violation(field, format!("{field} must be at most {max} bytes"));
            None
        } else {
            Some(value)
        }
    }

    /// A required UUID in its text form.
    pub(crate) fn uuid(&mut self, field: &'static str, value: &str) -> Option<Uuid> {
        if value.is_empty() {
            self.violation(field, format!("{field} is required"));
            None
        } else {
            self.check(field, Uuid::try_parse(value).map_err(|_| format!("{field} must be a UUID")))
        }
    }

    /// Records a violation found without a parser (a missing oneof, a bad mask path).
    pub(crate) fn violation(&mut self, field: &'static str, description: impl ToString) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// A list request's `page_size`: 0 (the server's default) up to the
    /// most one page holds.
    pub(crate) fn page_size(&mut self, size: i32) -> Option<u32> {
        match u32::try_from(size) {
            Ok(n) if n <= MAX_PAGE_SIZE => Some(n),
            _ => {
                self.violation("page_size", format!("page_size must be between 0 and {MAX_PAGE_SIZE}"));
                None
            }
        }
    }

    /// Fails with every violation recorded, if any.
    pub(crate) fn finish(self) -> Result<(), AppError> {
        if self.0.is_empty() { Ok(()) } else { Err(AppError::InvalidArgument(self.0)) }
    }
}

/// Ends parsing: the collected violations if any, else the parsed values.
macro_rules! parsed {
    ($fields:expr, $($value:ident),+) => {{
        $fields.finish()?;
        match ($($value,)+) {
            ($(Some($value),)+) => ($($value,)+),
            _ => return Err(gatehouse_application::AppError::Internal("field parsed without a value".into())),
        }
    }};
}
pub(crate) use parsed;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_required_and_must_parse() {
        let mut fields = Fields::default();
        let id = "01936b2e-7c1a-7d3e-9f00-0123456789ab";
        assert_eq!(fields.uuid("factor_id", id), Uuid::try_parse(id).ok());
        assert_eq!(fields.uuid("factor_id", ""), None);
        assert_eq!(fields.uuid("challenge_id", "not-a-uuid"), None);
        let Err(AppError::InvalidArgument(v)) = fields.finish() else { panic!("violations expected") };
        assert_eq!(v.iter().map(|v| v.field).collect::<Vec<_>>(), ["factor_id", "challenge_id"]);
    }
}
