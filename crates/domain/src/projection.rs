//! What a service knows of a claim from the claims stream, and the one rule that folds an
//! event into it: keep the newest version.
//!
//! Replicas and redelivery hand a claim's events over out of order, so a service that projects
//! claims from events (the scheduler's `scheduler_claims`, assignment's `asg_claims`) must not
//! let an older event overwrite newer state. Several events share a version: one claims
//! transaction publishes them all with the claim's one new version (a draft -> submitted move:
//! ClaimStatusChanged and ClaimSubmitted; an 835 posting: ClaimPaid, ClaimDenied and
//! ClaimStatusChanged), all describing the same state, so an event at the version already
//! applied applies again and only an older one is stale. [`ClaimFacts::merge`] is that rule;
//! the services only read and write the result.
use chrono::NaiveDate;

use crate::ClaimStatus;

/// What an event (or the claims service, to a reconciler) says about a claim, and what a
/// service's projection holds of it. The claim's and tenant's ids stay with the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimFacts {
    pub clinic_id: String,
    pub payer_id: String,
    /// None: the event names no status (ClaimDenied), or one this build does not know.
    pub status: Option<ClaimStatus>,
    pub balance_cents: i64,
    /// None: not said (only ClaimSubmitted and the claims service carry dates).
    pub submission_date: Option<NaiveDate>,
    pub first_service_date: Option<NaiveDate>,
    /// The claim's aggregate version the facts describe.
    pub version: i64,
}

/// The facts to keep after an event, and whether the event was fresh (not older than what
/// was stored): the services act on fresh events only (close tasks, cancel timers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    pub facts: ClaimFacts,
    pub fresh: bool,
}

impl ClaimFacts {
    /// Folds `event` into what is `stored`:
    /// - nothing stored: the event's facts (fresh);
    /// - stored at a newer version than the event: the stored facts, learning only the dates
    ///   they lack (a claim's dates do not change), not fresh;
    /// - otherwise (same or newer version): the event's facts, keeping the stored status when
    ///   the event names none and the stored dates where the event has none (fresh).
    pub fn merge(stored: Option<&ClaimFacts>, event: ClaimFacts) -> Merged {
        let Some(stored) = stored else {
            return Merged {
                facts: event,
                fresh: true,
            };
        };
        if stored.version > event.version {
            return Merged {
                facts: ClaimFacts {
                    submission_date: stored.submission_date.or(event.submission_date),
                    first_service_date: stored.first_service_date.or(event.first_service_date),
                    ..stored.clone()
                },
                fresh: false,
            };
        }
        Merged {
            facts: ClaimFacts {
                status: event.status.or(stored.status),
                submission_date: event.submission_date.or(stored.submission_date),
                first_service_date: event.first_service_date.or(stored.first_service_date),
                ..event
            },
            fresh: true,
        }
    }

    /// No longer open by its status (paid, closed or written off); an unknown status counts
    /// as open. (Follow-up timers also stop at a zero balance: `followup::is_closed`.)
    pub fn settled(&self) -> bool {
        self.status.is_some_and(|s| !s.is_open())
    }

    /// What a claim's age counts from: the submission date, else the first date of service.
    pub fn age_basis(&self) -> Option<NaiveDate> {
        self.submission_date.or(self.first_service_date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap_or_default()
    }

    fn facts(status: Option<ClaimStatus>, balance_cents: i64, version: i64) -> ClaimFacts {
        ClaimFacts {
            clinic_id: "C1".into(),
            payer_id: "P1".into(),
            status,
            balance_cents,
            version,
            ..ClaimFacts::default()
        }
    }

    #[test]
    fn nothing_stored_takes_the_event() {
        let event = facts(Some(ClaimStatus::Submitted), 500, 1);
        assert_eq!(
            ClaimFacts::merge(None, event.clone()),
            Merged {
                facts: event,
                fresh: true
            }
        );
    }

    #[test]
    fn an_older_event_only_teaches_missing_dates() {
        let stored = ClaimFacts {
            first_service_date: Some(day(2)),
            ..facts(Some(ClaimStatus::Paid), 0, 3)
        };
        // A late ClaimSubmitted: its status and balance are old news, its dates are not.
        let submitted = ClaimFacts {
            submission_date: Some(day(5)),
            first_service_date: Some(day(1)),
            ..facts(Some(ClaimStatus::Submitted), 500, 1)
        };
        let merged = ClaimFacts::merge(Some(&stored), submitted);
        assert!(!merged.fresh);
        assert_eq!(
            merged.facts,
            ClaimFacts {
                submission_date: Some(day(5)),
                ..stored
            }
        );
    }

    #[test]
    fn a_newer_event_replaces_what_it_says() {
        let stored = ClaimFacts {
            submission_date: Some(day(5)),
            first_service_date: Some(day(1)),
            ..facts(Some(ClaimStatus::Submitted), 500, 1)
        };
        let paid = ClaimFacts {
            payer_id: "P2".into(),
            ..facts(Some(ClaimStatus::Paid), 0, 2)
        };
        let merged = ClaimFacts::merge(Some(&stored), paid.clone());
        assert!(merged.fresh);
        assert_eq!(
            merged.facts,
            ClaimFacts {
                submission_date: Some(day(5)),
                first_service_date: Some(day(1)),
                ..paid
            }
        );
    }

    #[test]
    fn the_same_version_applies_again_and_keeps_a_status_it_does_not_name() {
        // A posting publishes ClaimStatusChanged and ClaimDenied with one version; the
        // denial names no status.
        let stored = facts(Some(ClaimStatus::Denied), 700, 4);
        let denied = facts(None, 650, 4);
        let merged = ClaimFacts::merge(Some(&stored), denied);
        assert!(merged.fresh);
        assert_eq!(merged.facts, facts(Some(ClaimStatus::Denied), 650, 4));
        // A newer event's dates win over the stored ones.
        let resubmitted = ClaimFacts {
            submission_date: Some(day(9)),
            ..facts(Some(ClaimStatus::Submitted), 650, 5)
        };
        let merged = ClaimFacts::merge(Some(&merged.facts), resubmitted);
        assert_eq!(merged.facts.submission_date, Some(day(9)));
        assert_eq!(merged.facts.status, Some(ClaimStatus::Submitted));
    }

    #[test]
    fn settled_and_age_basis() {
        assert!(facts(Some(ClaimStatus::WrittenOff), 100, 1).settled());
        assert!(!facts(Some(ClaimStatus::Denied), 0, 1).settled());
        assert!(!facts(None, 0, 1).settled());
        let f = ClaimFacts {
            first_service_date: Some(day(1)),
            ..ClaimFacts::default()
        };
        assert_eq!(f.age_basis(), Some(day(1)));
        let f = ClaimFacts {
            submission_date: Some(day(4)),
            ..f
        };
        assert_eq!(f.age_basis(), Some(day(4)));
    }

    /// Each version's state, published as one to three events: the first names the status
    /// (the first version's is a ClaimSubmitted with dates), the others do not (ClaimDenied).
    fn events() -> impl Strategy<Value = (Vec<(ClaimStatus, i64)>, Vec<ClaimFacts>)> {
        prop::collection::vec(
            (
                prop::sample::select(ClaimStatus::ALL.to_vec()),
                0..100_000i64,
                1..=3usize,
            ),
            1..6,
        )
        .prop_flat_map(|states| {
            let mut events = Vec::new();
            for (i, (status, balance, n)) in states.iter().enumerate() {
                let version = i64::try_from(i).unwrap_or_default() + 1;
                for k in 0..*n {
                    let mut e = facts((k == 0).then_some(*status), *balance, version);
                    if version == 1 && k == 0 {
                        e.submission_date = Some(day(5));
                        e.first_service_date = Some(day(1));
                    }
                    events.push(e);
                }
            }
            let states: Vec<(ClaimStatus, i64)> =
                states.into_iter().map(|(s, b, _)| (s, b)).collect();
            (Just(states), Just(events).prop_shuffle())
        })
    }

    proptest! {
        #[test]
        fn any_order_ends_at_the_newest_version((states, events) in events()) {
            let mut stored: Option<ClaimFacts> = None;
            for e in events {
                stored = Some(ClaimFacts::merge(stored.as_ref(), e).facts);
            }
            let end = stored.unwrap_or_default();
            let newest = states.last().map(|&(s, b)| (Some(s), b));
            prop_assert_eq!(Some((end.status, end.balance_cents)), newest);
            prop_assert_eq!(end.version, i64::try_from(states.len()).unwrap_or_default());
            prop_assert_eq!(end.submission_date, Some(day(5)));
            prop_assert_eq!(end.first_service_date, Some(day(1)));
        }
    }
}
