//! Running rules against a request: the part every evaluator shares.
//!
//! Rule evaluation is split along one seam. The *driver* in this module walks the rules in
//! order — phases, chains, `setvar`, `ctl`, `skip_after`, anomaly scoring, early exit — and
//! enumerates the values each target selects. How one value is transformed and tested is asked
//! of an [`Evaluate`] implementation:
//!
//! - the compiled [`Program`](crate::Program) shares transformed values between rules and skips
//!   rules whose literals an Aho-Corasick scan did not find;
//! - the [`Reference`](crate::reference::Reference) evaluator transforms every value from
//!   scratch for every rule and runs every operator.
//!
//! Both must reach identical verdicts; the differential tests hold them to it.

mod names;
pub(crate) mod values;

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use regex_automata::meta::Regex;

use crate::error::{Error, ErrorKind};
use crate::operator::{expand, expand_borrowed, Evidence, Matcher};
use crate::request::Request;
use crate::rules::{
    Collection, Ctl, Disruptive, Effect, Exclusion, Flow, InvalidBody, Item, MacroPart, Mode,
    Phase, Rule, RuleRef, RuleSet, Selector, SetOp, Settings,
};
use crate::transform::Transform;
use crate::verdict::{Action, MatchedValue, RuleMatch, Verdict};
use values::{RequestData, Value};

/// A request's TX variables. The names are the client's too (CRS 920450 stores every header
/// name), hashed with a per-process random seed, as the memos are.
type TxVars = HashMap<Vec<u8>, Vec<u8>, foldhash::fast::RandomState>;

/// Most values recorded per matching rule in a verdict; a rule matching every argument of a
/// large form should not make the verdict as large as the form.
const MAX_VALUES_PER_MATCH: usize = 8;

/// The rules of a ruleset in evaluation order, with everything both evaluators need:
/// compiled operators, compiled selector regexes, resolved markers.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Rules of the headers phase, then of the body phase, each in file order.
    pub(crate) rules: Vec<Rule>,
    /// One matcher per condition of each rule.
    pub(crate) matchers: Vec<Vec<Matcher>>,
    /// Index ranges of `rules` for each phase.
    phases: [(Phase, Range<usize>); 2],
    /// For rules with `skip_after`: the index to continue at.
    jumps: Vec<Option<usize>>,
    /// Every regex selector of targets, exclusions and `ctl`, compiled once; a
    /// [`SelectorId::Regex`] indexes it.
    selector_regexes: Vec<Regex>,
    /// By the same index: the names the regex lists, when it is a list of names.
    selector_names: Vec<Option<names::NameList>>,
    /// The index of each regex selector in `selector_regexes`, by its source.
    selector_index: HashMap<String, u32>,
    /// By rule, condition and target: the target's selector and its exclusions, resolved.
    target_selectors: Vec<Vec<Vec<TargetSelectors>>>,
    /// The rules every [`RuleRef`] of an exclusion or `ctl` names, resolved once.
    resolved: HashMap<RuleRef, Vec<usize>>,
    /// What the exclusions that apply to every request remove, applied once.
    everywhere: Removals,
    /// Compiled scope regexes of exclusions, by exclusion index.
    scope_regexes: Vec<Option<Regex>>,
    pub(crate) settings: Settings,
    exclusions: Vec<Exclusion>,
    /// Transaction variables every request starts with: a copy of this map.
    tx_seed: TxVars,
}

impl Plan {
    /// Orders the rules, drops those above the paranoia level, compiles operators and selectors.
    pub(crate) fn new(set: &RuleSet) -> Result<Plan, Error> {
        let settings = set.settings.clone();
        // Every broken rule is reported, not the first alone: the first error carries the
        // others (`Error::also`), and `waf rules check` lists them all.
        let mut errors = Vec::new();
        let mut seen = HashMap::new();
        for rule in set.rules() {
            if let Some(first) = seen.insert(rule.id, rule.source.clone()) {
                errors.push(rule_error(
                    rule,
                    format!("duplicate rule id (first defined at {first})"),
                ));
            }
        }
        let mut rules = Vec::new();
        let mut phases = [(Phase::Headers, 0..0), (Phase::Body, 0..0)];
        // Marker positions per phase: the index of the first rule after the marker.
        let mut markers: Vec<HashMap<&str, usize>> = vec![HashMap::new(), HashMap::new()];
        for (p, (phase, range)) in phases.iter_mut().enumerate() {
            range.start = rules.len();
            for item in &set.items {
                match item {
                    Item::Rule(rule)
                        if rule.phase == *phase
                            && rule.paranoia.unwrap_or(1) <= settings.paranoia =>
                    {
                        rules.push((**rule).clone());
                    }
                    Item::Marker { name, .. } => {
                        markers[p].insert(name.as_str(), rules.len());
                    }
                    _ => {}
                }
            }
            range.end = rules.len();
        }
        let mut jumps = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            let jump = match &rule.flow {
                Flow::SkipAfter(name) => {
                    let p = usize::from(rule.phase == Phase::Body);
                    match markers[p].get(name.as_str()) {
                        Some(&at) if at > i => Some(at),
                        Some(_) => {
                            errors.push(rule_error(
                                rule,
                                format!("skip_after `{name}`: the marker comes before the rule"),
                            ));
                            None
                        }
                        None if set
                            .items
                            .iter()
                            .any(|it| matches!(it, Item::Marker { name: n, .. } if n == name)) =>
                        {
                            // The marker exists but no rule of this phase follows it.
                            Some(phases[p].1.end)
                        }
                        None => {
                            errors.push(rule_error(
                                rule,
                                format!("skip_after names unknown marker `{name}`"),
                            ));
                            None
                        }
                    }
                }
                _ => None,
            };
            jumps.push(jump);
        }
        let mut matchers = Vec::with_capacity(rules.len());
        let mut selector_index: HashMap<String, u32> = HashMap::new();
        let mut selector_regexes = Vec::new();
        let mut selector_names = Vec::new();
        let mut add_selector = |s: &Selector| -> Result<SelectorId, String> {
            Ok(match s {
                Selector::All => SelectorId::All,
                Selector::Name(n) => SelectorId::Name(n.as_bytes().to_ascii_lowercase().into()),
                Selector::Regex(r) => match selector_index.get(r) {
                    Some(&id) => SelectorId::Regex(id),
                    None => {
                        let re = crate::operator::build_regex(&format!("(?i){r}"))
                            .map_err(|e| format!("selector /{r}/: {e}"))?;
                        let id = selector_regexes.len() as u32;
                        selector_regexes.push(re);
                        selector_names.push(names::NameList::parse(r));
                        selector_index.insert(r.clone(), id);
                        SelectorId::Regex(id)
                    }
                },
            })
        };
        let mut target_selectors = Vec::with_capacity(rules.len());
        for rule in &rules {
            let fail = |m: String| rule_error(rule, m);
            // A rule's first error is reported; its other conditions are not compiled.
            let mut compile_rule = || -> Result<_, Error> {
                let mut ms = Vec::with_capacity(rule.conditions.len());
                let mut rule_selectors = Vec::with_capacity(rule.conditions.len());
                for c in &rule.conditions {
                    ms.push(Matcher::new(&c.operator).map_err(|e| fail(e.to_string()))?);
                    let mut cond_selectors = Vec::with_capacity(c.targets.len());
                    for t in &c.targets {
                        let selector = add_selector(&t.selector).map_err(fail)?;
                        let exclude = t
                            .exclude
                            .iter()
                            .map(&mut add_selector)
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(fail)?;
                        cond_selectors.push(TargetSelectors { selector, exclude });
                    }
                    rule_selectors.push(cond_selectors);
                }
                let condition_effects = rule.conditions.iter().flat_map(|c| &c.effects);
                for e in rule.effects.iter().chain(condition_effects) {
                    if let Effect::Ctl(Ctl::RemoveTarget { selector, .. }) = e {
                        add_selector(selector).map_err(fail)?;
                    }
                }
                Ok((ms, rule_selectors))
            };
            match compile_rule() {
                Ok((ms, rule_selectors)) => {
                    matchers.push(ms);
                    target_selectors.push(rule_selectors);
                }
                Err(e) => errors.push(e),
            }
        }
        if let Some(e) = Error::gather(errors) {
            return Err(e);
        }
        // Every rule reference, resolved to rule indices once: exclusions apply to every
        // request, and a sign-in exclusion names its rules by tag.
        let mut refs: Vec<RuleRef> = Vec::new();
        for rule in &rules {
            let condition_effects = rule.conditions.iter().flat_map(|c| &c.effects);
            for e in rule.effects.iter().chain(condition_effects) {
                match e {
                    Effect::Ctl(Ctl::RemoveRules(r)) => refs.push(r.clone()),
                    Effect::Ctl(Ctl::RemoveTarget { rules, .. }) => refs.push(rules.clone()),
                    _ => {}
                }
            }
        }
        for ex in &set.exclusions {
            refs.extend(ex.remove_rules.iter().map(|r| RuleRef::Id(*r)));
            refs.extend(ex.remove_tags.iter().map(|t| RuleRef::Tag(t.clone())));
            refs.extend(
                ex.remove_targets
                    .iter()
                    .flat_map(|rt| rt.rules.iter().cloned()),
            );
        }
        let mut resolved = HashMap::new();
        for r in refs {
            if resolved.contains_key(&r) {
                continue;
            }
            let indices = rules
                .iter()
                .enumerate()
                .filter(|(_, rule)| match &r {
                    RuleRef::Id(range) => range.contains(rule.id),
                    RuleRef::Tag(tag) => rule.tags.iter().any(|t| t == tag),
                })
                .map(|(i, _)| i)
                .collect();
            resolved.insert(r, indices);
        }
        let mut scope_regexes = Vec::new();
        for ex in &set.exclusions {
            for rt in &ex.remove_targets {
                for (_, s) in &rt.targets {
                    add_selector(s).map_err(|m| Error::new(ErrorKind::Rule, m))?;
                }
            }
            scope_regexes.push(match &ex.scope.path_regex {
                Some(r) => Some(
                    crate::operator::build_regex(r)
                        .map_err(|e| Error::new(ErrorKind::Rule, format!("path_regex: {e}")))?,
                ),
                None => None,
            });
        }
        // The OWASP CRS reads its paranoia level and blocking threshold from these TX variables
        // (and sets them only when unset), so a SecLang ruleset follows the site's settings.
        // Rulesets that never look at TX skip the work.
        let reads_tx = rules.iter().any(|r| {
            r.conditions
                .iter()
                .any(|c| c.targets.iter().any(|t| t.collection == Collection::Tx))
        });
        let mut tx_seed = TxVars::default();
        if reads_tx {
            tx_seed.insert(
                b"paranoia_level".to_vec(),
                settings.paranoia.to_string().into_bytes(),
            );
            tx_seed.insert(
                b"inbound_anomaly_score_threshold".to_vec(),
                settings.inbound_threshold.to_string().into_bytes(),
            );
        }
        for (k, v) in &settings.tx_defaults {
            tx_seed.insert(k.as_bytes().to_ascii_lowercase(), v.clone().into_bytes());
        }
        let rule_count = rules.len();
        let mut plan = Plan {
            everywhere: Removals::default(),
            tx_seed,
            selector_regexes,
            selector_names,
            selector_index,
            target_selectors,
            resolved,
            rules,
            matchers,
            phases,
            jumps,
            scope_regexes,
            settings,
            exclusions: set.exclusions.clone(),
        };
        let mut everywhere = Removals::none(rule_count);
        for ex in plan.exclusions.iter().filter(|ex| ex.scope.is_everywhere()) {
            apply_exclusion(&plan, ex, &mut everywhere);
        }
        plan.everywhere = everywhere;
        Ok(plan)
    }

    fn selector_matches(&self, selector: &SelectorId, name: &[u8]) -> bool {
        match selector {
            SelectorId::All => true,
            SelectorId::Name(n) => n.eq_ignore_ascii_case(name),
            SelectorId::Regex(i) => match self.selector_names.get(*i as usize) {
                Some(Some(list)) => list.matches(name),
                _ => self
                    .selector_regexes
                    .get(*i as usize)
                    .is_some_and(|re| re.is_match(name)),
            },
        }
    }

    /// A selector of a `ctl` or an exclusion, resolved; every regex among them was compiled
    /// with the plan (`None` for one that was not, which selects nothing).
    fn selector_id(&self, selector: &Selector) -> Option<SelectorId> {
        Some(match selector {
            Selector::All => SelectorId::All,
            Selector::Name(n) => SelectorId::Name(n.as_bytes().to_ascii_lowercase().into()),
            Selector::Regex(r) => SelectorId::Regex(*self.selector_index.get(r)?),
        })
    }

    /// Rule indices a [`RuleRef`] names.
    fn resolve(&self, r: &RuleRef) -> &[usize] {
        self.resolved.get(r).map_or(&[], Vec::as_slice)
    }
}

/// A [`Selector`] resolved against a plan: a regex selector is an index, so that testing a
/// name against it costs no lookup by the regex's text. Every value every rule visits is
/// checked against its target's selectors and exclusions.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SelectorId {
    All,
    Name(Box<[u8]>),
    Regex(u32),
}

/// A target's selector and its exclusions, resolved.
#[derive(Debug)]
struct TargetSelectors {
    selector: SelectorId,
    exclude: Vec<SelectorId>,
}

/// One value to test against one condition.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probe<'a> {
    /// Index of the rule in the plan.
    pub(crate) rule: usize,
    /// Index of the condition in the rule.
    pub(crate) cond: usize,
    /// The untransformed value.
    pub(crate) value: &'a [u8],
    /// The value's stable slot in the request; `None` for values of dynamic collections, which
    /// change while rules run and must not be cached.
    pub(crate) slot: Option<u32>,
}

/// The values that can make a condition hold, as far as an evaluator knows before testing.
#[derive(Debug)]
pub(crate) enum Candidates {
    /// No value can.
    None,
    /// Any value may.
    All,
    /// Only the values in these slots may (sorted, no duplicates).
    Slots(Vec<u32>),
}

/// Whether a member of a collection (by name; `b""` for a scalar) is removed from the rule
/// being evaluated, for this request.
pub(crate) type Removed<'a> = dyn Fn(Collection, &[u8]) -> bool + 'a;

/// How an evaluator tests one value against one condition.
pub(crate) trait Evaluate {
    /// Per-request scratch state (the compiled program's transformation cache).
    type Cache: Default;

    /// The plan the evaluator runs.
    fn plan(&self) -> &Plan;

    /// Scratch state for one request. By default a new one.
    fn take_cache(&self) -> Self::Cache {
        Self::Cache::default()
    }

    /// Hands back a request's scratch state once the request is done, for the next request
    /// to reuse its allocations. By default dropped.
    fn give_back(&self, _cache: Self::Cache) {}

    /// Which values of condition `cond` of rule `rule` can make it hold in this request.
    /// [`Candidates::None`] lets the driver skip the condition without enumerating a single
    /// value, [`Candidates::Slots`] lets it skip every value not listed; either must only be
    /// answered when testing the skipped values would have found no match. The reference
    /// evaluator always answers [`Candidates::All`].
    ///
    /// `removed`, when the request removed any target from the rule, says whether a member of
    /// a collection (by name; `b""` for a scalar) is one: the driver visits none of those, so
    /// they need not be looked at to answer.
    fn candidates(
        &self,
        _cache: &mut Self::Cache,
        _data: &RequestData<'_>,
        _rule: usize,
        _cond: usize,
        _removed: Option<&Removed<'_>>,
    ) -> Candidates {
        Candidates::All
    }

    /// Transforms the probed value for its condition and tests it. Returns the transformed
    /// value that matched, how many transformations had been applied to it, and the evidence.
    fn test(
        &self,
        cache: &mut Self::Cache,
        data: &RequestData<'_>,
        probe: Probe<'_>,
        lookup: &mut crate::operator::Lookup<'_>,
    ) -> Option<(Vec<u8>, usize, Evidence)>;
}

/// Applies `transforms` to `value` one stage at a time, testing after each stage when
/// `multi_match` (the untransformed value counts as a stage), else only at the end. This is the
/// plain definition the compiled program's cache must agree with.
pub(crate) fn test_stages(
    transforms: &[Transform],
    multi_match: bool,
    value: &[u8],
    mut test: impl FnMut(&[u8]) -> Option<Evidence>,
) -> Option<(Vec<u8>, usize, Evidence)> {
    // Borrowed until a transformation changes it: most dynamic values (TX variables) have
    // none, and most that do are not changed by them.
    let mut current = std::borrow::Cow::Borrowed(value);
    if multi_match || transforms.is_empty() {
        if let Some(e) = test(&current) {
            return Some((current.into_owned(), 0, e));
        }
    }
    for (i, t) in transforms.iter().enumerate() {
        if let std::borrow::Cow::Owned(changed) = t.apply(&current) {
            current = std::borrow::Cow::Owned(changed);
        }
        if multi_match || i + 1 == transforms.len() {
            if let Some(e) = test(&current) {
                return Some((current.into_owned(), i + 1, e));
            }
        }
    }
    None
}

/// One value that made a condition hold.
#[derive(Clone, Debug)]
struct Hit {
    collection: Collection,
    name: Vec<u8>,
    value: Vec<u8>,
    stages: usize,
    cond: usize,
    evidence: Evidence,
}

/// The state of one request's inspection.
struct TxState<'r> {
    data: RequestData<'r>,
    /// By lowercase name. Hashed: the CRS reads a variable by name over two hundred times a
    /// request (a sorted map compared names a dozen times per read); the rare regex selector
    /// (`TX:/^header_name_/`) sorts what it selects, to visit it in name order.
    tx: TxVars,
    matched: Vec<Hit>,
    /// Rules and targets removed for this request (besides [`Plan::everywhere`]).
    removed: Removals,
    mode: Mode,
    verdict: Verdict,
    decided: bool,
}

impl TxState<'_> {
    /// Whether `name` of `collection` is removed from rule `rule` for this request, by an
    /// exclusion that applies everywhere or by one this request matched (or a `ctl`).
    fn removes(&self, plan: &Plan, rule: usize, collection: Collection, name: &[u8]) -> bool {
        plan.everywhere.removes(plan, rule, collection, name)
            || self.removed.removes(plan, rule, collection, name)
    }

    /// Whether any target is removed from rule `rule` for this request.
    fn removes_any(&self, plan: &Plan, rule: usize) -> bool {
        plan.everywhere.removes_any(rule) || self.removed.removes_any(rule)
    }
}

/// What the driver reports while it runs, for a cost profile
/// ([`Profile`](crate::profile::Profile)).
///
/// The unit type observes nothing: [`run`] passes `()`, its marks are `()` and its calls are
/// empty, so they compile away and the request path pays nothing for the seam.
pub(crate) trait Observe {
    /// A point in time (or nothing, for `()`).
    type Mark: Copy;

    /// Now.
    fn mark(&mut self) -> Self::Mark;

    /// Rule `rule` was evaluated from `since` until now, its effects and action included when
    /// its conditions held (`matched`).
    fn rule(&mut self, rule: usize, since: Self::Mark, matched: bool);

    /// Rule `rule` tests one more value (one that its gates left as a candidate).
    fn value_tested(&mut self, rule: usize);

    /// Rule `rule` asked, from `since` until now, which values may make a condition hold:
    /// the transformations and literal scans that answer it (part of the rule's time).
    fn gates_asked(&mut self, rule: usize, since: Self::Mark);

    /// The body was parsed from `since` until now.
    fn body_parsed(&mut self, since: Self::Mark);

    /// The whole inspection ran from `since` until now.
    fn request_done(&mut self, since: Self::Mark);
}

impl Observe for () {
    type Mark = ();
    fn mark(&mut self) {}
    fn rule(&mut self, _rule: usize, _since: (), _matched: bool) {}
    fn value_tested(&mut self, _rule: usize) {}
    fn gates_asked(&mut self, _rule: usize, _since: ()) {}
    fn body_parsed(&mut self, _since: ()) {}
    fn request_done(&mut self, _since: ()) {}
}

/// Runs a plan on a request.
pub(crate) fn run<E: Evaluate>(eval: &E, request: &Request) -> Verdict {
    run_observed(eval, request, &mut ())
}

/// [`run`], reporting to `observer` what each rule cost.
pub(crate) fn run_observed<E: Evaluate, O: Observe>(
    eval: &E,
    request: &Request,
    observer: &mut O,
) -> Verdict {
    let started = observer.mark();
    let plan = eval.plan();
    let settings = &plan.settings;
    let mut state = TxState {
        data: RequestData::new(request, &settings.parse_limits),
        tx: plan.tx_seed.clone(),
        matched: Vec::new(),
        removed: Removals {
            rules: plan.everywhere.rules.clone(),
            // Grown when a target is removed: most requests remove none.
            targets: Vec::new(),
        },
        mode: settings.mode,
        verdict: Verdict {
            enforced: settings.mode == Mode::Block,
            ..Verdict::default()
        },
        decided: false,
    };
    if state.mode == Mode::Off {
        observer.request_done(started);
        return state.verdict;
    }
    for (i, ex) in plan.exclusions.iter().enumerate() {
        // Exclusions that apply everywhere are in `plan.everywhere` already.
        if !ex.scope.is_everywhere() && scope_matches(plan, i, ex, request, &state.data) {
            apply_exclusion(plan, ex, &mut state.removed);
        }
    }
    let mut cache = eval.take_cache();
    'phases: for (phase, range) in plan.phases.iter().cloned() {
        if phase == Phase::Body {
            let since = observer.mark();
            state.data.parse_body(&settings.parse_limits);
            observer.body_parsed(since);
            // A request the parsers read only in part (past a limit) is as opaque to the rules
            // as a body that does not parse: what was dropped was never inspected.
            let limit_hit = state
                .data
                .limit_hit()
                .filter(|_| state.data.body_error().is_none());
            if let Some(error) = state.data.body_error().or(limit_hit) {
                state.verdict.body_error = Some(error.to_string());
                state.verdict.parse_limit_hit = limit_hit.is_some();
                if settings.invalid_body == InvalidBody::Block && reject_invalid_body(&mut state) {
                    break 'phases;
                }
            }
        }
        let mut i = range.start;
        while i < range.end {
            if state.removed.rules.get(i).copied().unwrap_or(true) {
                i += 1;
                continue;
            }
            let rule = &plan.rules[i];
            let since = observer.mark();
            if !rule_matches(eval, &mut cache, i, &mut state, observer) {
                observer.rule(i, since, false);
                i += 1;
                continue;
            }
            let stop = act(plan, i, &mut state);
            observer.rule(i, since, true);
            if stop {
                break 'phases;
            }
            i = match (&rule.flow, plan.jumps.get(i).copied().flatten()) {
                (Flow::SkipAfter(_), Some(at)) => at,
                (Flow::Skip(n), _) => i + 1 + *n as usize,
                _ => i + 1,
            };
        }
    }
    eval.give_back(cache);
    observer.request_done(started);
    state.verdict
}

/// An error about one rule, at its place in its file.
fn rule_error(rule: &Rule, message: String) -> Error {
    Error::new(ErrorKind::Rule, message)
        .at(rule.source.clone())
        .rule(rule.id)
}

fn scope_matches(
    plan: &Plan,
    index: usize,
    ex: &Exclusion,
    request: &Request,
    data: &RequestData<'_>,
) -> bool {
    let scope = &ex.scope;
    if !scope.methods.is_empty()
        && !scope
            .methods
            .iter()
            .any(|m| m.as_bytes().eq_ignore_ascii_case(request.method()))
    {
        return false;
    }
    if !scope.hosts.is_empty() {
        let host = request.headers().get("host").unwrap_or_default();
        let host = strip_port(host);
        let ok = scope.hosts.iter().any(|h| match h.strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len() + 1
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
                    && host[host.len() - suffix.len() - 1] == b'.'
            }
            None => h.as_bytes().eq_ignore_ascii_case(host),
        });
        if !ok {
            return false;
        }
    }
    let mut decoded: &[u8] = b"";
    data.for_each(Collection::RequestFilename, |v| decoded = v.value);
    // Normalised, so `/healthz/../authorize` is not mistaken for `/healthz`.
    let normalized = Transform::NormalizePath.apply(decoded);
    let path: &[u8] = &normalized;
    if !scope.path_prefixes.is_empty()
        && !scope
            .path_prefixes
            .iter()
            .any(|p| path.starts_with(p.as_bytes()))
    {
        return false;
    }
    if let Some(Some(re)) = plan.scope_regexes.get(index) {
        if !re.is_match(path) {
            return false;
        }
    }
    true
}

fn strip_port(host: &[u8]) -> &[u8] {
    if host.starts_with(b"[") {
        // [v6]:port
        return match host.iter().position(|&b| b == b']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(colon) => &host[..colon],
        None => host,
    }
}

fn apply_exclusion(plan: &Plan, ex: &Exclusion, removed: &mut Removals) {
    for range in &ex.remove_rules {
        removed.remove_rules(plan, &RuleRef::Id(*range));
    }
    for tag in &ex.remove_tags {
        removed.remove_rules(plan, &RuleRef::Tag(tag.clone()));
    }
    for rt in &ex.remove_targets {
        for rules in &rt.rules {
            for (collection, selector) in &rt.targets {
                removed.remove_target(plan, rules, *collection, selector);
            }
        }
    }
}

/// Rules and targets taken out of inspection by exclusions and `ctl`.
#[derive(Debug, Default)]
struct Removals {
    /// By rule index: whether the rule is removed.
    rules: Vec<bool>,
    /// By rule index: the targets removed from it. Indexed by rule because every value every
    /// rule visits is checked against its list; as long as the last rule with any.
    targets: Vec<Vec<(Collection, SelectorId)>>,
}

impl Removals {
    fn none(rules: usize) -> Removals {
        Removals {
            rules: vec![false; rules],
            targets: vec![Vec::new(); rules],
        }
    }

    fn remove_rules(&mut self, plan: &Plan, r: &RuleRef) {
        for &i in plan.resolve(r) {
            if let Some(slot) = self.rules.get_mut(i) {
                *slot = true;
            }
        }
    }

    fn remove_target(
        &mut self,
        plan: &Plan,
        rules: &RuleRef,
        collection: Collection,
        selector: &Selector,
    ) {
        let Some(selector) = plan.selector_id(selector) else {
            return;
        };
        for &i in plan.resolve(rules) {
            if self.targets.len() <= i {
                self.targets.resize_with(i + 1, Vec::new);
            }
            if let Some(removed) = self.targets.get_mut(i) {
                let entry = (collection, selector.clone());
                if !removed.contains(&entry) {
                    removed.push(entry);
                }
            }
        }
    }

    /// Whether any target is removed from rule `rule`.
    fn removes_any(&self, rule: usize) -> bool {
        self.targets
            .get(rule)
            .is_some_and(|removed| !removed.is_empty())
    }

    /// Whether `name` of `collection` is removed from rule `rule`.
    fn removes(&self, plan: &Plan, rule: usize, collection: Collection, name: &[u8]) -> bool {
        self.targets.get(rule).is_some_and(|removed| {
            removed
                .iter()
                .any(|(c, s)| *c == collection && plan.selector_matches(s, name))
        })
    }
}

fn apply_ctl(plan: &Plan, ctl: &Ctl, state: &mut TxState<'_>) {
    match ctl {
        Ctl::RemoveRules(r) => state.removed.remove_rules(plan, r),
        Ctl::RemoveTarget {
            rules,
            collection,
            selector,
        } => state
            .removed
            .remove_target(plan, rules, *collection, selector),
        Ctl::EngineMode(mode) => {
            state.mode = *mode;
            state.verdict.enforced = *mode == Mode::Block;
        }
    }
}

/// Evaluates every condition of rule `i`; on success `state.matched` holds the hits.
fn rule_matches<E: Evaluate, O: Observe>(
    eval: &E,
    cache: &mut E::Cache,
    i: usize,
    state: &mut TxState<'_>,
    observer: &mut O,
) -> bool {
    let plan = eval.plan();
    let rule = &plan.rules[i];
    state.matched.clear();
    // The condition itself is read only once its candidates are known: most rules end at
    // their first condition's closed gate, and the compiled program knows that without it.
    for c in 0..rule.conditions.len() {
        let st: &TxState<'_> = state;
        let removed = |collection: Collection, name: &[u8]| st.removes(plan, i, collection, name);
        let removed: Option<&Removed<'_>> = st.removes_any(plan, i).then_some(&removed);
        let since = observer.mark();
        let candidates = eval.candidates(cache, &state.data, i, c, removed);
        observer.gates_asked(i, since);
        if matches!(candidates, Candidates::None) {
            return false;
        }
        let Some(cond) = rule.conditions.get(c) else {
            return false;
        };
        let mut hits = Vec::new();
        for (t, target) in cond.targets.iter().enumerate() {
            if target.count {
                // A count is computed: its value exists nowhere to borrow, and is not cached.
                let mut n = 0usize;
                for_each_selected(plan, state, (i, c, t), target, None, |_| n += 1);
                let value = n.to_string().into_bytes();
                let probe = Probe {
                    rule: i,
                    cond: c,
                    value: &value,
                    slot: None,
                };
                observer.value_tested(i);
                hits.extend(test_value(
                    eval,
                    cache,
                    state,
                    probe,
                    target.collection,
                    b"",
                ));
                continue;
            }
            if target.collection.is_dynamic() {
                // TX and MATCHED_VARS change while rules run: tested in place, never cached
                // (no slot).
                let st: &TxState<'_> = state;
                for_each_selected(plan, st, (i, c, t), target, None, |v| {
                    let probe = Probe {
                        rule: i,
                        cond: c,
                        value: v.value,
                        slot: None,
                    };
                    observer.value_tested(i);
                    hits.extend(test_value(
                        eval,
                        cache,
                        st,
                        probe,
                        target.collection,
                        v.name,
                    ));
                });
                continue;
            }
            let st: &TxState<'_> = state;
            let only = match &candidates {
                Candidates::Slots(slots) => Some(slots.as_slice()),
                _ => None,
            };
            for_each_selected(plan, st, (i, c, t), target, only, |v| {
                let probe = Probe {
                    rule: i,
                    cond: c,
                    value: v.value,
                    slot: Some(v.slot),
                };
                observer.value_tested(i);
                hits.extend(test_value(
                    eval,
                    cache,
                    st,
                    probe,
                    target.collection,
                    v.name,
                ));
            });
        }
        if hits.is_empty() {
            return false;
        }
        if cond.effects.is_empty() {
            if cond.capture {
                if let Some(first) = hits.first() {
                    store_captures(first, state);
                }
            }
            state.matched.extend(hits);
            continue;
        }
        // ModSecurity runs a rule's setvars once per matching value, with that value as
        // MATCHED_VAR and its captures in TX:0-9: CRS 920450 records every header name this
        // way (`setvar:tx.header_name_%{tx.0}`) for its chained rule to check.
        for hit in hits {
            if cond.capture {
                store_captures(&hit, state);
            }
            state.matched.push(hit);
            for effect in &cond.effects {
                run_effect(plan, i, effect, state);
            }
        }
    }
    true
}

fn store_captures(hit: &Hit, state: &mut TxState<'_>) {
    const NAMES: [&[u8]; 10] = [b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9"];
    for (name, cap) in NAMES.iter().zip(&hit.evidence.captures) {
        // A rule capturing value after value (CRS 920450, a header name each) overwrites TX:0
        // in place.
        match state.tx.get_mut(*name) {
            Some(v) => {
                v.clear();
                v.extend_from_slice(cap);
            }
            None => {
                state.tx.insert(name.to_vec(), cap.clone());
            }
        }
    }
}

/// Tests one value; a [`Hit`] when the condition holds for it.
fn test_value<E: Evaluate>(
    eval: &E,
    cache: &mut E::Cache,
    state: &TxState<'_>,
    probe: Probe<'_>,
    collection: Collection,
    name: &[u8],
) -> Option<Hit> {
    let plan = eval.plan();
    let mut lookup = |p: &MacroPart| lookup(plan, state, probe.rule, p);
    let (value, stages, evidence) = eval.test(cache, &state.data, probe, &mut lookup)?;
    Some(Hit {
        collection,
        name: name.to_vec(),
        value,
        stages,
        cond: probe.cond,
        evidence,
    })
}

/// Calls `f` with each value a target selects for rule `rule`, minus exclusions; with `only`
/// (sorted slots), only with the values in those slots, and without visiting the others: a
/// gated condition lists a few slots, and the selectors and exclusions (regexes over names)
/// are the costlier test.
fn for_each_selected(
    plan: &Plan,
    state: &TxState<'_>,
    (rule, cond, t): (usize, usize, usize),
    target: &crate::rules::Target,
    only: Option<&[u32]>,
    mut f: impl FnMut(Value<'_>),
) {
    let Some(selectors) = plan
        .target_selectors
        .get(rule)
        .and_then(|r| r.get(cond))
        .and_then(|c| c.get(t))
    else {
        return;
    };
    let keep = |name: &[u8]| {
        plan.selector_matches(&selectors.selector, name)
            && !selectors
                .exclude
                .iter()
                .any(|e| plan.selector_matches(e, name))
            && !state.removes(plan, rule, target.collection, name)
    };
    match target.collection {
        // `TX:name`, the common case (the CRS reads TX over two hundred times a request):
        // one lookup instead of a sorted walk over every variable. Names are stored lowercase.
        Collection::Tx if matches!(selectors.selector, SelectorId::Name(_)) => {
            let SelectorId::Name(key) = &selectors.selector else {
                return;
            };
            if let Some((k, v)) = state.tx.get_key_value(&key[..]) {
                if keep(k) {
                    f(Value {
                        slot: 0,
                        name: k,
                        value: v,
                    });
                }
            }
        }
        Collection::Tx => {
            let mut selected: Vec<(&Vec<u8>, &Vec<u8>)> =
                state.tx.iter().filter(|(k, _)| keep(k)).collect();
            selected.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (k, v) in selected {
                f(Value {
                    slot: 0,
                    name: k,
                    value: v,
                });
            }
        }
        Collection::MatchedVar | Collection::MatchedVarName => {
            if let Some(h) = state.matched.last() {
                let name = display_name(h.collection, &h.name);
                let value = if target.collection == Collection::MatchedVar {
                    h.value.clone()
                } else {
                    name.into_bytes()
                };
                f(Value {
                    slot: 0,
                    name: b"",
                    value: &value,
                });
            }
        }
        Collection::MatchedVars | Collection::MatchedVarsNames => {
            for h in &state.matched {
                let name = display_name(h.collection, &h.name);
                let value = if target.collection == Collection::MatchedVars {
                    h.value.clone()
                } else {
                    name.clone().into_bytes()
                };
                if keep(name.as_bytes()) {
                    f(Value {
                        slot: 0,
                        name: name.as_bytes(),
                        value: &value,
                    });
                }
            }
        }
        // Scalars have an empty name: only `Selector::All` exclusions (`except:
        // [request_uri]`, `ctl:ruleRemoveTargetById=1;REQUEST_URI`) remove them.
        c => match only {
            Some(slots) => state.data.for_each_in(c, slots, |v| {
                if keep(v.name) {
                    f(v)
                }
            }),
            None => state.data.for_each(c, |v| {
                if keep(v.name) {
                    f(v)
                }
            }),
        },
    }
}

fn display_name(collection: Collection, name: &[u8]) -> String {
    if name.is_empty() {
        collection.name().to_string()
    } else {
        format!("{}:{}", collection.name(), String::from_utf8_lossy(name))
    }
}

/// Resolves a `%{...}` macro variable, borrowing it where it lives (TX, the last matched
/// value, a request header).
fn lookup<'s>(
    plan: &'s Plan,
    state: &'s TxState<'_>,
    rule: usize,
    part: &MacroPart,
) -> Option<Cow<'s, [u8]>> {
    let MacroPart::Var { collection, key } = part else {
        return None;
    };
    let key = key.as_deref().unwrap_or("");
    match collection.as_str() {
        "tx" => state.tx.get(key.as_bytes()).map(|v| Cow::Borrowed(&v[..])),
        "matched_var" => state.matched.last().map(|h| Cow::Borrowed(&h.value[..])),
        "matched_var_name" => state
            .matched
            .last()
            .map(|h| Cow::Owned(display_name(h.collection, &h.name).into_bytes())),
        "rule" => {
            let r = plan.rules.get(rule)?;
            let text = match key {
                "id" => r.id.to_string().into_bytes(),
                "severity" => r.severity?.name().as_bytes().to_vec(),
                "msg" => r.message.as_ref()?.to_string().into_bytes(),
                _ => return None,
            };
            Some(Cow::Owned(text))
        }
        "request_headers" => state
            .data
            .request()
            .headers()
            .get(key.as_bytes())
            .map(Cow::Borrowed),
        other => {
            let c: Collection = other.parse().ok()?;
            let mut found = None;
            state.data.for_each(c, |v| {
                if found.is_none() && (c.is_scalar() || v.name.eq_ignore_ascii_case(key.as_bytes()))
                {
                    found = Some(v.value.to_vec());
                }
            });
            found.map(Cow::Owned)
        }
    }
}

/// A body its processor could not read blocks the request with 400, as ModSecurity's
/// recommended rule 200002 does at the start of its body phase: the rules about to run would
/// see only what parsing recovered of it. Returns whether evaluation stops here (not in
/// detection only, where the rules still run, to show what they make of it).
fn reject_invalid_body(state: &mut TxState<'_>) -> bool {
    if !state.decided {
        state.verdict.action = Action::Block { status: 400 };
        state.verdict.decided_by = None;
        state.decided = true;
    }
    state.mode == Mode::Block
}

/// Runs a matching rule's effects, records it and applies its action. Returns whether
/// evaluation stops here.
fn act(plan: &Plan, i: usize, state: &mut TxState<'_>) -> bool {
    let rule = &plan.rules[i];
    let settings = &plan.settings;
    for effect in &rule.effects {
        run_effect(plan, i, effect, state);
    }
    let score = match rule.action {
        Disruptive::Block => rule
            .score
            .unwrap_or_else(|| settings.severity_scores.score(rule.severity)),
        _ => 0,
    };
    if rule.log || settings.record_unlogged {
        let record = record_match(plan, i, state, score);
        state.verdict.matches.push(record);
    }
    let mut decision = None;
    match rule.action {
        Disruptive::Block => {
            let category = rule.category.as_deref().unwrap_or("anomaly");
            let total = {
                let v = &mut state.verdict;
                v.anomaly_score = v.anomaly_score.saturating_add(score);
                let c = v.scores.entry(category.to_string()).or_insert(0);
                *c = c.saturating_add(score);
                *c
            };
            let over_category = settings
                .category_thresholds
                .get(category)
                .is_some_and(|&t| total >= t);
            let over_total = settings.inbound_threshold > 0
                && state.verdict.anomaly_score >= settings.inbound_threshold;
            if over_total || over_category {
                decision = Some(Action::Block {
                    status: settings.block_status,
                });
            }
        }
        Disruptive::Deny { status } => {
            decision = Some(Action::Block {
                status: status.unwrap_or(settings.block_status),
            })
        }
        Disruptive::Allow => {
            if !state.decided {
                state.verdict.action = Action::Allow;
                state.verdict.decided_by = Some(rule.id);
                state.decided = true;
            }
            return true;
        }
        Disruptive::Pass => {}
    }
    if state.mode == Mode::Off {
        return true;
    }
    if let Some(action) = decision {
        if !state.decided {
            state.verdict.action = action;
            state.verdict.decided_by = Some(rule.id);
            state.decided = true;
        }
        // Once a blocking decision is certain, nothing later can change it: stop, unless the
        // whole point is to see everything (detection only).
        return state.mode == Mode::Block;
    }
    false
}

/// Runs one `setvar` or `ctl` of rule `i`.
fn run_effect(plan: &Plan, i: usize, effect: &Effect, state: &mut TxState<'_>) {
    match effect {
        Effect::SetVar(sv) => {
            let name = {
                let mut l = |p: &MacroPart| lookup(plan, state, i, p);
                let mut name = expand(&sv.name, &mut l);
                name.make_ascii_lowercase();
                name
            };
            let new = {
                let mut l = |p: &MacroPart| lookup(plan, state, i, p);
                match &sv.op {
                    SetOp::Set(m) => Some(expand(m, &mut l)),
                    SetOp::Add(m) | SetOp::Sub(m) => {
                        let current = state
                            .tx
                            .get(&name)
                            .map_or(0, |v| crate::operator::to_number(v));
                        let delta = crate::operator::to_number(&expand_borrowed(m, &mut l));
                        let n = if matches!(sv.op, SetOp::Add(_)) {
                            current.saturating_add(delta)
                        } else {
                            current.saturating_sub(delta)
                        };
                        Some(n.to_string().into_bytes())
                    }
                    _ => None,
                }
            };
            match new {
                Some(v) => {
                    state.tx.insert(name, v);
                }
                None => {
                    state.tx.remove(&name);
                }
            }
        }
        Effect::Ctl(ctl) => apply_ctl(plan, ctl, state),
    }
}

fn record_match(plan: &Plan, i: usize, state: &TxState<'_>, score: i64) -> RuleMatch {
    let rule = &plan.rules[i];
    let settings = &plan.settings;
    let last_is_sensitive = state
        .matched
        .last()
        .is_some_and(|h| is_sensitive(settings, &h.name));
    // Messages and log data go to logs: a matched password must not leak through
    // `%{MATCHED_VAR}` any more than through the value itself.
    let mut l = |p: &MacroPart| match p {
        MacroPart::Var { collection, .. } if collection == "matched_var" && last_is_sensitive => {
            Some(Cow::Borrowed(&b"[redacted]"[..]))
        }
        _ => lookup(plan, state, i, p),
    };
    let message = rule
        .message
        .as_ref()
        .map(|m| String::from_utf8_lossy(&expand(m, &mut l)).into_owned())
        .unwrap_or_default();
    let logdata = rule
        .logdata
        .as_ref()
        .map(|m| String::from_utf8_lossy(&expand(m, &mut l)).into_owned())
        .unwrap_or_default();
    // The last condition decided the match; show its values first.
    let mut hits: Vec<&Hit> = state.matched.iter().collect();
    hits.sort_by_key(|h| std::cmp::Reverse(h.cond));
    let values = hits
        .into_iter()
        .take(MAX_VALUES_PER_MATCH)
        .map(|h| {
            let cond = &rule.conditions[h.cond];
            let sensitive = is_sensitive(settings, &h.name);
            MatchedValue {
                target: display_name(h.collection, &h.name),
                value: shown(settings, &h.value, sensitive),
                transforms: cond.transforms[..h.stages.min(cond.transforms.len())].to_vec(),
                operator: format!("{}{}", if cond.negated { "!" } else { "" }, cond.operator),
                evidence: shown(settings, &h.evidence.fragment, sensitive),
            }
        })
        .collect();
    RuleMatch {
        rule_id: rule.id,
        message,
        logdata,
        severity: rule.severity,
        tags: rule.tags.clone(),
        phase: rule.phase,
        score,
        values,
    }
}

fn is_sensitive(settings: &Settings, name: &[u8]) -> bool {
    // JSON leaves are dotted (`credentials.password`): the last segment decides.
    let last = name.rsplit(|&b| b == b'.').next().unwrap_or(name);
    settings
        .sensitive_names
        .iter()
        .any(|s| s.as_bytes().eq_ignore_ascii_case(name) || s.as_bytes().eq_ignore_ascii_case(last))
}

fn shown(settings: &Settings, value: &[u8], sensitive: bool) -> String {
    if sensitive {
        return format!("[redacted, {} bytes]", value.len());
    }
    let cut = value.len().min(settings.max_logged_value);
    let mut s = String::from_utf8_lossy(value.get(..cut).unwrap_or(value)).into_owned();
    if cut < value.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::rules::{InvalidBody, Mode};
    use crate::{compile, Action, Request, RuleSet};

    /// A header rule and a body rule, both of which match the request below.
    fn rules() -> RuleSet {
        RuleSet::from_yaml_str(
            "rules:\n\
             \x20 - id: 1\n    phase: headers\n    severity: notice\n    targets: [request_headers:user-agent]\n    match: {contains: curl}\n\
             \x20 - id: 2\n    targets: [request_body]\n    match: {contains: UNION}\n",
            "t.yaml",
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn json_that_is_a_form() -> Request {
        Request::builder()
            .method("POST")
            .header("User-Agent", "curl/8.5")
            .header("Content-Type", "application/json")
            .body("q=' UNION SELECT 1--")
            .build()
    }

    #[test]
    fn an_invalid_body_blocks_with_400_before_the_body_rules_run() {
        let verdict = compile(&rules())
            .unwrap_or_else(|e| panic!("{e}"))
            .inspect(&json_that_is_a_form());
        assert_eq!(verdict.action, Action::Block { status: 400 });
        assert_eq!(verdict.decided_by, None);
        assert!(verdict.body_error.is_some());
        let ids: Vec<u32> = verdict.matches.iter().map(|m| m.rule_id).collect();
        assert_eq!(ids, [1], "the header rule ran, the body rule did not");
    }

    #[test]
    fn in_detection_only_the_body_rules_still_run_on_an_invalid_body() {
        let mut set = rules();
        set.settings.mode = Mode::DetectOnly;
        let verdict = compile(&set)
            .unwrap_or_else(|e| panic!("{e}"))
            .inspect(&json_that_is_a_form());
        assert_eq!(verdict.action, Action::Block { status: 400 });
        assert!(!verdict.is_blocking());
        let ids: Vec<u32> = verdict.matches.iter().map(|m| m.rule_id).collect();
        assert_eq!(ids, [1, 2]);
    }

    #[test]
    fn inspect_lets_the_rules_judge_an_invalid_body() {
        let mut set = rules();
        set.settings.invalid_body = InvalidBody::Inspect;
        let verdict = compile(&set)
            .unwrap_or_else(|e| panic!("{e}"))
            .inspect(&json_that_is_a_form());
        assert_eq!(verdict.action, Action::Block { status: 403 });
        assert_eq!(verdict.decided_by, Some(2));
        assert!(verdict.body_error.is_some());
    }

    /// The bug: every parse limit was a way past the rules. An attack after the thousandth
    /// argument (in the query, a form or a JSON array), after the hundredth multipart part or
    /// nested 33 levels deep in JSON was dropped by the parser, read by no rule, and forwarded.
    #[test]
    fn an_attack_past_a_parse_limit_is_refused_not_forwarded_uninspected() {
        let set = RuleSet::from_yaml_str(
            "rules:\n  - id: 1\n    targets: [args]\n    match: detect_sqli\n",
            "t.yaml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let attack = "x' UNION SELECT password FROM users--";
        let many: Vec<String> = (0..1000).map(|i| format!("a{i}=1")).collect();
        let form = format!("{}&z={}", many.join("&"), attack.replace(' ', "%20"));
        let part = "--X\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n";
        let post = |content_type: &str, body: String| {
            Request::builder()
                .method("POST")
                .header("Content-Type", content_type)
                .body(body)
                .build()
        };
        let past_a_limit = [
            (
                "query",
                Request::builder().uri(format!("/?{form}")).build(),
                "more than 1000 arguments",
            ),
            (
                "form",
                post("application/x-www-form-urlencoded", form.clone()),
                "more than 1000 arguments",
            ),
            (
                "multipart",
                post(
                    "multipart/form-data; boundary=X",
                    format!(
                        "{}--X\r\nContent-Disposition: form-data; name=\"z\"\r\n\r\n{attack}\r\n--X--\r\n",
                        part.repeat(100)
                    ),
                ),
                "more than 100 multipart parts",
            ),
            (
                "deep JSON",
                post(
                    "application/json",
                    format!("{}\"{attack}\"{}", "[".repeat(33), "]".repeat(33)),
                ),
                "JSON nested deeper than 32 levels",
            ),
            (
                // JSON values are arguments too: the argument limit comes first.
                "long JSON",
                post(
                    "application/json",
                    format!("[{}\"{attack}\"]", "1,".repeat(1000)),
                ),
                "more than 1000 arguments",
            ),
        ];
        let program = compile(&set).unwrap_or_else(|e| panic!("{e}"));
        let mut lenient = set.clone();
        lenient.settings.invalid_body = InvalidBody::Inspect;
        let lenient = compile(&lenient).unwrap_or_else(|e| panic!("{e}"));
        for (what, request, message) in &past_a_limit {
            let verdict = program.inspect(request);
            assert_eq!(verdict.action, Action::Block { status: 400 }, "{what}");
            assert!(verdict.parse_limit_hit, "{what}");
            let error = verdict.body_error.unwrap_or_default();
            assert!(error.starts_with(message), "{what}: {error}");
            // `inspect`: the rules judge what was read, and the attack was not.
            let verdict = lenient.inspect(request);
            assert_eq!(verdict.action, Action::Pass, "{what}");
            assert!(verdict.body_error.is_some(), "{what}");
        }
        // One value short of each limit, everything is read: the attack is found.
        let within = [
            Request::builder()
                .uri(format!(
                    "/?{}&z={}",
                    many[1..].join("&"),
                    attack.replace(' ', "%20")
                ))
                .build(),
            post(
                "application/json",
                format!("{}\"{attack}\"{}", "[".repeat(32), "]".repeat(32)),
            ),
        ];
        for request in &within {
            let verdict = program.inspect(request);
            assert_eq!(verdict.action, Action::Block { status: 403 });
            assert_eq!(verdict.body_error, None);
            assert!(!verdict.parse_limit_hit);
        }
    }

    #[test]
    fn a_valid_body_and_an_empty_one_carry_no_body_error() {
        let program = compile(&rules()).unwrap_or_else(|e| panic!("{e}"));
        for body in ["{\"q\": \"x\"}", ""] {
            let request = Request::builder()
                .method("POST")
                .header("Content-Type", "application/json")
                .body(body)
                .build();
            let verdict = program.inspect(&request);
            assert_eq!(verdict.body_error, None, "{body}");
            assert_eq!(verdict.action, Action::Pass, "{body}");
        }
    }
}
