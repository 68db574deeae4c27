//! What the proxy's front end — Pingora's HTTP/1 server — refuses before any rule runs.
//!
//! In-process, `waf ftw` has no server in front of the engine, yet a CRS test such as
//! "`Content-Length: NotDigits` gets a 400" is about the server. So the request's head is read
//! by Pingora's own HTTP/1 server, from memory instead of a socket, and what it refuses is
//! answered 400 here too. Then, as the proxy: `CONNECT` gets 405, a `Content-Length` that is a
//! list (`3, 3`, which Pingora takes) gets 400, and a body shorter than its
//! `Content-Length` times out (408). A request that passes loses its target's fragment and,
//! beside `Transfer-Encoding`, its `Content-Length`, as Pingora drops them (RFC 9112 sections
//! 3.2 and 6.3). So in-process results agree with `waf ftw --target` against `waf serve`.

use std::borrow::Cow;

/// Why the front end answers before inspection: the status and a reason.
pub(super) struct Refusal {
    pub(super) status: u16,
    pub(super) reason: String,
}

/// The request as it reaches the rules, or why Pingora answers it itself.
pub(super) fn admit(raw: &[u8]) -> Result<Cow<'_, [u8]>, Refusal> {
    if let Some(refusal) = refuses(raw) {
        return Err(refusal);
    }
    let mut admitted = Cow::Borrowed(raw);
    if let Some(stripped) = without_fragment(raw) {
        admitted = Cow::Owned(stripped);
    }
    if has_both_framings(&admitted) {
        admitted = Cow::Owned(without_content_length(&admitted));
    }
    Ok(admitted)
}

/// The request without the fragment (`#tag`) of its target, when it has one: Pingora drops it
/// (a fragment is not part of a request-target, RFC 9112 section 3.2), so neither the rules
/// nor the upstream see it (CRS 920100-8).
fn without_fragment(raw: &[u8]) -> Option<Vec<u8>> {
    let line_end = raw.iter().position(|&b| b == b'\n')?;
    let line = raw.get(..line_end)?;
    let target_start = line.iter().position(|&b| b == b' ')? + 1;
    let target_end = line.iter().rposition(|&b| b == b' ')?;
    let target = line.get(target_start..target_end)?;
    let fragment = target_start + target.iter().position(|&b| b == b'#')?;
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(raw.get(..fragment)?);
    out.extend_from_slice(raw.get(target_end..)?);
    Some(out)
}

/// `Some` when the proxy's front end would answer the request itself; `None` when it reaches
/// the rules.
fn refuses(raw: &[u8]) -> Option<Refusal> {
    let refuse = |status: u16, reason: &str| {
        Some(Refusal {
            status,
            reason: reason.to_string(),
        })
    };
    let head = match pingora_reads(raw) {
        Ok(head) => head,
        Err(reason) => return refuse(400, &format!("request head refused: {reason}")),
    };
    if head.method == http::Method::CONNECT {
        return refuse(405, "CONNECT is not proxied");
    }
    // The proxy's own check after Pingora's: a list of equal lengths (`3, 3`), which Pingora
    // takes, is refused.
    if !crate::serve::content_length_is_one_number(&head) {
        return refuse(400, "Content-Length is not one number");
    }
    // And a target in no form of its method (`POST ?x=1`, `GET *`), which Pingora takes too.
    if !crate::serve::target_has_a_form(&head.method, head.raw_path()) {
        return refuse(400, "the request-target has no form of its method");
    }
    if head.headers.contains_key(http::header::TRANSFER_ENCODING) {
        // Chunked (Pingora checked): the body's length is its own framing's.
        return None;
    }
    // One number, as checked above.
    let length = head
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let head_len = head_len(raw).unwrap_or(raw.len());
    if length.is_some_and(|l| raw.len().saturating_sub(head_len) < l) {
        // A server waits for the rest of the body and times out.
        return refuse(408, "the body is shorter than Content-Length");
    }
    None
}

/// Reads the head of `raw` with Pingora's own HTTP/1 server, as the proxy reads it from a
/// socket: its parser (`httparse`, with a second try that escapes a target's illegal bytes),
/// its target and authority checks (an `http::Uri` refuses a raw `<` or `>`: an XSS payload sent
/// unencoded in a query never reaches the rules; a Host that differs from an absolute target's
/// authority), and its framing checks (`Content-Length`, `Transfer-Encoding`). Modelling them
/// by hand went wrong once: the model admitted the `<` that the server refuses.
fn pingora_reads(raw: &[u8]) -> Result<pingora::http::RequestHeader, String> {
    let stream: pingora::protocols::Stream = Box::new(std::io::Cursor::new(raw.to_vec()));
    let mut session = pingora::protocols::http::v1::server::HttpSession::new(stream);
    thread_local! {
        // One per thread for every request of a run: the read never waits, it only parses.
        static RUNTIME: Option<tokio::runtime::Runtime> =
            tokio::runtime::Builder::new_current_thread().enable_time().build().ok();
    }
    let read = RUNTIME.with(|runtime| {
        runtime
            .as_ref()
            .map(|runtime| runtime.block_on(session.read_request()))
    });
    let Some(read) = read else {
        return Err("no runtime to read the head with".to_string());
    };
    match read {
        Ok(Some(_)) => Ok(session.req_header().clone()),
        Ok(None) => Err("incomplete request head".to_string()),
        // The context, unless it is the raw head (`buf: ...`): then the parser's own words.
        Err(e) => Err(match (&e.context, &e.cause) {
            (Some(context), Some(cause)) if context.as_str().starts_with("buf: ") => {
                cause.to_string()
            }
            (Some(context), _) => context.as_str().to_string(),
            (None, Some(cause)) => cause.to_string(),
            (None, None) => e.etype.as_str().to_string(),
        }),
    }
}

/// Where the head ends (after its blank line).
fn head_len(raw: &[u8]) -> Option<usize> {
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
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

    #[test]
    fn a_fragment_never_reaches_the_rules() {
        let admitted = admit(b"GET /i.html:80?a=1#tag HTTP/1.1\r\nHost: a\r\n\r\n")
            .ok()
            .unwrap();
        assert_eq!(
            &admitted[..],
            &b"GET /i.html:80?a=1 HTTP/1.1\r\nHost: a\r\n\r\n"[..]
        );
    }

    use super::{admit, refuses};

    #[test]
    fn what_pingora_answers_itself() {
        let cases: [(&[u8], Option<u16>); 20] = [
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", None),
            // Pingora percent-encodes a space in the target (`/a%20b`), as a client would.
            (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", None),
            // Pingora takes these targets in no form of their method; the proxy refuses them.
            (b"GET  /a HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
            (b"POST ?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
            (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
            (b"GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
            (b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", None),
            (b"GET /a|b{c}\"d HTTP/1.1\r\nHost: a\r\n\r\n", None),
            (b"GET /?x=<script> HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
            (b"GET /a`b HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
            (b"     GET / HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n", Some(400)),
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
            // Pingora takes a list of equal lengths; the proxy refuses it.
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
                Some(400),
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
                None,
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
