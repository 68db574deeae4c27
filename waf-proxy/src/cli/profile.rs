//! `waf profile`: which rules cost the most time on given requests.
//!
//! Each request is inspected `--runs` times without the profiler, for the figure a deployment
//! pays, and as many times with it, for the rule-by-rule split; the two alternate. By default
//! the engine's memos are emptied before every run, so each run sees its values as new: the
//! cost of a request full of fresh tokens, the bound that matters on a sign-in domain.
//! `--warm` keeps them, for the cost of a request whose every value recurs.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use waf_core::profile::Profile;
use waf_core::Request;

use super::{read_request, JudgeRules};

/// Arguments of `waf profile`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    rules: JudgeRules,
    /// How many times each request is inspected, with the profiler and again without.
    #[arg(long, default_value_t = 1000)]
    runs: u32,
    /// How many rules to list, costliest first; 0 lists every rule that was evaluated.
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Keep the engine's memos between runs: measure requests whose values were all seen
    /// before, instead of requests whose values are all new.
    #[arg(long)]
    warm: bool,
    /// Files holding one raw HTTP/1.1 request each (`-` for standard input).
    #[arg(required = true)]
    requests: Vec<String>,
}

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let set = args.rules.load()?;
    let paranoia = set.settings.paranoia;
    let program = waf_core::compile(&set)?;
    let requests = args
        .requests
        .iter()
        .map(|path| Ok((path.clone(), read_request(path)?)))
        .collect::<anyhow::Result<Vec<(String, Request)>>>()?;

    // Warm the allocator and the caches that are meant to stay warm (the thread's spare
    // scratch space), so the first runs do not weigh on the mean.
    for _ in 0..(args.runs / 10).max(1) {
        for (_, request) in &requests {
            forget_unless(args.warm);
            program.inspect(request);
        }
    }
    // Unprofiled and profiled inspections alternate, so that a shared machine's load weighs
    // on both alike and the difference is the profiler's.
    let mut plain = Duration::ZERO;
    let mut profile = Profile::new();
    for _ in 0..args.runs {
        for (_, request) in &requests {
            forget_unless(args.warm);
            let started = Instant::now();
            std::hint::black_box(program.inspect(request));
            plain += started.elapsed();
            forget_unless(args.warm);
            std::hint::black_box(program.inspect_profiled(request, &mut profile));
        }
    }

    let inspections = f64::from(args.runs) * requests.len() as f64;
    let per_request = |d: Duration| d.as_secs_f64() * 1e6 / inspections;
    writeln!(
        out,
        "{} request{}, {} runs each, {} rules at paranoia level {paranoia}; {}",
        requests.len(),
        if requests.len() == 1 { "" } else { "s" },
        args.runs,
        program.rule_count(),
        if args.warm {
            "values remembered between runs"
        } else {
            "every value new on every run"
        }
    )?;
    for (name, request) in &requests {
        let verdict = program.inspect(request);
        let outcome = match (verdict.is_blocking(), verdict.decided_by) {
            (true, Some(id)) => format!("blocked by rule {id}"),
            (true, None) => "blocked".to_string(),
            (false, _) if verdict.anomaly_score > 0 => {
                format!("passed, anomaly score {}", verdict.anomaly_score)
            }
            (false, _) => "passed".to_string(),
        };
        writeln!(out, "  {name}: {outcome}")?;
    }
    let rules = profile.rule_time();
    let body = profile.body_parsing();
    let rest = profile.total().saturating_sub(rules + body);
    writeln!(out,
        "inspection: {:.1} µs per request; profiled {:.1} µs = rules {:.1} (in scans {:.1}) + body parsing {:.1} + the rest {:.1}",
        per_request(plain),
        per_request(profile.total()),
        per_request(rules),
        per_request(profile.scan_time()),
        per_request(body),
        per_request(rest),
    )?;
    writeln!(out)?;
    write!(out, "{}", profile.table(args.top))?;
    let evaluated = profile.costliest().len();
    let shown = if args.top == 0 {
        evaluated
    } else {
        args.top.min(evaluated)
    };
    writeln!(out)?;
    writeln!(
        out,
        "{shown} of the {evaluated} rules evaluated{}",
        if shown < evaluated {
            "; --top 0 lists them all"
        } else {
            ""
        }
    )?;
    writeln!(out,
        "A rule pays for the transformations and literal scans it is the first to need (`in scans`); later rules share them."
    )?;
    Ok(ExitCode::SUCCESS)
}

fn forget_unless(warm: bool) {
    if !warm {
        waf_core::compile::forget_memos();
    }
}
