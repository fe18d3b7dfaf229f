//! Time, injected. Nothing in arflow reads the system time except through a [`Clock`].
//!
//! The simulated clock is defined by three numbers in the config — a simulated start instant,
//! a real anchor instant and a rate — so every process started with the same config agrees on
//! the simulated time: `now = start + (real_now - anchor) * rate`. At rate 86 400 one real
//! second is one simulated day, so 90 days of aging pass in a minute and a half.
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

/// Source of the current instant. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
enum Inner {
    System,
    Simulated {
        start: DateTime<Utc>,
        anchor: DateTime<Utc>,
        rate: f64,
    },
}

impl Clock {
    pub fn system() -> Clock {
        Clock {
            inner: Arc::new(Inner::System),
        }
    }

    /// A simulated clock: at real instant `anchor` it reads `start`, and runs `rate` times
    /// faster than real time (rate 0 stops it).
    pub fn simulated(start: DateTime<Utc>, anchor: DateTime<Utc>, rate: f64) -> Clock {
        Clock {
            inner: Arc::new(Inner::Simulated {
                start,
                anchor,
                rate: rate.max(0.0),
            }),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &*self.inner {
            Inner::System => Utc::now(),
            Inner::Simulated {
                start,
                anchor,
                rate,
            } => {
                let real = (Utc::now() - *anchor)
                    .num_microseconds()
                    .unwrap_or(i64::MAX) as f64;
                let sim = (real * rate).clamp(i64::MIN as f64, i64::MAX as f64) as i64;
                *start + TimeDelta::microseconds(sim)
            }
        }
    }

    /// Today's date in UTC on this clock.
    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }

    pub fn is_simulated(&self) -> bool {
        matches!(&*self.inner, Inner::Simulated { .. })
    }

    /// Real time to wait until the clock reads `at` (zero when already past).
    pub fn real_duration_until(&self, at: DateTime<Utc>) -> Duration {
        let sim = (at - self.now()).to_std().unwrap_or_default();
        match &*self.inner {
            Inner::System => sim,
            Inner::Simulated { rate, .. } if *rate > 0.0 => sim.div_f64(*rate),
            // A stopped clock never reaches a future instant; poll again later.
            Inner::Simulated { .. } => Duration::from_secs(1),
        }
    }

    /// Sleeps (in real time) until the clock reads `at`.
    pub async fn sleep_until(&self, at: DateTime<Utc>) {
        loop {
            let wait = self.real_duration_until(at);
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_clocks_with_the_same_config_agree() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let anchor = Utc::now() - TimeDelta::seconds(10);
        let a = Clock::simulated(start, anchor, 86_400.0);
        let b = Clock::simulated(start, anchor, 86_400.0);
        let (ta, tb) = (a.now(), b.now());
        // Ten real seconds at one day per second: about ten days in.
        assert!((ta - start).num_days() >= 10);
        assert!(
            (tb - ta).num_seconds().abs() < 86_400,
            "both read the same simulated day"
        );
    }

    #[test]
    fn stopped_clock_reads_its_start() {
        let start = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .to_utc();
        let c = Clock::simulated(start, Utc::now(), 0.0);
        assert_eq!(c.now(), start);
        assert_eq!(c.today(), NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
    }
}
