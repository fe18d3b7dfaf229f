//! Settings of the assignment service (`[assignment]` in the config file).
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::hours::WorkingHours;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How often the unassigned queue is retried (capacity freed, a specialist added or back
    /// in office), in real milliseconds. Also the pace of the daily reconciler's checks.
    pub sweep_interval_ms: u64,
    /// How often an open WatchQueues stream looks for new changes, in real milliseconds.
    pub watch_poll_interval_ms: u64,
    /// The working hours a specialist created without any gets: the tenant's business hours
    /// (one window per deployment; default Monday to Friday 09:00-17:00 America/New_York).
    pub business_hours: WorkingHours,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            sweep_interval_ms: 1000,
            watch_poll_interval_ms: 200,
            business_hours: WorkingHours::business("America/New_York"),
        }
    }
}

impl Settings {
    /// Refuses zero intervals (a busy loop) and business hours that are not a valid window.
    pub fn validate(&self) -> Result<(), Error> {
        if self.sweep_interval_ms == 0 {
            return Err(Error::Settings(
                "sweep_interval_ms must be at least 1".into(),
            ));
        }
        if self.watch_poll_interval_ms == 0 {
            return Err(Error::Settings(
                "watch_poll_interval_ms must be at least 1".into(),
            ));
        }
        let mut v = Vec::new();
        self.business_hours.check("business_hours", &mut v);
        if let Some((field, description)) = v.into_iter().next() {
            return Err(Error::Settings(format!("{field}: {description}")));
        }
        Ok(())
    }

    pub fn sweep_interval(&self) -> Duration {
        Duration::from_millis(self.sweep_interval_ms)
    }

    pub fn watch_poll_interval(&self) -> Duration {
        Duration::from_millis(self.watch_poll_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_intervals_are_refused() {
        assert!(Settings::default().validate().is_ok());
        for bad in [
            Settings {
                sweep_interval_ms: 0,
                ..Settings::default()
            },
            Settings {
                watch_poll_interval_ms: 0,
                ..Settings::default()
            },
            Settings {
                business_hours: WorkingHours::business("Central"),
                ..Settings::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn missing_settings_default_and_unknown_ones_are_refused() {
        let partial: Settings =
            serde_json::from_str(r#"{"sweep_interval_ms": 50}"#).expect("known field");
        assert_eq!(
            partial,
            Settings {
                sweep_interval_ms: 50,
                ..Settings::default()
            }
        );
        assert!(serde_json::from_str::<Settings>(r#"{"sweep_interval": 50}"#).is_err());
    }
}
