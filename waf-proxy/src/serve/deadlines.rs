//! Deadlines on what clients send: an idle connection, a request head. Pingora has neither.
//!
//! A slowloris client opens a connection, sends part of a request head and then one more byte
//! every few seconds, never the blank line that ends the head. Pingora 0.9 times out each *read*
//! of a head (60 s), not the head as a whole, so such a client holds its connection, a socket
//! and a buffer for as long as it likes; a few thousand of them hold every file descriptor the
//! proxy has, and the sign-in page is down. nginx bounds the whole head
//! (`client_header_timeout`); Pingora cannot, because the head is read inside its HTTP/1
//! session before any hook of ours runs (cloudflare/pingora#447). An HTTP/2 client need not
//! even trickle: Pingora keeps an HTTP/2 connection that never sends a request open forever.
//!
//! So the deadlines are kept one layer down, on the connection's byte stream:
//! [`ConnectionsApp`](super::connections::ConnectionsApp) hands the proxy every HTTP/1
//! connection (plain or TLS, after the handshake, which has `limits.header_timeout_ms` too: see
//! [`tls`](super::tls)) inside a [`DeadlineStream`], which follows
//! the HTTP/1 exchange from the bytes that pass through it:
//!
//! * **Idle**: before the first request and between requests. Once `limits.idle_timeout_ms`
//!   has passed since the connection was accepted or since anything was last written to it
//!   (the response goes on being written after its first bytes), a read ends the stream, as
//!   if the client had closed it; Pingora closes the connection.
//! * **Head**: from the first byte of a request until the blank line that ends its head. Once
//!   `limits.header_timeout_ms` has passed since that first byte, every read fails with
//!   [`TimedOut`](std::io::ErrorKind::TimedOut); Pingora then drops the connection without an
//!   answer, as nginx does.
//! * **Body**: after the head. The body, when there is one, is read under its own deadline
//!   (`limits.body_timeout_ms`, in the proxy; a body forwarded as it arrives is held to a pace
//!   instead, see `proxy::StreamedBody`). The first response written that is not an
//!   interim `1xx` (a `100 Continue` comes before the body) ends the exchange: the connection
//!   is idle again.
//!
//! This follows the wire rather than parsing it, and can only err towards guarding less: a
//! head that ends in a way the HTTP parser refuses ends the deadline too (the parser then
//! answers 400), and a response sent while the request body is still arriving (an upstream
//! that answers early) lets the rest of that body start a deadline that the next head would
//! have had anyway. HTTP/2 connections are not wrapped (their frames are not HTTP/1 heads):
//! Pingora's own `h2_idle_timeout` closes them once no request is in flight for
//! `limits.idle_timeout_ms`, which also covers a request whose headers never end, since
//! Pingora sees no request until they do.
//!
//! A head that arrives in the read that started it, which is nearly every head, costs a clock
//! read and a scan for the blank line; one timer per connection is reset when a read has to
//! wait.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use prometheus::IntCounter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a connection may stay idle, and take to send a request head.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub idle: Duration,
    pub head: Duration,
}

/// Where a connection is in its HTTP/1 exchange (see the module's documentation).
enum Phase {
    Idle {
        until: Instant,
    },
    Head {
        until: Instant,
        /// Whether the current line has a byte other than `\r`. A head starts with one (the
        /// blank lines before it are skipped), so the first line with none ends it.
        line_started: bool,
    },
    Body,
    /// The deadline passed: every read fails.
    Expired,
    /// Under TLS: the bytes are TLS records, the handshake has a deadline of its own, and the
    /// HTTP/1 deadlines apply above TLS, in a second stream (see [`DeadlineStream::under_tls`]).
    UnderTls,
}

/// A connection's byte stream with deadlines on idleness and on each request head.
pub struct DeadlineStream {
    inner: Stream,
    deadlines: Deadlines,
    phase: Phase,
    /// The connection's one timer, set to the deadline of a read that has to wait.
    timer: Option<Pin<Box<Sleep>>>,
    /// `waf_request_head_timeouts_total` (none under TLS).
    expired: Option<IntCounter>,
}

impl DeadlineStream {
    pub fn new(inner: Stream, deadlines: Deadlines, expired: IntCounter) -> Self {
        DeadlineStream {
            inner,
            deadlines,
            phase: Phase::Idle {
                until: Instant::now() + deadlines.idle,
            },
            timer: None,
            expired: Some(expired),
        }
    }

    /// The raw stream of a TLS connection, with no deadline: Pingora's TLS stream needs its
    /// stream to be Pingora's `IO`, which a boxed stream is not, and this stream is.
    pub fn under_tls(inner: Stream) -> Self {
        DeadlineStream {
            inner,
            deadlines: Deadlines {
                idle: Duration::ZERO,
                head: Duration::ZERO,
            },
            phase: Phase::UnderTls,
            timer: None,
            expired: None,
        }
    }

    /// Whether `until` has passed; otherwise the timer wakes the task then.
    fn passed(&mut self, until: Instant, cx: &mut Context<'_>) -> bool {
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
        if timer.deadline() != until {
            timer.as_mut().reset(until);
        }
        timer.as_mut().poll(cx).is_ready()
    }

    /// Follows the bytes just read: a new head starts, or the blank line ends it.
    fn saw(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            if let Phase::Idle { .. } = self.phase {
                // Blank lines between requests (the CRLF some clients send after a body) are
                // not a head: the connection stays idle, under the idle deadline.
                let Some(start) = rest.iter().position(|&b| b != b'\r' && b != b'\n') else {
                    return;
                };
                rest = rest.get(start..).unwrap_or_default();
                self.phase = Phase::Head {
                    until: Instant::now() + self.deadlines.head,
                    line_started: false,
                };
            }
            let Phase::Head { line_started, .. } = &mut self.phase else {
                return;
            };
            let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
                *line_started |= rest.iter().any(|&b| b != b'\r');
                return;
            };
            let (line, after) = rest.split_at(newline);
            if !*line_started && line.iter().all(|&b| b == b'\r') {
                // The blank line: the head is complete.
                self.phase = Phase::Body;
                return;
            }
            *line_started = false;
            rest = after.get(1..).unwrap_or_default();
        }
    }

    /// The error of a read past the deadline; the first one counts and logs it.
    fn timed_out(&mut self) -> io::Error {
        let error = io::Error::new(io::ErrorKind::TimedOut, "request head not complete in time");
        if let Phase::Expired = self.phase {
            return error;
        }
        self.phase = Phase::Expired;
        if let Some(expired) = &self.expired {
            expired.inc();
        }
        let peer = self
            .inner
            .get_socket_digest()
            .and_then(|d| d.peer_addr().map(|a| a.to_string()))
            .unwrap_or_default();
        // Under a slowloris attack this happens by the thousand: the summary line of client
        // faults (`client_faults`) counts them, and this one says which client.
        tracing::debug!(
            peer = %peer,
            timeout_ms = self.deadlines.head.as_millis() as u64,
            "request head not complete in time: connection closed"
        );
        error
    }
}

impl AsyncRead for DeadlineStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let now = Instant::now();
        match this.phase {
            Phase::Expired => return Poll::Ready(Err(this.timed_out())),
            Phase::Head { until, .. } if now >= until => {
                return Poll::Ready(Err(this.timed_out()));
            }
            // The end of the stream: Pingora takes it for a client that closed the connection.
            Phase::Idle { until } if now >= until => return Poll::Ready(Ok(())),
            _ => {}
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let filled = buf.filled();
                this.saw(filled.get(before..).unwrap_or_default());
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let (until, head) = match this.phase {
                    Phase::Head { until, .. } => (until, true),
                    Phase::Idle { until } => (until, false),
                    Phase::Body | Phase::Expired | Phase::UnderTls => return Poll::Pending,
                };
                match (this.passed(until, cx), head) {
                    (false, _) => Poll::Pending,
                    (true, true) => Poll::Ready(Err(this.timed_out())),
                    (true, false) => Poll::Ready(Ok(())),
                }
            }
        }
    }
}

impl AsyncWrite for DeadlineStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.wrote(buf);
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            this.wrote(first);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl DeadlineStream {
    /// Follows the bytes about to be written: a final response ends the exchange.
    ///
    /// A connection is idle from its last write: the response goes on after its first write,
    /// and Pingora reads from the client meanwhile (to see it leave). A response that takes
    /// longer than the idle timeout to send, a download on a slow link, must not read as a
    /// client gone idle.
    fn wrote(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match self.phase {
            Phase::Body => {
                // `HTTP/1.1 100 Continue`: the body is still to come.
                let interim = bytes.starts_with(b"HTTP/1.") && bytes.get(9) == Some(&b'1');
                if interim {
                    return;
                }
            }
            Phase::Idle { .. } => {}
            Phase::Head { .. } | Phase::Expired | Phase::UnderTls => return,
        }
        self.phase = Phase::Idle {
            until: Instant::now() + self.deadlines.idle,
        };
    }
}

// The rest of Pingora's `IO`: all the inner stream's.

#[async_trait]
impl Shutdown for DeadlineStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for DeadlineStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for DeadlineStream {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for DeadlineStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for DeadlineStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for DeadlineStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for DeadlineStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

impl fmt::Debug for DeadlineStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Idle { .. } => "idle",
            Phase::Head { .. } => "head",
            Phase::Body => "body",
            Phase::Expired => "expired",
            Phase::UnderTls => "under TLS",
        };
        f.debug_struct("DeadlineStream")
            .field("inner", &self.inner)
            .field("deadlines", &self.deadlines)
            .field("phase", &phase)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    enum Event {
        Read(&'static [u8]),
        Write(&'static [u8]),
    }
    use Event::{Read, Write};

    /// A stream over nothing: these tests feed its phase tracking directly.
    fn stream() -> DeadlineStream {
        let inner: Stream = Box::new(std::io::Cursor::new(Vec::new()));
        let deadlines = Deadlines {
            idle: Duration::from_secs(1),
            head: Duration::from_secs(1),
        };
        DeadlineStream::new(inner, deadlines, IntCounter::new("t", "t").unwrap())
    }

    fn phase_after(events: &[Event]) -> &'static str {
        let mut s = stream();
        for event in events {
            match event {
                Read(bytes) => s.saw(bytes),
                Write(bytes) => s.wrote(bytes),
            }
        }
        phase_of(&s)
    }

    #[test]
    fn the_phase_follows_the_exchange() {
        const HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let cases: &[(&str, &[Event], &str)] = &[
            ("nothing read yet", &[], "idle"),
            ("a whole head", &[Read(HEAD)], "body"),
            (
                "a head and its body",
                &[Read(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nab")],
                "body",
            ),
            (
                "half a head",
                &[Read(b"GET / HTTP/1.1\r\nHost: a\r\n")],
                "head",
            ),
            (
                "a head a line at a time",
                &[
                    Read(b"GET / HTTP/1.1\r\n"),
                    Read(b"Host: a\r\n"),
                    Read(b"\r\n"),
                ],
                "body",
            ),
            (
                "CRLFs split between reads",
                &[
                    Read(b"GET / HTTP/1.1\r\nHost: a\r"),
                    Read(b"\n\r"),
                    Read(b"\n"),
                ],
                "body",
            ),
            (
                "a line split between reads",
                &[Read(b"GET / HTTP/1.1\r\nHo"), Read(b"st: a\r\n")],
                "head",
            ),
            ("bare LFs", &[Read(b"GET / HTTP/1.1\nHost: a\n\n")], "body"),
            (
                "a blank line before the request line",
                &[Read(b"\r\n")],
                "idle",
            ),
            (
                "a request line after a blank line",
                &[Read(b"\r\nGET / HT")],
                "head",
            ),
            ("then the head", &[Read(b"\r\n"), Read(HEAD)], "body"),
            (
                "a 100 Continue",
                &[Read(HEAD), Write(b"HTTP/1.1 100 Continue\r\n\r\n")],
                "body",
            ),
            (
                "a 101 Switching Protocols",
                &[Read(HEAD), Write(b"HTTP/1.1 101 Switching Protocols\r\n")],
                "body",
            ),
            (
                "the response",
                &[Read(HEAD), Write(b"HTTP/1.1 200 OK\r\n")],
                "idle",
            ),
            (
                "the next head",
                &[
                    Read(HEAD),
                    Write(b"HTTP/1.1 200 OK\r\n"),
                    Read(b"GET /2 HT"),
                ],
                "head",
            ),
            (
                "a write between requests",
                &[Write(b"HTTP/1.1 408 Request Timeout\r\n")],
                "idle",
            ),
            ("an empty read", &[Read(b"")], "idle"),
        ];
        for (what, events, expected) in cases {
            assert_eq!(phase_after(events), *expected, "{what}");
        }
    }

    fn phase_of(s: &DeadlineStream) -> &'static str {
        match s.phase {
            Phase::Idle { .. } => "idle",
            Phase::Head { .. } => "head",
            Phase::Body => "body",
            Phase::Expired => "expired",
            Phase::UnderTls => "under TLS",
        }
    }

    proptest::proptest! {
        /// However a head is cut into reads, it is a head until its blank line arrives, and
        /// then the body.
        #[test]
        fn a_head_ends_at_its_blank_line_however_it_is_read(
            lines in proptest::collection::vec("[A-Za-z-]{1,12}: [ -~]{0,24}", 0..8),
            crlf in proptest::bool::ANY,
            cuts in proptest::collection::vec(0usize..400, 0..6),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut head = format!("POST /SelfAsserted HTTP/1.1{eol}");
            for line in &lines {
                head.push_str(line);
                head.push_str(eol);
            }
            head.push_str(eol);
            let head = head.into_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % head.len()).collect();
            cuts.push(head.len());
            cuts.sort_unstable();
            cuts.dedup();
            let mut s = stream();
            let mut from = 0;
            for cut in cuts {
                s.saw(&head[from..cut]);
                let expected = match (cut, from) {
                    (c, _) if c == head.len() => "body",
                    (0, _) => "idle",
                    _ => "head",
                };
                proptest::prop_assert_eq!(phase_of(&s), expected, "after {} bytes", cut);
                from = cut;
            }
        }
    }
}
