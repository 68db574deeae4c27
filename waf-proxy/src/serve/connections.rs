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

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use prometheus::{IntCounter, IntGauge};

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
    /// `waf_connections_refused_total`.
    pub refused: IntCounter,
    /// Failed TLS handshakes count there.
    pub client_faults: ClientFaults,
}

/// Open connections, by client.
struct Counts {
    by_client: Mutex<HashMap<IpAddr, u32>>,
    metrics: ConnectionMetrics,
}

impl<A> ConnectionsApp<A> {
    pub fn new(
        inner: A,
        live: Arc<Live>,
        idle_timeout: Duration,
        metrics: ConnectionMetrics,
        tls: Option<TlsPort>,
    ) -> Self {
        ConnectionsApp {
            inner: Arc::new(inner),
            live,
            idle_timeout,
            tls,
            counts: Arc::new(Counts {
                by_client: Mutex::new(HashMap::new()),
                metrics,
            }),
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
    /// Counts a connection of `client` (`None`: not capped); `None` when the client holds
    /// `max` already.
    fn open(self: &Arc<Self>, client: Option<IpAddr>, max: u32) -> Option<Open> {
        if let Some(key) = client {
            let mut by_client = self
                .by_client
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let held = by_client.entry(key).or_insert(0);
            if *held >= max {
                return None;
            }
            *held += 1;
        }
        self.metrics.open.inc();
        Some(Open {
            counts: self.clone(),
            client,
        })
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.counts.metrics.open.dec();
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
        let Some(_open) = self.counts.open(capped, limits.max_connections_per_client) else {
            self.counts.metrics.refused.inc();
            tracing::debug!(client = ?capped, "over max_connections_per_client: connection closed");
            return None;
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
        Arc::new(Counts {
            by_client: Mutex::new(HashMap::new()),
            metrics: ConnectionMetrics {
                head_timeouts: IntCounter::new("h", "h").unwrap(),
                open: IntGauge::new("o", "o").unwrap(),
                refused: IntCounter::new("r", "r").unwrap(),
                client_faults: ClientFaults::new(
                    prometheus::IntCounterVec::new(prometheus::Opts::new("f", "f"), &["kind"])
                        .unwrap(),
                    Duration::ZERO,
                ),
            },
        })
    }

    #[test]
    fn a_client_holds_at_most_max_connections_and_gets_them_back_when_they_close() {
        let counts = counts();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = counts.open(Some(a), 2).unwrap();
        let second = counts.open(Some(a), 2).unwrap();
        assert!(counts.open(Some(a), 2).is_none());
        let other = counts.open(Some(b), 2).unwrap();
        let uncapped: Vec<Open> = (0..5).filter_map(|_| counts.open(None, 2)).collect();
        assert_eq!(uncapped.len(), 5);
        assert_eq!(counts.metrics.open.get(), 8);
        drop(first);
        let again = counts.open(Some(a), 2).unwrap();
        drop((second, again, other, uncapped));
        assert_eq!(counts.metrics.open.get(), 0);
        assert!(counts.by_client.lock().unwrap().is_empty());
    }
}
