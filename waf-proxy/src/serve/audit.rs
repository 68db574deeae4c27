//! The audit log: one JSON object per line for every blocked or flagged request (optionally every
//! request), written to a file or stdout. A file is reopened on SIGUSR1, so logrotate can move it
//! away and the next line lands in a fresh file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use serde::Serialize;

use crate::config::Audit;

/// Where the lines go.
enum Sink {
    Off,
    Stdout,
    File(File),
}

/// The audit log.
pub struct AuditLog {
    path: Option<PathBuf>,
    all_requests: bool,
    sink: Mutex<Sink>,
}

impl AuditLog {
    /// Opens the configured log (a file is created if missing and appended to).
    pub fn open(config: &Audit) -> anyhow::Result<AuditLog> {
        let (path, sink) = match config.path.as_str() {
            "off" => (None, Sink::Off),
            "-" => (None, Sink::Stdout),
            p => {
                let path = PathBuf::from(p);
                let file = open_append(&path)?;
                (Some(path), Sink::File(file))
            }
        };
        Ok(AuditLog {
            path,
            all_requests: config.all_requests,
            sink: Mutex::new(sink),
        })
    }

    /// Whether a request with this outcome gets a line.
    pub fn wants(&self, flagged: bool) -> bool {
        flagged || self.all_requests
    }

    /// Writes one record as one line. A failing write is reported on stderr and never fails
    /// the request.
    pub fn write(&self, record: &AuditRecord<'_>) {
        let mut line = match serde_json::to_vec(record) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("audit record: {e}");
                return;
            }
        };
        line.push(b'\n');
        let mut sink = match self.sink.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        // One write call per line, so concurrent writers and readers never see half a record.
        let result = match &mut *sink {
            Sink::Off => Ok(()),
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&line).and_then(|_| out.flush())
            }
            Sink::File(f) => f.write_all(&line),
        };
        if let Err(e) = result {
            tracing::error!("writing the audit log: {e}");
        }
    }

    /// Reopens the file (after log rotation moved it away); stdout needs nothing.
    pub fn reopen(&self) -> anyhow::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file = open_append(path)?;
        let mut sink = match self.sink.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        *sink = Sink::File(file);
        tracing::info!(path = %path.display(), "audit log reopened");
        Ok(())
    }
}

fn open_append(path: &PathBuf) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("audit.path: opening {}", path.display()))
}

/// One line of the audit log.
#[derive(Serialize)]
pub struct AuditRecord<'a> {
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub request_id: &'a str,
    /// The site's first host name.
    pub site: &'a str,
    /// The client address the rules saw (from a trusted proxy's X-Forwarded-For, or the peer).
    pub client: Option<String>,
    /// The TCP peer.
    pub peer: Option<String>,
    pub method: &'a str,
    pub uri: String,
    pub host: &'a str,
    /// `pass`, `blocked`, `detected` (detect-only: would have been blocked or limited),
    /// `flagged` (rules matched below the threshold), `limited` (over a rate limit: 429),
    /// `rejected` (413/431/400).
    pub action: &'a str,
    /// The rate limit the request was over, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<&'a str>,
    /// The status the client got.
    pub status: Option<u16>,
    /// The upstream's status, when the request was forwarded and answered.
    pub upstream_status: Option<u16>,
    pub anomaly_score: i64,
    /// Scores by category (`sqli`, `xss`...).
    pub scores: &'a std::collections::BTreeMap<String, i64>,
    pub rules: Vec<AuditRule<'a>>,
    /// Whether the body was inspected, and why not when it was not.
    pub body: &'a str,
    /// Why the body could not be parsed as its `Content-Type` says, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_error: Option<&'a str>,
    /// What became of the client's `Upgrade` (`forwarded`, or `refused`: the request went
    /// as a plain one), when it asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<&'a str>,
    pub durations_ms: Durations,
    /// Why the proxy failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One matched rule in a record.
#[derive(Serialize)]
pub struct AuditRule<'a> {
    pub id: u32,
    pub message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub logdata: &'a str,
    pub score: i64,
    pub matched: Vec<AuditValue<'a>>,
}

/// One matched value: already cut to `max_logged_value` and redacted for sensitive names by the
/// engine, so a password never reaches the log.
#[derive(Serialize)]
pub struct AuditValue<'a> {
    pub target: &'a str,
    pub value: &'a str,
    pub operator: &'a str,
    pub evidence: &'a str,
}

/// Time spent, in milliseconds.
#[derive(Serialize)]
pub struct Durations {
    pub total: f64,
    pub inspection: f64,
    pub upstream: Option<f64>,
}
