//! Issue 10's aging and deadlines through the scheduler's consumer on both backends: aging from
//! the original bill date (resubmissions and replacements), timely-filing warnings at stages
//! until the payer has the claim, and the corrected-claim and appeal warnings of a denial.
#![allow(clippy::unwrap_used)]

mod common;

use arflow_api::events::v1 as events;
use arflow_platform::Clock;
use arflow_scheduler::store;
use chrono::Utc;
use common::{
    Env, Kind, apply, at, date, days_of, paid, projection_of, settings, status_changed,
    submitted_payload, timers_in, ymd,
};

/// Issue 10: aging counts from the original bill date; a resubmission restarts only the
/// status-check cadence, in either order of delivery; on the date-of-service basis nothing
/// about submissions moves aging.
async fn resubmission_keeps_aging_from_the_original_bill_date(kind: Kind) {
    let env = Env::new(kind).await;
    let clock = Clock::simulated(at("2026-01-05T15:00:00Z"), Utc::now(), 0.0);
    let replica = env.replica("scheduler-a", clock, settings()).await;
    let handler = replica.scheduler.handler();
    let original = submitted_payload("c1", ymd(2026, 1, 5));
    let again = events::ClaimSubmitted {
        submission_date: Some(date(ymd(2026, 2, 10))),
        ..original.clone()
    };
    apply(&env, &handler, "c1", 1, &original).await;
    apply(
        &env,
        &handler,
        "c1",
        2,
        &status_changed("c1", "SUBMITTED", "REJECTED"),
    )
    .await;
    apply(&env, &handler, "c1", 3, &again).await;
    let pending = timers_in(&env, "c1", None, store::TimerState::Pending).await;
    let expected = vec![
        ("aging_30".to_string(), ymd(2026, 2, 4)),
        ("status_check".to_string(), ymd(2026, 3, 3)),
        ("aging_60".to_string(), ymd(2026, 3, 6)),
        ("timely_filing_warning".to_string(), ymd(2026, 3, 6)),
        ("timely_filing_warning".to_string(), ymd(2026, 3, 22)),
        ("timely_filing_warning".to_string(), ymd(2026, 3, 29)),
        ("aging_90".to_string(), ymd(2026, 4, 5)),
    ];
    let mut got = days_of(&pending);
    got.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(got, want);
    assert!(
        pending
            .iter()
            .filter(|t| t.kind.starts_with("aging_"))
            .all(|t| t.payload.basis_date.as_deref() == Some("2026-01-05"))
    );
    // The first submission's status check gave way to the new one.
    let cancelled = timers_in(&env, "c1", None, store::TimerState::Cancelled).await;
    assert_eq!(
        days_of(&cancelled),
        vec![("status_check".to_string(), ymd(2026, 1, 26))]
    );
    let projected = projection_of(&env, "c1").await;
    assert_eq!(projected.first_submission_date, Some(ymd(2026, 1, 5)));
    assert_eq!(projected.facts.submission_date, Some(ymd(2026, 2, 10)));

    // Delivered the other way round: the resubmission first, then the original (stale).
    let original2 = submitted_payload("c2", ymd(2026, 1, 5));
    let again2 = events::ClaimSubmitted {
        submission_date: Some(date(ymd(2026, 2, 10))),
        ..original2.clone()
    };
    apply(&env, &handler, "c2", 3, &again2).await;
    apply(&env, &handler, "c2", 1, &original2).await;
    let mut got = days_of(&timers_in(&env, "c2", None, store::TimerState::Pending).await);
    got.sort();
    assert_eq!(got, want);

    // A tenant counting from the date of service: a resubmission changes nothing there.
    store::set_policy(
        &env.db,
        &store::TenantId::new("t1"),
        &arflow_domain::followup::AgingPolicy {
            basis: arflow_domain::followup::AgingBasis::DateOfService,
            thresholds_days: vec![30],
            time_zone: chrono_tz::America::New_York,
        },
        Utc::now(),
    )
    .await
    .unwrap();
    let dos = events::ClaimSubmitted {
        first_service_date: Some(date(ymd(2025, 12, 20))),
        ..submitted_payload("c3", ymd(2026, 1, 5))
    };
    apply(&env, &handler, "c3", 1, &dos).await;
    apply(
        &env,
        &handler,
        "c3",
        3,
        &events::ClaimSubmitted {
            submission_date: Some(date(ymd(2026, 2, 10))),
            ..dos.clone()
        },
    )
    .await;
    let aging = timers_in(&env, "c3", Some("aging_30"), store::TimerState::Pending).await;
    assert_eq!(
        days_of(&aging),
        vec![("aging_30".to_string(), ymd(2026, 1, 19))]
    );
    assert!(
        timers_in(&env, "c3", Some("aging_30"), store::TimerState::Cancelled)
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubmission_keeps_aging_from_the_original_bill_date_postgres() {
    resubmission_keeps_aging_from_the_original_bill_date(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubmission_keeps_aging_from_the_original_bill_date_sqlite() {
    resubmission_keeps_aging_from_the_original_bill_date(Kind::Sqlite).await;
}

/// Issue 10: timely-filing warnings at every configured stage still ahead; cancelled once the
/// payer accepts the claim (277CA A2), back when it is rejected after all; a reopened claim
/// does not bring back the warnings its filing made moot.
async fn timely_filing_warnings_at_stages_until_accepted(kind: Kind) {
    let env = Env::new(kind).await;
    let clock = Clock::simulated(at("2026-01-05T15:00:00Z"), Utc::now(), 0.0);
    let replica = env.replica("scheduler-a", clock, settings()).await;
    let handler = replica.scheduler.handler();
    let warning = Some("timely_filing_warning");
    apply(
        &env,
        &handler,
        "c1",
        1,
        &submitted_payload("c1", ymd(2026, 1, 5)),
    )
    .await;
    // Commercial: 90 days from the date of service (Jan 5) = Apr 5; 30, 14 and 7 days before.
    let pending = timers_in(&env, "c1", warning, store::TimerState::Pending).await;
    assert_eq!(
        pending
            .iter()
            .map(|t| (
                t.due_at.date_naive(),
                t.payload.lead_days,
                t.payload.deadline.as_deref()
            ))
            .collect::<Vec<_>>(),
        vec![
            (ymd(2026, 3, 6), Some(30), Some("2026-04-05")),
            (ymd(2026, 3, 22), Some(14), Some("2026-04-05")),
            (ymd(2026, 3, 29), Some(7), Some("2026-04-05")),
        ]
    );
    // Accepted (277CA A2): the payer has the claim, all three are cancelled; aging goes on.
    apply(
        &env,
        &handler,
        "c1",
        2,
        &status_changed("c1", "SUBMITTED", "ACCEPTED"),
    )
    .await;
    assert!(
        timers_in(&env, "c1", warning, store::TimerState::Pending)
            .await
            .is_empty()
    );
    assert_eq!(
        timers_in(&env, "c1", warning, store::TimerState::Cancelled)
            .await
            .len(),
        3
    );
    assert_eq!(
        timers_in(&env, "c1", Some("aging_30"), store::TimerState::Pending)
            .await
            .len(),
        1
    );
    assert!(projection_of(&env, "c1").await.filed_on.is_some());
    // Rejected after all (a payer-level A3): never filed, so the warnings come back.
    apply(
        &env,
        &handler,
        "c1",
        3,
        &status_changed("c1", "ACCEPTED", "REJECTED"),
    )
    .await;
    assert_eq!(
        timers_in(&env, "c1", warning, store::TimerState::Pending)
            .await
            .len(),
        3
    );

    // Accepted, paid (everything cancelled), then the payment reversed: the reopened claim
    // gets aging and status checks back, not the filing warnings.
    apply(
        &env,
        &handler,
        "c2",
        1,
        &submitted_payload("c2", ymd(2026, 1, 5)),
    )
    .await;
    apply(
        &env,
        &handler,
        "c2",
        2,
        &status_changed("c2", "SUBMITTED", "ACCEPTED"),
    )
    .await;
    apply(&env, &handler, "c2", 3, &paid("c2", 0, "CLAIM_STATUS_PAID")).await;
    assert!(
        timers_in(&env, "c2", None, store::TimerState::Pending)
            .await
            .is_empty()
    );
    apply(
        &env,
        &handler,
        "c2",
        4,
        &status_changed("c2", "PAID", "PENDING"),
    )
    .await;
    let back = timers_in(&env, "c2", None, store::TimerState::Pending).await;
    assert_eq!(back.len(), 4, "{:?}", days_of(&back));
    assert!(back.iter().all(|t| t.kind != "timely_filing_warning"));

    // Accepted before its submission is delivered: no warnings are set.
    apply(
        &env,
        &handler,
        "c3",
        2,
        &status_changed("c3", "SUBMITTED", "ACCEPTED"),
    )
    .await;
    apply(
        &env,
        &handler,
        "c3",
        1,
        &submitted_payload("c3", ymd(2026, 1, 5)),
    )
    .await;
    assert!(
        timers_in(&env, "c3", warning, store::TimerState::Pending)
            .await
            .is_empty()
    );
    assert!(
        !timers_in(&env, "c3", None, store::TimerState::Pending)
            .await
            .is_empty()
    );

    // Only the stages still ahead: service on Nov 1 2025, deadline Jan 30 2026, planned on
    // Jan 5: the 30-day stage (Dec 31) has passed.
    apply(
        &env,
        &handler,
        "c4",
        1,
        &events::ClaimSubmitted {
            first_service_date: Some(date(ymd(2025, 11, 1))),
            ..submitted_payload("c4", ymd(2026, 1, 5))
        },
    )
    .await;
    assert_eq!(
        days_of(&timers_in(&env, "c4", warning, store::TimerState::Pending).await),
        vec![
            ("timely_filing_warning".to_string(), ymd(2026, 1, 16)),
            ("timely_filing_warning".to_string(), ymd(2026, 1, 23)),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timely_filing_warnings_at_stages_until_accepted_postgres() {
    timely_filing_warnings_at_stages_until_accepted(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timely_filing_warnings_at_stages_until_accepted_sqlite() {
    timely_filing_warnings_at_stages_until_accepted(Kind::Sqlite).await;
}

fn denied(claim_id: &str, payer: &str, appealable: bool, category: &str) -> events::ClaimDenied {
    events::ClaimDenied {
        claim_id: claim_id.into(),
        clinic_id: "clinic-1".into(),
        payer_id: payer.into(),
        denial_id: format!("d-{claim_id}"),
        category: category.into(),
        group_code: "CO".into(),
        reason_code: "16".into(),
        appealable,
        amount_cents: 15_000,
        balance_cents: 15_000,
        denial_date: Some(date(ymd(2026, 2, 2))),
        ..Default::default()
    }
}

/// Issue 10: a denial schedules the corrected-claim deadline beside the first-level appeal
/// deadline, on the payer's clock.
async fn denial_sets_corrected_claim_and_appeal_warnings(kind: Kind) {
    let env = Env::new(kind).await;
    let clock = Clock::simulated(at("2026-01-05T15:00:00Z"), Utc::now(), 0.0);
    let replica = env.replica("scheduler-a", clock, settings()).await;
    let handler = replica.scheduler.handler();
    let deadlines = |timers: Vec<store::StoredTimer>| -> Vec<(String, String, String)> {
        timers
            .into_iter()
            .filter(|t| t.kind.ends_with("_deadline_warning"))
            .map(|t| {
                (
                    t.kind,
                    t.payload.deadline.unwrap_or_default(),
                    t.payload.denial_id.unwrap_or_default(),
                )
            })
            .collect()
    };
    // Medicare, appealable: redetermination 120 days from the denial (Feb 2 -> Jun 2); a
    // reopening 365 days from the remittance (Feb 2 2027).
    apply(
        &env,
        &handler,
        "m1",
        1,
        &events::ClaimSubmitted {
            payer_id: "medicare".into(),
            ..submitted_payload("m1", ymd(2026, 1, 5))
        },
    )
    .await;
    apply(
        &env,
        &handler,
        "m1",
        2,
        &denied("m1", "medicare", true, "DENIAL_CATEGORY_CODING_MODIFIER"),
    )
    .await;
    assert_eq!(
        deadlines(timers_in(&env, "m1", None, store::TimerState::Pending).await),
        vec![
            (
                "appeal_deadline_warning".to_string(),
                "2026-06-02".to_string(),
                "d-m1".to_string()
            ),
            (
                "corrected_claim_deadline_warning".to_string(),
                "2027-02-02".to_string(),
                "d-m1".to_string()
            ),
        ]
    );
    // Commercial, not appealable (CO-16 N290): the corrected claim only, 90 days from the
    // remittance, warned 14 days ahead.
    apply(
        &env,
        &handler,
        "k1",
        1,
        &submitted_payload("k1", ymd(2026, 1, 5)),
    )
    .await;
    apply(
        &env,
        &handler,
        "k1",
        2,
        &denied("k1", "87726", false, "DENIAL_CATEGORY_MISSING_INFORMATION"),
    )
    .await;
    let k1 = timers_in(
        &env,
        "k1",
        Some("corrected_claim_deadline_warning"),
        store::TimerState::Pending,
    )
    .await;
    assert_eq!(
        days_of(&k1),
        vec![(
            "corrected_claim_deadline_warning".to_string(),
            ymd(2026, 4, 19)
        )]
    );
    assert_eq!(k1[0].payload.deadline.as_deref(), Some("2026-05-03"));
    assert_eq!(k1[0].payload.lead_days, Some(14));
    assert!(
        timers_in(
            &env,
            "k1",
            Some("appeal_deadline_warning"),
            store::TimerState::Pending
        )
        .await
        .is_empty()
    );
    // A contractual adjustment is not AR work: no deadline.
    apply(
        &env,
        &handler,
        "k2",
        1,
        &submitted_payload("k2", ymd(2026, 1, 5)),
    )
    .await;
    apply(
        &env,
        &handler,
        "k2",
        2,
        &denied("k2", "87726", false, "DENIAL_CATEGORY_CONTRACTUAL"),
    )
    .await;
    assert!(deadlines(timers_in(&env, "k2", None, store::TimerState::Pending).await).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denial_sets_corrected_claim_and_appeal_warnings_postgres() {
    denial_sets_corrected_claim_and_appeal_warnings(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denial_sets_corrected_claim_and_appeal_warnings_sqlite() {
    denial_sets_corrected_claim_and_appeal_warnings(Kind::Sqlite).await;
}

/// Issue 10: a replacement (frequency 7) is the original billed again: its aging counts from
/// the original's bill date, not from its own submission; its status checks from its own.
async fn a_replacement_ages_from_the_originals_bill_date(kind: Kind) {
    let env = Env::new(kind).await;
    let clock = Clock::simulated(at("2026-01-05T15:00:00Z"), Utc::now(), 0.0);
    let replica = env.replica("scheduler-a", clock, settings()).await;
    let handler = replica.scheduler.handler();
    apply(
        &env,
        &handler,
        "orig",
        1,
        &submitted_payload("orig", ymd(2026, 1, 5)),
    )
    .await;
    let replacement = events::ClaimSubmitted {
        submission_date: Some(date(ymd(2026, 2, 10))),
        original_claim_id: "orig".into(),
        ..submitted_payload("repl", ymd(2026, 2, 10))
    };
    apply(&env, &handler, "repl", 1, &replacement).await;
    let pending = timers_in(&env, "repl", None, store::TimerState::Pending).await;
    let aging: Vec<_> = days_of(&pending)
        .into_iter()
        .filter(|(k, _)| k.starts_with("aging_"))
        .collect();
    assert_eq!(
        aging,
        [
            ("aging_30".to_string(), ymd(2026, 2, 4)),
            ("aging_60".to_string(), ymd(2026, 3, 6)),
            ("aging_90".to_string(), ymd(2026, 4, 5)),
        ]
    );
    assert!(
        days_of(&pending)
            .iter()
            .any(|(k, d)| k == "status_check" && *d > ymd(2026, 2, 10)),
        "the status checks follow the replacement's own submission"
    );
    assert_eq!(
        projection_of(&env, "repl").await.first_submission_date,
        Some(ymd(2026, 1, 5))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_ages_from_the_originals_bill_date_postgres() {
    a_replacement_ages_from_the_originals_bill_date(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_ages_from_the_originals_bill_date_sqlite() {
    a_replacement_ages_from_the_originals_bill_date(Kind::Sqlite).await;
}
