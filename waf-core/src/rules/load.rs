//! Loading rule files of both languages into one ruleset.

use std::path::{Path, PathBuf};

use super::{seclang, yaml, RuleSet};
use crate::error::{Error, ErrorKind};

/// The language of a rule file, from its extension: `.yaml`/`.yml` are YAML, anything else
/// (`.conf`, `.load`...) is SecLang.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Language {
    /// This crate's YAML rule language.
    Yaml,
    /// ModSecurity's SecLang.
    SecLang,
}

impl Language {
    /// The language of `path`.
    ///
    /// ```
    /// use waf_core::rules::Language;
    /// assert_eq!(Language::of("rules/sqli.yaml".as_ref()), Language::Yaml);
    /// assert_eq!(Language::of("crs-setup.conf".as_ref()), Language::SecLang);
    /// ```
    pub fn of(path: &Path) -> Language {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Language::Yaml,
            _ => Language::SecLang,
        }
    }
}

/// The rule files `paths` name, in loading order: a file as given; a folder's `*.yaml`,
/// `*.yml` and `*.conf` files, sorted by name (the CRS numbers its files for this).
pub fn rule_files<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<PathBuf>, Error> {
    files_in(paths, &["yaml", "yml", "conf"])
}

/// `paths`, with each folder replaced by its files of these extensions, sorted by name.
pub(crate) fn files_in<P: AsRef<Path>>(
    paths: &[P],
    extensions: &[&str],
) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for path in paths {
        let path = path.as_ref();
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::new(ErrorKind::Io, format!("{}: {e}", path.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| extensions.contains(&e))
                })
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(path.to_path_buf());
        }
    }
    Ok(out)
}

/// Loads YAML and SecLang files, in order, into one [`RuleSet`].
///
/// SecLang state (`SecDefaultAction`) carries from one SecLang file to the next, so give
/// `crs-setup.conf` before the CRS rule files. Clone the loader before a file to be able to
/// drop that file alone when it fails.
///
/// ```
/// use waf_core::rules::Loader;
///
/// let mut loader = Loader::new();
/// loader.add_text("a.yaml".as_ref(), "rules:\n  - id: 1\n    targets: [args]\n    match: detect_sqli\n").unwrap();
/// loader.add_text("b.conf".as_ref(), "SecRule ARGS \"@detectXSS\" \"id:2,deny\"").unwrap();
/// let (set, notes) = loader.finish().unwrap();
/// assert_eq!(set.rules().map(|r| r.id).collect::<Vec<_>>(), [1, 2]);
/// assert!(notes.is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Loader {
    seclang: seclang::Loader,
}

impl Loader {
    /// A loader starting from an empty ruleset.
    pub fn new() -> Loader {
        Loader::default()
    }

    /// Reads and loads one file.
    pub fn add_file(&mut self, path: &Path) -> Result<(), Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::new(ErrorKind::Io, format!("{}: {e}", path.display())))?;
        self.add_text(path, &text)
    }

    /// Loads a file already read; `path` names it in errors and decides its language, and
    /// data files and includes are looked up beside it.
    pub fn add_text(&mut self, path: &Path, text: &str) -> Result<(), Error> {
        let name = path.display().to_string();
        match Language::of(path) {
            Language::Yaml => {
                yaml::load_str(self.seclang.ruleset_mut(), text, &name, path.parent())
            }
            Language::SecLang => self.seclang.load_str(text, &name, path.parent()),
        }
    }

    /// What was loaded without effect so far (SecLang notes).
    pub fn notes(&self) -> &[Error] {
        self.seclang.notes()
    }

    /// The ruleset and the notes.
    pub fn finish(self) -> Result<(RuleSet, Vec<Error>), Error> {
        self.seclang.finish()
    }
}
