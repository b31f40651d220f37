//! PostgreSQL for the tests: `POSTHOOK_POSTGRES_URL` names the server; each test gets a
//! fresh schema of its own (dropped afterwards), so parallel tests and reruns never meet.
//!
//! Without `POSTHOOK_POSTGRES_URL` the PostgreSQL tests pass without running, and the test
//! binary says so on one line; with `POSTHOOK_REQUIRE_POSTGRES=1` (CI) they fail instead.
#![allow(dead_code)]

use std::io::Write;
use std::str::FromStr;
use std::sync::Once;

use posthook::PostgresStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The server's URL, or `None` (said once) when the tests must skip.
pub(crate) fn url() -> Option<String> {
    match std::env::var("POSTHOOK_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("POSTHOOK_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("POSTHOOK_REQUIRE_POSTGRES=1 but POSTHOOK_POSTGRES_URL is not set");
            }
            static SAID: Once = Once::new();
            SAID.call_once(|| {
                // Straight to the terminal: the test harness captures only print!.
                let _ = writeln!(
                    std::io::stderr(),
                    "PostgreSQL tests skipped: POSTHOOK_POSTGRES_URL is not set \
                     (e.g. postgres://postgres@127.0.0.1:5432/test)"
                );
            });
            None
        }
    }
}

/// A schema of its own on the server, dropped (with everything in it) on drop.
pub(crate) struct Schema {
    url: String,
    name: String,
}

impl Schema {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Connect options whose `search_path` is this schema.
    pub(crate) fn options(&self) -> PgConnectOptions {
        PgConnectOptions::from_str(&self.url)
            .unwrap()
            .options([("search_path", self.name.as_str())])
            .application_name(&self.name)
    }

    /// The URL of this schema, for a child process (`options=-c search_path=...`).
    pub(crate) fn url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!(
            "{}{sep}application_name={name}&options=-c%20search_path%3D{name}",
            self.url,
            name = self.name
        )
    }

    /// The server's URL with this schema's `application_name` (so that drop ends its
    /// connections) and no `search_path`.
    pub(crate) fn url_without_search_path(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}application_name={}", self.url, self.name)
    }

    /// A migrated store on this schema.
    pub(crate) async fn store(&self, connections: u32) -> PostgresStore {
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .connect_with(self.options())
            .await
            .expect("connect to PostgreSQL");
        let store = PostgresStore::from_pool(pool);
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // A thread of its own: drop may run inside a runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(pool) = PgPoolOptions::new().max_connections(1).connect(&url).await {
                    // The test's own connections may linger (a pool closes in the
                    // background): end them, then drop.
                    let _ = sqlx::query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = $1",
                    )
                    .bind(&name)
                    .execute(&pool)
                    .await;
                    let sql = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// A fresh schema, or `None` when the PostgreSQL tests are skipped.
pub(crate) async fn schema() -> Option<Schema> {
    let url = url()?;
    let name = format!("posthook_test_{}", posthook::EventId::random().unwrap());
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect to PostgreSQL at POSTHOOK_POSTGRES_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    Some(Schema { url, name })
}

/// A schema name of its own, not created yet (what `PostgresOptions::schema` creates),
/// in mixed case so that it holds only if quoted; dropped on drop. `None` when the
/// PostgreSQL tests are skipped.
pub(crate) fn unborn_schema() -> Option<Schema> {
    let url = url()?;
    let name = format!("Posthook_Opts_{}", posthook::EventId::random().unwrap());
    Some(Schema { url, name })
}
