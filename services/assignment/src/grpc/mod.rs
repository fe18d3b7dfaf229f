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
//!
//! Errors are the service's [`Error`], turned into a status in one place
//! (`From<Error> for Status`). By resource:
//! - `specialists`: specialists CRUD and the checks of a specialist's fields;
//! - `tasks`: ListMyTasks, GetTask, ClaimNextTask, UpdateTask, CompleteTask, ReassignTask;
//! - `queues`: GetQueueStats and the WatchQueues stream;
//! - `follow_ups`: LogFollowUp, ListFollowUps;
//! - `convert`: store <-> proto (the one task kind and outcome conversion included).
mod convert;
mod follow_ups;
mod queues;
mod specialists;
mod tasks;

use std::time::Duration;

use arflow_api::assignment::v1 as pb;
use arflow_api::assignment::v1::assignment_service_server::AssignmentService;
use arflow_api::wire;
use arflow_platform::auth::{self, Principal, Role};
use arflow_platform::grpc::{self, PageToken, audit_objects};
use arflow_platform::{Clock, Db};
use chrono::{DateTime, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::hours::WorkingHours;
use crate::store::{self, SpecialistFields, TenantId};
use arflow_domain::priority::TaskKindName;
use convert::*;
pub use convert::{outcome_name, task_kind_name};

const MANAGERS: &[Role] = &[Role::Admin, Role::Supervisor];
const WORKERS: &[Role] = &[Role::Admin, Role::Supervisor, Role::Specialist];
const MAX_CAPACITY: i32 = 10_000;
const MAX_TEXT: usize = 4_000;

#[derive(Clone)]
pub struct AssignmentApi {
    db: Db,
    clock: Clock,
    watch_poll: Duration,
    /// What CreateSpecialist gives a specialist created without working hours.
    business_hours: WorkingHours,
    /// Cancelled when the service's `run` ends: open WatchQueues streams stop.
    stop: CancellationToken,
}

impl AssignmentApi {
    pub(crate) fn new(db: Db, clock: Clock, settings: &crate::Settings) -> AssignmentApi {
        AssignmentApi {
            db,
            clock,
            watch_poll: settings.watch_poll_interval(),
            business_hours: settings.business_hours.clone(),
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
    ) -> Result<store::Specialist, Error> {
        let tenant = tenant(principal);
        if principal.role == Role::Specialist {
            return store::specialist_by_key(&self.db, &tenant, &principal.key_id)
                .await
                .map_err(|e| match e {
                    Error::NotFound(_) => Error::Conflict(
                        "this API key is not linked to a specialist (Specialist.key_id)".into(),
                    ),
                    other => other,
                });
        }
        if named.trim().is_empty() {
            return Err(Error::invalid(
                "name the specialist to act for",
                [(
                    field.to_string(),
                    "required for supervisors and admins".to_string(),
                )],
            ));
        }
        store::get_specialist(&self.db, &tenant, named).await
    }

    /// A task the principal may see (tenant, clinic scope, own task for specialists).
    async fn visible_task(
        &self,
        principal: &Principal,
        task_id: &str,
    ) -> Result<store::Task, Error> {
        let tenant = tenant(principal);
        let task = store::get_task(&self.db, &tenant, task_id).await?;
        if !principal.can_access_clinic(&task.clinic_id) {
            return Err(Error::NotFound("task"));
        }
        if principal.role == Role::Specialist {
            let me = self.acting_specialist(principal, "", "").await?;
            if task.specialist_id.as_deref() != Some(me.id.as_str()) {
                return Err(Error::NotFound("task"));
            }
        }
        Ok(task)
    }
}

fn tenant(p: &Principal) -> TenantId {
    TenantId::new(p.tenant_id.clone())
}

/// The page size asked for, as every list call reads it ([`grpc::page_size`]).
fn page_size(requested: i32) -> Result<i64, Error> {
    let n = grpc::page_size(requested)
        .map_err(|v| Error::invalid("page_size must not be negative", [v]))?;
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

type Violations = Vec<(String, String)>;

fn check_uuid(v: &mut Violations, field: &str, value: &str) {
    if uuid::Uuid::parse_str(value).is_err() {
        v.push((field.to_string(), "must be a UUID".to_string()));
    }
}

fn bad(v: Violations) -> Result<(), Error> {
    if v.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid("the request is not valid", v))
    }
}

/// INVALID_ARGUMENT for one field.
fn invalid(field: &str, description: &str) -> Error {
    Error::invalid(
        "the request is not valid",
        [(field.to_string(), description.to_string())],
    )
}

fn text(v: &mut Violations, field: &str, s: &str, max: usize) -> String {
    if s.len() > max {
        v.push((field.to_string(), format!("at most {max} characters")));
    }
    s.trim().to_string()
}

#[tonic::async_trait]
impl AssignmentService for AssignmentApi {
    async fn create_specialist(
        &self,
        request: Request<pb::CreateSpecialistRequest>,
    ) -> Result<Response<pb::CreateSpecialistResponse>, Status> {
        specialists::create_specialist(self, request).await
    }

    async fn get_specialist(
        &self,
        request: Request<pb::GetSpecialistRequest>,
    ) -> Result<Response<pb::GetSpecialistResponse>, Status> {
        specialists::get_specialist(self, request).await
    }

    async fn list_specialists(
        &self,
        request: Request<pb::ListSpecialistsRequest>,
    ) -> Result<Response<pb::ListSpecialistsResponse>, Status> {
        specialists::list_specialists(self, request).await
    }

    async fn update_specialist(
        &self,
        request: Request<pb::UpdateSpecialistRequest>,
    ) -> Result<Response<pb::UpdateSpecialistResponse>, Status> {
        specialists::update_specialist(self, request).await
    }

    async fn delete_specialist(
        &self,
        request: Request<pb::DeleteSpecialistRequest>,
    ) -> Result<Response<pb::DeleteSpecialistResponse>, Status> {
        specialists::delete_specialist(self, request).await
    }

    async fn list_my_tasks(
        &self,
        request: Request<pb::ListMyTasksRequest>,
    ) -> Result<Response<pb::ListMyTasksResponse>, Status> {
        tasks::list_my_tasks(self, request).await
    }

    async fn get_task(
        &self,
        request: Request<pb::GetTaskRequest>,
    ) -> Result<Response<pb::GetTaskResponse>, Status> {
        tasks::get_task(self, request).await
    }

    async fn claim_next_task(
        &self,
        request: Request<pb::ClaimNextTaskRequest>,
    ) -> Result<Response<pb::ClaimNextTaskResponse>, Status> {
        tasks::claim_next_task(self, request).await
    }

    async fn update_task(
        &self,
        request: Request<pb::UpdateTaskRequest>,
    ) -> Result<Response<pb::UpdateTaskResponse>, Status> {
        tasks::update_task(self, request).await
    }

    async fn complete_task(
        &self,
        request: Request<pb::CompleteTaskRequest>,
    ) -> Result<Response<pb::CompleteTaskResponse>, Status> {
        tasks::complete_task(self, request).await
    }

    async fn reassign_task(
        &self,
        request: Request<pb::ReassignTaskRequest>,
    ) -> Result<Response<pb::ReassignTaskResponse>, Status> {
        tasks::reassign_task(self, request).await
    }

    async fn log_follow_up(
        &self,
        request: Request<pb::LogFollowUpRequest>,
    ) -> Result<Response<pb::LogFollowUpResponse>, Status> {
        follow_ups::log_follow_up(self, request).await
    }

    async fn list_follow_ups(
        &self,
        request: Request<pb::ListFollowUpsRequest>,
    ) -> Result<Response<pb::ListFollowUpsResponse>, Status> {
        follow_ups::list_follow_ups(self, request).await
    }

    async fn get_queue_stats(
        &self,
        request: Request<pb::GetQueueStatsRequest>,
    ) -> Result<Response<pb::GetQueueStatsResponse>, Status> {
        queues::get_queue_stats(self, request).await
    }

    type WatchQueuesStream = queues::WatchStream;

    async fn watch_queues(
        &self,
        request: Request<pb::WatchQueuesRequest>,
    ) -> Result<Response<Self::WatchQueuesStream>, Status> {
        queues::watch_queues(self, request).await
    }
}
