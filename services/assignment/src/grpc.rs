//! Transport of the assignment service: proto <-> store, roles, tenant and clinic scoping,
//! error mapping. No SQL here (that is `store`).
//!
//! Who may call what:
//! - specialists CRUD, GetQueueStats, ReassignTask, WatchQueues: supervisor, admin;
//! - ListMyTasks, ClaimNextTask: a specialist (their key mapped with `Specialist.key_id`), or
//!   a supervisor/admin naming `specialist_id`;
//! - GetTask, UpdateTask, CompleteTask: a specialist on their own tasks, supervisors and
//!   admins on any task of the tenant;
//! - LogFollowUp, ListFollowUps: specialists, supervisors, admins.
//!
//! Another tenant's object, a task of a clinic outside the key's scope, or (for a specialist)
//! another specialist's task answers NOT_FOUND, exactly like a missing one.
use std::pin::Pin;
use std::time::Duration;

use arflow_api::assignment::v1 as pb;
use arflow_api::assignment::v1::assignment_service_server::AssignmentService;
use arflow_api::common::v1 as common;
use arflow_platform::auth::{self, Principal, Role};
use arflow_platform::grpc::{
    self, audit_objects, failed_precondition, internal, invalid_argument, not_found,
};
use arflow_platform::{Clock, Db};
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc};
use futures::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::store::{self, SpecialistFields, TenantId, WorkingHours};
use arflow_domain::priority::TaskKindName;

const MANAGERS: &[Role] = &[Role::Admin, Role::Supervisor];
const WORKERS: &[Role] = &[Role::Admin, Role::Supervisor, Role::Specialist];
const MAX_CAPACITY: i32 = 10_000;
const MAX_TEXT: usize = 4_000;

#[derive(Clone)]
pub struct AssignmentApi {
    db: Db,
    clock: Clock,
    watch_poll: Duration,
    /// Cancelled when the service's `run` ends: open WatchQueues streams stop.
    stop: CancellationToken,
}

impl AssignmentApi {
    pub fn new(db: Db, clock: Clock, watch_poll: Duration) -> AssignmentApi {
        AssignmentApi {
            db,
            clock,
            watch_poll,
            stop: CancellationToken::new(),
        }
    }

    pub(crate) fn shutdown(&self) {
        self.stop.cancel();
    }

    /// The specialist a call acts for: the caller's own (specialist role, by key id), or the
    /// one a supervisor/admin names.
    async fn acting_specialist(
        &self,
        principal: &Principal,
        named: &str,
        field: &str,
    ) -> Result<store::Specialist, Status> {
        let tenant = tenant(principal);
        if principal.role == Role::Specialist {
            return store::specialist_by_key(&self.db, &tenant, &principal.key_id)
                .await
                .map_err(|e| match e {
                    store::Error::NotFound(_) => failed_precondition(
                        "this API key is not linked to a specialist (Specialist.key_id)",
                    ),
                    other => to_status(other),
                });
        }
        if named.trim().is_empty() {
            return Err(invalid_argument(
                "name the specialist to act for",
                [(
                    field.to_string(),
                    "required for supervisors and admins".to_string(),
                )],
            ));
        }
        store::get_specialist(&self.db, &tenant, named)
            .await
            .map_err(to_status)
    }

    /// A task the principal may see (tenant, clinic scope, own task for specialists).
    async fn visible_task(
        &self,
        principal: &Principal,
        task_id: &str,
    ) -> Result<store::Task, Status> {
        let tenant = tenant(principal);
        let task = store::get_task(&self.db, &tenant, task_id)
            .await
            .map_err(to_status)?;
        if !principal.can_access_clinic(&task.clinic_id) {
            return Err(not_found("task"));
        }
        if principal.role == Role::Specialist {
            let me = self.acting_specialist(principal, "", "").await?;
            if task.specialist_id.as_deref() != Some(me.id.as_str()) {
                return Err(not_found("task"));
            }
        }
        Ok(task)
    }
}

fn tenant(p: &Principal) -> TenantId {
    TenantId::new(p.tenant_id.clone())
}

fn to_status(e: store::Error) -> Status {
    match e {
        store::Error::NotFound(kind) => not_found(kind),
        store::Error::Conflict(m) => failed_precondition(m),
        store::Error::Db(e) => internal(e),
    }
}

fn ts(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos().min(999_999_999) as i32,
    }
}

fn from_ts(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(t.seconds, u32::try_from(t.nanos).ok()?)
        .single()
}

fn date_msg(d: NaiveDate) -> common::Date {
    common::Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

fn date_from_msg(d: &common::Date) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(
        d.year,
        u32::try_from(d.month).ok()?,
        u32::try_from(d.day).ok()?,
    )
}

/// The page size asked for, as every list call reads it ([`grpc::page_size`]).
fn page_size(requested: i32) -> Result<i64, Status> {
    let n = grpc::page_size_or_invalid(requested)?;
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

type Violations = Vec<(String, String)>;

fn check_uuid(v: &mut Violations, field: &str, value: &str) {
    if uuid::Uuid::parse_str(value).is_err() {
        v.push((field.to_string(), "must be a UUID".to_string()));
    }
}

fn bad(v: Violations) -> Result<(), Status> {
    if v.is_empty() {
        Ok(())
    } else {
        Err(invalid_argument("the request is not valid", v))
    }
}

/// An IANA zone name shape check (`UTC`, `Etc/GMT+5`, `America/Argentina/Buenos_Aires`).
/// Without a zone database in the build we check the shape and the area, not that the
/// location exists.
fn looks_like_iana_zone(tz: &str) -> bool {
    const AREAS: [&str; 10] = [
        "Africa",
        "America",
        "Antarctica",
        "Asia",
        "Atlantic",
        "Australia",
        "Europe",
        "Indian",
        "Pacific",
        "Etc",
    ];
    if tz == "UTC" {
        return true;
    }
    let mut parts = tz.split('/');
    let Some(area) = parts.next() else {
        return false;
    };
    let rest: Vec<&str> = parts.collect();
    AREAS.contains(&area)
        && !rest.is_empty()
        && rest.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        })
}

fn hours_from_proto(
    v: &mut Violations,
    prefix: &str,
    h: Option<&pb::WorkingHours>,
) -> WorkingHours {
    let Some(h) = h else {
        v.push((prefix.to_string(), "required".into()));
        return WorkingHours::default();
    };
    if h.days.is_empty() {
        v.push((
            format!("{prefix}.days"),
            "name at least one day (1 = Monday .. 7 = Sunday)".into(),
        ));
    }
    for (i, d) in h.days.iter().enumerate() {
        if !(1..=7).contains(d) {
            v.push((
                format!("{prefix}.days[{i}]"),
                "must be 1 (Monday) .. 7 (Sunday)".into(),
            ));
        }
    }
    let time = |v: &mut Violations, field: &str, s: &str| {
        let t = NaiveTime::parse_from_str(s, "%H:%M").ok();
        if t.is_none() {
            v.push((
                format!("{prefix}.{field}"),
                "must be HH:MM (24-hour)".into(),
            ));
        }
        t
    };
    let start = time(v, "start_time", &h.start_time);
    let end = time(v, "end_time", &h.end_time);
    if let (Some(s), Some(e)) = (start, end)
        && s >= e
    {
        v.push((
            format!("{prefix}.end_time"),
            "must be after start_time".into(),
        ));
    }
    if !looks_like_iana_zone(&h.time_zone) {
        v.push((
            format!("{prefix}.time_zone"),
            "must be an IANA time zone such as America/Chicago".into(),
        ));
    }
    let mut days = h.days.clone();
    days.sort_unstable();
    days.dedup();
    WorkingHours {
        days,
        start_time: h.start_time.clone(),
        end_time: h.end_time.clone(),
        time_zone: h.time_zone.clone(),
    }
}

fn ids(v: &mut Violations, field: &str, values: &[String]) -> Vec<String> {
    if values.is_empty() {
        v.push((
            field.to_string(),
            "name at least one (or `*` for all)".into(),
        ));
    }
    for (i, s) in values.iter().enumerate() {
        if s.trim().is_empty() || s.len() > 100 {
            v.push((
                format!("{field}[{i}]"),
                "must be 1 to 100 characters".into(),
            ));
        }
    }
    let mut out: Vec<String> = values.iter().map(|s| s.trim().to_string()).collect();
    out.sort();
    out.dedup();
    out
}

/// Validates the fields of `s` named by `paths` onto `base` (all of them when `paths` is
/// None).
fn apply_specialist(
    base: SpecialistFields,
    s: &pb::Specialist,
    paths: Option<&[String]>,
) -> Result<SpecialistFields, Status> {
    let mut v = Violations::new();
    let mut out = base;
    let all = [
        "display_name",
        "payer_ids",
        "clinic_ids",
        "capacity",
        "working_hours",
        "active",
        "out_of_office",
        "key_id",
    ];
    let chosen: Vec<String> = match paths {
        Some(p) if !p.is_empty() => p.to_vec(),
        _ => all.iter().map(|s| s.to_string()).collect(),
    };
    for (i, path) in chosen.iter().enumerate() {
        match path.as_str() {
            "display_name" => {
                let name = s.display_name.trim();
                if name.is_empty() || name.len() > 200 {
                    v.push((
                        "specialist.display_name".into(),
                        "must be 1 to 200 characters".into(),
                    ));
                }
                out.display_name = name.to_string();
            }
            "payer_ids" => out.payer_ids = ids(&mut v, "specialist.payer_ids", &s.payer_ids),
            "clinic_ids" => out.clinic_ids = ids(&mut v, "specialist.clinic_ids", &s.clinic_ids),
            "capacity" => {
                if !(1..=MAX_CAPACITY).contains(&s.capacity) {
                    v.push((
                        "specialist.capacity".into(),
                        format!("must be 1 to {MAX_CAPACITY} open tasks"),
                    ));
                }
                out.capacity = i64::from(s.capacity);
            }
            "working_hours" => {
                out.working_hours =
                    hours_from_proto(&mut v, "specialist.working_hours", s.working_hours.as_ref())
            }
            "active" => out.active = s.active,
            "out_of_office" => out.out_of_office = s.out_of_office,
            "key_id" => {
                let k = s.key_id.trim();
                if k.contains(char::is_whitespace) || k.len() > 100 {
                    v.push(("specialist.key_id".into(), "must be an API key id".into()));
                }
                out.key_id = (!k.is_empty()).then(|| k.to_string());
            }
            _ => v.push((
                format!("update_mask.paths[{i}]"),
                "not a field that can be changed".into(),
            )),
        }
    }
    bad(v)?;
    Ok(out)
}

fn specialist_to_proto(s: &store::Specialist) -> pb::Specialist {
    let f = &s.fields;
    pb::Specialist {
        id: s.id.clone(),
        display_name: f.display_name.clone(),
        payer_ids: f.payer_ids.clone(),
        clinic_ids: f.clinic_ids.clone(),
        capacity: i32::try_from(f.capacity).unwrap_or(i32::MAX),
        working_hours: Some(pb::WorkingHours {
            days: f.working_hours.days.clone(),
            start_time: f.working_hours.start_time.clone(),
            end_time: f.working_hours.end_time.clone(),
            time_zone: f.working_hours.time_zone.clone(),
        }),
        active: f.active,
        out_of_office: f.out_of_office,
        key_id: f.key_id.clone().unwrap_or_default(),
        open_tasks: i32::try_from(s.open_tasks).unwrap_or(i32::MAX),
        create_time: Some(ts(s.created_at)),
        update_time: Some(ts(s.updated_at)),
    }
}

fn kind_to_proto(k: TaskKindName) -> pb::TaskKind {
    match k {
        TaskKindName::Denial => pb::TaskKind::Denial,
        TaskKindName::Rejected => pb::TaskKind::Rejected,
        TaskKindName::Aging => pb::TaskKind::Aging,
        TaskKindName::NoResponse => pb::TaskKind::NoResponse,
        TaskKindName::Deadline => pb::TaskKind::Deadline,
        TaskKindName::FollowUp => pb::TaskKind::FollowUp,
        TaskKindName::Resubmission => pb::TaskKind::Resubmission,
    }
}

fn status_to_proto(s: &str) -> pb::TaskStatus {
    match s {
        "unassigned" => pb::TaskStatus::Unassigned,
        "assigned" => pb::TaskStatus::Assigned,
        "in_progress" => pb::TaskStatus::InProgress,
        "completed" => pb::TaskStatus::Completed,
        _ => pb::TaskStatus::Unspecified,
    }
}

const OUTCOMES: [(pb::TaskOutcome, &str); 6] = [
    (pb::TaskOutcome::Paid, "paid"),
    (pb::TaskOutcome::Appealed, "appealed"),
    (
        pb::TaskOutcome::CorrectedAndResubmitted,
        "corrected_and_resubmitted",
    ),
    (pb::TaskOutcome::WrittenOff, "written_off"),
    (pb::TaskOutcome::PatientBilled, "patient_billed"),
    (pb::TaskOutcome::Other, "other"),
];

fn task_to_proto(t: &store::Task) -> pb::Task {
    let outcome = t
        .outcome
        .as_deref()
        .and_then(|o| OUTCOMES.iter().find(|(_, n)| *n == o))
        .map_or(pb::TaskOutcome::Unspecified, |(p, _)| *p);
    pb::Task {
        id: t.id.clone(),
        claim_id: t.claim_id.clone(),
        clinic_id: t.clinic_id.clone(),
        payer_id: t.payer_id.clone(),
        kind: kind_to_proto(t.kind) as i32,
        status: status_to_proto(&t.status) as i32,
        detail: t.detail.clone(),
        specialist_id: t.specialist_id.clone().unwrap_or_default(),
        priority: i32::try_from(t.priority).unwrap_or(i32::MAX),
        priority_reasons: t
            .reasons
            .iter()
            .map(|r| pb::PriorityReason {
                factor: r.factor.clone(),
                points: r.points,
                why: r.why.clone(),
            })
            .collect(),
        balance_cents: t.balance_cents,
        denial_category: t.denial_category.clone(),
        denial_resolution: t.denial_resolution.clone(),
        denial_owner: t.denial_owner.clone(),
        appealable: t.appealable,
        denied_amount_cents: t.denied_amount_cents,
        denial_id: t.denial_id.clone(),
        deadline: t.deadline.map(date_msg),
        notes: t.notes.clone(),
        snooze_until: t.snooze_until.map(ts),
        due_time: Some(ts(t.due_at)),
        outcome: outcome as i32,
        create_time: Some(ts(t.created_at)),
        update_time: Some(ts(t.updated_at)),
    }
}

const CHANNELS: [(pb::FollowUpChannel, &str); 5] = [
    (pb::FollowUpChannel::Phone, "phone"),
    (pb::FollowUpChannel::Portal, "portal"),
    (pb::FollowUpChannel::Edi276277, "edi_276_277"),
    (pb::FollowUpChannel::Fax, "fax"),
    (pb::FollowUpChannel::Mail, "mail"),
];

const ANSWERS: [(pb::FollowUpAnswer, &str); 5] = [
    (pb::FollowUpAnswer::InProcess, "in_process"),
    (pb::FollowUpAnswer::Paid, "paid"),
    (pb::FollowUpAnswer::Denied, "denied"),
    (pb::FollowUpAnswer::MoreInfoNeeded, "more_info_needed"),
    (pb::FollowUpAnswer::NoRecord, "no_record"),
];

fn follow_up_to_proto(f: &store::FollowUp) -> pb::FollowUp {
    let channel = CHANNELS
        .iter()
        .find(|(_, n)| *n == f.channel)
        .map_or(pb::FollowUpChannel::Unspecified, |(p, _)| *p);
    let answer = ANSWERS
        .iter()
        .find(|(_, n)| *n == f.answer)
        .map_or(pb::FollowUpAnswer::Unspecified, |(p, _)| *p);
    pb::FollowUp {
        id: f.id.clone(),
        claim_id: f.claim_id.clone(),
        task_id: f.task_id.clone().unwrap_or_default(),
        specialist_id: f.specialist_id.clone().unwrap_or_default(),
        channel: channel as i32,
        payer_reference: f.payer_reference.clone(),
        representative: f.representative.clone(),
        answer: answer as i32,
        paid_date: f.paid_date.map(date_msg),
        check_number: f.check_number.clone(),
        denial_reason: f.denial_reason.clone(),
        notes: f.notes.clone(),
        next_follow_up_date: f.next_follow_up_date.map(date_msg),
        contact_time: Some(ts(f.contacted_at)),
    }
}

fn text(v: &mut Violations, field: &str, s: &str, max: usize) -> String {
    if s.len() > max {
        v.push((field.to_string(), format!("at most {max} characters")));
    }
    s.trim().to_string()
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchQueuesResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AssignmentService for AssignmentApi {
    async fn create_specialist(
        &self,
        request: Request<pb::CreateSpecialistRequest>,
    ) -> Result<Response<pb::CreateSpecialistResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(MANAGERS)?;
        let s = request.into_inner().specialist.unwrap_or_default();
        let fields = apply_specialist(SpecialistFields::default(), &s, None)?;
        let created =
            store::create_specialist(&self.db, &tenant(&principal), &fields, self.clock.now())
                .await
                .map_err(to_status)?;
        let mut response = Response::new(pb::CreateSpecialistResponse {
            specialist: Some(specialist_to_proto(&created)),
        });
        audit_objects(&mut response, [created.id]);
        Ok(response)
    }

    async fn get_specialist(
        &self,
        request: Request<pb::GetSpecialistRequest>,
    ) -> Result<Response<pb::GetSpecialistResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(MANAGERS)?;
        let id = request.into_inner().specialist_id;
        let s = store::get_specialist(&self.db, &tenant(&principal), &id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::GetSpecialistResponse {
            specialist: Some(specialist_to_proto(&s)),
        }))
    }

    async fn list_specialists(
        &self,
        request: Request<pb::ListSpecialistsRequest>,
    ) -> Result<Response<pb::ListSpecialistsResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(MANAGERS)?;
        let r = request.into_inner();
        let limit = page_size(r.page_size)?;
        let page = store::list_specialists(&self.db, &tenant(&principal), &r.page_token, limit)
            .await
            .map_err(to_status)?;
        let next_page_token = if page.len() as i64 == limit {
            page.last().map(|s| s.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListSpecialistsResponse {
            specialists: page.iter().map(specialist_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_specialist(
        &self,
        request: Request<pb::UpdateSpecialistRequest>,
    ) -> Result<Response<pb::UpdateSpecialistResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(MANAGERS)?;
        let r = request.into_inner();
        let s = r.specialist.unwrap_or_default();
        if s.id.trim().is_empty() {
            return Err(invalid_argument(
                "the request is not valid",
                [("specialist.id".to_string(), "required".to_string())],
            ));
        }
        let tenant = tenant(&principal);
        let current = store::get_specialist(&self.db, &tenant, &s.id)
            .await
            .map_err(to_status)?;
        let paths = r.update_mask.map(|m| m.paths);
        let fields = apply_specialist(current.fields, &s, paths.as_deref())?;
        let (updated, moved) =
            store::update_specialist(&self.db, &tenant, &s.id, &fields, self.clock.now())
                .await
                .map_err(to_status)?;
        let mut response = Response::new(pb::UpdateSpecialistResponse {
            specialist: Some(specialist_to_proto(&updated)),
            tasks_moved: i32::try_from(moved).unwrap_or(i32::MAX),
        });
        audit_objects(&mut response, [updated.id]);
        Ok(response)
    }

    async fn delete_specialist(
        &self,
        request: Request<pb::DeleteSpecialistRequest>,
    ) -> Result<Response<pb::DeleteSpecialistResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(MANAGERS)?;
        let id = request.into_inner().specialist_id;
        let moved = store::delete_specialist(&self.db, &tenant(&principal), &id, self.clock.now())
            .await
            .map_err(to_status)?;
        let mut response = Response::new(pb::DeleteSpecialistResponse {
            tasks_moved: i32::try_from(moved).unwrap_or(i32::MAX),
        });
        audit_objects(&mut response, [id]);
        Ok(response)
    }

    async fn list_my_tasks(
        &self,
        request: Request<pb::ListMyTasksRequest>,
    ) -> Result<Response<pb::ListMyTasksResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(WORKERS)?;
        let r = request.into_inner();
        let me = self
            .acting_specialist(&principal, &r.specialist_id, "specialist_id")
            .await?;
        let offset: i64 = if r.page_token.is_empty() {
            0
        } else {
            r.page_token.parse().map_err(|_| {
                invalid_argument(
                    "the request is not valid",
                    [(
                        "page_token".to_string(),
                        "not a token this service issued".to_string(),
                    )],
                )
            })?
        };
        let limit = page_size(r.page_size)?;
        let tasks = store::list_tasks_of(
            &self.db,
            &tenant(&principal),
            &me.id,
            r.include_snoozed,
            self.clock.now(),
            offset,
            limit,
        )
        .await
        .map_err(to_status)?;
        let next_page_token = if tasks.len() as i64 == limit {
            (offset + limit).to_string()
        } else {
            String::new()
        };
        let tasks: Vec<pb::Task> = tasks
            .iter()
            .filter(|t| principal.can_access_clinic(&t.clinic_id))
            .map(task_to_proto)
            .collect();
        let mut response = Response::new(pb::ListMyTasksResponse {
            next_page_token,
            tasks,
        });
        let ids: Vec<String> = response
            .get_ref()
            .tasks
            .iter()
            .map(|t| t.claim_id.clone())
            .collect();
        audit_objects(&mut response, ids);
        Ok(response)
    }

    async fn get_task(
        &self,
        request: Request<pb::GetTaskRequest>,
    ) -> Result<Response<pb::GetTaskResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(WORKERS)?;
        let id = request.into_inner().task_id;
        let task = self.visible_task(&principal, &id).await?;
        let mut response = Response::new(pb::GetTaskResponse {
            task: Some(task_to_proto(&task)),
        });
        audit_objects(&mut response, [task.id, task.claim_id]);
        Ok(response)
    }

    async fn claim_next_task(
        &self,
        request: Request<pb::ClaimNextTaskRequest>,
    ) -> Result<Response<pb::ClaimNextTaskResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(WORKERS)?;
        let r = request.into_inner();
        let me = self
            .acting_specialist(&principal, &r.specialist_id, "specialist_id")
            .await?;
        if !me.available() {
            return Err(failed_precondition(
                "the specialist is inactive or out of office",
            ));
        }
        let task = store::claim_next(&self.db, &tenant(&principal), &me, self.clock.now())
            .await
            .map_err(to_status)?;
        let ids: Vec<String> = task
            .iter()
            .flat_map(|t| [t.id.clone(), t.claim_id.clone()])
            .collect();
        let mut response = Response::new(pb::ClaimNextTaskResponse {
            task: task.as_ref().map(task_to_proto),
        });
        audit_objects(&mut response, ids);
        Ok(response)
    }

    async fn update_task(
        &self,
        request: Request<pb::UpdateTaskRequest>,
    ) -> Result<Response<pb::UpdateTaskResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(WORKERS)?;
        let r = request.into_inner();
        let task = self.visible_task(&principal, &r.task_id).await?;
        let mut v = Violations::new();
        let paths = r
            .update_mask
            .map(|m| m.paths)
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| vec!["notes".into(), "snooze_until".into()]);
        let mut notes = None;
        let mut snooze = None;
        for (i, path) in paths.iter().enumerate() {
            match path.as_str() {
                "notes" => notes = Some(text(&mut v, "notes", &r.notes, MAX_TEXT)),
                "snooze_until" => {
                    snooze = Some(match &r.snooze_until {
                        None => None,
                        Some(t) => {
                            let at = from_ts(t);
                            if at.is_none() {
                                v.push(("snooze_until".into(), "not a valid instant".into()));
                            }
                            at
                        }
                    })
                }
                _ => v.push((
                    format!("update_mask.paths[{i}]"),
                    "not a field that can be changed".into(),
                )),
            }
        }
        bad(v)?;
        let updated = store::update_task(
            &self.db,
            &tenant(&principal),
            &task.id,
            notes.as_deref(),
            snooze,
            self.clock.now(),
        )
        .await
        .map_err(to_status)?;
        let mut response = Response::new(pb::UpdateTaskResponse {
            task: Some(task_to_proto(&updated)),
        });
        audit_objects(&mut response, [updated.id, updated.claim_id]);
        Ok(response)
    }

    async fn complete_task(
        &self,
        request: Request<pb::CompleteTaskRequest>,
    ) -> Result<Response<pb::CompleteTaskResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(WORKERS)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        let outcome = OUTCOMES
            .iter()
            .find(|(p, _)| *p as i32 == r.outcome)
            .map(|(_, n)| *n);
        if outcome.is_none() {
            v.push(("outcome".into(), "required: what came of the work".into()));
        }
        let notes = text(&mut v, "notes", &r.notes, MAX_TEXT);
        bad(v)?;
        let task = self.visible_task(&principal, &r.task_id).await?;
        let done = store::complete_task(
            &self.db,
            &tenant(&principal),
            &task.id,
            outcome.unwrap_or("other"),
            &notes,
            self.clock.now(),
        )
        .await
        .map_err(to_status)?;
        let mut response = Response::new(pb::CompleteTaskResponse {
            task: Some(task_to_proto(&done)),
        });
        audit_objects(&mut response, [done.id, done.claim_id]);
        Ok(response)
    }

    async fn log_follow_up(
        &self,
        request: Request<pb::LogFollowUpRequest>,
    ) -> Result<Response<pb::LogFollowUpResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(WORKERS)?;
        let r = request.into_inner();
        let f = r.follow_up.unwrap_or_default();
        let mut v = Violations::new();
        if f.claim_id.trim().is_empty() {
            v.push(("follow_up.claim_id".into(), "required".into()));
        }
        let channel = CHANNELS
            .iter()
            .find(|(p, _)| *p as i32 == f.channel)
            .map(|(_, n)| n.to_string());
        if channel.is_none() {
            v.push((
                "follow_up.channel".into(),
                "required: how the payer was reached".into(),
            ));
        }
        let answer = ANSWERS
            .iter()
            .find(|(p, _)| *p as i32 == f.answer)
            .map(|(_, n)| n.to_string());
        if answer.is_none() {
            v.push((
                "follow_up.answer".into(),
                "required: what the payer said".into(),
            ));
        }
        let paid_date = f.paid_date.as_ref().and_then(date_from_msg);
        if f.paid_date.is_some() && paid_date.is_none() {
            v.push(("follow_up.paid_date".into(), "not a valid date".into()));
        }
        if answer.as_deref() == Some("paid") {
            if paid_date.is_none() {
                v.push((
                    "follow_up.paid_date".into(),
                    "required when the payer says paid".into(),
                ));
            }
            if f.check_number.trim().is_empty() {
                v.push((
                    "follow_up.check_number".into(),
                    "required when the payer says paid (check or EFT number)".into(),
                ));
            }
        }
        if answer.as_deref() == Some("denied") && f.denial_reason.trim().is_empty() {
            v.push((
                "follow_up.denial_reason".into(),
                "required when the payer says denied".into(),
            ));
        }
        let next = f.next_follow_up_date.as_ref().and_then(date_from_msg);
        if f.next_follow_up_date.is_some() && next.is_none() {
            v.push((
                "follow_up.next_follow_up_date".into(),
                "not a valid date".into(),
            ));
        }
        if let Some(n) = next
            && n < self.clock.today()
        {
            v.push((
                "follow_up.next_follow_up_date".into(),
                "must not be in the past".into(),
            ));
        }
        if !f.task_id.is_empty() {
            check_uuid(&mut v, "follow_up.task_id", &f.task_id);
        }
        let payer_reference = text(&mut v, "follow_up.payer_reference", &f.payer_reference, 100);
        let representative = text(&mut v, "follow_up.representative", &f.representative, 200);
        let check_number = text(&mut v, "follow_up.check_number", &f.check_number, 100);
        let denial_reason = text(
            &mut v,
            "follow_up.denial_reason",
            &f.denial_reason,
            MAX_TEXT,
        );
        let notes = text(&mut v, "follow_up.notes", &f.notes, MAX_TEXT);
        bad(v)?;
        let tenant = tenant(&principal);
        let specialist = if principal.role == Role::Specialist || !r.specialist_id.is_empty() {
            Some(
                self.acting_specialist(&principal, &r.specialist_id, "specialist_id")
                    .await?
                    .id,
            )
        } else {
            None
        };
        if !f.task_id.is_empty() {
            let task = self.visible_task(&principal, &f.task_id).await?;
            if task.claim_id != f.claim_id {
                return Err(invalid_argument(
                    "the request is not valid",
                    [(
                        "follow_up.task_id".to_string(),
                        "is a task of another claim".to_string(),
                    )],
                ));
            }
        }
        let entry = store::FollowUp {
            claim_id: f.claim_id.trim().to_string(),
            task_id: (!f.task_id.is_empty()).then(|| f.task_id.clone()),
            specialist_id: specialist,
            channel: channel.unwrap_or_default(),
            payer_reference,
            representative,
            answer: answer.unwrap_or_default(),
            paid_date,
            check_number,
            denial_reason,
            notes,
            next_follow_up_date: next,
            ..Default::default()
        };
        let (stored, raised) = store::log_follow_up(&self.db, &tenant, &entry, self.clock.now())
            .await
            .map_err(to_status)?;
        let mut response = Response::new(pb::LogFollowUpResponse {
            follow_up: Some(follow_up_to_proto(&stored)),
            raised_task_id: raised.map(|t| t.id).unwrap_or_default(),
        });
        audit_objects(&mut response, [stored.claim_id]);
        Ok(response)
    }

    async fn list_follow_ups(
        &self,
        request: Request<pb::ListFollowUpsRequest>,
    ) -> Result<Response<pb::ListFollowUpsResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(WORKERS)?;
        let claim_id = request.into_inner().claim_id;
        if claim_id.trim().is_empty() {
            return Err(invalid_argument(
                "the request is not valid",
                [("claim_id".to_string(), "required".to_string())],
            ));
        }
        let tenant = tenant(&principal);
        // Clinic scope: a key limited to clinics sees the log only of claims it can see.
        if !principal.clinic_ids.is_empty() {
            let mut conn = self.db.pool().acquire().await.map_err(internal)?;
            let view = store::claim_view(&mut conn, &tenant, &claim_id)
                .await
                .map_err(to_status)?;
            if !view.is_some_and(|v| principal.can_access_clinic(&v.clinic_id)) {
                return Err(not_found("claim"));
            }
        }
        let log = store::list_follow_ups(&self.db, &tenant, &claim_id)
            .await
            .map_err(to_status)?;
        let mut response = Response::new(pb::ListFollowUpsResponse {
            follow_ups: log.iter().map(follow_up_to_proto).collect(),
        });
        audit_objects(&mut response, [claim_id]);
        Ok(response)
    }

    async fn get_queue_stats(
        &self,
        request: Request<pb::GetQueueStatsRequest>,
    ) -> Result<Response<pb::GetQueueStatsResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(MANAGERS)?;
        let open = store::open_tasks(&self.db, &tenant(&principal))
            .await
            .map_err(to_status)?;
        let now = self.clock.now();
        let visible = open
            .into_iter()
            .filter(|(t, _)| principal.can_access_clinic(&t.clinic_id));
        Ok(Response::new(queue_stats(visible, now)))
    }

    async fn reassign_task(
        &self,
        request: Request<pb::ReassignTaskRequest>,
    ) -> Result<Response<pb::ReassignTaskResponse>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(MANAGERS)?;
        let r = request.into_inner();
        let task = self.visible_task(&principal, &r.task_id).await?;
        let to = (!r.specialist_id.is_empty()).then_some(r.specialist_id.as_str());
        let moved = store::reassign(
            &self.db,
            &tenant(&principal),
            &task.id,
            to,
            r.force,
            self.clock.now(),
        )
        .await
        .map_err(to_status)?;
        let mut response = Response::new(pb::ReassignTaskResponse {
            task: Some(task_to_proto(&moved)),
        });
        audit_objects(&mut response, [moved.id, moved.claim_id]);
        Ok(response)
    }

    type WatchQueuesStream = WatchStream;

    async fn watch_queues(
        &self,
        request: Request<pb::WatchQueuesRequest>,
    ) -> Result<Response<Self::WatchQueuesStream>, Status> {
        let principal = auth::principal(&request)?;
        principal.require_role(MANAGERS)?;
        let r = request.into_inner();
        if r.after_sequence < 0 {
            return Err(invalid_argument(
                "the request is not valid",
                [(
                    "after_sequence".to_string(),
                    "must not be negative".to_string(),
                )],
            ));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let (db, poll, stop) = (self.db.clone(), self.watch_poll, self.stop.clone());
        let tenant = tenant(&principal);
        tokio::spawn(async move {
            let mut cursor = r.after_sequence;
            loop {
                let batch = match store::changes_after(&db, &tenant, cursor, 500).await {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = tx.send(Err(to_status(e))).await;
                        return;
                    }
                };
                let full = batch.len() == 500;
                for change in batch {
                    cursor = change.seq;
                    if !r.specialist_id.is_empty()
                        && change.specialist_id.as_deref() != Some(r.specialist_id.as_str())
                    {
                        continue;
                    }
                    let task = match store::get_task(&db, &tenant, &change.task_id).await {
                        Ok(t) => t,
                        Err(e) => {
                            let _ = tx.send(Err(to_status(e))).await;
                            return;
                        }
                    };
                    if !principal.can_access_clinic(&task.clinic_id) {
                        continue;
                    }
                    let item = pb::WatchQueuesResponse {
                        sequence: change.seq,
                        change: change.change,
                        task: Some(task_to_proto(&task)),
                        change_time: Some(ts(change.changed_at)),
                    };
                    if tx.send(Ok(item)).await.is_err() {
                        return; // the client went away
                    }
                }
                if full {
                    continue;
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tx.closed() => return,
                    () = tokio::time::sleep(poll) => {}
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

/// Age bucket of a claim, as AR aging reports use them (DESIGN §7).
fn age_bucket(days: Option<i64>) -> &'static str {
    match days {
        None => "",
        Some(d) if d <= 30 => "0-30",
        Some(d) if d <= 60 => "31-60",
        Some(d) if d <= 90 => "61-90",
        Some(d) if d <= 120 => "91-120",
        Some(_) => "120+",
    }
}

/// Counts open tasks by specialist, payer, clinic, kind and age bucket.
fn queue_stats(
    open: impl Iterator<Item = (store::Task, Option<NaiveDate>)>,
    now: DateTime<Utc>,
) -> pb::GetQueueStatsResponse {
    use std::collections::BTreeMap;
    type Groups = BTreeMap<String, pb::QueueCount>;
    fn bump(groups: &mut Groups, key: &str, t: &store::Task, breached: bool) {
        let c = groups
            .entry(key.to_string())
            .or_insert_with(|| pb::QueueCount {
                key: key.to_string(),
                ..Default::default()
            });
        count(c, t, breached);
    }
    fn count(c: &mut pb::QueueCount, t: &store::Task, breached: bool) {
        c.open += 1;
        if t.specialist_id.is_none() {
            c.unassigned += 1;
        }
        if breached {
            c.sla_breached += 1;
        }
        c.balance_cents += t.balance_cents;
    }
    let mut total = pb::QueueCount::default();
    let (mut by_s, mut by_p, mut by_c, mut by_k, mut by_a) = (
        Groups::new(),
        Groups::new(),
        Groups::new(),
        Groups::new(),
        Groups::new(),
    );
    let today = now.date_naive();
    for (t, basis) in open {
        let breached = t.due_at < now;
        count(&mut total, &t, breached);
        bump(
            &mut by_s,
            t.specialist_id.as_deref().unwrap_or(""),
            &t,
            breached,
        );
        bump(&mut by_p, &t.payer_id, &t, breached);
        bump(&mut by_c, &t.clinic_id, &t, breached);
        bump(&mut by_k, &store::kind_event_name(t.kind), &t, breached);
        bump(
            &mut by_a,
            age_bucket(basis.map(|b| (today - b).num_days())),
            &t,
            breached,
        );
    }
    pb::GetQueueStatsResponse {
        total: Some(total),
        by_specialist: by_s.into_values().collect(),
        by_payer: by_p.into_values().collect(),
        by_clinic: by_c.into_values().collect(),
        by_kind: by_k.into_values().collect(),
        by_age: by_a.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> pb::Specialist {
        pb::Specialist {
            display_name: "Dana".into(),
            payer_ids: vec!["P1".into()],
            clinic_ids: vec!["*".into()],
            capacity: 5,
            working_hours: Some(pb::WorkingHours {
                days: vec![1, 2, 3, 4, 5],
                start_time: "08:00".into(),
                end_time: "17:00".into(),
                time_zone: "America/Chicago".into(),
            }),
            active: true,
            ..Default::default()
        }
    }

    fn fields_of(status: Status) -> Vec<String> {
        use tonic_types::StatusExt as _;
        status
            .get_details_bad_request()
            .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_good_specialist_passes() {
        let f = apply_specialist(SpecialistFields::default(), &good(), None).expect("valid");
        assert_eq!(f.capacity, 5);
        assert_eq!(f.working_hours.time_zone, "America/Chicago");
    }

    #[test]
    fn bad_specialists_get_field_violations() {
        let s = pb::Specialist {
            display_name: " ".into(),
            payer_ids: vec![],
            capacity: 0,
            working_hours: Some(pb::WorkingHours {
                days: vec![0],
                start_time: "18:00".into(),
                end_time: "9am".into(),
                time_zone: "Central".into(),
            }),
            ..good()
        };
        let err = apply_specialist(SpecialistFields::default(), &s, None).expect_err("invalid");
        let fields = fields_of(err);
        for f in [
            "specialist.display_name",
            "specialist.payer_ids",
            "specialist.capacity",
            "specialist.working_hours.days[0]",
            "specialist.working_hours.end_time",
            "specialist.working_hours.time_zone",
        ] {
            assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
        }
    }

    #[test]
    fn masks_change_only_what_they_name() {
        let base = apply_specialist(SpecialistFields::default(), &good(), None).expect("valid");
        let change = pb::Specialist {
            capacity: 9,
            display_name: String::new(),
            ..good()
        };
        let f = apply_specialist(base.clone(), &change, Some(&["capacity".to_string()]))
            .expect("valid");
        assert_eq!((f.capacity, f.display_name.as_str()), (9, "Dana"));
        let err = apply_specialist(base, &change, Some(&["tenant_id".to_string()]))
            .expect_err("unknown path");
        assert_eq!(fields_of(err), ["update_mask.paths[0]"]);
    }

    #[test]
    fn zones_are_checked_by_shape() {
        for ok in [
            "UTC",
            "America/Chicago",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
        ] {
            assert!(looks_like_iana_zone(ok), "{ok}");
        }
        for bad in ["", "CST", "Mars/Olympus", "America/", "America/New York"] {
            assert!(!looks_like_iana_zone(bad), "{bad}");
        }
    }

    #[test]
    fn age_buckets() {
        assert_eq!(
            [Some(0), Some(31), Some(61), Some(91), Some(121), None].map(age_bucket),
            ["0-30", "31-60", "61-90", "91-120", "120+", ""]
        );
    }
}
