//! Located problems: what the reader found wrong, and where.
//!
//! The reader never fails on bad content (docs/reference/x12.md §2.2: "report envelope errors the
//! way a 999/TA1 would, but keep parsing: real files break these rules"). Everything it could not
//! accept becomes a [`Problem`] that names the interchange, group and transaction control numbers
//! around it, the segment's position and line, and (for mismatches) the expected and found values,
//! so a biller can open the file at the right line.
//!
//! A hostile or corrupt file could produce one problem per byte; [`Problems`] keeps the first
//! [`MAX_PROBLEMS`] and counts the rest, so memory stays bounded by the input size.

use serde::Serialize;

use crate::lex::Segment;

/// How many problems a document keeps; later ones are counted in one summary problem.
pub const MAX_PROBLEMS: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The data is wrong or could not be read; numbers derived from it are not trustworthy.
    Error,
    /// Readable, but not what the implementation guide says (legacy codes, padding, layout).
    Warning,
}

/// What kind of problem; stable snake_case names in JSON (docs/x12-inspect.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Nothing to read (empty or whitespace-only input).
    Empty,
    /// Not UTF-8 (replaced characters) or transcoded from UTF-16.
    Encoding,
    /// Neither an ISA header nor a bare ST..SE fragment was found.
    NoHeader,
    /// The ISA segment could not give delimiters, or is not 106 characters.
    InterchangeHeader,
    /// Bytes that are not part of any segment were skipped.
    Skipped,
    /// The last segment had no terminator.
    MissingTerminator,
    /// A segment whose id is not 2–3 upper-case letters or digits.
    SegmentId,
    /// ST..SE (or GS/GE) found outside the envelope that should hold it.
    NoEnvelope,
    /// IEA02 ≠ ISA13, GE02 ≠ GS06 or SE02 ≠ ST02.
    ControlNumberMismatch,
    /// IEA01, GE01 or SE01 disagrees with what was counted.
    CountMismatch,
    /// An envelope was not closed (no SE, GE or IEA).
    MissingTrailer,
    /// A segment where it cannot be (e.g. an SVC before any CLP, data after SE).
    UnexpectedSegment,
    /// A required element is empty.
    MissingElement,
    /// An amount that is not an X12 `R` decimal, or has more than two decimal places.
    BadAmount,
    /// A quantity or count that is not a number.
    BadNumber,
    /// A date that is not CCYYMMDD (or YYMMDD in ISA09), or not a real day.
    BadDate,
    /// A code the implementation guide does not list for this element.
    UnknownCode,
    /// A code valid only in an older version (e.g. CAS01 `CR` from 004010).
    LegacyCode,
    /// A loop structure that cannot be built (HL parent missing, duplicate HL id...).
    Structure,
    /// More than [`MAX_PROBLEMS`] problems; the rest were counted, not kept.
    TooManyProblems,
}

/// One located problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    pub kind: ProblemKind,
    /// For a biller; names elements (`SE01`, `CLP04`) and values, never patient names.
    pub message: String,
    /// ISA13 of the interchange around the problem.
    pub interchange: Option<String>,
    /// GS06 of the functional group around the problem.
    pub group: Option<String>,
    /// ST02 of the transaction set around the problem.
    pub transaction: Option<String>,
    /// 0-based position of the segment in the file (all interchanges counted).
    pub segment_index: Option<usize>,
    /// 1-based line of the segment's first character.
    pub line: Option<u32>,
    /// Segment id (`SE`, `CLP`...).
    pub segment: Option<String>,
    /// Element reference, e.g. `CLP04` or `SVC01-2`.
    pub element: Option<String>,
    /// For mismatches: what the rule (or our count) says.
    pub expected: Option<String>,
    /// For mismatches: what the file says.
    pub found: Option<String>,
}

impl Problem {
    pub fn new(severity: Severity, kind: ProblemKind, message: impl Into<String>) -> Problem {
        Problem {
            severity,
            kind,
            message: message.into(),
            interchange: None,
            group: None,
            transaction: None,
            segment_index: None,
            line: None,
            segment: None,
            element: None,
            expected: None,
            found: None,
        }
    }

    pub fn error(kind: ProblemKind, message: impl Into<String>) -> Problem {
        Problem::new(Severity::Error, kind, message)
    }

    pub fn warning(kind: ProblemKind, message: impl Into<String>) -> Problem {
        Problem::new(Severity::Warning, kind, message)
    }

    /// Locates the problem at a segment.
    pub fn at(mut self, seg: &Segment<'_>) -> Problem {
        self.segment_index = Some(seg.index);
        self.line = Some(seg.line);
        self.segment = Some(seg.id.to_owned());
        self
    }

    pub fn in_scope(mut self, scope: &Scope) -> Problem {
        self.interchange.clone_from(&scope.interchange);
        self.group.clone_from(&scope.group);
        self.transaction.clone_from(&scope.transaction);
        self
    }

    pub fn element(mut self, element: impl Into<String>) -> Problem {
        self.element = Some(element.into());
        self
    }

    pub fn mismatch(mut self, expected: impl Into<String>, found: impl Into<String>) -> Problem {
        self.expected = Some(expected.into());
        self.found = Some(found.into());
        self
    }
}

/// The control numbers around the segment being read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub interchange: Option<String>,
    pub group: Option<String>,
    pub transaction: Option<String>,
}

/// A bounded problem list (see the module docs).
#[derive(Debug, Default)]
pub struct Problems {
    list: Vec<Problem>,
    dropped: usize,
}

impl Problems {
    pub fn push(&mut self, p: Problem) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(p);
        } else {
            self.dropped += 1;
        }
    }

    /// Counts problems that were found (and capped) elsewhere.
    pub fn add_dropped(&mut self, n: usize) {
        self.dropped += n;
    }

    pub fn len(&self) -> usize {
        self.list.len() + self.dropped
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The problems kept, in file order (by segment, whole-file problems last), then the
    /// summary of those not kept.
    pub fn into_vec(mut self) -> Vec<Problem> {
        self.list
            .sort_by_key(|p| (p.segment_index.unwrap_or(usize::MAX), p.line.unwrap_or(0)));
        if self.dropped > 0 {
            self.list.push(Problem::error(
                ProblemKind::TooManyProblems,
                format!(
                    "{} more problems were found and not kept (limit {MAX_PROBLEMS})",
                    self.dropped
                ),
            ));
        }
        self.list
    }
}

/// What a transaction decoder needs to report: the problem sink and the current scope.
pub struct Cx<'p> {
    pub problems: &'p mut Problems,
    pub scope: &'p Scope,
}

impl Cx<'_> {
    pub fn push(&mut self, p: Problem) {
        let p = p.in_scope(self.scope);
        self.problems.push(p);
    }

    pub fn error(&mut self, seg: &Segment<'_>, kind: ProblemKind, message: impl Into<String>) {
        self.push(Problem::error(kind, message).at(seg));
    }

    pub fn warning(&mut self, seg: &Segment<'_>, kind: ProblemKind, message: impl Into<String>) {
        self.push(Problem::warning(kind, message).at(seg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_bounded_and_summarized() {
        let mut ps = Problems::default();
        for _ in 0..MAX_PROBLEMS + 5 {
            ps.push(Problem::error(ProblemKind::BadAmount, "x"));
        }
        assert_eq!(ps.len(), MAX_PROBLEMS + 5);
        let v = ps.into_vec();
        assert_eq!(v.len(), MAX_PROBLEMS + 1);
        let last = v.last().unwrap();
        assert_eq!(last.kind, ProblemKind::TooManyProblems);
        assert!(last.message.starts_with("5 more"));
    }

    #[test]
    fn scope_and_mismatch_are_recorded() {
        let scope = Scope {
            interchange: Some("000000001".into()),
            group: Some("1".into()),
            transaction: Some("0001".into()),
        };
        let p = Problem::error(ProblemKind::CountMismatch, "m")
            .in_scope(&scope)
            .element("SE01")
            .mismatch("34", "25");
        assert_eq!(p.transaction.as_deref(), Some("0001"));
        assert_eq!(p.expected.as_deref(), Some("34"));
        assert_eq!(p.found.as_deref(), Some("25"));
        assert_eq!(p.element.as_deref(), Some("SE01"));
    }
}
