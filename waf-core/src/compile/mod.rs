//! The compiler: a [`RuleSet`] in, one immutable [`Program`] out.
//!
//! Four ideas make the program fast, and all four are invisible in its verdicts:
//!
//! 1. **Transformation chains are shared.** Every distinct transformation sequence used by any
//!    rule becomes a node in a trie (`url_decode_uni` → `url_decode_uni, lowercase` → ...). Per
//!    request, a value is transformed once per node and cached under its slot, so a hundred
//!    rules asking for `ARGS` with `url_decode_uni, lowercase` cost one decode and one
//!    lowercase per argument, and a chain extending another starts from its cached result.
//!    Most values cost less still: a value holding none of the [trigger
//!    bytes](crate::transform::Transform) of a node's path (no `%` to decode, no `&` to
//!    unescape, no space to compress) reaches the node unchanged but for case, and the node
//!    costs it nothing at all.
//! 2. **Literals gate regexes.** An Aho-Corasick automaton holds the [required
//!    literals](literals) of every condition — phrase lists, `contains` strings and literals
//!    extracted from regexes. A value is scanned once per chain node, at the root for every
//!    literal, below it for those of the conditions tested at the node or under it (with an
//!    automaton of its own when they are few, not at all when there are none). A scalar few
//!    conditions read (the request line, the URI, the query string, the raw body) is scanned
//!    for those conditions' literals only, at every node. A condition
//!    whose literals did not occur is known not to match without running its regex. Regexes
//!    with no usable literal (the residual regexes) are gated by rare bytes (`;`, `|`,
//!    `<`...) and rarer literals one of which every match holds (their
//!    [`ResidualGate`]); those whose targets name their values (`REQUEST_HEADERS:Host`) run on
//!    those values alone; the rest run as one multi-pattern regex per node.
//! 3. **Evaluation stops early** once a blocking decision is certain.
//! 4. **Recurring values are remembered.** Each thread keeps a memo of what recent values
//!    opened at each chain node and which operators missed them: a header sent with every
//!    request is scanned and tested once, not on every request. Within a request, a long value
//!    is scanned once however many targets and chain nodes carry the same bytes (REQUEST_URI
//!    and REQUEST_URI_RAW, a decoded URI reached by two transformation paths).
//!
//! ```
//! use waf_core::{compile, Request, RuleSet};
//!
//! let set = RuleSet::from_yaml_str(r#"
//! rules:
//!   - id: 1
//!     targets: [args]
//!     transforms: [url_decode_uni, lowercase]
//!     match: { rx: 'union\s+select' }
//! "#, "inline.yaml").unwrap();
//! let program = compile(&set).unwrap();
//! assert_eq!(program.rule_count(), 1);
//! assert!(program.inspect(&Request::builder().uri("/?q=1%20UNION%20SELECT%202").build()).is_blocking());
//! assert!(!program.inspect(&Request::builder().uri("/?q=union%20station").build()).is_blocking());
//! ```

pub(crate) mod literals;
mod memo;

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use crate::engine::values::RequestData;
use crate::engine::{self, Candidates, Evaluate, Plan, Probe};
use crate::error::{Error, ErrorKind};
use crate::operator::{Evidence, Lookup};
use crate::request::Request;
use crate::rules::{Collection, RuleSet};
use crate::transform::Transform;
use crate::verdict::Verdict;

/// Compiles a ruleset.
///
/// Errors name the file, line and rule: a regex that does not compile, a `skip_after` without
/// its marker, a duplicate id.
pub fn compile(set: &RuleSet) -> Result<Program, Error> {
    Program::new(set)
}

type ChainId = u32;

/// How the compiled program keeps a residual regex — one no literal set gates — from running
/// on every value; see [`Program::residual_gate`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResidualGate {
    /// It runs on the values holding one of these bytes or, ASCII case-insensitively, one of
    /// these literals (every match holds one).
    Gate {
        /// Bytes, never an ASCII letter or digit.
        bytes: Vec<u8>,
        /// Lowercase literals of two bytes or more.
        literals: Vec<Vec<u8>>,
    },
    /// Its targets name their values (a header, an argument, the request line) or select them
    /// by a pattern over their names (`REQUEST_COOKIES:/^S?DW/`): it runs on those alone.
    Named,
    /// It may match an empty string (`^.*$`): nearly every value would open a gate, so it
    /// runs on every value its targets select, and the values of other rules are spared.
    MatchesEmpty,
    /// It targets transaction variables or counts, computed while rules run: it runs on each.
    Dynamic,
    /// It joins its transformation chain's residual set, one multi-pattern regex that runs on
    /// every value reaching the chain.
    Set,
}

/// A node of the transformation trie.
#[derive(Debug)]
struct Chain {
    parent: Option<ChainId>,
    /// The transformation this node adds to its parent's value (`None` for the root).
    transform: Option<Transform>,
    /// The transformation's [trigger bytes](Transform::triggers): a value holding none is
    /// not transformed (but for case).
    triggers: Option<literals::ByteSet>,
    /// The trigger bytes of every transformation from the root to this node; `None` when one
    /// of them may change any value. A raw value holding none of them reaches this node
    /// unchanged but for case: the node is *untouched* for that value.
    path_triggers: Option<literals::ByteSet>,
    /// The case of an untouched value at this node: that of the last case change on the path.
    path_case: Option<Transform>,
    /// The residual regexes tested at this node that have no byte gate, as one multi-pattern
    /// regex.
    residual: Option<ResidualSet>,
    /// The residual regexes tested at this node whose [gate](literals::residual_gate) has
    /// bytes: the bytes and the condition's gate id. A value holding one of the bytes opens
    /// the gate (so does one of the gate's literals, found by the Aho-Corasick scan), and the
    /// condition's own regex decides.
    byte_gated: Vec<(literals::ByteSet, u32)>,
    /// The automaton a value is scanned with at this node (see [`NodeScan`]).
    scan: NodeScan,
}

/// Which literals a value is scanned for at a chain node.
///
/// A node's scan serves the conditions tested at the node and below it: its children that
/// change only case, and the nodes a value leaves untouched, take its gates. So a node needs
/// the literals of its subtree only, and the root needs them all. Most transformations are
/// read by a few rules (CRS 934100 alone decodes base64, and each fresh token decodes to
/// bytes of its own): scanning their nodes' values for those few literals, with an automaton
/// small enough to stay in cache, costs a fraction of a scan for thousands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeScan {
    /// The program's automaton of every literal: the root's, and that of nodes whose subtree
    /// holds a large share of the literals (another automaton nearly as large would cost
    /// memory and compile time for little).
    Shared,
    /// `Program::node_prefilters[i]`: the literals of the node's subtree.
    Own(u32),
    /// No literal below: nothing to scan for.
    Nothing,
}

/// Residual regexes of one chain node, run as one multi-pattern regex.
#[derive(Debug)]
struct ResidualSet {
    set: regex_automata::meta::Regex,
    /// Each pattern's gate id.
    gates: Vec<u32>,
}

/// Literals of gated conditions, in one automaton: all of them (the program's shared one),
/// or those of a chain node's subtree.
#[derive(Debug)]
struct Prefilter {
    ac: AhoCorasick,
    /// Pattern id → gate ids (sorted).
    gates: Vec<Vec<u32>>,
}

impl Prefilter {
    /// The automaton of `patterns`, each opening its gates in `literals`.
    fn new(
        patterns: &[Vec<u8>],
        literals: &HashMap<Vec<u8>, Vec<u32>>,
    ) -> Result<Prefilter, Error> {
        let gates = patterns
            .iter()
            .map(|p| {
                let mut g = literals.get(p).cloned().unwrap_or_default();
                g.sort_unstable();
                g.dedup();
                g
            })
            .collect();
        let ac = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            // The crate's prefilter skips ahead to a rare byte of the patterns whenever the
            // scan is back at the start state, at the cost of a `memchr3` call each time. A
            // scan reports every occurrence, and in the text of a request a small automaton's
            // rare bytes are frequent: the calls cost more than the bytes they skipped.
            .prefilter(false)
            // A DFA is the fastest scan; past several thousand patterns its memory grows
            // large, and the contiguous NFA is nearly as fast at a fraction of the size.
            .kind(Some(if patterns.len() <= 10_000 {
                AhoCorasickKind::DFA
            } else {
                AhoCorasickKind::ContiguousNFA
            }))
            .build(patterns)
            .map_err(|e| Error::new(ErrorKind::Rule, format!("literal automaton: {e}")))?;
        Ok(Prefilter { ac, gates })
    }
}

impl NodeScan {
    /// A node gets an automaton of its own when its subtree holds at most one in this many
    /// of the literals. At one in two, a process holding the CRS grew by 22 MB resident and
    /// saved fewer instructions than at one in four (4.4 MB).
    const OWN_AT_MOST: usize = 4;
}

/// How one condition is tested.
#[derive(Debug)]
struct CondPlan {
    /// The chain node of each stage tested (several with multi-match).
    stages: Vec<(ChainId, usize)>,
    /// The condition's gate id, when its operator has required literals or is a residual
    /// regex (gated by its node's multi-pattern regex).
    gate: Option<u32>,
    /// A regex without required literals.
    residual: bool,
    /// For libinjection operators: bytes one of which any value they flag contains (see
    /// [`injection_gate`]). They are the condition's byte gate too, so that values without
    /// any are not even visited; checked again before the (costly) detector runs.
    needs_byte: Option<&'static [bool; 256]>,
    /// For a regex with required literals, rare bytes one of which every match also holds
    /// (the byte part of its [`ResidualGate`](literals::ResidualGate), when it has no literal
    /// part): looked up in the value's bytes before the regex runs. CRS 921110's literals are
    /// HTTP method names (`post` is in `form_post`), but every match holds a `\r` or `\n`.
    regex_bytes: Option<literals::ByteSet>,
    /// Whether the gate is a [byte gate](byte_gate) of the operator.
    byte_gate: bool,
    /// The condition's index among all conditions of the program: its name in the
    /// [scan memo](memo).
    key: u32,
    /// Whether the operator's verdict on a value depends on the value alone (no macros): a
    /// miss is then remembered with the value.
    pure: bool,
}

/// What [`candidates`](engine::Evaluate::candidates) reads of a condition, for every rule on
/// every request: kept apart from the [`CondPlan`]s, in one array in rule order, with the
/// conditions' scans as indexes into another.
///
/// Most rules are over after that look: the first condition's gate is closed. In the proxy,
/// between two inspections, the rest of the work (sockets, HTTP, other connections) evicts
/// much of the program from the core's caches, and the look read the rule's conditions, its
/// `CondPlan` and its vector of scans: three separate allocations, each a likely cache miss.
/// Here it is twelve bytes, read in order as the rules are.
#[derive(Debug, Clone, Copy)]
struct HotCond {
    /// The gate whose slot list holds the condition's candidates, or [`HotCond::ALL`] when
    /// every value is one (no gate, or a negated condition).
    gate: u32,
    /// Its scans: a range of [`Program::cond_scans`].
    scans_start: u32,
    scans_end: u32,
}

impl HotCond {
    const ALL: u32 = u32::MAX;
}

/// What a [`Scan`] covers: a chain node, a collection, and a member name or every member.
type ScanKey = (ChainId, Collection, Option<Box<[u8]>>);

/// The values of one collection (or of its members of one name) scanned at one chain node.
/// Its index in [`Program::scans`] is its index in [`Cache::scanned`].
#[derive(Debug)]
struct Scan {
    node: ChainId,
    collection: Collection,
    /// Only the members of this name (lowercase; compared without regard to ASCII case).
    name: Option<Box<[u8]>>,
}

/// The byte-class gates of the libinjection operators.
///
/// libinjection is the costliest operator per value, and most values cannot trigger it:
///
/// - SQL injection needs more than one token, and a value made only of ASCII letters, digits
///   and `_` is a single word or number token;
/// - cross-site scripting needs a tag (`<`), an attribute (whitespace, `=`) or a way out of
///   a quoted attribute value (`'`, `"`, `` ` ``) — libinjection tests the value in HTML text
///   and in each attribute-value context, and without these bytes every context yields one
///   text or value token, which it never flags.
///
/// These are claims about the detector, so a test holds the detector to them on millions of
/// generated values (`injection_gates_hold` below); the differential tests check the engine.
fn injection_gate(op: &crate::operator::Operator) -> Option<&'static [bool; 256]> {
    use crate::operator::Operator;
    static SQLI: [bool; 256] = {
        let mut t = [true; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            if c.is_ascii_alphanumeric() || c == b'_' {
                t[b] = false;
            }
            b += 1;
        }
        t
    };
    static XSS: [bool; 256] = {
        let mut t = [false; 256];
        let bytes = b"<>'\"`= \t\n\x0b\x0c\r\0";
        let mut i = 0;
        while i < bytes.len() {
            t[bytes[i] as usize] = true;
            i += 1;
        }
        t
    };
    match op {
        Operator::DetectSqli => Some(&SQLI),
        Operator::DetectXss => Some(&XSS),
        _ => None,
    }
}

/// The bytes a value must hold for `op` to match it, for operators whose verdict depends on
/// nothing but which bytes the value holds, beyond its letters: libinjection's (a claim about
/// the detector, see [`injection_gate`]) and `@validateByteRange` when it allows every ASCII
/// letter (exactly the bytes it does not allow).
///
/// The gate is looked up in the value's set of bytes at a chain node, which is exact but for
/// letters: a node that only changes case shares its parent's set. So a byte gate holds no
/// letter, and `@validateByteRange` without every letter (`48-57`) is not gated.
fn byte_gate(op: &crate::operator::Operator) -> Option<literals::ByteSet> {
    use crate::operator::{validate::ByteRanges, Operator};
    match op {
        Operator::ValidateByteRange(spec) => {
            let ranges = ByteRanges::parse(spec).ok()?;
            if !(b'A'..=b'Z').chain(b'a'..=b'z').all(|b| ranges.allows(b)) {
                return None;
            }
            let mut outside = literals::ByteSet::default();
            for b in (0..=255u8).filter(|&b| !ranges.allows(b)) {
                outside.insert(b);
            }
            Some(outside)
        }
        op => injection_gate(op).map(literals::ByteSet::from_table),
    }
}

/// A compiled ruleset: immutable, `Send + Sync`, shared by every request.
///
/// ```
/// fn assert_send_sync<T: Send + Sync>() {}
/// assert_send_sync::<waf_core::Program>();
/// ```
#[derive(Debug)]
pub struct Program {
    plan: Plan,
    chains: Vec<Chain>,
    prefilter: Option<Prefilter>,
    /// The automata of the nodes that scan for their subtree's literals only, and of the head
    /// scalars that scan for their own conditions' literals only.
    node_prefilters: Vec<Prefilter>,
    /// By index in [`FIXED_SCALARS`](engine::values::FIXED_SCALARS): how the scalar's value is
    /// scanned ([`NodeScan::Shared`]: as any other value).
    fixed_scalar_scans: [NodeScan; engine::values::FIXED_SCALARS.len()],
    conds: Vec<Vec<CondPlan>>,
    /// What [`candidates`](engine::Evaluate::candidates) reads of each condition, by rule
    /// (from `hot_start[rule]`).
    hot: Vec<HotCond>,
    /// By rule, where its conditions start in `hot`; the last is `hot`'s length.
    hot_start: Vec<u32>,
    /// The scans of the conditions, as indexes into `scans`: ranges of it are
    /// [`HotCond`]s'.
    cond_scans: Vec<u32>,
    /// Distinct `(node, collection, name)` scans that gated conditions need, by index.
    scans: Vec<Scan>,
    /// Number of gate ids: literal gates and residual-regex gates.
    gated: usize,
    /// Most patterns in one chain node's residual set: the capacity of [`Cache::hits`].
    residual_patterns_max: usize,
    /// The byte gates of every node, checked at the root for the untouched nodes.
    all_byte_gated: Vec<(literals::ByteSet, u32)>,
    /// Unique per program: whose results a thread's [scan memo](memo) holds.
    id: u64,
}

/// The ids of programs: 0 is none's.
static NEXT_PROGRAM_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Program {
    fn new(set: &RuleSet) -> Result<Program, Error> {
        let plan = Plan::new(set)?;
        let mut trie: HashMap<(ChainId, Transform), ChainId> = HashMap::new();
        let mut chains = vec![Chain {
            parent: None,
            transform: None,
            triggers: None,
            path_triggers: Some(literals::ByteSet::default()),
            path_case: None,
            residual: None,
            byte_gated: Vec::new(),
            scan: NodeScan::Shared,
        }];
        let mut node_of = |transforms: &[Transform], chains: &mut Vec<Chain>| -> Vec<ChainId> {
            // The node after each prefix: [root, t1, t1t2, ...].
            let mut path = vec![0];
            let mut at: ChainId = 0;
            for &t in transforms {
                at = *trie.entry((at, t)).or_insert_with(|| {
                    let triggers = t.triggers().map(literals::ByteSet::of);
                    let parent = &chains[at as usize];
                    let path_triggers = match (parent.path_triggers, triggers) {
                        (Some(p), Some(t)) => Some(p.union(t)),
                        _ => None,
                    };
                    let path_case = t.case_change().or(parent.path_case);
                    chains.push(Chain {
                        parent: Some(at),
                        transform: Some(t),
                        triggers,
                        path_triggers,
                        path_case,
                        residual: None,
                        byte_gated: Vec::new(),
                        scan: NodeScan::Shared,
                    });
                    (chains.len() - 1) as ChainId
                });
                path.push(at);
            }
            path
        };
        // Every gate's literals: literal → gate ids.
        let mut literals: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
        let mut conds = Vec::with_capacity(plan.rules.len());
        let mut gated = 0u32;
        // Each distinct scan's index in `scans`.
        let mut scan_slots: HashMap<ScanKey, usize> = HashMap::new();
        let mut scans: Vec<Scan> = Vec::new();
        let mut hot: Vec<HotCond> = Vec::new();
        // By rule: where its conditions start in `hot` (one more: the end).
        let mut hot_start: Vec<u32> = vec![0];
        let mut cond_scans: Vec<u32> = Vec::new();
        // Regexes with no required literal, by the chain node they are tested at.
        let mut residual_patterns: HashMap<ChainId, Vec<(String, u32)>> = HashMap::new();
        // The chain nodes each literal is looked for at (its conditions' stages).
        let mut literal_nodes: HashMap<Vec<u8>, Vec<ChainId>> = HashMap::new();
        // The collections each literal is looked for in (its conditions' targets).
        let mut literal_collections: HashMap<Vec<u8>, Vec<Collection>> = HashMap::new();
        let mut cond_keys = 0u32;
        for (r, rule) in plan.rules.iter().enumerate() {
            let mut cps = Vec::with_capacity(rule.conditions.len());
            for (c, cond) in rule.conditions.iter().enumerate() {
                let path = node_of(&cond.transforms, &mut chains);
                let stages: Vec<(ChainId, usize)> = if cond.multi_match {
                    path.iter().copied().zip(0..).collect()
                } else {
                    vec![(path[path.len() - 1], path.len() - 1)]
                };
                // Conditions over transaction variables run on values that change during
                // the request and are never cached: they are not gated.
                let dynamic = cond
                    .targets
                    .iter()
                    .any(|t| t.collection.is_dynamic() || t.count);
                // A condition whose targets name their values (`REQUEST_HEADERS:Host`, the
                // request line, the cookies whose names match a pattern) visits a few values:
                // a residual regex there runs on them directly, instead of joining a residual
                // set that would run on every value reaching its chain node.
                let named = cond.targets.iter().all(|t| {
                    t.collection.is_scalar()
                        || matches!(
                            t.selector,
                            crate::rules::Selector::Name(_) | crate::rules::Selector::Regex(_)
                        )
                });
                // A regex that may match an empty string (CRS 920450's `^.*$`) opens any gate
                // on nearly every value. In a residual set it would run on every value reaching
                // its chain node, whoever targets them, and keep the node from being untouched
                // by any value: a node that only lowercases would transform and test every
                // value of the request. It runs on its own targets' values instead.
                let linear = cond.operator.linear_regex();
                let matches_empty = linear.as_deref().is_some_and(literals::may_match_empty);
                let mut residual = false;
                let byte_gated = byte_gate(&cond.operator).filter(|_| !dynamic);
                let gate = match (literals::gate_literals(&cond.operator), linear.as_deref()) {
                    (Some(lits), _) if !dynamic => {
                        let id = gated;
                        gated += 1;
                        for l in lits {
                            literal_nodes
                                .entry(l.clone())
                                .or_default()
                                .extend(stages.iter().map(|&(node, _)| node));
                            literal_collections
                                .entry(l.clone())
                                .or_default()
                                .extend(cond.targets.iter().map(|t| t.collection));
                            literals.entry(l).or_default().push(id);
                        }
                        Some(id)
                    }
                    (None, Some(pattern)) if !dynamic && !named && !matches_empty => {
                        residual = true;
                        let id = gated;
                        gated += 1;
                        match literals::residual_gate(pattern) {
                            // Opened by the chain's Aho-Corasick scan (the literals) and by a
                            // look at the value's bytes at each node it is tested at.
                            Some(gate) => {
                                for l in gate.literals {
                                    literal_nodes
                                        .entry(l.clone())
                                        .or_default()
                                        .extend(stages.iter().map(|&(node, _)| node));
                                    literal_collections
                                        .entry(l.clone())
                                        .or_default()
                                        .extend(cond.targets.iter().map(|t| t.collection));
                                    literals.entry(l).or_default().push(id);
                                }
                                if gate.bytes != literals::ByteSet::default() {
                                    for &(node, _) in &stages {
                                        if let Some(chain) = chains.get_mut(node as usize) {
                                            chain.byte_gated.push((gate.bytes, id));
                                        }
                                    }
                                }
                            }
                            None => {
                                for &(node, _) in &stages {
                                    residual_patterns
                                        .entry(node)
                                        .or_default()
                                        .push((pattern.to_string(), id));
                                }
                            }
                        }
                        Some(id)
                    }
                    // libinjection and `@validateByteRange` are opened by a look at the
                    // value's bytes, like a residual regex with a byte gate: a value without
                    // the bytes they need is not even visited.
                    (None, _) => byte_gated.map(|bytes| {
                        let id = gated;
                        gated += 1;
                        for &(node, _) in &stages {
                            if let Some(chain) = chains.get_mut(node as usize) {
                                chain.byte_gated.push((bytes, id));
                            }
                        }
                        id
                    }),
                    _ => None,
                };
                let scans_start = cond_scans.len() as u32;
                if gate.is_some() {
                    for &(node, _) in &stages {
                        for t in &cond.targets {
                            // A target naming its members needs only those scanned.
                            let name = match &t.selector {
                                crate::rules::Selector::Name(n) if !t.collection.is_scalar() => {
                                    Some(n.to_ascii_lowercase().into_bytes().into_boxed_slice())
                                }
                                _ => None,
                            };
                            let key = (node, t.collection, name);
                            let index = *scan_slots.entry(key.clone()).or_insert_with(|| {
                                scans.push(Scan {
                                    node,
                                    collection: key.1,
                                    name: key.2,
                                });
                                scans.len() - 1
                            }) as u32;
                            if !cond_scans[scans_start as usize..].contains(&index) {
                                cond_scans.push(index);
                            }
                        }
                    }
                }
                let pure = plan
                    .matchers
                    .get(r)
                    .and_then(|m| m.get(c))
                    .is_some_and(|m| !m.reads_transaction());
                cps.push(CondPlan {
                    stages,
                    gate,
                    residual,
                    byte_gate: gate.is_some() && byte_gated.is_some(),
                    needs_byte: injection_gate(&cond.operator),
                    regex_bytes: match linear.as_deref() {
                        Some(pattern) if !dynamic && !residual => literals::residual_gate(pattern)
                            .filter(|g| g.literals.is_empty())
                            .map(|g| g.bytes)
                            .filter(|b| *b != literals::ByteSet::default()),
                        _ => None,
                    },
                    key: cond_keys,
                    pure,
                });
                hot.push(HotCond {
                    gate: match gate {
                        Some(g) if !cond.negated => g,
                        _ => HotCond::ALL,
                    },
                    scans_start,
                    scans_end: cond_scans.len() as u32,
                });
                cond_keys += 1;
            }
            conds.push(cps);
            hot_start.push(hot.len() as u32);
        }
        // Residual regexes with a gate are opened by one look at a table of the value's bytes
        // or by the literals the scan found, and their own regex decides; on ordinary values
        // (tokens, ids, URLs) the gate stays shut and no regex runs. The others of a node run
        // as one multi-pattern regex: one pass over a value says which of them match anywhere
        // in it (`MatchKind::All`), so each is confirmed only on values where it matches. That
        // set stays small (the residual set is meant to be), well clear of the lazy DFA's cache
        // cliff.
        let mut residual_patterns_max = 0;
        for (node, patterns) in residual_patterns {
            let Some(chain) = chains.get_mut(node as usize) else {
                continue;
            };
            let (texts, gates): (Vec<String>, Vec<u32>) = patterns.into_iter().unzip();
            let set = crate::operator::build_regex_set(&texts)
                .map_err(|e| Error::new(ErrorKind::Rule, format!("residual regexes: {e}")))?;
            residual_patterns_max = residual_patterns_max.max(set.pattern_len());
            chain.residual = Some(ResidualSet { set, gates });
        }
        let mut all_byte_gated: Vec<(literals::ByteSet, u32)> = chains
            .iter()
            .flat_map(|c| c.byte_gated.iter().copied())
            .collect();
        all_byte_gated.sort_unstable_by_key(|&(_, gate)| gate);
        all_byte_gated.dedup_by_key(|&mut (_, gate)| gate);
        let mut patterns: Vec<Vec<u8>> = literals.keys().cloned().collect();
        patterns.sort();
        let prefilter = if patterns.is_empty() {
            None
        } else {
            Some(Prefilter::new(&patterns, &literals)?)
        };
        // Each node's literals: those looked for at the node or below it.
        let mut below: Vec<Vec<usize>> = vec![Vec::new(); chains.len()];
        for (i, pattern) in patterns.iter().enumerate() {
            let mut marked = vec![false; chains.len()];
            for &node in literal_nodes.get(pattern).map_or(&[][..], Vec::as_slice) {
                let mut at = Some(node);
                while let Some(n) = at {
                    match marked.get_mut(n as usize) {
                        Some(m) if !*m => *m = true,
                        _ => break,
                    }
                    if let Some(list) = below.get_mut(n as usize) {
                        list.push(i);
                    }
                    at = chains.get(n as usize).and_then(|c| c.parent);
                }
            }
        }
        let mut node_prefilters = Vec::new();
        let mut by_literals: HashMap<Vec<usize>, u32> = HashMap::new();
        // How a value is scanned that only these literals (indexes into `patterns`) concern:
        // with its own automaton when they are a quarter of all or fewer (one per distinct
        // set), not at all when there are none.
        let mut scan_for = |own: Vec<usize>| -> Result<NodeScan, Error> {
            if own.is_empty() {
                return Ok(NodeScan::Nothing);
            }
            if own.len() * NodeScan::OWN_AT_MOST > patterns.len() {
                return Ok(NodeScan::Shared);
            }
            let next = node_prefilters.len() as u32;
            let index = *by_literals.entry(own.clone()).or_insert(next);
            if index == next {
                let subset: Vec<Vec<u8>> = own
                    .iter()
                    .filter_map(|&i| patterns.get(i).cloned())
                    .collect();
                node_prefilters.push(Prefilter::new(&subset, &literals)?);
            }
            Ok(NodeScan::Own(index))
        };
        for (n, own) in below.into_iter().enumerate().skip(1) {
            let scan = scan_for(own)?;
            if let Some(chain) = chains.get_mut(n) {
                chain.scan = scan;
            }
        }
        // A scalar with a fixed slot (the request line, the URI, the query string, the raw
        // body) is read by a few conditions, but at the root it was scanned for every literal
        // of the program: the CRS's 2,641 over three values of 600 to 750 bytes in a sign-in
        // request, through a 12.6 MB automaton whose every step missed the core's first-level
        // cache, and over a login form's kilobyte of body. Each one is scanned for its own
        // conditions' literals, like a chain node for its subtree's, at every node (or for its
        // node's, when fewer).
        let mut fixed_scalar_scans = [NodeScan::Shared; engine::values::FIXED_SCALARS.len()];
        for (scan, c) in fixed_scalar_scans
            .iter_mut()
            .zip(engine::values::FIXED_SCALARS)
        {
            let own: Vec<usize> = patterns
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    literal_collections
                        .get(*p)
                        .is_some_and(|cs| cs.contains(&c))
                })
                .map(|(i, _)| i)
                .collect();
            *scan = scan_for(own)?;
        }
        Ok(Program {
            plan,
            chains,
            prefilter,
            node_prefilters,
            fixed_scalar_scans,
            conds,
            hot,
            hot_start,
            cond_scans,
            scans,
            gated: gated as usize,
            residual_patterns_max,
            all_byte_gated,
            id: NEXT_PROGRAM_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Inspects a request: both phases, headers then body.
    pub fn inspect(&self, request: &Request) -> Verdict {
        engine::run(self, request)
    }

    /// [`inspect`](Program::inspect), adding to `profile` what each rule cost.
    ///
    /// The verdict is the one [`inspect`](Program::inspect) gives. Reading the clock around
    /// every rule adds tens of nanoseconds per rule evaluated; compare
    /// [`Profile::total`](crate::profile::Profile::total) with unprofiled inspections to see
    /// how much.
    ///
    /// ```
    /// use waf_core::{compile, profile::Profile, Request, RuleSet};
    ///
    /// let rules = RuleSet::from_yaml_str(r#"
    /// rules:
    ///   - {id: 1, severity: critical, targets: [args], match: detect_sqli}
    ///   - {id: 2, targets: [request_uri], match: {contains: "/admin"}}
    /// "#, "r.yaml")?;
    /// let program = compile(&rules)?;
    /// let mut profile = Profile::new();
    /// let request = Request::builder().uri("/admin?q=1'%20OR%20'1'='1").build();
    /// let verdict = program.inspect_profiled(&request, &mut profile);
    /// assert_eq!(verdict.decided_by, Some(1));
    /// assert_eq!(profile.requests(), 1);
    /// // Rule 1 blocked: rule 2 never ran.
    /// let ids: Vec<(u32, u64, u64)> =
    ///     profile.rules().iter().map(|r| (r.id(), r.evaluations(), r.matches())).collect();
    /// assert_eq!(ids, [(1, 1, 1), (2, 0, 0)]);
    /// # Ok::<(), waf_core::Error>(())
    /// ```
    pub fn inspect_profiled(
        &self,
        request: &Request,
        profile: &mut crate::profile::Profile,
    ) -> Verdict {
        profile.prepare(self.id, &self.plan.rules);
        engine::run_observed(self, request, profile)
    }

    /// How many rules the program runs (after the paranoia level filtered them).
    pub fn rule_count(&self) -> usize {
        self.plan.rules.len()
    }

    /// How many conditions are gated by literals. Residual regexes are not counted (see
    /// [`residual_gate`](Program::residual_gate)), nor libinjection's operators and
    /// `@validateByteRange` (gated by the bytes a value holds); other operators always run.
    pub fn gated_condition_count(&self) -> usize {
        self.conds
            .iter()
            .flatten()
            .filter(|c| c.gate.is_some() && !c.residual && !c.byte_gate)
            .count()
    }

    /// The regex conditions that no literal set gates — the residual regexes — as `(rule id,
    /// condition index)`. [`residual_gate`](Program::residual_gate) says what keeps each from
    /// running on every value; rule authors should keep the ones left to the residual set few.
    ///
    /// ```
    /// use waf_core::{compile, RuleSet};
    /// let set = RuleSet::from_yaml_str(
    ///     "rules:\n  - id: 1\n    targets: [args]\n    match: {rx: '[0-9]{20}'}\n",
    ///     "inline.yaml",
    /// ).unwrap();
    /// assert_eq!(compile(&set).unwrap().residual_conditions().collect::<Vec<_>>(), vec![(1, 0)]);
    /// ```
    pub fn residual_conditions(&self) -> impl Iterator<Item = (u32, usize)> + '_ {
        self.plan
            .rules
            .iter()
            .zip(&self.conds)
            .flat_map(|(rule, conds)| {
                conds.iter().enumerate().filter_map(move |(i, c)| {
                    let is_regex = rule
                        .conditions
                        .get(i)
                        .is_some_and(|c| c.operator.linear_regex().is_some());
                    (is_regex && (c.residual || c.gate.is_none())).then_some((rule.id, i))
                })
            })
    }

    /// How a regex condition of [`residual_conditions`](Program::residual_conditions) (rule id,
    /// condition index) is kept from running on every value; `None` for any other condition.
    ///
    /// ```
    /// use waf_core::compile::ResidualGate;
    /// use waf_core::{compile, RuleSet};
    /// let set = RuleSet::from_yaml_str(
    ///     "rules:
    ///   - id: 1
    ///     targets: [args]
    ///     match: {rx: '[;|]\\s*\\w+'}
    ///   - id: 2
    ///     targets: [request_headers:host]
    ///     match: {rx: '^[\\d.:]+$'}
    ///   - id: 3
    ///     targets: [args]
    ///     match: {rx: '[0-9]{20}'}
    ///   - id: 4
    ///     targets: [request_headers_names]
    ///     match: {rx: '^.*$'}
    ///   - id: 5
    ///     targets: ['request_cookies:/^dw[0-9a-f]+$/']
    ///     match: {rx: '^[a-z0-9]+'}
    /// ",
    ///     "inline.yaml",
    /// ).unwrap();
    /// let program = compile(&set).unwrap();
    /// assert_eq!(
    ///     program.residual_gate(1, 0),
    ///     Some(ResidualGate::Gate { bytes: b";|".to_vec(), literals: vec![] })
    /// );
    /// assert_eq!(program.residual_gate(2, 0), Some(ResidualGate::Named));
    /// assert_eq!(program.residual_gate(3, 0), Some(ResidualGate::Set));
    /// assert_eq!(program.residual_gate(4, 0), Some(ResidualGate::MatchesEmpty));
    /// assert_eq!(program.residual_gate(5, 0), Some(ResidualGate::Named));
    /// ```
    pub fn residual_gate(&self, rule: u32, cond: usize) -> Option<ResidualGate> {
        let index = self.plan.rules.iter().position(|r| r.id == rule)?;
        let plan = self.conds.get(index)?.get(cond)?;
        let condition = self.plan.rules[index].conditions.get(cond)?;
        let pattern = condition.operator.linear_regex()?;
        Some(match (plan.residual, plan.gate) {
            (true, _) => match literals::residual_gate(&pattern) {
                Some(gate) => ResidualGate::Gate {
                    bytes: gate.bytes.bytes().collect(),
                    literals: gate.literals,
                },
                None => ResidualGate::Set,
            },
            (false, Some(_)) => return None,
            (false, None)
                if condition
                    .targets
                    .iter()
                    .any(|t| t.collection.is_dynamic() || t.count) =>
            {
                ResidualGate::Dynamic
            }
            (false, None)
                if condition.targets.iter().any(|t| {
                    !t.collection.is_scalar() && matches!(t.selector, crate::rules::Selector::All)
                }) =>
            {
                ResidualGate::MatchesEmpty
            }
            (false, None) => ResidualGate::Named,
        })
    }

    /// The settings the program was compiled with.
    pub fn settings(&self) -> &crate::rules::Settings {
        &self.plan.settings
    }
}

/// A transformed value of one slot at one chain node, and the gates its scan opened.
#[derive(Debug)]
struct CachedValue {
    bytes: Bytes,
    /// Gate ids whose literals occur in the value (sorted).
    open: Open,
    /// Whether [`Cache::gate_slots`] lists the slot under the gates of `open` already.
    listed: bool,
    /// The bytes of the value, but for letters (which may be of either case); `None`: the
    /// same as the parent's.
    present: Option<literals::ByteSet>,
}

/// The [`CachedValue`]s of one request, by chain node and slot.
///
/// Sparse: a CRS request fills about a hundred of the two to four thousand `(node, slot)`
/// pairs of the nodes it reaches. As a table of `Option<CachedValue>` (96 bytes a cell) those
/// rows were 180 to 380 KB a request, written when a row was made, read on every lookup and
/// read again to drop them; in a cache simulation their clearing alone was an eighth of the
/// request's L1 misses. Here a row holds 4-byte indexes into the values.
#[derive(Default, Debug)]
struct NodeValues {
    /// By node, by slot: 1 + the index of the slot's value in `values`, or 0 for none.
    rows: Vec<Vec<u32>>,
    values: Vec<CachedValue>,
}

impl NodeValues {
    fn get(&self, node: ChainId, slot: u32) -> Option<&CachedValue> {
        let i = *self.rows.get(node as usize)?.get(slot as usize)?;
        self.values.get((i as usize).checked_sub(1)?)
    }

    fn get_mut(&mut self, node: ChainId, slot: u32) -> Option<&mut CachedValue> {
        let i = *self.rows.get(node as usize)?.get(slot as usize)?;
        self.values.get_mut((i as usize).checked_sub(1)?)
    }

    fn contains(&self, node: ChainId, slot: u32) -> bool {
        self.rows
            .get(node as usize)
            .and_then(|row| row.get(slot as usize))
            .is_some_and(|&i| i != 0)
    }

    /// Writes the value of `(node, slot)`, in a request of `slots` slots.
    fn insert(&mut self, node: ChainId, slot: u32, slots: usize, value: CachedValue) {
        let (n, s) = (node as usize, slot as usize);
        if self.rows.len() <= n {
            self.rows.resize_with(n + 1, Vec::new);
        }
        let Some(row) = self.rows.get_mut(n) else {
            return;
        };
        if row.len() <= s {
            row.resize(slots.max(s + 1), 0);
        }
        let Some(cell) = row.get_mut(s) else {
            return;
        };
        match (*cell as usize)
            .checked_sub(1)
            .and_then(|i| self.values.get_mut(i))
        {
            Some(old) => *old = value,
            None => {
                self.values.push(value);
                *cell = self.values.len() as u32;
            }
        }
    }

    /// Empties it, keeping the allocations.
    fn clear(&mut self) {
        for row in &mut self.rows {
            row.clear();
        }
        self.values.clear();
    }
}

/// The bytes of a [`CachedValue`].
#[derive(Debug)]
enum Bytes {
    /// The same bytes as the parent node's value.
    Parent,
    /// Bytes of its own.
    Own(Vec<u8>),
    /// Not computed yet: the memo knew what the value opened here, and only a test or a child
    /// node that needs the bytes has them computed ([`Program::materialize`]).
    Pending,
}

/// The gates a [`CachedValue`] opened.
#[derive(Debug)]
enum Open {
    /// The same as the parent's (the bytes are the same up to ASCII case, which the automaton
    /// ignores).
    Parent,
    Own(Vec<u32>),
    /// What the memo recorded for the value at this node: `(entry, index)` for
    /// [`ScanMemo::opened_at`](memo::ScanMemo::opened_at).
    Remembered(u32, u32),
}

/// Per-request cache: for each chain node, the values computed so far, by slot; and which
/// gates any scanned value opened.
#[derive(Default, Debug)]
pub(crate) struct Cache {
    nodes: NodeValues,
    seen: Vec<bool>,
    /// The patterns one scan found, to reset their flags in `seen`.
    found: Vec<usize>,
    /// By gate id: the slots of the values scanned so far that contain one of the gate's
    /// literals (at some chain node; a superset is harmless, the value is tested anyway).
    gate_slots: Vec<Vec<u32>>,
    /// For each [`Scan`]: 0 not yet, 1 done with the head's values, 2 done with the body's
    /// too.
    scanned: Vec<u8>,
    /// The residual sets' matches, reused from value to value.
    hits: Option<regex_automata::PatternSet>,
    /// By slot: the raw value lowercased, for untouched nodes of lowercasing paths (`None`
    /// when the same as the raw value).
    lower: Vec<Option<Vec<u8>>>,
    /// The same, uppercased.
    upper: Vec<Option<Vec<u8>>>,
    /// What values of earlier requests opened: kept from request to request.
    memo: memo::ScanMemo,
    /// By slot: the value's [`memo`](Cache::memo) entry, or [`UNKNOWN`] or
    /// [`NOT_REMEMBERED`].
    memo_slots: Vec<u32>,
    /// By slot, reused: which slots a gate's list holds.
    marks: Vec<bool>,
    /// By slot: the version of its memo entry's [gates](memo::ScanMemo::gates) the gate
    /// lists hold the slot under, or [`NOT_LISTED`].
    gates_listed: Vec<u32>,
    /// The long values this request scanned, with what they opened.
    scans_done: ScansDone,
}

/// The long values one request scanned, lowercased, with the gates each opened: a scan's
/// result depends on the bytes alone, up to ASCII case, and a request carries the same long
/// bytes several times over. REQUEST_URI and REQUEST_URI_RAW are byte-identical for any URI
/// in origin form; `url_decode_uni` gives the same bytes after a `utf8_to_unicode` that
/// changed nothing as without it; `cmd_line` lowercases a URI and often does nothing else.
/// The [memo] does not serve them: it remembers raw values of up to
/// [`MAX_VALUE`](memo::MAX_VALUE) bytes, by node, from request to request, so it neither sees
/// that two nodes or two raw values give the same bytes nor keeps a URI; and a URI is fresh
/// in every request (a `state`, a `nonce`). Comparing a value against a few earlier ones
/// costs a fraction of its scan.
#[derive(Default, Debug)]
struct ScansDone {
    /// `(automaton, value lowercased, gates opened)`; the first `len` are this request's,
    /// the rest keep their allocations for the next.
    entries: Vec<(u32, Vec<u8>, Vec<u32>)>,
    len: usize,
}

impl ScansDone {
    /// Values shorter than this are scanned again: a short scan costs about what the copy
    /// and the comparisons would.
    const MIN_LEN: usize = 64;
    /// At most this many values are kept per request, so that a body of many long values
    /// (a JSON array of long strings) costs a bounded number of comparisons per scan.
    const MAX_ENTRIES: usize = 32;
    /// Longer values are not kept: the copies stay allocated from request to request, and
    /// a thread should not hold on to megabytes for one large upload.
    const MAX_LEN: usize = 64 * 1024;

    /// Whether values of this length are kept.
    fn keeps(value: &[u8]) -> bool {
        (Self::MIN_LEN..=Self::MAX_LEN).contains(&value.len())
    }

    /// The `automaton` of the shared automaton, whose gates are a superset of any other's:
    /// what a scan with it opened serves a node with an automaton of its own (the extra gates
    /// only make candidates of values that the conditions' operators then decide).
    const SHARED: u32 = u32::MAX;

    /// The gates `value` opened, if the request scanned the same bytes (up to ASCII case)
    /// with `automaton`, or with the shared one.
    fn find(&self, automaton: u32, value: &[u8]) -> Option<&[u32]> {
        if !Self::keeps(value) {
            return None;
        }
        self.entries
            .get(..self.len)?
            .iter()
            .find(|(by, lower, _)| {
                (*by == automaton || *by == Self::SHARED)
                    && lower.len() == value.len()
                    && lower.eq_ignore_ascii_case(value)
            })
            .map(|(_, _, open)| open.as_slice())
    }

    /// Keeps what `value` opened, scanned with `automaton`, for the rest of the request.
    fn remember(&mut self, automaton: u32, value: &[u8], open: &[u32]) {
        if !Self::keeps(value) || self.len >= Self::MAX_ENTRIES {
            return;
        }
        if self.len == self.entries.len() {
            self.entries.push((0, Vec::new(), Vec::new()));
        }
        if let Some((by, lower, gates)) = self.entries.get_mut(self.len) {
            *by = automaton;
            lower.clear();
            lower.extend(value.iter().map(u8::to_ascii_lowercase));
            gates.clear();
            gates.extend_from_slice(open);
            self.len += 1;
        }
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

/// In [`Cache::memo_slots`]: the slot's value has not been looked up in the memo yet.
const UNKNOWN: u32 = u32::MAX;
/// In [`Cache::memo_slots`]: the slot's value is not remembered (too long, memo full).
const NOT_REMEMBERED: u32 = u32::MAX - 1;
/// In [`Cache::gates_listed`]: the gate lists do not hold the slot under its memo entry's
/// gates. Versions count growths of a list of at most every gate of the program: they never
/// reach it.
const NOT_LISTED: u32 = u32::MAX;

impl Program {
    /// Makes sure `(node, slot)` is cached; computes parents first.
    ///
    /// A node's automaton holds every literal of its subtree, so a value is scanned only where
    /// its bytes differ from its parent's in more than ASCII case: for clean traffic most
    /// transformations (`url_decode` of a value with no `%`, `lowercase` always) change nothing
    /// the scan can see, and the root's scan serves the whole chain.
    ///
    /// Most values go further: they hold none of the bytes that would make any transformation
    /// on a node's path do anything (a token has no `%`, `&`, `\`, space or `/`). The node is
    /// then *untouched* for that value and gets no entry at all: its bytes are the raw value
    /// (or its lowercase or uppercase copy), its gates and bytes those of the root, where every
    /// byte gate of the program was checked. A node with a residual set is never untouched:
    /// its set must run on its own bytes.
    fn fill(&self, cache: &mut Cache, node: ChainId, slot: u32, raw: &[u8], slots: usize) {
        let n = node as usize;
        if cache.nodes.contains(node, slot) {
            return;
        }
        let Some(chain) = self.chains.get(n) else {
            return;
        };
        if n != 0 {
            self.fill(cache, 0, slot, raw, slots);
            if self.untouched(cache, node, slot) {
                if let Some(case) = chain.path_case {
                    self.case_copy(cache, case, slot, raw, slots);
                }
                return;
            }
        }
        let remembered = self.memo_entry(cache, slot, raw, slots);
        // `present`: the bytes of this node's value, but for letters; `None` when the parent's
        // serve (the value is the parent's, or differs from it only in case).
        let (bytes, rescan, present) = match (chain.parent, chain.transform) {
            (Some(parent), Some(t)) => {
                self.fill(cache, parent, slot, raw, slots);
                // A value an earlier request carried opens here what it opened then, and its
                // bytes here are computed only if something asks for them.
                if let Some((open, present)) = remembered.and_then(|e| known(cache, e, node)) {
                    let value = CachedValue {
                        bytes: Bytes::Pending,
                        open,
                        listed: false,
                        present,
                    };
                    Self::store(cache, node, slot, slots, value);
                    return;
                }
                self.materialize(cache, parent, slot, raw);
                match self.transformed(cache, node, slot, raw) {
                    None => (Bytes::Parent, false, None),
                    Some(v) => {
                        let case_only = matches!(t, Transform::Lowercase | Transform::Uppercase)
                            || chain.triggers.is_some_and(|triggers| {
                                !triggers.intersects(&self.present(cache, parent, slot))
                            });
                        let present = (!case_only).then(|| literals::ByteSet::of(&v));
                        (Bytes::Own(v), !case_only, present)
                    }
                }
            }
            // The root: the raw value, scanned once.
            _ => {
                // A value an earlier request carried opens what it opened then.
                if let Some((open, present)) = remembered.and_then(|e| known(cache, e, node)) {
                    let value = CachedValue {
                        bytes: Bytes::Parent,
                        open,
                        listed: false,
                        present: present.or_else(|| Some(literals::ByteSet::of(raw))),
                    };
                    Self::store(cache, node, slot, slots, value);
                    return;
                }
                (Bytes::Parent, true, Some(literals::ByteSet::of(raw)))
            }
        };
        let prefilter = match self.scan_of(chain.scan, slot) {
            NodeScan::Shared => self.prefilter.as_ref().map(|pf| (pf, ScansDone::SHARED)),
            NodeScan::Own(i) => self.node_prefilters.get(i as usize).map(|pf| (pf, i)),
            NodeScan::Nothing => None,
        };
        let mut open = match (prefilter, rescan) {
            (Some((pf, automaton)), true) => {
                let mut seen = std::mem::take(&mut cache.seen);
                let mut found = std::mem::take(&mut cache.found);
                let mut done = std::mem::take(&mut cache.scans_done);
                let value = match &bytes {
                    Bytes::Own(b) => b,
                    _ => self.parent_bytes(cache, node, slot, raw),
                };
                let open = match done.find(automaton, value) {
                    Some(open) => open.to_vec(),
                    None => {
                        let open = scan(pf, value, &mut seen, &mut found);
                        done.remember(automaton, value, &open);
                        open
                    }
                };
                cache.scans_done = done;
                cache.seen = seen;
                cache.found = found;
                Some(open)
            }
            (None, true) => Some(Vec::new()),
            (_, false) => None,
        };
        // The root checks every byte gate of the program, for the nodes untouched by this value.
        let byte_gated = if n == 0 {
            &self.all_byte_gated
        } else {
            &chain.byte_gated
        };
        if !byte_gated.is_empty() {
            // Gates hold no letter: the bytes of the value but for letters decide.
            let present = match (present, chain.parent) {
                (Some(p), _) => p,
                (None, Some(parent)) => self.present(cache, parent, slot),
                (None, None) => literals::ByteSet::of(raw),
            };
            let mut opened = byte_gated
                .iter()
                .filter(|(gate_bytes, _)| gate_bytes.intersects(&present))
                .map(|&(_, gate)| gate)
                .peekable();
            if opened.peek().is_some() {
                let mut merged = match open.take() {
                    Some(o) => o,
                    None => self.open(cache, node, slot).to_vec(),
                };
                merged.extend(opened);
                merged.sort_unstable();
                merged.dedup();
                open = Some(merged);
            }
        }
        if let Some(residual) = &chain.residual {
            // One pattern set per thread, reused: allocating and zeroing one per value cost
            // more than some of the scans.
            let mut hits = cache
                .hits
                .take()
                .filter(|h| h.capacity() >= residual.set.pattern_len())
                .unwrap_or_else(|| regex_automata::PatternSet::new(self.residual_patterns_max));
            hits.clear();
            let value = match &bytes {
                Bytes::Own(b) => b,
                _ => self.parent_bytes(cache, node, slot, raw),
            };
            residual
                .set
                .which_overlapping_matches(&regex_automata::Input::new(value), &mut hits);
            if !hits.is_empty() {
                let mut merged = match open.take() {
                    Some(o) => o,
                    None => self.open(cache, node, slot).to_vec(),
                };
                merged.extend(
                    hits.iter()
                        .filter_map(|p| residual.gates.get(p.as_usize()).copied()),
                );
                merged.sort_unstable();
                merged.dedup();
                open = Some(merged);
            }
            cache.hits = Some(hits);
        }
        if let Some(e) = remembered {
            cache.memo.record(e, node, open.as_deref(), present);
        }
        let value = CachedValue {
            bytes,
            open: open.map_or(Open::Parent, Open::Own),
            listed: false,
            present,
        };
        Self::store(cache, node, slot, slots, value);
    }

    /// How `slot`'s value is scanned at a node that scans the other values with `node_scan`:
    /// a fixed scalar with an automaton of its own uses that one, or the node's if smaller.
    /// Either holds every literal the node and its subtree look for in the scalar.
    fn scan_of(&self, node_scan: NodeScan, slot: u32) -> NodeScan {
        let scalar = engine::values::fixed_scalar(slot)
            .and_then(|i| self.fixed_scalar_scans.get(i).copied())
            .unwrap_or(NodeScan::Shared);
        let size = |i: u32| {
            self.node_prefilters
                .get(i as usize)
                .map_or(0, |p| p.gates.len())
        };
        match (node_scan, scalar) {
            (NodeScan::Nothing, _) | (_, NodeScan::Nothing) => NodeScan::Nothing,
            (NodeScan::Shared, own) | (own, NodeScan::Shared) => own,
            (NodeScan::Own(a), NodeScan::Own(b)) => {
                NodeScan::Own(if size(b) < size(a) { b } else { a })
            }
        }
    }

    /// If `slot` is a fixed scalar scanned for its own literals, which one: what it opens is
    /// not what the same bytes open elsewhere, and the [memo] keeps it apart.
    fn scanned_apart(&self, slot: u32) -> Option<usize> {
        engine::values::fixed_scalar(slot).filter(|&i| {
            self.fixed_scalar_scans
                .get(i)
                .is_some_and(|scan| *scan != NodeScan::Shared)
        })
    }

    /// Writes the entry of `(node, slot)`.
    fn store(cache: &mut Cache, node: ChainId, slot: u32, slots: usize, value: CachedValue) {
        cache.nodes.insert(node, slot, slots, value);
    }

    /// Computes the bytes of a filled `(node, slot)` left [`Bytes::Pending`], and of its
    /// pending ancestors: [`bytes`](Program::bytes) reads only computed ones.
    fn materialize(&self, cache: &mut Cache, node: ChainId, slot: u32, raw: &[u8]) {
        let pending = |cache: &Cache| {
            matches!(
                self.entry(cache, node, slot),
                Some(CachedValue {
                    bytes: Bytes::Pending,
                    ..
                })
            )
        };
        if !pending(cache) {
            return;
        }
        if let Some(parent) = self.chains.get(node as usize).and_then(|c| c.parent) {
            self.materialize(cache, parent, slot, raw);
        }
        let bytes = match self.transformed(cache, node, slot, raw) {
            Some(v) => Bytes::Own(v),
            None => Bytes::Parent,
        };
        if let Some(value) = cache.nodes.get_mut(node, slot) {
            value.bytes = bytes;
        }
    }

    /// `node`'s transformation applied to its parent's value (filled and materialized):
    /// `None` when it changes nothing.
    fn transformed(&self, cache: &Cache, node: ChainId, slot: u32, raw: &[u8]) -> Option<Vec<u8>> {
        let chain = self.chains.get(node as usize)?;
        let (Some(parent), Some(t)) = (chain.parent, chain.transform) else {
            return None;
        };
        // Most values hold none of the bytes that make a transformation do anything (no `%`
        // to decode, no `&` to unescape): those skip its pass.
        let untouched = chain
            .triggers
            .is_some_and(|triggers| !triggers.intersects(&self.present(cache, parent, slot)));
        let input = self.bytes(cache, parent, slot, raw);
        let output = match (untouched, t.case_change()) {
            (true, Some(case)) => case.apply(input),
            (true, None) => std::borrow::Cow::Borrowed(input),
            (false, _) => t.apply(input),
        };
        match output {
            std::borrow::Cow::Borrowed(_) => None,
            std::borrow::Cow::Owned(v) => Some(v),
        }
    }

    /// The [memo](memo) entry of the value of `slot`, looked up once per request.
    ///
    /// Inlined for its first line: every scan of a value asks, a thousand times a request
    /// with the CRS, and the answer is almost always known already.
    #[inline]
    fn memo_entry(&self, cache: &mut Cache, slot: u32, raw: &[u8], slots: usize) -> Option<u32> {
        if let Some(&e) = cache.memo_slots.get(slot as usize) {
            if e < NOT_REMEMBERED {
                return Some(e);
            }
        }
        self.memo_lookup(cache, slot, raw, slots)
    }

    /// Whether the memo knows that `plan`'s operator misses the value in `slot` at every
    /// stage of the condition, so that [`test`](Evaluate::test) would find no match there.
    ///
    /// A recurring value opens the same gates on every request, mostly by chance (a literal
    /// of a regex inside a word, a `;` or a `(` in every `User-Agent`). `test` would ask the
    /// memo, find the miss recorded on an earlier request, and skip the operator. Asked here,
    /// before the slot list goes back to the driver, the same answer also spares the driver
    /// its visit of the value (selectors, exclusions, the call to `test`), and a rule whose
    /// every candidate is known to miss is over at once. Only for operators whose verdict
    /// depends on the bytes alone (`pure`), as in `test`, and only for a slot whose memo entry
    /// was looked up (every listed slot was, by the scan that listed it).
    fn known_to_miss(
        memo_slots: &[u32],
        memo: &memo::ScanMemo,
        plan: &CondPlan,
        slot: usize,
    ) -> bool {
        if !plan.pure {
            return false;
        }
        let Some(&e) = memo_slots.get(slot) else {
            return false;
        };
        e < NOT_REMEMBERED
            && !plan.stages.is_empty()
            && plan
                .stages
                .iter()
                .all(|&(node, _)| memo.missed(e, node, plan.key))
    }

    /// [`memo_entry`](Program::memo_entry) for a slot not looked up yet, or not remembered.
    #[inline(never)]
    fn memo_lookup(&self, cache: &mut Cache, slot: u32, raw: &[u8], slots: usize) -> Option<u32> {
        let s = slot as usize;
        if cache.memo_slots.len() <= s {
            cache.memo_slots.resize(slots.max(s + 1), UNKNOWN);
        }
        match cache.memo_slots.get(s).copied() {
            Some(UNKNOWN) => {
                let e = cache.memo.entry(self.scanned_apart(slot), raw);
                if let Some(known) = cache.memo_slots.get_mut(s) {
                    *known = e.unwrap_or(NOT_REMEMBERED);
                }
                e
            }
            Some(NOT_REMEMBERED) | None => None,
            Some(e) => Some(e),
        }
    }

    /// The bytes (but for letters) of a cached `(node, slot)`, following `None`s up the chain.
    fn present(&self, cache: &Cache, mut node: ChainId, slot: u32) -> literals::ByteSet {
        loop {
            if let Some(CachedValue {
                present: Some(p), ..
            }) = self.entry(cache, node, slot)
            {
                return *p;
            }
            match self.chains.get(node as usize).and_then(|c| c.parent) {
                Some(parent) => node = parent,
                None => return literals::ByteSet::default(),
            }
        }
    }

    fn entry<'a>(&self, cache: &'a Cache, node: ChainId, slot: u32) -> Option<&'a CachedValue> {
        cache.nodes.get(node, slot)
    }

    /// The bytes of a filled and [materialized](Program::materialize) `(node, slot)`,
    /// following the parents' up to the raw value. A node without an entry is untouched: the
    /// raw value in its path's case.
    fn bytes<'a>(&self, cache: &'a Cache, mut node: ChainId, slot: u32, raw: &'a [u8]) -> &'a [u8] {
        loop {
            match self.entry(cache, node, slot) {
                Some(CachedValue {
                    bytes: Bytes::Own(b),
                    ..
                }) => return b,
                Some(_) => {}
                None => {
                    let copy = match self.chains.get(node as usize).and_then(|c| c.path_case) {
                        Some(Transform::Lowercase) => cache.lower.get(slot as usize),
                        Some(Transform::Uppercase) => cache.upper.get(slot as usize),
                        _ => None,
                    };
                    return copy.and_then(Option::as_deref).unwrap_or(raw);
                }
            }
            match self.chains.get(node as usize).and_then(|c| c.parent) {
                Some(parent) => node = parent,
                None => return raw,
            }
        }
    }

    /// The bytes of `node`'s parent (the raw value for the root): the node's own while it is
    /// being filled and its transformation changed nothing.
    fn parent_bytes<'a>(
        &self,
        cache: &'a Cache,
        node: ChainId,
        slot: u32,
        raw: &'a [u8],
    ) -> &'a [u8] {
        match self.chains.get(node as usize).and_then(|c| c.parent) {
            Some(parent) => self.bytes(cache, parent, slot, raw),
            None => raw,
        }
    }

    /// Whether `node` is untouched for the value of `slot` (see [`fill`](Program::fill)); the
    /// root must be filled.
    fn untouched(&self, cache: &Cache, node: ChainId, slot: u32) -> bool {
        let Some(chain) = self.chains.get(node as usize) else {
            return false;
        };
        chain.residual.is_none()
            && chain.path_triggers.is_some_and(|triggers| {
                self.entry(cache, 0, slot)
                    .and_then(|root| root.present)
                    .is_some_and(|present| !triggers.intersects(&present))
            })
    }

    /// Makes the lowercase or uppercase copy of a raw value, when it differs from the value.
    fn case_copy(&self, cache: &mut Cache, case: Transform, slot: u32, raw: &[u8], slots: usize) {
        let s = slot as usize;
        let upper = case == Transform::Uppercase;
        // The root's set of bytes is exact: it tells whether there is a letter to change.
        let changes = self
            .entry(cache, 0, slot)
            .and_then(|root| root.present)
            .is_none_or(|p| {
                if upper {
                    p.has_ascii_lowercase()
                } else {
                    p.has_ascii_uppercase()
                }
            });
        let copies = if upper {
            &mut cache.upper
        } else {
            &mut cache.lower
        };
        if copies.len() < slots.max(s + 1) {
            copies.resize_with(slots.max(s + 1), || None);
        }
        if let Some(copy @ None) = copies.get_mut(s) {
            if changes {
                if let std::borrow::Cow::Owned(changed) = case.apply(raw) {
                    *copy = Some(changed);
                }
            }
        }
    }

    /// The node whose entry holds the gates `(node, slot)` opened (itself, or the ancestor
    /// whose gates it shares); `None` when no entry of the chain holds any.
    fn open_owner(&self, cache: &Cache, mut node: ChainId, slot: u32) -> Option<ChainId> {
        loop {
            if let Some(CachedValue {
                open: Open::Own(_) | Open::Remembered(..),
                ..
            }) = self.entry(cache, node, slot)
            {
                return Some(node);
            }
            node = self.chains.get(node as usize)?.parent?;
        }
    }

    /// The gates a cached `(node, slot)` opened, following `None`s up the chain.
    fn open<'a>(&self, cache: &'a Cache, mut node: ChainId, slot: u32) -> &'a [u32] {
        loop {
            match self.entry(cache, node, slot).map(|v| &v.open) {
                Some(Open::Own(o)) => return o,
                Some(&Open::Remembered(e, index)) => return cache.memo.opened_at(e, index),
                _ => {}
            }
            match self.chains.get(node as usize).and_then(|c| c.parent) {
                Some(parent) => node = parent,
                None => return &[],
            }
        }
    }
}

/// What the memo knows of entry `e`'s value at `node`: its gates and its bytes but for letters.
fn known(cache: &Cache, e: u32, node: ChainId) -> Option<(Open, Option<literals::ByteSet>)> {
    let known = cache.memo.get(e, node)?;
    let open = match known.open {
        Some(_) => Open::Remembered(e, known.index),
        None => Open::Parent,
    };
    Some((open, known.present))
}

/// Which gates a value opens.
fn scan(pf: &Prefilter, value: &[u8], seen: &mut Vec<bool>, found: &mut Vec<usize>) -> Vec<u32> {
    // `seen` is all `false` between scans and sized once: clearing a flag per pattern for
    // every scan cost more than the scan with the CRS's thousands of literals. Only the flags
    // set here are reset.
    if seen.len() < pf.gates.len() {
        seen.resize(pf.gates.len(), false);
    }
    let mut open = Vec::new();
    found.clear();
    for m in pf.ac.find_overlapping_iter(value) {
        let p = m.pattern().as_usize();
        if let Some(flag) = seen.get_mut(p) {
            if !*flag {
                *flag = true;
                found.push(p);
                open.extend_from_slice(pf.gates.get(p).map_or(&[][..], Vec::as_slice));
            }
        }
    }
    for &p in found.iter() {
        if let Some(flag) = seen.get_mut(p) {
            *flag = false;
        }
    }
    open.sort_unstable();
    open.dedup();
    open
}

thread_local! {
    /// The last request's cache on this thread, emptied, for the next request to reuse:
    /// a cache holds a row per chain node and a list per gate, and allocating them afresh
    /// for every request cost more than some of the work they serve. Any program may use it
    /// ([`Cache::clear`] leaves nothing of the last one's).
    static SPARE_CACHE: std::cell::Cell<Option<Cache>> = const { std::cell::Cell::new(None) };
}

/// Empties the calling thread's memos: what the compiled programs remember of the values they
/// scanned, and the libinjection verdicts. The next inspection on this thread takes every value
/// as new.
///
/// The request path never calls this; the memos are bounded and forget on their own. It is for
/// benchmarks and profiles that inspect one request over and over: after the first inspection
/// every value of it is remembered, which the fresh tokens of real sign-in traffic never are,
/// so such a measure shows the cost of a request seen before. Forgetting between inspections
/// shows the cost of a request whose every value is new, the other bound.
///
/// ```
/// use waf_core::{compile, Request, RuleSet};
///
/// let rules = RuleSet::from_yaml_str(
///     "rules:\n  - {id: 1, targets: [args], match: detect_sqli}\n",
///     "r.yaml",
/// )?;
/// let program = compile(&rules)?;
/// let request = Request::builder().uri("/?q=hello").build();
/// for _ in 0..3 {
///     waf_core::compile::forget_memos();
///     assert!(!program.inspect(&request).is_blocking());
/// }
/// # Ok::<(), waf_core::Error>(())
/// ```
pub fn forget_memos() {
    SPARE_CACHE.with(|spare| {
        if let Some(mut cache) = spare.take() {
            cache.memo.forget();
            spare.set(Some(cache));
        }
    });
    crate::operator::injection::forget_memo();
}

impl Cache {
    /// Empties the cache, keeping its allocations.
    fn clear(&mut self) {
        self.nodes.clear();
        self.seen.clear();
        for list in &mut self.gate_slots {
            list.clear();
        }
        self.scanned.clear();
        self.lower.clear();
        self.upper.clear();
        self.memo_slots.clear();
        self.gates_listed.clear();
        self.scans_done.clear();
    }
}

impl Evaluate for Program {
    type Cache = Cache;

    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn take_cache(&self) -> Cache {
        let mut cache: Cache = SPARE_CACHE.with(|spare| spare.take()).unwrap_or_default();
        cache.memo.prepare(self.id);
        cache
    }

    fn give_back(&self, mut cache: Cache) {
        cache.clear();
        SPARE_CACHE.with(|spare| spare.set(Some(cache)));
    }

    /// The heart of the speed-up: a gated condition is decided before visiting a value. Every
    /// value of every collection it targets is scanned (once per chain node, shared with every
    /// other condition there) before the gate's slot list is read, so an empty list means none
    /// of those values contains a literal the operator needs — no match — and otherwise only
    /// the listed values are tested. Negated conditions match precisely when the literals are
    /// absent, so every value stays a candidate.
    fn candidates(
        &self,
        cache: &mut Cache,
        data: &RequestData<'_>,
        rule: usize,
        cond: usize,
        removed: Option<&engine::Removed<'_>>,
    ) -> Candidates {
        let hot = match (self.hot_start.get(rule), self.hot_start.get(rule + 1)) {
            (Some(&start), Some(&end)) if start as usize + cond < end as usize => {
                self.hot.get(start as usize + cond)
            }
            _ => None,
        };
        let Some(&HotCond {
            gate,
            scans_start,
            scans_end,
        }) = hot.filter(|h| h.gate != HotCond::ALL)
        else {
            return Candidates::All;
        };
        let done = if data.body_parsed() { 2 } else { 1 };
        let slots = data.slot_count();
        if cache.scanned.len() < self.scans.len() {
            cache.scanned.resize(self.scans.len(), 0);
        }
        if cache.gate_slots.len() < self.gated {
            cache.gate_slots.resize_with(self.gated, Vec::new);
        }
        let scans = self
            .cond_scans
            .get(scans_start as usize..scans_end as usize)
            .unwrap_or_default();
        for &index in scans {
            let index = index as usize;
            if cache.scanned.get(index).is_none_or(|&state| state >= done) {
                continue;
            }
            let Some(scan) = self.scans.get(index) else {
                continue;
            };
            // A target the request removed from the rule (a `ctl` after a Content-Type
            // check takes the raw body from the injection rules) is never visited: its
            // values need no transformation and no scan for this rule. The scan stays to
            // do for the rules that still read them.
            if let Some(removed) = removed {
                let whole = match &scan.name {
                    Some(name) => Some(&name[..]),
                    None if scan.collection.is_scalar() => Some(&b""[..]),
                    None => None,
                };
                if whole.is_some_and(|name| removed(scan.collection, name)) {
                    continue;
                }
            }
            if let Some(state) = cache.scanned.get_mut(index) {
                *state = done;
            }
            let node = scan.node;
            data.for_each(scan.collection, |v| {
                if scan
                    .name
                    .as_deref()
                    .is_some_and(|n| !n.eq_ignore_ascii_case(v.name))
                {
                    return;
                }
                // Gate lists are by gate, whatever the node: a list of gates already listed
                // for this slot (the value opened the same at its parent, or the node is
                // untouched) adds nothing. Most values open at most nodes what they opened at
                // the root, and most nodes are untouched by most values: those are done with
                // here, before `fill` makes their case copy (a test that needs it makes it).
                // A value the memo knows at this node (from an earlier request, or another
                // slot of this one) is listed at once under every gate it opened at any node;
                // a later scan of a node the memo knows then costs a bit test instead of a
                // fill. Listing it under a gate it opened elsewhere only makes it a candidate
                // there, and `test` looks at the gates of the condition's own nodes.
                let remembered = self.memo_entry(cache, v.slot, v.value, slots);
                if let Some(e) = remembered.filter(|&e| cache.memo.covers(e, node)) {
                    let s = v.slot as usize;
                    if cache.gates_listed.len() <= s {
                        cache.gates_listed.resize(slots.max(s + 1), NOT_LISTED);
                    }
                    let (gates, version) = cache.memo.gates(e);
                    if let Some(listed) = cache.gates_listed.get_mut(s) {
                        // The list grows while a fresh value is filled at new nodes: a slot
                        // listed under an older one is listed again.
                        if *listed != version {
                            *listed = version;
                            for &g in gates {
                                if let Some(list) = cache.gate_slots.get_mut(g as usize) {
                                    list.push(v.slot);
                                }
                            }
                        }
                    }
                    return;
                }
                let untouched = node != 0 && {
                    self.fill(cache, 0, v.slot, v.value, slots);
                    self.untouched(cache, node, v.slot)
                };
                if let (true, Some(e)) = (untouched, remembered) {
                    cache.memo.record_untouched(e, node);
                }
                let owner = if untouched {
                    0
                } else {
                    self.fill(cache, node, v.slot, v.value, slots);
                    match self.open_owner(cache, node, v.slot) {
                        Some(owner) => owner,
                        None => return,
                    }
                };
                match cache.nodes.get_mut(owner, v.slot) {
                    Some(entry) if !entry.listed => entry.listed = true,
                    _ => return,
                }
                let mut lists = std::mem::take(&mut cache.gate_slots);
                for &g in self.open(cache, owner, v.slot) {
                    if let Some(list) = lists.get_mut(g as usize) {
                        if list.last() != Some(&v.slot) {
                            list.push(v.slot);
                        }
                    }
                }
                cache.gate_slots = lists;
            });
        }
        match cache.gate_slots.get(gate as usize) {
            Some(list) if !list.is_empty() => {
                // A slot may be listed from the gates of several chain nodes: the list is put
                // in order by marking its slots and reading the marks back, in one pass over
                // each, instead of sorting it.
                let marks = &mut cache.marks;
                marks.clear();
                marks.resize(slots, false);
                let (mut lowest, mut highest) = (usize::MAX, 0);
                for &s in list {
                    if let Some(m) = marks.get_mut(s as usize) {
                        *m = true;
                        lowest = lowest.min(s as usize);
                        highest = highest.max(s as usize);
                    }
                }
                let mut sorted = Vec::with_capacity(list.len());
                let known = self.conds.get(rule).and_then(|c| c.get(cond));
                for s in lowest..=highest {
                    if !marks.get(s).copied().unwrap_or(false) {
                        continue;
                    }
                    if known.is_some_and(|plan| {
                        Self::known_to_miss(&cache.memo_slots, &cache.memo, plan, s)
                    }) {
                        continue;
                    }
                    sorted.push(s as u32);
                }
                if sorted.is_empty() {
                    return Candidates::None;
                }
                Candidates::Slots(sorted)
            }
            _ => Candidates::None,
        }
    }

    fn test(
        &self,
        cache: &mut Cache,
        data: &RequestData<'_>,
        probe: Probe<'_>,
        lookup: &mut Lookup<'_>,
    ) -> Option<(Vec<u8>, usize, Evidence)> {
        let (rule, cond) = (probe.rule, probe.cond);
        let c = &self.plan.rules[rule].conditions[cond];
        let matcher = &self.plan.matchers[rule][cond];
        let Some(slot) = probe.slot else {
            // Dynamic values: transformed on the spot, never cached.
            return engine::test_stages(&c.transforms, c.multi_match, probe.value, |v| {
                matcher
                    .matches_memoized(v, lookup, c.capture)
                    .xor(c.negated.then(Evidence::default))
            });
        };
        let plan = &self.conds[rule][cond];
        let slots = data.slot_count();
        // Where the operator last ran without deciding, by address and length. A `multiMatch`
        // condition tests the value after every transformation, and most transformations
        // change nothing: CRS 942100 ran libinjection four times on a long Referer (raw,
        // after `utf8toUnicode`, after `urlDecodeUni`, after `removeNulls`), twice on each of
        // two values. A stage whose bytes are the very bytes of an earlier one (a node that
        // changed nothing shares its parent's) has the same outcome, and is skipped. Nothing
        // cached is dropped during a test, so an address seen twice holds the same bytes.
        let mut last_tested: Option<(usize, usize)> = None;
        for &(node, stage) in &plan.stages {
            self.fill(cache, node, slot, probe.value, slots);
            let possible = match plan.gate {
                Some(g) => self.open(cache, node, slot).binary_search(&g).is_ok(),
                None => true,
            } && plan
                .regex_bytes
                .is_none_or(|required| required.intersects(&self.present(cache, node, slot)));
            if !possible && !c.negated {
                // The common case, kept cheap: the literals are not in this value.
                continue;
            }
            // A value seen before, which this operator did not match then at this node: the
            // regexes that recurring headers open (a `;` in every User-Agent) run once.
            let remembered = if plan.pure && possible {
                self.memo_entry(cache, slot, probe.value, slots)
            } else {
                None
            };
            // Or which it matched, when the condition is negated: a negated condition fails on
            // most values (CRS-style "anything but a token" filters), and runs once per value.
            if c.negated && remembered.is_some_and(|e| cache.memo.matched(e, node, plan.key)) {
                continue;
            }
            let possible =
                possible && remembered.is_none_or(|e| !cache.memo.missed(e, node, plan.key));
            if !possible && !c.negated {
                // Its bytes here are not even computed.
                continue;
            }
            self.materialize(cache, node, slot, probe.value);
            let bytes = self.bytes(cache, node, slot, probe.value);
            let address = (bytes.as_ptr() as usize, bytes.len());
            if last_tested == Some(address) {
                continue;
            }
            let possible = possible
                && plan
                    .needs_byte
                    .is_none_or(|table| bytes.iter().any(|&b| table[usize::from(b)]));
            let found = if possible {
                last_tested = Some(address);
                matcher.matches_memoized(bytes, lookup, c.capture)
            } else {
                None
            };
            let missed = possible && found.is_none();
            let matched = found.is_some();
            if let Some(evidence) = found.xor(c.negated.then(Evidence::default)) {
                return Some((bytes.to_vec(), stage, evidence));
            }
            if let (true, Some(e)) = (missed, remembered) {
                cache.memo.record_miss(e, node, plan.key);
            }
            if let (true, true, Some(e)) = (c.negated, matched, remembered) {
                cache.memo.record_match(e, node, plan.key);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{injection_gate, NodeScan};
    use crate::{compile, Request, RuleSet};

    /// Benchmarks and `waf profile` rely on it: after `forget_memos`, the next inspection on the
    /// thread remembers no value.
    #[test]
    fn forget_memos_empties_the_threads_scan_memo() {
        let set = RuleSet::from_yaml_str(
            "rules:\n  - id: 1\n    targets: [args]\n    match: {rx: 'evil'}\n",
            "one.yaml",
        )
        .expect("rules load");
        let program = compile(&set).expect("rules compile");
        // A value is remembered the second time it is seen.
        for _ in 0..2 {
            program.inspect(&Request::builder().uri("/?q=good").build());
        }
        let remembered = || {
            super::SPARE_CACHE.with(|spare| {
                let cache = spare.take().expect("the request handed its cache back");
                let n = cache.memo.len();
                spare.set(Some(cache));
                n
            })
        };
        assert!(remembered() > 0);
        super::forget_memos();
        assert_eq!(remembered(), 0);
    }

    /// Regression: the thread's spare cache passes from program to program; nothing of one
    /// request (transformed values, opened gates) may leak into the next, whichever program
    /// runs it.
    #[test]
    fn a_reused_cache_carries_nothing_between_programs() {
        let small = RuleSet::from_yaml_str(
            "rules:\n  - id: 1\n    targets: [args]\n    match: {rx: 'evil'}\n",
            "small.yaml",
        )
        .unwrap();
        let large = RuleSet::from_yaml_str(
            "rules:
  - id: 2
    targets: [args, request_headers]
    transforms: [url_decode_uni, lowercase]
    match: {rx: 'union\\s+select'}
  - id: 3
    targets: [args]
    transforms: [url_decode_uni, html_entity_decode, lowercase]
    match: {contains: 'evil'}
",
            "large.yaml",
        )
        .unwrap();
        let (small, large) = (compile(&small).unwrap(), compile(&large).unwrap());
        let evil = Request::builder().uri("/?q=evil").build();
        let clean = Request::builder().uri("/?q=union%20station").build();
        let union = Request::builder().uri("/?q=1%20UNION%20SELECT%202").build();
        for _ in 0..3 {
            assert!(large.inspect(&union).is_blocking());
            assert!(!small.inspect(&union).is_blocking());
            assert!(small.inspect(&evil).is_blocking());
            assert!(!small.inspect(&clean).is_blocking());
            assert!(!large.inspect(&clean).is_blocking());
            assert!(large.inspect(&evil).is_blocking());
        }
    }

    /// The scan memo replays what a value opened before: an attack seen before is caught
    /// again, also in another collection, and a clean value seen before stays clean.
    #[test]
    fn remembered_values_open_what_they_opened() {
        let set = RuleSet::from_yaml_str(
            "rules:
  - id: 1
    targets: [args, request_headers]
    transforms: [url_decode_uni, lowercase]
    match: {rx: 'union\\s+select'}
",
            "memo.yaml",
        )
        .unwrap();
        let program = compile(&set).unwrap();
        let in_args = Request::builder().uri("/?q=1%20UNION%20SELECT%202").build();
        let in_header = Request::builder()
            .uri("/")
            .header("X-Q", "1%20UNION%20SELECT%202")
            .build();
        let clean = Request::builder().uri("/?q=union%20station").build();
        for _ in 0..3 {
            assert!(program.inspect(&in_args).is_blocking());
            assert!(program.inspect(&in_header).is_blocking());
            assert!(!program.inspect(&clean).is_blocking());
        }
    }

    /// The memo remembers a negated condition's operator matching a value: the condition then
    /// fails on that value without running, and still holds on the values it did not match.
    #[test]
    fn remembered_values_keep_a_negated_conditions_verdict() {
        let set = RuleSet::from_yaml_str(
            "rules:
  - id: 1
    targets: [args, request_headers:x-q]
    transforms: [url_decode_uni]
    negate: true
    match: {rx: '^[a-z]+$'}
",
            "negated.yaml",
        )
        .unwrap();
        let program = compile(&set).unwrap();
        let token = Request::builder().uri("/?q=abc").build();
        let header = Request::builder().uri("/").header("X-Q", "abc").build();
        let other = Request::builder().uri("/?q=ab%20c").build();
        for _ in 0..3 {
            assert!(!program.inspect(&token).is_blocking());
            assert!(!program.inspect(&header).is_blocking());
            assert!(program.inspect(&other).is_blocking());
        }
    }

    /// CRS 920450's `^.*$` over header names used to join the residual set of the
    /// `t:lowercase` chain node: that node then ran the set on every value reaching it and was
    /// never untouched. It now runs on header names alone; what it and the rules sharing its
    /// node decide must not change, nor a `@streq` of one byte, no longer a literal gate.
    #[test]
    fn an_empty_matching_regex_runs_on_its_own_targets() {
        let mut loader = crate::rules::Loader::new();
        loader
            .add_text(
                std::path::Path::new("restricted.conf"),
                r#"
SecAction "id:1,phase:1,pass,nolog,setvar:'tx.restricted_headers=/proxy/ /lock-token/'"
SecRule REQUEST_HEADERS_NAMES "@rx ^.*$" "id:2,phase:1,deny,capture,t:none,t:lowercase,setvar:'tx.header_name_%{tx.0}=/%{tx.0}/',chain"
    SecRule TX:/^HEADER_NAME_/ "@within %{tx.restricted_headers}" ""
SecRule ARGS|REQUEST_HEADERS "@rx evil" "id:3,phase:1,deny,t:none,t:lowercase"
SecRule ARGS:page "@streq 2" "id:4,phase:1,deny,t:none"
"#,
            )
            .expect("rules load");
        let (set, _) = loader.finish().expect("rules load");
        let program = compile(&set).expect("rules compile");
        assert_eq!(
            program.residual_gate(2, 0),
            Some(crate::compile::ResidualGate::MatchesEmpty)
        );
        let request = |uri: &str, header: (&str, &str)| {
            Request::builder()
                .uri(uri)
                .header("Host", "login.contoso.com")
                .header(header.0, header.1)
                .build()
        };
        let cases = [
            (request("/?q=fine", ("Accept", "*/*")), None),
            (request("/?q=fine", ("Proxy", "http://x")), Some(2)),
            (request("/?q=fine", ("Lock-Token", "t")), Some(2)),
            (request("/?q=EVIL", ("Accept", "*/*")), Some(3)),
            (request("/?q=fine", ("X-Note", "EviL")), Some(3)),
            (request("/?page=2", ("Accept", "*/*")), Some(4)),
            (request("/?page=12", ("Accept", "*/*")), None),
            (request("/?p=2", ("Accept", "*/*")), None),
        ];
        for round in 0..3 {
            for (r, decided_by) in &cases {
                assert_eq!(
                    program.inspect(r).decided_by,
                    *decided_by,
                    "round {round}: {:?} {:?}",
                    r.uri(),
                    r.headers()
                );
            }
        }
    }

    /// A target a `ctl` removed from a rule is not scanned for that rule: a form's raw body,
    /// which the injection rules leave to its fields, was decoded and scanned at every chain
    /// node they read it at. The rules that still read it must see it all the same, at the
    /// same node, and the reference evaluator (which scans nothing) must agree.
    #[test]
    fn a_removed_target_is_not_scanned_for_its_rule_only() {
        let set = RuleSet::from_yaml_str(
            "rules:
  - id: 1
    phase: headers
    action: pass
    targets: [request_headers:content-type]
    match: {contains: 'form-urlencoded'}
    ctl: ['ruleRemoveTargetById=2;REQUEST_BODY']
  - id: 2
    phase: body
    targets: [request_body]
    transforms: [url_decode_uni, lowercase]
    match: {rx: 'evil'}
  - id: 3
    phase: body
    targets: [request_body]
    transforms: [url_decode_uni, lowercase]
    match: {rx: 'evil'}
",
            "removed.yaml",
        )
        .unwrap();
        let program = compile(&set).unwrap();
        let post = |content_type: &str, body: &str| {
            Request::builder()
                .method("POST")
                .uri("/login")
                .header("Content-Type", content_type)
                .body(body.as_bytes())
                .build()
        };
        let form = "application/x-www-form-urlencoded";
        let cases = [
            (post(form, "q=%45vil"), Some(3)),
            (post("text/plain", "q=%45vil"), Some(2)),
            (post(form, "q=fine"), None),
            (post("text/plain", "q=fine"), None),
        ];
        requests_decided_alike(&program, &set, &cases, |r| {
            String::from_utf8_lossy(r.body()).into_owned()
        });
    }

    /// A chain node scans for the literals of its own subtree only, so what one node's scan
    /// of some bytes opened says nothing of another node's literals. Here two nodes give the
    /// same long bytes (`utf8_to_unicode` changes nothing in ASCII), each with its own small
    /// automaton: the request's record of long scans must not hand rule 1's empty result to
    /// rule 2, whose `bbb` it never looked for. The root's shared automaton, which holds
    /// every literal, may serve any node.
    #[test]
    fn a_nodes_scan_serves_only_nodes_scanning_for_the_same_literals() {
        let set = RuleSet::from_yaml_str(
            "rules:
  - id: 1
    targets: [args]
    transforms: [url_decode_uni]
    match: {contains: 'aaa'}
  - id: 2
    targets: [args]
    transforms: [utf8_to_unicode, url_decode_uni]
    match: {contains: 'bbb'}
  - id: 3
    targets: [args]
    match: {pm: [alpha, bravo, charlie, delta, echo, foxtrot, golf, hotel]}
",
            "nodes.yaml",
        )
        .unwrap();
        let program = compile(&set).unwrap();
        let scans: Vec<NodeScan> = program.chains.iter().map(|c| c.scan).collect();
        assert!(
            scans
                .iter()
                .filter(|s| matches!(s, NodeScan::Own(_)))
                .count()
                >= 2,
            "{scans:?}"
        );
        let pad = "x".repeat(80);
        let cases = [
            (format!("q={pad}%2562bb"), Some(2)),
            (format!("q={pad}%2561aa"), Some(1)),
            (format!("q={pad}%2578xx"), None),
            (format!("q={pad}golf%2525"), Some(3)),
        ];
        queries_decided_alike(&program, &set, &cases);
    }

    /// A fixed scalar that few conditions read (here REQUEST_BASENAME, by rule 2) is scanned
    /// for their literals only; REMOTE_ADDR, which no gated condition reads, not at all.
    /// What such a scan opened is not what the same bytes open in a header, so the memo keeps
    /// it apart: after `/evil` was scanned as a basename (for `pwn` alone), a header `evil`
    /// must still open rule 1's gate.
    #[test]
    fn a_fixed_scalar_scanned_apart_does_not_teach_the_memo() {
        let set = RuleSet::from_yaml_str(
            "rules:
  - id: 1
    targets: [request_headers]
    match: {contains: 'evil'}
  - id: 2
    targets: [request_basename]
    match: {contains: 'pwn'}
  - id: 3
    targets: [args]
    match: {pm: [alpha, bravo, charlie, delta, echo, foxtrot, golf, hotel]}
",
            "apart.yaml",
        )
        .unwrap();
        let program = compile(&set).unwrap();
        use crate::rules::Collection;
        let scan_of = |c: Collection| {
            crate::engine::values::FIXED_SCALARS
                .iter()
                .position(|&h| h == c)
                .and_then(|i| program.fixed_scalar_scans.get(i).copied())
        };
        assert!(matches!(
            scan_of(Collection::RequestBasename),
            Some(NodeScan::Own(_))
        ));
        assert_eq!(scan_of(Collection::RemoteAddr), Some(NodeScan::Nothing));
        let request = |uri: &str, header: Option<&str>| {
            let mut request = Request::builder().uri(uri);
            if let Some(h) = header {
                request = request.header("X-Foo", h);
            }
            request.build()
        };
        let cases = [
            (request("/evil", None), None),
            (request("/", Some("evil")), Some(1)),
            (request("/pwn", None), Some(2)),
            (request("/", Some("pwn")), None),
            (request("/x?q=golf", Some("evil")), Some(1)),
        ];
        requests_decided_alike(&program, &set, &cases, |r| {
            format!("{} {:?}", String::from_utf8_lossy(r.uri()), r.headers())
        });
    }

    /// A regex gated by literals that also requires a rare byte runs only on values holding
    /// that byte: `post` occurs in `form_post`, but without a line break the regex cannot
    /// match. Negated, the condition then matches without running it. The reference
    /// evaluator, which has no gates, must agree.
    #[test]
    fn a_regex_runs_only_where_its_required_bytes_are() {
        let set = RuleSet::from_yaml_str(
            r"rules:
  - id: 1
    targets: [args:q]
    match: {rx: '[\r\n]+(?:get|post)\s+/'}
  - id: 2
    targets: [args:n]
    negate: true
    match: {rx: '[\r\n]+(?:get|post)'}
",
            "bytes.yaml",
        )
        .unwrap();
        let program = compile(&set).unwrap();
        assert!(
            program
                .conds
                .iter()
                .flatten()
                .all(|c| c.regex_bytes.is_some()),
            "both regexes require a line break"
        );
        let cases = [
            ("q=form_post%20/".to_owned(), None),
            ("q=x%0Apost%20/".to_owned(), Some(1)),
            ("q=x%0Dget%20/".to_owned(), Some(1)),
            ("n=form_post".to_owned(), Some(2)),
            ("n=x%0Apost".to_owned(), None),
        ];
        queries_decided_alike(&program, &set, &cases);
    }

    /// A `multi_match` condition tests a value once per distinct stage: a stage whose
    /// transformation changed nothing shares its parent's bytes and is skipped (CRS 942100 ran
    /// libinjection four times on a long Referer, which the verdict memo does not keep). The
    /// verdicts must be those of testing every stage, decided at the stage that changed the
    /// value, negated or not, for values longer than the memo keeps; the reference evaluator
    /// tests every stage.
    #[test]
    fn a_multi_match_stage_that_changed_nothing_is_not_tested_again() {
        let set = RuleSet::from_yaml_str(
            "rules:
  - id: 1
    targets: [args:a]
    transforms: [url_decode_uni, remove_nulls, lowercase]
    multi_match: true
    match: {rx: 'evil'}
  - id: 2
    targets: [args:b]
    transforms: [url_decode_uni, remove_nulls, lowercase]
    multi_match: true
    negate: true
    match: {rx: '^[x%0-9]+$'}
",
            "multi.yaml",
        )
        .unwrap();
        let program = compile(&set).unwrap();
        let pad = "x".repeat(300);
        let cases = [
            // Unchanged by every transformation: tested once, no match.
            (format!("a={pad}&b={pad}"), None),
            // A match in the raw value, the first stage.
            (format!("a={pad}evil&b={pad}"), Some(1)),
            // Only decoding (`%2545` reaches the rule as `%45`) makes it: the third stage.
            (format!("a={pad}%2545vil&b={pad}"), Some(1)),
            // Only lowercasing, after two stages that changed nothing: the last stage.
            (format!("a={pad}EVIL&b={pad}"), Some(1)),
            // Negated: the raw value already fails the pattern, which is a match.
            (format!("a={pad}&b={pad}X"), Some(2)),
            // Negated: `xx%41` passes the pattern; decoded, `xxA` fails it: the second stage.
            (format!("a={pad}&b={pad}%2541"), Some(2)),
        ];
        queries_decided_alike(&program, &set, &cases);
    }

    /// Each query (`/?{query}`) is decided by the rule given, as
    /// [`requests_decided_alike`] checks.
    fn queries_decided_alike(
        program: &crate::Program,
        set: &RuleSet,
        cases: &[(String, Option<u32>)],
    ) {
        let requests: Vec<(Request, Option<u32>)> = cases
            .iter()
            .map(|(query, decided_by)| {
                (
                    Request::builder().uri(format!("/?{query}")).build(),
                    *decided_by,
                )
            })
            .collect();
        requests_decided_alike(program, set, &requests, |r| {
            let uri = r.uri();
            String::from_utf8_lossy(&uri[uri.len().saturating_sub(16)..]).into_owned()
        });
    }

    /// Each request is decided by the rule given, by `program` in three rounds (a value is
    /// remembered from the second, and known from the third) and by the reference evaluator.
    /// `label` names a request in a failure.
    fn requests_decided_alike(
        program: &crate::Program,
        set: &RuleSet,
        cases: &[(Request, Option<u32>)],
        label: impl Fn(&Request) -> String,
    ) {
        let reference = crate::reference::Reference::new(set).unwrap();
        for round in 0..3 {
            for (request, decided_by) in cases {
                let at = label(request);
                assert_eq!(
                    program.inspect(request).decided_by,
                    *decided_by,
                    "round {round}: {at}"
                );
                assert_eq!(reference.inspect(request).decided_by, *decided_by, "{at}");
            }
        }
    }

    /// A recurring value that opens a condition's gate and misses its operator is no longer a
    /// candidate once the memo knows the miss: it must hide neither another value of the
    /// request that matches, nor a match at a later stage of a `multi_match` condition (a miss
    /// at one stage is not a miss at all of them).
    #[test]
    fn a_value_known_to_miss_is_no_candidate_and_hides_nothing() {
        let set = RuleSet::from_yaml_str(
            "rules:
  - id: 1
    targets: [args]
    transforms: [url_decode_uni]
    match: {rx: 'union\\s+select'}
  - id: 2
    targets: [request_headers:x-q]
    transforms: [url_decode_uni, lowercase]
    multi_match: true
    match: {rx: 'drop\\s+table'}
",
            "known-miss.yaml",
        )
        .unwrap();
        let program = compile(&set).unwrap();
        let header = |value: &str| Request::builder().uri("/").header("X-Q", value).build();
        let cases = [
            // `select` opens rule 1's gate in `a`, whose regex misses it.
            (Request::builder().uri("/?a=select%20nothing").build(), None),
            (
                Request::builder()
                    .uri("/?a=select%20nothing&b=union%20select%201")
                    .build(),
                Some(1),
            ),
            // Rule 2 misses the raw and the decoded value, and matches the lowercase one.
            (header("DROP%20TABLE"), Some(2)),
            (header("drop%20tables%20later"), Some(2)),
            (header("table%20drop"), None),
        ];
        requests_decided_alike(&program, &set, &cases, |r| format!("{r:?}"));
    }

    /// Regression: a value carried twice in one request (two cookies of one name) was listed
    /// under its memo entry's gates when a scan of the root first met its second slot, and not
    /// again when a later scan found, in its first slot, a gate that opens only once decoded:
    /// the second cookie was never tested there.
    #[test]
    fn a_repeated_value_is_listed_again_when_its_gates_grow() {
        let set = RuleSet::from_yaml_str(
            "rules:
  - id: 1
    targets: [request_cookies]
    match: {rx: 'zzz'}
  - id: 2
    targets: [request_cookies]
    transforms: [url_decode_uni]
    match: {rx: '<img'}
",
            "repeated.yaml",
        )
        .unwrap();
        let program = compile(&set).unwrap();
        let request = Request::builder()
            .uri("/")
            .header("Cookie", "q=%3Cimg%20src; q=%3Cimg%20src")
            .build();
        for round in 0..3 {
            let verdict = program.inspect(&request);
            let values: Vec<usize> = verdict.matches.iter().map(|m| m.values.len()).collect();
            assert_eq!(values, [2], "round {round}");
        }
    }

    /// A request scans a long value once: REQUEST_URI_RAW takes what REQUEST_URI's scan
    /// found, and a value of the same length but other bytes is scanned on its own.
    #[test]
    fn a_long_value_scanned_twice_in_a_request_opens_the_same_gates() {
        let set = RuleSet::from_yaml_str(
            "rules:
  - id: 1
    targets: [request_uri]
    match: {contains: '/etc/passwd'}
    action: pass
  - id: 2
    targets: [request_uri_raw]
    match: {contains: '/etc/passwd'}
    action: pass
  - id: 3
    targets: [request_uri]
    transforms: [lowercase]
    match: {contains: '/etc/shadow'}
    action: pass
  - id: 4
    targets: [args]
    match: {contains: '/etc/passwd'}
    action: pass
",
            "scanned-twice.yaml",
        )
        .unwrap();
        let program = compile(&set).unwrap();
        let fired = |uri: &str| {
            let verdict = program.inspect(&Request::builder().uri(uri).build());
            let mut ids: Vec<(u32, usize)> = verdict
                .matches
                .iter()
                .map(|m| (m.rule_id, m.values.len()))
                .collect();
            ids.sort_unstable();
            ids
        };
        // Longer than the memo remembers, so that every request scans its values afresh.
        for (round, filler) in ["x", "y", "z"].into_iter().enumerate() {
            let pad = filler.repeat(600);
            let passwd = format!("/download?file=/etc/passwd&pad={pad}");
            let shadow = format!("/download?file=/ETC/SHADOW&pad={pad}");
            assert_eq!(passwd.len(), shadow.len());
            assert_eq!(fired(&passwd), [(1, 1), (2, 1), (4, 1)], "round {round}");
            assert_eq!(fired(&shadow), [(3, 1)], "round {round}");
            // Two arguments of one length, only one of which holds the literal, in either
            // order.
            let with = format!("{}/etc/passwd", &pad[11..]);
            for uri in [format!("/?a={pad}&b={with}"), format!("/?a={with}&b={pad}")] {
                assert_eq!(
                    fired(&uri),
                    [(1, 1), (2, 1), (4, 1)],
                    "round {round}: {uri}"
                );
            }
        }
    }

    /// `@validateByteRange` is gated by the bytes it does not allow, when it allows every
    /// letter; otherwise it runs on every value.
    #[test]
    fn validate_byte_range_is_gated_by_the_bytes_it_does_not_allow() {
        use super::byte_gate;
        let gate = |spec: &str| byte_gate(&Operator::ValidateByteRange(spec.into()));
        let outside = |spec: &str| gate(spec).map(|g| g.bytes().collect::<Vec<u8>>());
        assert_eq!(outside("1-255"), Some(vec![0]));
        assert_eq!(outside("0-255"), Some(vec![]));
        let printable = outside("32-126").unwrap();
        assert_eq!(printable.len(), 256 - 95);
        assert!(
            printable.contains(&b'\t') && printable.contains(&0x80) && !printable.contains(&b' ')
        );
        assert_eq!(
            gate("48-57"),
            None,
            "digits only: the letters are not allowed"
        );
        assert_eq!(gate("32-64,91-126"), None, "no capital letters");
        assert_eq!(gate("not a range"), None);
        let set = RuleSet::from_yaml_str(
            "rules:
  - id: 1
    targets: [args]
    transforms: [lowercase]
    match: {validate_byte_range: '32-126'}
",
            "range.yaml",
        )
        .unwrap();
        let program = compile(&set).unwrap();
        assert_eq!(
            program.gated_condition_count(),
            0,
            "a byte gate is not a literal gate"
        );
        for _ in 0..2 {
            assert!(!program
                .inspect(&Request::builder().uri("/?q=Abc").build())
                .is_blocking());
            assert!(program
                .inspect(&Request::builder().uri("/?q=A%09c").build())
                .is_blocking());
            assert!(program
                .inspect(&Request::builder().uri("/?q=A%C3%A9").build())
                .is_blocking());
        }
    }

    use crate::operator::{injection, Operator};
    use proptest::prelude::*;

    /// Values built from SQL and HTML keywords and every byte a gate lets through.
    fn gated_value(needs: &'static [bool; 256]) -> impl Strategy<Value = Vec<u8>> {
        let words = prop::sample::select(vec![
            "union",
            "select",
            "or",
            "and",
            "1",
            "0x41",
            "sleep",
            "benchmark",
            "from",
            "where",
            "admin",
            "null",
            "char",
            "concat",
            "having",
            "order",
            "exec",
            "xp_cmdshell",
            "waitfor",
            "drop",
            "into",
            "outfile",
            "version",
            "like",
            "not",
            "case",
            "when",
            "sp_password",
            "limit",
            "javascript:alert(1)",
            "onerror",
            "script",
            "alert(1)",
            "vbscript:",
            "expression(",
            "data:text/html",
            "img",
            "svg",
            "iframe",
            "onload",
            "document.cookie",
            "eval",
            "src",
            "href",
            "#",
            "--",
            "/*",
            "*/",
            "@@",
            ";",
            "(",
        ]);
        let allowed: Vec<u8> = (0u8..=255).filter(|&b| !needs[usize::from(b)]).collect();
        let piece = prop_oneof![
            words.prop_map(|w| w.as_bytes().to_vec()),
            prop::collection::vec(prop::sample::select(allowed), 0..6),
        ];
        prop::collection::vec(piece, 0..8).prop_map(move |pieces| {
            pieces
                .concat()
                .into_iter()
                .filter(|&b| !needs[usize::from(b)])
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn injection_gates_hold_for_sqli(v in gated_value(injection_gate(&Operator::DetectSqli).unwrap_or(&[true; 256]))) {
            prop_assert!(injection::detect_sqli(&v).is_none(), "{:?}", String::from_utf8_lossy(&v));
        }

        #[test]
        fn injection_gates_hold_for_xss(v in gated_value(injection_gate(&Operator::DetectXss).unwrap_or(&[true; 256]))) {
            prop_assert!(!injection::detect_xss(&v), "{:?}", String::from_utf8_lossy(&v));
        }
    }
}
