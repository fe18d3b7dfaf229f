//! [`Text`]: an immutable string that keeps up to 22 bytes inline.
//!
//! Nearly every X12 element a typed reader keeps is short: qualifiers (`6R`, `B6`), codes
//! (`90837`, `CO`, `N130`), control numbers and member ids. Allocating a `String` for each cost
//! more than tokenizing the whole file (an 835 claim holds ~50 of them), so the typed structs
//! store `Text`, which is as large as a `String` (24 bytes) and allocates only for values longer
//! than 22 bytes. It reads like a `&str` (`Deref`, `AsRef`, comparisons with `str` and
//! `String`) and serializes as a JSON string.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use serde::{Serialize, Serializer};

const INLINE: usize = 22;

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<str>),
}

/// A short-string-optimized, immutable string (see the module docs).
#[derive(Clone)]
pub struct Text(Repr);

impl Text {
    pub fn new(s: &str) -> Text {
        let b = s.as_bytes();
        match u8::try_from(b.len()) {
            Ok(len) if b.len() <= INLINE => {
                let mut buf = [0u8; INLINE];
                if let Some(dst) = buf.get_mut(..b.len()) {
                    dst.copy_from_slice(b);
                }
                Text(Repr::Inline { len, buf })
            }
            _ => Text(Repr::Heap(s.into())),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Built from a &str in `new`, so always valid; the check keeps this crate free of
            // `unsafe` and costs a few nanoseconds on 22 bytes.
            Repr::Inline { len, buf } => buf
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or(""),
            Repr::Heap(s) => s,
        }
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::new("")
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::new(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::new(&s)
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text::new(s)
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.as_str().to_owned()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.as_str().hash(h);
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn inline_and_heap_read_back() {
        for s in [
            "",
            "6R",
            "1234567890123456789012",
            "12345678901234567890123",
            "ÄÖÜ éè",
        ] {
            let t = Text::new(s);
            assert_eq!(t.as_str(), s);
            assert_eq!(t, s);
            assert_eq!(t.to_string(), s);
        }
        assert_eq!(std::mem::size_of::<Text>(), std::mem::size_of::<String>());
        assert_eq!(
            std::mem::size_of::<Option<Text>>(),
            std::mem::size_of::<String>()
        );
        assert!(matches!(
            Text::new("1234567890123456789012").0,
            Repr::Inline { .. }
        ));
        assert!(matches!(
            Text::new("12345678901234567890123").0,
            Repr::Heap(_)
        ));
    }

    #[test]
    fn compares_hashes_and_serializes_like_str() {
        use std::collections::HashSet;
        let t = Text::from("CO");
        assert_eq!(t, "CO");
        assert_eq!("CO", t);
        let owned = String::from("CO");
        assert_eq!(t, owned);
        let (a, b) = (Text::from("A"), Text::from("B"));
        assert!(a < b);
        let set: HashSet<Text> = [Text::from("A")].into_iter().collect();
        assert!(set.contains("A"));
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"CO\"");
        assert_eq!(&*t, "CO");
    }

    proptest! {
        #[test]
        fn any_string_round_trips(s in ".{0,40}") {
            let t = Text::new(&s);
            prop_assert_eq!(t.as_str(), s.as_str());
        }
    }
}
