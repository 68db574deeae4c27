//! What a rule looks at: collections, selectors and exclusions.
//!
//! Both rule languages write targets the way ModSecurity does, and [`Target`] parses that
//! syntax: `ARGS`, `ARGS:password`, `ARGS:/^pass/`, `&ARGS` (the number of arguments),
//! `REQUEST_HEADERS:User-Agent`, `TX:anomaly_score`. Names are case-insensitive.
//!
//! ```
//! use waf_core::rules::{Collection, Selector, Target};
//!
//! let t: Target = "ARGS:/^pass/".parse().unwrap();
//! assert_eq!(t.collection, Collection::Args);
//! assert_eq!(t.selector, Selector::Regex("^pass".into()));
//!
//! let t: Target = "&request_headers:host".parse().unwrap();
//! assert!(t.count);
//! ```

use std::fmt;
use std::str::FromStr;

/// A named collection of values in the request (or in the transaction).
///
/// Collections that hold one value (the method, the path) are "scalars"; the rest hold a list of
/// named values and can be narrowed with a [`Selector`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Collection {
    /// Query and body arguments (`ARGS`).
    Args,
    /// Names of query and body arguments.
    ArgsNames,
    /// Query-string arguments only.
    ArgsGet,
    /// Names of query-string arguments.
    ArgsGetNames,
    /// Body arguments only (urlencoded, JSON leaves, multipart fields).
    ArgsPost,
    /// Names of body arguments.
    ArgsPostNames,
    /// Total length of all argument names and values.
    ArgsCombinedSize,
    /// Header values, by header name.
    RequestHeaders,
    /// Header names.
    RequestHeadersNames,
    /// Cookie values, by cookie name.
    RequestCookies,
    /// Cookie names.
    RequestCookiesNames,
    /// `METHOD SP target SP protocol`.
    RequestLine,
    /// The method.
    RequestMethod,
    /// The protocol token.
    RequestProtocol,
    /// The request target, percent-encoding intact.
    RequestUri,
    /// The request target exactly as sent (same as `RequestUri`; kept for SecLang).
    RequestUriRaw,
    /// The path, percent-decoded.
    RequestFilename,
    /// The last segment of the decoded path.
    RequestBasename,
    /// The query string, undecoded.
    QueryString,
    /// The raw body.
    RequestBody,
    /// The body length in bytes.
    RequestBodyLength,
    /// JSON leaves (from a JSON body or JSON inside a form field), by dotted name.
    Json,
    /// Names of JSON leaves.
    JsonNames,
    /// Uploaded file names, by form field name.
    Files,
    /// Form field names of uploaded files.
    FilesNames,
    /// Total size of uploaded files.
    FilesCombinedSize,
    /// Every multipart part header line, by field name.
    MultipartPartHeaders,
    /// `1` when the multipart body had any irregularity.
    MultipartStrictError,
    /// `1` when a multipart body contained a boundary-like line that did not match.
    MultipartUnmatchedBoundary,
    /// `1` when the body processor failed.
    ReqbodyError,
    /// Why the body processor failed.
    ReqbodyErrorMsg,
    /// Which body processor ran: `URLENCODED`, `JSON`, `MULTIPART`, or empty.
    ReqbodyProcessor,
    /// `1` when an argument had invalid percent-encoding.
    UrlencodedError,
    /// The client address.
    RemoteAddr,
    /// Transaction variables, set by rules (`setvar`) and by the ruleset settings.
    Tx,
    /// The value the current rule matched last.
    MatchedVar,
    /// The name of `MatchedVar` (`ARGS:q`).
    MatchedVarName,
    /// Every value the current rule matched so far.
    MatchedVars,
    /// Names of `MatchedVars`.
    MatchedVarsNames,
    /// An XML body's values: `XML:/*` is its text, `XML://@*` each attribute value.
    Xml,
    /// SecLang's `REQUEST_BODY`: the raw body, except when the XML processor parsed it. The
    /// OWASP CRS tests expect ModSecurity 2's behaviour there (XML rules look at `XML:/*`, so
    /// an element *name* is not an attack); the YAML language's `request_body` is always the
    /// raw body.
    RequestBodyUnlessXml,
}

impl Collection {
    /// The canonical (SecLang) name, such as `REQUEST_HEADERS`.
    pub fn name(self) -> &'static str {
        COLLECTION_NAMES
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("UNKNOWN", |(_, n)| n)
    }

    /// Whether the collection holds a single unnamed value.
    pub fn is_scalar(self) -> bool {
        use Collection::*;
        matches!(
            self,
            ArgsCombinedSize
                | RequestLine
                | RequestMethod
                | RequestProtocol
                | RequestUri
                | RequestUriRaw
                | RequestFilename
                | RequestBasename
                | QueryString
                | RequestBody
                | RequestBodyLength
                | FilesCombinedSize
                | MultipartStrictError
                | MultipartUnmatchedBoundary
                | ReqbodyError
                | ReqbodyErrorMsg
                | ReqbodyProcessor
                | UrlencodedError
                | RemoteAddr
                | MatchedVar
                | MatchedVarName
                | RequestBodyUnlessXml
        )
    }

    /// Whether values come from the transaction's state rather than from the request; such
    /// values change while rules run and are never cached or prefiltered.
    pub fn is_dynamic(self) -> bool {
        use Collection::*;
        matches!(
            self,
            Tx | MatchedVar | MatchedVarName | MatchedVars | MatchedVarsNames
        )
    }

    /// Whether the collection is only filled in the body phase (empty during the headers
    /// phase). `ARGS_COMBINED_SIZE` and `URLENCODED_ERROR` count the body's arguments too, so
    /// they wait for it.
    pub fn needs_body(self) -> bool {
        use Collection::*;
        matches!(
            self,
            ArgsPost
                | ArgsPostNames
                | ArgsCombinedSize
                | UrlencodedError
                | RequestBody
                | Json
                | JsonNames
                | Files
                | FilesNames
                | FilesCombinedSize
                | MultipartPartHeaders
                | MultipartStrictError
                | MultipartUnmatchedBoundary
                | ReqbodyError
                | ReqbodyErrorMsg
                | ReqbodyProcessor
                | Xml
                | RequestBodyUnlessXml
        )
    }
}

const COLLECTION_NAMES: &[(Collection, &str)] = &[
    (Collection::Args, "ARGS"),
    (Collection::ArgsNames, "ARGS_NAMES"),
    (Collection::ArgsGet, "ARGS_GET"),
    (Collection::ArgsGetNames, "ARGS_GET_NAMES"),
    (Collection::ArgsPost, "ARGS_POST"),
    (Collection::ArgsPostNames, "ARGS_POST_NAMES"),
    (Collection::ArgsCombinedSize, "ARGS_COMBINED_SIZE"),
    (Collection::RequestHeaders, "REQUEST_HEADERS"),
    (Collection::RequestHeadersNames, "REQUEST_HEADERS_NAMES"),
    (Collection::RequestCookies, "REQUEST_COOKIES"),
    (Collection::RequestCookiesNames, "REQUEST_COOKIES_NAMES"),
    (Collection::RequestLine, "REQUEST_LINE"),
    (Collection::RequestMethod, "REQUEST_METHOD"),
    (Collection::RequestProtocol, "REQUEST_PROTOCOL"),
    (Collection::RequestUri, "REQUEST_URI"),
    (Collection::RequestUriRaw, "REQUEST_URI_RAW"),
    (Collection::RequestFilename, "REQUEST_FILENAME"),
    (Collection::RequestBasename, "REQUEST_BASENAME"),
    (Collection::QueryString, "QUERY_STRING"),
    (Collection::RequestBody, "REQUEST_BODY"),
    (Collection::RequestBodyLength, "REQUEST_BODY_LENGTH"),
    (Collection::Json, "JSON"),
    (Collection::JsonNames, "JSON_NAMES"),
    (Collection::Files, "FILES"),
    (Collection::FilesNames, "FILES_NAMES"),
    (Collection::FilesCombinedSize, "FILES_COMBINED_SIZE"),
    (Collection::MultipartPartHeaders, "MULTIPART_PART_HEADERS"),
    (Collection::MultipartStrictError, "MULTIPART_STRICT_ERROR"),
    (
        Collection::MultipartUnmatchedBoundary,
        "MULTIPART_UNMATCHED_BOUNDARY",
    ),
    (Collection::ReqbodyError, "REQBODY_ERROR"),
    (Collection::ReqbodyErrorMsg, "REQBODY_ERROR_MSG"),
    (Collection::ReqbodyProcessor, "REQBODY_PROCESSOR"),
    (Collection::UrlencodedError, "URLENCODED_ERROR"),
    (Collection::RemoteAddr, "REMOTE_ADDR"),
    (Collection::Tx, "TX"),
    (Collection::MatchedVar, "MATCHED_VAR"),
    (Collection::MatchedVarName, "MATCHED_VAR_NAME"),
    (Collection::MatchedVars, "MATCHED_VARS"),
    (Collection::MatchedVarsNames, "MATCHED_VARS_NAMES"),
    (Collection::Xml, "XML"),
    // After `RequestBody`, so the name parses as that; it prints as `REQUEST_BODY`.
    (Collection::RequestBodyUnlessXml, "REQUEST_BODY"),
];

impl fmt::Display for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Collection {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Collection, TargetError> {
        COLLECTION_NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(s))
            .map(|(c, _)| *c)
            .ok_or_else(|| TargetError(format!("unknown collection `{s}`")))
    }
}

/// Which members of a collection a target takes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Selector {
    /// Every member.
    All,
    /// The members with this name (compared without regard to ASCII case).
    Name(String),
    /// The members whose name matches this regular expression (case-insensitive).
    Regex(String),
}

impl Selector {
    /// Parses the part after the colon: `password` or `/^pass/`.
    fn parse(s: &str) -> Selector {
        match s.strip_prefix('/').and_then(|r| r.strip_suffix('/')) {
            Some(pattern) if s.len() >= 2 => Selector::Regex(pattern.to_string()),
            _ => Selector::Name(unquote(s).to_string()),
        }
    }
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or(s)
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::All => Ok(()),
            Selector::Name(n) => write!(f, ":{n}"),
            Selector::Regex(r) => write!(f, ":/{r}/"),
        }
    }
}

/// One target of a rule condition: a collection, which of its members, and which to leave out.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The collection.
    pub collection: Collection,
    /// Which members.
    pub selector: Selector,
    /// When set, the target's value is the number of selected members, not the members.
    pub count: bool,
    /// Members left out (by name or by regex), as written with `!ARGS:password` or `except:`.
    pub exclude: Vec<Selector>,
}

impl Target {
    /// Every member of a collection.
    ///
    /// ```
    /// use waf_core::rules::{Collection, Target};
    /// assert_eq!(Target::all(Collection::Args).to_string(), "ARGS");
    /// ```
    pub fn all(collection: Collection) -> Target {
        Target {
            collection,
            selector: Selector::All,
            count: false,
            exclude: Vec::new(),
        }
    }

    /// Parses a `!COLLECTION:selector` exclusion into the collection and selector it removes.
    ///
    /// ```
    /// use waf_core::rules::{Collection, Selector, Target};
    /// let (c, s) = Target::parse_exclusion("!ARGS:password").unwrap();
    /// assert_eq!((c, s), (Collection::Args, Selector::Name("password".into())));
    /// ```
    pub fn parse_exclusion(s: &str) -> Result<(Collection, Selector), TargetError> {
        let t: Target = s.trim().trim_start_matches('!').parse()?;
        Ok((t.collection, t.selector))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count {
            f.write_str("&")?;
        }
        write!(f, "{}{}", self.collection, self.selector)?;
        for e in &self.exclude {
            write!(f, "|!{}{}", self.collection, e)?;
        }
        Ok(())
    }
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Target, TargetError> {
        let s = s.trim();
        let (count, s) = match s.strip_prefix('&') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if s.starts_with('!') {
            return Err(TargetError(format!(
                "`{s}` is an exclusion; write it under `except:` (or after a target in SecLang)"
            )));
        }
        let (collection, selector) = match s.split_once(':') {
            Some((c, sel)) if !sel.is_empty() => (c.parse::<Collection>()?, Selector::parse(sel)),
            Some((c, _)) => (c.parse::<Collection>()?, Selector::All),
            None => (s.parse::<Collection>()?, Selector::All),
        };
        if collection.is_scalar() && selector != Selector::All {
            return Err(TargetError(format!(
                "{collection} holds a single value and takes no selector"
            )));
        }
        if let Selector::Regex(r) = &selector {
            regex_syntax::Parser::new().parse(r).map_err(|e| {
                let why = match &e {
                    regex_syntax::Error::Parse(p) => p.kind().to_string(),
                    other => other.to_string(),
                };
                TargetError(format!("bad selector regex /{r}/: {why}"))
            })?;
        }
        Ok(Target {
            collection,
            selector,
            count,
            exclude: Vec::new(),
        })
    }
}

/// A target that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetError(String);

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TargetError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seclang_forms() {
        let cases: &[(&str, &str)] = &[
            ("ARGS", "ARGS"),
            ("args", "ARGS"),
            ("ARGS:password", "ARGS:password"),
            ("ARGS:/^pass/", "ARGS:/^pass/"),
            ("&ARGS", "&ARGS"),
            ("REQUEST_HEADERS:User-Agent", "REQUEST_HEADERS:User-Agent"),
            ("tx:'anomaly_score'", "TX:anomaly_score"),
            ("REQUEST_COOKIES:/__utm/", "REQUEST_COOKIES:/__utm/"),
        ];
        for (input, shown) in cases {
            let t: Target = input.parse().unwrap();
            assert_eq!(t.to_string(), *shown, "{input}");
        }
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["NOPE", "REQUEST_METHOD:x", "ARGS:/(/", "!ARGS:x", ""] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }
}
