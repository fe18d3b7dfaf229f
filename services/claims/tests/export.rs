//! ExportClaim837 through the service's gRPC methods, on both backends: every export is a new
//! interchange with the tenant's next control number (ISA13 = IEA02), never the clock's.
#![allow(clippy::unwrap_used)]

use arflow_api::claims::v1 as pb;
use arflow_api::claims::v1::claims_service_server::ClaimsService;
use arflow_api::common::v1::Date;
use arflow_claims::grpc::ClaimsApi;
use arflow_claims::intake::Intake;
use arflow_domain::rules::PayerRuleSet;
use arflow_platform::auth::{Principal, Role};
use arflow_platform::{Clock, Db};
use arflow_testkit::{PgDatabase, SqliteFile};
use chrono::{TimeZone, Utc};
use tonic::Request;

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

fn claim(pcn: &str) -> pb::Claim {
    let line = |code: &str, minutes: i32, cents: i64, pointers: Vec<i32>| pb::ServiceLine {
        service_date: date(2026, 5, 4),
        procedure_code: code.into(),
        units: 1,
        minutes,
        charge_cents: cents,
        place_of_service: "11".into(),
        diagnosis_pointers: pointers,
        ..Default::default()
    };
    pb::Claim {
        clinic_id: "clinic-a".into(),
        external_id: pcn.into(),
        patient: Some(pb::Patient {
            id: format!("pt-{pcn}"),
            first_name: "Jordan".into(),
            last_name: "Rivera".into(),
            birth_date: date(1988, 4, 12),
            member_id: "UHC123456789".into(),
        }),
        payer: Some(pb::Payer {
            id: "87726".into(),
            name: "UnitedHealthcare".into(),
        }),
        rendering_provider: Some(pb::Provider {
            npi: "1234567893".into(),
            name: "Dana Okafor".into(),
            credential: pb::ProviderCredential::Lcsw as i32,
        }),
        billing_provider: Some(pb::Provider {
            npi: "1245319599".into(),
            name: "Calm Harbor Counseling".into(),
            credential: 0,
        }),
        diagnoses: vec!["F41.1".into(), "F33.1".into()],
        service_lines: vec![
            line("90837", 55, 18_000, vec![1, 2]),
            line("90785", 0, 2_500, vec![1]),
        ],
        submission_date: date(2026, 5, 6),
        ..Default::default()
    }
}

fn export_request(claim_id: &str) -> pb::ExportClaim837Request {
    let address = Some(pb::PostalAddress {
        line1: "1 MAIN ST".into(),
        line2: String::new(),
        city: "SPRINGFIELD".into(),
        state: "IL".into(),
        postal_code: "62701".into(),
    });
    pb::ExportClaim837Request {
        claim_id: claim_id.into(),
        submitter_id: "ARF1".into(),
        submitter_name: "ARFLOW RCM".into(),
        receiver_id: "CLEARHOUSE".into(),
        receiver_name: "CLEARING HOUSE".into(),
        billing_provider_address: address.clone(),
        billing_provider_tax_id: "123456789".into(),
        subscriber_gender: "U".into(),
        subscriber_address: address,
        claim_filing_indicator: "CI".into(),
        ..Default::default()
    }
}

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
    let text = String::from_utf8(x12.to_vec()).unwrap();
    let element = |id: &str, n: usize| {
        text.split('~')
            .map(str::trim)
            .find(|s| s.starts_with(id))
            .and_then(|s| s.split('*').nth(n))
            .unwrap()
            .to_string()
    };
    (element("ISA*", 13), element("IEA*", 2))
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
                claim: Some(claim(pcn)),
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
