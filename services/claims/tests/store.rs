//! The claims store on both backends: the same test bodies against Postgres and SQLite.
#![allow(clippy::unwrap_used)]

use arflow_claims::store::{self, ListFilter, NewClaim, TenantId};
use arflow_domain::{ClaimStatus, Money, ValidClaim, fixtures, validate_claim};
use arflow_platform::Db;
use arflow_testkit::{PgDatabase, SqliteFile};
use chrono::{NaiveDate, TimeZone, Utc};
use sqlx::Row;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()
}

fn valid(pcn: &str) -> ValidClaim {
    let mut input = fixtures::valid_claim_input(today());
    input.external_id = pcn.into();
    validate_claim(&input, today()).unwrap()
}

fn item(pcn: &str, request: &str) -> NewClaim {
    NewClaim {
        request_id: request.into(),
        request_hash: format!("hash-{pcn}"),
        claim: valid(pcn),
        warnings: Vec::new(),
    }
}

async fn outbox_count(db: &Db, event_type: &str) -> i64 {
    sqlx::query("SELECT COALESCE(SUM(events), 0) AS n FROM bus_outbox WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get::<i64, _>("n")
        .unwrap()
}

async fn store_contract(db: Db) {
    let t = TenantId::new("acme");
    let other = TenantId::new("globex");
    let now = Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap();

    // Batch path: all new, one transaction.
    let items: Vec<NewClaim> = (0..5)
        .map(|i| item(&format!("B{i}"), &format!("r{i}")))
        .collect();
    let results = store::create_claims(&db, &t, "key:k1", &items, now).await;
    assert!(results.iter().all(|r| matches!(r, Ok(c) if !c.replayed)));
    assert_eq!(
        outbox_count(&db, "arflow.events.v1.ClaimSubmitted").await,
        5,
        "one event per claim, same tx"
    );

    // A chunk with a retry and a duplicate PCN falls back to per-item with precise outcomes.
    let mixed = vec![
        item("B0", "r0"),
        item("C1", "r-c1"),
        item("B1", "r-new-id-same-pcn"),
    ];
    let results = store::create_claims(&db, &t, "key:k1", &mixed, now).await;
    assert!(matches!(&results[0], Ok(c) if c.replayed));
    assert!(matches!(&results[1], Ok(c) if !c.replayed));
    assert!(matches!(
        &results[2],
        Err(store::Error::DuplicateExternalId)
    ));
    assert_eq!(
        outbox_count(&db, "arflow.events.v1.ClaimSubmitted").await,
        6
    );

    // A reused request id with other content is refused.
    let mut reused = item("Z9", "r0");
    reused.request_hash = "different".into();
    assert!(matches!(
        store::create_one(&db, &t, "k", &reused, now).await,
        Err(store::Error::RequestIdReused)
    ));

    // Reads round-trip the validated claim, scoped by tenant.
    let id = results[1].as_ref().unwrap().claim.id.clone();
    let got = store::get_claim(&db, &t, &id).await.unwrap().unwrap();
    assert_eq!(got.claim, valid("C1"));
    assert_eq!(got.balance, Money::from_cents(20_500));
    assert!(store::get_claim(&db, &other, &id).await.unwrap().is_none());

    // Status changes follow the state machine and write history and events.
    let moved = store::update_status(
        &db,
        &t,
        &id,
        ClaimStatus::Denied,
        "CO-197",
        None,
        "key:k2",
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        (moved.claim.status, moved.version),
        (ClaimStatus::Denied, 2)
    );
    let illegal = store::update_status(&db, &t, &id, ClaimStatus::Draft, "", None, "k", now).await;
    assert!(matches!(illegal, Err(store::Error::IllegalTransition(_))));
    let stale =
        store::update_status(&db, &t, &id, ClaimStatus::Appealed, "", Some(1), "k", now).await;
    assert!(matches!(
        stale,
        Err(store::Error::VersionMismatch {
            expected: 1,
            found: 2
        })
    ));
    assert!(matches!(
        store::update_status(&db, &other, &id, ClaimStatus::Appealed, "", None, "k", now).await,
        Err(store::Error::NotFound)
    ));
    assert_eq!(
        outbox_count(&db, "arflow.events.v1.ClaimStatusChanged").await,
        1
    );
    let history = store::history(&db, &t, &id).await.unwrap().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].from_status, Some(ClaimStatus::Submitted));
    assert_eq!(history[1].reason, "CO-197");
    assert!(store::history(&db, &other, &id).await.unwrap().is_none());

    // Listing with filters and pages.
    let (denied, _) = store::list_claims(
        &db,
        &t,
        &ListFilter {
            status: Some(ClaimStatus::Denied),
            ..Default::default()
        },
        None,
        10,
    )
    .await
    .unwrap();
    assert_eq!(denied.len(), 1);
    let (page1, next) = store::list_claims(&db, &t, &ListFilter::default(), None, 4)
        .await
        .unwrap();
    let (page2, last) = store::list_claims(&db, &t, &ListFilter::default(), next.as_deref(), 4)
        .await
        .unwrap();
    assert_eq!((page1.len(), page2.len(), last), (4, 2, None));
    assert!(page1.last().unwrap().id > page2[0].id);
    assert!(
        page1.iter().all(|c| c.claim.service_lines.len() == 2),
        "lines are loaded"
    );
    let scoped = ListFilter {
        clinic_scope: vec!["nowhere".into()],
        ..Default::default()
    };
    assert!(
        store::list_claims(&db, &t, &scoped, None, 10)
            .await
            .unwrap()
            .0
            .is_empty()
    );
    let rich = ListFilter {
        min_balance: Some(Money::from_cents(20_501)),
        ..Default::default()
    };
    assert!(
        store::list_claims(&db, &t, &rich, None, 10)
            .await
            .unwrap()
            .0
            .is_empty()
    );
    assert!(
        store::list_claims(&db, &other, &ListFilter::default(), None, 10)
            .await
            .unwrap()
            .0
            .is_empty()
    );
}

#[tokio::test]
async fn store_on_postgres() {
    let pg = PgDatabase::create().await.unwrap();
    let db = Db::connect(&pg.url, 5).await.unwrap();
    db.migrate().await.unwrap();
    store_contract(db).await;
}

#[tokio::test]
async fn store_on_sqlite() {
    let file = SqliteFile::create().unwrap();
    let db = Db::connect(&file.url, 5).await.unwrap();
    db.migrate().await.unwrap();
    store_contract(db).await;
}

/// ISA13 of 837P exports: a per-tenant sequence from 1, never repeated, wrapping after
/// 999999999 (nine digits).
async fn interchange_sequence(db: Db) {
    let (t, other) = (TenantId::new("acme"), TenantId::new("globex"));
    let next = |tenant: TenantId| {
        let db = db.clone();
        async move {
            store::next_interchange_control_number(&db, &tenant)
                .await
                .unwrap()
        }
    };
    assert_eq!(next(t.clone()).await, 1);
    assert_eq!(next(t.clone()).await, 2);
    assert_eq!(
        next(other.clone()).await,
        1,
        "each tenant has its own sequence"
    );
    let mut taken: Vec<u32> = futures::future::join_all((0..8).map(|_| next(t.clone()))).await;
    taken.sort_unstable();
    taken.dedup();
    assert_eq!(taken.len(), 8, "concurrent exports never share a number");
    sqlx::query("UPDATE claims_interchange_seq SET last_control_number = $1 WHERE tenant_id = $2")
        .bind(999_999_998_i64)
        .bind("acme")
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(next(t.clone()).await, 999_999_999);
    assert_eq!(next(t.clone()).await, 1, "wraps to 1 after nine digits");
    assert_eq!(next(other).await, 2);
}

#[tokio::test]
async fn interchange_sequence_on_postgres() {
    let pg = PgDatabase::create().await.unwrap();
    let db = Db::connect(&pg.url, 5).await.unwrap();
    db.migrate().await.unwrap();
    interchange_sequence(db).await;
}

#[tokio::test]
async fn interchange_sequence_on_sqlite() {
    let file = SqliteFile::create().unwrap();
    let db = Db::connect(&file.url, 5).await.unwrap();
    db.migrate().await.unwrap();
    interchange_sequence(db).await;
}
