//! The reconciler: Redis is a signal, not the only copy (docs/design.md §3). Once a day (cron job
//! `reconcile`, per tenant) the scheduler asks the claims service, through its gRPC API and
//! never its tables, which claims are open, and repairs what a lost event left wrong:
//!
//! - an open claim the scheduler never saw, or saw at an older version, gets its projection
//!   row and its timers (the same planning as ClaimSubmitted; existing timers are kept by the
//!   unique key, so nothing is set twice);
//! - a claim the scheduler still thinks open that the claims service no longer lists as open
//!   is looked up one by one; when it is closed, what is left of its timers is cancelled.
//!
//! Repairs go through the consumer's own methods (`on_claim_status_changed`,
//! `on_claim_submitted`) with what the claims service answers, at the claim's real aggregate
//! version, so the ordering rules are the same as for live events:
//! a claim the scheduler has seen at a newer version than the answer is left alone.
//!
//! Unlike the other cron jobs, a reconcile run is not one transaction: it makes network calls,
//! which must not hold a database transaction (on SQLite, the write lock). Its row is inserted
//! and committed first (state `running`, the replica that wins the insert runs it), each claim
//! is repaired in its own transaction, and the row is marked `succeeded` at the end. A replica
//! that dies mid-run leaves the row `running`; the next day's run repairs what it did not.
use std::collections::{HashMap, HashSet};

use arflow_api::claims::v1 as claims;
use arflow_api::claims::v1::claims_service_client::ClaimsServiceClient;
use arflow_api::wire;
use arflow_domain::{ClaimStatus, followup};
use arflow_platform::grpc::{TenantKeys, all_pages, found};
use arflow_platform::{Clock, Db};
use chrono::{DateTime, NaiveDate, Utc};
use tonic::transport::Channel;

use crate::consumer::{ClaimEvents, EventMeta, StatusNews, Submission};
use crate::error::{Context as _, Error};
use crate::store::{self, TenantId};

pub const RECONCILE: &str = "reconcile";

/// What the reconciler needs of a claim (no patient data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimSnapshot {
    pub claim_id: String,
    pub clinic_id: String,
    pub payer_id: String,
    /// None when the claims service answered a status this version does not know.
    pub status: Option<ClaimStatus>,
    pub submission_date: Option<NaiveDate>,
    pub first_service_date: Option<NaiveDate>,
    pub balance_cents: i64,
    pub total_charge_cents: i64,
    pub version: i64,
    /// A frequency-8 void: never followed up.
    pub void: bool,
}

impl ClaimSnapshot {
    /// Nothing left to follow up (`followup::is_closed`).
    pub fn is_closed(&self) -> bool {
        followup::is_closed(self.status, self.balance_cents)
    }
}

/// Where the reconciler learns the truth about claims: the claims service.
#[async_trait::async_trait]
pub trait ClaimSource: Send + Sync + std::fmt::Debug + 'static {
    /// Tenants this source can answer for.
    fn tenants(&self) -> Vec<String>;
    /// Every open claim of the tenant.
    async fn open_claims(&self, tenant: &str) -> anyhow::Result<Vec<ClaimSnapshot>>;
    /// One claim; None when it does not exist (for this tenant).
    async fn claim(&self, tenant: &str, claim_id: &str) -> anyhow::Result<Option<ClaimSnapshot>>;
}

/// The claims service over gRPC, with one API key (role `service`) per tenant it reconciles.
#[derive(Clone, Debug)]
pub struct GrpcClaimSource {
    channel: Channel,
    keys: TenantKeys,
}

impl GrpcClaimSource {
    /// `keys`: tenant id -> API key of that tenant (`afk_…`).
    pub fn new(channel: Channel, keys: HashMap<String, String>) -> GrpcClaimSource {
        GrpcClaimSource {
            channel,
            keys: TenantKeys::new(keys),
        }
    }

    fn request<T>(&self, tenant: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
        self.keys.request(tenant, message)
    }
}

fn snapshot(c: claims::Claim) -> ClaimSnapshot {
    let first_service_date = c
        .service_lines
        .iter()
        .filter_map(|l| l.service_date)
        .min_by_key(|d| (d.year, d.month, d.day));
    ClaimSnapshot {
        status: wire::claim_status_from_pb(c.status),
        submission_date: c.submission_date.as_ref().and_then(wire::date_from_pb),
        first_service_date: first_service_date.as_ref().and_then(wire::date_from_pb),
        claim_id: c.id,
        clinic_id: c.clinic_id,
        payer_id: c.payer.map(|p| p.id).unwrap_or_default(),
        balance_cents: c.balance_cents,
        total_charge_cents: c.total_charge_cents,
        version: c.version,
        void: c.frequency == claims::ClaimFrequency::Void as i32,
    }
}

#[async_trait::async_trait]
impl ClaimSource for GrpcClaimSource {
    fn tenants(&self) -> Vec<String> {
        self.keys.tenants()
    }

    /// One listing per open status (`ClaimStatus::is_open`; drafts were never submitted).
    async fn open_claims(&self, tenant: &str) -> anyhow::Result<Vec<ClaimSnapshot>> {
        let mut out = Vec::new();
        let open = ClaimStatus::ALL
            .into_iter()
            .filter(|s| s.is_open() && *s != ClaimStatus::Draft);
        for status in open {
            let status = wire::claim_status_to_pb(status) as i32;
            let claims = all_pages(|page_token| async move {
                let page = ClaimsServiceClient::new(self.channel.clone())
                    .list_claims(self.request(
                        tenant,
                        claims::ListClaimsRequest {
                            status,
                            page_size: 1000,
                            page_token,
                            ..Default::default()
                        },
                    )?)
                    .await?
                    .into_inner();
                Ok((page.claims, page.next_page_token))
            })
            .await?;
            out.extend(claims.into_iter().map(snapshot));
        }
        Ok(out)
    }

    async fn claim(&self, tenant: &str, claim_id: &str) -> anyhow::Result<Option<ClaimSnapshot>> {
        let answer = ClaimsServiceClient::new(self.channel.clone())
            .get_claim(self.request(
                tenant,
                claims::GetClaimRequest {
                    claim_id: claim_id.to_string(),
                },
            )?)
            .await;
        Ok(found(answer)?.and_then(|r| r.claim).map(snapshot))
    }
}

/// What a reconcile run found and did, for the run's summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Open claims the claims service listed.
    pub open_claims: usize,
    /// Claims whose projection and timers were repaired (missed or stale).
    pub repaired: usize,
    /// Claims closed at the source whose timers were cancelled here.
    pub closed: usize,
}

/// Reconciles one tenant against `source`.
pub async fn reconcile_tenant(
    db: &Db,
    handler: &ClaimEvents,
    source: &dyn ClaimSource,
    tenant: &TenantId,
    now: DateTime<Utc>,
) -> Result<Report, Error> {
    let open = source
        .open_claims(tenant.as_str())
        .await
        .map_err(|e| Error::other("list open claims from the claims service", e))?;
    let mut report = Report {
        open_claims: open.len(),
        ..Report::default()
    };
    let open_ids: HashSet<&str> = open.iter().map(|c| c.claim_id.as_str()).collect();
    for claim in &open {
        if claim.void {
            // Voids are not followed up (the consumer skips their ClaimSubmitted too).
            continue;
        }
        let mut tx = db.begin().await.context("begin reconcile repair")?;
        let known = store::get_claim(&mut tx, tenant, &claim.claim_id).await?;
        let behind = match &known {
            None => true,
            Some(k) => {
                k.facts.version < claim.version
                    || (k.facts.submission_date.is_none() && k.facts.version <= claim.version)
            }
        };
        if behind {
            apply(handler, &mut tx, tenant, claim, now).await?;
            report.repaired += 1;
        }
        tx.commit().await.context("commit reconcile repair")?;
    }
    // Open here, not open there: look each one up before closing anything (a list read while
    // claims change can miss one).
    for claim_id in store::open_claim_ids(db, tenant).await? {
        if open_ids.contains(claim_id.as_str()) {
            continue;
        }
        let Some(claim) = source
            .claim(tenant.as_str(), &claim_id)
            .await
            .map_err(|e| Error::other("read a claim from the claims service", e))?
        else {
            continue;
        };
        if !claim.is_closed() {
            continue;
        }
        let mut tx = db.begin().await.context("begin reconcile close")?;
        apply(handler, &mut tx, tenant, &claim, now).await?;
        tx.commit().await.context("commit reconcile close")?;
        report.closed += 1;
    }
    Ok(report)
}

/// Applies a claim's current state as the events that would have carried it: the status
/// (closing or reopening timers), then the submission (planning them).
async fn apply(
    handler: &ClaimEvents,
    conn: &mut sqlx::AnyConnection,
    tenant: &TenantId,
    claim: &ClaimSnapshot,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let meta = EventMeta {
        event_id: format!("reconcile:{}", claim.claim_id),
        tenant: tenant.clone(),
        version: claim.version,
        occurred: now,
    };
    let news = StatusNews {
        claim_id: claim.claim_id.clone(),
        clinic_id: claim.clinic_id.clone(),
        payer_id: claim.payer_id.clone(),
        status: claim.status,
        balance_cents: claim.balance_cents,
    };
    handler.on_claim_status_changed(conn, &meta, news).await?;
    if claim.is_closed() {
        return Ok(());
    }
    let submission = Submission {
        claim_id: claim.claim_id.clone(),
        clinic_id: claim.clinic_id.clone(),
        payer_id: claim.payer_id.clone(),
        status: claim.status,
        submission_date: claim.submission_date,
        first_service_date: claim.first_service_date,
        balance_cents: claim.balance_cents,
        void: claim.void,
        // The claims API names no original: the repair ages from the claim's own submission.
        original_claim_id: None,
    };
    handler.on_claim_submitted(conn, &meta, submission).await
}

/// Runs the reconcile job of (tenant, instant) unless another replica has; true when this
/// call ran it. See the module docs for why this is not one transaction.
pub async fn run_once(
    db: &Db,
    clock: &Clock,
    handler: &ClaimEvents,
    source: &dyn ClaimSource,
    tenant: &TenantId,
    instant: DateTime<Utc>,
    replica: &str,
) -> Result<bool, Error> {
    let Some((tx, run_id)) =
        store::begin_run(db, RECONCILE, tenant, instant, clock.now(), replica).await?
    else {
        return Ok(false);
    };
    tx.commit().await.context("commit reconcile run claim")?;
    let report = reconcile_tenant(db, handler, source, tenant, clock.now()).await?;
    let summary =
        serde_json::to_string(&report).map_err(|e| Error::other("encode reconcile report", e))?;
    let mut tx = db.begin().await.context("begin reconcile finish")?;
    store::finish_run(&mut tx, &run_id, &summary, clock.now()).await?;
    tx.commit().await.context("commit reconcile finish")?;
    crate::metrics::metrics()
        .cron_runs
        .with_label_values(&[RECONCILE])
        .inc();
    tracing::info!(
        tenant = tenant.as_str(),
        repaired = report.repaired,
        closed = report.closed,
        "reconcile ran"
    );
    Ok(true)
}
