//! `waf rules test`: run every rule's inline examples.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use waf_core::rules::{Mode, Rule, TestRequest};

use super::load_or_print;

/// Arguments of `waf rules test`.
#[derive(clap::Args)]
pub struct Args {
    /// Rule files or folders of `*.yaml` files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print every test, not only failures.
    #[arg(short, long)]
    verbose: bool,
}

/// Runs the command: exit 0 when every example behaves, 1 otherwise.
///
/// Examples run against the whole ruleset — rules may depend on variables earlier rules set —
/// in detection-only mode at paranoia level 4, so every rule is evaluated whatever the others
/// decide; an example passes when its rule is (or is not) among the matches.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let Some(mut set) = load_or_print(&args.paths, &mut out)? else {
        return Ok(ExitCode::FAILURE);
    };
    set.settings.paranoia = 4;
    set.settings.mode = Mode::DetectOnly;
    // Plumbing rules (`log: false`) have examples too.
    set.settings.record_unlogged = true;
    let program = match waf_core::compile(&set) {
        Ok(p) => p,
        Err(e) => {
            for e in super::every_error(&e) {
                writeln!(out, "{e}")?;
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    let rules: Vec<&Rule> = set.rules().collect();
    for rule in &rules {
        let cases = rule
            .tests
            .matching
            .iter()
            .map(|t| (t, true))
            .chain(rule.tests.not_matching.iter().map(|t| (t, false)));
        for (example, should_match) in cases {
            let verdict = program.inspect(&example.to_request());
            let matched = verdict.matches.iter().any(|m| m.rule_id == rule.id);
            if matched == should_match {
                passed += 1;
                if args.verbose {
                    writeln!(
                        out,
                        "ok   {}: rule {}: {}",
                        example.source,
                        rule.id,
                        describe(example)
                    )?;
                }
            } else {
                failed += 1;
                let others: Vec<String> = verdict
                    .matches
                    .iter()
                    .map(|m| m.rule_id.to_string())
                    .collect();
                writeln!(
                    out,
                    "FAIL {}: rule {}: expected {} for {} (rules that matched: [{}])",
                    example.source,
                    rule.id,
                    if should_match { "a match" } else { "no match" },
                    describe(example),
                    others.join(", ")
                )?;
            }
        }
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn describe(t: &TestRequest) -> String {
    let mut s = format!("{} {}", t.method, t.uri);
    if !t.body.is_empty() {
        let body: String = t.body.chars().take(60).collect();
        s.push_str(&format!(" body {body:?}"));
    }
    s
}
