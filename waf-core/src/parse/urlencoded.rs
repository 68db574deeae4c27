//! `application/x-www-form-urlencoded`: the query string and form bodies.
//!
//! The format is split on `&`; each part is `name=value` split at the first `=` (a part without
//! `=` is a name with an empty value, and an empty part is skipped). Names and values are then
//! decoded: `+` becomes a space and `%XX` the byte it encodes. A `%` that is not followed by two
//! hexadecimal digits is kept as it is and reported, as ModSecurity's non-strict decoder does
//! (`URLENCODED_ERROR`), because applications disagree on what such a sequence means and rules
//! must see what was sent.
//!
//! ```
//! use waf_core::parse::urlencoded::parse_urlencoded;
//!
//! let parsed = parse_urlencoded(b"q=%3Cscript%3E&page=2&debug&q=x+y", 10);
//! let pairs: Vec<_> = parsed.args.iter().map(|f| (&f.name[..], &f.value[..])).collect();
//! assert_eq!(
//!     pairs,
//!     [
//!         (&b"q"[..], &b"<script>"[..]),
//!         (b"page", b"2"),
//!         (b"debug", b""),
//!         (b"q", b"x y"),
//!     ]
//! );
//! assert!(!parsed.invalid_encoding);
//! ```

use crate::transform::hex_value;
use std::borrow::Cow;

use super::{BodySink, Field};

/// Decodes a form-encoded name or value: `+` → space, `%XX` → byte.
///
/// Returns the decoded bytes (borrowed when there was nothing to decode) and whether an
/// invalid `%` sequence was seen; such a `%` is kept as it is.
///
/// ```
/// use waf_core::parse::urlencoded::url_decode_form;
///
/// let (decoded, invalid) = url_decode_form(b"a+b%2Bc%zz");
/// assert_eq!(&decoded[..], b"a b+c%zz");
/// assert!(invalid);
/// ```
pub fn url_decode_form(input: &[u8]) -> (Cow<'_, [u8]>, bool) {
    decode(input, true)
}

/// Decodes a path: `%XX` → byte, but `+` stays `+` (it means a space only in form data).
///
/// Returns the decoded bytes (borrowed when there was nothing to decode) and whether an
/// invalid `%` sequence was seen; such a `%` is kept as it is.
///
/// ```
/// use waf_core::parse::urlencoded::url_decode_path;
///
/// let (decoded, invalid) = url_decode_path(b"/a+b/%2e%2e/%");
/// assert_eq!(&decoded[..], b"/a+b/../%");
/// assert!(invalid);
/// ```
pub fn url_decode_path(input: &[u8]) -> (Cow<'_, [u8]>, bool) {
    decode(input, false)
}

fn decode(input: &[u8], plus_is_space: bool) -> (Cow<'_, [u8]>, bool) {
    let first = if plus_is_space {
        memchr::memchr2(b'%', b'+', input)
    } else {
        memchr::memchr(b'%', input)
    };
    let Some(first) = first else {
        return (Cow::Borrowed(input), false);
    };
    let (clean, rest) = input.split_at(first);
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(clean);
    let mut invalid = false;
    let mut bytes = rest.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                let rest = bytes.as_slice();
                match (
                    rest.first().copied().and_then(hex_value),
                    rest.get(1).copied().and_then(hex_value),
                ) {
                    (Some(high), Some(low)) => {
                        out.push(high << 4 | low);
                        bytes.nth(1);
                    }
                    // Only the `%` is kept literally: what follows is decoded normally, so
                    // `%%41` reads as `%A`, like ModSecurity.
                    _ => {
                        invalid = true;
                        out.push(b'%');
                    }
                }
            }
            _ => out.push(b),
        }
    }
    (Cow::Owned(out), invalid)
}

/// One `name=value` pair of a form-encoded string, decoded.
///
/// ```
/// use waf_core::parse::urlencoded::pairs;
///
/// let pair = pairs(b"a%20b=c").next().unwrap();
/// assert_eq!(&pair.name[..], b"a b");
/// assert_eq!(&pair.value[..], b"c");
/// assert!(!pair.invalid_encoding);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair<'a> {
    /// The decoded name.
    pub name: Cow<'a, [u8]>,
    /// The decoded value (empty when the part had no `=`).
    pub value: Cow<'a, [u8]>,
    /// Whether the name or the value held an invalid `%` sequence.
    pub invalid_encoding: bool,
}

/// The decoded pairs of a form-encoded string, in order, repeated names kept, empty parts
/// (`a=1&&b=2`) skipped. Nothing is limited here; see [`parse_urlencoded`] for that.
///
/// ```
/// use waf_core::parse::urlencoded::pairs;
///
/// let names: Vec<_> = pairs(b"a=1&&=2&b").map(|p| p.name.into_owned()).collect();
/// assert_eq!(names, [b"a".to_vec(), b"".to_vec(), b"b".to_vec()]);
/// ```
pub fn pairs(input: &[u8]) -> impl Iterator<Item = Pair<'_>> {
    input
        .split(|&b| b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = match memchr::memchr(b'=', part) {
                Some(eq) => (
                    part.get(..eq).unwrap_or_default(),
                    part.get(eq + 1..).unwrap_or_default(),
                ),
                None => (part, &b""[..]),
            };
            let (name, name_invalid) = url_decode_form(name);
            let (value, value_invalid) = url_decode_form(value);
            Pair {
                name,
                value,
                invalid_encoding: name_invalid || value_invalid,
            }
        })
}

/// The arguments of a form-encoded string, as [`parse_urlencoded`] returns them.
///
/// ```
/// use waf_core::parse::urlencoded::parse_urlencoded;
///
/// let parsed = parse_urlencoded(b"a=1&b=2&c=3", 2);
/// assert_eq!(parsed.args.len(), 2);
/// assert_eq!(parsed.dropped, 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UrlEncodedArgs {
    /// The decoded arguments, in order, at most the limit given.
    pub args: Vec<Field>,
    /// Whether any name or value held an invalid `%` sequence (kept as it is).
    pub invalid_encoding: bool,
    /// How many arguments were dropped beyond the limit.
    pub dropped: usize,
}

/// Decodes a whole form-encoded string (a query string or a form body), keeping at most
/// `max_args` arguments.
///
/// Pairs beyond the limit are still scanned, so that `invalid_encoding` and `dropped` describe
/// the whole input.
///
/// ```
/// use waf_core::parse::urlencoded::parse_urlencoded;
///
/// let parsed = parse_urlencoded(b"redirect_uri=https%3A%2F%2Fapp%2Fcb&x=%", 100);
/// assert_eq!(parsed.args[0].value, b"https://app/cb");
/// assert_eq!(parsed.args[1].value, b"%");
/// assert!(parsed.invalid_encoding);
/// ```
pub fn parse_urlencoded(input: &[u8], max_args: usize) -> UrlEncodedArgs {
    let mut parsed = UrlEncodedArgs::default();
    for pair in pairs(input) {
        parsed.invalid_encoding |= pair.invalid_encoding;
        if parsed.args.len() < max_args {
            parsed
                .args
                .push(Field::new(pair.name.into_owned(), pair.value.into_owned()));
        } else {
            parsed.dropped = parsed.dropped.saturating_add(1);
        }
    }
    parsed
}

/// A form body: every field through the sink, which applies the shared limits and flattens
/// JSON fields.
pub(super) fn parse_form_body(body: &[u8], sink: &mut BodySink<'_>) {
    for pair in pairs(body) {
        sink.invalid_encoding |= pair.invalid_encoding;
        sink.push_form_field(&pair.name, &pair.value);
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::test_data::unescape;

    /// Cases live in `tests/data/query_args.tsv`, one per line:
    /// `ok|invalid <TAB> input <TAB> name <TAB> value <TAB> name <TAB> value …`,
    /// with `\xHH`, `\t` and `\\` escapes so that any byte can be written.
    #[test]
    fn table_of_query_strings() {
        let table = include_str!("../../tests/data/query_args.tsv");
        let mut count = 0;
        for (number, line) in table.lines().enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let columns: Vec<Vec<u8>> = line
                .split('\t')
                .map(|c| unescape(c).unwrap_or_else(|e| panic!("line {}: {e}", number + 1)))
                .collect();
            let (flag, input, expected) = (&columns[0], &columns[1], &columns[2..]);
            assert!(
                expected.len() % 2 == 0,
                "line {}: odd number of name/value columns",
                number + 1
            );
            let parsed = parse_urlencoded(input, usize::MAX);
            let got: Vec<Vec<u8>> = parsed
                .args
                .iter()
                .flat_map(|f| [f.name.clone(), f.value.clone()])
                .collect();
            assert_eq!(got, expected, "line {}: {line}", number + 1);
            let invalid = match &flag[..] {
                b"ok" => false,
                b"invalid" => true,
                other => panic!("line {}: bad flag {other:?}", number + 1),
            };
            assert_eq!(parsed.invalid_encoding, invalid, "line {}", number + 1);
            count += 1;
        }
        assert!(count >= 20, "only {count} cases read");
    }

    #[test]
    fn decoding_borrows_when_it_can() {
        assert!(matches!(url_decode_form(b"plain").0, Cow::Borrowed(_)));
        assert!(matches!(url_decode_path(b"/a+b").0, Cow::Borrowed(_)));
        assert!(matches!(url_decode_form(b"a+b").0, Cow::Owned(_)));
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let encoded: String = all.iter().map(|b| format!("%{b:02x}")).collect();
        let (decoded, invalid) = url_decode_form(encoded.as_bytes());
        assert_eq!(&decoded[..], &all[..]);
        assert!(!invalid);
        let upper = encoded.to_uppercase();
        assert_eq!(&url_decode_path(upper.as_bytes()).0[..], &all[..]);
    }

    #[test]
    fn invalid_sequences_at_every_position() {
        for input in [&b"%"[..], b"%a", b"%g0", b"%0g", b"a%", b"a%1", b"%%"] {
            let (decoded, invalid) = url_decode_form(input);
            assert!(invalid, "{input:?}");
            assert_eq!(&decoded[..], input, "kept as is: {input:?}");
        }
    }

    #[test]
    fn limit_counts_what_is_dropped() {
        let parsed = parse_urlencoded(b"a&b&c&%zz", 1);
        assert_eq!(parsed.args, [Field::new("a", "")]);
        assert_eq!(parsed.dropped, 3);
        assert!(parsed.invalid_encoding, "dropped pairs are still checked");
        assert!(parse_urlencoded(b"a=1", 0).args.is_empty());
    }
}
