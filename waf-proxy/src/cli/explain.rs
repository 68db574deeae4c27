//! `waf explain`: judge one raw request and say why.

use std::io::Write;
use std::process::ExitCode;

use waf_core::verdict::Action;

use super::{read_request, JudgeRules};

/// Arguments of `waf explain`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    rules: JudgeRules,
    /// A file holding one raw HTTP/1.1 request, or `-` for standard input.
    #[arg(default_value = "-")]
    request: String,
}

/// Runs the command: exit 0 when the request passes, 1 when it is blocked.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let set = args.rules.load()?;
    let program = waf_core::compile(&set)?;
    let request = read_request(&args.request)?;
    let verdict = program.inspect(&request);
    let decision = match verdict.action {
        Action::Block { status } => format!("block ({status})"),
        Action::Allow => "allow".to_string(),
        _ => "pass".to_string(),
    };
    write!(out, "verdict: {decision}")?;
    if let Some(id) = verdict.decided_by {
        write!(out, " by rule {id}")?;
    } else if let Some(error) = &verdict.body_error {
        if verdict.block_status() == Some(400) && verdict.parse_limit_hit {
            write!(
                out,
                " because the request goes past a parse limit, and what lies beyond was not read ({error})"
            )?;
        } else if verdict.block_status() == Some(400) {
            write!(
                out,
                " because the body does not parse as its type ({error})"
            )?;
        }
    }
    if !verdict.enforced {
        write!(out, " [detection only: not enforced]")?;
    }
    let scores: Vec<String> = verdict
        .scores
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    writeln!(
        out,
        "; anomaly score {} ({})",
        verdict.anomaly_score,
        scores.join(", ")
    )?;
    if let (Some(error), false) = (&verdict.body_error, verdict.block_status() == Some(400)) {
        let what = if verdict.parse_limit_hit {
            "request: goes past a parse limit"
        } else {
            "body: does not parse as its type"
        };
        writeln!(
            out,
            "{what} ({error}); the rules saw what parsing recovered"
        )?;
    }
    for m in &verdict.matches {
        let severity = m.severity.map(|s| s.to_string()).unwrap_or_default();
        writeln!(out, "\nrule {} [{}] {}", m.rule_id, severity, m.message)?;
        if !m.logdata.is_empty() {
            writeln!(out, "  logdata    {}", m.logdata)?;
        }
        for v in &m.values {
            let transforms: Vec<&str> = v.transforms.iter().map(|t| t.name()).collect();
            writeln!(out, "  target     {}", v.target)?;
            writeln!(
                out,
                "  transforms {}",
                if transforms.is_empty() {
                    "(none)".to_string()
                } else {
                    transforms.join(", ")
                }
            )?;
            writeln!(out, "  value      {}", v.value)?;
            writeln!(out, "  operator   {}", v.operator)?;
            if !v.evidence.is_empty() {
                writeln!(out, "  matched    {}", v.evidence)?;
            }
        }
    }
    Ok(if verdict.is_blocking() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
