//! Network mode: each stage goes over TCP to a running `waf serve`, and the rules that matched
//! are read back from its audit log.
//!
//! The proxy answers every request with `X-Request-Id`; the audit line with that `request_id`
//! lists the matched rules (`rules[].id`). The proxy must log every request
//! (`audit: {all_requests: true}`), or a clean request has no line to read. A request the proxy
//! refuses before inspecting it (a 4xx with no audit line, or no `X-Request-Id` at all, as when
//! the HTTP server refuses the request head) counts as an error, the way go-ftw sees a WAF that
//! rejects a malformed request.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::check::Observation;

/// How long to wait for a connection, a response, and an audit line.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const AUDIT_TIMEOUT: Duration = Duration::from_secs(3);

/// A running proxy and its audit log.
pub struct Network {
    address: SocketAddr,
    audit: AuditReader,
}

impl Network {
    /// `target` is `http://host:port`; `audit_log` the proxy's `audit.path`. Only lines written
    /// from now on are read.
    pub fn new(target: &str, audit_log: PathBuf) -> anyhow::Result<Network> {
        let authority = target
            .strip_prefix("http://")
            .with_context(|| format!("--target {target}: only http://host:port is supported"))?
            .trim_end_matches('/');
        let address = authority
            .to_socket_addrs()
            .with_context(|| format!("--target {target}: not a host:port"))?
            .next()
            .with_context(|| format!("--target {target}: the name resolves to no address"))?;
        let offset = std::fs::metadata(&audit_log).map(|m| m.len()).unwrap_or(0);
        Ok(Network {
            address,
            audit: AuditReader {
                path: audit_log,
                offset,
                records: HashMap::new(),
            },
        })
    }

    /// Sends one request and reports what the proxy made of it; `Err` when the answer cannot be
    /// matched to the audit log (the stage fails with that reason).
    pub fn observe(&mut self, raw: &[u8]) -> Result<Observation, String> {
        let response = match self.exchange(raw) {
            Ok(r) => r,
            Err(e) => {
                return Ok(Observation {
                    error: Some(e),
                    ..Observation::default()
                })
            }
        };
        let text = String::from_utf8_lossy(&response.raw).into_owned();
        let refused = |why: String| Observation {
            error: Some(why),
            status: Some(response.status),
            ids: Vec::new(),
            response: Some(text.clone()),
        };
        let Some(id) = response.request_id.clone() else {
            return if (400..500).contains(&response.status) {
                Ok(refused(format!(
                    "refused with {} before inspection (no X-Request-Id)",
                    response.status
                )))
            } else {
                Err(format!(
                    "the answer ({}) has no X-Request-Id: is --target a `waf serve`?",
                    response.status
                ))
            };
        };
        match self.audit.find(&id, AUDIT_TIMEOUT) {
            Some(ids) => Ok(Observation {
                error: None,
                status: Some(response.status),
                ids,
                response: Some(text),
            }),
            None if (400..500).contains(&response.status) => Ok(refused(format!(
                "refused with {} before inspection (no audit line)",
                response.status
            ))),
            None => Err(format!(
                "no line for request {id} in {} after {}s: the proxy must run with \
                 `audit: {{all_requests: true}}` and log to that file",
                self.audit.path.display(),
                AUDIT_TIMEOUT.as_secs()
            )),
        }
    }

    fn exchange(&self, raw: &[u8]) -> Result<Response, String> {
        let mut stream = TcpStream::connect_timeout(&self.address, CONNECT_TIMEOUT)
            .map_err(|e| format!("connecting to {}: {e}", self.address))?;
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(READ_TIMEOUT)))
            .map_err(|e| format!("socket: {e}"))?;
        stream
            .write_all(raw)
            .map_err(|e| format!("sending the request: {e}"))?;
        let head_request = raw.starts_with(b"HEAD ");
        read_response(&mut stream, head_request)
    }
}

/// The parts of a response the judge needs.
struct Response {
    status: u16,
    request_id: Option<String>,
    raw: Vec<u8>,
}

/// Reads one response: the head, then a body framed by `Content-Length`, chunked up to its last
/// chunk, or up to the end of the connection. A timeout after the head keeps what came.
fn read_response(stream: &mut TcpStream, head_request: bool) -> Result<Response, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Err("the connection closed without an answer".into()),
            Ok(0) => return Err("the connection closed in the middle of the answer".into()),
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if buf.is_empty() => return Err(format!("no answer: {e}")),
            Err(e) => return Err(format!("incomplete answer: {e}")),
        }
    };
    let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP response: {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let no_body = head_request || status < 200 || status == 204 || status == 304;
    let length = header("content-length").and_then(|v| v.parse::<usize>().ok());
    let chunked =
        header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let complete = |buf: &[u8]| {
        let body = buf.get(head_end..).unwrap_or_default();
        if no_body {
            true
        } else if chunked {
            body.ends_with(b"0\r\n\r\n")
        } else if let Some(n) = length {
            body.len() >= n
        } else {
            false
        }
    };
    while !complete(&buf) {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
    Ok(Response {
        status,
        request_id: header("x-request-id").cloned(),
        raw: buf,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Follows the audit log as it grows, indexing records by request id.
struct AuditReader {
    path: PathBuf,
    /// How far the file has been read (whole lines only).
    offset: u64,
    /// Records read but not asked for yet: request id → matched rule ids.
    records: HashMap<String, Vec<u32>>,
}

impl AuditReader {
    /// The rules of request `id`, waiting up to `timeout` for its line.
    fn find(&mut self, id: &str, timeout: Duration) -> Option<Vec<u32>> {
        let deadline = Instant::now() + timeout;
        loop {
            self.read_new();
            if let Some(ids) = self.records.remove(id) {
                return Some(ids);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn read_new(&mut self) {
        let Ok(mut file) = File::open(&self.path) else {
            return;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // Rotated: the new file starts from the beginning.
            self.offset = 0;
        }
        let mut text = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut text).is_err()
        {
            return;
        }
        // A line still being written is left for the next read.
        let Some(last_newline) = text.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete = text.get(..=last_newline).unwrap_or_default();
        self.offset += complete.len() as u64;
        for line in complete.split(|&b| b == b'\n') {
            let Ok(record) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            let Some(request_id) = record.get("request_id").and_then(|v| v.as_str()) else {
                continue;
            };
            let ids = record
                .get("rules")
                .and_then(|r| r.as_array())
                .map(|rules| {
                    rules
                        .iter()
                        .filter_map(|r| r.get("id").and_then(serde_json::Value::as_u64))
                        .filter_map(|id| u32::try_from(id).ok())
                        .collect()
                })
                .unwrap_or_default();
            self.records.insert(request_id.to_string(), ids);
        }
    }
}
