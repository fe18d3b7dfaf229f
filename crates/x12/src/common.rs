//! Segment shapes shared by several transaction sets: names (NM1/N1), references (REF),
//! addresses (N3/N4), contacts (PER), qualified amounts (AMT), dates (DTM/DTP), quantities
//! (QTY) and procedure composites (SVC01/SV101/SVC06).

use arflow_domain::Money;
use chrono::NaiveDate;
use serde::Serialize;

use crate::lex::Segment;
use crate::problem::{Cx, Problem, ProblemKind};
use crate::text::Text;
use crate::value::{Decimal, opt, opt_text, parse_amount, parse_date8, parse_period};

/// An NM1 individual or organization name with its identifier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Entity {
    /// NM101 entity identifier code (`QC` patient, `IL` insured, `PR` payer, `85` billing...).
    pub entity_code: Text,
    /// NM102: `1` person, `2` non-person.
    pub entity_type: Text,
    /// NM103: last name or organization name.
    pub name: Text,
    /// NM104.
    pub first_name: Option<Text>,
    /// NM105.
    pub middle_name: Option<Text>,
    /// NM107.
    pub suffix: Option<Text>,
    /// NM108 (`MI` member id, `XX` NPI, `PI` payer id, `46` ETIN...).
    pub id_qualifier: Option<Text>,
    /// NM109.
    pub id: Option<Text>,
}

impl Entity {
    pub fn from_nm1(seg: &Segment<'_>) -> Entity {
        let [code, kind, last, first, middle, _prefix, suffix, q, id] = seg.fields::<9>();
        Entity {
            entity_code: Text::new(code),
            entity_type: Text::new(kind),
            name: Text::new(last),
            first_name: opt_text(first),
            middle_name: opt_text(middle),
            suffix: opt_text(suffix),
            id_qualifier: opt_text(q),
            id: opt_text(id),
        }
    }
}

/// A REF: qualifier and value (REF01/REF02).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reference {
    pub qualifier: Text,
    pub value: Text,
}

impl Reference {
    pub fn from_ref(seg: &Segment<'_>) -> Reference {
        let [q, v] = seg.fields::<2>();
        Reference {
            qualifier: Text::new(q),
            value: Text::new(v),
        }
    }
}

/// First value with the given qualifier.
pub fn find_ref<'r>(refs: &'r [Reference], qualifier: &str) -> Option<&'r str> {
    refs.iter()
        .find(|r| r.qualifier == qualifier)
        .map(|r| r.value.as_str())
}

/// N3 + N4.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub struct Address {
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    /// Two-letter state or province code.
    pub state: String,
    pub postal_code: String,
}

impl Address {
    pub fn set_n3(&mut self, seg: &Segment<'_>) {
        let [a, b] = seg.fields::<2>();
        a.clone_into(&mut self.line1);
        self.line2 = opt(b);
    }

    pub fn set_n4(&mut self, seg: &Segment<'_>) {
        let [city, state, zip] = seg.fields::<3>();
        city.clone_into(&mut self.city);
        state.clone_into(&mut self.state);
        zip.clone_into(&mut self.postal_code);
    }
}

/// PER: contact function, name and communication numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Contact {
    /// PER01 (`BL` technical, `CX` business, `IC` information).
    pub function: String,
    pub name: Option<String>,
    /// (qualifier, number) pairs: `TE` phone, `EM` email, `UR` web site, `FX` fax.
    pub numbers: Vec<(String, String)>,
}

impl Contact {
    pub fn from_per(seg: &Segment<'_>) -> Contact {
        let f = seg.fields::<8>();
        let [function, name, ..] = f;
        let numbers = f
            .get(2..)
            .unwrap_or_default()
            .chunks(2)
            .filter_map(|p| match p {
                [q, v] if !q.is_empty() || !v.is_empty() => {
                    Some(((*q).to_owned(), (*v).to_owned()))
                }
                _ => None,
            })
            .collect();
        Contact {
            function: function.to_owned(),
            name: opt(name),
            numbers,
        }
    }
}

/// AMT: qualifier and amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QualifiedAmount {
    pub qualifier: Text,
    pub amount: Money,
}

/// QTY: qualifier and quantity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QualifiedQuantity {
    pub qualifier: Text,
    pub quantity: Decimal,
}

/// DTM/DTP with a qualifier that has no dedicated field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QualifiedDate {
    pub qualifier: Text,
    pub date: NaiveDate,
    /// End of a `RD8` range; same as `date` for a single day.
    pub end: NaiveDate,
}

/// A procedure composite (SVC01, SVC06, SV101, 277 SVC01): qualifier, code, up to four
/// modifiers and an optional description (component 7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Procedure {
    /// `HC` (CPT/HCPCS), `AD`, `ER`, `HP`, `IV`, `N4` (NDC), `NU` (revenue code)...
    pub qualifier: Text,
    pub code: Text,
    pub modifiers: Vec<Text>,
    pub description: Option<Text>,
}

impl Procedure {
    pub fn parse(seg: &Segment<'_>, composite: &str) -> Procedure {
        let [q, code, m1, m2, m3, m4, desc] = seg.composite::<7>(composite);
        let mut modifiers = Vec::new();
        for m in [m1, m2, m3, m4] {
            if !m.is_empty() {
                push_small(&mut modifiers, Text::new(m));
            }
        }
        Procedure {
            qualifier: Text::new(q),
            code: Text::new(code),
            modifiers,
            description: opt_text(desc),
        }
    }
}

/// Pushes onto a per-claim or per-line list. Most hold one or two items, and `Vec` starts at
/// four: across an 835 of 100k claims that was hundreds of MB of unused capacity (and the page
/// faults to match). This grows 1, 2, 4, 8...
pub(crate) fn push_small<T>(v: &mut Vec<T>, item: T) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.capacity().max(1));
    }
    v.push(item);
}

/// Reads an optional amount element; a bad value is reported at `element` and read as `None`.
pub fn amount(cx: &mut Cx<'_>, seg: &Segment<'_>, element: &str, s: &str) -> Option<Money> {
    if s.is_empty() {
        return None;
    }
    match parse_amount(s) {
        Ok(m) => Some(m),
        Err(e) => {
            cx.push(
                Problem::error(ProblemKind::BadAmount, format!("{element} {s:?} {e}"))
                    .at(seg)
                    .element(element),
            );
            None
        }
    }
}

/// Like [`amount`], and an empty element is reported as missing.
pub fn required_amount(
    cx: &mut Cx<'_>,
    seg: &Segment<'_>,
    element: &str,
    s: &str,
) -> Option<Money> {
    if s.is_empty() {
        cx.push(
            Problem::error(
                ProblemKind::MissingElement,
                format!("{element} (amount) is required"),
            )
            .at(seg)
            .element(element),
        );
        return None;
    }
    amount(cx, seg, element, s)
}

/// Reads an optional quantity element.
pub fn quantity(cx: &mut Cx<'_>, seg: &Segment<'_>, element: &str, s: &str) -> Option<Decimal> {
    if s.is_empty() {
        return None;
    }
    match Decimal::parse(s) {
        Ok(d) => Some(d),
        Err(e) => {
            cx.push(
                Problem::error(ProblemKind::BadNumber, format!("{element} {s:?} {e}"))
                    .at(seg)
                    .element(element),
            );
            None
        }
    }
}

/// Reads an optional CCYYMMDD element.
pub fn date(cx: &mut Cx<'_>, seg: &Segment<'_>, element: &str, s: &str) -> Option<NaiveDate> {
    if s.is_empty() {
        return None;
    }
    let d = parse_date8(s);
    if d.is_none() {
        cx.push(
            Problem::error(
                ProblemKind::BadDate,
                format!("{element} {s:?} is not a CCYYMMDD date"),
            )
            .at(seg)
            .element(element),
        );
    }
    d
}

/// DTP: (qualifier, first day, last day) from D8 or RD8.
pub fn dtp(cx: &mut Cx<'_>, seg: &Segment<'_>) -> Option<(Text, NaiveDate, NaiveDate)> {
    let [q, format, value] = seg.fields::<3>();
    match parse_period(format, value) {
        Some((a, b)) => Some((Text::new(q), a, b)),
        None => {
            cx.push(
                Problem::error(
                    ProblemKind::BadDate,
                    format!("DTP03 {value:?} is not a {format} date"),
                )
                .at(seg)
                .element("DTP03"),
            );
            None
        }
    }
}

/// AMT: qualifier and amount, or `None` (reported) when the amount is bad.
pub fn amt(cx: &mut Cx<'_>, seg: &Segment<'_>) -> Option<QualifiedAmount> {
    let [q, a] = seg.fields::<2>();
    required_amount(cx, seg, "AMT02", a).map(|amount| QualifiedAmount {
        qualifier: Text::new(q),
        amount,
    })
}

/// QTY: qualifier and quantity.
pub fn qty(cx: &mut Cx<'_>, seg: &Segment<'_>) -> Option<QualifiedQuantity> {
    let [q, v] = seg.fields::<2>();
    quantity(cx, seg, "QTY02", v).map(|quantity| QualifiedQuantity {
        qualifier: Text::new(q),
        quantity,
    })
}

/// Reports an element that must not be empty.
pub fn require(cx: &mut Cx<'_>, seg: &Segment<'_>, element: &str, s: &str) {
    if s.is_empty() {
        cx.push(
            Problem::error(
                ProblemKind::MissingElement,
                format!("{element} is required"),
            )
            .at(seg)
            .element(element),
        );
    }
}

/// Reports a segment that cannot appear at this point of the transaction.
pub fn unexpected(cx: &mut Cx<'_>, seg: &Segment<'_>, why: &str) {
    cx.error(
        seg,
        ProblemKind::UnexpectedSegment,
        format!("{} {why}; it was ignored", seg.id),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex::Tokenizer;
    use crate::problem::{Problems, Scope};

    fn seg(text: &str) -> Segment<'_> {
        Tokenizer::new(text).next().unwrap()
    }

    #[test]
    fn names_references_contacts_addresses() {
        let e = Entity::from_nm1(&seg("NM1*QC*1*RIVERA*JORDAN*A**JR*MI*XEH1~"));
        assert_eq!(
            (
                e.entity_code.as_str(),
                e.name.as_str(),
                e.first_name.as_deref()
            ),
            ("QC", "RIVERA", Some("JORDAN"))
        );
        assert_eq!(
            (e.middle_name.as_deref(), e.suffix.as_deref()),
            (Some("A"), Some("JR"))
        );
        assert_eq!(
            (e.id_qualifier.as_deref(), e.id.as_deref()),
            (Some("MI"), Some("XEH1"))
        );
        let short = Entity::from_nm1(&seg("NM1*QC*1*RIVERA~"));
        assert_eq!((short.first_name, short.id), (None, None));

        let refs = vec![
            Reference::from_ref(&seg("REF*6R*12~")),
            Reference::from_ref(&seg("REF*EA*X~")),
        ];
        assert_eq!(find_ref(&refs, "EA"), Some("X"));
        assert_eq!(find_ref(&refs, "F8"), None);

        let c = Contact::from_per(&seg("PER*BL*EDI*TE*8005551234**~"));
        assert_eq!(c.numbers, [("TE".to_owned(), "8005551234".to_owned())]);

        let mut a = Address::default();
        a.set_n3(&seg("N3*1 MAIN ST~"));
        a.set_n4(&seg("N4*ALBANY*NY*12207~"));
        assert_eq!(
            (a.line1.as_str(), a.line2, a.state.as_str()),
            ("1 MAIN ST", None, "NY")
        );
    }

    #[test]
    fn procedures_keep_qualifier_modifiers_and_description() {
        let s = seg("SVC*HC:H0005:HF:H9:::DESC~");
        let p = Procedure::parse(&s, s.element(1));
        assert_eq!((p.qualifier.as_str(), p.code.as_str()), ("HC", "H0005"));
        assert_eq!(p.modifiers, ["HF", "H9"]);
        assert_eq!(p.description.as_deref(), Some("DESC"));
    }

    #[test]
    fn element_readers_report_at_the_element() {
        let mut problems = Problems::default();
        let scope = Scope::default();
        let mut cx = Cx {
            problems: &mut problems,
            scope: &scope,
        };
        let s = seg("AMT*B6*1.234~");
        assert_eq!(amt(&mut cx, &s), None);
        assert_eq!(amount(&mut cx, &s, "X", ""), None);
        assert_eq!(
            required_amount(&mut cx, &s, "AMT02", "-.5"),
            Some(Money::from_cents(-50))
        );
        assert_eq!(required_amount(&mut cx, &s, "AMT02", ""), None);
        assert_eq!(quantity(&mut cx, &s, "QTY02", "x"), None);
        assert_eq!(date(&mut cx, &s, "DTM02", "20240231"), None);
        assert_eq!(dtp(&mut cx, &seg("DTP*472*RD8*20240301~")), None);
        let v = problems.into_vec();
        let kinds: Vec<_> = v
            .iter()
            .map(|p| (p.kind, p.element.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            kinds,
            [
                (ProblemKind::BadAmount, "AMT02".into()),
                (ProblemKind::MissingElement, "AMT02".into()),
                (ProblemKind::BadNumber, "QTY02".into()),
                (ProblemKind::BadDate, "DTM02".into()),
                (ProblemKind::BadDate, "DTP03".into()),
            ]
        );
        assert!(v.iter().all(|p| p.line == Some(1)));
    }

    #[test]
    fn push_small_grows_from_one() {
        let mut v = Vec::new();
        push_small(&mut v, 1);
        assert_eq!(v.capacity(), 1);
        push_small(&mut v, 2);
        push_small(&mut v, 3);
        assert_eq!(v, [1, 2, 3]);
        assert!(v.capacity() <= 4);
    }
}
