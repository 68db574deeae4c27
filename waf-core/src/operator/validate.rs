//! Validation operators: `@validateByteRange`, `@validateUrlEncoding`, `@validateUtf8Encoding`.
//!
//! These three do not look for an attack pattern. They check that a value is well formed, and
//! *match* (in the ModSecurity sense: the rule fires) when it is not. Each check here returns
//! the position of the first offending byte, or `None` when the value is fine, so the caller
//! can report what it found.
//!
//! * [`ByteRanges`] is the compiled argument of `@validateByteRange`, e.g. `"32-126"` or
//!   `"9,10,13,32-126"`: the bytes a value may contain. The OWASP Core Rule Set uses it to
//!   reject NUL bytes and control characters in arguments and headers.
//! * [`find_invalid_url_encoding`] finds a `%` that does not start a `%XX` escape.
//! * [`find_invalid_utf8`] finds the first byte that does not belong to a valid UTF-8
//!   sequence, including the overlong forms and surrogates attackers use to smuggle `/` or `'`
//!   past filters.
//!
//! ```
//! use waf_core::operator::validate::{find_invalid_url_encoding, find_invalid_utf8, ByteRanges};
//!
//! let printable = ByteRanges::parse("32-126").unwrap();
//! assert_eq!(printable.first_outside(b"ok\0"), Some(2));
//! assert_eq!(find_invalid_url_encoding(b"a%41%zz"), Some(4));
//! assert_eq!(find_invalid_utf8(b"caf\xc3\xa9 \xc0\xaf"), Some(6));
//! ```

use std::fmt;
use std::str::FromStr;

/// The set of bytes allowed by a `@validateByteRange` argument.
///
/// The argument is a comma-separated list of byte values and inclusive ranges, in decimal:
/// `"1-255"`, `"9,10,13,32-126"`. Spaces around items and around the `-` are ignored. The
/// set is a 256-bit table, so a lookup costs the same whatever the list looked like.
///
/// ```
/// use waf_core::operator::validate::ByteRanges;
///
/// let ranges = ByteRanges::parse("9, 10, 13, 32-126").unwrap();
/// assert!(ranges.allows(b'\t'));
/// assert!(!ranges.allows(0x7f));
/// assert_eq!(ranges.first_outside(b"GET /\x01"), Some(5));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRanges {
    /// Bytes 0-127, bit `b` for byte `b`.
    low: u128,
    /// Bytes 128-255, bit `b - 128` for byte `b`.
    high: u128,
}

impl ByteRanges {
    /// Parses a `@validateByteRange` argument.
    ///
    /// Fails on an empty list or item, on a value that is not a decimal number from 0 to 255,
    /// and on a range whose start exceeds its end. Being strict here turns a typo in a rule
    /// into a load-time error instead of a rule that silently allows the wrong bytes.
    ///
    /// ```
    /// use waf_core::operator::validate::ByteRanges;
    ///
    /// assert!(ByteRanges::parse("1-255").is_ok());
    /// let err = ByteRanges::parse("32-300").unwrap_err();
    /// assert_eq!(err.to_string(), "invalid byte range `32-300`: 300 is not a byte value (0-255)");
    /// assert!(ByteRanges::parse("5-1").is_err());
    /// assert!(ByteRanges::parse("").is_err());
    /// ```
    pub fn parse(spec: &str) -> Result<ByteRanges, ByteRangeError> {
        if spec.trim().is_empty() {
            return Err(ByteRangeError::new(spec, Problem::Empty));
        }
        let mut ranges = ByteRanges { low: 0, high: 0 };
        for item in spec.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(ByteRangeError::new(spec, Problem::EmptyItem));
            }
            let (start, end) = match item.split_once('-') {
                Some((start, end)) => (parse_byte(spec, start)?, parse_byte(spec, end)?),
                None => {
                    let value = parse_byte(spec, item)?;
                    (value, value)
                }
            };
            if start > end {
                return Err(ByteRangeError::new(spec, Problem::Reversed(start, end)));
            }
            for b in start..=end {
                ranges.insert(b);
            }
        }
        Ok(ranges)
    }

    /// Whether byte `b` is in the set.
    ///
    /// ```
    /// use waf_core::operator::validate::ByteRanges;
    ///
    /// let ranges = ByteRanges::parse("48-57").unwrap();
    /// assert!(ranges.allows(b'7'));
    /// assert!(!ranges.allows(b'x'));
    /// ```
    pub fn allows(&self, b: u8) -> bool {
        let (word, bit) = self.slot(b);
        (word >> bit) & 1 == 1
    }

    /// The index of the first byte of `input` that is not in the set, or `None` when every
    /// byte is allowed (an empty input included).
    ///
    /// ```
    /// use waf_core::operator::validate::ByteRanges;
    ///
    /// let ranges = ByteRanges::parse("1-255").unwrap();
    /// assert_eq!(ranges.first_outside(b"abc"), None);
    /// assert_eq!(ranges.first_outside(b"a\0c"), Some(1));
    /// ```
    pub fn first_outside(&self, input: &[u8]) -> Option<usize> {
        input.iter().position(|&b| !self.allows(b))
    }

    fn insert(&mut self, b: u8) {
        let bit = 1u128 << (b % 128);
        if b < 128 {
            self.low |= bit;
        } else {
            self.high |= bit;
        }
    }

    fn slot(&self, b: u8) -> (u128, u32) {
        let word = if b < 128 { self.low } else { self.high };
        (word, u32::from(b % 128))
    }
}

impl FromStr for ByteRanges {
    type Err = ByteRangeError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        ByteRanges::parse(spec)
    }
}

/// Lists the set in the argument syntax, so a rule dump reads like the rule.
impl fmt::Debug for ByteRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut runs: Vec<(u8, u8)> = Vec::new();
        for b in (0..=255u8).filter(|&b| self.allows(b)) {
            match runs.last_mut() {
                Some((_, end)) if end.checked_add(1) == Some(b) => *end = b,
                _ => runs.push((b, b)),
            }
        }
        f.write_str("ByteRanges(\"")?;
        for (i, (start, end)) in runs.into_iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        f.write_str("\")")
    }
}

fn parse_byte(spec: &str, text: &str) -> Result<u8, ByteRangeError> {
    let text = text.trim();
    // `u16::from_str` would accept a sign and overflow on long input; only digits are valid,
    // and anything past three digits is out of range anyway.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ByteRangeError::new(
            spec,
            Problem::NotANumber(text.to_owned()),
        ));
    }
    let too_big = || ByteRangeError::new(spec, Problem::OutOfRange(text.to_owned()));
    if text.len() > 3 {
        return Err(too_big());
    }
    let value: u16 = text.parse().map_err(|_| too_big())?;
    u8::try_from(value).map_err(|_| too_big())
}

/// Why a `@validateByteRange` argument was rejected.
///
/// ```
/// use waf_core::operator::validate::ByteRanges;
///
/// let err = ByteRanges::parse("a-b").unwrap_err();
/// assert_eq!(err.to_string(), "invalid byte range `a-b`: `a` is not a decimal number");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteRangeError {
    spec: String,
    problem: Problem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Problem {
    Empty,
    EmptyItem,
    NotANumber(String),
    OutOfRange(String),
    Reversed(u8, u8),
}

impl ByteRangeError {
    fn new(spec: &str, problem: Problem) -> ByteRangeError {
        ByteRangeError {
            spec: spec.to_owned(),
            problem,
        }
    }
}

impl fmt::Display for ByteRangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid byte range `{}`: ", self.spec)?;
        match &self.problem {
            Problem::Empty => write!(f, "the list is empty"),
            Problem::EmptyItem => write!(f, "empty item between commas"),
            Problem::NotANumber(text) if text.is_empty() => write!(f, "missing number"),
            Problem::NotANumber(text) => write!(f, "`{text}` is not a decimal number"),
            Problem::OutOfRange(text) => write!(f, "{text} is not a byte value (0-255)"),
            Problem::Reversed(start, end) => {
                write!(f, "range {start}-{end} starts after it ends")
            }
        }
    }
}

impl std::error::Error for ByteRangeError {}

/// Finds the first malformed `%` escape, as ModSecurity's `@validateUrlEncoding` does.
///
/// A `%` must be followed by two hexadecimal digits (either case). The returned index is
/// that of the `%`; when fewer than two bytes follow it (index `+ 2 >= input.len()`) the
/// escape was cut off at the end of the input, otherwise it holds a non-hex digit. `+` and
/// non-ASCII bytes are not the operator's concern and are accepted.
///
/// ```
/// use waf_core::operator::validate::find_invalid_url_encoding;
///
/// assert_eq!(find_invalid_url_encoding(b"name=J%C3%BCrgen+M"), None);
/// assert_eq!(find_invalid_url_encoding(b"100%"), Some(3));
/// assert_eq!(find_invalid_url_encoding(b"%4"), Some(0));
/// assert_eq!(find_invalid_url_encoding(b"%g0"), Some(0));
/// ```
pub fn find_invalid_url_encoding(input: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(offset) = input.get(i..)?.iter().position(|&b| b == b'%') {
        let at = i + offset;
        match input.get(at + 1..at + 3) {
            Some([hi, lo]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => i = at + 3,
            _ => return Some(at),
        }
    }
    None
}

/// Finds the first byte that does not start a valid UTF-8 sequence, as ModSecurity's
/// `@validateUtf8Encoding` does.
///
/// Flagged: stray continuation bytes, sequences cut short (also at the end of the input),
/// overlong encodings (`C0 AF` for `/`), UTF-16 surrogates (`ED A0 80`), code points above
/// U+10FFFF, and the bytes `F8`-`FF` that UTF-8 never uses. The returned index is the start
/// of the bad sequence. Validity is the standard library's (RFC 3629), which covers every
/// check ModSecurity makes.
///
/// ```
/// use waf_core::operator::validate::find_invalid_utf8;
///
/// assert_eq!(find_invalid_utf8("naïve ☃ 𝄞".as_bytes()), None);
/// assert_eq!(find_invalid_utf8(b"..\xc0\xaf.."), Some(2));
/// assert_eq!(find_invalid_utf8(b"\xed\xa0\x80"), Some(0));
/// assert_eq!(find_invalid_utf8(b"ok\xe2\x98"), Some(2));
/// ```
pub fn find_invalid_utf8(input: &[u8]) -> Option<usize> {
    std::str::from_utf8(input).err().map(|e| e.valid_up_to())
}

#[cfg(test)]
mod tests {
    use super::{find_invalid_url_encoding, find_invalid_utf8, ByteRanges};
    use crate::test_data::unescape;
    use proptest::prelude::*;

    const BYTE_RANGES: &str = include_str!("../../tests/data/byte_ranges.tsv");
    const URL_ENCODING: &str = include_str!("../../tests/data/url_encoding.tsv");
    const UTF8: &str = include_str!("../../tests/data/utf8.tsv");

    /// The data rows of a file: (location for messages, tab-separated columns).
    fn rows<'a>(file: &'a str, text: &'a str) -> impl Iterator<Item = (String, Vec<&'a str>)> {
        text.lines().enumerate().filter_map(move |(index, line)| {
            if line.trim().is_empty() || line.starts_with('#') {
                return None;
            }
            Some((
                format!("tests/data/{file}:{}", index + 1),
                line.split('\t').collect(),
            ))
        })
    }

    fn index_text(index: Option<usize>) -> String {
        index.map_or_else(|| "none".to_owned(), |i| i.to_string())
    }

    fn report(failures: &[String]) {
        assert!(
            failures.is_empty(),
            "{} failing rows:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn byte_range_table() {
        let mut failures = Vec::new();
        for (at, columns) in rows("byte_ranges.tsv", BYTE_RANGES) {
            match columns.as_slice() {
                ["parse", spec, want] => {
                    let got = match ByteRanges::parse(spec) {
                        Ok(ranges) => format!("{ranges:?}"),
                        Err(e) => format!("error: {e}"),
                    };
                    let ok = match want.strip_prefix("error: ") {
                        Some(message) => got.starts_with("error: ") && got.contains(message),
                        None => got == format!("ByteRanges(\"{want}\")"),
                    };
                    if !ok {
                        failures.push(format!("{at}: parse {spec:?}: expected {want}, got {got}"));
                    }
                }
                ["scan", spec, input, want] => {
                    let (ranges, bytes) = match (ByteRanges::parse(spec), unescape(input)) {
                        (Ok(ranges), Ok(bytes)) => (ranges, bytes),
                        (Err(e), _) => {
                            failures.push(format!("{at}: {e}"));
                            continue;
                        }
                        (_, Err(e)) => {
                            failures.push(format!("{at}: {e}"));
                            continue;
                        }
                    };
                    let got = index_text(ranges.first_outside(&bytes));
                    if got != *want {
                        failures.push(format!("{at}: scan `{input}`: expected {want}, got {got}"));
                    }
                }
                _ => failures.push(format!(
                    "{at}: expected `parse SPEC RESULT` or `scan SPEC INPUT INDEX`"
                )),
            }
        }
        report(&failures);
    }

    fn index_table(file: &str, text: &str, check: fn(&[u8]) -> Option<usize>) {
        let mut failures = Vec::new();
        for (at, columns) in rows(file, text) {
            let [input, want] = columns.as_slice() else {
                failures.push(format!("{at}: expected INPUT<TAB>INDEX"));
                continue;
            };
            match unescape(input) {
                Ok(bytes) => {
                    let got = index_text(check(&bytes));
                    if got != *want {
                        failures.push(format!("{at}: `{input}`: expected {want}, got {got}"));
                    }
                }
                Err(e) => failures.push(format!("{at}: {e}")),
            }
        }
        report(&failures);
    }

    #[test]
    fn url_encoding_table() {
        index_table("url_encoding.tsv", URL_ENCODING, find_invalid_url_encoding);
    }

    #[test]
    fn utf8_table() {
        index_table("utf8.tsv", UTF8, find_invalid_utf8);
    }

    #[test]
    fn every_byte_round_trips_through_a_single_value() {
        for b in 0..=255u8 {
            let ranges = ByteRanges::parse(&b.to_string()).expect("a byte value parses");
            let allowed: Vec<u8> = (0..=255u8).filter(|&x| ranges.allows(x)).collect();
            assert_eq!(allowed, [b]);
        }
    }

    proptest! {
        #[test]
        fn checks_do_not_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            let ranges = ByteRanges::parse("1-255").expect("valid spec");
            if let Some(i) = ranges.first_outside(&input) {
                prop_assert_eq!(input.get(i), Some(&0));
            }
            if let Some(i) = find_invalid_url_encoding(&input) {
                prop_assert_eq!(input.get(i), Some(&b'%'));
            }
            if let Some(i) = find_invalid_utf8(&input) {
                prop_assert!(i < input.len());
            }
        }

        #[test]
        fn parse_does_not_panic(spec in "[0-9 ,-]{0,24}|.{0,24}") {
            let _ = ByteRanges::parse(&spec);
        }

        #[test]
        fn url_check_agrees_with_a_decoder(input in "([a-z%+]|%[0-9a-fA-F]{2}|%[g-z])*") {
            // Strict decoding succeeds exactly when the operator finds nothing.
            let mut bytes = input.as_bytes();
            let mut clean = true;
            while let Some((&b, rest)) = bytes.split_first() {
                if b == b'%' {
                    match rest {
                        [h, l, tail @ ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => bytes = tail,
                        _ => { clean = false; break; }
                    }
                } else {
                    bytes = rest;
                }
            }
            prop_assert_eq!(find_invalid_url_encoding(input.as_bytes()).is_none(), clean);
        }
    }
}
