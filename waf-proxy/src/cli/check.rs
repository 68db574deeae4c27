//! `waf rules check`: parse and compile, report every error with its place.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use waf_core::compile::ResidualGate;

use super::{every_error, load};

/// Arguments of `waf rules check`.
#[derive(clap::Args)]
pub struct Args {
    /// Rule files or folders (`*.yaml`, `*.yml` and SecLang `*.conf` files inside).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// List the residual regexes (those with no literal to gate them, which run on every
    /// value) and the backtracking ones (SecLang patterns only PCRE can run).
    #[arg(short, long)]
    verbose: bool,
}

/// Runs the command: exit 0 when everything compiles, 1 otherwise.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let loaded = load(&args.paths);
    let (mut set, errors) = (loaded.set, loaded.errors);
    for note in &loaded.notes {
        writeln!(out, "{note} (loaded without effect)")?;
    }
    for e in &errors {
        writeln!(out, "{e}")?;
    }
    if !errors.is_empty() {
        writeln!(out, "{} error(s)", errors.len())?;
        return Ok(ExitCode::FAILURE);
    }
    // Rules above the configured paranoia level are still rules of the file: check them all.
    set.settings.paranoia = 4;
    match waf_core::compile(&set) {
        Ok(program) => {
            let residual: Vec<(u32, usize)> = program.residual_conditions().collect();
            if args.verbose {
                for (id, cond) in &residual {
                    let source = set
                        .rules()
                        .find(|r| r.id == *id)
                        .map(|r| r.source.to_string())
                        .unwrap_or_default();
                    let how = match program.residual_gate(*id, *cond) {
                        Some(ResidualGate::Gate { bytes, literals }) => {
                            // Escaped: a gate may hold bytes of UTF-8 sequences (0xEF).
                            let mut how = format!(
                                "it runs on values holding one of \"{}\"",
                                bytes.escape_ascii()
                            );
                            let literals: Vec<String> = literals
                                .iter()
                                .map(|l| format!("\"{}\"", l.escape_ascii()))
                                .collect();
                            if !literals.is_empty() {
                                if bytes.is_empty() {
                                    how = "it runs on values holding".to_string();
                                } else {
                                    how.push_str(" or");
                                }
                                how.push_str(&format!(
                                    " one of the literals {}",
                                    literals.join(", ")
                                ));
                            }
                            how
                        }
                        Some(ResidualGate::Named) => {
                            "it runs only on the values its targets name or select by name".to_string()
                        }
                        Some(ResidualGate::Dynamic) => {
                            "it runs on every transaction variable it targets".to_string()
                        }
                        Some(ResidualGate::MatchesEmpty) => {
                            "it may match an empty string: it runs on every value its targets select"
                                .to_string()
                        }
                        _ => "the residual set scans every value".to_string(),
                    };
                    writeln!(out,
                        "{source}: rule {id}: condition {}: residual regex (no literal of 2+ bytes gates it; {how})",
                        cond + 1
                    )?;
                }
            }
            // SecLang patterns only PCRE can run: they cost a bounded backtracking search on
            // the values their prefilter opens, which the author should know of.
            let mut backtracking = 0;
            for rule in set.rules() {
                for (i, cond) in rule.conditions.iter().enumerate() {
                    if let waf_core::operator::Operator::RxBacktracking { step_limit, .. } =
                        &cond.operator
                    {
                        backtracking += 1;
                        if args.verbose {
                            writeln!(
                                out,
                                "{}: rule {}: condition {}: backtracking regex (lookaround, backreference or possessive quantifier; at most {step_limit} steps a search)",
                                rule.source,
                                rule.id,
                                i + 1
                            )?;
                        }
                    }
                }
            }
            let backtracking = match backtracking {
                0 => String::new(),
                n => format!(", {n} backtracking regexes"),
            };
            writeln!(
                out,
                "ok: {} rules, {} conditions gated by literals, {} residual regexes{backtracking}, {} notes",
                program.rule_count(),
                program.gated_condition_count(),
                residual.len(),
                loaded.notes.len()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let errors = every_error(&e);
            for e in &errors {
                writeln!(out, "{e}")?;
            }
            writeln!(out, "{} error(s)", errors.len())?;
            Ok(ExitCode::FAILURE)
        }
    }
}
