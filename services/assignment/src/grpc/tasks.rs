//! The task RPCs: ListMyTasks, GetTask, ClaimNextTask, UpdateTask, CompleteTask, ReassignTask.
use super::*;

/// The list ListMyTasks page tokens name (its cursor: the offset of the next page).
const MY_TASKS: &str = "my_tasks";

pub(super) async fn list_my_tasks(
    api: &AssignmentApi,
    request: Request<pb::ListMyTasksRequest>,
) -> Result<Response<pb::ListMyTasksResponse>, Status> {
    let principal = auth::principal(&request)?;
    principal.require_role(WORKERS)?;
    let r = request.into_inner();
    let me = api
        .acting_specialist(&principal, &r.specialist_id, "specialist_id")
        .await?;
    let offset: i64 = match PageToken::decode(&r.page_token, MY_TASKS) {
        Ok(None) => 0,
        Ok(Some(cursor)) => cursor
            .parse()
            .map_err(|_| invalid("page_token", "not a token from this method"))?,
        Err(v) => return Err(Error::invalid("the request is not valid", [v]).into()),
    };
    let limit = page_size(r.page_size)?;
    let tasks = store::list_tasks_of(
        &api.db,
        &tenant(&principal),
        &me.id,
        r.include_snoozed,
        api.clock.now(),
        offset,
        limit,
    )
    .await?;
    let next_page_token = if tasks.len() as i64 == limit {
        PageToken::encode(MY_TASKS, &(offset + limit).to_string())
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

pub(super) async fn get_task(
    api: &AssignmentApi,
    request: Request<pb::GetTaskRequest>,
) -> Result<Response<pb::GetTaskResponse>, Status> {
    let principal = auth::principal(&request)?;
    principal.require_role(WORKERS)?;
    let id = request.into_inner().task_id;
    let task = api.visible_task(&principal, &id).await?;
    let mut response = Response::new(pb::GetTaskResponse {
        task: Some(task_to_proto(&task)),
    });
    audit_objects(&mut response, [task.id, task.claim_id]);
    Ok(response)
}

pub(super) async fn claim_next_task(
    api: &AssignmentApi,
    request: Request<pb::ClaimNextTaskRequest>,
) -> Result<Response<pb::ClaimNextTaskResponse>, Status> {
    let principal = auth::principal(&request)?;
    principal.require_role(WORKERS)?;
    let r = request.into_inner();
    let me = api
        .acting_specialist(&principal, &r.specialist_id, "specialist_id")
        .await?;
    if !me.available() {
        return Err(Error::Conflict("the specialist is inactive or out of office".into()).into());
    }
    let task = store::claim_next(&api.db, &tenant(&principal), &me, api.clock.now()).await?;
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

pub(super) async fn update_task(
    api: &AssignmentApi,
    request: Request<pb::UpdateTaskRequest>,
) -> Result<Response<pb::UpdateTaskResponse>, Status> {
    let principal = auth::principal(&request)?;
    principal.require_role(WORKERS)?;
    let r = request.into_inner();
    let task = api.visible_task(&principal, &r.task_id).await?;
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
                        let at = wire::from_timestamp(t);
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
        &api.db,
        &tenant(&principal),
        &task.id,
        notes.as_deref(),
        snooze,
        api.clock.now(),
    )
    .await?;
    let mut response = Response::new(pb::UpdateTaskResponse {
        task: Some(task_to_proto(&updated)),
    });
    audit_objects(&mut response, [updated.id, updated.claim_id]);
    Ok(response)
}

pub(super) async fn complete_task(
    api: &AssignmentApi,
    request: Request<pb::CompleteTaskRequest>,
) -> Result<Response<pb::CompleteTaskResponse>, Status> {
    let principal = auth::principal(&request)?;
    principal.require_role(WORKERS)?;
    let r = request.into_inner();
    let mut v = Violations::new();
    let outcome = outcome_from_proto(r.outcome);
    if outcome.is_none() {
        v.push(("outcome".into(), "required: what came of the work".into()));
    }
    let notes = text(&mut v, "notes", &r.notes, MAX_TEXT);
    bad(v)?;
    let task = api.visible_task(&principal, &r.task_id).await?;
    let done = store::complete_task(
        &api.db,
        &tenant(&principal),
        &task.id,
        outcome.unwrap_or("other"),
        &notes,
        api.clock.now(),
    )
    .await?;
    let mut response = Response::new(pb::CompleteTaskResponse {
        task: Some(task_to_proto(&done)),
    });
    audit_objects(&mut response, [done.id, done.claim_id]);
    Ok(response)
}

pub(super) async fn reassign_task(
    api: &AssignmentApi,
    request: Request<pb::ReassignTaskRequest>,
) -> Result<Response<pb::ReassignTaskResponse>, Status> {
    let principal = auth::principal(&request)?;
    principal.require_role(MANAGERS)?;
    let r = request.into_inner();
    let task = api.visible_task(&principal, &r.task_id).await?;
    let to = (!r.specialist_id.is_empty()).then_some(r.specialist_id.as_str());
    let moved = store::reassign(
        &api.db,
        &tenant(&principal),
        &task.id,
        to,
        r.force,
        api.clock.now(),
    )
    .await?;
    let mut response = Response::new(pb::ReassignTaskResponse {
        task: Some(task_to_proto(&moved)),
    });
    audit_objects(&mut response, [moved.id, moved.claim_id]);
    Ok(response)
}
