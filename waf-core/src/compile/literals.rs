//! Required literals: the strings one of which must occur in any value an operator matches.
//!
//! The compiled program puts these literals, for all rules at once, into one Aho-Corasick
//! automaton per transformation chain. A single scan of a value then tells which rules *might*
//! match it; only those run their own regex. For that to be sound, every literal set returned
//! here must be *necessary*: if the operator matches a value, the value contains (ASCII
//! case-insensitively) at least one literal of the set. Sufficiency is not needed — the rule's
//! own operator confirms.
//!
//! For regexes the set is found on the syntax tree:
//!
//! 1. The tree is *case-folded*: every literal byte and class is mapped to lowercase. If the
//!    original matches a string `s`, the folded tree matches `lowercase(s)`, so literals
//!    required by the folded tree are required (case-insensitively) by the original. This keeps
//!    `(?i)union` one literal `union` instead of 32 case variants.
//! 2. Candidates are the prefix and suffix literal sets of `regex-syntax`'s extractor (a match
//!    starts with one of the prefixes, ends with one of the suffixes), and recursively: any
//!    candidate of one element of a concatenation (the whole match contains that element's
//!    match), the union of the candidates of every branch of an alternation, the candidate of a
//!    repetition's body when it must occur at least once.
//! 3. The best candidate wins: the longest shortest literal, then the fewest literals. Sets
//!    with a literal shorter than [`MIN_REGEX_LITERAL`] are refused: they would hit nearly every
//!    value and cost a confirmation each time. A regex with no acceptable set is *residual* and
//!    always runs.

use regex_syntax::hir::literal::{ExtractKind, Extractor, Seq};
use regex_syntax::hir::{Class, ClassBytes, ClassBytesRange, Hir, HirKind};

use crate::operator::Operator;

/// Shortest literal a regex gate may use.
pub(crate) const MIN_REGEX_LITERAL: usize = 2;

/// Most literals in one gate; larger sets are refused (the regex runs unconditionally).
const MAX_LITERALS: usize = 256;

/// Deepest recursion into a syntax tree.
const MAX_DEPTH: usize = 24;

/// The literals that gate an operator, lowercased; `None` when the operator must always run.
pub(crate) fn gate_literals(op: &Operator) -> Option<Vec<Vec<u8>>> {
    let exact = |m: &crate::rules::Macro| -> Option<Vec<Vec<u8>>> {
        let lit = m.literal()?;
        // A one-byte literal is no gate: the scan would report it at every occurrence of its
        // byte (a `@streq 2` of the CRS's WordPress exclusions made every `2` of every URI
        // a match), and the operator it would gate is a comparison, cheaper than that.
        if lit.len() < MIN_REGEX_LITERAL {
            return None;
        }
        Some(vec![lit.to_ascii_lowercase()])
    };
    if let Some(pattern) = op.linear_regex() {
        return regex_literals(&pattern);
    }
    match op {
        Operator::Pm(phrases) => {
            if phrases.iter().any(Vec::is_empty) {
                return None;
            }
            let mut lits: Vec<Vec<u8>> = phrases.iter().map(|p| p.to_ascii_lowercase()).collect();
            lits.sort();
            lits.dedup();
            Some(lits)
        }
        Operator::Contains(m)
        | Operator::ContainsWord(m)
        | Operator::BeginsWith(m)
        | Operator::EndsWith(m)
        | Operator::StrEq(m) => exact(m),
        _ => None,
    }
}

/// A set of bytes, as a 256-bit table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ByteSet([u64; 4]);

impl ByteSet {
    /// The bytes that occur in `value`.
    ///
    /// Every value of a request is taken through here at the root, and again wherever a
    /// transformation changes it, so this is a hot loop. Setting a bit per byte in the set
    /// itself is a load and a store of the same word for most bytes (the letters share one),
    /// each load waiting for the store before it: about five cycles a byte, and 4% of a
    /// CRS request's time in `perf`. A value of some length marks its bytes in a table
    /// instead, stores that wait for nothing, and the table's 256 marks are then folded into
    /// the four words, eight marks per multiplication.
    pub(crate) fn of(value: &[u8]) -> ByteSet {
        /// Below this, the fold's fixed cost is more than the waits it saves.
        const TABLE_FROM: usize = 16;
        let mut set = ByteSet::default();
        if value.len() < TABLE_FROM {
            for &b in value {
                set.insert(b);
            }
            return set;
        }
        let mut marks = [0u8; 256];
        for &b in value {
            marks[usize::from(b)] = 1;
        }
        let (eights, _) = marks.as_chunks::<8>();
        for (word, eights) in set.0.iter_mut().zip(eights.chunks_exact(8)) {
            for (i, eight) in eights.iter().enumerate() {
                // Mark `j` of the eight is bit `8j` of `x`; the multiplication adds `x` shifted
                // left by 56 - 7j for each j, which moves bit `8j` to bit `56 + j` and
                // nothing else there (every other product lands below 56, without carries
                // since no two land on the same bit, or past 63).
                let x = u64::from_le_bytes(*eight);
                let bits = x.wrapping_mul(0x0102_0408_1020_4080) >> 56;
                *word |= bits << (8 * i);
            }
        }
        set
    }

    /// The bytes a table marks.
    pub(crate) fn from_table(table: &[bool; 256]) -> ByteSet {
        let mut set = ByteSet::default();
        for (b, _) in (0u8..=255).zip(table).filter(|(_, &marked)| marked) {
            set.insert(b);
        }
        set
    }

    pub(crate) fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    pub(crate) fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    /// Whether the two sets share a byte.
    pub(crate) fn intersects(&self, other: &ByteSet) -> bool {
        self.0.iter().zip(&other.0).any(|(a, b)| a & b != 0)
    }

    /// Whether the set holds a letter `A` to `Z` (bits 65 to 90: the second word's 1 to 26).
    pub(crate) fn has_ascii_uppercase(&self) -> bool {
        self.0[1] & 0x07FF_FFFE != 0
    }

    /// Whether the set holds a letter `a` to `z` (bits 97 to 122).
    pub(crate) fn has_ascii_lowercase(&self) -> bool {
        self.0[1] & (0x07FF_FFFE << 32) != 0
    }

    pub(crate) fn union(mut self, other: ByteSet) -> ByteSet {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        self
    }

    pub(crate) fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        (0u8..=255).filter(|&b| self.contains(b))
    }

    /// How often a value of sign-in traffic holds one of these bytes, roughly: the sum of the
    /// bytes' [`commonness`]. Lower is a better gate.
    fn cost(&self) -> u32 {
        self.bytes().map(commonness).sum()
    }
}

/// How common a byte is in the values of ordinary requests, on a rough scale: letters and
/// digits are in nearly every value, the punctuation of URLs, dates, tokens and prose in many,
/// everything else (`;`, `|`, `<`, `` ` ``, `$`, quotes, control bytes) in few.
fn commonness(b: u8) -> u32 {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => 16,
        b' ' | b'/' | b'.' | b'-' | b'_' | b'=' | b':' | b'%' | b'+' | b',' => 4,
        _ => 1,
    }
}

/// Highest [cost](ResidualGate::cost) of a residual regex's gate: a set as common as this (a
/// handful of rare bytes and a few of the punctuation of URLs and prose) still keeps most
/// values out; a larger one would open on nearly every value and is better left to the
/// residual set.
const MAX_GATE_COST: u32 = 24;

/// What one literal of a [`ResidualGate`] costs on the [`commonness`] scale, by its length: a
/// word of two letters (`or`, `on`) is in as many values as the punctuation of URLs, one of
/// three (`and`) in fewer, a longer one (`/dev/`, `script`) in few.
fn literal_cost(literal: &[u8]) -> u32 {
    match literal.len() {
        0..=2 => 6,
        3 => 3,
        _ => 2,
    }
}

/// The gate of a residual regex: bytes and literals, one of which occurs in every match.
///
/// It serves the residual regexes, which have no literal set of [`MIN_REGEX_LITERAL`] bytes:
/// the CRS command-injection rules need one of `;`, `|`, `&`, `` ` `` or `$`, its XSS rules a
/// `<`, its header-injection rules a CR or LF, its path-traversal rule 930100 a `%`, a `.`,
/// a `?` or the literal `0x2e`. A value holding none of them cannot match: one look at a
/// table of the value's bytes and at the literals the chain's Aho-Corasick scan found tells,
/// without running the regex.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ResidualGate {
    /// Bytes (never an ASCII letter or digit).
    pub(crate) bytes: ByteSet,
    /// Lowercased literals of [`MIN_REGEX_LITERAL`] bytes or more, found ASCII
    /// case-insensitively.
    pub(crate) literals: Vec<Vec<u8>>,
}

impl ResidualGate {
    /// How often sign-in values open the gate, roughly: its bytes' [`commonness`] and its
    /// literals' [cost](literal_cost). Lower is better.
    fn cost(&self) -> u32 {
        self.bytes.cost() + self.literals.iter().map(|l| literal_cost(l)).sum::<u32>()
    }

    fn union(mut self, other: ResidualGate) -> ResidualGate {
        self.bytes = self.bytes.union(other.bytes);
        self.literals.extend(other.literals);
        self.literals.sort();
        self.literals.dedup();
        self
    }
}

/// The [gate](ResidualGate) of a residual regex, when it is selective enough to be worth
/// checking (no ASCII letter or digit among its bytes, and a cost of at most
/// [`MAX_GATE_COST`]).
///
/// Found on the case-folded syntax tree, and *necessary* by construction: a literal requires
/// each of its bytes (the rarest is taken) or itself, a class one of its bytes, a repetition of
/// at least one its body's gate, a concatenation any one of its elements' gates or one of its
/// own required literals, an alternation the union of its branches' gates. Anything that may
/// match the empty string requires nothing. Of several candidates the cheapest by cost wins.
pub(crate) fn residual_gate(pattern: &str) -> Option<ResidualGate> {
    let hir = parse_bytes(pattern)?;
    let folded = fold_case(&hir, 0)?;
    let gate = required_gate(&folded, 0)?;
    let rare = gate.bytes.bytes().all(|b| !b.is_ascii_alphanumeric())
        && gate.cost() <= MAX_GATE_COST
        && (gate.bytes != ByteSet::default() || !gate.literals.is_empty());
    rare.then_some(gate)
}

/// The cheapest gate every match of `hir` must open; `None` when a match may be empty or the
/// tree is too deep to tell.
fn required_gate(hir: &Hir, depth: usize) -> Option<ResidualGate> {
    if depth > MAX_DEPTH * 4 {
        return None;
    }
    let d = depth + 1;
    let by_parts = match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => return None,
        HirKind::Literal(lit) => {
            let rarest = lit.0.iter().copied().min_by_key(|&b| commonness(b))?;
            let mut bytes = ByteSet::default();
            bytes.insert(rarest);
            Some(ResidualGate {
                bytes,
                literals: Vec::new(),
            })
        }
        HirKind::Class(Class::Bytes(c)) => Some(ResidualGate {
            bytes: class_bytes(c),
            literals: Vec::new(),
        }),
        HirKind::Class(Class::Unicode(c)) => Some(ResidualGate {
            bytes: unicode_class_bytes(c),
            literals: Vec::new(),
        }),
        HirKind::Repetition(r) if r.min >= 1 => required_gate(&r.sub, d),
        HirKind::Repetition(_) => return None,
        HirKind::Capture(c) => required_gate(&c.sub, d),
        HirKind::Concat(subs) => subs
            .iter()
            .filter_map(|s| required_gate(s, d))
            .min_by_key(ResidualGate::cost),
        HirKind::Alternation(subs) => subs.iter().try_fold(ResidualGate::default(), |acc, s| {
            Some(acc.union(required_gate(s, d)?))
        }),
    };
    // A literal or a concatenation may also be gated by the literals its matches begin or end
    // with (`0x2f` rather than the `0` every number holds). Only this node's own prefixes and
    // suffixes are asked for (`required` at its depth limit): its parts had their turn above.
    let by_literals = match hir.kind() {
        HirKind::Literal(_) | HirKind::Concat(_) => required(hir, MAX_DEPTH).and_then(|seq| {
            Some(ResidualGate {
                bytes: ByteSet::default(),
                literals: literal_set(&seq, <[u8]>::to_vec)?,
            })
        }),
        _ => None,
    };
    match (by_parts, by_literals) {
        (Some(a), Some(b)) => Some(if b.cost() < a.cost() { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// The bytes a match of a Unicode class starts with: the ASCII members themselves, and the
/// UTF-8 lead bytes of the others. The parser makes such classes of alternations of UTF-8
/// sequences even with Unicode off: `<|\xef\xbc\x9c` (`<` or its full-width form) is the class
/// `[<＜]`.
fn unicode_class_bytes(class: &regex_syntax::hir::ClassUnicode) -> ByteSet {
    fn lead(c: char) -> u8 {
        let mut buf = [0u8; 4];
        c.encode_utf8(&mut buf);
        buf[0]
    }
    let mut set = ByteSet::default();
    for range in class.iter() {
        for b in lead(range.start())..=lead(range.end()) {
            set.insert(b);
        }
    }
    set
}

fn class_bytes(class: &ClassBytes) -> ByteSet {
    let mut set = ByteSet::default();
    for range in class.iter() {
        for b in range.start()..=range.end() {
            set.insert(b);
        }
    }
    set
}

/// The syntax tree of a pattern as the engine compiles it: bytes, no Unicode.
fn parse_bytes(pattern: &str) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()
}

/// Whether a regex may match an empty string: `^.*$`, `\d*`, `^[a-z]+|`. Such a regex matches
/// most values, or at least no byte of a value is required for it to match, so no gate can
/// shut it out; an unparsable pattern counts as one.
pub(crate) fn may_match_empty(pattern: &str) -> bool {
    parse_bytes(pattern).is_none_or(|hir| hir.properties().minimum_len() == Some(0))
}

/// The literal gate of a regex, or `None` when it has no usable one.
pub(crate) fn regex_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = parse_bytes(pattern)?;
    let folded = fold_case(&hir, 0)?;
    literal_set(&required(&folded, 0)?, <[u8]>::to_ascii_lowercase)
}

/// The literals of a finite sequence as a sorted set, each one passed through `f`.
fn literal_set(seq: &Seq, f: impl Fn(&[u8]) -> Vec<u8>) -> Option<Vec<Vec<u8>>> {
    let mut literals: Vec<Vec<u8>> = seq.literals()?.iter().map(|l| f(l.as_bytes())).collect();
    literals.sort();
    literals.dedup();
    Some(literals)
}

/// Maps every byte the tree can match to lowercase.
fn fold_case(hir: &Hir, depth: usize) -> Option<Hir> {
    if depth > MAX_DEPTH * 4 {
        return None;
    }
    let d = depth + 1;
    Some(match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => hir.clone(),
        HirKind::Literal(lit) => Hir::literal(lit.0.to_ascii_lowercase()),
        HirKind::Class(Class::Bytes(c)) => fold_class(c),
        HirKind::Class(Class::Unicode(c)) => match c.to_byte_class() {
            Some(b) => fold_class(&b),
            // An alternation of UTF-8 sequences, made a class by the parser: ASCII case
            // folding leaves its non-ASCII members as they are.
            None => {
                let mut folded = c.clone();
                let ascii: Vec<regex_syntax::hir::ClassUnicodeRange> = c
                    .iter()
                    .filter(|r| r.start().is_ascii())
                    .flat_map(|r| r.start()..=r.end().min('\x7f'))
                    .map(|ch| {
                        let lower = ch.to_ascii_lowercase();
                        regex_syntax::hir::ClassUnicodeRange::new(lower, lower)
                    })
                    .collect();
                folded.difference(&regex_syntax::hir::ClassUnicode::new([
                    regex_syntax::hir::ClassUnicodeRange::new('A', 'Z'),
                ]));
                folded.union(&regex_syntax::hir::ClassUnicode::new(ascii));
                Hir::class(Class::Unicode(folded))
            }
        },
        HirKind::Repetition(r) => Hir::repetition(regex_syntax::hir::Repetition {
            min: r.min,
            max: r.max,
            greedy: r.greedy,
            sub: Box::new(fold_case(&r.sub, d)?),
        }),
        HirKind::Capture(c) => Hir::capture(regex_syntax::hir::Capture {
            index: c.index,
            name: c.name.clone(),
            sub: Box::new(fold_case(&c.sub, d)?),
        }),
        HirKind::Concat(subs) => Hir::concat(
            subs.iter()
                .map(|s| fold_case(s, d))
                .collect::<Option<Vec<_>>>()?,
        ),
        HirKind::Alternation(subs) => Hir::alternation(
            subs.iter()
                .map(|s| fold_case(s, d))
                .collect::<Option<Vec<_>>>()?,
        ),
    })
}

fn fold_class(c: &ClassBytes) -> Hir {
    let mut set = [false; 256];
    for r in c.iter() {
        for b in r.start()..=r.end() {
            set[usize::from(b.to_ascii_lowercase())] = true;
        }
    }
    let ranges: Vec<ClassBytesRange> = (0u16..256)
        .filter(|&b| set[usize::from(b)])
        .map(|b| {
            let b = b as u8;
            ClassBytesRange::new(b, b)
        })
        .collect();
    Hir::class(Class::Bytes(ClassBytes::new(ranges)))
}

/// A necessary literal set for `hir`, or `None`.
fn required(hir: &Hir, depth: usize) -> Option<Seq> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut best: Option<Seq> = None;
    let mut consider = |seq: Option<Seq>| {
        if let Some(seq) = seq.filter(acceptable) {
            if best.as_ref().is_none_or(|b| better(&seq, b)) {
                best = Some(seq);
            }
        }
    };
    consider(Some(extract(hir, ExtractKind::Prefix)));
    consider(Some(extract(hir, ExtractKind::Suffix)));
    match hir.kind() {
        HirKind::Capture(c) => consider(required(&c.sub, depth + 1)),
        HirKind::Repetition(r) if r.min >= 1 => consider(required(&r.sub, depth + 1)),
        HirKind::Concat(subs) => {
            for s in subs {
                consider(required(s, depth + 1));
            }
        }
        HirKind::Alternation(subs) => {
            let mut union = Seq::empty();
            let mut all = true;
            for s in subs {
                match required(s, depth + 1) {
                    Some(mut seq) => union.union(&mut seq),
                    None => {
                        all = false;
                        break;
                    }
                }
            }
            if all {
                consider(Some(union));
            }
        }
        _ => {}
    }
    best
}

fn extract(hir: &Hir, kind: ExtractKind) -> Seq {
    let mut ex = Extractor::new();
    let prefix = matches!(kind, ExtractKind::Prefix);
    ex.kind(kind)
        .limit_class(8)
        .limit_repeat(4)
        .limit_literal_len(32)
        .limit_total(MAX_LITERALS);
    let mut seq = ex.extract(hir);
    // Trims `onerror\t`, `onerror\n`, ... down to `onerror`: fewer, equally selective literals.
    if prefix {
        seq.optimize_for_prefix_by_preference();
    } else {
        seq.optimize_for_suffix_by_preference();
    }
    seq
}

fn acceptable(seq: &Seq) -> bool {
    match seq.literals() {
        Some(lits) => {
            !lits.is_empty()
                && lits.len() <= MAX_LITERALS
                && lits.iter().all(|l| l.len() >= MIN_REGEX_LITERAL)
        }
        None => false,
    }
}

fn shortest(seq: &Seq) -> usize {
    seq.min_literal_len().unwrap_or(0)
}

fn better(a: &Seq, b: &Seq) -> bool {
    let (la, lb) = (shortest(a), shortest(b));
    let (na, nb) = (a.len().unwrap_or(usize::MAX), b.len().unwrap_or(usize::MAX));
    // Long literals hit rarely; beyond 4 bytes length matters less than count.
    let (ka, kb) = (la.min(4), lb.min(4));
    ka > kb || (ka == kb && (na < nb || (na == nb && la > lb)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::Matcher;
    use proptest::prelude::*;

    proptest! {
        /// Both ways of taking a value's bytes (bit by bit when short, a table when long)
        /// give the set that inserting every byte gives.
        #[test]
        fn byte_set_of_holds_exactly_the_values_bytes(
            value in proptest::collection::vec(any::<u8>(), 0..600)
        ) {
            let mut expected = ByteSet::default();
            for &b in &value {
                expected.insert(b);
            }
            prop_assert_eq!(ByteSet::of(&value), expected);
            for b in 0..=255u8 {
                prop_assert_eq!(ByteSet::of(&value).contains(b), value.contains(&b));
            }
        }
    }

    fn lits(p: &str) -> Option<Vec<String>> {
        regex_literals(p).map(|v| {
            v.into_iter()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .collect()
        })
    }

    #[test]
    fn literal_table() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            ("union\\s+select", Some(&["select"])),
            ("(?i)UNION", Some(&["union"])),
            ("(?i:sleep|benchmark)\\s*\\(", Some(&["bench", "sleep"])),
            ("\\bjavascript:", Some(&["javascript:"])),
            ("a.*b", None),
            ("[0-9]+", None),
            ("x|yz", None),
            ("(?:^|;)\\s*cat\\s+/etc/passwd", Some(&["/etc/passwd"])),
            ("<script[^>]*>", Some(&["<script"])),
            ("(?i)on(?:error|load)\\s*=", Some(&["error", "load"])),
        ];
        for (pattern, expected) in cases {
            let got = lits(pattern);
            let want = expected.map(|e| e.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{pattern}");
        }
    }

    /// Regression: the parser turns `<|\xef\xbc\x9c` into a Unicode class even with Unicode
    /// off, which left the XSS tag rule 141300 without a gate.
    #[test]
    fn a_class_of_utf8_sequences_gates_on_lead_bytes() {
        let gate = residual_gate(r"(?:<|\xef\xbc\x9c)\s*[a-z]")
            .map(|g| g.bytes.bytes().collect::<Vec<u8>>());
        assert_eq!(gate, Some(vec![b'<', 0xef]));
    }

    #[test]
    fn letter_masks() {
        for b in 0..=255u8 {
            let set = ByteSet::of(&[b]);
            assert_eq!(set.has_ascii_uppercase(), b.is_ascii_uppercase(), "{b}");
            assert_eq!(set.has_ascii_lowercase(), b.is_ascii_lowercase(), "{b}");
        }
    }

    #[test]
    fn byte_gates_of_residual_shapes() {
        let gate = |p: &str| {
            residual_gate(p)
                .filter(|g| g.literals.is_empty())
                .map(|g| g.bytes.bytes().map(char::from).collect::<String>())
        };
        assert_eq!(gate(r"(?:;|\||&&?|`|\$\()\s*\w+").as_deref(), Some("$&;`|"));
        assert_eq!(gate(r"[<>]\s*script").as_deref(), Some("<>"));
        assert_eq!(
            gate(r"\bcat\s*;").as_deref(),
            Some(";"),
            "inner bytes count too"
        );
        assert_eq!(gate(r"(?:^|;)cat"), None, "a match may have no `;`");
        assert_eq!(gate(r"a[\r\n]+b").as_deref(), Some("\n\r"));
        assert_eq!(gate(r"(?i)s|;"), None, "a letter is not rare");
        assert_eq!(gate(r"x*;?"), None, "may match the empty string");
        assert_eq!(gate(r"(?:x|y)+"), None, "letters only");
        assert_eq!(
            gate(r"[^a-z0-9]"),
            None,
            "nearly every value has punctuation"
        );
    }

    /// Gates that mix bytes and literals: the shape of the CRS path-traversal rule 930100.
    #[test]
    fn residual_gates_mix_bytes_and_literals() {
        let gate = |p: &str| {
            residual_gate(p).map(|g| {
                let bytes: String = g.bytes.bytes().map(char::from).collect();
                let lits: Vec<String> = g
                    .literals
                    .iter()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
                    .collect();
                (bytes, lits)
            })
        };
        assert_eq!(
            gate(r"(?i)(?:\x5c|%|0x(?:2f|5c)|/)[a-z]+"),
            Some((
                "%/\\".to_string(),
                vec!["0x2f".to_string(), "0x5c".to_string()]
            )),
            "the literals `0x2f` and `0x5c` instead of the digit `0` every number holds"
        );
        assert_eq!(
            gate(r"(?i)select|;"),
            Some((";".to_string(), vec!["select".to_string()]))
        );
        assert_eq!(gate(r"(?i)s|;"), None, "a one-letter branch has no literal");
    }

    #[test]
    fn regexes_that_may_match_empty() {
        let cases = [
            (r"^.*$", true),
            (r"\d*", true),
            (r"^$", true),
            (r"a|", true),
            (r"(?:abc)?", true),
            (r"[", true),
            (r".", false),
            (r"^[%a-zA-Z0-9_-]+", false),
            (r"union\s+select", false),
        ];
        for (pattern, empty) in cases {
            assert_eq!(may_match_empty(pattern), empty, "{pattern}");
        }
    }

    /// A one-byte literal would make the scan report every occurrence of its byte: the
    /// comparison operators it would gate run unconditionally instead.
    #[test]
    fn one_byte_operands_are_no_gates() {
        use crate::operator::Operator;
        use crate::rules::Macro;
        let lit = |s: &str| Macro::literal_bytes(s);
        assert_eq!(gate_literals(&Operator::StrEq(lit("2"))), None);
        assert_eq!(gate_literals(&Operator::Contains(lit("<"))), None);
        assert_eq!(
            gate_literals(&Operator::StrEq(lit("On"))),
            Some(vec![b"on".to_vec()])
        );
    }

    proptest::proptest! {
        /// Soundness of the residual gate: a value the regex matches holds one of its bytes or
        /// (case-insensitively) one of its literals.
        #[test]
        fn byte_gates_are_necessary(
            pattern in r"(?:[;|&<]|\\s|\.|\*|\+|\?|\||\(|\)|\[;a\]|\^|\$|a|;a|ab|0x|\(\?i\)){1,10}",
            value in "[aAbB0x;|&< ]{0,16}",
        ) {
            let Some(gate) = residual_gate(&pattern) else { return Ok(()) };
            let Ok(m) = Matcher::new(&Operator::Rx(pattern.clone())) else { return Ok(()) };
            if m.matches(value.as_bytes(), &mut |_| None).is_some() {
                let lower = value.to_ascii_lowercase();
                proptest::prop_assert!(
                    gate.bytes.intersects(&ByteSet::of(value.as_bytes()))
                        || gate.literals.iter().any(|l| memchr::memmem::find(lower.as_bytes(), l).is_some()),
                    "{pattern} matched {value:?} without any byte or literal of its gate {gate:?}"
                );
            }
        }

        /// Soundness: whenever a regex matches, one of its gate literals occurs in the
        /// lowercased value.
        #[test]
        fn gates_are_necessary(
            pattern in "(?:[a-c]|\\(\\?i\\)|\\\\s|\\.|\\*|\\+|\\?|\\||\\(|\\)|\\[ab\\]|x{2}){1,12}",
            value in "[a-cA-C x]{0,24}",
        ) {
            let Some(gate) = regex_literals(&pattern) else { return Ok(()) };
            let Ok(m) = Matcher::new(&Operator::Rx(pattern.clone())) else { return Ok(()) };
            if m.matches(value.as_bytes(), &mut |_| None).is_some() {
                let lower = value.to_ascii_lowercase();
                proptest::prop_assert!(
                    gate.iter().any(|l| memchr::memmem::find(lower.as_bytes(), l).is_some()),
                    "{pattern} matched {value:?} but no gate literal {gate:?} occurs"
                );
            }
        }
    }
}
