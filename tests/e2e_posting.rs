//! End-to-end: payer files posted through the gRPC API onto claims, on Postgres + Redis.
//! 835 ERAs (payments, contractual and patient adjustments, denials, a reversal with its
//! re-adjudication, provider adjustments, an unmatched claim), 277CA acknowledgements, denial
//! analytics, corrections and 837P export. Public sample files are posted too when
//! ARFLOW_X12_SAMPLES names their folder.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use arflow_api::claims::v1 as pb;
use arflow_testkit::fixtures::export_request;
use arflow_testkit::{PgDatabase, RedisPrefix, eventually};
use common::{Server, claim, create, date, element, get_claim, interchange, new_claim};
use prost::Message as _;
use redis::AsyncCommands as _;

/// The first ERA: ERA-1 paid (contractual + coinsurance), ERA-2 denied for authorization,
/// ERA-3 partly paid with a modifier denial, an unknown claim, and an interest PLB.
fn era_one() -> String {
    interchange(
        "HP",
        "005010X221A1",
        &[
            "BPR*I*372.5*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20261101",
            "TRN*1*CHK1001*1512345678",
            "DTM*405*20261101",
            "N1*PR*UNITEDHEALTHCARE*XV*87726",
            "N3*PO BOX 1",
            "N4*ATLANTA*GA*30301",
            "PER*BL*EDI*TE*8005551212",
            "N1*PE*CALM HARBOR COUNSELING*XX*1245319599",
            "LX*1",
            "CLP*ERA-1*1*205*150*20*12*ICN0001",
            "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789",
            "SVC*HC:90837:95*180*130**1",
            "DTM*472*20260504",
            "CAS*CO*45*30",
            "CAS*PR*2*20",
            "REF*6R*1",
            "SVC*HC:90785:95*25*20**1",
            "DTM*472*20260504",
            "CAS*CO*45*5",
            "REF*6R*2",
            "CLP*ERA-2*4*205*0*0*12*ICN0002",
            "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789",
            "SVC*HC:90837:95*180*0**1",
            "DTM*472*20260504",
            "CAS*CO*197*180",
            "LQ*HE*N54",
            "SVC*HC:90785:95*25*0**1",
            "DTM*472*20260504",
            "CAS*CO*197*25",
            "CLP*ERA-3*2*205*140*0*12*ICN0003",
            "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789",
            "SVC*HC:90837:95*180*140**1",
            "DTM*472*20260504",
            "CAS*CO*45*40",
            "SVC*HC:90785:95*25*0**1",
            "DTM*472*20260504",
            "CAS*CO*4*25",
            "LQ*HE*M20",
            "CLP*UNKNOWN-9*1*100*80*0*12*ICN0009",
            "CAS*CO*45*20",
            "NM1*QC*1*DOE*JANE****MI*X1",
            "PLB*1245319599*20261231*L6:INT1*-2.5",
        ],
    )
}

/// The second ERA: ERA-1's payment reversed and re-adjudicated lower; net zero check.
fn era_two() -> String {
    interchange(
        "HP",
        "005010X221A1",
        &[
            "BPR*H*0*C*NON************20261115",
            "TRN*1*CHK1002*1512345678",
            "N1*PR*UNITEDHEALTHCARE*XV*87726",
            "N1*PE*CALM HARBOR COUNSELING*XX*1245319599",
            "LX*1",
            "CLP*ERA-1*22*-205*-150*-20*12*ICN0001",
            "SVC*HC:90837:95*-180*-130**-1",
            "CAS*CO*45*-30",
            "CAS*PR*2*-20",
            "SVC*HC:90785:95*-25*-20**-1",
            "CAS*CO*45*-5",
            "CLP*ERA-1*1*205*100*50*12*ICN0001",
            "SVC*HC:90837:95*180*90**1",
            "CAS*CO*45*50",
            "CAS*PR*2*40",
            "SVC*HC:90785:95*25*10**1",
            "CAS*CO*45*5",
            "CAS*PR*2*10",
            "PLB*1245319599*20261231*FB:OFFSET1*-50",
        ],
    )
}

fn ack_277ca() -> String {
    interchange(
        "HN",
        "005010X214",
        &[
            "BHT*0085*08*ACK1*20261102*1200*TH",
            "HL*1**20*1",
            "NM1*PR*2*UNITEDHEALTHCARE*****PI*87726",
            "TRN*1*BATCH1",
            "DTP*050*D8*20261102",
            "DTP*009*D8*20261102",
            "HL*2*1*21*1",
            "NM1*41*2*CALM HARBOR COUNSELING*****46*ARF1",
            "TRN*2*BATCH1",
            "STC*A1:19:PR*20261102*WQ*410",
            "HL*3*2*19*1",
            "NM1*85*2*CALM HARBOR COUNSELING*****XX*1245319599",
            "TRN*1*0",
            "STC*A1:19:PR**WQ*410",
            "HL*4*3*PT",
            "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789",
            "TRN*2*ACK-1",
            "STC*A2:20:PR*20261102*WQ*205",
            "REF*1K*ICN0100",
            "DTP*472*D8*20260504",
            "HL*5*3*PT",
            "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789",
            "TRN*2*ACK-2",
            "STC*A7:562:85*20261102*U*205",
            "DTP*472*D8*20260504",
            "HL*6*3*PT",
            "NM1*QC*1*DOE*JANE****MI*X1",
            "TRN*2*NOT-OURS",
            "STC*A2:20:PR*20261102*WQ*50",
        ],
    )
}

/// Event types on the claims stream, counted.
async fn stream_event_types(redis: &RedisPrefix) -> BTreeMap<String, usize> {
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let entries: redis::streams::StreamRangeReply = conn
        .xrange_all(format!("{}stream:claims", redis.prefix))
        .await
        .unwrap();
    let mut counts = BTreeMap::new();
    for e in entries.ids {
        let bytes: Vec<u8> = e.get("envelope").unwrap();
        let env = arflow_api::events::v1::Envelope::decode(bytes.as_slice()).unwrap();
        *counts
            .entry(
                env.event_type
                    .trim_start_matches("arflow.events.v1.")
                    .to_string(),
            )
            .or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn remittances_post_payments_denials_reversals_once() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;
    let (c1, c2, c3) = (
        new_claim(&mut api, "ERA-1").await,
        new_claim(&mut api, "ERA-2").await,
        new_claim(&mut api, "ERA-3").await,
    );
    let unpaid_original = new_claim(&mut api, "NOPAY-1").await;

    let post = |content: String| pb::PostRemittanceRequest {
        file_name: "era.835".into(),
        content: content.into_bytes(),
    };
    let report = api
        .post_remittance(post(era_one()))
        .await
        .unwrap()
        .into_inner();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.remittances.len(), 1);
    let r = &report.remittances[0];
    assert!(!r.already_posted);
    assert_eq!(
        (
            r.trace_number.as_str(),
            r.payer_id.as_str(),
            r.payee_id.as_str()
        ),
        ("CHK1001", "87726", "1245319599")
    );
    assert_eq!(r.payment_cents, 37_250);
    assert_eq!(r.provider_adjustment_cents, -250);
    assert!(r.balance_problems.is_empty(), "{:?}", r.balance_problems);
    assert_eq!(r.claims.len(), 4);
    let unknown = &r.claims[3];
    assert!(unknown.claim_id.is_empty());
    assert!(unknown.unmatched_reason.contains("no claim"));

    // Balances and statuses follow the payer.
    let paid = get_claim(&mut api, &c1.id).await;
    assert_eq!(
        (paid.status, paid.balance_cents, paid.paid_cents),
        (pb::ClaimStatus::Paid as i32, 0, 15_000)
    );
    assert_eq!(paid.payer_claim_control_number, "ICN0001");
    let denied = get_claim(&mut api, &c2.id).await;
    assert_eq!(
        (denied.status, denied.balance_cents),
        (pb::ClaimStatus::Denied as i32, 20_500),
        "denied money stays owed"
    );
    let partial = get_claim(&mut api, &c3.id).await;
    assert_eq!(
        (partial.status, partial.balance_cents, partial.paid_cents),
        (pb::ClaimStatus::PartiallyPaid as i32, 2_500, 14_000)
    );

    // Denials read from the adjustments, classified.
    let denials = api
        .list_denials(pb::ListDenialsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .denials;
    assert_eq!(denials.len(), 3);
    let auth: Vec<&pb::Denial> = denials.iter().filter(|d| d.claim_id == c2.id).collect();
    assert_eq!(auth.len(), 2);
    assert!(
        auth.iter()
            .all(|d| d.category == pb::DenialCategory::Authorization as i32
                && d.reason_code == "197")
    );
    assert_eq!(auth.iter().map(|d| d.amount_cents).sum::<i64>(), 20_500);
    assert!(
        auth.iter()
            .any(|d| d.remark_codes.contains(&"N54".to_string()))
    );
    let coding = denials.iter().find(|d| d.claim_id == c3.id).unwrap();
    assert_eq!(
        (coding.category, coding.procedure_code.as_str()),
        (pb::DenialCategory::CodingModifier as i32, "90785")
    );
    assert!(!coding.resolution.is_empty() && !coding.owner.is_empty());
    assert_eq!(
        coding.denial_date,
        date(2026, 11, 1),
        "the appeal clock starts at the remittance date"
    );
    let summary = api
        .summarize_denials(pb::SummarizeDenialsRequest {
            denied_from: date(2026, 11, 1),
            denied_to: date(2026, 11, 30),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (summary.total_count, summary.total_amount_cents),
        (3, 23_000)
    );
    assert_eq!(
        summary.rows[0].category,
        pb::DenialCategory::Authorization as i32
    );
    assert_eq!(
        (
            summary.rows[0].procedure_code.as_str(),
            summary.rows[0].amount_cents
        ),
        ("90837", 18_000)
    );
    let unmatched = api
        .list_unmatched_payments(pb::ListUnmatchedPaymentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unmatched.payments.len(), 1);
    assert_eq!(
        (
            unmatched.payments[0].patient_control_number.as_str(),
            unmatched.payments[0].paid_cents
        ),
        ("UNKNOWN-9", 8_000)
    );

    // The same ERA again, as the same file or re-saved with other line breaks: nothing changes.
    let again = api
        .post_remittance(post(era_one()))
        .await
        .unwrap()
        .into_inner();
    assert!(again.remittances[0].already_posted);
    assert_eq!(
        again.file_id, report.file_id,
        "same bytes, same stored file"
    );
    let resaved = api
        .post_remittance(post(era_one().replace('\n', "\r\n")))
        .await
        .unwrap()
        .into_inner();
    assert!(resaved.remittances[0].already_posted);
    assert_ne!(resaved.file_id, report.file_id, "another file, stored too");
    assert_eq!(get_claim(&mut api, &c1.id).await.version, paid.version);
    assert_eq!(
        api.list_denials(pb::ListDenialsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .denials
            .len(),
        3
    );

    // Reversal and re-adjudication: a new linked posting, never an edit.
    let second = api
        .post_remittance(post(era_two()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        second.remittances[0].balance_problems.is_empty(),
        "{:?}",
        second.remittances[0].balance_problems
    );
    assert!(second.remittances[0].claims[0].reversal);
    let readjusted = get_claim(&mut api, &c1.id).await;
    assert_eq!(
        (
            readjusted.status,
            readjusted.balance_cents,
            readjusted.paid_cents
        ),
        (pb::ClaimStatus::Paid as i32, 0, 10_000)
    );
    let payments = api
        .get_claim_payments(pb::GetClaimPaymentsRequest {
            claim_id: c1.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .payments;
    assert_eq!(payments.len(), 3);
    assert_eq!(payments[1].reverses_payment_id, payments[0].id);
    assert_eq!(payments.iter().map(|p| p.paid_cents).sum::<i64>(), 10_000);
    let history = api
        .get_claim_history(pb::GetClaimHistoryRequest {
            claim_id: c1.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let path: Vec<i32> = history.iter().map(|e| e.to_status).collect();
    assert_eq!(
        path,
        vec![
            pb::ClaimStatus::Submitted as i32,
            pb::ClaimStatus::Paid as i32,
            pb::ClaimStatus::Pending as i32,
            pb::ClaimStatus::Paid as i32
        ]
    );

    // Events went through the outbox to the stream.
    let counts = eventually(Duration::from_secs(10), || {
        let redis = &redis;
        async move {
            let c = stream_event_types(redis).await;
            (c.get("RemittancePosted") == Some(&2)).then_some(c)
        }
    })
    .await
    .unwrap();
    assert_eq!(counts.get("ClaimDenied"), Some(&3));
    assert_eq!(
        counts.get("ClaimPaid"),
        Some(&4),
        "ERA-1, ERA-3, the reversal and the re-payment"
    );
    assert!(counts.get("ClaimStatusChanged").copied().unwrap_or(0) >= 5);

    // A coding denial is corrected and resubmitted: frequency 7, linked, exported as 837P.
    let mut fixed = claim("clinic-a", "ERA-3");
    fixed.service_lines[1].modifiers = vec!["95".into(), "59".into()];
    let corrected = api
        .correct_claim(pb::CorrectClaimRequest {
            request_id: "fix-3".into(),
            original_claim_id: c3.id.clone(),
            claim: Some(fixed),
        })
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    assert_eq!(
        (corrected.frequency, corrected.original_claim_id.as_str()),
        (pb::ClaimFrequency::Replacement as i32, c3.id.as_str())
    );
    assert_eq!(corrected.external_id, "ERA-3");
    let export = api
        .export_claim837(export_request(&corrected.id))
        .await
        .unwrap()
        .into_inner();
    let doc = arflow_x12::read(&export.content);
    assert!(doc.problems.is_empty(), "{:?}", doc.problems);
    let text = String::from_utf8(export.content).unwrap();
    assert!(text.contains("CLM*ERA-3*205***10:B:7"), "{text}");
    assert!(
        text.contains("REF*F8*ICN0003"),
        "the payer's original claim number goes in REF*F8"
    );
    let bad = pb::ExportClaim837Request {
        billing_provider_tax_id: String::new(),
        ..export_request(&c1.id)
    };
    let refused = api.export_claim837(bad).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    use tonic_types::StatusExt as _;
    let fields: Vec<String> = refused
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, vec!["billing_provider_tax_id"]);
    // A replacement whose original has no payer claim number yet cannot carry REF*F8.
    let orphan_fix = api
        .correct_claim(pb::CorrectClaimRequest {
            request_id: "fix-2".into(),
            original_claim_id: unpaid_original.id.clone(),
            claim: Some(claim("clinic-a", "NOPAY-1")),
        })
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    assert_eq!(
        api.export_claim837(export_request(&orphan_fix.id))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::FailedPrecondition
    );

    // Not an 835: a clear report, nothing posted.
    let wrong = api
        .post_remittance(post(ack_277ca()))
        .await
        .unwrap()
        .into_inner();
    assert!(wrong.remittances.is_empty());
    assert!(
        wrong
            .problems
            .iter()
            .any(|p| p.blocking && p.message.contains("835"))
    );
    let empty = api.post_remittance(post(String::new())).await.unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn status_reports_move_claims_and_keep_rejections_visible() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;
    let (a, b) = (
        new_claim(&mut api, "ACK-1").await,
        new_claim(&mut api, "ACK-2").await,
    );

    let req = || pb::PostStatusReportRequest {
        file_name: "ack.277".into(),
        content: ack_277ca().into_bytes(),
    };
    let report = api.post_status_report(req()).await.unwrap().into_inner();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let by_pcn: BTreeMap<&str, &pb::StatusReportClaimResult> = report
        .claims
        .iter()
        .map(|c| (c.patient_control_number.as_str(), c))
        .collect();
    assert_eq!(
        by_pcn["ACK-1"].claim_status,
        pb::ClaimStatus::Accepted as i32
    );
    assert_eq!(
        by_pcn["ACK-2"].claim_status,
        pb::ClaimStatus::Rejected as i32
    );
    assert!(by_pcn["ACK-2"].note.contains("filing clock"));
    assert!(by_pcn["NOT-OURS"].claim_id.is_empty());
    assert_eq!(
        get_claim(&mut api, &a.id).await.status,
        pb::ClaimStatus::Accepted as i32
    );
    let rejected = get_claim(&mut api, &b.id).await;
    assert_eq!(rejected.status, pb::ClaimStatus::Rejected as i32);
    let history = api
        .get_claim_history(pb::GetClaimHistoryRequest {
            claim_id: b.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(
        history.last().unwrap().reason,
        "277CA A7:562",
        "the rejection reason is kept"
    );

    // Posting the same report again changes nothing.
    let again = api.post_status_report(req()).await.unwrap().into_inner();
    assert!(
        again
            .claims
            .iter()
            .filter(|c| !c.claim_id.is_empty())
            .all(|c| c.note == "already in this status")
    );
    assert_eq!(get_claim(&mut api, &b.id).await.version, rejected.version);
}

#[tokio::test]
async fn scrubbing_rejects_billing_rule_errors_and_keeps_warnings() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;

    // 90837 needs 53+ minutes; 40 minutes is a 90834.
    let mut short = claim("clinic-a", "SCRUB-1");
    short.service_lines[0].minutes = 40;
    let check = api
        .scrub_claim(pb::ScrubClaimRequest {
            claim: Some(short.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!check.accepted);
    assert!(
        check
            .findings
            .iter()
            .any(|f| f.severity == pb::ScrubSeverity::Error as i32
                && f.field == "claim.service_lines[0].minutes")
    );
    let refused = api.create_claim(create(short, "s-1")).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        api.list_claims(pb::ListClaimsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .claims
            .is_empty(),
        "ScrubClaim stores nothing"
    );

    // Both telehealth modifiers on one line is an error, caught in bulk too.
    let mut both = claim("clinic-a", "SCRUB-2");
    both.service_lines[0].modifiers = vec!["93".into(), "95".into()];
    let items = vec![
        pb::ImportClaimsRequest {
            request_id: "b-1".into(),
            claim: Some(both),
        },
        pb::ImportClaimsRequest {
            request_id: "b-2".into(),
            claim: Some(claim("clinic-a", "SCRUB-3")),
        },
    ];
    let bulk = api
        .import_claims(tokio_stream::iter(items))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((bulk.accepted_count, bulk.rejected_count), (1, 1));
    assert!(
        bulk.results[0]
            .field_violations
            .iter()
            .any(|v| v.field.starts_with("claim.service_lines[0]"))
    );
}

/// Public 835 samples: claims are created for their CLP01s, then the files are posted.
#[tokio::test]
async fn public_835_samples_post() {
    let Ok(folder) = std::env::var("ARFLOW_X12_SAMPLES") else {
        eprintln!("ARFLOW_X12_SAMPLES is not set: public sample files skipped");
        return;
    };
    let path = std::path::Path::new(&folder).join("tastypackets__x12-parser/profee.edi");
    let Ok(content) = std::fs::read(&path) else {
        eprintln!("{} not found: skipped", path.display());
        return;
    };
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;
    // The sample is de-identified: its three CLPs share one patient control number, so they
    // all post to the one claim made for it (in file order).
    let doc = arflow_x12::read(&content);
    let mut created: BTreeMap<String, String> = BTreeMap::new();
    let mut clp_paid = 0;
    for (_, remit) in doc.remittances() {
        // The claims are the payee's: their billing provider is the ERA's N1*PE NPI.
        let payee_npi = remit
            .payee
            .as_ref()
            .filter(|p| p.id_qualifier.as_ref().is_some_and(|q| q.as_ref() == "XX"))
            .and_then(|p| p.id.as_ref())
            .map(|id| id.to_string());
        for clp in &remit.claims {
            clp_paid += clp.paid.unwrap().cents();
            let pcn = clp.patient_control_number.to_string();
            if created.contains_key(&pcn) {
                continue;
            }
            let mut c = claim("clinic-a", &pcn);
            if let (Some(npi), Some(billing)) = (&payee_npi, c.billing_provider.as_mut()) {
                billing.npi = npi.clone();
            }
            c.service_lines.truncate(1);
            // ...for the sample's date of service, billed the same week.
            let dos = clp
                .statement_from
                .or_else(|| clp.lines.iter().find_map(|l| l.service_date));
            if let Some(dos) = dos {
                use chrono::Datelike as _;
                let billed = dos + chrono::Days::new(5);
                c.service_lines[0].service_date =
                    date(dos.year(), dos.month() as i32, dos.day() as i32);
                c.submission_date = date(billed.year(), billed.month() as i32, billed.day() as i32);
            }
            c.service_lines[0].charge_cents = clp.charge.unwrap().cents();
            let made = api
                .create_claim(create(c, &pcn))
                .await
                .unwrap()
                .into_inner()
                .claim
                .unwrap();
            created.insert(pcn, made.id);
        }
    }
    let report = api
        .post_remittance(pb::PostRemittanceRequest {
            file_name: "profee.edi".into(),
            content,
        })
        .await
        .unwrap()
        .into_inner();
    let r = &report.remittances[0];
    assert!(
        r.balance_problems.is_empty(),
        "the README says profee.edi balances: {:?}",
        r.balance_problems
    );
    assert_eq!(r.claims.len(), 3);
    assert!(
        r.claims.iter().all(|c| !c.claim_id.is_empty()),
        "every CLP matched"
    );
    assert_eq!(r.payment_cents, clp_paid, "BPR02 = sum of CLP04 (no PLB)");
    let paid: i64 = {
        let mut total = 0;
        for id in created.values() {
            let c = get_claim(&mut api, id).await;
            assert_ne!(
                c.status,
                pb::ClaimStatus::Submitted as i32,
                "posting moved the claim"
            );
            total += c.paid_cents;
        }
        total
    };
    assert_eq!(paid, clp_paid, "every payment reached its claim");
}

/// Public 277CA samples: claims are created for their patient control numbers, then posted.
#[tokio::test]
async fn public_277ca_samples_post() {
    let Ok(folder) = std::env::var("ARFLOW_X12_SAMPLES") else {
        eprintln!("ARFLOW_X12_SAMPLES is not set: public sample files skipped");
        return;
    };
    let dir = std::path::Path::new(&folder).join("imsweb__x12-parser");
    let (Ok(accepted), Ok(rejected)) = (
        std::fs::read(dir.join("x12_277CA_accepted.txt")),
        std::fs::read(dir.join("x12_277CA_rejected.txt")),
    ) else {
        eprintln!("imsweb 277CA samples not found: skipped");
        return;
    };
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;
    // The claim-level TRN02s of the two files (the README lists their STC categories).
    let ok = new_claim(&mut api, "5781").await;
    let bad = new_claim(&mut api, "3920394930203").await;
    for (name, content) in [("accepted", accepted), ("rejected", rejected)] {
        let report = api
            .post_status_report(pb::PostStatusReportRequest {
                file_name: name.into(),
                content,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            report.problems.iter().all(|p| !p.blocking),
            "{name}: {:?}",
            report.problems
        );
    }
    assert_eq!(
        get_claim(&mut api, &ok.id).await.status,
        pb::ClaimStatus::Accepted as i32,
        "STC A2"
    );
    assert_eq!(
        get_claim(&mut api, &bad.id).await.status,
        pb::ClaimStatus::Rejected as i32,
        "STC A7:562"
    );
}

/// ISA13 of an exported interchange, and IEA02, which must repeat it.
fn interchange_control_numbers(content: &[u8]) -> (String, String) {
    (element(content, "ISA*", 13), element(content, "IEA*", 2))
}

#[tokio::test]
async fn every_export_is_a_new_interchange_with_the_tenants_next_control_number() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut acme = server.client(&server.key("acme", "partner", &[])).await;
    let mut other = server.client(&server.key("other", "partner", &[])).await;
    let a = new_claim(&mut acme, "ISA-1").await;
    let b = new_claim(&mut acme, "ISA-2").await;
    let c = new_claim(&mut other, "ISA-3").await;
    let mut seen = Vec::new();
    // The same claim exported twice is two interchanges: a clearinghouse rejects a reused ISA13.
    for id in [&a.id, &a.id, &b.id] {
        let export = acme
            .export_claim837(export_request(id))
            .await
            .unwrap()
            .into_inner();
        let (isa13, iea02) = interchange_control_numbers(&export.content);
        assert_eq!(isa13, iea02, "IEA02 repeats ISA13");
        seen.push(isa13);
    }
    assert_eq!(seen, ["000000001", "000000002", "000000003"]);
    let export = other
        .export_claim837(export_request(&c.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        interchange_control_numbers(&export.content).0,
        "000000001",
        "each tenant keeps its own sequence"
    );
}

/// An ERA paying one claim `pcn` of the payee `payee_npi`: $150 charged, $100 paid, CO-45 $50.
fn era_for(trace: &str, payee_npi: &str, pcn: &str) -> String {
    interchange(
        "HP",
        "005010X221A1",
        &[
            "BPR*I*100*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20261101",
            &format!("TRN*1*{trace}*1512345678"),
            "N1*PR*UNITEDHEALTHCARE*XV*87726",
            &format!("N1*PE*CLINIC*XX*{payee_npi}"),
            "LX*1",
            &format!("CLP*{pcn}*1*150*100*0*12*ICN-{trace}"),
            "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789",
            "CAS*CO*45*50",
        ],
    )
}

/// Two clinics of one billing company both have claim `1001`, with their own billing NPIs.
async fn claim_1001(api: &mut common::Client, clinic: &str, npi: &str) -> pb::Claim {
    let mut c = claim(clinic, "1001");
    c.service_lines.truncate(1);
    c.service_lines[0].charge_cents = 15_000;
    c.billing_provider.as_mut().unwrap().npi = npi.into();
    api.create_claim(create(c, &format!("{clinic}-1001")))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap()
}

#[tokio::test]
async fn era_claims_match_the_payees_claim_and_only_what_the_caller_may_see() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;
    const NPI_A: &str = "1245319599";
    const NPI_B: &str = "1234567893";
    let a = claim_1001(&mut api, "clinic-a", NPI_A).await;
    let b = claim_1001(&mut api, "clinic-b", NPI_B).await;
    let post = |trace: &str, npi: &str, pcn: &str| pb::PostRemittanceRequest {
        file_name: format!("{trace}.835"),
        content: era_for(trace, npi, pcn).into_bytes(),
    };

    // Clinic A's ERA pays clinic A's 1001, though clinic B's 1001 is newer.
    let report = api
        .post_remittance(post("T-A", NPI_A, "1001"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.remittances[0].claims[0].claim_id, a.id);
    assert_eq!(get_claim(&mut api, &a.id).await.paid_cents, 10_000);
    assert_eq!(get_claim(&mut api, &b.id).await.paid_cents, 0);

    // A payee none of whose claims has the number: unmatched, with the reason.
    let report = api
        .post_remittance(post("T-X", "9999999995", "1001"))
        .await
        .unwrap()
        .into_inner();
    let unmatched = &report.remittances[0].claims[0];
    assert!(unmatched.claim_id.is_empty());
    assert!(
        unmatched.unmatched_reason.contains("payee"),
        "{}",
        unmatched.unmatched_reason
    );

    // A key of clinic A posting clinic B's ERA: clinic B's claim is not the caller's to pay.
    let mut clinic_a = server
        .client(&server.key("acme", "partner", &["clinic-a"]))
        .await;
    let report = clinic_a
        .post_remittance(post("T-B", NPI_B, "1001"))
        .await
        .unwrap()
        .into_inner();
    let result = &report.remittances[0].claims[0];
    assert!(
        result.claim_id.is_empty(),
        "a clinic-scoped key posts to its clinics' claims only"
    );
    assert_eq!(get_claim(&mut api, &b.id).await.paid_cents, 0);
    assert_eq!(get_claim(&mut api, &a.id).await.paid_cents, 10_000);
}

#[tokio::test]
async fn an_era_with_unreadable_amounts_is_reported_not_checked_never_balanced() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;
    new_claim(&mut api, "NC-1").await;
    let era = interchange(
        "HP",
        "005010X221A1",
        &[
            "BPR*I*150*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20261101",
            "TRN*1*NC-TRACE*1512345678",
            "N1*PR*UNITEDHEALTHCARE*XV*87726",
            "N1*PE*CALM HARBOR COUNSELING*XX*1245319599",
            "LX*1",
            "CLP*NC-1*1*205*150*0*12*ICN-NC",
            "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789",
            // SVC03 cannot be read: neither the line nor the claim can be balanced.
            "SVC*HC:90837:95*180*1x5**1",
            "DTM*472*20260504",
            "CAS*CO*45*55",
        ],
    );
    let report = api
        .post_remittance(pb::PostRemittanceRequest {
            file_name: "unreadable.835".into(),
            content: era.into_bytes(),
        })
        .await
        .unwrap()
        .into_inner();
    let r = &report.remittances[0];
    let not_checked: Vec<(&str, &str)> = r
        .balance_problems
        .iter()
        .filter(|p| p.message.contains("not checked"))
        .map(|p| (p.segment.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        not_checked.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        ["SVC", "CLP"],
        "{:?}",
        r.balance_problems
    );
}

/// A 999 for one 837 transaction set: `verdict` in IK5 and AK9.
fn ack_999(group: &str, set: &str, verdict: &str) -> String {
    let accepted = if verdict == "A" { 1 } else { 0 };
    interchange(
        "FA",
        "005010X231A1",
        &[
            &format!("AK1*HC*{group}*005010X222A1"),
            &format!("AK2*837*{set}*005010X222A1"),
            "IK3*NM1*8*2010*8",
            "IK4*9*67*7*BAD",
            &format!("IK5*{verdict}*5"),
            &format!("AK9*{verdict}*1*1*{accepted}"),
        ],
    )
}

/// GS06 and ST02 of an exported 837P.
fn group_and_set(content: &[u8]) -> (String, String) {
    (element(content, "GS*", 6), element(content, "ST*", 2))
}

#[tokio::test]
async fn a_999_rejection_rejects_the_claim_its_837_carried() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;
    let rejected = new_claim(&mut api, "ACK999-1").await;
    let accepted = new_claim(&mut api, "ACK999-2").await;
    let mut sets = Vec::new();
    for c in [&rejected, &accepted] {
        let export = api
            .export_claim837(export_request(&c.id))
            .await
            .unwrap()
            .into_inner();
        sets.push(group_and_set(&export.content));
    }
    let post = |name: &str, content: String| pb::PostStatusReportRequest {
        file_name: name.into(),
        content: content.into_bytes(),
    };
    let report = api
        .post_status_report(post("r.999", ack_999(&sets[0].0, &sets[0].1, "R")))
        .await
        .unwrap()
        .into_inner();
    assert!(
        report.problems.iter().all(|p| !p.blocking),
        "{:?}",
        report.problems
    );
    assert_eq!(report.claims.len(), 1);
    assert_eq!(report.claims[0].claim_id, rejected.id);
    assert_eq!(report.claims[0].category_code, "999");
    assert_eq!(
        get_claim(&mut api, &rejected.id).await.status,
        pb::ClaimStatus::Rejected as i32
    );
    let history = api
        .get_claim_history(pb::GetClaimHistoryRequest {
            claim_id: rejected.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        format!("{history:?}").contains("999 R"),
        "the history names the 999: {history:?}"
    );
    // An accepted set moves nothing.
    api.post_status_report(post("a.999", ack_999(&sets[1].0, &sets[1].1, "A")))
        .await
        .unwrap();
    assert_eq!(
        get_claim(&mut api, &accepted.id).await.status,
        pb::ClaimStatus::Submitted as i32
    );
}

#[tokio::test]
async fn dates_of_service_confirm_which_claim_an_era_pays() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;
    // One group practice (one billing NPI) bills for two clinics; both used account 2002, for
    // visits on different days.
    let make = |clinic: &str, day: i32| {
        let mut c = claim(clinic, "2002");
        c.service_lines.truncate(1);
        c.service_lines[0].charge_cents = 15_000;
        c.service_lines[0].service_date = date(2026, 5, day);
        c
    };
    let a = api
        .create_claim(create(make("clinic-a", 4), "dos-a"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    let b = api
        .create_claim(create(make("clinic-b", 5), "dos-b"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    let era = |trace: &str, dos: &str| {
        interchange(
            "HP",
            "005010X221A1",
            &[
                "BPR*I*100*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20261101",
                &format!("TRN*1*{trace}*1512345678"),
                "N1*PR*UNITEDHEALTHCARE*XV*87726",
                "N1*PE*CALM HARBOR COUNSELING*XX*1245319599",
                "LX*1",
                &format!("CLP*2002*1*150*100*0*12*ICN-{trace}"),
                "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789",
                "SVC*HC:90837:95*150*100**1",
                &format!("DTM*472*{dos}"),
                "CAS*CO*45*50",
            ],
        )
    };
    let post = |trace: &str, dos: &str| pb::PostRemittanceRequest {
        file_name: format!("{trace}.835"),
        content: era(trace, dos).into_bytes(),
    };
    let report = api
        .post_remittance(post("DOS-5", "20260505"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        report.remittances[0].claims[0].claim_id, b.id,
        "the visit of May 5 is clinic B's"
    );
    assert_eq!(get_claim(&mut api, &a.id).await.paid_cents, 0);
    let report = api
        .post_remittance(post("DOS-9", "20260509"))
        .await
        .unwrap()
        .into_inner();
    let unmatched = &report.remittances[0].claims[0];
    assert!(unmatched.claim_id.is_empty(), "no claim is for May 9");
    assert!(
        unmatched.unmatched_reason.contains("dates of service"),
        "{}",
        unmatched.unmatched_reason
    );
}

#[tokio::test]
async fn a_plb_that_names_a_claim_is_tied_to_it_and_others_stay_provider_level() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;
    let paid = new_claim(&mut api, "PLB-1").await;
    let other = new_claim(&mut api, "PLB-2").await;
    let era = |trace: &str, body: &[&str]| {
        let mut st = vec![
            "BPR*I*150*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20261101"
                .to_string(),
            format!("TRN*1*{trace}*1512345678"),
            "N1*PR*UNITEDHEALTHCARE*XV*87726".to_string(),
            "N1*PE*CALM HARBOR COUNSELING*XX*1245319599".to_string(),
        ];
        st.extend(body.iter().map(|s| s.to_string()));
        pb::PostRemittanceRequest {
            file_name: format!("{trace}.835"),
            content: interchange("HP", "005010X221A1", &st).into_bytes(),
        }
    };
    // The first ERA pays PLB-1 (ICN-PLB1).
    api.post_remittance(era(
        "PLB-A",
        &[
            "LX*1",
            "CLP*PLB-1*1*205*185*0*12*ICN-PLB1",
            "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789",
            "CAS*CO*45*20",
        ],
    ))
    .await
    .unwrap();
    // The next one pays PLB-2 and recovers $40 of PLB-1's payment (WO with its ICN), with
    // interest on PLB-2 named by our account number, and a provider-level charge (CS).
    let report = api
        .post_remittance(era(
            "PLB-B",
            &[
                "LX*1",
                "CLP*PLB-2*1*205*185*0*12*ICN-PLB2",
                "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789",
                "CAS*CO*45*20",
                "PLB*1245319599*20261231*WO:ICN-PLB1*40*L6:PLB-2*-5*CS:ADJ77*0",
            ],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.remittances[0].provider_adjustment_cents, 3_500);
    let plbs = |claim_id: &str| {
        let mut api = api.clone();
        let claim_id = claim_id.to_string();
        async move {
            api.get_claim_payments(pb::GetClaimPaymentsRequest { claim_id })
                .await
                .unwrap()
                .into_inner()
                .provider_adjustments
                .into_iter()
                .map(|p| (p.reason_code, p.reference, p.amount_cents))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        plbs(&paid.id).await,
        [("WO".to_string(), "ICN-PLB1".to_string(), 4_000)],
        "the recoupment is tied to the claim it recovers"
    );
    assert_eq!(
        plbs(&other.id).await,
        [("L6".to_string(), "PLB-2".to_string(), -500)],
        "interest named by our account number"
    );
}
