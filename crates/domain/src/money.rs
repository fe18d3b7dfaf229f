//! Money as integer cents.
//!
//! Claims, remittances and balances are summed and compared to the cent (835 balancing has no
//! tolerance: charge − adjustments must equal paid exactly, docs/design.md §7), so amounts are `i64`
//! cents and never floats. Arithmetic is checked: an overflow is a bad input to reject, never a
//! silently wrapped balance.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of US dollars in integer cents. Negative amounts are legal (reversals, refunds,
/// PLB offsets); whether a negative is acceptable is the caller's rule, see [`Money::is_negative`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_cents(cents: i64) -> Money {
        Money(cents)
    }

    pub const fn cents(self) -> i64 {
        self.0
    }

    pub const fn checked_add(self, other: Money) -> Option<Money> {
        match self.0.checked_add(other.0) {
            Some(c) => Some(Money(c)),
            None => None,
        }
    }

    pub const fn checked_sub(self, other: Money) -> Option<Money> {
        match self.0.checked_sub(other.0) {
            Some(c) => Some(Money(c)),
            None => None,
        }
    }

    /// `None` on overflow (and for `i64::MIN`, which has no positive counterpart).
    pub const fn checked_neg(self) -> Option<Money> {
        match self.0.checked_neg() {
            Some(c) => Some(Money(c)),
            None => None,
        }
    }

    /// Multiplies by a count (units, visits). `None` on overflow.
    pub const fn checked_mul(self, factor: i64) -> Option<Money> {
        match self.0.checked_mul(factor) {
            Some(c) => Some(Money(c)),
            None => None,
        }
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Checked total of many amounts; `None` as soon as a partial sum overflows.
    ///
    /// There is deliberately no `std::iter::Sum` impl: it would have to either panic or
    /// saturate, and a saturated claim total is a wrong number that still looks like money.
    pub fn sum<I: IntoIterator<Item = Money>>(amounts: I) -> Option<Money> {
        amounts
            .into_iter()
            .try_fold(Money::ZERO, |acc, m| acc.checked_add(m))
    }
}

/// Free-function form of [`Money::sum`].
pub fn sum<I: IntoIterator<Item = Money>>(amounts: I) -> Option<Money> {
    Money::sum(amounts)
}

/// `$1,234.56`; negatives as `-$5.00` (the sign before the symbol, as on statements).
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // unsigned_abs so that i64::MIN formats instead of overflowing.
        let abs = self.0.unsigned_abs();
        let dollars = abs / 100;
        let cents = abs % 100;
        let digits = dollars.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}${grouped}.{cents:02}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn displays_dollars_with_grouping() {
        let cases = [
            (0, "$0.00"),
            (5, "$0.05"),
            (99, "$0.99"),
            (100, "$1.00"),
            (123_456, "$1,234.56"),
            (100_000, "$1,000.00"),
            (99_999, "$999.99"),
            (123_456_789_012, "$1,234,567,890.12"),
            (-500, "-$5.00"),
            (-1, "-$0.01"),
            (-123_456, "-$1,234.56"),
            (i64::MAX, "$92,233,720,368,547,758.07"),
            (i64::MIN, "-$92,233,720,368,547,758.08"),
        ];
        for (cents, want) in cases {
            assert_eq!(Money::from_cents(cents).to_string(), want, "{cents}");
        }
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        let max = Money::from_cents(i64::MAX);
        assert_eq!(max.checked_add(Money::from_cents(1)), None);
        assert_eq!(
            Money::from_cents(i64::MIN).checked_sub(Money::from_cents(1)),
            None
        );
        assert_eq!(Money::from_cents(i64::MIN).checked_neg(), None);
        assert_eq!(max.checked_mul(2), None);
        assert_eq!(
            Money::from_cents(250).checked_add(Money::from_cents(-300)),
            Some(Money::from_cents(-50))
        );
        assert_eq!(
            Money::from_cents(250).checked_sub(Money::from_cents(300)),
            Some(Money::from_cents(-50))
        );
        assert_eq!(
            Money::from_cents(250).checked_mul(3),
            Some(Money::from_cents(750))
        );
    }

    #[test]
    fn sum_is_checked() {
        assert_eq!(Money::sum([]), Some(Money::ZERO));
        assert_eq!(
            sum([100, 200, -50].map(Money::from_cents)),
            Some(Money::from_cents(250))
        );
        assert_eq!(
            Money::sum([Money::from_cents(i64::MAX), Money::from_cents(1)]),
            None
        );
    }

    #[test]
    fn sign_and_zero() {
        assert!(Money::from_cents(-1).is_negative());
        assert!(!Money::ZERO.is_negative());
        assert!(Money::ZERO.is_zero());
        assert_eq!(Money::default(), Money::ZERO);
        assert!(Money::from_cents(-1) < Money::ZERO);
    }

    #[test]
    fn deserializes_from_bare_cents() {
        // Stored and sent as an integer; a wrapper (newtype or object) would break column and
        // JSON mappings. A derived non-transparent newtype rejects a bare i64, so this fails
        // without `#[serde(transparent)]`.
        use serde::de::value::{Error, I64Deserializer};
        let m = Money::deserialize(I64Deserializer::<Error>::new(-5)).unwrap();
        assert_eq!(m, Money::from_cents(-5));
    }

    proptest! {
        #[test]
        fn display_round_trips_to_cents(c in any::<i64>()) {
            let s = Money::from_cents(c).to_string();
            let neg = s.starts_with('-');
            let digits: String = s.chars().filter(char::is_ascii_digit).collect();
            let abs: u64 = digits.parse().unwrap();
            prop_assert_eq!(abs, c.unsigned_abs());
            prop_assert_eq!(neg, c < 0);
        }

        #[test]
        fn checked_add_matches_i128(a in any::<i64>(), b in any::<i64>()) {
            let wide = i128::from(a) + i128::from(b);
            let got = Money::from_cents(a).checked_add(Money::from_cents(b));
            match i64::try_from(wide) {
                Ok(c) => prop_assert_eq!(got, Some(Money::from_cents(c))),
                Err(_) => prop_assert_eq!(got, None),
            }
        }
    }
}
