//! End-to-end: patient responsibility and proof of timely filing (issue 10), through the gRPC
//! API on Postgres + Redis. What an ERA says the patient owes (CAS group PR with any CARC;
//! CARC 100) moves from the claim's payer balance to its patient balance, visible per claim
//! and in SummarizeBalances, and a reversal moves it back. CO-29 is appealed when arflow holds
//! proof of timely filing (a 277CA acceptance in the claim's history), else written off.
#![allow(clippy::unwrap_used)]

mod common;

use arflow_api::claims::v1 as pb;
use arflow_testkit::{PgDatabase, RedisPrefix};
use common::{Server, claim, create, post_fixture_era};

/// A 277CA from the clearinghouse for the fixture claims: one STC per (patient control
/// number, STC01), e.g. `A2:20` accepted, `A7:562` rejected.
fn ack_277ca(claims: &[(&str, &str)]) -> String {
    let mut st = vec![
        "BHT*0085*08*ACK1*20261102*1200*TH".to_string(),
        "HL*1**20*1".into(),
        "NM1*PR*2*UNITEDHEALTHCARE*****PI*87726".into(),
        "TRN*1*BATCH1".into(),
        "DTP*050*D8*20261102".into(),
        "DTP*009*D8*20261102".into(),
        "HL*2*1*21*1".into(),
        "NM1*41*2*CALM HARBOR COUNSELING*****46*ARF1".into(),
        "TRN*2*BATCH1".into(),
        "STC*A1:19:PR*20261102*WQ*410".into(),
        "HL*3*2*19*1".into(),
        "NM1*85*2*CALM HARBOR COUNSELING*****XX*1245319599".into(),
        "TRN*1*0".into(),
        "STC*A1:19:PR**WQ*410".into(),
    ];
    for (i, (pcn, stc)) in claims.iter().enumerate() {
        st.push(format!("HL*{}*3*PT", i + 4));
        st.push("NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789".into());
        st.push(format!("TRN*2*{pcn}"));
        st.push(format!("STC*{stc}:PR*20261102*WQ*205"));
        st.push("DTP*472*D8*20260504".into());
    }
    let body: Vec<String> = st.iter().map(|s| format!("{s}~")).collect();
    let count = body.len() + 2;
    format!(
        "ISA*00*          *00*          *ZZ*PAYER          *ZZ*ARFLOW         *261101*1200*^*00501*000000101*0*T*:~\n\
         GS*HN*PAYER*ARFLOW*20261101*1200*101*X*005010X214~\n\
         ST*277*0001*005010X214~\n{}\nSE*{count}*0001~\nGE*1*101~\nIEA*1*000000101~\n",
        body.join("\n"),
    )
}

/// Posts one ERA whose CLPs must all match and balance; the remittance's result.
async fn post(
    api: &mut common::Client,
    trace: &str,
    payment: &str,
    clps: &[Vec<String>],
) -> pb::RemittanceResult {
    let body: Vec<&String> = clps.iter().flatten().collect();
    post_fixture_era(api, trace, payment, &body).await
}

async fn new_claim(api: &mut common::Client, clinic: &str, pcn: &str) -> pb::Claim {
    api.create_claim(create(claim(clinic, pcn), pcn))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap()
}

async fn get(api: &mut common::Client, id: &str) -> pb::Claim {
    api.get_claim(pb::GetClaimRequest {
        claim_id: id.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .claim
    .unwrap()
}

async fn denials_of(api: &mut common::Client, claim_id: &str) -> Vec<pb::Denial> {
    api.list_denials(pb::ListDenialsRequest {
        claim_id: claim_id.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .denials
}

/// (status, payer balance, patient balance, paid) in cents.
fn money(c: &pb::Claim) -> (i32, i64, i64, i64) {
    (
        c.status,
        c.balance_cents,
        c.patient_balance_cents,
        c.paid_cents,
    )
}

fn nm1() -> String {
    "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789".into()
}

#[tokio::test]
async fn patient_responsibility_moves_to_the_patient_balance_and_a_reversal_moves_it_back() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;

    // The example: a $150 claim, the primary pays $80 with CO-45 $50 and PR-2 $20.
    let mut one_line = claim("clinic-a", "PB-1");
    one_line.service_lines.truncate(1);
    one_line.service_lines[0].charge_cents = 15_000;
    let example = api
        .create_claim(create(one_line, "PB-1"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();
    assert_eq!(example.total_charge_cents, 15_000);
    assert_eq!(
        example.patient_balance_cents, 0,
        "nothing owed by the patient yet"
    );
    // Line-level patient responsibility of every kind: PR-45 (out of network), PR-119 (benefit
    // maximum) and PR-204 (not covered) on the fixture claim ($180 + $25).
    let lines = new_claim(&mut api, "clinic-a", "PB-2").await;
    // The payer paid the patient (OA-100): the patient owes the provider all of it.
    let to_patient = new_claim(&mut api, "clinic-a", "PB-3").await;

    let r = post(
        &mut api,
        "PB-PAY",
        "180",
        &[
            vec![
                "CLP*PB-1*1*150*80*20*12*ICN-PB1".into(),
                nm1(),
                "CAS*CO*45*50".into(),
                "CAS*PR*2*20".into(),
            ],
            vec![
                "CLP*PB-2*1*205*100*105*12*ICN-PB2".into(),
                nm1(),
                "SVC*HC:90837:95*180*100**1".into(),
                "DTM*472*20260504".into(),
                "CAS*PR*45*60".into(),
                "CAS*PR*119*20".into(),
                "REF*6R*1".into(),
                "SVC*HC:90785:95*25*0**1".into(),
                "DTM*472*20260504".into(),
                "CAS*PR*204*25".into(),
                "REF*6R*2".into(),
            ],
            vec![
                "CLP*PB-3*4*205*0*0*12*ICN-PB3".into(),
                nm1(),
                "CAS*OA*100*205".into(),
            ],
        ],
    )
    .await;
    // The posting result shows both balances.
    assert_eq!(
        (r.claims[0].balance_cents, r.claims[0].patient_balance_cents),
        (0, 2_000)
    );
    assert_eq!(
        money(&get(&mut api, &example.id).await),
        (pb::ClaimStatus::Paid as i32, 0, 2_000, 8_000),
        "the payer owes nothing, the patient owes the $20 coinsurance"
    );
    assert_eq!(
        money(&get(&mut api, &lines.id).await),
        (pb::ClaimStatus::Paid as i32, 0, 10_500, 10_000),
        "PR-45, PR-119 and PR-204 on the lines are the patient's: $60 + $20 + $25"
    );
    // PR-119 and PR-204 are still recorded as denials, to bill the patient.
    let mut pr_denials: Vec<(String, String)> = denials_of(&mut api, &lines.id)
        .await
        .into_iter()
        .map(|d| (d.reason_code, d.resolution))
        .collect();
    pr_denials.sort();
    assert_eq!(
        pr_denials,
        [
            ("119".to_string(), "bill_patient".to_string()),
            ("204".to_string(), "bill_patient".to_string())
        ]
    );
    let paid_to_patient = get(&mut api, &to_patient.id).await;
    assert_eq!(
        (
            paid_to_patient.balance_cents,
            paid_to_patient.patient_balance_cents
        ),
        (0, 20_500),
        "a payment made to the patient (CARC 100) is owed by the patient"
    );

    // The payer reverses the example's payment and pays it again with a $10 copay instead: the
    // reversal moves the $20 back to the payer's balance, the new adjudication moves $10 out.
    let r = post(
        &mut api,
        "PB-REV",
        "10",
        &[
            vec![
                "CLP*PB-1*22*-150*-80*-20*12*ICN-PB1".into(),
                nm1(),
                "CAS*CO*45*-50".into(),
                "CAS*PR*2*-20".into(),
            ],
            vec![
                "CLP*PB-1*1*150*90*10*12*ICN-PB1".into(),
                nm1(),
                "CAS*CO*45*50".into(),
                "CAS*PR*3*10".into(),
            ],
        ],
    )
    .await;
    assert!(r.claims[0].reversal);
    assert_eq!(
        (
            r.claims[0].claim_status,
            r.claims[0].balance_cents,
            r.claims[0].patient_balance_cents
        ),
        (pb::ClaimStatus::Pending as i32, 15_000, 0),
        "the reversal gives the payer its balance back and takes the patient's away"
    );
    assert_eq!(
        money(&get(&mut api, &example.id).await),
        (pb::ClaimStatus::Paid as i32, 0, 1_000, 9_000),
        "re-adjudicated: the patient owes the $10 copay"
    );
}

#[tokio::test]
async fn balance_totals_show_what_payers_and_patients_owe() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;

    // clinic-a: TOT-A paid with $20 coinsurance; TOT-B not paid yet; TOT-D a draft (not billed);
    // TOT-E billed to another payer. clinic-b: TOT-C partly paid, $15 copay, $60 denied.
    let paid = new_claim(&mut api, "clinic-a", "TOT-A").await;
    let _unpaid = new_claim(&mut api, "clinic-a", "TOT-B").await;
    let partial = new_claim(&mut api, "clinic-b", "TOT-C").await;
    let mut draft = claim("clinic-a", "TOT-D");
    draft.status = pb::ClaimStatus::Draft as i32;
    draft.submission_date = None;
    api.create_claim(create(draft, "TOT-D")).await.unwrap();
    let mut aetna = claim("clinic-a", "TOT-E");
    aetna.payer.as_mut().unwrap().id = "60054".into();
    aetna.payer.as_mut().unwrap().name = "AETNA".into();
    api.create_claim(create(aetna, "TOT-E")).await.unwrap();
    post(
        &mut api,
        "TOT-PAY",
        "250",
        &[
            vec![
                "CLP*TOT-A*1*205*150*20*12*ICN-TA".into(),
                nm1(),
                "CAS*CO*45*35".into(),
                "CAS*PR*2*20".into(),
            ],
            vec![
                "CLP*TOT-C*1*205*100*15*12*ICN-TC".into(),
                nm1(),
                "CAS*CO*45*30".into(),
                "CAS*PR*3*15".into(),
                "CAS*CO*197*60".into(),
            ],
        ],
    )
    .await;
    assert_eq!(
        money(&get(&mut api, &paid.id).await),
        (pb::ClaimStatus::Paid as i32, 0, 2_000, 15_000)
    );
    assert_eq!(
        money(&get(&mut api, &partial.id).await),
        (pb::ClaimStatus::PartiallyPaid as i32, 6_000, 1_500, 10_000)
    );

    let totals = |clinic: &str, payer: &str| pb::SummarizeBalancesRequest {
        clinic_id: clinic.into(),
        payer_id: payer.into(),
    };
    let sum = |r: pb::SummarizeBalancesResponse| {
        (
            r.payer_balance_cents,
            r.payer_balance_claim_count,
            r.patient_balance_cents,
            r.patient_balance_claim_count,
        )
    };
    let all = api.summarize_balances(totals("", "")).await.unwrap();
    assert_eq!(
        sum(all.into_inner()),
        (20_500 + 6_000 + 20_500, 3, 2_000 + 1_500, 2),
        "payers owe TOT-B, TOT-C and TOT-E (not the draft, not the paid claim); patients owe TOT-A and TOT-C"
    );
    let clinic_a = api
        .summarize_balances(totals("clinic-a", ""))
        .await
        .unwrap();
    assert_eq!(sum(clinic_a.into_inner()), (41_000, 2, 2_000, 1));
    let uhc = api.summarize_balances(totals("", "87726")).await.unwrap();
    assert_eq!(sum(uhc.into_inner()), (26_500, 2, 3_500, 2));

    // A key of clinic-b sees its clinic's totals only; clinic-a is as if empty to it.
    let mut clinic_b_key = server
        .client(&server.key("acme", "partner", &["clinic-b"]))
        .await;
    let own = clinic_b_key
        .summarize_balances(totals("", ""))
        .await
        .unwrap();
    assert_eq!(sum(own.into_inner()), (6_000, 1, 1_500, 1));
    let other_clinic = clinic_b_key
        .summarize_balances(totals("clinic-a", ""))
        .await
        .unwrap();
    assert_eq!(sum(other_clinic.into_inner()), (0, 0, 0, 0));
    // Another tenant sees none of it.
    let mut other = server.client(&server.key("globex", "partner", &[])).await;
    let none = other.summarize_balances(totals("", "")).await.unwrap();
    assert_eq!(sum(none.into_inner()), (0, 0, 0, 0));
}

#[tokio::test]
async fn co_29_is_appealed_with_proof_of_timely_filing_and_written_off_without() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;

    // TF-1 accepted by the clearinghouse (277CA A2); TF-2 never acknowledged; TF-3 rejected
    // (277CA A7), which proves nothing, and resubmitted.
    let accepted = new_claim(&mut api, "clinic-a", "TF-1").await;
    let silent = new_claim(&mut api, "clinic-a", "TF-2").await;
    let rejected = new_claim(&mut api, "clinic-a", "TF-3").await;
    let report = api
        .post_status_report(pb::PostStatusReportRequest {
            file_name: "tf.277".into(),
            content: ack_277ca(&[("TF-1", "A2:20"), ("TF-3", "A7:562")]).into_bytes(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(
        get(&mut api, &accepted.id).await.status,
        pb::ClaimStatus::Accepted as i32
    );
    assert_eq!(
        get(&mut api, &rejected.id).await.status,
        pb::ClaimStatus::Rejected as i32
    );
    api.update_claim_status(pb::UpdateClaimStatusRequest {
        claim_id: rejected.id.clone(),
        status: pb::ClaimStatus::Submitted as i32,
        reason: "corrected and resubmitted".into(),
        ..Default::default()
    })
    .await
    .unwrap();

    let denied = |pcn: &str| {
        vec![
            format!("CLP*{pcn}*4*205*0*0*12*ICN-{pcn}"),
            nm1(),
            "CAS*CO*29*205".into(),
        ]
    };
    post(
        &mut api,
        "TF-DENY",
        "0",
        &[denied("TF-1"), denied("TF-2"), denied("TF-3")],
    )
    .await;
    let decided = |d: &pb::Denial| {
        (
            d.category,
            d.reason_code.clone(),
            d.appealable,
            d.resolution.clone(),
        )
    };
    let with_proof = denials_of(&mut api, &accepted.id).await;
    assert_eq!(
        with_proof.iter().map(decided).collect::<Vec<_>>(),
        [(
            pb::DenialCategory::TimelyFiling as i32,
            "29".to_string(),
            true,
            "appeal".to_string()
        )],
        "the 277CA acceptance is proof of timely filing: appeal with it"
    );
    for (claim, why) in [
        (&silent, "never acknowledged"),
        (&rejected, "only rejected"),
    ] {
        let without = denials_of(&mut api, &claim.id).await;
        assert_eq!(
            without.iter().map(decided).collect::<Vec<_>>(),
            [(
                pb::DenialCategory::TimelyFiling as i32,
                "29".to_string(),
                false,
                "write_off".to_string()
            )],
            "{why}: no proof, written off"
        );
    }
}
