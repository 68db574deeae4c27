//! The peer, in process: ModSecurity 3 (`libmodsecurity.so.3`, Debian's `libmodsecurity3`)
//! with the OWASP CRS 3.3.4, so that the benchmarks measure its cost per request in the same
//! run as ours instead of quoting a figure from another day.
//!
//! The library is opened at run time (`dlopen`, through `libloading`), not linked: the
//! benchmarks build on a machine without it, and say so when they cannot measure the peer.
//! It is configured as `benches/load/run.sh` configures nginx + ModSecurity: Debian's
//! recommended `modsecurity.conf` with the engine blocking, request bodies read, response
//! bodies and the audit log off; then `crs-setup.conf`, the paranoia level, and every rule
//! file.
//!
//! [`ModSecurity::inspect`] does what the nginx connector does for a request up to the point
//! where it is forwarded: a transaction, the connection, the URI, the headers (phase 1), the
//! body (phase 2), with the intervention asked after each phase. The response phases and
//! logging are left out, as our inspection leaves them out: the comparison counts the same
//! work on both sides.
//!
//! ```no_run
//! use waf_benches::modsecurity::ModSecurity;
//!
//! let peer = ModSecurity::with_crs(1).expect("libmodsecurity3 and modsecurity-crs installed");
//! assert_eq!(peer.inspect(&waf_benches::authorize_get()).unwrap(), None);
//! ```
// The one module of this crate with `unsafe`: calls into a C library.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_uchar, c_void, CStr, CString};
use std::fmt;
use std::path::{Path, PathBuf};

use libloading::Library;
use waf_core::Request;

/// The name the dynamic loader knows the library by (Debian's `libmodsecurity3`).
pub const LIBRARY: &str = "libmodsecurity.so.3";

/// Where Debian's packages put ModSecurity's recommended configuration: the nginx connector's
/// package (`libnginx-mod-http-modsecurity`) ships it, the library's does not. The load test
/// looks in the same places.
const RECOMMENDED_CONF: [&str; 3] = [
    "/usr/share/nginx/docs/modsecurity/modsecurity.conf",
    "/etc/nginx/modsecurity.conf",
    "/etc/modsecurity/modsecurity.conf-recommended",
];
const CRS_SETUP: &str = "/etc/modsecurity/crs/crs-setup.conf";
const CRS_RULES: &str = "/usr/share/modsecurity-crs/rules";

/// Why the peer could not be set up.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// `ModSecurityIntervention` of `modsecurity/intervention.h`.
#[repr(C)]
struct Intervention {
    status: c_int,
    pause: c_int,
    url: *mut c_char,
    log: *mut c_char,
    disruptive: c_int,
}

/// The C API's functions this module calls, looked up once.
struct Api {
    init: unsafe extern "C" fn() -> *mut c_void,
    set_log_cb: unsafe extern "C" fn(*mut c_void, LogCallback),
    cleanup: unsafe extern "C" fn(*mut c_void),
    create_rules_set: unsafe extern "C" fn() -> *mut c_void,
    rules_add_file: unsafe extern "C" fn(*mut c_void, *const c_char, *mut *const c_char) -> c_int,
    rules_cleanup: unsafe extern "C" fn(*mut c_void) -> c_int,
    new_transaction: unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void) -> *mut c_void,
    process_connection:
        unsafe extern "C" fn(*mut c_void, *const c_char, c_int, *const c_char, c_int) -> c_int,
    process_uri:
        unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, *const c_char) -> c_int,
    add_n_request_header:
        unsafe extern "C" fn(*mut c_void, *const c_uchar, usize, *const c_uchar, usize) -> c_int,
    process_request_headers: unsafe extern "C" fn(*mut c_void) -> c_int,
    append_request_body: unsafe extern "C" fn(*mut c_void, *const c_uchar, usize) -> c_int,
    process_request_body: unsafe extern "C" fn(*mut c_void) -> c_int,
    intervention: unsafe extern "C" fn(*mut c_void, *mut Intervention) -> c_int,
    transaction_cleanup: unsafe extern "C" fn(*mut c_void),
}

/// `ModSecLogCb` of `modsecurity/modsecurity.h`.
type LogCallback = unsafe extern "C" fn(*mut c_void, *const c_void);

/// Takes ModSecurity's log lines and drops them. Without a callback it writes each matched
/// rule to stderr; nginx's connector writes them to its error log, which the load test's
/// clean requests never reach either.
/// ModSecurity's log callback: each rule that matches and logs (every CRS rule but the setup
/// ones) sends a line holding `[id "942100"]`. The transaction's callback data is a
/// `Vec<u32>` to collect those ids into, or null to discard the line.
unsafe extern "C" fn collect_rule_ids(data: *mut c_void, message: *const c_void) {
    if data.is_null() || message.is_null() {
        return;
    }
    // SAFETY: `data` is the `&mut Vec<u32>` that `ModSecurity::run` passed to this
    // transaction, alive and not otherwise borrowed while ModSecurity runs it; `message` is a
    // NUL-terminated string ModSecurity owns for the call.
    let (ids, line) = unsafe {
        (
            &mut *(data as *mut Vec<u32>),
            CStr::from_ptr(message as *const c_char),
        )
    };
    for piece in line.to_string_lossy().split("[id \"").skip(1) {
        let digits: String = piece.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(id) = digits.parse() {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
}

unsafe extern "C" {
    /// The C library's `free`, for the strings ModSecurity allocates and hands over.
    fn free(p: *mut c_void);
}

/// ModSecurity 3 with a ruleset loaded, ready to inspect requests on this thread.
pub struct ModSecurity {
    api: Api,
    engine: *mut c_void,
    rules: *mut c_void,
    /// Holds the written configuration.
    _dir: ConfigDir,
    /// Last, so that the library is closed after everything above is cleaned up.
    _library: Library,
}

impl ModSecurity {
    /// Opens the library and loads the OWASP CRS 3.3.4 from Debian's `modsecurity-crs` at a
    /// paranoia level, blocking, with the CRS's default anomaly thresholds.
    ///
    /// Fails, saying what is missing, when the library, the recommended configuration or the
    /// CRS is not installed, and with ModSecurity's own message when a rule does not load.
    pub fn with_crs(paranoia: u8) -> Result<ModSecurity, Error> {
        let dir = ConfigDir::create()?;
        let main = write_config(&dir.0, paranoia)?;
        let file = CString::new(main.as_os_str().as_encoded_bytes())
            .map_err(|_| Error(format!("{}: a NUL in the path", main.display())))?;
        // SAFETY: loading libmodsecurity runs its initialisers, which only set up its own
        // state.
        let library = unsafe { Library::new(LIBRARY) }.map_err(|e| {
            Error(format!(
                "{LIBRARY}: {e} (install Debian's libnginx-mod-http-modsecurity, which \
                 brings it; scripts/test.sh does)"
            ))
        })?;
        let api = Api::load(&library)?;
        // ModSecurity's rule parser keeps global state: two threads loading rules at once
        // corrupt its heap (seen as "double free" when the tests ran in parallel). Nothing
        // says which other calls are safe from several threads, so every call into the
        // library holds this lock; uncontended, it costs nothing next to an inspection.
        let (engine, rules, loaded, message) = {
            let _one_at_a_time = LIBRARY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            // SAFETY: the signatures are those of modsecurity.h and rules_set.h (3.0.x); null
            // results are checked; the log callback has the C signature and touches nothing;
            // ModSecurity sets `error` to a string it allocated with malloc, or leaves it
            // null, and it is freed once read.
            unsafe {
                let engine = (api.init)();
                let rules = (api.create_rules_set)();
                let mut error: *const c_char = std::ptr::null();
                let loaded = if engine.is_null() || rules.is_null() {
                    -1
                } else {
                    (api.set_log_cb)(engine, collect_rule_ids);
                    (api.rules_add_file)(rules, file.as_ptr(), &mut error)
                };
                let message = if error.is_null() {
                    "no message".to_string()
                } else {
                    let m = CStr::from_ptr(error).to_string_lossy().into_owned();
                    free(error as *mut c_void);
                    m
                };
                (engine, rules, loaded, message)
            }
        };
        // From here on, drop cleans up (and takes the lock itself).
        let peer = ModSecurity {
            api,
            engine,
            rules,
            _dir: dir,
            _library: library,
        };
        if peer.engine.is_null() || peer.rules.is_null() {
            return Err(Error("msc_init or msc_create_rules_set failed".into()));
        }
        if loaded < 0 {
            return Err(Error(format!(
                "ModSecurity did not load {}: {}",
                main.display(),
                message.trim()
            )));
        }
        Ok(peer)
    }

    /// Inspects the request line, headers and body (phases 1 and 2) in a fresh transaction.
    /// Returns the status of a disruptive intervention (`Some(403)` for a block), `None` when
    /// the request passes, and an error for a request the C API cannot take (a NUL byte in
    /// its method, URI or protocol).
    pub fn inspect(&self, request: &Request) -> Result<Option<u16>, Error> {
        self.run(request, std::ptr::null_mut())
    }

    /// Like [`inspect`](Self::inspect), and also the ids of the rules that matched, in the
    /// order ModSecurity logged them: to compare its judgement with ours rule by rule.
    ///
    /// ```no_run
    /// use waf_benches::modsecurity::ModSecurity;
    ///
    /// let peer = ModSecurity::with_crs(1).unwrap();
    /// let request = waf_core::Request::builder()
    ///     .uri("/?q=%3Cscript%3Ealert(1)%3C/script%3E")
    ///     .header("Host", "login.contoso.com")
    ///     .build();
    /// let (status, rules) = peer.inspect_rules(&request).unwrap();
    /// assert_eq!(status, Some(403));
    /// assert!(rules.contains(&941100) && rules.contains(&949110));
    /// ```
    pub fn inspect_rules(&self, request: &Request) -> Result<(Option<u16>, Vec<u32>), Error> {
        let mut rules: Vec<u32> = Vec::new();
        let status = self.run(request, &mut rules as *mut Vec<u32> as *mut c_void)?;
        Ok((status, rules))
    }

    /// One transaction; `log` is the log callback's data (see [`collect_rule_ids`]).
    fn run(&self, request: &Request, log: *mut c_void) -> Result<Option<u16>, Error> {
        let text = |what: &str, b: &[u8]| {
            CString::new(b).map_err(|_| Error(format!("a NUL byte in the request's {what}")))
        };
        let uri = text("URI", request.uri())?;
        let method = text("method", request.method())?;
        let version = request
            .protocol()
            .strip_prefix(b"HTTP/")
            .unwrap_or(request.protocol());
        let version = text("protocol", version)?;
        let client = match request.remote_addr() {
            Some(ip) => ip.to_string(),
            None => "127.0.0.1".to_string(),
        };
        let client = text("client address", client.as_bytes())?;
        let server = c"127.0.0.1";
        let api = &self.api;
        let _one_at_a_time = LIBRARY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the engine and rules live as long as `self`; the transaction is cleaned up
        // before returning; every pointer passed is valid for the call, and ModSecurity copies
        // what it keeps.
        unsafe {
            let t = (api.new_transaction)(self.engine, self.rules, log);
            if t.is_null() {
                return Err(Error("msc_new_transaction failed".into()));
            }
            let verdict = (|| {
                (api.process_connection)(t, client.as_ptr(), 50000, server.as_ptr(), 443);
                if let Some(status) = self.intervened(t) {
                    return Some(status);
                }
                (api.process_uri)(t, uri.as_ptr(), method.as_ptr(), version.as_ptr());
                for (name, value) in request.headers().iter() {
                    (api.add_n_request_header)(
                        t,
                        name.as_ptr(),
                        name.len(),
                        value.as_ptr(),
                        value.len(),
                    );
                }
                (api.process_request_headers)(t);
                if let Some(status) = self.intervened(t) {
                    return Some(status);
                }
                let body = request.body();
                if !body.is_empty() {
                    (api.append_request_body)(t, body.as_ptr(), body.len());
                }
                (api.process_request_body)(t);
                self.intervened(t)
            })();
            (api.transaction_cleanup)(t);
            Ok(verdict)
        }
    }

    /// The status of a disruptive intervention the transaction asks for, if any.
    ///
    /// # Safety
    ///
    /// `t` is a live transaction of this engine.
    unsafe fn intervened(&self, t: *mut c_void) -> Option<u16> {
        let mut it = Intervention {
            status: 200,
            pause: 0,
            url: std::ptr::null_mut(),
            log: std::ptr::null_mut(),
            disruptive: 0,
        };
        // SAFETY: see the function's contract; ModSecurity hands over `url` and `log`
        // allocated with malloc.
        unsafe {
            let disruptive = (self.api.intervention)(t, &mut it);
            if !it.url.is_null() {
                free(it.url as *mut c_void);
            }
            if !it.log.is_null() {
                free(it.log as *mut c_void);
            }
            (disruptive != 0 && it.disruptive != 0).then(|| u16::try_from(it.status).unwrap_or(0))
        }
    }
}

impl Drop for ModSecurity {
    fn drop(&mut self) {
        let _one_at_a_time = LIBRARY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: created by this value, cleaned up once; no transaction is alive (each
        // `inspect` cleans up its own).
        unsafe {
            if !self.rules.is_null() {
                (self.api.rules_cleanup)(self.rules);
            }
            if !self.engine.is_null() {
                (self.api.cleanup)(self.engine);
            }
        }
    }
}

/// A temporary directory for the configuration, removed on drop.
struct ConfigDir(PathBuf);

impl ConfigDir {
    fn create() -> Result<ConfigDir, Error> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "waf-benches-modsecurity-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).map_err(|e| Error(format!("{}: {e}", path.display())))?;
        Ok(ConfigDir(path))
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Api {
    fn load(library: &Library) -> Result<Api, Error> {
        macro_rules! symbol {
            ($name:literal) => {
                // SAFETY: the type given to each symbol (by the field it fills) is its C
                // signature in libmodsecurity 3.0's headers.
                *unsafe { library.get($name) }
                    .map_err(|e| Error(format!("{LIBRARY}: {}: {e}", $name)))?
            };
        }
        Ok(Api {
            init: symbol!("msc_init"),
            set_log_cb: symbol!("msc_set_log_cb"),
            cleanup: symbol!("msc_cleanup"),
            create_rules_set: symbol!("msc_create_rules_set"),
            rules_add_file: symbol!("msc_rules_add_file"),
            rules_cleanup: symbol!("msc_rules_cleanup"),
            new_transaction: symbol!("msc_new_transaction"),
            process_connection: symbol!("msc_process_connection"),
            process_uri: symbol!("msc_process_uri"),
            add_n_request_header: symbol!("msc_add_n_request_header"),
            process_request_headers: symbol!("msc_process_request_headers"),
            append_request_body: symbol!("msc_append_request_body"),
            process_request_body: symbol!("msc_process_request_body"),
            intervention: symbol!("msc_intervention"),
            transaction_cleanup: symbol!("msc_transaction_cleanup"),
        })
    }
}

/// Held by every call into the library (see [`ModSecurity::with_crs`]).
static LIBRARY_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Writes `modsecurity.conf` (Debian's recommended one, changed as the load test changes it)
/// and `main.conf` (it, `crs-setup.conf`, the paranoia level, the rules) into `dir`; returns
/// the path of `main.conf`.
fn write_config(dir: &Path, paranoia: u8) -> Result<PathBuf, Error> {
    let source = RECOMMENDED_CONF
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error(format!(
                "none of {RECOMMENDED_CONF:?} found (install Debian's \
                 libnginx-mod-http-modsecurity; scripts/test.sh does)"
            ))
        })?;
    for needed in [CRS_SETUP, CRS_RULES] {
        if !Path::new(needed).exists() {
            return Err(Error(format!(
                "{needed} not found (install Debian's modsecurity-crs; scripts/setup.sh does)"
            )));
        }
    }
    let recommended =
        std::fs::read_to_string(source).map_err(|e| Error(format!("{}: {e}", source.display())))?;
    // `unicode.mapping` is named relative to the configuration; Debian puts it next to it.
    let unicode = source.with_file_name("unicode.mapping");
    let code_page = recommended
        .lines()
        .find_map(|l| l.strip_prefix("SecUnicodeMapFile "))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .unwrap_or("20127");
    let d = dir.display();
    let replacements: [(&str, String); 9] = [
        ("SecRuleEngine ", "SecRuleEngine On".into()),
        ("SecRequestBodyAccess ", "SecRequestBodyAccess On".into()),
        ("SecResponseBodyAccess ", "SecResponseBodyAccess Off".into()),
        ("SecAuditEngine ", "SecAuditEngine Off".into()),
        ("SecAuditLog ", format!("SecAuditLog {d}/modsec_audit.log")),
        ("SecTmpDir ", format!("SecTmpDir {d}/")),
        ("SecDataDir ", format!("SecDataDir {d}/")),
        (
            "SecUnicodeMapFile ",
            format!("SecUnicodeMapFile {} {code_page}", unicode.display()),
        ),
        ("SecStatusEngine ", "SecStatusEngine Off".into()),
    ];
    let mut replaced = [false; 9];
    let mut conf = format!(
        "# Written by waf-benches from {}; the directives of the load test replaced.\n",
        source.display()
    );
    for line in recommended.lines() {
        match replacements
            .iter()
            .position(|(prefix, _)| line.starts_with(prefix))
        {
            Some(i) => {
                replaced[i] = true;
                conf.push_str(&replacements[i].1);
            }
            None => conf.push_str(line),
        }
        conf.push('\n');
    }
    // The directives that decide what is measured must have been there to change: a
    // differently shaped file from a future Debian must not silently measure another setup.
    for (i, (prefix, _)) in replacements.iter().enumerate().take(4) {
        if !replaced[i] {
            return Err(Error(format!(
                "{}: no `{}` line to set",
                source.display(),
                prefix.trim()
            )));
        }
    }
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error(format!("{}: {e}", path.display())))?;
        Ok::<PathBuf, Error>(path)
    };
    let conf = write("modsecurity.conf", &conf)?;
    write(
        "main.conf",
        &format!(
            "Include {}\nInclude {CRS_SETUP}\n\
             SecAction \"id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level={paranoia}\"\n\
             Include {CRS_RULES}/*.conf\n",
            conf.display()
        ),
    )
}
