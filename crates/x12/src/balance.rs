//! 835 balancing (docs/reference/x12.md §3.4), to the cent, no tolerance:
//!
//! 1. line: `SVC02 − Σ line CAS = SVC03`;
//! 2. claim: `CLP03 − Σ claim CAS − Σ line CAS = CLP04`;
//! 3. transaction: `BPR02 = Σ CLP04 − Σ PLB amounts` (PLB positive = withheld from the provider).
//!
//! Each rule yields at most one [`BalanceProblem`] per item, naming the transaction control
//! number, the claim (CLP01), the service line and the segment line, with the amount the rule
//! expects and the amount the file states. Reversals (CLP02 22) carry negative amounts and obey
//! the same rules. A claim whose amounts could not be read (already reported as a located
//! problem) is not balanced, so one bad value does not produce a second, misleading report.
//! [`unchecked`] names those rules, at the level each breaks, so a report never calls such a
//! file balanced. Sums are computed in `i128`, so no partial sum overflows or wraps. A rule whose computed
//! total does not fit in 64-bit cents (more than 92 quadrillion dollars: no real remittance)
//! has no [`Money`] to show and is skipped rather than reported with a clamped number.

use arflow_domain::Money;
use serde::Serialize;

use crate::remit::{Adjustment, Remittance835};
use crate::text::Text;

/// Which balancing rule failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BalanceLevel {
    Line,
    Claim,
    Transaction,
}

/// One failed balancing rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BalanceProblem {
    pub level: BalanceLevel,
    /// ST02 of the 835.
    pub transaction: String,
    /// CLP01 (line and claim rules).
    pub claim: Option<Text>,
    /// 1-based position of the SVC within its claim (line rule).
    pub service_line: Option<usize>,
    /// REF*6R of the line, when sent.
    pub line_item_control_number: Option<Text>,
    /// What the rule computes from the other amounts (SVC03, CLP04 or BPR02 as it should be).
    pub expected: Money,
    /// What the file states.
    pub found: Money,
    /// 0-based segment index of the SVC, CLP or BPR.
    pub segment_index: usize,
    /// 1-based line of that segment.
    pub line: u32,
    pub message: String,
}

fn total(adjustments: &[Adjustment]) -> i128 {
    adjustments
        .iter()
        .map(|a| i128::from(a.amount.cents()))
        .sum()
}

fn money(x: i128) -> Option<Money> {
    i64::try_from(x).ok().map(Money::from_cents)
}

/// Runs the three rules over one 835. `transaction` is its ST02.
pub fn check(transaction: &str, r: &Remittance835) -> Vec<BalanceProblem> {
    let mut out = Vec::new();
    let mut sum_paid: i128 = 0;
    let mut totals_known = !r.incomplete;
    for claim in &r.claims {
        match claim.paid {
            Some(p) => sum_paid += i128::from(p.cents()),
            None => totals_known = false,
        }
        if claim.incomplete {
            continue;
        }
        let mut line_cas: i128 = 0;
        for (i, line) in claim.lines.iter().enumerate() {
            let cas = total(&line.adjustments);
            line_cas += cas;
            let (Some(charge), Some(paid)) = (line.charge, line.paid) else {
                continue;
            };
            let expected = i128::from(charge.cents()) - cas;
            if expected != i128::from(paid.cents()) {
                let Some(expected) = money(expected) else {
                    continue;
                };
                out.push(BalanceProblem {
                    level: BalanceLevel::Line,
                    transaction: transaction.to_owned(),
                    claim: Some(claim.patient_control_number.clone()),
                    service_line: Some(i + 1),
                    line_item_control_number: line.line_item_control_number.clone(),
                    expected,
                    found: paid,
                    segment_index: line.segment_index,
                    line: line.line,
                    message: format!(
                        "claim {} line {}: SVC02 {} - line CAS {} = {}, but SVC03 says {}",
                        claim.patient_control_number,
                        i + 1,
                        charge,
                        money(cas).map_or_else(|| "(overflow)".into(), |m| m.to_string()),
                        expected,
                        paid
                    ),
                });
            }
        }
        let (Some(charge), Some(paid)) = (claim.charge, claim.paid) else {
            continue;
        };
        let claim_cas = total(&claim.adjustments);
        let expected = i128::from(charge.cents()) - claim_cas - line_cas;
        if expected != i128::from(paid.cents()) {
            let Some(expected_m) = money(expected) else {
                continue;
            };
            out.push(BalanceProblem {
                level: BalanceLevel::Claim,
                transaction: transaction.to_owned(),
                claim: Some(claim.patient_control_number.clone()),
                service_line: None,
                line_item_control_number: None,
                expected: expected_m,
                found: paid,
                segment_index: claim.segment_index,
                line: claim.line,
                message: format!(
                    "claim {}: CLP03 {} - claim CAS {} - line CAS {} = {}, but CLP04 says {}",
                    claim.patient_control_number,
                    charge,
                    money(claim_cas).map_or_else(|| "(overflow)".into(), |m| m.to_string()),
                    money(line_cas).map_or_else(|| "(overflow)".into(), |m| m.to_string()),
                    expected_m,
                    paid
                ),
            });
        }
    }
    let Some(payment) = &r.payment else {
        return out;
    };
    let Some(bpr02) = payment.amount else {
        return out;
    };
    if !totals_known {
        return out;
    }
    let plb: i128 = r
        .provider_adjustments
        .iter()
        .flat_map(|p| &p.items)
        .map(|i| i128::from(i.amount.cents()))
        .sum();
    let expected = sum_paid - plb;
    if expected != i128::from(bpr02.cents())
        && let (Some(expected_m), Some(paid_m), Some(plb_m)) =
            (money(expected), money(sum_paid), money(plb))
    {
        out.push(BalanceProblem {
            level: BalanceLevel::Transaction,
            transaction: transaction.to_owned(),
            claim: None,
            service_line: None,
            line_item_control_number: None,
            expected: expected_m,
            found: bpr02,
            segment_index: payment.segment_index,
            line: payment.line,
            message: format!(
                "transaction {transaction}: sum of CLP04 {paid_m} - sum of PLB {plb_m} = {expected_m}, but BPR02 says {bpr02}"
            ),
        });
    }
    out
}

/// A balancing rule that could not be run: an amount it needs could not be read (the reader
/// reported where). The file is then neither balanced nor unbalanced at that level: "not
/// checked", never "balanced".
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unchecked {
    pub level: BalanceLevel,
    /// ST02 of the 835.
    pub transaction: String,
    /// CLP01 (line and claim rules).
    pub claim: Option<Text>,
    /// 1-based position of the SVC within its claim (line rule).
    pub service_line: Option<usize>,
    /// 0-based segment index of the SVC, CLP or BPR.
    pub segment_index: usize,
    /// 1-based line of that segment.
    pub line: u32,
    pub message: String,
}

/// The rules of [`check`] that could not be run over one 835, at the level each breaks: a
/// line whose SVC02 or SVC03 is unreadable; a claim with an unreadable amount (its own or a
/// line's); the transaction when BPR02, a PLB amount or any CLP04 is unreadable.
pub fn unchecked(transaction: &str, r: &Remittance835) -> Vec<Unchecked> {
    let mut out = Vec::new();
    let mut totals_known = !r.incomplete;
    for claim in &r.claims {
        totals_known &= claim.paid.is_some();
        for (i, line) in claim.lines.iter().enumerate() {
            if line.charge.is_none() || line.paid.is_none() {
                out.push(Unchecked {
                    level: BalanceLevel::Line,
                    transaction: transaction.to_owned(),
                    claim: Some(claim.patient_control_number.clone()),
                    service_line: Some(i + 1),
                    segment_index: line.segment_index,
                    line: line.line,
                    message: format!(
                        "claim {} line {}: not checked: SVC02 or SVC03 could not be read",
                        claim.patient_control_number,
                        i + 1
                    ),
                });
            }
        }
        if claim.incomplete || claim.charge.is_none() || claim.paid.is_none() {
            out.push(Unchecked {
                level: BalanceLevel::Claim,
                transaction: transaction.to_owned(),
                claim: Some(claim.patient_control_number.clone()),
                service_line: None,
                segment_index: claim.segment_index,
                line: claim.line,
                message: format!(
                    "claim {}: not checked: an amount of the claim or its lines could not be read",
                    claim.patient_control_number
                ),
            });
        }
    }
    let bpr02 = r.payment.as_ref().and_then(|p| p.amount);
    if !totals_known || bpr02.is_none() {
        let (segment_index, line) = r
            .payment
            .as_ref()
            .map_or((0, 0), |p| (p.segment_index, p.line));
        out.push(Unchecked {
            level: BalanceLevel::Transaction,
            transaction: transaction.to_owned(),
            claim: None,
            service_line: None,
            segment_index,
            line,
            message: format!(
                "transaction {transaction}: not checked: BPR02, a PLB amount or a CLP04 could not be read"
            ),
        });
    }
    out
}

/// Σ CLP04 and Σ PLB amounts of one 835 (the figures inspect shows), `None` when a sum does not
/// fit in 64-bit cents.
pub fn totals(r: &Remittance835) -> (Option<Money>, Option<Money>) {
    let paid: i128 = r
        .claims
        .iter()
        .filter_map(|c| c.paid)
        .map(|m| i128::from(m.cents()))
        .sum();
    let plb: i128 = r
        .provider_adjustments
        .iter()
        .flat_map(|p| &p.items)
        .map(|i| i128::from(i.amount.cents()))
        .sum();
    (money(paid), money(plb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::read;
    use crate::remit::tests::FIXTURE;

    fn problems(text: &str) -> Vec<BalanceProblem> {
        read(text.as_bytes()).balance_problems()
    }

    #[test]
    fn balanced_file_including_reversal_and_plb() {
        // The fixture nets a reversal (CLP02 22, negative amounts) and two PLB pairs.
        assert_eq!(problems(FIXTURE), []);
    }

    #[test]
    fn line_rule() {
        // The claim rule uses CLP03, CLP04 and CAS only, so a wrong SVC03 fails the line alone.
        let p = problems(&FIXTURE.replace("*180*170*0400", "*180*171*0400"));
        assert_eq!(p.len(), 1, "{p:#?}");
        let b = &p[0];
        assert_eq!(b.level, BalanceLevel::Line);
        assert_eq!(b.transaction, "0001");
        assert_eq!(b.claim.as_deref(), Some("RBH-1"));
        assert_eq!(b.service_line, Some(1));
        assert_eq!(b.line_item_control_number.as_deref(), Some("1"));
        assert_eq!(b.expected, Money::from_cents(17_000));
        assert_eq!(b.found, Money::from_cents(17_100));
        assert_eq!(b.line, 26);
        assert!(b.message.contains("SVC03 says $171.00"), "{}", b.message);
    }

    #[test]
    fn claim_rule_counts_claim_and_line_adjustments() {
        // A line CAS changes: its line and its claim fail.
        let p = problems(&FIXTURE.replace("CAS*CO*45*20~", "CAS*CO*45*21~"));
        let levels: Vec<_> = p.iter().map(|b| b.level).collect();
        assert_eq!(levels, [BalanceLevel::Line, BalanceLevel::Claim]);
        let claim = &p[1];
        assert_eq!(claim.expected, Money::from_cents(24_900));
        assert_eq!(claim.found, Money::from_cents(25_000));
        assert_eq!(claim.line, 16);
        // A claim-level CAS changes: only the claim fails.
        let p = problems(&FIXTURE.replace("CAS*CO*45*10*1*", "CAS*CO*45*11*1*"));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].level, BalanceLevel::Claim);
        assert_eq!(p[0].service_line, None);
    }

    #[test]
    fn transaction_rule_subtracts_plb() {
        let p = problems(&FIXTURE.replace("BPR*I*175*", "BPR*I*200*"));
        assert_eq!(p.len(), 1);
        let b = &p[0];
        assert_eq!(b.level, BalanceLevel::Transaction);
        assert_eq!(b.claim, None);
        assert_eq!(b.expected, Money::from_cents(17_500));
        assert_eq!(b.found, Money::from_cents(20_000));
        assert_eq!(b.line, 4);
        // Without the PLB the same file would have balanced at 200: the sign matters.
        let no_plb = FIXTURE
            .replace("PLB*1245319599*20241231*WO:ICN0000*-12.5*L6*37.5~\n", "")
            .replace("SE*39*", "SE*38*")
            .replace("BPR*I*175*", "BPR*I*200*");
        assert_eq!(problems(&no_plb), []);
    }

    #[test]
    fn unreadable_amounts_are_not_balanced_twice() {
        let doc = read(
            FIXTURE
                .replace("CLP*RBH-1*1*300*", "CLP*RBH-1*1*3x0*")
                .as_bytes(),
        );
        assert!(
            doc.problems
                .iter()
                .any(|p| p.element.as_deref() == Some("CLP03"))
        );
        // The claim is skipped; the transaction still adds up (CLP04 was readable).
        assert_eq!(doc.balance_problems(), []);
        let doc = read(FIXTURE.replace("BPR*I*175*", "BPR*I*1.755*").as_bytes());
        assert_eq!(doc.balance_problems(), []);
    }

    #[test]
    fn unreadable_amounts_are_reported_as_not_checked_at_the_level_they_break() {
        let doc = read(FIXTURE.as_bytes());
        let (t, r) = doc.remittances().next().unwrap();
        assert_eq!(
            unchecked(&t.control_number, r),
            [],
            "a readable file is checked"
        );

        // An unreadable CLP03: the claim is not checked; the transaction still is (CLP04 read).
        let doc = read(
            FIXTURE
                .replace("CLP*RBH-1*1*300*", "CLP*RBH-1*1*3x0*")
                .as_bytes(),
        );
        let (t, r) = doc.remittances().next().unwrap();
        let u = unchecked(&t.control_number, r);
        let levels: Vec<_> = u.iter().map(|u| u.level).collect();
        assert_eq!(levels, [BalanceLevel::Claim], "{u:#?}");
        assert_eq!(u[0].claim.as_deref(), Some("RBH-1"));
        assert_eq!(u[0].line, 16);
        assert!(u[0].message.contains("not checked"), "{}", u[0].message);

        // An unreadable SVC03: that line and its claim.
        let doc = read(FIXTURE.replace("*180*170*0400", "*180*1y0*0400").as_bytes());
        let (t, r) = doc.remittances().next().unwrap();
        let levels: Vec<_> = unchecked(&t.control_number, r)
            .iter()
            .map(|u| u.level)
            .collect();
        assert_eq!(levels, [BalanceLevel::Line, BalanceLevel::Claim]);

        // An unreadable BPR02: the transaction.
        let doc = read(FIXTURE.replace("BPR*I*175*", "BPR*I*1.755*").as_bytes());
        let (t, r) = doc.remittances().next().unwrap();
        let u = unchecked(&t.control_number, r);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].level, BalanceLevel::Transaction);
        assert_eq!(u[0].line, 4);
    }

    #[test]
    fn totals_sum_clp04_and_plb() {
        let doc = read(FIXTURE.as_bytes());
        let (_, r) = doc.remittances().next().unwrap();
        assert_eq!(
            totals(r),
            (
                Some(Money::from_cents(20_000)),
                Some(Money::from_cents(2_500))
            )
        );
    }
}
