//! `TEST_LOG=1`: the logs of the code under test, shown in the test output.

use std::sync::Once;

/// The variable that turns test logs on.
const SWITCH: &str = "TEST_LOG";

/// Sends `tracing` output to the test writer when `TEST_LOG` is set (to
/// anything but `0`), filtered by `RUST_LOG` (default `info`). Off by
/// default, so a passing run stays quiet. Safe to call from every test:
/// only the first call installs the subscriber.
pub fn init_test_log() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if !std::env::var(SWITCH).is_ok_and(|v| !v.is_empty() && v != "0") {
            return;
        }
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
        // Another subscriber may already be set (a test that installs its
        // own); it wins, and that is fine.
        let colours = std::io::IsTerminal::is_terminal(&std::io::stdout());
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(colours).with_test_writer().try_init();
    });
}
