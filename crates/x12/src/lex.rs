//! Layer 1: bytes → text → segments.
//!
//! Delimiters come from each ISA header, never from a fixed table (docs/reference/x12.md §2.1): the
//! element separator is the 4th character; we then walk 16 element separators instead of trusting
//! the offset 104, so a header with slightly wrong padding still yields ISA16 (the component
//! separator) and the segment terminator right after it. ISA11 is a repetition separator only from
//! version 00501 on; in 004010 it is the standards id `U`.
//!
//! Layout tolerance: a UTF-8 byte-order mark, UTF-16 (transcoded), CR/LF, spaces, tabs, NULs
//! and `^Z` between segments, newline as the segment terminator, everything on one line, many
//! interchanges (each with its own delimiters) in one file, and a bare `ST..SE` without an
//! envelope ("fragment" mode, default delimiters `*` `:` `~`, or newline when the text has no
//! `~`).
//!
//! Speed: the tokenizer borrows `&str` slices from the input and allocates nothing per segment
//! or element; elements are split on demand ([`Segment::fields`] fills a stack array in one
//! pass). Delimiters are ASCII, so splitting valid UTF-8 on them always lands on character
//! boundaries.

use std::borrow::Cow;

use serde::{Serialize, Serializer};

use crate::problem::{Problem, ProblemKind};

/// The four delimiters of an interchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delimiters {
    pub element: u8,
    pub component: u8,
    /// ISA11 from version 00501; `None` before (ISA11 was the standards id `U` in 004010).
    pub repetition: Option<u8>,
    pub segment: u8,
}

impl Delimiters {
    /// What fragment mode and our writers use: `*` `:` `^` `~`.
    pub const DEFAULT: Delimiters = Delimiters {
        element: b'*',
        component: b':',
        repetition: Some(b'^'),
        segment: b'~',
    };

    /// Whether `c` is one of the delimiters (data containing one cannot be written).
    pub fn contains(&self, c: char) -> bool {
        let is = |d: u8| c == char::from(d);
        is(self.element)
            || is(self.component)
            || is(self.segment)
            || self.repetition.is_some_and(is)
    }
}

impl Serialize for Delimiters {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let ch = |b: u8| char::from(b).to_string();
        let mut st = s.serialize_struct("Delimiters", 4)?;
        st.serialize_field("element", &ch(self.element))?;
        st.serialize_field("component", &ch(self.component))?;
        st.serialize_field("repetition", &self.repetition.map(ch))?;
        st.serialize_field("segment", &ch(self.segment))?;
        st.end()
    }
}

/// Packs a 1–3 byte segment id or code into a number (0 for anything else), so decoders
/// dispatch on integer compares instead of one string comparison per match arm (string matches
/// were a tenth of a full 835 read).
pub const fn key(id: &[u8]) -> u32 {
    match id {
        [a] => (*a as u32) << 16,
        [a, b] => ((*a as u32) << 16) | ((*b as u32) << 8),
        [a, b, c] => ((*a as u32) << 16) | ((*b as u32) << 8) | (*c as u32),
        _ => 0,
    }
}

/// Keys of the segment ids the decoders dispatch on.
pub mod id {
    use super::key;
    pub const AK1: u32 = key(b"AK1");
    pub const AK2: u32 = key(b"AK2");
    pub const AK9: u32 = key(b"AK9");
    pub const AMT: u32 = key(b"AMT");
    pub const BHT: u32 = key(b"BHT");
    pub const BPR: u32 = key(b"BPR");
    pub const CAS: u32 = key(b"CAS");
    pub const CLM: u32 = key(b"CLM");
    pub const CLP: u32 = key(b"CLP");
    pub const CTX: u32 = key(b"CTX");
    pub const CUR: u32 = key(b"CUR");
    pub const DMG: u32 = key(b"DMG");
    pub const DTM: u32 = key(b"DTM");
    pub const DTP: u32 = key(b"DTP");
    pub const GE: u32 = key(b"GE");
    pub const GS: u32 = key(b"GS");
    pub const HI: u32 = key(b"HI");
    pub const HL: u32 = key(b"HL");
    pub const IEA: u32 = key(b"IEA");
    pub const IK3: u32 = key(b"IK3");
    pub const IK4: u32 = key(b"IK4");
    pub const IK5: u32 = key(b"IK5");
    pub const ISA: u32 = key(b"ISA");
    pub const LQ: u32 = key(b"LQ");
    pub const LX: u32 = key(b"LX");
    pub const MIA: u32 = key(b"MIA");
    pub const MOA: u32 = key(b"MOA");
    pub const N1: u32 = key(b"N1");
    pub const N3: u32 = key(b"N3");
    pub const N4: u32 = key(b"N4");
    pub const NM1: u32 = key(b"NM1");
    pub const PAT: u32 = key(b"PAT");
    pub const PER: u32 = key(b"PER");
    pub const PLB: u32 = key(b"PLB");
    pub const PRV: u32 = key(b"PRV");
    pub const QTY: u32 = key(b"QTY");
    pub const RDM: u32 = key(b"RDM");
    pub const REF: u32 = key(b"REF");
    pub const SBR: u32 = key(b"SBR");
    pub const SE: u32 = key(b"SE");
    pub const ST: u32 = key(b"ST");
    pub const STC: u32 = key(b"STC");
    pub const SV1: u32 = key(b"SV1");
    pub const SVC: u32 = key(b"SVC");
    pub const TA1: u32 = key(b"TA1");
    pub const TRN: u32 = key(b"TRN");
    pub const TS2: u32 = key(b"TS2");
    pub const TS3: u32 = key(b"TS3");
}

/// One segment, borrowed from the decoded text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// `ISA`, `CLP`...
    pub id: &'a str,
    /// [`key`] of the id (0 when it is longer than 3 characters).
    pub key: u32,
    /// The whole segment without its terminator (id included).
    pub text: &'a str,
    /// 0-based position in the file, counting every segment of every interchange.
    pub index: usize,
    /// 1-based line of the segment's first character.
    pub line: u32,
    pub delimiters: Delimiters,
}

impl<'a> Segment<'a> {
    /// Elements 1.. (the id excluded), split on the element separator.
    pub fn elements(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.text.split(char::from(self.delimiters.element)).skip(1)
    }

    /// Element `n` (1-based, as in `CLP01`); `""` when absent.
    pub fn element(&self, n: usize) -> &'a str {
        match n.checked_sub(1) {
            Some(k) => self.elements().nth(k).unwrap_or(""),
            None => self.id,
        }
    }

    /// Elements 1..=N in one pass; missing ones are `""`, extra ones are ignored.
    pub fn fields<const N: usize>(&self) -> [&'a str; N] {
        split_fixed(self.text, self.delimiters.element, 1)
    }

    /// Number of elements after the id (trailing empty ones included).
    pub fn element_count(&self) -> usize {
        self.elements().count()
    }

    /// Components of a composite element.
    pub fn components(&self, element: &'a str) -> impl Iterator<Item = &'a str> + use<'a> {
        element.split(char::from(self.delimiters.component))
    }

    /// Components 1..=N of a composite; missing ones are `""`.
    pub fn composite<const N: usize>(&self, element: &'a str) -> [&'a str; N] {
        split_fixed(element, self.delimiters.component, 0)
    }
}

/// Parts `skip..skip + N` of `text` split on `sep`, in one pass; missing parts are `""`.
///
/// A plain byte loop: segments are short (20–60 bytes), where `str::split` (a memchr set-up
/// and a memcmp per match) costs more than it saves.
fn split_fixed<const N: usize>(text: &str, sep: u8, skip: usize) -> [&str; N] {
    let mut out = [""; N];
    let mut n = 0usize;
    let mut start = 0usize;
    for (i, &c) in text.as_bytes().iter().enumerate() {
        if c == sep {
            if let Some(slot) = n.checked_sub(skip).and_then(|k| out.get_mut(k)) {
                *slot = text.get(start..i).unwrap_or("");
            }
            n += 1;
            start = i + 1;
            if n >= N + skip {
                return out;
            }
        }
    }
    if let Some(slot) = n.checked_sub(skip).and_then(|k| out.get_mut(k)) {
        *slot = text.get(start..).unwrap_or("");
    }
    out
}

/// Bytes to text: strips a UTF-8 BOM, transcodes UTF-16, replaces invalid UTF-8 (with a
/// problem). Borrows whenever the input is already clean UTF-8.
pub fn decode<'a>(bytes: &'a [u8], problems: &mut Vec<Problem>) -> Cow<'a, str> {
    if let Some(text) = decode_utf16(bytes) {
        problems.push(Problem::warning(
            ProblemKind::Encoding,
            "the file is UTF-16; it was transcoded to UTF-8",
        ));
        return Cow::Owned(text);
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(e) => {
            problems.push(Problem::warning(
                ProblemKind::Encoding,
                format!(
                    "the file is not valid UTF-8 (first bad byte at offset {}); invalid bytes were replaced by U+FFFD",
                    e.valid_up_to()
                ),
            ));
            Cow::Owned(String::from_utf8_lossy(bytes).into_owned())
        }
    }
}

/// UTF-16 by BOM, or by the NUL pattern of ASCII text (`I\0S\0` or `\0I\0S`).
fn decode_utf16(b: &[u8]) -> Option<String> {
    let (le, body) = match b {
        [0xFF, 0xFE, rest @ ..] => (true, rest),
        [0xFE, 0xFF, rest @ ..] => (false, rest),
        [a, 0, c, 0, ..] if *a != 0 && *c != 0 => (true, b),
        [0, a, 0, c, ..] if *a != 0 && *c != 0 => (false, b),
        _ => return None,
    };
    let units = body.chunks(2).map(|c| match (c, le) {
        ([x, y], true) => u16::from_le_bytes([*x, *y]),
        ([x, y], false) => u16::from_be_bytes([*x, *y]),
        _ => 0xFFFD,
    });
    Some(
        char::decode_utf16(units)
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
    )
}

/// Filler between segments: CR, LF, space, tab, NUL and `^Z` (DOS end of file).
fn is_filler(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0 | 0x1A)
}

/// A delimiter must be printable ASCII punctuation or a control/space character, never a
/// letter or digit (those are data).
fn usable_delimiter(b: u8) -> bool {
    b.is_ascii() && !b.is_ascii_alphanumeric()
}

/// The result of reading an ISA header.
struct IsaHeader {
    delimiters: Delimiters,
    /// Length of the ISA segment without its terminator.
    len: usize,
}

/// How far to look for the 16 element separators of an ISA (it is 106 characters; allow
/// generous padding errors without scanning a whole file that has no header).
const ISA_SCAN_LIMIT: usize = 512;

fn parse_isa(rest: &str) -> Result<IsaHeader, String> {
    let b = rest.as_bytes();
    let Some(&element) = b.get(3) else {
        return Err("the ISA header is truncated".into());
    };
    if !usable_delimiter(element) || is_filler(element) && element != b'\t' {
        return Err(format!(
            "ISA's 4th character {:?} cannot be an element separator",
            char::from(element)
        ));
    }
    let mut seen = 0;
    let mut isa16_at = None;
    for (i, &c) in b.iter().enumerate().take(ISA_SCAN_LIMIT).skip(3) {
        if c == element {
            seen += 1;
            if seen == 16 {
                isa16_at = Some(i + 1);
                break;
            }
        }
    }
    let Some(at) = isa16_at else {
        return Err(format!(
            "the ISA header has {seen} element separators, 16 are needed to reach ISA16"
        ));
    };
    let (Some(&component), Some(&segment)) = (b.get(at), b.get(at + 1)) else {
        return Err("the ISA header is truncated after ISA15".into());
    };
    if !usable_delimiter(component) || component == element {
        return Err(format!(
            "ISA16 {:?} cannot be a component separator",
            char::from(component)
        ));
    }
    if !usable_delimiter(segment) || segment == element || segment == component {
        return Err(format!(
            "the character after ISA16, {:?}, cannot be a segment terminator",
            char::from(segment)
        ));
    }
    let sep = char::from(element);
    let mut els = rest.get(..at).unwrap_or("").split(sep);
    let isa11 = els.nth(11).unwrap_or("");
    let isa12 = els.next().unwrap_or("");
    // 00501 and later: ISA11 is the repetition separator (docs/reference/x12.md §2.1).
    let repetition = match isa11.as_bytes() {
        [r] if isa12 >= "00501"
            && usable_delimiter(*r)
            && ![element, component, segment].contains(r) =>
        {
            Some(*r)
        }
        _ => None,
    };
    Ok(IsaHeader {
        delimiters: Delimiters {
            element,
            component,
            repetition,
            segment,
        },
        len: at + 1,
    })
}

/// Whether the text at a segment start is an ISA header (`ISA` then a non-alphanumeric).
fn starts_isa(rest: &[u8]) -> bool {
    matches!(rest, [b'I', b'S', b'A', c, ..] if usable_delimiter(*c))
}

fn valid_segment_id(id: &str) -> bool {
    (2..=3).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// An iterator over the segments of decoded text. Problems found on the way (bad headers,
/// skipped bytes, odd segment ids) are collected in [`Tokenizer::problems`].
pub struct Tokenizer<'a> {
    text: &'a str,
    pos: usize,
    line: u32,
    index: usize,
    delimiters: Option<Delimiters>,
    done: bool,
    /// Whether the current delimiters were guessed for a fragment (no ISA).
    pub fragment: bool,
    /// The first [`crate::problem::MAX_PROBLEMS`] problems found.
    pub problems: Vec<Problem>,
    /// Problems found beyond those kept.
    pub dropped: usize,
}

impl<'a> Tokenizer<'a> {
    pub fn new(text: &'a str) -> Tokenizer<'a> {
        Tokenizer {
            text,
            pos: 0,
            line: 1,
            index: 0,
            delimiters: None,
            done: false,
            fragment: false,
            problems: Vec::new(),
            dropped: 0,
        }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn advance(&mut self, n: usize) {
        let consumed = self.text.get(self.pos..self.pos + n).unwrap_or("");
        self.line = self
            .line
            .saturating_add(count_newlines(consumed.as_bytes()));
        self.pos += n;
    }

    fn skip_filler(&mut self) {
        let n = self
            .rest()
            .as_bytes()
            .iter()
            .take_while(|&&b| is_filler(b))
            .count();
        self.advance(n);
    }

    fn problem(&mut self, p: Problem) {
        let p = Problem {
            line: p.line.or(Some(self.line)),
            ..p
        };
        if self.problems.len() < crate::problem::MAX_PROBLEMS {
            self.problems.push(p);
        } else {
            self.dropped += 1;
        }
    }

    /// Skips to the next `ISA` header, if any; `false` at the end of the text.
    fn resync_to_isa(&mut self, from: usize) -> bool {
        let rest = self.text.get(self.pos..).unwrap_or("");
        let found = rest
            .match_indices("ISA")
            .map(|(i, _)| i)
            .find(|&i| i >= from && starts_isa(rest.as_bytes().get(i..).unwrap_or_default()));
        match found {
            Some(i) => {
                if rest
                    .get(..i)
                    .is_some_and(|s| s.bytes().any(|b| !is_filler(b)))
                {
                    self.problem(Problem::warning(
                        ProblemKind::Skipped,
                        format!("{i} bytes before the next ISA header were skipped"),
                    ));
                }
                self.advance(i);
                true
            }
            None => false,
        }
    }

    /// Guesses delimiters for text that does not start with ISA: a fragment starting with a
    /// segment id (`ST*835*...`).
    fn guess_fragment(&mut self) -> Option<Delimiters> {
        let rest = self.rest().as_bytes();
        let id_len = rest
            .iter()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            .count();
        let sep = *rest.get(id_len)?;
        if !(2..=3).contains(&id_len) || !usable_delimiter(sep) || is_filler(sep) {
            return None;
        }
        let segment = if rest.contains(&b'~') && sep != b'~' {
            b'~'
        } else {
            b'\n'
        };
        let component = if sep == b':' { b'>' } else { b':' };
        Some(Delimiters {
            element: sep,
            component,
            repetition: None,
            segment,
        })
    }

    fn emit(&mut self, text: &'a str, delimiters: Delimiters) -> Segment<'a> {
        // A byte loop: `str::split` verifies each match with a memcmp call, which showed up as
        // a tenth of a full 835 read.
        let id_len = text
            .as_bytes()
            .iter()
            .position(|&b| b == delimiters.element)
            .unwrap_or(text.len());
        let id = text.get(..id_len).unwrap_or("");
        let seg = Segment {
            id,
            key: key(id.as_bytes()),
            text,
            index: self.index,
            line: self.line,
            delimiters,
        };
        if !valid_segment_id(id) {
            let shown: String = id.chars().take(12).collect();
            self.problem(
                Problem::error(
                    ProblemKind::SegmentId,
                    format!("segment id {shown:?} is not 2-3 upper-case letters or digits"),
                )
                .at(&seg),
            );
        }
        self.index += 1;
        seg
    }
}

fn count_newlines(b: &[u8]) -> u32 {
    // Written as a plain count so the compiler vectorizes it.
    let n = b.iter().filter(|&&c| c == b'\n').count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<'a> Iterator for Tokenizer<'a> {
    type Item = Segment<'a>;

    fn next(&mut self) -> Option<Segment<'a>> {
        loop {
            if self.done {
                return None;
            }
            self.skip_filler();
            let rest = self.rest();
            if rest.is_empty() {
                self.done = true;
                return None;
            }
            if starts_isa(rest.as_bytes()) {
                match parse_isa(rest) {
                    Ok(h) => {
                        self.delimiters = Some(h.delimiters);
                        self.fragment = false;
                        let text = rest.get(..h.len).unwrap_or("");
                        if h.len + 1 != 106 {
                            self.problem(Problem::warning(
                                ProblemKind::InterchangeHeader,
                                format!(
                                    "the ISA segment is {} characters, the standard fixes it at 106; delimiters were found by counting separators",
                                    h.len + 1
                                ),
                            ));
                        }
                        let seg = self.emit(text, h.delimiters);
                        self.advance(h.len + 1);
                        return Some(seg);
                    }
                    Err(why) => {
                        self.problem(Problem::error(ProblemKind::InterchangeHeader, why));
                        // Without delimiters nothing until the next ISA can be read.
                        self.delimiters = None;
                        if !self.resync_to_isa(3) {
                            self.done = true;
                        }
                        continue;
                    }
                }
            }
            let delimiters = match self.delimiters {
                Some(d) => d,
                None => match self.guess_fragment() {
                    Some(d) => {
                        self.delimiters = Some(d);
                        self.fragment = true;
                        d
                    }
                    None => {
                        if !self.resync_to_isa(0) {
                            let what = if self.index == 0 {
                                "no ISA header and no ST..SE fragment was found; this is not X12"
                            } else {
                                "text after the last segment is not X12 and was ignored"
                            };
                            self.problem(Problem::error(ProblemKind::NoHeader, what));
                            self.done = true;
                        }
                        continue;
                    }
                },
            };
            // One pass finds the terminator and counts the line breaks inside the segment.
            let term = delimiters.segment;
            let mut newlines = 0u32;
            let mut end = None;
            for (i, &b) in rest.as_bytes().iter().enumerate() {
                if b == term {
                    end = Some(i);
                    break;
                }
                newlines += u32::from(b == b'\n');
            }
            let (len, terminated) = match end {
                Some(i) => (i, true),
                None => (rest.len(), false),
            };
            let raw = rest.get(..len).unwrap_or("");
            // A newline terminator with CRLF line ends leaves a CR; pretty printers leave
            // trailing blanks. Neither is data.
            let text = raw.trim_end_matches(['\r', '\n']);
            let seg = self.emit(text, delimiters);
            if !terminated {
                self.problem(
                    Problem::warning(
                        ProblemKind::MissingTerminator,
                        format!("the last segment ({}) has no terminator", seg.id),
                    )
                    .at(&seg),
                );
            }
            self.pos += len + usize::from(terminated);
            self.line = self
                .line
                .saturating_add(newlines)
                .saturating_add(u32::from(terminated && term == b'\n'));
            return Some(seg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISA: &str = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*P*:~";

    fn segs(text: &str) -> (Vec<(String, usize, u32)>, Vec<Problem>) {
        let mut t = Tokenizer::new(text);
        let v = t
            .by_ref()
            .map(|s| (s.text.to_owned(), s.index, s.line))
            .collect();
        (v, t.problems)
    }

    #[test]
    fn isa_gives_delimiters() {
        assert_eq!(ISA.len(), 106);
        let h = parse_isa(ISA).unwrap();
        assert_eq!(h.delimiters, Delimiters::DEFAULT);
        assert_eq!(h.len, 105);
    }

    #[test]
    fn repetition_separator_only_from_00501() {
        let old = ISA.replace("*^*00501*", "*U*00401*");
        assert_eq!(parse_isa(&old).unwrap().delimiters.repetition, None);
        // A 5010 file that still carries U (imsweb 837s) has no repetition separator.
        let u5010 = ISA.replace("*^*00501*", "*U*00501*");
        assert_eq!(parse_isa(&u5010).unwrap().delimiters.repetition, None);
        let bang = ISA.replace("*^*00501*", "*!*00501*");
        assert_eq!(parse_isa(&bang).unwrap().delimiters.repetition, Some(b'!'));
    }

    #[test]
    fn walks_separators_instead_of_trusting_offsets() {
        // Sender id padded to 14 instead of 15 characters: ISA16 is not at offset 104.
        let short = ISA.replace("SENDER         ", "SENDER        ");
        let (v, p) = segs(&format!("{short}GS*HP~"));
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].0, "GS*HP");
        assert!(p.iter().any(|p| p.kind == ProblemKind::InterchangeHeader));
    }

    #[test]
    fn odd_delimiters_and_layouts() {
        let pipes = ISA.replace('*', "|").replace(":~", "^\n");
        let text = format!("\u{FEFF}{pipes}GS|HP|A^B\nST|835|1\n");
        let mut problems = vec![];
        let text = decode(text.as_bytes(), &mut problems);
        assert!(problems.is_empty());
        let mut t = Tokenizer::new(&text);
        let v: Vec<_> = t.by_ref().collect();
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].fields::<2>(), ["HP", "A^B"]);
        assert_eq!(v[1].composite::<2>(v[1].element(2)), ["A", "B"]);
        assert_eq!(v[2].line, 3);
        assert!(t.problems.is_empty(), "{:?}", t.problems);
    }

    #[test]
    fn crlf_indentation_and_lines() {
        let text = format!("{ISA}\r\n  GS*HP*X~\r\n\r\n\tST*835*1~\r\nSE*2*1~");
        let (v, p) = segs(&text);
        let lines: Vec<u32> = v.iter().map(|s| s.2).collect();
        assert_eq!(lines, [1, 2, 4, 5]);
        assert_eq!(v[2].0, "ST*835*1");
        assert!(p.is_empty());
    }

    #[test]
    fn newline_terminator_with_crlf() {
        let isa = ISA.replace(":~", ":\r\n");
        let text = format!("{isa}GS*HP*X\r\nST*835*1\r\n");
        let (v, _) = segs(&text);
        assert_eq!(
            v.iter().map(|s| s.0.as_str()).collect::<Vec<_>>()[1..],
            ["GS*HP*X", "ST*835*1"]
        );
        assert_eq!(v[2].2, 3);
    }

    #[test]
    fn many_interchanges_with_their_own_delimiters() {
        let second = ISA.replace('*', "|").replace(":~", ">!");
        let text = format!("{ISA}IEA*0*1~\n{second}GS|HP|A>B!IEA|0|1!");
        let mut t = Tokenizer::new(&text);
        let v: Vec<_> = t.by_ref().collect();
        assert_eq!(v.len(), 5);
        assert_eq!(v[3].delimiters.segment, b'!');
        assert_eq!(v[3].composite::<2>(v[3].element(2)), ["A", "B"]);
        assert_eq!(v[4].index, 4);
    }

    #[test]
    fn fragment_mode() {
        let (v, _) = segs("ST*835*1234~BPR*I*1~SE*3*1234~");
        assert_eq!(v.len(), 3);
        let (v, _) = segs("ST*835*1\nBPR*I*1\nSE*3*1\n");
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].0, "BPR*I*1");
    }

    #[test]
    fn garbage_is_a_problem_not_a_panic() {
        for input in [
            "",
            "   ",
            "hello world",
            "ISA",
            "ISA*",
            "ISA*00",
            "ISA1",
            "~~~~",
            "\u{0}\u{0}",
            "ISA*00*a*b*c*d*e*f*g*h*i*j*k*l*m*n*",
            "ISA*00*a*b*c*d*e*f*g*h*i*j*k*l*m*n*:",
            "ISA*00*a*b*c*d*e*f*g*h*i*j*k*l*m*n*:A",
            "ISA*00*a*b*c*d*e*f*g*h*i*j*k*l*m*n***",
        ] {
            let (_, _) = segs(input);
        }
        let (v, p) = segs("hello world");
        assert!(v.is_empty());
        assert!(p.iter().any(|p| p.kind == ProblemKind::NoHeader));
        let (v, p) = segs("junk ISA is here");
        assert!(v.is_empty());
        assert!(p.iter().any(|p| p.kind == ProblemKind::InterchangeHeader));
    }

    #[test]
    fn leading_junk_before_isa_is_skipped() {
        let (v, p) = segs(&format!("%%junk%%{ISA}GS*HP~"));
        assert_eq!(v.len(), 2);
        assert!(p.iter().any(|p| p.kind == ProblemKind::Skipped));
    }

    #[test]
    fn missing_terminator_at_end() {
        let (v, p) = segs(&format!("{ISA}IEA*1*000000001"));
        assert_eq!(v[1].0, "IEA*1*000000001");
        assert!(p.iter().any(|p| p.kind == ProblemKind::MissingTerminator));
    }

    #[test]
    fn utf16_and_bad_utf8() {
        let text = format!("{ISA}GS*HP~");
        let mut le = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
        }
        let mut problems = vec![];
        assert_eq!(decode(&le, &mut problems), text);
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(decode(&be, &mut problems), text);
        let mut bad = text.clone().into_bytes();
        bad.push(0xFF);
        assert!(decode(&bad, &mut problems).ends_with('\u{FFFD}'));
        assert_eq!(problems.len(), 3);
    }

    #[test]
    fn element_access() {
        let mut t = Tokenizer::new("ST*835*1~CLP*A*1**3~");
        let v: Vec<_> = t.by_ref().collect();
        let clp = v[1];
        assert_eq!(clp.id, "CLP");
        assert_eq!(clp.element(0), "CLP");
        assert_eq!(clp.element(1), "A");
        assert_eq!(clp.element(3), "");
        assert_eq!(clp.element(9), "");
        assert_eq!(clp.element_count(), 4);
        assert_eq!(clp.fields::<6>(), ["A", "1", "", "3", "", ""]);
    }
}
