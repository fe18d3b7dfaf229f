//! Transport of the scheduler: `arflow.scheduler.v1.SchedulerService`. Request checks, proto
//! <-> store conversion, tenant and clinic scoping, audit objects. No SQL here; every error
//! goes through [`Error`] and its one mapping onto a status.
use arflow_api::scheduler::v1 as pb;
use arflow_api::scheduler::v1::scheduler_service_server::SchedulerService;
use arflow_api::wire;
use arflow_domain::followup::kinds;
use arflow_platform::auth::{self, Principal, Role};
use arflow_platform::db::to_micros;
use arflow_platform::grpc::{self, PageToken, audit_objects};
use arflow_platform::{Clock, Db};
use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};

use crate::error::{Context as _, Error};
use crate::jobs::cron::{AGING_SNAPSHOT, DENIAL_DIGEST};
use crate::jobs::timers::kind_of;
use crate::reconcile::RECONCILE;
use crate::store::{self, NewTimer, StoredTimer, TenantId, TimerFilter, TimerPayload, TimerState};

/// Who may look at timers and runs.
const READERS: &[Role] = &[
    Role::Admin,
    Role::Supervisor,
    Role::Specialist,
    Role::Service,
];
/// Who may set and cancel timers.
const WRITERS: &[Role] = &[
    Role::Admin,
    Role::Supervisor,
    Role::Specialist,
    Role::Service,
];

/// Page-token tags of the two list calls.
const TIMERS_LIST: &str = "timers";
const RUNS_LIST: &str = "cron_runs";

#[derive(Clone)]
pub struct SchedulerApi {
    pub(crate) db: Db,
    pub(crate) clock: Clock,
}

type Violations = Vec<(String, String)>;

fn page_size(value: i32, violations: &mut Violations) -> usize {
    grpc::page_size(value).unwrap_or_else(|v| {
        violations.push(v);
        grpc::DEFAULT_PAGE_SIZE
    })
}

/// The keyset cursor of a page token: (instant in micros, id) of the last item returned.
fn page_cursor(token: &str, list: &str, violations: &mut Violations) -> Option<(i64, String)> {
    let cursor = match PageToken::decode(token, list) {
        Ok(cursor) => cursor?,
        Err(v) => {
            violations.push(v);
            return None;
        }
    };
    let parsed = cursor
        .split_once(':')
        .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
        .filter(|(_, id)| uuid::Uuid::parse_str(id).is_ok());
    if parsed.is_none() {
        violations.push((
            "page_token".to_string(),
            "not a token from this method".to_string(),
        ));
    }
    parsed
}

/// The page token after the item at (`at`, `id`).
fn next_token(list: &str, at: DateTime<Utc>, id: &str) -> String {
    PageToken::encode(list, &format!("{}:{id}", to_micros(at)))
}

fn instant(
    ts: Option<&prost_types::Timestamp>,
    field: &str,
    violations: &mut Violations,
) -> Option<DateTime<Utc>> {
    let at = wire::from_timestamp(ts?);
    if at.is_none() {
        violations.push((field.to_string(), "is not a valid timestamp".into()));
    }
    at
}

fn check_id(id: &str, field: &str, violations: &mut Violations) {
    if uuid::Uuid::parse_str(id).is_err() {
        violations.push((field.to_string(), "must be a UUID".into()));
    }
}

fn short_text(text: &str, field: &str, max: usize, violations: &mut Violations) {
    if text.len() > max {
        violations.push((field.to_string(), format!("must be at most {max} bytes")));
    }
}

fn refuse_if(violations: Violations) -> Result<(), Error> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(violations))
    }
}

fn state_pb(state: TimerState) -> pb::TimerState {
    match state {
        TimerState::Pending => pb::TimerState::Pending,
        TimerState::Fired => pb::TimerState::Fired,
        TimerState::Cancelled => pb::TimerState::Cancelled,
    }
}

fn timer_pb(t: StoredTimer) -> pb::Timer {
    let p = t.payload;
    let int = |v: Option<u32>| v.map_or(0, |n| i32::try_from(n).unwrap_or(i32::MAX));
    pb::Timer {
        kind: kind_of(&t.kind) as i32,
        id: t.id,
        subject: t.subject,
        kind_name: t.kind,
        due_time: Some(wire::timestamp(t.due_at)),
        state: state_pb(t.state) as i32,
        fire_time: t.fired_at.map(wire::timestamp),
        cancel_time: t.cancelled_at.map(wire::timestamp),
        create_time: Some(wire::timestamp(t.created_at)),
        clinic_id: t.clinic_id,
        payer_id: p.payer_id.unwrap_or_default(),
        threshold_days: int(p.threshold_days),
        sequence: int(p.sequence),
        deadline: p.deadline.unwrap_or_default(),
        denial_id: p.denial_id.unwrap_or_default(),
        note: p.note.unwrap_or_default(),
    }
}

fn cron_run_pb(run: store::CronRunRow) -> pb::CronRun {
    pb::CronRun {
        id: run.id,
        job: run.job,
        scheduled_time: Some(wire::timestamp(run.scheduled_at)),
        state: match run.state.as_str() {
            "succeeded" => pb::CronRunState::Succeeded as i32,
            "running" => pb::CronRunState::Running as i32,
            _ => pb::CronRunState::Unspecified as i32,
        },
        start_time: Some(wire::timestamp(run.started_at)),
        finish_time: run.finished_at.map(wire::timestamp),
        summary_json: run.summary,
    }
}

/// A ListTimers request, checked: the filter (without clinic scoping, which the principal
/// adds) and the page size.
struct TimersQuery {
    filter: TimerFilter,
    limit: usize,
}

impl TryFrom<pb::ListTimersRequest> for TimersQuery {
    type Error = Error;

    fn try_from(r: pb::ListTimersRequest) -> Result<TimersQuery, Error> {
        let mut v = Violations::new();
        let limit = page_size(r.page_size, &mut v);
        let after = page_cursor(&r.page_token, TIMERS_LIST, &mut v);
        let state = match pb::TimerState::try_from(r.state) {
            Ok(pb::TimerState::Unspecified) => None,
            Ok(pb::TimerState::Pending) => Some(TimerState::Pending),
            Ok(pb::TimerState::Fired) => Some(TimerState::Fired),
            Ok(pb::TimerState::Cancelled) => Some(TimerState::Cancelled),
            Err(_) => {
                v.push(("state".into(), "is not a TimerState".into()));
                None
            }
        };
        let due_from = instant(r.due_after.as_ref(), "due_after", &mut v);
        let due_before = instant(r.due_before.as_ref(), "due_before", &mut v);
        if let (Some(a), Some(b)) = (due_from, due_before)
            && a >= b
        {
            v.push(("due_before".into(), "must be after due_after".into()));
        }
        short_text(&r.subject, "subject", 200, &mut v);
        short_text(&r.kind_name, "kind_name", 100, &mut v);
        refuse_if(v)?;
        Ok(TimersQuery {
            filter: TimerFilter {
                subject: (!r.subject.is_empty()).then_some(r.subject),
                kind: (!r.kind_name.is_empty()).then_some(r.kind_name),
                state,
                due_from,
                due_before,
                clinic_ids: Vec::new(),
                after,
            },
            limit,
        })
    }
}

impl SchedulerApi {
    /// The subject of a follow-up timer is a claim: when the scheduler knows it (its claim
    /// projection), the timer belongs to the claim's clinic, which the key must cover. A
    /// clinic-scoped key may name only a claim of its clinics; another clinic's claim, or one
    /// not known yet, answers NOT_FOUND like a missing one. A tenant-wide key may also set a
    /// timer for a claim the scheduler has not heard of yet.
    async fn scope_subject(
        &self,
        principal: &Principal,
        timer: &mut NewTimer,
    ) -> Result<(), Error> {
        let tenant = TenantId::new(principal.tenant_id.clone());
        let mut conn = self.db.pool().acquire().await.context("read claim")?;
        let claim = store::get_claim(&mut conn, &tenant, &timer.subject).await?;
        match claim {
            Some(c) if principal.can_access_clinic(&c.facts.clinic_id) => {
                if !timer.clinic_id.is_empty() && timer.clinic_id != c.facts.clinic_id {
                    return Err(Error::InvalidArgument(vec![(
                        "clinic_id".into(),
                        "is not the clinic of the claim the subject names".into(),
                    )]));
                }
                timer.clinic_id = c.facts.clinic_id;
                Ok(())
            }
            None if principal.clinic_ids.is_empty() => Ok(()),
            _ => Err(Error::NotFound("claim")),
        }
    }
}

/// The follow-up timer a CreateTimer request sets, checked against the principal's clinics.
fn follow_up_timer(r: pb::CreateTimerRequest, principal: &Principal) -> Result<NewTimer, Error> {
    let mut v = Violations::new();
    if r.subject.trim().is_empty() {
        v.push(("subject".into(), "is required".into()));
    }
    short_text(&r.subject, "subject", 200, &mut v);
    short_text(&r.clinic_id, "clinic_id", 100, &mut v);
    short_text(&r.payer_id, "payer_id", 100, &mut v);
    short_text(&r.note, "note", 500, &mut v);
    let due = instant(r.due_time.as_ref(), "due_time", &mut v);
    if r.due_time.is_none() {
        v.push(("due_time".into(), "is required".into()));
    }
    if !r.clinic_id.is_empty() && !principal.can_access_clinic(&r.clinic_id) {
        v.push(("clinic_id".into(), "is outside the key's clinics".into()));
    }
    if r.clinic_id.is_empty() && !principal.clinic_ids.is_empty() {
        v.push((
            "clinic_id".into(),
            "is required for a clinic-scoped key".into(),
        ));
    }
    refuse_if(v)?;
    let Some(due_at) = due else {
        return Err(Error::InvalidArgument(vec![(
            "due_time".to_string(),
            "is required".to_string(),
        )]));
    };
    Ok(NewTimer {
        tenant_id: principal.tenant_id.clone(),
        subject: r.subject,
        kind: kinds::FOLLOW_UP.to_string(),
        due_at,
        clinic_id: r.clinic_id,
        payload: TimerPayload {
            payer_id: (!r.payer_id.is_empty()).then_some(r.payer_id),
            note: (!r.note.is_empty()).then_some(r.note),
            ..TimerPayload::default()
        },
    })
}

/// A timer the principal may see: its tenant (the query's) and, for a clinic-scoped key, one
/// of its clinics. Anything else answers NOT_FOUND like a missing timer.
fn visible(principal: &Principal, t: &StoredTimer) -> bool {
    principal.can_access_clinic(&t.clinic_id)
}

#[tonic::async_trait]
impl SchedulerService for SchedulerApi {
    async fn list_timers(
        &self,
        request: Request<pb::ListTimersRequest>,
    ) -> Result<Response<pb::ListTimersResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(READERS)?;
        let TimersQuery { mut filter, limit } = request.into_inner().try_into()?;
        filter.clinic_ids = principal.clinic_ids.clone();
        let tenant = TenantId::new(&principal.tenant_id);
        // One more than asked tells whether another page exists.
        let mut timers = store::list_timers(&self.db, &tenant, &filter, limit + 1).await?;
        let next_page_token = if timers.len() > limit {
            timers.truncate(limit);
            timers
                .last()
                .map(|t| next_token(TIMERS_LIST, t.due_at, &t.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let ids: Vec<String> = timers.iter().map(|t| t.id.clone()).collect();
        let mut response = Response::new(pb::ListTimersResponse {
            timers: timers.into_iter().map(timer_pb).collect(),
            next_page_token,
        });
        audit_objects(&mut response, ids);
        Ok(response)
    }

    async fn create_timer(
        &self,
        request: Request<pb::CreateTimerRequest>,
    ) -> Result<Response<pb::CreateTimerResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(WRITERS)?;
        let mut timer = follow_up_timer(request.into_inner(), &principal)?;
        self.scope_subject(&principal, &mut timer).await?;
        let stored = store::create_timer(&self.db, &timer, self.clock.now()).await?;
        let id = stored.id.clone();
        let mut response = Response::new(pb::CreateTimerResponse {
            timer: Some(timer_pb(stored)),
        });
        audit_objects(&mut response, [id]);
        Ok(response)
    }

    async fn cancel_timer(
        &self,
        request: Request<pb::CancelTimerRequest>,
    ) -> Result<Response<pb::CancelTimerResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(WRITERS)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        check_id(&r.timer_id, "timer_id", &mut v);
        refuse_if(v)?;
        let tenant = TenantId::new(&principal.tenant_id);
        // Scope first: a timer of a clinic outside the key is NOT_FOUND, never cancelled.
        let current = store::get_timer(&self.db, &tenant, &r.timer_id).await?;
        if !visible(&principal, &current) {
            return Err(Error::NotFound("timer").into());
        }
        let timer = store::cancel_timer(&self.db, &tenant, &r.timer_id, self.clock.now()).await?;
        let mut response = Response::new(pb::CancelTimerResponse {
            timer: Some(timer_pb(timer)),
        });
        audit_objects(&mut response, [r.timer_id]);
        Ok(response)
    }

    async fn list_cron_runs(
        &self,
        request: Request<pb::ListCronRunsRequest>,
    ) -> Result<Response<pb::ListCronRunsResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(READERS)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        let limit = page_size(r.page_size, &mut v);
        let before = page_cursor(&r.page_token, RUNS_LIST, &mut v);
        if !r.job.is_empty()
            && ![AGING_SNAPSHOT, DENIAL_DIGEST, RECONCILE].contains(&r.job.as_str())
        {
            v.push((
                "job".into(),
                "must be aging_snapshot, denial_digest or reconcile".into(),
            ));
        }
        refuse_if(v)?;
        let tenant = TenantId::new(&principal.tenant_id);
        let job = (!r.job.is_empty()).then_some(r.job.as_str());
        let mut runs = store::list_runs(&self.db, &tenant, job, before, limit + 1).await?;
        let next_page_token = if runs.len() > limit {
            runs.truncate(limit);
            runs.last()
                .map(|run| next_token(RUNS_LIST, run.scheduled_at, &run.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let ids: Vec<String> = runs.iter().map(|run| run.id.clone()).collect();
        let mut response = Response::new(pb::ListCronRunsResponse {
            runs: runs.into_iter().map(cron_run_pb).collect(),
            next_page_token,
        });
        audit_objects(&mut response, ids);
        Ok(response)
    }
}
