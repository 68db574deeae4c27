//! `waf serve`: the Pingora reverse proxy that inspects every request before forwarding it.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use ipnet::IpNet;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};
use waf_core::rules::Mode;
use waf_core::{Program, Verdict};

use crate::config::{normalize_host, Config, HostHeader, LargeBody, Site, SiteMode};

/// Arguments of `waf serve`.
#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (see docs/config.md); the built-in default config when left out.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Runs the proxy until it is stopped.
pub fn run(args: &Args) -> anyhow::Result<std::process::ExitCode> {
    init_tracing();
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => {
            tracing::info!("no --config: using the built-in default configuration");
            Config::builtin()
        }
    };
    let waf = Waf::new(&config)?;
    let mut conf = pingora::server::configuration::ServerConf {
        threads: config.threads,
        ..Default::default()
    };
    conf.grace_period_seconds = Some(0);
    conf.graceful_shutdown_timeout_seconds = Some(1);
    let mut server = pingora::server::Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = pingora::proxy::http_proxy_service(&server.configuration, waf);
    service.add_tcp(&config.listen);
    server.add_service(service);
    tracing::info!(listen = %config.listen, sites = config.sites.len(), "waf serving");
    server.run_forever()
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// One site, ready to serve.
struct SiteRuntime {
    index: usize,
    hosts: Vec<String>,
    any_host: bool,
    site: Site,
    program: Arc<Program>,
    upstream_host: String,
    ca: Option<Arc<Box<[pingora::tls::x509::X509]>>>,
}

/// The proxy: every site's compiled rules, the trusted networks and the limits.
pub struct Waf {
    sites: Vec<SiteRuntime>,
    trusted: Vec<IpNet>,
    max_body_inspect: usize,
    large_body: LargeBody,
}

impl Waf {
    /// Compiles every site's rules; fails on the first error.
    pub fn new(config: &Config) -> anyhow::Result<Waf> {
        let mut sites = Vec::new();
        for (index, site) in config.sites.iter().enumerate() {
            let program = compile_site(site).with_context(|| format!("sites[{index}].rules"))?;
            let ca = match &site.upstream.ca_file {
                Some(path) => {
                    let pem = std::fs::read(path).with_context(|| {
                        format!(
                            "sites[{index}].upstream.ca_file: reading {}",
                            path.display()
                        )
                    })?;
                    let certs =
                        pingora::tls::x509::X509::stack_from_pem(&pem).with_context(|| {
                            format!("sites[{index}].upstream.ca_file: {}", path.display())
                        })?;
                    Some(Arc::new(certs.into_boxed_slice()))
                }
                None => None,
            };
            let hosts: Vec<String> = site.hosts.iter().map(|h| normalize_host(h)).collect();
            sites.push(SiteRuntime {
                index,
                any_host: hosts.iter().any(|h| h == "*"),
                hosts,
                upstream_host: site.upstream_host(),
                site: site.clone(),
                program: Arc::new(program),
                ca,
            });
        }
        Ok(Waf {
            sites,
            trusted: config.trusted_networks()?,
            max_body_inspect: config.limits.max_body_inspect,
            large_body: config.limits.large_body,
        })
    }

    /// The site for a Host value: an exact name first, then a `*` site.
    fn site_for(&self, host: &str) -> Option<&SiteRuntime> {
        let host = normalize_host(host);
        self.sites
            .iter()
            .find(|s| s.hosts.contains(&host))
            .or_else(|| self.sites.iter().find(|s| s.any_host))
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(&ip))
    }
}

fn compile_site(site: &Site) -> anyhow::Result<Program> {
    let mut set = if site.rules.is_empty() {
        waf_core::RuleSet::new()
    } else {
        waf_core::RuleSet::from_yaml_paths(&site.rules).map_err(|e| anyhow::anyhow!("{e}"))?
    };
    if let Some(p) = site.paranoia {
        set.settings.paranoia = p;
    }
    if let Some(t) = site.anomaly_threshold {
        set.settings.inbound_threshold = t;
    }
    if site.mode == SiteMode::DetectOnly {
        set.settings.mode = Mode::DetectOnly;
    }
    waf_core::compile(&set).map_err(|e| anyhow::anyhow!("{e}"))
}

/// What one request carries through the phases.
#[derive(Default)]
pub struct Ctx {
    request_id: String,
    site: Option<usize>,
    /// The TCP peer.
    peer: Option<IpAddr>,
    /// The X-Forwarded-For a trusted peer sent.
    trusted_xff: Option<String>,
    /// The Host the client asked for.
    host: String,
    /// We answered the client's `Expect: 100-continue` ourselves.
    continue_sent: bool,
}

/// Answers 413 for a body the proxy will not inspect; `Ok(true)`: the request is done.
async fn reject_too_large(session: &mut Session, ctx: &Ctx, why: &str) -> Result<bool> {
    tracing::info!(request_id = %ctx.request_id, "{why}: 413");
    respond(
        session,
        413,
        &ctx.request_id,
        "Payload Too Large",
        "The request body is too large.",
    )
    .await?;
    Ok(true)
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

/// Whether the Accept header prefers JSON over HTML.
fn prefers_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let (mut json, mut html) = (0.0f32, 0.0f32);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in parts {
            if let Some(v) = p.trim().strip_prefix("q=") {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        match media.as_str() {
            "application/json" | "application/problem+json" => json = json.max(q),
            "text/html" | "text/*" | "*/*" => html = html.max(q),
            _ => {}
        }
    }
    json > 0.0 && json > html
}

fn header_str<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn http_error(status: u16, why: &'static str) -> Box<Error> {
    Error::explain(ErrorType::HTTPStatus(status), why)
}

/// Writes a small page (HTML, or JSON when asked for) and closes the connection.
async fn respond(
    session: &mut Session,
    status: u16,
    request_id: &str,
    title: &str,
    text: &str,
) -> Result<()> {
    let json = prefers_json(header_str(session.req_header(), "accept"));
    let (body, content_type) = if json {
        let v = serde_json::json!({ "status": status, "error": title, "request_id": request_id });
        (v.to_string(), "application/json")
    } else {
        (
            format!(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
                 <body><h1>{title}</h1><p>{text}</p><p>Request id: <code>{request_id}</code></p></body></html>\n"
            ),
            "text/html; charset=utf-8",
        )
    };
    let mut resp = ResponseHeader::build(status, Some(5))?;
    resp.insert_header("Content-Type", content_type)?;
    resp.insert_header("Content-Length", body.len().to_string())?;
    resp.insert_header("Cache-Control", "no-store")?;
    resp.insert_header("X-Request-Id", request_id)?;
    session.set_keepalive(None);
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from(body)), true)
        .await?;
    Ok(())
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

fn log_verdict(
    ctx: &Ctx,
    site: &SiteRuntime,
    client: Option<IpAddr>,
    req: &RequestHeader,
    v: &Verdict,
) {
    let rules: Vec<String> = v
        .matches
        .iter()
        .map(|m| {
            let target = m.values.first().map(|x| x.target.as_str()).unwrap_or("");
            format!("{}@{}", m.rule_id, target)
        })
        .collect();
    let action = if v.is_blocking() {
        "blocked"
    } else if v.block_status().is_some() {
        "detected"
    } else {
        "flagged"
    };
    tracing::warn!(
        request_id = %ctx.request_id,
        site = site.index,
        client = %client.map(|c| c.to_string()).unwrap_or_default(),
        method = %req.method,
        uri = %String::from_utf8_lossy(req.raw_path()),
        action,
        status = v.block_status().unwrap_or(0),
        score = v.anomaly_score,
        decided_by = v.decided_by.unwrap_or(0),
        rules = %rules.join(","),
        "waf {action}"
    );
}

#[async_trait]
impl ProxyHttp for Waf {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            request_id: request_id(),
            ..Ctx::default()
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let req = session.req_header();
        let host = header_str(req, "host")
            .map(str::to_string)
            .or_else(|| req.uri.authority().map(|a| a.to_string()))
            .unwrap_or_default();
        ctx.host = host.clone();
        ctx.peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());

        let Some(site) = self.site_for(&host) else {
            tracing::info!(request_id = %ctx.request_id, host = %host, "no site for this Host: 421");
            respond(
                session,
                421,
                &ctx.request_id,
                "Misdirected Request",
                "This server does not serve that host name.",
            )
            .await?;
            return Ok(true);
        };
        ctx.site = Some(site.index);

        // The client address: the peer, or what a trusted peer says in X-Forwarded-For.
        let mut client = ctx.peer;
        if let Some(peer) = ctx.peer {
            if self.is_trusted(peer) {
                let xff: Vec<&str> = req
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                if !xff.is_empty() {
                    let joined = xff.join(", ");
                    if let Some(ip) = joined
                        .split(',')
                        .next()
                        .and_then(|s| s.trim().parse::<IpAddr>().ok())
                    {
                        client = Some(ip);
                    }
                    ctx.trusted_xff = Some(joined);
                }
            }
        }

        // The body: read ahead (and inspect) when it fits the limit.
        let content_length = match header_str(req, "content-length") {
            Some(v) => Some(
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| http_error(400, "invalid Content-Length"))?,
            ),
            None => None,
        };
        let limit = self.max_body_inspect;
        let mut body: Option<Vec<u8>> = None;
        let too_large = content_length.is_some_and(|n| n > limit);
        if !too_large {
            // A client waiting for `100 Continue` gets it from us: the body is read here.
            let expects_continue = header_str(session.req_header(), "expect")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
            let has_body = content_length.is_some_and(|n| n > 0)
                || session
                    .req_header()
                    .headers
                    .contains_key("transfer-encoding");
            if expects_continue && has_body {
                let resp = ResponseHeader::build(100, Some(0))?;
                session
                    .as_downstream_mut()
                    .write_response_header(Box::new(resp))
                    .await?;
                ctx.continue_sent = true;
            }
            session.enable_retry_buffering();
            let mut buf = Vec::new();
            let mut over = false;
            while let Some(chunk) = session
                .read_request_body()
                .await
                .map_err(|e| e.into_down())?
            {
                buf.extend_from_slice(&chunk);
                if buf.len() > limit {
                    over = true;
                    break;
                }
            }
            if over {
                if self.large_body == LargeBody::Reject
                    || session.as_downstream().retry_buffer_truncated()
                {
                    return reject_too_large(session, ctx, "body over the inspection limit").await;
                }
                tracing::info!(request_id = %ctx.request_id, "body over the inspection limit: forwarded uninspected");
            } else {
                body = Some(buf);
            }
        } else if self.large_body == LargeBody::Reject {
            return reject_too_large(session, ctx, "Content-Length over the inspection limit")
                .await;
        } else {
            tracing::info!(request_id = %ctx.request_id, "Content-Length over the inspection limit: forwarded uninspected");
        }

        let request = engine_request(session.req_header(), client, body.as_deref());
        let verdict = site.program.inspect(&request);
        if !verdict.matches.is_empty() || verdict.block_status().is_some() {
            log_verdict(ctx, site, client, session.req_header(), &verdict);
        }
        if verdict.is_blocking() {
            let status = verdict.block_status().unwrap_or(403);
            respond(
                session,
                status,
                &ctx.request_id,
                "Request blocked",
                "This request was blocked by the web application firewall. \
                 If you think this is a mistake, contact the site's support and quote the request id.",
            )
            .await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let site = ctx
            .site
            .and_then(|i| self.sites.get(i))
            .ok_or_else(|| http_error(421, "no site"))?;
        let u = &site.site.upstream;
        let sni = u.sni.clone().unwrap_or_else(|| site.upstream_host.clone());
        let mut peer = HttpPeer::new(u.address.as_str(), u.tls, sni);
        peer.options.verify_cert = u.verify;
        peer.options.verify_hostname = u.verify;
        if let Some(ca) = &site.ca {
            peer.options.ca = Some(ca.clone());
        }
        // Pingora's connection-reuse key leaves out the CA: never share upstream connections
        // between sites, so a connection verified against one site's CA never serves another.
        peer.group_key = site.index as u64;
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some(site) = ctx.site.and_then(|i| self.sites.get(i)) else {
            return Err(http_error(421, "no site"));
        };
        let peer = ctx.peer.map(|p| p.to_string()).unwrap_or_default();
        let xff = match &ctx.trusted_xff {
            Some(chain) if !peer.is_empty() => format!("{chain}, {peer}"),
            Some(chain) => chain.clone(),
            None => peer,
        };
        upstream_request.remove_header("x-forwarded-for");
        upstream_request.remove_header("forwarded");
        upstream_request.remove_header("x-real-ip");
        if !xff.is_empty() {
            upstream_request.insert_header("X-Forwarded-For", xff)?;
        }
        upstream_request.insert_header("X-Forwarded-Proto", "http")?;
        upstream_request.insert_header("X-Forwarded-Host", ctx.host.as_str())?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert!(prefers_json(Some("application/json")));
        assert!(prefers_json(Some(
            "application/json, text/plain, */*;q=0.5"
        )));
        assert!(!prefers_json(Some(
            "text/html,application/xhtml+xml,application/json;q=0.9"
        )));
        assert!(!prefers_json(Some("*/*")));
        assert!(!prefers_json(None));
    }

    #[test]
    fn request_ids_are_16_hex_and_distinct() {
        let a = request_id();
        let b = request_id();
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
