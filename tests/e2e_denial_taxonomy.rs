//! End-to-end: the denial taxonomy (issue 10, "Denial taxonomy fixes") through the gRPC API on
//! Postgres + Redis. One 835 carries the CARCs a behavioral-health biller meets (18, 29, 96 with
//! and without N216, 97, 119, 167, 242, 300, 100, 302, B11, B13, B15, 107) and a pended OA-133
//! line; each denial comes back with its category and next action, and the pended claim makes
//! no denial. ScrubClaim and CreateClaim refuse an LCSW billing 90792 and a 90791 with an E/M on
//! the same date by the same clinician (docs/reference/billing-rules.md C2, C4, C8).
#![allow(clippy::unwrap_used)]

mod common;

use arflow_api::claims::v1 as pb;
use arflow_testkit::{PgDatabase, RedisPrefix};
use common::{Server, claim, create, denials_of, get_claim, interchange};

/// One SVC of the fixture claim (90837 $180 or 90785 $25, telehealth 95): paid dollars, the
/// CAS adjustments (group, CARC, dollars) and an optional LQ*HE remark.
struct Svc {
    code: &'static str,
    charge: i64,
    paid: i64,
    cas: Vec<(&'static str, &'static str, i64)>,
    rarc: Option<&'static str>,
}

/// Both lines adjusted by the same group/CARC for their whole charge.
fn denied(group: &'static str, carc: &'static str, rarc: Option<&'static str>) -> Vec<Svc> {
    vec![
        Svc {
            code: "90837",
            charge: 180,
            paid: 0,
            cas: vec![(group, carc, 180)],
            rarc,
        },
        Svc {
            code: "90785",
            charge: 25,
            paid: 0,
            cas: vec![(group, carc, 25)],
            rarc,
        },
    ]
}

/// 90837 paid (with CO-45), the add-on 90785 denied with `carc`.
fn addon_denied(carc: &'static str) -> Vec<Svc> {
    vec![
        Svc {
            code: "90837",
            charge: 180,
            paid: 150,
            cas: vec![("CO", "45", 30)],
            rarc: None,
        },
        Svc {
            code: "90785",
            charge: 25,
            paid: 0,
            cas: vec![("CO", carc, 25)],
            rarc: Some("N122"),
        },
    ]
}

fn clp(pcn: &str, svcs: &[Svc]) -> Vec<String> {
    let paid: i64 = svcs.iter().map(|s| s.paid).sum();
    let patient: i64 = svcs
        .iter()
        .flat_map(|s| s.cas.iter())
        .filter(|c| c.0 == "PR")
        .map(|c| c.2)
        .sum();
    let status = if paid == 0 && patient == 0 { "4" } else { "1" };
    // A pended claim is not denied: the payer reports it processed, nothing paid yet.
    let status = if svcs.iter().any(|s| s.cas.iter().any(|c| c.1 == "133")) {
        "1"
    } else {
        status
    };
    let mut out = vec![
        format!("CLP*{pcn}*{status}*205*{paid}*{patient}*12*ICN-{pcn}"),
        "NM1*QC*1*RIVERA*JORDAN****MI*UHC123456789".to_string(),
    ];
    for (i, s) in svcs.iter().enumerate() {
        out.push(format!("SVC*HC:{}:95*{}*{}**1", s.code, s.charge, s.paid));
        out.push("DTM*472*20260504".into());
        for (g, c, amount) in &s.cas {
            out.push(format!("CAS*{g}*{c}*{amount}"));
        }
        out.push(format!("REF*6R*{}", i + 1));
        if let Some(r) = s.rarc {
            out.push(format!("LQ*HE*{r}"));
        }
    }
    out
}

fn era(claims: &[(&str, Vec<Svc>)]) -> String {
    let total: i64 = claims
        .iter()
        .flat_map(|(_, s)| s.iter())
        .map(|s| s.paid)
        .sum();
    let mut st = vec![
        format!(
            "BPR*I*{total}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20260610"
        ),
        "TRN*1*TAXO1*1512345678".to_string(),
        "DTM*405*20260610".into(),
        "N1*PR*UNITEDHEALTHCARE*XV*87726".into(),
        "N1*PE*CALM HARBOR COUNSELING*XX*1245319599".into(),
        "LX*1".into(),
    ];
    for (pcn, svcs) in claims {
        st.extend(clp(pcn, svcs));
    }
    interchange("HP", "005010X221A1", &st)
}

use pb::DenialCategory as Cat;

#[tokio::test]
async fn each_carc_gets_its_category_and_next_action_and_oa_133_is_pending() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;

    // (claim, lines, expected (category, resolution, appealable) of every denial on it, and
    // the procedure code the denial is on when only one line is denied).
    type Want = (Cat, &'static str, bool);
    let cases: Vec<(&str, Vec<Svc>, Want, Option<&str>)> = vec![
        (
            "TX-18",
            denied("OA", "18", None),
            (Cat::Duplicate, "check_original", false),
            None,
        ),
        (
            "TX-29",
            denied("CO", "29", None),
            (Cat::TimelyFiling, "write_off", false),
            None,
        ),
        (
            "TX-96-N216",
            denied("CO", "96", Some("N216")),
            (Cat::Eligibility, "route_to_behavioral_health_plan", false),
            None,
        ),
        (
            "TX-96",
            denied("CO", "96", Some("N130")),
            (Cat::NonCovered, "review", false),
            None,
        ),
        (
            "TX-97",
            denied("CO", "97", None),
            (Cat::CodingModifier, "correct_and_resubmit", false),
            None,
        ),
        (
            "TX-119",
            denied("CO", "119", None),
            (Cat::MedicalNecessity, "verify_visit_count", true),
            None,
        ),
        (
            "TX-119-PR",
            denied("PR", "119", None),
            (Cat::MedicalNecessity, "bill_patient", false),
            None,
        ),
        (
            "TX-167",
            denied("CO", "167", None),
            (Cat::CodingModifier, "coding_review", true),
            None,
        ),
        (
            "TX-242",
            denied("CO", "242", None),
            (Cat::Credentialing, "single_case_agreement", false),
            None,
        ),
        (
            "TX-300",
            denied("CO", "300", None),
            (Cat::Eligibility, "confirm_forwarded_claim", false),
            None,
        ),
        (
            // Patient responsibility has no API category of its own: OTHER.
            "TX-100",
            denied("OA", "100", None),
            (Cat::Other, "collect_from_patient", false),
            None,
        ),
        (
            "TX-302",
            denied("CO", "302", None),
            (Cat::Authorization, "request_retro_authorization", true),
            None,
        ),
        (
            "TX-B11",
            denied("CO", "B11", None),
            (Cat::Eligibility, "confirm_forwarded_claim", false),
            None,
        ),
        (
            "TX-B13",
            denied("OA", "B13", None),
            (Cat::Duplicate, "check_original", false),
            None,
        ),
        (
            "TX-B15",
            addon_denied("B15"),
            (Cat::CodingModifier, "correct_and_resubmit", false),
            Some("90785"),
        ),
        (
            "TX-107",
            addon_denied("107"),
            (Cat::CodingModifier, "correct_and_resubmit", false),
            Some("90785"),
        ),
    ];
    let pended = vec![
        Svc {
            code: "90837",
            charge: 180,
            paid: 0,
            cas: vec![("OA", "133", 180)],
            rarc: None,
        },
        Svc {
            code: "90785",
            charge: 25,
            paid: 0,
            cas: vec![("OA", "133", 25)],
            rarc: None,
        },
    ];

    let mut ids = Vec::new();
    for (pcn, ..) in &cases {
        let c = api
            .create_claim(create(claim("clinic-a", pcn), pcn))
            .await
            .unwrap()
            .into_inner()
            .claim
            .unwrap();
        ids.push(c.id);
    }
    let pended_claim = api
        .create_claim(create(claim("clinic-a", "TX-133"), "TX-133"))
        .await
        .unwrap()
        .into_inner()
        .claim
        .unwrap();

    let mut file: Vec<(&str, Vec<Svc>)> = Vec::new();
    let mut wants = Vec::new();
    for (pcn, svcs, want, on) in cases {
        file.push((pcn, svcs));
        wants.push((pcn, want, on));
    }
    file.push(("TX-133", pended));
    let report = api
        .post_remittance(pb::PostRemittanceRequest {
            file_name: "taxonomy.835".into(),
            content: era(&file).into_bytes(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let r = &report.remittances[0];
    assert!(r.balance_problems.is_empty(), "{:?}", r.balance_problems);
    assert!(
        r.claims.iter().all(|c| !c.claim_id.is_empty()),
        "every CLP matched: {:?}",
        r.claims
    );

    let mut wrong = Vec::new();
    for ((pcn, (category, resolution, appealable), on), id) in wants.iter().zip(&ids) {
        let denials = denials_of(&mut api, id).await;
        let expected = if on.is_some() { 1 } else { 2 };
        if denials.len() != expected {
            wrong.push(format!("{pcn}: {} denials, want {expected}", denials.len()));
            continue;
        }
        for d in &denials {
            let got = (d.category, d.resolution.as_str(), d.appealable);
            if got != (*category as i32, *resolution, *appealable) {
                wrong.push(format!(
                    "{pcn} {}-{}: got ({:?}, {}, {}), want ({category:?}, {resolution}, {appealable})",
                    d.group_code,
                    d.reason_code,
                    Cat::try_from(d.category),
                    d.resolution,
                    d.appealable
                ));
            }
            assert!(
                !d.owner.is_empty() && !d.evidence.is_empty(),
                "{pcn}: {d:?}"
            );
            if let Some(code) = on {
                assert_eq!(d.procedure_code, *code, "{pcn}");
            }
        }
    }
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));

    // N216 is kept with the denial it refined.
    let n216 = denials_of(&mut api, &ids[2]).await;
    assert!(
        n216.iter()
            .all(|d| d.remark_codes.contains(&"N216".to_string()))
    );

    // OA-133: pended, not denied. No denial row, the claim waits with its balance open.
    assert!(
        denials_of(&mut api, &pended_claim.id).await.is_empty(),
        "OA-133 makes no denial"
    );
    let pended_now = get_claim(&mut api, &pended_claim.id).await;
    assert_eq!(
        (
            pended_now.status,
            pended_now.balance_cents,
            pended_now.paid_cents
        ),
        (pb::ClaimStatus::Pending as i32, 20_500, 0),
        "a pended claim is pending with its balance owed, not denied nor settled"
    );
    // The payment to the patient keeps the money owed (collected from the patient), not zeroed:
    // it moves from the payer's balance to the patient's.
    let to_patient = get_claim(&mut api, &ids[10]).await;
    assert_eq!(
        (to_patient.balance_cents, to_patient.patient_balance_cents),
        (0, 20_500)
    );
}

#[tokio::test]
async fn scrubbing_refuses_an_lcsw_billing_90792_and_an_evaluation_with_an_em() {
    let pg = PgDatabase::create().await.unwrap();
    let redis = RedisPrefix::new();
    let server = Server::start(Server::env_for(&pg, &redis));
    let mut api = server.client(&server.key("acme", "partner", &[])).await;

    // The fixture's clinician is an LCSW: 90792 (evaluation with medical services) is not hers.
    let mut lcsw = claim("clinic-a", "CRED-1");
    lcsw.service_lines.truncate(1);
    lcsw.service_lines[0].procedure_code = "90792".into();
    lcsw.service_lines[0].minutes = 0;
    let check = api
        .scrub_claim(pb::ScrubClaimRequest {
            claim: Some(lcsw.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!check.accepted);
    assert!(
        check
            .findings
            .iter()
            .any(|f| f.rule_id == "credential.medical_codes"
                && f.severity == pb::ScrubSeverity::Error as i32
                && f.field == "claim.service_lines[0].procedure_code"
                && f.message.contains("90791")),
        "{:?}",
        check.findings
    );
    let refused = api
        .create_claim(create(lcsw.clone(), "cred-1"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("credential.medical_codes"),
        "{}",
        refused.message()
    );
    // The same evaluation by a psychiatrist is accepted (another patient, so that it is not
    // the history of the claims below).
    let mut psychiatrist = lcsw;
    psychiatrist.external_id = "CRED-2".into();
    psychiatrist.patient.as_mut().unwrap().id = "pt-200".into();
    psychiatrist.rendering_provider.as_mut().unwrap().credential =
        pb::ProviderCredential::Psychiatrist as i32;
    api.create_claim(create(psychiatrist.clone(), "cred-2"))
        .await
        .unwrap();

    // 90791 with an E/M on the same date by the same clinician (a psychiatrist, who may bill
    // both on their own).
    let mut same_day = psychiatrist;
    same_day.external_id = "EVAL-EM-1".into();
    same_day.patient.as_mut().unwrap().id = "pt-100".into();
    same_day.service_lines[0].procedure_code = "90791".into();
    let mut em = same_day.service_lines[0].clone();
    em.procedure_code = "99214".into();
    em.charge_cents = 15_000;
    same_day.service_lines.insert(0, em);
    let check = api
        .scrub_claim(pb::ScrubClaimRequest {
            claim: Some(same_day.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!check.accepted);
    assert!(
        check
            .findings
            .iter()
            .any(|f| f.rule_id == "evaluation.em_same_day"
                && f.severity == pb::ScrubSeverity::Error as i32
                && f.field == "claim.service_lines[1].procedure_code"),
        "{:?}",
        check.findings
    );
    let refused = api
        .create_claim(create(same_day.clone(), "eval-em-1"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("evaluation.em_same_day"),
        "{}",
        refused.message()
    );
    // Another claim of the same clinician that day counts too: the E/M alone is accepted, then
    // the evaluation on its own claim is refused.
    let mut em_only = same_day.clone();
    em_only.external_id = "EVAL-EM-2".into();
    em_only.service_lines.truncate(1);
    api.create_claim(create(em_only, "eval-em-2"))
        .await
        .unwrap();
    let mut eval_only = same_day;
    eval_only.external_id = "EVAL-EM-3".into();
    eval_only.service_lines.remove(0);
    let refused = api
        .create_claim(create(eval_only, "eval-em-3"))
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("evaluation.em_same_day"),
        "{}",
        refused.message()
    );
}
