//! The scheduler's settings (`[scheduler]` in the config file; `ARFLOW_SCHEDULER__…`): the
//! firing loop, the defaults of a tenant without a policy row, and the cron schedules.
use arflow_domain::followup::{
    AgingBasis, AgingPolicy, Cadence, parse_time_zone, validate_thresholds, validate_warning_stages,
};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Settings of the scheduler (`[scheduler]` in the config file; `ARFLOW_SCHEDULER__…`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Longest real wait between two firing ticks; the loop wakes earlier when the next
    /// timer is due sooner (on the simulated clock, much sooner).
    pub poll_interval_ms: u64,
    /// Timers fired per transaction.
    pub fire_batch_size: usize,
    /// Concurrent firing workers per replica on Postgres (SQLite always uses one: it has one
    /// writer). One worker fires about 16k timers/s on the benchmark machine, three about 42k.
    pub fire_workers: usize,
    /// Time zone of a tenant without a policy row (IANA name).
    pub default_time_zone: String,
    /// Aging basis of a tenant without a policy row: `submission` or `date_of_service`.
    pub aging_basis: AgingBasis,
    /// Aging thresholds of a tenant without a policy row, in days.
    pub aging_thresholds_days: Vec<u32>,
    /// First payer status check after this many business days without an answer.
    pub first_status_check_business_days: u32,
    /// Then every this many business days (0 = one check only).
    pub status_check_every_business_days: u32,
    /// At most this many status checks per claim.
    pub max_status_checks: u32,
    /// Warn this many days before the timely-filing deadline, one warning per stage still
    /// ahead (default 30, 14 and 7), until the payer is seen to have the claim. Unset: the
    /// default, or `[timely_filing_warning_days]` when that older key is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timely_filing_warning_stages_days: Option<Vec<u32>>,
    /// Older one-stage form of `timely_filing_warning_stages_days` (`= 14` means `[14]`);
    /// setting both is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timely_filing_warning_days: Option<u32>,
    /// Warn this many days before a denial's deadlines: the first-level appeal and the
    /// corrected claim.
    pub appeal_warning_days: u32,
    /// Cron expression (with seconds, `cron` crate syntax) of the daily aging snapshot, in the
    /// tenant's time zone.
    pub aging_snapshot_cron: String,
    /// Cron expression of the weekly denial digest, in the tenant's time zone.
    pub denial_digest_cron: String,
    /// Cron expression of the reconciler (runs only where a claims source is wired).
    pub reconcile_cron: String,
    /// Cron expression of the daily purge of finished timers, in the tenant's time zone.
    pub timer_purge_cron: String,
    /// Fired and cancelled timers due more than this many days before a purge run are deleted
    /// (0: kept forever, and no purge job runs).
    pub finished_timer_retention_days: u32,
    /// Missed cron instants older than this are not run after a restart (the most recent ones
    /// within it are).
    pub cron_catch_up_secs: u64,
    /// Whether this process runs the cron jobs.
    pub cron_enabled: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll_interval_ms: 1_000,
            fire_batch_size: 1_000,
            fire_workers: 3,
            default_time_zone: "America/New_York".into(),
            aging_basis: AgingBasis::Submission,
            aging_thresholds_days: vec![30, 60, 90],
            first_status_check_business_days: 14,
            status_check_every_business_days: 14,
            max_status_checks: 12,
            timely_filing_warning_stages_days: None,
            timely_filing_warning_days: None,
            appeal_warning_days: 14,
            aging_snapshot_cron: "0 0 6 * * *".into(),
            denial_digest_cron: "0 0 7 * * Mon".into(),
            reconcile_cron: "0 30 2 * * *".into(),
            timer_purge_cron: "0 15 3 * * *".into(),
            // Past a year and a month: a timely-filing window (up to a year) and its follow-up
            // stay visible in ListTimers.
            finished_timer_retention_days: 400,
            cron_catch_up_secs: 7 * 24 * 3600,
            cron_enabled: true,
        }
    }
}

/// The timely-filing warning stages when none are configured.
pub const DEFAULT_TIMELY_FILING_WARNING_STAGES_DAYS: [u32; 3] = [30, 14, 7];

impl Settings {
    /// Days before the timely-filing deadline to warn: `timely_filing_warning_stages_days`,
    /// else the older one-stage `timely_filing_warning_days`, else 30, 14 and 7.
    pub fn timely_filing_warning_stages(&self) -> Vec<u32> {
        match (
            &self.timely_filing_warning_stages_days,
            self.timely_filing_warning_days,
        ) {
            (Some(stages), _) => stages.clone(),
            (None, Some(days)) => vec![days],
            (None, None) => DEFAULT_TIMELY_FILING_WARNING_STAGES_DAYS.to_vec(),
        }
    }

    /// Refuses settings the scheduler cannot run with, naming the setting.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |name: &str, e: &dyn std::fmt::Display| {
            Error::Settings(format!("scheduler.{name}: {e}"))
        };
        parse_time_zone(&self.default_time_zone).map_err(|e| invalid("default_time_zone", &e))?;
        validate_thresholds(&self.aging_thresholds_days)
            .map_err(|e| invalid("aging_thresholds_days", &e))?;
        if self.timely_filing_warning_stages_days.is_some()
            && self.timely_filing_warning_days.is_some()
        {
            return Err(invalid(
                "timely_filing_warning_days",
                &"set only timely_filing_warning_stages_days (timely_filing_warning_days is its \
                  older one-stage form: `timely_filing_warning_days = 14` means \
                  `timely_filing_warning_stages_days = [14]`)",
            ));
        }
        validate_warning_stages(&self.timely_filing_warning_stages())
            .map_err(|e| invalid("timely_filing_warning_stages_days", &e))?;
        if self.fire_batch_size == 0 {
            return Err(invalid("fire_batch_size", &"must be at least 1"));
        }
        if self.poll_interval_ms == 0 {
            return Err(invalid("poll_interval_ms", &"must be at least 1"));
        }
        for (name, expr) in [
            ("aging_snapshot_cron", &self.aging_snapshot_cron),
            ("denial_digest_cron", &self.denial_digest_cron),
            ("reconcile_cron", &self.reconcile_cron),
            ("timer_purge_cron", &self.timer_purge_cron),
        ] {
            expr.parse::<cron::Schedule>()
                .map_err(|e| invalid(name, &e))?;
        }
        Ok(())
    }

    /// The aging policy of a tenant without a policy row.
    pub fn default_policy(&self) -> Result<AgingPolicy, Error> {
        Ok(AgingPolicy {
            basis: self.aging_basis,
            thresholds_days: self.aging_thresholds_days.clone(),
            time_zone: parse_time_zone(&self.default_time_zone)
                .map_err(|e| Error::Settings(format!("scheduler.default_time_zone: {e}")))?,
        })
    }

    /// The cadence of a payer without a cadence row (nor a tenant `*` row).
    pub fn default_cadence(&self) -> Cadence {
        Cadence {
            first_check_business_days: self.first_status_check_business_days,
            repeat_business_days: self.status_check_every_business_days,
            max_checks: self.max_status_checks,
            timely_filing_warning_stages_days: self.timely_filing_warning_stages(),
            appeal_warning_days: self.appeal_warning_days,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_settings_are_valid() {
        Settings::default().validate().unwrap();
        let bad = Settings {
            aging_thresholds_days: vec![60, 30],
            ..Settings::default()
        };
        assert!(bad.validate().is_err());
        let bad = Settings {
            default_time_zone: "Mars/Olympus".into(),
            ..Settings::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("default_time_zone")
        );
    }

    #[test]
    fn timely_filing_stages_default_and_the_older_key() {
        assert_eq!(
            Settings::default()
                .default_cadence()
                .timely_filing_warning_stages_days,
            vec![30, 14, 7]
        );
        let old = Settings {
            timely_filing_warning_days: Some(10),
            ..Settings::default()
        };
        old.validate().unwrap();
        assert_eq!(old.timely_filing_warning_stages(), vec![10]);
        let both = Settings {
            timely_filing_warning_stages_days: Some(vec![30, 7]),
            ..old
        };
        let e = both.validate().unwrap_err().to_string();
        assert!(
            e.contains("set only timely_filing_warning_stages_days"),
            "{e}"
        );
        let bad = Settings {
            timely_filing_warning_stages_days: Some(vec![14, 14]),
            ..Settings::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("timely_filing_warning_stages_days")
        );
    }
}
