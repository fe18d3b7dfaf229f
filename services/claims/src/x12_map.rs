//! X12 documents (crates/x12) mapped onto posting inputs, and claims mapped onto the 837P
//! writer's own input types (crates/x12 is a format library and knows no domain claim).
//!
//! Problems found while reading are reported back located (line, segment, transaction); a
//! problem never stops the rest of the file from posting. Payer and payee identity of an 835
//! (the posting key with TRN02): payer = N1*PR N104, else TRN03, else the payer's name; payee =
//! N1*PE N104 (the NPI), else its name.
use arflow_api::claims::v1 as pb;
use arflow_domain::Money;
use arflow_domain::followup::{self, ReportedStatus, StatusAction};
use arflow_x12::professional::{
    BillingProviderDetails, ClaimInput837, ClaimSubmission, LineInput837, Party, PatientInput837,
    ProviderInput837, Submitter, SubscriberDetails,
};
use arflow_x12::remit::{Adjustment, ClaimPayment, ServicePayment};
use arflow_x12::{Problem, Remittance835, Transaction};
use chrono::{DateTime, Utc};

use crate::posting::{AckIn, AdjIn, ClaimPayIn, LinePayIn, PlbIn, RemitIn, StatusIn};
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
    /// The transaction sets a 999 acknowledges (our 837P exports).
    pub acks: Vec<AckIn>,
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
        service_dates: service_dates(clp),
        adjustments: adjustments(&clp.adjustments),
        remarks,
        lines: clp.lines.iter().map(line).collect(),
    }
}

/// The earliest and latest date of service a CLP names: its statement dates (DTM*232/233) and
/// its lines' service dates (DTM*472).
fn service_dates(clp: &ClaimPayment) -> Option<(chrono::NaiveDate, chrono::NaiveDate)> {
    let dates = [clp.statement_from, clp.statement_to]
        .into_iter()
        .flatten()
        .chain(clp.lines.iter().filter_map(|l| l.service_date));
    dates.fold(None, |range, d| match range {
        None => Some((d, d)),
        Some((lo, hi)) => Some((lo.min(d), hi.max(d))),
    })
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
    // What matching compares with our claims (docs/reference/x12.md §3.1): an NPI payee and
    // a payer id the payer gave in N1*PR (not a fallback).
    let payee_npi = payee
        .filter(|p| p.id_qualifier.as_ref().is_some_and(|q| q.as_ref() == "XX"))
        .and_then(|p| non_empty(opt_text(p.id.as_ref())));
    let payer_given_id = payer.and_then(|p| non_empty(opt_text(p.id.as_ref())));
    RemitIn {
        control_number: control_number.to_string(),
        payee_npi,
        payer_given_id,
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
                segment: level_segment(b.level).into(),
                transaction_control_number: b.transaction.clone(),
                message: b.message.clone(),
                blocking: false,
            })
            // A rule that could not be run is reported too: never "balanced" by silence.
            .chain(
                arflow_x12::balance::unchecked(&set.control_number, r)
                    .into_iter()
                    .map(|u| pb::X12Problem {
                        line: u.line as i32,
                        segment: level_segment(u.level).into(),
                        transaction_control_number: u.transaction.clone(),
                        message: u.message,
                        blocking: false,
                    }),
            )
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
/// category, which drives the claim) and every status composite of every claim-level STC
/// (STC01, STC10, STC11, in file order), which follow-up acts on.
pub fn statuses_from_277(content: &[u8]) -> ParsedStatuses {
    let doc = arflow_x12::read(content);
    let mut problems: Vec<pb::X12Problem> = doc.problems.iter().map(problem_to_pb).collect();
    let mut statuses = Vec::new();
    let mut acks = Vec::new();
    let mut source = String::from("277");
    for set in doc.transactions() {
        if let Transaction::Ack999(ack) = &set.content {
            acks.extend(acks_of_999(ack));
            continue;
        }
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
                reported: claim.statuses.iter().flat_map(reported_statuses).collect(),
            });
        }
    }
    if statuses.is_empty() && acks.is_empty() {
        problems.push(pb::X12Problem {
            message: "no claim status found (a 277 or 277CA with claim-level STC segments, or a 999 acknowledging our 837P)".into(),
            blocking: true,
            ..Default::default()
        });
    }
    ParsedStatuses {
        source,
        statuses,
        acks,
        problems,
    }
}

/// Every status composite of one STC (STC01, STC10, STC11) with the STC's date; the free
/// text (STC12) only with a documentation request (R*), where it names what is requested.
fn reported_statuses(stc: &arflow_x12::status::Status) -> Vec<ReportedStatus> {
    std::iter::once(&stc.primary)
        .chain(&stc.additional)
        .filter(|c| !c.category.is_empty())
        .map(|c| {
            let category = text(&c.category);
            let documentation =
                followup::status_action(&category) == Some(StatusAction::SendDocumentation);
            ReportedStatus {
                status_code: text(&c.status),
                entity_code: opt_text(c.entity.as_ref()),
                code_list_qualifier: opt_text(c.code_list_qualifier.as_ref()),
                date: stc.date,
                message: if documentation {
                    opt_text(stc.message.as_ref())
                } else {
                    String::new()
                },
                category,
            }
        })
        .collect()
}

/// The 837 transaction sets a 999 acknowledges, each with its verdict: the set's IK5, else
/// the group's AK9 (docs/reference/x12.md §2.3). Sets of other groups (a 276's `HR`) are left.
fn acks_of_999(ack: &arflow_x12::ack::Ack999) -> Vec<AckIn> {
    use arflow_x12::ack::Acceptance;
    let group = ack.group.as_ref();
    if group.is_some_and(|g| g.functional_id != "HC") {
        return Vec::new();
    }
    let group_control_number = group.map(|g| g.control_number.clone()).unwrap_or_default();
    let group_verdict = ack.group_result.as_ref();
    let mut out: Vec<AckIn> = ack
        .transactions
        .iter()
        .filter(|t| t.set_id == "837")
        .map(|t| {
            let (code, acceptance) = match (&t.acceptance_code, t.acceptance) {
                (Some(code), Some(a)) => (code.clone(), a),
                _ => group_verdict.map_or((String::new(), Acceptance::Unknown), |g| {
                    (g.acceptance_code.clone(), g.acceptance)
                }),
            };
            let mut errors = t.error_codes.clone();
            errors.extend(t.segment_errors.iter().filter_map(|e| e.code.clone()));
            AckIn {
                transaction_control_number: t.control_number.clone(),
                group_control_number: group_control_number.clone(),
                code,
                rejected: acceptance == Acceptance::Rejected,
                errors,
            }
        })
        .collect();
    // A group rejected as a whole without AK2 detail rejects the group's one export.
    if out.is_empty()
        && let Some(g) = group_verdict.filter(|g| g.acceptance == Acceptance::Rejected)
    {
        out.push(AckIn {
            transaction_control_number: String::new(),
            group_control_number,
            code: g.acceptance_code.clone(),
            rejected: true,
            errors: g.error_codes.clone(),
        });
    }
    out
}

/// What an 837P export needs besides the claim (the claim record does not hold it): checked
/// and converted from the ExportClaim837 request at the edge (`grpc::convert`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export837 {
    /// ISA06/GS02 and 1000A NM109.
    pub submitter_id: String,
    pub submitter_name: String,
    /// ISA08/GS03 and 1000B NM109.
    pub receiver_id: String,
    pub receiver_name: String,
    pub billing_provider: BillingProviderDetails,
    pub subscriber: SubscriberDetails,
    /// ISA15 `P` (else `T`).
    pub production: bool,
}

/// The 837P writer's input of a stored claim (`x12::ClaimInput837`: plain values). A
/// replacement or void names the payer's claim control number of its original
/// (`original_ccn`, REF*F8), not our id; the writer refuses one without it.
pub fn claim_input_837(stored: &StoredClaim, original_ccn: &str) -> ClaimInput837 {
    let c = &stored.claim;
    let provider = |p: &arflow_domain::Provider| ProviderInput837 {
        npi: p.npi.clone(),
        name: p.name.clone(),
    };
    ClaimInput837 {
        patient_control_number: c.external_id.clone(),
        patient: PatientInput837 {
            first_name: c.patient.first_name.clone(),
            last_name: c.patient.last_name.clone(),
            birth_date: c.patient.birth_date,
            member_id: c.patient.member_id.clone(),
        },
        payer: Party {
            name: c.payer.name.clone(),
            id: c.payer.id.clone(),
        },
        billing_provider: provider(&c.billing_provider),
        rendering_provider: provider(&c.rendering_provider),
        diagnoses: c.diagnoses.clone(),
        service_lines: c
            .service_lines
            .iter()
            .map(|l| LineInput837 {
                line_number: l.line_number,
                service_date: l.service_date,
                procedure_code: l.procedure_code.clone(),
                modifiers: l.modifiers.clone(),
                units: l.units,
                charge_cents: l.charge.cents(),
                place_of_service: l.place_of_service.clone(),
                diagnosis_pointers: l.diagnosis_pointers.clone(),
            })
            .collect(),
        total_charge_cents: c.total_charge.cents(),
        frequency_code: c.frequency.code().to_string(),
        original_claim_id: c
            .original_claim_id
            .as_ref()
            .map(|_| original_ccn.to_string())
            .filter(|ccn| !ccn.is_empty()),
        prior_authorization: c.prior_authorization_number.clone(),
    }
}

/// Renders a claim as an 837P interchange with control number `control` (ISA13/IEA02, and
/// GS06/GE02 and ST02/SE02 alike: one transaction per interchange), the tenant's next number
/// of its sequence (`store::next_interchange_control_number`).
pub fn claim_to_837(
    stored: &StoredClaim,
    original_ccn: &str,
    export: &Export837,
    control: u32,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, String> {
    let submission = arflow_x12::Submission {
        envelope: arflow_x12::Envelope {
            sender_qualifier: "ZZ".into(),
            sender_id: export.submitter_id.clone(),
            receiver_qualifier: "ZZ".into(),
            receiver_id: export.receiver_id.clone(),
            application_sender: export.submitter_id.clone(),
            application_receiver: export.receiver_id.clone(),
            interchange_control_number: control,
            group_control_number: control,
            transaction_control_number: control,
            date: now.date_naive(),
            time: now.time(),
            production: export.production,
            acknowledgment_requested: false,
        },
        reference: stored.id.split('-').next_back().unwrap_or("1").to_string(),
        submitter: Submitter {
            name: export.submitter_name.clone(),
            id: export.submitter_id.clone(),
            contact_name: None,
            phone: None,
        },
        receiver: Party {
            name: export.receiver_name.clone(),
            id: export.receiver_id.clone(),
        },
        billing_provider: export.billing_provider.clone(),
        claims: vec![ClaimSubmission {
            claim: claim_input_837(stored, original_ccn),
            subscriber: export.subscriber.clone(),
        }],
    };
    arflow_x12::write_837p(&submission)
        .map(String::into_bytes)
        .map_err(|e| e.to_string())
}

/// The segment a balancing rule of `level` is about.
fn level_segment(level: arflow_x12::BalanceLevel) -> &'static str {
    match level {
        arflow_x12::BalanceLevel::Line => "SVC",
        arflow_x12::BalanceLevel::Claim => "CLP",
        arflow_x12::BalanceLevel::Transaction => "BPR",
    }
}
