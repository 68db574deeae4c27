//! The ModSecurity SecLang front end: `SecRule` files, such as the OWASP Core Rule Set,
//! translated into the same [`RuleSet`] the YAML language produces.
//!
//! One engine, two front ends: a SecLang rule becomes a [`Rule`] whose first [`Condition`] is
//! the `SecRule` itself and whose further conditions are its `chain`ed rules; `setvar`, `ctl`,
//! `skipAfter`, `capture` and `multiMatch` map one to one onto the model, which was designed
//! for them.
//!
//! ```
//! use waf_core::rules::seclang::Loader;
//!
//! let mut loader = Loader::new();
//! loader
//!     .load_str(
//!         r#"
//! SecDefaultAction "phase:2,log,auditlog,pass"
//! SecRule ARGS "@rx (?i)union\s+select" \
//!     "id:1,phase:2,block,t:none,t:urlDecodeUni,msg:'SQL injection',\
//!     setvar:'tx.anomaly_score=+5'"
//! SecRule TX:ANOMALY_SCORE "@ge 5" "id:2,phase:2,deny,status:403"
//! "#,
//!         "example.conf",
//!         None,
//!     )
//!     .unwrap();
//! let (set, notes) = loader.finish().unwrap();
//! assert!(notes.is_empty());
//! let program = waf_core::compile(&set).unwrap();
//! let request = waf_core::Request::builder().uri("/?q=1%20UNION%20SELECT%202").build();
//! let verdict = program.inspect(&request);
//! assert!(verdict.is_blocking());
//! assert_eq!(verdict.decided_by, Some(2));
//! ```
//!
//! # What is supported, and what is reported
//!
//! Directives: `SecRule`, `SecAction`, `SecMarker`, `SecDefaultAction`, `SecRuleRemoveById`,
//! `SecRuleRemoveByTag`, `SecRuleUpdateTargetById`, `SecRuleUpdateTargetByTag`,
//! `SecRuleEngine`, `SecComponentSignature`, `Include` and `IncludeOptional` (with `*` in the
//! file name). The variables, operators, transformations and actions the CRS uses are all
//! understood.
//!
//! Whatever cannot take effect here is never skipped quietly: it becomes a *note*, an
//! [`Error`] of kind [`ErrorKind::Unsupported`] with file, line and rule id, returned by
//! [`Loader::finish`]. Notes do not stop loading; the rule stays, minus the part that cannot
//! work:
//!
//! - a target from a collection the engine does not have (`IP:...`, `GEO`...) or an XPath
//!   other than `XML:/*` and `XML://@*` is left out of the rule;
//! - an operator that needs the network (`@rbl`, `@geoLookup`) never matches; nor does a
//!   regex that neither the linear engine nor the [bounded backtracking
//!   matcher](crate::operator::backtrack) can run (a named backreference, say), while a
//!   possessive quantifier only the linear engine takes is read as greedy;
//! - an action that needs persistent storage or a program (`initcol`, `expirevar`, `exec`) is
//!   ignored;
//! - rules of the response and logging phases (3, 4, 5) are left out, since the proxy does not
//!   inspect responses;
//! - server directives that tune ModSecurity's own machinery (`SecRequestBodyLimit`,
//!   `SecAuditLog`...) are ignored: the proxy's configuration sets those things.
//!
//! Actual mistakes — an unterminated quote, a rule without an id, a `chain` with nothing
//! after it, a regex that is wrong in both dialects — are errors.
//!
//! # ModSecurity's `block`
//!
//! `block` means "what `SecDefaultAction` of this phase says". The CRS's anomaly mode sets
//! `pass` there and blocks from rule 949110 with `deny`, so CRS rules translate to
//! [`Disruptive::Pass`] plus `setvar`s, and the one `deny` decides. The ruleset's own
//! anomaly threshold is not used for them; the CRS's TX variables are.

mod lexer;
mod pcre;

/// Rewrites a PCRE pattern into Rust syntax (see the `pcre` module); for operators that build
/// their regex when the rule runs.
pub(crate) fn pcre_to_rust(pattern: &str) -> Result<String, String> {
    pcre::to_rust(pattern).map(|r| r.pattern)
}

/// Rewrites a PCRE pattern into a linear-time regex matching at least where it matches: the
/// prefilter of [`Operator::RxBacktracking`].
pub(crate) fn pcre_to_relaxed(pattern: &str) -> Result<String, String> {
    pcre::to_relaxed(pattern)
}

/// Rewrites a PCRE pattern for the backtracking matcher of [`Operator::RxBacktracking`].
pub(crate) fn pcre_to_backtracking(pattern: &str) -> Result<String, String> {
    pcre::to_backtracking(pattern)
}

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    Collection, Condition, Ctl, Disruptive, Effect, Flow, IdRange, Item, Macro, Mode, Phase, Rule,
    RuleSet, Selector, SetVar, Severity, SourceLocation, Target,
};
use crate::error::{Error, ErrorKind};
use crate::operator::Operator;
use crate::transform::Transform;
use lexer::Directive;

/// Deepest `Include` nesting; deeper is taken for a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Collections SecLang has and the engine does not; targets naming them are left out with a
/// note instead of failing the file.
const MISSING_COLLECTIONS: &[&str] = &[
    "IP",
    "GLOBAL",
    "SESSION",
    "USER",
    "RESOURCE",
    "GEO",
    "ENV",
    "UNIQUE_ID",
    "DURATION",
    "TIME",
    "TIME_DAY",
    "TIME_EPOCH",
    "TIME_HOUR",
    "TIME_MIN",
    "TIME_MON",
    "TIME_SEC",
    "TIME_WDAY",
    "TIME_YEAR",
    "FULL_REQUEST",
    "FULL_REQUEST_LENGTH",
    "REMOTE_PORT",
    "REMOTE_HOST",
    "REMOTE_USER",
    "SERVER_ADDR",
    "SERVER_NAME",
    "SERVER_PORT",
    "AUTH_TYPE",
    "WEBAPPID",
    "SESSIONID",
    "USERID",
    "HIGHEST_SEVERITY",
    "INBOUND_DATA_ERROR",
    "FILES_SIZES",
    "FILES_TMPNAMES",
    "FILES_TMP_CONTENT",
    "MULTIPART_FILENAME",
    "MULTIPART_NAME",
    "MULTIPART_BOUNDARY_QUOTED",
    "MULTIPART_BOUNDARY_WHITESPACE",
    "MULTIPART_DATA_AFTER",
    "MULTIPART_DATA_BEFORE",
    "MULTIPART_FILE_LIMIT_EXCEEDED",
    "MULTIPART_HEADER_FOLDING",
    "MULTIPART_INVALID_HEADER_FOLDING",
    "MULTIPART_INVALID_PART",
    "MULTIPART_INVALID_QUOTING",
    "MULTIPART_LF_LINE",
    "MULTIPART_MISSING_SEMICOLON",
    "MULTIPART_CRLF_LF_LINES",
    "REQBODY_PROCESSOR_ERROR",
    "STATUS_LINE",
    "RESPONSE_BODY",
    "RESPONSE_HEADERS",
    "RESPONSE_HEADERS_NAMES",
    "RESPONSE_STATUS",
    "RESPONSE_PROTOCOL",
    "RESPONSE_CONTENT_TYPE",
    "RESPONSE_CONTENT_LENGTH",
    "STREAM_INPUT_BODY",
    "STREAM_OUTPUT_BODY",
    "RULE",
];

/// Directives that configure ModSecurity's own machinery (logs, storage, limits). The proxy's
/// configuration owns these concerns, so they are noted and have no effect.
const SERVER_DIRECTIVES: &[&str] = &[
    "SecRequestBodyAccess",
    "SecRequestBodyLimit",
    "SecRequestBodyNoFilesLimit",
    "SecRequestBodyInMemoryLimit",
    "SecRequestBodyLimitAction",
    "SecRequestBodyJsonDepthLimit",
    "SecResponseBodyAccess",
    "SecResponseBodyMimeType",
    "SecResponseBodyLimit",
    "SecResponseBodyLimitAction",
    "SecCollectionTimeout",
    "SecDataDir",
    "SecTmpDir",
    "SecUploadDir",
    "SecUploadKeepFiles",
    "SecUploadFileMode",
    "SecUploadFileLimit",
    "SecDebugLog",
    "SecDebugLogLevel",
    "SecAuditEngine",
    "SecAuditLog",
    "SecAuditLog2",
    "SecAuditLogParts",
    "SecAuditLogType",
    "SecAuditLogFormat",
    "SecAuditLogStorageDir",
    "SecAuditLogDirMode",
    "SecAuditLogFileMode",
    "SecAuditLogRelevantStatus",
    "SecArgumentSeparator",
    "SecArgumentsLimit",
    "SecCookieFormat",
    "SecUnicodeMapFile",
    "SecStatusEngine",
    "SecPcreMatchLimitRecursion",
    "SecTmpSaveUploadedFiles",
    "SecHttpBlKey",
    "SecGeoLookupDb",
    "SecServerSignature",
    "SecWebAppId",
    "SecSensorId",
    "SecConnEngine",
    "SecXmlExternalEntity",
];

/// The actions of a `SecDefaultAction`, applied to the rules of its phase.
#[derive(Clone, Debug, Default)]
struct Defaults {
    action: Option<Disruptive>,
    log: Option<bool>,
    transforms: Vec<Transform>,
}

/// Where a rule is being built: a `SecRule` with `chain` waits for the rules chained to it.
#[derive(Clone, Debug)]
struct Pending {
    rule: Rule,
    /// The rule is dropped when complete (a response-phase rule), and was already noted.
    dropped: bool,
}

/// Reads SecLang files into a [`RuleSet`].
///
/// State such as `SecDefaultAction` carries over from one file to the next, as in
/// ModSecurity, so load `crs-setup.conf` and the rule files into one loader, in order.
/// A loader is cheap to clone: clone it before a file to be able to drop that file alone.
///
/// ```
/// use waf_core::rules::seclang::Loader;
///
/// let mut loader = Loader::new();
/// loader.load_str("SecRule REQUEST_HEADERS:X-A \"@streq 1\" \"id:7,deny\"", "a.conf", None).unwrap();
/// let (set, _notes) = loader.finish().unwrap();
/// assert_eq!(set.rules().next().unwrap().id, 7);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Loader {
    set: RuleSet,
    defaults: [Defaults; 2],
    pending: Option<Pending>,
    notes: Vec<Error>,
    depth: usize,
    /// `SecPcreMatchLimit`, for the backtracking patterns loaded after it; `None` until set.
    step_limit: Option<usize>,
}

impl Loader {
    /// A loader starting from an empty ruleset.
    pub fn new() -> Loader {
        Loader::default()
    }

    /// A loader that appends to `set` (for instance rules loaded from YAML files first).
    pub fn with_ruleset(set: RuleSet) -> Loader {
        Loader {
            set,
            ..Loader::default()
        }
    }

    /// Loads one file; `Include`s are followed relative to its folder.
    pub fn load_file(&mut self, path: &Path) -> Result<(), Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::new(ErrorKind::Io, format!("{}: {e}", path.display())))?;
        self.load_str(&text, &path.display().to_string(), path.parent())
    }

    /// Loads SecLang text named `file` in errors; data files (`@pmFromFile`) and `Include`s
    /// are looked up relative to `dir`.
    pub fn load_str(&mut self, text: &str, file: &str, dir: Option<&Path>) -> Result<(), Error> {
        let file: Arc<str> = Arc::from(file);
        let directives = lexer::directives(text, &file).map_err(|(line, message)| {
            Error::new(ErrorKind::Syntax, message).at(SourceLocation {
                file: file.clone(),
                line,
                column: 1,
            })
        })?;
        // A broken directive does not stop the others from being checked: every error of the
        // file is reported at once (the first carries the rest). After a broken rule with
        // `chain`, the rest of its chain is skipped: read on its own, each rule of it would be
        // reported again ("rule has no `id`") for the one mistake.
        let mut errors = Vec::new();
        let mut skipping_chain = false;
        for d in directives {
            if skipping_chain && d.name.eq_ignore_ascii_case("SecRule") {
                skipping_chain = chains(&d);
                continue;
            }
            skipping_chain = false;
            if let Err(e) = self.directive(&d, dir) {
                errors.push(e);
                self.pending = None;
                skipping_chain = chains(&d);
            }
        }
        match Error::gather(errors) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The ruleset being built, for the YAML front end to add to.
    pub(crate) fn ruleset_mut(&mut self) -> &mut RuleSet {
        &mut self.set
    }

    /// The notes so far: what was loaded without effect, by file, line and rule id.
    pub fn notes(&self) -> &[Error] {
        &self.notes
    }

    /// The ruleset and the notes. Fails when the last rule's `chain` has nothing after it.
    pub fn finish(mut self) -> Result<(RuleSet, Vec<Error>), Error> {
        if let Some(p) = self.pending.take() {
            return Err(
                Error::new(ErrorKind::Rule, "`chain` with no rule after it".to_string())
                    .at(p.rule.source.clone())
                    .rule(p.rule.id),
            );
        }
        Ok((self.set, self.notes))
    }

    fn note(&mut self, source: &SourceLocation, rule: Option<u32>, message: impl Into<String>) {
        let mut e = Error::new(ErrorKind::Unsupported, message).at(source.clone());
        if let Some(id) = rule {
            e = e.rule(id);
        }
        self.notes.push(e);
    }

    fn directive(&mut self, d: &Directive, dir: Option<&Path>) -> Result<(), Error> {
        let fail = |m: String| Error::new(ErrorKind::Syntax, m).at(d.source.clone());
        let name = d.name.as_str();
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if self.pending.is_some() && !is("SecRule") {
            // ModSecurity refuses anything between a `chain` and its next rule too.
            let p = self.pending.take().map(|p| p.rule);
            let id = p.as_ref().map_or(0, |r| r.id);
            return Err(fail(format!("`{name}` follows a rule with `chain`")).rule(id));
        }
        let arg = |n: usize| -> Result<&str, Error> {
            d.args
                .get(n)
                .map(String::as_str)
                .ok_or_else(|| fail(format!("{name} needs {} argument(s)", n + 1)))
        };
        if is("SecRule") {
            let actions = d.args.get(2).map(String::as_str).unwrap_or("");
            return self.sec_rule(d, Some((arg(0)?, arg(1)?)), actions, dir);
        }
        if is("SecAction") {
            return self.sec_rule(d, None, arg(0)?, dir);
        }
        if is("SecMarker") {
            self.set.items.push(Item::Marker {
                name: arg(0)?.trim_matches('\'').to_string(),
                source: d.source.clone(),
            });
            return Ok(());
        }
        if is("SecDefaultAction") {
            return self.default_action(d, arg(0)?);
        }
        if is("SecRuleRemoveById") {
            for a in &d.args {
                let range: IdRange = a.parse().map_err(|e: super::ActionError| fail(e.0))?;
                self.set
                    .items
                    .retain(|i| !matches!(i, Item::Rule(r) if range.contains(r.id)));
            }
            return Ok(());
        }
        if is("SecRuleRemoveByTag") || is("SecRuleRemoveByMsg") {
            let wanted = arg(0)?;
            let by_tag = is("SecRuleRemoveByTag");
            self.set.items.retain(|i| match i {
                Item::Rule(r) if by_tag => !r.tags.iter().any(|t| t == wanted),
                Item::Rule(r) => {
                    r.message.as_ref().map(|m| m.to_string()).as_deref() != Some(wanted)
                }
                _ => true,
            });
            return Ok(());
        }
        if is("SecRuleUpdateTargetById") || is("SecRuleUpdateTargetByTag") {
            let by_id = is("SecRuleUpdateTargetById");
            let which = arg(0)?.to_string();
            let targets = arg(1)?.to_string();
            if d.args.len() > 2 {
                self.note(
                    &d.source,
                    None,
                    format!("{name}: replacing a target is not supported; the targets were added"),
                );
            }
            return self.update_targets(d, by_id, &which, &targets);
        }
        if is("SecRuleEngine") {
            self.set.settings.mode = match arg(0)?.to_ascii_lowercase().as_str() {
                "on" => Mode::Block,
                "off" => Mode::Off,
                "detectiononly" => Mode::DetectOnly,
                other => return Err(fail(format!("unknown SecRuleEngine `{other}`"))),
            };
            return Ok(());
        }
        if is("SecPcreMatchLimit") {
            // The step limit of the patterns that need backtracking (see
            // `operator::backtrack`), as in ModSecurity: per search, and no match beyond.
            let limit = arg(0)?
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100_000_000).contains(n))
                .ok_or_else(|| {
                    fail("SecPcreMatchLimit takes a number of steps, 1 to 100000000".to_string())
                })?;
            self.step_limit = Some(limit);
            return Ok(());
        }
        if is("SecComponentSignature") {
            // A banner for ModSecurity's logs; nothing to do.
            return Ok(());
        }
        if is("Include") || is("IncludeOptional") {
            return self.include(d, arg(0)?, dir, is("IncludeOptional"));
        }
        if SERVER_DIRECTIVES.iter().any(|s| is(s)) {
            self.note(
                &d.source,
                None,
                format!("{name} has no effect: the proxy's configuration sets this"),
            );
            return Ok(());
        }
        self.note(
            &d.source,
            None,
            format!("unknown directive `{name}` ignored"),
        );
        Ok(())
    }

    fn include(
        &mut self,
        d: &Directive,
        pattern: &str,
        dir: Option<&Path>,
        optional: bool,
    ) -> Result<(), Error> {
        let fail = |m: String| Error::new(ErrorKind::Io, m).at(d.source.clone());
        if self.depth >= MAX_INCLUDE_DEPTH {
            return Err(fail(format!(
                "`Include {pattern}` nests too deep (a loop?)"
            )));
        }
        let path = match dir {
            Some(dir) if Path::new(pattern).is_relative() => dir.join(pattern),
            _ => PathBuf::from(pattern),
        };
        let files = expand_glob(&path).map_err(|e| fail(format!("Include {pattern}: {e}")))?;
        if files.is_empty() && !optional {
            return Err(fail(format!("Include {pattern}: no such file")));
        }
        self.depth += 1;
        let result = files.iter().try_for_each(|f| self.load_file(f));
        self.depth -= 1;
        result
    }

    fn default_action(&mut self, d: &Directive, text: &str) -> Result<(), Error> {
        let actions = parse_actions(text)
            .map_err(|m| Error::new(ErrorKind::Syntax, m).at(d.source.clone()))?;
        let mut phase = None;
        let mut defaults = Defaults::default();
        for (name, value) in &actions {
            match name.as_str() {
                "phase" => phase = Some(value.clone()),
                "pass" => defaults.action = Some(Disruptive::Pass),
                "deny" | "drop" => defaults.action = Some(Disruptive::Deny { status: None }),
                "allow" => defaults.action = Some(Disruptive::Allow),
                "status" => {
                    if let (Some(Disruptive::Deny { status }), Ok(s)) =
                        (defaults.action.as_mut(), value.parse())
                    {
                        *status = Some(s);
                    }
                }
                "log" => defaults.log = Some(true),
                "nolog" => defaults.log = Some(false),
                "t" if value.eq_ignore_ascii_case("none") => defaults.transforms.clear(),
                "t" => match value.parse::<Transform>() {
                    Ok(t) => defaults.transforms.push(t),
                    Err(e) => {
                        return Err(Error::new(ErrorKind::Rule, e.to_string()).at(d.source.clone()))
                    }
                },
                _ => {}
            }
        }
        match phase.as_deref().map(parse_phase) {
            Some(Some(Some(p))) => self.defaults[usize::from(p == Phase::Body)] = defaults,
            Some(Some(None)) => {} // a response phase: none of its rules are loaded
            _ => {
                return Err(Error::new(
                    ErrorKind::Syntax,
                    "SecDefaultAction needs a phase".to_string(),
                )
                .at(d.source.clone()))
            }
        }
        Ok(())
    }

    fn update_targets(
        &mut self,
        d: &Directive,
        by_id: bool,
        which: &str,
        targets: &str,
    ) -> Result<(), Error> {
        let range: Option<IdRange> = if by_id {
            Some(which.parse().map_err(|e: super::ActionError| {
                Error::new(ErrorKind::Syntax, e.0).at(d.source.clone())
            })?)
        } else {
            None
        };
        let mut notes = Vec::new();
        let parsed = parse_targets(targets, &mut notes)
            .map_err(|m| Error::new(ErrorKind::Rule, m).at(d.source.clone()))?;
        for n in notes {
            self.note(&d.source, None, n);
        }
        let mut found = false;
        for item in &mut self.set.items {
            let Item::Rule(rule) = item else { continue };
            let hit = match range {
                Some(r) => r.contains(rule.id),
                None => rule.tags.iter().any(|t| t == which),
            };
            let Some(first) = rule.conditions.first_mut() else {
                continue;
            };
            if !hit {
                continue;
            }
            found = true;
            for t in &parsed.targets {
                if !first.targets.contains(t) {
                    first.targets.push(t.clone());
                }
            }
            for (collection, selector) in &parsed.excludes {
                for t in first
                    .targets
                    .iter_mut()
                    .filter(|t| t.collection == *collection)
                {
                    if !t.exclude.contains(selector) {
                        t.exclude.push(selector.clone());
                    }
                }
            }
        }
        if !found {
            self.note(
                &d.source,
                None,
                format!("{}: no rule loaded so far matches `{which}`", d.name),
            );
        }
        Ok(())
    }

    /// `SecRule` (with `targets_op`) or `SecAction` (without).
    fn sec_rule(
        &mut self,
        d: &Directive,
        targets_op: Option<(&str, &str)>,
        actions: &str,
        dir: Option<&Path>,
    ) -> Result<(), Error> {
        let syntax = |m: String| Error::new(ErrorKind::Syntax, m).at(d.source.clone());
        let actions = parse_actions(actions).map_err(syntax)?;
        let chained = self.pending.take();
        let id = match (&chained, find(&actions, "id")) {
            (Some(p), None) => p.rule.id,
            (Some(p), Some(_)) => {
                return Err(syntax("a chained rule cannot have an id".into()).rule(p.rule.id))
            }
            (None, Some(v)) => v
                .parse::<u32>()
                .map_err(|_| syntax(format!("rule id `{v}` is not a number")))?,
            (None, None) => return Err(syntax("rule has no `id`".into())),
        };
        let rule_error = |m: String| Error::new(ErrorKind::Rule, m).at(d.source.clone()).rule(id);

        let (mut rule, dropped) = match chained {
            Some(p) => (p.rule, p.dropped),
            None => {
                let mut rule = Rule::new(id);
                rule.source = d.source.clone();
                let phase = match find(&actions, "phase") {
                    None => Some(Phase::Body),
                    Some(p) => {
                        parse_phase(p).ok_or_else(|| rule_error(format!("unknown phase `{p}`")))?
                    }
                };
                let mut dropped = false;
                match phase {
                    Some(p) => rule.phase = p,
                    None => {
                        dropped = true;
                        self.note(
                            &d.source,
                            Some(id),
                            "response and logging phases are not inspected; rule left out",
                        );
                    }
                }
                let defaults = &self.defaults[usize::from(rule.phase == Phase::Body)];
                rule.action = defaults.action.unwrap_or(Disruptive::Pass);
                rule.log = defaults.log.unwrap_or(true);
                (rule, dropped)
            }
        };
        let defaults = self.defaults[usize::from(rule.phase == Phase::Body)].clone();

        let mut condition = match targets_op {
            Some((targets, op)) => {
                let mut notes = Vec::new();
                let parsed = parse_targets(targets, &mut notes).map_err(rule_error)?;
                let (operator, negated) = self.operator(op, dir, &mut notes).map_err(rule_error)?;
                if !dropped {
                    for n in notes {
                        self.note(&d.source, Some(id), n);
                    }
                }
                let mut targets = parsed.targets;
                for (collection, selector) in parsed.excludes {
                    for t in targets.iter_mut().filter(|t| t.collection == collection) {
                        t.exclude.push(selector.clone());
                    }
                }
                let mut c = Condition::new(targets, operator);
                c.negated = negated;
                c.transforms = defaults.transforms.clone();
                Some(c)
            }
            None => None,
        };

        let mut chain = false;
        let mut explicit_block = false;
        let mut effects = Vec::new();
        for (name, value) in &actions {
            match name.as_str() {
                "id" | "phase" | "ver" | "rev" | "maturity" | "accuracy" | "auditlog"
                | "noauditlog" => {}
                "msg" => rule.message = Some(Macro::parse(value)),
                "logdata" => rule.logdata = Some(Macro::parse(value)),
                "tag" => {
                    // The CRS tags each rule with its paranoia level. Taking it as the rule's
                    // level lets the compiler leave out what the site's level never runs,
                    // instead of compiling it for the CRS's own skipAfter to jump over.
                    if let Some(level) = value
                        .strip_prefix("paranoia-level/")
                        .and_then(|l| l.parse::<u8>().ok())
                    {
                        rule.paranoia = Some(level);
                    }
                    rule.tags.push(value.clone());
                }
                "severity" => rule.severity = Some(value.parse::<Severity>().map_err(rule_error)?),
                "t" => {
                    let Some(c) = condition.as_mut() else {
                        continue;
                    };
                    if value.eq_ignore_ascii_case("none") {
                        c.transforms.clear();
                    } else {
                        match value.parse::<Transform>() {
                            Ok(t) => c.transforms.push(t),
                            Err(e) => return Err(rule_error(e.to_string())),
                        }
                    }
                }
                "chain" => chain = true,
                "capture" => {
                    if let Some(c) = condition.as_mut() {
                        c.capture = true;
                    }
                }
                "multimatch" => {
                    if let Some(c) = condition.as_mut() {
                        c.multi_match = true;
                    }
                }
                "setvar" => match value.parse::<SetVar>() {
                    Ok(sv) => {
                        // crs-setup.conf's SecAction 900000, when enabled.
                        if targets_op.is_none() && sv.name.literal() == Some(b"paranoia_level") {
                            self.note(
                                &d.source,
                                Some(id),
                                "sets tx.paranoia_level: the site's `paranoia` decides which \
                                 rules are compiled; set the level there",
                            );
                        }
                        effects.push(Effect::SetVar(sv));
                    }
                    Err(e) => self.note(&d.source, Some(id), format!("setvar:{value}: {}", e.0)),
                },
                "ctl" => match Ctl::parse_seclang(value) {
                    Ok(Some(Ctl::RemoveTarget {
                        rules,
                        collection,
                        selector,
                    })) => effects.push(Effect::Ctl(Ctl::RemoveTarget {
                        rules,
                        collection: seclang_collection(collection),
                        selector,
                    })),
                    Ok(Some(ctl)) => effects.push(Effect::Ctl(ctl)),
                    Ok(None) => {}
                    Err(e) => self.note(&d.source, Some(id), format!("ctl:{value}: {}", e.0)),
                },
                "skipafter" => rule.flow = Flow::SkipAfter(value.trim_matches('\'').to_string()),
                "skip" => {
                    rule.flow = Flow::Skip(
                        value
                            .parse()
                            .map_err(|_| rule_error(format!("skip:{value} is not a number")))?,
                    )
                }
                "pass" => rule.action = Disruptive::Pass,
                "block" => {
                    explicit_block = true;
                    rule.action = defaults.action.unwrap_or(Disruptive::Pass);
                }
                "deny" | "drop" => {
                    let status = match rule.action {
                        Disruptive::Deny { status } => status,
                        _ => None,
                    };
                    rule.action = Disruptive::Deny { status };
                }
                "allow" => rule.action = Disruptive::Allow,
                "status" => {
                    let s: u16 = value
                        .parse()
                        .map_err(|_| rule_error(format!("status:{value} is not a number")))?;
                    if let Disruptive::Deny { status } = &mut rule.action {
                        *status = Some(s);
                    } else if !explicit_block {
                        // `status` before `deny` in the list.
                        rule.action = Disruptive::Deny { status: Some(s) };
                    }
                }
                "log" => rule.log = true,
                "nolog" => rule.log = false,
                "initcol"
                | "expirevar"
                | "setuid"
                | "setsid"
                | "setrsc"
                | "exec"
                | "deprecatevar"
                | "proxy"
                | "redirect"
                | "pause"
                | "append"
                | "prepend"
                | "sanitisearg"
                | "sanitisematched"
                | "sanitisematchedbytes"
                | "sanitiserequestheader"
                | "sanitiseresponseheader"
                | "xmlns" => {
                    self.note(
                        &d.source,
                        Some(id),
                        format!("action `{name}` has no effect here"),
                    );
                }
                other => {
                    return Err(rule_error(format!("unknown action `{other}`")));
                }
            }
        }
        // A SecRule's setvar and ctl run when its own condition holds, even when a chained
        // rule after it then fails (see `Condition::effects`).
        match condition {
            Some(mut c) => {
                c.effects = effects;
                rule.conditions.push(c);
            }
            None => rule.effects = effects,
        }
        if chain {
            self.pending = Some(Pending { rule, dropped });
            return Ok(());
        }
        if dropped {
            return Ok(());
        }
        self.set.items.push(Item::Rule(Box::new(rule)));
        Ok(())
    }

    /// Parses `"@name argument"` (or a bare regex); unsupported operators become
    /// [`Operator::NoMatch`] with a note.
    fn operator(
        &self,
        text: &str,
        dir: Option<&Path>,
        notes: &mut Vec<String>,
    ) -> Result<(Operator, bool), String> {
        let (negated, text) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (name, arg) = match text.strip_prefix('@') {
            Some(rest) => {
                let (n, a) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                (n.to_ascii_lowercase(), a.trim_start())
            }
            None => ("rx".to_string(), text),
        };
        let never = |notes: &mut Vec<String>, why: String| {
            notes.push(why);
            Ok((Operator::NoMatch, false))
        };
        let data_file = |name: &str| -> Result<String, String> {
            let path = match dir {
                Some(d) => d.join(name),
                None => PathBuf::from(name),
            };
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
        };
        // ModSecurity 3 compiles every `@rx` with PCRE_DOTALL and PCRE_MULTILINE: `.` matches a
        // newline, `^` and `$` match at every line's start and end. Without them, a newline
        // hid an attack from the CRS's anchored patterns: `..%0A` passed 930110 and
        // `http://evil/x?%0A` passed 931120, which ModSecurity blocks.
        let rx = format!("(?sm){arg}");
        let op = match name.as_str() {
            "rx" if arg.contains("%{") => Operator::RxMacro(Macro::parse(&rx)),
            "rx" => match pcre::to_rust(&rx) {
                Ok(rewritten) if !rewritten.loosened => {
                    crate::operator::build_regex(&rewritten.pattern)
                        .map_err(|e| format!("@rx does not compile: {e}"))?;
                    Operator::Rx(rewritten.pattern)
                }
                // Lookaround, backreferences, possessive quantifiers: the backtracking
                // matcher runs them as PCRE does, behind a linear prefilter. Should it
                // refuse one, a possessive pattern is read as greedy (matching more, never
                // less), and the others never match; either way the rule is reported.
                linear => {
                    let backtracking = Operator::RxBacktracking {
                        pattern: rx.clone(),
                        step_limit: self
                            .step_limit
                            .unwrap_or(crate::operator::backtrack::BACKTRACK_LIMIT),
                    };
                    match (crate::operator::Matcher::new(&backtracking), linear) {
                        (Ok(_), _) => backtracking,
                        (Err(e), Ok(rewritten)) => {
                            crate::operator::build_regex(&rewritten.pattern)
                                .map_err(|e| format!("@rx does not compile: {e}"))?;
                            notes.push(format!(
                                "@rx has a possessive quantifier, read as greedy (the backtracking matcher refused it: {e}): the rule may match more than in ModSecurity"
                            ));
                            Operator::Rx(rewritten.pattern)
                        }
                        (Err(e), Err(why)) => {
                            return never(
                                notes,
                                format!("@rx never matches here: {why}, and the backtracking matcher refused it: {e}"),
                            );
                        }
                    }
                }
            },
            "pm" => Operator::Pm(
                arg.split_whitespace()
                    .map(|w| w.as_bytes().to_vec())
                    .collect::<Vec<_>>(),
            ),
            "pmfromfile" | "pmf" => {
                let mut phrases = Vec::new();
                for f in arg.split_whitespace() {
                    let text = data_file(f)?;
                    phrases.extend(
                        text.lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty() && !l.starts_with('#'))
                            .map(|l| l.as_bytes().to_vec()),
                    );
                }
                Operator::Pm(phrases)
            }
            "contains" => Operator::Contains(Macro::parse(arg)),
            "containsword" => Operator::ContainsWord(Macro::parse(arg)),
            "beginswith" => Operator::BeginsWith(Macro::parse(arg)),
            "endswith" => Operator::EndsWith(Macro::parse(arg)),
            "streq" => Operator::StrEq(Macro::parse(arg)),
            "within" => Operator::Within(Macro::parse(arg)),
            "eq" => Operator::Eq(Macro::parse(arg)),
            "ge" => Operator::Ge(Macro::parse(arg)),
            "gt" => Operator::Gt(Macro::parse(arg)),
            "le" => Operator::Le(Macro::parse(arg)),
            "lt" => Operator::Lt(Macro::parse(arg)),
            "ipmatch" => Operator::IpMatch(arg.to_string()),
            "ipmatchfromfile" | "ipmatchf" => {
                let text = data_file(arg.trim())?;
                let list: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .collect();
                Operator::IpMatch(list.join(","))
            }
            "validatebyterange" => Operator::ValidateByteRange(arg.to_string()),
            "validateurlencoding" => Operator::ValidateUrlEncoding,
            "validateutf8encoding" => Operator::ValidateUtf8Encoding,
            "detectsqli" => Operator::DetectSqli,
            "detectxss" => Operator::DetectXss,
            "unconditionalmatch" => Operator::Unconditional,
            "nomatch" => Operator::NoMatch,
            other => {
                return never(
                    notes,
                    format!("operator @{other} is not supported here; the condition never holds"),
                )
            }
        };
        if let Operator::Pm(list) = &op {
            if list.is_empty() {
                return Err(format!("@{name} has no phrases"));
            }
        }
        // Checked now so the error names the rule.
        crate::operator::Matcher::new(&op).map_err(|e| e.to_string())?;
        Ok((op, negated))
    }
}

/// The ModSecurity phase: `Some(Some(p))` for a request phase, `Some(None)` for a response or
/// logging phase, `None` when unknown.
fn parse_phase(s: &str) -> Option<Option<Phase>> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "request_headers" => Some(Some(Phase::Headers)),
        "2" | "request" => Some(Some(Phase::Body)),
        "3" | "4" | "5" | "response" | "logging" => Some(None),
        _ => None,
    }
}

/// Whether a `SecRule` or `SecAction` directive has `chain` among its actions: by its parsed
/// actions, or, when they do not parse, by their text.
fn chains(d: &Directive) -> bool {
    let actions = if d.name.eq_ignore_ascii_case("SecAction") {
        d.args.first()
    } else if d.name.eq_ignore_ascii_case("SecRule") {
        d.args.get(2)
    } else {
        None
    };
    actions.is_some_and(|text| match parse_actions(text) {
        Ok(actions) => find(&actions, "chain").is_some(),
        Err(_) => text.contains("chain"),
    })
}

fn find<'a>(actions: &'a [(String, String)], name: &str) -> Option<&'a str> {
    actions
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Splits an action list into `(name, value)` pairs; names are lowercased, single quotes
/// around values removed. Commas inside single quotes do not split.
fn parse_actions(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut items = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted && chars.peek() == Some(&'\'') => {
                current.push('\'');
                chars.next();
            }
            '\'' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if quoted {
        return Err(format!("unterminated single quote in `{text}`"));
    }
    items.push(current);
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (name, value) = match item.split_once(':') {
            Some((n, v)) => (n.trim(), v.trim()),
            None => (item, ""),
        };
        let value = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or(value);
        out.push((name.to_ascii_lowercase(), value.to_string()));
    }
    Ok(out)
}

/// Targets of a rule: what to inspect, and `!` exclusions.
struct Targets {
    targets: Vec<Target>,
    excludes: Vec<(Collection, Selector)>,
}

/// Parses `ARGS|!ARGS:password|REQUEST_HEADERS:/^x-/|&TX:foo`. Collections the engine lacks
/// are left out with a note.
fn parse_targets(text: &str, notes: &mut Vec<String>) -> Result<Targets, String> {
    let mut out = Targets {
        targets: Vec::new(),
        excludes: Vec::new(),
    };
    for piece in split_targets(text) {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        let bare = piece.trim_start_matches(['!', '&']);
        let collection = bare.split(':').next().unwrap_or(bare);
        if MISSING_COLLECTIONS
            .iter()
            .any(|c| c.eq_ignore_ascii_case(collection))
        {
            if !piece.starts_with('!') {
                notes.push(format!("target {piece}: no such collection here; left out"));
            }
            continue;
        }
        let piece = rewrite_selector(piece)?;
        if piece.starts_with('!') {
            let (c, s) = Target::parse_exclusion(&piece).map_err(|e| e.to_string())?;
            out.excludes.push((seclang_collection(c), s));
            continue;
        }
        let mut target = piece.parse::<Target>().map_err(|e| e.to_string())?;
        target.collection = seclang_collection(target.collection);
        if target.collection == Collection::Xml
            && !matches!(&target.selector, Selector::Name(x) if x == "/*" || x == "//@*")
        {
            notes.push(format!(
                "target {piece}: only the XPath expressions /* and //@* are supported; left out"
            ));
            continue;
        }
        out.targets.push(target);
    }
    Ok(out)
}

/// What a SecLang collection name means here: `REQUEST_BODY` is ModSecurity 2's, which the
/// CRS tests expect (see [`Collection::RequestBodyUnlessXml`]).
fn seclang_collection(c: Collection) -> Collection {
    match c {
        Collection::RequestBody => Collection::RequestBodyUnlessXml,
        c => c,
    }
}

/// A regex selector (`ARGS:/^foo/`) is PCRE too.
fn rewrite_selector(piece: &str) -> Result<String, String> {
    let Some((head, sel)) = piece.split_once(':') else {
        return Ok(piece.to_string());
    };
    let sel = sel
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or(sel);
    match sel.strip_prefix('/').and_then(|s| s.strip_suffix('/')) {
        Some(re) if sel.len() >= 2 => {
            let re = pcre::to_rust(re).map_err(|e| format!("selector {sel}: {e}"))?;
            Ok(format!("{head}:/{}/", re.pattern))
        }
        _ => Ok(format!("{head}:{sel}")),
    }
}

/// Splits a target list on `|`, except inside a `/regex/` selector or single quotes.
fn split_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_regex = false;
    let mut in_quote = false;
    let mut prev = '\0';
    for c in text.chars() {
        match c {
            '\'' if !in_regex => in_quote = !in_quote,
            // `ARGS:/regex/`, but not an XPath (`XML:/*`).
            '/' if (prev == ':' || (prev == '\'' && current.ends_with(":'")))
                && !current
                    .trim_start_matches(['!', '&'])
                    .to_ascii_uppercase()
                    .starts_with("XML:") =>
            {
                in_regex = true
            }
            '/' if in_regex && prev != '\\' => in_regex = false,
            '|' if !in_regex && !in_quote => {
                out.push(std::mem::take(&mut current));
                prev = c;
                continue;
            }
            _ => {}
        }
        current.push(c);
        prev = c;
    }
    out.push(current);
    out
}

/// The files an `Include` pattern names: the path itself, or with `*` in the file name, every
/// match in its folder, sorted. (`glob` would do more, but Include needs only this.)
fn expand_glob(path: &Path) -> Result<Vec<PathBuf>, String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if !name.contains('*') {
        return Ok(if path.exists() {
            vec![path.to_path_buf()]
        } else {
            Vec::new()
        });
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let (prefix, suffix) = name.split_once('*').unwrap_or((name, ""));
    if suffix.contains('*') {
        return Err("only one `*` is supported in an Include pattern".into());
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.len() >= prefix.len() + suffix.len()
                    && n.starts_with(prefix)
                    && n.ends_with(suffix)
            })
        })
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests;
