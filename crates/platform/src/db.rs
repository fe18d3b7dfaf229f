//! One database code path for Postgres (distributed) and SQLite (embedded).
//!
//! Decision (see docs/architecture.md, "Storage"): every store uses sqlx's `Any` driver with
//! portable SQL and `$1` placeholders, which both backends accept. `Any` maps only basic types,
//! so the schema keeps to them on both sides:
//! - ids (UUIDv7) are `TEXT` in canonical hyphenated form;
//! - instants are `BIGINT` microseconds since the Unix epoch, UTC ([`to_micros`]);
//! - calendar dates are `TEXT` `YYYY-MM-DD` (sorts correctly as text);
//! - money is `BIGINT` cents; aggregates are cast back with `CAST(SUM(x) AS BIGINT)` because
//!   Postgres widens `SUM(bigint)` to `NUMERIC`, which `Any` cannot decode;
//! - JSON documents are `TEXT`, raw bytes `BYTEA`/`BLOB`.
//!
//! Where a dialect really differs (`FOR UPDATE SKIP LOCKED`, advisory locks, upserts that
//! return rows) a store branches on [`Db::backend`].
//!
//! SQLite allows one writer at a time; write transactions start with `BEGIN IMMEDIATE` so that
//! two writers queue on the busy timeout instead of failing on a lock upgrade.
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};

/// Which database a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else {
            None
        }
    }
}

/// The RCM organisation a query is scoped to. Every store function takes one, typed, so no
/// query can be written without it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TenantId(String);

impl TenantId {
    pub fn new(id: impl Into<String>) -> TenantId {
        TenantId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A connection pool plus the backend it talks to. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

/// A pooled connection idle longer than this is pinged before it is handed out.
const IDLE_PING_AFTER: Duration = Duration::from_secs(1);

/// A write transaction on either backend.
pub type Tx = Transaction<'static, Any>;

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

impl Db {
    /// Connects to `url` (`postgres://…` or `sqlite://path?mode=rwc`).
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)
            .context("database url must start with postgres:// or sqlite:")?;
        let options = AnyConnectOptions::from_str(url).context("parse database url")?;
        // sqlx pings every connection on acquire by default: a round trip before each
        // transaction, measured at 0.4 ms of the bus consumer's 3 ms batch. A connection is
        // pinged anyway when it goes back to the pool (and dropped if broken); here only one
        // that sat idle longer than IDLE_PING_AFTER is pinged again (as sqlx's docs suggest), so
        // a database restart costs a busy pool at most a failed statement on a connection
        // released in the second before it.
        let mut pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_PING_AFTER {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            });
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000;",
                    )
                    .await?;
                    Ok(())
                })
            });
        } else {
            // sqlx prepares every statement; after five runs Postgres may switch a prepared
            // statement to a generic plan built from the statistics of that moment. A table that
            // grew from nothing since (a fresh tenant, a bulk import) then keeps a plan made for
            // an empty table: measured, the scrubber's history query went from 3 ms to 13 ms per
            // chunk over a 12 000-claim import. Custom plans cost a little planning per run and
            // always see the current table.
            pool = pool.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("SET plan_cache_mode = force_custom_plan")
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = pool
            .connect_with(options)
            .await
            .with_context(|| format!("connect to {} database", backend.name()))?;
        Ok(Db { pool, backend })
    }

    /// Applies the backend's migrations (idempotent).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Postgres => &POSTGRES_MIGRATIONS,
            Backend::Sqlite => &SQLITE_MIGRATIONS,
        };
        migrator.run(&self.pool).await.context("apply migrations")?;
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE` on SQLite, see the module docs).
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Postgres => self.pool.begin().await,
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// An instant as stored: microseconds since the Unix epoch, UTC.
pub fn to_micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// The inverse of [`to_micros`]; out-of-range values clamp to the epoch rather than panic.
pub fn from_micros(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros).single().unwrap_or_default()
}

/// A calendar date as stored: `YYYY-MM-DD`.
pub fn date_to_sql(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// The inverse of [`date_to_sql`].
pub fn date_from_sql(text: &str) -> Result<NaiveDate, sqlx::Error> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// For the rest of the open transaction on `conn`, Postgres reuses each prepared statement's
/// generic plan instead of planning it anew on every run (the session default, see
/// [`Db::connect`]). For transactions of multi-row INSERTs and key lookups: their plan cannot go
/// stale as tables grow, and planning a statement with thousands of parameters costs more than
/// running it (measured: a third of Postgres's time in a bulk import). No-op on SQLite.
pub async fn reuse_plans(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    set_plan_cache_mode(conn, "force_generic_plan").await
}

/// Undoes [`reuse_plans`] for the rest of the transaction (before statements whose plan depends
/// on the data, such as an event handler's).
pub async fn plan_each_run(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    set_plan_cache_mode(conn, "force_custom_plan").await
}

/// `plan_cache_mode` for the rest of the transaction (Postgres only).
async fn set_plan_cache_mode(
    conn: &mut sqlx::AnyConnection,
    mode: &'static str,
) -> Result<(), sqlx::Error> {
    if is_postgres(conn) {
        sqlx::query("SELECT set_config('plan_cache_mode', $1, true)")
            .bind(mode)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// True when `conn` talks to Postgres (for code that holds a connection, not a [`Db`]).
pub fn is_postgres(conn: &sqlx::AnyConnection) -> bool {
    conn.backend_name() == "PostgreSQL"
}

/// True when `err` is a unique-constraint violation on either backend.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db.code().as_deref() == Some("23505")
                || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}
