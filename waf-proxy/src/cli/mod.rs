//! The rule author's commands.

pub mod check;
pub mod explain;
pub mod ftw;
pub mod profile;
pub mod test;
pub mod tokens;

use std::path::PathBuf;

use anyhow::Context;

use waf_core::RuleSet;

/// What loading rule files gave.
pub struct Loaded {
    /// Every rule that loaded.
    pub set: RuleSet,
    /// What failed: every broken rule of every broken file.
    pub errors: Vec<waf_core::Error>,
    /// What loaded without effect (SecLang constructs the engine cannot honour).
    pub notes: Vec<waf_core::Error>,
}

/// Loads every rule file under `paths` (YAML and SecLang) into one set. Each broken file is
/// reported, not only the first, so one run shows every problem; a broken file adds nothing.
pub fn load(paths: &[PathBuf]) -> Loaded {
    let mut loaded = Loaded {
        set: RuleSet::new(),
        errors: Vec::new(),
        notes: Vec::new(),
    };
    let files = match waf_core::rules::rule_files(paths) {
        Ok(files) => files,
        Err(e) => {
            loaded.errors.push(e);
            return loaded;
        }
    };
    let mut loader = waf_core::rules::Loader::new();
    for file in files {
        // Load into a scratch copy so a broken file adds nothing.
        let mut part = loader.clone();
        match part.add_file(&file) {
            Ok(()) => loader = part,
            Err(e) => loaded.errors.extend(every_error(&e)),
        }
    }
    match loader.finish() {
        Ok((set, notes)) => {
            loaded.set = set;
            loaded.notes = notes;
        }
        Err(e) => loaded.errors.extend(every_error(&e)),
    }
    loaded
}

/// An error and the ones found after it ([`waf_core::Error::also`]), each on its own.
pub fn every_error(e: &waf_core::Error) -> Vec<waf_core::Error> {
    std::iter::once(e).chain(e.also()).cloned().collect()
}

/// [`load`], without the notes.
pub fn load_all(paths: &[PathBuf]) -> (RuleSet, Vec<waf_core::Error>) {
    let loaded = load(paths);
    (loaded.set, loaded.errors)
}

/// [`load_all`] for the commands that report on standard output: each error on a line of its
/// own, and `None` when there was any.
pub fn load_or_print(
    paths: &[PathBuf],
    out: &mut impl std::io::Write,
) -> std::io::Result<Option<RuleSet>> {
    let (set, errors) = load_all(paths);
    for e in &errors {
        writeln!(out, "{e}")?;
    }
    Ok(errors.is_empty().then_some(set))
}

/// The rule arguments of the commands that judge requests (`explain`, `profile`).
#[derive(clap::Args)]
pub struct JudgeRules {
    /// Rule files or folders.
    #[arg(long = "rules", required = true)]
    rules: Vec<PathBuf>,
    /// Paranoia level to evaluate at (the ruleset's own setting by default).
    #[arg(long)]
    paranoia: Option<u8>,
}

impl JudgeRules {
    /// The rules: the first broken file is the error, and `--paranoia`, when given, replaces
    /// the ruleset's own level.
    pub fn load(&self) -> anyhow::Result<RuleSet> {
        let (mut set, errors) = load_all(&self.rules);
        if let Some(first) = errors.first() {
            anyhow::bail!("{first}");
        }
        set_paranoia(&mut set, self.paranoia)?;
        Ok(set)
    }
}

/// Applies a command's `--paranoia`, 1 to 4, when given.
pub fn set_paranoia(set: &mut RuleSet, paranoia: Option<u8>) -> anyhow::Result<()> {
    if let Some(p) = paranoia {
        anyhow::ensure!((1..=4).contains(&p), "--paranoia must be 1 to 4");
        set.settings.paranoia = p;
    }
    Ok(())
}

/// One raw HTTP/1.1 request from a file, or from standard input for `-`.
pub fn read_request(path: &str) -> anyhow::Result<waf_core::Request> {
    let raw = if path == "-" {
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut raw)
            .context("reading standard input")?;
        raw
    } else {
        std::fs::read(path).with_context(|| format!("reading {path}"))?
    };
    waf_core::parse::http1::parse_request(&raw)
        .map_err(|e| anyhow::anyhow!("{path}: not an HTTP/1.1 request: {e}"))
}
