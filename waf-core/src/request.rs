//! The request as the engine sees it: bytes in, bytes kept.
//!
//! A [`Request`] is what arrived on the wire, nothing more: method, request target, protocol, headers
//! in order, the body and the peer address. Nothing here is ever required to be UTF-8, and nothing is
//! decoded eagerly; the [`parse`](crate::parse) module derives the arguments, cookies and body fields
//! from it.
//!
//! ```
//! use waf_core::Request;
//!
//! let request = Request::builder()
//!     .method("POST")
//!     .uri("/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted?tx=abc")
//!     .header("Host", "login.contoso.com")
//!     .header("Content-Type", "application/x-www-form-urlencoded")
//!     .body("signInName=zoe%40contoso.com&password=p%27ss")
//!     .remote_addr("203.0.113.9".parse().unwrap())
//!     .build();
//! assert_eq!(request.headers().get("content-type"), Some(&b"application/x-www-form-urlencoded"[..]));
//! assert_eq!(request.path(), b"/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted");
//! assert_eq!(request.query(), Some(&b"tx=abc"[..]));
//! ```

use std::net::IpAddr;

/// An HTTP request, in bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    method: Vec<u8>,
    uri: Vec<u8>,
    protocol: Vec<u8>,
    headers: Headers,
    body: Vec<u8>,
    remote_addr: Option<IpAddr>,
}

impl Request {
    /// Starts a request: `GET /` over `HTTP/1.1` with no headers and no body.
    ///
    /// ```
    /// let request = waf_core::Request::builder().uri("/authorize?x=1").build();
    /// assert_eq!(request.method(), b"GET");
    /// ```
    pub fn builder() -> RequestBuilder {
        RequestBuilder {
            request: Request {
                method: b"GET".to_vec(),
                uri: b"/".to_vec(),
                protocol: b"HTTP/1.1".to_vec(),
                ..Request::default()
            },
        }
    }

    /// The method, as sent (`GET`, `POST`, or anything else a client put there).
    pub fn method(&self) -> &[u8] {
        &self.method
    }

    /// The request target exactly as sent: path and query, still percent-encoded.
    pub fn uri(&self) -> &[u8] {
        &self.uri
    }

    /// The protocol token of the request line, such as `HTTP/1.1`.
    pub fn protocol(&self) -> &[u8] {
        &self.protocol
    }

    /// The headers in the order they arrived.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body, as much of it as was given to the engine.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The address of the client, when known.
    pub fn remote_addr(&self) -> Option<IpAddr> {
        self.remote_addr
    }

    /// The path part of the request target: everything before the first `?` (or `#`).
    ///
    /// An absolute-form target (`http://host/path`) yields its path.
    pub fn path(&self) -> &[u8] {
        let target = strip_absolute_form(&self.uri);
        let end = target
            .iter()
            .position(|&b| b == b'?' || b == b'#')
            .unwrap_or(target.len());
        &target[..end]
    }

    /// The query string: everything after the first `?` and before any `#`, without the `?`.
    ///
    /// `None` when the target has no `?` at all; `Some(b"")` for a bare `?`.
    pub fn query(&self) -> Option<&[u8]> {
        let target = strip_absolute_form(&self.uri);
        // A `?` after the fragment's `#` belongs to the fragment.
        let start = target.iter().position(|&b| b == b'?' || b == b'#')?;
        if target.get(start) != Some(&b'?') {
            return None;
        }
        let rest = target.get(start + 1..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == b'#').unwrap_or(rest.len());
        Some(&rest[..end])
    }

    /// The request line as it would appear on the wire, without the line ending.
    pub fn request_line(&self) -> Vec<u8> {
        let mut line =
            Vec::with_capacity(self.method.len() + self.uri.len() + self.protocol.len() + 2);
        line.extend_from_slice(&self.method);
        line.push(b' ');
        line.extend_from_slice(&self.uri);
        line.push(b' ');
        line.extend_from_slice(&self.protocol);
        line
    }

    /// Replaces the body, keeping everything else. Used by callers that read the body after the
    /// headers.
    pub fn set_body(&mut self, body: impl Into<Vec<u8>>) {
        self.body = body.into();
    }
}

/// `http://host:port/path?q` → `/path?q`. Origin-form targets are returned unchanged.
fn strip_absolute_form(target: &[u8]) -> &[u8] {
    let Some(scheme_end) = find(target, b"://") else {
        return target;
    };
    // Only an absolute-form target starts with a scheme; `/a?x=http://b` is origin-form.
    if !target[..scheme_end]
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        || scheme_end == 0
    {
        return target;
    }
    let authority = &target[scheme_end + 3..];
    match authority
        .iter()
        .position(|&b| b == b'/' || b == b'?' || b == b'#')
    {
        Some(i) => &authority[i..],
        None => b"",
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// Builds a [`Request`].
///
/// ```
/// use waf_core::Request;
///
/// let request = Request::builder()
///     .method("GET")
///     .uri("/common/oauth2/v2.0/authorize?client_id=1")
///     .header("Cookie", "x-ms-cpim-sso=abc")
///     .build();
/// assert_eq!(request.headers().len(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct RequestBuilder {
    request: Request,
}

impl RequestBuilder {
    /// Sets the method.
    pub fn method(mut self, method: impl AsRef<[u8]>) -> Self {
        self.request.method = method.as_ref().to_vec();
        self
    }

    /// Sets the request target (path and query, as sent).
    pub fn uri(mut self, uri: impl AsRef<[u8]>) -> Self {
        self.request.uri = uri.as_ref().to_vec();
        self
    }

    /// Sets the protocol token (`HTTP/1.1` by default).
    pub fn protocol(mut self, protocol: impl AsRef<[u8]>) -> Self {
        self.request.protocol = protocol.as_ref().to_vec();
        self
    }

    /// Appends a header; earlier headers of the same name are kept.
    pub fn header(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.request.headers.append(name, value);
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.request.body = body.as_ref().to_vec();
        self
    }

    /// Sets the client address.
    pub fn remote_addr(mut self, addr: IpAddr) -> Self {
        self.request.remote_addr = Some(addr);
        self
    }

    /// Finishes the request.
    pub fn build(self) -> Request {
        self.request
    }
}

/// Request headers: order and duplicates kept, names compared without regard to ASCII case.
///
/// ```
/// let mut headers = waf_core::request::Headers::new();
/// headers.append("Accept", "text/html");
/// headers.append("accept", "application/json");
/// assert_eq!(headers.get("ACCEPT"), Some(&b"text/html"[..]));
/// assert_eq!(headers.get_all("accept").count(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Headers {
    /// An empty header list.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Appends a header at the end.
    pub fn append(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.entries
            .push((name.as_ref().to_vec(), value.as_ref().to_vec()));
    }

    /// The first value of the named header.
    pub fn get(&self, name: impl AsRef<[u8]>) -> Option<&[u8]> {
        self.get_all(name).next()
    }

    /// Every value of the named header, in order.
    pub fn get_all(&self, name: impl AsRef<[u8]>) -> impl Iterator<Item = &[u8]> {
        let name = name.as_ref().to_vec();
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_slice())
    }

    /// Every header as `(name, value)`, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
    }

    /// The number of header lines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query_split() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("/", "/", None),
            ("/a?b=c", "/a", Some("b=c")),
            ("/a?", "/a", Some("")),
            ("/a?b#frag", "/a", Some("b")),
            ("/a#f?x", "/a", None),
            ("http://h:80/p?q=1", "/p", Some("q=1")),
            ("http://h", "", None),
            ("/r?u=http://x/y", "/r", Some("u=http://x/y")),
            ("*", "*", None),
        ];
        for &(uri, path, query) in cases {
            let r = Request::builder().uri(uri).build();
            assert_eq!(r.path(), path.as_bytes(), "path of {uri}");
            assert_eq!(r.query(), query.map(str::as_bytes), "query of {uri}");
        }
    }

    #[test]
    fn invalid_utf8_is_ordinary_input() {
        let r = Request::builder()
            .uri(b"/\xff\xfe?\xc0=\x80")
            .header(b"X-\xff", b"\xfe")
            .build();
        assert_eq!(r.path(), b"/\xff\xfe");
        assert_eq!(r.headers().get(b"x-\xff"), Some(&b"\xfe"[..]));
    }

    #[test]
    fn request_line_is_reassembled() {
        let r = Request::builder().method("PUT").uri("/x?y").build();
        assert_eq!(r.request_line(), b"PUT /x?y HTTP/1.1");
    }
}
