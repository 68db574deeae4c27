//! Splitting a SecLang file into directives.
//!
//! SecLang is line-oriented: a directive is a name followed by arguments separated by
//! whitespace, an argument may be double-quoted, and a line ending in a backslash continues on
//! the next one. Inside double quotes `\"` is a quote and `\\` one backslash, as Apache's
//! configuration parser reads them (ModSecurity 2 was an Apache module, and the CRS is written
//! for it: 920460 spells a regex that matches one backslash `\\\\`). Every other backslash is
//! kept, because the arguments are mostly regexes and `\s` must reach the regex as written.

use std::sync::Arc;

use crate::rules::SourceLocation;

/// One directive: `SecRule ARGS "@rx x" "id:1,deny"` is the name `SecRule` and three arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Directive {
    /// Where the directive starts.
    pub(crate) source: SourceLocation,
    /// The directive's name, as written.
    pub(crate) name: String,
    /// Its arguments, unquoted.
    pub(crate) args: Vec<String>,
}

/// Splits `text` into directives. Fails on an unterminated quote, naming the line it opened on.
pub(crate) fn directives(text: &str, file: &Arc<str>) -> Result<Vec<Directive>, (u32, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((n, first)) = lines.next() {
        let start_line = n as u32 + 1;
        if first.trim_start().starts_with('#') || first.trim().is_empty() {
            continue;
        }
        // Join continuation lines: the backslash and the line break go, the next line's
        // indentation stays (action lists trim it).
        let mut logical = String::from(first);
        while logical.ends_with('\\') && !logical.ends_with("\\\\") {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next),
                None => break,
            }
        }
        let column = (first.len() - first.trim_start().len()) as u32 + 1;
        let words = split_words(&logical).map_err(|e| (start_line, e))?;
        let mut words = words.into_iter();
        let Some(name) = words.next() else { continue };
        out.push(Directive {
            source: SourceLocation {
                file: file.clone(),
                line: start_line,
                column,
            },
            name,
            args: words.collect(),
        });
    }
    Ok(out)
}

/// Splits one logical line into words, honouring double quotes.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' if matches!(chars.peek(), Some('"' | '\\')) => {
                        word.extend(chars.next());
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => word.push(c),
                }
            }
            if !closed {
                return Err("unterminated double quote".to_string());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Directive> {
        directives(text, &Arc::from("t.conf")).unwrap()
    }

    #[test]
    fn quoted_arguments_keep_regex_backslashes() {
        let d = parse(r#"SecRule ARGS "@rx a\s+\"b\"[^\\\\]\\\\c" "id:1,deny""#);
        assert_eq!(d[0].name, "SecRule");
        assert_eq!(d[0].args, ["ARGS", r#"@rx a\s+"b"[^\\]\\c"#, "id:1,deny"]);
    }

    #[test]
    fn continuation_lines_join_and_comments_are_skipped() {
        let d = parse(
            "# comment\n\nSecRule ARGS \"@rx x\" \\\n    \"id:1,\\\n    deny\"\nSecMarker END\n",
        );
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].source.line, 3);
        assert_eq!(d[0].args[2], "id:1,    deny");
        assert_eq!(d[1].args, ["END"]);
        assert_eq!(d[1].source.line, 6);
    }

    #[test]
    fn an_unterminated_quote_names_its_line() {
        let err =
            directives("SecMarker A\nSecRule ARGS \"@rx x", &Arc::from("t.conf")).unwrap_err();
        assert_eq!(err.0, 2);
    }
}
