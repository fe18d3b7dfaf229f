//! Deadlines: pure date math over [`PayerRules`] (docs/design.md §4, §7;
//! docs/reference/billing-rules.md C6, C7).
//!
//! Every function returns the **last day** on which the payer must receive the submission
//! (calendar date; the scheduler applies business days, the 6 p.m. ET cut-off and holidays:
//! Medicare counts EDI received after 6 p.m. ET, on a weekend or on a holiday as the next
//! business day, medicare.fcso.com/node/5026). A rejected claim was never filed, so it does not
//! stop the filing clock: callers keep computing from the first date of service.

use chrono::{Days, Months, NaiveDate};

use crate::rules::{CorrectedClaimClock, PayerRules};

/// Last day to file an initial claim: the first date of service (Part B span claims use the
/// "From" date) plus the payer's window. A months window is calendar months, clamped to the
/// month's end: Medicare's 12 months are "one calendar year after the date of service", and a
/// Feb 29 DOS must be filed by Feb 28 (42 CFR 424.44; medicare.fcso.com/node/5026). Saturates
/// at the end of the calendar instead of overflowing.
pub fn timely_filing_deadline(first_service_date: NaiveDate, payer: &PayerRules) -> NaiveDate {
    match payer.timely_filing_months {
        Some(m) => first_service_date.checked_add_months(Months::new(m)),
        None => first_service_date.checked_add_days(Days::new(u64::from(payer.timely_filing_days))),
    }
    .unwrap_or(NaiveDate::MAX)
}

/// Whether a claim received on `filed_on` is past the payer's initial filing window.
pub fn is_past_timely_filing(
    first_service_date: NaiveDate,
    filed_on: NaiveDate,
    payer: &PayerRules,
) -> bool {
    filed_on > timely_filing_deadline(first_service_date, payer)
}

/// Last day to request appeal `level` (1 = first level: Medicare redetermination, 120 days,
/// IOM 100-04 ch.29 §310.2), counted from `denial_date`: the date of the notice being appealed
/// (the initial denial / RA for level 1, the previous level's decision for later levels).
/// `None` when the payer has no such level configured.
pub fn appeal_deadline(
    denial_date: NaiveDate,
    level: u32,
    payer: &PayerRules,
) -> Option<NaiveDate> {
    let index = usize::try_from(level.checked_sub(1)?).ok()?;
    let days = *payer.appeal_windows_days.get(index)?;
    denial_date.checked_add_days(Days::new(u64::from(days)))
}

/// Last day to send a corrected (frequency 7) claim, from the remittance date or the first date
/// of service as the payer counts it (docs/reference/billing-rules.md C7: UHC 180 days from the RA,
/// Cigna 90/180 from the RA, Anthem 365 from DOS; vendor-compiled). `None` when the payer has no
/// separate corrected-claim window (Humana does not reset the clock): the initial
/// [`timely_filing_deadline`] then applies.
pub fn corrected_claim_deadline(
    first_service_date: NaiveDate,
    remit_date: NaiveDate,
    payer: &PayerRules,
) -> Option<NaiveDate> {
    let days = payer.corrected_claim_days?;
    let start = match payer.corrected_claim_clock {
        CorrectedClaimClock::FromRemitDate => remit_date,
        CorrectedClaimClock::FromServiceDate => first_service_date,
    };
    start.checked_add_days(Days::new(u64::from(days)))
}

/// Last day to send a corrected claim after a remittance on `remit_date`: the payer's
/// [`corrected_claim_deadline`], else (no separate window) the initial
/// [`timely_filing_deadline`]. `None` when the clock that applies counts from the first date
/// of service and that date is not known.
pub fn corrected_claim_last_day(
    first_service_date: Option<NaiveDate>,
    remit_date: NaiveDate,
    payer: &PayerRules,
) -> Option<NaiveDate> {
    match (payer.corrected_claim_days, payer.corrected_claim_clock) {
        (Some(_), CorrectedClaimClock::FromRemitDate) => {
            // The date of service is not read on this clock.
            corrected_claim_deadline(remit_date, remit_date, payer)
        }
        (Some(_), CorrectedClaimClock::FromServiceDate) => {
            corrected_claim_deadline(first_service_date?, remit_date, payer)
        }
        (None, _) => Some(timely_filing_deadline(first_service_date?, payer)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rules::PayerRuleSet;
    use crate::rules::payer::MEDICARE;

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn medicare(on: NaiveDate) -> PayerRules {
        PayerRuleSet::builtin().for_payer("t", MEDICARE, on).clone()
    }

    fn commercial() -> PayerRules {
        PayerRuleSet::builtin()
            .for_payer("t", "87726", ymd(2025, 1, 1))
            .clone()
    }

    #[test]
    fn medicare_timely_filing_is_one_calendar_year() {
        let p = medicare(ymd(2024, 2, 29));
        // Feb 29 must be filed by Feb 28 (medicare.fcso.com/node/5026).
        assert_eq!(
            timely_filing_deadline(ymd(2024, 2, 29), &p),
            ymd(2025, 2, 28)
        );
        // A calendar year, not 365 days: across a leap day the two differ.
        assert_eq!(
            timely_filing_deadline(ymd(2023, 3, 15), &p),
            ymd(2024, 3, 15)
        );
        assert_eq!(timely_filing_deadline(ymd(2024, 7, 1), &p), ymd(2025, 7, 1));
        assert!(!is_past_timely_filing(
            ymd(2024, 2, 29),
            ymd(2025, 2, 28),
            &p
        ));
        assert!(is_past_timely_filing(ymd(2024, 2, 29), ymd(2025, 3, 1), &p));
    }

    #[test]
    fn day_windows_count_from_the_date_of_service() {
        let p = commercial();
        assert_eq!(p.timely_filing_days, 90);
        assert_eq!(timely_filing_deadline(ymd(2025, 1, 1), &p), ymd(2025, 4, 1));
        assert_eq!(
            timely_filing_deadline(NaiveDate::MAX, &p),
            NaiveDate::MAX,
            "saturates"
        );
    }

    #[test]
    fn appeal_deadline_per_level() {
        let p = medicare(ymd(2025, 1, 1));
        let denied = ymd(2025, 3, 1);
        assert_eq!(appeal_deadline(denied, 1, &p), Some(ymd(2025, 6, 29))); // +120
        assert_eq!(appeal_deadline(denied, 2, &p), Some(ymd(2025, 8, 28))); // +180
        assert_eq!(appeal_deadline(denied, 3, &p), Some(ymd(2025, 4, 30))); // +60
        assert_eq!(appeal_deadline(denied, 0, &p), None);
        assert_eq!(appeal_deadline(denied, 6, &p), None);
        let c = commercial();
        assert_eq!(appeal_deadline(denied, 1, &c), Some(ymd(2025, 4, 30)));
        assert_eq!(appeal_deadline(denied, 3, &c), None);
    }

    #[test]
    fn corrected_claim_clocks() {
        let dos = ymd(2025, 1, 10);
        let ra = ymd(2025, 2, 20);
        let mut p = commercial();
        p.corrected_claim_days = Some(180);
        p.corrected_claim_clock = CorrectedClaimClock::FromRemitDate;
        assert_eq!(
            corrected_claim_deadline(dos, ra, &p),
            Some(ymd(2025, 8, 19))
        );
        p.corrected_claim_days = Some(365);
        p.corrected_claim_clock = CorrectedClaimClock::FromServiceDate;
        assert_eq!(
            corrected_claim_deadline(dos, ra, &p),
            Some(ymd(2026, 1, 10))
        );
        p.corrected_claim_days = None;
        assert_eq!(corrected_claim_deadline(dos, ra, &p), None);
    }

    #[test]
    fn corrected_claim_last_day_falls_back_to_timely_filing() {
        let dos = ymd(2025, 1, 10);
        let ra = ymd(2025, 2, 20);
        let mut p = commercial();
        p.corrected_claim_days = Some(180);
        p.corrected_claim_clock = CorrectedClaimClock::FromRemitDate;
        // From the remittance: the date of service is not needed.
        assert_eq!(
            corrected_claim_last_day(None, ra, &p),
            Some(ymd(2025, 8, 19))
        );
        p.corrected_claim_days = Some(365);
        p.corrected_claim_clock = CorrectedClaimClock::FromServiceDate;
        assert_eq!(
            corrected_claim_last_day(Some(dos), ra, &p),
            Some(ymd(2026, 1, 10))
        );
        assert_eq!(corrected_claim_last_day(None, ra, &p), None);
        // No separate window (Humana): the initial limit, 90 days from the date of service.
        p.corrected_claim_days = None;
        assert_eq!(
            corrected_claim_last_day(Some(dos), ra, &p),
            Some(ymd(2025, 4, 10))
        );
        assert_eq!(corrected_claim_last_day(None, ra, &p), None);
    }
}
