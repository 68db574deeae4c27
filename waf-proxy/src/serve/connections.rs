//! What happens to a client connection before the proxy reads from it: it is counted, held to
//! `limits.max_connections_per_client`, given its TLS handshake on the HTTPS port (under
//! `limits.header_timeout_ms`, see [`tls`](super::tls)), and given its deadlines.
//!
//! [`ConnectionsApp`] wraps Pingora's proxy app ([`ServerApp`]), which gets each accepted
//! connection and serves every request on it; the connection is closed when it returns. So
//! this is where a connection can be seen whole, from its first byte to its end, whatever its
//! protocol.
//!
//! # Connections per client
//!
//! One address opening thousands of connections, each kept open by a request now and then,
//! holds the file descriptors every other client needs. The rate limits do not see it (few
//! requests), nor the deadlines (none is late). `limits.max_connections_per_client` caps the
//! connections one client address holds at once, as nginx's `limit_conn` and HAProxy's
//! `src_conn_cur` do; a connection over the cap is closed at once, unread. It is off by
//! default: carrier-grade NAT and company egress put many users behind one address, and only
//! the operator knows how many. The peers in `trusted_proxies` are never capped (a CDN in
//! front carries everyone's connections), and IPv6 clients are counted by their /64, as the
//! rate limits count them.
//!
//! # Connections in all
//!
//! Many addresses opening connections, each under any per-client cap, can still take every
//! file descriptor the process may have. Then the proxy can open no connection to an upstream
//! (every request that needs one fails), the admin listener cannot accept (no metrics, no
//! health check), and the accept loop spins on `EMFILE`. `limits.max_connections` caps the
//! client connections open at once, as nginx's `worker_connections` does, and a connection
//! over it is closed at once, unread. By default it is the open-files limit less a reserve (a
//! tenth, at least [`RESERVED_FILES`]) for upstream connections, the listeners and the logs:
//! under a flood, new clients are turned away, but the connections already open are still
//! served, and the proxy can still be watched.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use prometheus::{IntCounter, IntCounterVec, IntGauge};

use super::client_faults::ClientFaults;
use super::deadlines::{DeadlineStream, Deadlines};
use super::live::Live;
use super::rate_limit::client_key;
use super::tls::Handshake;

/// A [`ServerApp`] that counts and caps client connections and gives `inner` each HTTP/1
/// connection inside a [`DeadlineStream`].
pub struct ConnectionsApp<A> {
    inner: Arc<A>,
    /// The limits in force: a connection gets those of its start.
    live: Arc<Live>,
    /// `limits.idle_timeout_ms`, read at start (as the HTTP/2 one is).
    idle_timeout: Duration,
    counts: Arc<Counts>,
    tls: Option<TlsPort>,
    /// `limits.max_connections` when the config leaves it out: from the open-files limit.
    default_max_connections: u32,
}

/// The HTTPS listener: where it listens, and the handshake its connections get.
pub struct TlsPort {
    pub listen: SocketAddr,
    pub handshake: Handshake,
}

impl TlsPort {
    /// Whether a connection accepted at `local` came through this listener.
    fn accepted_at(&self, local: SocketAddr) -> bool {
        local.port() == self.listen.port()
            && (self.listen.ip().is_unspecified() || local.ip() == self.listen.ip())
    }
}

/// The metrics a [`ConnectionsApp`] keeps.
pub struct ConnectionMetrics {
    /// `waf_request_head_timeouts_total`.
    pub head_timeouts: IntCounter,
    /// `waf_client_connections`.
    pub open: IntGauge,
    /// `waf_connections_refused_total{limit}`.
    pub refused: IntCounterVec,
    /// Failed TLS handshakes count there.
    pub client_faults: ClientFaults,
}

/// The fewest open files kept out of the default `limits.max_connections`.
pub const RESERVED_FILES: u64 = 64;

/// The default `limits.max_connections` for a process that may open `open_files` files: that
/// less a tenth, and less at least [`RESERVED_FILES`]; no cap when the limit is unknown.
pub fn default_max_connections(open_files: u64) -> u32 {
    if open_files == 0 {
        return u32::MAX;
    }
    let reserve = (open_files / 10).max(RESERVED_FILES);
    u32::try_from(open_files.saturating_sub(reserve).max(1)).unwrap_or(u32::MAX)
}

/// Open connections, in all and by client.
struct Counts {
    total: AtomicU32,
    by_client: Mutex<HashMap<IpAddr, u32>>,
    metrics: ConnectionMetrics,
    /// When the proxy last logged that it was at `limits.max_connections`, in seconds since
    /// the epoch: at most once a minute.
    warned_at: AtomicU64,
}

/// Why a connection was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Over {
    /// Its client held `max_connections_per_client` already.
    PerClient,
    /// The proxy held `max_connections` already.
    Total,
}

impl Over {
    /// The `limit` label of `waf_connections_refused_total`.
    fn label(self) -> &'static str {
        match self {
            Over::PerClient => "max_connections_per_client",
            Over::Total => "max_connections",
        }
    }
}

impl<A> ConnectionsApp<A> {
    pub fn new(
        inner: A,
        live: Arc<Live>,
        idle_timeout: Duration,
        metrics: ConnectionMetrics,
        tls: Option<TlsPort>,
        default_max_connections: u32,
    ) -> Self {
        ConnectionsApp {
            inner: Arc::new(inner),
            live,
            idle_timeout,
            tls,
            default_max_connections,
            counts: Arc::new(Counts::new(metrics)),
        }
    }
}

/// One open connection, counted until it is dropped.
struct Open {
    counts: Arc<Counts>,
    /// The client it is counted against, when it is capped.
    client: Option<IpAddr>,
}

impl Counts {
    fn new(metrics: ConnectionMetrics) -> Counts {
        Counts {
            total: AtomicU32::new(0),
            by_client: Mutex::new(HashMap::new()),
            metrics,
            warned_at: AtomicU64::new(0),
        }
    }

    /// Counts a connection of `client` (`None`: not capped by client), unless the proxy holds
    /// `max_total` connections already, or the client `max_per_client`.
    fn open(
        self: &Arc<Self>,
        client: Option<IpAddr>,
        max_per_client: u32,
        max_total: u32,
    ) -> Result<Open, Over> {
        self.total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max_total).then_some(n + 1)
            })
            .map_err(|_| Over::Total)?;
        // From here, dropping `open` gives the connection back.
        let mut open = Open {
            counts: self.clone(),
            client: None,
        };
        self.metrics.open.inc();
        let Some(key) = client else {
            return Ok(open);
        };
        let mut by_client = self
            .by_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let held = by_client.entry(key).or_insert(0);
        if *held >= max_per_client {
            return Err(Over::PerClient);
        }
        *held += 1;
        open.client = Some(key);
        Ok(open)
    }

    /// Logs that the proxy is at `max_connections`, at most once a minute: under a flood, a
    /// line for every connection turned away would be a flood of its own.
    fn warn_full(&self, max: u32) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.warned_at.load(Ordering::Relaxed);
        if now >= last.saturating_add(60)
            && self
                .warned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                max_connections = max,
                "at limits.max_connections: new connections are closed unread \
                 (counted in waf_connections_refused_total{{limit=\"max_connections\"}})"
            );
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.counts.metrics.open.dec();
        self.counts.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(key) = self.client {
            let mut by_client = self
                .counts
                .by_client
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(held) = by_client.get_mut(&key) {
                *held = held.saturating_sub(1);
                if *held == 0 {
                    by_client.remove(&key);
                }
            }
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for ConnectionsApp<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let snapshot = self.live.load();
        let limits = &snapshot.limits;
        let digest = stream.get_socket_digest();
        let peer_addr = digest
            .as_ref()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).copied());
        let peer = peer_addr.map(|a| a.ip());
        let capped = peer
            .filter(|&ip| limits.max_connections_per_client > 0 && !snapshot.is_trusted(ip))
            .map(client_key);
        let max_total = limits
            .max_connections
            .unwrap_or(self.default_max_connections);
        let _open = match self
            .counts
            .open(capped, limits.max_connections_per_client, max_total)
        {
            Ok(open) => open,
            Err(over) => {
                let refused = &self.counts.metrics.refused;
                refused.with_label_values(&[over.label()]).inc();
                if over == Over::Total {
                    self.counts.warn_full(max_total);
                }
                tracing::debug!(client = ?peer, "over {}: connection closed", over.label());
                return None;
            }
        };
        let deadlines = Deadlines {
            idle: self.idle_timeout,
            head: Duration::from_millis(limits.header_timeout_ms),
        };
        // The snapshot is not held across a handshake.
        drop(snapshot);
        let tls = self.tls.as_ref().filter(|tls| {
            digest
                .as_ref()
                .and_then(|d| d.local_addr().and_then(|a| a.as_inet()).copied())
                .is_some_and(|local| tls.accepted_at(local))
        });
        let stream = match tls {
            Some(tls) => {
                match tokio::time::timeout(deadlines.head, tls.handshake.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    failed => {
                        let why = match failed {
                            Ok(Err(e)) => format!("failed: {e}"),
                            _ => format!("not complete within {} ms", deadlines.head.as_millis()),
                        };
                        let peer = peer_addr.map(|a| a.to_string()).unwrap_or_default();
                        let faults = &self.counts.metrics.client_faults;
                        faults.handshake_failed(format!("TLS handshake with {peer} {why}"));
                        return None;
                    }
                }
            }
            None => stream,
        };
        let stream: Stream = if stream.selected_alpn_proto() == Some(ALPN::H2) {
            stream
        } else {
            let expired = self.counts.metrics.head_timeouts.clone();
            Box::new(DeadlineStream::new(stream, deadlines, expired))
        };
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts() -> Arc<Counts> {
        Arc::new(Counts::new(ConnectionMetrics {
            head_timeouts: IntCounter::new("h", "h").unwrap(),
            open: IntGauge::new("o", "o").unwrap(),
            refused: IntCounterVec::new(prometheus::Opts::new("r", "r"), &["limit"]).unwrap(),
            client_faults: ClientFaults::new(
                IntCounterVec::new(prometheus::Opts::new("f", "f"), &["kind"]).unwrap(),
                Duration::ZERO,
            ),
        }))
    }

    #[test]
    fn a_client_holds_at_most_max_connections_and_gets_them_back_when_they_close() {
        let counts = counts();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = counts.open(Some(a), 2, 100).unwrap();
        let second = counts.open(Some(a), 2, 100).unwrap();
        assert_eq!(counts.open(Some(a), 2, 100).err(), Some(Over::PerClient));
        let other = counts.open(Some(b), 2, 100).unwrap();
        let uncapped: Vec<Open> = (0..5)
            .filter_map(|_| counts.open(None, 2, 100).ok())
            .collect();
        assert_eq!(uncapped.len(), 5);
        assert_eq!(counts.metrics.open.get(), 8);
        drop(first);
        let again = counts.open(Some(a), 2, 100).unwrap();
        drop((second, again, other, uncapped));
        assert_eq!(counts.metrics.open.get(), 0);
        assert_eq!(counts.total.load(Ordering::Relaxed), 0);
        assert!(counts.by_client.lock().unwrap().is_empty());
    }

    #[test]
    fn the_proxy_holds_at_most_max_connections_in_all_whoever_opens_them() {
        let counts = counts();
        let clients: Vec<IpAddr> = (1..=4)
            .map(|i| format!("192.0.2.{i}").parse().unwrap())
            .collect();
        let mut open: Vec<Open> = clients
            .iter()
            .map(|&c| counts.open(Some(c), 2, 4).unwrap())
            .collect();
        // Every client is under its own cap, and still the fifth connection is refused.
        assert_eq!(counts.open(Some(clients[0]), 2, 4).err(), Some(Over::Total));
        assert_eq!(counts.open(None, 2, 4).err(), Some(Over::Total));
        // Refusals took nothing: one closed gives one back.
        assert_eq!(counts.metrics.open.get(), 4);
        open.pop();
        let again = counts.open(None, 2, 4).unwrap();
        // A refusal by client gives back its place in all.
        let _held = counts.open(Some(clients[0]), 2, 6).unwrap();
        assert_eq!(
            counts.open(Some(clients[0]), 2, 6).err(),
            Some(Over::PerClient)
        );
        assert_eq!(counts.total.load(Ordering::Relaxed), 5);
        drop((open, again, _held));
        assert_eq!(counts.total.load(Ordering::Relaxed), 0);
        assert_eq!(counts.metrics.open.get(), 0);
    }

    #[test]
    fn the_default_cap_keeps_a_reserve_of_open_files() {
        assert_eq!(default_max_connections(1024), 1024 - 102);
        assert_eq!(default_max_connections(256), 256 - 64);
        assert_eq!(default_max_connections(524_288), 524_288 - 52_428);
        assert_eq!(default_max_connections(10), 1);
        assert_eq!(default_max_connections(0), u32::MAX);
    }
}
