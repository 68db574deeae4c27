//! What the engine decided about a request, and why.

use std::collections::BTreeMap;

use crate::rules::{Phase, Severity};
use crate::transform::Transform;

/// The decision of the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Action {
    /// Nothing blocked the request.
    #[default]
    Pass,
    /// A rule (or the anomaly threshold) blocked it, with this status.
    Block {
        /// The HTTP status to answer with.
        status: u16,
    },
    /// An `allow` rule let it through without further inspection.
    Allow,
}

/// The outcome of inspecting one request.
///
/// ```
/// use waf_core::{compile, Request, RuleSet};
///
/// let set = RuleSet::from_yaml_str(
///     "rules:\n  - id: 1\n    targets: [args]\n    match: detect_sqli\n",
///     "inline.yaml",
/// ).unwrap();
/// let program = compile(&set).unwrap();
/// let verdict = program.inspect(&Request::builder().uri("/?q=1%27%20or%20%271%27%3D%271").build());
/// assert!(verdict.is_blocking());
/// assert_eq!(verdict.matches[0].rule_id, 1);
/// assert_eq!(verdict.matches[0].values[0].target, "ARGS:q");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Verdict {
    /// What the rules decided (in detection-only mode: what they would have done).
    pub action: Action,
    /// False in detection-only mode: the caller must let the request through whatever
    /// [`action`](Self::action) says.
    pub enforced: bool,
    /// The rule that decided, when one did.
    pub decided_by: Option<u32>,
    /// Total inbound anomaly score.
    pub anomaly_score: i64,
    /// Anomaly score per category.
    pub scores: BTreeMap<String, i64>,
    /// Every logged rule that matched, in evaluation order.
    pub matches: Vec<RuleMatch>,
    /// Why the body could not be parsed as its declared type, when it could not
    /// (`REQBODY_ERROR_MSG`), or else which parse limit the request went past (`more than 1000
    /// arguments; 3 dropped`). With [`InvalidBody::Block`](crate::rules::InvalidBody::Block)
    /// that alone blocks the request with 400, before the rules that read the body run.
    pub body_error: Option<String>,
    /// Whether [`body_error`](Self::body_error) names a parse limit the request went past (the
    /// values beyond it were never read) rather than a body that does not parse.
    pub parse_limit_hit: bool,
}

impl Verdict {
    /// Whether the caller must block the request.
    pub fn is_blocking(&self) -> bool {
        self.enforced && matches!(self.action, Action::Block { .. })
    }

    /// The blocking status, when the request is (or would be) blocked.
    pub fn block_status(&self) -> Option<u16> {
        match self.action {
            Action::Block { status } => Some(status),
            _ => None,
        }
    }
}

/// One rule that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleMatch {
    /// The rule id.
    pub rule_id: u32,
    /// Its message, macros expanded.
    pub message: String,
    /// Its log data, macros expanded.
    pub logdata: String,
    /// Its severity.
    pub severity: Option<Severity>,
    /// Its tags.
    pub tags: Vec<String>,
    /// The phase it ran in.
    pub phase: Phase,
    /// The anomaly score it added.
    pub score: i64,
    /// The values that made its conditions hold (the last condition's first).
    pub values: Vec<MatchedValue>,
}

/// A value a rule matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchedValue {
    /// Where the value came from: `ARGS:q`, `REQUEST_HEADERS:User-Agent`, `REQUEST_URI`.
    pub target: String,
    /// The value after the transformations, cut to the configured length; `[redacted]` for
    /// sensitive names.
    pub value: String,
    /// The transformations applied before the operator matched.
    pub transforms: Vec<Transform>,
    /// The operator, as written (`@rx union\s+select`).
    pub operator: String,
    /// What matched: the regex match, the phrase, the libinjection fingerprint (redacted like
    /// `value`).
    pub evidence: String,
}
