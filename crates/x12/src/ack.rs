//! 999 implementation acknowledgment (005010X231A1), typed (docs/reference/x12.md §2.3): AK1 names
//! our functional group, each AK2..IK5 one of our transaction sets with its segment (IK3 + CTX) and
//! element (IK4) errors, and AK9 the group's verdict.

use serde::Serialize;

use crate::lex::{Segment, id};
use crate::problem::{Cx, ProblemKind};
use crate::value::opt;

/// IK501 / AK901 acknowledgment code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Acceptance {
    /// A.
    Accepted,
    /// E: accepted, but errors were noted.
    AcceptedWithErrors,
    /// P (AK9 only): some transaction sets were accepted.
    PartiallyAccepted,
    /// R (also M, W, X: rejected for security, syntax, or content reasons).
    Rejected,
    /// Anything else (reported).
    Unknown,
}

impl Acceptance {
    pub fn from_code(code: &str) -> Acceptance {
        match code {
            "A" => Acceptance::Accepted,
            "E" => Acceptance::AcceptedWithErrors,
            "P" => Acceptance::PartiallyAccepted,
            "R" | "M" | "W" | "X" => Acceptance::Rejected,
            _ => Acceptance::Unknown,
        }
    }
}

/// A decoded 999.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Ack999 {
    /// AK1.
    pub group: Option<GroupResponse>,
    /// AK2..IK5, one per acknowledged transaction set.
    pub transactions: Vec<TransactionResponse>,
    /// AK9.
    pub group_result: Option<GroupResult>,
}

impl Ack999 {
    /// The group verdict (AK901), or the worst transaction verdict when AK9 is missing.
    pub fn acceptance(&self) -> Option<Acceptance> {
        if let Some(r) = &self.group_result {
            return Some(r.acceptance);
        }
        let mut it = self.transactions.iter().filter_map(|t| t.acceptance);
        let first = it.next()?;
        Some(it.fold(first, |acc, a| {
            if a == acc {
                acc
            } else {
                Acceptance::PartiallyAccepted
            }
        }))
    }
}

/// AK1: which of our groups this acknowledges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct GroupResponse {
    /// AK101 = our GS01 (`HC` 837, `HR` 276).
    pub functional_id: String,
    /// AK102 = our GS06.
    pub control_number: String,
    /// AK103 = our GS08.
    pub version: Option<String>,
}

/// AK2 + IK3/IK4/CTX + IK5.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransactionResponse {
    /// AK201 = our ST01.
    pub set_id: String,
    /// AK202 = our ST02.
    pub control_number: String,
    /// AK203 = our ST03.
    pub implementation_reference: Option<String>,
    pub segment_errors: Vec<SegmentError>,
    /// IK501.
    pub acceptance_code: Option<String>,
    pub acceptance: Option<Acceptance>,
    /// IK502–IK506 implementation transaction set syntax error codes.
    pub error_codes: Vec<String>,
    pub segment_index: usize,
    pub line: u32,
}

/// IK3 (+ CTX + IK4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SegmentError {
    /// IK301 segment id in error.
    pub segment_id: String,
    /// IK302 position in our transaction set (ST = 1).
    pub position: Option<String>,
    /// IK303 loop id.
    pub loop_id: Option<String>,
    /// IK304 implementation segment syntax error code.
    pub code: Option<String>,
    /// CTX segments as sent (business unit context such as `CLM01:123456789`).
    pub context: Vec<String>,
    pub element_errors: Vec<ElementError>,
}

/// IK4.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ElementError {
    /// IK401 position (`2`, or `2:1` element:component, with repetition).
    pub position: String,
    /// IK402 data element reference number.
    pub element_reference: Option<String>,
    /// IK403 implementation data element syntax error code.
    pub code: String,
    /// IK404 copy of the bad data element.
    pub bad_value: Option<String>,
}

/// AK9.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupResult {
    pub acceptance_code: String,
    pub acceptance: Acceptance,
    /// AK902 transaction sets included.
    pub included: Option<u32>,
    /// AK903 received.
    pub received: Option<u32>,
    /// AK904 accepted.
    pub accepted: Option<u32>,
    /// AK905–AK909 functional group syntax error codes.
    pub error_codes: Vec<String>,
}

pub(crate) struct Decoder {
    out: Ack999,
}

fn count(cx: &mut Cx<'_>, seg: &Segment<'_>, element: &str, s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let n = s.trim().parse().ok();
    if n.is_none() {
        cx.error(
            seg,
            ProblemKind::BadNumber,
            format!("{element} {s:?} is not a count"),
        );
    }
    n
}

fn acceptance(cx: &mut Cx<'_>, seg: &Segment<'_>, element: &str, code: &str) -> Acceptance {
    let a = Acceptance::from_code(code);
    if a == Acceptance::Unknown {
        cx.error(
            seg,
            ProblemKind::UnknownCode,
            format!("{element} {code:?} is not an acknowledgment code (A, E, P, R)"),
        );
    }
    a
}

impl Decoder {
    pub(crate) fn new() -> Decoder {
        Decoder {
            out: Ack999::default(),
        }
    }

    pub(crate) fn finish(self) -> Ack999 {
        self.out
    }

    fn current_segment_error(&mut self) -> Option<&mut SegmentError> {
        self.out
            .transactions
            .last_mut()
            .and_then(|t| t.segment_errors.last_mut())
    }

    pub(crate) fn segment(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        match seg.key {
            id::AK1 => {
                let [id, ctrl, version] = seg.fields::<3>();
                self.out.group = Some(GroupResponse {
                    functional_id: id.to_owned(),
                    control_number: ctrl.to_owned(),
                    version: opt(version),
                });
            }
            id::AK2 => {
                let [id, ctrl, reference] = seg.fields::<3>();
                self.out.transactions.push(TransactionResponse {
                    set_id: id.to_owned(),
                    control_number: ctrl.to_owned(),
                    implementation_reference: opt(reference),
                    segment_errors: Vec::new(),
                    acceptance_code: None,
                    acceptance: None,
                    error_codes: Vec::new(),
                    segment_index: seg.index,
                    line: seg.line,
                });
            }
            id::IK3 => {
                let [id, pos, loop_id, code] = seg.fields::<4>();
                match self.out.transactions.last_mut() {
                    Some(t) => t.segment_errors.push(SegmentError {
                        segment_id: id.to_owned(),
                        position: opt(pos),
                        loop_id: opt(loop_id),
                        code: opt(code),
                        context: Vec::new(),
                        element_errors: Vec::new(),
                    }),
                    None => crate::common::unexpected(cx, seg, "before any AK2"),
                }
            }
            id::CTX => {
                let text = seg.text.get(seg.id.len() + 1..).unwrap_or("").to_owned();
                if let Some(e) = self.current_segment_error() {
                    e.context.push(text);
                }
            }
            id::IK4 => {
                let [pos, reference, code, bad] = seg.fields::<4>();
                let e = ElementError {
                    position: pos.to_owned(),
                    element_reference: opt(reference),
                    code: code.to_owned(),
                    bad_value: opt(bad),
                };
                match self.current_segment_error() {
                    Some(s) => s.element_errors.push(e),
                    None => crate::common::unexpected(cx, seg, "before any IK3"),
                }
            }
            id::IK5 => {
                let f = seg.fields::<6>();
                let [code, ..] = f;
                let a = acceptance(cx, seg, "IK501", code);
                match self.out.transactions.last_mut() {
                    Some(t) => {
                        t.acceptance_code = Some(code.to_owned());
                        t.acceptance = Some(a);
                        t.error_codes = f
                            .iter()
                            .skip(1)
                            .filter(|c| !c.is_empty())
                            .map(|c| (*c).to_owned())
                            .collect();
                    }
                    None => crate::common::unexpected(cx, seg, "before any AK2"),
                }
            }
            id::AK9 => {
                let f = seg.fields::<9>();
                let [code, inc, rec, acc, ..] = f;
                let acceptance = acceptance(cx, seg, "AK901", code);
                self.out.group_result = Some(GroupResult {
                    acceptance_code: code.to_owned(),
                    acceptance,
                    included: count(cx, seg, "AK902", inc),
                    received: count(cx, seg, "AK903", rec),
                    accepted: count(cx, seg, "AK904", acc),
                    error_codes: f
                        .iter()
                        .skip(4)
                        .filter(|c| !c.is_empty())
                        .map(|c| (*c).to_owned())
                        .collect(),
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Transaction, read};

    fn decode(text: &str) -> Ack999 {
        let doc = read(text.as_bytes());
        doc.transactions()
            .find_map(|t| match &t.content {
                Transaction::Ack999(a) => Some((**a).clone()),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn partial_acceptance_with_segment_and_element_errors() {
        let a = decode(
            "ST*999*0001*005010X231A1~AK1*HC*17456*005010X222A1~AK2*837*0001~IK5*A~AK2*837*0002*005010X222A1~IK3*CLM*22*2300*8~CTX*CLM01:RBH-2~IK4*2*782*1*ABC~IK5*R*5~AK9*P*2*2*1~SE*11*0001~",
        );
        let g = a.group.as_ref().unwrap();
        assert_eq!(
            (g.functional_id.as_str(), g.control_number.as_str()),
            ("HC", "17456")
        );
        assert_eq!(g.version.as_deref(), Some("005010X222A1"));
        assert_eq!(a.transactions.len(), 2);
        assert_eq!(a.transactions[0].acceptance, Some(Acceptance::Accepted));
        let t = &a.transactions[1];
        assert_eq!(t.acceptance, Some(Acceptance::Rejected));
        assert_eq!(t.error_codes, ["5"]);
        assert_eq!(t.implementation_reference.as_deref(), Some("005010X222A1"));
        let e = &t.segment_errors[0];
        assert_eq!(
            (e.segment_id.as_str(), e.position.as_deref()),
            ("CLM", Some("22"))
        );
        assert_eq!(e.loop_id.as_deref(), Some("2300"));
        assert_eq!(e.context, ["CLM01:RBH-2"]);
        assert_eq!(
            e.element_errors[0].element_reference.as_deref(),
            Some("782")
        );
        assert_eq!(e.element_errors[0].bad_value.as_deref(), Some("ABC"));
        let r = a.group_result.as_ref().unwrap();
        assert_eq!(r.acceptance, Acceptance::PartiallyAccepted);
        assert_eq!(
            (r.included, r.received, r.accepted),
            (Some(2), Some(2), Some(1))
        );
        assert_eq!(a.acceptance(), Some(Acceptance::PartiallyAccepted));
    }

    #[test]
    fn acceptance_without_ak9_comes_from_the_sets() {
        let all_ok = decode("ST*999*1~AK1*HC*1~AK2*837*1~IK5*A~AK2*837*2~IK5*A~SE*7*1~");
        assert_eq!(all_ok.acceptance(), Some(Acceptance::Accepted));
        let mixed = decode("ST*999*1~AK1*HC*1~AK2*837*1~IK5*A~AK2*837*2~IK5*R~SE*7*1~");
        assert_eq!(mixed.acceptance(), Some(Acceptance::PartiallyAccepted));
        let none = decode("ST*999*1~SE*2*1~");
        assert_eq!(none.acceptance(), None);
    }

    #[test]
    fn unknown_codes_are_reported() {
        let doc = read(b"ST*999*1~AK1*HC*1~AK2*837*1~IK5*Z~AK9*Q*x*1*1~SE*6*1~");
        let kinds: Vec<_> = doc.problems.iter().map(|p| p.kind).collect();
        assert!(kinds.contains(&ProblemKind::UnknownCode));
        assert!(kinds.contains(&ProblemKind::BadNumber));
    }
}
