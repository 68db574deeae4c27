//! Judging a stage: what was observed against what its `output` expects.
//!
//! The tools check the WAF's log with regexes written for ModSecurity's error log; in practice
//! every one of them names a rule (`id "942100"`). Rather than imitate the ModSecurity log, a
//! pattern is read for the rule ids it names, and those are looked up among the rules that
//! matched. A pattern that names no rule in one of the shapes below is not guessed at: the
//! stage fails as unsupported. Understood shapes, alone or as `|`-separated alternatives (any
//! of which fires / none of which fires), with or without `^`, `$`, `[`, `]` and backslashes:
//! `id "942100"`, `id "942100` (an unclosed quote, as two CRS tests write it), `id:942100`,
//! and a bare `942100`.

use super::format::Output;

/// What sending one stage's request produced.
#[derive(Debug, Default)]
pub struct Observation {
    /// Why the request never reached the rules: the parser (in-process) or the proxy (network)
    /// refused it, or no answer came.
    pub error: Option<String>,
    /// The response status; in-process, the status the proxy would answer with (400 for a
    /// request the parser refuses, the block status for a blocked request) or `None` for a
    /// request that would be forwarded.
    pub status: Option<u16>,
    /// The rules that matched, in evaluation order.
    pub ids: Vec<u32>,
    /// The whole response, when there was one (network mode).
    pub response: Option<String>,
}

/// The rule ids a log pattern names, or `None` when it is not one of the understood shapes.
///
/// ```text
/// id "942100"            → [942100]
/// id "920100"|id "920101" → [920100, 920101]
/// anything else          → None
/// ```
pub fn pattern_ids(pattern: &str) -> Option<Vec<u32>> {
    let core = pattern.trim();
    let core = core.strip_prefix('^').unwrap_or(core);
    let core = core.strip_suffix('$').unwrap_or(core);
    let mut ids = Vec::new();
    for alternative in core.split('|') {
        let text: String = alternative
            .trim()
            .chars()
            .filter(|&c| c != '\\' && c != '(' && c != ')')
            .collect();
        let text = text.trim_start_matches('[').trim_end_matches(']');
        let number = match text.strip_prefix("id") {
            Some(rest) => {
                let rest = rest.trim_start_matches([' ', ':']);
                let rest = rest.strip_prefix('"').unwrap_or(rest);
                rest.strip_suffix('"').unwrap_or(rest)
            }
            None => text,
        };
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        ids.push(number.parse().ok()?);
    }
    Some(ids)
}

/// Everything that went wrong with a stage; empty when it passed.
///
/// In-process, a `status` expectation is only checked when it is the stage's only one (there
/// is no origin to answer; a forwarded request counts as 200), and `response_contains` cannot
/// be checked at all. In network mode both are checked against the real response.
pub fn judge(output: &Output, seen: &Observation, in_process: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let mut must_fire: Vec<u32> = Vec::new();
    let mut must_not_fire: Vec<u32> = Vec::new();
    // Alternatives: at least one must fire.
    let mut any_of: Vec<Vec<u32>> = Vec::new();

    let log = output.log.as_ref();
    for (pattern, key, positive) in [
        (output.log_contains.as_deref(), "log_contains", true),
        (output.no_log_contains.as_deref(), "no_log_contains", false),
        (
            log.and_then(|l| l.match_regex.as_deref()),
            "match_regex",
            true,
        ),
        (
            log.and_then(|l| l.no_match_regex.as_deref()),
            "no_match_regex",
            false,
        ),
    ] {
        let Some(pattern) = pattern.filter(|p| !p.is_empty()) else {
            continue;
        };
        match pattern_ids(pattern) {
            Some(ids) if positive && ids.len() > 1 => any_of.push(ids),
            Some(ids) if positive => must_fire.extend(ids),
            Some(ids) => must_not_fire.extend(ids),
            None => problems.push(format!("unsupported {key}: {pattern:?} names no rule id")),
        }
    }
    if let Some(l) = log {
        must_fire.extend(&l.expect_ids);
        must_not_fire.extend(&l.no_expect_ids);
    }
    let log_expected = !must_fire.is_empty() || !must_not_fire.is_empty() || !any_of.is_empty();

    match (output.expect_error, &seen.error) {
        (Some(true), None) => {
            problems.push("expected an error, but the request was inspected".into())
        }
        (Some(true), Some(_)) => {}
        (_, Some(e)) if log_expected || output.expect_error == Some(false) => {
            problems.push(format!("the request never reached the rules: {e}"));
        }
        _ => {}
    }

    if seen.error.is_none() {
        let missing: Vec<u32> = must_fire
            .iter()
            .copied()
            .filter(|id| !seen.ids.contains(id))
            .collect();
        if !missing.is_empty() {
            problems.push(format!("expected {} to match", rules(&missing)));
        }
        for alternatives in &any_of {
            if !alternatives.iter().any(|id| seen.ids.contains(id)) {
                problems.push(format!("expected one of {} to match", rules(alternatives)));
            }
        }
        let unwanted: Vec<u32> = must_not_fire
            .iter()
            .copied()
            .filter(|id| seen.ids.contains(id))
            .collect();
        if !unwanted.is_empty() {
            problems.push(format!("expected {} not to match", rules(&unwanted)));
        }
        if output.isolated == Some(true) {
            let others: Vec<u32> = seen
                .ids
                .iter()
                .copied()
                .filter(|id| !must_fire.contains(id))
                .collect();
            if !others.is_empty() {
                problems.push(format!("isolated, but {} matched too", rules(&others)));
            }
        }
    }

    if let Some(statuses) = output.status.as_ref().filter(|s| !s.0.is_empty()) {
        let only_expectation =
            !log_expected && output.expect_error.is_none() && output.response_contains.is_none();
        if !in_process || only_expectation {
            let status = match (seen.status, in_process) {
                (Some(s), _) => Some(s),
                (None, true) => Some(200),
                (None, false) => None,
            };
            let ok = status.is_some_and(|s| statuses.0.contains(&s));
            if !ok {
                let expected: Vec<String> = statuses.0.iter().map(u16::to_string).collect();
                problems.push(format!(
                    "expected status {}, got {}",
                    expected.join(" or "),
                    status.map_or_else(|| "no response".to_string(), |s| s.to_string())
                ));
            }
        }
    }

    if let Some(pattern) = output
        .response_contains
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        match (&seen.response, in_process) {
            (_, true) => problems.push("response_contains needs a response: use --target".into()),
            (None, false) => problems.push(format!(
                "expected a response matching {pattern:?}, got none"
            )),
            (Some(response), false) => match regex_automata::meta::Regex::new(pattern) {
                Ok(re) if re.is_match(response.as_str()) => {}
                Ok(_) => problems.push(format!("expected the response to match {pattern:?}")),
                Err(e) => problems.push(format!("response_contains: not a regex: {e}")),
            },
        }
    }
    problems
}

/// `rule 942100` or `rules 942100, 942101`.
fn rules(ids: &[u32]) -> String {
    let list: Vec<String> = ids.iter().map(u32::to_string).collect();
    match ids {
        [_] => format!("rule {}", list.join("")),
        _ => format!("rules {}", list.join(", ")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::format::{LogExpectations, Statuses};
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(pattern_ids("id \"942100\""), Some(vec![942100]));
        assert_eq!(pattern_ids("id \"942480"), Some(vec![942480]));
        assert_eq!(pattern_ids("id:921140"), Some(vec![921140]));
        assert_eq!(pattern_ids("930120"), Some(vec![930120]));
        assert_eq!(pattern_ids("\\[id \\\"1\\\"\\]"), Some(vec![1]));
        assert_eq!(pattern_ids("^(id \"1\"|id \"2\")$"), Some(vec![1, 2]));
        assert_eq!(pattern_ids("Access denied with code 403"), None);
        assert_eq!(pattern_ids("id \"94.*\""), None);
        assert_eq!(pattern_ids(""), None);
    }

    fn seen(ids: &[u32]) -> Observation {
        Observation {
            ids: ids.to_vec(),
            ..Observation::default()
        }
    }

    #[test]
    fn log_expectations() {
        let out = Output {
            log_contains: Some("id \"942100\"".into()),
            ..Output::default()
        };
        assert!(judge(&out, &seen(&[942100, 949110]), true).is_empty());
        assert_eq!(
            judge(&out, &seen(&[920270]), true),
            ["expected rule 942100 to match"]
        );
        let out = Output {
            log: Some(LogExpectations {
                expect_ids: vec![1, 2],
                no_expect_ids: vec![3],
                ..LogExpectations::default()
            }),
            ..Output::default()
        };
        assert_eq!(
            judge(&out, &seen(&[3]), true),
            [
                "expected rules 1, 2 to match",
                "expected rule 3 not to match"
            ]
        );
        let out = Output {
            log_contains: Some("blocked".into()),
            ..Output::default()
        };
        assert_eq!(
            judge(&out, &seen(&[]), true),
            ["unsupported log_contains: \"blocked\" names no rule id"]
        );
    }

    #[test]
    fn errors_and_statuses() {
        let refused = Observation {
            error: Some("malformed".into()),
            status: Some(400),
            ..Observation::default()
        };
        let expect_error = Output {
            expect_error: Some(true),
            ..Output::default()
        };
        assert!(judge(&expect_error, &refused, true).is_empty());
        assert_eq!(
            judge(&expect_error, &seen(&[]), true),
            ["expected an error, but the request was inspected"]
        );
        let status_only = Output {
            status: Some(Statuses(vec![400, 403])),
            ..Output::default()
        };
        assert!(judge(&status_only, &refused, true).is_empty());
        assert_eq!(
            judge(&status_only, &seen(&[]), true),
            ["expected status 400 or 403, got 200"]
        );
        // In-process, a status beside a log expectation is not checked.
        let both = Output {
            status: Some(Statuses(vec![403])),
            log_contains: Some("id \"1\"".into()),
            ..Output::default()
        };
        assert!(judge(&both, &seen(&[1]), true).is_empty());
        assert_eq!(
            judge(&both, &seen(&[1]), false),
            ["expected status 403, got no response"]
        );
        assert_eq!(
            judge(&both, &refused, true),
            ["the request never reached the rules: malformed"]
        );
    }
}
