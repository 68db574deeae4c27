//! Rewriting PCRE patterns into the syntax of Rust's `regex`.
//!
//! ModSecurity compiles `@rx` with PCRE. Most CRS patterns mean the same in both dialects;
//! the differences fall in three groups:
//!
//! - **Spelling only**, rewritten here to an exact equivalent: a `{` that does not start a
//!   repetition is a literal in PCRE and an error in Rust; a `[` inside a class is a literal in
//!   PCRE and opens a nested class in Rust (so do `&&`, `--` and `~~`, Rust's set operators);
//!   `\Z`, `\e`, `\h` and octal `\0` have no Rust spelling. Each is written the Rust way.
//! - **Backtracking-only** constructs — lookaround, backreferences, atomic groups — have no
//!   linear-time equivalent in general. They are refused with a reason, and the caller reports
//!   the rule.
//! - A **possessive quantifier** (`a*+`, which Rust would silently read as `(a*)+`) only
//!   forbids giving characters back; read as the greedy `a*`, the pattern matches everything it
//!   matched before and possibly more. That is the safe direction for a detection rule, so it
//!   is rewritten and reported as a *loosened* pattern.
//! - Everything else is passed through and checked by compiling it.

/// A pattern in Rust syntax, and whether it had to be loosened (possessive quantifiers read as
/// greedy ones).
pub(crate) struct Rewritten {
    pub(crate) pattern: String,
    pub(crate) loosened: bool,
}

/// Rewrites a PCRE pattern; `Err` says which construct has no equivalent.
pub(crate) fn to_rust(pattern: &str) -> Result<Rewritten, String> {
    let mut loosened = false;
    let pattern = rewrite(pattern, &mut loosened)?;
    Ok(Rewritten { pattern, loosened })
}

fn rewrite(pattern: &str, loosened: &mut bool) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    // Inside a character class: index of its first member, to tell a literal leading `]`.
    let mut class_start: Option<usize> = None;
    // Whether the previous token was a quantifier (for possessive `*+`).
    let mut after_quantifier = false;
    while i < chars.len() {
        let c = chars[i];
        if let Some(start) = class_start {
            match c {
                '\\' => {
                    i = escape(&chars, i, &mut out, true)?;
                    continue;
                }
                ']' if i > start => {
                    out.push(']');
                    class_start = None;
                }
                '[' if chars.get(i + 1) == Some(&':') => {
                    // A POSIX class such as `[:alpha:]`: the same in both.
                    let end = find_posix_end(&chars, i + 2);
                    match end {
                        Some(end) => {
                            out.extend(&chars[i..=end]);
                            i = end + 1;
                            continue;
                        }
                        None => out.push_str("\\["),
                    }
                }
                '[' => out.push_str("\\["),
                '&' | '-' | '~' if chars.get(i + 1) == Some(&c) => {
                    out.push('\\');
                    out.push(c);
                    out.push('\\');
                    out.push(c);
                    i += 2;
                    continue;
                }
                c => push_char(&mut out, c),
            }
            i += 1;
            continue;
        }
        let was_quantifier = std::mem::replace(&mut after_quantifier, false);
        match c {
            '\\' => {
                i = escape(&chars, i, &mut out, false)?;
                continue;
            }
            '[' => {
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                class_start = Some(i);
                continue;
            }
            '(' if chars.get(i + 1) == Some(&'?') => {
                let rest: String = chars[i + 2..chars.len().min(i + 4)].iter().collect();
                if rest.starts_with('=') || rest.starts_with('!') {
                    return Err("lookahead `(?=`/`(?!` needs backtracking".into());
                }
                if rest.starts_with("<=") || rest.starts_with("<!") {
                    return Err("lookbehind `(?<=`/`(?<!` needs backtracking".into());
                }
                if rest.starts_with('>') {
                    return Err("atomic group `(?>` needs backtracking".into());
                }
                out.push('(');
            }
            '{' => match repetition(&chars, i) {
                Some(end) => {
                    out.extend(&chars[i..=end]);
                    i = end + 1;
                    after_quantifier = true;
                    continue;
                }
                None => out.push_str("\\{"),
            },
            '}' => out.push_str("\\}"),
            '*' | '+' | '?' if was_quantifier => match c {
                // `a*?` is lazy: the `?` ends the quantifier.
                '?' => out.push('?'),
                // Possessive: dropped, so the quantifier is greedy.
                '+' => *loosened = true,
                _ => out.push(c),
            },
            '*' | '+' | '?' => {
                out.push(c);
                after_quantifier = true;
            }
            c => push_char(&mut out, c),
        }
        i += 1;
    }
    Ok(out)
}

/// PCRE without its UTF flag reads a pattern as bytes: `´` in a class is two members, C2 and
/// B4. Rust's byte regexes agree once non-ASCII characters are written as byte escapes.
fn push_char(out: &mut String, c: char) {
    if c.is_ascii() {
        out.push(c);
    } else {
        let mut buf = [0; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
}

/// Copies the escape starting at `chars[i]` (a backslash) into `out`; returns the index after it.
fn escape(chars: &[char], i: usize, out: &mut String, in_class: bool) -> Result<usize, String> {
    let Some(&next) = chars.get(i + 1) else {
        out.push_str("\\\\");
        return Ok(i + 1);
    };
    match next {
        'Z' if !in_class => out.push_str("\\n?\\z"),
        'e' => out.push_str("\\x1B"),
        'h' if in_class => out.push_str(" \\t\\xA0"),
        'h' => out.push_str("[ \\t\\xA0]"),
        '0' => {
            // Octal: `\0`, `\012`.
            let digits: String = chars[i + 2..]
                .iter()
                .take(2)
                .take_while(|c| ('0'..='7').contains(c))
                .collect();
            let value = u32::from_str_radix(&format!("0{digits}"), 8).unwrap_or(0);
            out.push_str(&format!("\\x{value:02X}"));
            return Ok(i + 2 + digits.len());
        }
        '1'..='9' if !in_class => {
            return Err(format!("backreference `\\{next}` needs backtracking"));
        }
        // PCRE lets any punctuation be escaped to mean itself; Rust gives some escapes a
        // meaning of their own (`\<` and `\>` are word boundaries). A hex escape is the
        // same literal in both, inside a class or out.
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => {
            out.push_str(&format!("\\x{:02X}", c as u32));
        }
        c => {
            out.push('\\');
            out.push(c);
        }
    }
    Ok(i + 2)
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
    use super::to_rust;

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
