//! `waf serve`, run as the real binary between a raw TCP client and a real origin on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use openssl::ssl::{NameType, SslAcceptor};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- the origin

/// One request as the origin received it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The TLS server name the client sent (TLS origins only).
    sni: Option<String>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }
}

/// A small HTTP/1.1 server that records every request and answers 200.
struct Origin {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
}

impl Origin {
    fn start() -> Origin {
        Origin::start_with(None)
    }

    /// An origin speaking TLS with this certificate and key.
    fn start_tls(tls: Arc<SslAcceptor>) -> Origin {
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

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// TCP connections accepted so far: nothing at all reached the origin while this is 0.
    fn connections(&self) -> usize {
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
        log.lock().unwrap().push(Seen {
            method,
            target,
            headers,
            body,
            sni: sni.clone(),
        });
        let answer =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\norigin";
        let out = reader.get_mut();
        if out.write_all(answer).is_err() || out.flush().is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------- the proxy

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

/// The running `waf serve`; killed when dropped.
struct Proxy {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup<'a> {
    mode: &'a str,
    trusted: &'a str,
    large_body: &'a str,
    max_body: usize,
    /// More `sites:` entries, as YAML list items.
    extra_sites: String,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Setup {
            mode: "block",
            trusted: "[]",
            large_body: "reject",
            max_body: 4096,
            extra_sites: String::new(),
        }
    }
}

impl Proxy {
    fn start(origin: &Origin, s: Setup) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let admin = free_port();
        let config = format!(
            "listen: \"127.0.0.1:{port}\"\n\
             admin: \"127.0.0.1:{admin}\"\n\
             threads: 1\n\
             trusted_proxies: {trusted}\n\
             limits:\n  max_body_inspect: {max}\n  large_body: {large}\n\
             sites:\n\
             \x20 - hosts: [login.contoso.com, Other.Contoso.com]\n\
             \x20   upstream: {{address: \"127.0.0.1:{op}\", tls: false}}\n\
             \x20   rules: [\"{rules}\"]\n\
             \x20   mode: {mode}\n{extra}",
            trusted = s.trusted,
            max = s.max_body,
            large = s.large_body,
            op = origin.port,
            rules = rules_dir().display(),
            mode = s.mode,
            extra = s.extra_sites,
        );
        let path = dir.path().join("waf.yaml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("waf.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_waf"))
            .args(["serve", "--config"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("waf serve starts");
        let mut proxy = Proxy { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("waf serve exited with {status}: {}", proxy.log());
            }
            assert!(
                Instant::now() < deadline,
                "waf serve never listened: {}",
                proxy.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("waf.log")).unwrap_or_default()
    }

    /// Sends raw bytes on a fresh connection and reads the answer until the connection closes.
    fn send(&self, raw: &[u8]) -> Response {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        Response::parse(&out)
    }

    fn get(&self, host: &str, target: &str, extra: &str) -> Response {
        self.send(
            format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
                .as_bytes(),
        )
    }

    fn post(&self, target: &str, content_type: &str, body: &str) -> Response {
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

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    raw: String,
}

impl Response {
    fn parse(raw: &[u8]) -> Response {
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

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A block page: the status, a 16-hex request id in the header and in the body, no rule id.
    fn assert_block_page(&self) {
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

// ---------------------------------------------------------------- the tests

#[test]
fn clean_request_reaches_the_origin_with_forwarding_headers() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let r = proxy.get(
        "Login.Contoso.com",
        "/contoso.onmicrosoft.com/oauth2/v2.0/authorize?client_id=1&login_hint=O%27Brien",
        "Cookie: x-ms-cpim-sso=abc\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body, "origin");
    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let s = &seen[0];
    assert_eq!(s.method, "GET");
    assert_eq!(
        s.target,
        "/contoso.onmicrosoft.com/oauth2/v2.0/authorize?client_id=1&login_hint=O%27Brien"
    );
    assert_eq!(s.header("host"), Some("Login.Contoso.com"));
    assert_eq!(s.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(s.header("x-forwarded-proto"), Some("http"));
    assert_eq!(s.header("x-forwarded-host"), Some("Login.Contoso.com"));
    assert_eq!(s.header("cookie"), Some("x-ms-cpim-sso=abc"));

    // A clean form POST arrives with its body, unchanged.
    let body = "request_type=RESPONSE&signInName=zoe%40contoso.com&password=1%27%20OR%201%3D1%20--";
    let r = proxy.post(
        "/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted?tx=StateProperties=eyJUSUQiOiIx&p=B2C_1_signin",
        "application/x-www-form-urlencoded",
        body,
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].method, "POST");
    assert_eq!(String::from_utf8_lossy(&seen[1].body), body);
}

#[test]
fn spoofed_forwarded_for_from_an_untrusted_client_is_replaced() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let r = proxy.get(
        "login.contoso.com",
        "/",
        "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.1\r\nForwarded: for=203.0.113.7\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen[0].header_count("x-forwarded-for"), 1);
    assert_eq!(seen[0].header("forwarded"), None);
}

#[test]
fn forwarded_for_from_a_trusted_proxy_is_kept_and_the_peer_appended() {
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            trusted: "[127.0.0.0/8]",
            ..Setup::default()
        },
    );
    let r = proxy.get("login.contoso.com", "/", "X-Forwarded-For: 203.0.113.7\r\n");
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(
        seen[0].header("x-forwarded-for"),
        Some("203.0.113.7, 127.0.0.1")
    );
}

#[test]
fn attacks_are_blocked_and_never_reach_the_origin() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let attacks = [
        // the query
        proxy.get(
            "login.contoso.com",
            "/contoso.onmicrosoft.com/oauth2/v2.0/authorize?state=1%27%20OR%20%271%27%3D%271",
            "",
        ),
        // a header
        proxy.get(
            "login.contoso.com",
            "/",
            "Referer: <script>alert(document.cookie)</script>\r\n",
        ),
        // a cookie
        proxy.get(
            "login.contoso.com",
            "/",
            "Cookie: session=1' UNION SELECT password FROM users--\r\n",
        ),
        // a urlencoded body
        proxy.post(
            "/contoso.onmicrosoft.com/B2C_1_signin/SelfAsserted",
            "application/x-www-form-urlencoded",
            "request_type=RESPONSE&signInName=admin%27--&password=x",
        ),
        // a JSON body
        proxy.post(
            "/contoso.onmicrosoft.com/signup/v1.0/start",
            "application/json",
            r#"{"username": "1' OR '1'='1", "password": "x"}"#,
        ),
        // a chunked urlencoded body
        proxy.send(
            b"POST /login HTTP/1.1\r\nHost: login.contoso.com\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
              9\r\nsignInNam\r\nC\r\ne=admin%27--\r\n0\r\n\r\n",
        ),
    ];
    for r in &attacks {
        r.assert_block_page();
        assert!(r.body.contains("<html"), "{}", r.raw);
    }
    let ids: std::collections::HashSet<_> = attacks
        .iter()
        .filter_map(|r| r.header("x-request-id"))
        .collect();
    assert_eq!(ids.len(), attacks.len(), "request ids are distinct");
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());
    assert_eq!(
        origin.connections(),
        0,
        "not even a connection reached the origin"
    );
    let log = proxy.log();
    assert!(log.contains("blocked"), "{log}");
    for r in &attacks {
        let id = r.header("x-request-id").unwrap_or_default();
        assert!(log.contains(id), "request id {id} is logged: {log}");
    }

    // JSON when the client asks for it.
    let r = proxy.get(
        "login.contoso.com",
        "/?q=%3Cscript%3Ealert(1)%3C/script%3E",
        "Accept: application/json\r\n",
    );
    r.assert_block_page();
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["request_id"], r.header("x-request-id").unwrap());
    assert_eq!(origin.connections(), 0);
}

#[test]
fn detect_only_forwards_attacks_and_logs_them() {
    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            mode: "detect_only",
            ..Setup::default()
        },
    );
    let r = proxy.get(
        "login.contoso.com",
        "/authorize?state=1%27%20OR%20%271%27%3D%271",
        "",
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let r = proxy.post(
        "/login",
        "application/x-www-form-urlencoded",
        "signInName=admin%27--",
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        String::from_utf8_lossy(&seen[1].body),
        "signInName=admin%27--"
    );
    let log = proxy.log();
    assert_eq!(log.matches("waf detected").count(), 2, "{log}");
    assert!(log.contains("142100"), "{log}");
}

#[test]
fn unknown_host_is_refused_with_421() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let r = proxy.get("evil.example.com", "/", "");
    assert_eq!(r.status, 421, "{}", r.raw);
    assert!(r.header("x-request-id").is_some());
    let r = proxy.send(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 421, "{}", r.raw);
    assert_eq!(origin.connections(), 0);
    // A known host with a port and another case is served.
    let r = proxy.get("OTHER.contoso.com:8080", "/", "");
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].header("host"), Some("OTHER.contoso.com:8080"));
}

#[test]
fn bodies_over_the_limit_follow_the_policy() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let big = "a=".to_string() + &"x".repeat(5000);
    let r = proxy.post("/login", "application/x-www-form-urlencoded", &big);
    assert_eq!(r.status, 413, "{}", r.raw);
    assert!(r.header("x-request-id").is_some());
    // Chunked, with no Content-Length: counted as it is read.
    let mut raw = b"POST /login HTTP/1.1\r\nHost: login.contoso.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..5 {
        raw.extend_from_slice(format!("3e8\r\n{}\r\n", "y".repeat(1000)).as_bytes());
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let r = proxy.send(&raw);
    assert_eq!(r.status, 413, "{}", r.raw);
    // A body within the limit passes.
    let r = proxy.post("/login", "application/x-www-form-urlencoded", "a=b");
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(origin.seen().len(), 1);
    drop(proxy);

    let origin = Origin::start();
    let proxy = Proxy::start(
        &origin,
        Setup {
            large_body: "pass",
            ..Setup::default()
        },
    );
    let r = proxy.post("/login", "application/x-www-form-urlencoded", &big);
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body.len(), big.len());
    let r = proxy.send(&raw);
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].body.len(), 5000);
    // Headers are still inspected.
    let r = proxy.send(
        format!(
            "POST /login?q=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\nHost: login.contoso.com\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{big}",
            big.len()
        )
        .as_bytes(),
    );
    r.assert_block_page();
    assert_eq!(origin.seen().len(), 2);
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_read() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let send = |body: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "POST /login HTTP/1.1\r\nHost: login.contoso.com\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Expect: 100-continue\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        let mut interim = Vec::new();
        let mut byte = [0u8; 1];
        while !interim.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte)
                .expect("an interim response before the body is sent");
            interim.push(byte[0]);
        }
        assert!(
            interim.starts_with(b"HTTP/1.1 100"),
            "{}",
            String::from_utf8_lossy(&interim)
        );
        s.write_all(body.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        Response::parse(&out)
    };
    let r = send("signInName=zoe");
    assert_eq!(r.status, 200, "{}", r.raw);
    let r = send("signInName=admin%27--");
    r.assert_block_page();
    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(String::from_utf8_lossy(&seen[0].body), "signInName=zoe");
    assert_eq!(seen[0].header("expect"), None);
}

#[test]
fn malformed_requests_get_4xx_and_the_proxy_keeps_serving() {
    let origin = Origin::start();
    let proxy = Proxy::start(&origin, Setup::default());
    let bad: [&[u8]; 3] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: login.contoso.com\r\nContent-Length: nope\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost login.contoso.com\r\n\r\n",
    ];
    for raw in bad {
        let r = proxy.send(raw);
        assert!(
            (400..500).contains(&r.status),
            "{:?} → {}",
            String::from_utf8_lossy(raw),
            r.raw
        );
    }
    assert_eq!(origin.connections(), 0, "{:?}", origin.seen());
    let r = proxy.get("login.contoso.com", "/", "");
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[test]
fn a_broken_config_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("waf.yaml");
    std::fs::write(
        &path,
        "listen: 127.0.0.1:1\nsites:\n  - hosts: [a]\n    upstream: {address: nope}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_waf"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sites[0].upstream.address"), "{err}");
}

// ---------------------------------------------------------------- TLS to the origin

/// A test CA and a certificate for `origin.test` signed by it: (CA PEM, acceptor).
fn test_pki() -> (Vec<u8>, Arc<SslAcceptor>) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::{BigNum, MsbOption};
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::ssl::SslMethod;
    use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
    use openssl::x509::{X509NameBuilder, X509};

    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = || PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let name = |cn: &str| {
        let mut n = X509NameBuilder::new().unwrap();
        n.append_entry_by_text("CN", cn).unwrap();
        n.build()
    };
    let serial = || {
        let mut bn = BigNum::new().unwrap();
        bn.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
        bn.to_asn1_integer().unwrap()
    };

    let ca_key = key();
    let mut ca = X509::builder().unwrap();
    ca.set_version(2).unwrap();
    ca.set_serial_number(&serial()).unwrap();
    ca.set_subject_name(&name("waf test CA")).unwrap();
    ca.set_issuer_name(&name("waf test CA")).unwrap();
    ca.set_pubkey(&ca_key).unwrap();
    ca.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    ca.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    ca.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    ca.append_extension(KeyUsage::new().critical().key_cert_sign().build().unwrap())
        .unwrap();
    ca.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let ca = ca.build();

    let leaf_key = key();
    let mut leaf = X509::builder().unwrap();
    leaf.set_version(2).unwrap();
    leaf.set_serial_number(&serial()).unwrap();
    leaf.set_subject_name(&name("origin.test")).unwrap();
    leaf.set_issuer_name(ca.subject_name()).unwrap();
    leaf.set_pubkey(&leaf_key).unwrap();
    leaf.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    leaf.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("origin.test")
        .build(&leaf.x509v3_context(Some(&ca), None))
        .unwrap();
    leaf.append_extension(san).unwrap();
    leaf.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let leaf = leaf.build();

    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    acceptor.set_private_key(&leaf_key).unwrap();
    acceptor.set_certificate(&leaf).unwrap();
    acceptor.add_extra_chain_cert(ca.clone()).unwrap();
    acceptor.check_private_key().unwrap();
    (ca.to_pem().unwrap(), Arc::new(acceptor.build()))
}

#[test]
fn tls_to_the_origin_sends_sni_and_verifies_against_the_configured_ca() {
    let (ca_pem, acceptor) = test_pki();
    let tls_origin = Origin::start_tls(acceptor);
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = ca_dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let plain = Origin::start();
    let op = tls_origin.port;
    let ca = ca_file.display();
    let rules = rules_dir();
    let rules = rules.display();
    let proxy = Proxy::start(
        &plain,
        Setup {
            extra_sites: format!(
                "  - hosts: [tls.contoso.com]\n\
                 \x20   upstream: {{address: \"127.0.0.1:{op}\", tls: true, sni: origin.test, ca_file: \"{ca}\"}}\n\
                 \x20   rules: [\"{rules}\"]\n\
                 \x20 - hosts: [noca.contoso.com]\n\
                 \x20   upstream: {{address: \"127.0.0.1:{op}\", tls: true, sni: origin.test}}\n\
                 \x20 - hosts: [wrongname.contoso.com]\n\
                 \x20   upstream: {{address: \"127.0.0.1:{op}\", tls: true, sni: other.test, ca_file: \"{ca}\"}}\n\
                 \x20 - hosts: [noverify.contoso.com]\n\
                 \x20   upstream: {{address: \"127.0.0.1:{op}\", tls: true, sni: origin.test, verify: false}}\n\
                 \x20   host_header: upstream\n"
            ),
            ..Setup::default()
        },
    );

    // Verified against the configured CA, with the configured SNI; Host is the client's.
    let r = proxy.get("tls.contoso.com", "/authorize?x=1", "");
    assert_eq!(r.status, 200, "{}\n{}", r.raw, proxy.log());
    let seen = tls_origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].sni.as_deref(), Some("origin.test"));
    assert_eq!(seen[0].header("host"), Some("tls.contoso.com"));
    assert_eq!(seen[0].header("x-forwarded-for"), Some("127.0.0.1"));

    // Verification is on by default: the test CA is not among the system's.
    let r = proxy.get("noca.contoso.com", "/", "");
    assert_eq!(r.status, 502, "{}", r.raw);
    // The certificate must name the SNI host.
    let r = proxy.get("wrongname.contoso.com", "/", "");
    assert_eq!(r.status, 502, "{}", r.raw);
    assert_eq!(
        tls_origin.seen().len(),
        1,
        "no request over an unverified connection"
    );

    // verify: false connects anyway; host_header: upstream sends the upstream's name.
    let r = proxy.get("noverify.contoso.com", "/", "");
    assert_eq!(r.status, 200, "{}", r.raw);
    let seen = tls_origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("host"), Some("origin.test"));
    assert_eq!(
        seen[1].header("x-forwarded-host"),
        Some("noverify.contoso.com")
    );

    // Attacks never reach a TLS origin either.
    let r = proxy.get("tls.contoso.com", "/?q=1%27%20OR%20%271%27%3D%271", "");
    r.assert_block_page();
    assert_eq!(tls_origin.seen().len(), 2);
    assert!(plain.seen().is_empty());
}
