//! `Cookie` headers, split the way ModSecurity v3 splits them.
//!
//! The Core Rule Set is tuned against ModSecurity's `REQUEST_COOKIES`, so this follows
//! `Transaction::addRequestHeader` of ModSecurity v3 rather than RFC 6265 exactly:
//!
//! - the header is split on `;` (quotes give no protection: `a="x;y"` is two cookies);
//! - trailing whitespace of the whole header is dropped, empty pieces are skipped;
//! - each piece is `name=value` split at the first `=` (no `=`: a name with an empty value);
//! - the name loses its leading whitespace, nothing else; a piece with an empty name is
//!   skipped;
//! - the value is kept exactly as sent: not trimmed, not percent-decoded, and a double-quoted
//!   value keeps its quotes.
//!
//! ```
//! use waf_core::parse::cookie::parse_cookie_header;
//!
//! let cookies = parse_cookie_header(b"x-ms-cpim-csrf=abc%3D; theme=\"dark\";;=orphan");
//! assert_eq!(cookies.len(), 2);
//! assert_eq!(cookies[0].value, b"abc%3D");
//! assert_eq!(cookies[1].value, b"\"dark\"");
//! ```

use super::{trim_end, trim_start, Field};

/// The cookies of one `Cookie` header value, in order, repeated names kept.
///
/// ```
/// use waf_core::parse::cookie::parse_cookie_header;
///
/// let cookies = parse_cookie_header(b"a=1; b; c=x=y ");
/// let pairs: Vec<_> = cookies.iter().map(|c| (&c.name[..], &c.value[..])).collect();
/// assert_eq!(pairs, [(&b"a"[..], &b"1"[..]), (b"b", b""), (b"c", b"x=y")]);
/// ```
pub fn parse_cookie_header(value: &[u8]) -> Vec<Field> {
    // Only the end of the whole header is trimmed: whitespace before a `;` inside it belongs to
    // the value before, as in ModSecurity.
    trim_end(value)
        .split(|&b| b == b';')
        .filter(|piece| !piece.is_empty())
        .filter_map(|piece| {
            let (name, value) = match memchr::memchr(b'=', piece) {
                Some(eq) => (
                    piece.get(..eq).unwrap_or_default(),
                    piece.get(eq + 1..).unwrap_or_default(),
                ),
                None => (piece, &b""[..]),
            };
            let name = trim_start(name);
            (!name.is_empty()).then(|| Field::new(name, value))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::request::Request;
    use crate::test_data::unescape;

    /// Cases live in `tests/data/cookies.tsv`: the header value, then name/value columns.
    #[test]
    fn table_of_cookie_headers() {
        let table = include_str!("../../tests/data/cookies.tsv");
        let mut count = 0;
        for (number, line) in table.lines().enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let columns: Vec<Vec<u8>> = line
                .split('\t')
                .map(|c| unescape(c).unwrap_or_else(|e| panic!("line {}: {e}", number + 1)))
                .collect();
            let (input, expected) = (&columns[0], &columns[1..]);
            let got: Vec<Vec<u8>> = parse_cookie_header(input)
                .into_iter()
                .flat_map(|f| [f.name, f.value])
                .collect();
            assert_eq!(got, expected, "line {}: {line}", number + 1);
            count += 1;
        }
        assert!(count >= 20, "only {count} cases read");
    }

    #[test]
    fn every_cookie_header_counts() {
        let request = Request::builder()
            .header("Cookie", "a=1")
            .header("X-Other", "b=2")
            .header("COOKIE", "c=3; a=4")
            .build();
        let head = super::super::parse_head(&request, &super::super::ParseLimits::default());
        let names: Vec<_> = head.cookies.iter().map(|c| c.name.clone()).collect();
        assert_eq!(names, [b"a".to_vec(), b"c".to_vec(), b"a".to_vec()]);
    }
}
