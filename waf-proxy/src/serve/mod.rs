//! `waf serve`: the Pingora reverse proxy that inspects every request before forwarding it.
//!
//! | module | what |
//! |---|---|
//! | `live` | the compiled sites, swapped atomically on reload |
//! | `proxy` | the request path (Pingora's `ProxyHttp` phases) |
//! | `block_page` | the pages the proxy answers with itself |
//! | `audit` | the JSON-lines audit log |
//! | `metrics` | the Prometheus metrics |
//! | `admin` | the admin listener: metrics, health, reload |
//! | `background` | reload on SIGHUP and file changes, audit reopen on SIGUSR1, health checks |
//! | `connections` | each client connection: counted, capped, its TLS handshake run, its deadlines set |
//! | `deadlines` | deadlines on idle connections and request heads (slowloris) |
//! | `tls` | the HTTPS listener's handshake: certificates by SNI, HTTP/2 by ALPN |
//! | `rate_limit` | per-client rate limits |
//! | `client_faults` | failed handshakes, requests cut short by their clients: counted, summed up in the log |

mod admin;
mod audit;
mod background;
mod block_page;
mod client_faults;
mod connections;
mod deadlines;
mod live;
mod metrics;
mod proxy;
mod rate_limit;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::services::background::background_service;
use pingora::services::listening::Service;

use crate::config::{Config, LargeBody, LogFormat, SiteMode};

/// What the proxy refuses beside Pingora's HTTP/1 server, which `waf ftw` does in-process too.
pub(crate) use proxy::{content_length_is_one_number, target_has_a_form};

/// Arguments of `waf serve`.
#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (see docs/config.md); the built-in default config when left out.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Take the listening sockets over from a running `waf serve` (graceful binary upgrade):
    /// start the new binary with `--upgrade`, then send the old process SIGQUIT.
    #[arg(long)]
    upgrade: bool,
    /// Check the configuration and exit, as `nginx -t` does: read it, compile every site's
    /// rules, load the block pages, CA files and certificates, and print what would be served.
    /// Exits 0 when all of it loads, 2 with the error otherwise.
    #[arg(long, conflicts_with = "upgrade")]
    check: bool,
}

/// Runs the proxy until it is stopped.
pub fn run(args: &Args) -> anyhow::Result<std::process::ExitCode> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::builtin(),
    };
    if args.check {
        return check(&config, args.config.as_deref());
    }
    let metrics = Arc::new(metrics::Metrics::new().context("registering metrics")?);
    let client_faults = client_faults::ClientFaults::new(
        metrics.client_faults.clone(),
        Duration::from_secs(config.client_faults_log_seconds),
    );
    init_tracing(config.log_format, client_faults.clone());
    if args.config.is_none() {
        tracing::info!("no --config: using the built-in default configuration");
        if config.builtin_without_rules() {
            tracing::warn!("{}", Config::BUILTIN_WITHOUT_RULES);
        }
    }
    let open_files = raise_open_files_limit();
    // The cap when the config leaves it out; the config's own may change on reload.
    let default_max_connections = connections::default_max_connections(open_files);
    let live = Arc::new(live::Live::start(
        config.clone(),
        args.config.clone(),
        metrics.clone(),
    )?);
    let audit = Arc::new(audit::AuditLog::open(&config.audit)?);
    let tls_port = match &config.tls {
        Some(t) => Some(connections::TlsPort {
            listen: t
                .listen
                .parse()
                .with_context(|| format!("tls.listen: `{}`", t.listen))?,
            handshake: tls::Certificates::load(t)?.into_handshake(t.http2)?,
        }),
        None => None,
    };

    let conf = ServerConf {
        threads: config.threads,
        work_stealing: config.work_stealing,
        upgrade_sock: config.upgrade_sock.to_string_lossy().into_owned(),
        // Pingora cancels whatever still runs when the grace period ends: it is the time
        // requests in flight get to finish. The runtime timeout after it only bounds the wait
        // for blocking work.
        grace_period_seconds: Some(config.shutdown_grace_seconds),
        graceful_shutdown_timeout_seconds: Some(1),
        ..Default::default()
    };
    let opt = Opt {
        upgrade: args.upgrade,
        ..Default::default()
    };
    let mut server = pingora::server::Server::new_with_opt_and_conf(Some(opt), conf);
    server.bootstrap();

    let waf = proxy::Waf {
        live: live.clone(),
        metrics: metrics.clone(),
        audit: audit.clone(),
        client_faults: client_faults.clone(),
    };
    // Pingora's proxy, behind what it lacks: a cap on connections per client, and deadlines on
    // idle connections and request heads (see `connections` and `deadlines`); its HTTP/2
    // connections get its own idle timeout.
    let idle_timeout = std::time::Duration::from_millis(config.limits.idle_timeout_ms);
    let mut proxy = pingora::proxy::http_proxy(&server.configuration, waf);
    let mut options = pingora::apps::HttpServerOptions::default();
    options.h2_idle_timeout = Some(idle_timeout);
    // Pingora counts the reuses of a connection, not its requests: the first request is not a
    // reuse. Without a cap, as Pingora has by default, one connection could carry requests for
    // as long as its client liked, on the worker thread it was accepted on.
    options.keepalive_request_limit = Some(config.limits.keepalive_requests.saturating_sub(1));
    proxy.server_options = Some(options);
    let proxy_app = connections::ConnectionsApp::new(
        proxy,
        live.clone(),
        idle_timeout,
        connections::ConnectionMetrics {
            head_timeouts: metrics.head_timeouts.clone(),
            open: metrics.client_connections.clone(),
            refused: metrics.connections_refused.clone(),
            client_faults: client_faults.clone(),
        },
        tls_port,
        default_max_connections,
    );
    let mut service = Service::new("waf proxy".to_string(), proxy_app);
    service.add_tcp(&config.listen);
    if let Some(t) = &config.tls {
        // A plain TCP listener: the handshake is the proxy app's (see `tls`).
        service.add_tcp(&t.listen);
    }
    server.add_service(service);

    let mut admin = Service::new(
        "admin".to_string(),
        admin::Admin {
            live: live.clone(),
            metrics: metrics.clone(),
        },
    );
    admin.add_tcp(&config.admin);
    server.add_service(admin);
    server.add_service(background_service(
        "reloader",
        background::Reloader {
            live: live.clone(),
            audit,
            watch: config.watch,
        },
    ));
    server.add_service(background_service(
        "health checks",
        background::HealthChecks { live: live.clone() },
    ));
    server.add_service(background_service(
        "client fault summary",
        client_faults.summary(),
    ));
    server.add_service(background_service(
        "rate limit sweeper",
        background::RateLimitSweeper { live, metrics },
    ));

    tracing::info!(
        listen = %config.listen,
        tls = %config.tls.as_ref().map(|t| t.listen.as_str()).unwrap_or("off"),
        admin = %config.admin,
        sites = config.sites.len(),
        open_files,
        max_connections = config
            .limits
            .max_connections
            .unwrap_or(default_max_connections),
        "waf serving"
    );
    server.run_forever()
}

/// Below this many open files, a warning at start: each client connection takes one, and so
/// does each pooled upstream connection.
const FEW_OPEN_FILES: u64 = 4096;

/// The most open files the process may have: what [`raise_open_files_limit`] raises to.
fn open_files_hard_limit() -> Option<u64> {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(_, hard)| hard)
}

/// Raises the process's soft limit on open files to its hard limit, and returns the limit.
///
/// Every client connection is a file descriptor, and the soft limit a shell or a systemd unit
/// hands out by default is 1024: a thousand clients, or one client opening a thousand
/// connections, and the proxy could accept no more. The hard limit (524288 under systemd, by
/// default) is what the administrator allows; the soft one is only a default, which nginx
/// raises too when told (`worker_rlimit_nofile`). A limit that stays low is logged.
fn raise_open_files_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    let limit = if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                tracing::warn!(soft, hard, "could not raise the open-files limit: {e}");
                soft
            }
        }
    } else {
        soft
    };
    if limit < FEW_OPEN_FILES {
        tracing::warn!(
            limit,
            "the open-files limit allows only about this many connections: raise it \
             (`LimitNOFILE=` in a systemd unit, `ulimit -Hn` in a shell)"
        );
    }
    limit
}

/// `waf serve --check`: loads everything `run` loads before it listens, and says what it found.
fn check(
    config: &Config,
    path: Option<&std::path::Path>,
) -> anyhow::Result<std::process::ExitCode> {
    let snapshot = live::Snapshot::build(config, 1, None)?;
    if let Some(t) = &config.tls {
        tls::Certificates::load(t)?;
    }
    let source = path.map_or("the built-in config".to_string(), |p| {
        p.display().to_string()
    });
    if path.is_none() && config.builtin_without_rules() {
        println!("warning: {}", Config::BUILTIN_WITHOUT_RULES);
    }
    println!(
        "{source}: ok: listen {}, tls {}, admin {}, {} site(s)",
        config.listen,
        config.tls.as_ref().map_or("off", |t| t.listen.as_str()),
        config.admin,
        snapshot.sites.len()
    );
    let l = &config.limits;
    println!(
        "  limits: bodies up to {} bytes inspected (larger: {}), heads up to {} bytes within {} ms, \
         bodies within {} ms per 64 KiB, answers taken within {} ms per write, idle connections \
         closed after {} ms, requests per HTTP/1 connection: {}, connections per client: {}, \
         connections in all: {}",
        l.max_body_inspect,
        match l.large_body {
            LargeBody::Reject => "rejected",
            LargeBody::Pass => "forwarded uninspected",
        },
        l.max_header_bytes,
        l.header_timeout_ms,
        l.body_timeout_ms,
        l.send_timeout_ms,
        l.idle_timeout_ms,
        l.keepalive_requests,
        match l.max_connections_per_client {
            0 => "no cap".to_string(),
            n => n.to_string(),
        },
        match (l.max_connections, open_files_hard_limit()) {
            (Some(n), _) => n.to_string(),
            // What `run` derives once it has raised its limit to the hard one.
            (None, Some(files)) => format!(
                "{} (the open-files limit, {files}, less a reserve)",
                connections::default_max_connections(files)
            ),
            (None, None) => "the open-files limit less a reserve".to_string(),
        },
    );
    for site in &snapshot.sites {
        let s = &site.site;
        let limits: Vec<String> = s
            .rate_limits
            .iter()
            .map(|l| format!("{} ({} per {} s)", l.name, l.requests, l.per_seconds))
            .collect();
        println!(
            "  {}: {} rule(s) at paranoia level {}, anomaly threshold {}, ruleset {}, {}, \
             bodies that do not parse as their type {}, upstream {}{}{}",
            site.name,
            site.program.rule_count(),
            site.program.settings().paranoia,
            site.program.settings().inbound_threshold,
            site.version,
            match s.mode {
                SiteMode::Block => "block",
                SiteMode::DetectOnly => "detect only",
            },
            if site.program.settings().invalid_body == waf_core::rules::InvalidBody::Inspect {
                "inspected"
            } else {
                "refused"
            },
            s.upstream.address.all().join(", "),
            if limits.is_empty() {
                String::new()
            } else {
                format!(", rate limits: {}", limits.join(", "))
            },
            if s.websockets {
                ", WebSocket handshakes forwarded (what follows one is not inspected)"
            } else {
                ""
            }
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Log lines on stderr, in `format`, at the level `RUST_LOG` sets (`info` by default), with
/// the `log` records of Pingora bridged in and its client faults left to `client_faults`.
fn init_tracing(format: LogFormat, client_faults: client_faults::ClientFaults) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let human = (format == LogFormat::Human).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    });
    let json = (format == LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .with_current_span(true)
    });
    // The bridge from Pingora's `log` records is ours (`PingoraLog`), set after the
    // subscriber; either fails only when one is set already, and that one then stays.
    let forward = filter
        .max_level_hint()
        .map_or(log::LevelFilter::Trace, |level| {
            tracing_log::AsLog::as_log(&level)
        });
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(client_faults.clone())
        .with(human)
        .with(json);
    if tracing::subscriber::set_global_default(subscriber).is_ok() {
        let _ = client_faults::PingoraLog::install(forward, client_faults);
    }
}
