//! The platform every arflow service stands on.
//!
//! - [`config`]: layered configuration (defaults < TOML < `ARFLOW_*` env < flags), the mode
//!   (embedded SQLite or distributed Postgres + Redis) and its validation.
//! - [`db`]: one sqlx code path for Postgres and SQLite, migrations, storage conventions.
//! - [`clock`]: the injected clock, system or simulated.
//! - [`bus`]: the event bus: transactional outbox, relay, consumers with an inbox; Redis
//!   Streams in distributed mode, an embedded log in SQLite mode; one contract.
//! - [`grpc`]: the server bootstrap every service shares: auth, audit, tracing, health,
//!   reflection, limits, graceful shutdown; rich error helpers.
//! - [`auth`]: API keys (hashed at rest) and the principal of a call.
//! - [`audit`]: the append-only record of calls that touch patient data.
//! - [`telemetry`]: logs, OTLP traces, and the admin HTTP port with Prometheus [`metrics`].
//! - [`service`]: [`service::Deps`], what every service's `build` gets (one build signature).
//! - [`shutdown`]: signal handling (drain on the first signal, exit on the second).
pub mod audit;
pub mod auth;
pub mod bus;
pub mod clock;
pub mod config;
pub mod db;
pub mod grpc;
pub mod metrics;
pub mod service;
pub mod shutdown;
pub mod telemetry;

pub use clock::Clock;
pub use config::Config;
pub use db::{Backend, Db, Tx};
