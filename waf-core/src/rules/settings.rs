//! Ruleset-wide settings and exclusions.

use std::collections::BTreeMap;
use std::fmt;

use super::action::{IdRange, RuleRef};
use super::target::{Collection, Selector};
use crate::parse::ParseLimits;

/// How verdicts are enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Block what the rules block.
    #[default]
    Block,
    /// Evaluate everything, block nothing: the verdict says what would have been blocked.
    DetectOnly,
    /// Do not inspect at all.
    Off,
}

/// What becomes of a request whose body cannot be read as the type its `Content-Type` declares
/// (invalid JSON or XML, a multipart body without its boundary), or that the parsers read only
/// in part, past one of the [parse limits](crate::parse::ParseIssueKind::is_limit) (more than
/// `max_args` arguments, JSON nested deeper than `max_json_depth`): the rules cannot see into
/// it, but the application behind may still read something out of it.
///
/// ```
/// use waf_core::rules::{InvalidBody, RuleSet};
/// use waf_core::{compile, Action, Request};
///
/// let mut set = RuleSet::from_yaml_str(
///     "rules:\n  - id: 1\n    targets: [args]\n    match: detect_sqli\n",
///     "inline.yaml",
/// )
/// .unwrap();
/// assert_eq!(set.settings.invalid_body, InvalidBody::Block);
/// let request = Request::builder()
///     .method("POST")
///     .header("Content-Type", "application/json")
///     .body("' UNION SELECT password FROM users--")
///     .build();
/// let verdict = compile(&set).unwrap().inspect(&request);
/// assert_eq!(verdict.action, Action::Block { status: 400 });
/// assert!(verdict.body_error.is_some());
///
/// set.settings.invalid_body = InvalidBody::Inspect;
/// let verdict = compile(&set).unwrap().inspect(&request);
/// assert_eq!(verdict.action, Action::Pass);
/// assert!(verdict.body_error.is_some());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum InvalidBody {
    /// Block it with 400 before the body's rules run, as ModSecurity's recommended
    /// configuration does (its rule 200002 on `REQBODY_ERROR`). Otherwise a body sent as
    /// `application/json` but written as a form, say, is read by no rule at all.
    #[default]
    Block,
    /// Run the rules on what parsing recovered, with `REQBODY_ERROR` set, and let them decide.
    Inspect,
}

/// A rule's severity, as in ModSecurity (syslog levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Severity {
    /// 0
    Emergency,
    /// 1
    Alert,
    /// 2: the usual severity of attack rules.
    Critical,
    /// 3
    Error,
    /// 4
    Warning,
    /// 5
    Notice,
    /// 6
    Info,
    /// 7
    Debug,
}

impl Severity {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Emergency => "emergency",
            Severity::Alert => "alert",
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
            Severity::Info => "info",
            Severity::Debug => "debug",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    /// A name (`CRITICAL`, `warning`) or a syslog number (`2`).
    fn from_str(s: &str) -> Result<Severity, String> {
        Ok(
            match s.trim().trim_matches('\'').to_ascii_lowercase().as_str() {
                "emergency" | "0" => Severity::Emergency,
                "alert" | "1" => Severity::Alert,
                "critical" | "2" => Severity::Critical,
                "error" | "3" => Severity::Error,
                "warning" | "4" => Severity::Warning,
                "notice" | "5" => Severity::Notice,
                "info" | "6" => Severity::Info,
                "debug" | "7" => Severity::Debug,
                other => return Err(format!("unknown severity `{other}`")),
            },
        )
    }
}

/// Anomaly score added by a blocking rule of each severity (the OWASP CRS defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeverityScores {
    /// Emergency, alert and critical.
    pub critical: i64,
    /// Error.
    pub error: i64,
    /// Warning.
    pub warning: i64,
    /// Notice and below.
    pub notice: i64,
}

impl Default for SeverityScores {
    fn default() -> SeverityScores {
        SeverityScores {
            critical: 5,
            error: 4,
            warning: 3,
            notice: 2,
        }
    }
}

impl SeverityScores {
    /// The score of a severity; a rule without one scores as critical.
    pub fn score(&self, severity: Option<Severity>) -> i64 {
        match severity {
            None | Some(Severity::Emergency | Severity::Alert | Severity::Critical) => {
                self.critical
            }
            Some(Severity::Error) => self.error,
            Some(Severity::Warning) => self.warning,
            Some(_) => self.notice,
        }
    }
}

/// Settings of a ruleset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Rules of a higher paranoia level are left out. 1 to 4; 1 by default.
    pub paranoia: u8,
    /// The request is blocked once its total anomaly score reaches this. 5 by default: one
    /// critical match.
    pub inbound_threshold: i64,
    /// Thresholds for single categories (`sqli: 10`), checked besides the total.
    pub category_thresholds: BTreeMap<String, i64>,
    /// Score of each severity.
    pub severity_scores: SeverityScores,
    /// Enforce or only detect.
    pub mode: Mode,
    /// Status of a blocked request when the rule names none.
    pub block_status: u16,
    /// Argument, header and cookie names whose values are never shown in verdicts and logs
    /// (compared without regard to case): passwords, tokens.
    pub sensitive_names: Vec<String>,
    /// Matched values longer than this are cut in verdicts.
    pub max_logged_value: usize,
    /// Bounds on request parsing.
    pub parse_limits: ParseLimits,
    /// What a body that cannot be parsed as its declared type gets.
    pub invalid_body: InvalidBody,
    /// Transaction variables set before the first rule runs (`tx.<name>`).
    pub tx_defaults: BTreeMap<String, String>,
    /// Record the matches of `log: false` (`nolog`) rules in the verdict too. Off by default:
    /// such rules are plumbing (exclusions, bookkeeping) and must not make a clean request
    /// look flagged in the audit log. `waf rules test` turns it on, so that their examples
    /// can be checked.
    pub record_unlogged: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            paranoia: 1,
            inbound_threshold: 5,
            category_thresholds: BTreeMap::new(),
            severity_scores: SeverityScores::default(),
            mode: Mode::Block,
            block_status: 403,
            sensitive_names: [
                "password",
                "newPassword",
                "reenterPassword",
                "currentPassword",
                "new_password",
                "client_secret",
                "code_verifier",
                "refresh_token",
                "id_token",
                "access_token",
                "authorization",
                "cookie",
            ]
            .map(String::from)
            .to_vec(),
            max_logged_value: 120,
            parse_limits: ParseLimits::default(),
            invalid_body: InvalidBody::Block,
            tx_defaults: BTreeMap::new(),
            record_unlogged: false,
        }
    }
}

/// Which requests an [`Exclusion`] applies to. Empty lists match everything.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Scope {
    /// Host names (exact, case-insensitive; `*.contoso.com` matches subdomains).
    pub hosts: Vec<String>,
    /// Path prefixes (of the decoded path).
    pub path_prefixes: Vec<String>,
    /// A regex the decoded path must match.
    pub path_regex: Option<String>,
    /// Methods.
    pub methods: Vec<String>,
}

impl Scope {
    /// Whether the scope is unconditional (applies to every request).
    pub fn is_everywhere(&self) -> bool {
        self.hosts.is_empty()
            && self.path_prefixes.is_empty()
            && self.path_regex.is_none()
            && self.methods.is_empty()
    }
}

/// Targets removed from some rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetRemoval {
    /// The rules (ids, ranges, tags).
    pub rules: Vec<RuleRef>,
    /// The targets they no longer see.
    pub targets: Vec<(Collection, Selector)>,
}

/// Rules, tags or targets left out for the requests in a [`Scope`].
///
/// This is how a ruleset is tuned for a site: "the password field is never inspected by the
/// SQL injection rules", "rule 920350 is off for `/healthz`".
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Exclusion {
    /// Where it applies.
    pub scope: Scope,
    /// Rules removed entirely.
    pub remove_rules: Vec<IdRange>,
    /// Rules with these tags removed.
    pub remove_tags: Vec<String>,
    /// Targets removed from rules.
    pub remove_targets: Vec<TargetRemoval>,
}
