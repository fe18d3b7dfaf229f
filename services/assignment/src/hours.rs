//! A specialist's weekly working window, its checks, and the business hours a specialist
//! gets when a supervisor names none.
use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

/// A weekly working window in a time zone (stored as JSON on the specialist row).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkingHours {
    /// 1 = Monday .. 7 = Sunday.
    pub days: Vec<i32>,
    /// `HH:MM`, 24-hour clock.
    pub start_time: String,
    pub end_time: String,
    /// IANA time zone, e.g. `America/Chicago`.
    pub time_zone: String,
}

impl WorkingHours {
    /// Business hours: Monday to Friday, 09:00 to 17:00, in `time_zone`. The default of
    /// `[assignment] business_hours` (in America/New_York, the scheduler's default tenant
    /// time zone), given to a specialist created without working hours.
    pub fn business(time_zone: &str) -> WorkingHours {
        WorkingHours {
            days: vec![1, 2, 3, 4, 5],
            start_time: "09:00".into(),
            end_time: "17:00".into(),
            time_zone: time_zone.into(),
        }
    }

    /// The same window with its days sorted and each named once.
    pub fn normalized(mut self) -> WorkingHours {
        self.days.sort_unstable();
        self.days.dedup();
        self
    }

    /// Adds a violation `(field, description)` for every field that is not valid, fields
    /// named under `prefix` (`specialist.working_hours`).
    pub fn check(&self, prefix: &str, v: &mut Vec<(String, String)>) {
        if self.days.is_empty() {
            v.push((
                format!("{prefix}.days"),
                "name at least one day (1 = Monday .. 7 = Sunday)".into(),
            ));
        }
        for (i, d) in self.days.iter().enumerate() {
            if !(1..=7).contains(d) {
                v.push((
                    format!("{prefix}.days[{i}]"),
                    "must be 1 (Monday) .. 7 (Sunday)".into(),
                ));
            }
        }
        let mut time = |field: &str, s: &str| {
            let t = NaiveTime::parse_from_str(s, "%H:%M").ok();
            if t.is_none() {
                v.push((
                    format!("{prefix}.{field}"),
                    "must be HH:MM (24-hour)".into(),
                ));
            }
            t
        };
        let start = time("start_time", &self.start_time);
        let end = time("end_time", &self.end_time);
        if let (Some(s), Some(e)) = (start, end)
            && s >= e
        {
            v.push((
                format!("{prefix}.end_time"),
                "must be after start_time".into(),
            ));
        }
        if !looks_like_iana_zone(&self.time_zone) {
            v.push((
                format!("{prefix}.time_zone"),
                "must be an IANA time zone such as America/Chicago".into(),
            ));
        }
    }
}

/// An IANA zone name shape check (`UTC`, `Etc/GMT+5`, `America/Argentina/Buenos_Aires`).
/// Without a zone database in the build we check the shape and the area, not that the
/// location exists.
pub fn looks_like_iana_zone(tz: &str) -> bool {
    const AREAS: [&str; 10] = [
        "Africa",
        "America",
        "Antarctica",
        "Asia",
        "Atlantic",
        "Australia",
        "Europe",
        "Indian",
        "Pacific",
        "Etc",
    ];
    if tz == "UTC" {
        return true;
    }
    let mut parts = tz.split('/');
    let Some(area) = parts.next() else {
        return false;
    };
    let rest: Vec<&str> = parts.collect();
    AREAS.contains(&area)
        && !rest.is_empty()
        && rest.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_checked_by_shape() {
        for ok in [
            "UTC",
            "America/Chicago",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
        ] {
            assert!(looks_like_iana_zone(ok), "{ok}");
        }
        for bad in ["", "CST", "Mars/Olympus", "America/", "America/New York"] {
            assert!(!looks_like_iana_zone(bad), "{bad}");
        }
    }

    #[test]
    fn business_hours_are_valid() {
        let mut v = Vec::new();
        WorkingHours::business("America/New_York").check("h", &mut v);
        assert!(v.is_empty(), "{v:?}");
    }
}
