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
        if lit.is_empty() {
            return None;
        }
        Some(vec![lit.to_ascii_lowercase()])
    };
    match op {
        Operator::Rx(pattern) => regex_literals(pattern),
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

/// The bytes one of which every match of a regex starts with, as a table, when that set is
/// *rare*: no ASCII letter or digit in it. The residual regexes (no literal of two bytes to
/// gate them) are mostly of this shape: the CRS command-injection rules start at `;`, `|`,
/// `&`, `` ` `` or `$(`. A value with none of those bytes cannot match, and skips the residual
/// set; ordinary tokens and names have none of them.
///
/// `None` when a match may start with anything (an anchor or an empty branch first) or with a
/// letter or digit, which nearly every value contains.
pub(crate) fn rare_first_bytes(pattern: &str) -> Option<Box<[bool; 256]>> {
    let hir = parse_bytes(pattern)?;
    let mut extractor = Extractor::new();
    extractor
        .kind(ExtractKind::Prefix)
        .limit_class(256)
        .limit_repeat(1)
        .limit_literal_len(1)
        .limit_total(512);
    let seq = extractor.extract(&hir);
    let mut table = Box::new([false; 256]);
    for lit in seq.literals()? {
        let &first = lit.as_bytes().first()?;
        if first.is_ascii_alphanumeric() {
            return None;
        }
        table[usize::from(first)] = true;
    }
    Some(table)
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

/// The literal gate of a regex, or `None` when it has no usable one.
pub(crate) fn regex_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = parse_bytes(pattern)?;
    let folded = fold_case(&hir, 0)?;
    let seq = required(&folded, 0)?;
    let mut lits: Vec<Vec<u8>> = seq
        .literals()?
        .iter()
        .map(|l| l.as_bytes().to_ascii_lowercase())
        .collect();
    lits.sort();
    lits.dedup();
    Some(lits)
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
            // A non-ASCII Unicode class cannot appear with Unicode mode off; be safe anyway.
            None => return None,
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

    #[test]
    fn rare_first_bytes_of_command_injection_shapes() {
        let first = |p: &str| {
            rare_first_bytes(p).map(|t| {
                (0u8..=255)
                    .filter(|&b| t[usize::from(b)])
                    .map(char::from)
                    .collect::<String>()
            })
        };
        assert_eq!(
            first(r"(?:;|\||&&?|`|\$\()\s*\w+").as_deref(),
            Some("$&;`|")
        );
        assert_eq!(first(r"[<>]\s*script").as_deref(), Some("<>"));
        assert_eq!(first(r"(?:^|;)cat"), None, "a match may start at ^");
        assert_eq!(first(r"(?i)select|;"), None, "a letter is not rare");
        assert_eq!(first(r"x*;"), None, "an optional first byte");
    }

    proptest::proptest! {
        /// Soundness of the first-byte gate: a value the regex matches holds one of them.
        #[test]
        fn rare_first_bytes_are_necessary(
            pattern in r"(?:[;|&<]|\\s|\.|\*|\+|\?|\||\(|\)|\[;a\]|\^|\$|a){1,10}",
            value in "[a;|&< ]{0,16}",
        ) {
            let Some(table) = rare_first_bytes(&pattern) else { return Ok(()) };
            let Ok(m) = Matcher::new(&Operator::Rx(pattern.clone())) else { return Ok(()) };
            if m.matches(value.as_bytes(), &mut |_| None).is_some() {
                proptest::prop_assert!(
                    value.bytes().any(|b| table[usize::from(b)]),
                    "{pattern} matched {value:?} without any of its first bytes"
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
