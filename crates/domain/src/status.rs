//! The claim state machine.
//!
//! Every status change, whether a partner's call, a posted 835/277 or a specialist's action,
//! goes through [`ClaimStatus::transition`], so an impossible history (a closed claim that
//! gets paid, a draft that is denied) is refused at one place; a closed claim reopens only
//! when the payer takes its money back (to pending). The legal moves are the
//! [`TRANSITIONS`] table; the `as_str` names are stored in the database and must never change.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a claim stands in its life with the payer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    /// Entered, not yet sent.
    Draft,
    /// Sent to the payer or clearinghouse; no answer yet.
    Submitted,
    /// Accepted into adjudication (277CA STC01-1 A1/A2).
    Accepted,
    /// Returned as unprocessable (277CA A3, 999 rejection). The claim was never "filed", so
    /// the timely-filing clock keeps running (docs/reference/billing-rules.md C6, 42 CFR 424.44).
    Rejected,
    /// In adjudication and pended by the payer (277 category P*).
    Pending,
    Paid,
    PartiallyPaid,
    Denied,
    Appealed,
    WrittenOff,
    /// Terminal: nothing further will be done.
    Closed,
}

use ClaimStatus::{
    Accepted, Appealed, Closed, Denied, Draft, Paid, PartiallyPaid, Pending, Rejected, Submitted,
    WrittenOff,
};

/// Every legal `(from, to)` move. Anything not listed is refused. A status to itself is
/// refused (a repeated event must not count as a change) except `Appealed -> Appealed`, which
/// is the next appeal level.
pub const TRANSITIONS: &[(ClaimStatus, ClaimStatus)] = &[
    // The partner (or a specialist) sends the claim out.
    (Draft, Submitted),
    // Entered by mistake and never sent: nothing to follow up.
    (Draft, Closed),
    // 277CA STC01-1 A1/A2 (or 999 accepted + 277CA): in adjudication
    // (docs/reference/billing-rules.md C9).
    (Submitted, Accepted),
    // 999 rejection or 277CA A3: returned as unprocessable (docs/reference/billing-rules.md C9).
    (Submitted, Rejected),
    // 277 pended before any acknowledgement reached us (acks can be lost or late).
    (Submitted, Pending),
    // An 835 can arrive before, or instead of, the 277CA: CLP02 1/2/3 paid in full.
    (Submitted, Paid),
    // 835 CLP02 1/2/3 with a balance left after adjustments.
    (Submitted, PartiallyPaid),
    // 835 CLP02 4 (denied) with no acknowledgement seen first.
    (Submitted, Denied),
    // Withdrawn before adjudication (sent in error, replaced by a void).
    (Submitted, Closed),
    // 277 status category P*: the payer pended it (e.g. waiting for records).
    (Accepted, Pending),
    // 835 CLP02 1/2/3, paid in full.
    (Accepted, Paid),
    // 835 paid less than billed with a balance still owed.
    (Accepted, PartiallyPaid),
    // 835 CLP02 4, or line CAS denials covering the whole charge.
    (Accepted, Denied),
    // A later 277 with category A3/A7 (unprocessable after front-end acceptance).
    (Accepted, Rejected),
    // Corrected and resubmitted; the filing clock kept running while it was rejected
    // (docs/reference/billing-rules.md C6: claims rejected as unprocessable are not filed).
    (Rejected, Submitted),
    // Past timely filing (CO-29 is not appealable, docs/reference/billing-rules.md C6) or not worth
    // correcting.
    (Rejected, WrittenOff),
    // Replaced by a new claim, or sent to the wrong payer and rebilled elsewhere.
    (Rejected, Closed),
    // The pend is lifted: 277 category A2 again.
    (Pending, Accepted),
    // 835 after the pend: paid in full.
    (Pending, Paid),
    // 835 after the pend: paid with a balance owed.
    (Pending, PartiallyPaid),
    // 835 after the pend: denied.
    (Pending, Denied),
    // Paid in full and reconciled.
    (Paid, Closed),
    // Reversal (CLP02 = 22) followed by a lower re-adjudication (docs/design.md §7: a new posting).
    (Paid, PartiallyPaid),
    // Reversal (CLP02 = 22) and re-adjudication as a denial (e.g. recoupment after audit).
    (Paid, Denied),
    // Reversal (CLP02 = 22) with no re-adjudication yet: the payment was taken back and the
    // claim is open with the payer again.
    (Paid, Pending),
    // A secondary payment or reprocessing pays the rest.
    (PartiallyPaid, Paid),
    // Reversal (CLP02 = 22) of the partial payment and a denial on re-adjudication.
    (PartiallyPaid, Denied),
    // Reversal (CLP02 = 22) of the partial payment, re-adjudication still to come.
    (PartiallyPaid, Pending),
    // The underpayment is disputed with the payer.
    (PartiallyPaid, Appealed),
    // The remaining balance is not collectible (contractual, small balance).
    (PartiallyPaid, WrittenOff),
    // The balance moved to patient responsibility (PR group) and left AR follow-up.
    (PartiallyPaid, Closed),
    // An appealable denial: appeal filed (docs/reference/billing-rules.md C7, C8).
    (Denied, Appealed),
    // Corrected claim (frequency 7) for coding/data denials, e.g. CO-4, CO-16
    // (docs/reference/billing-rules.md C8).
    (Denied, Submitted),
    // Payer reprocessed the claim on its own (or on a phone call) and paid.
    (Denied, Paid),
    // Reprocessed and partly paid.
    (Denied, PartiallyPaid),
    // Not appealable (CO-29 timely filing) or not worth it (docs/reference/billing-rules.md C8).
    (Denied, WrittenOff),
    // Shifted to patient responsibility (PR-204) or rebilled to another payer (CO-109).
    (Denied, Closed),
    // Appeal won: paid in full.
    (Appealed, Paid),
    // Appeal won in part.
    (Appealed, PartiallyPaid),
    // Denial upheld at this level.
    (Appealed, Denied),
    // Next appeal level (e.g. Medicare redetermination then QIC reconsideration,
    // docs/reference/billing-rules.md C7).
    (Appealed, Appealed),
    // Appeal levels exhausted or abandoned.
    (Appealed, WrittenOff),
    // Withdrawn (e.g. the balance moved to the patient).
    (Appealed, Closed),
    // The write-off is booked; the claim leaves AR.
    (WrittenOff, Closed),
    // Recoupment: the payer takes its payment back (835 CLP02 = 22 reversal or a negative
    // payment) on a written-off claim; the money is owed again and the claim is open with the
    // payer until re-adjudicated, so AR follow-up sees it again (issue 10).
    (WrittenOff, Pending),
    // Recoupment on a closed claim, as above: the only way out of Closed. 835 posting takes it
    // on money taken back; a 277 status never reopens a claim (claims posting/status.rs).
    (Closed, Pending),
];

impl ClaimStatus {
    pub const ALL: [ClaimStatus; 11] = [
        Draft,
        Submitted,
        Accepted,
        Rejected,
        Pending,
        Paid,
        PartiallyPaid,
        Denied,
        Appealed,
        WrittenOff,
        Closed,
    ];

    /// Stable name stored in the database; never rename one.
    pub const fn as_str(self) -> &'static str {
        match self {
            Draft => "draft",
            Submitted => "submitted",
            Accepted => "accepted",
            Rejected => "rejected",
            Pending => "pending",
            Paid => "paid",
            PartiallyPaid => "partially_paid",
            Denied => "denied",
            Appealed => "appealed",
            WrittenOff => "written_off",
            Closed => "closed",
        }
    }

    /// Inverse of [`ClaimStatus::as_str`]; exact match only.
    pub fn parse(s: &str) -> Option<ClaimStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether money may still come in and the claim needs follow-up.
    pub const fn is_open(self) -> bool {
        !matches!(self, Paid | WrittenOff | Closed)
    }

    /// Whether no move leaves this status.
    pub fn is_terminal(self) -> bool {
        self.next_statuses().next().is_none()
    }

    pub fn can_transition_to(self, to: ClaimStatus) -> bool {
        TRANSITIONS.contains(&(self, to))
    }

    /// The statuses this one may move to, in table order.
    pub fn next_statuses(self) -> impl Iterator<Item = ClaimStatus> {
        TRANSITIONS
            .iter()
            .filter(move |(from, _)| *from == self)
            .map(|&(_, to)| to)
    }

    pub fn transition(self, to: ClaimStatus) -> Result<ClaimStatus, IllegalTransition> {
        if self.can_transition_to(to) {
            Ok(to)
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }
}

impl fmt::Display for ClaimStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status change the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal claim status change from {from} to {to}")]
pub struct IllegalTransition {
    pub from: ClaimStatus,
    pub to: ClaimStatus,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashSet, VecDeque};

    /// The brief's table, written independently of `TRANSITIONS`, so that a row dropped from
    /// or added to the table fails here.
    fn expected(from: ClaimStatus) -> &'static [ClaimStatus] {
        match from {
            Draft => &[Submitted, Closed],
            Submitted => &[
                Accepted,
                Rejected,
                Pending,
                Paid,
                PartiallyPaid,
                Denied,
                Closed,
            ],
            Accepted => &[Pending, Paid, PartiallyPaid, Denied, Rejected],
            Rejected => &[Submitted, WrittenOff, Closed],
            Pending => &[Accepted, Paid, PartiallyPaid, Denied],
            Paid => &[Closed, PartiallyPaid, Denied, Pending],
            PartiallyPaid => &[Paid, Denied, Appealed, WrittenOff, Closed, Pending],
            Denied => &[Appealed, Submitted, Paid, PartiallyPaid, WrittenOff, Closed],
            Appealed => &[Paid, PartiallyPaid, Denied, Appealed, WrittenOff, Closed],
            WrittenOff => &[Closed, Pending],
            Closed => &[Pending],
        }
    }

    fn check_row(from: ClaimStatus) {
        let want = expected(from);
        for to in ClaimStatus::ALL {
            let legal = want.contains(&to);
            assert_eq!(from.can_transition_to(to), legal, "{from} -> {to}");
            match from.transition(to) {
                Ok(got) => {
                    assert!(legal, "{from} -> {to} accepted");
                    assert_eq!(got, to);
                }
                Err(e) => {
                    assert!(!legal, "{from} -> {to} refused");
                    assert_eq!(e, IllegalTransition { from, to });
                }
            }
        }
        let mut next: Vec<_> = from.next_statuses().collect();
        let mut want = want.to_vec();
        next.sort_by_key(|s| s.as_str());
        want.sort_by_key(|s| s.as_str());
        assert_eq!(next, want, "next_statuses of {from}");
    }

    #[test]
    fn draft_row() {
        check_row(Draft);
    }
    #[test]
    fn submitted_row() {
        check_row(Submitted);
    }
    #[test]
    fn accepted_row() {
        check_row(Accepted);
    }
    #[test]
    fn rejected_row() {
        check_row(Rejected);
    }
    #[test]
    fn pending_row() {
        check_row(Pending);
    }
    #[test]
    fn paid_row() {
        check_row(Paid);
    }
    #[test]
    fn partially_paid_row() {
        check_row(PartiallyPaid);
    }
    #[test]
    fn denied_row() {
        check_row(Denied);
    }
    #[test]
    fn appealed_row() {
        check_row(Appealed);
    }
    #[test]
    fn written_off_row() {
        check_row(WrittenOff);
    }
    #[test]
    fn closed_row() {
        check_row(Closed);
    }

    #[test]
    fn table_has_no_duplicate_rows() {
        let set: HashSet<_> = TRANSITIONS.iter().collect();
        assert_eq!(set.len(), TRANSITIONS.len());
    }

    #[test]
    fn self_moves_are_illegal_except_next_appeal_level() {
        for s in ClaimStatus::ALL {
            assert_eq!(s.can_transition_to(s), s == Appealed, "{s} -> {s}");
        }
    }

    #[test]
    fn nothing_returns_to_draft() {
        for s in ClaimStatus::ALL {
            assert!(!s.can_transition_to(Draft), "{s} -> draft");
        }
    }

    #[test]
    fn names_are_stable_and_round_trip() {
        let names: Vec<_> = ClaimStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "draft",
                "submitted",
                "accepted",
                "rejected",
                "pending",
                "paid",
                "partially_paid",
                "denied",
                "appealed",
                "written_off",
                "closed"
            ]
        );
        for s in ClaimStatus::ALL {
            assert_eq!(ClaimStatus::parse(s.as_str()), Some(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(ClaimStatus::parse("Paid"), None);
        assert_eq!(ClaimStatus::parse(""), None);
        assert_eq!(ClaimStatus::parse("paid "), None);
    }

    #[test]
    fn open_means_money_still_to_follow_up() {
        let closed_out: Vec<_> = ClaimStatus::ALL
            .into_iter()
            .filter(|s| !s.is_open())
            .collect();
        assert_eq!(closed_out, [Paid, WrittenOff, Closed]);
    }

    #[test]
    fn no_status_is_terminal_since_a_recoupment_reopens_closed() {
        for s in ClaimStatus::ALL {
            assert!(!s.is_terminal(), "{s}");
        }
    }

    #[test]
    fn error_message_uses_stored_names() {
        let e = PartiallyPaid.transition(Draft).unwrap_err();
        assert_eq!(
            e.to_string(),
            "illegal claim status change from partially_paid to draft"
        );
    }

    #[test]
    fn serde_uses_stored_names() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StrDeserializer};
        for s in ClaimStatus::ALL {
            let de: StrDeserializer<'_, Error> = s.as_str().into_deserializer();
            assert_eq!(ClaimStatus::deserialize(de).unwrap(), s);
        }
    }

    /// Shortest path of legal moves from `from` to `to`, if any.
    fn path(from: ClaimStatus, to: ClaimStatus) -> Option<Vec<ClaimStatus>> {
        let mut seen = HashSet::from([from]);
        let mut queue = VecDeque::from([vec![from]]);
        while let Some(p) = queue.pop_front() {
            let last = *p.last()?;
            if last == to && p.len() > 1 {
                return Some(p);
            }
            for next in last.next_statuses() {
                if next == to || seen.insert(next) {
                    let mut q = p.clone();
                    q.push(next);
                    if next == to {
                        return Some(q);
                    }
                    queue.push_back(q);
                }
            }
        }
        None
    }

    fn any_status() -> impl Strategy<Value = ClaimStatus> {
        proptest::sample::select(ClaimStatus::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn closed_only_reopens_to_pending(to in any_status()) {
            prop_assert_eq!(Closed.can_transition_to(to), to == Pending);
            if to != Pending {
                prop_assert_eq!(Closed.transition(to), Err(IllegalTransition { from: Closed, to }));
            }
        }

        #[test]
        fn every_non_draft_status_is_reachable_from_draft(to in any_status()) {
            prop_assume!(to != Draft);
            let p = path(Draft, to);
            prop_assert!(p.is_some(), "{} unreachable", to);
            let p = p.unwrap();
            let mut at = Draft;
            for &step in &p[1..] {
                at = at.transition(step).unwrap();
            }
            prop_assert_eq!(at, to);
        }

        #[test]
        fn every_status_can_still_reach_closed(from in any_status()) {
            // No dead ends: every claim can eventually leave AR.
            prop_assume!(from != Closed);
            prop_assert!(path(from, Closed).is_some(), "{} cannot close", from);
        }

        #[test]
        fn random_walks_leave_closed_only_to_pending(targets in proptest::collection::vec(any_status(), 0..64)) {
            let mut at = Draft;
            for to in targets {
                let was = at;
                match at.transition(to) {
                    Ok(next) => {
                        prop_assert!(was != Closed || next == Pending);
                        prop_assert!(TRANSITIONS.contains(&(was, next)));
                        at = next;
                    }
                    Err(e) => {
                        prop_assert_eq!(e, IllegalTransition { from: was, to });
                    }
                }
                prop_assert!(at != Draft || was == Draft);
            }
        }
    }
}
