//! The YAML rule language: serde-facing structs and their lowering into the rule model.
//!
//! The language is documented for rule authors in `docs/rules.md`. These structs mirror the
//! file format one to one and are kept apart from the [rule model](super), so the format can
//! grow friendlier without touching the engine.
//!
//! ```
//! use waf_core::rules::RuleSet;
//!
//! let set = RuleSet::from_yaml_str(r#"
//! settings:
//!   paranoia: 2
//! rules:
//!   - id: 1001
//!     message: Path traversal
//!     severity: critical
//!     targets: [request_filename, args]
//!     except: [args:password]
//!     transforms: [url_decode_uni, normalize_path]
//!     match: { contains: '../' }
//!     tests:
//!       match: ['/a?file=../../etc/passwd']
//!       no_match: ['/a?file=report.pdf']
//! "#, "traversal.yaml").unwrap();
//! assert_eq!(set.settings.paranoia, 2);
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{
    Condition, Ctl, Disruptive, Effect, Exclusion, Flow, IdRange, InvalidBody, Item, Macro, Mode,
    Phase, Rule, RuleRef, RuleSet, RuleTests, Scope, SetVar, Severity, SeverityScores,
    SourceLocation, Target, TargetRemoval, TestRequest,
};
use crate::error::{Error, ErrorKind};
use crate::operator::Operator;
use crate::transform::Transform;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileDef {
    #[serde(default)]
    settings: Option<Spanned<SettingsDef>>,
    #[serde(default)]
    exclusions: Vec<Spanned<ExclusionDef>>,
    #[serde(default)]
    rules: Vec<Spanned<ItemDef>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SettingsDef {
    paranoia: Option<u8>,
    anomaly_threshold: Option<i64>,
    #[serde(default)]
    category_thresholds: BTreeMap<String, i64>,
    severity_scores: Option<SeverityScoresDef>,
    mode: Option<String>,
    block_status: Option<u16>,
    sensitive_names: Option<Vec<String>>,
    max_logged_value: Option<usize>,
    limits: Option<LimitsDef>,
    invalid_body: Option<String>,
    #[serde(default)]
    tx: BTreeMap<String, Scalar>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeverityScoresDef {
    critical: i64,
    error: i64,
    warning: i64,
    notice: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsDef {
    max_args: Option<usize>,
    max_json_depth: Option<usize>,
    max_json_elements: Option<usize>,
    max_multipart_parts: Option<usize>,
    json_in_form_fields: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExclusionDef {
    #[serde(default)]
    when: ScopeDef,
    #[serde(default)]
    remove_rules: Vec<Scalar>,
    #[serde(default)]
    remove_tags: Vec<String>,
    #[serde(default)]
    remove_targets: Vec<TargetRemovalDef>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScopeDef {
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    path_regex: Option<String>,
    #[serde(default)]
    methods: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetRemovalDef {
    #[serde(default)]
    rules: Vec<Scalar>,
    #[serde(default)]
    tags: Vec<String>,
    targets: Vec<String>,
}

/// A rule, or a `marker:` between rules.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ItemDef {
    id: Option<u32>,
    marker: Option<String>,
    message: Option<String>,
    logdata: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    severity: Option<String>,
    paranoia: Option<u8>,
    phase: Option<String>,
    // The rule's own condition: the fields of `ConditionDef`, repeated because serde's
    // `flatten` and `deny_unknown_fields` do not work together, and a misspelt key must be an
    // error, not silently ignored.
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    except: Vec<String>,
    #[serde(default)]
    transforms: Vec<String>,
    #[serde(rename = "match")]
    operator: Option<OperatorDef>,
    #[serde(default)]
    negate: bool,
    #[serde(default)]
    multi_match: bool,
    #[serde(default)]
    capture: bool,
    /// Further conditions that must also hold (ModSecurity's `chain`).
    #[serde(default)]
    and: Vec<ConditionDef>,
    action: Option<String>,
    status: Option<u16>,
    category: Option<String>,
    score: Option<i64>,
    log: Option<bool>,
    #[serde(default)]
    setvar: Vec<String>,
    #[serde(default)]
    ctl: Vec<String>,
    skip_after: Option<String>,
    tests: Option<TestsDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionDef {
    targets: Vec<String>,
    #[serde(default)]
    except: Vec<String>,
    #[serde(default)]
    transforms: Vec<String>,
    #[serde(rename = "match")]
    operator: OperatorDef,
    #[serde(default)]
    negate: bool,
    #[serde(default)]
    multi_match: bool,
    #[serde(default)]
    capture: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum OperatorDef {
    Rx(String),
    Pm(Vec<String>),
    PmFile(String),
    Contains(String),
    ContainsWord(String),
    BeginsWith(String),
    EndsWith(String),
    Equals(String),
    Within(Vec<String>),
    Eq(Scalar),
    Ge(Scalar),
    Gt(Scalar),
    Le(Scalar),
    Lt(Scalar),
    IpMatch(Vec<String>),
    ValidateByteRange(String),
    ValidateUrlEncoding,
    ValidateUtf8,
    DetectSqli,
    DetectXss,
    Always,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum Scalar {
    Int(i64),
    Text(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Int(i) => i.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TestsDef {
    #[serde(default, rename = "match")]
    matching: Vec<Spanned<TestDef>>,
    #[serde(default)]
    no_match: Vec<Spanned<TestDef>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TestDef {
    Uri(String),
    Full(FullTestDef),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FullTestDef {
    #[serde(default)]
    method: Option<String>,
    #[serde(default = "default_uri")]
    uri: String,
    #[serde(default)]
    headers: Vec<String>,
    #[serde(default)]
    body: String,
}

fn default_uri() -> String {
    "/".to_string()
}

/// The rule files named by `paths`: files as given, folders replaced by the `*.yaml` / `*.yml`
/// files inside them, sorted by name.
///
/// ```no_run
/// let files = waf_core::rules::yaml::rule_files(&["rules/"]).unwrap();
/// ```
pub fn rule_files<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<PathBuf>, Error> {
    super::load::files_in(paths, &["yaml", "yml"])
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("{}: {e}", path.display()))
}

/// Loads one file into `set`.
pub(crate) fn load_file(set: &mut RuleSet, path: &Path) -> Result<(), Error> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
    load_str(set, &text, &path.display().to_string(), path.parent())
}

/// Parses `text` (named `file` in errors) and appends its rules, settings and exclusions to
/// `set`. Data files (`pm_file`) are looked up relative to `dir`.
pub(crate) fn load_str(
    set: &mut RuleSet,
    text: &str,
    file: &str,
    dir: Option<&Path>,
) -> Result<(), Error> {
    let file: Arc<str> = Arc::from(file);
    let def: FileDef = if text.trim().is_empty() {
        FileDef::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| {
            let location = e.location().map(|l| SourceLocation {
                file: file.clone(),
                line: l.line() as u32,
                column: l.column() as u32,
            });
            let message = first_line(&e.to_string());
            let err = Error::new(ErrorKind::Syntax, message);
            match location {
                Some(l) => err.at(l),
                None => err.at(SourceLocation {
                    file: file.clone(),
                    line: 1,
                    column: 1,
                }),
            }
        })?
    };
    let lower = Lowering { file, dir };
    // A broken rule does not stop the others from being checked: every error of the file is
    // reported at once (the first carries the rest).
    let mut errors = Vec::new();
    if let Some(settings) = def.settings {
        let loc = lower.loc(&settings);
        if let Err(e) = lower.settings(set, settings.value) {
            errors.push(Error::new(ErrorKind::Rule, e).at(loc));
        }
    }
    for exclusion in def.exclusions {
        let loc = lower.loc(&exclusion);
        match lower.exclusion(exclusion.value) {
            Ok(ex) => set.exclusions.push(ex),
            Err(e) => errors.push(Error::new(ErrorKind::Rule, e).at(loc)),
        }
    }
    for item in def.rules {
        let loc = lower.loc(&item);
        match lower.item(item.value, loc) {
            Ok(item) => set.items.push(item),
            Err(e) => errors.push(e),
        }
    }
    match Error::gather(errors) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A serde-saphyr error message without its source snippet (the lines after the first) and
/// without the location it repeats, for callers that print `file:line:col: message`
/// themselves: the rule loader, and `waf ftw` for its test files.
///
/// ```
/// use waf_core::rules::yaml::first_line;
/// assert_eq!(
///     first_line("error: line 3 column 5: unknown field `x`\n 3 | x: 1\n   | ^"),
///     "unknown field `x`"
/// );
/// ```
pub fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message).trim();
    // `error: line 3 column 5: unknown field` → `unknown field`: the location is printed
    // by `Error` itself.
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((position, rest)) if position.contains("column") => rest.to_string(),
        _ => line.to_string(),
    }
}

struct Lowering<'a> {
    file: Arc<str>,
    dir: Option<&'a Path>,
}

impl Lowering<'_> {
    fn loc<T>(&self, spanned: &Spanned<T>) -> SourceLocation {
        SourceLocation {
            file: self.file.clone(),
            line: spanned.referenced.line() as u32,
            column: spanned.referenced.column() as u32,
        }
    }

    fn settings(&self, set: &mut RuleSet, def: SettingsDef) -> Result<(), String> {
        let s = &mut set.settings;
        if let Some(p) = def.paranoia {
            if !(1..=4).contains(&p) {
                return Err(format!("paranoia must be 1 to 4, not {p}"));
            }
            s.paranoia = p;
        }
        if let Some(t) = def.anomaly_threshold {
            s.inbound_threshold = t;
        }
        s.category_thresholds.extend(def.category_thresholds);
        if let Some(sc) = def.severity_scores {
            s.severity_scores = SeverityScores {
                critical: sc.critical,
                error: sc.error,
                warning: sc.warning,
                notice: sc.notice,
            };
        }
        if let Some(mode) = def.mode {
            s.mode = parse_mode(&mode)?;
        }
        if let Some(status) = def.block_status {
            check_status(status)?;
            s.block_status = status;
        }
        if let Some(names) = def.sensitive_names {
            s.sensitive_names = names;
        }
        if let Some(m) = def.max_logged_value {
            s.max_logged_value = m;
        }
        if let Some(b) = def.invalid_body {
            s.invalid_body = parse_invalid_body(&b)?;
        }
        if let Some(l) = def.limits {
            let p = &mut s.parse_limits;
            p.max_args = l.max_args.unwrap_or(p.max_args);
            p.max_json_depth = l.max_json_depth.unwrap_or(p.max_json_depth);
            p.max_json_elements = l.max_json_elements.unwrap_or(p.max_json_elements);
            p.max_multipart_parts = l.max_multipart_parts.unwrap_or(p.max_multipart_parts);
            p.json_in_form_fields = l.json_in_form_fields.unwrap_or(p.json_in_form_fields);
        }
        for (k, v) in def.tx {
            s.tx_defaults.insert(k.to_ascii_lowercase(), v.text());
        }
        Ok(())
    }

    fn exclusion(&self, def: ExclusionDef) -> Result<Exclusion, String> {
        if let Some(r) = &def.when.path_regex {
            regex_syntax::Parser::new()
                .parse(r)
                .map_err(|e| format!("bad path_regex: {e}"))?;
        }
        let mut remove_targets = Vec::new();
        for rt in def.remove_targets {
            let mut rules = ids(&rt.rules)?
                .into_iter()
                .map(RuleRef::Id)
                .collect::<Vec<_>>();
            rules.extend(rt.tags.into_iter().map(RuleRef::Tag));
            if rules.is_empty() {
                return Err("remove_targets needs `rules:` or `tags:`".into());
            }
            let targets = rt
                .targets
                .iter()
                .map(|t| Target::parse_exclusion(t).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?;
            remove_targets.push(TargetRemoval { rules, targets });
        }
        Ok(Exclusion {
            scope: Scope {
                hosts: def.when.hosts,
                path_prefixes: def.when.paths,
                path_regex: def.when.path_regex,
                methods: def.when.methods,
            },
            remove_rules: ids(&def.remove_rules)?,
            remove_tags: def.remove_tags,
            remove_targets,
        })
    }

    fn item(&self, def: ItemDef, loc: SourceLocation) -> Result<Item, Error> {
        let rule_err = |id: Option<u32>, msg: String| {
            let e = Error::new(ErrorKind::Rule, msg).at(loc.clone());
            match id {
                Some(id) => e.rule(id),
                None => e,
            }
        };
        let id = match (def.id, def.marker) {
            (None, Some(name)) => {
                let only_marker = def.message.is_none()
                    && def.targets.is_empty()
                    && def.operator.is_none()
                    && def.action.is_none()
                    && def.tests.is_none();
                if !only_marker {
                    return Err(rule_err(
                        None,
                        format!("marker `{name}` takes no other keys (is an `id:` missing?)"),
                    ));
                }
                return Ok(Item::Marker {
                    name,
                    source: loc.clone(),
                });
            }
            (Some(_), Some(_)) => {
                return Err(rule_err(
                    def.id,
                    "an item is a rule or a marker, not both".into(),
                ))
            }
            (None, None) => return Err(rule_err(None, "a rule needs an `id`".into())),
            (Some(id), None) => id,
        };
        let fail = |msg: String| rule_err(Some(id), msg);
        let mut rule = Rule::new(id);
        rule.source = loc.clone();
        rule.message = def.message.as_deref().map(Macro::parse);
        rule.logdata = def.logdata.as_deref().map(Macro::parse);
        rule.tags = def.tags;
        rule.severity = def
            .severity
            .as_deref()
            .map(str::parse::<Severity>)
            .transpose()
            .map_err(fail)?;
        if let Some(p) = def.paranoia {
            if !(1..=4).contains(&p) {
                return Err(fail(format!("paranoia must be 1 to 4, not {p}")));
            }
        }
        rule.paranoia = def.paranoia;
        rule.phase = match def.phase.as_deref() {
            None | Some("body" | "2") => Phase::Body,
            Some("headers" | "1") => Phase::Headers,
            Some(other) => return Err(fail(format!("unknown phase `{other}` (headers or body)"))),
        };
        if let Some(operator) = def.operator {
            rule.conditions.push(
                self.condition(ConditionDef {
                    targets: def.targets,
                    except: def.except,
                    transforms: def.transforms,
                    operator,
                    negate: def.negate,
                    multi_match: def.multi_match,
                    capture: def.capture,
                })
                .map_err(fail)?,
            );
        } else if !def.targets.is_empty() || !def.and.is_empty() {
            return Err(fail("a rule with targets needs `match:`".into()));
        }
        for c in def.and {
            rule.conditions.push(self.condition(c).map_err(fail)?);
        }
        rule.action = match def.action.as_deref() {
            None | Some("block") => Disruptive::Block,
            Some("deny") => Disruptive::Deny { status: def.status },
            Some("pass" | "log") => Disruptive::Pass,
            Some("allow") => Disruptive::Allow,
            Some(other) => {
                return Err(fail(format!(
                    "unknown action `{other}` (block, deny, pass, allow)"
                )))
            }
        };
        if let Some(status) = def.status {
            if !matches!(rule.action, Disruptive::Deny { .. }) {
                return Err(fail("`status` only goes with `action: deny`".into()));
            }
            check_status(status).map_err(fail)?;
        }
        if (def.category.is_some() || def.score.is_some())
            && !matches!(rule.action, Disruptive::Block)
        {
            return Err(fail(
                "`category` and `score` only go with `action: block` (anomaly scoring)".into(),
            ));
        }
        rule.category = def.category;
        rule.score = def.score;
        rule.log = def.log.unwrap_or(true);
        for s in def.setvar {
            let sv: SetVar = s.parse().map_err(|e| fail(format!("setvar: {e}")))?;
            rule.effects.push(Effect::SetVar(sv));
        }
        for c in def.ctl {
            match Ctl::parse_seclang(&c).map_err(|e| fail(format!("ctl: {e}")))? {
                Some(ctl) => rule.effects.push(Effect::Ctl(ctl)),
                None => return Err(fail(format!("ctl `{c}` has no effect in this engine"))),
            }
        }
        if let Some(marker) = def.skip_after {
            rule.flow = Flow::SkipAfter(marker);
        }
        if let Some(tests) = def.tests {
            rule.tests = RuleTests {
                matching: tests
                    .matching
                    .into_iter()
                    .map(|t| self.test(t))
                    .collect::<Result<_, _>>()
                    .map_err(fail)?,
                not_matching: tests
                    .no_match
                    .into_iter()
                    .map(|t| self.test(t))
                    .collect::<Result<_, _>>()
                    .map_err(fail)?,
            };
        }
        Ok(Item::Rule(Box::new(rule)))
    }

    fn condition(&self, def: ConditionDef) -> Result<Condition, String> {
        if def.targets.is_empty() {
            return Err("a condition needs at least one target".into());
        }
        let mut excluded = Vec::new();
        for e in &def.except {
            excluded.push(Target::parse_exclusion(e).map_err(|e| e.to_string())?);
        }
        let mut targets = Vec::new();
        for t in &def.targets {
            let mut target: Target = t.parse().map_err(|e: super::TargetError| e.to_string())?;
            target.exclude = excluded
                .iter()
                .filter(|(c, _)| *c == target.collection)
                .map(|(_, s)| s.clone())
                .collect();
            targets.push(target);
        }
        for (c, _) in &excluded {
            if !targets.iter().any(|t| t.collection == *c) {
                return Err(format!(
                    "`except` names {c}, which is not among the targets"
                ));
            }
        }
        let transforms = def
            .transforms
            .iter()
            .filter(|t| !t.eq_ignore_ascii_case("none"))
            .map(|t| t.parse::<Transform>().map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        Ok(Condition {
            targets,
            transforms,
            operator: self.operator(def.operator)?,
            negated: def.negate,
            multi_match: def.multi_match,
            capture: def.capture,
            effects: Vec::new(),
        })
    }

    fn operator(&self, def: OperatorDef) -> Result<Operator, String> {
        let num = |s: Scalar| Macro::parse(&s.text());
        Ok(match def {
            OperatorDef::Rx(p) => {
                // Checked here so the error points at the rule; compiled again by the program.
                crate::operator::build_regex(&p).map_err(|e| e.to_string())?;
                Operator::Rx(p)
            }
            OperatorDef::Pm(list) => Operator::Pm(phrases(list.iter().map(String::as_str))?),
            OperatorDef::PmFile(name) => {
                let path = match self.dir {
                    Some(dir) => dir.join(&name),
                    None => PathBuf::from(&name),
                };
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("pm_file {}: {e}", path.display()))?;
                Operator::Pm(phrases(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#')),
                )?)
            }
            OperatorDef::Contains(s) => Operator::Contains(Macro::parse(&s)),
            OperatorDef::ContainsWord(s) => Operator::ContainsWord(Macro::parse(&s)),
            OperatorDef::BeginsWith(s) => Operator::BeginsWith(Macro::parse(&s)),
            OperatorDef::EndsWith(s) => Operator::EndsWith(Macro::parse(&s)),
            OperatorDef::Equals(s) => Operator::StrEq(Macro::parse(&s)),
            // A list means "one of these words", exactly. ModSecurity's `@within` is a
            // substring test (`ET` is "within" `GET POST`), a trap rule authors should not
            // have to know about; SecLang keeps it.
            OperatorDef::Within(words) => {
                if words.is_empty() {
                    return Err("`within` needs at least one word".into());
                }
                let alternatives: Vec<String> =
                    words.iter().map(|w| regex_syntax::escape(w)).collect();
                Operator::Rx(format!("^(?:{})$", alternatives.join("|")))
            }
            OperatorDef::Eq(s) => Operator::Eq(num(s)),
            OperatorDef::Ge(s) => Operator::Ge(num(s)),
            OperatorDef::Gt(s) => Operator::Gt(num(s)),
            OperatorDef::Le(s) => Operator::Le(num(s)),
            OperatorDef::Lt(s) => Operator::Lt(num(s)),
            OperatorDef::IpMatch(list) => {
                let list = list.join(",");
                crate::operator::Matcher::new(&Operator::IpMatch(list.clone()))
                    .map_err(|e| e.to_string())?;
                Operator::IpMatch(list)
            }
            OperatorDef::ValidateByteRange(r) => {
                crate::operator::Matcher::new(&Operator::ValidateByteRange(r.clone()))
                    .map_err(|e| e.to_string())?;
                Operator::ValidateByteRange(r)
            }
            OperatorDef::ValidateUrlEncoding => Operator::ValidateUrlEncoding,
            OperatorDef::ValidateUtf8 => Operator::ValidateUtf8Encoding,
            OperatorDef::DetectSqli => Operator::DetectSqli,
            OperatorDef::DetectXss => Operator::DetectXss,
            OperatorDef::Always => Operator::Unconditional,
        })
    }

    fn test(&self, def: Spanned<TestDef>) -> Result<TestRequest, String> {
        let source = self.loc(&def);
        Ok(match def.value {
            TestDef::Uri(uri) => TestRequest {
                source,
                method: "GET".into(),
                uri,
                headers: Vec::new(),
                body: String::new(),
            },
            TestDef::Full(f) => {
                let mut headers = Vec::new();
                for h in f.headers {
                    let (n, v) = h
                        .split_once(':')
                        .ok_or_else(|| format!("test header `{h}` is not `Name: value`"))?;
                    headers.push((n.trim().to_string(), v.trim_start().to_string()));
                }
                TestRequest {
                    source,
                    method: f.method.unwrap_or_else(|| {
                        if f.body.is_empty() { "GET" } else { "POST" }.to_string()
                    }),
                    uri: f.uri,
                    headers,
                    body: f.body,
                }
            }
        })
    }
}

fn phrases<'a>(list: impl Iterator<Item = &'a str>) -> Result<Vec<Vec<u8>>, String> {
    let list: Vec<Vec<u8>> = list.map(|s| s.as_bytes().to_vec()).collect();
    if list.is_empty() || list.iter().any(Vec::is_empty) {
        return Err("a phrase list needs at least one phrase and no empty ones".into());
    }
    Ok(list)
}

fn ids(list: &[Scalar]) -> Result<Vec<IdRange>, String> {
    list.iter()
        .map(|s| s.text().parse::<IdRange>().map_err(|e| e.to_string()))
        .collect()
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s {
        "block" => Ok(Mode::Block),
        "detect_only" => Ok(Mode::DetectOnly),
        "off" => Ok(Mode::Off),
        other => Err(format!("unknown mode `{other}` (block, detect_only, off)")),
    }
}

/// `invalid_body` of the settings: `block` or `inspect`.
pub(crate) fn parse_invalid_body(s: &str) -> Result<InvalidBody, String> {
    match s {
        "block" => Ok(InvalidBody::Block),
        "inspect" => Ok(InvalidBody::Inspect),
        other => Err(format!("unknown invalid_body `{other}` (block, inspect)")),
    }
}

fn check_status(status: u16) -> Result<(), String> {
    if (400..=599).contains(&status) {
        Ok(())
    } else {
        Err(format!("block status must be 400 to 599, not {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RuleSet, Error> {
        RuleSet::from_yaml_str(text, "t.yaml")
    }

    #[test]
    fn invalid_body_is_a_setting() {
        let set = load("settings:\n  invalid_body: inspect\nrules: []\n").unwrap();
        assert_eq!(set.settings.invalid_body, InvalidBody::Inspect);
        let set = load("settings:\n  invalid_body: block\nrules: []\n").unwrap();
        assert_eq!(set.settings.invalid_body, InvalidBody::Block);
        assert_eq!(
            load("rules: []\n").unwrap().settings.invalid_body,
            InvalidBody::Block
        );
        let err = load("settings:\n  invalid_body: pass\nrules: []\n").unwrap_err();
        assert!(
            err.to_string().contains("unknown invalid_body `pass`"),
            "{err}"
        );
    }

    #[test]
    fn errors_carry_file_line_and_rule() {
        let cases: &[(&str, u32, Option<u32>, &str)] = &[
            ("rules:\n  - id: 5\n    targets: [args]\n    match: {rx: '(a'}\n", 2, Some(5), "regex"),
            ("rules:\n  - id: 6\n    targets: [nope]\n    match: {rx: 'a'}\n", 2, Some(6), "unknown collection"),
            ("rules:\n  - id: 7\n    targets: [args]\n    transforms: [frobnicate]\n    match: {rx: 'a'}\n", 2, Some(7), "frobnicate"),
            ("rules:\n  - id: 8\n    bogus: 1\n", 3, None, "bogus"),
            ("rules:\n  - message: hi\n", 2, None, "needs an `id`"),
            ("rules:\n  - id: 9\n    action: explode\n", 2, Some(9), "unknown action"),
            ("rules: [\n", 1, None, "unclosed"),
        ];
        for &(text, line, id, needle) in cases {
            let err = load(text).unwrap_err();
            let loc = err.location().expect("errors from files have a location");
            assert_eq!(loc.line, line, "{err}");
            assert_eq!(err.rule_id(), id, "{err}");
            assert!(err.to_string().contains(needle), "{err}");
            assert!(err.to_string().starts_with("t.yaml:"), "{err}");
        }
    }

    #[test]
    fn full_rule_lowers() {
        let set = load(
            r#"
rules:
  - id: 10
    phase: headers
    severity: warning
    paranoia: 2
    tags: [attack-x]
    targets: [args, request_headers:user-agent]
    except: [args:password]
    transforms: [none, lowercase]
    match: {pm: [foo, bar]}
    and:
      - targets: [request_method]
        match: {within: [GET, POST]}
    setvar: ['tx.seen=+1']
    skip_after: END
    tests:
      match: ['/?a=foo', {method: POST, uri: /x, headers: ['User-Agent: bar'], body: 'x=1'}]
      no_match: ['/?a=baz']
  - marker: END
"#,
        )
        .unwrap();
        assert_eq!(set.items.len(), 2);
        let rule = set.rules().next().unwrap();
        assert_eq!(rule.phase, Phase::Headers);
        assert_eq!(rule.conditions.len(), 2);
        assert_eq!(rule.conditions[0].targets[0].exclude.len(), 1);
        assert_eq!(rule.conditions[0].transforms, vec![Transform::Lowercase]);
        assert_eq!(rule.flow, Flow::SkipAfter("END".into()));
        assert_eq!(rule.tests.matching.len(), 2);
        assert_eq!(rule.tests.matching[1].headers[0].0, "User-Agent");
        assert_eq!(rule.tests.matching[0].source.line, 18);
    }
}
