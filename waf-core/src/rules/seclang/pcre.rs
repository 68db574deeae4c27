//! Rewriting PCRE patterns into the syntax of Rust's regex engines.
//!
//! ModSecurity compiles `@rx` with PCRE. Most CRS patterns mean the same in both dialects;
//! the differences fall in three groups:
//!
//! - **Spelling only**, rewritten here to an exact equivalent: a `{` that does not start a
//!   repetition is a literal in PCRE and an error in Rust; a `[` inside a class is a literal in
//!   PCRE and opens a nested class in Rust (so do `&&`, `--` and `~~`, Rust's set operators);
//!   `\Z`, `\e`, `\h` and octal `\0` have no Rust spelling. Each is written the Rust way.
//! - **Backtracking-only** constructs — lookaround, backreferences, atomic groups — have no
//!   linear-time equivalent in general. [`to_rust`] refuses them with a reason; the SecLang
//!   front end then gives the rule to the bounded backtracking matcher
//!   ([`crate::operator::backtrack`]), which runs [`to_backtracking`]'s rewriting behind a
//!   linear-time prefilter, [`to_relaxed`]'s.
//! - A **possessive quantifier** (`a*+`, which Rust would silently read as `(a*)+`) only
//!   forbids giving characters back; read as the greedy `a*`, the pattern matches everything it
//!   matched before and possibly more. [`to_rust`] rewrites it so and reports the pattern as
//!   *loosened*; the backtracking matcher keeps it.
//! - Everything else is passed through and checked by compiling it.

/// A pattern in Rust syntax, and whether it had to be loosened (possessive quantifiers read as
/// greedy ones).
pub(crate) struct Rewritten {
    pub(crate) pattern: String,
    pub(crate) loosened: bool,
}

/// What a PCRE pattern is rewritten for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    /// `regex-automata`, meaning the same: backtracking-only constructs are refused, possessive
    /// quantifiers loosened ([`to_rust`]).
    Linear,
    /// `regex-automata`, matching wherever PCRE matches and maybe elsewhere ([`to_relaxed`]).
    Relaxed,
    /// `fancy-regex` over bytes, meaning the same ([`to_backtracking`]).
    Backtracking,
}

/// Rewrites a PCRE pattern for the linear-time engine; `Err` says which construct needs
/// backtracking.
pub(crate) fn to_rust(pattern: &str) -> Result<Rewritten, String> {
    let mut r = Rewriter::new(pattern, Dialect::Linear);
    r.run()?;
    Ok(Rewritten {
        pattern: r.out,
        loosened: r.loosened,
    })
}

/// Rewrites a PCRE pattern into a linear-time regex that matches every span the PCRE pattern
/// matches, and maybe more: the prefilter of a backtracking pattern.
///
/// Each backtracking-only construct is replaced by something that accepts at least as much: a
/// lookaround (which consumes nothing) by the empty group, an atomic group by a plain one, a
/// possessive quantifier by the greedy one, and a backreference by a case-insensitive copy of
/// the group it refers to (`(a+)=\1` becomes `(a+)=(?i:(a+))`: the text the group captured
/// matched the group's pattern, whatever case applies where it is repeated). A reference to a
/// group not yet closed becomes `(?s:.*)`.
pub(crate) fn to_relaxed(pattern: &str) -> Result<String, String> {
    let mut r = Rewriter::new(pattern, Dialect::Relaxed);
    r.run()?;
    Ok(r.out)
}

/// Rewrites a PCRE pattern for `fancy-regex` in its ASCII bytes mode, keeping lookaround,
/// backreferences, atomic groups and possessive quantifiers.
pub(crate) fn to_backtracking(pattern: &str) -> Result<String, String> {
    let mut r = Rewriter::new(pattern, Dialect::Backtracking);
    r.run()?;
    Ok(r.out)
}

/// A group opened and not yet closed.
struct OpenGroup {
    /// Its number, when it captures.
    capture: Option<usize>,
    /// A lookaround, which [`Dialect::Relaxed`] drops.
    lookaround: bool,
    /// Where its text starts in the output.
    out_start: usize,
}

/// One pass over a pattern, writing the rewritten pattern.
struct Rewriter {
    chars: Vec<char>,
    dialect: Dialect,
    out: String,
    loosened: bool,
    /// The groups open at this point, innermost last.
    open: Vec<OpenGroup>,
    /// The text each capturing group was rewritten to, by number (1 is index 0), once closed.
    captured: Vec<Option<String>>,
}

impl Rewriter {
    fn new(pattern: &str, dialect: Dialect) -> Rewriter {
        Rewriter {
            chars: pattern.chars().collect(),
            dialect,
            out: String::with_capacity(pattern.len() + 8),
            loosened: false,
            open: Vec::new(),
            captured: Vec::new(),
        }
    }

    fn needs_backtracking(&self, what: &str) -> Result<(), String> {
        match self.dialect {
            Dialect::Linear => Err(format!("{what} needs backtracking")),
            _ => Ok(()),
        }
    }

    fn run(&mut self) -> Result<(), String> {
        let mut i = 0;
        // Inside a character class: index of its first member, to tell a literal leading `]`.
        let mut class_start: Option<usize> = None;
        // Whether the previous token was a quantifier (for possessive `*+`).
        let mut after_quantifier = false;
        while let Some(&c) = self.chars.get(i) {
            if let Some(start) = class_start {
                match c {
                    '\\' => {
                        i = self.escape(i, true)?;
                        continue;
                    }
                    ']' if i > start => {
                        self.out.push(']');
                        class_start = None;
                    }
                    '[' if self.chars.get(i + 1) == Some(&':') => {
                        // A POSIX class such as `[:alpha:]`: the same in both.
                        match find_posix_end(&self.chars, i + 2) {
                            Some(end) => {
                                self.out.extend(&self.chars[i..=end]);
                                i = end + 1;
                                continue;
                            }
                            None => self.out.push_str("\\["),
                        }
                    }
                    '[' => self.out.push_str("\\["),
                    '&' | '-' | '~' if self.chars.get(i + 1) == Some(&c) => {
                        self.out.push('\\');
                        self.out.push(c);
                        self.out.push('\\');
                        self.out.push(c);
                        i += 2;
                        continue;
                    }
                    c => self.push_char(c),
                }
                i += 1;
                continue;
            }
            let was_quantifier = std::mem::replace(&mut after_quantifier, false);
            match c {
                '\\' => {
                    i = self.escape(i, false)?;
                    continue;
                }
                '[' => {
                    self.out.push('[');
                    i += 1;
                    if self.chars.get(i) == Some(&'^') {
                        self.out.push('^');
                        i += 1;
                    }
                    class_start = Some(i);
                    continue;
                }
                '(' => {
                    i = self.open_group(i)?;
                    continue;
                }
                ')' => {
                    self.close_group();
                    i += 1;
                    continue;
                }
                '{' => match repetition(&self.chars, i) {
                    Some(end) => {
                        self.out.extend(&self.chars[i..=end]);
                        i = end + 1;
                        after_quantifier = true;
                        continue;
                    }
                    None => self.out.push_str("\\{"),
                },
                '}' => self.out.push_str("\\}"),
                '*' | '+' | '?' if was_quantifier => match c {
                    // `a*?` is lazy: the `?` ends the quantifier.
                    '?' => self.out.push('?'),
                    // Possessive: kept for the backtracking matcher, else dropped, so the
                    // quantifier is greedy.
                    '+' if self.dialect == Dialect::Backtracking => self.out.push('+'),
                    '+' => self.loosened = true,
                    _ => self.out.push(c),
                },
                '*' | '+' | '?' => {
                    self.out.push(c);
                    after_quantifier = true;
                }
                c => self.push_char(c),
            }
            i += 1;
        }
        Ok(())
    }

    /// Copies the group opening at `chars[i]` (`(`); returns the index after its opening.
    fn open_group(&mut self, i: usize) -> Result<usize, String> {
        let rest: String = self.chars[i + 1..self.chars.len().min(i + 4)]
            .iter()
            .collect();
        let out_start = self.out.len();
        let mut group = OpenGroup {
            capture: None,
            lookaround: false,
            out_start,
        };
        let opening_len = if let Some(flags) = rest.strip_prefix('?') {
            let lookaround = if flags.starts_with('=') || flags.starts_with('!') {
                Some(3)
            } else if flags.starts_with("<=") || flags.starts_with("<!") {
                Some(4)
            } else {
                None
            };
            if let Some(len) = lookaround {
                let what = if len == 3 {
                    "lookahead `(?=`/`(?!`"
                } else {
                    "lookbehind `(?<=`/`(?<!`"
                };
                self.needs_backtracking(what)?;
                if self.dialect == Dialect::Relaxed {
                    group.lookaround = true;
                    self.out.push_str("(?:");
                } else {
                    self.out.extend(&self.chars[i..i + len]);
                }
                len
            } else if flags.starts_with('>') {
                self.needs_backtracking("atomic group `(?>`")?;
                self.out.push_str(match self.dialect {
                    Dialect::Backtracking => "(?>",
                    _ => "(?:",
                });
                3
            } else {
                // A named group (`(?<n>`, `(?P<n>`, `(?'n'`) captures; flags and `(?:` do
                // not. Names and flags are copied as they come, but for the relaxed pattern's
                // names: a backreference copies its group, and a name may occur once.
                let named = if flags.starts_with('<') || flags.starts_with("P<") {
                    Some('>')
                } else if flags.starts_with('\'') {
                    Some('\'')
                } else {
                    None
                };
                self.out.push('(');
                match named {
                    Some(end) => {
                        group.capture = Some(self.next_capture());
                        let name_end = self.chars[i + 3..]
                            .iter()
                            .position(|&c| c == end)
                            .map(|at| i + 3 + at + 1);
                        match name_end {
                            Some(after) if self.dialect == Dialect::Relaxed => after - i,
                            _ => 1,
                        }
                    }
                    None => 1,
                }
            }
        } else {
            group.capture = Some(self.next_capture());
            self.out.push('(');
            1
        };
        self.open.push(group);
        Ok(i + opening_len)
    }

    fn next_capture(&mut self) -> usize {
        self.captured.push(None);
        self.captured.len()
    }

    fn close_group(&mut self) {
        match self.open.pop() {
            Some(group) if group.lookaround => {
                self.out.truncate(group.out_start);
                self.out.push_str("(?:)");
            }
            Some(group) => {
                self.out.push(')');
                if let Some(n) = group.capture {
                    let text = self
                        .out
                        .get(group.out_start..)
                        .unwrap_or_default()
                        .to_string();
                    if let Some(slot) = self.captured.get_mut(n - 1) {
                        *slot = Some(text);
                    }
                }
            }
            // Unbalanced: left for the regex compiler to report.
            None => self.out.push(')'),
        }
    }

    /// Writes a backreference to group `n`.
    fn backreference(&mut self, n: usize, spelled: &str) -> Result<(), String> {
        self.needs_backtracking(&format!("backreference `{spelled}`"))?;
        if self.dialect == Dialect::Backtracking {
            // `(?:\1)`, so that a digit after it is not read as part of the number.
            self.out.push_str(&format!("(?:\\{n})"));
            return Ok(());
        }
        let copy = match n.checked_sub(1).and_then(|i| self.captured.get(i)) {
            Some(Some(text)) => format!("(?i:{text})"),
            _ => "(?s:.*)".to_string(),
        };
        self.out.push_str(&copy);
        Ok(())
    }

    /// PCRE without its UTF flag reads a pattern as bytes: `´` in a class is two members, C2
    /// and B4. Rust's byte regexes agree once non-ASCII characters are written as byte escapes.
    fn push_char(&mut self, c: char) {
        if c.is_ascii() {
            self.out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                self.push_byte(b);
            }
        }
    }

    /// Writes the byte `b` as an escape, which both engines read as that byte.
    fn push_byte(&mut self, b: u8) {
        self.out.push_str(&format!("\\x{b:02X}"));
    }

    /// Copies the escape starting at `chars[i]` (a backslash); returns the index after it.
    fn escape(&mut self, i: usize, in_class: bool) -> Result<usize, String> {
        let Some(&next) = self.chars.get(i + 1) else {
            self.out.push_str("\\\\");
            return Ok(i + 1);
        };
        match next {
            'Z' if !in_class => self.out.push_str("\\n?\\z"),
            'e' => self.out.push_str("\\x1B"),
            'h' => {
                if !in_class {
                    self.out.push('[');
                }
                self.out.push_str(" \\t");
                self.push_byte(0xA0);
                if !in_class {
                    self.out.push(']');
                }
            }
            'x' => {
                // `\xHH` (up to two digits) or `\x{H...}`; without the UTF flag, at most FF.
                let (digits, len): (String, usize) = if self.chars.get(i + 2) == Some(&'{') {
                    let digits: String = self.chars[i + 3..]
                        .iter()
                        .take_while(|c| **c != '}')
                        .collect();
                    let len = digits.chars().count() + 2;
                    (digits, len)
                } else {
                    let digits: String = self.chars[i + 2..]
                        .iter()
                        .take(2)
                        .take_while(|c| c.is_ascii_hexdigit())
                        .collect();
                    let len = digits.len();
                    (digits, len)
                };
                let value = if digits.is_empty() {
                    0
                } else {
                    u32::from_str_radix(&digits, 16)
                        .map_err(|_| format!("`\\x{{{digits}}}` is not a hex escape"))?
                };
                let byte = u8::try_from(value)
                    .map_err(|_| format!("`\\x{{{digits}}}` is above \\xFF, for bytes"))?;
                self.push_byte(byte);
                return Ok(i + 2 + len);
            }
            '0' => {
                // Octal: `\0`, `\012`.
                let digits: String = self.chars[i + 2..]
                    .iter()
                    .take(2)
                    .take_while(|c| ('0'..='7').contains(c))
                    .collect();
                let value = u8::from_str_radix(&format!("0{digits}"), 8).unwrap_or(0);
                self.push_byte(value);
                return Ok(i + 2 + digits.len());
            }
            '1'..='9' if !in_class => {
                let n = next as usize - '0' as usize;
                self.backreference(n, &format!("\\{next}"))?;
            }
            'k' | 'g' if !in_class => {
                // Named and relative references (`\k<name>`, `\g{-1}`): not in the CRS, and
                // each spelling would need its own rewriting.
                return Err(format!("backreference `\\{next}` is not supported"));
            }
            // PCRE lets any punctuation be escaped to mean itself; Rust gives some escapes a
            // meaning of their own (`\<` and `\>` are word boundaries). A hex escape is the
            // same literal in both, inside a class or out.
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => {
                self.out.push_str(&format!("\\x{:02X}", c as u32));
            }
            c => {
                self.out.push('\\');
                self.out.push(c);
            }
        }
        Ok(i + 2)
    }
}

/// When `chars[i]` (`{`) starts a `{n}`, `{n,}` or `{n,m}` repetition, the index of its `}`.
fn repetition(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    let digits = |j: &mut usize| {
        let from = *j;
        while chars.get(*j).is_some_and(char::is_ascii_digit) {
            *j += 1;
        }
        *j > from
    };
    if !digits(&mut j) {
        return None;
    }
    if chars.get(j) == Some(&',') {
        j += 1;
        digits(&mut j);
    }
    (chars.get(j) == Some(&'}')).then_some(j)
}

fn find_posix_end(chars: &[char], from: usize) -> Option<usize> {
    let mut j = from;
    while chars.get(j).is_some_and(char::is_ascii_alphabetic) {
        j += 1;
    }
    (chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&']')).then_some(j + 1)
}

#[cfg(test)]
mod tests {
    use super::{to_backtracking, to_relaxed, to_rust};

    #[test]
    fn spelling_differences_are_rewritten() {
        let cases = [
            (r"a{b", r"a\{b"),
            (r"a{2,3}b{4}", r"a{2,3}b{4}"),
            (r"[[a]", r"[\[a]"),
            (r"[]a]", r"[]a]"),
            (r"[^]a[]", r"[^]a\[]"),
            (r"[[:alpha:]_]", r"[[:alpha:]_]"),
            (r"[a&&b]", r"[a\&\&b]"),
            (r"x\Z", r"x\n?\z"),
            (r"\0", r"\x00"),
            (r"\012", r"\x0A"),
            (r"\e\h", r"\x1B[ \t\xA0]"),
            (r"a*?b+?c??", r"a*?b+?c??"),
            (r"\/", r"\x2F"),
            (r"[\<\>]\<", r"[\x3C\x3E]\x3C"),
            ("[´]é", r"[\xC2\xB4]\xC3\xA9"),
        ];
        for (pcre, rust) in cases {
            let r = to_rust(pcre).unwrap();
            assert_eq!(r.pattern, rust, "{pcre}");
            assert!(!r.loosened);
            crate::operator::build_regex(rust).unwrap();
        }
    }

    #[test]
    fn backtracking_constructs_are_refused() {
        for p in [
            r"a(?=b)", r"(?!a)", r"(?<=a)b", r"(?<!a)b", r"(a)\1", r"(?>a)",
        ] {
            assert!(to_rust(p).is_err(), "{p}");
        }
    }

    /// The relaxed pattern matches wherever PCRE does: each backtracking-only construct is
    /// replaced by one accepting at least as much.
    #[test]
    fn relaxed_patterns_replace_what_needs_backtracking() {
        let cases = [
            (r"a(?=b)c", r"a(?:)c"),
            (r"(?<!&(?:amp|apos));", r"(?:);"),
            (r"(?!\b\1\b)(\w)", r"(?:)(\w)"),
            (r"(a+)=\1", r"(a+)=(?i:(a+))"),
            (r"(?i:(\w+)\b)\s*=\s*\1", r"(?i:(\w+)\b)\s*=\s*(?i:(\w+))"),
            (r"\1(a)", r"(?s:.*)(a)"),
            (r"(a\1)", r"(a(?s:.*))"),
            (r"(?>a|ab)c", r"(?:a|ab)c"),
            (r"a*+b++", r"a*b+"),
            (r"(?<n>x)\1", r"(x)(?i:(x))"),
            (r"(?P<n>x)(?'m'y)\2", r"(x)(y)(?i:(y))"),
            (r"\xff", r"\xFF"),
        ];
        for (pcre, relaxed) in cases {
            let got = to_relaxed(pcre).unwrap();
            assert_eq!(got, relaxed, "{pcre}");
            crate::operator::build_regex(&got).unwrap();
        }
    }

    /// The backtracking matcher gets every construct, and the linear spellings of the rest.
    #[test]
    fn backtracking_patterns_keep_what_needs_backtracking() {
        let cases = [
            (r"(?<!&amp);|['=]", r"(?<!&amp);|['=]"),
            (r"(\w+)=(?!\1)\w", r"(\w+)=(?!(?:\1))\w"),
            (r"(?>a+)b*+{", r"(?>a+)b*+\{"),
            (r"(?<n>x)", r"(?<n>x)"),
            ("[´]", r"[\xC2\xB4]"),
        ];
        for (pcre, backtracking) in cases {
            assert_eq!(to_backtracking(pcre).unwrap(), backtracking, "{pcre}");
        }
        assert!(
            to_backtracking(r"(?<n>a)\k<n>").is_err(),
            "named references are refused"
        );
    }

    #[test]
    fn possessive_quantifiers_are_read_as_greedy_and_flagged() {
        for (p, want) in [
            (r"a*+b", "a*b"),
            (r"a++", "a+"),
            (r"a{2}+", "a{2}"),
            (r"(a)?+", "(a)?"),
        ] {
            let r = to_rust(p).unwrap();
            assert_eq!(r.pattern, want, "{p}");
            assert!(r.loosened, "{p}");
        }
    }
}
