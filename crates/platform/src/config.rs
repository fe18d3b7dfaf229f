//! Layered configuration: defaults < TOML file < `ARFLOW_*` environment < command-line flags.
//!
//! Environment variables name a field by its path with `__` between levels:
//! `ARFLOW_DATABASE__URL`, `ARFLOW_BUS__MAX_DELIVERIES`, `ARFLOW_CLOCK__RATE`. Values are read as
//! TOML scalars when they parse as one (`5`, `true`, `2.5`) and as strings otherwise.
//!
//! The mode follows from what is set: a Postgres URL and a Redis URL run distributed; neither
//! runs embedded (a SQLite file in `data_dir`, no Redis). Any other mix is refused by
//! [`Config::validate`] with a message that says what to set.
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::db::Backend;

/// A value that must not be printed: Debug and [`Config::to_masked_toml`] hide it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The value with any `user:password@` credentials replaced by `***`.
    pub fn masked(&self) -> String {
        mask_url(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

fn mask_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme + 3 => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Folder of the embedded SQLite database and the quick-start admin key.
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub grpc: GrpcConfig,
    pub admin: AdminConfig,
    pub clock: ClockConfig,
    pub bus: BusConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
    pub auth: AuthConfig,
    pub reconciler: ReconcilerConfig,
}

/// The daily reconcilers (scheduler: every open claim has its timers; assignment: every denial
/// has a task) ask the claims service over gRPC, never its tables.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcilerConfig {
    /// gRPC address of the claims service, e.g. `http://claims:50051`. Empty: this process's
    /// own address, which works when it also runs the claims role.
    pub claims_addr: String,
    /// Per tenant id, an API key with role `service` (`arflow keys create --role service`).
    /// No keys: the reconcilers do not run.
    pub service_keys: std::collections::BTreeMap<String, Secret>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…` for distributed mode; empty for the embedded SQLite file; an explicit
    /// `sqlite://…` also runs embedded.
    pub url: Secret,
    pub max_connections: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://…`; required with a Postgres database, refused with SQLite.
    pub url: Secret,
    /// Prefix of every key arflow writes (streams, groups); lets tenants of one Redis coexist.
    pub key_prefix: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    /// Address the gRPC server listens on; port 0 picks a free port.
    pub listen: String,
    /// Deadline applied to a call that carries no `grpc-timeout`.
    pub default_timeout_ms: u64,
    /// Largest message accepted or sent.
    pub max_message_bytes: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// HTTP address of `/metrics` and `/healthz`; empty disables it.
    pub listen: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockMode {
    System,
    Simulated,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockConfig {
    pub mode: ClockMode,
    /// Simulated instant at the anchor (RFC 3339). Required for a simulated clock.
    pub start: Option<DateTime<Utc>>,
    /// Real instant at which the simulated clock reads `start` (RFC 3339). Every process of
    /// one deployment must share it; when absent the process's start time is used.
    pub anchor: Option<DateTime<Utc>>,
    /// Simulated seconds per real second.
    pub rate: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// How often the outbox relay (and the embedded consumer) looks for new events.
    pub poll_interval_ms: u64,
    /// Events moved per relay round, or read per consumer round and applied in one consumer
    /// transaction.
    pub batch_size: usize,
    /// XREADGROUP BLOCK time.
    pub block_ms: u64,
    /// An entry delivered but not acked for this long is claimed by another consumer. Must
    /// exceed the time a consumer takes to handle two whole batches (`batch_size` handler runs
    /// each): the next read is delivered while a batch runs.
    pub claim_idle_ms: u64,
    /// After this many deliveries an entry goes to the dead-letter stream.
    pub max_deliveries: u32,
    /// Entries older than this are trimmed once no group still needs them.
    pub retention_secs: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `tracing` env-filter directives (RUST_LOG wins when set).
    pub filter: String,
    pub log_format: LogFormat,
    /// OTLP/gRPC collector endpoint, e.g. `http://127.0.0.1:4317`; empty disables export.
    pub otlp_endpoint: String,
    pub service_name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long the first signal waits for in-flight work before exiting.
    pub drain_timeout_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a verified API key is trusted before it is looked up again (revocation lag).
    pub key_cache_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("arflow-data"),
            database: DatabaseConfig::default(),
            redis: RedisConfig::default(),
            grpc: GrpcConfig::default(),
            admin: AdminConfig::default(),
            clock: ClockConfig::default(),
            bus: BusConfig::default(),
            telemetry: TelemetryConfig::default(),
            shutdown: ShutdownConfig::default(),
            auth: AuthConfig::default(),
            reconciler: ReconcilerConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: Secret::default(),
            max_connections: 16,
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: Secret::default(),
            key_prefix: "arflow:".into(),
        }
    }
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            listen: "127.0.0.1:50051".into(),
            default_timeout_ms: 30_000,
            max_message_bytes: 16 * 1024 * 1024,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

impl Default for ClockConfig {
    fn default() -> Self {
        ClockConfig {
            mode: ClockMode::System,
            start: None,
            anchor: None,
            rate: 1.0,
        }
    }
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            poll_interval_ms: 50,
            batch_size: 256,
            block_ms: 1_000,
            claim_idle_ms: 30_000,
            max_deliveries: 5,
            retention_secs: 7 * 24 * 3600,
        }
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            filter: "info".into(),
            log_format: LogFormat::Text,
            otlp_endpoint: String::new(),
            service_name: "arflow".into(),
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            drain_timeout_ms: 20_000,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { key_cache_secs: 30 }
    }
}

/// The service sections of a binary that has none: any section the platform does not know is
/// refused.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSections {}

/// Where the system keeps its state and how its services talk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Postgres + Redis Streams; any number of processes and replicas.
    Distributed {
        database_url: Secret,
        redis_url: Secret,
    },
    /// One process, SQLite, the embedded event bus.
    Embedded { database_url: Secret },
}

impl Config {
    /// Builds the effective config: defaults, then `file` (when given), then `ARFLOW_*`
    /// variables from `env`, then `overrides` (`path.to.field`, value) from flags.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(String, String)],
    ) -> anyhow::Result<Config> {
        Ok(Config::load_with::<NoSections>(file, env, overrides)?.0)
    }

    /// [`Config::load`] for a binary whose services read their own sections (`[claims]`,
    /// `[scheduler]`, …): `S` is the struct of those sections (each the service's typed
    /// `Settings`), layered the same way. The platform's sections go to [`Config`], every
    /// other top-level key to `S`, which refuses what it does not know.
    pub fn load_with<S>(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(String, String)],
    ) -> anyhow::Result<(Config, S)>
    where
        S: Serialize + serde::de::DeserializeOwned + Default,
    {
        let platform_defaults =
            toml::Value::try_from(Config::default()).context("encode defaults")?;
        let platform_keys: Vec<String> = match &platform_defaults {
            toml::Value::Table(t) => t.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let mut value = platform_defaults;
        merge(
            &mut value,
            toml::Value::try_from(S::default()).context("encode service defaults")?,
        );
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read config file {}", path.display()))?;
            let file_value: toml::Value = toml::from_str(&text)
                .with_context(|| format!("parse config file {}", path.display()))?;
            merge(&mut value, file_value);
        }
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("ARFLOW_") && !is_reserved_env(k))
            .collect();
        env.sort();
        for (key, raw) in env {
            let path: Vec<String> = key["ARFLOW_".len()..]
                .split("__")
                .map(|p| p.to_ascii_lowercase())
                .collect();
            set_path(&mut value, &path, scalar(&raw))
                .with_context(|| format!("environment variable {key}"))?;
        }
        for (path, raw) in overrides {
            let parts: Vec<String> = path.split('.').map(str::to_string).collect();
            set_path(&mut value, &parts, scalar(raw)).with_context(|| format!("flag {path}"))?;
        }
        let toml::Value::Table(mut all) = value else {
            bail!("the configuration is not a table");
        };
        let mut platform = toml::Table::new();
        for key in &platform_keys {
            if let Some(v) = all.remove(key) {
                platform.insert(key.clone(), v);
            }
        }
        let config: Config = toml::Value::Table(platform)
            .try_into()
            .context("invalid configuration")?;
        let sections: S = toml::Value::Table(all)
            .try_into()
            .context("invalid configuration")?;
        Ok((config, sections))
    }

    /// Checks the config as a whole; the error says which setting to change.
    pub fn validate(&self) -> anyhow::Result<Mode> {
        let mode = self.mode()?;
        self.grpc
            .listen
            .parse::<SocketAddr>()
            .with_context(|| format!("grpc.listen {:?} is not an address", self.grpc.listen))?;
        if !self.admin.listen.is_empty() {
            self.admin.listen.parse::<SocketAddr>().with_context(|| {
                format!("admin.listen {:?} is not an address", self.admin.listen)
            })?;
        }
        if self.grpc.max_message_bytes < 1024 {
            bail!("grpc.max_message_bytes must be at least 1024");
        }
        if self.clock.mode == ClockMode::Simulated {
            if self.clock.start.is_none() {
                bail!("clock.mode = \"simulated\" needs clock.start (an RFC 3339 instant)");
            }
            if !(self.clock.rate.is_finite() && self.clock.rate >= 0.0) {
                bail!("clock.rate must be a non-negative number");
            }
        }
        if self.bus.max_deliveries == 0 {
            bail!("bus.max_deliveries must be at least 1");
        }
        if self.bus.batch_size == 0 {
            bail!("bus.batch_size must be at least 1");
        }
        if self.bus.claim_idle_ms <= self.bus.block_ms {
            bail!("bus.claim_idle_ms must be longer than bus.block_ms");
        }
        if self.redis.key_prefix.contains(char::is_whitespace) {
            bail!("redis.key_prefix must not contain whitespace");
        }
        Ok(mode)
    }

    /// The mode the settings select (see the module docs).
    pub fn mode(&self) -> anyhow::Result<Mode> {
        let db = self.database.url.expose();
        let redis = self.redis.url.expose();
        match (Backend::from_url(db), db.is_empty(), redis.is_empty()) {
            (None, true, true) => Ok(Mode::Embedded {
                database_url: Secret::new(format!(
                    "sqlite://{}?mode=rwc",
                    self.data_dir.join("arflow.db").display()
                )),
            }),
            (Some(Backend::Sqlite), _, true) => Ok(Mode::Embedded {
                database_url: self.database.url.clone(),
            }),
            (Some(Backend::Postgres), _, false) => {
                if !(redis.starts_with("redis://") || redis.starts_with("rediss://")) {
                    bail!("redis.url must start with redis:// or rediss://");
                }
                Ok(Mode::Distributed {
                    database_url: self.database.url.clone(),
                    redis_url: self.redis.url.clone(),
                })
            }
            (Some(Backend::Postgres), _, true) => bail!(
                "database.url is Postgres but redis.url is empty: distributed mode needs both. \
                 Set ARFLOW_REDIS__URL (e.g. redis://127.0.0.1:6379), or unset \
                 ARFLOW_DATABASE__URL to run embedded on SQLite"
            ),
            (None, true, false) | (Some(Backend::Sqlite), _, false) => bail!(
                "redis.url is set but the database is SQLite: the embedded mode has its own event \
                 bus. Set ARFLOW_DATABASE__URL to a postgres:// URL for distributed mode, or \
                 unset ARFLOW_REDIS__URL"
            ),
            (None, false, _) => bail!("database.url must start with postgres:// or sqlite:"),
        }
    }

    /// The clock the config describes.
    pub fn clock(&self) -> Clock {
        match (self.clock.mode, self.clock.start) {
            (ClockMode::Simulated, Some(start)) => Clock::simulated(
                start,
                self.clock.anchor.unwrap_or_else(Utc::now),
                self.clock.rate,
            ),
            _ => Clock::system(),
        }
    }

    /// [`Config::to_masked_toml`] followed by the services' sections (which hold no
    /// credentials).
    pub fn to_masked_toml_with<S: Serialize>(&self, sections: &S) -> anyhow::Result<String> {
        let mut text = self.to_masked_toml()?;
        text.push('\n');
        text.push_str(&toml::to_string_pretty(sections).context("encode service settings")?);
        Ok(text)
    }

    /// The effective config as TOML with credentials masked, for `arflow config`.
    pub fn to_masked_toml(&self) -> anyhow::Result<String> {
        let mut masked = self.clone();
        masked.database.url = Secret::new(self.database.url.masked());
        masked.redis.url = Secret::new(self.redis.url.masked());
        for key in masked.reconciler.service_keys.values_mut() {
            *key = Secret::new("***");
        }
        toml::to_string_pretty(&masked).context("encode config")
    }
}

/// Variables with the prefix that are not settings: the client's, the config file's, and the
/// test and benchmark harness's (which a server started by a test inherits).
const RESERVED_ENV: &[&str] = &[
    "ARFLOW_CONFIG",
    "ARFLOW_API_KEY",
    "ARFLOW_ADDR",
    "ARFLOW_X12_SAMPLES",
];
const RESERVED_ENV_PREFIXES: &[&str] = &["ARFLOW_TEST_", "ARFLOW_BENCH_"];

fn is_reserved_env(key: &str) -> bool {
    RESERVED_ENV.contains(&key) || RESERVED_ENV_PREFIXES.iter().any(|p| key.starts_with(p))
}

fn scalar(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => match t.remove("v") {
            // Arrays too, so `ARFLOW_SCHEDULER__AGING_THRESHOLDS_DAYS="[30, 60, 90, 120]"` works.
            Some(
                v @ (toml::Value::Integer(_)
                | toml::Value::Float(_)
                | toml::Value::Boolean(_)
                | toml::Value::Array(_)),
            ) => v,
            _ => toml::Value::String(raw.to_string()),
        },
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn set_path(root: &mut toml::Value, path: &[String], value: toml::Value) -> anyhow::Result<()> {
    let Some((last, parents)) = path.split_last() else {
        bail!("empty setting name")
    };
    let mut node = root;
    for part in parents {
        let table = node.as_table_mut().context("not a section")?;
        node = table
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(Default::default()));
    }
    let table = node
        .as_table_mut()
        .with_context(|| format!("{} is not a section", parents.join(".")))?;
    // Strings that look like numbers stay strings where the default is a string.
    let value = match (table.get(last), value) {
        (
            Some(toml::Value::String(_)),
            v @ (toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)),
        ) => toml::Value::String(v.to_string()),
        (_, v) => v,
    };
    table.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = std::env::temp_dir().join(format!("arflow-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("arflow.toml");
        std::fs::write(
            &file,
            "[bus]\nmax_deliveries = 7\nbatch_size = 10\n[grpc]\nlisten = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        let cfg = Config::load(
            Some(&file),
            env(&[
                ("ARFLOW_BUS__MAX_DELIVERIES", "9"),
                ("PATH", "/bin"),
                ("ARFLOW_TEST_PG_URL", "postgres://x"),
                ("ARFLOW_X12_SAMPLES", "/tmp"),
            ]),
            &[("bus.max_deliveries".into(), "11".into())],
        )
        .unwrap();
        assert_eq!(cfg.bus.batch_size, 10, "file over default");
        assert_eq!(cfg.bus.max_deliveries, 11, "flag over env over file");
        assert_eq!(cfg.grpc.listen, "127.0.0.1:1");
        assert_eq!(cfg.bus.block_ms, BusConfig::default().block_ms);
    }

    #[test]
    fn modes_and_refused_mixes() {
        let cfg = Config::load(None, env(&[]), &[]).unwrap();
        assert!(matches!(cfg.validate().unwrap(), Mode::Embedded { .. }));

        let pg_only = Config::load(
            None,
            env(&[("ARFLOW_DATABASE__URL", "postgres://u:p@h/db")]),
            &[],
        )
        .unwrap();
        let err = pg_only.validate().unwrap_err().to_string();
        assert!(err.contains("ARFLOW_REDIS__URL"), "{err}");

        let redis_only =
            Config::load(None, env(&[("ARFLOW_REDIS__URL", "redis://h")]), &[]).unwrap();
        assert!(redis_only.validate().is_err());

        let both = Config::load(
            None,
            env(&[
                ("ARFLOW_DATABASE__URL", "postgres://u:p@h/db"),
                ("ARFLOW_REDIS__URL", "redis://h:6379"),
            ]),
            &[],
        )
        .unwrap();
        assert!(matches!(both.validate().unwrap(), Mode::Distributed { .. }));
    }

    #[test]
    fn secrets_are_masked() {
        let cfg = Config::load(
            None,
            env(&[(
                "ARFLOW_DATABASE__URL",
                "postgres://arflow:hunter2@db:5432/x",
            )]),
            &[],
        )
        .unwrap();
        let text = cfg.to_masked_toml().unwrap();
        assert!(!text.contains("hunter2"));
        assert!(text.contains("postgres://***@db:5432/x"));
        assert!(!format!("{cfg:?}").contains("hunter2"));
        let cfg = Config::load(
            None,
            env(&[("ARFLOW_RECONCILER__SERVICE_KEYS__ACME", "afk_x_secret")]),
            &[],
        )
        .unwrap();
        assert_eq!(cfg.reconciler.service_keys["acme"].expose(), "afk_x_secret");
        let text = cfg.to_masked_toml().unwrap();
        assert!(
            !text.contains("afk_x_secret") && text.contains("***"),
            "{text}"
        );
    }

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Sections {
        svc: SvcSettings,
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct SvcSettings {
        workers: u32,
        name: String,
    }

    impl Default for SvcSettings {
        fn default() -> Self {
            SvcSettings {
                workers: 3,
                name: "x".into(),
            }
        }
    }

    #[test]
    fn service_sections_are_typed_by_the_binary_and_layered_like_the_rest() {
        let (cfg, sections) = Config::load_with::<Sections>(
            None,
            env(&[
                ("ARFLOW_SVC__WORKERS", "5"),
                ("ARFLOW_BUS__BATCH_SIZE", "7"),
            ]),
            &[("svc.name".into(), "y".into())],
        )
        .unwrap();
        assert_eq!(cfg.bus.batch_size, 7);
        assert_eq!(sections.svc.workers, 5);
        assert_eq!(sections.svc.name, "y");
        let text = cfg.to_masked_toml_with(&sections).unwrap();
        assert!(
            text.contains("[svc]") && text.contains("workers = 5"),
            "{text}"
        );

        let err = Config::load_with::<Sections>(None, env(&[("ARFLOW_SVC__WORKER", "5")]), &[])
            .unwrap_err();
        assert!(format!("{err:#}").contains("worker"), "{err:#}");
        let err =
            Config::load_with::<Sections>(None, env(&[("ARFLOW_OTHER__X", "5")]), &[]).unwrap_err();
        assert!(format!("{err:#}").contains("other"), "{err:#}");
        // A binary without service sections refuses them.
        assert!(Config::load(None, env(&[("ARFLOW_SVC__WORKERS", "5")]), &[]).is_err());
    }

    #[test]
    fn unknown_settings_are_refused() {
        let err = Config::load(None, env(&[("ARFLOW_BUS__MAX_DELIVERY", "3")]), &[]).unwrap_err();
        assert!(format!("{err:#}").contains("max_delivery"), "{err:#}");
    }

    #[test]
    fn invalid_values_are_explained() {
        let cfg = Config::load(None, env(&[("ARFLOW_BUS__MAX_DELIVERIES", "0")]), &[]).unwrap();
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("max_deliveries")
        );
        let cfg = Config::load(None, env(&[("ARFLOW_CLOCK__MODE", "simulated")]), &[]).unwrap();
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("clock.start")
        );
    }
}
