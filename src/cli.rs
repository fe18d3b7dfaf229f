//! The command line. Settings flags (`--listen`, `--database-url`, …) are the last layer of
//! the config (defaults < TOML file < `ARFLOW_*` env < flags).
use std::path::PathBuf;

use anyhow::Context as _;
use arflow_platform::auth::{self, Role};
use arflow_platform::config::{Config, Mode};
use clap::{Args as ClapArgs, Parser, Subcommand};

use crate::client;
use crate::serve::{self, Platform, ServiceSettings};

#[derive(Parser, Debug)]
#[command(
    name = "arflow",
    version,
    about = "AR follow-up orchestrator for behavioral health claims"
)]
pub struct Args {
    /// TOML config file.
    #[arg(long, global = true, env = "ARFLOW_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags that override settings of the config.
#[derive(ClapArgs, Debug, Default)]
pub struct Settings {
    /// gRPC listen address (grpc.listen).
    #[arg(long, global = true)]
    pub listen: Option<String>,
    /// Admin HTTP address for /metrics and /healthz; "" disables (admin.listen).
    #[arg(long, global = true)]
    pub admin_listen: Option<String>,
    /// Folder of the embedded database and admin key (data_dir).
    #[arg(long, global = true)]
    pub data_dir: Option<String>,
    /// postgres:// URL for distributed mode (database.url).
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// redis:// URL for distributed mode (redis.url).
    #[arg(long, global = true)]
    pub redis_url: Option<String>,
}

impl Settings {
    fn overrides(&self) -> Vec<(String, String)> {
        let mut o = Vec::new();
        let mut add = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                o.push((k.to_string(), v.clone()));
            }
        };
        add("grpc.listen", &self.listen);
        add("admin.listen", &self.admin_listen);
        add("data_dir", &self.data_dir);
        add("database.url", &self.database_url);
        add("redis.url", &self.redis_url);
        o
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs the services (all of them unless --service is given).
    Serve {
        /// A role to run; repeat for several. Default: every role.
        #[arg(long = "service", value_name = "NAME")]
        services: Vec<String>,
    },
    /// Applies the database migrations and exits.
    Migrate,
    /// Prints the effective configuration, credentials masked.
    Config,
    /// API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Claims, through the gRPC API.
    Claims {
        #[command(flatten)]
        conn: client::Connection,
        #[command(subcommand)]
        command: client::ClaimsCommand,
    },
    /// Payer remittances (835 ERAs), through the gRPC API.
    Era {
        #[command(flatten)]
        conn: client::Connection,
        #[command(subcommand)]
        command: client::EraCommand,
    },
    /// X12 files on this machine (nothing is sent anywhere).
    #[command(subcommand)]
    X12(X12Command),
}

#[derive(Subcommand, Debug)]
pub enum X12Command {
    /// Reports envelopes, control numbers, problems, 835 totals and balancing, 277 statuses.
    Inspect {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON document per file (shape: docs/x12-inspect.md).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Creates an API key and prints it once (only its hash is stored).
    Create {
        #[arg(long)]
        tenant: String,
        /// admin, supervisor, specialist, partner or service.
        #[arg(long)]
        role: String,
        /// Limit the key to a clinic; repeat for several. Default: every clinic of the tenant.
        #[arg(long = "clinic")]
        clinics: Vec<String>,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Revokes an API key by its id.
    Revoke { key_id: String },
}

/// The platform's config and the services' sections, layered the same way.
fn load_config(args: &Args) -> anyhow::Result<(Config, ServiceSettings)> {
    Config::load_with(
        args.config.as_deref(),
        std::env::vars(),
        &args.settings.overrides(),
    )
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match &args.command {
        Command::Config => {
            let (config, services) = load_config(&args)?;
            let mode = config
                .validate()
                .and_then(|mode| services.validate().map(|()| mode));
            print!("{}", config.to_masked_toml_with(&services)?);
            match mode {
                Ok(Mode::Embedded { .. }) => println!("# mode: embedded (SQLite, no Redis)"),
                Ok(Mode::Distributed { .. }) => println!("# mode: distributed (Postgres + Redis)"),
                Err(err) => println!("# invalid: {err:#}"),
            }
            Ok(())
        }
        Command::Migrate => {
            let (config, services) = load_config(&args)?;
            config.validate()?;
            let _telemetry = arflow_platform::telemetry::init(&config.telemetry)?;
            let platform = Platform::open(config, services).await?;
            println!("migrations applied ({})", platform.db.backend().name());
            Ok(())
        }
        Command::Keys(cmd) => {
            let (config, services) = load_config(&args)?;
            let platform = Platform::open(config, services).await?;
            match cmd {
                KeysCommand::Create {
                    tenant,
                    role,
                    clinics,
                    label,
                } => {
                    let role = Role::parse(role).with_context(|| {
                        format!("unknown role {role:?}; use admin, supervisor, specialist, partner or service")
                    })?;
                    if !arflow_domain::codes::identifier_is_valid(tenant) {
                        anyhow::bail!("--tenant must be 1-64 of letters, digits, '.', '_' or '-'");
                    }
                    let (key_id, key) = auth::create_key(
                        &platform.db,
                        &platform.clock,
                        tenant,
                        role,
                        clinics,
                        label,
                    )
                    .await?;
                    eprintln!(
                        "key id {key_id} (tenant {tenant}, role {}); the key is shown once:",
                        role.as_str()
                    );
                    println!("{key}");
                }
                KeysCommand::Revoke { key_id } => {
                    if auth::revoke_key(&platform.db, &platform.clock, key_id).await? {
                        println!("revoked {key_id}");
                    } else {
                        anyhow::bail!("no active key {key_id}");
                    }
                }
            }
            Ok(())
        }
        Command::Serve { services } => {
            let (config, settings) = load_config(&args)?;
            config.validate()?;
            settings.validate()?;
            let _telemetry = arflow_platform::telemetry::init(&config.telemetry)?;
            let roles = serve::select_roles(services)?;
            let platform = Platform::open(config, settings).await?;
            let quick_start_key = match platform.mode {
                Mode::Embedded { .. } => Some(embedded_admin_key(&platform).await?),
                Mode::Distributed { .. } => None,
            };
            let shutdown = arflow_platform::shutdown::install_signal_handlers();
            let mode = match platform.mode {
                Mode::Embedded { .. } => "embedded (SQLite, no Redis)",
                Mode::Distributed { .. } => "distributed (Postgres + Redis)",
            };
            serve::run(platform, roles, shutdown, |bound| {
                println!("arflow {} serving {mode}", env!("CARGO_PKG_VERSION"));
                println!("  gRPC:  {}", bound.grpc);
                if let Some(admin) = bound.admin {
                    println!("  admin: http://{admin}/metrics");
                }
                if let Some((path, key)) = &quick_start_key {
                    println!(
                        "  admin API key (tenant \"demo\", kept in {}):",
                        path.display()
                    );
                    println!("  export ARFLOW_API_KEY={key}");
                }
            })
            .await
        }
        Command::Claims { conn, command } => client::run_claims(conn, command).await,
        Command::Era { conn, command } => client::run_era(conn, command).await,
        Command::X12(X12Command::Inspect { files, json }) => {
            let mut failed = false;
            for file in files {
                let bytes =
                    std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
                let report = arflow_x12::inspect(&bytes);
                if *json {
                    let mut value = serde_json::to_value(&report)?;
                    if let Some(map) = value.as_object_mut() {
                        map.insert(
                            "path".into(),
                            serde_json::Value::String(file.display().to_string()),
                        );
                    }
                    println!("{}", serde_json::to_string(&value)?);
                } else {
                    println!("== {}", file.display());
                    print!("{}", arflow_x12::render_text(&report));
                }
                failed |= arflow_x12::read(&bytes).errors().next().is_some();
            }
            if failed {
                anyhow::bail!("some files have errors (see above)");
            }
            Ok(())
        }
    }
}

/// The embedded quick start's admin key: made on first start for tenant `demo`, kept in the
/// data folder (mode 0600) so later starts print the same key.
async fn embedded_admin_key(platform: &Platform) -> anyhow::Result<(PathBuf, String)> {
    let path = platform.config.data_dir.join("admin.key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        let key = key.trim().to_string();
        if !key.is_empty() {
            return Ok((path, key));
        }
    }
    let (_, key) = auth::create_key(
        &platform.db,
        &platform.clock,
        "demo",
        Role::Admin,
        &[],
        "embedded quick start",
    )
    .await?;
    write_private(&path, &key).with_context(|| format!("write {}", path.display()))?;
    Ok((path, key))
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{text}")
}
