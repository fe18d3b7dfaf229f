//! Shared writer machinery: the envelope we send (ISA/GS/ST..SE/GE/IEA with correct counts and
//! control numbers) and the refusal of data X12 cannot carry.
//!
//! X12 has no escape character: a `*` in a name would shift every later element of its
//! segment, a `~` would end it. So text that contains one of our delimiters (`*` element, `:`
//! component, `^` repetition, `~` segment, [`Delimiters::DEFAULT`]), a control character or
//! anything outside printable ASCII is refused with the field's name, never silently changed.

use chrono::{NaiveDate, NaiveTime};

use crate::lex::Delimiters;
use crate::value::{format_date6, format_date8};

/// Why a writer refused its input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(
        "{field} contains {found:?}: X12 delimiters (* : ^ ~), control characters and non-ASCII text cannot be sent"
    )]
    Unsendable { field: String, found: char },
    #[error("{field} is required")]
    Missing { field: String },
    #[error("{field} is {len} characters; at most {max} fit")]
    TooLong {
        field: String,
        len: usize,
        max: usize,
    },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

/// Interchange and group addressing of a file we send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// ISA05 (`ZZ` mutually defined, `30` TIN...).
    pub sender_qualifier: String,
    /// ISA06, at most 15 characters (padded).
    pub sender_id: String,
    /// ISA07.
    pub receiver_qualifier: String,
    /// ISA08, at most 15 characters (padded).
    pub receiver_id: String,
    /// GS02 application sender code.
    pub application_sender: String,
    /// GS03 application receiver code.
    pub application_receiver: String,
    /// ISA13 / IEA02, 1..=999999999.
    pub interchange_control_number: u32,
    /// GS06 / GE02, 1..=999999999.
    pub group_control_number: u32,
    /// ST02 / SE02, written with at least 4 digits.
    pub transaction_control_number: u32,
    /// ISA09/GS04 and BHT04.
    pub date: NaiveDate,
    /// ISA10/GS05 and BHT05.
    pub time: NaiveTime,
    /// ISA15 `P` (true) or `T`.
    pub production: bool,
    /// ISA14: ask for a TA1.
    pub acknowledgment_requested: bool,
}

/// Checks text for an element: printable ASCII without our delimiters.
pub(crate) fn check<'v>(field: &str, v: &'v str) -> Result<&'v str, Error> {
    if let Some(c) = v
        .chars()
        .find(|&c| !(c.is_ascii_graphic() || c == ' ') || Delimiters::DEFAULT.contains(c))
    {
        return Err(Error::Unsendable {
            field: field.to_owned(),
            found: c,
        });
    }
    Ok(v)
}

/// Like [`check`], and the value may not be empty or longer than `max`.
pub(crate) fn required<'v>(field: &str, v: &'v str, max: usize) -> Result<&'v str, Error> {
    if v.trim().is_empty() {
        return Err(Error::Missing {
            field: field.to_owned(),
        });
    }
    let len = v.chars().count();
    if len > max {
        return Err(Error::TooLong {
            field: field.to_owned(),
            len,
            max,
        });
    }
    check(field, v)
}

/// [`required`] for an optional value; `Some("")` counts as absent.
pub(crate) fn optional<'v>(
    field: &str,
    v: Option<&'v str>,
    max: usize,
) -> Result<Option<&'v str>, Error> {
    match v {
        Some(s) if !s.is_empty() => required(field, s, max).map(Some),
        _ => Ok(None),
    }
}

/// Builds the segments between ST and SE and counts them.
pub(crate) struct SetWriter {
    buf: String,
    segments: usize,
}

impl SetWriter {
    pub(crate) fn new() -> SetWriter {
        SetWriter {
            buf: String::with_capacity(4096),
            segments: 0,
        }
    }

    /// Writes one segment; trailing empty elements are dropped (X12 forbids trailing
    /// separators). Callers pass only checked text.
    pub(crate) fn segment(&mut self, id: &str, elements: &[&str]) {
        let used = elements
            .iter()
            .rposition(|e| !e.is_empty())
            .map_or(0, |p| p + 1);
        self.buf.push_str(id);
        for e in elements.iter().take(used) {
            self.buf.push('*');
            self.buf.push_str(e);
        }
        self.buf.push('~');
        self.segments += 1;
    }

    /// Wraps the body in ISA/GS/ST..SE/GE/IEA. SE01 counts ST and SE (docs/reference/x12.md §2.2).
    pub(crate) fn finish(
        self,
        env: &Envelope,
        functional_id: &str,
        set_id: &str,
        version: &str,
    ) -> Result<String, Error> {
        let isa13 = control("interchange_control_number", env.interchange_control_number)?;
        // GS06 is N0 1-9: written without padding (ISA13 is fixed at 9 digits).
        let gs06 = control("group_control_number", env.group_control_number)?
            .trim_start_matches('0')
            .to_owned();
        let st02 = format!("{:04}", env.transaction_control_number);
        let pad = |field: &str, v: &str, width: usize| -> Result<String, Error> {
            let v = required(field, v, width)?;
            Ok(format!("{v:<width$}"))
        };
        fn q<'v>(field: &str, v: &'v str) -> Result<&'v str, Error> {
            required(field, v, 2)
        }
        let time = env.time.format("%H%M").to_string();
        let mut out = String::with_capacity(self.buf.len() + 256);
        // ISA is fixed-width: 106 characters with the terminator (§2.1).
        out.push_str(&format!(
            "ISA*00*{:10}*00*{:10}*{}*{}*{}*{}*{}*{}*^*00501*{isa13}*{}*{}*:~",
            "",
            "",
            q("sender_qualifier", &env.sender_qualifier)?,
            pad("sender_id", &env.sender_id, 15)?,
            q("receiver_qualifier", &env.receiver_qualifier)?,
            pad("receiver_id", &env.receiver_id, 15)?,
            format_date6(env.date),
            time,
            if env.acknowledgment_requested { 1 } else { 0 },
            if env.production { 'P' } else { 'T' },
        ));
        out.push_str(&format!(
            "GS*{functional_id}*{}*{}*{}*{time}*{gs06}*X*{version}~",
            required("application_sender", &env.application_sender, 15)?,
            required("application_receiver", &env.application_receiver, 15)?,
            format_date8(env.date),
        ));
        out.push_str(&format!("ST*{set_id}*{st02}*{version}~"));
        out.push_str(&self.buf);
        out.push_str(&format!("SE*{}*{st02}~", self.segments + 2));
        out.push_str(&format!("GE*1*{gs06}~"));
        out.push_str(&format!("IEA*1*{isa13}~"));
        Ok(out)
    }
}

fn control(field: &str, n: u32) -> Result<String, Error> {
    if !(1..=999_999_999).contains(&n) {
        return Err(Error::Invalid {
            field: field.to_owned(),
            reason: "must be between 1 and 999999999".into(),
        });
    }
    Ok(format!("{n:09}"))
}

/// Builds a composite from checked parts, dropping trailing empty components.
pub(crate) fn composite(parts: &[&str]) -> String {
    let used = parts
        .iter()
        .rposition(|e| !e.is_empty())
        .map_or(0, |p| p + 1);
    parts
        .iter()
        .take(used)
        .copied()
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn envelope() -> Envelope {
        Envelope {
            sender_qualifier: "ZZ".into(),
            sender_id: "ARFLOW".into(),
            receiver_qualifier: "ZZ".into(),
            receiver_id: "CLEARINGHOUSE".into(),
            application_sender: "ARFLOW".into(),
            application_receiver: "CLEARINGHOUSE".into(),
            interchange_control_number: 42,
            group_control_number: 7,
            transaction_control_number: 1,
            date: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
            time: NaiveTime::from_hms_opt(9, 30, 0).unwrap(),
            production: false,
            acknowledgment_requested: false,
        }
    }

    #[test]
    fn refuses_delimiters_and_control_characters() {
        assert!(check("f", "O'BRIEN-SMITH, JR.").is_ok());
        for bad in ["A*B", "A~B", "A:B", "A^B", "A\nB", "JOSÉ"] {
            assert!(
                matches!(check("name", bad), Err(Error::Unsendable { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            required("name", "  ", 5),
            Err(Error::Missing { .. })
        ));
        assert!(matches!(
            required("name", "ABCDEF", 5),
            Err(Error::TooLong { .. })
        ));
    }

    #[test]
    fn envelope_is_fixed_width_and_counted() {
        let mut w = SetWriter::new();
        w.segment("BHT", &["0010", "13", "REF", "", ""]);
        let out = w.finish(&envelope(), "HR", "276", "005010X212").unwrap();
        let isa_len = out.find('~').unwrap() + 1;
        assert_eq!(isa_len, 106);
        assert!(out.contains("~BHT*0010*13*REF~"));
        assert!(out.contains("~SE*3*0001~GE*1*7~IEA*1*000000042~"));
        let doc = crate::read(out.as_bytes());
        assert!(doc.problems.is_empty(), "{:?}", doc.problems);
    }

    #[test]
    fn composite_trims_trailing_components() {
        assert_eq!(composite(&["HC", "90837", "", ""]), "HC:90837");
        assert_eq!(composite(&["11", "B", "1"]), "11:B:1");
    }
}
