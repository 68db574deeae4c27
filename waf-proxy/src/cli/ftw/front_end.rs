//! What the proxy's front end — Pingora's HTTP/1 server — refuses before any rule runs.
//!
//! In-process, `waf ftw` has no server in front of the engine, yet a CRS test such as
//! "`Content-Length: NotDigits` gets a 400" is about the server. Pingora parses request heads
//! with `httparse`, retries a request line whose target has bytes `httparse` refuses after
//! escaping them, answers 405 to `CONNECT`, and refuses a `Content-Length` that is not a
//! number and `Transfer-Encoding` on HTTP/1.0 or not ending in `chunked`, and drops
//! `Content-Length` when `Transfer-Encoding` is present (RFC 9112 section 6.3). This module
//! does the same, so in-process results agree with `waf ftw --target` against `waf serve`.

use std::borrow::Cow;

/// Why the front end answers before inspection: the status and a reason.
pub(super) struct Refusal {
    pub(super) status: u16,
    pub(super) reason: String,
}

/// The request as it reaches the rules, or why Pingora answers it itself.
pub(super) fn admit(raw: &[u8]) -> Result<Cow<'_, [u8]>, Refusal> {
    match refuses(raw) {
        Some(refusal) => Err(refusal),
        None if has_both_framings(raw) => Ok(Cow::Owned(without_content_length(raw))),
        None => Ok(Cow::Borrowed(raw)),
    }
}

/// `Some` when Pingora would answer the request itself; `None` when it reaches the rules.
fn refuses(raw: &[u8]) -> Option<Refusal> {
    let refuse = |status: u16, reason: &str| {
        Some(Refusal {
            status,
            reason: reason.to_string(),
        })
    };
    let mut headers = [httparse::EMPTY_HEADER; 256];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return refuse(400, "incomplete request head"),
        Err(httparse::Error::Token | httparse::Error::Version)
            if request_line_is_escapable(raw) =>
        {
            // Pingora escapes the target and parses again; the rules see the request.
            return None;
        }
        Err(e) => return refuse(400, &format!("request head refused: {e}")),
    };
    if request
        .method
        .is_some_and(|m| m.eq_ignore_ascii_case("CONNECT"))
    {
        return refuse(405, "CONNECT is not proxied");
    }
    let headers = request.headers;
    let header = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let transfer_encoding: Vec<&[u8]> = header("transfer-encoding").collect();
    if !transfer_encoding.is_empty() {
        if request.version == Some(0) {
            return refuse(400, "Transfer-Encoding on HTTP/1.0");
        }
        let last = transfer_encoding
            .last()
            .and_then(|v| v.rsplit(|&b| b == b',').next())
            .map(|v| v.trim_ascii());
        if !last.is_some_and(|v| v.eq_ignore_ascii_case(b"chunked")) {
            return refuse(400, "Transfer-Encoding does not end in chunked");
        }
        return None;
    }
    let mut length: Option<u64> = None;
    for value in header("content-length") {
        for part in value.split(|&b| b == b',') {
            let part = part.trim_ascii();
            let n = std::str::from_utf8(part)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok());
            match (n, length) {
                (None, _) => return refuse(400, "Content-Length is not a number"),
                (Some(n), Some(l)) if n != l => return refuse(400, "Content-Length values differ"),
                (Some(n), _) => length = Some(n),
            }
        }
    }
    let body = raw.len().saturating_sub(head_len) as u64;
    if length.is_some_and(|l| body < l) {
        // A server waits for the rest of the body and times out.
        return refuse(408, "the body is shorter than Content-Length");
    }
    None
}

/// The head's lines, up to the blank line.
fn head_lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw.split(|&b| b == b'\n')
        .skip(1)
        .take_while(|l| !l.is_empty() && *l != b"\r")
}

fn header_line_is(line: &[u8], name: &[u8]) -> bool {
    line.len() > name.len()
        && line
            .get(..name.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
        && line.get(name.len()) == Some(&b':')
}

fn has_both_framings(raw: &[u8]) -> bool {
    head_lines(raw).any(|l| header_line_is(l, b"transfer-encoding"))
        && head_lines(raw).any(|l| header_line_is(l, b"content-length"))
}

/// The request without its `Content-Length` lines.
fn without_content_length(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut in_head = true;
    let mut first = true;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if in_head && !first && (line == b"\r\n" || line == b"\n") {
            in_head = false;
        }
        if !(in_head && !first && header_line_is(line, b"content-length")) {
            out.extend_from_slice(line);
        }
        first = false;
    }
    out
}

/// `METHOD SP target SP HTTP/1.x` with a token for a method, at the very start: the shape
/// Pingora repairs by escaping the target. Anything else (leading blanks, `HTTP/0.9`, a
/// missing version) it refuses.
fn request_line_is_escapable(raw: &[u8]) -> bool {
    let line = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.splitn(2, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let rest = parts.next().unwrap_or_default();
    let Some(space) = rest.iter().rposition(|&b| b == b' ') else {
        return false;
    };
    let (target, version) = (&rest[..space], &rest[space + 1..]);
    !method.is_empty()
        && method
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && !target.is_empty()
        && matches!(version, b"HTTP/1.0" | b"HTTP/1.1")
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_length_goes_when_transfer_encoding_frames_the_body() {
        let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nfoo=bar\r\n0\r\n\r\n";
        let admitted = admit(raw).ok().unwrap();
        assert_eq!(
            &admitted[..],
            &b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nfoo=bar\r\n0\r\n\r\n"[..]
        );
        assert!(matches!(
            admit(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Ok(std::borrow::Cow::Borrowed(_))
        ));
    }

    use super::{admit, refuses};

    #[test]
    fn what_pingora_answers_itself() {
        let cases: [(&[u8], Option<u16>); 9] = [
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", None),
            (b"GET /a<b> HTTP/1.1\r\nHost: a\r\n\r\n", None),
            (b"     GET / HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
            (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", Some(400)),
            (b"GET / JUNK/1.0\r\nHost: a\r\n\r\n", Some(400)),
            (b"CONNECT a:80 HTTP/1.1\r\nHost: a\r\n\r\n", Some(405)),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12x\r\n\r\n",
                Some(400),
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\n\r\n",
                Some(408),
            ),
            (
                b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                Some(400),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(
                refuses(raw).map(|r| r.status),
                want,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
