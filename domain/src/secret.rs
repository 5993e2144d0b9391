//! A wrapper for values that must never reach a log: its `Debug` prints
//! `[redacted]`, and it has no `Display`.

use std::fmt;

/// Holds a secret (a password, a refresh token) so that formatting it by
/// accident (`{:?}` in a log line, an error's debug output) reveals nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself. Call this only where the value is used, never to log it.
    pub const fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let s = Secret::new(String::from("hunter2hunter2"));
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.expose(), "hunter2hunter2");
    }
}
