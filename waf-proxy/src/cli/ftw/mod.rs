//! `waf ftw`: run go-ftw regression tests (the OWASP CRS test format) against a ruleset.
//!
//! Each stage's request is built byte for byte as the test tool would send it ([`wire`]), then
//! either parsed and inspected in this process (the default) or sent to a running `waf serve`
//! ([`network`]); the rules that matched are compared with the stage's expectations
//! ([`check`]). The report counts stages per test file and overall. See `docs/ftw.md`.

mod check;
mod format;
mod front_end;
mod network;
mod wire;

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use serde::Serialize;
use waf_core::rules::Mode;

use self::check::Observation;
use self::format::TestFile;
use super::{load_all, set_paranoia};

/// Arguments of `waf ftw`.
#[derive(clap::Args)]
pub struct Args {
    /// Rule files or folders (repeat the flag for several); required unless --target or
    /// --dump-requests.
    #[arg(long = "rules", required_unless_present_any = ["target", "dump_requests"])]
    rules: Vec<PathBuf>,
    /// Paranoia level to evaluate at, 1 to 4 (the ruleset's own setting by default).
    #[arg(long)]
    paranoia: Option<u8>,
    /// Evaluate in detection-only mode: every rule runs whatever the others decide (the CRS
    /// reference run's setup).
    #[arg(long)]
    detection_only: bool,
    /// Only tests whose id (`942100-3`) matches this regex.
    #[arg(long)]
    include: Option<String>,
    /// Leave out tests whose id matches this regex.
    #[arg(long)]
    exclude: Option<String>,
    /// Send each stage to a running `waf serve` at `http://host:port` instead of inspecting it
    /// here; needs --audit-log.
    #[arg(
        long,
        requires = "audit_log",
        conflicts_with_all = ["rules", "paranoia", "detection_only"]
    )]
    target: Option<String>,
    /// The audit log of the proxy at --target (its `audit.path`; it must log every request:
    /// `audit: {all_requests: true}`).
    #[arg(long, requires = "target")]
    audit_log: Option<PathBuf>,
    /// Exit 0 when at least this share of the stages passes (0 to 1), instead of only when all
    /// do.
    #[arg(long)]
    min_pass_rate: Option<f64>,
    /// Also write the report as JSON to this file (`-`: standard output, instead of the text).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write the failing stages as a markdown table to this file.
    #[arg(long, value_name = "FILE")]
    list_failures_markdown: Option<PathBuf>,
    /// Write every stage's request bytes (base64) as JSON lines to this file and exit without
    /// running anything.
    #[arg(long, value_name = "FILE")]
    dump_requests: Option<PathBuf>,
    /// Test files (`*.yaml`), or folders searched recursively for them.
    #[arg(required = true)]
    tests: Vec<PathBuf>,
}

/// The outcome of a run, as `--json` writes it.
#[derive(Serialize, Default)]
struct Report {
    passed: usize,
    failed: usize,
    skipped: usize,
    /// `passed / (passed + failed)`; 1 when nothing ran.
    pass_rate: f64,
    files: Vec<FileReport>,
}

/// One test file's results.
#[derive(Serialize, Default)]
struct FileReport {
    /// The file, relative to the folder it was found in.
    file: String,
    /// Why the file could not be read; it then counts as one failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    passed: usize,
    failed: usize,
    skipped: usize,
    failures: Vec<Failure>,
}

/// One failing stage.
#[derive(Serialize)]
struct Failure {
    /// The test id, `942100-3`.
    test: String,
    /// The stage, from 1.
    stage: usize,
    /// Why it failed.
    reason: String,
    /// The rules that matched.
    matched: Vec<u32>,
}

/// How stages are observed.
enum Runner {
    InProcess(Box<waf_core::Program>),
    Network(Box<network::Network>),
}

impl Runner {
    fn observe(&mut self, raw: &[u8]) -> Result<Observation, String> {
        match self {
            Runner::InProcess(program) => Ok(inspect(program, raw)),
            Runner::Network(network) => network.observe(raw),
        }
    }
}

/// In-process: a request the proxy's front end refuses gets its status ([`front_end`]); one
/// waf-core's parser refuses is answered 400; otherwise the verdict's matches, and the status
/// the proxy would answer in blocking mode (the CRS tests' status expectations assume it,
/// whatever the evaluation mode).
fn inspect(program: &waf_core::Program, raw: &[u8]) -> Observation {
    let raw = match front_end::admit(raw) {
        Ok(admitted) => admitted,
        Err(refusal) => {
            return Observation {
                error: Some(refusal.reason),
                status: Some(refusal.status),
                ..Observation::default()
            }
        }
    };
    match waf_core::parse::http1::parse_request(&raw) {
        Err(e) => Observation {
            error: Some(e.to_string()),
            status: Some(400),
            ..Observation::default()
        },
        Ok(request) => {
            let verdict = program.inspect(&request);
            let mut ids: Vec<u32> = Vec::with_capacity(verdict.matches.len());
            for m in &verdict.matches {
                if !ids.contains(&m.rule_id) {
                    ids.push(m.rule_id);
                }
            }
            Observation {
                error: None,
                status: verdict.block_status(),
                ids,
                response: None,
            }
        }
    }
}

/// Runs the command: exit 0 when every stage passes (or the pass rate reaches
/// `--min-pass-rate`), 1 otherwise.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let include = compile_filter(args.include.as_deref(), "--include")?;
    let exclude = compile_filter(args.exclude.as_deref(), "--exclude")?;
    if let Some(rate) = args.min_pass_rate {
        anyhow::ensure!(
            (0.0..=1.0).contains(&rate),
            "--min-pass-rate must be between 0 and 1"
        );
    }
    let files = collect_files(&args.tests)?;
    anyhow::ensure!(!files.is_empty(), "no test files (*.yaml) found");

    if let Some(path) = &args.dump_requests {
        return dump_requests(&files, path);
    }

    let mut runner = match &args.target {
        Some(target) => {
            let audit = args
                .audit_log
                .clone()
                .context("--target needs --audit-log")?;
            Runner::Network(Box::new(network::Network::new(target, audit)?))
        }
        None => Runner::InProcess(Box::new(compile_rules(args)?)),
    };
    let in_process = matches!(runner, Runner::InProcess(_));

    let mut report = Report::default();
    for (path, name) in &files {
        let mut file_report = FileReport {
            file: name.clone(),
            ..FileReport::default()
        };
        match format::read_file(path) {
            Err(e) => {
                file_report.error = Some(e);
                file_report.failed = 1;
            }
            Ok(file) => run_file(
                &file,
                &mut runner,
                in_process,
                include.as_ref(),
                exclude.as_ref(),
                &mut file_report,
            ),
        }
        report.passed += file_report.passed;
        report.failed += file_report.failed;
        report.skipped += file_report.skipped;
        report.files.push(file_report);
    }
    let ran = report.passed + report.failed;
    report.pass_rate = if ran == 0 {
        1.0
    } else {
        report.passed as f64 / ran as f64
    };

    let to_stdout_json = args.json.as_deref() == Some(Path::new("-"));
    if !to_stdout_json {
        write!(out, "{}", text_report(&report))?;
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        if to_stdout_json {
            writeln!(out, "{json}")?;
        } else {
            std::fs::write(path, json + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if let Some(path) = &args.list_failures_markdown {
        std::fs::write(path, markdown_failures(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let ok = match args.min_pass_rate {
        Some(rate) => report.pass_rate >= rate,
        None => report.failed == 0,
    };
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn compile_filter(
    pattern: Option<&str>,
    flag: &str,
) -> anyhow::Result<Option<regex_automata::meta::Regex>> {
    pattern
        .map(|p| {
            regex_automata::meta::Regex::new(p)
                .map_err(|e| anyhow::anyhow!("{flag} {p:?}: not a regex: {e}"))
        })
        .transpose()
}

fn compile_rules(args: &Args) -> anyhow::Result<waf_core::Program> {
    let (mut set, errors) = load_all(&args.rules);
    if !errors.is_empty() {
        let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::bail!("the rules do not load:\n{}", all.join("\n"));
    }
    set_paranoia(&mut set, args.paranoia)?;
    if args.detection_only {
        set.settings.mode = Mode::DetectOnly;
    }
    Ok(waf_core::compile(&set)?)
}

fn run_file(
    file: &TestFile,
    runner: &mut Runner,
    in_process: bool,
    include: Option<&regex_automata::meta::Regex>,
    exclude: Option<&regex_automata::meta::Regex>,
    out: &mut FileReport,
) {
    for test in &file.tests {
        if include.is_some_and(|re| !re.is_match(test.id.as_str()))
            || exclude.is_some_and(|re| re.is_match(test.id.as_str()))
        {
            continue;
        }
        if !test.enabled {
            out.skipped += test.stages.len();
            continue;
        }
        for (index, stage) in test.stages.iter().enumerate() {
            let (problems, matched) = run_stage(stage, runner, in_process);
            if problems.is_empty() {
                out.passed += 1;
            } else {
                out.failed += 1;
                out.failures.push(Failure {
                    test: test.id.clone(),
                    stage: index + 1,
                    reason: problems,
                    matched,
                });
            }
        }
    }
}

/// Runs one stage: the reason it failed (empty when it passed) and the rules that matched.
fn run_stage(stage: &format::Stage, runner: &mut Runner, in_process: bool) -> (String, Vec<u32>) {
    let input = &stage.input;
    let unsupported = [
        ("uris", input.uris.as_ref().is_some_and(|u| !u.is_empty())),
        ("save_cookie", input.save_cookie == Some(true)),
        ("follow_redirect", input.follow_redirect == Some(true)),
    ];
    if let Some((key, _)) = unsupported.iter().find(|(_, used)| *used) {
        return (format!("unsupported input: {key}"), Vec::new());
    }
    let raw = match wire::build(stage.dialect, input) {
        Ok(raw) => raw,
        Err(e) => return (format!("cannot build the request: {e}"), Vec::new()),
    };
    let seen = match runner.observe(&raw) {
        Ok(seen) => seen,
        Err(e) => return (e, Vec::new()),
    };
    let problems = check::judge(&stage.output, &seen, in_process);
    if problems.is_empty() {
        return (String::new(), seen.ids);
    }
    let matched = if seen.ids.is_empty() {
        "none".to_string()
    } else {
        seen.ids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    (
        format!("{}; matched: {matched}", problems.join(", ")),
        seen.ids,
    )
}

/// Every test file under `paths`, with the name it is reported under: relative to the folder
/// it was found in, or as given for a file.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found).with_context(|| format!("reading {}", path.display()))?;
            found.sort();
            for file in found {
                let name = file
                    .strip_prefix(path)
                    .unwrap_or(&file)
                    .to_string_lossy()
                    .into_owned();
                out.push((file, name));
            }
        } else if path.exists() {
            out.push((path.clone(), path.display().to_string()));
        } else {
            anyhow::bail!("{}: no such file or folder", path.display());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// `--dump-requests`: one JSON line per stage, disabled tests included.
fn dump_requests(files: &[(PathBuf, String)], path: &Path) -> anyhow::Result<ExitCode> {
    #[derive(Serialize)]
    struct Line<'a> {
        file: &'a str,
        test: &'a str,
        test_index: usize,
        stage_index: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        wire_request: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    }
    let mut out = String::new();
    let mut broken = 0usize;
    for (file_path, name) in files {
        let file = match format::read_file(file_path) {
            Ok(f) => f,
            Err(e) => {
                broken += 1;
                eprintln!("{name}: {e}");
                continue;
            }
        };
        for (test_index, test) in file.tests.iter().enumerate() {
            for (stage_index, stage) in test.stages.iter().enumerate() {
                let built = wire::build(stage.dialect, &stage.input);
                let line = Line {
                    file: name,
                    test: &test.id,
                    test_index,
                    stage_index,
                    wire_request: built
                        .as_ref()
                        .ok()
                        .map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
                    error: built.err(),
                };
                out.push_str(&serde_json::to_string(&line)?);
                out.push('\n');
            }
        }
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    Ok(if broken == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn counts(passed: usize, failed: usize, skipped: usize) -> String {
    let mut s = format!("{passed} passed, {failed} failed");
    if skipped > 0 {
        let _ = write!(s, ", {skipped} skipped");
    }
    s
}

fn text_report(report: &Report) -> String {
    let mut out = String::new();
    for file in &report.files {
        match &file.error {
            Some(e) => {
                let _ = writeln!(out, "{}: cannot be parsed: {e}", file.file);
            }
            None => {
                let _ = writeln!(
                    out,
                    "{}: {}",
                    file.file,
                    counts(file.passed, file.failed, file.skipped)
                );
            }
        }
        for f in &file.failures {
            let _ = writeln!(out, "  {} stage {}: {}", f.test, f.stage, f.reason);
        }
    }
    let _ = writeln!(
        out,
        "overall: {} passed, {} failed, {} skipped ({:.1}%)",
        report.passed,
        report.failed,
        report.skipped,
        report.pass_rate * 100.0
    );
    out
}

fn markdown_failures(report: &Report) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = String::from("| file | test | stage | reason |\n|---|---|---|---|\n");
    for file in &report.files {
        if let Some(e) = &file.error {
            let _ = writeln!(
                out,
                "| {} | | | cannot be parsed: {} |",
                cell(&file.file),
                cell(e)
            );
        }
        for f in &file.failures {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(&file.file),
                cell(&f.test),
                f.stage,
                cell(&f.reason)
            );
        }
    }
    out
}
