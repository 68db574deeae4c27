//! Where inspection time goes, rule by rule.
//!
//! A [`Profile`] adds up, over any number of requests given to
//! [`Program::inspect_profiled`](crate::Program::inspect_profiled), how often each rule was
//! evaluated, how often it matched and how long it took. It answers the questions a rule
//! author and a performance engineer ask of a slow ruleset: which rules cost the most on this
//! traffic, and is it their operator or their number of values ([`RuleCost::values`])?
//!
//! ```
//! use waf_core::{compile, profile::Profile, Request, RuleSet};
//!
//! let rules = RuleSet::from_yaml_str(r#"
//! rules:
//!   - id: 100
//!     targets: [args]
//!     match: detect_sqli
//!   - id: 200
//!     targets: [request_headers:user-agent]
//!     match: {contains: sqlmap}
//! "#, "r.yaml")?;
//! let program = compile(&rules)?;
//! let mut profile = Profile::new();
//! for q in ["a", "b", "c"] {
//!     let request = Request::builder().uri(format!("/authorize?state={q}")).build();
//!     program.inspect_profiled(&request, &mut profile);
//! }
//! assert_eq!(profile.requests(), 3);
//! let costliest = profile.costliest();
//! assert_eq!(costliest.len(), 2);
//! assert!(costliest[0].time() >= costliest[1].time());
//! for rule in costliest {
//!     assert_eq!(rule.evaluations(), 3);
//!     assert_eq!(rule.matches(), 0);
//! }
//! assert!(profile.total() >= profile.rule_time());
//! # Ok::<(), waf_core::Error>(())
//! ```
//!
//! # Reading a profile
//!
//! * **A rule pays for what it is the first to need.** The compiled program transforms each
//!   value once per transformation chain and scans it for literals once per chain; the first
//!   rule that needs a chain's values pays for the transformations and the scan
//!   ([`RuleCost::scan_time`]), and every later rule with the same chain gets them for free.
//!   Removing a costly rule moves part of its cost to the next rule of its chain rather than
//!   saving all of it.
//! * **Remembered values are cheap.** The program remembers, per thread, what recent values
//!   opened and what libinjection said of them. Profiling one request over and over measures a
//!   request whose every value was seen before, unless
//!   [`forget_memos`](crate::compile::forget_memos) is called between inspections.
//! * **The clock costs something.** Reading it around every rule and around each condition's
//!   scans adds tens of nanoseconds per rule evaluated; [`total`](Profile::total) includes
//!   that, and comparing it with unprofiled inspections shows how much.
//! * **Skipped rules are not evaluated.** A rule jumped over by `skip_after` (the Core Rule
//!   Set's paranoia-level markers), removed by an exclusion or never reached because an
//!   earlier rule decided, has no evaluations and no time.

use std::time::{Duration, Instant};

use crate::engine::Observe;
use crate::rules::{Rule, SourceLocation};

/// What one rule cost over the requests of a [`Profile`].
///
/// ```
/// use waf_core::{compile, profile::Profile, Request, RuleSet};
///
/// let rules = RuleSet::from_yaml_str(
///     "rules:\n  - {id: 7, targets: [request_uri], match: {contains: admin}}\n", "r.yaml")?;
/// let program = compile(&rules)?;
/// let mut profile = Profile::new();
/// program.inspect_profiled(&Request::builder().uri("/admin").build(), &mut profile);
/// let rule = &profile.rules()[0];
/// assert_eq!((rule.id(), rule.evaluations(), rule.matches()), (7, 1, 1));
/// assert_eq!(rule.source().file.as_ref(), "r.yaml");
/// # Ok::<(), waf_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RuleCost {
    id: u32,
    source: SourceLocation,
    evaluations: u64,
    matches: u64,
    values: u64,
    time: Duration,
    scan_time: Duration,
}

impl RuleCost {
    /// The rule's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Where the rule was written.
    pub fn source(&self) -> &SourceLocation {
        &self.source
    }

    /// How many times the rule was evaluated: at most once per request.
    pub fn evaluations(&self) -> u64 {
        self.evaluations
    }

    /// How many of those evaluations matched (every condition held, chains included).
    pub fn matches(&self) -> u64 {
        self.matches
    }

    /// How many values the rule tested, summed over its evaluations: the values its targets
    /// selected that its literal gates left as candidates, each transformed (where no earlier
    /// rule had) and given to the operator. A rule whose gates stayed shut tested none; a
    /// costly rule with many values is costly for its targets, one with few for its operator.
    pub fn values(&self) -> u64 {
        self.values
    }

    /// The time spent evaluating the rule, summed over its evaluations; for a matching rule
    /// its effects (`setvar`, the record in the verdict) and its action included.
    pub fn time(&self) -> Duration {
        self.time
    }

    /// Of [`time`](RuleCost::time), the part spent finding which values may make the rule's
    /// conditions hold: transforming the values of its targets and scanning them for the
    /// literals that gate its operators. The first rule to need a transformation chain's
    /// values pays here for all of them, and the rules after it that use the same chain pay
    /// next to nothing; what is left of a rule's time is its own (its operator on the values
    /// it tested, its effects).
    ///
    /// ```
    /// use waf_core::{compile, profile::Profile, Request, RuleSet};
    ///
    /// let rules = RuleSet::from_yaml_str(r#"
    /// rules:
    ///   - {id: 1, targets: [args], transforms: [url_decode_uni], match: {contains: evil}}
    ///   - {id: 2, targets: [args], transforms: [url_decode_uni], match: {contains: worse}}
    /// "#, "r.yaml")?;
    /// let program = compile(&rules)?;
    /// let mut profile = Profile::new();
    /// let request = Request::builder().uri("/?q=a%20fine%20value").build();
    /// program.inspect_profiled(&request, &mut profile);
    /// for rule in profile.rules() {
    ///     assert!(rule.scan_time() <= rule.time());
    /// }
    /// # Ok::<(), waf_core::Error>(())
    /// ```
    pub fn scan_time(&self) -> Duration {
        self.scan_time
    }
}

/// Per-rule evaluation counts and times, added up over requests.
///
/// A profile belongs to one program: inspecting with another program starts it afresh. See
/// the [module documentation](self) for how to read one.
///
/// ```
/// use waf_core::profile::Profile;
///
/// let profile = Profile::new();
/// assert_eq!(profile.requests(), 0);
/// assert!(profile.costliest().is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// The id of the program profiled (`None` before the first inspection).
    program: Option<u64>,
    rules: Vec<RuleCost>,
    requests: u64,
    total: Duration,
    body_parsing: Duration,
}

impl Profile {
    /// An empty profile.
    pub fn new() -> Profile {
        Profile::default()
    }

    /// How many requests were inspected into the profile.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// The whole time of the profiled inspections: the rules, body parsing, and what the
    /// engine does around them (setting up a request's state, exclusions, handing back
    /// scratch space).
    pub fn total(&self) -> Duration {
        self.total
    }

    /// The time spent parsing bodies (urlencoded, JSON, multipart, XML) for the body phase.
    /// Arguments of the query string and cookies are parsed while the rules first read them,
    /// and count in those rules' time.
    pub fn body_parsing(&self) -> Duration {
        self.body_parsing
    }

    /// The time of every rule together.
    pub fn rule_time(&self) -> Duration {
        self.rules.iter().map(|r| r.time).sum()
    }

    /// Of [`rule_time`](Profile::rule_time), the part spent transforming and scanning values
    /// for the literal gates (see [`RuleCost::scan_time`]).
    pub fn scan_time(&self) -> Duration {
        self.rules.iter().map(|r| r.scan_time).sum()
    }

    /// Every rule of the program, in evaluation order (headers phase, then body phase).
    pub fn rules(&self) -> &[RuleCost] {
        &self.rules
    }

    /// The rules that were evaluated at least once, costliest first (ties in evaluation
    /// order).
    pub fn costliest(&self) -> Vec<&RuleCost> {
        let mut rules: Vec<&RuleCost> = self.rules.iter().filter(|r| r.evaluations > 0).collect();
        rules.sort_by_key(|r| std::cmp::Reverse(r.time));
        rules
    }

    /// The `top` costliest rules as a table for people (every rule evaluated when `top` is
    /// 0): for each, the share of inspections that evaluated it and that it matched, the
    /// values it tested per evaluation, its time per inspection in microseconds and the part
    /// of it spent in scans ([`RuleCost::scan_time`]), its share of the whole, and where it
    /// was written.
    ///
    /// ```
    /// use waf_core::{compile, profile::Profile, Request, RuleSet};
    ///
    /// let rules = RuleSet::from_yaml_str(
    ///     "rules:\n  - {id: 7, targets: [args], match: {contains: admin}}\n", "r.yaml")?;
    /// let program = compile(&rules)?;
    /// let mut profile = Profile::new();
    /// program.inspect_profiled(&Request::builder().uri("/?user=admin").build(), &mut profile);
    /// let table = profile.table(10).to_string();
    /// let lines: Vec<&str> = table.lines().collect();
    /// assert_eq!(lines.len(), 2);
    /// assert!(lines[0].trim_start().starts_with("rule evaluated  matched  values"));
    /// assert!(lines[1].trim_start().starts_with("7      100%     100%     1.0"));
    /// assert!(lines[1].ends_with("r.yaml:2"));
    /// # Ok::<(), waf_core::Error>(())
    /// ```
    pub fn table(&self, top: usize) -> Table<'_> {
        let mut rules = self.costliest();
        if top > 0 {
            rules.truncate(top);
        }
        Table {
            profile: self,
            rules,
        }
    }

    /// Makes the profile one of program `program`, whose rules these are, starting afresh
    /// when it was another's.
    pub(crate) fn prepare(&mut self, program: u64, rules: &[Rule]) {
        if self.program == Some(program) {
            return;
        }
        *self = Profile {
            program: Some(program),
            rules: rules
                .iter()
                .map(|rule| RuleCost {
                    id: rule.id,
                    source: rule.source.clone(),
                    evaluations: 0,
                    matches: 0,
                    values: 0,
                    time: Duration::ZERO,
                    scan_time: Duration::ZERO,
                })
                .collect(),
            ..Profile::default()
        };
    }
}

/// The costliest rules of a [`Profile`], as [`Profile::table`] gives them: a header line, then
/// a line per rule.
#[derive(Debug)]
pub struct Table<'p> {
    profile: &'p Profile,
    rules: Vec<&'p RuleCost>,
}

impl std::fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:>9} {:>9} {:>8} {:>7} {:>9} {:>8} {:>7}  source",
            "rule", "evaluated", "matched", "values", "µs/req", "in scans", "share"
        )?;
        let requests = self.profile.requests.max(1) as f64;
        let total = self.profile.total.as_secs_f64().max(f64::MIN_POSITIVE);
        for cost in &self.rules {
            writeln!(
                f,
                "{:>9} {:>8.0}% {:>7.0}% {:>7.1} {:>9.2} {:>8.2} {:>6.1}%  {}:{}",
                cost.id,
                cost.evaluations as f64 * 100.0 / requests,
                cost.matches as f64 * 100.0 / requests,
                cost.values as f64 / cost.evaluations.max(1) as f64,
                cost.time.as_secs_f64() * 1e6 / requests,
                cost.scan_time.as_secs_f64() * 1e6 / requests,
                cost.time.as_secs_f64() * 100.0 / total,
                cost.source.file,
                cost.source.line,
            )?;
        }
        Ok(())
    }
}

impl Observe for Profile {
    type Mark = Instant;

    fn mark(&mut self) -> Instant {
        Instant::now()
    }

    fn rule(&mut self, rule: usize, since: Instant, matched: bool) {
        let elapsed = since.elapsed();
        if let Some(cost) = self.rules.get_mut(rule) {
            cost.evaluations += 1;
            cost.matches += u64::from(matched);
            cost.time += elapsed;
        }
    }

    fn value_tested(&mut self, rule: usize) {
        if let Some(cost) = self.rules.get_mut(rule) {
            cost.values += 1;
        }
    }

    fn gates_asked(&mut self, rule: usize, since: Instant) {
        let elapsed = since.elapsed();
        if let Some(cost) = self.rules.get_mut(rule) {
            cost.scan_time += elapsed;
        }
    }

    fn body_parsed(&mut self, since: Instant) {
        self.body_parsing += since.elapsed();
    }

    fn request_done(&mut self, since: Instant) {
        self.total += since.elapsed();
        self.requests += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::Profile;
    use crate::{compile, Request, RuleSet};

    const RULES: &str = r#"
settings:
  paranoia: 1
rules:
  - id: 10
    targets: [request_headers:x-skip]
    match: {equals: "yes"}
    action: pass
    skip_after: END
  - id: 20
    targets: [args]
    match: {contains: needle}
    action: pass
  - id: 30
    targets: [args]
    transforms: [lowercase]
    match: {contains: needle}
    action: pass
  - marker: END
  - id: 40
    targets: [request_body]
    match: {contains: needle}
    action: pass
"#;

    fn program() -> crate::Program {
        let set = RuleSet::from_yaml_str(RULES, "profile.yaml").expect("rules load");
        compile(&set).expect("rules compile")
    }

    fn counts(profile: &Profile) -> Vec<(u32, u64, u64)> {
        profile
            .rules()
            .iter()
            .map(|r| (r.id(), r.evaluations(), r.matches()))
            .collect()
    }

    #[test]
    fn counts_evaluations_and_matches_per_rule() {
        let program = program();
        let mut profile = Profile::new();
        let hit = Request::builder().uri("/?q=a%20NEEDLE").build();
        let miss = Request::builder().uri("/?q=hay").build();
        let clean = program.inspect_profiled(&miss, &mut profile);
        let matched = program.inspect_profiled(&hit, &mut profile);
        assert!(!clean.is_blocking() && !matched.is_blocking());
        // 20 is case-sensitive: only 30, which lowercases first, matches the hit.
        assert_eq!(
            counts(&profile),
            [(10, 2, 0), (20, 2, 0), (30, 2, 1), (40, 2, 0)]
        );
        assert_eq!(profile.requests(), 2);
        assert!(profile.total() >= profile.rule_time());
    }

    #[test]
    fn counts_the_values_each_rule_tested() {
        let program = program();
        let mut profile = Profile::new();
        // Three arguments, one holding the literal: rule 20's gate leaves only that one, and
        // rule 30's (lowercased) too. The header lacks rule 10's literal: its gate stays shut.
        let request = Request::builder()
            .uri("/?a=hay&b=needle&c=straw")
            .header("X-Skip", "no")
            .build();
        program.inspect_profiled(&request, &mut profile);
        let values: Vec<(u32, u64)> = profile
            .rules()
            .iter()
            .map(|r| (r.id(), r.values()))
            .collect();
        assert_eq!(values, [(10, 0), (20, 1), (30, 1), (40, 0)]);
    }

    /// Rule 20 is the first to need the arguments scanned: the scan is part of its time, and
    /// no rule spent more in scans than its whole time.
    #[test]
    fn the_first_rule_to_need_a_scan_pays_for_it() {
        let program = program();
        let mut profile = Profile::new();
        let long = "hay".repeat(2000);
        let request = Request::builder()
            .uri(format!("/?a={long}&b={long}x"))
            .build();
        for _ in 0..20 {
            crate::compile::forget_memos();
            program.inspect_profiled(&request, &mut profile);
        }
        let rules = profile.rules();
        assert!(rules.iter().all(|r| r.scan_time() <= r.time()));
        let first = &rules[1];
        assert_eq!(first.id(), 20);
        assert!(first.scan_time() > std::time::Duration::ZERO);
        assert!(profile.scan_time() >= first.scan_time());
        assert!(profile.scan_time() <= profile.rule_time());
    }

    #[test]
    fn skipped_rules_are_not_evaluated() {
        let program = program();
        let mut profile = Profile::new();
        let skip = Request::builder()
            .uri("/?q=needle")
            .header("X-Skip", "yes")
            .build();
        program.inspect_profiled(&skip, &mut profile);
        assert_eq!(
            counts(&profile),
            [(10, 1, 1), (20, 0, 0), (30, 0, 0), (40, 1, 0)]
        );
        let costliest: Vec<u32> = profile.costliest().iter().map(|r| r.id()).collect();
        assert_eq!(costliest.len(), 2);
        assert!(costliest.contains(&10) && costliest.contains(&40));
    }

    #[test]
    fn body_parsing_is_timed_apart_from_the_rules() {
        let program = program();
        let mut profile = Profile::new();
        let body = "q=".to_string() + &"hay+".repeat(4096);
        let post = Request::builder()
            .method("POST")
            .uri("/login")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .build();
        program.inspect_profiled(&post, &mut profile);
        assert!(profile.body_parsing() > std::time::Duration::ZERO);
        assert!(profile.total() >= profile.rule_time() + profile.body_parsing());
    }

    #[test]
    fn a_profile_of_another_program_starts_afresh() {
        let mut profile = Profile::new();
        program().inspect_profiled(&Request::builder().uri("/").build(), &mut profile);
        let other = RuleSet::from_yaml_str(
            "rules:\n  - {id: 99, targets: [request_uri], match: {contains: x}}\n",
            "other.yaml",
        )
        .expect("rules load");
        let other = compile(&other).expect("rules compile");
        other.inspect_profiled(&Request::builder().uri("/x").build(), &mut profile);
        assert_eq!(counts(&profile), [(99, 1, 1)]);
        assert_eq!(profile.requests(), 1);
    }

    #[test]
    fn the_verdict_is_the_unprofiled_one() {
        let program = program();
        for uri in ["/?q=needle", "/?q=NEEDLE", "/?q=x"] {
            let request = Request::builder().uri(uri).build();
            let plain = program.inspect(&request);
            let profiled = program.inspect_profiled(&request, &mut Profile::new());
            assert_eq!(format!("{plain:?}"), format!("{profiled:?}"));
        }
    }
}
