//! Business days: weekends and US federal holidays, as data, with per-tenant overrides.
//!
//! Payers count follow-up windows ("no answer after 14 business days") in business days, and
//! clearinghouses and payer call centres are closed on federal holidays. The holidays are the
//! eleven of 5 U.S.C. 6103(a) (Juneteenth since 2021), observed by the rule of 5 U.S.C.
//! 6103(b) and Executive Order 11582: a holiday on a Saturday is observed the Friday before,
//! on a Sunday the Monday after (so New Year's Day on a Saturday is observed on Dec 31 of the
//! year before). A tenant can mark any day closed or open (`scheduler_calendar_days`), which
//! wins over both rules: a clinic group closed the day after Thanksgiving, or a team that works
//! on Columbus Day.
use std::collections::HashMap;

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// How a holiday's date is found in a year.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// A fixed month and day, observed on the nearest weekday when it falls on a weekend.
    Fixed { month: u32, day: u32 },
    /// The `n`th `weekday` of `month` (1 = first).
    Nth { month: u32, weekday: Weekday, n: u8 },
    /// The last `weekday` of `month`.
    Last { month: u32, weekday: Weekday },
}

/// The US federal holidays: (name, rule, first year observed).
const US_FEDERAL: &[(&str, Rule, i32)] = &[
    ("New Year's Day", Rule::Fixed { month: 1, day: 1 }, 1870),
    (
        "Birthday of Martin Luther King, Jr.",
        Rule::Nth {
            month: 1,
            weekday: Weekday::Mon,
            n: 3,
        },
        1986,
    ),
    (
        "Washington's Birthday",
        Rule::Nth {
            month: 2,
            weekday: Weekday::Mon,
            n: 3,
        },
        1971,
    ),
    (
        "Memorial Day",
        Rule::Last {
            month: 5,
            weekday: Weekday::Mon,
        },
        1971,
    ),
    (
        "Juneteenth National Independence Day",
        Rule::Fixed { month: 6, day: 19 },
        2021,
    ),
    ("Independence Day", Rule::Fixed { month: 7, day: 4 }, 1870),
    (
        "Labor Day",
        Rule::Nth {
            month: 9,
            weekday: Weekday::Mon,
            n: 1,
        },
        1894,
    ),
    (
        "Columbus Day",
        Rule::Nth {
            month: 10,
            weekday: Weekday::Mon,
            n: 2,
        },
        1971,
    ),
    ("Veterans Day", Rule::Fixed { month: 11, day: 11 }, 1938),
    (
        "Thanksgiving Day",
        Rule::Nth {
            month: 11,
            weekday: Weekday::Thu,
            n: 4,
        },
        1941,
    ),
    ("Christmas Day", Rule::Fixed { month: 12, day: 25 }, 1870),
];

impl Rule {
    /// The observed date in `year`, if the calendar has it.
    fn observed(self, year: i32) -> Option<NaiveDate> {
        match self {
            Rule::Fixed { month, day } => {
                let date = NaiveDate::from_ymd_opt(year, month, day)?;
                match date.weekday() {
                    Weekday::Sat => date.pred_opt(),
                    Weekday::Sun => date.succ_opt(),
                    _ => Some(date),
                }
            }
            Rule::Nth { month, weekday, n } => {
                NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
            }
            Rule::Last { month, weekday } => {
                // The first `weekday` of the next month, minus a week.
                let (y, m) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                NaiveDate::from_weekday_of_month_opt(y, m, weekday, 1)?
                    .checked_sub_days(Days::new(7))
            }
        }
    }
}

/// The observed US federal holidays falling in `year`, in date order.
pub fn us_federal_holidays(year: i32) -> Vec<(NaiveDate, &'static str)> {
    let mut days: Vec<(NaiveDate, &'static str)> = [year, year + 1]
        .into_iter()
        .flat_map(|y| {
            US_FEDERAL
                .iter()
                .filter(move |(_, _, since)| y >= *since)
                .filter_map(move |(name, rule, _)| rule.observed(y).map(|d| (d, *name)))
        })
        .filter(|(d, _)| d.year() == year)
        .collect();
    days.sort();
    days
}

/// A tenant's business-day calendar.
#[derive(Clone, Debug, Default)]
pub struct Calendar {
    /// Days the tenant declared open (true) or closed (false), winning over the rules.
    overrides: HashMap<NaiveDate, bool>,
}

impl Calendar {
    /// Weekends and US federal holidays, no overrides.
    pub fn us_federal() -> Calendar {
        Calendar::default()
    }

    /// The US federal calendar with a tenant's overrides (day, is business day).
    pub fn with_overrides(overrides: impl IntoIterator<Item = (NaiveDate, bool)>) -> Calendar {
        Calendar {
            overrides: overrides.into_iter().collect(),
        }
    }

    pub fn is_business_day(&self, day: NaiveDate) -> bool {
        if let Some(open) = self.overrides.get(&day) {
            return *open;
        }
        if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            return false;
        }
        !is_us_federal_holiday(day)
    }

    /// The `n`th business day after `from` (`from` itself does not count; n = 0 is `from`).
    /// Saturates at the end of the calendar.
    pub fn add_business_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        let mut day = from;
        let mut left = n;
        // A calendar whose overrides close every day would loop forever; ten years of closed
        // days is no calendar anyone means, so stop there.
        let mut budget = 3_660u32.saturating_add(n.saturating_mul(2));
        while left > 0 && budget > 0 {
            let Some(next) = day.succ_opt() else {
                return day;
            };
            day = next;
            budget -= 1;
            if self.is_business_day(day) {
                left -= 1;
            }
        }
        day
    }
}

/// True when `day` is the observed date of a US federal holiday.
pub fn is_us_federal_holiday(day: NaiveDate) -> bool {
    // Only New Year's Day can be observed in the year before its own.
    [day.year(), day.year() + 1].into_iter().any(|y| {
        US_FEDERAL
            .iter()
            .filter(|(_, _, since)| y >= *since)
            .any(|(_, rule, _)| rule.observed(y) == Some(day))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn federal_holidays_2026_as_opm_lists_them() {
        // opm.gov/policy-data-oversight/pay-leave/federal-holidays, 2026.
        let days: Vec<NaiveDate> = us_federal_holidays(2026)
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(
            days,
            vec![
                ymd(2026, 1, 1),
                ymd(2026, 1, 19),
                ymd(2026, 2, 16),
                ymd(2026, 5, 25),
                ymd(2026, 6, 19),
                ymd(2026, 7, 3), // July 4 is a Saturday
                ymd(2026, 9, 7),
                ymd(2026, 10, 12),
                ymd(2026, 11, 11),
                ymd(2026, 11, 26),
                ymd(2026, 12, 25),
            ]
        );
    }

    #[test]
    fn new_years_day_on_a_saturday_is_observed_the_year_before() {
        // Jan 1, 2022 was a Saturday: observed Friday Dec 31, 2021.
        assert!(is_us_federal_holiday(ymd(2021, 12, 31)));
        assert!(
            us_federal_holidays(2021)
                .iter()
                .any(|(d, _)| *d == ymd(2021, 12, 31))
        );
        assert!(
            !us_federal_holidays(2022)
                .iter()
                .any(|(d, _)| *d == ymd(2021, 12, 31))
        );
        // Sunday holidays move to Monday: Christmas 2022.
        assert!(is_us_federal_holiday(ymd(2022, 12, 26)));
        // Juneteenth only from 2021.
        assert!(!is_us_federal_holiday(ymd(2020, 6, 19)));
    }

    #[test]
    fn business_days_skip_weekends_and_holidays() {
        let cal = Calendar::us_federal();
        // Fri Dec 18 2026 + 5 business days: Mon 21, Tue 22, Wed 23, Thu 24, (Fri 25 Christmas),
        // Mon 28.
        assert_eq!(
            cal.add_business_days(ymd(2026, 12, 18), 5),
            ymd(2026, 12, 28)
        );
        assert_eq!(
            cal.add_business_days(ymd(2026, 12, 18), 0),
            ymd(2026, 12, 18)
        );
        // 14 business days from Mon Jan 5 2026 with MLK day (Jan 19) in between.
        assert_eq!(cal.add_business_days(ymd(2026, 1, 5), 14), ymd(2026, 1, 26));
    }

    #[test]
    fn tenant_overrides_win() {
        let cal = Calendar::with_overrides([
            (ymd(2026, 11, 27), false), // closed the day after Thanksgiving
            (ymd(2026, 10, 12), true),  // works on Columbus Day
        ]);
        assert!(!cal.is_business_day(ymd(2026, 11, 27)));
        assert!(cal.is_business_day(ymd(2026, 10, 12)));
        // Wed Nov 25 + 1: Thu 26 Thanksgiving, Fri 27 closed, Mon 30.
        assert_eq!(
            cal.add_business_days(ymd(2026, 11, 25), 1),
            ymd(2026, 11, 30)
        );
    }

    #[test]
    fn a_calendar_without_business_days_terminates() {
        let start = ymd(2026, 1, 1);
        let cal = Calendar::with_overrides(
            (0..20_000u64).map(|i| (start.checked_add_days(Days::new(i)).unwrap(), false)),
        );
        let _ = cal.add_business_days(start, 5);
    }
}
