//! The crate's error type.

use std::fmt;

use crate::rules::SourceLocation;

/// What went wrong while loading or compiling rules.
///
/// Every error that comes from a rule file carries the file, line and column, and the rule id
/// when one is known, so it prints as `rules/sqli.yaml:12:5: rule 942100: regex does not compile`.
///
/// ```
/// use waf_core::{ErrorKind, RuleSet};
///
/// let err = RuleSet::from_yaml_str("rules:\n  - id: 7\n    match: {rx: '('}\n", "bad.yaml")
///     .and_then(|set| waf_core::compile(&set).map(|_| ()))
///     .unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Rule);
/// assert_eq!(err.rule_id(), Some(7));
/// assert!(err.to_string().starts_with("bad.yaml:2:"), "{err}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    location: Option<SourceLocation>,
    rule_id: Option<u32>,
    message: String,
    /// The errors found after this one, when checking went on past it.
    also: Vec<Error>,
}

/// The kind of an [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file could not be read.
    Io,
    /// A file is not valid YAML, or does not have the shape of a rule file.
    Syntax,
    /// A rule is well-formed but wrong: a bad regex, an unknown transformation, a duplicate id.
    Rule,
    /// A construct the engine does not support (reported, never skipped silently).
    Unsupported,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            location: None,
            rule_id: None,
            message: message.into(),
            also: Vec::new(),
        }
    }

    /// The first of `errors`, carrying the others; `None` when there are none.
    pub(crate) fn gather(errors: Vec<Error>) -> Option<Error> {
        let mut errors = errors.into_iter();
        let mut first = errors.next()?;
        first.also.extend(errors);
        Some(first)
    }

    pub(crate) fn at(mut self, location: SourceLocation) -> Error {
        self.location = Some(location);
        self
    }

    pub(crate) fn rule(mut self, id: u32) -> Error {
        self.rule_id = Some(id);
        self
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Where in which file, when the error comes from a file.
    pub fn location(&self) -> Option<&SourceLocation> {
        self.location.as_ref()
    }

    /// The rule the error is about, when there is one.
    pub fn rule_id(&self) -> Option<u32> {
        self.rule_id
    }

    /// The message alone, without location and rule id.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The errors found after this one, in order.
    ///
    /// Loading a rule file and compiling a ruleset go on past a broken rule, so that one run
    /// of `waf rules check` lists every broken rule, not the first alone. The first error is
    /// this one; its [`Display`](fmt::Display) shows it alone.
    ///
    /// ```
    /// use waf_core::RuleSet;
    ///
    /// let yaml = "rules:\n  - id: 1\n    match: {rx: '('}\n  - id: 2\n    match: {rx: ')'}\n";
    /// let err = RuleSet::from_yaml_str(yaml, "bad.yaml").unwrap_err();
    /// assert_eq!(err.rule_id(), Some(1));
    /// let later: Vec<_> = err.also().iter().map(|e| e.rule_id()).collect();
    /// assert_eq!(later, [Some(2)]);
    /// ```
    pub fn also(&self) -> &[Error] {
        &self.also
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        if let Some(id) = self.rule_id {
            write!(f, "rule {id}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
