//! The denial reconciler: Redis is a signal, not the only copy (docs/design.md §3). Once a (possibly
//! simulated) day the service asks the claims service, through its gRPC API and never its
//! tables, for the denials of the last [`LOOKBACK_DAYS`] days, and gives every denied claim
//! whose latest denial no denial task has taken up the task a lost ClaimDenied event would
//! have made.
//!
//! - Same filters as the ClaimDenied handler: contractual and patient-responsibility
//!   adjustments, `payment_posting` work, and settled claims get no task.
//! - Same store path ([`store::open_task`]): priority, assignment, TaskCreated / TaskAssigned /
//!   TaskUnassigned all happen the same way.
//! - A claim with several denials gets one task (as several ClaimDenied events would: the
//!   first creates it, the rest refresh it), carrying the latest denial and its id.
//! - Taken up: a denial task (open or completed) records the denial's id (`asg_tasks.denial_id`,
//!   the newest one when refreshed). A completed task for that denial means it was handled: not
//!   recreated. A claim denied again after its task was completed, whose second ClaimDenied was
//!   lost, gets a new task; an open task carrying an older denial is refreshed. Tasks made
//!   before tasks recorded their denial count for the denials dated on or before their
//!   creation.
//! - Idempotent: the check is repeated inside the repairing transaction after the tenant lock,
//!   and the unique open-task index keeps one open task per (claim, kind) whatever replicas
//!   race.
//!
//! Network calls hold no transaction: the denials and claims are fetched first, then each
//! claim is repaired in its own transaction.
use std::collections::{BTreeMap, HashMap};

use arflow_api::claims::v1 as claims;
use arflow_api::claims::v1::claims_service_client::ClaimsServiceClient;
use arflow_api::wire;
use arflow_domain::DenialCategory;
use arflow_platform::grpc::{TenantKeys, all_pages, found};
use arflow_platform::{Clock, Db};
use chrono::{NaiveDate, TimeDelta};
use tonic::transport::Channel;

use crate::consumer::is_ar_work;
use crate::error::{Context as _, Error};
use crate::store::{self, ClaimFacts, TaskRequest, TenantId};

/// How far back each pass looks for denials (by denial date).
pub const LOOKBACK_DAYS: i64 = 120;

/// What the reconciler needs of a denial (no patient data).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DenialSnapshot {
    pub denial_id: String,
    pub claim_id: String,
    pub clinic_id: String,
    pub payer_id: String,
    /// None when the API names no category (UNSPECIFIED) or one this build does not know.
    pub category: Option<DenialCategory>,
    pub resolution: String,
    pub owner: String,
    pub appealable: bool,
    pub amount_cents: i64,
    pub denial_date: Option<NaiveDate>,
    pub procedure_code: String,
}

/// What the reconciler needs of a denied claim (no patient data): what a claim event would
/// have told the projection (the claim's id is the one asked for).
pub type ClaimState = ClaimFacts;

/// Where the reconciler learns the truth about denials: the claims service.
#[async_trait::async_trait]
pub trait DenialSource: Send + Sync + std::fmt::Debug + 'static {
    /// Tenants this source can answer for.
    fn tenants(&self) -> Vec<String>;
    /// Every denial of the tenant dated `since` or later.
    async fn denials(&self, tenant: &str, since: NaiveDate) -> anyhow::Result<Vec<DenialSnapshot>>;
    /// One claim (status, balance, dates); None when it does not exist (for this tenant).
    /// Asked only for claims that need a task.
    async fn claim(&self, tenant: &str, claim_id: &str) -> anyhow::Result<Option<ClaimState>>;
}

/// The claims service over gRPC, with one API key (role `service`) per tenant it reconciles.
#[derive(Clone, Debug)]
pub struct GrpcDenialSource {
    channel: Channel,
    keys: TenantKeys,
}

impl GrpcDenialSource {
    /// `keys`: tenant id -> API key of that tenant (`afk_…`).
    pub fn new(channel: Channel, keys: HashMap<String, String>) -> GrpcDenialSource {
        GrpcDenialSource {
            channel,
            keys: TenantKeys::new(keys),
        }
    }

    fn request<T>(&self, tenant: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
        self.keys.request(tenant, message)
    }
}

fn denial_snapshot(d: claims::Denial) -> DenialSnapshot {
    DenialSnapshot {
        category: wire::denial_category_from_pb(d.category).ok().flatten(),
        denial_date: d.denial_date.as_ref().and_then(wire::date_from_pb),
        denial_id: d.id,
        claim_id: d.claim_id,
        clinic_id: d.clinic_id,
        payer_id: d.payer_id,
        resolution: d.resolution,
        owner: d.owner,
        appealable: d.appealable,
        amount_cents: d.amount_cents,
        procedure_code: d.procedure_code,
    }
}

fn claim_state(c: claims::Claim) -> ClaimState {
    let first_service_date = c
        .service_lines
        .iter()
        .filter_map(|l| l.service_date.as_ref().and_then(wire::date_from_pb))
        .min();
    ClaimState {
        status: wire::claim_status_from_pb(c.status),
        submission_date: c.submission_date.as_ref().and_then(wire::date_from_pb),
        clinic_id: c.clinic_id,
        payer_id: c.payer.map(|p| p.id).unwrap_or_default(),
        balance_cents: c.balance_cents,
        first_service_date,
        version: c.version,
    }
}

#[async_trait::async_trait]
impl DenialSource for GrpcDenialSource {
    fn tenants(&self) -> Vec<String> {
        self.keys.tenants()
    }

    async fn denials(&self, tenant: &str, since: NaiveDate) -> anyhow::Result<Vec<DenialSnapshot>> {
        let denials = all_pages(|page_token| async move {
            let page = ClaimsServiceClient::new(self.channel.clone())
                .list_denials(self.request(
                    tenant,
                    claims::ListDenialsRequest {
                        denied_from: Some(wire::date_to_pb(since)),
                        page_size: 1000,
                        page_token,
                        ..Default::default()
                    },
                )?)
                .await?
                .into_inner();
            Ok((page.denials, page.next_page_token))
        })
        .await?;
        Ok(denials.into_iter().map(denial_snapshot).collect())
    }

    async fn claim(&self, tenant: &str, claim_id: &str) -> anyhow::Result<Option<ClaimState>> {
        let answer = ClaimsServiceClient::new(self.channel.clone())
            .get_claim(self.request(
                tenant,
                claims::GetClaimRequest {
                    claim_id: claim_id.to_string(),
                },
            )?)
            .await;
        Ok(found(answer)?.and_then(|r| r.claim).map(claim_state))
    }
}

/// One reconcile pass over one tenant: denials dated `today - LOOKBACK_DAYS` or later whose
/// claim has no denial task get one. Returns the number of tasks created.
pub async fn reconcile_tenant(
    db: &Db,
    clock: &Clock,
    source: &dyn DenialSource,
    tenant: &TenantId,
) -> Result<usize, Error> {
    let since = clock.today() - TimeDelta::days(LOOKBACK_DAYS);
    let denials = source
        .denials(tenant.as_str(), since)
        .await
        .map_err(|e| Error::other("list denials", e))?;
    // Per claim, the latest denial that is AR work (what the last ClaimDenied would have left
    // on the task).
    let mut latest: BTreeMap<String, DenialSnapshot> = BTreeMap::new();
    for d in denials {
        // The ClaimDenied handler's filter: adjustments that are not denials, posting's work.
        if !is_ar_work(d.category, &d.owner) || d.claim_id.is_empty() {
            continue;
        }
        let newer = latest.get(&d.claim_id).is_none_or(|cur| {
            (d.denial_date, d.denial_id.as_str()) >= (cur.denial_date, cur.denial_id.as_str())
        });
        if newer {
            latest.insert(d.claim_id.clone(), d);
        }
    }
    let mut created = 0;
    for (claim_id, denial) in latest {
        // Cheap check first, without the tenant lock; repeated under it below.
        {
            let mut conn = db.pool().acquire().await.context("check denial task")?;
            if store::covers_denial(
                &mut conn,
                tenant,
                &claim_id,
                &denial.denial_id,
                denial.denial_date,
            )
            .await?
            {
                continue;
            }
        }
        let Some(claim) = source
            .claim(tenant.as_str(), &claim_id)
            .await
            .map_err(|e| Error::other("get denied claim", e))?
        else {
            continue;
        };
        if claim.status.is_some_and(|s| !s.is_open()) {
            continue;
        }
        let now = clock.now();
        let mut tx = db.begin().await.context("repair denial")?;
        store::lock_tenant(&mut tx, tenant).await?;
        if store::covers_denial(
            &mut tx,
            tenant,
            &claim_id,
            &denial.denial_id,
            denial.denial_date,
        )
        .await?
        {
            tx.rollback().await.context("repair denial")?;
            continue;
        }
        // Older than what the projection holds: left alone (the projection knows better) but
        // for the dates it lacks.
        store::apply_claim_facts(&mut tx, tenant, &claim_id, &claim, now).await?;
        let view = store::claim_view(&mut tx, tenant, &claim_id).await?;
        if view.as_ref().is_some_and(|v| v.settled()) {
            tx.rollback().await.context("repair denial")?;
            continue;
        }
        let req = TaskRequest {
            claim_id: claim_id.clone(),
            clinic_id: denial.clinic_id.clone(),
            payer_id: denial.payer_id.clone(),
            balance_cents: view
                .as_ref()
                .map_or(claim.balance_cents, |v| v.balance_cents),
            denial_resolution: denial.resolution.clone(),
            denial_owner: denial.owner.clone(),
            appealable: denial.appealable,
            denied_amount_cents: denial.amount_cents,
            denial_id: denial.denial_id.clone(),
            age_basis: view.and_then(|v| v.age_basis()),
            source_event_id: None,
            ..TaskRequest::denial(denial.category)
        };
        let opened = store::open_task(&mut tx, db.backend(), tenant, &req, now).await?;
        tx.commit().await.context("repair denial")?;
        if opened.created {
            created += 1;
        }
    }
    Ok(created)
}

/// One reconcile pass over every tenant of `source`. A failing tenant is logged and skipped
/// (the others still run); the error of the last failing tenant is returned after all ran, so
/// the caller retries. Returns the number of tasks created.
pub async fn reconcile_denials(
    db: &Db,
    clock: &Clock,
    source: &dyn DenialSource,
) -> Result<usize, Error> {
    let mut created = 0;
    let mut failed = None;
    for tenant in source.tenants() {
        let tenant = TenantId::new(tenant);
        match reconcile_tenant(db, clock, source, &tenant).await {
            Ok(n) => {
                created += n;
                tracing::info!(
                    tenant = tenant.as_str(),
                    created = n,
                    "denial reconcile ran"
                );
            }
            Err(e) => {
                tracing::warn!(tenant = tenant.as_str(), error = %e, "denial reconcile failed");
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(created),
    }
}
