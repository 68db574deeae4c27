//! The request path: Pingora's `ProxyHttp` phases with the WAF in `request_filter`.
//!
//! Order of events for one request: pick the site by Host (421 if none) → resolve the client
//! address → check the header size (431) → count it against the site's rate limits (429) →
//! read the body ahead when it fits the inspection limit (413 or pass-through beyond it) →
//! inspect headers and body together → block, or forward with rewritten `X-Forwarded-*`
//! headers → audit line and metrics in `logging`.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpUpstreamRequestPolicy;
use pingora::{Error, ErrorSource, ErrorType, Result};
use waf_core::profile::Profile;
use waf_core::Verdict;

use super::audit::{AuditLog, AuditRecord, AuditRule, AuditValue, Durations};
use super::block_page::{prefers_json, Page};
use super::client_faults::{self, ClientFaults};
use super::live::{Live, SiteRuntime, Snapshot};
use super::metrics::Metrics;
use super::rate_limit;
use crate::config::{HostHeader, LargeBody, SiteMode, MAX_PRE_READ};

/// The proxy: the live rulesets, the metrics and the audit log.
pub struct Waf {
    pub live: Arc<Live>,
    pub metrics: Arc<Metrics>,
    pub audit: Arc<AuditLog>,
    /// Where requests that fail because of their client are counted, not logged one by one.
    pub client_faults: ClientFaults,
}

/// What one request carries through the phases.
pub struct Ctx {
    request_id: String,
    /// Every log event of the request hangs off this span, which carries the request id; see
    /// [`Ctx::span`].
    span: OnceLock<tracing::Span>,
    started: Instant,
    /// The rules and sites this request is judged by, fixed when it started.
    snapshot: Option<Arc<Snapshot>>,
    site: Option<usize>,
    /// The TCP peer.
    peer: Option<IpAddr>,
    /// The client address the rules see.
    client: Option<IpAddr>,
    /// The scheme a trusted peer says the client used (its X-Forwarded-Proto).
    trusted_proto: Option<&'static str>,
    /// The X-Forwarded-For a trusted peer sent.
    trusted_xff: Option<String>,
    /// The Host the client asked for.
    host: String,
    /// The client connection is TLS.
    tls: bool,
    /// We answered the client's `Expect: 100-continue` ourselves.
    continue_sent: bool,
    verdict: Option<Verdict>,
    /// The rate limit the request was over.
    rate_limit: Option<String>,
    inspection: Duration,
    /// What the WAF did, for the audit log and the metrics.
    action: &'static str,
    /// Whether the body was inspected.
    body: &'static str,
    /// The body is forwarded as it arrives, not read ahead.
    streamed_body: Option<StreamedBody>,
    upstream_started: Option<Instant>,
    upstream_elapsed: Option<Duration>,
    upstream_status: Option<u16>,
}

impl Ctx {
    fn site<'a>(&self, snapshot: &'a Snapshot) -> Option<&'a SiteRuntime> {
        self.site.and_then(|i| snapshot.sites.get(i))
    }

    /// The snapshot of a request routed to a site: an error for one that was not (it is never
    /// forwarded, so the upstream phases cannot see it).
    fn routed_snapshot(&self) -> Result<Arc<Snapshot>> {
        match &self.snapshot {
            Some(s) if self.site(s).is_some() => Ok(s.clone()),
            _ => Err(http_error(421, "no site")),
        }
    }
}

/// The audit log's `body` for a body that did not arrive in time.
const BODY_TIMED_OUT: &str = "timed out";

/// A body forwarded to the upstream as it arrives, uninspected (a site without rules, or
/// `large_body: pass` past the inspection limit), held to the pace a body read ahead for
/// inspection keeps: `limits.body_timeout_ms` for each 64 KiB, counted from the end of the
/// head, and never less than `body_timeout_ms` in all.
///
/// A client trickling such a body in held its request, its connection and an upstream
/// connection for as long as the upstream waited (`read_timeout_ms`, 60 s, and longer for an
/// upstream that reads slowly). A total deadline of `body_timeout_ms` would cut off a large
/// upload on a slow link, so the deadline grows with what has arrived, as Apache's
/// `mod_reqtimeout` `MinRate` does: 30 s per 64 KiB is about 2 KB/s.
///
/// It is checked as each piece of the body is forwarded ([`ProxyHttp::request_body_filter`]),
/// which catches a client that trickles; for one that stops sending, an HTTP/1 read waits at
/// most until the deadline (Pingora's per-read timeout, set to the time left). Pingora 0.9
/// has no read timeout for HTTP/2, so an HTTP/2 body that stops altogether is bounded by the
/// upstream's `read_timeout_ms` only: the upstream, waiting for the rest of the body, sends
/// nothing. That timeout is then the client's doing, and answered as one (408), not as a
/// failure of the upstream's.
#[derive(Debug)]
struct StreamedBody {
    started: Instant,
    /// `limits.body_timeout_ms`.
    allowance: Duration,
    /// Bytes forwarded so far.
    received: u64,
    /// The body's end has been forwarded.
    complete: bool,
}

impl StreamedBody {
    /// Bytes each `allowance` admits.
    const PACE: u64 = MAX_PRE_READ as u64;

    fn new(allowance: Duration) -> StreamedBody {
        StreamedBody {
            started: Instant::now(),
            allowance,
            received: 0,
            complete: false,
        }
    }

    /// When what has arrived so far must have been followed by the rest.
    fn deadline(&self) -> Instant {
        let paces = (self.received as f64 / Self::PACE as f64).max(1.0);
        self.started + self.allowance.mul_f64(paces)
    }
}

/// A fresh request id: 16 hex digits from a keyed hash of a counter and the time.
fn request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let hash = KEYS.get_or_init(RandomState::new).hash_one((n, nanos));
    format!("{hash:016x}")
}

fn header_str<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn http_error(status: u16, why: &'static str) -> Box<Error> {
    Error::explain(ErrorType::HTTPStatus(status), why)
}

/// Writes a page the proxy made itself and ends the exchange.
async fn respond(session: &mut Session, page: Page, request_id: &str) -> Result<()> {
    let resp = page_header(&page, request_id)?;
    write_page(session, resp, page).await
}

/// The response header of a page the proxy made itself.
fn page_header(page: &Page, request_id: &str) -> Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(page.status, Some(6))?;
    resp.insert_header("Content-Type", page.content_type)?;
    resp.insert_header("Content-Length", page.body.len().to_string())?;
    resp.insert_header("Cache-Control", "no-store")?;
    resp.insert_header("X-Request-Id", request_id)?;
    Ok(resp)
}

/// Sends a page and closes the connection after it.
async fn write_page(session: &mut Session, resp: ResponseHeader, page: Page) -> Result<()> {
    session.set_keepalive(None);
    // A write that fails is the client's connection failing: Pingora would otherwise take it
    // for its own (500) and try to answer again.
    session
        .write_response_header(Box::new(resp), false)
        .await
        .map_err(|e| e.into_down())?;
    session
        .write_response_body(Some(Bytes::from(page.body)), true)
        .await
        .map_err(|e| e.into_down())?;
    Ok(())
}

/// Answers one of the proxy's own refusals; `Ok(true)`: the request is done.
async fn refuse(
    session: &mut Session,
    ctx: &mut Ctx,
    action: &'static str,
    status: u16,
    title: &str,
    text: &str,
) -> Result<bool> {
    tracing::info!(parent: ctx.span(), status, "{text}");
    ctx.action = action;
    let json = prefers_json(header_str(session.req_header(), "accept"));
    let page = Page::refusal(json, status, title, text, &ctx.request_id);
    respond(session, page, &ctx.request_id).await?;
    Ok(true)
}

/// Bytes of the request line and headers, as they were (nearly) on the wire.
fn header_bytes(req: &RequestHeader) -> usize {
    let line = req.method.as_str().len() + req.raw_path().len() + 12;
    req.headers
        .iter()
        .fold(line, |n, (k, v)| n + k.as_str().len() + v.len() + 4)
}

/// The request as the engine sees it.
fn engine_request(
    req: &RequestHeader,
    client: Option<IpAddr>,
    body: Option<&[u8]>,
) -> waf_core::Request {
    let protocol = match req.version {
        pingora::http::Version::HTTP_10 => "HTTP/1.0",
        pingora::http::Version::HTTP_2 => "HTTP/2",
        _ => "HTTP/1.1",
    };
    let mut b = waf_core::Request::builder()
        .method(req.method.as_str())
        .uri(req.raw_path())
        .protocol(protocol);
    for (name, value) in req.headers.iter() {
        b = b.header(name.as_str(), value.as_bytes());
    }
    if let Some(ip) = client {
        b = b.remote_addr(ip);
    }
    if let Some(body) = body {
        b = b.body(body);
    }
    b.build()
}

/// An absolute-form request-target (`http://host:port/path?query`) split into its authority
/// (`host:port`, without any `user@`) and its origin form (`/path?query`); `None` for a target
/// in any other form.
///
/// A client sends the absolute form to a forward proxy, and a server must accept it; but a
/// client making a request to an origin server sends only the path and query (RFC 9112 section
/// 3.2.1), and the proxy is that client for the upstream. Pingora forwards the target as it
/// came. Bytes, not text: a target that is not UTF-8 keeps its bytes.
fn absolute_form(target: &[u8]) -> Option<(&[u8], Vec<u8>)> {
    if matches!(target.first(), None | Some(b'/')) || target == b"*" {
        return None;
    }
    let scheme_end = target.windows(3).position(|w| w == b"://")?;
    let after_scheme = target.get(scheme_end + 3..)?;
    let authority_end = after_scheme
        .iter()
        .position(|&b| matches!(b, b'/' | b'?'))
        .unwrap_or(after_scheme.len());
    let (authority, rest) = after_scheme.split_at(authority_end);
    let host = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => authority.get(at + 1..).unwrap_or_default(),
        None => authority,
    };
    let mut origin = Vec::with_capacity(rest.len() + 1);
    if !rest.starts_with(b"/") {
        origin.push(b'/');
    }
    origin.extend_from_slice(rest);
    Some((host, origin))
}

/// Header names a hop must not forward (RFC 9110 section 7.6.1): the ones the Connection header
/// names, and the classic hop-by-hop ones. `Connection`, `Upgrade` and `Transfer-Encoding` are
/// left to Pingora, which frames the next hop itself.
fn hop_by_hop(headers: &http::HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = vec!["keep-alive".into(), "proxy-connection".into(), "te".into()];
    for value in headers.get_all("connection") {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',') {
            let token = token.trim().to_ascii_lowercase();
            let framing = matches!(
                token.as_str(),
                "" | "close" | "keep-alive" | "upgrade" | "transfer-encoding" | "host"
            );
            if !framing {
                names.push(token);
            }
        }
    }
    names
}

/// The headers that tell the upstream who the client is and what it asked for, which the proxy
/// sets itself (or drops): a client's own never reach the upstream.
const FORWARDED_HEADERS: [&str; 6] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-request-id",
    "forwarded",
    "x-real-ip",
];

/// Headers in which CDNs and load balancers tell the server behind them about a request: the
/// client they got it from, and the URL it asked for before they rewrote it. Only a trusted
/// peer's are its word. A client's own name whatever address it likes, and `X-Original-URL`
/// or `X-Rewrite-URL` make IIS's URL Rewrite module (and some frameworks) serve another path
/// than the one the rules read.
const PEER_ONLY_HEADERS: [&str; 10] = [
    "x-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "x-original-forwarded-for",
    "x-azure-clientip",
    "x-azure-socketip",
    "x-original-url",
    "x-rewrite-url",
];

/// The client's headers that must not reach the upstream beside the proxy's forwarded
/// headers: any of [`FORWARDED_HEADERS`] spelled with an underscore for a dash
/// (`X_Forwarded_For`, `X-Forwarded_For`), and, unless the peer is trusted, the
/// [`PEER_ONLY_HEADERS`] in either spelling.
///
/// A server that hands headers to the application as CGI-style variables (IIS and ASP.NET's
/// server variables, PHP's `$_SERVER`) maps `-` to `_`: both spellings become
/// `HTTP_X_FORWARDED_FOR`, and which one the application reads is the server's choice. The
/// proxy replaced the client's `X-Forwarded-For` with the address it saw, and passed
/// `X_Forwarded_For: 6.6.6.6` on beside it, and `True-Client-IP: 6.6.6.6` too: a client could
/// name its own address to a back end that reads one of them. nginx drops every header with an
/// underscore by default; the proxy drops these, and passes the others.
fn spoofed_client_headers(headers: &http::HeaderMap, peer_trusted: bool) -> Vec<http::HeaderName> {
    let spells = |name: &[u8], header: &str| {
        header.len() == name.len()
            && header
                .bytes()
                .zip(name)
                .all(|(h, &n)| h == n || (h == b'-' && n == b'_'))
    };
    headers
        .keys()
        .filter(|name| {
            let name = name.as_str().as_bytes();
            (name.contains(&b'_') && FORWARDED_HEADERS.iter().any(|h| spells(name, h)))
                || (!peer_trusted && PEER_ONLY_HEADERS.iter().any(|h| spells(name, h)))
        })
        .cloned()
        .collect()
}

/// Whether the request's `Content-Length`, if it has one, is one number: digits, with the
/// optional whitespace around a field's value. Pingora's HTTP/1 server takes a list of equal
/// values (`3, 3`, which RFC 9112 section 6.3 lets a recipient take or refuse) and forwarded
/// the list as it came. An upstream that reads it otherwise (as no length, say) reads the body
/// as the next request on the pooled connection: a request the rules never judged as one,
/// which may also swallow the start of another client's request behind it (request
/// smuggling). nginx refuses such a header, and so does the proxy now, for every site: the
/// body pre-read of a site with rules refused it already, a site without rules forwarded it.
/// `waf ftw` refuses it in-process too (`cli/ftw/front_end.rs`).
pub(crate) fn content_length_is_one_number(req: &RequestHeader) -> bool {
    let mut values = req.headers.get_all("content-length").iter();
    match (values.next(), values.next()) {
        (None, _) => true,
        (Some(v), None) => {
            let v = v.as_bytes().trim_ascii();
            !v.is_empty() && v.iter().all(u8::is_ascii_digit)
        }
        // Two headers: Pingora refuses them before this runs; never forwarded either way.
        (Some(_), Some(_)) => false,
    }
}

/// Whether a request-target has a form HTTP gives its method (RFC 9112 section 3.2): a path
/// (`/…`, origin form), a URL (`https://…`, absolute form), or `*` for `OPTIONS` (asterisk
/// form). (`CONNECT`'s authority form never gets here: Pingora answers it 405.)
///
/// Pingora's HTTP/1 server takes more, and forwarded it: `POST ?x=1`, `GET x`, `GET
/// login.contoso.com:80`, `GET *`, and a request line with two spaces before its target, whose
/// space it percent-encoded into the target (the upstream got `GET %20/x`); over HTTP/2, a `GET`
/// with `:path: *` went upstream as `GET *`. nginx refuses these with 400, and so does the
/// proxy, on every site. `waf ftw` refuses them in-process too (`cli/ftw/front_end.rs`).
pub(crate) fn target_has_a_form(method: &http::Method, target: &[u8]) -> bool {
    match target {
        [b'/', ..] => true,
        b"*" => method == http::Method::OPTIONS,
        _ => absolute_form(target).is_some(),
    }
}

/// The one length an upstream's answer gives as a list of equal numbers (`Content-Length: 6,
/// 6`, or the header twice); `None` for one number, no header, or anything else.
///
/// RFC 9110 section 8.6 lets a recipient take such a list as its one value, and Pingora does:
/// it frames the body by it, then passed the header on as it came. An HTTP/2 client then had
/// its stream reset (`PROTOCOL_ERROR`), so the answer never reached a browser; and a client, a
/// cache or a CDN that refuses a list (as the proxy refuses one from a client, see
/// [`content_length_is_one_number`]) fails it over HTTP/1.1. Unequal values never get here:
/// Pingora answers 502 to them.
fn content_length_list(headers: &http::HeaderMap) -> Option<u64> {
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        // Pingora drops the length beside `Transfer-Encoding`.
        return None;
    }
    let mut length = None;
    let mut count = 0;
    for value in headers.get_all(http::header::CONTENT_LENGTH) {
        for number in value.as_bytes().split(|&b| b == b',') {
            let number = number.trim_ascii();
            if number.is_empty() || !number.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n = std::str::from_utf8(number).ok()?.parse::<u64>().ok()?;
            if length.is_some_and(|l| l != n) {
                return None;
            }
            length = Some(n);
            count += 1;
        }
    }
    length.filter(|_| count > 1)
}

/// Whether a request without a body must say `Content-Length: 0` to an HTTP/1.1 upstream: its
/// method gives a body a meaning (`POST`, `PUT`, `PATCH`), and it has neither a length nor
/// `Transfer-Encoding`. An HTTP/2 request ends its body with its stream, so a `POST` whose
/// `HEADERS` frame ended the stream may carry no `content-length` (curl's `-X POST` without
/// data does that), and Pingora forwarded it with neither header. RFC 9110 section 8.6 has a
/// client send `Content-Length` for such a method even when it is 0, and servers hold it to
/// that: IIS answers `411 Length Required`.
fn needs_content_length_0(req: &RequestHeader) -> bool {
    matches!(
        req.method,
        http::Method::POST | http::Method::PUT | http::Method::PATCH
    ) && !req.headers.contains_key(http::header::CONTENT_LENGTH)
        && !req.headers.contains_key(http::header::TRANSFER_ENCODING)
}

/// Joins the `cookie` fields of an HTTP/2 request into one, `; ` between them (RFC 9113
/// section 8.2.3). An HTTP/2 client may send its cookies as several fields (the "crumbs" of
/// HPACK, which compress better), and they must be joined before the request goes to an
/// HTTP/1.1 server, where a request has one `Cookie` header (RFC 6265 section 5.4): an upstream
/// may read the first alone, or join them with `, ` into one cookie's value, and a user's
/// session cookie goes missing. Pingora forwards the crumbs as they came. Done before the
/// rules run, so they, the audit log and the upstream see the one header, as nginx's HTTP/2
/// module joins them before ModSecurity sees the request.
///
/// A joined value that is not a valid header value leaves the crumbs as they are; it cannot
/// happen (each crumb was one), and a request is never failed for it.
fn join_cookie_crumbs(req: &mut RequestHeader) {
    let mut crumbs = req.headers.get_all("cookie").iter();
    let (Some(first), Some(_)) = (crumbs.next(), crumbs.next()) else {
        return;
    };
    let mut joined = first.as_bytes().to_vec();
    for crumb in req.headers.get_all("cookie").iter().skip(1) {
        joined.extend_from_slice(b"; ");
        joined.extend_from_slice(crumb.as_bytes());
    }
    let Ok(joined) = http::HeaderValue::from_bytes(&joined) else {
        return;
    };
    req.remove_header("cookie");
    // Only an invalid name fails, and `cookie` is valid.
    let _ = req.insert_header("cookie", joined);
}

/// What became of a request's protocol upgrade, for the audit log: `None` without one;
/// `forwarded` for a WebSocket handshake to a site with `websockets: true`; otherwise
/// `refused`, forwarded as a plain request. The test is Pingora's own: an HTTP/1.1 request
/// whose `Upgrade` is `websocket`; it forwards no other upgrade (`h2c`, say) at all.
fn upgrade_outcome(req: &RequestHeader, websockets: bool) -> Option<&'static str> {
    let upgrade = req.headers.get("upgrade")?;
    let websocket = req.version == http::Version::HTTP_11
        && upgrade.as_bytes().eq_ignore_ascii_case(b"websocket");
    Some(if websockets && websocket {
        "forwarded"
    } else {
        "refused"
    })
}

/// The client in an X-Forwarded-For chain a trusted peer sent, and the part of the chain worth
/// forwarding.
///
/// Each proxy appends the address it got the request from, so the chain reads
/// `client, proxy1, proxy2` — but everything left of the first hop we trust was written by
/// whoever sent the request, and a client can start the chain with any address it likes. So the
/// chain is read from the right: trusted proxies are skipped, and the first address that is not
/// a trusted proxy is the client. What lies left of it is dropped, because External ID believes
/// the left-most address (Conditional Access, `{Context:IPAddress}`). An entry that is not an
/// address ends the walk: the hop right of it is the best we know. `None` when the chain gives
/// no address at all.
fn client_from_chain<'a>(
    hops: &[&'a str],
    trusted: impl Fn(IpAddr) -> bool,
) -> Option<(IpAddr, Vec<&'a str>)> {
    let mut client: Option<(IpAddr, usize)> = None;
    for (i, hop) in hops.iter().enumerate().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = Some((ip, i));
        if !trusted(ip) {
            break;
        }
    }
    let (ip, i) = client?;
    Some((ip, hops.get(i..).map(<[&str]>::to_vec).unwrap_or_default()))
}

impl Waf {
    /// The client address: the peer, or what a trusted peer says in X-Forwarded-For.
    fn resolve_client(&self, snapshot: &Snapshot, req: &RequestHeader, ctx: &mut Ctx) {
        ctx.client = ctx.peer;
        let Some(peer) = ctx.peer else { return };
        if !snapshot.is_trusted(peer) {
            return;
        }
        let hops: Vec<&str> = req
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        if let Some((client, chain)) = client_from_chain(&hops, |ip| snapshot.is_trusted(ip)) {
            ctx.client = Some(client);
            ctx.trusted_xff = Some(chain.join(", "));
        }
        // A load balancer that ended the client's TLS talks plain HTTP to us: the scheme the
        // client used, which the upstream builds its redirect URLs from, is the balancer's
        // word. One value only: a list would need each hop's trust, as X-Forwarded-For does.
        let mut protos = req.headers.get_all("x-forwarded-proto").iter();
        if let (Some(proto), None) = (protos.next(), protos.next()) {
            let proto = proto.as_bytes().trim_ascii();
            if proto.eq_ignore_ascii_case(b"https") {
                ctx.trusted_proto = Some("https");
            } else if proto.eq_ignore_ascii_case(b"http") {
                ctx.trusted_proto = Some("http");
            }
        }
    }

    /// Reads the body ahead when it fits the inspection limit. `Ok(Err(true))`: the request was
    /// answered (413).
    async fn pre_read_body(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        snapshot: &Snapshot,
    ) -> Result<std::result::Result<Option<Vec<u8>>, bool>> {
        let body_empty = session.is_body_empty();
        let req = session.req_header();
        let content_length = match header_str(req, "content-length") {
            Some(v) => Some(
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| http_error(400, "invalid Content-Length"))?,
            ),
            None => None,
        };
        let limit = snapshot.limits.max_body_inspect;
        let policy = snapshot.limits.large_body;
        if content_length.is_some_and(|n| n > limit) {
            if policy == LargeBody::Reject {
                return refuse_too_large(session, ctx).await.map(Err);
            }
            ctx.body = "over the inspection limit: forwarded uninspected";
            tracing::info!(parent: ctx.span(), "Content-Length over the inspection limit: forwarded uninspected");
            stream_body(session, ctx, snapshot);
            return Ok(Ok(None));
        }
        let is_h1 = req.version != pingora::http::Version::HTTP_2;
        let has_body = content_length.is_some_and(|n| n > 0)
            || req.headers.contains_key("transfer-encoding")
            || (!is_h1 && content_length.is_none() && !body_empty);
        if !has_body {
            ctx.body = "none";
            return Ok(Ok(None));
        }
        // A client waiting for `100 Continue` gets it from us: the body is read here.
        let expects_continue = header_str(req, "expect")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
        if expects_continue && is_h1 {
            let resp = ResponseHeader::build(100, Some(0))?;
            session
                .as_downstream_mut()
                .write_response_header(Box::new(resp))
                .await?;
            ctx.continue_sent = true;
        }
        session.enable_retry_buffering();
        // The whole body within the deadline, not each read: a client trickling a byte at a
        // time would otherwise hold the request (and its connection) for as long as it likes.
        // Nothing read yet: the deadline is `body_timeout_ms` from now.
        let read_ahead = StreamedBody::new(Duration::from_millis(snapshot.limits.body_timeout_ms));
        let deadline = tokio::time::Instant::from_std(read_ahead.deadline());
        let mut buf = Vec::new();
        let mut over = false;
        loop {
            let read = tokio::time::timeout_at(deadline, session.read_request_body()).await;
            let Ok(chunk) = read else {
                return body_too_slow(session, ctx).await.map(Err);
            };
            let Some(chunk) = chunk.map_err(|e| e.into_down())? else {
                break;
            };
            buf.extend_from_slice(&chunk);
            if buf.len() > limit {
                over = true;
                break;
            }
        }
        if !over {
            ctx.body = "inspected";
            return Ok(Ok(Some(buf)));
        }
        if policy == LargeBody::Reject || session.as_downstream().retry_buffer_truncated() {
            return refuse_too_large(session, ctx).await.map(Err);
        }
        ctx.body = "over the inspection limit: forwarded uninspected";
        tracing::info!(parent: ctx.span(), "body over the inspection limit: forwarded uninspected");
        // The part read ahead is forwarded first, through the filter that counts it; the
        // pace is counted from when the reading began.
        let streamed = ctx.streamed_body.insert(read_ahead);
        set_body_read_timeout(session, streamed);
        Ok(Ok(None))
    }
}

/// Answers 408 for a body that did not arrive in time; `Ok(true)`: the request is done.
async fn body_too_slow(session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
    ctx.body = BODY_TIMED_OUT;
    refuse(
        session,
        ctx,
        "rejected",
        408,
        "Request Timeout",
        "The request body did not arrive in time.",
    )
    .await
}

/// Holds the body, to be forwarded as it arrives, to its pace (see [`StreamedBody`]).
fn stream_body(session: &mut Session, ctx: &mut Ctx, snapshot: &Snapshot) {
    if session.is_body_empty() {
        // No body: an upstream that times out is slow on its own.
        return;
    }
    let allowance = Duration::from_millis(snapshot.limits.body_timeout_ms);
    let streamed = ctx.streamed_body.insert(StreamedBody::new(allowance));
    set_body_read_timeout(session, streamed);
}

/// Lets the next HTTP/1 read of the body wait until the body's deadline at most (a no-op for
/// HTTP/2). `false`: the deadline has passed.
fn set_body_read_timeout(session: &mut Session, body: &StreamedBody) -> bool {
    let left = body.deadline().saturating_duration_since(Instant::now());
    session.as_downstream_mut().set_read_timeout(Some(left));
    !left.is_zero()
}

/// Answers a request over a rate limit: 429 with `Retry-After`; `Ok(true)`: the request is done.
async fn limited(session: &mut Session, ctx: &mut Ctx, retry_after: u64) -> Result<bool> {
    let limit = ctx.rate_limit.as_deref().unwrap_or_default();
    tracing::info!(parent: ctx.span(), limit, retry_after, "over a rate limit");
    ctx.action = "limited";
    let json = prefers_json(header_str(session.req_header(), "accept"));
    let text = format!("Too many requests from your address. Try again in {retry_after} s.");
    let page = Page::refusal(json, 429, "Too Many Requests", &text, &ctx.request_id);
    let mut resp = page_header(&page, &ctx.request_id)?;
    resp.insert_header("Retry-After", retry_after.to_string())?;
    write_page(session, resp, page).await?;
    Ok(true)
}

async fn refuse_too_large(session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
    refuse(
        session,
        ctx,
        "rejected",
        413,
        "Payload Too Large",
        "The request body is over the inspection limit.",
    )
    .await
}

impl Ctx {
    /// The request's span, made when the request first logs something. Most requests log
    /// nothing, and the log layer formats a span's fields when it is made: about 1% of the
    /// proxy's time per request when every request made one.
    fn span(&self) -> &tracing::Span {
        self.span
            .get_or_init(|| tracing::info_span!("request", id = %self.request_id))
    }
}

#[async_trait]
impl ProxyHttp for Waf {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        let request_id = request_id();
        Ctx {
            span: OnceLock::new(),
            request_id,
            started: Instant::now(),
            snapshot: None,
            site: None,
            peer: None,
            client: None,
            trusted_proto: None,
            trusted_xff: None,
            host: String::new(),
            tls: false,
            continue_sent: false,
            verdict: None,
            rate_limit: None,
            inspection: Duration::ZERO,
            action: "pass",
            body: "not read",
            streamed_body: None,
            upstream_started: None,
            upstream_elapsed: None,
            upstream_status: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let snapshot = self.live.load();
        ctx.snapshot = Some(snapshot.clone());
        // Pingora waits for ever on a client that takes no bytes of its answer (a slow-read
        // attack holds the connection, its file descriptor and the answer's buffers so); each
        // write gets this long, as each of nginx's gets `send_timeout`.
        session.set_write_timeout(Some(Duration::from_millis(snapshot.limits.send_timeout_ms)));
        if session.req_header().version == http::Version::HTTP_2 {
            join_cookie_crumbs(session.req_header_mut());
        }
        let req = session.req_header();
        // Without a Host header: an HTTP/2 request's `:authority`, or the host an HTTP/1.0
        // request names in an absolute-form target (Pingora refuses one that differs from the
        // Host header, when there is one).
        ctx.host = header_str(req, "host")
            .map(str::to_string)
            .or_else(|| req.uri.authority().map(|a| a.to_string()))
            .or_else(|| {
                absolute_form(req.raw_path())
                    .map(|(authority, _)| String::from_utf8_lossy(authority).into_owned())
            })
            .unwrap_or_default();
        ctx.peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        ctx.tls = session
            .as_downstream()
            .digest()
            .is_some_and(|d| d.ssl_digest.is_some());

        let Some(site) = snapshot.site_for(&ctx.host) else {
            let host = ctx.host.clone();
            tracing::info!(parent: ctx.span(), host = %host, "no site for this Host");
            return refuse(
                session,
                ctx,
                "misdirected",
                421,
                "Misdirected Request",
                "This server does not serve that host name.",
            )
            .await;
        };
        ctx.site = Some(site.index);
        self.resolve_client(&snapshot, session.req_header(), ctx);

        if header_bytes(session.req_header()) > snapshot.limits.max_header_bytes {
            return refuse(
                session,
                ctx,
                "rejected",
                431,
                "Request Header Fields Too Large",
                "The request line and headers are over the size limit.",
            )
            .await;
        }

        let req = session.req_header();
        if !content_length_is_one_number(req) || !target_has_a_form(&req.method, req.raw_path()) {
            return refuse(
                session,
                ctx,
                "rejected",
                400,
                "Bad Request",
                "The request is malformed.",
            )
            .await;
        }

        if let Some(client) = ctx.client {
            let req = session.req_header();
            let uncounted = |limit: &rate_limit::RateLimit| {
                self.metrics
                    .rate_limit_uncounted
                    .with_label_values(&[site.name.as_str(), limit.name.as_str()])
                    .inc();
            };
            let over = rate_limit::check(
                &site.rate_limits,
                client,
                &req.method,
                req.raw_path(),
                uncounted,
            );
            if let Some(over) = over {
                self.metrics
                    .rate_limited
                    .with_label_values(&[site.name.as_str(), over.limit.as_str()])
                    .inc();
                ctx.rate_limit = Some(over.limit);
                if site.site.mode == SiteMode::Block {
                    return limited(session, ctx, over.retry_after).await;
                }
                ctx.action = "detected";
            }
        }

        // A site whose ruleset has no rule at its paranoia level has nothing to inspect: it is
        // a plain proxy. Parsing the request for no rule, or holding its body back, would only
        // cost time (about a tenth of the proxy's, measured in the load test's `waf-off` mode).
        if site.program.rule_count() == 0 {
            ctx.body = "not read: the site has no rules";
            stream_body(session, ctx, &snapshot);
            return Ok(false);
        }

        let body = match self.pre_read_body(session, ctx, &snapshot).await? {
            Ok(body) => body,
            Err(done) => return Ok(done),
        };

        let request = engine_request(session.req_header(), ctx.client, body.as_deref());
        let started = Instant::now();
        let mut profile = site.profile_due().then(Profile::new);
        let verdict = match profile.as_mut() {
            Some(profile) => site.program.inspect_profiled(&request, profile),
            None => site.program.inspect(&request),
        };
        ctx.inspection = started.elapsed();
        if let Some(profile) = &profile {
            self.metrics
                .record_profile(&site.name, &site.profile_series, profile);
        }
        self.metrics
            .inspection_seconds
            .with_label_values(&[site.name.as_str()])
            .observe(ctx.inspection.as_secs_f64());
        for m in &verdict.matches {
            self.metrics
                .rule_matches
                .with_label_values(&[site.name.as_str(), &m.rule_id.to_string()])
                .inc();
        }
        ctx.action = if verdict.is_blocking() {
            "blocked"
        } else if verdict.block_status().is_some() || ctx.rate_limit.is_some() {
            "detected"
        } else if !verdict.matches.is_empty() {
            "flagged"
        } else {
            "pass"
        };
        if ctx.action != "pass" {
            let rules: Vec<String> = verdict
                .matches
                .iter()
                .map(|m| {
                    let target = m.values.first().map(|x| x.target.as_str()).unwrap_or("");
                    format!("{}@{}", m.rule_id, target)
                })
                .collect();
            tracing::warn!(
                parent: ctx.span(),
                site = %site.name,
                client = %ctx.client.map(|c| c.to_string()).unwrap_or_default(),
                method = %session.req_header().method,
                uri = %String::from_utf8_lossy(session.req_header().raw_path()),
                score = verdict.anomaly_score,
                rules = %rules.join(","),
                body_error = verdict.body_error.as_deref().unwrap_or_default(),
                "waf {}", ctx.action
            );
        }
        let blocking = verdict.is_blocking();
        let status = verdict.block_status().unwrap_or(403);
        ctx.verdict = Some(verdict);
        if blocking {
            let json = prefers_json(header_str(session.req_header(), "accept"));
            let page = Page::blocked(&site.block_page, json, status, &ctx.request_id, &ctx.host);
            respond(session, page, &ctx.request_id).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some(streamed) = ctx.streamed_body.as_mut() else {
            return Ok(());
        };
        streamed.received += body.as_ref().map_or(0, |b| b.len() as u64);
        streamed.complete = end_of_stream;
        if end_of_stream || set_body_read_timeout(session, streamed) {
            return Ok(());
        }
        ctx.body = BODY_TIMED_OUT;
        Err(http_error(408, "request body too slow"))
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        // An HTTP/1 read that waited past a streamed body's deadline, or an upstream that
        // waited for the rest of a body that stopped coming (HTTP/2, see `StreamedBody`).
        let body_stalled = match (&ctx.streamed_body, e.esource()) {
            (Some(_), ErrorSource::Downstream) => true,
            (Some(body), ErrorSource::Upstream) => !body.complete,
            _ => false,
        };
        if body_stalled && *e.etype() == ErrorType::ReadTimedout {
            ctx.body = BODY_TIMED_OUT;
        }
        if ctx.body == BODY_TIMED_OUT {
            // Part of the body has gone upstream: the upstream connection is dropped with the
            // request, and the client gets our page if no answer has begun.
            ctx.action = "rejected";
            if session.response_written().is_none() {
                let _ = body_too_slow(session, ctx).await;
            }
            return FailToProxy {
                error_code: 408,
                can_reuse_downstream: false,
            };
        }
        // Pingora's own status for the error.
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    // An HTTP/2 stream its client reset, while the answer was awaited or
                    // written, has no one to answer: an abandoned request, as a closed
                    // HTTP/1 connection is (it was answered as malformed, and counted so).
                    ErrorType::H2Error if client_faults::is_h2_stream_reset(e) => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code > 0 && session.response_written().is_none() {
            let client_error = (400..500).contains(&code);
            let title = http::StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or(if client_error { "Bad Request" } else { "Error" });
            if client_error {
                // The client's mistake (a body whose chunked framing is broken): refused with
                // the proxy's page and counted as refused, where Pingora's bare page left it
                // `pass`.
                let _ = refuse(
                    session,
                    ctx,
                    "rejected",
                    code,
                    title,
                    "The request is malformed.",
                )
                .await;
            } else {
                // The upstream failed (502, or the status Pingora gave the failure), or the
                // proxy did: a page with the request id, which the audit and log lines carry,
                // so that a user's "sign-in is down" report leads to the error. Pingora's own
                // is empty.
                let text = if (500..600).contains(&code) && *e.esource() == ErrorSource::Upstream {
                    "The service behind this site did not answer. Please try again in a moment."
                } else {
                    "The request could not be handled. Please try again in a moment."
                };
                let json = prefers_json(header_str(session.req_header(), "accept"));
                let page = Page::refusal(json, code, title, text, &ctx.request_id);
                let _ = respond(session, page, &ctx.request_id).await;
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, session: &Session, ctx: &Ctx, e: &Error) -> bool {
        // A client too slow with its body: an `INFO` line and the audit log say so (see
        // `fail_to_proxy`).
        if ctx.body == BODY_TIMED_OUT {
            return true;
        }
        let req = session.req_header();
        let request = format_args!(
            "{} {} from {}",
            req.method,
            String::from_utf8_lossy(req.raw_path()),
            ctx.peer.map(|p| p.to_string()).unwrap_or_default()
        );
        self.client_faults.client_error(e, request)
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let snapshot = ctx.routed_snapshot()?;
        let site = ctx
            .site(&snapshot)
            .ok_or_else(|| http_error(421, "no site"))?;
        let u = &site.site.upstream;
        let address: SocketAddr = match &site.balancer {
            Some(lb) => lb
                .select(b"", 256)
                .and_then(|b| b.addr.as_inet().copied())
                .ok_or_else(|| http_error(502, "no healthy upstream"))?,
            None => {
                let name = u.address.all().first().map(String::as_str).unwrap_or("");
                match name.parse::<SocketAddr>() {
                    Ok(a) => a,
                    // A host name: resolved per request (upstream edges change addresses), on
                    // Tokio's resolver so the worker never blocks.
                    Err(_) => tokio::net::lookup_host(name)
                        .await
                        .ok()
                        .and_then(|mut it| it.next())
                        .ok_or_else(|| http_error(502, "upstream name does not resolve"))?,
                }
            }
        };
        let sni = u.sni.clone().unwrap_or_else(|| site.upstream_host.clone());
        let mut peer = HttpPeer::new(address, u.tls, sni);
        peer.options.verify_cert = u.verify;
        peer.options.verify_hostname = u.verify;
        if let Some(ca) = &site.ca {
            peer.options.ca = Some(ca.clone());
        }
        let connect = Duration::from_millis(u.connect_timeout_ms);
        peer.options.connection_timeout = Some(connect);
        peer.options.total_connection_timeout = Some(connect);
        peer.options.read_timeout = Some(Duration::from_millis(u.read_timeout_ms));
        // Pingora waits for ever on an upstream that stops taking the request's body, holding
        // the client's request, its connection and the upstream's meanwhile (nginx gives up
        // after `proxy_send_timeout`): each write gets the read timeout.
        peer.options.write_timeout = Some(Duration::from_millis(u.read_timeout_ms));
        // Pingora's default forwards a WebSocket handshake, and once the upstream answers 101
        // the connection is a byte tunnel: whatever the client sends next reaches the upstream
        // uninspected (a "WebSocket smuggling" bypass wherever the upstream can be made to
        // answer 101). A site that does not need WebSockets gets its upgrade requests as plain
        // requests, as nginx forwards them by default; an upstream that switches protocols
        // anyway is answered 502 by Pingora.
        peer.options.http_upstream_request_policy = if site.site.websockets {
            HttpUpstreamRequestPolicy::standard()
        } else {
            HttpUpstreamRequestPolicy::deny_upgrades()
        };
        // Pingora's connection-reuse key leaves out the CA: never share upstream connections
        // between sites (or between ruleset generations, which may change a site's CA), so a
        // connection verified against one CA never serves another.
        peer.group_key = (snapshot.generation << 16) | site.index as u64;
        ctx.upstream_started = Some(Instant::now());
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let snapshot = ctx.routed_snapshot()?;
        let site = ctx
            .site(&snapshot)
            .ok_or_else(|| http_error(421, "no site"))?;
        for name in hop_by_hop(&upstream_request.headers) {
            upstream_request.remove_header(name.as_str());
        }
        if session.req_header().version == http::Version::HTTP_2
            && session.is_body_empty()
            && needs_content_length_0(upstream_request)
        {
            upstream_request.insert_header("Content-Length", "0")?;
        }
        if let Some((_, origin)) = absolute_form(upstream_request.raw_path()) {
            upstream_request.set_raw_path(&origin)?;
            // An HTTP/1.0 request may name its host in the target alone; the origin form no
            // longer does, so the Host header says it.
            if upstream_request.headers.get("host").is_none() && !ctx.host.is_empty() {
                upstream_request.insert_header("Host", ctx.host.as_str())?;
            }
        }
        let peer = ctx.peer.map(|p| p.to_string()).unwrap_or_default();
        let xff = match &ctx.trusted_xff {
            Some(chain) if !peer.is_empty() => format!("{chain}, {peer}"),
            Some(chain) => chain.clone(),
            None => peer,
        };
        upstream_request.remove_header("x-forwarded-for");
        upstream_request.remove_header("forwarded");
        upstream_request.remove_header("x-real-ip");
        let peer_trusted = ctx.peer.is_some_and(|p| snapshot.is_trusted(p));
        for name in spoofed_client_headers(&upstream_request.headers, peer_trusted) {
            upstream_request.remove_header(&name);
        }
        if !xff.is_empty() {
            upstream_request.insert_header("X-Forwarded-For", xff)?;
        }
        let proto = match ctx.trusted_proto {
            Some(proto) => proto,
            None if ctx.tls => "https",
            None => "http",
        };
        upstream_request.insert_header("X-Forwarded-Proto", proto)?;
        // An HTTP/1.0 request may come without a Host: then it has none to forward either (and
        // none of the client's own).
        upstream_request.remove_header("x-forwarded-host");
        if !ctx.host.is_empty() {
            upstream_request.insert_header("X-Forwarded-Host", ctx.host.as_str())?;
        }
        if site.site.host_header == HostHeader::Upstream {
            upstream_request.insert_header("Host", site.upstream_host.as_str())?;
        }
        upstream_request.insert_header("X-Request-Id", ctx.request_id.as_str())?;
        if ctx.continue_sent {
            // The body was read already and goes out with the headers.
            upstream_request.remove_header("expect");
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        ctx.upstream_status = Some(upstream_response.status.as_u16());
        ctx.upstream_elapsed = ctx.upstream_started.map(|t| t.elapsed());
        // A 101 to anything but a WebSocket handshake the site forwards is the upstream
        // switching protocols on its own (a plain request, an HTTP/2 stream, which has no
        // 101 at all). Pingora refuses it for a handshake it did not forward; to a plain
        // HTTP/1 request it passed the 101 on and closed the connection, and to an HTTP/2
        // request the client's stream was reset. 502, with the proxy's page, for both.
        if upstream_response.status == http::StatusCode::SWITCHING_PROTOCOLS {
            let websockets = ctx
                .snapshot
                .as_deref()
                .and_then(|s| ctx.site(s))
                .is_some_and(|s| s.site.websockets);
            if upgrade_outcome(session.req_header(), websockets) != Some("forwarded") {
                return Err(Error::explain(
                    ErrorType::HTTPStatus(502),
                    "the upstream switched protocols for a request that did not ask it to",
                )
                .into_up());
            }
        }
        // RFC 9110 section 8.6: no `Content-Length` in a 1xx or 204 answer. Pingora sends a
        // 204 without a body whatever its length says, but passed the header on, and an HTTP/2
        // client then had its stream reset: the length promised bytes its end never brought.
        let status = upstream_response.status;
        if (status.is_informational() && status != http::StatusCode::SWITCHING_PROTOCOLS)
            || status == http::StatusCode::NO_CONTENT
        {
            upstream_response.remove_header(&http::header::CONTENT_LENGTH);
        }
        for name in hop_by_hop(&upstream_response.headers) {
            upstream_response.remove_header(name.as_str());
        }
        // `Upgrade` in any other answer than a 101 is the upstream's offer to switch its own
        // connection's protocol (Apache with HTTP/2 offers `h2,h2c` on every answer). It is
        // hop-by-hop, and this proxy takes no such switch from a client: Pingora passed it on
        // over HTTP/1 (it drops it over HTTP/2, where it is not allowed).
        if upstream_response.status != http::StatusCode::SWITCHING_PROTOCOLS {
            upstream_response.remove_header("upgrade");
        }
        if let Some(length) = content_length_list(&upstream_response.headers) {
            upstream_response.insert_header(http::header::CONTENT_LENGTH, length.to_string())?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        // Every answer carries the id the audit log knows the request by, so a user or a support
        // desk can quote it for a forwarded request too.
        response.insert_header("X-Request-Id", ctx.request_id.as_str())?;
        Ok(())
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let snapshot = ctx.snapshot.clone();
        let site = snapshot.as_deref().and_then(|s| ctx.site(s));
        let site_name = site.map(|s| s.name.as_str()).unwrap_or("");
        let upstream_failed =
            e.is_some_and(|e| *e.esource() == ErrorSource::Upstream) && ctx.body != BODY_TIMED_OUT;
        if upstream_failed {
            self.metrics
                .upstream_errors
                .with_label_values(&[site_name])
                .inc();
            tracing::warn!(parent: ctx.span(), site = site_name, "upstream failed: {}", e.map(|e| e.to_string()).unwrap_or_default());
        }
        self.metrics
            .requests
            .with_label_values(&[site_name, ctx.action])
            .inc();
        let flagged = ctx.action != "pass" || upstream_failed;
        if !self.audit.wants(flagged) {
            return;
        }
        let empty = Default::default();
        let verdict = ctx.verdict.as_ref();
        let req = session.req_header();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let record = AuditRecord {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            request_id: &ctx.request_id,
            site: site_name,
            client: ctx.client.map(|c| c.to_string()),
            peer: ctx.peer.map(|c| c.to_string()),
            method: req.method.as_str(),
            uri: String::from_utf8_lossy(req.raw_path()).into_owned(),
            host: &ctx.host,
            action: ctx.action,
            rate_limit: ctx.rate_limit.as_deref(),
            status: session.response_written().map(|r| r.status.as_u16()),
            upstream_status: ctx.upstream_status,
            anomaly_score: verdict.map(|v| v.anomaly_score).unwrap_or(0),
            scores: verdict.map(|v| &v.scores).unwrap_or(&empty),
            rules: verdict
                .map(|v| {
                    v.matches
                        .iter()
                        .map(|m| AuditRule {
                            id: m.rule_id,
                            message: &m.message,
                            logdata: &m.logdata,
                            score: m.score,
                            matched: m
                                .values
                                .iter()
                                .map(|x| AuditValue {
                                    target: &x.target,
                                    value: &x.value,
                                    operator: &x.operator,
                                    evidence: &x.evidence,
                                })
                                .collect(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            body: ctx.body,
            body_error: verdict.and_then(|v| v.body_error.as_deref()),
            upgrade: upgrade_outcome(req, site.is_some_and(|s| s.site.websockets)),
            durations_ms: Durations {
                total: ms(ctx.started.elapsed()),
                inspection: ms(ctx.inspection),
                upstream: ctx.upstream_elapsed.map(ms),
            },
            error: e.map(|e| e.to_string()),
        };
        self.audit.write(&record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_length_must_be_one_number() {
        for (values, one_number) in [
            (&[][..], true),
            (&["3"][..], true),
            (&["0"][..], true),
            (&["03"][..], true),
            (&[" 3\t"][..], true),
            (&["3, 3"][..], false),
            (&["3,3"][..], false),
            (&["3 3"][..], false),
            (&["+3"][..], false),
            (&["-1"][..], false),
            (&["0x3"][..], false),
            (&[""][..], false),
            (&["3", "3"][..], false),
            (&["3", "x"][..], false),
        ] {
            let mut req = RequestHeader::build("POST", b"/", None).unwrap();
            for v in values {
                req.append_header("content-length", *v).unwrap();
            }
            assert_eq!(content_length_is_one_number(&req), one_number, "{values:?}");
        }
    }

    #[test]
    fn spoofed_client_headers_are_found() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for name in [
            "X_Forwarded_For",
            "x-forwarded_for",
            "X_FORWARDED_HOST",
            "x_request_id",
            "X_Real_IP",
            "x-forwarded-for",
            "x_forwarded_for_x",
            "x_custom",
            "forwarded",
            "True-Client-IP",
            "x_azure_clientip",
            "X-Azure-SocketIP",
            "x-client-ip-x",
            "X-Original-URL",
        ] {
            req.append_header(name.to_string(), "1").unwrap();
        }
        let found = |trusted| -> Vec<String> {
            spoofed_client_headers(&req.headers, trusted)
                .iter()
                .map(|n| n.as_str().to_string())
                .collect()
        };
        let lookalikes = [
            "x_forwarded_for",
            "x-forwarded_for",
            "x_forwarded_host",
            "x_request_id",
            "x_real_ip",
        ];
        assert_eq!(found(true), lookalikes);
        let mut untrusted = lookalikes.to_vec();
        untrusted.extend([
            "true-client-ip",
            "x_azure_clientip",
            "x-azure-socketip",
            "x-original-url",
        ]);
        assert_eq!(found(false), untrusted);
    }

    #[test]
    fn a_target_must_have_a_form_of_its_method() {
        use http::Method;
        for (method, target, has_a_form) in [
            (Method::GET, "/", true),
            (Method::GET, "/a/b?c=d", true),
            (Method::GET, "//a", true),
            (Method::GET, "/?x=%20", true),
            (Method::GET, "http://login.contoso.com/a", true),
            (Method::GET, "https://login.contoso.com", true),
            (Method::OPTIONS, "*", true),
            (Method::GET, "*", false),
            (Method::POST, "?x=eval(1)", false),
            (Method::GET, "x", false),
            (Method::GET, "login.contoso.com:80", false),
            (Method::GET, "", false),
            (Method::GET, "%20/x", false),
        ] {
            assert_eq!(
                target_has_a_form(&method, target.as_bytes()),
                has_a_form,
                "{method} {target:?}"
            );
        }
    }

    #[test]
    fn an_answers_length_list_is_taken_as_its_one_number() {
        for (values, chunked, one) in [
            (&[][..], false, None),
            (&["6"][..], false, None),
            (&["6, 6"][..], false, Some(6)),
            (&["6,6,6"][..], false, Some(6)),
            (&[" 6 ,\t6 "][..], false, Some(6)),
            (&["6", "6"][..], false, Some(6)),
            (&["6", "6, 6"][..], false, Some(6)),
            (&["6, 7"][..], false, None),
            (&["6", "7"][..], false, None),
            (&["6, "][..], false, None),
            (&["6, +6"][..], false, None),
            (&["6, 6"][..], true, None),
        ] {
            let mut answer = ResponseHeader::build(200, None).unwrap();
            for v in values {
                answer.append_header("content-length", *v).unwrap();
            }
            if chunked {
                answer
                    .append_header("transfer-encoding", "chunked")
                    .unwrap();
            }
            assert_eq!(content_length_list(&answer.headers), one, "{values:?}");
        }
    }

    #[test]
    fn cookie_crumbs_are_joined_into_one_header_in_their_order() {
        for (crumbs, joined) in [
            (&[][..], None),
            (&["a=1"][..], Some("a=1")),
            (&["a=1", "b=2"][..], Some("a=1; b=2")),
            (
                &["a=1; b=2", "c=3", "d=\"x y\""][..],
                Some("a=1; b=2; c=3; d=\"x y\""),
            ),
        ] {
            let mut req = RequestHeader::build("GET", b"/", None).unwrap();
            req.append_header("accept", "*/*").unwrap();
            for crumb in crumbs {
                req.append_header("cookie", *crumb).unwrap();
            }
            join_cookie_crumbs(&mut req);
            let cookies: Vec<&[u8]> = req
                .headers
                .get_all("cookie")
                .iter()
                .map(|v| v.as_bytes())
                .collect();
            let expected: Vec<&[u8]> = joined.map(str::as_bytes).into_iter().collect();
            assert_eq!(cookies, expected, "{crumbs:?}");
            assert_eq!(req.headers.get("accept").unwrap(), "*/*");
        }
        // Bytes that are not UTF-8 (obs-text) are kept as they are.
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("cookie", http::HeaderValue::from_bytes(b"a=\xe9").unwrap())
            .unwrap();
        req.append_header("cookie", "b=2").unwrap();
        join_cookie_crumbs(&mut req);
        assert_eq!(
            req.headers.get("cookie").unwrap().as_bytes(),
            b"a=\xe9; b=2"
        );
    }

    #[test]
    fn an_absolute_form_target_is_split_into_its_authority_and_origin_form() {
        for (target, split) in [
            (
                &b"http://login.contoso.com/a/b?c=d"[..],
                Some((&b"login.contoso.com"[..], &b"/a/b?c=d"[..])),
            ),
            (
                b"https://login.contoso.com:8443/",
                Some((b"login.contoso.com:8443", b"/")),
            ),
            (
                b"http://login.contoso.com",
                Some((b"login.contoso.com", b"/")),
            ),
            (
                b"http://login.contoso.com?x=http://y/",
                Some((b"login.contoso.com", b"/?x=http://y/")),
            ),
            (
                b"http://user@login.contoso.com/\xff",
                Some((b"login.contoso.com", b"/\xff")),
            ),
            (b"/a?x=http://b/c", None),
            (b"/", None),
            (b"*", None),
            (b"", None),
            (b"login.contoso.com:443", None),
        ] {
            let got = absolute_form(target);
            assert_eq!(
                got.as_ref().map(|(a, o)| (*a, o.as_slice())),
                split,
                "{}",
                target.escape_ascii()
            );
        }
    }

    #[test]
    fn a_streamed_body_gets_the_body_timeout_for_each_64_kib() {
        let mut body = StreamedBody::new(Duration::from_secs(30));
        for (received, seconds) in [
            (0, 30.0),
            (1, 30.0),
            (64 * 1024, 30.0),
            (96 * 1024, 45.0),
            (1024 * 1024, 480.0),
        ] {
            body.received = received;
            let allowed = body.deadline() - body.started;
            assert_eq!(allowed.as_secs_f64(), seconds, "{received} bytes");
        }
    }

    #[test]
    fn request_ids_are_16_hex_and_distinct() {
        let a = request_id();
        let b = request_id();
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop() {
        let trusted = |ip: IpAddr| ip.to_string().starts_with("10.");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // A spoofed address left of the real client is dropped.
        let (c, chain) =
            client_from_chain(&["6.6.6.6", "203.0.113.7", "10.0.0.2"], trusted).unwrap();
        assert_eq!(c, ip("203.0.113.7"));
        assert_eq!(chain, ["203.0.113.7", "10.0.0.2"]);
        // Only trusted hops: the left-most is the client.
        let (c, chain) = client_from_chain(&["10.0.0.9", "10.0.0.2"], trusted).unwrap();
        assert_eq!(c, ip("10.0.0.9"));
        assert_eq!(chain.len(), 2);
        // Garbage ends the walk.
        let (c, chain) = client_from_chain(&["1.1.1.1", "junk", "10.0.0.2"], trusted).unwrap();
        assert_eq!(c, ip("10.0.0.2"));
        assert_eq!(chain, ["10.0.0.2"]);
        assert!(client_from_chain(&["junk"], trusted).is_none());
        assert!(client_from_chain(&[], trusted).is_none());
    }

    #[test]
    fn connection_names_hop_by_hop_headers() {
        let mut h = http::HeaderMap::new();
        h.insert("connection", "close, X-Secret".parse().unwrap());
        let names = hop_by_hop(&h);
        assert!(names.contains(&"x-secret".to_string()));
        assert!(names.contains(&"keep-alive".to_string()));
        assert!(!names.contains(&"close".to_string()));
    }
}
