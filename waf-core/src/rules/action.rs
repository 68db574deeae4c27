//! What a rule does when it matches: its disruptive action, its side effects and its flow.
//!
//! The vocabulary is ModSecurity's, because the OWASP Core Rule Set is written in it: a rule
//! can `setvar` transaction variables (with `%{...}` macros), change the rest of the request's
//! evaluation with `ctl` (remove rules or targets), and jump with `skip_after` to a marker.

use std::fmt;

use super::target::{Collection, Selector, Target, TargetError};

/// The disruptive part of a rule's action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Disruptive {
    /// Anomaly scoring: add the rule's score to its category; the request is blocked once the
    /// ruleset's threshold is reached. The usual action.
    #[default]
    Block,
    /// Block at once, with this status (the ruleset's default status when `None`).
    Deny {
        /// The HTTP status to answer with.
        status: Option<u16>,
    },
    /// Record the match and go on; no score.
    Pass,
    /// Stop inspecting and let the request through.
    Allow,
}

/// A string with `%{collection.key}` macros, expanded when the rule runs.
///
/// ```
/// use waf_core::rules::Macro;
/// let m = Macro::parse("+%{tx.critical_anomaly_score}");
/// assert!(!m.is_literal());
/// assert_eq!(Macro::parse("plain").literal(), Some(&b"plain"[..]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Macro {
    /// The pieces, in order.
    pub parts: Vec<MacroPart>,
}

/// A piece of a [`Macro`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MacroPart {
    /// Text copied as it is.
    Literal(Vec<u8>),
    /// A variable: `%{tx.score}` is collection `tx`, key `score`; `%{MATCHED_VAR}` has no key.
    Var {
        /// The collection, lowercased (`tx`, `matched_var`, `rule`, `request_headers`...).
        collection: String,
        /// The key, lowercased.
        key: Option<String>,
    },
}

impl Macro {
    /// Parses `%{...}` references out of a string. Text that is not a complete reference stays
    /// literal, as in ModSecurity.
    pub fn parse(text: &str) -> Macro {
        let mut parts = Vec::new();
        let mut literal = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("%{") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            literal.extend_from_slice(&rest.as_bytes()[..start]);
            let name = after[..end].trim().to_ascii_lowercase();
            if !literal.is_empty() {
                parts.push(MacroPart::Literal(std::mem::take(&mut literal)));
            }
            let (collection, key) = match name.split_once('.') {
                Some((c, k)) => (c.to_string(), Some(k.to_string())),
                None => (name, None),
            };
            parts.push(MacroPart::Var { collection, key });
            rest = &after[end + 1..];
        }
        literal.extend_from_slice(rest.as_bytes());
        if !literal.is_empty() {
            parts.push(MacroPart::Literal(literal));
        }
        Macro { parts }
    }

    /// A macro with no references.
    pub fn literal_bytes(bytes: impl Into<Vec<u8>>) -> Macro {
        let bytes = bytes.into();
        Macro {
            parts: if bytes.is_empty() {
                Vec::new()
            } else {
                vec![MacroPart::Literal(bytes)]
            },
        }
    }

    /// Whether the macro has no references.
    pub fn is_literal(&self) -> bool {
        self.parts
            .iter()
            .all(|p| matches!(p, MacroPart::Literal(_)))
    }

    /// The text, when the macro has no references.
    pub fn literal(&self) -> Option<&[u8]> {
        match self.parts.as_slice() {
            [] => Some(b""),
            [MacroPart::Literal(l)] => Some(l),
            _ => None,
        }
    }
}

impl fmt::Display for Macro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.parts {
            match p {
                MacroPart::Literal(l) => f.write_str(&String::from_utf8_lossy(l))?,
                MacroPart::Var {
                    collection,
                    key: Some(k),
                } => write!(f, "%{{{collection}.{k}}}")?,
                MacroPart::Var {
                    collection,
                    key: None,
                } => write!(f, "%{{{collection}}}")?,
            }
        }
        Ok(())
    }
}

/// `setvar`: change a transaction variable.
///
/// ```
/// use waf_core::rules::{SetVar, SetOp};
/// let s: SetVar = "tx.anomaly_score_pl1=+%{tx.critical_anomaly_score}".parse().unwrap();
/// assert!(matches!(s.op, SetOp::Add(_)));
/// let s: SetVar = "!tx.foo".parse().unwrap();
/// assert_eq!(s.op, SetOp::Delete);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SetVar {
    /// The variable's name within `tx` (may contain macros), lowercased.
    pub name: Macro,
    /// What to do with it.
    pub op: SetOp,
}

/// The operation of a [`SetVar`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SetOp {
    /// `tx.x=value`
    Set(Macro),
    /// `tx.x=+n`
    Add(Macro),
    /// `tx.x=-n`
    Sub(Macro),
    /// `!tx.x`
    Delete,
}

impl std::str::FromStr for SetVar {
    type Err = ActionError;

    fn from_str(s: &str) -> Result<SetVar, ActionError> {
        let s = s.trim().trim_matches('\'');
        let (delete, s) = match s.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (name, value) = match s.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (s, None),
        };
        let Some((collection, key)) = name.split_once('.') else {
            return Err(ActionError(format!("setvar `{s}` names no collection")));
        };
        if !collection.eq_ignore_ascii_case("tx") {
            return Err(ActionError(format!(
                "setvar on `{collection}` is not supported; only tx is"
            )));
        }
        let name = Macro::parse(&key.to_ascii_lowercase());
        let op = match (delete, value) {
            (true, _) => SetOp::Delete,
            (false, None) => SetOp::Set(Macro::literal_bytes(b"1".to_vec())),
            (false, Some(v)) => match (v.strip_prefix('+'), v.strip_prefix('-')) {
                (Some(n), _) => SetOp::Add(Macro::parse(n)),
                (_, Some(n)) => SetOp::Sub(Macro::parse(n)),
                _ => SetOp::Set(Macro::parse(v)),
            },
        };
        Ok(SetVar { name, op })
    }
}

/// A range of rule ids, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdRange {
    /// First id.
    pub start: u32,
    /// Last id.
    pub end: u32,
}

impl IdRange {
    /// Whether `id` is inside.
    pub fn contains(&self, id: u32) -> bool {
        (self.start..=self.end).contains(&id)
    }
}

impl std::str::FromStr for IdRange {
    type Err = ActionError;

    /// `942100` or `942100-942199`.
    fn from_str(s: &str) -> Result<IdRange, ActionError> {
        let bad = || ActionError(format!("`{s}` is not a rule id or id range"));
        let (a, b) = s.trim().split_once('-').unwrap_or((s.trim(), s.trim()));
        let start = a.trim().parse().map_err(|_| bad())?;
        let end = b.trim().parse().map_err(|_| bad())?;
        if start > end {
            return Err(bad());
        }
        Ok(IdRange { start, end })
    }
}

/// Which rules a [`Ctl`] or an exclusion applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RuleRef {
    /// By id or id range.
    Id(IdRange),
    /// By tag (exact, case-sensitive, as in ModSecurity).
    Tag(String),
}

/// `ctl`: change how the rest of this request is inspected.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ctl {
    /// Do not run these rules for this request.
    RemoveRules(RuleRef),
    /// Do not let these rules see this target.
    RemoveTarget {
        /// The rules.
        rules: RuleRef,
        /// The collection.
        collection: Collection,
        /// Which members.
        selector: Selector,
    },
    /// Switch the engine for this request: `On`, `DetectionOnly`, `Off`.
    EngineMode(super::Mode),
}

impl Ctl {
    /// Parses ModSecurity's `ctl:` argument, such as `ruleRemoveTargetById=942100;ARGS:password`.
    ///
    /// Returns `Ok(None)` for the `ctl` options that only tune ModSecurity's own machinery and
    /// mean nothing here (`auditEngine`, `forceRequestBodyVariable`...).
    ///
    /// ```
    /// use waf_core::rules::Ctl;
    /// let ctl = Ctl::parse_seclang("ruleRemoveTargetById=942100;ARGS:password").unwrap();
    /// assert!(ctl.is_some());
    /// ```
    pub fn parse_seclang(s: &str) -> Result<Option<Ctl>, ActionError> {
        let (option, value) = s
            .split_once('=')
            .ok_or_else(|| ActionError(format!("ctl `{s}` has no value")))?;
        let value = value.trim();
        let target = |v: &str| -> Result<(String, Collection, Selector), ActionError> {
            let (rule, target) = v
                .split_once(';')
                .ok_or_else(|| ActionError(format!("ctl value `{v}` needs `rule;TARGET`")))?;
            let t: Target = target
                .parse()
                .map_err(|e: TargetError| ActionError(e.to_string()))?;
            Ok((rule.trim().to_string(), t.collection, t.selector))
        };
        Ok(Some(match option.trim().to_ascii_lowercase().as_str() {
            "ruleremovebyid" => Ctl::RemoveRules(RuleRef::Id(value.parse()?)),
            "ruleremovebytag" => Ctl::RemoveRules(RuleRef::Tag(value.to_string())),
            "ruleremovetargetbyid" => {
                let (id, collection, selector) = target(value)?;
                Ctl::RemoveTarget {
                    rules: RuleRef::Id(id.parse()?),
                    collection,
                    selector,
                }
            }
            "ruleremovetargetbytag" => {
                let (tag, collection, selector) = target(value)?;
                Ctl::RemoveTarget {
                    rules: RuleRef::Tag(tag),
                    collection,
                    selector,
                }
            }
            "ruleengine" => Ctl::EngineMode(match value.to_ascii_lowercase().as_str() {
                "on" => super::Mode::Block,
                "detectiononly" => super::Mode::DetectOnly,
                "off" => super::Mode::Off,
                other => return Err(ActionError(format!("unknown ruleEngine `{other}`"))),
            }),
            "auditengine"
            | "auditlogparts"
            | "forcerequestbodyvariable"
            | "requestbodyaccess"
            | "requestbodyprocessor"
            | "debugloglevel"
            | "hashengine"
            | "hashenforcement" => return Ok(None),
            other => return Err(ActionError(format!("unsupported ctl option `{other}`"))),
        }))
    }
}

/// A side effect of a matching rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Effect {
    /// Change a transaction variable.
    SetVar(SetVar),
    /// Change the rest of the request's inspection.
    Ctl(Ctl),
}

/// Where evaluation goes after a rule matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Flow {
    /// The next rule.
    #[default]
    Next,
    /// The first rule after this marker (in the same phase).
    SkipAfter(String),
    /// Skip this many rules (chains count as one).
    Skip(u32),
}

/// An action that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionError(pub(crate) String);

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ActionError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_keep_incomplete_references_literal() {
        let m = Macro::parse("a %{tx.x} b %{oops");
        assert_eq!(m.parts.len(), 3);
        assert_eq!(m.to_string(), "a %{tx.x} b %{oops");
    }

    #[test]
    fn setvar_forms() {
        let s: SetVar = "tx.a=-3".parse().unwrap();
        assert_eq!(s.op, SetOp::Sub(Macro::parse("3")));
        let s: SetVar = "tx.flag".parse().unwrap();
        assert_eq!(s.op, SetOp::Set(Macro::parse("1")));
        assert!("ip.x=1".parse::<SetVar>().is_err());
    }

    #[test]
    fn ctl_forms() {
        assert_eq!(
            Ctl::parse_seclang("ruleRemoveById=920100-920199").unwrap(),
            Some(Ctl::RemoveRules(RuleRef::Id(IdRange {
                start: 920100,
                end: 920199
            })))
        );
        assert_eq!(
            Ctl::parse_seclang("ruleRemoveTargetByTag=attack-sqli;ARGS:password").unwrap(),
            Some(Ctl::RemoveTarget {
                rules: RuleRef::Tag("attack-sqli".into()),
                collection: Collection::Args,
                selector: Selector::Name("password".into()),
            })
        );
        assert_eq!(Ctl::parse_seclang("auditEngine=Off").unwrap(), None);
        assert!(Ctl::parse_seclang("bogus=1").is_err());
    }
}
