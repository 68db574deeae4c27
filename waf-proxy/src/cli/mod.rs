//! The rule author's commands.

pub mod check;
pub mod explain;
pub mod ftw;
pub mod profile;
pub mod test;

use std::path::PathBuf;

use waf_core::RuleSet;

/// What loading rule files gave.
pub struct Loaded {
    /// Every rule that loaded.
    pub set: RuleSet,
    /// Files that failed, one error each.
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
            Err(e) => loaded.errors.push(e),
        }
    }
    match loader.finish() {
        Ok((set, notes)) => {
            loaded.set = set;
            loaded.notes = notes;
        }
        Err(e) => loaded.errors.push(e),
    }
    loaded
}

/// [`load`], without the notes.
pub fn load_all(paths: &[PathBuf]) -> (RuleSet, Vec<waf_core::Error>) {
    let loaded = load(paths);
    (loaded.set, loaded.errors)
}
