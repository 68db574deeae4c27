//! The live configuration: every site's compiled ruleset, swapped atomically on reload.
//!
//! Requests take a snapshot (`Arc<Snapshot>`) when they start and finish on it, so a reload
//! never changes the rules under a request in flight. A reload compiles the new snapshot off
//! the request path; when anything fails — a rule file that does not parse, a rule that does
//! not compile, a config key that is wrong — the error is reported and the old snapshot stays.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use ipnet::IpNet;
use pingora::lb::health_check::TcpHealthCheck;
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use serde::Serialize;
use waf_core::rules::Mode;
use waf_core::Program;

use super::block_page::BlockPage;
use super::metrics::Metrics;
use super::rate_limit::RateLimit;
use crate::config::{normalize_host, Config, InvalidBody, Limits, Site, SiteMode};

/// One site, ready to serve.
pub struct SiteRuntime {
    pub index: usize,
    /// The site's name in logs and metrics: its first host name.
    pub name: String,
    hosts: Vec<String>,
    any_host: bool,
    pub site: Site,
    pub program: Program,
    /// A hash of the rule files' contents and the site's rule settings.
    pub version: String,
    /// The upstream's own name (SNI, or the host part of the address).
    pub upstream_host: String,
    pub ca: Option<Arc<Box<[pingora::tls::x509::X509]>>>,
    /// Round-robin over the healthy addresses, when there are several.
    pub balancer: Option<Arc<LoadBalancer<RoundRobin>>>,
    next_health_check: Mutex<Option<Instant>>,
    pub block_page: BlockPage,
    /// The site's rate limits, in config order.
    pub rate_limits: Vec<RateLimit>,
    /// Requests inspected, for `profile_every`.
    inspected: AtomicU64,
    /// By rule, in the program's order: the rule's `waf_rule_evaluations_total` and
    /// `waf_rule_seconds_total` series, looked up when a profiled request first evaluates the
    /// rule (see [`Metrics::record_profile`]).
    pub profile_series: ProfileSeries,
}

/// One [`ProfileSeries`] entry: a rule's evaluation and time counters for its site.
pub type RuleSeries = (prometheus::IntCounter, prometheus::Counter);

/// The per-rule series of a site's profiled requests, made on first use; empty until then.
pub type ProfileSeries = std::sync::OnceLock<Box<[std::sync::OnceLock<RuleSeries>]>>;

impl SiteRuntime {
    /// Whether this request is one to profile (one in `profile_every`, the first included).
    pub fn profile_due(&self) -> bool {
        let every = self.site.profile_every;
        every > 0
            && self
                .inspected
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(every)
    }

    /// Whether a health check is due, and if so, books the next one.
    pub fn health_check_due(&self, now: Instant) -> bool {
        let mut next = match self.next_health_check.lock() {
            Ok(n) => n,
            Err(poisoned) => poisoned.into_inner(),
        };
        if next.is_some_and(|t| t > now) {
            return false;
        }
        *next = Some(now + Duration::from_millis(self.site.upstream.health_check_interval_ms));
        true
    }
}

/// Everything a request needs, frozen at the time it was loaded.
pub struct Snapshot {
    pub sites: Vec<SiteRuntime>,
    pub trusted: Vec<IpNet>,
    pub limits: Limits,
    /// 1 for the ruleset loaded at start, then one more per successful reload.
    pub generation: u64,
    /// Rule files, block pages and the config file: what the watcher watches.
    pub watched: Vec<PathBuf>,
}

impl Snapshot {
    /// Compiles every site's rules; fails on the first error, naming the site. A rate limit
    /// that `previous` has too, unchanged, keeps its counts.
    pub fn build(
        config: &Config,
        generation: u64,
        previous: Option<&Snapshot>,
    ) -> anyhow::Result<Snapshot> {
        let mut sites = Vec::new();
        let mut watched = Vec::new();
        for (index, site) in config.sites.iter().enumerate() {
            let at = format!("sites[{index}]");
            let files = waf_core::rules::rule_files(&site.rules)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("{at}.rules"))?;
            let (program, version) =
                compile_site(site, &files).with_context(|| format!("{at}.rules"))?;
            watched.extend(site.rules.iter().cloned());
            let ca = match &site.upstream.ca_file {
                Some(path) => {
                    Some(Arc::new(read_ca(path).with_context(|| {
                        format!("{at}.upstream.ca_file: {}", path.display())
                    })?))
                }
                None => None,
            };
            let block_page = match &site.block_page {
                Some(path) => {
                    watched.push(path.clone());
                    BlockPage::load(path).with_context(|| format!("{at}.block_page"))?
                }
                None => BlockPage::default(),
            };
            let addresses = site.upstream.address.all();
            let balancer = if addresses.len() > 1 {
                let mut lb =
                    LoadBalancer::<RoundRobin>::try_from_iter(addresses.iter().map(String::as_str))
                        .with_context(|| format!("{at}.upstream.address: resolving"))?;
                let mut check = TcpHealthCheck::new();
                check.peer_template.options.connection_timeout = Some(Duration::from_millis(
                    site.upstream
                        .connect_timeout_ms
                        .min(site.upstream.health_check_interval_ms),
                ));
                lb.set_health_check(check);
                Some(Arc::new(lb))
            } else {
                None
            };
            let hosts: Vec<String> = site.hosts.iter().map(|h| normalize_host(h)).collect();
            let name = hosts.first().cloned().unwrap_or_default();
            // The site that served one of these host names before (a host belongs to one
            // site): renaming or adding a host keeps the counts of its rate limits.
            let previous_site = previous.and_then(|p| {
                p.sites
                    .iter()
                    .find(|s| s.hosts.iter().any(|h| hosts.contains(h)))
            });
            let rate_limits = site
                .rate_limits
                .iter()
                .map(|limit| {
                    let kept = previous_site
                        .and_then(|s| s.rate_limits.iter().find(|l| l.name == limit.name));
                    RateLimit::new(limit, kept)
                })
                .collect::<anyhow::Result<_>>()
                .with_context(|| format!("{at}.rate_limits"))?;
            sites.push(SiteRuntime {
                index,
                name,
                any_host: hosts.iter().any(|h| h == "*"),
                hosts,
                upstream_host: site.upstream_host(),
                site: site.clone(),
                program,
                version,
                ca,
                balancer,
                next_health_check: Mutex::new(None),
                inspected: AtomicU64::new(0),
                profile_series: ProfileSeries::new(),
                block_page,
                rate_limits,
            });
        }
        Ok(Snapshot {
            sites,
            trusted: config.trusted_networks()?,
            limits: config.limits.clone(),
            generation,
            watched,
        })
    }

    /// The site for a Host value: an exact name first, then a `*` site.
    pub fn site_for(&self, host: &str) -> Option<&SiteRuntime> {
        let host = normalize_host(host);
        self.sites
            .iter()
            .find(|s| s.hosts.contains(&host))
            .or_else(|| self.sites.iter().find(|s| s.any_host))
    }

    /// Whether a peer may tell us the client address.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(&ip))
    }
}

fn read_ca(path: &Path) -> anyhow::Result<Box<[pingora::tls::x509::X509]>> {
    let pem = std::fs::read(path).context("reading")?;
    let certs = pingora::tls::x509::X509::stack_from_pem(&pem)?;
    Ok(certs.into_boxed_slice())
}

/// A rule error for the log and the `/reload` answer: the first, and how many more there are
/// (a log line is no place for every broken rule of a file; `waf rules check` lists them).
fn rule_error(e: waf_core::Error) -> anyhow::Error {
    match e.also().len() {
        0 => anyhow::anyhow!("{e}"),
        n => anyhow::anyhow!("{e} (and {n} more error(s): `waf rules check` lists them)"),
    }
}

/// Compiles a site's rules with its settings; returns the program and its version.
fn compile_site(site: &Site, files: &[PathBuf]) -> anyhow::Result<(Program, String)> {
    let mut hasher = DefaultHasher::new();
    let mut loader = waf_core::rules::Loader::new();
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        text.hash(&mut hasher);
        loader.add_text(file, &text).map_err(rule_error)?;
    }
    let (mut set, notes) = loader.finish().map_err(rule_error)?;
    if !notes.is_empty() {
        // A CRS load has a few hundred (XML targets, the IP collection...): one line here,
        // the list from `waf rules check` or at debug level.
        tracing::warn!(
            notes = notes.len(),
            "some SecLang constructs load without effect; `waf rules check` lists them"
        );
        for n in &notes {
            tracing::debug!("{n}");
        }
    }
    if let Some(p) = site.paranoia {
        set.settings.paranoia = p;
    }
    if let Some(t) = site.anomaly_threshold {
        set.settings.inbound_threshold = t;
    }
    if site.mode == SiteMode::DetectOnly {
        set.settings.mode = Mode::DetectOnly;
    }
    if let Some(policy) = site.invalid_body {
        set.settings.invalid_body = match policy {
            InvalidBody::Block => waf_core::rules::InvalidBody::Block,
            InvalidBody::Inspect => waf_core::rules::InvalidBody::Inspect,
        };
    }
    (
        site.paranoia,
        site.anomaly_threshold,
        site.mode == SiteMode::DetectOnly,
        site.invalid_body,
    )
        .hash(&mut hasher);
    let program = waf_core::compile(&set).map_err(rule_error)?;
    Ok((program, format!("{:016x}", hasher.finish())))
}

/// The live snapshot and how to replace it.
pub struct Live {
    current: ArcSwap<Snapshot>,
    /// Where the config came from (`None`: the built-in config).
    config_path: Option<PathBuf>,
    /// The config the process started with: the parts that need a restart are compared to it.
    started_with: Config,
    /// One reload at a time.
    reloading: Mutex<()>,
    metrics: Arc<Metrics>,
}

/// What a successful reload did.
#[derive(Debug, Serialize)]
pub struct ReloadReport {
    pub status: &'static str,
    pub generation: u64,
    pub sites: Vec<SiteReport>,
    /// Changed config keys that only take effect after a restart or graceful upgrade.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restart_needed: Vec<&'static str>,
}

/// A site's ruleset after a reload.
#[derive(Debug, Serialize)]
pub struct SiteReport {
    pub site: String,
    pub version: String,
    pub rules: usize,
}

impl Live {
    /// Compiles the first snapshot; an error here stops the process before it listens.
    pub fn start(
        config: Config,
        config_path: Option<PathBuf>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Live> {
        let snapshot = Snapshot::build(&config, 1, None)?;
        let live = Live {
            current: ArcSwap::from_pointee(snapshot),
            config_path,
            started_with: config,
            reloading: Mutex::new(()),
            metrics,
        };
        live.publish_metrics(&live.load());
        Ok(live)
    }

    /// The snapshot new requests use.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The config file, when there is one (the watcher watches it).
    pub fn config_path(&self) -> Option<&Path> {
        self.config_path.as_deref()
    }

    /// Re-reads the config file (if any) and every rule file, compiles, and swaps the result in.
    /// On any error the running snapshot stays and the error says what and where.
    pub fn reload(&self, trigger: &str) -> anyhow::Result<ReloadReport> {
        let _one_at_a_time = match self.reloading.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let started = Instant::now();
        let result = self.build_next();
        match result {
            Ok((snapshot, restart_needed)) => {
                let report = ReloadReport {
                    status: "reloaded",
                    generation: snapshot.generation,
                    sites: snapshot
                        .sites
                        .iter()
                        .map(|s| SiteReport {
                            site: s.name.clone(),
                            version: s.version.clone(),
                            rules: s.program.rule_count(),
                        })
                        .collect(),
                    restart_needed,
                };
                let snapshot = Arc::new(snapshot);
                self.current.store(snapshot.clone());
                self.metrics.reloads.with_label_values(&["success"]).inc();
                self.publish_metrics(&snapshot);
                tracing::info!(
                    trigger,
                    generation = report.generation,
                    ms = started.elapsed().as_millis() as u64,
                    "ruleset reloaded"
                );
                for key in &report.restart_needed {
                    tracing::warn!("config key `{key}` changed: it takes effect after a restart");
                }
                Ok(report)
            }
            Err(e) => {
                self.metrics.reloads.with_label_values(&["failure"]).inc();
                tracing::error!(trigger, "reload failed, the running ruleset stays: {e:#}");
                Err(e)
            }
        }
    }

    fn build_next(&self) -> anyhow::Result<(Snapshot, Vec<&'static str>)> {
        let config = match &self.config_path {
            Some(path) => Config::load(path)?,
            None => self.started_with.clone(),
        };
        let current = self.load();
        let snapshot = Snapshot::build(&config, current.generation + 1, Some(&current))?;
        Ok((snapshot, restart_needed(&self.started_with, &config)))
    }

    fn publish_metrics(&self, snapshot: &Snapshot) {
        let m = &self.metrics;
        m.ruleset_generation.set(snapshot.generation as i64);
        m.ruleset_info.reset();
        m.ruleset_rules.reset();
        for s in &snapshot.sites {
            m.ruleset_info
                .with_label_values(&[s.name.as_str(), s.version.as_str()])
                .set(1);
            m.ruleset_rules
                .with_label_values(&[s.name.as_str()])
                .set(s.program.rule_count() as i64);
        }
    }
}

/// The config keys that differ and are read only at start.
fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if old.listen != new.listen {
        keys.push("listen");
    }
    if old.tls != new.tls {
        keys.push("tls");
    }
    if old.admin != new.admin {
        keys.push("admin");
    }
    if old.audit != new.audit {
        keys.push("audit");
    }
    if old.log_format != new.log_format {
        keys.push("log_format");
    }
    if old.threads != new.threads {
        keys.push("threads");
    }
    if old.work_stealing != new.work_stealing {
        keys.push("work_stealing");
    }
    if old.watch != new.watch {
        keys.push("watch");
    }
    if old.upgrade_sock != new.upgrade_sock {
        keys.push("upgrade_sock");
    }
    if old.limits.idle_timeout_ms != new.limits.idle_timeout_ms {
        keys.push("limits.idle_timeout_ms");
    }
    if old.limits.keepalive_requests != new.limits.keepalive_requests {
        keys.push("limits.keepalive_requests");
    }
    if old.shutdown_grace_seconds != new.shutdown_grace_seconds {
        keys.push("shutdown_grace_seconds");
    }
    if old.client_faults_log_seconds != new.client_faults_log_seconds {
        keys.push("client_faults_log_seconds");
    }
    keys
}
