//! The HTTPS listener's handshake: its certificates, chosen by the client's SNI name, and
//! HTTP/2 by ALPN.
//!
//! The handshake is ours to run, not Pingora's listener's. Pingora gives a TLS handshake 60
//! seconds, fixed, before any code of ours sees the connection: a client that connects to the
//! HTTPS port and sends nothing, or a `ClientHello` a byte at a time, held its connection (and
//! a file descriptor) for a minute, past `limits.idle_timeout_ms`, `limits.header_timeout_ms`
//! and `max_connections_per_client` alike, and uncounted in `waf_client_connections`. So the
//! HTTPS port is a plain TCP listener of Pingora's, and
//! [`ConnectionsApp`](super::connections::ConnectionsApp) runs [`Handshake::accept`] on its
//! connections once it has counted and capped them, under `limits.header_timeout_ms`, as nginx
//! bounds a handshake by its `client_header_timeout`.

use anyhow::{ensure, Context};
use async_trait::async_trait;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::server::handshake_with_callback;
use pingora::protocols::tls::TlsRef;
use pingora::protocols::Stream;
use pingora::tls::pkey::{PKey, Private};
use pingora::tls::ssl::{select_next_proto, AlpnError, NameType, SslAcceptor, SslMethod};
use pingora::tls::x509::X509;

use super::deadlines::DeadlineStream;
use crate::config::TlsListener;

/// One certificate chain and key, and the names it serves.
struct Entry {
    /// Lower-case names; `*.contoso.com` matches one label.
    hosts: Vec<String>,
    chain: Vec<X509>,
    key: PKey<Private>,
}

/// Picks a certificate by SNI name; the first one when the name is unknown or absent.
pub struct Certificates {
    entries: Vec<Entry>,
}

impl Certificates {
    /// Reads and checks every certificate and key of the listener.
    pub fn load(config: &TlsListener) -> anyhow::Result<Certificates> {
        let mut entries = Vec::new();
        for (i, c) in config.certificates.iter().enumerate() {
            let at = format!("tls.certificates[{i}]");
            let pem = std::fs::read(&c.cert)
                .with_context(|| format!("{at}.cert: reading {}", c.cert.display()))?;
            let chain = X509::stack_from_pem(&pem)
                .with_context(|| format!("{at}.cert: {}", c.cert.display()))?;
            ensure!(
                !chain.is_empty(),
                "{at}.cert: no certificate in {}",
                c.cert.display()
            );
            let key_pem = std::fs::read(&c.key)
                .with_context(|| format!("{at}.key: reading {}", c.key.display()))?;
            let key = PKey::private_key_from_pem(&key_pem)
                .with_context(|| format!("{at}.key: {}", c.key.display()))?;
            let matches = chain
                .first()
                .and_then(|leaf| leaf.public_key().ok())
                .is_some_and(|public| public.public_eq(&key));
            ensure!(
                matches,
                "{at}: the key {} does not belong to the certificate {}",
                c.key.display(),
                c.cert.display()
            );
            entries.push(Entry {
                hosts: c.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
                chain,
                key,
            });
        }
        ensure!(!entries.is_empty(), "tls.certificates: at least one");
        Ok(Certificates { entries })
    }

    /// The listener's handshake: these certificates, and HTTP/2 if asked for. The protocol
    /// versions and ciphers are Mozilla's "intermediate" ones, as Pingora's listeners use.
    pub fn into_handshake(self, http2: bool) -> anyhow::Result<Handshake> {
        let mut acceptor =
            SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).context("tls: OpenSSL")?;
        if http2 {
            // ALPN: `h2` when the client offers it, else HTTP/1.1; a client that offers
            // neither gets no protocol, and speaks HTTP/1.1.
            acceptor.set_alpn_select_callback(|_, offered| {
                select_next_proto(b"\x02h2\x08http/1.1", offered).ok_or(AlpnError::NOACK)
            });
        }
        Ok(Handshake {
            acceptor: acceptor.build(),
            certificates: self,
        })
    }

    fn pick(&self, server_name: Option<&str>) -> Option<&Entry> {
        let name = server_name.map(|n| n.trim_end_matches('.').to_ascii_lowercase());
        let by_name = name.as_deref().and_then(|name| {
            self.entries
                .iter()
                .find(|e| e.hosts.iter().any(|h| h == name))
                .or_else(|| {
                    let parent = name.split_once('.').map(|(_, rest)| rest)?;
                    self.entries
                        .iter()
                        .find(|e| e.hosts.iter().any(|h| h.strip_prefix("*.") == Some(parent)))
                })
        });
        by_name.or_else(|| self.entries.first())
    }
}

#[async_trait]
impl TlsAccept for Certificates {
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        let name = ssl.servername(NameType::HOST_NAME).map(str::to_string);
        let Some(entry) = self.pick(name.as_deref()) else {
            return;
        };
        let mut chain = entry.chain.iter();
        let result = (|| {
            if let Some(leaf) = chain.next() {
                pingora::tls::ext::ssl_use_certificate(ssl, leaf)?;
            }
            for intermediate in chain {
                pingora::tls::ext::ssl_add_chain_cert(ssl, intermediate)?;
            }
            pingora::tls::ext::ssl_use_private_key(ssl, &entry.key)
        })();
        // Without a certificate the handshake fails on its own; say why in the log.
        if let Err(e) = result {
            tracing::error!(sni = name.as_deref().unwrap_or(""), "TLS certificate: {e}");
        }
    }
}

/// The HTTPS listener's TLS handshake (see the module's documentation).
pub struct Handshake {
    acceptor: SslAcceptor,
    certificates: Certificates,
}

impl Handshake {
    /// Runs the server side of the handshake on a connection just accepted; the TLS stream
    /// then carries HTTP as a plain one would. The caller bounds its time.
    pub async fn accept(&self, stream: Stream) -> pingora::Result<Stream> {
        let tls = handshake_with_callback(
            &self.acceptor,
            DeadlineStream::under_tls(stream),
            &self.certificates,
        )
        .await?;
        Ok(Box::new(tls))
    }
}
