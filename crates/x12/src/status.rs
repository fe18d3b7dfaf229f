//! 277 claim status response (005010X212) and 277CA claim acknowledgment (005010X214), typed
//! (docs/reference/x12.md §4).
//!
//! Both are HL hierarchies: information source (HL03 `20`, the payer or clearinghouse) →
//! information receiver (`21`) → provider (`19`) → subscriber (`22`) → dependent (`23`), with
//! the 277CA's patient level `PT` under the provider. The tree is built from HL01/HL02, never
//! from segment positions (§4.1): a child that names a parent defined later, or a parent that
//! does not exist, is still placed (and the latter reported).
//!
//! A TRN inside a subscriber, dependent or patient level opens a claim (2200D/E): TRN02 is the
//! patient control number (our CLM01) in a 277CA, the 276 trace in a 277. TRN and STC at the
//! payer, receiver and provider levels are statuses of that level (2200A/B/C: batch accepted
//! or rejected, provider not found...). An SVC inside a claim opens a service line (2220D/E)
//! whose STC, REF and DTP belong to the line.

use arflow_domain::Money;
use chrono::NaiveDate;
use serde::Serialize;

use crate::common::{
    Entity, Procedure, QualifiedAmount, QualifiedDate, QualifiedQuantity, Reference, amount, amt,
    date, dtp, qty, quantity, require, unexpected,
};
use crate::lex::{Segment, id};
use crate::problem::{Cx, ProblemKind};
use crate::text::Text;
use crate::value::{Decimal, opt_text};

/// Which implementation guide the 277 follows (from ST03/GS08).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    /// 005010X212: answer to our 276.
    Response277,
    /// 005010X214: claim acknowledgment after our 837.
    Acknowledgment277CA,
}

/// An HL level by its HL03 code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 20: payer or clearinghouse (2000A).
    InformationSource,
    /// 21: us or our clearinghouse (2000B).
    InformationReceiver,
    /// 19: service or billing provider (2000C).
    Provider,
    /// 22: subscriber (2000D, X212).
    Subscriber,
    /// 23: dependent (2000E, X212).
    Dependent,
    /// PT: patient (2000D, X214).
    Patient,
    /// Any other HL03 (reported).
    Other,
}

impl Level {
    pub fn from_code(code: &str) -> Level {
        match code {
            "20" => Level::InformationSource,
            "21" => Level::InformationReceiver,
            "19" => Level::Provider,
            "22" => Level::Subscriber,
            "23" => Level::Dependent,
            "PT" => Level::Patient,
            _ => Level::Other,
        }
    }

    /// Whether claims (TRN + STC) live at this level.
    pub fn holds_claims(self) -> bool {
        matches!(self, Level::Subscriber | Level::Dependent | Level::Patient)
    }

    /// HL03 codes the implementation guides put above this level (276/277/277CA); `None` for
    /// an unknown level, which may sit anywhere.
    fn allowed_parents(self) -> Option<&'static [&'static str]> {
        match self {
            Level::InformationSource => Some(&[]),
            Level::InformationReceiver => Some(&["20"]),
            Level::Provider => Some(&["21"]),
            Level::Subscriber | Level::Patient => Some(&["19"]),
            Level::Dependent => Some(&["22"]),
            Level::Other => None,
        }
    }
}

/// BHT beginning of hierarchical transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Bht {
    /// BHT01 (`0010` 276/277, `0085` 277CA, `0019` 837).
    pub structure: Text,
    /// BHT02 (`13` request, `08` status, `00` original).
    pub purpose: Text,
    /// BHT03 originator's reference.
    pub reference: Option<Text>,
    pub date: Option<NaiveDate>,
    pub time: Option<Text>,
    /// BHT06 (`DG` 277, `TH` 277CA, `CH` 837 chargeable).
    pub transaction_type: Option<Text>,
}

impl Bht {
    pub(crate) fn parse(seg: &Segment<'_>, cx: &mut Cx<'_>) -> Bht {
        let [s, p, r, d, t, ty] = seg.fields::<6>();
        Bht {
            structure: Text::new(s),
            purpose: Text::new(p),
            reference: opt_text(r),
            date: date(cx, seg, "BHT04", d),
            time: opt_text(t),
            transaction_type: opt_text(ty),
        }
    }
}

/// An STC composite: category (list 507), status (list 508), entity, code list qualifier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct StatusCode {
    /// `A1` received, `A2` accepted, `A3`/`A6`/`A7`/`A8` rejected, `P*` pending, `F*`
    /// finalized, `E*` errors (docs/reference/x12.md §4.3).
    pub category: Text,
    pub status: Text,
    pub entity: Option<Text>,
    /// `RX` for NCPDP reject codes.
    pub code_list_qualifier: Option<Text>,
}

impl StatusCode {
    fn parse(seg: &Segment<'_>, composite: &str) -> StatusCode {
        let [c, s, e, q] = seg.composite::<4>(composite);
        StatusCode {
            category: Text::new(c),
            status: Text::new(s),
            entity: opt_text(e),
            code_list_qualifier: opt_text(q),
        }
    }
}

/// One STC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// STC01.
    pub primary: StatusCode,
    /// STC10 and STC11 (additional statuses).
    pub additional: Vec<StatusCode>,
    /// STC02 status effective date.
    pub date: Option<NaiveDate>,
    /// STC03 action code (277CA `WQ` accept, `U` reject; drive logic from the category).
    pub action: Option<Text>,
    /// STC04 total claim charge.
    pub charge: Option<Money>,
    /// STC05 claim payment amount.
    pub paid: Option<Money>,
    /// STC06 adjudication or finalized date.
    pub adjudication_date: Option<NaiveDate>,
    /// STC07 payment method.
    pub payment_method: Option<Text>,
    /// STC08 remittance date.
    pub remittance_date: Option<NaiveDate>,
    /// STC09 check or EFT trace number.
    pub remittance_trace: Option<Text>,
    /// STC12 free-form message.
    pub message: Option<Text>,
    pub segment_index: usize,
    pub line: u32,
}

impl Status {
    /// Every category code of this STC (STC01, STC10, STC11).
    pub fn categories(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&self.primary)
            .chain(&self.additional)
            .map(|c| c.category.as_str())
    }
}

pub(crate) fn parse_stc(seg: &Segment<'_>, cx: &mut Cx<'_>) -> Status {
    let [s1, d2, a3, c4, p5, d6, m7, d8, t9, s10, s11, msg] = seg.fields::<12>();
    require(cx, seg, "STC01", s1);
    Status {
        primary: StatusCode::parse(seg, s1),
        additional: [s10, s11]
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| StatusCode::parse(seg, s))
            .collect(),
        date: date(cx, seg, "STC02", d2),
        action: opt_text(a3),
        charge: amount(cx, seg, "STC04", c4),
        paid: amount(cx, seg, "STC05", p5),
        adjudication_date: date(cx, seg, "STC06", d6),
        payment_method: opt_text(m7),
        remittance_date: date(cx, seg, "STC08", d8),
        remittance_trace: opt_text(t9),
        message: opt_text(msg),
        segment_index: seg.index,
        line: seg.line,
    }
}

/// A TRN at a payer/receiver/provider level.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceNumber {
    /// TRN01: `1` current transaction, `2` referenced transaction.
    pub trace_type: Text,
    pub value: Text,
}

/// One HL level with what sits directly in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HlLevel {
    /// HL01.
    pub id: Text,
    /// HL02.
    pub parent_id: Option<Text>,
    /// HL03 as sent.
    pub code: Text,
    pub level: Level,
    /// Index of the parent in [`ClaimStatus277::levels`], resolved from HL02.
    pub parent: Option<usize>,
    /// NM1 of the level (payer, receiver, provider, subscriber, patient).
    pub entity: Option<Entity>,
    /// Level TRN (2200A/B/C).
    pub traces: Vec<TraceNumber>,
    /// Level STC (2200A/B/C: batch or provider acknowledgments).
    pub statuses: Vec<Status>,
    pub references: Vec<Reference>,
    pub dates: Vec<QualifiedDate>,
    /// QTY*90/AA/QA/QC accepted/rejected counts (277CA).
    pub quantities: Vec<QualifiedQuantity>,
    /// AMT*YU/YY accepted/rejected amounts (277CA).
    pub amounts: Vec<QualifiedAmount>,
    pub segment_index: usize,
    pub line: u32,
}

/// A claim (2200D/E) with its statuses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusClaim {
    /// Index of the HL level holding the claim in [`ClaimStatus277::levels`].
    pub level_index: usize,
    /// The level the claim's statuses sit at (subscriber, dependent or 277CA patient).
    pub level: Level,
    /// TRN01.
    pub trace_type: Text,
    /// TRN02: our patient control number (277CA) or the 276 trace (277).
    pub patient_control_number: Text,
    /// REF*1K payer claim control number.
    pub payer_claim_control_number: Option<Text>,
    /// REF*D9 clearinghouse trace number.
    pub clearinghouse_trace_number: Option<Text>,
    /// REF*BLT bill type.
    pub bill_type: Option<Text>,
    /// Other REF (EJ patient account, XZ Rx number...).
    pub references: Vec<Reference>,
    pub statuses: Vec<Status>,
    /// DTP*472 first day of service.
    pub service_from: Option<NaiveDate>,
    /// DTP*472 last day (same as `service_from` for a D8 date).
    pub service_to: Option<NaiveDate>,
    pub dates: Vec<QualifiedDate>,
    /// 2220 service lines.
    pub lines: Vec<StatusLine>,
    pub segment_index: usize,
    pub line: u32,
}

impl StatusClaim {
    /// Category codes of every claim-level STC (STC01, STC10, STC11), in order.
    pub fn categories(&self) -> Vec<&str> {
        self.statuses.iter().flat_map(Status::categories).collect()
    }
}

/// A 2220 service line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusLine {
    /// SVC01.
    pub procedure: Procedure,
    /// SVC02.
    pub charge: Option<Money>,
    /// SVC03.
    pub paid: Option<Money>,
    /// SVC04.
    pub revenue_code: Option<Text>,
    /// SVC07 units.
    pub units: Option<Decimal>,
    pub statuses: Vec<Status>,
    /// REF*FJ line item control number (our 837 REF*6R).
    pub line_item_control_number: Option<Text>,
    pub references: Vec<Reference>,
    pub service_from: Option<NaiveDate>,
    pub service_to: Option<NaiveDate>,
    pub segment_index: usize,
    pub line: u32,
}

/// A decoded 277 or 277CA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClaimStatus277 {
    pub kind: StatusKind,
    pub header: Option<Bht>,
    /// HL levels in file order, each with its resolved parent.
    pub levels: Vec<HlLevel>,
    /// Every claim of every level, in file order.
    pub claims: Vec<StatusClaim>,
}

impl ClaimStatus277 {
    /// The claim's level and its ancestors, innermost first (subscriber, provider, receiver,
    /// payer). Stops at a cycle.
    pub fn path(&self, claim: &StatusClaim) -> Vec<&HlLevel> {
        let mut out = Vec::new();
        let mut at = Some(claim.level_index);
        while let Some(i) = at {
            let Some(l) = self.levels.get(i) else { break };
            if out.len() > self.levels.len() {
                break;
            }
            out.push(l);
            at = l.parent;
        }
        out
    }

    /// The nearest ancestor (or the level itself) of the given kind.
    pub fn ancestor(&self, claim: &StatusClaim, level: Level) -> Option<&HlLevel> {
        self.path(claim).into_iter().find(|l| l.level == level)
    }
}

enum Open {
    None,
    Level,
    Claim,
    Line,
}

pub(crate) struct Decoder {
    out: ClaimStatus277,
    open: Open,
}

impl Decoder {
    pub(crate) fn new(kind: StatusKind) -> Decoder {
        Decoder {
            out: ClaimStatus277 {
                kind,
                header: None,
                levels: Vec::new(),
                claims: Vec::new(),
            },
            open: Open::None,
        }
    }

    pub(crate) fn finish(mut self, cx: &mut Cx<'_>) -> ClaimStatus277 {
        resolve_parents(&mut self.out.levels, cx);
        self.out
    }

    pub(crate) fn segment(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        match seg.key {
            id::BHT => self.out.header = Some(Bht::parse(seg, cx)),
            id::HL => {
                self.out.levels.push(parse_hl(seg, cx));
                self.open = Open::Level;
            }
            _ if matches!(self.open, Open::None) => {
                unexpected(cx, seg, "before the first HL");
            }
            id::NM1 => {
                if let Some(l) = self.out.levels.last_mut() {
                    if l.entity.is_none() && matches!(self.open, Open::Level) {
                        l.entity = Some(Entity::from_nm1(seg));
                    } else {
                        // Names after the claim starts (e.g. 2210 in 277 X212) are not kept.
                    }
                }
            }
            id::TRN => self.trn(seg, cx),
            id::STC => {
                let s = parse_stc(seg, cx);
                match self.open {
                    Open::Line => {
                        if let Some(l) = self.current_line() {
                            l.statuses.push(s);
                        }
                    }
                    Open::Claim => {
                        if let Some(c) = self.out.claims.last_mut() {
                            c.statuses.push(s);
                        }
                    }
                    _ => {
                        if let Some(l) = self.out.levels.last_mut() {
                            l.statuses.push(s);
                        }
                    }
                }
            }
            id::REF => {
                let r = Reference::from_ref(seg);
                match self.open {
                    Open::Line => {
                        if let Some(l) = self.current_line() {
                            if r.qualifier == "FJ" && l.line_item_control_number.is_none() {
                                l.line_item_control_number = Some(r.value);
                            } else {
                                l.references.push(r);
                            }
                        }
                    }
                    Open::Claim => {
                        if let Some(c) = self.out.claims.last_mut() {
                            let slot = match r.qualifier.as_str() {
                                "1K" => Some(&mut c.payer_claim_control_number),
                                "D9" => Some(&mut c.clearinghouse_trace_number),
                                "BLT" => Some(&mut c.bill_type),
                                _ => None,
                            };
                            match slot {
                                Some(s) if s.is_none() => *s = Some(r.value),
                                _ => c.references.push(r),
                            }
                        }
                    }
                    _ => {
                        if let Some(l) = self.out.levels.last_mut() {
                            l.references.push(r);
                        }
                    }
                }
            }
            id::DTP => {
                let Some((q, from, to)) = dtp(cx, seg) else {
                    return;
                };
                match self.open {
                    Open::Line => {
                        if let Some(l) = self.current_line() {
                            l.service_from = Some(from);
                            l.service_to = Some(to);
                        }
                    }
                    Open::Claim => {
                        if let Some(c) = self.out.claims.last_mut() {
                            if q == "472" && c.service_from.is_none() {
                                c.service_from = Some(from);
                                c.service_to = Some(to);
                            } else {
                                c.dates.push(QualifiedDate {
                                    qualifier: q,
                                    date: from,
                                    end: to,
                                });
                            }
                        }
                    }
                    _ => {
                        if let Some(l) = self.out.levels.last_mut() {
                            l.dates.push(QualifiedDate {
                                qualifier: q,
                                date: from,
                                end: to,
                            });
                        }
                    }
                }
            }
            id::QTY => {
                if let (Some(q), Some(l)) = (qty(cx, seg), self.out.levels.last_mut()) {
                    l.quantities.push(q);
                }
            }
            id::AMT => {
                if let (Some(a), Some(l)) = (amt(cx, seg), self.out.levels.last_mut()) {
                    l.amounts.push(a);
                }
            }
            id::SVC => {
                if !matches!(self.open, Open::Claim | Open::Line) {
                    unexpected(cx, seg, "outside a claim (TRN)");
                    return;
                }
                let [p1, charge, paid, rev, _, _, units] = seg.fields::<7>();
                let line = StatusLine {
                    procedure: Procedure::parse(seg, p1),
                    charge: amount(cx, seg, "SVC02", charge),
                    paid: amount(cx, seg, "SVC03", paid),
                    revenue_code: opt_text(rev),
                    units: quantity(cx, seg, "SVC07", units),
                    statuses: Vec::new(),
                    line_item_control_number: None,
                    references: Vec::new(),
                    service_from: None,
                    service_to: None,
                    segment_index: seg.index,
                    line: seg.line,
                };
                if let Some(c) = self.out.claims.last_mut() {
                    c.lines.push(line);
                }
                self.open = Open::Line;
            }
            // Demographics and contacts: not used by AR follow-up.
            _ => {}
        }
    }

    fn current_line(&mut self) -> Option<&mut StatusLine> {
        self.out.claims.last_mut().and_then(|c| c.lines.last_mut())
    }

    fn trn(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        let [t, v] = seg.fields::<2>();
        require(cx, seg, "TRN02", v);
        let level_index = self.out.levels.len().saturating_sub(1);
        let Some(l) = self.out.levels.last_mut() else {
            return;
        };
        if l.level.holds_claims() {
            self.out.claims.push(StatusClaim {
                level_index,
                level: l.level,
                trace_type: Text::new(t),
                patient_control_number: Text::new(v),
                payer_claim_control_number: None,
                clearinghouse_trace_number: None,
                bill_type: None,
                references: Vec::new(),
                statuses: Vec::new(),
                service_from: None,
                service_to: None,
                dates: Vec::new(),
                lines: Vec::new(),
                segment_index: seg.index,
                line: seg.line,
            });
            self.open = Open::Claim;
        } else {
            l.traces.push(TraceNumber {
                trace_type: Text::new(t),
                value: Text::new(v),
            });
        }
    }
}

pub(crate) fn parse_hl(seg: &Segment<'_>, cx: &mut Cx<'_>) -> HlLevel {
    let [id, parent, code] = seg.fields::<3>();
    require(cx, seg, "HL01", id);
    let level = Level::from_code(code);
    if level == Level::Other {
        cx.warning(
            seg,
            ProblemKind::UnknownCode,
            format!("HL03 {code:?} is not a 276/277 level code (20, 21, 19, 22, 23, PT)"),
        );
    }
    HlLevel {
        id: Text::new(id),
        parent_id: opt_text(parent),
        code: Text::new(code),
        level,
        parent: None,
        entity: None,
        traces: Vec::new(),
        statuses: Vec::new(),
        references: Vec::new(),
        dates: Vec::new(),
        quantities: Vec::new(),
        amounts: Vec::new(),
        segment_index: seg.index,
        line: seg.line,
    }
}

/// A minimal view of an HL level, so the 276 and 837 readers share the tree building.
pub(crate) trait HlNode {
    fn id(&self) -> &str;
    fn parent_id(&self) -> Option<&str>;
    /// HL03.
    fn code(&self) -> &str;
    /// HL03 codes allowed above this level; empty for a root, `None` for "anything".
    fn allowed_parents(&self) -> Option<&'static [&'static str]>;
    fn set_parent(&mut self, parent: Option<usize>);
    fn location(&self) -> (usize, u32);
}

impl HlNode for HlLevel {
    fn id(&self) -> &str {
        &self.id
    }
    fn parent_id(&self) -> Option<&str> {
        self.parent_id.as_deref()
    }
    fn code(&self) -> &str {
        &self.code
    }
    fn allowed_parents(&self) -> Option<&'static [&'static str]> {
        self.level.allowed_parents()
    }
    fn set_parent(&mut self, parent: Option<usize>) {
        self.parent = parent;
    }
    fn location(&self) -> (usize, u32) {
        (self.segment_index, self.line)
    }
}

/// Resolves HL02 to indexes (§4.1: by id, not position) and reports duplicate ids, unknown or
/// self parents, cycles and levels under an unexpected parent.
pub(crate) fn resolve_parents<N: HlNode>(nodes: &mut [N], cx: &mut Cx<'_>) {
    use std::collections::HashMap;
    let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(nodes.len());
    let mut problems = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        if let Some(first) = by_id.insert(n.id(), i) {
            problems.push((
                n.location(),
                format!(
                    "HL01 {:?} is used twice; HL02 references go to the later one (the first is at segment {})",
                    n.id(),
                    nodes.get(first).map_or(0, |f| f.location().0)
                ),
            ));
        }
    }
    let mut parents = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let allowed = n.allowed_parents();
        let parent = match n.parent_id() {
            None => {
                if allowed.is_some_and(|a| !a.is_empty()) {
                    problems.push((
                        n.location(),
                        format!("HL {:?} (HL03 {}) has no parent (HL02)", n.id(), n.code()),
                    ));
                }
                None
            }
            Some(p) => match by_id.get(p) {
                Some(&j) if j == i => {
                    problems.push((n.location(), format!("HL {:?} is its own parent", n.id())));
                    None
                }
                Some(&j) => {
                    if let (Some(allowed), Some(parent)) = (allowed, nodes.get(j))
                        && !allowed.contains(&parent.code())
                    {
                        problems.push((
                            n.location(),
                            format!(
                                "HL {:?} (HL03 {}) sits under HL {p:?} (HL03 {}); the implementation guide puts it under {}",
                                n.id(),
                                n.code(),
                                parent.code(),
                                if allowed.is_empty() { "nothing".to_owned() } else { allowed.join(" or ") }
                            ),
                        ));
                    }
                    Some(j)
                }
                None => {
                    problems.push((
                        n.location(),
                        format!("HL02 {p:?} names no HL in this transaction"),
                    ));
                    None
                }
            },
        };
        parents.push(parent);
    }
    // Break cycles so that every path walk ends: walk each ancestry once (linear time even for
    // a hostile chain), and cut the link that closes a loop.
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; parents.len()];
    let mut path = Vec::new();
    for start in 0..parents.len() {
        path.clear();
        let mut at = Some(start);
        while let Some(i) = at {
            match state.get(i).copied() {
                Some(NEW) => {
                    if let Some(s) = state.get_mut(i) {
                        *s = ON_PATH;
                    }
                    path.push(i);
                    at = parents.get(i).copied().flatten();
                }
                Some(ON_PATH) => {
                    if let Some(&last) = path.last() {
                        if let Some(slot) = parents.get_mut(last) {
                            *slot = None;
                        }
                        let loc = nodes.get(last).map_or((0, 0), HlNode::location);
                        problems
                            .push((loc, "HL parents form a cycle; this link was dropped".into()));
                    }
                    break;
                }
                _ => break,
            }
        }
        for &i in &path {
            if let Some(s) = state.get_mut(i) {
                *s = DONE;
            }
        }
    }
    for (n, p) in nodes.iter_mut().zip(parents) {
        n.set_parent(p);
    }
    for ((index, line), message) in problems {
        let mut p = crate::problem::Problem::warning(ProblemKind::Structure, message);
        p.segment_index = Some(index);
        p.line = Some(line);
        p.segment = Some("HL".into());
        cx.push(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Transaction, read};

    fn decode(text: &str) -> (ClaimStatus277, Vec<crate::Problem>) {
        let doc = read(text.as_bytes());
        let s = doc
            .transactions()
            .find_map(|t| match &t.content {
                Transaction::ClaimStatus277(s) => Some((**s).clone()),
                _ => None,
            })
            .unwrap();
        (s, doc.problems)
    }

    const CA: &str = "ST*277*0001*005010X214~
BHT*0085*08*BATCH1*20240310*1200*TH~
HL*1**20*1~
NM1*PR*2*RIVERSIDE PLAN*****PI*87726~
TRN*1*0001~
DTP*050*D8*20240310~
HL*2*1*21*1~
NM1*41*2*ARFLOW*****46*ARFLOW~
TRN*2*BATCH1~
STC*A1:19:PR*20240310*WQ*450~
QTY*90*1~
QTY*AA*1~
AMT*YU*200~
AMT*YY*250~
HL*3*2*19*1~
NM1*85*2*RIVERSIDE BH*****XX*1245319599~
TRN*1*PROV1~
HL*4*3*PT~
NM1*QC*1*RIVERA*JORDAN****MI*XEH1~
TRN*2*RBH-1~
STC*A2:20:PR*20240310*WQ*200~
REF*1K*ICN0001~
REF*D9*CH0001~
DTP*472*RD8*20240301-20240302~
HL*5*3*PT~
NM1*QC*1*LEE*SAM~
TRN*2*RBH-2~
STC*A3:21*20240310*U*250******A7:562:85*A8:95~
STC*A6:35*20240310*U*********NOT ELIGIBLE ON DATE OF SERVICE~
SVC*HC:90837:95*250*0****1~
STC*A7:453*20240310~
REF*FJ*1~
DTP*472*D8*20240301~
SE*34*0001~";

    #[test]
    fn acknowledgment_tree_levels_and_claims() {
        let (s, problems) = decode(CA);
        assert!(
            problems.iter().all(|p| p.kind == ProblemKind::NoEnvelope),
            "{problems:#?}"
        );
        // Fragment without GS: the kind comes from ST03.
        assert_eq!(s.kind, StatusKind::Acknowledgment277CA);
        assert_eq!(
            s.header.as_ref().unwrap().transaction_type.as_deref(),
            Some("TH")
        );
        assert_eq!(s.levels.len(), 5);
        let receiver = &s.levels[1];
        assert_eq!(receiver.level, Level::InformationReceiver);
        assert_eq!(receiver.statuses[0].primary.category, "A1");
        assert_eq!(receiver.statuses[0].charge, Some(Money::from_cents(45_000)));
        assert_eq!(receiver.quantities.len(), 2);
        assert_eq!(receiver.amounts[1].qualifier, "YY");
        assert_eq!(receiver.traces[0].value, "BATCH1");

        assert_eq!(s.claims.len(), 2);
        let a = &s.claims[0];
        assert_eq!(a.level, Level::Patient);
        assert_eq!(a.patient_control_number, "RBH-1");
        assert_eq!(a.payer_claim_control_number.as_deref(), Some("ICN0001"));
        assert_eq!(a.clearinghouse_trace_number.as_deref(), Some("CH0001"));
        assert_eq!(a.categories(), ["A2"]);
        assert_eq!(a.service_from, NaiveDate::from_ymd_opt(2024, 3, 1));
        assert_eq!(a.service_to, NaiveDate::from_ymd_opt(2024, 3, 2));
        let path: Vec<Level> = s.path(a).iter().map(|l| l.level).collect();
        assert_eq!(
            path,
            [
                Level::Patient,
                Level::Provider,
                Level::InformationReceiver,
                Level::InformationSource
            ]
        );
        let payer = s.ancestor(a, Level::InformationSource).unwrap();
        assert_eq!(payer.entity.as_ref().unwrap().name, "RIVERSIDE PLAN");

        let b = &s.claims[1];
        // STC10/STC11 and STC12.
        assert_eq!(b.categories(), ["A3", "A7", "A8", "A6"]);
        assert_eq!(b.statuses[0].additional[0].entity.as_deref(), Some("85"));
        assert_eq!(b.statuses[0].action.as_deref(), Some("U"));
        assert_eq!(
            b.statuses[1].message.as_deref(),
            Some("NOT ELIGIBLE ON DATE OF SERVICE")
        );
        let line = &b.lines[0];
        assert_eq!(line.procedure.modifiers, ["95"]);
        assert_eq!(line.units.map(|u| u.to_string()), Some("1".into()));
        assert_eq!(line.statuses[0].primary.category, "A7");
        assert_eq!(line.line_item_control_number.as_deref(), Some("1"));
        assert_eq!(line.service_from, NaiveDate::from_ymd_opt(2024, 3, 1));
    }

    #[test]
    fn tree_comes_from_hl02_not_positions() {
        // A 277 whose subscriber names a provider HL that appears after it, with ids that are
        // not in order, and a dependent claim.
        let text = "ST*277*0001*005010X212~
BHT*0010*08*Q1*20240310*1200*DG~
HL*10**20*1~
NM1*PR*2*PLAN*****PI*1~
HL*11*10*21*1~
NM1*41*2*ARFLOW*****46*A~
HL*40*30*22*1~
NM1*IL*1*RIVERA*PAT****MI*M1~
HL*41*40*23~
NM1*QC*1*RIVERA*KID~
TRN*2*RBH-9~
STC*F1:65*20240309**100*80~
HL*30*11*19*1~
NM1*1P*2*RIVERSIDE*****XX*1245319599~
TRN*1*0~
STC*E0:24:85*20240310~
SE*17*0001~";
        let (s, problems) = decode(text);
        assert!(
            problems.iter().all(|p| p.kind == ProblemKind::NoEnvelope),
            "{problems:#?}"
        );
        assert_eq!(s.kind, StatusKind::Response277);
        let c = &s.claims[0];
        assert_eq!(c.level, Level::Dependent);
        assert_eq!(c.statuses[0].paid, Some(Money::from_cents(8_000)));
        let ids: Vec<&str> = s.path(c).iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["41", "40", "30", "11", "10"]);
        let provider = s.ancestor(c, Level::Provider).unwrap();
        assert_eq!(provider.statuses[0].primary.status, "24");
    }

    #[test]
    fn broken_trees_are_reported_and_walks_end() {
        let text = "ST*277*0001*005010X212~
HL*1*2*20*1~
HL*2*1*21*1~
HL*3*9*19*1~
HL*3**22*0~
TRN*2*X~
SE*7*0001~";
        let (s, problems) = decode(text);
        let structure: Vec<&str> = problems
            .iter()
            .filter(|p| p.kind == ProblemKind::Structure)
            .map(|p| p.message.as_str())
            .collect();
        assert!(
            structure.iter().any(|m| m.contains("used twice")),
            "{structure:?}"
        );
        assert!(
            structure.iter().any(|m| m.contains("names no HL")),
            "{structure:?}"
        );
        assert!(
            structure.iter().any(|m| m.contains("cycle")),
            "{structure:?}"
        );
        // The claim's walk ends despite the cycle above it.
        assert!(s.path(&s.claims[0]).len() <= s.levels.len());
    }
}
