//! API keys and the principal of a call.
//!
//! A key reads `afk_<key_id>_<secret>`: the key id is a UUIDv7 (not secret: it names the key
//! in logs, the audit log and `arflow keys revoke`), the secret is 32 bytes from the operating
//! system's RNG, hex-encoded. Only the SHA-256 of the secret is stored (`api_keys`), so a
//! database dump does not yield working keys; the plaintext is shown once, by [`create_key`].
//! Clients send `authorization: Bearer <key>`.
//!
//! The gRPC bootstrap ([`crate::grpc::serve`]) verifies the key of every call (health and
//! reflection excepted) and attaches the [`Principal`] to the request; handlers read it with
//! [`principal`]. Tenant scoping and role checks are the services' job: they get the principal
//! and answer another tenant's object with NOT_FOUND.
//!
//! Verified keys are cached in memory for `auth.key_cache_secs` (real time, not the simulated
//! clock), so most calls cost no database round trip. The price is revocation lag: a revoked
//! key keeps working in a process that verified it recently for up to that long. Unknown and
//! revoked key ids are cached too, so a client hammering with a bad key does not hammer the
//! database.
//!
//! Every failure (no header, malformed key, unknown or revoked key, wrong secret) answers the
//! same UNAUTHENTICATED message, so a caller cannot probe which part was wrong; the reason is
//! counted in `arflow_auth_failures_total{reason}` and logged with the key id only.
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use prometheus::{IntCounterVec, Opts};
use rand::TryRngCore as _;
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;
use subtle::ConstantTimeEq as _;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::db::{Db, to_micros};

/// What a key may do. Checked by the services with [`Principal::require_role`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything within the tenant, including keys and configuration.
    Admin,
    /// Watches and rebalances queues; everything a specialist does.
    Supervisor,
    /// Works follow-up tasks.
    Specialist,
    /// A partner system (practice management, EHR, clearinghouse) sending claims.
    Partner,
    /// Another arflow role calling in.
    Service,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Supervisor,
        Role::Specialist,
        Role::Partner,
        Role::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Specialist => "specialist",
            Role::Partner => "partner",
            Role::Service => "service",
        }
    }

    /// The inverse of [`Role::as_str`] (case-insensitive).
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is calling: the verified API key's tenant, role and clinic scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub tenant_id: String,
    pub role: Role,
    /// Clinics the key is limited to; empty means every clinic of the tenant.
    pub clinic_ids: Vec<String>,
}

impl Principal {
    /// True when the key may see objects of `clinic_id`.
    pub fn can_access_clinic(&self, clinic_id: &str) -> bool {
        self.clinic_ids.is_empty() || self.clinic_ids.iter().any(|c| c == clinic_id)
    }

    /// PERMISSION_DENIED unless the principal's role is one of `allowed`. No role is implied:
    /// list `Role::Admin` where admins may call.
    pub fn require_role(&self, allowed: &[Role]) -> Result<(), tonic::Status> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(tonic::Status::permission_denied(format!(
                "the {} role may not make this call",
                self.role.as_str()
            )))
        }
    }
}

/// The principal the auth layer attached to the call. UNAUTHENTICATED when there is none,
/// which means the service was mounted outside [`crate::grpc::serve`] (a wiring bug).
pub fn principal<T>(request: &tonic::Request<T>) -> Result<Principal, tonic::Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| tonic::Status::unauthenticated(UNAUTHENTICATED_MESSAGE))
}

const KEY_PREFIX: &str = "afk_";
/// Said for every authentication failure: it must not tell which part was wrong.
pub(crate) const UNAUTHENTICATED_MESSAGE: &str = "missing or invalid API key";

/// Creates an API key for `tenant_id`; returns `(key_id, plaintext key)`. The plaintext is
/// not stored (only the SHA-256 of its secret): show it once.
pub async fn create_key(
    db: &Db,
    clock: &Clock,
    tenant_id: &str,
    role: Role,
    clinic_ids: &[String],
    label: &str,
) -> anyhow::Result<(String, String)> {
    anyhow::ensure!(!tenant_id.trim().is_empty(), "tenant id is required");
    let mut secret = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut secret)
        .context("read the operating system's RNG")?;
    let secret = hex::encode(secret);
    let key_id = uuid::Uuid::now_v7().to_string();
    let clinics = serde_json::to_string(clinic_ids).context("encode clinic ids")?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO api_keys (key_id, tenant_id, role, clinic_ids, secret_sha256, label, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&key_id)
    .bind(tenant_id)
    .bind(role.as_str())
    .bind(clinics)
    .bind(hex::encode(Sha256::digest(secret.as_bytes())))
    .bind(label)
    .bind(to_micros(clock.now()))
    .execute(&mut *tx)
    .await
    .context("insert api key")?;
    tx.commit().await?;
    Ok((key_id.clone(), format!("{KEY_PREFIX}{key_id}_{secret}")))
}

/// Revokes a key; false when there is no such active key. Processes that verified the key in
/// the last `auth.key_cache_secs` keep accepting it until their cache entry expires.
pub async fn revoke_key(db: &Db, clock: &Clock, key_id: &str) -> anyhow::Result<bool> {
    let mut tx = db.begin().await?;
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL")
            .bind(to_micros(clock.now()))
            .bind(key_id)
            .execute(&mut *tx)
            .await
            .context("revoke api key")?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// Splits `Bearer afk_<key_id>_<secret>` into key id and secret. Rejects shapes that cannot be
/// ours before any database work.
fn parse_header(value: &str) -> Option<(&str, &str)> {
    let (scheme, key) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let (key_id, secret) = key.trim().strip_prefix(KEY_PREFIX)?.split_once('_')?;
    let plausible = uuid::Uuid::parse_str(key_id).is_ok()
        && (16..=256).contains(&secret.len())
        && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    plausible.then_some((key_id, secret))
}

/// Why a call was refused; only ever a metric label and a log field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    Missing,
    Malformed,
    Unknown,
    Revoked,
    Mismatch,
}

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Failure::Missing => "missing",
            Failure::Malformed => "malformed",
            Failure::Unknown => "unknown_key",
            Failure::Revoked => "revoked",
            Failure::Mismatch => "wrong_secret",
        }
    }
}

static AUTH_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let counter = IntCounterVec::new(
        Opts::new(
            "auth_failures_total",
            "calls refused as unauthenticated, by reason",
        ),
        &["reason"],
    )
    .expect("static metric definition");
    // Registered next to the process metrics so /metrics shows it; a second registration
    // (impossible with LazyLock) would only be ignored.
    let _ = crate::metrics::metrics()
        .registry
        .register(Box::new(counter.clone()));
    counter
});

/// A stored key as the verifier needs it.
#[derive(Clone)]
struct StoredKey {
    principal: Principal,
    secret_sha256: [u8; 32],
    revoked: bool,
}

struct Cached {
    at: Instant,
    /// `None`: no such key id.
    key: Option<StoredKey>,
}

/// Most entries a process keeps; past it, expired entries go, then everything.
const MAX_CACHED_KEYS: usize = 10_000;

/// Verifies `authorization` headers against `api_keys`, with the cache described in the
/// module docs. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Authenticator {
    db: Db,
    ttl: Duration,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl Authenticator {
    pub(crate) fn new(db: Db, ttl: Duration) -> Authenticator {
        Authenticator {
            db,
            ttl,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The principal of a call bearing `header`. UNAUTHENTICATED for every bad key;
    /// UNAVAILABLE when the key store cannot be read (a client must not drop its key for that).
    pub(crate) async fn authenticate(
        &self,
        header: Option<&http::HeaderValue>,
    ) -> Result<Principal, tonic::Status> {
        let refuse = |reason: Failure, key_id: &str| {
            AUTH_FAILURES.with_label_values(&[reason.as_str()]).inc();
            tracing::warn!(
                reason = reason.as_str(),
                key_id,
                "call refused: unauthenticated"
            );
            tonic::Status::unauthenticated(UNAUTHENTICATED_MESSAGE)
        };
        let Some(header) = header else {
            return Err(refuse(Failure::Missing, ""));
        };
        let Some((key_id, secret)) = header.to_str().ok().and_then(parse_header) else {
            return Err(refuse(Failure::Malformed, ""));
        };
        let key = match self.cached(key_id) {
            Some(key) => key,
            None => {
                let key = self.load(key_id).await.map_err(|err| {
                    tracing::error!(error = %format!("{err:#}"), key_id, "api key lookup failed");
                    tonic::Status::unavailable("authentication is temporarily unavailable")
                })?;
                self.remember(key_id, key.clone());
                key
            }
        };
        let Some(key) = key else {
            return Err(refuse(Failure::Unknown, key_id));
        };
        if key.revoked {
            return Err(refuse(Failure::Revoked, key_id));
        }
        let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        if !bool::from(presented.ct_eq(&key.secret_sha256)) {
            return Err(refuse(Failure::Mismatch, key_id));
        }
        Ok(key.principal)
    }

    fn cached(&self, key_id: &str) -> Option<Option<StoredKey>> {
        if self.ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key_id)
            .filter(|c| c.at.elapsed() < self.ttl)
            .map(|c| c.key.clone())
    }

    fn remember(&self, key_id: &str, key: Option<StoredKey>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED_KEYS {
            let ttl = self.ttl;
            cache.retain(|_, c| c.at.elapsed() < ttl);
            if cache.len() >= MAX_CACHED_KEYS {
                cache.clear();
            }
        }
        cache.insert(
            key_id.to_string(),
            Cached {
                at: Instant::now(),
                key,
            },
        );
    }

    async fn load(&self, key_id: &str) -> anyhow::Result<Option<StoredKey>> {
        let row = sqlx::query(
            "SELECT tenant_id, role, clinic_ids, secret_sha256, revoked_at FROM api_keys WHERE key_id = $1",
        )
        .bind(key_id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let role: String = row.try_get("role")?;
        let role =
            Role::parse(&role).with_context(|| format!("api key {key_id} has an unknown role"))?;
        let clinics: String = row.try_get("clinic_ids")?;
        let hash: String = row.try_get("secret_sha256")?;
        let mut secret_sha256 = [0u8; 32];
        hex::decode_to_slice(&hash, &mut secret_sha256)
            .with_context(|| format!("api key {key_id} has a bad hash"))?;
        Ok(Some(StoredKey {
            principal: Principal {
                key_id: key_id.to_string(),
                tenant_id: row.try_get("tenant_id")?,
                role,
                clinic_ids: serde_json::from_str(&clinics)
                    .with_context(|| format!("api key {key_id} clinic ids"))?,
            },
            secret_sha256,
            revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
        }))
    }
}

#[cfg(test)]
// A failed unwrap is a failed test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("Admin"), Some(Role::Admin));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn headers_are_parsed_strictly() {
        let id = "0190b4a2-7c1e-7d3e-9f00-123456789abc";
        let secret = "a".repeat(64);
        let good = format!("Bearer afk_{id}_{secret}");
        assert_eq!(parse_header(&good), Some((id, secret.as_str())));
        assert_eq!(
            parse_header(&format!("bearer  afk_{id}_{secret}")),
            Some((id, secret.as_str()))
        );
        assert_eq!(parse_header(&format!("Basic afk_{id}_{secret}")), None);
        assert_eq!(parse_header(&format!("Bearer {id}_{secret}")), None);
        assert_eq!(
            parse_header(&format!("Bearer afk_not-a-uuid_{secret}")),
            None
        );
        assert_eq!(parse_header(&format!("Bearer afk_{id}_short")), None);
        assert_eq!(parse_header(&format!("Bearer afk_{id}_{secret}'--")), None);
        assert_eq!(parse_header("Bearer"), None);
    }

    #[test]
    fn clinic_scope_and_roles() {
        let mut p = Principal {
            key_id: "k".into(),
            tenant_id: "t".into(),
            role: Role::Partner,
            clinic_ids: vec![],
        };
        assert!(p.can_access_clinic("any"));
        p.clinic_ids = vec!["c1".into()];
        assert!(p.can_access_clinic("c1"));
        assert!(!p.can_access_clinic("c2"));
        assert!(p.require_role(&[Role::Partner, Role::Admin]).is_ok());
        let err = p.require_role(&[Role::Admin]).unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
    }
}
