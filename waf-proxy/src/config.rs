//! The `waf serve` configuration: one YAML file, validated at start (see `docs/config.md`).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context};
use ipnet::IpNet;
use serde::Deserialize;

/// The most body bytes that can be read ahead and still be replayed to the upstream (Pingora's
/// retry buffer).
pub const MAX_PRE_READ: usize = 64 * 1024;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The plain-HTTP listener.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The HTTPS listener and its certificates.
    #[serde(default)]
    pub tls: Option<TlsListener>,
    /// The admin listener: metrics, health and reload.
    #[serde(default = "default_admin")]
    pub admin: String,
    /// The audit log.
    #[serde(default)]
    pub audit: Audit,
    /// `human` or `json` log lines on stderr.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Reload when a rule file or this config file changes.
    #[serde(default = "yes")]
    pub watch: bool,
    /// The Unix socket a new `waf serve --upgrade` takes the listening sockets over from.
    #[serde(default = "default_upgrade_sock")]
    pub upgrade_sock: PathBuf,
    /// Seconds requests in flight get to finish once the proxy stops accepting (on SIGTERM,
    /// SIGINT, or after handing its sockets to a new binary).
    #[serde(default = "default_shutdown_grace_seconds")]
    pub shutdown_grace_seconds: u64,
    /// Seconds between the summary lines of client faults (failed TLS handshakes, request
    /// heads cut short), which are counted rather than logged one by one; 0 logs each.
    #[serde(default = "default_client_faults_log_seconds")]
    pub client_faults_log_seconds: u64,
    /// The protected sites, matched by Host.
    #[serde(default)]
    pub sites: Vec<Site>,
    /// Body limits.
    #[serde(default)]
    pub limits: Limits,
    /// Peers whose X-Forwarded-For is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Worker threads.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Let an idle worker thread take queued work over from a busy one (tokio's work-stealing
    /// scheduler). Off, each connection stays on the thread that accepted it, as with nginx's
    /// workers, and every request costs less: see `docs/config.md`.
    #[serde(default)]
    pub work_stealing: bool,
}

/// The HTTPS listener.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsListener {
    /// `address:port`.
    pub listen: String,
    /// Certificates chosen by the client's SNI name; the first one when no name matches.
    pub certificates: Vec<Certificate>,
    /// Offer HTTP/2 (ALPN `h2`) besides HTTP/1.1.
    #[serde(default = "yes")]
    pub http2: bool,
}

/// One certificate of the HTTPS listener.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// The SNI names it serves (`login.contoso.com`, `*.contoso.com`).
    pub hosts: Vec<String>,
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The audit log.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// A file (appended to, reopened on SIGUSR1), `-` for stdout, or `off`.
    #[serde(default = "default_audit_path")]
    pub path: String,
    /// Write every request, not only the blocked and flagged ones.
    #[serde(default)]
    pub all_requests: bool,
}

impl Default for Audit {
    fn default() -> Audit {
        Audit {
            path: default_audit_path(),
            all_requests: false,
        }
    }
}

/// The format of log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per event.
    Json,
}

/// One protected site.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Host names (`login.contoso.com`), or `"*"` for any.
    pub hosts: Vec<String>,
    /// Where clean requests go.
    pub upstream: Upstream,
    /// Which Host header the upstream sees.
    #[serde(default)]
    pub host_header: HostHeader,
    /// Rule files or folders.
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// Paranoia level 1 to 4 (the ruleset's own setting when left out).
    #[serde(default)]
    pub paranoia: Option<u8>,
    /// Inbound anomaly threshold (the ruleset's own setting when left out).
    #[serde(default)]
    pub anomaly_threshold: Option<i64>,
    /// Block, or only detect and log.
    #[serde(default)]
    pub mode: SiteMode,
    /// A body that cannot be parsed as its `Content-Type` says (invalid JSON or XML, a
    /// multipart body without its boundary): `block` it with 400, or `inspect` what parsing
    /// recovered of it (the ruleset's own setting when left out, `block` by default).
    #[serde(default)]
    pub invalid_body: Option<InvalidBody>,
    /// An HTML block-page template (`{{request_id}}`, `{{status}}`, `{{host}}`); a built-in
    /// page when left out.
    #[serde(default)]
    pub block_page: Option<PathBuf>,
    /// Time every rule of one request in this many, into the `waf_rule_seconds_total` and
    /// `waf_rule_evaluations_total` metrics (0: never).
    #[serde(default)]
    pub profile_every: u64,
    /// Per-client request rate limits, checked before the rules.
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    /// Forward WebSocket upgrades. Once the upstream switches protocols, the connection is a
    /// tunnel the rules never see into, so upgrade requests are forwarded as plain requests
    /// (without `Upgrade`) unless a site needs WebSockets. Sign-in pages do not.
    #[serde(default)]
    pub websockets: bool,
}

/// A per-client rate limit on some of a site's requests: at most `requests` at once, then one
/// more every `per_seconds / requests` seconds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// The limit's name in the audit log, the logs and the metrics.
    pub name: String,
    /// The methods it counts (`POST`); every method when empty.
    #[serde(default)]
    pub methods: Vec<String>,
    /// A regular expression the percent-decoded path must match (unanchored); every path when
    /// left out.
    #[serde(default)]
    pub path: Option<String>,
    /// Requests a client may send at once, and per `per_seconds`.
    pub requests: u32,
    /// The period, in seconds, over which `requests` are allowed.
    pub per_seconds: u64,
    /// Most clients counted at once; when that many are, other clients pass uncounted.
    #[serde(default = "RateLimit::default_max_clients")]
    pub max_clients: u32,
}

impl RateLimit {
    /// About 70 MB of counts, at the most.
    pub const DEFAULT_MAX_CLIENTS: u32 = 1_000_000;

    fn default_max_clients() -> u32 {
        Self::DEFAULT_MAX_CLIENTS
    }

    fn validate(&self, at: &str) -> anyhow::Result<()> {
        ensure!(
            !self.name.is_empty()
                && self
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{at}.name: letters, digits, `-`, `_` and `.` only, at least one"
        );
        ensure!(
            (1..=1_000_000).contains(&self.requests),
            "{at}.requests: 1 to 1000000"
        );
        ensure!(
            (1..=86_400).contains(&self.per_seconds),
            "{at}.per_seconds: 1 to 86400 (a day)"
        );
        ensure!(
            (1..=100_000_000).contains(&self.max_clients),
            "{at}.max_clients: 1 to 100000000"
        );
        for m in &self.methods {
            ensure!(
                http::Method::from_bytes(m.as_bytes()).is_ok(),
                "{at}.methods: `{m}` is not an HTTP method"
            );
        }
        if let Some(path) = &self.path {
            regex_automata::meta::Regex::new(path).with_context(|| format!("{at}.path"))?;
        }
        Ok(())
    }
}

/// The upstream of a site.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// `host:port`, or a list of them: requests are spread round-robin over the healthy ones.
    pub address: Addresses,
    /// Speak TLS to the upstream.
    #[serde(default)]
    pub tls: bool,
    /// TLS server name; the host part of `address` when left out.
    #[serde(default)]
    pub sni: Option<String>,
    /// Verify the upstream's certificate.
    #[serde(default = "yes")]
    pub verify: bool,
    /// PEM file of CA certificates to verify against (the system's when left out).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Milliseconds to wait for a TCP (and TLS) connection.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Milliseconds to wait for each read from the upstream.
    #[serde(default = "default_read_timeout_ms")]
    pub read_timeout_ms: u64,
    /// Milliseconds between health checks (TCP connect) when there are several addresses.
    #[serde(default = "default_health_check_interval_ms")]
    pub health_check_interval_ms: u64,
}

/// One upstream address or several.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Addresses {
    /// `host:port`.
    One(String),
    /// `[host:port, ...]`.
    Many(Vec<String>),
}

impl Addresses {
    /// Every address.
    pub fn all(&self) -> &[String] {
        match self {
            Addresses::One(a) => std::slice::from_ref(a),
            Addresses::Many(v) => v,
        }
    }
}

/// Which Host header the upstream sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostHeader {
    /// The client's.
    #[default]
    Keep,
    /// The upstream's own name (its SNI name, or the host part of its address).
    Upstream,
}

/// Block or only detect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteMode {
    /// Block what the rules block.
    #[default]
    Block,
    /// Forward everything, log what would have been blocked.
    DetectOnly,
}

/// What a site does with a body its declared type does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidBody {
    /// Answer 400, before the rules that read the body run.
    Block,
    /// Let the rules judge what parsing recovered.
    Inspect,
}

/// Size limits and client deadlines.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Bodies up to this many bytes are read and inspected before anything is forwarded.
    #[serde(default = "default_max_body_inspect")]
    pub max_body_inspect: usize,
    /// What happens to larger bodies.
    #[serde(default)]
    pub large_body: LargeBody,
    /// The most bytes of request line and headers; larger requests are answered 431.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Time from the first byte of an HTTP/1 request head to its end; past it the connection
    /// is closed (slowloris).
    #[serde(default = "default_header_timeout_ms")]
    pub header_timeout_ms: u64,
    /// Most connections one client address holds at once; 0: no cap.
    #[serde(default)]
    pub max_connections_per_client: u32,
    /// Most client connections open at once; none: the open-files limit less a reserve (see
    /// `serve::connections`).
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Time a connection may wait for its first or next request (HTTP/1 and HTTP/2).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Time to read a body that is inspected; past it the request is answered 408.
    #[serde(default = "default_body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// Time a client may take no bytes of its answer; past it the connection is closed.
    #[serde(default = "default_send_timeout_ms")]
    pub send_timeout_ms: u64,
    /// Most requests one HTTP/1 connection carries; the last one's answer closes it.
    #[serde(default = "default_keepalive_requests")]
    pub keepalive_requests: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_inspect: default_max_body_inspect(),
            large_body: LargeBody::default(),
            max_header_bytes: default_max_header_bytes(),
            header_timeout_ms: default_header_timeout_ms(),
            idle_timeout_ms: default_idle_timeout_ms(),
            max_connections_per_client: 0,
            max_connections: None,
            body_timeout_ms: default_body_timeout_ms(),
            send_timeout_ms: default_send_timeout_ms(),
            keepalive_requests: default_keepalive_requests(),
        }
    }
}

/// The policy for bodies over `max_body_inspect`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LargeBody {
    /// Answer 413.
    #[default]
    Reject,
    /// Forward without inspecting the body (headers are still inspected).
    Pass,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_admin() -> String {
    "127.0.0.1:9901".into()
}
fn default_threads() -> usize {
    2
}
fn default_audit_path() -> String {
    "-".into()
}
fn default_shutdown_grace_seconds() -> u64 {
    5
}
fn default_client_faults_log_seconds() -> u64 {
    60
}
fn default_upgrade_sock() -> PathBuf {
    PathBuf::from("/tmp/waf_upgrade.sock")
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_read_timeout_ms() -> u64 {
    60_000
}
fn default_health_check_interval_ms() -> u64 {
    5_000
}
fn default_max_header_bytes() -> usize {
    32 * 1024
}
fn default_header_timeout_ms() -> u64 {
    10_000
}
fn default_idle_timeout_ms() -> u64 {
    60_000
}
fn default_body_timeout_ms() -> u64 {
    30_000
}
/// nginx's `send_timeout` default.
fn default_send_timeout_ms() -> u64 {
    60_000
}
/// nginx's `keepalive_requests` default.
fn default_keepalive_requests() -> u32 {
    1_000
}
fn default_max_body_inspect() -> usize {
    MAX_PRE_READ
}
fn yes() -> bool {
    true
}

impl Config {
    /// The warning for the built-in config started where there is no `./rules`. Its site
    /// then inspects nothing, which a newcomer trying an attack would not guess.
    pub const BUILTIN_WITHOUT_RULES: &'static str = "no ./rules folder here: the default site \
        inspects nothing and forwards everything (start from the repository, or give --config)";

    /// Whether this, the built-in config, found no `./rules`.
    pub fn builtin_without_rules(&self) -> bool {
        self.sites.iter().all(|s| s.rules.is_empty())
    }

    /// The configuration used when `waf serve` is given no file: any Host, forwarded to
    /// `127.0.0.1:8081`, inspected with `./rules` when that folder exists.
    pub fn builtin() -> Config {
        // Away from the repository there is no `./rules`: the site has none, and `waf serve`
        // says so (see `Config::builtin_without_rules`).
        let rules = Path::new("rules");
        let rules = if rules.is_dir() {
            vec![rules.to_path_buf()]
        } else {
            Vec::new()
        };
        Config {
            listen: default_listen(),
            tls: None,
            admin: default_admin(),
            audit: Audit::default(),
            log_format: LogFormat::Human,
            watch: true,
            upgrade_sock: default_upgrade_sock(),
            shutdown_grace_seconds: default_shutdown_grace_seconds(),
            client_faults_log_seconds: default_client_faults_log_seconds(),
            sites: vec![Site {
                hosts: vec!["*".into()],
                upstream: Upstream {
                    address: Addresses::One("127.0.0.1:8081".into()),
                    tls: false,
                    sni: None,
                    verify: true,
                    ca_file: None,
                    connect_timeout_ms: default_connect_timeout_ms(),
                    read_timeout_ms: default_read_timeout_ms(),
                    health_check_interval_ms: default_health_check_interval_ms(),
                },
                host_header: HostHeader::Keep,
                rules,
                paranoia: None,
                anomaly_threshold: None,
                mode: SiteMode::Block,
                invalid_body: None,
                block_page: None,
                profile_every: 0,
                rate_limits: Vec::new(),
                websockets: false,
            }],
            limits: Limits::default(),
            trusted_proxies: Vec::new(),
            threads: default_threads(),
            work_stealing: false,
        }
    }

    /// Reads and validates a configuration file. Relative rule and CA paths are resolved
    /// against the file's folder.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config = Config::parse(&text).with_context(|| format!("{}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for site in &mut config.sites {
            for r in &mut site.rules {
                if r.is_relative() {
                    *r = base.join(&*r);
                }
            }
            for file in [&mut site.upstream.ca_file, &mut site.block_page]
                .into_iter()
                .flatten()
            {
                if file.is_relative() {
                    *file = base.join(&*file);
                }
            }
        }
        if let Some(tls) = &mut config.tls {
            for c in &mut tls.certificates {
                for file in [&mut c.cert, &mut c.key] {
                    if file.is_relative() {
                        *file = base.join(&*file);
                    }
                }
            }
        }
        if config.audit.path != "-" && config.audit.path != "off" {
            let p = Path::new(&config.audit.path);
            if p.is_relative() {
                config.audit.path = base.join(p).to_string_lossy().into_owned();
            }
        }
        Ok(config)
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let config: Config = serde_saphyr::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("line {}, column {}: ", l.line(), l.column()))
                .unwrap_or_default();
            anyhow::anyhow!("{at}{e}")
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.listen
            .parse::<SocketAddr>()
            .with_context(|| format!("listen: `{}` is not an address:port", self.listen))?;
        self.admin
            .parse::<SocketAddr>()
            .with_context(|| format!("admin: `{}` is not an address:port", self.admin))?;
        if let Some(tls) = &self.tls {
            tls.listen
                .parse::<SocketAddr>()
                .with_context(|| format!("tls.listen: `{}` is not an address:port", tls.listen))?;
            ensure!(
                !tls.certificates.is_empty(),
                "tls.certificates: at least one certificate"
            );
            for (i, c) in tls.certificates.iter().enumerate() {
                ensure!(
                    !c.hosts.is_empty(),
                    "tls.certificates[{i}].hosts: at least one host name"
                );
            }
        }
        ensure!((1..=64).contains(&self.threads), "threads: must be 1 to 64");
        ensure!(
            self.client_faults_log_seconds <= 86_400,
            "client_faults_log_seconds: 0 (log each) to 86400 (a day)"
        );
        ensure!(
            self.limits.max_header_bytes >= 1024,
            "limits.max_header_bytes: at least 1024"
        );
        ensure!(
            self.limits.max_connections_per_client <= 1_000_000,
            "limits.max_connections_per_client: 0 (no cap) to 1000000"
        );
        ensure!(
            self.limits
                .max_connections
                .is_none_or(|n| (1..=10_000_000).contains(&n)),
            "limits.max_connections: 1 to 10000000, or left out for the open-files limit less a reserve"
        );
        ensure!(
            (100..=60_000).contains(&self.limits.idle_timeout_ms),
            "limits.idle_timeout_ms: 100 to 60000 (Pingora closes an idle HTTP/1 connection after 60 s anyway)"
        );
        ensure!(
            (1..=1_000_000).contains(&self.limits.keepalive_requests),
            "limits.keepalive_requests: 1 (no keep-alive) to 1000000"
        );
        for (key, ms) in [
            ("header_timeout_ms", self.limits.header_timeout_ms),
            ("body_timeout_ms", self.limits.body_timeout_ms),
            ("send_timeout_ms", self.limits.send_timeout_ms),
        ] {
            ensure!(
                (100..=600_000).contains(&ms),
                "limits.{key}: 100 to 600000 (ten minutes)"
            );
        }
        ensure!(!self.sites.is_empty(), "sites: at least one site is needed");
        ensure!(
            self.limits.max_body_inspect <= MAX_PRE_READ,
            "limits.max_body_inspect: at most {MAX_PRE_READ} bytes (the pre-read buffer) for now"
        );
        self.trusted_networks()?;
        let mut seen: Vec<String> = Vec::new();
        for (i, site) in self.sites.iter().enumerate() {
            let at = format!("sites[{i}]");
            ensure!(!site.hosts.is_empty(), "{at}.hosts: at least one host name");
            for h in &site.hosts {
                let h = normalize_host(h);
                ensure!(!h.is_empty(), "{at}.hosts: empty host name");
                ensure!(
                    !seen.contains(&h),
                    "{at}.hosts: `{h}` belongs to an earlier site too"
                );
                seen.push(h);
            }
            let u = &site.upstream;
            ensure!(
                !u.address.all().is_empty(),
                "{at}.upstream.address: at least one address"
            );
            for a in u.address.all() {
                ensure!(
                    split_host(a).is_some(),
                    "{at}.upstream.address: `{a}` is not host:port"
                );
            }
            ensure!(
                u.connect_timeout_ms > 0 && u.read_timeout_ms > 0,
                "{at}.upstream: timeouts must be positive"
            );
            ensure!(
                u.health_check_interval_ms >= 100,
                "{at}.upstream.health_check_interval_ms: at least 100"
            );
            if let Some(p) = site.paranoia {
                ensure!((1..=4).contains(&p), "{at}.paranoia: must be 1 to 4");
            }
            if let Some(t) = site.anomaly_threshold {
                ensure!(t > 0, "{at}.anomaly_threshold: must be positive");
            }
            if u.ca_file.is_some() {
                ensure!(u.tls, "{at}.upstream.ca_file: only with tls: true");
            }
            for (j, limit) in site.rate_limits.iter().enumerate() {
                limit.validate(&format!("{at}.rate_limits[{j}]"))?;
                ensure!(
                    site.rate_limits[..j].iter().all(|l| l.name != limit.name),
                    "{at}.rate_limits[{j}].name: `{}` names an earlier limit too",
                    limit.name
                );
            }
        }
        Ok(())
    }

    /// The trusted proxy networks.
    pub fn trusted_networks(&self) -> anyhow::Result<Vec<IpNet>> {
        self.trusted_proxies
            .iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| anyhow::anyhow!("trusted_proxies: `{s}` is not a CIDR or address"))
            })
            .collect()
    }
}

impl Site {
    /// The upstream's own host name: its SNI, or the host part of its address.
    pub fn upstream_host(&self) -> String {
        if let Some(sni) = &self.upstream.sni {
            return sni.clone();
        }
        self.upstream
            .address
            .all()
            .first()
            .and_then(|a| split_host(a))
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']').to_string())
            .unwrap_or_default()
    }
}

/// `host:port` → (host, port).
fn split_host(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let port = port.parse().ok()?;
    if host.is_empty() {
        return None;
    }
    Some((host, port))
}

/// Lower-cases a Host value and strips its port.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let host = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        rest.split_once(']').map(|(h, _)| h).unwrap_or(rest)
    } else if host.matches(':').count() == 1 {
        host.split_once(':').map(|(h, _)| h).unwrap_or(host)
    } else {
        host
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::parse(
            "sites:\n  - hosts: [Login.Contoso.com]\n    upstream: {address: \"x.ciamlogin.com:443\", tls: true}\n",
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.limits.max_body_inspect, 65536);
        assert_eq!(c.limits.large_body, LargeBody::Reject);
        assert!(c.sites[0].upstream.verify);
        assert_eq!(c.sites[0].host_header, HostHeader::Keep);
        assert_eq!(c.sites[0].mode, SiteMode::Block);
        assert_eq!(c.sites[0].upstream_host(), "x.ciamlogin.com");
        assert_eq!(c.threads, 2);
        assert!(!c.work_stealing);
    }

    #[test]
    fn rate_limits_are_validated_where_they_are() {
        let site = |limits: &str| {
            format!(
                "sites:\n  - hosts: [a]\n    upstream: {{address: \"a:1\"}}\n    rate_limits:\n{limits}"
            )
        };
        let ok = site(
            "      - {name: sign-in, methods: [POST], path: '(?i)/selfasserted$', requests: 10, per_seconds: 60}\n",
        );
        let c = Config::parse(&ok).unwrap();
        assert_eq!(c.sites[0].rate_limits[0].requests, 10);
        assert_eq!(c.sites[0].rate_limits[0].max_clients, 1_000_000);
        for (limits, error) in [
            (
                "      - {name: a, requests: 1, per_seconds: 1, max_clients: 0}\n",
                "sites[0].rate_limits[0].max_clients: 1 to 100000000",
            ),
            (
                "      - {name: a, path: '(unclosed', requests: 1, per_seconds: 1}\n",
                "sites[0].rate_limits[0].path",
            ),
            (
                "      - {name: a, requests: 0, per_seconds: 1}\n",
                "sites[0].rate_limits[0].requests: 1 to 1000000",
            ),
            (
                "      - {name: a, requests: 1, per_seconds: 0}\n",
                "sites[0].rate_limits[0].per_seconds",
            ),
            (
                "      - {name: a, methods: ['PO ST'], requests: 1, per_seconds: 1}\n",
                "`PO ST` is not an HTTP method",
            ),
            (
                "      - {name: 'a b', requests: 1, per_seconds: 1}\n",
                "sites[0].rate_limits[0].name",
            ),
            (
                "      - {name: a, requests: 1, per_seconds: 1}\n      - {name: a, requests: 2, per_seconds: 1}\n",
                "sites[0].rate_limits[1].name: `a` names an earlier limit too",
            ),
        ] {
            let e = format!("{:#}", Config::parse(&site(limits)).unwrap_err());
            assert!(e.contains(error), "{limits}: {e}");
        }
    }

    #[test]
    fn errors_are_clear() {
        let e = Config::parse("sites: []\n").unwrap_err().to_string();
        assert!(e.contains("at least one site"), "{e}");
        let e = Config::parse("listen: nope\nsites: []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen"), "{e}");
        let e = format!("{:#}", Config::parse("sitez: []\n").unwrap_err());
        assert!(e.contains("sitez"), "{e}");
        let e = Config::parse(
            "trusted_proxies: [10.0.0.0/33]\nsites:\n  - hosts: [a]\n    upstream: {address: \"a:1\"}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("trusted_proxies"), "{e}");
        let e = Config::parse(
            "client_faults_log_seconds: 86401\nsites:\n  - hosts: [a]\n    upstream: {address: \"a:1\"}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("client_faults_log_seconds: 0 (log each) to 86400"),
            "{e}"
        );
        for (limit, error) in [
            (
                "header_timeout_ms: 99",
                "limits.header_timeout_ms: 100 to 600000",
            ),
            (
                "body_timeout_ms: 600001",
                "limits.body_timeout_ms: 100 to 600000",
            ),
        ] {
            let e = Config::parse(&format!(
                "limits: {{{limit}}}\nsites:\n  - hosts: [a]\n    upstream: {{address: \"a:1\"}}\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains(error), "{e}");
        }
    }

    #[test]
    fn the_builtin_config_is_valid() {
        let c = Config::builtin();
        c.validate().unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.sites[0].hosts, ["*"]);
        assert_eq!(c.sites[0].upstream.address.all(), ["127.0.0.1:8081"]);
    }

    #[test]
    fn upstreams_tls_and_limits_parse() {
        let c = Config::parse(
            "tls:\n  listen: 127.0.0.1:8443\n  certificates:\n    - {hosts: [a.test], cert: a.pem, key: a.key}\n\
             limits: {max_header_bytes: 4096}\n\
             audit: {path: audit.jsonl, all_requests: true}\n\
             log_format: json\n\
             sites:\n  - hosts: [a.test]\n    upstream:\n      address: [\"10.0.0.1:443\", \"10.0.0.2:443\"]\n      read_timeout_ms: 100\n",
        )
        .unwrap();
        let tls = c.tls.as_ref().unwrap();
        assert!(tls.http2);
        assert_eq!(tls.certificates[0].hosts, ["a.test"]);
        assert_eq!(c.limits.max_header_bytes, 4096);
        assert_eq!(
            (
                c.limits.header_timeout_ms,
                c.limits.idle_timeout_ms,
                c.limits.body_timeout_ms
            ),
            (10_000, 60_000, 30_000)
        );
        assert!(c.audit.all_requests);
        assert_eq!(c.log_format, LogFormat::Json);
        let u = &c.sites[0].upstream;
        assert_eq!(u.address.all(), ["10.0.0.1:443", "10.0.0.2:443"]);
        assert_eq!((u.read_timeout_ms, u.connect_timeout_ms), (100, 5000));
        assert_eq!(c.sites[0].upstream_host(), "10.0.0.1");

        let e = Config::parse("sites:\n  - hosts: [a]\n    upstream: {address: []}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sites[0].upstream.address"), "{e}");
        let e = Config::parse(
            "tls: {listen: 127.0.0.1:1, certificates: []}\nsites:\n  - hosts: [a]\n    upstream: {address: \"a:1\"}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("tls.certificates"), "{e}");
    }

    #[test]
    fn the_example_in_the_docs_is_valid() {
        let doc = include_str!("../../docs/config.md");
        let start = doc.find("```yaml\n").expect("an example") + "```yaml\n".len();
        let end = start + doc[start..].find("```").expect("its end");
        let c = Config::parse(&doc[start..end]).unwrap();
        assert_eq!(c.sites[0].hosts, ["login.contoso.com"]);
        assert_eq!(c.tls.as_ref().map(|t| t.certificates.len()), Some(2));
    }

    #[test]
    fn hosts_normalize() {
        assert_eq!(normalize_host("Login.Contoso.COM:443"), "login.contoso.com");
        assert_eq!(normalize_host("[::1]:8080"), "::1");
        assert_eq!(normalize_host("login.contoso.com."), "login.contoso.com");
    }
}
