//! Starting arflow: one process, the roles the config and flags enable.
//!
//! Roles talk only through gRPC and the event bus, also when they share this process, so the
//! behaviour never depends on the topology (docs/design.md §1).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use arflow_platform::bus::Bus;
use arflow_platform::config::{Config, Mode};
use arflow_platform::grpc::ServerOptions;
use arflow_platform::{Clock, Db};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Every role this build knows, in start order.
pub const ROLES: &[&str] = &["claims", "scheduler", "assignment"];

/// The services' sections of the config file, each the service's own typed settings, loaded
/// with the same layers as the platform's (`Config::load_with`) and validated by the service's
/// `build`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceSettings {
    pub claims: arflow_claims::Settings,
    pub scheduler: arflow_scheduler::Settings,
    pub assignment: arflow_assignment::Settings,
}

impl ServiceSettings {
    /// Each service's own check of its section (`build` runs it too); the error names the
    /// section.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.claims
            .validate()
            .context("invalid [claims] settings")?;
        self.scheduler
            .validate()
            .context("invalid [scheduler] settings")?;
        self.assignment
            .validate()
            .context("invalid [assignment] settings")?;
        Ok(())
    }
}

/// A process's resources, shared by its roles.
#[derive(Clone)]
pub struct Platform {
    pub config: Config,
    pub services: ServiceSettings,
    pub mode: Mode,
    pub db: Db,
    pub clock: Clock,
    pub bus: Bus,
}

impl Platform {
    /// Validates the config, connects the database (migrating it) and the bus.
    pub async fn open(config: Config, services: ServiceSettings) -> anyhow::Result<Platform> {
        let mode = config.validate()?;
        let db_url = match &mode {
            Mode::Embedded { database_url } => {
                std::fs::create_dir_all(&config.data_dir)
                    .with_context(|| format!("create data folder {}", config.data_dir.display()))?;
                database_url.clone()
            }
            Mode::Distributed { database_url, .. } => database_url.clone(),
        };
        let db = Db::connect(db_url.expose(), config.database.max_connections).await?;
        db.migrate().await?;
        let clock = config.clock();
        let bus = match &mode {
            Mode::Embedded { .. } => Bus::embedded(db.clone(), config.bus.clone()),
            Mode::Distributed { redis_url, .. } => {
                Bus::redis(
                    db.clone(),
                    redis_url.expose(),
                    &config.redis.key_prefix,
                    config.bus.clone(),
                )
                .await?
            }
        };
        Ok(Platform {
            config,
            services,
            mode,
            db,
            clock,
            bus,
        })
    }
}

/// Checks `--service` names against [`ROLES`]; empty means all.
pub fn select_roles(requested: &[String]) -> anyhow::Result<Vec<&'static str>> {
    if requested.is_empty() {
        return Ok(ROLES.to_vec());
    }
    let mut roles = Vec::new();
    for name in requested {
        match ROLES.iter().find(|r| **r == name.as_str()) {
            Some(r) if !roles.contains(r) => roles.push(*r),
            Some(_) => {}
            None => bail!(
                "unknown service {name:?}; this build has: {}",
                ROLES.join(", ")
            ),
        }
    }
    Ok(roles)
}

/// A running server's addresses.
#[derive(Clone, Debug)]
pub struct Bound {
    pub grpc: SocketAddr,
    pub admin: Option<SocketAddr>,
}

/// Serves the given roles until `shutdown` is cancelled, then drains. `on_bound` is called
/// once the listeners are bound (the CLI prints the addresses; tests read them).
pub async fn run(
    platform: Platform,
    roles: Vec<&'static str>,
    shutdown: CancellationToken,
    on_bound: impl FnOnce(&Bound),
) -> anyhow::Result<()> {
    let Platform {
        config,
        services,
        db,
        clock,
        bus,
        ..
    } = platform;
    let listener = TcpListener::bind(&config.grpc.listen)
        .await
        .with_context(|| format!("bind gRPC address {}", config.grpc.listen))?;
    let admin_listener = if config.admin.listen.is_empty() {
        None
    } else {
        Some(
            TcpListener::bind(&config.admin.listen)
                .await
                .with_context(|| format!("bind admin address {}", config.admin.listen))?,
        )
    };
    let bound = Bound {
        grpc: listener.local_addr()?,
        admin: admin_listener.as_ref().and_then(|l| l.local_addr().ok()),
    };
    on_bound(&bound);

    let mut tasks = tokio::task::JoinSet::new();
    // The relay moves every producer's outbox to its stream; it runs wherever a role runs.
    {
        let (bus, token) = (bus.clone(), shutdown.clone());
        tasks.spawn(async move { bus.run_relay(token).await.context("event relay") });
    }
    if let Some(admin) = admin_listener {
        let token = shutdown.clone();
        tasks.spawn(async move {
            arflow_platform::telemetry::serve_admin(admin, token)
                .await
                .context("admin server")
        });
    }

    let mut routes = tonic::service::RoutesBuilder::default();
    // Read once: claims and the scheduler share the same payer rules.
    let payer_rules = load_payer_rules(&services.claims)?;
    let mut health_names: Vec<&'static str> = Vec::new();
    for role in &roles {
        match *role {
            "claims" => {
                let deps = arflow_platform::service::Deps {
                    db: db.clone(),
                    clock: clock.clone(),
                    bus: bus.clone(),
                    replica: replica_name("claims"),
                    max_message_bytes: config.grpc.max_message_bytes,
                };
                let options = arflow_claims::Options {
                    settings: services.claims.clone(),
                    payer_rules: payer_rules.clone(),
                };
                let claims = arflow_claims::build(deps, options).context("claims service")?;
                let svc = claims.grpc_service();
                routes.add_service(svc);
                health_names.push(arflow_claims::HEALTH_NAME);
                let token = shutdown.clone();
                tasks.spawn(async move { claims.run(token).await.context("claims service") });
            }
            "scheduler" => {
                let deps = arflow_platform::service::Deps {
                    db: db.clone(),
                    clock: clock.clone(),
                    bus: bus.clone(),
                    replica: replica_name("scheduler"),
                    max_message_bytes: config.grpc.max_message_bytes,
                };
                let options = arflow_scheduler::Options {
                    settings: services.scheduler.clone(),
                    payer_rules: payer_rules.clone(),
                    claim_source: claims_channel(&config, &roles, &bound)?.map(
                        |(channel, keys)| {
                            Arc::new(arflow_scheduler::reconcile::GrpcClaimSource::new(
                                channel, keys,
                            ))
                                as Arc<dyn arflow_scheduler::reconcile::ClaimSource>
                        },
                    ),
                };
                let scheduler =
                    arflow_scheduler::build(deps, options).context("scheduler service")?;
                let svc = scheduler.grpc_service();
                routes.add_service(svc);
                health_names.push(arflow_scheduler::HEALTH_NAME);
                let token = shutdown.clone();
                tasks.spawn(async move { scheduler.run(token).await.context("scheduler service") });
            }
            "assignment" => {
                let deps = arflow_platform::service::Deps {
                    db: db.clone(),
                    clock: clock.clone(),
                    bus: bus.clone(),
                    replica: replica_name("assignment"),
                    max_message_bytes: config.grpc.max_message_bytes,
                };
                let options = arflow_assignment::Options {
                    // The lead wires the [assignment] config section here.
                    settings: services.assignment.clone(),
                    denial_source: claims_channel(&config, &roles, &bound)?.map(
                        |(channel, keys)| {
                            Arc::new(arflow_assignment::reconcile::GrpcDenialSource::new(
                                channel, keys,
                            ))
                                as Arc<dyn arflow_assignment::DenialSource>
                        },
                    ),
                };
                let assignment =
                    arflow_assignment::build(deps, options).context("assignment service")?;
                let svc = assignment.grpc_service();
                routes.add_service(svc);
                health_names.push(arflow_assignment::HEALTH_NAME);
                let token = shutdown.clone();
                tasks.spawn(
                    async move { assignment.run(token).await.context("assignment service") },
                );
            }
            other => bail!("role {other} is not wired"),
        }
    }
    if health_names.is_empty() {
        bail!("no service enabled");
    }
    let routes = routes.routes();
    tracing::info!(grpc = %bound.grpc, roles = ?roles, "arflow serving");
    let options = ServerOptions {
        grpc: config.grpc.clone(),
        auth: config.auth.clone(),
        drain_timeout: Duration::from_millis(config.shutdown.drain_timeout_ms),
    };
    let server = arflow_platform::grpc::serve(
        listener,
        routes,
        &health_names,
        db.clone(),
        clock,
        options,
        shutdown.clone(),
    );
    let result = server.await;
    // The server drained; stop the background loops and wait for them briefly.
    shutdown.cancel();
    let drain = Duration::from_millis(config.shutdown.drain_timeout_ms);
    let _ = tokio::time::timeout(drain, async {
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Err(err)) => {
                    tracing::warn!(error = %format!("{err:#}"), "task ended with an error")
                }
                Err(err) if err.is_panic() => tracing::error!("task panicked"),
                _ => {}
            }
        }
    })
    .await;
    db.close().await;
    result
}

/// The payer rules: built-in defaults, layered with `claims.payer_rules_file` when set.
pub fn load_payer_rules(
    claims: &arflow_claims::Settings,
) -> anyhow::Result<arflow_domain::rules::PayerRuleSet> {
    let path = &claims.payer_rules_file;
    if path.is_empty() {
        return Ok(arflow_domain::rules::PayerRuleSet::builtin());
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read claims.payer_rules_file {path}"))?;
    arflow_domain::rules::PayerRuleSet::from_json(&text)
        .with_context(|| format!("payer rules in {path}"))
}

/// This process's consumer name within a role's group: unique per replica.
fn replica_name(role: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    format!("{role}-{host}-{}", std::process::id())
}

/// Where the reconcilers reach the claims service, and with which per-tenant keys; None when no
/// key is configured (the reconcilers then do not run).
fn claims_channel(
    config: &Config,
    roles: &[&'static str],
    bound: &Bound,
) -> anyhow::Result<
    Option<(
        tonic::transport::Channel,
        std::collections::HashMap<String, String>,
    )>,
> {
    let r = &config.reconciler;
    if r.service_keys.is_empty() {
        return Ok(None);
    }
    let addr = if !r.claims_addr.is_empty() {
        r.claims_addr.clone()
    } else if roles.contains(&"claims") {
        format!("http://{}", bound.grpc)
    } else {
        bail!(
            "reconciler.service_keys is set but this process does not run the claims role: set \
             reconciler.claims_addr to the claims service's gRPC address"
        );
    };
    // Lazy: the claims service may start after us; the reconciler retries on its next run.
    let channel = tonic::transport::Channel::from_shared(addr.clone())
        .with_context(|| format!("reconciler.claims_addr {addr:?} is not a URL"))?
        .connect_lazy();
    let keys = r
        .service_keys
        .iter()
        .map(|(t, k)| (t.clone(), k.expose().to_string()))
        .collect();
    Ok(Some((channel, keys)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_deploy_config_names_every_section_and_loads() {
        let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/arflow.toml"));
        let (_, services) =
            Config::load_with::<ServiceSettings>(Some(path), Vec::new(), &[]).unwrap();
        services.validate().unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        for section in ["[claims]", "[scheduler]", "[assignment]"] {
            assert!(text.contains(section), "{section} in deploy/arflow.toml");
        }
    }

    #[test]
    fn a_bad_service_setting_is_refused_with_its_section() {
        let err = Config::load_with::<ServiceSettings>(
            None,
            vec![("ARFLOW_ASSIGNMENT__SWEEP_INTERVAL".into(), "5".into())],
            &[],
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("sweep_interval"), "{err:#}");
        let (_, services) = Config::load_with::<ServiceSettings>(
            None,
            vec![("ARFLOW_ASSIGNMENT__SWEEP_INTERVAL_MS".into(), "0".into())],
            &[],
        )
        .unwrap();
        let err = services.validate().unwrap_err();
        assert!(format!("{err:#}").contains("[assignment]"), "{err:#}");
    }
}
