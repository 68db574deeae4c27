//! The rule model: what both rule languages are translated into.
//!
//! A [`RuleSet`] is an ordered list of [`Rule`]s and markers, plus [`Settings`] and
//! [`Exclusion`]s. It is plain data — serde-free and engine-free — so the YAML front end
//! ([`yaml`]) and the ModSecurity SecLang front end produce the same thing, and the
//! [`compile`](crate::compile) step turns it into a [`Program`](crate::Program).
//!
//! The model is deliberately as expressive as ModSecurity's, because the OWASP Core Rule Set
//! must be expressible without loss: transaction variables with `setvar` and macros, chained
//! conditions, `skip_after` markers, per-request `ctl` exclusions, multi-match over every
//! transformation stage, and regex captures.
//!
//! ```
//! use waf_core::rules::RuleSet;
//!
//! let yaml = r#"
//! rules:
//!   - id: 100
//!     message: SQL injection
//!     targets: [args]
//!     transforms: [url_decode_uni, lowercase]
//!     match: { rx: 'union\s+select' }
//! "#;
//! let ruleset = RuleSet::from_yaml_str(yaml, "example.yaml").unwrap();
//! assert_eq!(ruleset.rules().count(), 1);
//! ```

mod action;
mod load;
pub mod seclang;
mod settings;
mod target;
pub mod yaml;

use std::sync::Arc;

pub use action::{
    ActionError, Ctl, Disruptive, Effect, Flow, IdRange, Macro, MacroPart, RuleRef, SetOp, SetVar,
};
pub use load::{rule_files, Language, Loader};
pub use settings::{
    Exclusion, InvalidBody, Mode, Scope, Settings, Severity, SeverityScores, TargetRemoval,
};
pub use target::{Collection, Selector, Target, TargetError};

use crate::operator::Operator;
use crate::transform::Transform;

/// Where a rule (or marker) was written.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct SourceLocation {
    /// The file, as given to the loader.
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl std::fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// When a rule runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum Phase {
    /// After the request line and headers, before the body (ModSecurity phase 1).
    Headers,
    /// With the body (ModSecurity phase 2). The default: every collection is available.
    #[default]
    Body,
}

impl Phase {
    /// ModSecurity's phase number.
    pub fn number(self) -> u8 {
        match self {
            Phase::Headers => 1,
            Phase::Body => 2,
        }
    }
}

/// One test of a rule condition: targets, transformations, operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// What to look at.
    pub targets: Vec<Target>,
    /// Applied in order to each value before the operator.
    pub transforms: Vec<Transform>,
    /// The test.
    pub operator: Operator,
    /// Match when the operator does *not* (`!@rx` in SecLang).
    pub negated: bool,
    /// Test the value after every transformation stage, not only the last one.
    pub multi_match: bool,
    /// Store regex captures in `TX:0`…`TX:9` for the following conditions and actions.
    pub capture: bool,
    /// Side effects run as soon as this condition holds, once for each value that made it
    /// hold (with that value as `MATCHED_VAR`), before the next condition is tested.
    /// ModSecurity runs a `SecRule`'s `setvar`s this way, and the CRS relies on it: rule 931130
    /// sets a TX variable in its first link that its second link reads. The rule's own
    /// [`effects`](Rule::effects) run once, when every condition holds.
    pub effects: Vec<Effect>,
}

impl Condition {
    /// A condition over some targets with no transformations.
    ///
    /// ```
    /// use waf_core::operator::Operator;
    /// use waf_core::rules::{Collection, Condition, Target};
    /// let c = Condition::new(vec![Target::all(Collection::Args)], Operator::DetectSqli);
    /// assert!(!c.negated);
    /// ```
    pub fn new(targets: Vec<Target>, operator: Operator) -> Condition {
        Condition {
            targets,
            transforms: Vec::new(),
            operator,
            negated: false,
            multi_match: false,
            capture: false,
            effects: Vec::new(),
        }
    }
}

/// A rule.
///
/// A rule matches when every one of its [`conditions`](Rule::conditions) holds, in order (the
/// first is the rule's own test, the others are ModSecurity's `chain`). A rule with no condition
/// (`SecAction`) always matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The rule id, unique in a ruleset.
    pub id: u32,
    /// Where it was written.
    pub source: SourceLocation,
    /// When it runs.
    pub phase: Phase,
    /// What is logged when it matches (may contain macros).
    pub message: Option<Macro>,
    /// Extra log data (may contain macros, such as `%{MATCHED_VAR}`).
    pub logdata: Option<Macro>,
    /// Tags, such as `attack-sqli` or `paranoia-level/2`.
    pub tags: Vec<String>,
    /// Severity, which also gives the anomaly score of [`Disruptive::Block`].
    pub severity: Option<Severity>,
    /// The paranoia level the rule belongs to; it is dropped below that level.
    pub paranoia: Option<u8>,
    /// Every condition must hold.
    pub conditions: Vec<Condition>,
    /// The disruptive action.
    pub action: Disruptive,
    /// Anomaly score category for [`Disruptive::Block`] (`anomaly` when unset).
    pub category: Option<String>,
    /// Anomaly score for [`Disruptive::Block`], overriding the severity's.
    pub score: Option<i64>,
    /// Whether a match is recorded in the verdict (`nolog` turns it off).
    pub log: bool,
    /// Side effects, run in order when the rule matches.
    pub effects: Vec<Effect>,
    /// Where to continue when the rule matches.
    pub flow: Flow,
    /// Example requests the rule must and must not match.
    pub tests: RuleTests,
}

impl Rule {
    /// A rule with defaults: phase body, action block, logged, no conditions.
    ///
    /// ```
    /// let rule = waf_core::rules::Rule::new(942100);
    /// assert!(rule.log);
    /// ```
    pub fn new(id: u32) -> Rule {
        Rule {
            id,
            source: SourceLocation::default(),
            phase: Phase::Body,
            message: None,
            logdata: None,
            tags: Vec::new(),
            severity: None,
            paranoia: None,
            conditions: Vec::new(),
            action: Disruptive::Block,
            category: None,
            score: None,
            log: true,
            effects: Vec::new(),
            flow: Flow::Next,
            tests: RuleTests::default(),
        }
    }
}

/// Example requests attached to a rule.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RuleTests {
    /// Requests the rule must match.
    pub matching: Vec<TestRequest>,
    /// Requests the rule must not match.
    pub not_matching: Vec<TestRequest>,
}

/// An example request in a rule's tests.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TestRequest {
    /// Where the example was written.
    pub source: SourceLocation,
    /// Method (`GET` when empty).
    pub method: String,
    /// Request target.
    pub uri: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl TestRequest {
    /// Builds the engine's request. A `Host` header is added when missing, and a body without
    /// `Content-Type` is sent as a form.
    pub fn to_request(&self) -> crate::Request {
        let mut builder = crate::Request::builder()
            .method(if self.method.is_empty() {
                "GET"
            } else {
                &self.method
            })
            .uri(&self.uri)
            .remote_addr(std::net::IpAddr::from([192, 0, 2, 1]));
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        if !has("host") {
            builder = builder.header("Host", "login.example.com");
        }
        for (n, v) in &self.headers {
            builder = builder.header(n, v);
        }
        if !self.body.is_empty() {
            if !has("content-type") {
                builder = builder.header("Content-Type", "application/x-www-form-urlencoded");
            }
            builder = builder.header("Content-Length", self.body.len().to_string());
        }
        builder.body(&self.body).build()
    }
}

/// A rule or a marker, in evaluation order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Item {
    /// A rule.
    Rule(Box<Rule>),
    /// A jump target for [`Flow::SkipAfter`].
    Marker {
        /// Its name.
        name: String,
        /// Where it was written.
        source: SourceLocation,
    },
}

/// Rules, markers, settings and exclusions: everything a [`Program`](crate::Program) is
/// compiled from.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RuleSet {
    /// Rules and markers, in file order.
    pub items: Vec<Item>,
    /// Paranoia level, thresholds, mode...
    pub settings: Settings,
    /// Rules and targets left out, everywhere or for some hosts, paths and methods.
    pub exclusions: Vec<Exclusion>,
}

impl RuleSet {
    /// An empty ruleset with default settings.
    pub fn new() -> RuleSet {
        RuleSet::default()
    }

    /// Every rule, in order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.items.iter().filter_map(|i| match i {
            Item::Rule(r) => Some(&**r),
            Item::Marker { .. } => None,
        })
    }

    /// Parses one YAML rule file.
    pub fn from_yaml_str(text: &str, file: &str) -> Result<RuleSet, crate::Error> {
        let mut set = RuleSet::new();
        yaml::load_str(&mut set, text, file, None)?;
        Ok(set)
    }

    /// Loads YAML rule files and folders (every `*.yaml`/`*.yml` inside, sorted by name).
    /// Files are merged in the order given; a later file's `settings:` override earlier ones.
    pub fn from_yaml_paths<P: AsRef<std::path::Path>>(
        paths: &[P],
    ) -> Result<RuleSet, crate::Error> {
        let mut set = RuleSet::new();
        for path in yaml::rule_files(paths)? {
            set.add_yaml_file(&path)?;
        }
        Ok(set)
    }

    /// Appends one YAML rule file's rules, exclusions and settings.
    ///
    /// On error `self` may hold part of the file: load into a fresh set when the running
    /// ruleset must stay intact.
    pub fn add_yaml_file(&mut self, path: &std::path::Path) -> Result<(), crate::Error> {
        yaml::load_file(self, path)
    }

    /// Appends the rules of a YAML file already read into memory; `path` names it in errors and
    /// data files (`pm_file`) are looked up beside it. For callers that also hash or cache the
    /// text, so what they hash is exactly what was loaded.
    ///
    /// ```
    /// use waf_core::RuleSet;
    ///
    /// let mut set = RuleSet::new();
    /// let text = "rules:\n  - id: 1\n    targets: [args]\n    match: {rx: 'union\\s+select'}\n";
    /// set.add_yaml_text(std::path::Path::new("rules/sqli.yaml"), text).unwrap();
    /// assert_eq!(set.rules().count(), 1);
    /// ```
    pub fn add_yaml_text(
        &mut self,
        path: &std::path::Path,
        text: &str,
    ) -> Result<(), crate::Error> {
        yaml::load_str(self, text, &path.display().to_string(), path.parent())
    }
}
