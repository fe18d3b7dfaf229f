//! End-to-end: AR follow-up on the simulated clock, through gRPC only. Claims age into
//! 30/60/90-day tasks for the specialist who covers their payer; payment stops the aging;
//! a denial becomes a denial task; several scheduler and assignment replicas racing (one of
//! them killed mid-run) make each task exactly once.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use arflow_api::assignment::v1 as asg;
use arflow_api::claims::v1 as pb;
use arflow_testkit::{PgDatabase, RedisPrefix, eventually};
use common::{AssignmentClient, Server, claim, create, set_env};
use prost::Message as _;
use redis::AsyncCommands as _;

/// Three simulated days per real second: day 30 comes after 10 s, day 60 after 20 s, which
/// leaves a loaded CI machine 10 s to pay a claim between the two.
const RATE: f64 = 259_200.0;
const START: &str = "2026-06-15T00:00:00Z";

fn env(pg: &PgDatabase, redis: &RedisPrefix) -> Vec<(String, String)> {
    let mut env = Server::env_for(pg, redis);
    set_env(&mut env, "ARFLOW_CLOCK__START", START);
    set_env(&mut env, "ARFLOW_CLOCK__RATE", &RATE.to_string());
    env
}

/// Simulated days since the clock's anchor (the server's start, within a second).
fn sim_days_since_anchor(env: &[(String, String)]) -> f64 {
    let anchor = env
        .iter()
        .find(|(k, _)| k == "ARFLOW_CLOCK__ANCHOR")
        .map(|(_, v)| v.clone())
        .unwrap();
    let anchor = chrono::DateTime::parse_from_rfc3339(&anchor).unwrap();
    let real = (chrono::Utc::now() - anchor.to_utc()).num_milliseconds() as f64 / 1000.0;
    real * RATE / 86_400.0
}

/// A submitted claim with no submission date: the server stamps the simulated today.
fn fresh_claim(pcn: &str) -> pb::Claim {
    let mut c = claim("clinic-a", pcn);
    c.submission_date = None;
    c
}

async fn specialist(api: &mut AssignmentClient) -> String {
    api.create_specialist(asg::CreateSpecialistRequest {
        specialist: Some(asg::Specialist {
            display_name: "Ana Torres".into(),
            payer_ids: vec!["87726".into()],
            clinic_ids: vec!["clinic-a".into()],
            capacity: 500,
            working_hours: Some(asg::WorkingHours {
                days: vec![1, 2, 3, 4, 5],
                start_time: "08:00".into(),
                end_time: "17:00".into(),
                time_zone: "America/Chicago".into(),
            }),
            active: true,
            ..Default::default()
        }),
    })
    .await
    .unwrap()
    .into_inner()
    .specialist
    .unwrap()
    .id
}

/// Open tasks of a specialist, all pages.
async fn open_tasks(api: &mut AssignmentClient, specialist_id: &str) -> Vec<asg::Task> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = api
            .list_my_tasks(asg::ListMyTasksRequest {
                page_size: 1000,
                page_token: token,
                specialist_id: specialist_id.into(),
                include_snoozed: true,
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(page.tasks);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

fn aging_detail(tasks: &[asg::Task], claim_id: &str) -> Option<String> {
    tasks
        .iter()
        .find(|t| t.claim_id == claim_id && t.kind == asg::TaskKind::Aging as i32)
        .map(|t| t.detail.clone())
}

fn era_paying(pcn: &str, trace: &str) -> Vec<u8> {
    format!(
        "ISA*00*          *00*          *ZZ*PAYER          *ZZ*ARFLOW         *260801*1200*^*00501*000000301*0*T*:~\n\
         GS*HP*PAYER*ARFLOW*20260801*1200*301*X*005010X221A1~\nST*835*0001~\n\
         BPR*I*205*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20260801~\n\
         TRN*1*{trace}*1512345678~\nN1*PR*UNITEDHEALTHCARE*XV*87726~\nN1*PE*CALM HARBOR*XX*1245319599~\nLX*1~\n\
         CLP*{pcn}*1*205*205*0*12*ICN-{pcn}~\nSVC*HC:90837:95*180*180**1~\nSVC*HC:90785:95*25*25**1~\n\
         SE*11*0001~\nGE*1*301~\nIEA*1*000000301~\n"
    )
    .into_bytes()
}

fn era_denying(pcn: &str, trace: &str) -> Vec<u8> {
    format!(
        "ISA*00*          *00*          *ZZ*PAYER          *ZZ*ARFLOW         *260801*1200*^*00501*000000302*0*T*:~\n\
         GS*HP*PAYER*ARFLOW*20260801*1200*302*X*005010X221A1~\nST*835*0001~\n\
         BPR*H*0*C*NON************20260801~\nTRN*1*{trace}*1512345678~\nN1*PR*UNITEDHEALTHCARE*XV*87726~\n\
         N1*PE*CALM HARBOR*XX*1245319599~\nLX*1~\nCLP*{pcn}*4*205*0*0*12*ICN-{pcn}~\n\
         SVC*HC:90837:95*180*0**1~\nCAS*CO*197*180~\nSVC*HC:90785:95*25*0**1~\nCAS*CO*197*25~\n\
         SE*13*0001~\nGE*1*302~\nIEA*1*000000302~\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn claims_age_into_tasks_payment_stops_aging_and_denials_become_tasks() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(env(&pg, &redis));
    let mut claims = server.client(&server.key("acme", "partner", &[])).await;
    let mut supervisor =
        common::assignment_client(&server.grpc, &server.key("acme", "supervisor", &[])).await;
    let ana = specialist(&mut supervisor).await;

    let a = claims
        .create_claim(create(fresh_claim("AGE-A"), "age-a"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    let b = claims
        .create_claim(create(fresh_claim("AGE-B"), "age-b"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    let c = claims
        .create_claim(create(fresh_claim("AGE-C"), "age-c"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();

    // Day 30: an aging task for each, in Ana's queue (she covers the payer and clinic).
    eventually(Duration::from_secs(40), || {
        let (mut s, ana) = (supervisor.clone(), ana.clone());
        let (a, b) = (a.id.clone(), b.id.clone());
        async move {
            let tasks = open_tasks(&mut s, &ana).await;
            (aging_detail(&tasks, &a).is_some() && aging_detail(&tasks, &b).is_some()).then_some(())
        }
    })
    .await
    .unwrap();
    let tasks = open_tasks(&mut supervisor, &ana).await;
    assert_eq!(aging_detail(&tasks, &a.id).as_deref(), Some("aging_30"));
    assert!(tasks.iter().all(|t| t.specialist_id == ana));

    // Between day 30 and day 60, B is paid in full.
    let elapsed_days = sim_days_since_anchor(&server.env);
    assert!(
        elapsed_days < 55.0,
        "too slow for this clock: paying on simulated day {elapsed_days:.0}"
    );
    let paid = claims
        .post_remittance(pb::PostRemittanceRequest {
            file_name: "b.835".into(),
            content: era_paying("AGE-B", "CHK-B"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        paid.remittances[0].claims[0].claim_status,
        pb::ClaimStatus::Paid as i32
    );

    // And C is denied: a denial task follows.
    claims
        .post_remittance(pb::PostRemittanceRequest {
            file_name: "c.835".into(),
            content: era_denying("AGE-C", "CHK-C"),
        })
        .await
        .unwrap();
    let denial = eventually(Duration::from_secs(10), || {
        let (mut s, ana, c) = (supervisor.clone(), ana.clone(), c.id.clone());
        async move {
            open_tasks(&mut s, &ana)
                .await
                .into_iter()
                .find(|t| t.claim_id == c && t.kind == asg::TaskKind::Denial as i32)
        }
    })
    .await
    .unwrap();
    assert_eq!(denial.denial_category, "authorization");
    assert!(denial.appealable);

    // Day 90: A's aging task has moved on; B's aging stopped at its payment.
    eventually(Duration::from_secs(60), || {
        let (mut s, ana, a) = (supervisor.clone(), ana.clone(), a.id.clone());
        async move {
            (aging_detail(&open_tasks(&mut s, &ana).await, &a).as_deref() == Some("aging_90"))
                .then_some(())
        }
    })
    .await
    .unwrap();
    let tasks = open_tasks(&mut supervisor, &ana).await;
    assert!(
        aging_detail(&tasks, &b.id).is_none(),
        "a paid claim has no open aging task"
    );
    let b_task = paid_claim_aging_task(&redis, &b.id).await;
    assert_eq!(
        b_task,
        vec!["aging_30".to_string()],
        "no 60/90-day work for the paid claim"
    );
}

/// Details of the TaskCreated events of a claim's aging work, and of every update to it.
async fn paid_claim_aging_task(redis: &RedisPrefix, claim_id: &str) -> Vec<String> {
    let mut details = Vec::new();
    for env in stream(redis, "assignment").await {
        if env.event_type.ends_with("TaskCreated") {
            let t = arflow_api::events::v1::TaskCreated::decode(env.payload.as_slice()).unwrap();
            if t.claim_id == claim_id && t.kind == "TASK_KIND_AGING" {
                details.push(t.detail);
            }
        }
    }
    for env in stream(redis, "scheduler").await {
        if env.event_type.ends_with("TimerFired") {
            let t = arflow_api::events::v1::TimerFired::decode(env.payload.as_slice()).unwrap();
            if t.subject == claim_id
                && t.kind_name.starts_with("aging_")
                && t.kind_name != "aging_30"
            {
                details.push(t.kind_name);
            }
        }
    }
    details
}

async fn stream(redis: &RedisPrefix, producer: &str) -> Vec<arflow_api::events::v1::Envelope> {
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let entries: redis::streams::StreamRangeReply = conn
        .xrange_all(format!("{}stream:{producer}", redis.prefix))
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    entries
        .ids
        .into_iter()
        .filter_map(|e| {
            let bytes: Vec<u8> = e.get("envelope")?;
            let env = arflow_api::events::v1::Envelope::decode(bytes.as_slice()).ok()?;
            // A relay that died after XADD republishes: the same event id twice is one event.
            seen.insert(env.event_id.clone()).then_some(env)
        })
        .collect()
}

#[tokio::test]
async fn racing_replicas_make_each_task_once_and_a_killed_replica_loses_nothing() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let env = env(&pg, &redis);
    let main = Server::start(env.clone());
    let mut second = Server::start_roles(env.clone(), &["scheduler", "assignment"]);
    let _third = Server::start_roles(env.clone(), &["scheduler"]);
    let mut claims = main.client(&main.key("acme", "partner", &[])).await;
    let mut supervisor =
        common::assignment_client(&main.grpc, &main.key("acme", "supervisor", &[])).await;
    let ana = specialist(&mut supervisor).await;

    let mut ids = Vec::new();
    for i in 0..20 {
        let pcn = format!("RACE-{i:02}");
        ids.push(
            claims
                .create_claim(create(fresh_claim(&pcn), &pcn))
                .await
                .unwrap()
                .into_inner()
                .claim
                .unwrap()
                .id,
        );
    }
    // Day 30 reached for every claim, then one replica dies without warning.
    eventually(Duration::from_secs(40), || {
        let (mut s, ana, ids) = (supervisor.clone(), ana.clone(), ids.clone());
        async move {
            let tasks = open_tasks(&mut s, &ana).await;
            ids.iter()
                .all(|id| aging_detail(&tasks, id).is_some())
                .then_some(())
        }
    })
    .await
    .unwrap();
    second.kill();

    // Day 60 still reaches every claim.
    eventually(Duration::from_secs(60), || {
        let (mut s, ana, ids) = (supervisor.clone(), ana.clone(), ids.clone());
        async move {
            let tasks = open_tasks(&mut s, &ana).await;
            ids.iter()
                .all(|id| aging_detail(&tasks, id).as_deref() == Some("aging_60"))
                .then_some(())
        }
    })
    .await
    .unwrap();

    // Exactly once: one TimerFired per timer, one aging timer per (claim, threshold), one
    // aging task per claim.
    let mut fired: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_threshold: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for env in stream(&redis, "scheduler").await {
        if env.event_type.ends_with("TimerFired") {
            let t = arflow_api::events::v1::TimerFired::decode(env.payload.as_slice()).unwrap();
            *fired.entry(t.timer_id.clone()).or_default() += 1;
            if t.kind_name.starts_with("aging_") {
                per_threshold
                    .entry((t.subject, t.kind_name))
                    .or_default()
                    .insert(t.timer_id);
            }
        }
    }
    assert!(
        fired.values().all(|n| *n == 1),
        "a timer fired twice: {fired:?}"
    );
    assert!(per_threshold.values().all(|timers| timers.len() == 1));
    for id in &ids {
        assert!(per_threshold.contains_key(&(id.clone(), "aging_30".into())));
        assert!(per_threshold.contains_key(&(id.clone(), "aging_60".into())));
    }
    let mut created: BTreeMap<String, usize> = BTreeMap::new();
    for env in stream(&redis, "assignment").await {
        if env.event_type.ends_with("TaskCreated") {
            let t = arflow_api::events::v1::TaskCreated::decode(env.payload.as_slice()).unwrap();
            if t.kind == "TASK_KIND_AGING" {
                *created.entry(t.claim_id).or_default() += 1;
            }
        }
    }
    assert_eq!(created.len(), 20);
    assert!(
        created.values().all(|n| *n == 1),
        "one aging task per claim: {created:?}"
    );
}

/// Redis is a signal, not the only copy: when a claim's ClaimSubmitted is lost with the stream
/// before any scheduler read it, the scheduler's daily reconciler asks the claims service
/// (over gRPC, with a service key) which claims are open and sets the missing timers.
#[tokio::test]
async fn reconciler_restores_timers_for_an_event_lost_with_redis() {
    use arflow_api::scheduler::v1 as sch;
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let env = env(&pg, &redis);
    let claims_only = Server::start_roles(env.clone(), &["claims"]);
    let mut claims = claims_only
        .client(&claims_only.key("acme", "partner", &[]))
        .await;
    let lost = claims
        .create_claim(create(fresh_claim("LOST-1"), "lost-1"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();

    // The relay publishes the event; then Redis loses the stream before any consumer read it.
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stream = format!("{}stream:claims", redis.prefix);
    eventually(Duration::from_secs(10), || {
        let (mut conn, stream) = (conn.clone(), stream.clone());
        async move { (conn.xlen::<_, i64>(&stream).await.ok()? >= 1).then_some(()) }
    })
    .await
    .unwrap();
    let _: i64 = conn.del(&stream).await.unwrap();

    // A scheduler with a service key for the tenant, pointed at the claims process.
    let mut sched_env = env.clone();
    set_env(
        &mut sched_env,
        "ARFLOW_RECONCILER__CLAIMS_ADDR",
        &claims_only.grpc,
    );
    set_env(
        &mut sched_env,
        "ARFLOW_RECONCILER__SERVICE_KEYS__ACME",
        &claims_only.key("acme", "service", &[]),
    );
    let scheduler = Server::start_roles(sched_env, &["scheduler"]);
    let channel = tonic::transport::Channel::from_shared(scheduler.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let key: tonic::metadata::MetadataValue<_> =
        format!("Bearer {}", claims_only.key("acme", "supervisor", &[]))
            .parse()
            .unwrap();
    let mut timers = arflow_api::scheduler::v1::scheduler_service_client::SchedulerServiceClient::with_interceptor(
        channel,
        arflow::client::Auth::new(Some(key)),
    );
    let kinds = eventually(Duration::from_secs(30), || {
        let (mut t, id) = (timers.clone(), lost.id.clone());
        async move {
            let listed = t
                .list_timers(sch::ListTimersRequest {
                    subject: id,
                    page_size: 100,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner()
                .timers;
            let kinds: BTreeSet<String> = listed.into_iter().map(|t| t.kind_name).collect();
            kinds.contains("aging_90").then_some(kinds)
        }
    })
    .await
    .unwrap();
    assert!(
        kinds.contains("aging_30") && kinds.contains("aging_60"),
        "{kinds:?}"
    );
    let again = timers
        .list_timers(sch::ListTimersRequest {
            subject: lost.id.clone(),
            kind_name: "aging_60".into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .timers;
    assert_eq!(
        again.len(),
        1,
        "repairs are idempotent: one timer per threshold"
    );
}

/// The same for denials: a ClaimDenied lost with Redis still becomes a denial task, because the
/// assignment service's daily reconciler asks the claims service which denials exist.
#[tokio::test]
async fn reconciler_turns_a_denial_lost_with_redis_into_a_task() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let env = env(&pg, &redis);
    let claims_only = Server::start_roles(env.clone(), &["claims"]);
    let mut claims = claims_only
        .client(&claims_only.key("acme", "partner", &[]))
        .await;
    let denied = claims
        .create_claim(create(fresh_claim("LOST-D"), "lost-d"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    claims
        .post_remittance(pb::PostRemittanceRequest {
            file_name: "d.835".into(),
            content: era_denying("LOST-D", "CHK-LOST"),
        })
        .await
        .unwrap();
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stream = format!("{}stream:claims", redis.prefix);
    // Wait until the relay has published everything (ClaimSubmitted, RemittancePosted,
    // ClaimStatusChanged, ClaimDenied x2), then lose the stream.
    eventually(Duration::from_secs(10), || {
        let (mut conn, stream) = (conn.clone(), stream.clone());
        async move { (conn.xlen::<_, i64>(&stream).await.ok()? >= 5).then_some(()) }
    })
    .await
    .unwrap();
    let _: i64 = conn.del(&stream).await.unwrap();

    let mut asg_env = env.clone();
    set_env(
        &mut asg_env,
        "ARFLOW_RECONCILER__CLAIMS_ADDR",
        &claims_only.grpc,
    );
    set_env(
        &mut asg_env,
        "ARFLOW_RECONCILER__SERVICE_KEYS__ACME",
        &claims_only.key("acme", "service", &[]),
    );
    let assignment = Server::start_roles(asg_env, &["assignment"]);
    let mut supervisor = common::assignment_client(
        &assignment.grpc,
        &claims_only.key("acme", "supervisor", &[]),
    )
    .await;
    let ana = specialist(&mut supervisor).await;
    let task = eventually(Duration::from_secs(30), || {
        let (mut s, ana, id) = (supervisor.clone(), ana.clone(), denied.id.clone());
        async move {
            open_tasks(&mut s, &ana)
                .await
                .into_iter()
                .find(|t| t.claim_id == id && t.kind == asg::TaskKind::Denial as i32)
        }
    })
    .await
    .unwrap();
    assert_eq!(task.denial_category, "authorization");
    assert_eq!(task.balance_cents, 20_500);
}
