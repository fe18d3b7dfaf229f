//! End-to-end: every STC of a 277/277CA claim is acted on, through gRPC only, on Postgres +
//! Redis (issue 10). A4 (not found) raises a resubmission task; P3/P4 (information requested)
//! a task with a deadline; R* (documentation requested) a task naming the request; F1/F4
//! (finalized) a "no ERA yet" timer that a remittance cancels; E* (the payer could not answer)
//! moves the status check to a retry a few business days later. The first STC still decides
//! the claim's move.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use arflow_api::assignment::v1 as asg;
use arflow_api::claims::v1 as pb;
use arflow_api::scheduler::v1 as sch;
use arflow_testkit::{PgDatabase, RedisPrefix, eventually};
use common::{AssignmentClient, Server, claim, create, set_env};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type SchedulerClient = sch::scheduler_service_client::SchedulerServiceClient<
    InterceptedService<Channel, arflow::client::Auth>,
>;

fn isa_wrap(st: &[&str]) -> String {
    let body: Vec<String> = st.iter().map(|s| format!("{s}~")).collect();
    let count = body.len() + 2;
    format!(
        "ISA*00*          *00*          *ZZ*PAYER          *ZZ*ARFLOW         *260615*1200*^*00501*000000101*0*T*:~\n\
         GS*HN*PAYER*ARFLOW*20260615*1200*101*X*005010X214~\n\
         ST*277*0001*005010X214~\n{}\nSE*{count}*0001~\nGE*1*101~\nIEA*1*000000101~\n",
        body.join("\n"),
    )
}

/// A 277CA with one patient level per claim: (patient control number, its STC segments).
fn ack_277ca(claims: &[(&str, &[&str])]) -> String {
    let mut st: Vec<String> = [
        "BHT*0085*08*ACK1*20260615*1200*TH",
        "HL*1**20*1",
        "NM1*PR*2*UNITEDHEALTHCARE*****PI*87726",
        "TRN*1*BATCH1",
        "DTP*050*D8*20260615",
        "DTP*009*D8*20260615",
        "HL*2*1*21*1",
        "NM1*41*2*CALM HARBOR COUNSELING*****46*ARF1",
        "TRN*2*BATCH1",
        "STC*A1:19:PR*20260615*WQ*820",
        "HL*3*2*19*1",
        "NM1*85*2*CALM HARBOR COUNSELING*****XX*1245319599",
        "TRN*1*0",
        "STC*A1:19:PR**WQ*820",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (i, (pcn, stcs)) in claims.iter().enumerate() {
        st.push(format!("HL*{}*3*PT", i + 4));
        st.push("NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789".into());
        st.push(format!("TRN*2*{pcn}"));
        st.extend(stcs.iter().map(|s| s.to_string()));
        st.push("DTP*472*D8*20260504".into());
    }
    let refs: Vec<&str> = st.iter().map(String::as_str).collect();
    isa_wrap(&refs)
}

fn era_paying(pcn: &str) -> Vec<u8> {
    format!(
        "ISA*00*          *00*          *ZZ*PAYER          *ZZ*ARFLOW         *260615*1200*^*00501*000000301*0*T*:~\n\
         GS*HP*PAYER*ARFLOW*20260615*1200*301*X*005010X221A1~\nST*835*0001~\n\
         BPR*I*205*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20260615~\n\
         TRN*1*CHK-{pcn}*1512345678~\nN1*PR*UNITEDHEALTHCARE*XV*87726~\nN1*PE*CALM HARBOR*XX*1245319599~\nLX*1~\n\
         CLP*{pcn}*1*205*205*0*12*ICN-{pcn}~\nSVC*HC:90837:95*180*180**1~\nSVC*HC:90785:95*25*25**1~\n\
         SE*10*0001~\nGE*1*301~\nIEA*1*000000301~\n"
    )
    .into_bytes()
}

/// A submitted claim with no submission date: the server stamps the simulated today (Mon
/// Jun 15, 2026), so its first status check falls one business day later (see `env`).
async fn new_claim(api: &mut common::Client, pcn: &str) -> pb::Claim {
    let mut c = claim("clinic-a", pcn);
    c.submission_date = None;
    api.create_claim(create(c, pcn))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap()
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

async fn open_tasks(api: &mut AssignmentClient, specialist_id: &str) -> Vec<asg::Task> {
    api.list_my_tasks(asg::ListMyTasksRequest {
        page_size: 1000,
        specialist_id: specialist_id.into(),
        include_snoozed: true,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .tasks
}

async fn scheduler_client(addr: &str, key: &str) -> SchedulerClient {
    let channel = Channel::from_shared(addr.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let key: tonic::metadata::MetadataValue<_> = format!("Bearer {key}").parse().unwrap();
    sch::scheduler_service_client::SchedulerServiceClient::with_interceptor(
        channel,
        arflow::client::Auth::new(Some(key)),
    )
}

async fn timers(api: &mut SchedulerClient, claim_id: &str, kind: &str) -> Vec<sch::Timer> {
    api.list_timers(sch::ListTimersRequest {
        subject: claim_id.into(),
        kind_name: kind.into(),
        page_size: 100,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .timers
}

/// The local day a timer falls on: timers are due at local midnight in the tenant's time zone
/// (America/New_York, four hours behind UTC in June and July).
fn day(t: &sch::Timer) -> String {
    let due = t.due_time.as_ref().unwrap();
    chrono::DateTime::from_timestamp(due.seconds - 4 * 3600, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

#[tokio::test]
async fn every_stc_of_a_status_report_becomes_follow_up() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let mut env = Server::env_for(&pg, &redis);
    // The first status check one business day after submission (Tue Jun 16), so that the
    // E0 retry (3 business days after the report: Thu Jun 18) moves it later.
    set_env(
        &mut env,
        "ARFLOW_SCHEDULER__FIRST_STATUS_CHECK_BUSINESS_DAYS",
        "1",
    );
    let server = Server::start(env);
    let mut claims = server.client(&server.key("acme", "partner", &[])).await;
    let supervisor_key = server.key("acme", "supervisor", &[]);
    let mut supervisor = common::assignment_client(&server.grpc, &supervisor_key).await;
    let scheduler = scheduler_client(&server.grpc, &supervisor_key).await;
    let ana = specialist(&mut supervisor).await;

    let both = new_claim(&mut claims, "ST-BOTH").await;
    let docs = new_claim(&mut claims, "ST-R4").await;
    let finalized = new_claim(&mut claims, "ST-F1").await;
    let error = new_claim(&mut claims, "ST-E0").await;

    // The E0 claim's first status check is pending on Tue Jun 16 before the report.
    let first_check = eventually(Duration::from_secs(30), || {
        let (mut s, id) = (scheduler.clone(), error.id.clone());
        async move {
            let t = timers(&mut s, &id, "status_check").await;
            t.into_iter()
                .find(|t| t.state == sch::TimerState::Pending as i32)
        }
    })
    .await
    .unwrap();
    assert_eq!(day(&first_check), "2026-06-16");

    let r4 = format!(
        "STC*R4:18842-5:1P:LOI*20260615{}SEND DISCHARGE SUMMARY",
        "*".repeat(10)
    );
    let report = ack_277ca(&[
        // Two STCs on one claim: the first (A4) decides the move (none), both make work.
        (
            "ST-BOTH",
            &["STC*A4:35:PR*20260615*U*205", "STC*P3:21:PR*20260612"],
        ),
        ("ST-R4", &[r4.as_str()]),
        ("ST-F1", &["STC*F1:65:PR*20260615**205*205"]),
        ("ST-E0", &["STC*E0:187:PR*20260615"]),
    ]);
    let posted = claims
        .post_status_report(pb::PostStatusReportRequest {
            file_name: "status.277".into(),
            content: report.into_bytes(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(posted.problems.is_empty(), "{:?}", posted.problems);
    assert_eq!(posted.claims.len(), 4);
    assert!(posted.claims.iter().all(|c| !c.claim_id.is_empty()));
    let got = claims
        .get_claim(pb::GetClaimRequest {
            claim_id: both.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    assert_eq!(
        got.status,
        pb::ClaimStatus::Submitted as i32,
        "A4 moves nothing; the later P3 does not decide the move"
    );

    // Tasks: A4 resubmission and P3 information requested (deadline 14 days after the P3's
    // date) on one claim; R4 information requested naming the document.
    let tasks = eventually(Duration::from_secs(30), || {
        let (mut s, ana) = (supervisor.clone(), ana.clone());
        let (both, docs) = (both.id.clone(), docs.id.clone());
        async move {
            let tasks = open_tasks(&mut s, &ana).await;
            let has = |claim: &str, kind: asg::TaskKind| {
                tasks
                    .iter()
                    .any(|t| t.claim_id == claim && t.kind == kind as i32)
            };
            (has(&both, asg::TaskKind::Resubmission)
                && has(&both, asg::TaskKind::InformationRequested)
                && has(&docs, asg::TaskKind::InformationRequested))
            .then_some(tasks)
        }
    })
    .await
    .unwrap();
    let find = |claim: &str, kind: asg::TaskKind| {
        tasks
            .iter()
            .find(|t| t.claim_id == claim && t.kind == kind as i32)
            .unwrap()
    };
    assert_eq!(
        find(&both.id, asg::TaskKind::Resubmission).detail,
        "payer_has_no_record"
    );
    let info = find(&both.id, asg::TaskKind::InformationRequested);
    assert_eq!(info.detail, "information requested: P3:21 (entity PR)");
    assert_eq!(info.deadline, common::date(2026, 6, 26));
    let requested = find(&docs.id, asg::TaskKind::InformationRequested);
    assert_eq!(
        requested.detail,
        "documentation requested: R4:LOINC 18842-5 (entity 1P) \"SEND DISCHARGE SUMMARY\""
    );
    assert_eq!(requested.deadline, None);
    // F1 and E0 are the scheduler's: no task for those claims.
    assert!(
        tasks
            .iter()
            .all(|t| t.claim_id != finalized.id && t.claim_id != error.id),
        "{tasks:?}"
    );

    // F1: the "no ERA yet" timer, 30 days after the report.
    let no_era = eventually(Duration::from_secs(30), || {
        let (mut s, id) = (scheduler.clone(), finalized.id.clone());
        async move { timers(&mut s, &id, "no_era").await.into_iter().next() }
    })
    .await
    .unwrap();
    assert_eq!(no_era.state, sch::TimerState::Pending as i32);
    assert_eq!(day(&no_era), "2026-07-15");

    // E0: the status check moves from Tue Jun 16 to Thu Jun 18 (3 business days after the
    // report); the earlier one is cancelled, one check stays pending.
    let moved = eventually(Duration::from_secs(30), || {
        let (mut s, id) = (scheduler.clone(), error.id.clone());
        async move {
            let t = timers(&mut s, &id, "status_check").await;
            t.iter()
                .any(|t| day(t) == "2026-06-18" && t.state == sch::TimerState::Pending as i32)
                .then_some(t)
        }
    })
    .await
    .unwrap();
    let pending: Vec<&sch::Timer> = moved
        .iter()
        .filter(|t| t.state == sch::TimerState::Pending as i32)
        .collect();
    assert_eq!(pending.len(), 1, "{moved:?}");
    let old = moved.iter().find(|t| t.id == first_check.id).unwrap();
    assert_eq!(old.state, sch::TimerState::Cancelled as i32);

    // The remittance comes: the "no ERA yet" timer is cancelled.
    let era = claims
        .post_remittance(pb::PostRemittanceRequest {
            file_name: "era.835".into(),
            content: era_paying("ST-F1"),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(era.problems.iter().all(|p| !p.blocking), "{era:?}");
    eventually(Duration::from_secs(30), || {
        let (mut s, id) = (scheduler.clone(), finalized.id.clone());
        async move {
            let t = timers(&mut s, &id, "no_era").await;
            t.iter()
                .all(|t| t.state == sch::TimerState::Cancelled as i32)
                .then_some(())
        }
    })
    .await
    .unwrap();
}
