//! Layer 2: envelopes and dispatch. `ISA { GS { ST..SE }+ GE }+ IEA`, possibly several
//! interchanges per file, checked the way a TA1/999 would (docs/reference/x12.md §2.2):
//!
//! | envelope | rule |
//! |---|---|
//! | interchange | IEA02 = ISA13; IEA01 = number of GS |
//! | group | GE02 = GS06; GE01 = number of ST |
//! | transaction | SE02 = ST02; SE01 = segments from ST to SE inclusive |
//!
//! Every mismatch, missing trailer or misplaced segment becomes a located [`Problem`] and
//! reading goes on. A bare `ST..SE` (fragment) is placed in an interchange and group without
//! headers. Each transaction set is decoded while it streams past, by ST01 and its version
//! (ST03, else GS08), so no segment list is ever held in memory.

use chrono::NaiveDate;
use serde::Serialize;

use crate::ack::{self, Ack999};
use crate::balance::{self, BalanceProblem};
use crate::inquiry::{self, StatusRequest276};
use crate::lex::{self, Delimiters, Segment, Tokenizer, id};
use crate::problem::{Cx, Problem, ProblemKind, Problems, Scope, Severity};
use crate::professional::{self, Professional837};
use crate::remit::{self, Remittance835};
use crate::status::{self, ClaimStatus277, StatusKind};
use crate::value::{opt, parse_date6, parse_date8};

/// Everything read from one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Document {
    /// Interchanges in file order; a fragment (ST..SE without ISA) sits in one whose
    /// `header` is `None`.
    pub interchanges: Vec<Interchange>,
    /// Every problem found (lexical, envelope, content), located. Balancing is separate:
    /// [`Document::balance_problems`].
    pub problems: Vec<Problem>,
    /// Segments read.
    pub segment_count: usize,
}

impl Document {
    /// Every transaction set of every group of every interchange.
    pub fn transactions(&self) -> impl Iterator<Item = &TransactionSet> {
        self.interchanges
            .iter()
            .flat_map(|i| &i.groups)
            .flat_map(|g| &g.transactions)
    }

    /// Every 835, with its transaction set.
    pub fn remittances(&self) -> impl Iterator<Item = (&TransactionSet, &Remittance835)> {
        self.transactions().filter_map(|t| match &t.content {
            Transaction::Remittance835(r) => Some((t, r.as_ref())),
            _ => None,
        })
    }

    /// 835 balancing (docs/reference/x12.md §3.4) over every 835 in the file.
    pub fn balance_problems(&self) -> Vec<BalanceProblem> {
        self.remittances()
            .flat_map(|(t, r)| balance::check(&t.control_number, r))
            .collect()
    }

    /// The balancing rules that could not be run over every 835 in the file (an amount they
    /// need could not be read).
    pub fn unchecked_balances(&self) -> Vec<balance::Unchecked> {
        self.remittances()
            .flat_map(|(t, r)| balance::unchecked(&t.control_number, r))
            .collect()
    }

    /// Problems of error severity.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }
}

/// ISA..IEA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Interchange {
    /// `None` for a fragment without ISA.
    pub header: Option<InterchangeHeader>,
    pub groups: Vec<Group>,
    /// TA1 interchange acknowledgments found in this interchange.
    pub acknowledgments: Vec<Ta1>,
    /// IEA01 as a number.
    pub declared_group_count: Option<usize>,
    /// IEA02.
    pub trailer_control_number: Option<String>,
    pub segment_index: usize,
    pub line: u32,
    /// Index of the IEA (or of the last segment when IEA is missing).
    pub last_segment_index: usize,
}

/// The ISA fields AR follow-up uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InterchangeHeader {
    /// ISA05.
    pub sender_qualifier: String,
    /// ISA06, trailing padding removed.
    pub sender_id: String,
    /// ISA07.
    pub receiver_qualifier: String,
    /// ISA08, trailing padding removed.
    pub receiver_id: String,
    /// ISA09 (YYMMDD).
    pub date: Option<NaiveDate>,
    /// ISA10 HHMM.
    pub time: String,
    /// ISA12 (`00501`, `00401`).
    pub version: String,
    /// ISA13.
    pub control_number: String,
    /// ISA14.
    pub acknowledgment_requested: String,
    /// ISA15 `P` production, `T` test.
    pub usage: String,
    pub delimiters: Delimiters,
}

/// TA1 interchange acknowledgment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ta1 {
    /// TA101: the ISA13 acknowledged.
    pub control_number: String,
    pub date: Option<NaiveDate>,
    pub time: String,
    /// TA104 `A` accepted, `E` accepted with errors, `R` rejected.
    pub acknowledgment_code: String,
    /// TA105 interchange note code.
    pub note_code: String,
}

/// GS..GE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    /// `None` for a fragment without GS.
    pub header: Option<GroupHeader>,
    pub transactions: Vec<TransactionSet>,
    /// GE01 as a number.
    pub declared_transaction_count: Option<usize>,
    /// GE02.
    pub trailer_control_number: Option<String>,
    pub segment_index: usize,
    pub line: u32,
    pub last_segment_index: usize,
}

/// GS fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupHeader {
    /// GS01: `HP` 835, `HN` 277, `HR` 276, `HC` 837, `FA` 999.
    pub functional_id: String,
    pub sender: String,
    pub receiver: String,
    pub date: Option<NaiveDate>,
    pub time: String,
    /// GS06.
    pub control_number: String,
    /// GS07 (`X`).
    pub agency: String,
    /// GS08, e.g. `005010X221A1`.
    pub version: String,
}

/// ST..SE with its decoded content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransactionSet {
    /// ST01.
    pub set_id: String,
    /// ST02.
    pub control_number: String,
    /// ST03.
    pub implementation_reference: Option<String>,
    /// ST03, else GS08: the implementation guide used to decode.
    pub version: Option<String>,
    /// Segments from ST to SE inclusive (to the last segment read when SE is missing).
    pub segment_count: usize,
    /// SE01 as a number.
    pub declared_segment_count: Option<usize>,
    /// SE02.
    pub trailer_control_number: Option<String>,
    pub segment_index: usize,
    pub line: u32,
    pub last_segment_index: usize,
    pub content: Transaction,
}

/// A transaction set decoded by its ST01 and version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transaction {
    /// 835 (X221A1; also read for 004010X091A1).
    Remittance835(Box<Remittance835>),
    /// 277 (X212) or 277CA (X214), see [`ClaimStatus277::kind`].
    ClaimStatus277(Box<ClaimStatus277>),
    /// 999 (X231).
    Ack999(Box<Ack999>),
    /// 276 (X212).
    StatusRequest276(Box<StatusRequest276>),
    /// 837 professional (X222).
    Professional837(Box<Professional837>),
    /// Anything else (834, 837I, 270...), kept as an envelope only.
    Other { set_id: String },
}

impl Transaction {
    /// Short name for reports: `835`, `277`, `277CA`, `999`, `276`, `837P`, or ST01.
    pub fn kind_name(&self) -> &str {
        match self {
            Transaction::Remittance835(_) => "835",
            Transaction::ClaimStatus277(s) => match s.kind {
                StatusKind::Response277 => "277",
                StatusKind::Acknowledgment277CA => "277CA",
            },
            Transaction::Ack999(_) => "999",
            Transaction::StatusRequest276(_) => "276",
            Transaction::Professional837(_) => "837P",
            Transaction::Other { set_id } => set_id,
        }
    }
}

// Boxed: one decoder per transaction set, and the 835 one is large.
enum Decoding {
    Remit(Box<remit::Decoder>),
    Status(Box<status::Decoder>),
    Ack(Box<ack::Decoder>),
    Inquiry(Box<inquiry::Decoder>),
    Professional(Box<professional::Decoder>),
    Other(String),
}

impl Decoding {
    fn for_set(set_id: &str, version: Option<&str>) -> Decoding {
        let v = version.unwrap_or("");
        match set_id {
            "835" => Decoding::Remit(Box::new(remit::Decoder::new())),
            "277" => Decoding::Status(Box::new(status::Decoder::new(if v.contains("X214") {
                StatusKind::Acknowledgment277CA
            } else {
                StatusKind::Response277
            }))),
            "999" => Decoding::Ack(Box::new(ack::Decoder::new())),
            "276" => Decoding::Inquiry(Box::new(inquiry::Decoder::new())),
            // X223 is institutional, X224 dental: not ours to decode.
            "837" if v.is_empty() || v.contains("X222") => {
                Decoding::Professional(Box::new(professional::Decoder::new()))
            }
            other => Decoding::Other(other.to_owned()),
        }
    }

    fn segment(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        match self {
            Decoding::Remit(d) => d.segment(seg, cx),
            Decoding::Status(d) => d.segment(seg, cx),
            Decoding::Ack(d) => d.segment(seg, cx),
            Decoding::Inquiry(d) => d.segment(seg, cx),
            Decoding::Professional(d) => d.segment(seg, cx),
            Decoding::Other(_) => {}
        }
    }

    fn finish(self, cx: &mut Cx<'_>) -> Transaction {
        match self {
            Decoding::Remit(d) => Transaction::Remittance835(Box::new(d.finish())),
            Decoding::Status(d) => Transaction::ClaimStatus277(Box::new(d.finish(cx))),
            Decoding::Ack(d) => Transaction::Ack999(Box::new(d.finish())),
            Decoding::Inquiry(d) => Transaction::StatusRequest276(Box::new(d.finish(cx))),
            Decoding::Professional(d) => Transaction::Professional837(Box::new(d.finish(cx))),
            Decoding::Other(set_id) => Transaction::Other { set_id },
        }
    }
}

struct OpenSet {
    set_id: String,
    control_number: String,
    implementation_reference: Option<String>,
    version: Option<String>,
    segment_count: usize,
    segment_index: usize,
    line: u32,
    last_segment_index: usize,
    decoding: Decoding,
}

/// Compares a trailer's control number with its header's: identical is fine; equal as numbers
/// but written differently (`1` vs `000000001`) is a warning; anything else an error.
fn control_mismatch(header: &str, trailer: &str) -> Option<Severity> {
    if header == trailer {
        return None;
    }
    let num = |s: &str| {
        let t = s.trim();
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.trim_start_matches('0').to_owned())
    };
    match (num(header), num(trailer)) {
        (Some(a), Some(b)) if a == b => Some(Severity::Warning),
        _ => Some(Severity::Error),
    }
}

fn parse_count(s: &str) -> Option<usize> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

struct Reader {
    interchanges: Vec<Interchange>,
    ix: Option<Interchange>,
    group: Option<Group>,
    set: Option<OpenSet>,
    problems: Problems,
    scope: Scope,
    last_index: usize,
    last_line: u32,
}

impl Reader {
    fn problem(&mut self, p: Problem) {
        let p = p.in_scope(&self.scope);
        self.problems.push(p);
    }

    fn at_seg(&mut self, seg: &Segment<'_>, severity: Severity, kind: ProblemKind, msg: String) {
        self.problem(Problem::new(severity, kind, msg).at(seg));
    }

    /// A problem about a missing trailer, located at the last segment read.
    fn missing(&mut self, what: &str) {
        let mut p = Problem::error(ProblemKind::MissingTrailer, what.to_owned());
        p.segment_index = Some(self.last_index);
        p.line = Some(self.last_line);
        self.problem(p);
    }

    fn segment(&mut self, seg: &Segment<'_>) {
        self.last_index = seg.index;
        self.last_line = seg.line;
        match seg.key {
            id::ISA => self.isa(seg),
            id::GS => self.gs(seg),
            id::ST => self.st(seg),
            id::SE => self.se(seg),
            id::GE => self.ge(seg),
            id::IEA => self.iea(seg),
            id::TA1 if self.set.is_none() && self.group.is_none() => match &mut self.ix {
                Some(ix) => {
                    let [ctrl, d, t, code, note] = seg.fields::<5>();
                    ix.acknowledgments.push(Ta1 {
                        control_number: ctrl.to_owned(),
                        date: parse_date6(d),
                        time: t.to_owned(),
                        acknowledgment_code: code.to_owned(),
                        note_code: note.to_owned(),
                    });
                }
                None => self.at_seg(
                    seg,
                    Severity::Error,
                    ProblemKind::UnexpectedSegment,
                    "TA1 outside an interchange".into(),
                ),
            },
            _ => match &mut self.set {
                Some(set) => {
                    set.segment_count += 1;
                    set.last_segment_index = seg.index;
                    let mut cx = Cx {
                        problems: &mut self.problems,
                        scope: &self.scope,
                    };
                    set.decoding.segment(seg, &mut cx);
                }
                None => self.at_seg(
                    seg,
                    Severity::Error,
                    ProblemKind::UnexpectedSegment,
                    format!(
                        "{} is outside a transaction set (ST..SE); it was ignored",
                        seg.id
                    ),
                ),
            },
        }
    }

    fn isa(&mut self, seg: &Segment<'_>) {
        self.close_set(None);
        self.close_group(None);
        self.close_interchange(None);
        let f = seg.fields::<16>();
        let [
            _,
            _,
            _,
            _,
            sq,
            sid,
            rq,
            rid,
            d,
            t,
            _,
            version,
            ctrl,
            ack,
            usage,
            _,
        ] = f;
        let date = parse_date6(d);
        self.scope = Scope {
            interchange: Some(ctrl.to_owned()),
            group: None,
            transaction: None,
        };
        if date.is_none() {
            self.problem(
                Problem::error(
                    ProblemKind::BadDate,
                    format!("ISA09 {d:?} is not a YYMMDD date"),
                )
                .at(seg)
                .element("ISA09"),
            );
        }
        if ctrl.len() != 9 || !ctrl.bytes().all(|b| b.is_ascii_digit()) {
            self.problem(
                Problem::warning(
                    ProblemKind::InterchangeHeader,
                    format!("ISA13 {ctrl:?} is not 9 digits"),
                )
                .at(seg)
                .element("ISA13"),
            );
        }
        self.ix = Some(Interchange {
            header: Some(InterchangeHeader {
                sender_qualifier: sq.to_owned(),
                sender_id: sid.trim_end().to_owned(),
                receiver_qualifier: rq.to_owned(),
                receiver_id: rid.trim_end().to_owned(),
                date,
                time: t.to_owned(),
                version: version.to_owned(),
                control_number: ctrl.to_owned(),
                acknowledgment_requested: ack.to_owned(),
                usage: usage.to_owned(),
                delimiters: seg.delimiters,
            }),
            groups: Vec::new(),
            acknowledgments: Vec::new(),
            declared_group_count: None,
            trailer_control_number: None,
            segment_index: seg.index,
            line: seg.line,
            last_segment_index: seg.index,
        });
    }

    fn ensure_interchange(&mut self, seg: &Segment<'_>) {
        if self.ix.is_none() {
            self.ix = Some(Interchange {
                header: None,
                groups: Vec::new(),
                acknowledgments: Vec::new(),
                declared_group_count: None,
                trailer_control_number: None,
                segment_index: seg.index,
                line: seg.line,
                last_segment_index: seg.index,
            });
        }
    }

    fn gs(&mut self, seg: &Segment<'_>) {
        self.close_set(None);
        self.close_group(None);
        if self.ix.is_none() {
            self.at_seg(
                seg,
                Severity::Warning,
                ProblemKind::NoEnvelope,
                "functional group (GS) without an interchange header (ISA)".into(),
            );
            self.ensure_interchange(seg);
        }
        let f = seg.fields::<8>();
        let [fid, sender, receiver, d, t, ctrl, agency, version] = f;
        let date = parse_date8(d);
        self.scope.group = Some(ctrl.to_owned());
        self.scope.transaction = None;
        if date.is_none() {
            self.problem(
                Problem::error(
                    ProblemKind::BadDate,
                    format!("GS04 {d:?} is not a CCYYMMDD date"),
                )
                .at(seg)
                .element("GS04"),
            );
        }
        self.group = Some(Group {
            header: Some(GroupHeader {
                functional_id: fid.to_owned(),
                sender: sender.to_owned(),
                receiver: receiver.to_owned(),
                date,
                time: t.to_owned(),
                control_number: ctrl.to_owned(),
                agency: agency.to_owned(),
                version: version.to_owned(),
            }),
            transactions: Vec::new(),
            declared_transaction_count: None,
            trailer_control_number: None,
            segment_index: seg.index,
            line: seg.line,
            last_segment_index: seg.index,
        });
    }

    fn st(&mut self, seg: &Segment<'_>) {
        // A set still open has no SE: closing it reports that, located at this ST.
        self.close_set(None);
        if self.group.is_none() {
            let enveloped = self.ix.as_ref().is_some_and(|i| i.header.is_some());
            if enveloped {
                self.at_seg(
                    seg,
                    Severity::Error,
                    ProblemKind::NoEnvelope,
                    "transaction set (ST) outside a functional group (no GS)".into(),
                );
            } else if self.ix.is_none() {
                self.at_seg(
                    seg,
                    Severity::Warning,
                    ProblemKind::NoEnvelope,
                    "transaction set without ISA/GS envelope (fragment); read with default delimiters"
                        .into(),
                );
            }
            self.ensure_interchange(seg);
            self.scope.group = None;
            self.group = Some(Group {
                header: None,
                transactions: Vec::new(),
                declared_transaction_count: None,
                trailer_control_number: None,
                segment_index: seg.index,
                line: seg.line,
                last_segment_index: seg.index,
            });
        }
        let [set_id, ctrl, reference] = seg.fields::<3>();
        self.scope.transaction = Some(ctrl.to_owned());
        if ctrl.is_empty() {
            self.at_seg(
                seg,
                Severity::Error,
                ProblemKind::MissingElement,
                "ST02 control number is required".into(),
            );
        }
        let version = opt(reference).or_else(|| {
            self.group
                .as_ref()
                .and_then(|g| g.header.as_ref())
                .and_then(|h| opt(&h.version))
        });
        let decoding = Decoding::for_set(set_id, version.as_deref());
        self.set = Some(OpenSet {
            set_id: set_id.to_owned(),
            control_number: ctrl.to_owned(),
            implementation_reference: opt(reference),
            version,
            segment_count: 1,
            segment_index: seg.index,
            line: seg.line,
            last_segment_index: seg.index,
            decoding,
        });
    }

    fn se(&mut self, seg: &Segment<'_>) {
        if self.set.is_none() {
            self.at_seg(
                seg,
                Severity::Error,
                ProblemKind::UnexpectedSegment,
                "SE without a matching ST".into(),
            );
            return;
        }
        self.close_set(Some(seg));
    }

    fn ge(&mut self, seg: &Segment<'_>) {
        self.close_set(None);
        match &self.group {
            Some(g) if g.header.is_some() => self.close_group(Some(seg)),
            Some(_) => {
                self.at_seg(
                    seg,
                    Severity::Error,
                    ProblemKind::UnexpectedSegment,
                    "GE without a matching GS".into(),
                );
                self.close_group(None);
            }
            None => self.at_seg(
                seg,
                Severity::Error,
                ProblemKind::UnexpectedSegment,
                "GE without a matching GS".into(),
            ),
        }
    }

    fn iea(&mut self, seg: &Segment<'_>) {
        self.close_set(None);
        self.close_group(None);
        match &self.ix {
            Some(ix) if ix.header.is_some() => self.close_interchange(Some(seg)),
            _ => {
                self.at_seg(
                    seg,
                    Severity::Error,
                    ProblemKind::UnexpectedSegment,
                    "IEA without a matching ISA".into(),
                );
                self.close_interchange(None);
            }
        }
    }

    /// Closes the open transaction set, checking SE when given; without SE, reports it missing.
    fn close_set(&mut self, se: Option<&Segment<'_>>) {
        let Some(mut open) = self.set.take() else {
            return;
        };
        let mut declared = None;
        let mut trailer = None;
        match se {
            Some(seg) => {
                open.segment_count += 1;
                open.last_segment_index = seg.index;
                let [count, ctrl] = seg.fields::<2>();
                declared = parse_count(count);
                trailer = Some(ctrl.to_owned());
                match declared {
                    Some(n) if n == open.segment_count => {}
                    Some(n) => self.problem(
                        Problem::error(
                            ProblemKind::CountMismatch,
                            format!(
                                "SE01={n} but counted {} segments from ST to SE (ST02={})",
                                open.segment_count, open.control_number
                            ),
                        )
                        .at(seg)
                        .element("SE01")
                        .mismatch(open.segment_count.to_string(), n.to_string()),
                    ),
                    None => self.problem(
                        Problem::error(
                            ProblemKind::BadNumber,
                            format!("SE01 {count:?} is not a segment count"),
                        )
                        .at(seg)
                        .element("SE01"),
                    ),
                }
                if let Some(sev) = control_mismatch(&open.control_number, ctrl) {
                    self.problem(
                        Problem::new(
                            sev,
                            ProblemKind::ControlNumberMismatch,
                            format!("SE02={ctrl} != ST02={}", open.control_number),
                        )
                        .at(seg)
                        .element("SE02")
                        .mismatch(open.control_number.clone(), ctrl),
                    );
                }
            }
            None => {
                let msg = format!(
                    "transaction set {} ({}) has no SE",
                    open.control_number, open.set_id
                );
                self.missing(&msg);
            }
        }
        let content = {
            let mut cx = Cx {
                problems: &mut self.problems,
                scope: &self.scope,
            };
            open.decoding.finish(&mut cx)
        };
        let set = TransactionSet {
            set_id: open.set_id,
            control_number: open.control_number,
            implementation_reference: open.implementation_reference,
            version: open.version,
            segment_count: open.segment_count,
            declared_segment_count: declared,
            trailer_control_number: trailer,
            segment_index: open.segment_index,
            line: open.line,
            last_segment_index: open.last_segment_index,
            content,
        };
        if let Some(g) = &mut self.group {
            g.last_segment_index = set.last_segment_index;
            g.transactions.push(set);
        }
        self.scope.transaction = None;
    }

    fn close_group(&mut self, ge: Option<&Segment<'_>>) {
        let Some(mut g) = self.group.take() else {
            return;
        };
        if let Some(h) = &g.header {
            match ge {
                Some(seg) => {
                    g.last_segment_index = seg.index;
                    let [count, ctrl] = seg.fields::<2>();
                    g.declared_transaction_count = parse_count(count);
                    g.trailer_control_number = Some(ctrl.to_owned());
                    let n = g.transactions.len();
                    match g.declared_transaction_count {
                        Some(d) if d == n => {}
                        Some(d) => self.problem(
                            Problem::error(
                                ProblemKind::CountMismatch,
                                format!(
                                    "GE01={d} but {n} ST in the group (GS06={})",
                                    h.control_number
                                ),
                            )
                            .at(seg)
                            .element("GE01")
                            .mismatch(n.to_string(), d.to_string()),
                        ),
                        None => self.problem(
                            Problem::error(
                                ProblemKind::BadNumber,
                                format!("GE01 {count:?} is not a count"),
                            )
                            .at(seg)
                            .element("GE01"),
                        ),
                    }
                    if let Some(sev) = control_mismatch(&h.control_number, ctrl) {
                        self.problem(
                            Problem::new(
                                sev,
                                ProblemKind::ControlNumberMismatch,
                                format!("GE02={ctrl} != GS06={}", h.control_number),
                            )
                            .at(seg)
                            .element("GE02")
                            .mismatch(h.control_number.clone(), ctrl),
                        );
                    }
                }
                None => {
                    let msg = format!("functional group {} has no GE", h.control_number);
                    self.missing(&msg);
                }
            }
        }
        if let Some(ix) = &mut self.ix {
            ix.last_segment_index = g.last_segment_index;
            ix.groups.push(g);
        }
        self.scope.group = None;
    }

    fn close_interchange(&mut self, iea: Option<&Segment<'_>>) {
        let Some(mut ix) = self.ix.take() else {
            return;
        };
        if let Some(h) = &ix.header {
            match iea {
                Some(seg) => {
                    ix.last_segment_index = seg.index;
                    let [count, ctrl] = seg.fields::<2>();
                    ix.declared_group_count = parse_count(count);
                    ix.trailer_control_number = Some(ctrl.to_owned());
                    let n = ix.groups.len();
                    match ix.declared_group_count {
                        Some(d) if d == n => {}
                        Some(d) => self.problem(
                            Problem::error(
                                ProblemKind::CountMismatch,
                                format!(
                                    "IEA01={d} but {n} GS in the interchange (ISA13={})",
                                    h.control_number
                                ),
                            )
                            .at(seg)
                            .element("IEA01")
                            .mismatch(n.to_string(), d.to_string()),
                        ),
                        None => self.problem(
                            Problem::error(
                                ProblemKind::BadNumber,
                                format!("IEA01 {count:?} is not a count"),
                            )
                            .at(seg)
                            .element("IEA01"),
                        ),
                    }
                    if let Some(sev) = control_mismatch(&h.control_number, ctrl) {
                        self.problem(
                            Problem::new(
                                sev,
                                ProblemKind::ControlNumberMismatch,
                                format!("IEA02={ctrl} != ISA13={}", h.control_number),
                            )
                            .at(seg)
                            .element("IEA02")
                            .mismatch(h.control_number.clone(), ctrl),
                        );
                    }
                }
                None => {
                    let msg = format!("interchange {} has no IEA", h.control_number);
                    self.missing(&msg);
                }
            }
        }
        self.interchanges.push(ix);
        self.scope = Scope::default();
    }
}

/// Reads a file: tokenizes it, checks its envelopes and decodes every transaction set. Never
/// fails and never panics; whatever is wrong is in [`Document::problems`].
pub fn read(bytes: &[u8]) -> Document {
    let mut early = Vec::new();
    let text = lex::decode(bytes, &mut early);
    let mut reader = Reader {
        interchanges: Vec::new(),
        ix: None,
        group: None,
        set: None,
        problems: Problems::default(),
        scope: Scope::default(),
        last_index: 0,
        last_line: 1,
    };
    for p in early {
        reader.problems.push(p);
    }
    if text.bytes().all(|b| b.is_ascii_whitespace() || b == 0) {
        reader
            .problems
            .push(Problem::error(ProblemKind::Empty, "the file is empty"));
        return Document {
            interchanges: Vec::new(),
            problems: reader.problems.into_vec(),
            segment_count: 0,
        };
    }
    let mut tokens = Tokenizer::new(&text);
    let mut count = 0;
    for seg in tokens.by_ref() {
        count += 1;
        reader.segment(&seg);
    }
    reader.close_set(None);
    reader.close_group(None);
    reader.close_interchange(None);
    for p in tokens.problems {
        reader.problems.push(p);
    }
    reader.problems.add_dropped(tokens.dropped);
    Document {
        interchanges: reader.interchanges,
        problems: reader.problems.into_vec(),
        segment_count: count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISA: &str = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*P*:~";

    fn kinds(doc: &Document) -> Vec<(ProblemKind, Option<String>)> {
        doc.problems
            .iter()
            .map(|p| (p.kind, p.element.clone()))
            .collect()
    }

    #[test]
    fn clean_envelope_has_no_problems() {
        let text = format!(
            "{ISA}GS*HP*S*R*20240101*1200*7*X*005010X221A1~ST*835*0001~BPR*H*0*C*NON************20240101~TRN*1*1*1~SE*4*0001~GE*1*7~IEA*1*000000001~"
        );
        let doc = read(text.as_bytes());
        assert!(doc.problems.is_empty(), "{:?}", doc.problems);
        assert_eq!(doc.transactions().count(), 1);
        let t = doc.transactions().next().unwrap();
        assert_eq!(t.segment_count, 4);
        assert_eq!(t.version.as_deref(), Some("005010X221A1"));
        assert_eq!(t.content.kind_name(), "835");
        assert!(doc.balance_problems().is_empty());
    }

    #[test]
    fn envelope_mismatches_are_located() {
        let text = format!(
            "{ISA}\nGS*HP*S*R*20240101*1200*7*X*005010X221A1~\nST*835*0001~\nSE*9*0002~\nST*835*0003~\nSE*2*0003~\nGE*1*8~\nIEA*2*000000009~"
        );
        let doc = read(text.as_bytes());
        let k = kinds(&doc);
        assert_eq!(
            k,
            [
                (ProblemKind::CountMismatch, Some("SE01".into())),
                (ProblemKind::ControlNumberMismatch, Some("SE02".into())),
                (ProblemKind::CountMismatch, Some("GE01".into())),
                (ProblemKind::ControlNumberMismatch, Some("GE02".into())),
                (ProblemKind::CountMismatch, Some("IEA01".into())),
                (ProblemKind::ControlNumberMismatch, Some("IEA02".into())),
            ]
        );
        let se = &doc.problems[0];
        assert_eq!(se.line, Some(4));
        assert_eq!(se.segment_index, Some(3));
        assert_eq!(se.transaction.as_deref(), Some("0001"));
        assert_eq!(se.group.as_deref(), Some("7"));
        assert_eq!(se.interchange.as_deref(), Some("000000001"));
        assert_eq!(
            (se.expected.as_deref(), se.found.as_deref()),
            (Some("2"), Some("9"))
        );
        assert_eq!(doc.problems[3].found.as_deref(), Some("8"));
    }

    #[test]
    fn missing_trailers_and_stray_segments() {
        let text = format!(
            "{ISA}GS*HP*S*R*20240101*1200*7*X*005010X221A1~ST*835*0001~BPR*H~ST*835*0002~GE*2*7~LX*1~"
        );
        let doc = read(text.as_bytes());
        let k: Vec<ProblemKind> = doc.problems.iter().map(|p| p.kind).collect();
        assert!(k.contains(&ProblemKind::MissingTrailer));
        assert!(k.contains(&ProblemKind::UnexpectedSegment));
        assert_eq!(doc.transactions().count(), 2);
        assert_eq!(
            doc.problems
                .iter()
                .filter(|p| p.kind == ProblemKind::MissingTrailer)
                .count(),
            3,
            "{:?}",
            doc.problems
        );
    }

    #[test]
    fn fragment_gets_headerless_envelope() {
        let doc =
            read(b"ST*835*1234~BPR*I*10*C*CHK************20100923~SE*3*1234~ST*999*1~SE*2*1~");
        assert_eq!(doc.interchanges.len(), 1);
        assert!(doc.interchanges[0].header.is_none());
        assert_eq!(doc.transactions().count(), 2);
        let warnings: Vec<_> = doc.problems.iter().map(|p| p.kind).collect();
        assert_eq!(warnings, [ProblemKind::NoEnvelope]);
    }

    #[test]
    fn numeric_equal_control_numbers_are_a_warning() {
        let text = format!(
            "{ISA}GS*HP*S*R*20240101*1200*7*X*005010X221A1~ST*835*0001~SE*2*1~GE*1*0007~IEA*1*000000001~"
        );
        let doc = read(text.as_bytes());
        assert_eq!(doc.problems.len(), 2);
        assert!(doc.problems.iter().all(|p| p.severity == Severity::Warning));
    }

    #[test]
    fn problems_are_capped_with_a_summary() {
        // Every segment id is invalid and every segment is outside a transaction.
        let text = format!("{ISA}{}", "x*1~".repeat(3000));
        let doc = read(text.as_bytes());
        assert_eq!(doc.problems.len(), crate::problem::MAX_PROBLEMS + 1);
        let last = doc.problems.last().unwrap();
        assert_eq!(last.kind, ProblemKind::TooManyProblems);
        assert!(last.message.starts_with("5001 more"), "{}", last.message);
    }

    #[test]
    fn empty_input_is_a_problem() {
        for input in [&b""[..], b"  \r\n", b"\0\0"] {
            let doc = read(input);
            assert_eq!(doc.problems.len(), 1);
            assert_eq!(doc.problems[0].kind, ProblemKind::Empty);
        }
    }

    #[test]
    fn version_from_st03_or_gs08() {
        let text = format!(
            "{ISA}GS*HN*S*R*20240101*1200*7*X*005010X214~ST*277*0001~SE*2*0001~ST*277*0002*005010X212~SE*2*0002~GE*2*7~IEA*1*000000001~"
        );
        let doc = read(text.as_bytes());
        let names: Vec<&str> = doc.transactions().map(|t| t.content.kind_name()).collect();
        assert_eq!(names, ["277CA", "277"]);
    }
}
