//! ExportClaim837 through the service's gRPC methods, on both backends: every export is a new
//! interchange with the tenant's next control number (ISA13 = IEA02), never the clock's.
#![allow(clippy::unwrap_used)]

use arflow_api::claims::v1 as pb;
use arflow_api::claims::v1::claims_service_server::ClaimsService;
use arflow_claims::grpc::ClaimsApi;
use arflow_claims::intake::Intake;
use arflow_domain::rules::PayerRuleSet;
use arflow_platform::auth::{Principal, Role};
use arflow_platform::{Clock, Db};
use arflow_testkit::fixtures::{claim, element, export_request};
use arflow_testkit::{PgDatabase, SqliteFile};
use chrono::{TimeZone, Utc};
use tonic::Request;

fn request<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(Principal {
        key_id: "k1".into(),
        tenant_id: "acme".into(),
        role: Role::Admin,
        clinic_ids: Vec::new(),
    });
    request
}

/// ISA13 and IEA02 of an interchange.
fn control_numbers(x12: &[u8]) -> (String, String) {
    (element(x12, "ISA*", 13), element(x12, "IEA*", 2))
}

async fn exports_take_the_next_control_number(db: Db) {
    let start = Utc.with_ymd_and_hms(2026, 5, 10, 12, 0, 0).unwrap();
    // A stopped clock: the old clock-derived numbers would repeat here.
    let clock = Clock::simulated(start, Utc::now(), 0.0);
    let api = ClaimsApi::new(
        db.clone(),
        clock.clone(),
        Intake::new(db, clock, PayerRuleSet::default()),
    );
    let mut seen = Vec::new();
    for pcn in ["EXP-1", "EXP-2"] {
        let created = api
            .create_claim(request(pb::CreateClaimRequest {
                request_id: format!("r-{pcn}"),
                claim: Some(claim("clinic-a", pcn)),
            }))
            .await
            .unwrap()
            .into_inner()
            .claim
            .unwrap();
        let export = api
            .export_claim837(request(export_request(&created.id)))
            .await
            .unwrap()
            .into_inner();
        let doc = arflow_x12::read(&export.content);
        assert!(doc.problems.is_empty(), "{:?}", doc.problems);
        let (isa13, iea02) = control_numbers(&export.content);
        assert_eq!(iea02, isa13, "IEA02 repeats ISA13");
        seen.push(isa13);
    }
    assert_eq!(seen, ["000000001", "000000002"], "one sequence per tenant");
}

#[tokio::test]
async fn export_on_postgres() {
    let pg = PgDatabase::create().await.unwrap();
    let db = Db::connect(&pg.url, 5).await.unwrap();
    db.migrate().await.unwrap();
    exports_take_the_next_control_number(db).await;
}

#[tokio::test]
async fn export_on_sqlite() {
    let file = SqliteFile::create().unwrap();
    let db = Db::connect(&file.url, 5).await.unwrap();
    db.migrate().await.unwrap();
    exports_take_the_next_control_number(db).await;
}
