//! The inspect report: what is in a file and what is wrong with it, per interchange, group and
//! transaction set. Its JSON shape is a stable interface documented in `docs/x12-inspect.md`
//! (bump [`FORMAT`] when a field changes meaning or disappears; adding fields is compatible).
//!
//! Problems are attached to the innermost envelope that holds them: a transaction's content
//! and SE problems to the transaction, GE problems to the group, IEA problems to the
//! interchange, and what precedes any interchange (encoding, missing header) to the file.

use std::fmt::Write as _;

use arflow_domain::Money;
use chrono::NaiveDate;
use serde::Serialize;

use crate::ack::Acceptance;
use crate::balance::{self, BalanceProblem};
use crate::document::{Document, Group, Interchange, Transaction, TransactionSet, read};
use crate::lex::Delimiters;
use crate::problem::{Problem, Severity};
use crate::status::Level;
use crate::text::Text;

/// Identifies the JSON shape.
pub const FORMAT: &str = "arflow.x12.inspect/1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InspectReport {
    /// Always [`FORMAT`].
    pub format: &'static str,
    pub bytes: usize,
    pub segments: usize,
    pub interchanges: Vec<InterchangeReport>,
    /// Problems outside every interchange (encoding, no header, text after the last IEA).
    pub problems: Vec<Problem>,
    pub summary: Summary,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub interchanges: usize,
    pub groups: usize,
    pub transactions: usize,
    /// Problems of severity `error`, everywhere.
    pub errors: usize,
    pub warnings: usize,
    /// 835 balancing failures, everywhere.
    pub balance_problems: usize,
    /// No errors and no balance problems.
    pub ok: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InterchangeReport {
    /// ISA13; `null` for a fragment without ISA.
    pub control_number: Option<String>,
    /// ISA05:ISA06.
    pub sender: Option<String>,
    /// ISA07:ISA08.
    pub receiver: Option<String>,
    pub date: Option<NaiveDate>,
    /// ISA12.
    pub version: Option<String>,
    /// ISA15 `P`/`T`.
    pub usage: Option<String>,
    pub delimiters: Option<Delimiters>,
    pub line: u32,
    /// IEA problems and stray segments between groups.
    pub problems: Vec<Problem>,
    pub groups: Vec<GroupReport>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupReport {
    /// GS06; `null` without GS.
    pub control_number: Option<String>,
    /// GS01.
    pub functional_id: Option<String>,
    /// GS08.
    pub version: Option<String>,
    pub line: u32,
    /// GE problems and stray segments between transaction sets.
    pub problems: Vec<Problem>,
    pub transactions: Vec<TransactionReport>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransactionReport {
    /// `835`, `277`, `277CA`, `999`, `276`, `837P`, or ST01 for sets arflow does not decode.
    #[serde(rename = "type")]
    pub kind: String,
    /// ST01.
    pub set_id: String,
    /// ST03, else GS08.
    pub version: Option<String>,
    /// ST02.
    pub control_number: String,
    pub line: u32,
    /// Segments counted from ST to SE.
    pub segments: usize,
    /// SE problems and content problems (bad amounts, dates, codes, structure).
    pub problems: Vec<Problem>,
    /// Present for an 835.
    pub remittance: Option<RemittanceSummary>,
    /// Present for a 277 or 277CA.
    pub claim_status: Option<ClaimStatusSummary>,
    /// Present for a 999.
    pub acknowledgment: Option<AckSummary>,
    /// Present for a 276 or 837P: how many claims it carries.
    pub claims: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RemittanceSummary {
    /// Number of CLP.
    pub claim_count: usize,
    /// BPR01.
    pub handling_code: Option<Text>,
    /// BPR02, cents.
    pub payment_amount: Option<Money>,
    /// BPR04.
    pub payment_method: Option<Text>,
    /// BPR16.
    pub payment_date: Option<NaiveDate>,
    /// TRN02.
    pub trace_number: Option<Text>,
    /// N1*PR N102.
    pub payer: Option<Text>,
    /// N1*PE N103:N104, e.g. `XX:1234567893`; `null` without N104.
    pub payee: Option<String>,
    /// Σ CLP04, cents.
    pub total_paid: Option<Money>,
    /// Σ PLB amounts, cents (positive = withheld from the provider).
    pub total_provider_adjustments: Option<Money>,
    /// Every balancing rule ran and held. False when a rule failed or could not be run.
    pub balanced: bool,
    pub balance_problems: Vec<BalanceProblem>,
    /// Rules that could not be run: an amount they need could not be read.
    pub not_checked: Vec<balance::Unchecked>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClaimStatusSummary {
    pub claim_count: usize,
    pub claims: Vec<ClaimStatusLine>,
    /// Statuses at the payer, receiver and provider levels (2200A/B/C).
    pub level_statuses: Vec<LevelStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClaimStatusLine {
    /// TRN02.
    pub patient_control_number: Text,
    /// REF*1K.
    pub payer_claim_control_number: Option<Text>,
    /// The HL level holding the claim.
    pub level: Level,
    /// HL01 of that level.
    pub hl: Text,
    /// Every claim-level STC category (STC01-1, STC10-1, STC11-1), in order.
    pub categories: Vec<String>,
    /// Every claim-level STC01 as `category:status[:entity]`.
    pub statuses: Vec<String>,
    /// Categories of service-line STC.
    pub line_categories: Vec<String>,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LevelStatus {
    pub level: Level,
    pub hl: Text,
    pub categories: Vec<String>,
    pub statuses: Vec<String>,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AckSummary {
    /// AK101: GS01 of the group acknowledged.
    pub functional_id: Option<String>,
    /// AK102: GS06 of the group acknowledged.
    pub group_control_number: Option<String>,
    /// AK901, else derived from the IK501s.
    pub acceptance: Option<Acceptance>,
    /// AK902..AK904.
    pub included: Option<u32>,
    pub received: Option<u32>,
    pub accepted: Option<u32>,
    pub transactions: Vec<AckTransaction>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AckTransaction {
    /// AK201.
    pub set_id: String,
    /// AK202.
    pub control_number: String,
    pub acceptance: Option<Acceptance>,
    /// Number of IK3 segment errors.
    pub segment_errors: usize,
    /// IK502..IK506.
    pub error_codes: Vec<String>,
}

/// Reads a file and reports on it. Never fails and never panics.
pub fn inspect(bytes: &[u8]) -> InspectReport {
    let doc = read(bytes);
    report(&doc, bytes.len())
}

fn within(i: usize, start: usize, end: usize) -> bool {
    start <= i && i <= end
}

/// Builds the report of an already read document.
pub fn report(doc: &Document, bytes: usize) -> InspectReport {
    let mut interchanges: Vec<InterchangeReport> =
        doc.interchanges.iter().map(interchange_report).collect();
    let mut file_problems = Vec::new();
    for p in &doc.problems {
        place(p, doc, &mut interchanges, &mut file_problems);
    }
    let mut summary = Summary {
        interchanges: interchanges.len(),
        groups: 0,
        transactions: 0,
        errors: 0,
        warnings: 0,
        balance_problems: 0,
        ok: true,
    };
    for p in &doc.problems {
        match p.severity {
            Severity::Error => summary.errors += 1,
            Severity::Warning => summary.warnings += 1,
        }
    }
    for ix in &interchanges {
        summary.groups += ix.groups.len();
        for g in &ix.groups {
            summary.transactions += g.transactions.len();
            summary.balance_problems += g
                .transactions
                .iter()
                .filter_map(|t| t.remittance.as_ref())
                .map(|r| r.balance_problems.len())
                .sum::<usize>();
        }
    }
    summary.ok = summary.errors == 0 && summary.balance_problems == 0;
    InspectReport {
        format: FORMAT,
        bytes,
        segments: doc.segment_count,
        interchanges,
        problems: file_problems,
        summary,
    }
}

/// Attaches a problem to the innermost report that holds it (see the module docs).
fn place(p: &Problem, doc: &Document, reports: &mut [InterchangeReport], file: &mut Vec<Problem>) {
    let Some(i) = p.segment_index else {
        file.push(p.clone());
        return;
    };
    let found = doc
        .interchanges
        .iter()
        .zip(reports.iter_mut())
        .find(|(ix, _)| within(i, ix.segment_index, ix.last_segment_index));
    let Some((ix, ixr)) = found else {
        file.push(p.clone());
        return;
    };
    if p.group.is_none() && p.transaction.is_none() {
        ixr.problems.push(p.clone());
        return;
    }
    let found = ix
        .groups
        .iter()
        .zip(ixr.groups.iter_mut())
        .find(|(g, _)| within(i, g.segment_index, g.last_segment_index));
    let Some((g, gr)) = found else {
        ixr.problems.push(p.clone());
        return;
    };
    if p.transaction.is_none() {
        gr.problems.push(p.clone());
        return;
    }
    let found = g
        .transactions
        .iter()
        .zip(gr.transactions.iter_mut())
        .find(|(t, _)| within(i, t.segment_index, t.last_segment_index));
    match found {
        Some((_, tr)) => tr.problems.push(p.clone()),
        None => gr.problems.push(p.clone()),
    }
}

fn interchange_report(ix: &Interchange) -> InterchangeReport {
    let h = ix.header.as_ref();
    InterchangeReport {
        control_number: h.map(|h| h.control_number.clone()),
        sender: h.map(|h| format!("{}:{}", h.sender_qualifier, h.sender_id)),
        receiver: h.map(|h| format!("{}:{}", h.receiver_qualifier, h.receiver_id)),
        date: h.and_then(|h| h.date),
        version: h.map(|h| h.version.clone()),
        usage: h.map(|h| h.usage.clone()),
        delimiters: h.map(|h| h.delimiters),
        line: ix.line,
        problems: Vec::new(),
        groups: ix.groups.iter().map(group_report).collect(),
    }
}

fn group_report(g: &Group) -> GroupReport {
    let h = g.header.as_ref();
    GroupReport {
        control_number: h.map(|h| h.control_number.clone()),
        functional_id: h.map(|h| h.functional_id.clone()),
        version: h.map(|h| h.version.clone()),
        line: g.line,
        problems: Vec::new(),
        transactions: g.transactions.iter().map(transaction_report).collect(),
    }
}

fn status_text(c: &crate::status::StatusCode) -> String {
    match &c.entity {
        Some(e) => format!("{}:{}:{}", c.category, c.status, e),
        None => format!("{}:{}", c.category, c.status),
    }
}

fn transaction_report(t: &TransactionSet) -> TransactionReport {
    let mut r = TransactionReport {
        kind: t.content.kind_name().to_owned(),
        set_id: t.set_id.clone(),
        version: t.version.clone(),
        control_number: t.control_number.clone(),
        line: t.line,
        segments: t.segment_count,
        problems: Vec::new(),
        remittance: None,
        claim_status: None,
        acknowledgment: None,
        claims: None,
    };
    match &t.content {
        Transaction::Remittance835(rm) => {
            let (total_paid, total_plb) = balance::totals(rm);
            let problems = balance::check(&t.control_number, rm);
            let not_checked = balance::unchecked(&t.control_number, rm);
            let pay = rm.payment.as_ref();
            r.remittance = Some(RemittanceSummary {
                claim_count: rm.claims.len(),
                handling_code: pay.map(|p| p.handling_code.clone()),
                payment_amount: pay.and_then(|p| p.amount),
                payment_method: pay.and_then(|p| p.method.clone()),
                payment_date: pay.and_then(|p| p.date),
                trace_number: rm.trace.as_ref().map(|t| t.trace_number.clone()),
                payer: rm.payer.as_ref().map(|p| p.name.clone()),
                payee: rm.payee.as_ref().and_then(|p| {
                    let id = p.id.as_deref()?;
                    Some(format!("{}:{id}", p.id_qualifier.as_deref().unwrap_or("")))
                }),
                total_paid,
                total_provider_adjustments: total_plb,
                balanced: problems.is_empty() && not_checked.is_empty(),
                balance_problems: problems,
                not_checked,
            });
        }
        Transaction::ClaimStatus277(s) => {
            let claims = s
                .claims
                .iter()
                .map(|c| ClaimStatusLine {
                    patient_control_number: c.patient_control_number.clone(),
                    payer_claim_control_number: c.payer_claim_control_number.clone(),
                    level: c.level,
                    hl: s
                        .levels
                        .get(c.level_index)
                        .map(|l| l.id.clone())
                        .unwrap_or_default(),
                    categories: c.categories().into_iter().map(str::to_owned).collect(),
                    statuses: c
                        .statuses
                        .iter()
                        .map(|st| status_text(&st.primary))
                        .collect(),
                    line_categories: c
                        .lines
                        .iter()
                        .flat_map(|l| &l.statuses)
                        .flat_map(|st| st.categories())
                        .map(str::to_owned)
                        .collect(),
                    line: c.line,
                })
                .collect();
            let level_statuses = s
                .levels
                .iter()
                .filter(|l| !l.statuses.is_empty())
                .map(|l| LevelStatus {
                    level: l.level,
                    hl: l.id.clone(),
                    categories: l
                        .statuses
                        .iter()
                        .flat_map(|st| st.categories())
                        .map(str::to_owned)
                        .collect(),
                    statuses: l
                        .statuses
                        .iter()
                        .map(|st| status_text(&st.primary))
                        .collect(),
                    line: l.line,
                })
                .collect();
            r.claim_status = Some(ClaimStatusSummary {
                claim_count: s.claims.len(),
                claims,
                level_statuses,
            });
        }
        Transaction::Ack999(a) => {
            let g = a.group.as_ref();
            let res = a.group_result.as_ref();
            r.acknowledgment = Some(AckSummary {
                functional_id: g.map(|g| g.functional_id.clone()),
                group_control_number: g.map(|g| g.control_number.clone()),
                acceptance: a.acceptance(),
                included: res.and_then(|r| r.included),
                received: res.and_then(|r| r.received),
                accepted: res.and_then(|r| r.accepted),
                transactions: a
                    .transactions
                    .iter()
                    .map(|t| AckTransaction {
                        set_id: t.set_id.clone(),
                        control_number: t.control_number.clone(),
                        acceptance: t.acceptance,
                        segment_errors: t.segment_errors.len(),
                        error_codes: t.error_codes.clone(),
                    })
                    .collect(),
            });
        }
        Transaction::StatusRequest276(q) => r.claims = Some(q.inquiries.len()),
        Transaction::Professional837(p) => r.claims = Some(p.claims.len()),
        Transaction::Other { .. } => {}
    }
    r
}

fn money(m: Option<Money>) -> String {
    m.map_or_else(|| "-".to_owned(), |m| m.to_string())
}

fn problem_line(out: &mut String, indent: &str, p: &Problem) {
    let sev = match p.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let at = p.line.map(|l| format!(" line {l}")).unwrap_or_default();
    let _ = writeln!(out, "{indent}{sev}{at}: {}", p.message);
}

/// The report for a person: one line per envelope, indented, then its problems.
pub fn render_text(r: &InspectReport) -> String {
    let mut out = String::new();
    for p in &r.problems {
        problem_line(&mut out, "", p);
    }
    for ix in &r.interchanges {
        match &ix.control_number {
            Some(c) => {
                let _ = writeln!(
                    out,
                    "interchange {c} from {} to {}, {}, version {}, usage {} (line {})",
                    ix.sender.as_deref().unwrap_or("?"),
                    ix.receiver.as_deref().unwrap_or("?"),
                    ix.date.map_or_else(|| "no date".into(), |d| d.to_string()),
                    ix.version.as_deref().unwrap_or("?"),
                    ix.usage.as_deref().unwrap_or("?"),
                    ix.line
                );
            }
            None => {
                let _ = writeln!(out, "no interchange envelope (line {})", ix.line);
            }
        }
        for p in &ix.problems {
            problem_line(&mut out, "  ", p);
        }
        for g in &ix.groups {
            match &g.control_number {
                Some(c) => {
                    let _ = writeln!(
                        out,
                        "  group {c} {} {} (line {})",
                        g.functional_id.as_deref().unwrap_or("?"),
                        g.version.as_deref().unwrap_or("?"),
                        g.line
                    );
                }
                None => {
                    let _ = writeln!(out, "  no functional group envelope (line {})", g.line);
                }
            }
            for p in &g.problems {
                problem_line(&mut out, "    ", p);
            }
            for t in &g.transactions {
                render_transaction(&mut out, t);
            }
        }
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "{} interchange(s), {} group(s), {} transaction set(s); {} error(s), {} warning(s), {} balance problem(s): {}",
        s.interchanges,
        s.groups,
        s.transactions,
        s.errors,
        s.warnings,
        s.balance_problems,
        if s.ok { "OK" } else { "NOT OK" }
    );
    out
}

fn render_transaction(out: &mut String, t: &TransactionReport) {
    let _ = writeln!(
        out,
        "    {} {} ({}), {} segments (line {})",
        t.kind,
        t.control_number,
        t.version.as_deref().unwrap_or("no version"),
        t.segments,
        t.line
    );
    if let Some(r) = &t.remittance {
        let _ = writeln!(
            out,
            "      {} claim(s); BPR02 {}, sum CLP04 {}, sum PLB {}: {}",
            r.claim_count,
            money(r.payment_amount),
            money(r.total_paid),
            money(r.total_provider_adjustments),
            if r.balanced {
                "balanced"
            } else if r.balance_problems.is_empty() {
                "NOT checked (an amount could not be read)"
            } else {
                "NOT balanced"
            }
        );
        for b in &r.balance_problems {
            let _ = writeln!(out, "      balance line {}: {}", b.line, b.message);
        }
        for u in &r.not_checked {
            let _ = writeln!(out, "      balance line {}: {}", u.line, u.message);
        }
    }
    if let Some(s) = &t.claim_status {
        let _ = writeln!(out, "      {} claim(s)", s.claim_count);
        for l in &s.level_statuses {
            let _ = writeln!(
                out,
                "      {:?} level HL {}: {}",
                l.level,
                l.hl,
                l.statuses.join(", ")
            );
        }
        for c in &s.claims {
            let _ = writeln!(
                out,
                "      claim {} (payer {}): {}",
                c.patient_control_number,
                c.payer_claim_control_number.as_deref().unwrap_or("-"),
                c.statuses.join(", ")
            );
        }
    }
    if let Some(a) = &t.acknowledgment {
        let _ = writeln!(
            out,
            "      acknowledges group {} ({}): {:?}, {} of {} accepted",
            a.group_control_number.as_deref().unwrap_or("?"),
            a.functional_id.as_deref().unwrap_or("?"),
            a.acceptance,
            a.accepted.map_or_else(|| "?".into(), |n| n.to_string()),
            a.included.map_or_else(|| "?".into(), |n| n.to_string()),
        );
        for x in &a.transactions {
            let _ = writeln!(
                out,
                "      set {} {}: {:?}, {} segment error(s)",
                x.set_id, x.control_number, x.acceptance, x.segment_errors
            );
        }
    }
    if let Some(n) = t.claims {
        let _ = writeln!(out, "      {n} claim(s)");
    }
    for p in &t.problems {
        problem_line(out, "      ", p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remit::tests::FIXTURE;

    #[test]
    fn json_shape_is_stable() {
        let r = inspect(FIXTURE.as_bytes());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["format"], FORMAT);
        assert_eq!(v["summary"]["ok"], true);
        let ix = &v["interchanges"][0];
        assert_eq!(ix["control_number"], "000000001");
        assert_eq!(ix["sender"], "ZZ:PAYER");
        assert_eq!(ix["delimiters"]["element"], "*");
        assert_eq!(ix["delimiters"]["repetition"], "^");
        let g = &ix["groups"][0];
        assert_eq!(g["functional_id"], "HP");
        let t = &g["transactions"][0];
        assert_eq!(t["type"], "835");
        assert_eq!(t["control_number"], "0001");
        assert_eq!(t["version"], "005010X221A1");
        let rm = &t["remittance"];
        assert_eq!(rm["claim_count"], 2);
        assert_eq!(rm["payment_amount"], 17_500);
        assert_eq!(rm["total_paid"], 20_000);
        assert_eq!(rm["total_provider_adjustments"], 2_500);
        assert_eq!(rm["balanced"], true);
        assert_eq!(rm["payee"], "XX:1245319599");
        assert!(t["claim_status"].is_null());
        // Every documented key of a transaction is present, even when null.
        let keys: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "type",
            "set_id",
            "version",
            "control_number",
            "line",
            "segments",
            "problems",
            "remittance",
            "claim_status",
            "acknowledgment",
            "claims",
        ] {
            assert!(keys.contains(&k), "{k}");
        }
    }

    #[test]
    fn problems_sit_at_their_envelope() {
        let text = FIXTURE
            .replace("SE*39*0001~", "SE*38*0001~")
            .replace("GE*1*1~", "GE*1*2~")
            .replace("IEA*1*000000001~", "IEA*1*000000002~")
            .replace("BPR*I*175*", "BPR*I*176*");
        let r = inspect(text.as_bytes());
        let ix = &r.interchanges[0];
        assert_eq!(ix.problems.len(), 1);
        assert_eq!(ix.problems[0].element.as_deref(), Some("IEA02"));
        assert_eq!(ix.groups[0].problems[0].element.as_deref(), Some("GE02"));
        let t = &ix.groups[0].transactions[0];
        assert_eq!(t.problems[0].element.as_deref(), Some("SE01"));
        let rm = t.remittance.as_ref().unwrap();
        assert!(!rm.balanced);
        assert_eq!(rm.balance_problems.len(), 1);
        assert_eq!(r.summary.errors, 3);
        assert_eq!(r.summary.balance_problems, 1);
        assert!(!r.summary.ok);
        let text = render_text(&r);
        assert!(
            text.contains("IEA02=000000002 != ISA13=000000001"),
            "{text}"
        );
        assert!(text.contains("NOT balanced"));
        assert!(text.ends_with("NOT OK\n"));
    }

    #[test]
    fn file_level_problems_and_statuses() {
        let r = inspect(b"not x12 at all");
        assert_eq!(r.problems.len(), 1);
        assert!(r.interchanges.is_empty());
        assert!(!r.summary.ok);
        let r = inspect(b"ST*277*1*005010X214~HL*1**20*1~HL*2*1*21*1~STC*A1:20*20240101~HL*3*2*19*1~HL*4*3*PT~TRN*2*RBH-1~STC*A7:562:85*20240101*U~STC*A2:20*20240102~REF*1K*ICN1~SE*11*1~");
        let t = &r.interchanges[0].groups[0].transactions[0];
        assert_eq!(t.kind, "277CA");
        let s = t.claim_status.as_ref().unwrap();
        assert_eq!(s.claims[0].categories, ["A7", "A2"]);
        assert_eq!(s.claims[0].statuses, ["A7:562:85", "A2:20"]);
        assert_eq!(s.claims[0].level, Level::Patient);
        assert_eq!(s.level_statuses[0].level, Level::InformationReceiver);
        let text = render_text(&r);
        assert!(
            text.contains("claim RBH-1 (payer ICN1): A7:562:85, A2:20"),
            "{text}"
        );
        assert!(text.contains("no interchange envelope"));
    }

    #[test]
    fn acknowledgment_summary() {
        let r = inspect(b"ST*999*1~AK1*HC*17456~AK2*837*0001~IK5*A~AK2*837*0002~IK3*CLM*22**8~IK5*R*5~AK9*P*2*2*1~SE*9*1~");
        let a = r.interchanges[0].groups[0].transactions[0]
            .acknowledgment
            .clone()
            .unwrap();
        assert_eq!(a.acceptance, Some(Acceptance::PartiallyAccepted));
        assert_eq!(a.group_control_number.as_deref(), Some("17456"));
        assert_eq!(a.transactions[1].segment_errors, 1);
        assert_eq!(a.accepted, Some(1));
        assert!(render_text(&r).contains("1 of 2 accepted"));
    }
}
