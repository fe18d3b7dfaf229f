//! End-to-end: a key scoped to some clinics acts only on those clinics' claims, in every
//! service: CorrectClaim's original (claims), LogFollowUp (assignment) and CreateTimer's
//! subject (scheduler). Another clinic's claim answers exactly like a missing one.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use arflow_api::assignment::v1 as asg;
use arflow_api::claims::v1 as pb;
use arflow_api::scheduler::v1 as sch;
use arflow_api::scheduler::v1::scheduler_service_client::SchedulerServiceClient;
use arflow_testkit::{PgDatabase, RedisPrefix, eventually};
use common::{Server, assignment_client, claim, create};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

type SchedulerClient = SchedulerServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, arflow::client::Auth>,
>;

async fn scheduler_client(addr: &str, key: &str) -> SchedulerClient {
    let channel = Channel::from_shared(addr.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let value = format!("Bearer {key}").parse::<MetadataValue<_>>().unwrap();
    SchedulerServiceClient::with_interceptor(channel, arflow::client::Auth::new(Some(value)))
}

fn follow_up(claim_id: &str) -> asg::LogFollowUpRequest {
    asg::LogFollowUpRequest {
        follow_up: Some(asg::FollowUp {
            claim_id: claim_id.into(),
            channel: asg::FollowUpChannel::Phone as i32,
            answer: asg::FollowUpAnswer::InProcess as i32,
            payer_reference: "REF-1".into(),
            ..Default::default()
        }),
        specialist_id: String::new(),
    }
}

fn timer(subject: &str, clinic: &str) -> sch::CreateTimerRequest {
    let due = chrono::DateTime::parse_from_rfc3339("2026-07-01T12:00:00Z")
        .unwrap()
        .to_utc();
    sch::CreateTimerRequest {
        subject: subject.into(),
        due_time: Some(arflow_api::wire::timestamp(due)),
        clinic_id: clinic.into(),
        payer_id: "87726".into(),
        note: "call back".into(),
    }
}

#[tokio::test]
async fn a_clinic_scoped_key_acts_only_on_its_clinics_claims() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut claims = server.client(&server.key("acme", "admin", &[])).await;
    let a = claims
        .create_claim(create(claim("clinic-a", "SC-A"), "sc-a"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    let b = claims
        .create_claim(create(claim("clinic-b", "SC-B"), "sc-b"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    let key_a = server.key("acme", "supervisor", &["clinic-a"]);
    let tenant_wide = server.key("acme", "supervisor", &[]);
    let missing = uuid::Uuid::now_v7().to_string();

    // Claims: CorrectClaim's original must be the caller's.
    let mut claims_a = server.client(&key_a).await;
    let correct = |original: &str, clinic: &str| pb::CorrectClaimRequest {
        request_id: format!("fix-{original}"),
        original_claim_id: original.into(),
        claim: Some(claim(clinic, "SC-FIX")),
    };
    let foreign = claims_a
        .correct_claim(correct(&b.id, "clinic-a"))
        .await
        .unwrap_err();
    let absent = claims_a
        .correct_claim(correct(&missing, "clinic-a"))
        .await
        .unwrap_err();
    assert_eq!(
        (foreign.code(), foreign.message()),
        (absent.code(), absent.message())
    );
    assert_eq!(foreign.code(), tonic::Code::NotFound);

    // The other services learn the claims from their events: each clinic's own key can log a
    // follow-up on its claim once assignment knows it.
    let mut asg_a = assignment_client(&server.grpc, &key_a).await;
    let key_b = server.key("acme", "supervisor", &["clinic-b"]);
    let mut asg_b = assignment_client(&server.grpc, &key_b).await;
    for (api, id) in [(&mut asg_a, &a.id), (&mut asg_b, &b.id)] {
        eventually(Duration::from_secs(20), || {
            let mut api = api.clone();
            let id = id.clone();
            async move { api.log_follow_up(follow_up(&id)).await.ok() }
        })
        .await
        .unwrap();
    }

    // Assignment: LogFollowUp on another clinic's claim is refused like a missing claim.
    let foreign = asg_a.log_follow_up(follow_up(&b.id)).await.unwrap_err();
    let absent = asg_a.log_follow_up(follow_up(&missing)).await.unwrap_err();
    assert_eq!(
        (foreign.code(), foreign.message()),
        (absent.code(), absent.message())
    );
    assert_eq!(foreign.code(), tonic::Code::NotFound);
    let mut asg_all = assignment_client(&server.grpc, &tenant_wide).await;
    asg_all.log_follow_up(follow_up(&b.id)).await.unwrap();

    // Scheduler: once it knows claim B, a timer for it belongs to clinic B, not another
    // clinic a tenant-wide key names.
    let mut sch_all = scheduler_client(&server.grpc, &tenant_wide).await;
    let wrong_clinic = eventually(Duration::from_secs(20), || {
        let mut sch_all = sch_all.clone();
        let id = b.id.clone();
        async move {
            match sch_all.create_timer(timer(&id, "clinic-a")).await {
                Err(e) if e.code() == tonic::Code::InvalidArgument => Some(e),
                _ => None,
            }
        }
    })
    .await
    .unwrap();
    assert!(
        wrong_clinic.message().contains("clinic_id"),
        "{}",
        wrong_clinic.message()
    );
    let theirs = sch_all
        .create_timer(timer(&b.id, ""))
        .await
        .unwrap()
        .into_inner()
        .timer
        .unwrap();
    assert_eq!(theirs.clinic_id, "clinic-b");

    // CreateTimer's subject must be a claim of a clinic-scoped key's clinics.
    let mut sch_a = scheduler_client(&server.grpc, &key_a).await;
    let mine = eventually(Duration::from_secs(20), || {
        let mut sch_a = sch_a.clone();
        let id = a.id.clone();
        async move { sch_a.create_timer(timer(&id, "clinic-a")).await.ok() }
    })
    .await
    .unwrap()
    .into_inner()
    .timer
    .unwrap();
    assert_eq!(mine.clinic_id, "clinic-a");
    let foreign = sch_a
        .create_timer(timer(&b.id, "clinic-a"))
        .await
        .unwrap_err();
    let absent = sch_a
        .create_timer(timer(&missing, "clinic-a"))
        .await
        .unwrap_err();
    assert_eq!(
        (foreign.code(), foreign.message()),
        (absent.code(), absent.message())
    );
    assert_eq!(foreign.code(), tonic::Code::NotFound);
}
