//! 276 claim status request (005010X212): the model, its writer and its reader
//! (docs/reference/x12.md §4.4).
//!
//! The model is flat: one [`ClaimInquiry`] per claim, each carrying its payer, receiver,
//! provider, subscriber and optional dependent. The writer rebuilds the HL hierarchy (20 payer →
//! 21 receiver → 19 provider → 22 subscriber → 23 dependent), sharing a level between
//! consecutive inquiries with the same party; the reader walks the HL tree by HL02 and hands
//! every claim its ancestors again. So `read(write(x)) == x` for any request the writer
//! accepts, whatever grouping the writer chose.

use arflow_domain::Money;
use chrono::NaiveDate;
use serde::Serialize;

use crate::common::{Entity, Procedure, amount, dtp, quantity, require};
use crate::lex::{Segment, id};
use crate::problem::{Cx, ProblemKind};
use crate::status::{HlNode, Level, resolve_parents};
use crate::value::{Decimal, format_amount, format_date8, opt};
use crate::write::{Envelope, Error, SetWriter, composite, optional, required};

/// A decoded (or to-be-written) 276.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct StatusRequest276 {
    /// BHT03: our reference for the request, echoed in the 277.
    pub reference: String,
    pub inquiries: Vec<ClaimInquiry>,
}

/// An organization by name and identifier (payer `PI`, receiver `46` ETIN, provider `XX` NPI).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub struct Organization {
    pub name: String,
    pub id: String,
}

/// A subscriber or dependent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub struct Person {
    pub last_name: String,
    pub first_name: Option<String>,
    /// NM109 with NM108 `MI` (the subscriber's member id; a dependent usually has none).
    pub member_id: Option<String>,
    /// DMG02.
    pub birth_date: Option<NaiveDate>,
    /// DMG03 `F`, `M` or `U`.
    pub gender: Option<String>,
}

/// One claim asked about, with the parties above it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct ClaimInquiry {
    /// 2100A NM1*PR: name and payer id (`PI`).
    pub payer: Organization,
    /// 2100B NM1*41: name and ETIN (`46`).
    pub receiver: Organization,
    /// 2100C NM1*1P: name and NPI (`XX`).
    pub provider: Organization,
    /// 2100D NM1*IL (+ DMG).
    pub subscriber: Person,
    /// 2100E NM1*QC (+ DMG) when the patient is not the subscriber.
    pub dependent: Option<Person>,
    /// TRN02 trace number, echoed in the 277 claim loop; we send the patient control number.
    pub trace_number: String,
    /// REF*EJ patient account number: our CLM01.
    pub patient_control_number: Option<String>,
    /// REF*1K payer claim control number (CLP07 of an earlier 835, or 277CA REF*1K).
    pub payer_claim_control_number: Option<String>,
    /// REF*BLT institutional bill type.
    pub bill_type: Option<String>,
    /// AMT*T3 total claim charge.
    pub charge: Option<Money>,
    /// DTP*472 first day of service.
    pub service_from: Option<NaiveDate>,
    /// DTP*472 last day of service.
    pub service_to: Option<NaiveDate>,
    /// 2210 service lines asked about.
    pub lines: Vec<InquiryLine>,
}

/// A 2210 line: SVC + REF*FJ + DTP*472.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct InquiryLine {
    pub procedure: Procedure,
    /// SVC02.
    pub charge: Option<Money>,
    /// SVC07 units.
    pub units: Option<Decimal>,
    /// REF*FJ line item control number (our 837 REF*6R).
    pub line_item_control_number: Option<String>,
    pub service_from: Option<NaiveDate>,
    pub service_to: Option<NaiveDate>,
}

// ------------------------------------------------------------------------------------------
// Writer

/// A party in the HL chain, compared to decide whether consecutive inquiries share a level.
#[derive(Clone, PartialEq, Eq)]
enum Party<'a> {
    Payer(&'a Organization),
    Receiver(&'a Organization),
    Provider(&'a Organization),
    Subscriber(&'a Person),
    Dependent(&'a Person),
}

impl Party<'_> {
    fn code(&self) -> &'static str {
        match self {
            Party::Payer(_) => "20",
            Party::Receiver(_) => "21",
            Party::Provider(_) => "19",
            Party::Subscriber(_) => "22",
            Party::Dependent(_) => "23",
        }
    }
}

struct Node<'a> {
    party: Party<'a>,
    parent: Option<usize>,
    has_children: bool,
    claims: Vec<&'a ClaimInquiry>,
}

/// Lays consecutive inquiries out as an HL tree; a level is reused while the whole chain above
/// it is the same and no deeper level was opened after it (claims belong to the most recent
/// HL, so a subscriber's own claims cannot follow its dependent's).
fn layout(inquiries: &[ClaimInquiry]) -> Vec<Node<'_>> {
    let mut nodes: Vec<Node<'_>> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    for q in inquiries {
        let mut chain = vec![
            Party::Payer(&q.payer),
            Party::Receiver(&q.receiver),
            Party::Provider(&q.provider),
            Party::Subscriber(&q.subscriber),
        ];
        if let Some(d) = &q.dependent {
            chain.push(Party::Dependent(d));
        }
        let mut keep = open
            .iter()
            .zip(&chain)
            .take_while(|(n, p)| nodes.get(**n).is_some_and(|n| n.party == **p))
            .count();
        if keep == chain.len() && open.len() > chain.len() {
            keep -= 1;
        }
        open.truncate(keep);
        for party in chain.into_iter().skip(keep) {
            let parent = open.last().copied();
            if let Some(p) = parent.and_then(|p| nodes.get_mut(p)) {
                p.has_children = true;
            }
            nodes.push(Node {
                party,
                parent,
                has_children: false,
                claims: Vec::new(),
            });
            open.push(nodes.len() - 1);
        }
        if let Some(n) = open.last().and_then(|&i| nodes.get_mut(i)) {
            n.claims.push(q);
        }
    }
    nodes
}

fn write_org(
    w: &mut SetWriter,
    code: &str,
    qualifier: &str,
    field: &str,
    o: &Organization,
) -> Result<(), Error> {
    let name = required(&format!("{field}.name"), &o.name, 60)?;
    let id = required(&format!("{field}.id"), &o.id, 80)?;
    w.segment("NM1", &[code, "2", name, "", "", "", "", qualifier, id]);
    Ok(())
}

fn write_person(w: &mut SetWriter, code: &str, field: &str, p: &Person) -> Result<(), Error> {
    if p.birth_date.is_some() || p.gender.is_some() {
        let dob = p.birth_date.map(format_date8).unwrap_or_default();
        let gender = optional(&format!("{field}.gender"), p.gender.as_deref(), 1)?;
        w.segment("DMG", &["D8", &dob, gender.unwrap_or("")]);
    }
    let last = required(&format!("{field}.last_name"), &p.last_name, 60)?;
    let first = optional(&format!("{field}.first_name"), p.first_name.as_deref(), 35)?;
    let id = optional(&format!("{field}.member_id"), p.member_id.as_deref(), 80)?;
    let q = if id.is_some() { "MI" } else { "" };
    w.segment(
        "NM1",
        &[
            code,
            "1",
            last,
            first.unwrap_or(""),
            "",
            "",
            "",
            q,
            id.unwrap_or(""),
        ],
    );
    Ok(())
}

fn write_period(
    w: &mut SetWriter,
    field: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<(), Error> {
    match (from, to) {
        (Some(a), Some(b)) => {
            let range = format!("{}-{}", format_date8(a), format_date8(b));
            w.segment("DTP", &["472", "RD8", &range]);
        }
        (Some(a), None) => w.segment("DTP", &["472", "D8", &format_date8(a)]),
        (None, Some(_)) => {
            return Err(Error::Invalid {
                field: field.to_owned(),
                reason: "a last day of service needs a first day".into(),
            });
        }
        (None, None) => {}
    }
    Ok(())
}

fn write_claim(w: &mut SetWriter, i: usize, q: &ClaimInquiry) -> Result<(), Error> {
    let f = |name: &str| format!("inquiries[{i}].{name}");
    let trace = required(&f("trace_number"), &q.trace_number, 50)?;
    w.segment("TRN", &["1", trace]);
    // 2200D REF order of the implementation guide: 1K, BLT, ..., EJ.
    let refs = [
        (
            "1K",
            "payer_claim_control_number",
            &q.payer_claim_control_number,
        ),
        ("BLT", "bill_type", &q.bill_type),
        ("EJ", "patient_control_number", &q.patient_control_number),
    ];
    for (qualifier, name, value) in refs {
        if let Some(v) = optional(&f(name), value.as_deref(), 50)? {
            w.segment("REF", &[qualifier, v]);
        }
    }
    if let Some(c) = q.charge {
        w.segment("AMT", &["T3", &format_amount(c)]);
    }
    write_period(w, &f("service_to"), q.service_from, q.service_to)?;
    for (j, l) in q.lines.iter().enumerate() {
        let lf = |name: &str| format!("inquiries[{i}].lines[{j}].{name}");
        let p = &l.procedure;
        let mut parts = vec![
            required(&lf("procedure.qualifier"), &p.qualifier, 2)?,
            required(&lf("procedure.code"), &p.code, 48)?,
        ];
        if p.modifiers.len() > 4 {
            return Err(Error::Invalid {
                field: lf("procedure.modifiers"),
                reason: "at most 4 modifiers".into(),
            });
        }
        for (k, m) in p.modifiers.iter().enumerate() {
            parts.push(required(&lf(&format!("procedure.modifiers[{k}]")), m, 2)?);
        }
        if let Some(d) = &p.description {
            while parts.len() < 6 {
                parts.push("");
            }
            parts.push(required(&lf("procedure.description"), d, 80)?);
        }
        let charge = l.charge.map(format_amount).unwrap_or_default();
        let units = l.units.map(|u| u.to_string()).unwrap_or_default();
        w.segment(
            "SVC",
            &[&composite(&parts), &charge, "", "", "", "", &units],
        );
        if let Some(v) = optional(
            &lf("line_item_control_number"),
            l.line_item_control_number.as_deref(),
            50,
        )? {
            w.segment("REF", &["FJ", v]);
        }
        write_period(w, &lf("service_to"), l.service_from, l.service_to)?;
    }
    Ok(())
}

/// Writes a 276 in its own interchange (GS01 `HR`, GS08 `005010X212`).
pub fn write_276(env: &Envelope, request: &StatusRequest276) -> Result<String, Error> {
    if request.inquiries.is_empty() {
        return Err(Error::Missing {
            field: "inquiries".into(),
        });
    }
    let mut w = SetWriter::new();
    let reference = required("reference", &request.reference, 50)?;
    let date = format_date8(env.date);
    let time = env.time.format("%H%M").to_string();
    w.segment("BHT", &["0010", "13", reference, &date, &time]);
    let nodes = layout(&request.inquiries);
    let mut claim_index = 0;
    for (i, n) in nodes.iter().enumerate() {
        let id = (i + 1).to_string();
        let parent = n.parent.map(|p| (p + 1).to_string()).unwrap_or_default();
        // HL04 is not used at the dependent level (X212 2000E).
        let child = match (&n.party, n.has_children) {
            (Party::Dependent(_), _) => "",
            (_, true) => "1",
            (_, false) => "0",
        };
        w.segment("HL", &[&id, &parent, n.party.code(), child]);
        match &n.party {
            Party::Payer(o) => write_org(&mut w, "PR", "PI", "payer", o)?,
            Party::Receiver(o) => write_org(&mut w, "41", "46", "receiver", o)?,
            Party::Provider(o) => write_org(&mut w, "1P", "XX", "provider", o)?,
            Party::Subscriber(p) => write_person(&mut w, "IL", "subscriber", p)?,
            Party::Dependent(p) => write_person(&mut w, "QC", "dependent", p)?,
        }
        for q in &n.claims {
            write_claim(&mut w, claim_index, q)?;
            claim_index += 1;
        }
    }
    w.finish(env, "HR", "276", "005010X212")
}

// ------------------------------------------------------------------------------------------
// Reader

struct HlData {
    id: String,
    parent_id: Option<String>,
    code: String,
    level: Level,
    parent: Option<usize>,
    entity: Option<Entity>,
    birth_date: Option<NaiveDate>,
    gender: Option<String>,
    location: (usize, u32),
}

impl HlNode for HlData {
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
        match self.level {
            Level::InformationSource => Some(&[]),
            Level::InformationReceiver => Some(&["20"]),
            Level::Provider => Some(&["21"]),
            Level::Subscriber => Some(&["19"]),
            Level::Dependent => Some(&["22"]),
            Level::Patient | Level::Other => None,
        }
    }
    fn set_parent(&mut self, parent: Option<usize>) {
        self.parent = parent;
    }
    fn location(&self) -> (usize, u32) {
        self.location
    }
}

pub(crate) struct Decoder {
    reference: String,
    levels: Vec<HlData>,
    claims: Vec<(usize, ClaimInquiry)>,
    in_line: bool,
}

impl Decoder {
    pub(crate) fn new() -> Decoder {
        Decoder {
            reference: String::new(),
            levels: Vec::new(),
            claims: Vec::new(),
            in_line: false,
        }
    }

    fn claim(&mut self) -> Option<&mut ClaimInquiry> {
        self.claims.last_mut().map(|(_, c)| c)
    }

    pub(crate) fn segment(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        match seg.key {
            id::BHT => seg.element(3).clone_into(&mut self.reference),
            id::HL => {
                let [id, parent, code] = seg.fields::<3>();
                require(cx, seg, "HL01", id);
                let level = Level::from_code(code);
                if !matches!(
                    level,
                    Level::InformationSource
                        | Level::InformationReceiver
                        | Level::Provider
                        | Level::Subscriber
                        | Level::Dependent
                ) {
                    cx.warning(
                        seg,
                        ProblemKind::UnknownCode,
                        format!("HL03 {code:?} is not a 276 level code (20, 21, 19, 22, 23)"),
                    );
                }
                self.levels.push(HlData {
                    id: id.to_owned(),
                    parent_id: opt(parent),
                    code: code.to_owned(),
                    level,
                    parent: None,
                    entity: None,
                    birth_date: None,
                    gender: None,
                    location: (seg.index, seg.line),
                });
                self.in_line = false;
            }
            id::NM1 => {
                if let Some(l) = self.levels.last_mut()
                    && l.entity.is_none()
                {
                    l.entity = Some(Entity::from_nm1(seg));
                }
            }
            id::DMG => {
                let [_, dob, gender] = seg.fields::<3>();
                let birth = crate::common::date(cx, seg, "DMG02", dob);
                if let Some(l) = self.levels.last_mut() {
                    l.birth_date = birth;
                    l.gender = opt(gender);
                }
            }
            id::TRN => {
                let [_, trace] = seg.fields::<2>();
                require(cx, seg, "TRN02", trace);
                let Some(level) = self.levels.len().checked_sub(1) else {
                    crate::common::unexpected(cx, seg, "before the first HL");
                    return;
                };
                self.claims.push((
                    level,
                    ClaimInquiry {
                        trace_number: trace.to_owned(),
                        ..ClaimInquiry::default()
                    },
                ));
                self.in_line = false;
            }
            id::REF => {
                let [q, v] = seg.fields::<2>();
                let in_line = self.in_line;
                let Some(c) = self.claim() else { return };
                if in_line {
                    if q == "FJ"
                        && let Some(l) = c.lines.last_mut()
                    {
                        l.line_item_control_number = opt(v);
                    }
                    return;
                }
                match q {
                    "1K" => c.payer_claim_control_number = opt(v),
                    "EJ" => c.patient_control_number = opt(v),
                    "BLT" => c.bill_type = opt(v),
                    _ => {}
                }
            }
            id::AMT => {
                let [q, a] = seg.fields::<2>();
                let a = amount(cx, seg, "AMT02", a);
                if q == "T3"
                    && let Some(c) = self.claim()
                {
                    c.charge = a;
                }
            }
            id::DTP => {
                let Some((q, from, to)) = dtp(cx, seg) else {
                    return;
                };
                let in_line = self.in_line;
                let Some(c) = self.claim() else { return };
                if q != "472" {
                    return;
                }
                let (f, t) = if in_line {
                    match c.lines.last_mut() {
                        Some(l) => (&mut l.service_from, &mut l.service_to),
                        None => return,
                    }
                } else {
                    (&mut c.service_from, &mut c.service_to)
                };
                *f = Some(from);
                // A D8 date is a one-day period; keep the model's `None` for "no last day".
                *t = (seg.element(2) == "RD8").then_some(to);
            }
            id::SVC => {
                let [p1, charge, _, _, _, _, units] = seg.fields::<7>();
                let line = InquiryLine {
                    procedure: Procedure::parse(seg, p1),
                    charge: amount(cx, seg, "SVC02", charge),
                    units: quantity(cx, seg, "SVC07", units),
                    ..InquiryLine::default()
                };
                match self.claim() {
                    Some(c) => {
                        c.lines.push(line);
                        self.in_line = true;
                    }
                    None => crate::common::unexpected(cx, seg, "outside a claim (TRN)"),
                }
            }
            _ => {}
        }
    }

    pub(crate) fn finish(mut self, cx: &mut Cx<'_>) -> StatusRequest276 {
        resolve_parents(&mut self.levels, cx);
        let levels = &self.levels;
        let org = |e: &Option<Entity>| {
            e.as_ref()
                .map(|e| Organization {
                    name: e.name.to_string(),
                    id: e.id.as_deref().unwrap_or_default().to_owned(),
                })
                .unwrap_or_default()
        };
        let person = |l: &HlData| {
            let e = l.entity.clone().unwrap_or_default();
            Person {
                last_name: e.name.into(),
                first_name: e.first_name.map(String::from),
                member_id: e.id.map(String::from),
                birth_date: l.birth_date,
                gender: l.gender.clone(),
            }
        };
        let inquiries = self
            .claims
            .into_iter()
            .map(|(at, mut c)| {
                let mut cur = Some(at);
                let mut steps = 0;
                while let Some(i) = cur {
                    let Some(l) = levels.get(i) else { break };
                    match l.level {
                        Level::InformationSource => c.payer = org(&l.entity),
                        Level::InformationReceiver => c.receiver = org(&l.entity),
                        Level::Provider => c.provider = org(&l.entity),
                        Level::Subscriber => c.subscriber = person(l),
                        Level::Dependent => c.dependent = Some(person(l)),
                        _ => {}
                    }
                    steps += 1;
                    if steps > levels.len() {
                        break;
                    }
                    cur = l.parent;
                }
                c
            })
            .collect();
        StatusRequest276 {
            reference: self.reference,
            inquiries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Transaction, read};
    use crate::write::tests::envelope;

    fn org(name: &str, id: &str) -> Organization {
        Organization {
            name: name.into(),
            id: id.into(),
        }
    }

    fn request() -> StatusRequest276 {
        let base = ClaimInquiry {
            payer: org("RIVERSIDE PLAN", "87726"),
            receiver: org("ARFLOW", "ARFLOW01"),
            provider: org("RIVERSIDE BH", "1245319599"),
            subscriber: Person {
                last_name: "RIVERA".into(),
                first_name: Some("JORDAN".into()),
                member_id: Some("XEH123".into()),
                birth_date: NaiveDate::from_ymd_opt(1988, 3, 14),
                gender: Some("F".into()),
            },
            dependent: None,
            trace_number: "RBH-1".into(),
            patient_control_number: Some("RBH-1".into()),
            payer_claim_control_number: Some("ICN0001".into()),
            bill_type: None,
            charge: Some(Money::from_cents(20_500)),
            service_from: NaiveDate::from_ymd_opt(2024, 3, 1),
            service_to: NaiveDate::from_ymd_opt(2024, 3, 1),
            lines: vec![],
        };
        let second = ClaimInquiry {
            trace_number: "RBH-2".into(),
            patient_control_number: Some("RBH-2".into()),
            payer_claim_control_number: None,
            service_to: None,
            lines: vec![InquiryLine {
                procedure: Procedure {
                    qualifier: "HC".into(),
                    code: "90837".into(),
                    modifiers: vec!["95".into()],
                    description: None,
                },
                charge: Some(Money::from_cents(18_000)),
                units: Some(Decimal::from_int(1)),
                line_item_control_number: Some("1".into()),
                service_from: NaiveDate::from_ymd_opt(2024, 3, 1),
                service_to: None,
            }],
            ..base.clone()
        };
        let child = ClaimInquiry {
            trace_number: "RBH-3".into(),
            dependent: Some(Person {
                last_name: "RIVERA".into(),
                first_name: Some("SAM".into()),
                member_id: None,
                birth_date: NaiveDate::from_ymd_opt(2015, 6, 1),
                gender: Some("M".into()),
            }),
            ..base.clone()
        };
        // The subscriber's own claim again after the dependent's: needs a new subscriber HL.
        let again = ClaimInquiry {
            trace_number: "RBH-4".into(),
            ..base.clone()
        };
        StatusRequest276 {
            reference: "Q20240310".into(),
            inquiries: vec![base, second, child, again],
        }
    }

    fn read_276(text: &str) -> (StatusRequest276, Vec<crate::Problem>) {
        let doc = read(text.as_bytes());
        let r = doc
            .transactions()
            .find_map(|t| match &t.content {
                Transaction::StatusRequest276(r) => Some((**r).clone()),
                _ => None,
            })
            .unwrap();
        (r, doc.problems)
    }

    #[test]
    fn writes_the_hierarchy_and_reads_back() {
        let req = request();
        let text = write_276(&envelope(), &req).unwrap();
        assert!(text.starts_with("ISA*00*"));
        assert!(text.contains("~GS*HR*ARFLOW*CLEARINGHOUSE*20240301*0930*7*X*005010X212~ST*276*0001*005010X212~BHT*0010*13*Q20240310*20240301*0930~"));
        assert!(text.contains("~HL*1**20*1~NM1*PR*2*RIVERSIDE PLAN*****PI*87726~HL*2*1*21*1~"));
        assert!(text.contains("~HL*4*3*22*1~DMG*D8*19880314*F~NM1*IL*1*RIVERA*JORDAN****MI*XEH123~TRN*1*RBH-1~REF*1K*ICN0001~REF*EJ*RBH-1~AMT*T3*205~DTP*472*RD8*20240301-20240301~"));
        assert!(text.contains("~SVC*HC:90837:95*180*****1~REF*FJ*1~DTP*472*D8*20240301~"));
        assert!(text.contains("~HL*5*4*23~DMG*D8*20150601*M~NM1*QC*1*RIVERA*SAM~TRN*1*RBH-3~"));
        assert!(text.contains("~HL*6*3*22*0~"), "{text}");
        let (back, problems) = read_276(&text);
        assert!(problems.is_empty(), "{problems:#?}");
        assert_eq!(back, req);
    }

    #[test]
    fn refuses_what_x12_cannot_carry() {
        let mut req = request();
        req.inquiries[1].subscriber.last_name = "O*BRIEN".into();
        assert!(matches!(
            write_276(&envelope(), &req),
            Err(Error::Unsendable { field, found: '*' }) if field == "subscriber.last_name"
        ));
        let mut req = request();
        req.inquiries[0].trace_number = String::new();
        assert!(matches!(
            write_276(&envelope(), &req),
            Err(Error::Missing { field }) if field == "inquiries[0].trace_number"
        ));
        let mut req = request();
        req.inquiries[0].service_from = None;
        assert!(matches!(
            write_276(&envelope(), &req),
            Err(Error::Invalid { .. })
        ));
        assert!(write_276(&envelope(), &StatusRequest276::default()).is_err());
    }

    #[test]
    fn reads_a_payer_style_request() {
        // Shaped like the X212 example: two providers, a dependent, a service line.
        let text = "ST*276*0001*005010X212~BHT*0010*13*ABC276*20050915*1425~HL*1**20*1~NM1*PR*2*ABC INSURANCE*****PI*12345~HL*2*1*21*1~NM1*41*2*XYZ SERVICE*****46*X67E~HL*3*2*19*1~NM1*1P*2*HOME HOSPITAL*****XX*1666666661~HL*4*3*22*0~DMG*D8*19301210*M~NM1*IL*1*SMITH*FRED****MI*123456789A~TRN*1*ABCXYZ1~REF*BLT*111~REF*EJ*SM123456~AMT*T3*8513.88~DTP*472*RD8*20050831-20050906~HL*5*2*19*1~NM1*1P*2*PHYSICIANS*****XX*6166666666~HL*6*5*22*1~NM1*IL*1*MANN*JOHN****MI*345678901~HL*7*6*23~DMG*D8*19951101*M~NM1*QC*1*MANN*JOSEPH~TRN*1*ABCXYZ3~REF*EJ*MA345678~SVC*HC:99203*150.00*****1.00~DTP*472*D8*20050501~SE*28*0001~";
        let (r, problems) = read_276(text);
        assert!(
            problems.iter().all(|p| p.kind == ProblemKind::NoEnvelope),
            "{problems:#?}"
        );
        assert_eq!(r.reference, "ABC276");
        assert_eq!(r.inquiries.len(), 2);
        let a = &r.inquiries[0];
        assert_eq!(a.provider.id, "1666666661");
        assert_eq!(a.bill_type.as_deref(), Some("111"));
        assert_eq!(a.charge, Some(Money::from_cents(851_388)));
        let b = &r.inquiries[1];
        assert_eq!(b.provider.name, "PHYSICIANS");
        assert_eq!(b.subscriber.last_name, "MANN");
        assert_eq!(
            b.dependent.as_ref().unwrap().first_name.as_deref(),
            Some("JOSEPH")
        );
        assert_eq!(b.lines[0].procedure.code, "99203");
        assert_eq!(b.lines[0].service_from, NaiveDate::from_ymd_opt(2005, 5, 1));
    }
}
