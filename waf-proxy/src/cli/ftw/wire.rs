//! The bytes a stage puts on the wire.
//!
//! The rules under test see the request exactly as the test tool sent it, so the completion the
//! tools do matters: a `Content-Type` the test never wrote decides which body processor runs,
//! a body re-encoded as a form changes what the rules match. Each dialect reproduces its tool:
//!
//! - [`Dialect::Ftw`] (CRS 3.x v1 files), Python `ftw`: `encoded_request` (base64) or
//!   `raw_request` are sent as they are — except that `ftw` reads `raw_request` into a string,
//!   encodes it as UTF-8, reads those bytes back as Latin-1 and encodes them as UTF-8 once more,
//!   so a non-ASCII character goes out twice encoded. Otherwise `METHOD URI VERSION`, the
//!   headers in file order, and unless `stop_magic: true`, for a non-empty body:
//!   `Content-Type: application/x-www-form-urlencoded` when there is none; a form body with no
//!   `%XX` escape re-encoded the way `urlencode(parse_qsl(data))` does it (pairs without `=` or
//!   with an empty value dropped, `+` read as a space, everything but `A-Za-z0-9_.-~`
//!   percent-encoded, spaces as `+`); `Content-Length` when there is none. No
//!   `Connection: close` is added. This reproduces every one of the 2,403 stages of the CRS
//!   3.3.4 reference run byte for byte (checked by `waf-proxy/tests/ftw.rs`).
//! - [`Dialect::GoFtw`] (CRS 4.x files), `go-ftw`: `encoded_request` / `raw_request` as they
//!   are; otherwise the request line and the headers, and unless `autocomplete_headers: false`
//!   (or `stop_magic: true`): for a non-empty body a default `Content-Type` and go-ftw's form
//!   encoding (only when the body has neither `%` nor `+`: each `&`-separated key and value
//!   query-escaped, a token without `=` escaped whole); in a `multipart/form-data;` body every
//!   bare LF becomes CRLF; `Connection: close` when there is none; `Content-Length` when there
//!   is none and there is a body or the method is `POST`, `PUT`, `PATCH` or `DELETE`. The
//!   headers of a `headers` map go out sorted by name, as go-ftw's map writes them;
//!   `ordered_headers` keep their order.

use base64::Engine as _;

use super::format::{Dialect, Input};

/// Why a stage's request could not be built.
pub type BuildError = String;

/// Builds the bytes of one stage's request.
pub fn build(dialect: Dialect, input: &Input) -> Result<Vec<u8>, BuildError> {
    if let Some(encoded) = input.encoded_request.as_deref().filter(|e| !e.is_empty()) {
        return decode_base64(encoded).map_err(|e| format!("encoded_request: {e}"));
    }
    if let Some(raw) = input.raw_request.as_ref().filter(|r| !r.0.is_empty()) {
        return Ok(match dialect {
            Dialect::Ftw => utf8_twice(&raw.0),
            Dialect::GoFtw => raw.0.as_bytes().to_vec(),
        });
    }
    match dialect {
        Dialect::Ftw => Ok(build_ftw(input)),
        Dialect::GoFtw => build_go_ftw(input),
    }
}

/// Python `ftw`'s reading of a raw request: UTF-8, read back as Latin-1, encoded as UTF-8.
fn utf8_twice(text: &str) -> Vec<u8> {
    let latin1: String = text.bytes().map(char::from).collect();
    latin1.into_bytes()
}

fn request_line(input: &Input) -> Vec<u8> {
    let text = |t: &Option<super::format::Text>, default: &str| {
        t.as_ref()
            .map_or_else(|| default.to_string(), |t| t.0.clone())
    };
    format!(
        "{} {} {}\r\n",
        text(&input.method, "GET"),
        text(&input.uri, "/"),
        text(&input.version, "HTTP/1.1")
    )
    .into_bytes()
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn finish(mut out: Vec<u8>, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

const FORM: &str = "application/x-www-form-urlencoded";

fn build_ftw(input: &Input) -> Vec<u8> {
    let mut headers: Vec<(String, String)> = input
        .headers
        .as_ref()
        .map(|h| h.0.clone())
        .unwrap_or_default();
    let mut data = input.data.as_ref().map(|d| d.0.clone()).unwrap_or_default();
    if !input.stop_magic.unwrap_or(false) && !data.is_empty() {
        if header_value(&headers, "Content-Type").is_none() {
            headers.push(("Content-Type".into(), FORM.into()));
        }
        if header_value(&headers, "Content-Type") == Some(FORM) && !has_percent_escape(&data) {
            let pairs = parse_qsl(&data);
            if !pairs.is_empty() {
                data = pairs
                    .iter()
                    .map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(v)))
                    .collect::<Vec<_>>()
                    .join("&");
            }
        }
        if header_value(&headers, "Content-Length").is_none() {
            headers.push(("Content-Length".into(), data.len().to_string()));
        }
    }
    finish(request_line(input), &headers, data.as_bytes())
}

fn build_go_ftw(input: &Input) -> Result<Vec<u8>, BuildError> {
    let mut headers: Vec<(String, String)> = match (&input.ordered_headers, &input.headers) {
        (Some(ordered), _) => ordered
            .iter()
            .map(|h| (h.name.0.clone(), h.value.0.clone()))
            .collect(),
        (None, Some(map)) => map.0.clone(),
        (None, None) => Vec::new(),
    };
    let sorted = input.ordered_headers.is_none();
    let mut data: Vec<u8> = match (&input.encoded_data, &input.data) {
        (Some(encoded), _) => decode_base64(encoded).map_err(|e| format!("encoded_data: {e}"))?,
        (None, Some(d)) => d.0.clone().into_bytes(),
        (None, None) => Vec::new(),
    };
    let autocomplete =
        input.autocomplete_headers.unwrap_or(true) && !input.stop_magic.unwrap_or(false);
    if autocomplete && !data.is_empty() {
        if header_value(&headers, "Content-Type").is_none() {
            headers.push(("Content-Type".into(), FORM.into()));
        }
        if header_value(&headers, "Content-Type") == Some(FORM)
            && !data.iter().any(|&b| b == b'%' || b == b'+')
        {
            data = go_form_encode(&data);
        }
    }
    if header_value(&headers, "Content-Type")
        .is_some_and(|ct| ct.starts_with("multipart/form-data;"))
    {
        data = bare_lf_to_crlf(&data);
    }
    if autocomplete {
        if header_value(&headers, "Connection").is_none() {
            headers.push(("Connection".into(), "close".into()));
        }
        let method = input.method.as_ref().map_or("GET", |m| m.0.as_str());
        let body_method = method.starts_with("POST")
            || method.contains("PUT")
            || method.contains("PATCH")
            || method.ends_with("DELETE");
        if (!data.is_empty() || body_method) && header_value(&headers, "Content-Length").is_none() {
            headers.push(("Content-Length".into(), data.len().to_string()));
        }
    }
    if sorted {
        headers.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(finish(request_line(input), &headers, &data))
}

/// Whether the text has a `%XX` escape: Python's `unquote(data) == data` fails exactly then.
fn has_percent_escape(data: &str) -> bool {
    data.as_bytes()
        .windows(3)
        .any(|w| matches!(w, [b'%', a, b] if a.is_ascii_hexdigit() && b.is_ascii_hexdigit()))
}

/// Python's `parse_qsl(data)` for text without escapes: `&`-separated, pairs without `=` or
/// with an empty value dropped, `+` read as a space.
fn parse_qsl(data: &str) -> Vec<(String, String)> {
    data.split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(_, value)| !value.is_empty())
        .map(|(k, v)| (k.replace('+', " "), v.replace('+', " ")))
        .collect()
}

/// Python's `quote_plus` and Go's `url.QueryEscape`: unreserved bytes kept, spaces as `+`,
/// everything else `%XX` in upper case.
fn quote_plus(text: impl AsRef<[u8]>) -> String {
    let mut out = String::new();
    for &b in text.as_ref() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// go-ftw's `encodeDataParameters`.
fn go_form_encode(data: &[u8]) -> Vec<u8> {
    let mut tokens = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (token, next) = match rest.iter().position(|&b| b == b'&') {
            Some(amp) => (rest.get(..amp).unwrap_or_default(), rest.get(amp + 1..)),
            None => (rest, None),
        };
        rest = next.unwrap_or_default();
        tokens.push(match token.iter().position(|&b| b == b'=') {
            Some(eq) => format!(
                "{}={}",
                quote_plus(token.get(..eq).unwrap_or_default()),
                quote_plus(token.get(eq + 1..).unwrap_or_default())
            ),
            None => quote_plus(token),
        });
    }
    tokens.join("&").into_bytes()
}

fn bare_lf_to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut previous = 0u8;
    for &b in data {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    out
}

/// Base64 as the tools accept it: standard alphabet, line breaks and spaces ignored.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| format!("not base64: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::format::parse;
    use super::*;

    fn first(yaml: &str) -> (Dialect, Vec<u8>) {
        let file = parse(yaml, "1").unwrap();
        let stage = file.tests.into_iter().next().unwrap().stages.remove(0);
        let bytes = build(stage.dialect, &stage.input).unwrap();
        (stage.dialect, bytes)
    }

    fn v1(input: &str) -> String {
        let (dialect, bytes) = first(&format!(
            "tests:\n  - test_title: t\n    stages:\n      - stage:\n          input: {input}\n"
        ));
        assert_eq!(dialect, Dialect::Ftw);
        String::from_utf8(bytes).unwrap()
    }

    fn v4(input: &str) -> String {
        let (dialect, bytes) = first(&format!(
            "tests:\n  - test_id: 1\n    stages:\n      - input: {input}\n"
        ));
        assert_eq!(dialect, Dialect::GoFtw);
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn ftw_completes_a_form() {
        assert_eq!(
            v1(r#"{method: POST, headers: {Host: localhost}, data: "a=<b c>&d=&e&f=1+2"}"#),
            "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 17\r\n\r\na=%3Cb+c%3E&f=1+2"
        );
        // Already escaped: sent as is.
        assert!(v1(r#"{method: POST, data: "a=%41 b"}"#).ends_with("\r\n\r\na=%41 b"));
        // stop_magic: nothing added.
        assert_eq!(
            v1(r#"{method: POST, version: HTTP/1.0, stop_magic: true, data: "a b"}"#),
            "POST / HTTP/1.0\r\n\r\na b"
        );
    }

    #[test]
    fn ftw_raw_requests() {
        assert_eq!(
            v1(r#"{raw_request: "GET / HTTP/1.0\r\n\r\n\xac"}"#).as_bytes(),
            b"GET / HTTP/1.0\r\n\r\n\xc3\x82\xc2\xac"
        );
        assert_eq!(
            v1(r#"{encoded_request: "R0VUIC8g\nSFRUUC8xLjENCg0K"}"#),
            "GET / HTTP/1.1\r\n\r\n"
        );
    }

    #[test]
    fn go_ftw_completes_and_sorts() {
        assert_eq!(
            v4(r#"{method: POST, uri: "/x", headers: {User-Agent: t, Host: localhost}, data: "a=<b>&c"}"#),
            "POST /x HTTP/1.1\r\nConnection: close\r\nContent-Length: 11\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n\
             a=%3Cb%3E&c"
        );
        // A body method without a body still gets a Content-Length.
        assert!(v4("{method: PUT}").contains("Content-Length: 0\r\n"));
        assert_eq!(
            v4("{autocomplete_headers: false, ordered_headers: [{name: B, value: 1}, {name: A, value: 2}]}"),
            "GET / HTTP/1.1\r\nB: 1\r\nA: 2\r\n\r\n"
        );
        assert!(v4(
            r#"{method: POST, headers: {Content-Type: "multipart/form-data; boundary=x"}, data: "--x\nA\r\n--x--\n"}"#
        )
        .ends_with("\r\n\r\n--x\r\nA\r\n--x--\r\n"));
        assert!(v4(r#"{method: POST, encoded_data: "YSBi"}"#).ends_with("\r\n\r\na+b"));
    }

    #[test]
    fn bad_base64_is_an_error() {
        let file = parse(
            "tests:\n  - stages:\n      - input: {encoded_request: '***'}\n",
            "1",
        )
        .unwrap();
        let stage = &file.tests[0].stages[0];
        let e = build(stage.dialect, &stage.input).unwrap_err();
        assert!(e.starts_with("encoded_request: not base64"), "{e}");
    }
}
