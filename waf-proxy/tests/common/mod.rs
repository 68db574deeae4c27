//! The harness of the `waf serve` tests: a recording origin, the real `waf` binary started on a
//! generated config, raw HTTP/1.1 and TLS clients, and a test PKI made with rcgen. Everything
//! listens on 127.0.0.1 on random ports.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use openssl::ssl::{NameType, SslAcceptor, SslConnector, SslMethod, SslVerifyMode};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- the origin

/// One request as the origin received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The TLS server name the client sent (TLS origins only).
    pub sni: Option<String>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }
}

/// A small HTTP/1.1 server that records every request and answers 200 (`origin`), but for a
/// few targets that answer as an upstream may: `/redirect…` (External ID's redirect after a
/// sign-in, with hop-by-hop headers), `/length-list…` (`Content-Length: 6, 6`), `/switch…` (a
/// 101 whatever was asked, then the connection closes), `/no-content…` (a 204 with a length).
pub struct Origin {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
}

impl Origin {
    pub fn start() -> Origin {
        Origin::start_with(None)
    }

    /// An origin speaking TLS with this certificate and key.
    pub fn start_tls(tls: Arc<SslAcceptor>) -> Origin {
        Origin::start_with(Some(tls))
    }

    fn start_with(tls: Option<Arc<SslAcceptor>>) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let log = seen.clone();
        let count = connections.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let log = log.clone();
                let tls = tls.clone();
                thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                    match tls {
                        None => serve_origin(conn, log, None),
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(conn) else {
                                return;
                            };
                            let sni = stream
                                .ssl()
                                .servername(NameType::HOST_NAME)
                                .map(str::to_string);
                            serve_origin(stream, log, sni)
                        }
                    }
                });
            }
        });
        Origin {
            port,
            seen,
            connections,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// TCP connections accepted so far: nothing at all reached the origin while this is 0.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn serve_origin<S: Read + Write>(conn: S, log: Arc<Mutex<Vec<Seen>>>, sni: Option<String>) {
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end_matches(['\r', '\n']);
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_string(), v.trim().to_string()));
            }
        }
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                if reader.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                    .unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                if reader.read_exact(&mut chunk).is_err() {
                    return;
                }
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(n) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body = vec![0; n];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
        }
        let redirect = target.starts_with("/redirect");
        let length_list = target.starts_with("/length-list");
        let switch = target.starts_with("/switch");
        let no_content = target.starts_with("/no-content");
        log.lock().unwrap().push(Seen {
            method,
            target,
            headers,
            body,
            sni: sni.clone(),
        });
        // `/redirect...` answers like External ID does after a sign-in: a redirect with its
        // cookies and CORS headers, and hop-by-hop headers that must not reach the client (an
        // `Upgrade` offer, as Apache with HTTP/2 sends it, among them).
        let answer: &[u8] = if redirect {
            b"HTTP/1.1 302 Found\r\nLocation: https://app.contoso.com/cb?code=abc&state=xyz\r\n\
              Set-Cookie: x-ms-cpim-sso:contoso_0=abc; path=/; SameSite=None; Secure; HttpOnly\r\n\
              Set-Cookie: x-ms-cpim-trans=def; path=/; SameSite=None; Secure; HttpOnly\r\n\
              Access-Control-Allow-Origin: https://app.contoso.com\r\n\
              Access-Control-Allow-Credentials: true\r\n\
              Upgrade: h2,h2c\r\nConnection: Upgrade, X-Origin-Hop\r\nX-Origin-Hop: 1\r\n\
              Content-Length: 0\r\n\r\n"
        } else if switch {
            // Switches protocols whatever the request asked, then closes.
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        } else if no_content {
            // A length that a 204 must not have (RFC 9110 section 8.6).
            b"HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\n"
        } else if length_list {
            // The length as a list of equal numbers, which RFC 9110 lets a recipient take.
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6, 6\r\n\r\norigin"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\norigin"
        };
        let out = reader.get_mut();
        if out.write_all(answer).is_err() || out.flush().is_err() || switch {
            return;
        }
    }
}

// ---------------------------------------------------------------- the proxy

/// Reads a request head up to its blank line, byte by byte (so that nothing after it is taken),
/// for a test's own upstream; what there was when the connection ends first.
pub fn read_request_head(stream: &mut impl Read) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).is_ok() {
        head.push(byte[0]);
    }
    head
}

/// An upstream that accepts connections and never answers (after reading each request head
/// when `read_head`), holding them open: its port.
pub fn unanswering_upstream(read_head: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            let Ok(mut c) = c else { return };
            if read_head {
                read_request_head(&mut c);
            }
            held.push(c);
        }
    });
    port
}

/// An upstream that answers its first request with a 64 MiB body, much more than the sockets
/// between it and a client hold: its port, and a receiver told when a write of the answer
/// failed (the proxy let the upstream connection go).
pub fn large_answer_upstream() -> (u16, std::sync::mpsc::Receiver<()>) {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    let (let_go, upstream_let_go) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let Ok((mut c, _)) = upstream.accept() else {
            return;
        };
        read_request_head(&mut c);
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 67108864\r\n\r\n");
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..64 {
            if c.write_all(&chunk).is_err() {
                let _ = let_go.send(());
                return;
            }
        }
    });
    (port, upstream_let_go)
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The log of the proxy whose config is in `dir`.
fn read_log(dir: &tempfile::TempDir) -> String {
    std::fs::read_to_string(dir.path().join("waf.log")).unwrap_or_default()
}

/// Whether process `pid` holds the listening socket of each of these ports on 127.0.0.1:
/// `/proc/net/tcp` names each listening socket's inode, and `/proc/<pid>/fd` the inodes of the
/// process's sockets.
pub fn listens_on(pid: u32, ports: &[u16]) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let owned: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(
                link.strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    ports.iter().all(|port| {
        // `  0: 0100007F:1F90 00000000:0000 0A ... inode`: local address, state 0A (LISTEN).
        let local = format!("0100007F:{port:04X}");
        table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&local.as_str())
                && fields.get(3) == Some(&"0A")
                && fields.get(9).is_some_and(|inode| owned.contains(*inode))
        })
    })
}

pub fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

/// The running `waf serve`; killed when dropped.
pub struct Proxy {
    pub child: Child,
    pub port: u16,
    pub admin: u16,
    pub tls_port: Option<u16>,
    pub dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Setup<'a> {
    pub mode: &'a str,
    pub trusted: &'a str,
    pub large_body: &'a str,
    pub max_body: usize,
    /// The main site's rule paths (YAML list); the repository's `rules/` by default.
    pub rules: String,
    /// More keys of the main site, as YAML lines indented by four spaces.
    pub site_extra: String,
    /// More `sites:` entries, as YAML list items.
    pub extra_sites: String,
    /// More top-level keys, as YAML lines; `{tls_port}` and `{dir}` are filled in.
    pub extra_top: String,
    /// Also wait for an HTTPS port (`{tls_port}` in `extra_top`).
    pub tls: bool,
    /// More `limits:` keys, as YAML lines indented by two spaces.
    pub limits_extra: String,
    /// A command that runs `waf` (and `exec`s it, so that the pid is the proxy's), such as
    /// `prlimit --nofile=256:8192 --`; none by default.
    pub launcher: &'a [&'a str],
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            mode: "block",
            trusted: "[]",
            large_body: "reject",
            max_body: 4096,
            rules: format!("[\"{}\"]", rules_dir().display()),
            site_extra: String::new(),
            extra_sites: String::new(),
            extra_top: String::new(),
            tls: false,
            limits_extra: String::new(),
            launcher: &[],
        }
    }
}

impl Proxy {
    pub fn start(origin: &Origin, s: Setup) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        Proxy::start_in(dir, origin, s)
    }

    /// Starts the proxy with its config (and logs) in `dir`.
    ///
    /// The ports come from [`free_port`], which gives a port back before the proxy binds it:
    /// another process may take it meanwhile. The proxy then keeps retrying its bind while the
    /// other process answers the test's requests (seen once, when a second test run shared the
    /// machine: an attack was blocked, but not by this proxy, whose log had no block). So a
    /// proxy counts as started only when its own process holds every port, and is started
    /// again on other ports otherwise.
    pub fn start_in(dir: tempfile::TempDir, origin: &Origin, s: Setup) -> Proxy {
        const ATTEMPTS: usize = 5;
        let mut attempt = 1;
        loop {
            let port = free_port();
            let admin = free_port();
            let tls_port = s.tls.then(free_port);
            let ports: Vec<u16> = [Some(port), Some(admin), tls_port]
                .into_iter()
                .flatten()
                .collect();
            let mut child = Proxy::spawn(&dir, origin, &s, port, admin, tls_port);
            Proxy::wait_listening(&mut child, &dir, &ports);
            if listens_on(child.id(), &ports) {
                return Proxy {
                    child,
                    port,
                    admin,
                    tls_port,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                attempt < ATTEMPTS,
                "another process kept taking the proxy's ports: {}",
                read_log(&dir)
            );
            attempt += 1;
        }
    }

    /// Writes the config for these ports into `dir` and starts `waf serve` on it.
    fn spawn(
        dir: &tempfile::TempDir,
        origin: &Origin,
        s: &Setup,
        port: u16,
        admin: u16,
        tls_port: Option<u16>,
    ) -> Child {
        let extra_top = s
            .extra_top
            .replace("{tls_port}", &tls_port.unwrap_or(0).to_string())
            .replace("{dir}", &dir.path().display().to_string());
        let config = format!(
            "listen: \"127.0.0.1:{port}\"\n\
             admin: \"127.0.0.1:{admin}\"\n\
             threads: 1\n\
             upgrade_sock: \"{dir}/upgrade.sock\"\n\
             shutdown_grace_seconds: 1\n\
             trusted_proxies: {trusted}\n\
             limits:\n  max_body_inspect: {max}\n  large_body: {large}\n{limits_extra}\
             {extra_top}\n\
             sites:\n\
             \x20 - hosts: [login.contoso.com, Other.Contoso.com]\n\
             \x20   upstream: {{address: \"127.0.0.1:{op}\", tls: false}}\n\
             \x20   rules: {rules}\n\
             \x20   mode: {mode}\n{site_extra}{extra}",
            dir = dir.path().display(),
            trusted = s.trusted,
            max = s.max_body,
            large = s.large_body,
            op = origin.port,
            rules = s.rules,
            mode = s.mode,
            site_extra = s
                .site_extra
                .replace("{dir}", &dir.path().display().to_string()),
            extra = s.extra_sites,
            limits_extra = s.limits_extra,
        );
        let path = dir.path().join("waf.yaml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("waf.log")).unwrap();
        let mut command = match s.launcher.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(env!("CARGO_BIN_EXE_waf"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_waf")),
        };
        command
            .args(["serve", "--config"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("waf serve starts")
    }

    /// Waits until every port accepts connections; panics, with the log, when the proxy exits
    /// or 30 s pass.
    fn wait_listening(child: &mut Child, dir: &tempfile::TempDir, ports: &[u16]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for &p in ports {
            loop {
                if TcpStream::connect(("127.0.0.1", p)).is_ok() {
                    break;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("waf serve exited with {status}: {}", read_log(dir));
                }
                assert!(
                    Instant::now() < deadline,
                    "waf serve never listened on {p}: {}",
                    read_log(dir)
                );
                thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// A client for a proxy port that is not ours to stop (used from other threads).
    pub fn client_only(port: u16) -> Client {
        Client { port }
    }

    /// The config file's path.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("waf.yaml")
    }

    /// Sends a signal (`HUP`, `USR1`, `QUIT`...) to the proxy process.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// A request to the admin listener.
    pub fn admin(&self, method: &str, path: &str) -> Response {
        let mut s = TcpStream::connect(("127.0.0.1", self.admin)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        Response::parse(&out)
    }

    /// The value of one metric sample (`name{labels}` exactly as exposed), 0 when absent.
    pub fn metric(&self, sample: &str) -> f64 {
        let r = self.admin("GET", "/metrics");
        assert_eq!(r.status, 200, "{}", r.raw);
        r.body
            .lines()
            .find_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                if name == sample {
                    value.parse().ok()
                } else {
                    None
                }
            })
            .unwrap_or(0.0)
    }

    /// The audit log's records (the test configs write it to `{dir}/audit.jsonl`).
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
            .collect()
    }

    pub fn log(&self) -> String {
        read_log(&self.dir)
    }

    /// Waits up to `within` for `done` to hold (a metric the sweeper publishes, a connection
    /// the proxy has accepted); panics with the proxy's log when it never does.
    pub fn wait_until(&self, within: Duration, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < within, "{}", self.log());
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends raw bytes on a fresh connection and reads the answer until the connection closes.
    pub fn send(&self, raw: &[u8]) -> Response {
        Proxy::client_only(self.port).send(raw)
    }

    pub fn get(&self, host: &str, target: &str, extra: &str) -> Response {
        Proxy::client_only(self.port).get(host, target, extra)
    }

    pub fn post(&self, target: &str, content_type: &str, body: &str) -> Response {
        self.send(
            format!(
                "POST {target} HTTP/1.1\r\nHost: login.contoso.com\r\nContent-Type: {content_type}\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    }
}

/// Sends requests to a proxy port, each on a fresh connection, and reads each answer until the
/// connection closes.
pub struct Client {
    port: u16,
}

impl Client {
    pub fn send(&self, raw: &[u8]) -> Response {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        Response::parse(&out)
    }

    pub fn get(&self, host: &str, target: &str, extra: &str) -> Response {
        self.send(
            format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
                .as_bytes(),
        )
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub raw: String,
}

impl Response {
    /// Reads a response head (an interim `100 Continue`, say) from a connection that stays open.
    pub fn read_head(stream: &mut impl Read) -> Response {
        Response::parse(&Response::read_head_bytes(stream))
    }

    fn read_head_bytes(stream: &mut impl Read) -> Vec<u8> {
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).expect("a response head");
            raw.push(byte[0]);
        }
        raw
    }

    /// Reads one response with a `Content-Length` from a connection that stays open.
    pub fn read_from(stream: &mut impl Read) -> Response {
        let mut raw = Response::read_head_bytes(stream);
        let length: usize = Response::parse(&raw)
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .expect("a Content-Length");
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).expect("the response body");
        raw.extend_from_slice(&body);
        Response::parse(&raw)
    }

    pub fn parse(raw: &[u8]) -> Response {
        let text = String::from_utf8_lossy(raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        Response {
            status,
            headers,
            body: body.to_string(),
            raw: text.clone(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A block page: the status, a 16-hex request id in the header and in the body, no rule id.
    pub fn assert_block_page(&self) {
        assert_eq!(self.status, 403, "{}", self.raw);
        let id = self.header("x-request-id").expect("X-Request-Id");
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert!(self.body.contains(id), "{}", self.raw);
        for rule in ["1421", "1411", "142100", "141100", "142200"] {
            assert!(!self.body.contains(rule), "rule id revealed: {}", self.raw);
        }
    }
}

// ---------------------------------------------------------------- TLS

/// A test CA made at test time, and the certificates it signs.
pub struct Pki {
    ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A certificate and its key, as PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "waf test CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: ca.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A server certificate for these DNS names; the first is also its common name.
    pub fn issue(&self, names: &[&str]) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0].clone());
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes a certificate for `names` into `dir` as `<stem>.pem` and `<stem>.key`.
    pub fn issue_files(&self, dir: &Path, stem: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let issued = self.issue(names);
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, issued.cert_pem).unwrap();
        std::fs::write(&key, issued.key_pem).unwrap();
        (cert, key)
    }

    /// An openssl acceptor serving a certificate for `names` (for TLS origins).
    pub fn acceptor(&self, names: &[&str]) -> Arc<SslAcceptor> {
        let issued = self.issue(names);
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        let cert = openssl::x509::X509::from_pem(issued.cert_pem.as_bytes()).unwrap();
        let key = openssl::pkey::PKey::private_key_from_pem(issued.key_pem.as_bytes()).unwrap();
        acceptor.set_private_key(&key).unwrap();
        acceptor.set_certificate(&cert).unwrap();
        acceptor.check_private_key().unwrap();
        Arc::new(acceptor.build())
    }

    /// Writes the CA certificate to `dir/ca.pem`.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.ca_pem()).unwrap();
        path
    }
}

/// One HTTPS/1.1 request to the proxy's TLS port with this SNI name and Host, verified against
/// the CA in `ca`. Returns the response and the common name of the certificate presented.
pub fn https_get(port: u16, sni: &str, ca: &Path, target: &str) -> (Response, String) {
    let mut builder = SslConnector::builder(SslMethod::tls()).unwrap();
    builder.set_ca_file(ca).unwrap();
    builder.set_verify(SslVerifyMode::PEER);
    let connector = builder.build();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut s = connector.connect(sni, tcp).expect("TLS handshake");
    let cn = s
        .ssl()
        .peer_certificate()
        .and_then(|c| {
            c.subject_name()
                .entries_by_nid(openssl::nid::Nid::COMMONNAME)
                .next()
                .and_then(|e| e.data().to_string().ok())
        })
        .unwrap_or_default();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (Response::parse(&out), cn)
}

/// `curl` over HTTP/2 with TLS (curl is built with nghttp2 on Debian): `--resolve` points the
/// name at the proxy's loopback port. Returns (status, HTTP version, body).
pub fn curl_h2(
    port: u16,
    host: &str,
    ca: &Path,
    target: &str,
    extra: &[&str],
) -> (u16, String, String) {
    let (status, version, body, failure) = try_curl_h2(port, host, ca, target, extra);
    assert!(failure.is_none(), "curl failed: {failure:?}");
    (status, version, body)
}

/// [`curl_h2`] for a request curl may fail: and curl's complaint if it did.
pub fn try_curl_h2(
    port: u16,
    host: &str,
    ca: &Path,
    target: &str,
    extra: &[&str],
) -> (u16, String, String, Option<String>) {
    let out = Command::new("curl")
        .args(["-sS", "--http2", "--max-time", "20", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(["-w", "\n%{http_code} %{http_version}"])
        .args(extra)
        .arg(format!("https://{host}:{port}{target}"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut tail = tail.split_whitespace();
    let status = tail.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let version = tail.next().unwrap_or("").to_string();
    let failure =
        (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned());
    (status, version, body.to_string(), failure)
}
