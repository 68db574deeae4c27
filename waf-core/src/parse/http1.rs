//! A lenient parser for raw HTTP/1.x requests, for tools and test corpora.
//!
//! The proxy never uses this: it receives requests already parsed by its HTTP server. This
//! parser serves `waf explain`, which takes a request pasted as text, and the replay of the
//! OWASP Core Rule Set regression corpus, whose requests are often malformed on purpose — a
//! missing protocol, odd header names, bare LF line endings — because the rules under test are
//! the ones that detect exactly that.
//!
//! It is hand-written rather than built on `httparse` for that reason: `httparse` (rightly, for a
//! server) rejects such requests, while a WAF must still see them as data and let the rules
//! judge. So this parser accepts almost everything and only refuses what has no reading at all:
//! an empty input, a header line without a colon, a fold with no header to continue, or a chunk
//! size that is not hexadecimal.
//!
//! - Request line: `METHOD SP target SP protocol`. Runs of spaces and tabs separate the parts;
//!   spaces inside the target are kept (`GET /a b HTTP/1.1` has the target `/a b`). The last
//!   word is the protocol when there are three or more; with two words there is no protocol
//!   (HTTP/0.9 style) and the protocol is empty; a lone method has an empty target too.
//! - Lines end with CRLF or a bare LF; blank lines before the request line are skipped.
//! - Headers: `name: value`, the name kept exactly as sent (even with spaces or odd bytes), the
//!   value without surrounding spaces and tabs, the space after the colon optional, duplicates
//!   and order kept. A line starting with a space or tab continues the previous header
//!   (obsolete folding) and is joined to it with one space. The headers end at a blank line or
//!   at the end of the input.
//! - Body: with `Transfer-Encoding` ending in `chunked`, the chunks are decoded (extensions and
//!   trailers ignored, a missing last chunk or a short chunk tolerated); otherwise with a valid
//!   `Content-Length`, that many bytes or what there is; otherwise everything after the blank
//!   line.
//!
//! ```
//! use waf_core::parse::http1::parse_request;
//!
//! let raw = b"POST /signin?p=B2C_1_susi HTTP/1.1\r\n\
//!             Host: login.contoso.com\r\n\
//!             Content-Type: application/x-www-form-urlencoded\r\n\
//!             Content-Length: 7\r\n\
//!             \r\n\
//!             a=1&b=2";
//! let request = parse_request(raw).unwrap();
//! assert_eq!(request.method(), b"POST");
//! assert_eq!(request.uri(), b"/signin?p=B2C_1_susi");
//! assert_eq!(request.protocol(), b"HTTP/1.1");
//! assert_eq!(request.headers().get("host"), Some(&b"login.contoso.com"[..]));
//! assert_eq!(request.body(), b"a=1&b=2");
//! ```

use std::fmt;

use crate::request::Request;

/// Why a raw request could not be read at all.
///
/// Only this crate creates one; callers look at [`kind`](Http1Error::kind) or print it.
///
/// ```
/// use waf_core::parse::http1::{parse_request, Http1ErrorKind};
///
/// let error = parse_request(b"GET / HTTP/1.1\r\nno colon\r\n\r\n").unwrap_err();
/// assert_eq!(error.kind(), Http1ErrorKind::MissingColon);
/// assert_eq!(error.to_string(), "malformed HTTP/1 request: line 2 is not a header (no colon): \"no colon\"");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Http1Error {
    kind: Http1ErrorKind,
    detail: String,
}

/// The kinds of [`Http1Error`].
///
/// ```
/// use waf_core::parse::http1::{parse_request, Http1ErrorKind};
///
/// assert_eq!(parse_request(b"\r\n").unwrap_err().kind(), Http1ErrorKind::Empty);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Http1ErrorKind {
    /// Nothing but blank lines or whitespace: there is no request line.
    Empty,
    /// A header line without a colon.
    MissingColon,
    /// A folded line (starting with a space or tab) before any header.
    InvalidFolding,
    /// A chunk size line of a chunked body that is not a hexadecimal number, or one too large.
    InvalidChunkSize,
}

impl Http1Error {
    pub(crate) fn new(kind: Http1ErrorKind, detail: impl Into<String>) -> Http1Error {
        Http1Error {
            kind,
            detail: detail.into(),
        }
    }

    /// What went wrong.
    ///
    /// ```
    /// use waf_core::parse::http1::{parse_request, Http1ErrorKind};
    ///
    /// let error = parse_request(b"GET / HTTP/1.1\r\n folded\r\n\r\n").unwrap_err();
    /// assert_eq!(error.kind(), Http1ErrorKind::InvalidFolding);
    /// ```
    pub fn kind(&self) -> Http1ErrorKind {
        self.kind
    }
}

impl fmt::Display for Http1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed HTTP/1 request: {}", self.detail)
    }
}

impl std::error::Error for Http1Error {}

/// Parses one request from raw bytes, as leniently as it can be read (see the
/// [module docs](self)).
///
/// ```
/// use waf_core::parse::http1::parse_request;
///
/// let raw = b"POST  /upload  HTTP/1.1\n\
///             Transfer-Encoding: chunked\n\
///             X-Odd Name:value\n\
///             \n\
///             5;ext=1\nhello\n0\nTrailer: x\n\n";
/// let request = parse_request(raw).unwrap();
/// assert_eq!(request.uri(), b"/upload");
/// assert_eq!(request.headers().get("X-Odd Name"), Some(&b"value"[..]));
/// assert_eq!(request.body(), b"hello");
///
/// let request = parse_request(b"GET /index.html\r\n").unwrap();
/// assert_eq!(request.protocol(), b"");
/// ```
pub fn parse_request(raw: &[u8]) -> Result<Request, Http1Error> {
    let start = raw
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(raw.len());
    let mut lines = Lines {
        rest: raw.get(start..).unwrap_or_default(),
        number: 0,
    };
    let Some(request_line) = lines.next_line() else {
        return Err(Http1Error::new(Http1ErrorKind::Empty, "no request line"));
    };
    let (method, target, protocol) = split_request_line(request_line);
    if method.is_empty() {
        return Err(Http1Error::new(
            Http1ErrorKind::Empty,
            "the request line is blank",
        ));
    }

    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    while let Some(line) = lines.next_line() {
        if line.is_empty() {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            let Some((_, value)) = headers.last_mut() else {
                return Err(Http1Error::new(
                    Http1ErrorKind::InvalidFolding,
                    format!(
                        "line {} continues a header, but no header came before it",
                        lines.number
                    ),
                ));
            };
            value.push(b' ');
            value.extend_from_slice(trim_ows(line));
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(Http1Error::new(
                Http1ErrorKind::MissingColon,
                format!(
                    "line {} is not a header (no colon): {:?}",
                    lines.number,
                    String::from_utf8_lossy(line.get(..80).unwrap_or(line))
                ),
            ));
        };
        let name = line.get(..colon).unwrap_or_default();
        let value = trim_ows(line.get(colon + 1..).unwrap_or_default());
        headers.push((name.to_vec(), value.to_vec()));
    }

    let rest = lines.rest;
    let body = if is_chunked(&headers) {
        decode_chunked(rest)?
    } else {
        match content_length(&headers) {
            Some(length) => rest.get(..length).unwrap_or(rest).to_vec(),
            None => rest.to_vec(),
        }
    };

    let mut builder = Request::builder()
        .method(method)
        .uri(target)
        .protocol(protocol);
    for (name, value) in &headers {
        builder = builder.header(name, value);
    }
    Ok(builder.body(body).build())
}

struct Lines<'a> {
    rest: &'a [u8],
    number: usize,
}

impl<'a> Lines<'a> {
    /// The next line without its CRLF or LF; `None` at the end of the input.
    fn next_line(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        self.number += 1;
        let (line, rest) = match memchr::memchr(b'\n', self.rest) {
            Some(nl) => (
                self.rest.get(..nl).unwrap_or_default(),
                self.rest.get(nl + 1..).unwrap_or_default(),
            ),
            None => (self.rest, &b""[..]),
        };
        self.rest = rest;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

fn split_request_line(line: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    // Word spans, so that the target can be everything between the method and the protocol.
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, b) in line.iter().enumerate() {
        match (is_space(b), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                words.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, line.len()));
    }
    let word = |&(s, e): &(usize, usize)| line.get(s..e).unwrap_or_default();
    match words.as_slice() {
        [] => (b"", b"", b""),
        [method] => (word(method), b"", b""),
        [method, target] => (word(method), word(target), b""),
        [method, first, middle @ .., last] => {
            let end = middle.last().map_or(first.1, |word| word.1);
            let target = line.get(first.0..end).unwrap_or_default();
            (word(method), target, word(last))
        }
    }
}

fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Chunked when the last coding of the last `Transfer-Encoding` is `chunked` (RFC 9112 §6.3):
/// only then does chunked framing apply.
fn is_chunked(headers: &[(Vec<u8>, Vec<u8>)]) -> bool {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"transfer-encoding"))
        .filter_map(|(_, value)| {
            value
                .split(|&b| b == b',')
                .map(trim_ows)
                .rfind(|c| !c.is_empty())
        })
        .next_back()
        .is_some_and(|coding| coding.eq_ignore_ascii_case(b"chunked"))
}

/// The first `Content-Length` when it is a plain decimal number; `None` otherwise, and the
/// body is then everything there is.
fn content_length(headers: &[(Vec<u8>, Vec<u8>)]) -> Option<usize> {
    let (_, value) = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(b"content-length"))?;
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Too many digits for usize: more than any input can hold, so the whole rest.
    std::str::from_utf8(value)
        .ok()?
        .parse::<usize>()
        .ok()
        .or(Some(usize::MAX))
}

fn decode_chunked(mut rest: &[u8]) -> Result<Vec<u8>, Http1Error> {
    let mut body = Vec::new();
    let mut lines = Lines { rest, number: 0 };
    loop {
        let Some(line) = lines.next_line() else {
            // No last chunk: the data so far is the body.
            return Ok(body);
        };
        let size_text = trim_ows(line.split(|&b| b == b';').next().unwrap_or_default());
        if size_text.is_empty() {
            // Stray blank lines between chunks are skipped.
            continue;
        }
        let size = parse_hex(size_text).ok_or_else(|| {
            Http1Error::new(
                Http1ErrorKind::InvalidChunkSize,
                format!(
                    "invalid chunk size {:?}",
                    String::from_utf8_lossy(size_text.get(..40).unwrap_or(size_text))
                ),
            )
        })?;
        if size == 0 {
            return Ok(body);
        }
        rest = lines.rest;
        let data = rest.get(..size).unwrap_or(rest);
        body.extend_from_slice(data);
        rest = rest.get(data.len()..).unwrap_or_default();
        rest = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
            .unwrap_or(rest);
        lines.rest = rest;
    }
}

fn parse_hex(text: &[u8]) -> Option<usize> {
    text.iter().try_fold(0usize, |acc, &b| {
        let digit = char::from(b).to_digit(16)?;
        acc.checked_mul(16)?
            .checked_add(usize::try_from(digit).ok()?)
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(request: &Request) -> Vec<(String, String)> {
        request
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn request_lines() {
        // (raw request line, method, target, protocol)
        let cases: &[(&str, &str, &str, &str)] = &[
            ("GET / HTTP/1.1", "GET", "/", "HTTP/1.1"),
            ("GET  /a?b=c   HTTP/1.0  ", "GET", "/a?b=c", "HTTP/1.0"),
            ("GET\t/\tHTTP/1.1", "GET", "/", "HTTP/1.1"),
            ("GET /a b\tc HTTP/1.1", "GET", "/a b\tc", "HTTP/1.1"),
            ("GET /index.html", "GET", "/index.html", ""),
            ("GET", "GET", "", ""),
            ("  GET / HTTP/1.1", "GET", "/", "HTTP/1.1"),
            ("get / JUNK/9", "get", "/", "JUNK/9"),
            ("OPTIONS * HTTP/1.1", "OPTIONS", "*", "HTTP/1.1"),
            (
                "CONNECT login.contoso.com:443 HTTP/1.1",
                "CONNECT",
                "login.contoso.com:443",
                "HTTP/1.1",
            ),
            ("GET http://x/y HTTP/1.1", "GET", "http://x/y", "HTTP/1.1"),
        ];
        for &(line, method, target, protocol) in cases {
            let request = parse_request(format!("{line}\r\n\r\n").as_bytes()).unwrap();
            assert_eq!(request.method(), method.as_bytes(), "{line:?}");
            assert_eq!(request.uri(), target.as_bytes(), "{line:?}");
            assert_eq!(request.protocol(), protocol.as_bytes(), "{line:?}");
        }
    }

    #[test]
    fn headers_are_kept_as_sent() {
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-A:no-space\r\nX-A:  two  \r\nWeird Name : v\r\n:empty\r\nX-Empty:\r\n\xff\xfe: \xc0\r\nX-Fold: one\r\n two\r\n\tthree\r\n\r\n";
        let request = parse_request(raw).unwrap();
        assert_eq!(
            headers(&request),
            [
                ("Host", "a"),
                ("X-A", "no-space"),
                ("X-A", "two"),
                ("Weird Name ", "v"),
                ("", "empty"),
                ("X-Empty", ""),
                ("\u{fffd}\u{fffd}", "\u{fffd}"),
                ("X-Fold", "one two three"),
            ]
            .map(|(n, v)| (n.to_string(), v.to_string()))
        );
        assert_eq!(request.headers().get(b"\xff\xfe"), Some(&b"\xc0"[..]));
        assert_eq!(request.body(), b"");
    }

    #[test]
    fn bare_lf_and_leading_blank_lines() {
        let request = parse_request(b"\r\n\nPOST /x HTTP/1.1\nContent-Length: 3\n\nabc").unwrap();
        assert_eq!(request.method(), b"POST");
        assert_eq!(headers(&request).len(), 1);
        assert_eq!(request.body(), b"abc");
    }

    #[test]
    fn no_body() {
        for raw in [
            &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\n",
            b"GET / HTTP/1.1\r\nHost: a",
            b"GET / HTTP/1.1",
            b"GET / HTTP/1.1\r\n",
        ] {
            let request = parse_request(raw).unwrap();
            assert_eq!(request.body(), b"", "{raw:?}");
        }
    }

    #[test]
    fn content_length() {
        let cases: &[(&str, &str)] = &[
            ("Content-Length: 3\r\n\r\nabcdef", "abc"),
            ("Content-Length: 10\r\n\r\nabc", "abc"),
            ("Content-Length: 0\r\n\r\nabc", ""),
            ("content-length:  2 \r\n\r\nabc", "ab"),
            ("Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc", "ab"),
            ("Content-Length: x\r\n\r\nabc", "abc"),
            ("Content-Length: -1\r\n\r\nabc", "abc"),
            ("Content-Length: 1 2\r\n\r\nabc", "abc"),
            ("Content-Length:\r\n\r\nabc", "abc"),
            (
                "Content-Length: 99999999999999999999999999\r\n\r\nabc",
                "abc",
            ),
            ("\r\nabc\r\n", "abc\r\n"),
        ];
        for &(rest, body) in cases {
            let raw = format!("POST / HTTP/1.1\r\n{rest}");
            let request = parse_request(raw.as_bytes()).unwrap();
            assert_eq!(request.body(), body.as_bytes(), "{rest:?}");
        }
    }

    #[test]
    fn chunked() {
        let cases: &[(&str, &str, &str)] = &[
            // (transfer-encoding, body on the wire, decoded)
            ("chunked", "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", "abcde"),
            (
                "Chunked",
                "3;name=val\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
                "abc",
            ),
            (
                "gzip, chunked",
                "a\r\n0123456789\r\n0\r\n\r\n",
                "0123456789",
            ),
            ("chunked", "A \r\n0123456789\r\n0\r\n", "0123456789"),
            ("chunked", "3\nabc\n0\n\n", "abc"),
            ("chunked", "3\r\nabc\r\n", "abc"),
            ("chunked", "3\r\nabc", "abc"),
            ("chunked", "5\r\nab", "ab"),
            ("chunked", "3\r\nabc\r\n\r\n2\r\nde\r\n0\r\n", "abcde"),
            ("chunked", "3\r\na\nb\r\n0\r\n\r\n", "a\nb"),
            ("chunked", "2\r\na\nb\r\n0\r\n\r\n", "a\n0\r\n\r\n"),
            ("chunked", "", ""),
            ("chunked", "0\r\n\r\nignored", ""),
            (
                "chunked, gzip",
                "3\r\nabc\r\n0\r\n\r\n",
                "3\r\nabc\r\n0\r\n\r\n",
            ),
            ("identity", "3\r\nabc", "3\r\nabc"),
        ];
        for &(te, wire, decoded) in cases {
            let raw = format!("POST / HTTP/1.1\r\nTransfer-Encoding: {te}\r\n\r\n{wire}");
            let request = parse_request(raw.as_bytes()).unwrap();
            assert_eq!(request.body(), decoded.as_bytes(), "{te}: {wire:?}");
        }

        // Chunked wins over Content-Length, as RFC 9112 requires.
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(parse_request(raw).unwrap().body(), b"abc");
    }

    #[test]
    fn malformed() {
        let cases: &[(&[u8], Http1ErrorKind)] = &[
            (b"", Http1ErrorKind::Empty),
            (b"\r\n\r\n", Http1ErrorKind::Empty),
            (b"   \r\nHost: a\r\n", Http1ErrorKind::Empty),
            (
                b"GET / HTTP/1.1\r\nHost a\r\n\r\n",
                Http1ErrorKind::MissingColon,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nbroken\r\n\r\n",
                Http1ErrorKind::MissingColon,
            ),
            (
                b"GET / HTTP/1.1\r\n folded: x\r\n\r\n",
                Http1ErrorKind::InvalidFolding,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
                Http1ErrorKind::InvalidChunkSize,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
                Http1ErrorKind::InvalidChunkSize,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n",
                Http1ErrorKind::InvalidChunkSize,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n",
                Http1ErrorKind::InvalidChunkSize,
            ),
        ];
        for &(raw, kind) in cases {
            let error = parse_request(raw).unwrap_err();
            assert_eq!(error.kind(), kind, "{raw:?}");
            assert!(error.to_string().starts_with("malformed HTTP/1 request: "));
        }
    }

    #[test]
    fn error_messages() {
        let error = parse_request(b"GET / HTTP/1.1\r\nA: 1\r\nB 2\r\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "malformed HTTP/1 request: line 3 is not a header (no colon): \"B 2\""
        );
        let error =
            parse_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz;a=b\r\n")
                .unwrap_err();
        assert_eq!(
            error.to_string(),
            "malformed HTTP/1 request: invalid chunk size \"xyz\""
        );
        let long = format!("GET / HTTP/1.1\r\n{}\r\n", "x".repeat(10_000));
        assert!(
            parse_request(long.as_bytes())
                .unwrap_err()
                .to_string()
                .len()
                < 200
        );
    }

    #[test]
    fn error_is_a_std_error() {
        fn takes(_: &dyn std::error::Error) {}
        takes(&parse_request(b"").unwrap_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = parse_request(&raw);
        }

        #[test]
        fn arbitrary_requests_never_panic(
            pieces in proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(&[
                        "GET / HTTP/1.1\r\n", "POST /x", " ", "\t", "\r\n", "\n", "\r", ":",
                        "Transfer-Encoding: chunked\r\n", "Content-Length: 5\r\n",
                        "Content-Length: 99999999999999999999\r\n", "0\r\n", "ff;x\r\n",
                        "fffffffffffffffff\r\n", "3\r\n", "abc", " folded\r\n",
                    ][..]).prop_map(|s| s.as_bytes().to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..6),
                ],
                0..30,
            )
        ) {
            let raw = pieces.concat();
            if let Ok(request) = parse_request(&raw) {
                prop_assert!(request.body().len() <= raw.len());
            }
        }
    }
}
