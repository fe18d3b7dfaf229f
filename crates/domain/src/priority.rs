//! The priority score of a task: pure, no I/O.
//!
//! A specialist works the top of the queue, so the score must put first what loses money
//! soonest. Four factors, each worth points, with the reason stored beside the number so the
//! specialist sees why a task is on top:
//! - **balance**: the open balance at stake (bigger balances first);
//! - **age**: days since submission, in the aging buckets AR reports use (0–30, 31–60, 61–90,
//!   91–120, 120+; docs/design.md §7 KPIs): older claims are harder to collect;
//! - **deadline**: days left to a timely-filing or appeal deadline; after it, the money is
//!   usually gone, so the last two weeks dominate every other factor;
//! - **recoverability**: how likely work turns into payment: a rejection never reached
//!   adjudication and is fixed and resent quickly; an appealable denial can be overturned;
//!   timely filing (CO-29) is not appealable and rarely recovered; non-covered services
//!   (CO-96, PR-204) mostly move to the patient.
use serde::{Deserialize, Serialize};

use crate::denial::DenialCategory;

/// What the score is computed from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriorityInput {
    pub kind: TaskKindName,
    pub balance_cents: i64,
    /// Days since submission (or first date of service when submission is unknown).
    pub age_days: Option<i64>,
    /// Days left to the deadline the task races (negative: passed).
    pub days_to_deadline: Option<i64>,
    /// Denials only.
    pub appealable: Option<bool>,
    /// Denials only: the denial's category (None when it is not known).
    pub category: Option<DenialCategory>,
}

/// The task kinds, by their stored names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TaskKindName {
    Denial,
    Rejected,
    #[default]
    Aging,
    NoResponse,
    Deadline,
    FollowUp,
    Resubmission,
    /// The payer asks for information or documentation (277 P3/P4, R*).
    InformationRequested,
    /// A reversal or takeback reopened a closed or written-off claim (money went back to the
    /// payer): find out why and work the claim again.
    Recoupment,
}

impl TaskKindName {
    pub const ALL: [TaskKindName; 9] = [
        TaskKindName::Denial,
        TaskKindName::Rejected,
        TaskKindName::Aging,
        TaskKindName::NoResponse,
        TaskKindName::Deadline,
        TaskKindName::FollowUp,
        TaskKindName::Resubmission,
        TaskKindName::InformationRequested,
        TaskKindName::Recoupment,
    ];

    /// Stable name stored in the database; never rename one.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKindName::Denial => "denial",
            TaskKindName::Rejected => "rejected",
            TaskKindName::Aging => "aging",
            TaskKindName::NoResponse => "no_response",
            TaskKindName::Deadline => "deadline",
            TaskKindName::FollowUp => "follow_up",
            TaskKindName::Resubmission => "resubmission",
            TaskKindName::InformationRequested => "information_requested",
            TaskKindName::Recoupment => "recoupment",
        }
    }

    pub fn parse(s: &str) -> Option<TaskKindName> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// How long a task of this kind may stay open before it counts as SLA-breached (days).
    /// Rejections and resubmissions are quick fixes with the filing clock running; denials
    /// need research; a follow-up promised to a payer is due on its date.
    pub fn sla_days(self) -> i64 {
        match self {
            TaskKindName::Rejected | TaskKindName::Deadline | TaskKindName::FollowUp => 2,
            TaskKindName::Resubmission
            | TaskKindName::InformationRequested
            | TaskKindName::Recoupment => 3,
            TaskKindName::NoResponse => 5,
            TaskKindName::Denial | TaskKindName::Aging => 7,
        }
    }
}

/// One factor of the score.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub factor: String,
    pub points: i32,
    pub why: String,
}

/// The score and its reasons (factors worth 0 points are left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priority {
    pub score: i32,
    pub reasons: Vec<Reason>,
}

fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    let whole = (c / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}${grouped}.{:02}", c % 100)
}

/// Scores a task. Never negative.
pub fn score(input: &PriorityInput) -> Priority {
    let mut reasons = Vec::new();
    let mut add = |factor: &str, points: i32, why: String| {
        if points != 0 {
            reasons.push(Reason {
                factor: factor.to_string(),
                points,
                why,
            });
        }
    };

    let b = input.balance_cents;
    let (points, floor) = match b {
        b if b >= 500_000 => (40, 500_000),
        b if b >= 100_000 => (30, 100_000),
        b if b >= 50_000 => (20, 50_000),
        b if b >= 10_000 => (10, 10_000),
        b if b > 0 => (5, 1),
        _ => (0, 0),
    };
    let why = if floor > 1 {
        format!("balance {} (>= {})", dollars(b), dollars(floor))
    } else {
        format!("balance {}", dollars(b))
    };
    add("balance", points, why);

    if let Some(age) = input.age_days {
        let (points, bucket) = match age {
            a if a > 120 => (40, "120+"),
            a if a > 90 => (30, "91-120"),
            a if a > 60 => (20, "61-90"),
            a if a > 30 => (10, "31-60"),
            _ => (0, "0-30"),
        };
        add(
            "age",
            points,
            format!("{age} days old (aging bucket {bucket})"),
        );
    }

    if let Some(days) = input.days_to_deadline {
        let points = match days {
            d if d < 0 => 0,
            d if d <= 7 => 50,
            d if d <= 14 => 35,
            d if d <= 30 => 20,
            d if d <= 60 => 10,
            _ => 0,
        };
        let why = if days < 0 {
            format!("deadline passed {} days ago", -days)
        } else {
            format!("{days} days to the deadline")
        };
        add("deadline", points, why);
    }

    match input.kind {
        TaskKindName::Rejected => add(
            "recoverability",
            15,
            "rejected before adjudication: a fix and resubmission usually gets paid".into(),
        ),
        TaskKindName::Resubmission => add(
            "recoverability",
            15,
            "payer has no record of the claim: resubmitting usually gets paid".into(),
        ),
        TaskKindName::InformationRequested => add(
            "recoverability",
            10,
            "the payer holds the claim for information: sending it keeps adjudication going".into(),
        ),
        TaskKindName::Denial => {
            match input.category {
                Some(DenialCategory::TimelyFiling) => add(
                    "recoverability",
                    -30,
                    "timely filing denial (CO-29) is not appealable without proof of timely submission".into(),
                ),
                Some(DenialCategory::NonCovered) => add(
                    "recoverability",
                    -10,
                    "non-covered service: usually billed to the patient".into(),
                ),
                Some(DenialCategory::MissingInformation | DenialCategory::CodingModifier) => add(
                    "recoverability",
                    15,
                    "correctable denial: fix and resubmit".into(),
                ),
                _ => {}
            }
            if input.appealable == Some(true)
                && input.category != Some(DenialCategory::TimelyFiling)
            {
                add("recoverability", 10, "appealable denial".into());
            }
        }
        _ => {}
    }

    let score = reasons.iter().map(|r| r.points).sum::<i32>().max(0);
    Priority { score, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(kind: TaskKindName, balance_cents: i64) -> PriorityInput {
        PriorityInput {
            kind,
            balance_cents,
            ..Default::default()
        }
    }

    #[test]
    fn bigger_balances_score_higher() {
        let small = score(&input(TaskKindName::Aging, 5_000));
        let big = score(&input(TaskKindName::Aging, 600_000));
        assert!(big.score > small.score);
        assert_eq!(big.reasons[0].factor, "balance");
        assert_eq!(big.reasons[0].why, "balance $6,000.00 (>= $5,000.00)");
    }

    #[test]
    fn age_follows_the_aging_buckets() {
        let at = |days| {
            score(&PriorityInput {
                age_days: Some(days),
                ..input(TaskKindName::Aging, 0)
            })
            .score
        };
        assert_eq!(
            [at(10), at(31), at(61), at(91), at(121)],
            [0, 10, 20, 30, 40]
        );
    }

    #[test]
    fn a_near_deadline_outranks_a_big_old_balance() {
        let near = score(&PriorityInput {
            days_to_deadline: Some(5),
            ..input(TaskKindName::Deadline, 20_000)
        });
        let old = score(&PriorityInput {
            age_days: Some(75),
            ..input(TaskKindName::Aging, 150_000)
        });
        assert!(near.score > old.score, "{near:?} vs {old:?}");
        let passed = score(&PriorityInput {
            days_to_deadline: Some(-3),
            ..input(TaskKindName::Deadline, 0)
        });
        assert_eq!(passed.score, 0);
    }

    #[test]
    fn recoverability_ranks_denials() {
        let denial = |category: &str, appealable| {
            score(&PriorityInput {
                appealable: Some(appealable),
                category: DenialCategory::parse(category),
                ..input(TaskKindName::Denial, 100_000)
            })
        };
        let coding = denial("coding_modifier", true);
        let timely = denial("timely_filing", false);
        let auth = denial("authorization", true);
        assert!(coding.score > auth.score);
        assert!(auth.score > timely.score);
        assert!(timely.reasons.iter().any(|r| r.points < 0));
        assert!(timely.score >= 0);
    }

    #[test]
    fn reasons_add_up_to_the_score() {
        let p = score(&PriorityInput {
            age_days: Some(100),
            days_to_deadline: Some(20),
            appealable: Some(true),
            category: Some(DenialCategory::Authorization),
            ..input(TaskKindName::Denial, 75_000)
        });
        assert_eq!(p.score, p.reasons.iter().map(|r| r.points).sum::<i32>());
        assert_eq!(p.score, 20 + 30 + 20 + 10);
    }

    #[test]
    fn kinds_round_trip() {
        for k in TaskKindName::ALL {
            assert_eq!(TaskKindName::parse(k.as_str()), Some(k));
        }
    }
}
