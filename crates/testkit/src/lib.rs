//! Test support: each test gets its own Postgres database, its own Redis key prefix, or its
//! own SQLite file, so tests run in parallel without seeing each other.
//!
//! Servers are found through `ARFLOW_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and `ARFLOW_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`). The README's test command starts both when they are missing.
//!
//! - [`PgDatabase`], [`RedisPrefix`], [`SqliteFile`]: a fresh store per test, dropped after.
//! - [`eventually`]: waits for an asynchronous effect by polling with a bound (never a sleep).
//! - `fixtures` (feature `grpc`): a realistic proto claim and 837P export request, the same
//!   in every crate's tests.
//! - `stand_in` (feature `grpc`): a stand-in claims service behind the real gRPC server, for
//!   the reconcilers' tests.
#[cfg(feature = "grpc")]
pub mod fixtures;
#[cfg(feature = "grpc")]
pub mod stand_in;

use std::path::PathBuf;

use anyhow::Context as _;
use sqlx::{Connection, Executor, PgConnection};

pub fn pg_admin_url() -> String {
    std::env::var("ARFLOW_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("ARFLOW_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh, empty Postgres database; dropped (best effort) with the value.
pub struct PgDatabase {
    pub url: String,
    name: String,
}

impl PgDatabase {
    pub async fn create() -> anyhow::Result<PgDatabase> {
        let admin = pg_admin_url();
        let name = format!("arflow_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .with_context(|| format!("connect to test postgres at {admin} (is it running?)"))?;
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
        conn.close().await?;
        // Same server and options (e.g. `?sslmode=disable`), another database.
        let (path, query) = match admin.split_once('?') {
            Some((p, q)) => (p, format!("?{q}")),
            None => (admin.as_str(), String::new()),
        };
        let base = path.rsplit_once('/').map(|(b, _)| b).unwrap_or(path);
        Ok(PgDatabase {
            url: format!("{base}/{name}{query}"),
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Dropping needs async I/O and Drop is sync: do it on a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&pg_admin_url()).await {
                    let _ = conn
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A Redis key prefix no other test uses; its keys are deleted with the value.
pub struct RedisPrefix {
    pub url: String,
    pub prefix: String,
}

impl RedisPrefix {
    pub fn new() -> RedisPrefix {
        RedisPrefix {
            url: redis_url(),
            prefix: format!("arflow-test:{}:", uuid::Uuid::new_v4().simple()),
        }
    }
}

impl Default for RedisPrefix {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let (url, pattern) = (self.url.clone(), format!("{}*", self.prefix));
        let _ = std::thread::spawn(move || {
            let Ok(client) = redis::Client::open(url) else {
                return;
            };
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                    return;
                };
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(&pattern)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                if !keys.is_empty() {
                    let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                }
            });
        })
        .join();
    }
}

/// A SQLite database file in a fresh temporary folder, removed with the value.
pub struct SqliteFile {
    pub url: String,
    pub dir: PathBuf,
}

impl SqliteFile {
    pub fn create() -> anyhow::Result<SqliteFile> {
        let dir =
            std::env::temp_dir().join(format!("arflow-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let url = format!("sqlite://{}?mode=rwc", dir.join("arflow.db").display());
        Ok(SqliteFile { url, dir })
    }
}

impl Drop for SqliteFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `check` until it returns `Some`, up to `timeout`; the bounded wait tests use instead
/// of fixed sleeps.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut wait = std::time::Duration::from_millis(10);
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("condition not met within {timeout:?}");
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_millis(200));
    }
}
