//! The assignment RPCs through a real server on port 0 with generated clients.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]
mod common;

use arflow_api::assignment::v1 as pb;
use arflow_api::wire;
use arflow_platform::auth::Role;
use arflow_platform::bus;
use arflow_testkit::eventually;
use common::*;
use tonic::Code;

/// The RPCs through the real server: validation, tenancy, a specialist's own queue,
/// ClaimNextTask, UpdateTask, CompleteTask, the follow-up log, stats, reassign, out of office
/// and WatchQueues resuming from a cursor.
#[tokio::test]
async fn rpcs_through_the_server() {
    let env = Env::postgres(1).await;
    let (_, boss) = env.key(TENANT, Role::Supervisor).await;
    let (_, stranger) = env.key("globex", Role::Supervisor).await;
    let (ann_key_id, ann_key) = env.key(TENANT, Role::Specialist).await;
    let (_, unlinked) = env.key(TENANT, Role::Specialist).await;
    let mut client = env.client().await;

    // Field violations name the proto paths.
    let bad = client
        .create_specialist(with_key(
            pb::CreateSpecialistRequest {
                specialist: Some(pb::Specialist {
                    capacity: 0,
                    payer_ids: vec![],
                    ..specialist("", &[], &["C1"], 0)
                }),
            },
            &boss,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields = violated_fields(&bad);
    for f in [
        "specialist.display_name",
        "specialist.payer_ids",
        "specialist.capacity",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
    }
    // Specialists may not manage specialists.
    let denied_call = client
        .create_specialist(with_key(
            pb::CreateSpecialistRequest {
                specialist: Some(specialist("X", &["P1"], &["*"], 1)),
            },
            &ann_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied_call.code(), Code::PermissionDenied);

    let ann = create(
        &mut client,
        &boss,
        pb::Specialist {
            key_id: ann_key_id.clone(),
            ..specialist("Ann", &["P1"], &["*"], 10)
        },
    )
    .await;
    let bob = create(&mut client, &boss, specialist("Bob", &["P1"], &["*"], 10)).await;
    // Another tenant's specialist answers NOT_FOUND.
    let other = client
        .get_specialist(with_key(
            pb::GetSpecialistRequest {
                specialist_id: ann.id.clone(),
            },
            &stranger,
        ))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);

    // Three claims of P1: denial work for both specialists.
    let claims = ["r-1", "r-2", "r-3", "r-4"];
    let events: Vec<bus::Envelope> = claims.iter().map(|c| denied(c, "P1", "C1", 1)).collect();
    env.publish(&events).await;
    eventually(WAIT, || async {
        (env.count("SELECT COUNT(*) FROM asg_tasks WHERE status = 'assigned'")
            .await
            == 4)
            .then_some(())
    })
    .await
    .unwrap();

    // Ann's own key: her queue, ordered by priority.
    let mine = client
        .list_my_tasks(with_key(pb::ListMyTasksRequest::default(), &ann_key))
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|t| t.specialist_id == ann.id));
    assert!(mine[0].priority >= mine[1].priority);
    // An unlinked specialist key is told so.
    let e = client
        .list_my_tasks(with_key(pb::ListMyTasksRequest::default(), &unlinked))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // A supervisor must name whose queue.
    let e = client
        .list_my_tasks(with_key(pb::ListMyTasksRequest::default(), &boss))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // Bob's task is not Ann's to see.
    let bobs = tasks_of(&mut client, &boss, &bob.id).await;
    let e = client
        .get_task(with_key(
            pb::GetTaskRequest {
                task_id: bobs[0].id.clone(),
            },
            &ann_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Snooze the top task: ClaimNextTask pulls the other one.
    let snoozed = client
        .update_task(with_key(
            pb::UpdateTaskRequest {
                task_id: mine[0].id.clone(),
                notes: "called, waiting for the auth team".into(),
                snooze_until: Some(prost_types::Timestamp {
                    seconds: chrono::Utc::now().timestamp() + 86_400,
                    nanos: 0,
                }),
                update_mask: None,
            },
            &ann_key,
        ))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(snoozed.notes, "called, waiting for the auth team");
    let pulled = client
        .claim_next_task(with_key(pb::ClaimNextTaskRequest::default(), &ann_key))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(pulled.id, mine[1].id);
    assert_eq!(pulled.status, pb::TaskStatus::InProgress as i32);

    // The follow-up log: the payer has no record -> a resubmission task, and the next
    // follow-up date goes to the scheduler as FollowUpScheduled.
    let next = chrono::Utc::now().date_naive() + chrono::Days::new(14);
    let logged = client
        .log_follow_up(with_key(
            pb::LogFollowUpRequest {
                follow_up: Some(pb::FollowUp {
                    claim_id: pulled.claim_id.clone(),
                    task_id: pulled.id.clone(),
                    channel: pb::FollowUpChannel::Phone as i32,
                    payer_reference: "REF-123".into(),
                    representative: "Rep J.".into(),
                    answer: pb::FollowUpAnswer::NoRecord as i32,
                    next_follow_up_date: Some(wire::date_to_pb(next)),
                    ..Default::default()
                }),
                specialist_id: String::new(),
            },
            &ann_key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!logged.raised_task_id.is_empty());
    let raised = client
        .get_task(with_key(
            pb::GetTaskRequest {
                task_id: logged.raised_task_id.clone(),
            },
            &boss,
        ))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(raised.kind, pb::TaskKind::Resubmission as i32);
    assert_eq!(raised.specialist_id, ann.id, "sticky to who has the claim");
    assert_eq!(
        env.count("SELECT COALESCE(SUM(events), 0) FROM bus_outbox WHERE event_type = 'arflow.events.v1.FollowUpScheduled'")
            .await,
        1
    );
    // Paid answers need a date and a check number.
    let e = client
        .log_follow_up(with_key(
            pb::LogFollowUpRequest {
                follow_up: Some(pb::FollowUp {
                    claim_id: pulled.claim_id.clone(),
                    channel: pb::FollowUpChannel::Portal as i32,
                    answer: pb::FollowUpAnswer::Paid as i32,
                    ..Default::default()
                }),
                specialist_id: String::new(),
            },
            &ann_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    client
        .log_follow_up(with_key(
            pb::LogFollowUpRequest {
                follow_up: Some(pb::FollowUp {
                    claim_id: pulled.claim_id.clone(),
                    channel: pb::FollowUpChannel::Edi276277 as i32,
                    answer: pb::FollowUpAnswer::InProcess as i32,
                    ..Default::default()
                }),
                specialist_id: String::new(),
            },
            &ann_key,
        ))
        .await
        .unwrap();
    let log = client
        .list_follow_ups(with_key(
            pb::ListFollowUpsRequest {
                claim_id: pulled.claim_id.clone(),
            },
            &boss,
        ))
        .await
        .unwrap()
        .into_inner()
        .follow_ups;
    assert_eq!(
        log.iter().map(|f| f.answer).collect::<Vec<_>>(),
        [
            pb::FollowUpAnswer::NoRecord as i32,
            pb::FollowUpAnswer::InProcess as i32
        ]
    );
    assert_eq!(log[0].payer_reference, "REF-123");

    // Complete with an outcome.
    let done = client
        .complete_task(with_key(
            pb::CompleteTaskRequest {
                task_id: pulled.id.clone(),
                outcome: pb::TaskOutcome::CorrectedAndResubmitted as i32,
                notes: String::new(),
            },
            &ann_key,
        ))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(done.status, pb::TaskStatus::Completed as i32);
    let e = client
        .complete_task(with_key(
            pb::CompleteTaskRequest {
                task_id: pulled.id.clone(),
                outcome: pb::TaskOutcome::Unspecified as i32,
                notes: String::new(),
            },
            &ann_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Stats.
    let stats = client
        .get_queue_stats(with_key(pb::GetQueueStatsRequest {}, &boss))
        .await
        .unwrap()
        .into_inner();
    let total = stats.total.unwrap();
    assert_eq!(total.open, 4, "3 denials left + 1 resubmission");
    assert!(
        stats
            .by_kind
            .iter()
            .any(|k| k.key == "TASK_KIND_RESUBMISSION" && k.open == 1)
    );
    assert!(stats.by_payer.iter().any(|k| k.key == "P1" && k.open == 4));

    // Reassign one of Bob's tasks to Ann, then send Ann out of office: her tasks go to Bob.
    let moved = client
        .reassign_task(with_key(
            pb::ReassignTaskRequest {
                task_id: bobs[0].id.clone(),
                specialist_id: ann.id.clone(),
                force: false,
            },
            &boss,
        ))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(moved.specialist_id, ann.id);
    let away = client
        .update_specialist(with_key(
            pb::UpdateSpecialistRequest {
                specialist: Some(pb::Specialist {
                    id: ann.id.clone(),
                    out_of_office: true,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["out_of_office".into()],
                }),
            },
            &boss,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(away.tasks_moved, 3);
    assert_eq!(away.specialist.unwrap().open_tasks, 0);
    assert_eq!(tasks_of(&mut client, &boss, &bob.id).await.len(), 4);

    // WatchQueues: read some changes, reconnect from the last sequence, get the rest once.
    let all: Vec<pb::WatchQueuesResponse> = {
        let mut stream = client
            .watch_queues(with_key(pb::WatchQueuesRequest::default(), &boss))
            .await
            .unwrap()
            .into_inner();
        let expected = env.count("SELECT COUNT(*) FROM asg_task_changes").await as usize;
        let mut got = Vec::new();
        while got.len() < expected {
            got.push(stream.message().await.unwrap().unwrap());
        }
        got
    };
    let seqs: Vec<i64> = all.iter().map(|c| c.sequence).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let cut = seqs[seqs.len() / 2];
    let mut resumed = client
        .watch_queues(with_key(
            pb::WatchQueuesRequest {
                after_sequence: cut,
                specialist_id: String::new(),
            },
            &boss,
        ))
        .await
        .unwrap()
        .into_inner();
    let first = resumed.message().await.unwrap().unwrap();
    assert_eq!(first.sequence, cut + 1);
    // A live change arrives on the open stream.
    let last = *seqs.last().unwrap();
    client
        .update_task(with_key(
            pb::UpdateTaskRequest {
                task_id: moved.id.clone(),
                notes: "live".into(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["notes".into()],
                }),
                ..Default::default()
            },
            &boss,
        ))
        .await
        .unwrap();
    let live = loop {
        let m = resumed.message().await.unwrap().unwrap();
        if m.sequence > last {
            break m;
        }
    };
    assert_eq!(live.change, "updated");
    assert_eq!(live.task.unwrap().notes, "live");
    // Other tenants see nothing of this.
    let e = client
        .get_task(with_key(
            pb::GetTaskRequest {
                task_id: moved.id.clone(),
            },
            &stranger,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    drop(resumed);
    env.stop().await;
}

/// CreateSpecialist does not require working hours: a specialist created without them works
/// the business hours (`[assignment] business_hours`; by default Monday to Friday,
/// 09:00-17:00, America/New_York), as the answer and GetSpecialist show. An update that names
/// `working_hours` still has to give them.
#[tokio::test]
async fn a_specialist_created_without_working_hours_gets_business_hours() {
    let env = Env::sqlite().await;
    let (_, boss) = env.key(TENANT, Role::Supervisor).await;
    let mut client = env.client().await;
    let business = pb::WorkingHours {
        days: vec![1, 2, 3, 4, 5],
        start_time: "09:00".into(),
        end_time: "17:00".into(),
        time_zone: "America/New_York".into(),
    };
    let created = create(
        &mut client,
        &boss,
        pb::Specialist {
            working_hours: None,
            ..specialist("Cy", &["P1"], &["*"], 3)
        },
    )
    .await;
    assert_eq!(created.working_hours.as_ref(), Some(&business));
    let got = client
        .get_specialist(with_key(
            pb::GetSpecialistRequest {
                specialist_id: created.id.clone(),
            },
            &boss,
        ))
        .await
        .unwrap()
        .into_inner()
        .specialist
        .unwrap();
    assert_eq!(got.working_hours, Some(business));

    let cleared = client
        .update_specialist(with_key(
            pb::UpdateSpecialistRequest {
                specialist: Some(pb::Specialist {
                    id: created.id.clone(),
                    working_hours: None,
                    ..created.clone()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["working_hours".into()],
                }),
            },
            &boss,
        ))
        .await
        .unwrap_err();
    assert_eq!(cleared.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&cleared), ["specialist.working_hours"]);
    env.stop().await;
}
