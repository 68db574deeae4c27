//! Regex selectors that only list names: matched without the regex engine.
//!
//! Exclusions and targets select members by regexes over their names, and most of those
//! regexes are lists: `^(?:state|nonce|code_challenge)$`, `^(?:x-client-|x-ms-)`. A sign-in
//! exclusion that names its rules by tag puts such a list on dozens of rules, and every value
//! those rules visit has its name tested against it: the regex engine's fixed cost per search
//! (its cache, its start state) was more than the comparison of a short name with a few words.
//!
//! A selector regex is compiled case-insensitive and ASCII-only (see
//! [`build_regex`](crate::operator::build_regex)), so comparing ASCII letters without regard
//! to case is exactly what the regex does.

/// Names and name prefixes (lowercase), as a selector regex lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameList {
    exact: Vec<Box<[u8]>>,
    prefixes: Vec<Box<[u8]>>,
}

impl NameList {
    /// The list a selector regex is, if it is one: `^` then one name, or a group of
    /// alternatives (`(?:a|b)` or `(a|b)`), each of letters, digits, `_`, `-` and escaped `.`,
    /// `-` or `_`; then `$`, or not. Without the final `$`, an alternative is a prefix unless
    /// it ends in its own `$`. Anything else is left to the regex engine.
    ///
    /// ```text
    /// ^(?:state|nonce)$          exact: state, nonce
    /// ^(?:x-ms-cpim-|ai_user$)   prefix: x-ms-cpim-; exact: ai_user
    /// ^x-client-                 prefix: x-client-
    /// ```
    pub(crate) fn parse(pattern: &str) -> Option<NameList> {
        let rest = pattern.strip_prefix('^')?;
        let (body, anchored_end) = match rest.strip_suffix('$') {
            // `\$` is a literal dollar sign: not a list of names.
            Some(b) if !b.ends_with('\\') => (b, true),
            Some(_) => return None,
            None => (rest, false),
        };
        let (alternatives, grouped) = match body
            .strip_prefix("(?:")
            .or_else(|| body.strip_prefix('('))
            .and_then(|b| b.strip_suffix(')'))
        {
            Some(inner) => (inner, true),
            None => (body, false),
        };
        let mut list = NameList {
            exact: Vec::new(),
            prefixes: Vec::new(),
        };
        for alternative in alternatives.split('|') {
            if !grouped && alternatives.contains('|') {
                // `^a|b$` is `(^a)|(b$)`: not a list of anchored names.
                return None;
            }
            let (text, exact) = match alternative.strip_suffix('$') {
                Some(t) if grouped => (t, true),
                Some(_) => return None,
                None => (alternative, anchored_end),
            };
            let name = literal(text)?;
            if exact {
                list.exact.push(name);
            } else {
                list.prefixes.push(name);
            }
        }
        Some(list)
    }

    /// Whether the list selects `name`.
    pub(crate) fn matches(&self, name: &[u8]) -> bool {
        self.exact.iter().any(|n| n.eq_ignore_ascii_case(name))
            || self.prefixes.iter().any(|p| {
                name.get(..p.len())
                    .is_some_and(|start| start.eq_ignore_ascii_case(p))
            })
    }
}

/// The bytes a regex alternative of plain characters stands for, lowercase; `None` when it is
/// empty or holds anything but letters, digits, `_`, `-` and the escapes `\.`, `\-`, `\_`.
fn literal(text: &str) -> Option<Box<[u8]>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => match bytes.next()? {
                e @ (b'.' | b'-' | b'_') => out.push(e),
                _ => return None,
            },
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => {
                out.push(b.to_ascii_lowercase())
            }
            _ => return None,
        }
    }
    (!out.is_empty()).then(|| out.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::NameList;
    use proptest::prelude::*;

    /// Patterns of the shapes the rules use, and shapes that are not lists.
    const PATTERNS: &[&str] = &[
        r"^(?:state|nonce|code|id_token|client-request-id|X-AnchorMailbox)$",
        r"^(?:x-client-|x-ms-)",
        r"^(?:x-ms-cpim-|ai_user$|ai_session$)",
        r"^(?:x-csrf-token|x-client-|x-ms-|client-request-id$)",
        r"^(diags|claims|attributes)$",
        r"^x-client-",
        r"^content-type$",
        r"^attributes\.city$",
        r"^a|b$",
        r"^(?:attributes\.)?(?:city|name)$",
        r"(?:^|\.)(?:password|client_secret)$",
        r"^extension_[A-Za-z0-9_]+$",
        r"^price\$",
        r"^a.c$",
        r"^$",
        r"^(?:)$",
    ];

    #[test]
    fn lists_and_non_lists() {
        let parsed: Vec<bool> = PATTERNS
            .iter()
            .map(|p| NameList::parse(p).is_some())
            .collect();
        assert_eq!(
            parsed,
            [
                true, true, true, true, true, true, true, true, false, false, false, false, false,
                false, false, false
            ]
        );
        let list = NameList::parse(r"^(?:x-ms-cpim-|ai_user$)").unwrap();
        assert!(list.matches(b"X-MS-CPIM-sso:contoso_0"));
        assert!(list.matches(b"AI_user"));
        assert!(!list.matches(b"ai_user_id"));
        assert!(!list.matches(b"x-ms-cpim"));
    }

    fn name() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop::sample::select(vec![
            "state",
            "STATE",
            "nonce",
            "x-",
            "ms-",
            "client",
            "-",
            "request",
            "id",
            "_",
            ".",
            "ai",
            "user",
            "session",
            "cpim",
            "token",
            "city",
            "attributes",
            "a",
            "b",
            "c",
            "$",
            "\u{17f}",
            "\u{212a}",
        ]);
        prop::collection::vec(piece, 0..5).prop_map(|p| p.concat().into_bytes())
    }

    proptest! {
        /// A list selects exactly the names its regex selects.
        #[test]
        fn a_list_agrees_with_its_regex(pattern in prop::sample::select(PATTERNS), name in name()) {
            if let Some(list) = NameList::parse(pattern) {
                let regex = crate::operator::build_regex(&format!("(?i){pattern}")).unwrap();
                prop_assert_eq!(list.matches(&name), regex.is_match(&name), "{} on {:?}", pattern, String::from_utf8_lossy(&name));
            }
        }
    }
}
