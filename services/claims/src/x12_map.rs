//! X12 documents (crates/x12) mapped onto posting inputs, and claims rendered as 837P.
//!
//! Problems found while reading are reported back located (line, segment, transaction); a
//! problem never stops the rest of the file from posting. Payer and payee identity of an 835
//! (the posting key with TRN02): payer = N1*PR N104, else TRN03, else the payer's name; payee =
//! N1*PE N104 (the NPI), else its name.
use arflow_api::claims::v1 as pb;
use arflow_domain::Money;
use arflow_x12::remit::{Adjustment, ClaimPayment, ServicePayment};
use arflow_x12::{Problem, Remittance835, Transaction};
use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::posting::{AdjIn, ClaimPayIn, LinePayIn, PlbIn, RemitIn, StatusIn};
use crate::store::StoredClaim;

/// One 835 transaction ready to post, with its balancing problems.
pub struct ParsedRemittance {
    pub remit: RemitIn,
    pub balance_problems: Vec<pb::X12Problem>,
}

pub struct ParsedRemittances {
    pub remittances: Vec<ParsedRemittance>,
    pub problems: Vec<pb::X12Problem>,
}

pub struct ParsedStatuses {
    /// `277` or `277CA`, for the history's reason.
    pub source: String,
    pub statuses: Vec<StatusIn>,
    pub problems: Vec<pb::X12Problem>,
}

fn problem_to_pb(p: &Problem) -> pb::X12Problem {
    pb::X12Problem {
        line: p.line.map(|l| l as i32).unwrap_or(0),
        segment: p.segment.clone().unwrap_or_default(),
        transaction_control_number: p.transaction.clone().unwrap_or_default(),
        message: p.message.clone(),
        blocking: p.severity == arflow_x12::Severity::Error,
    }
}

fn adjustments(list: &[Adjustment]) -> Vec<AdjIn> {
    list.iter()
        .map(|a| AdjIn {
            group: a.group.code().to_string(),
            reason: a.reason.to_string(),
            amount: a.amount,
            quantity: a
                .quantity
                .as_ref()
                .map(|q| q.to_string())
                .unwrap_or_default(),
        })
        .collect()
}

fn line(svc: &ServicePayment) -> LinePayIn {
    LinePayIn {
        procedure_code: svc.procedure.code.to_string(),
        modifiers: svc
            .procedure
            .modifiers
            .iter()
            .map(|m| m.to_string())
            .collect(),
        original_procedure_code: svc
            .original_procedure
            .as_ref()
            .map(|p| p.code.to_string())
            .unwrap_or_default(),
        charge: svc.charge.unwrap_or(Money::ZERO),
        paid: svc.paid.unwrap_or(Money::ZERO),
        adjustments: adjustments(&svc.adjustments),
        remarks: svc
            .remarks
            .iter()
            .filter(|r| r.qualifier == "HE")
            .map(|r| r.code.to_string())
            .collect(),
        line_control_number: svc
            .line_item_control_number
            .as_deref()
            .unwrap_or_default()
            .to_string(),
        service_date: svc.service_date.or(svc.period_start),
    }
}

fn claim(clp: &ClaimPayment) -> ClaimPayIn {
    let mut remarks: Vec<String> = Vec::new();
    if let Some(moa) = &clp.outpatient {
        remarks.extend(moa.remarks.iter().map(|r| r.to_string()));
    }
    if let Some(mia) = &clp.inpatient {
        remarks.extend(mia.remarks.iter().map(|r| r.to_string()));
    }
    ClaimPayIn {
        patient_control_number: clp.patient_control_number.to_string(),
        status_code: clp.status_code.to_string(),
        charge: clp.charge.unwrap_or(Money::ZERO),
        paid: clp.paid.unwrap_or(Money::ZERO),
        patient_responsibility: clp.patient_responsibility.unwrap_or(Money::ZERO),
        payer_claim_control_number: clp
            .payer_claim_control_number
            .as_deref()
            .unwrap_or_default()
            .to_string(),
        adjustments: adjustments(&clp.adjustments),
        remarks,
        lines: clp.lines.iter().map(line).collect(),
    }
}

/// Owned text from the reader's strings (plain or compact).
fn text<T: AsRef<str> + ?Sized>(t: &T) -> String {
    t.as_ref().to_owned()
}

fn opt_text<T: AsRef<str>>(t: Option<&T>) -> String {
    t.map(text).unwrap_or_default()
}

fn remittance(control_number: &str, r: &Remittance835) -> RemitIn {
    let payer = r.payer.as_ref();
    let payee = r.payee.as_ref();
    let trace = r.trace.as_ref();
    let non_empty = |s: String| Some(s).filter(|s| !s.is_empty());
    let payer_id = payer
        .and_then(|p| non_empty(opt_text(p.id.as_ref())))
        .or_else(|| trace.and_then(|t| non_empty(opt_text(t.originator_id.as_ref()))))
        .or_else(|| payer.map(|p| text(&p.name)))
        .unwrap_or_default();
    let payee_id = payee
        .and_then(|p| non_empty(opt_text(p.id.as_ref())))
        .or_else(|| payee.map(|p| text(&p.name)))
        .unwrap_or_default();
    RemitIn {
        control_number: control_number.to_string(),
        payer_id,
        payer_name: payer.map(|p| text(&p.name)).unwrap_or_default(),
        payee_id,
        trace_number: trace.map(|t| text(&t.trace_number)).unwrap_or_default(),
        payment: r
            .payment
            .as_ref()
            .and_then(|p| p.amount)
            .unwrap_or(Money::ZERO),
        method: r
            .payment
            .as_ref()
            .map(|p| opt_text(p.method.as_ref()))
            .unwrap_or_default(),
        payment_date: r.payment.as_ref().and_then(|p| p.date),
        claims: r.claims.iter().map(claim).collect(),
        provider_adjustments: r
            .provider_adjustments
            .iter()
            .flat_map(|plb| {
                plb.items.iter().map(|item| PlbIn {
                    provider_id: text(&plb.provider_id),
                    reason: text(&item.reason),
                    reference: opt_text(item.reference.as_ref()),
                    amount: item.amount,
                })
            })
            .collect(),
    }
}

/// Reads an 835 file: every remittance transaction, its balancing problems, and the file's
/// own problems. A transaction without a TRN02 cannot be keyed and is reported, not posted.
pub fn remittances_from_835(content: &[u8]) -> ParsedRemittances {
    let doc = arflow_x12::read(content);
    let mut problems: Vec<pb::X12Problem> = doc.problems.iter().map(problem_to_pb).collect();
    let mut remittances = Vec::new();
    let mut saw_other = false;
    for set in doc.transactions() {
        let Transaction::Remittance835(r) = &set.content else {
            saw_other = true;
            continue;
        };
        let remit = remittance(&set.control_number, r);
        if remit.trace_number.is_empty() {
            problems.push(pb::X12Problem {
                line: set.line as i32,
                segment: "TRN".into(),
                transaction_control_number: set.control_number.clone(),
                message: "no TRN02 trace number: the remittance cannot be posted once-only, so it was not posted".into(),
                blocking: true,
            });
            continue;
        }
        let balance_problems = arflow_x12::balance::check(&set.control_number, r)
            .into_iter()
            .map(|b| pb::X12Problem {
                line: b.line as i32,
                segment: match b.level {
                    arflow_x12::BalanceLevel::Line => "SVC",
                    arflow_x12::BalanceLevel::Claim => "CLP",
                    arflow_x12::BalanceLevel::Transaction => "BPR",
                }
                .into(),
                transaction_control_number: b.transaction.clone(),
                message: b.message.clone(),
                blocking: false,
            })
            .collect();
        remittances.push(ParsedRemittance {
            remit,
            balance_problems,
        });
    }
    if remittances.is_empty() {
        problems.push(pb::X12Problem {
            message: if saw_other {
                "the file holds no 835 transaction (PostStatusReport takes 277/277CA files)".into()
            } else {
                "no 835 transaction found".into()
            },
            blocking: true,
            ..Default::default()
        });
    }
    ParsedRemittances {
        remittances,
        problems,
    }
}

/// Reads a 277 or 277CA file: the claim-level status of every claim (the first STC's
/// category, which drives the claim; STC10/STC11 stay in the stored file).
pub fn statuses_from_277(content: &[u8]) -> ParsedStatuses {
    let doc = arflow_x12::read(content);
    let mut problems: Vec<pb::X12Problem> = doc.problems.iter().map(problem_to_pb).collect();
    let mut statuses = Vec::new();
    let mut source = String::from("277");
    for set in doc.transactions() {
        let Transaction::ClaimStatus277(report) = &set.content else {
            continue;
        };
        source = set.content.kind_name().to_string();
        for claim in &report.claims {
            let Some(status) = claim.statuses.first() else {
                continue;
            };
            statuses.push(StatusIn {
                patient_control_number: text(&claim.patient_control_number),
                payer_claim_control_number: opt_text(claim.payer_claim_control_number.as_ref()),
                category: text(&status.primary.category),
                status_code: text(&status.primary.status),
            });
        }
    }
    if statuses.is_empty() {
        problems.push(pb::X12Problem {
            message: "no claim status found (a 277 or 277CA with claim-level STC segments)".into(),
            blocking: true,
            ..Default::default()
        });
    }
    ParsedStatuses {
        source,
        statuses,
        problems,
    }
}

fn address(a: Option<&pb::PostalAddress>) -> arflow_x12::common::Address {
    let a = a.cloned().unwrap_or_default();
    arflow_x12::common::Address {
        line1: a.line1,
        line2: Some(a.line2).filter(|l| !l.is_empty()),
        city: a.city,
        state: a.state,
        postal_code: a.postal_code,
    }
}

/// Renders a claim as an 837P. A replacement or void carries the original's payer claim
/// control number in REF*F8 (`original_ccn`); the writer refuses one without it.
pub fn claim_to_837(
    stored: &StoredClaim,
    original_ccn: &str,
    req: &pb::ExportClaim837Request,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, String> {
    let mut claim = stored.claim.clone();
    claim.original_claim_id = claim
        .original_claim_id
        .as_ref()
        .map(|_| original_ccn.to_string())
        .filter(|c| !c.is_empty());
    // Control numbers from the clock: unique enough per sender per second, and 9 digits.
    let control =
        (now.num_seconds_from_midnight() + 86_400 * (now.ordinal0() % 10)) % 999_999_999 + 1;
    let submission = arflow_x12::Submission {
        envelope: arflow_x12::Envelope {
            sender_qualifier: "ZZ".into(),
            sender_id: req.submitter_id.clone(),
            receiver_qualifier: "ZZ".into(),
            receiver_id: req.receiver_id.clone(),
            application_sender: req.submitter_id.clone(),
            application_receiver: req.receiver_id.clone(),
            interchange_control_number: control,
            group_control_number: control,
            transaction_control_number: control,
            date: now.date_naive(),
            time: now.time(),
            production: req.production,
            acknowledgment_requested: false,
        },
        reference: stored.id.split('-').next_back().unwrap_or("1").to_string(),
        submitter: arflow_x12::professional::Submitter {
            name: req.submitter_name.clone(),
            id: req.submitter_id.clone(),
            contact_name: None,
            phone: None,
        },
        receiver: arflow_x12::professional::Party {
            name: req.receiver_name.clone(),
            id: req.receiver_id.clone(),
        },
        billing_provider: arflow_x12::professional::BillingProviderDetails {
            address: address(req.billing_provider_address.as_ref()),
            tax_id: req.billing_provider_tax_id.clone(),
            taxonomy: Some(req.billing_provider_taxonomy.clone()).filter(|t| !t.is_empty()),
        },
        claims: vec![arflow_x12::professional::ClaimSubmission {
            claim,
            subscriber: arflow_x12::professional::SubscriberDetails {
                gender: req.subscriber_gender.clone(),
                address: address(req.subscriber_address.as_ref()),
                group_number: Some(req.subscriber_group_number.clone()).filter(|g| !g.is_empty()),
                filing_indicator: req.claim_filing_indicator.clone(),
            },
        }],
    };
    arflow_x12::write_837p(&submission)
        .map(String::into_bytes)
        .map_err(|e| e.to_string())
}
