//! Which of our claims an 835 claim payment (CLP) pays: pure, no I/O.
//!
//! A patient control number (CLP01, our CLM01) is unique only within a clinic, so two clinics
//! of one billing company can both have claim `1001`. An ERA names its payee (1000B N1*PE, the
//! billing provider: N103 `XX` = NPI) and its payer (1000A N1*PR), so a CLP is matched on the
//! payee, then the payer, then CLP01, preferring the claim that carries the payer's own claim
//! number (CLP07) once one is known, and otherwise confirmed by the dates of service (the
//! CLP's DTM*232/233 and its lines' DTM*472 overlap the claim's) and the charge (CLP03 is at
//! most the claim's: a payer that splits a claim pays part of it) (docs/reference/x12.md §3.5).
//! A CLP that fits no claim, or that fits claims of several clinics, stays unmatched with its
//! reason: money is never posted on a guess.
use chrono::NaiveDate;

/// One of our claims with the CLP's patient control number, as matching needs it. The caller
/// passes only claims its key may see (its clinics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Candidate {
    pub claim_id: String,
    pub clinic_id: String,
    pub payer_id: String,
    /// The billing provider's NPI (2010AA NM109 of the 837P we sent).
    pub billing_npi: String,
    /// CLM05-3: `1` original, `7` replacement, `8` void.
    pub frequency_code: String,
    /// CLP07 of an earlier posting, empty until a payer named one.
    pub payer_claim_control_number: String,
    /// The claim's first and last date of service.
    pub service_dates: Option<(NaiveDate, NaiveDate)>,
    /// The claim's total charge, cents.
    pub total_charge_cents: i64,
}

/// What the ERA says about whom a CLP is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClpKeys<'a> {
    /// N1*PE N104 when N103 is `XX` (an NPI); None for a TIN (`FI`) or no id, which we cannot
    /// compare with the claims we hold.
    pub payee_npi: Option<&'a str>,
    /// N1*PR N104 when the payer gave an id; None when it named itself only.
    pub payer_id: Option<&'a str>,
    /// CLP07, the payer's claim control number.
    pub payer_claim_control_number: &'a str,
    /// The earliest and latest date of service the CLP names (statement dates, line dates);
    /// None when it names none.
    pub service_dates: Option<(NaiveDate, NaiveDate)>,
    /// CLP03, cents; None when not read. A reversal's is negative: its size is compared.
    pub charge_cents: Option<i64>,
}

/// The claim a CLP pays, or why none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClpMatch {
    Claim(String),
    /// Why the CLP stays unmatched, for the biller; names no patient data.
    Unmatched(&'static str),
}

pub const NO_CLAIM: &str = "no claim with this patient control number";
pub const NO_CLAIM_OF_PAYEE: &str =
    "no claim of this payee (N1*PE NPI = billing provider) with this patient control number";
pub const NO_CLAIM_OF_PAYER: &str = "no claim of this payer with this patient control number";
pub const AMBIGUOUS: &str =
    "ambiguous: claims of several clinics have this patient control number, payee and payer";
pub const ONLY_VOIDED: &str = "only a voided claim has this patient control number";
pub const OTHER_SERVICE: &str = "the claims with this patient control number are for other dates of service or a smaller charge";

/// Matches a CLP among `candidates` (the claims with its CLP01, newest first).
pub fn match_clp(candidates: &[Candidate], keys: &ClpKeys<'_>) -> ClpMatch {
    if candidates.is_empty() {
        return ClpMatch::Unmatched(NO_CLAIM);
    }
    let mut fit: Vec<&Candidate> = candidates.iter().collect();
    if let Some(npi) = keys.payee_npi.filter(|n| !n.is_empty()) {
        fit.retain(|c| c.billing_npi == npi);
        if fit.is_empty() {
            return ClpMatch::Unmatched(NO_CLAIM_OF_PAYEE);
        }
    }
    if let Some(payer) = keys.payer_id.filter(|p| !p.is_empty()) {
        fit.retain(|c| c.payer_id.eq_ignore_ascii_case(payer));
        if fit.is_empty() {
            return ClpMatch::Unmatched(NO_CLAIM_OF_PAYER);
        }
    }
    // The payer's own number identifies the claim it adjudicated (also a voided one: a
    // reversal of its payment must find it).
    let ccn = keys.payer_claim_control_number;
    if !ccn.is_empty()
        && let Some(c) = fit.iter().find(|c| c.payer_claim_control_number == ccn)
    {
        return ClpMatch::Claim(c.claim_id.clone());
    }
    fit.retain(|c| confirms(c, keys));
    if fit.is_empty() {
        return ClpMatch::Unmatched(OTHER_SERVICE);
    }
    let first_clinic = &fit[0].clinic_id;
    if fit.iter().any(|c| &c.clinic_id != first_clinic) {
        return ClpMatch::Unmatched(AMBIGUOUS);
    }
    // One clinic's claim and its corrections: the newest that is not a void stands for it.
    match fit.iter().find(|c| c.frequency_code != "8") {
        Some(c) => ClpMatch::Claim(c.claim_id.clone()),
        None => ClpMatch::Unmatched(ONLY_VOIDED),
    }
}

/// The CLP's dates of service overlap the claim's, and its charge is not above the claim's
/// (each checked when both sides are known).
fn confirms(c: &Candidate, keys: &ClpKeys<'_>) -> bool {
    let dates = match (c.service_dates, keys.service_dates) {
        (Some((first, last)), Some((from, to))) => from <= last && first <= to,
        _ => true,
    };
    let charge = keys
        .charge_cents
        .is_none_or(|charge| charge.unsigned_abs() <= c.total_charge_cents.unsigned_abs());
    dates && charge
}

/// PLB03-1 reasons whose PLB03-2 reference names a claim (its ICN, or our patient control
/// number): an overpayment recovery (`WO`), a forwarding balance (`FB`), an authorized return
/// (`72`), interest owed (`L6`), a late charge or interest penalty (`50`, `51`) and a
/// non-reimbursable amount (`J1`) (docs/reference/x12.md §3.3). Other reasons are about the
/// provider as a whole.
pub fn plb_names_claim(reason: &str) -> bool {
    matches!(reason, "WO" | "FB" | "72" | "L6" | "50" | "51" | "J1")
}

/// The claim a PLB reference names among `candidates` (our claims whose CLP07 or patient
/// control number is the reference, visible to the caller): the one carrying the payer's
/// number, else the only claim; None when none or several would fit (it stays provider-level).
pub fn match_plb(candidates: &[Candidate], reference: &str) -> Option<String> {
    if reference.is_empty() {
        return None;
    }
    if let Some(c) = candidates
        .iter()
        .find(|c| c.payer_claim_control_number == reference)
    {
        return Some(c.claim_id.clone());
    }
    match candidates {
        [only] => Some(only.claim_id.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(id: &str, clinic: &str, npi: &str) -> Candidate {
        Candidate {
            claim_id: id.into(),
            clinic_id: clinic.into(),
            payer_id: "87726".into(),
            billing_npi: npi.into(),
            frequency_code: "1".into(),
            payer_claim_control_number: String::new(),
            service_dates: Some((day(4), day(4))),
            total_charge_cents: 20_500,
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, d).unwrap_or_default()
    }

    fn keys<'a>(npi: Option<&'a str>, payer: Option<&'a str>, ccn: &'a str) -> ClpKeys<'a> {
        ClpKeys {
            payee_npi: npi,
            payer_id: payer,
            payer_claim_control_number: ccn,
            service_dates: None,
            charge_cents: None,
        }
    }

    #[test]
    fn two_clinics_with_one_control_number_are_told_apart_by_the_payee() {
        let both = [
            claim("b", "clinic-b", "1111111112"),
            claim("a", "clinic-a", "1245319599"),
        ];
        assert_eq!(
            match_clp(&both, &keys(Some("1245319599"), Some("87726"), "")),
            ClpMatch::Claim("a".into())
        );
        assert_eq!(
            match_clp(&both, &keys(Some("1111111112"), None, "")),
            ClpMatch::Claim("b".into())
        );
        // Without a payee NPI (a TIN) nothing tells them apart: never guessed.
        assert_eq!(
            match_clp(&both, &keys(None, Some("87726"), "")),
            ClpMatch::Unmatched(AMBIGUOUS)
        );
        assert_eq!(
            match_clp(&both, &keys(Some("9999999995"), None, "")),
            ClpMatch::Unmatched(NO_CLAIM_OF_PAYEE)
        );
    }

    #[test]
    fn the_payer_must_be_the_claims_payer_when_it_gives_an_id() {
        let one = [claim("a", "clinic-a", "1245319599")];
        assert_eq!(
            match_clp(&one, &keys(None, Some("60054"), "")),
            ClpMatch::Unmatched(NO_CLAIM_OF_PAYER)
        );
        assert_eq!(
            match_clp(&one, &keys(None, Some("87726"), "")),
            ClpMatch::Claim("a".into())
        );
    }

    #[test]
    fn the_payer_claim_number_wins_then_the_newest_non_void() {
        let mut original = claim("orig", "clinic-a", "1245319599");
        original.payer_claim_control_number = "ICN1".into();
        let mut replacement = claim("repl", "clinic-a", "1245319599");
        replacement.frequency_code = "7".into();
        let mut void = claim("void", "clinic-a", "1245319599");
        void.frequency_code = "8".into();
        let newest_first = [void.clone(), replacement, original];
        assert_eq!(
            match_clp(&newest_first, &keys(None, None, "ICN1")),
            ClpMatch::Claim("orig".into())
        );
        assert_eq!(
            match_clp(&newest_first, &keys(None, None, "")),
            ClpMatch::Claim("repl".into())
        );
        assert_eq!(
            match_clp(&[void], &keys(None, None, "")),
            ClpMatch::Unmatched(ONLY_VOIDED)
        );
        assert_eq!(
            match_clp(&[], &keys(None, None, "")),
            ClpMatch::Unmatched(NO_CLAIM)
        );
    }

    #[test]
    fn dates_of_service_and_charge_confirm_the_claim() {
        let one = [claim("a", "clinic-a", "1245319599")];
        let with = |dates: Option<(NaiveDate, NaiveDate)>, charge: Option<i64>| ClpKeys {
            service_dates: dates,
            charge_cents: charge,
            ..keys(None, None, "")
        };
        let claim_a = ClpMatch::Claim("a".into());
        assert_eq!(
            match_clp(&one, &with(Some((day(4), day(4))), Some(20_500))),
            claim_a
        );
        // A split claim: the payer adjudicated one line of it.
        assert_eq!(
            match_clp(&one, &with(Some((day(1), day(4))), Some(18_000))),
            claim_a
        );
        // A reversal carries negative amounts.
        assert_eq!(match_clp(&one, &with(None, Some(-20_500))), claim_a);
        assert_eq!(
            match_clp(&one, &with(Some((day(5), day(6))), None)),
            ClpMatch::Unmatched(OTHER_SERVICE),
            "another encounter of the same patient account"
        );
        assert_eq!(
            match_clp(&one, &with(None, Some(30_000))),
            ClpMatch::Unmatched(OTHER_SERVICE)
        );
        // Dates tell two clinics' claims apart when the payee cannot.
        let mut b = claim("b", "clinic-b", "1245319599");
        b.service_dates = Some((day(20), day(20)));
        let both = [b, one[0].clone()];
        assert_eq!(
            match_clp(&both, &with(Some((day(20), day(20))), None)),
            ClpMatch::Claim("b".into())
        );
        // The payer's claim number wins over the dates (the payer adjudicated that claim).
        let mut ccn = one[0].clone();
        ccn.payer_claim_control_number = "ICN9".into();
        assert_eq!(
            match_clp(
                &[ccn],
                &ClpKeys {
                    service_dates: Some((day(9), day(9))),
                    ..keys(None, None, "ICN9")
                }
            ),
            claim_a
        );
    }

    #[test]
    fn a_plb_reference_ties_to_one_claim_or_none() {
        assert!(plb_names_claim("WO") && plb_names_claim("L6"));
        assert!(!plb_names_claim("CS") && !plb_names_claim(""));
        let mut a = claim("a", "clinic-a", "1245319599");
        a.payer_claim_control_number = "ICN1".into();
        let b = claim("b", "clinic-b", "1245319599");
        assert_eq!(match_plb(&[b.clone(), a.clone()], "ICN1"), Some("a".into()));
        assert_eq!(
            match_plb(std::slice::from_ref(&b), "1001"),
            Some("b".into())
        );
        assert_eq!(
            match_plb(&[a, b], "1001"),
            None,
            "two claims: never guessed"
        );
        assert_eq!(match_plb(&[], "ICN1"), None);
    }
}
