//! Shapes of billing codes and identifiers.
//!
//! These checks are about form only (is it shaped like an NPI, an ICD-10-CM code, a CPT code),
//! not about whether a code exists on the date of service or is covered; those are rule-pack
//! questions. Surrounding whitespace is ignored by the normalizers because partner exports
//! (CSV, fixed-width) pad fields; inner whitespace is always an error.

/// The ISO 7812 issuer prefix for US health NPIs. The CMS NPI check-digit spec ("Requirements
/// for Check Digit Calculation for the National Provider Identifier") computes the Luhn digit
/// as if the 9-digit base were prefixed with 80840 (equivalently: add the constant 24).
const NPI_PREFIX: &str = "80840";

/// The Luhn check digit for an NPI's first nine digits, or `None` when `base` is not exactly
/// nine ASCII digits. Source: CMS NPI check-digit spec (see [`NPI_PREFIX`]).
pub fn npi_check_digit(base: &str) -> Option<u8> {
    if base.len() != 9 || !base.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut sum = 0u32;
    // Walking right to left over the payload, the digit next to the (absent) check digit is
    // doubled, then every second one.
    for (i, b) in NPI_PREFIX.bytes().chain(base.bytes()).rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    u8::try_from((10 - sum % 10) % 10).ok()
}

/// A 10-digit NPI whose last digit is the Luhn check digit over "80840" + the first nine digits
/// (CMS NPI check-digit spec). Payers reject a bad NPI with CO-16 + N290 (rendering) or N257
/// (billing), docs/reference/billing-rules.md C4/C8, so catching it at intake saves a round trip.
pub fn npi_is_valid(npi: &str) -> bool {
    if npi.len() != 10 || !npi.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (base, check) = npi.split_at(9);
    npi_check_digit(base).is_some_and(|d| check.as_bytes()[0] == b'0' + d)
}

/// An ICD-10-CM code in the form the 837P HI segment carries it: uppercase, no dot.
///
/// Shape (CDC/CMS ICD-10-CM tabular conventions): a letter, a digit, an alphanumeric (the
/// 3-character category, e.g. `F32`, `F1A`), then up to four alphanumerics (subcategory,
/// placeholder `X`, 7th-character extension), optionally after a dot. The X12 837P HI
/// segment sends codes without the dot (005010X222A1 HI01-2 note). Every letter is accepted
/// as the first character, including U (U07.1 COVID-19, U09.9).
pub fn normalize_icd10(code: &str) -> Option<String> {
    let code = code.trim();
    let (category, rest) = code.split_at_checked(3)?;
    let c = category.as_bytes();
    if !(c[0].is_ascii_alphabetic() && c[1].is_ascii_digit() && c[2].is_ascii_alphanumeric()) {
        return None;
    }
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    if rest.len() > 4 || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let mut out = String::with_capacity(3 + rest.len());
    out.push_str(category);
    out.push_str(rest);
    out.make_ascii_uppercase();
    Some(out)
}

/// A procedure code, uppercase, or `None` when it has none of these shapes (AMA CPT code
/// structure; CMS HCPCS Level II alphanumeric file):
/// - CPT Category I: five digits (`90837`);
/// - CPT Category II (performance measures): four digits + `F` (`1040F`);
/// - CPT Category III (emerging technology): four digits + `T` (`0591T`);
/// - HCPCS Level II: a letter A–V + four digits (`H0004`, `G2012`).
pub fn normalize_procedure_code(code: &str) -> Option<String> {
    let code = code.trim().to_ascii_uppercase();
    let b = code.as_bytes();
    if b.len() != 5 {
        return None;
    }
    let ok = if b[0].is_ascii_digit() {
        b[1..4].iter().all(u8::is_ascii_digit) && matches!(b[4], b'0'..=b'9' | b'F' | b'T')
    } else {
        matches!(b[0], b'A'..=b'V') && b[1..].iter().all(u8::is_ascii_digit)
    };
    ok.then_some(code)
}

/// A procedure modifier: two alphanumerics (`95`, `93`, `HJ`, `GT`), 837P SV101-3..6 are AN 2.
pub fn modifier_is_valid(m: &str) -> bool {
    m.len() == 2 && m.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A modifier, trimmed and uppercased, or `None` when it is not two alphanumerics.
pub fn normalize_modifier(m: &str) -> Option<String> {
    let m = m.trim();
    modifier_is_valid(m).then(|| m.to_ascii_uppercase())
}

/// A CMS place-of-service code: two digits, 01–99 (CMS Place of Service Code Set; 00 is not a
/// code). Telehealth is 02 (patient not at home) or 10 (patient at home),
/// docs/reference/billing-rules.md C3.
pub fn place_of_service_is_valid(pos: &str) -> bool {
    pos.len() == 2 && pos.bytes().all(|b| b.is_ascii_digit()) && pos != "00"
}

/// Tenant, clinic and payer identifiers: 1–64 of `[A-Za-z0-9._-]`. Our own rule, not a payer
/// one: ids appear in URLs, metric-free log fields, Redis keys and X12 elements, so they may
/// hold no separators, spaces or delimiters.
pub fn identifier_is_valid(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_npis() {
        // 1234567893 is the worked example in the CMS check-digit document.
        assert!(npi_is_valid("1234567893"));
        assert_eq!(npi_check_digit("123456789"), Some(3));
        for bad in [
            "1234567890",
            "1234567894",
            "123456789",
            "12345678930",
            "123456789a",
            " 1234567893",
            "",
            "１２３４５６７８９３",
        ] {
            assert!(!npi_is_valid(bad), "{bad:?}");
        }
        assert_eq!(npi_check_digit("12345678"), None);
        assert_eq!(npi_check_digit("12345678x"), None);
    }

    #[test]
    fn npi_check_uses_the_80840_prefix() {
        // Plain Luhn over the 9 digits alone gives 1234567897; only the 80840-prefixed
        // computation gives 3.
        assert!(!npi_is_valid("1234567897"));
    }

    #[test]
    fn icd10_shapes() {
        let ok = [
            ("F32.1", "F321"),
            ("f32.1", "F321"),
            ("F321", "F321"),
            ("F32", "F32"),
            ("F32.", "F32"),
            ("F43.10", "F4310"),
            ("S06.0X1A", "S060X1A"),
            ("S060X1A", "S060X1A"),
            ("Z3A.01", "Z3A01"),
            ("U07.1", "U071"),
            (" F41.1 ", "F411"),
        ];
        for (input, want) in ok {
            assert_eq!(normalize_icd10(input).as_deref(), Some(want), "{input:?}");
        }
        let bad = [
            "",
            "F3",
            "32.1",
            "FF2.1",
            "F3.21",
            "F32..1",
            "F32.12345",
            "F3212345",
            "F32-1",
            "F32 1",
            "F32.1.",
            "É32.1",
            ".F321",
        ];
        for input in bad {
            assert_eq!(normalize_icd10(input), None, "{input:?}");
        }
    }

    #[test]
    fn procedure_code_shapes() {
        let ok = [
            ("90837", "90837"),
            ("90785", "90785"),
            ("1040F", "1040F"),
            ("1040f", "1040F"),
            ("0591T", "0591T"),
            ("H0004", "H0004"),
            ("h2019", "H2019"),
            ("G2012", "G2012"),
            ("V5008", "V5008"),
            (" 90834", "90834"),
        ];
        for (input, want) in ok {
            assert_eq!(
                normalize_procedure_code(input).as_deref(),
                Some(want),
                "{input:?}"
            );
        }
        let bad = [
            "", "9083", "908370", "9083A", "W1234", "Z1234", "H004", "H00045", "0591U", "F10400",
            "90 37", "HJ004",
        ];
        for input in bad {
            assert_eq!(normalize_procedure_code(input), None, "{input:?}");
        }
    }

    #[test]
    fn modifiers() {
        for m in ["95", "93", "HJ", "GT", "hj", "U4"] {
            assert!(modifier_is_valid(m), "{m}");
        }
        for m in ["", "9", "955", "H-", " 9", "é9"] {
            assert!(!modifier_is_valid(m), "{m:?}");
        }
        assert_eq!(normalize_modifier(" hj ").as_deref(), Some("HJ"));
        assert_eq!(normalize_modifier("h"), None);
    }

    #[test]
    fn places_of_service() {
        for p in ["01", "02", "10", "11", "53", "99"] {
            assert!(place_of_service_is_valid(p), "{p}");
        }
        for p in ["00", "1", "011", "1A", "", " 2"] {
            assert!(!place_of_service_is_valid(p), "{p:?}");
        }
    }

    #[test]
    fn identifiers() {
        for id in ["a", "clinic-01", "Payer_87726", "t.1", &"x".repeat(64)] {
            assert!(identifier_is_valid(id), "{id}");
        }
        for id in ["", "a b", "a/b", "a*b", "é", &"x".repeat(65), "a\n"] {
            assert!(!identifier_is_valid(id), "{id:?}");
        }
    }

    proptest! {
        #[test]
        fn computed_check_digit_makes_a_valid_npi(base in "[0-9]{9}") {
            let d = npi_check_digit(&base).unwrap();
            let npi = format!("{base}{d}");
            prop_assert!(npi_is_valid(&npi), "{}", npi);
        }

        #[test]
        fn changing_any_one_digit_breaks_the_npi(
            base in "[0-9]{9}",
            pos in 0usize..10,
            delta in 1u8..10,
        ) {
            let npi = format!("{base}{}", npi_check_digit(&base).unwrap());
            let mut bytes = npi.into_bytes();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(!npi_is_valid(&changed), "{}", changed);
        }

        #[test]
        fn normalize_icd10_is_idempotent(code in "[A-Za-z][0-9][A-Za-z0-9](\\.?[A-Za-z0-9]{0,4})?") {
            let once = normalize_icd10(&code);
            prop_assert!(once.is_some(), "{}", code);
            let once = once.unwrap();
            prop_assert_eq!(normalize_icd10(&once), Some(once.clone()));
            prop_assert!(!once.contains('.'));
            prop_assert_eq!(once.to_ascii_uppercase(), once);
        }

        #[test]
        fn normalize_icd10_is_idempotent_on_any_input(code in "\\PC{0,10}") {
            if let Some(once) = normalize_icd10(&code) {
                prop_assert_eq!(normalize_icd10(&once), Some(once));
            }
        }

        #[test]
        fn normalize_procedure_code_is_idempotent(code in "\\PC{0,7}") {
            if let Some(once) = normalize_procedure_code(&code) {
                prop_assert_eq!(normalize_procedure_code(&once), Some(once));
            }
        }
    }
}
