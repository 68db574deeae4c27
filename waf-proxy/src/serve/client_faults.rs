//! Client faults in the log: counted, and summed up once a minute, not an `ERROR` line each.
//!
//! Four things clients do were logged as errors, one line each:
//!
//! * a TLS handshake that fails or does not finish in time: a port scanner, a client speaking
//!   plain HTTP to the HTTPS port, a TLS version no one should still offer, a client that
//!   connects and sends nothing. Pingora's TLS listener logged `Downstream handshake error
//!   from …`; the handshake is now the proxy's own ([`tls`](super::tls)), which reports each
//!   one here ([`ClientFaults::handshake_failed`]);
//! * a request head that ends before it is complete (Pingora's `Fail to proxy: … while
//!   reading request headers`): a client that leaves in the middle of one, or a slowloris
//!   connection that the head deadline closes ([`deadlines`](super::deadlines));
//! * a request its client abandons after the head: in the middle of its body (`Fail to filter
//!   request: Downstream ConnectionClosed … Peer prematurely closed connection with 95 bytes
//!   of body remaining`), while it waits for its answer, or before the answer is written
//!   (`… WriteError … Connection reset by peer`). A browser tab closed, or a phone that lost
//!   its network, in the middle of a sign-in. Over HTTP/2 the browser resets the request's
//!   stream instead: while it waits (`H2Error … Client closed H2, reason: stream no longer
//!   needed`, which was also answered and counted as a malformed request), or while its
//!   answer is written (`H2Error … cannot reserve capacity`); see [`is_h2_stream_reset`];
//! * a body whose framing is broken (`Fail to filter request: Downstream InvalidChunk`): a
//!   chunk size that is not hexadecimal, a chunk without its line end. Scanners probing for
//!   request smuggling send them by the hundred; the proxy answers 400.
//!
//! A fifth was not logged at all, only answered: a request head that does not parse, which
//! Pingora's HTTP/1 server refuses with its bare 400 before any hook of the proxy's runs (two
//! `Content-Length`s, an unencoded `<` in the target), and reports in a `debug!` line only.
//! Smuggling probes and hand-made attacks went unseen. [`PingoraLog`] reads that line, and
//! counts it with the others.
//!
//! None is the proxy's fault, none is anything an operator can fix, and on a public sign-in
//! domain they come by the thousand: a line each floods the log under a scan or a
//! slowloris attack, and pages whoever alerts on `ERROR`. So they are counted instead, in
//! `waf_client_faults_total{kind}`, and [`Summary`] logs one `INFO` line per
//! `client_faults_log_seconds` in which any occurred, with the count of each kind and the last
//! one's message as a sample. With `client_faults_log_seconds: 0` each is logged as an `ERROR`
//! line too.
//!
//! The last two reach Pingora's hook for quieting its proxy errors
//! (`ProxyHttp::suppress_error_log`), where the proxy reports them by the error's kind
//! ([`ClientFaults::client_error`]). The read of a request head happens before any hook runs,
//! so Pingora's head lines are recognised by their target and text, by the tracing layer
//! [`ClientFaults`]. Should an upgrade of Pingora reword that line, it is logged as before:
//! nothing is lost but the quiet. The heads are counted from the log events, so a `RUST_LOG`
//! that turns Pingora's errors off stops that count too.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use prometheus::IntCounterVec;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer};

/// What a client did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Its TLS handshake failed or timed out.
    TlsHandshake,
    /// It left, or was cut off by the head deadline, in the middle of a request head.
    RequestHead,
    /// It closed or reset its connection after the request head: in the middle of the
    /// body, while it waited for its answer, or before the answer was written.
    Abandoned,
    /// Its body's framing was broken (chunked encoding).
    MalformedBody,
    /// Its request head did not parse, and Pingora answered 400 before any hook of ours ran.
    MalformedHead,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::TlsHandshake,
        Kind::RequestHead,
        Kind::Abandoned,
        Kind::MalformedBody,
        Kind::MalformedHead,
    ];

    /// The `kind` label of `waf_client_faults_total`.
    fn label(self) -> &'static str {
        match self {
            Kind::TlsHandshake => "tls_handshake",
            Kind::RequestHead => "request_head",
            Kind::Abandoned => "abandoned",
            Kind::MalformedBody => "malformed_body",
            Kind::MalformedHead => "malformed_head",
        }
    }

    /// How the summary line words a count of them.
    fn describe(self, n: u64) -> String {
        match (self, n) {
            (Kind::TlsHandshake, 1) => "1 TLS handshake failed".into(),
            (Kind::TlsHandshake, n) => format!("{n} TLS handshakes failed"),
            (Kind::RequestHead, 1) => "1 request head cut short".into(),
            (Kind::RequestHead, n) => format!("{n} request heads cut short"),
            (Kind::Abandoned, 1) => "1 request abandoned by its client".into(),
            (Kind::Abandoned, n) => format!("{n} requests abandoned by their clients"),
            (Kind::MalformedBody, 1) => "1 malformed request body".into(),
            (Kind::MalformedBody, n) => format!("{n} malformed request bodies"),
            (Kind::MalformedHead, 1) => "1 malformed request head refused".into(),
            (Kind::MalformedHead, n) => format!("{n} malformed request heads refused"),
        }
    }

    /// The client fault a Pingora `ERROR` line reports, if it reports one.
    fn of(target: &str, message: &str) -> Option<Kind> {
        let head_cut_short = target.starts_with("pingora_proxy")
            && message.starts_with("Fail to proxy: ")
            && message.contains("while reading request headers");
        head_cut_short.then_some(Kind::RequestHead)
    }

    /// Whether a Pingora `debug!` line reports a request head it refused with 400: its
    /// `Fail to proxy: Downstream InvalidHTTPHeader ...`, the one line Pingora writes for such
    /// a head (at debug level: see [`PingoraLog`]).
    fn is_refused_head(message: &str) -> bool {
        message.starts_with("Fail to proxy: ") && message.contains(" InvalidHTTPHeader ")
    }

    /// The client fault a failed request's error is, if it is one: the client's side of the
    /// connection (`Downstream`) closed, reset or timed out, reading or writing, or its body's
    /// framing broken. A failure of the proxy's or the upstream's is not.
    fn of_error(error: &pingora::Error) -> Option<Kind> {
        use pingora::{ErrorSource, ErrorType};
        if *error.esource() != ErrorSource::Downstream {
            return None;
        }
        match error.etype() {
            ErrorType::ConnectionClosed
            | ErrorType::ReadError
            | ErrorType::ReadTimedout
            | ErrorType::WriteError
            | ErrorType::WriteTimedout
            // Pingora's HTTP/1 body reader: the connection ended inside the body.
            | ErrorType::Custom("PrematureBodyEnd") => Some(Kind::Abandoned),
            // The same reader's framing errors.
            ErrorType::Custom("InvalidChunk" | "InvalidTrailerEnd") => Some(Kind::MalformedBody),
            ErrorType::H2Error if is_h2_stream_reset(error) => Some(Kind::Abandoned),
            _ => None,
        }
    }

    fn index(self) -> usize {
        match self {
            Kind::TlsHandshake => 0,
            Kind::RequestHead => 1,
            Kind::Abandoned => 2,
            Kind::MalformedBody => 3,
            Kind::MalformedHead => 4,
        }
    }
}

/// Whether `error` says that a request's HTTP/2 stream was reset, or its connection lost,
/// by the client's side: while the proxy waited for the upstream's answer, or while it wrote
/// the answer. A browser resets the stream (`CANCEL`) of every request a user leaves before
/// its answer is in (a tab closed, a second click on "Sign in", a page left in the middle of
/// a download), and the HTTP/2 codec resets one for the client's protocol error (a body
/// longer than its `Content-Length`). Either way the stream is gone, nothing can be answered
/// on it, and there is nothing an operator can fix: the HTTP/2 form of a client that closes
/// its HTTP/1 connection while it waits or reads.
///
/// Pingora reports these as `H2Error`s with a context of its own, under whatever context
/// was added on the way (`Peer: …`): `Client closed H2, reason: …` while the answer is
/// awaited, and, while it is written, `cannot reserve capacity` (the stream closed while the
/// proxy waited for flow-control window) or `while waiting for capacity` (the stream failed
/// meanwhile). Its other `H2Error`s (a stream used wrongly by the proxy itself) are not this.
/// Should an upgrade of Pingora reword one, such a request is logged as an error again.
pub fn is_h2_stream_reset(error: &pingora::Error) -> bool {
    const GONE: [&str; 3] = [
        "Client closed H2",
        "cannot reserve capacity",
        "while waiting for capacity",
    ];
    let mut next = Some(error);
    while let Some(e) = next {
        let gone = *e.etype() == pingora::ErrorType::H2Error
            && e.context
                .as_ref()
                .is_some_and(|c| GONE.iter().any(|g| c.as_str().starts_with(g)));
        if gone {
            return true;
        }
        next = e
            .cause
            .as_deref()
            .and_then(|c| c.downcast_ref::<Box<pingora::Error>>())
            .map(|b| &**b);
    }
    false
}

/// The counts since the last summary line, shared by the [`ClientFaults`] layer and the
/// [`Summary`] service.
struct Tally {
    since_summary: [AtomicU64; Kind::ALL.len()],
    /// The message of the last fault, as a sample for the summary.
    last: Mutex<String>,
    metric: IntCounterVec,
    /// `client_faults_log_seconds`: zero logs each fault, anything else keeps them out of the
    /// log for the summary.
    log_every: Duration,
}

/// The client-fault counts; as a tracing layer, it counts Pingora's client-fault `ERROR` lines
/// and, unless told to log each, keeps them out of the log (see the module's documentation).
#[derive(Clone)]
pub struct ClientFaults {
    tally: Arc<Tally>,
}

impl ClientFaults {
    /// Counts into `metric` (labelled `kind`); `log_every` of zero logs each fault as an `ERROR`
    /// line, anything else leaves them to [`ClientFaults::summary`], once per `log_every`.
    pub fn new(metric: IntCounterVec, log_every: Duration) -> ClientFaults {
        ClientFaults {
            tally: Arc::new(Tally {
                since_summary: Default::default(),
                last: Mutex::new(String::new()),
                metric,
                log_every,
            }),
        }
    }

    /// The background service that logs the summary line (none when each fault is logged).
    pub fn summary(&self) -> Summary {
        Summary {
            tally: self.tally.clone(),
        }
    }

    /// Whether faults are kept out of the log, for the summary.
    fn quiet(&self) -> bool {
        !self.tally.log_every.is_zero()
    }

    /// Counts a TLS handshake that failed or timed out in our own listener, and logs it as an
    /// `ERROR` line when each fault is logged.
    pub fn handshake_failed(&self, message: String) {
        if !self.quiet() {
            tracing::error!("{message}");
        }
        self.count(Kind::TlsHandshake, message);
    }

    /// Counts a request that failed because of its client, and logs it as an `ERROR` line
    /// when each fault is logged; `false` for any other failure, which is the proxy's or the
    /// upstream's and stays in the log. `request` names the request, for the sample.
    pub fn client_error(&self, error: &pingora::Error, request: impl fmt::Display) -> bool {
        let Some(kind) = Kind::of_error(error) else {
            return false;
        };
        let message = format!("{error}, {request}");
        if !self.quiet() {
            tracing::error!("{message}");
        }
        self.count(kind, message);
        true
    }

    fn count(&self, kind: Kind, message: String) {
        self.tally.metric.with_label_values(&[kind.label()]).inc();
        if let Some(n) = self.tally.since_summary.get(kind.index()) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut last) = self.tally.last.lock() {
            *last = message;
        }
    }
}

/// The `log` crate's logger for Pingora's records: each goes on to tracing through
/// [`LogTracer`](tracing_log::LogTracer), as it did when tracing installed the bridge itself,
/// but for the one `debug!` line in which Pingora reports a request head it refused.
///
/// Pingora answers a head that does not parse (a header line without a colon, two `Host`
/// headers, a `Content-Length` that is not a number, an unencoded `<` in the target: request
/// smuggling probes and hand-made attacks) with its bare 400 before any hook of the proxy's
/// runs, and logs it at debug level only. The `log` crate's maximum level is therefore
/// `Debug`, where it was the tracing filter's (`Info`), and this logger takes the debug records
/// the filter does not want back out at once: a level comparison for most, and a module-path
/// comparison for Pingora's proxy crate, whose only debug line with arguments in its
/// connection loop (`lib.rs`) is the one wanted. A record is formatted only then. Every other
/// `debug!` of Pingora's costs a call and two comparisons, a few nanoseconds.
pub struct PingoraLog {
    tracer: tracing_log::LogTracer,
    /// The most verbose level the tracing filter lets through: records past it stop here, as
    /// the `log` crate's maximum level stopped them at the macro.
    forward: log::LevelFilter,
    faults: ClientFaults,
}

impl PingoraLog {
    /// Makes this the `log` crate's logger, with tracing's filter at `forward`; an error when
    /// a logger is set already (it then stays).
    pub fn install(
        forward: log::LevelFilter,
        faults: ClientFaults,
    ) -> Result<(), log::SetLoggerError> {
        log::set_boxed_logger(Box::new(PingoraLog {
            tracer: tracing_log::LogTracer::new(),
            forward,
            faults,
        }))?;
        log::set_max_level(forward.max(log::LevelFilter::Debug));
        Ok(())
    }

    /// Counts `record` when it is Pingora's line for a refused head; whether it was.
    fn refused_head(&self, record: &log::Record<'_>) -> bool {
        if record.level() != log::Level::Debug
            || record.module_path() != Some("pingora_proxy")
            || record.args().as_str().is_some()
        {
            return false;
        }
        let mut message = record.args().to_string();
        if !Kind::is_refused_head(&message) {
            return false;
        }
        // The line quotes the head that did not parse, up to 2 KiB of the client's bytes
        // (escaped): the summary's sample keeps the start.
        const SAMPLE: usize = 300;
        if message.len() > SAMPLE {
            let mut end = SAMPLE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        if !self.faults.quiet() {
            tracing::error!("{message}");
        }
        self.faults.count(Kind::MalformedHead, message);
        true
    }
}

impl log::Log for PingoraLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.forward || metadata.target().starts_with("pingora_proxy")
    }

    fn log(&self, record: &log::Record<'_>) {
        self.refused_head(record);
        // With `RUST_LOG` at debug, the line for a refused head is logged as asked, too.
        if record.level() <= self.forward {
            self.tracer.log(record);
        }
    }

    fn flush(&self) {
        self.tracer.flush();
    }
}

/// The text of an event's `message` field (a `log` record's text, once bridged).
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for ClientFaults {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        // Every event passes here: the test that lets nearly all of them by must stay cheap.
        if *event.metadata().level() != Level::ERROR {
            return true;
        }
        // A `log` record's event has the bridge's metadata (target `log`); its own is in its
        // fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if !meta.target().starts_with("pingora") {
            return true;
        }
        let mut message = Message::default();
        event.record(&mut message);
        match Kind::of(meta.target(), &message.0) {
            Some(kind) => {
                self.count(kind, message.0);
                !self.quiet()
            }
            None => true,
        }
    }
}

/// Logs, every so often, how many client faults the proxy kept out of the log.
pub struct Summary {
    tally: Arc<Tally>,
}

impl Summary {
    /// The summary of the faults counted since the last one, if there were any; the counts
    /// start again from zero.
    fn take(&self) -> Option<String> {
        let counts: Vec<(Kind, u64)> = Kind::ALL
            .iter()
            .filter_map(|&kind| {
                let n = self.tally.since_summary.get(kind.index())?;
                Some((kind, n.swap(0, Ordering::Relaxed)))
            })
            .filter(|&(_, n)| n > 0)
            .collect();
        if counts.is_empty() {
            return None;
        }
        let said: Vec<String> = counts.iter().map(|&(k, n)| k.describe(n)).collect();
        let last = self
            .tally
            .last
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        Some(format!("{}; the last: {last}", said.join(", ")))
    }
}

#[async_trait]
impl BackgroundService for Summary {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let every = self.tally.log_every;
        if every.is_zero() {
            return;
        }
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = ticks.tick() => {
                    if let Some(summary) = self.take() {
                        tracing::info!(
                            seconds = every.as_secs_f64(),
                            "client faults (counted in waf_client_faults_total, not logged one \
                             by one): {summary}"
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use prometheus::Opts;
    use tracing_subscriber::layer::SubscriberExt;

    /// The lines Pingora 0.9 writes, as they reach the layer.
    const PINGORA_LINES: &[(&str, &str, Option<Kind>)] = &[
        (
            "pingora_proxy",
            "Fail to proxy: Downstream ReadError context: while reading request headers cause: request head not complete in time, downstream session type: HTTP/1.1",
            Some(Kind::RequestHead),
        ),
        (
            "pingora_proxy",
            "Fail to proxy: Downstream ConnectionClosed context: while reading request headers, bytes already read: 17, downstream session type: HTTP/1.1",
            Some(Kind::RequestHead),
        ),
        // The proxy's own failures stay in the log.
        (
            "pingora_proxy",
            "Fail to proxy: Upstream ConnectRefused context: ..., status: 502, tries: 1",
            None,
        ),
        ("pingora_core::services::listening", "Accept() failed", None),
        (
            "waf::serve",
            "Fail to proxy: Downstream ConnectionClosed context: while reading request headers",
            None,
        ),
    ];

    /// Errors that fail a request after its head: the client's connection failing is a fault
    /// of the client's, anything else is not.
    #[test]
    fn a_request_failed_by_its_clients_connection_is_abandoned() {
        use pingora::{Error, ErrorType::*};
        let down = |t| Error::explain(t, "x").into_down();
        let up = |t| Error::explain(t, "x").into_up();
        let cases = [
            (down(ConnectionClosed), Some(Kind::Abandoned)),
            (down(ReadError), Some(Kind::Abandoned)),
            (down(ReadTimedout), Some(Kind::Abandoned)),
            (down(WriteError), Some(Kind::Abandoned)),
            (down(WriteTimedout), Some(Kind::Abandoned)),
            (down(Custom("PrematureBodyEnd")), Some(Kind::Abandoned)),
            (down(Custom("InvalidChunk")), Some(Kind::MalformedBody)),
            (down(Custom("InvalidTrailerEnd")), Some(Kind::MalformedBody)),
            (up(Custom("InvalidChunk")), None),
            (down(InvalidHTTPHeader), None),
            (down(H2Error), None),
            // A stream the client reset while its request waited for the upstream, as
            // Pingora's HTTP/2 server reports it and its proxy adds the peer to it.
            (
                Error::explain(H2Error, "Client closed H2, reason: stream no longer needed")
                    .into_down()
                    .more_context("Peer: addr: 127.0.0.1:8093, scheme: HTTP"),
                Some(Kind::Abandoned),
            ),
            (
                Error::explain(H2Error, "Client closed H2, reason: stream no longer needed")
                    .into_down(),
                Some(Kind::Abandoned),
            ),
            (
                Error::explain(H2Error, "Client closed H2, reason: stream no longer needed")
                    .into_up(),
                None,
            ),
            // The same while the answer was written: the stream closed while the proxy
            // waited for window, or failed meanwhile.
            (
                Error::explain(H2Error, "cannot reserve capacity")
                    .into_down()
                    .more_context("Peer: addr: 127.0.0.1:8095, scheme: HTTP"),
                Some(Kind::Abandoned),
            ),
            (
                Error::explain(H2Error, "while waiting for capacity").into_down(),
                Some(Kind::Abandoned),
            ),
            (
                Error::explain(H2Error, "try to send body before header is sent").into_down(),
                None,
            ),
            (up(ConnectionClosed), None),
            (up(ReadTimedout), None),
            (Error::explain(WriteError, "x"), None),
            (Error::explain(HTTPStatus(400), "x"), None),
        ];
        for (error, kind) in cases {
            assert_eq!(Kind::of_error(&error), kind, "{error}");
        }
        let faults = faults(Duration::from_secs(60));
        assert!(!faults.client_error(&up(ConnectionClosed), "GET /"));
        assert!(faults.client_error(&down(ConnectionClosed), "GET / from 192.0.2.1"));
        assert_eq!(
            faults.summary().take().unwrap(),
            "1 request abandoned by its client; the last: Downstream ConnectionClosed context: x, \
             GET / from 192.0.2.1"
        );
    }

    /// Pingora 0.9's `debug!` line for a head it refused (the only one that is counted), and
    /// its lines for other things.
    #[test]
    fn pingoras_line_for_a_refused_head_is_recognised_and_no_other() {
        for (message, refused) in [
            (
                "Fail to proxy: Downstream InvalidHTTPHeader context: invalid uri /?x=<script>, downstream session type: h1",
                true,
            ),
            (
                "Fail to proxy: Downstream InvalidHTTPHeader context: buf: \"GET /x HTTP/1.1\\r\\nbad header\\r\\n\\r\\n\" cause: invalid header name, downstream session type: h1",
                true,
            ),
            (
                "Fail to proxy: Downstream ConnectionClosed context: while reading request headers, bytes already read: 17, downstream session type: h1",
                false,
            ),
            ("Successfully get a new request", false),
        ] {
            assert_eq!(Kind::is_refused_head(message), refused, "{message}");
        }
    }

    /// Only Pingora's proxy crate's debug line with that text is counted: not the same text
    /// from another module or at another level (the `ERROR` lines are the layer's), and a
    /// record without arguments is not even formatted. The sample keeps the line's start.
    #[test]
    fn the_log_front_counts_refused_heads_only() {
        let faults = faults(Duration::from_secs(60));
        let front = PingoraLog {
            tracer: tracing_log::LogTracer::new(),
            forward: log::LevelFilter::Info,
            faults: faults.clone(),
        };
        let uri = format!("/?x=<{}>", "a".repeat(400));
        let record = |level, module| {
            let args = format_args!(
                "Fail to proxy: Downstream InvalidHTTPHeader context: invalid uri {uri}, downstream session type: h1"
            );
            front.refused_head(
                &log::Record::builder()
                    .level(level)
                    .module_path(Some(module))
                    .args(args)
                    .build(),
            )
        };
        assert!(record(log::Level::Debug, "pingora_proxy"));
        assert!(!record(log::Level::Debug, "pingora_proxy::proxy_h1"));
        assert!(!record(log::Level::Error, "pingora_proxy"));
        assert!(!record(log::Level::Debug, "waf::serve"));
        assert!(!front.refused_head(
            &log::Record::builder()
                .level(log::Level::Debug)
                .module_path(Some("pingora_proxy"))
                .args(format_args!("Successfully get a new request"))
                .build()
        ));
        let summary = faults.summary().take().unwrap();
        assert!(
            summary.starts_with(
                "1 malformed request head refused; the last: Fail to proxy: Downstream \
                 InvalidHTTPHeader context: invalid uri /?x=<aaa"
            ),
            "{summary}"
        );
        assert!(summary.ends_with("aaa…"), "{summary}");
    }

    #[test]
    fn pingoras_client_fault_lines_are_recognised_and_no_others() {
        for &(target, message, kind) in PINGORA_LINES {
            assert_eq!(Kind::of(target, message), kind, "{target}: {message}");
        }
    }

    fn faults(log_every: Duration) -> ClientFaults {
        let metric = IntCounterVec::new(Opts::new("f", "f"), &["kind"]).unwrap();
        ClientFaults::new(metric, log_every)
    }

    /// Sends `log` records, as Pingora writes them, through a subscriber holding the layer and
    /// a layer that counts what it lets by; returns that count. Each line goes with an
    /// unrelated `ERROR` event and an `INFO` record of the same target and text.
    fn passed(faults: &ClientFaults, lines: &[(&str, &str)]) -> usize {
        #[derive(Clone, Default)]
        struct Seen(Arc<AtomicU64>);
        impl<S: Subscriber> Layer<S> for Seen {
            fn on_event(&self, _event: &Event<'_>, _ctx: Context<'_, S>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        // The bridge from `log` to the current subscriber; once per test process.
        let _ = tracing_log::LogTracer::init();
        let seen = Seen::default();
        let subscriber = tracing_subscriber::registry()
            .with(faults.clone())
            .with(seen.clone());
        tracing::subscriber::with_default(subscriber, || {
            for &(target, message) in lines {
                tracing::error!("unrelated");
                log::error!(target: target, "{message}");
                log::info!(target: target, "{message}");
            }
        });
        seen.0.load(Ordering::Relaxed) as usize
    }

    #[test]
    fn client_faults_are_counted_and_kept_out_of_the_log() {
        let faults = faults(Duration::from_secs(60));
        let lines: Vec<(&str, &str)> = PINGORA_LINES.iter().map(|&(t, m, _)| (t, m)).collect();
        // Per line: the unrelated error and the INFO copy always pass, the line itself only
        // when it is no client fault.
        let others = PINGORA_LINES.iter().filter(|l| l.2.is_none()).count();
        assert_eq!(passed(&faults, &lines), 2 * lines.len() + others);
        let metric = &faults.tally.metric;
        assert_eq!(metric.with_label_values(&["request_head"]).get(), 2);
        // The handshakes are reported by the proxy's own TLS listener.
        faults.handshake_failed("TLS handshake with 192.0.2.1:1 failed: unexpected EOF".into());

        let summary = faults.summary();
        let said = summary.take().unwrap();
        assert_eq!(
            said,
            "1 TLS handshake failed, 2 request heads cut short; the last: TLS handshake with \
             192.0.2.1:1 failed: unexpected EOF"
        );
        assert_eq!(summary.take(), None, "the counts start again");
        // The metric keeps counting from where it was.
        assert_eq!(metric.with_label_values(&["request_head"]).get(), 2);
    }

    #[test]
    fn with_no_summary_each_fault_is_counted_and_logged() {
        let faults = faults(Duration::ZERO);
        let lines: Vec<(&str, &str)> = PINGORA_LINES.iter().map(|&(t, m, _)| (t, m)).collect();
        assert_eq!(passed(&faults, &lines), 3 * lines.len());
        assert_eq!(
            faults
                .tally
                .metric
                .with_label_values(&["request_head"])
                .get(),
            2
        );
    }
}
