//! Operators: the test a rule applies to each (transformed) value.
//!
//! [`Operator`] is the rule-language side: plain data, as written in a rule file. [`Matcher`] is
//! the compiled side: regexes built, phrase lists in an automaton, address sets parsed. The
//! compiled program and the reference evaluator both confirm a match with the same `Matcher`, so
//! they can only disagree about *which* values they test, which is what the differential test
//! is for.
//!
//! Regexes match bytes, not text: Unicode classes are off and a pattern may match invalid UTF-8,
//! exactly like PCRE in ModSecurity without its UTF-8 flag.
//!
//! ```
//! use waf_core::operator::{Matcher, Operator};
//! use waf_core::rules::Macro;
//!
//! let m = Matcher::new(&Operator::Rx("(?i)union\\s+select".into())).unwrap();
//! assert!(m.matches(b"1 UNION  SELECT 2", &mut |_| None).is_some());
//! let m = Matcher::new(&Operator::Ge(Macro::parse("5"))).unwrap();
//! assert!(m.matches(b"7", &mut |_| None).is_some());
//! ```

pub mod backtrack;
pub mod injection;
pub mod ip;
pub mod validate;

use std::borrow::Cow;
use std::fmt;

use aho_corasick::AhoCorasick;
use regex_automata::meta::Regex;
use regex_automata::util::syntax;

use crate::rules::{Macro, MacroPart};

/// A rule's operator, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operator {
    /// A regular expression (Rust `regex` syntax, matching bytes).
    Rx(String),
    /// A regular expression built from `%{...}` macros when the rule runs, in ModSecurity's
    /// PCRE syntax (rewritten as for [`Rx`](Operator::Rx)); the last few compiled forms are
    /// cached. The CRS needs it once: 920480 tests a charset against
    /// `^%{tx.allowed_request_content_type_charset}$`. A pattern that does not compile never
    /// matches.
    RxMacro(Macro),
    /// A regular expression in ModSecurity's PCRE syntax that needs backtracking: lookaround,
    /// backreferences, atomic groups, possessive quantifiers. It runs on a
    /// [bounded backtracking matcher](backtrack) behind a linear-time prefilter, and a search
    /// that backtracks more than `step_limit` times is no match (ModSecurity's
    /// `SecPcreMatchLimit`; [`BACKTRACK_LIMIT`](backtrack::BACKTRACK_LIMIT) by default). The
    /// SecLang front end uses it for the CRS patterns [`Rx`](Operator::Rx) cannot hold; the
    /// YAML rule language does not offer it, so that a rule file never holds a pattern whose
    /// cost depends on a step limit.
    RxBacktracking {
        /// The pattern, in PCRE syntax.
        pattern: String,
        /// Most backtracking steps of one search.
        step_limit: usize,
    },
    /// Any of these phrases, case-insensitively (ModSecurity's `@pm`).
    Pm(Vec<Vec<u8>>),
    /// Contains the text (case-sensitive).
    Contains(Macro),
    /// Contains the text as a whole word.
    ContainsWord(Macro),
    /// Starts with the text.
    BeginsWith(Macro),
    /// Ends with the text.
    EndsWith(Macro),
    /// Equals the text.
    StrEq(Macro),
    /// The value is one of the space-separated words of the text (`@within`: the value must be
    /// a substring of the text, as in ModSecurity).
    Within(Macro),
    /// Numerically equal.
    Eq(Macro),
    /// Numerically greater or equal.
    Ge(Macro),
    /// Numerically greater.
    Gt(Macro),
    /// Numerically less or equal.
    Le(Macro),
    /// Numerically less.
    Lt(Macro),
    /// The value is an IP address inside one of these networks.
    IpMatch(String),
    /// Some byte is outside these ranges (`"1-255"`).
    ValidateByteRange(String),
    /// Some `%` escape is invalid.
    ValidateUrlEncoding,
    /// Some UTF-8 sequence is invalid.
    ValidateUtf8Encoding,
    /// libinjection says SQL injection.
    DetectSqli,
    /// libinjection says cross-site scripting.
    DetectXss,
    /// Always matches.
    Unconditional,
    /// Never matches.
    NoMatch,
}

impl Operator {
    /// ModSecurity's name for the operator, such as `rx` or `pm`.
    pub fn name(&self) -> &'static str {
        match self {
            Operator::Rx(_) | Operator::RxMacro(_) | Operator::RxBacktracking { .. } => "rx",
            Operator::Pm(_) => "pm",
            Operator::Contains(_) => "contains",
            Operator::ContainsWord(_) => "containsWord",
            Operator::BeginsWith(_) => "beginsWith",
            Operator::EndsWith(_) => "endsWith",
            Operator::StrEq(_) => "streq",
            Operator::Within(_) => "within",
            Operator::Eq(_) => "eq",
            Operator::Ge(_) => "ge",
            Operator::Gt(_) => "gt",
            Operator::Le(_) => "le",
            Operator::Lt(_) => "lt",
            Operator::IpMatch(_) => "ipMatch",
            Operator::ValidateByteRange(_) => "validateByteRange",
            Operator::ValidateUrlEncoding => "validateUrlEncoding",
            Operator::ValidateUtf8Encoding => "validateUtf8Encoding",
            Operator::DetectSqli => "detectSQLi",
            Operator::DetectXss => "detectXSS",
            Operator::Unconditional => "unconditionalMatch",
            Operator::NoMatch => "noMatch",
        }
    }

    /// The linear-time regex (Rust syntax) that matches every value this operator matches: an
    /// [`Rx`](Operator::Rx)'s pattern, an [`RxBacktracking`](Operator::RxBacktracking)'s
    /// relaxed one. The compiler gates and groups both alike; the operator confirms.
    pub(crate) fn linear_regex(&self) -> Option<Cow<'_, str>> {
        match self {
            Operator::Rx(pattern) => Some(Cow::Borrowed(pattern)),
            Operator::RxBacktracking { pattern, .. } => {
                crate::rules::seclang::pcre_to_relaxed(pattern)
                    .ok()
                    .map(Cow::Owned)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.name())?;
        match self {
            Operator::Rx(p) | Operator::RxBacktracking { pattern: p, .. } => write!(f, " {p}"),
            Operator::Pm(list) => write!(f, " ({} phrases)", list.len()),
            Operator::RxMacro(m)
            | Operator::Contains(m)
            | Operator::ContainsWord(m)
            | Operator::BeginsWith(m)
            | Operator::EndsWith(m)
            | Operator::StrEq(m)
            | Operator::Within(m)
            | Operator::Eq(m)
            | Operator::Ge(m)
            | Operator::Gt(m)
            | Operator::Le(m)
            | Operator::Lt(m) => write!(f, " {m}"),
            Operator::IpMatch(s) | Operator::ValidateByteRange(s) => write!(f, " {s}"),
            _ => Ok(()),
        }
    }
}

/// Why an operator could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorError(String);

impl fmt::Display for OperatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OperatorError {}

/// What made a value match: shown by `waf explain` and in the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Evidence {
    /// The part of the value that matched (the regex match, the phrase, the libinjection
    /// fingerprint), when the operator has one.
    pub fragment: Vec<u8>,
    /// Capture groups 0–9 of a regex match, when captures were asked for.
    pub captures: Vec<Vec<u8>>,
}

/// Builds the byte-oriented regex every rule uses.
pub(crate) fn build_regex(pattern: &str) -> Result<Regex, OperatorError> {
    if let Some(Stacked { whole, inner, op }) = stacked_repetition(pattern) {
        return Err(OperatorError(format!(
            "regex does not compile: `{whole}` repeats a repetition: a possessive quantifier \
             in PCRE, which Rust's syntax reads as `({inner}){op}` and so matches more than it \
             should (the regex never backtracks: write the plain quantifier; a group if a \
             repeat of a repeat is meant)"
        )));
    }
    Regex::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(
            Regex::config()
                .utf8_empty(false)
                .nfa_size_limit(Some(64 << 20))
                .hybrid_cache_capacity(4 << 20),
        )
        .build(pattern)
        .map_err(|e| {
            // The builder's own message only says "error parsing pattern 0"; the parser's
            // says what is wrong. Rust's syntax has no lookaround or backreferences.
            let why = match regex_syntax::ParserBuilder::new()
                .unicode(false)
                .utf8(false)
                .build()
                .parse(pattern)
            {
                Err(regex_syntax::Error::Parse(p)) => p.kind().to_string(),
                Err(other) => other.to_string(),
                Ok(_) => e.to_string(),
            };
            OperatorError(format!("regex does not compile: {}", one_line(&why)))
        })
}

/// The first quantifier written straight after another (`a*+`, `\d++`, `x{2}+`), spelled as
/// in the pattern.
///
/// PCRE reads such a pair as a *possessive* quantifier, one that never gives back what it
/// took; Rust's parser takes it silently as a repeat of the repeat, `(a*)+`, which matches
/// wherever the possessive one does and more besides (`a*+a` matches nothing in PCRE, and
/// every `a` in Rust). A rule author coming from the CRS writes them, and would never see the
/// difference but in false positives, so they are refused with a reason instead. A lazy
/// quantifier (`a*?`) is one token, not two, and a repeat of a group (`(?:a*)+`) says what it
/// means: neither is refused. The SecLang front end rewrites possessive quantifiers before a
/// pattern gets here.
fn stacked_repetition(pattern: &str) -> Option<Stacked<'_>> {
    use regex_syntax::ast::{Ast, Repetition};
    fn find(ast: &Ast) -> Option<&Repetition> {
        match ast {
            Ast::Repetition(r) if matches!(*r.ast, Ast::Repetition(_)) => Some(r),
            Ast::Repetition(r) => find(&r.ast),
            Ast::Group(g) => find(&g.ast),
            Ast::Alternation(a) => a.asts.iter().find_map(find),
            Ast::Concat(c) => c.asts.iter().find_map(find),
            _ => None,
        }
    }
    // A pattern that does not parse is left to the regex builder, whose error says why.
    let ast = regex_syntax::ast::parse::Parser::new()
        .parse(pattern)
        .ok()?;
    let outer = find(&ast)?;
    let text = |span: &regex_syntax::ast::Span| pattern.get(span.start.offset..span.end.offset);
    Some(Stacked {
        whole: text(&outer.span)?,
        inner: text(outer.ast.span())?,
        op: text(&outer.op.span)?,
    })
}

/// A quantifier written straight after another, as [`stacked_repetition`] finds it.
#[derive(Debug, PartialEq, Eq)]
struct Stacked<'p> {
    /// The repetition of the repetition (`a*+`).
    whole: &'p str,
    /// The repetition repeated (`a*`).
    inner: &'p str,
    /// The quantifier that repeats it (`+`).
    op: &'p str,
}

/// Builds one regex over several patterns that reports every pattern matching anywhere
/// (`MatchKind::All`, for `which_overlapping_matches`), with the same syntax as
/// [`build_regex`].
pub(crate) fn build_regex_set<P: AsRef<str>>(patterns: &[P]) -> Result<Regex, OperatorError> {
    Regex::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(
            Regex::config()
                .match_kind(regex_automata::MatchKind::All)
                .utf8_empty(false)
                .nfa_size_limit(Some(64 << 20))
                .hybrid_cache_capacity(8 << 20),
        )
        .build_many(patterns)
        .map_err(|e| {
            OperatorError(format!(
                "regex set does not compile: {}",
                one_line(&e.to_string())
            ))
        })
}

/// Folds a multi-line message onto one line, so errors keep the `file:line:col: ...` shape.
pub(crate) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A compiled operator.
#[derive(Clone, Debug)]
pub struct Matcher {
    kind: MatcherKind,
}

#[derive(Clone, Debug)]
enum MatcherKind {
    Rx(Regex),
    RxMacro(Macro, RegexCache),
    RxBacktracking(Box<backtrack::Backtracking>),
    Pm(AhoCorasick),
    Text(TextOp, Macro),
    Numeric(NumOp, Macro),
    IpMatch(ip::IpSet),
    ByteRange(validate::ByteRanges),
    UrlEncoding,
    Utf8,
    Sqli,
    Xss,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TextOp {
    Contains,
    ContainsWord,
    BeginsWith,
    EndsWith,
    StrEq,
    Within,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NumOp {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

/// Looks up a macro variable, such as `tx.paranoia_level`; `None` when unset (it expands to
/// nothing). The value may be borrowed from where the variable lives: the CRS expands
/// `%{tx.restricted_headers}` for every header of every request.
///
/// ```
/// use std::borrow::Cow;
/// use waf_core::operator::{Matcher, Operator};
/// use waf_core::rules::{Macro, MacroPart};
///
/// let m = Matcher::new(&Operator::Ge(Macro::parse("%{tx.threshold}"))).unwrap();
/// let threshold = b"5".to_vec();
/// let mut lookup = |p: &MacroPart| match p {
///     MacroPart::Var { key: Some(k), .. } if k == "threshold" => Some(Cow::from(&threshold[..])),
///     _ => None,
/// };
/// assert!(m.matches(b"7", &mut lookup).is_some());
/// ```
pub type Lookup<'a> = dyn FnMut(&MacroPart) -> Option<Cow<'a, [u8]>> + 'a;

/// Expands a macro with a lookup.
pub fn expand(m: &Macro, lookup: &mut Lookup<'_>) -> Vec<u8> {
    expand_borrowed(m, lookup).to_vec()
}

/// A macro expanded by [`expand_borrowed`]: borrowed from the macro, from where the lookup
/// found its lone variable, or built.
pub(crate) enum Expanded<'m, 'a> {
    Literal(&'m [u8]),
    Looked(Cow<'a, [u8]>),
}

impl std::ops::Deref for Expanded<'_, '_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Expanded::Literal(b) => b,
            Expanded::Looked(c) => c,
        }
    }
}

/// Like [`expand`], without copying a macro that is one literal or one variable: most
/// operator arguments are constants (`@lt 2`) or one variable (`@ge %{tx.paranoia_level}`),
/// tested for value after value.
pub(crate) fn expand_borrowed<'m, 'a>(m: &'m Macro, lookup: &mut Lookup<'a>) -> Expanded<'m, 'a> {
    if let Some(text) = m.literal() {
        return Expanded::Literal(text);
    }
    match m.parts.as_slice() {
        [var] => Expanded::Looked(lookup(var).unwrap_or_default()),
        parts => {
            let mut out = Vec::with_capacity(64);
            for part in parts {
                match part {
                    MacroPart::Literal(l) => out.extend_from_slice(l),
                    var => {
                        if let Some(v) = lookup(var) {
                            out.extend_from_slice(&v);
                        }
                    }
                }
            }
            Expanded::Looked(Cow::Owned(out))
        }
    }
}

/// A regex match, with captures 0-9 when asked for.
fn regex_match(re: &Regex, value: &[u8], capture: bool) -> Option<Evidence> {
    // A regex without groups captures only its match (TX:0): `find` gives that, without
    // allocating the capture slots (CRS 920450 captures every header name with `^.*$`).
    if capture && re.group_info().group_len(regex_automata::PatternID::ZERO) > 1 {
        let mut caps = re.create_captures();
        re.captures(value, &mut caps);
        let m = caps.get_match()?;
        let captures = (0..caps.group_len().min(10))
            .map(|i| {
                caps.get_group(i)
                    .and_then(|s| value.get(s.range()))
                    .unwrap_or_default()
                    .to_vec()
            })
            .collect();
        Some(Evidence {
            fragment: value.get(m.range()).unwrap_or_default().to_vec(),
            captures,
        })
    } else {
        let m = re.find(value)?;
        let fragment = value.get(m.range()).unwrap_or_default().to_vec();
        Some(Evidence {
            captures: if capture {
                vec![fragment.clone()]
            } else {
                Vec::new()
            },
            fragment,
        })
    }
}

/// Compiled forms of an [`Operator::RxMacro`], by expanded pattern. Few: the expansion is
/// usually a configured TX value, the same for every request.
#[derive(Clone, Debug, Default)]
struct RegexCache(std::sync::Arc<std::sync::Mutex<Vec<CachedRegex>>>);

/// An expanded pattern and its compiled form (`None`: it does not compile).
///
/// Shared, not cloned: a cloned `Regex` gets a pool of its own, empty, so every match would
/// allocate a new search cache and build its lazy DFA's states again (CRS 920480's charset
/// check cost 8 µs per value that way).
type CachedRegex = (Vec<u8>, Option<std::sync::Arc<Regex>>);

impl RegexCache {
    const SIZE: usize = 8;

    fn get(&self, pattern: &[u8]) -> Option<std::sync::Arc<Regex>> {
        let mut cache = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, re)) = cache.iter().find(|(p, _)| p == pattern) {
            return re.clone();
        }
        let compiled = std::str::from_utf8(pattern)
            .ok()
            .and_then(|p| crate::rules::seclang::pcre_to_rust(p).ok())
            .and_then(|p| build_regex(&p).ok())
            .map(std::sync::Arc::new);
        if cache.len() >= Self::SIZE {
            cache.remove(0);
        }
        cache.push((pattern.to_vec(), compiled.clone()));
        compiled
    }
}

impl Matcher {
    /// Compiles an operator.
    ///
    /// ```
    /// use waf_core::operator::{Matcher, Operator};
    /// assert!(Matcher::new(&Operator::Rx("(".into())).is_err());
    /// ```
    pub fn new(op: &Operator) -> Result<Matcher, OperatorError> {
        let kind = match op {
            Operator::Rx(p) => MatcherKind::Rx(build_regex(p)?),
            Operator::RxMacro(m) => MatcherKind::RxMacro(m.clone(), RegexCache::default()),
            Operator::RxBacktracking {
                pattern,
                step_limit,
            } => MatcherKind::RxBacktracking(Box::new(backtrack::Backtracking::new(
                pattern,
                *step_limit,
            )?)),
            Operator::Pm(phrases) => MatcherKind::Pm(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(phrases)
                    .map_err(|e| OperatorError(format!("phrase list: {e}")))?,
            ),
            Operator::Contains(m) => MatcherKind::Text(TextOp::Contains, m.clone()),
            Operator::ContainsWord(m) => MatcherKind::Text(TextOp::ContainsWord, m.clone()),
            Operator::BeginsWith(m) => MatcherKind::Text(TextOp::BeginsWith, m.clone()),
            Operator::EndsWith(m) => MatcherKind::Text(TextOp::EndsWith, m.clone()),
            Operator::StrEq(m) => MatcherKind::Text(TextOp::StrEq, m.clone()),
            Operator::Within(m) => MatcherKind::Text(TextOp::Within, m.clone()),
            Operator::Eq(m) => MatcherKind::Numeric(NumOp::Eq, m.clone()),
            Operator::Ge(m) => MatcherKind::Numeric(NumOp::Ge, m.clone()),
            Operator::Gt(m) => MatcherKind::Numeric(NumOp::Gt, m.clone()),
            Operator::Le(m) => MatcherKind::Numeric(NumOp::Le, m.clone()),
            Operator::Lt(m) => MatcherKind::Numeric(NumOp::Lt, m.clone()),
            Operator::IpMatch(list) => MatcherKind::IpMatch(
                ip::IpSet::parse(list).map_err(|e| OperatorError(e.to_string()))?,
            ),
            Operator::ValidateByteRange(r) => MatcherKind::ByteRange(
                validate::ByteRanges::parse(r).map_err(|e| OperatorError(e.to_string()))?,
            ),
            Operator::ValidateUrlEncoding => MatcherKind::UrlEncoding,
            Operator::ValidateUtf8Encoding => MatcherKind::Utf8,
            Operator::DetectSqli => MatcherKind::Sqli,
            Operator::DetectXss => MatcherKind::Xss,
            Operator::Unconditional => MatcherKind::Always,
            Operator::NoMatch => MatcherKind::Never,
        };
        Ok(Matcher { kind })
    }

    /// Whether the verdict depends on more than the value: an argument with macros (`@ge
    /// %{tx.paranoia_level}`) reads the transaction.
    pub(crate) fn reads_transaction(&self) -> bool {
        match &self.kind {
            MatcherKind::RxMacro(..) => true,
            MatcherKind::Text(_, m) | MatcherKind::Numeric(_, m) => !m.is_literal(),
            _ => false,
        }
    }

    /// Tests a value. `lookup` resolves the macros in the operator's argument.
    ///
    /// Returns the evidence of a match, or `None`.
    pub fn matches(&self, value: &[u8], lookup: &mut Lookup<'_>) -> Option<Evidence> {
        self.matches_with(value, lookup, false)
    }

    /// Like [`matches`](Self::matches), also filling [`Evidence::captures`] when `capture`.
    pub fn matches_with(
        &self,
        value: &[u8],
        lookup: &mut Lookup<'_>,
        capture: bool,
    ) -> Option<Evidence> {
        self.matches_inner(value, lookup, capture, false)
    }

    /// Like [`matches_with`](Self::matches_with), with libinjection's verdicts taken from the
    /// thread's memo for recurring values (see `injection`'s memo): the compiled engine's path.
    pub(crate) fn matches_memoized(
        &self,
        value: &[u8],
        lookup: &mut Lookup<'_>,
        capture: bool,
    ) -> Option<Evidence> {
        self.matches_inner(value, lookup, capture, true)
    }

    fn matches_inner(
        &self,
        value: &[u8],
        lookup: &mut Lookup<'_>,
        capture: bool,
        memoized: bool,
    ) -> Option<Evidence> {
        let fragment = |bytes: &[u8]| {
            Some(Evidence {
                fragment: bytes.to_vec(),
                captures: Vec::new(),
            })
        };
        match &self.kind {
            MatcherKind::RxMacro(m, cache) => {
                let pattern = expand_borrowed(m, lookup);
                let re = cache.get(&pattern)?;
                regex_match(&re, value, capture)
            }
            MatcherKind::Rx(re) => regex_match(re, value, capture),
            MatcherKind::RxBacktracking(m) => m.find(value, capture),
            MatcherKind::Pm(ac) => {
                let m = ac.find(value)?;
                let hit = value.get(m.range()).unwrap_or_default();
                Some(Evidence {
                    fragment: hit.to_vec(),
                    captures: if capture { vec![hit.to_vec()] } else { vec![] },
                })
            }
            MatcherKind::Text(op, arg) => {
                let arg = expand_borrowed(arg, lookup);
                text_match(*op, value, &arg).and_then(|_| fragment(&arg))
            }
            MatcherKind::Numeric(op, arg) => {
                let lhs = to_number(value);
                let rhs = to_number(&expand_borrowed(arg, lookup));
                let hit = match op {
                    NumOp::Eq => lhs == rhs,
                    NumOp::Ge => lhs >= rhs,
                    NumOp::Gt => lhs > rhs,
                    NumOp::Le => lhs <= rhs,
                    NumOp::Lt => lhs < rhs,
                };
                hit.then(|| Evidence {
                    fragment: value.to_vec(),
                    captures: Vec::new(),
                })
            }
            MatcherKind::IpMatch(set) => set.contains_text(value).then(|| Evidence {
                fragment: value.to_vec(),
                captures: Vec::new(),
            }),
            MatcherKind::ByteRange(ranges) => {
                let at = ranges.first_outside(value)?;
                fragment(value.get(at..at + 1).unwrap_or_default())
            }
            MatcherKind::UrlEncoding => {
                let at = validate::find_invalid_url_encoding(value)?;
                fragment(value.get(at..(at + 3).min(value.len())).unwrap_or_default())
            }
            MatcherKind::Utf8 => {
                let at = validate::find_invalid_utf8(value)?;
                fragment(value.get(at..(at + 4).min(value.len())).unwrap_or_default())
            }
            MatcherKind::Sqli => {
                let fingerprint = if memoized {
                    injection::detect_sqli_memoized(value)?
                } else {
                    injection::detect_sqli(value)?
                };
                Some(Evidence {
                    fragment: fingerprint.clone().into_bytes(),
                    captures: if capture {
                        vec![fingerprint.into_bytes()]
                    } else {
                        vec![]
                    },
                })
            }
            MatcherKind::Xss => {
                let xss = if memoized {
                    injection::detect_xss_memoized(value)
                } else {
                    injection::detect_xss(value)
                };
                xss.then(Evidence::default)
            }
            MatcherKind::Always => Some(Evidence::default()),
            MatcherKind::Never => None,
        }
    }
}

fn text_match(op: TextOp, value: &[u8], arg: &[u8]) -> Option<()> {
    let hit = match op {
        TextOp::Contains => memchr::memmem::find(value, arg).is_some(),
        TextOp::ContainsWord => contains_word(value, arg),
        TextOp::BeginsWith => value.starts_with(arg),
        TextOp::EndsWith => value.ends_with(arg),
        TextOp::StrEq => value == arg,
        // ModSecurity's @within: the *value* is searched for in the argument.
        TextOp::Within => !value.is_empty() && memchr::memmem::find(arg, value).is_some(),
    };
    hit.then_some(())
}

fn contains_word(value: &[u8], word: &[u8]) -> bool {
    if word.is_empty() {
        return true;
    }
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    memchr::memmem::find_iter(value, word).any(|at| {
        let before = at.checked_sub(1).and_then(|i| value.get(i));
        let after = value.get(at + word.len());
        !before.is_some_and(|&b| is_word(b)) && !after.is_some_and(|&b| is_word(b))
    })
}

/// ModSecurity's numeric reading of a value: optional sign, leading digits, anything else
/// stops the number; no digits at all is 0. Saturates instead of overflowing.
pub(crate) fn to_number(bytes: &[u8]) -> i64 {
    let s = bytes.trim_ascii();
    let (negative, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for &b in digits.iter().take_while(|b| b.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if negative {
        -n
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A macro regex is compiled once per expansion and then shared, search caches and all:
    /// handing out clones gave every match an empty cache (a new lazy DFA each time).
    #[test]
    fn an_expanded_regex_is_shared_not_cloned() {
        let cache = RegexCache::default();
        let first = cache.get(b"^utf-8$").expect("compiles");
        let second = cache.get(b"^utf-8$").expect("compiles");
        assert!(std::sync::Arc::ptr_eq(&first, &second));
        assert!(cache.get(b"(").is_none(), "a pattern that does not compile");
    }

    fn hit(op: Operator, value: &str) -> bool {
        Matcher::new(&op)
            .unwrap()
            .matches(value.as_bytes(), &mut |_| None)
            .is_some()
    }

    #[test]
    fn operator_table() {
        let lit = |s: &str| Macro::parse(s);
        let cases: Vec<(Operator, &str, bool)> = vec![
            (Operator::Rx("a+b".into()), "xaab", true),
            (Operator::Rx("^a$".into()), "ba", false),
            (Operator::Pm(vec![b"Select".to_vec()]), "xSELECTx", true),
            (Operator::Pm(vec![b"union".to_vec()]), "onion", false),
            (Operator::Contains(lit("../")), "/a/../b", true),
            (Operator::Contains(lit("ABC")), "abc", false),
            (Operator::ContainsWord(lit("or")), "1 or 2", true),
            (Operator::ContainsWord(lit("or")), "for", false),
            (Operator::BeginsWith(lit("/api")), "/api/x", true),
            (Operator::EndsWith(lit(".php")), "a.php", true),
            (Operator::StrEq(lit("GET")), "GET", true),
            (Operator::StrEq(lit("GET")), "GETX", false),
            (Operator::Within(lit("GET POST HEAD")), "POST", true),
            (Operator::Within(lit("GET POST HEAD")), "PUT", false),
            (Operator::Within(lit("GET")), "", false),
            (Operator::Eq(lit("0")), "abc", true),
            (Operator::Gt(lit("3")), "10 apples", true),
            (Operator::Lt(lit("-1")), "-5", true),
            (Operator::Ge(lit("99999999999999999999999")), "1", false),
            (Operator::IpMatch("10.0.0.0/8".into()), "10.1.2.3", true),
            (Operator::IpMatch("10.0.0.0/8".into()), "11.1.2.3", false),
            (Operator::ValidateByteRange("32-126".into()), "abc", false),
            (Operator::ValidateByteRange("32-126".into()), "a\tb", true),
            (Operator::ValidateUrlEncoding, "%zz", true),
            (Operator::ValidateUrlEncoding, "%41", false),
            (Operator::DetectSqli, "1' or '1'='1", true),
            (Operator::DetectSqli, "O'Brien", false),
            (Operator::DetectXss, "<script>alert(1)</script>", true),
            (Operator::DetectXss, "I <3 this", false),
            (Operator::Unconditional, "", true),
            (Operator::NoMatch, "x", false),
        ];
        for (op, value, expected) in cases {
            assert_eq!(hit(op.clone(), value), expected, "{op} on {value:?}");
        }
    }

    #[test]
    fn macros_in_arguments_expand() {
        let m = Matcher::new(&Operator::Ge(Macro::parse("%{tx.threshold}"))).unwrap();
        let mut lookup = |p: &MacroPart| match p {
            MacroPart::Var { key: Some(k), .. } if k == "threshold" => Some(Cow::from(&b"5"[..])),
            _ => None,
        };
        assert!(m.matches(b"5", &mut lookup).is_some());
        assert!(m.matches(b"4", &mut lookup).is_none());
    }

    #[test]
    fn captures_are_collected() {
        let m = Matcher::new(&Operator::Rx("(a)(b)?c".into())).unwrap();
        let e = m.matches_with(b"xacx", &mut |_| None, true).unwrap();
        assert_eq!(
            e.captures,
            vec![b"ac".to_vec(), b"a".to_vec(), b"".to_vec()]
        );
    }

    #[test]
    fn a_quantifier_stacked_on_another_is_refused_with_its_spelling() {
        for (pattern, stacked) in [
            ("a*+b", Some("a*+")),
            (r"x\d++y", Some(r"\d++")),
            ("(?i)select[ab]{2}+from", Some("[ab]{2}+")),
            ("(?:a|b?+)c", Some("b?+")),
            ("a**", Some("a**")),
            ("a*?b", None),
            ("a+?", None),
            ("(?:a*)+b", None),
            ("a{2,}b+", None),
            (r"\*+", None),
            ("[*+]", None),
        ] {
            assert_eq!(
                stacked_repetition(pattern).map(|s| s.whole),
                stacked,
                "{pattern}"
            );
            let built = build_regex(pattern);
            match stacked {
                Some(s) => {
                    let e = built.expect_err(pattern).to_string();
                    assert!(e.contains(&format!("`{s}` repeats a repetition")), "{e}");
                    let (inner, op) = s.split_at(s.len() - 1);
                    assert!(e.contains(&format!("reads as `({inner}){op}`")), "{e}");
                }
                None => assert!(built.is_ok(), "{pattern}"),
            }
        }
    }

    #[test]
    fn regexes_match_invalid_utf8() {
        assert!(!hit(Operator::Rx("\\xff".into()), "a"));
        let m = Matcher::new(&Operator::Rx("\\xff".into())).unwrap();
        assert!(m.matches(b"a\xffb", &mut |_| None).is_some());
    }
}
