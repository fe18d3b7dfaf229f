//! End-to-end: corrections and recoupments in AR follow-up (issue 10), through the gRPC API on
//! Postgres + Redis. A frequency-7 replacement takes over its original's open balance, tasks
//! and follow-up (the original is closed for AR, its timers cancelled); a frequency-8 void
//! closes its original, cancels its timers and never ages itself; money taken back from a
//! closed or written-off claim reopens it with a recoupment task.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use arflow_api::assignment::v1 as asg;
use arflow_api::claims::v1 as pb;
use arflow_api::scheduler::v1 as sch;
use arflow_testkit::{PgDatabase, RedisPrefix, eventually};
use common::{AssignmentClient, Server, claim, get_claim, new_claim, post_fixture_era};

type SchedulerClient = sch::scheduler_service_client::SchedulerServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        arflow::client::Auth,
    >,
>;

/// A test's server and clients: a partner posting claims, a supervisor reading tasks and
/// timers, one specialist covering the fixture claims' payer and clinic.
struct World {
    _server: Server,
    api: common::Client,
    tasks: AssignmentClient,
    timers: SchedulerClient,
    ana: String,
}

async fn world(pg: &PgDatabase, redis: &RedisPrefix) -> World {
    let server = Server::start(Server::env_for(pg, redis));
    let api = server.client(&server.key("acme", "partner", &[])).await;
    let supervisor = server.key("acme", "supervisor", &[]);
    let mut tasks = common::assignment_client(&server.grpc, &supervisor).await;
    let channel = tonic::transport::Channel::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let key: tonic::metadata::MetadataValue<_> = format!("Bearer {supervisor}").parse().unwrap();
    let timers = sch::scheduler_service_client::SchedulerServiceClient::with_interceptor(
        channel,
        arflow::client::Auth::new(Some(key)),
    );
    let ana = tasks
        .create_specialist(asg::CreateSpecialistRequest {
            specialist: Some(asg::Specialist {
                display_name: "Ana Torres".into(),
                payer_ids: vec!["87726".into()],
                clinic_ids: vec!["clinic-a".into()],
                capacity: 500,
                active: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .specialist
        .unwrap()
        .id;
    World {
        _server: server,
        api,
        tasks,
        timers,
        ana,
    }
}

async fn post(api: &mut common::Client, trace: &str, payment: &str, body: &[&str]) {
    post_fixture_era(api, trace, payment, body).await;
}

/// A whole-claim authorization denial (CLP02 = 4, CO-197) of the fixture claim `pcn`.
async fn deny(api: &mut common::Client, pcn: &str) {
    let clp = format!("CLP*{pcn}*4*205*0*0*12*ICN-{pcn}");
    post(
        api,
        &format!("DENY-{pcn}"),
        "0",
        &[
            &clp,
            "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789",
            "CAS*CO*197*205",
        ],
    )
    .await;
}

/// Ana's open tasks (one page is plenty here).
async fn open_tasks(w: &World) -> Vec<asg::Task> {
    w.tasks
        .clone()
        .list_my_tasks(asg::ListMyTasksRequest {
            page_size: 1000,
            specialist_id: w.ana.clone(),
            include_snoozed: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks
}

/// The timers about a claim in `state` (UNSPECIFIED: all).
async fn timers(w: &World, claim_id: &str, state: sch::TimerState) -> Vec<sch::Timer> {
    w.timers
        .clone()
        .list_timers(sch::ListTimersRequest {
            subject: claim_id.into(),
            state: state as i32,
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .timers
}

/// Waits for a denial task on the claim in Ana's queue and for the claim's pending timers.
async fn followed_up(w: &World, claim_id: &str) {
    eventually(Duration::from_secs(30), || async {
        let tasks = open_tasks(w).await;
        let denial = tasks
            .iter()
            .any(|t| t.claim_id == claim_id && t.kind == asg::TaskKind::Denial as i32);
        let pending = !timers(w, claim_id, sch::TimerState::Pending)
            .await
            .is_empty();
        (denial && pending).then_some(())
    })
    .await
    .expect("the denied claim has its denial task and its timers");
}

async fn correct(
    api: &mut common::Client,
    original: &pb::Claim,
    frequency: pb::ClaimFrequency,
    request_id: &str,
) -> pb::Claim {
    let mut c = claim("clinic-a", &original.external_id);
    c.frequency = frequency as i32;
    api.correct_claim(pb::CorrectClaimRequest {
        request_id: request_id.into(),
        original_claim_id: original.id.clone(),
        claim: Some(c),
    })
    .await
    .unwrap()
    .into_inner()
    .claim
    .unwrap()
}

async fn last_history(api: &mut common::Client, claim_id: &str) -> pb::ClaimHistoryEntry {
    api.get_claim_history(pb::GetClaimHistoryRequest {
        claim_id: claim_id.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .entries
    .pop()
    .unwrap()
}

async fn payer_balance(api: &mut common::Client) -> (i64, i64) {
    let t = api
        .summarize_balances(pb::SummarizeBalancesRequest::default())
        .await
        .unwrap()
        .into_inner();
    (t.payer_balance_cents, t.payer_balance_claim_count)
}

#[tokio::test]
async fn a_replacement_takes_over_the_originals_balance_tasks_and_follow_up() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let mut w = world(&pg, &redis).await;
    let original = new_claim(&mut w.api, "COR-7").await;
    deny(&mut w.api, "COR-7").await;
    followed_up(&w, &original.id).await;
    let denial_detail = open_tasks(&w)
        .await
        .into_iter()
        .find(|t| t.claim_id == original.id)
        .unwrap()
        .detail;

    let replacement = correct(
        &mut w.api,
        &original,
        pb::ClaimFrequency::Replacement,
        "fix-7",
    )
    .await;
    assert_eq!(replacement.status, pb::ClaimStatus::Submitted as i32);

    // The original is closed for AR, saying why; the replacement carries the balance alone.
    let closed = get_claim(&mut w.api, &original.id).await;
    assert_eq!(closed.status, pb::ClaimStatus::Closed as i32);
    let why = last_history(&mut w.api, &original.id).await;
    assert_eq!(
        (why.from_status, why.to_status),
        (
            pb::ClaimStatus::Denied as i32,
            pb::ClaimStatus::Closed as i32
        )
    );
    assert!(why.reason.contains(&replacement.id), "{why:?}");
    assert_eq!(
        payer_balance(&mut w.api).await,
        (20_500, 1),
        "the original's balance is not counted beside its replacement's"
    );

    // Its denial task moved to the replacement; its timers are cancelled; the replacement is
    // followed up.
    let tasks = eventually(Duration::from_secs(30), || async {
        let tasks = open_tasks(&w).await;
        let moved = tasks.iter().all(|t| t.claim_id != original.id)
            && tasks.iter().any(|t| t.claim_id == replacement.id);
        let timers_gone = timers(&w, &original.id, sch::TimerState::Pending)
            .await
            .is_empty();
        let followed = !timers(&w, &replacement.id, sch::TimerState::Pending)
            .await
            .is_empty();
        (moved && timers_gone && followed).then_some(tasks)
    })
    .await
    .expect("the replacement took over the original's tasks and follow-up");
    let taken: Vec<_> = tasks
        .iter()
        .filter(|t| t.claim_id == replacement.id)
        .map(|t| (t.kind, t.detail.as_str(), t.specialist_id.as_str()))
        .collect();
    assert_eq!(
        taken,
        vec![(
            asg::TaskKind::Denial as i32,
            denial_detail.as_str(),
            w.ana.as_str()
        )]
    );
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let cancelled = timers(&w, &original.id, sch::TimerState::Cancelled).await;
    assert!(
        cancelled.iter().any(|t| t.kind_name.starts_with("aging_")),
        "{cancelled:?}"
    );
}

#[tokio::test]
async fn a_void_closes_the_original_cancels_its_timers_and_never_ages() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let mut w = world(&pg, &redis).await;
    let original = new_claim(&mut w.api, "COR-8").await;
    deny(&mut w.api, "COR-8").await;
    followed_up(&w, &original.id).await;

    let void = correct(&mut w.api, &original, pb::ClaimFrequency::Void, "void-8").await;
    assert_eq!(void.frequency, pb::ClaimFrequency::Void as i32);

    let closed = get_claim(&mut w.api, &original.id).await;
    assert_eq!(closed.status, pb::ClaimStatus::Closed as i32);
    let why = last_history(&mut w.api, &original.id).await;
    assert_eq!(why.to_status, pb::ClaimStatus::Closed as i32);
    assert!(
        why.reason.contains("voided") && why.reason.contains(&void.id),
        "{why:?}"
    );
    assert_eq!(
        payer_balance(&mut w.api).await,
        (0, 0),
        "nothing is owed on a voided claim"
    );

    // The original's timers and tasks end. The void's ClaimSubmitted went out before the
    // original's closing (one transaction), so by then the void has been seen too.
    eventually(Duration::from_secs(30), || async {
        let no_tasks = open_tasks(&w).await.is_empty();
        let timers_gone = timers(&w, &original.id, sch::TimerState::Pending)
            .await
            .is_empty();
        (no_tasks && timers_gone).then_some(())
    })
    .await
    .expect("the voided original's tasks and timers end");
    let void_timers = timers(&w, &void.id, sch::TimerState::Unspecified).await;
    assert!(
        void_timers.is_empty(),
        "a void never ages and is not chased: {void_timers:?}"
    );
}

#[tokio::test]
async fn a_recoupment_on_a_closed_or_written_off_claim_raises_a_task() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let mut w = world(&pg, &redis).await;
    let closed = new_claim(&mut w.api, "REC-1").await;
    let written_off = new_claim(&mut w.api, "REC-2").await;
    post(
        &mut w.api,
        "REC-PAY",
        "290",
        &[
            "CLP*REC-1*1*205*150*20*12*ICN-1",
            "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789",
            "CAS*CO*45*35",
            "CAS*PR*2*20",
            "CLP*REC-2*1*205*140*0*12*ICN-2",
            "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789",
            "CAS*CO*45*40",
            "CAS*CO*4*25",
        ],
    )
    .await;
    for (id, status) in [
        (&closed.id, pb::ClaimStatus::Closed),
        (&written_off.id, pb::ClaimStatus::WrittenOff),
    ] {
        w.api
            .update_claim_status(pb::UpdateClaimStatusRequest {
                claim_id: id.clone(),
                status: status as i32,
                reason: "reconciled".into(),
                expected_version: 0,
            })
            .await
            .unwrap();
    }
    // Settled: nothing left to chase (the partly paid claim's denial task is closed too).
    eventually(Duration::from_secs(30), || async {
        open_tasks(&w).await.is_empty().then_some(())
    })
    .await
    .expect("settled claims have no open task");

    post(
        &mut w.api,
        "REC-TAKEBACK",
        "-290",
        &[
            "CLP*REC-1*22*-205*-150*-20*12*ICN-1",
            "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789",
            "CAS*CO*45*-35",
            "CAS*PR*2*-20",
            "CLP*REC-2*22*-205*-140*0*12*ICN-2",
            "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789",
            "CAS*CO*45*-40",
            "CAS*CO*4*-25",
        ],
    )
    .await;
    assert_eq!(
        get_claim(&mut w.api, &closed.id).await.status,
        pb::ClaimStatus::Pending as i32
    );

    let tasks = eventually(Duration::from_secs(30), || async {
        let tasks = open_tasks(&w).await;
        let of = |id: &str| {
            tasks
                .iter()
                .any(|t| t.claim_id == id && t.kind == asg::TaskKind::Recoupment as i32)
        };
        (of(&closed.id) && of(&written_off.id)).then_some(tasks)
    })
    .await
    .expect("a recoupment task for each reopened claim");
    for t in tasks
        .iter()
        .filter(|t| t.kind == asg::TaskKind::Recoupment as i32)
    {
        assert_eq!(t.detail, "recouped");
        assert_eq!(t.balance_cents, 20_500, "{t:?}");
        assert_eq!(t.specialist_id, w.ana);
    }
}
