//! A PostgreSQL database of a test's own, on the test server.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection};

/// The variable naming the admin connection: a server and a user that may
/// `CREATE DATABASE`.
pub const URL_VAR: &str = "GATEHOUSE_TEST_POSTGRES_URL";
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The admin URL: [`URL_VAR`] or the local server `make services` starts.
#[must_use]
pub fn admin_url() -> String {
    crate::env_or(URL_VAR, DEFAULT_URL)
}

/// A fresh, empty database on the test server, dropped when this guard
/// drops, whether the test passed, failed or left connections open.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates a database named `<prefix>_<uuid>`; fails the test, saying
    /// how to start PostgreSQL, if the server cannot be reached.
    pub async fn create(prefix: &str) -> Self {
        let admin_url = admin_url();
        let name = crate::unique_name(prefix);
        let admin = admin_connection(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {admin_url} is not reachable ({e}). Start it with `make services`, \
                 or point {URL_VAR} at a server where the user may CREATE DATABASE."
            )
        });
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {admin_url}: {e}"));
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        Self { admin_url, name, url }
    }

    /// The database's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of this database, with the admin URL's user and options.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's `host:port`, for a [`FaultProxy`](crate::FaultProxy) in front of it.
    #[must_use]
    pub fn upstream(&self) -> String {
        let host = split(&self.url).1;
        if host.contains(':') { host.to_owned() } else { format!("{host}:5432") }
    }

    /// The URL of this database on the server at `addr` instead (a fault
    /// proxy, or a port nothing listens on).
    #[must_use]
    pub fn url_via(&self, addr: impl std::fmt::Display) -> String {
        let (head, _, tail) = split(&self.url);
        format!("{head}{addr}{tail}")
    }
}

/// A `postgres://user@host:port/db…` URL cut around its `host:port`.
fn split(url: &str) -> (&str, &str, &str) {
    let start = url.find('@').map_or_else(|| url.find("://").map_or(0, |i| i + 3), |at| at + 1);
    let end = url[start..].find('/').map_or(url.len(), |slash| start + slash);
    (&url[..start], &url[start..end], &url[end..])
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        // FORCE ends the sessions a failed test may have left open.
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        crate::block_on_own_thread(&format!("test database {}", self.name), move || async move {
            let admin = admin_connection(&admin_url).await.map_err(|e| e.to_string())?;
            admin.execute_unprepared(&sql).await.map_err(|e| e.to_string())?;
            admin.close().await.map_err(|e| e.to_string())
        });
    }
}

async fn admin_connection(url: &str) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(1).connect_timeout(Duration::from_secs(5)).acquire_timeout(Duration::from_secs(5));
    sea_orm::Database::connect(options).await
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let server = base[authority..].find('/').map_or(base, |slash| &base[..authority + slash]);
    if query.is_empty() { format!("{server}/{name}") } else { format!("{server}/{name}?{query}") }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_server_address_is_cut_out_of_the_url() {
        assert_eq!(super::split("postgres://u@h:5432/db?x=1"), ("postgres://u@", "h:5432", "/db?x=1"));
        assert_eq!(super::split("postgres://h/db"), ("postgres://", "h", "/db"));
    }

    #[test]
    fn database_name_is_replaced_in_the_url() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("postgres://u@h/postgres?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
