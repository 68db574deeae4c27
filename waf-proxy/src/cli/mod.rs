//! The rule author's commands.

pub mod check;
pub mod explain;
pub mod ftw;
pub mod test;

use std::path::PathBuf;

use waf_core::RuleSet;

/// Loads every rule file under `paths` into one set. Each broken file is reported, not only
/// the first, so one run shows every problem.
pub fn load_all(paths: &[PathBuf]) -> (RuleSet, Vec<waf_core::Error>) {
    let mut set = RuleSet::new();
    let files = match waf_core::rules::yaml::rule_files(paths) {
        Ok(files) => files,
        Err(e) => return (set, vec![e]),
    };
    let mut errors = Vec::new();
    for file in files {
        // Load into a scratch set so a broken file adds nothing.
        let mut part = set.clone();
        match part.add_yaml_file(&file) {
            Ok(()) => set = part,
            Err(e) => errors.push(e),
        }
    }
    (set, errors)
}
