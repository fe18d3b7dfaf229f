//! Element values: amounts, decimals and dates, parsed exactly.
//!
//! X12 amounts (data element 782) and quantities (380) are type `R`: an optional leading `-`,
//! digits, and an optional decimal point anywhere (`100`, `-12.5`, `.5`, `12.`),
//! docs/reference/x12.md §2.1. Amounts become [`Money`] cents with integer arithmetic only; a third
//! non-zero decimal place cannot be represented in cents and is an error for the caller to locate,
//! never a rounding. Trailing zeros beyond the cents (`12.500`) lose nothing and are accepted.

use std::fmt;

use arflow_domain::Money;
use chrono::NaiveDate;
use serde::{Serialize, Serializer};

use crate::text::Text;

/// Why an `R` value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberError {
    /// Not an X12 `R` decimal (letters, `+`, two points, no digit...).
    Syntax,
    /// An amount with a non-zero digit after the cents.
    TooPrecise,
    /// Larger than 64-bit cents (or 18 significant digits for a decimal).
    Overflow,
}

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NumberError::Syntax => "is not an X12 decimal number",
            NumberError::TooPrecise => "has more than 2 decimal places (cents); it is not rounded",
            NumberError::Overflow => "is too large",
        })
    }
}

/// The parts of an `R` value: sign, integer digits, fraction digits.
fn split_decimal(s: &str) -> Result<(bool, &[u8], &[u8]), NumberError> {
    let b = s.as_bytes();
    let (neg, rest) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    let (int, frac) = match rest.iter().position(|&c| c == b'.') {
        Some(p) => (
            rest.get(..p).unwrap_or_default(),
            rest.get(p + 1..).unwrap_or_default(),
        ),
        None => (rest, &[][..]),
    };
    let all_digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return Err(NumberError::Syntax);
    }
    Ok((neg, int, frac))
}

/// Parses an X12 `R` amount into cents, exactly. Surrounding spaces are tolerated.
///
/// ```
/// use arflow_x12::value::parse_amount;
/// assert_eq!(parse_amount("-12.5").map(|m| m.cents()), Ok(-1250));
/// assert!(parse_amount("1.005").is_err());
/// ```
pub fn parse_amount(s: &str) -> Result<Money, NumberError> {
    let (neg, int, frac) = split_decimal(s.trim())?;
    // Fast path: up to 16 integer digits and 2 decimals fit in i64 without overflow checks.
    if int.len() <= 16 && frac.len() <= 2 {
        let mut cents: i64 = 0;
        for &d in int {
            cents = cents * 10 + i64::from(d - b'0');
        }
        let mut f = frac.iter();
        for _ in 0..2 {
            cents = cents * 10 + f.next().map_or(0, |&d| i64::from(d - b'0'));
        }
        return Ok(Money::from_cents(if neg { -cents } else { cents }));
    }
    // i128 so that i64::MIN cents (whose magnitude is no i64) still parses.
    let mut cents: i128 = 0;
    for &d in int {
        cents = cents
            .checked_mul(10)
            .and_then(|c| c.checked_add(i128::from(d - b'0')))
            .ok_or(NumberError::Overflow)?;
    }
    let mut frac_digits = frac.iter();
    for _ in 0..2 {
        let d = frac_digits.next().map_or(0, |&d| i128::from(d - b'0'));
        cents = cents
            .checked_mul(10)
            .and_then(|c| c.checked_add(d))
            .ok_or(NumberError::Overflow)?;
    }
    if frac_digits.any(|&d| d != b'0') {
        return Err(NumberError::TooPrecise);
    }
    let signed = if neg { -cents } else { cents };
    i64::try_from(signed)
        .map(Money::from_cents)
        .map_err(|_| NumberError::Overflow)
}

/// Formats cents as an X12 `R` amount: no trailing zeros after the point and no point for whole
/// dollars (`180`, `25.5`, `-0.05`), as the X12 standard asks for `R` values.
pub fn format_amount(m: Money) -> String {
    let c = m.cents();
    let sign = if c < 0 { "-" } else { "" };
    let abs = c.unsigned_abs();
    let (dollars, cents) = (abs / 100, abs % 100);
    match cents {
        0 => format!("{sign}{dollars}"),
        c if c % 10 == 0 => format!("{sign}{dollars}.{}", c / 10),
        c => format!("{sign}{dollars}.{c:02}"),
    }
}

/// An exact decimal quantity (units, days, rates): `mantissa × 10^-scale`, normalized so that
/// `1`, `1.0` and `1.00` are equal. Serialized as its decimal string (`"1.5"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Decimal {
    mantissa: i64,
    scale: u8,
}

impl Decimal {
    pub fn from_int(n: i64) -> Decimal {
        Decimal {
            mantissa: n,
            scale: 0,
        }
    }

    /// Parses an X12 `R` value (at most 18 significant digits).
    pub fn parse(s: &str) -> Result<Decimal, NumberError> {
        let (neg, int, frac) = split_decimal(s.trim())?;
        // Trailing zeros of the fraction carry no value; dropping them normalizes.
        let frac_len = frac.iter().rposition(|&d| d != b'0').map_or(0, |p| p + 1);
        let frac = frac.get(..frac_len).unwrap_or_default();
        let scale = u8::try_from(frac.len()).map_err(|_| NumberError::Overflow)?;
        if scale > 18 {
            return Err(NumberError::Overflow);
        }
        let mut m: i128 = 0;
        for &d in int.iter().chain(frac) {
            m = m
                .checked_mul(10)
                .and_then(|c| c.checked_add(i128::from(d - b'0')))
                .ok_or(NumberError::Overflow)?;
        }
        let mantissa =
            i64::try_from(if neg { -m } else { m }).map_err(|_| NumberError::Overflow)?;
        Ok(Decimal { mantissa, scale }.normalized())
    }

    fn normalized(mut self) -> Decimal {
        while self.scale > 0 && self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.scale -= 1;
        }
        self
    }

    /// The value when it is a whole number that fits.
    pub fn to_integer(self) -> Option<i64> {
        (self.scale == 0).then_some(self.mantissa)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.mantissa);
        }
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let digits = self.mantissa.unsigned_abs().to_string();
        let scale = usize::from(self.scale);
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int}.{frac}")
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn digits_value(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u32, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

/// CCYYMMDD (data element 373) into a date; `None` when it is not a real day.
pub fn parse_date8(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 8 {
        return None;
    }
    let y = digits_value(b.get(0..4)?)?;
    let m = digits_value(b.get(4..6)?)?;
    let d = digits_value(b.get(6..8)?)?;
    NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)
}

/// YYMMDD (ISA09). X12 gives no century; years below 50 are taken as 20YY.
pub fn parse_date6(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 6 {
        return None;
    }
    let y = digits_value(b.get(0..2)?)?;
    let m = digits_value(b.get(2..4)?)?;
    let d = digits_value(b.get(4..6)?)?;
    let year = if y < 50 { 2000 + y } else { 1900 + y };
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, m, d)
}

/// A date or a `CCYYMMDD-CCYYMMDD` range, by its format qualifier (`D8` or `RD8`).
pub fn parse_period(format: &str, s: &str) -> Option<(NaiveDate, NaiveDate)> {
    match format {
        "RD8" => {
            let (a, b) = s.split_once('-')?;
            Some((parse_date8(a)?, parse_date8(b)?))
        }
        _ => parse_date8(s).map(|d| (d, d)),
    }
}

/// `CCYYMMDD`.
pub fn format_date8(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// `YYMMDD` (ISA09).
pub fn format_date6(d: NaiveDate) -> String {
    d.format("%y%m%d").to_string()
}

/// An element as an owned string, `None` when empty.
pub fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// An element as [`Text`], `None` when empty.
pub fn opt_text(s: &str) -> Option<Text> {
    (!s.is_empty()).then(|| Text::new(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cents(s: &str) -> Result<i64, NumberError> {
        parse_amount(s).map(Money::cents)
    }

    #[test]
    fn amounts_parse_exactly() {
        assert_eq!(cents("100"), Ok(10_000));
        assert_eq!(cents("-12.5"), Ok(-1_250));
        assert_eq!(cents(".5"), Ok(50));
        assert_eq!(cents("12."), Ok(1_200));
        assert_eq!(cents("0"), Ok(0));
        assert_eq!(cents("-0.01"), Ok(-1));
        assert_eq!(cents("1812.27"), Ok(181_227));
        assert_eq!(cents("12.500"), Ok(1_250));
        assert_eq!(cents(" 7 "), Ok(700));
    }

    #[test]
    fn amounts_refuse_what_cents_cannot_hold() {
        assert_eq!(cents("1.005"), Err(NumberError::TooPrecise));
        assert_eq!(cents("0.001"), Err(NumberError::TooPrecise));
        assert_eq!(cents(""), Err(NumberError::Syntax));
        assert_eq!(cents("-"), Err(NumberError::Syntax));
        assert_eq!(cents("."), Err(NumberError::Syntax));
        assert_eq!(cents("+1"), Err(NumberError::Syntax));
        assert_eq!(cents("1.2.3"), Err(NumberError::Syntax));
        assert_eq!(cents("1e5"), Err(NumberError::Syntax));
        assert_eq!(cents("--1"), Err(NumberError::Syntax));
        assert_eq!(cents("99999999999999999999"), Err(NumberError::Overflow));
    }

    #[test]
    fn amounts_format_without_trailing_zeros() {
        let f = |c| format_amount(Money::from_cents(c));
        assert_eq!(f(18_000), "180");
        assert_eq!(f(2_550), "25.5");
        assert_eq!(f(2_505), "25.05");
        assert_eq!(f(-5), "-0.05");
        assert_eq!(f(0), "0");
        assert_eq!(f(i64::MIN), "-92233720368547758.08");
    }

    #[test]
    fn decimals_normalize() {
        assert_eq!(Decimal::parse("1.00"), Decimal::parse("1"));
        assert_eq!(Decimal::parse("1.50").unwrap().to_string(), "1.5");
        assert_eq!(Decimal::parse("-.25").unwrap().to_string(), "-0.25");
        assert_eq!(Decimal::parse("0.7309").unwrap().to_string(), "0.7309");
        assert_eq!(Decimal::parse("10").unwrap().to_integer(), Some(10));
        assert_eq!(Decimal::parse("abc"), Err(NumberError::Syntax));
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date8("20100923"),
            NaiveDate::from_ymd_opt(2010, 9, 23)
        );
        assert_eq!(parse_date8("20100230"), None);
        assert_eq!(parse_date8("2010092"), None);
        assert_eq!(parse_date8("2010-9-1"), None);
        assert_eq!(parse_date6("110311"), NaiveDate::from_ymd_opt(2011, 3, 11));
        assert_eq!(parse_date6("991231"), NaiveDate::from_ymd_opt(1999, 12, 31));
        assert_eq!(
            parse_period("RD8", "20050831-20050906"),
            Some((
                NaiveDate::from_ymd_opt(2005, 8, 31).unwrap(),
                NaiveDate::from_ymd_opt(2005, 9, 6).unwrap()
            ))
        );
        let d = NaiveDate::from_ymd_opt(2024, 2, 9).unwrap();
        assert_eq!(parse_date8(&format_date8(d)), Some(d));
        assert_eq!(parse_date6(&format_date6(d)), Some(d));
    }

    proptest! {
        #[test]
        fn amount_format_round_trips(c in any::<i64>()) {
            let m = Money::from_cents(c);
            prop_assert_eq!(parse_amount(&format_amount(m)), Ok(m));
        }

        #[test]
        fn amount_parse_never_panics(s in ".{0,24}") {
            let _ = parse_amount(&s);
            let _ = Decimal::parse(&s);
        }

        #[test]
        fn decimal_display_round_trips(m in any::<i64>(), scale in 0u8..=18) {
            let s = format!("{}", Decimal { mantissa: m, scale }.normalized());
            let d = Decimal::parse(&s).unwrap();
            prop_assert_eq!(d, Decimal { mantissa: m, scale }.normalized());
        }
    }
}
