//! `waf rules tokens`: which rules match random tokens, and how often.
//!
//! Sign-in traffic is full of values drawn afresh for every user, and a rule that matches one
//! random token in 100,000 blocks a user every few thousand sign-ins, with a different token
//! each time: no fixed example shows it. This counts, per rule, over many random tokens in the
//! places an application puts its own (`waf_traffic::noise`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use waf_traffic::noise::{TokenNoise, DEFAULT_REQUESTS, DEFAULT_SEED, TOKENS_PER_REQUEST};

use super::{load_or_print, set_paranoia};

/// Arguments of `waf rules tokens`.
#[derive(clap::Args)]
pub struct Args {
    /// Rule files or folders (`*.yaml`, `*.yml` and SecLang `*.conf` files inside).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Paranoia level to evaluate at (the ruleset's own setting by default).
    #[arg(long)]
    paranoia: Option<u8>,
    /// How many requests to inspect, each carrying 32 random tokens.
    #[arg(long, default_value_t = DEFAULT_REQUESTS)]
    requests: usize,
    /// Seed of the tokens: the same seed draws the same tokens.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
}

/// Runs the command: exit 0 when no rule matched a token, 1 when one did.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let Some(mut set) = load_or_print(&args.paths, &mut out)? else {
        return Ok(ExitCode::FAILURE);
    };
    set_paranoia(&mut set, args.paranoia)?;
    anyhow::ensure!(args.requests > 0, "--requests must be at least 1");
    let report = match TokenNoise::new(args.seed).requests(args.requests).run(&set) {
        Ok(report) => report,
        Err(e) => {
            writeln!(out, "{e}")?;
            return Ok(ExitCode::FAILURE);
        }
    };
    for rule in &report.rules {
        let source = set
            .rules()
            .find(|r| r.id == rule.rule_id)
            .map(|r| format!(" ({})", r.source))
            .unwrap_or_default();
        writeln!(
            out,
            "rule {}{source}: {}\n  {} of {} tokens: one in {:.0}",
            rule.rule_id,
            rule.message,
            rule.matches,
            report.tokens,
            rule.one_in(report.tokens)
        )?;
        for e in &rule.examples {
            writeln!(
                out,
                "  {} = {:?}: found {:?}",
                e.target, e.value, e.evidence
            )?;
        }
    }
    writeln!(
        out,
        "{} random tokens in {} requests ({TOKENS_PER_REQUEST} each; seed {}), paranoia {}: {}",
        report.tokens,
        report.requests,
        report.seed,
        set.settings.paranoia,
        match report.rules.len() {
            0 => "no rule matched".to_string(),
            1 => "1 rule matched".to_string(),
            n => format!("{n} rules matched"),
        }
    )?;
    if report.rules.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "A sign-in carries about a dozen fresh tokens: a rule that matches one in N blocks about \
         one sign-in in N/12."
    )?;
    Ok(ExitCode::FAILURE)
}
