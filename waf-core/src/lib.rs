//! The engine of the WAF: requests in, verdicts out. No I/O, no async.
//!
//! # The data flow
//!
//! The modules follow a request through the engine:
//!
//! 1. [`request`]: the [`Request`] as it arrived — method, target, headers, body, peer address —
//!    all in bytes. Invalid UTF-8 is ordinary input.
//! 2. [`parse`]: query arguments, cookies, and the body by its content type (urlencoded, JSON
//!    flattened to dotted names, multipart), within configured limits.
//! 3. [`transform`]: ModSecurity's transformations (`url_decode_uni`, `lowercase`,
//!    `html_entity_decode`...), pure functions over bytes.
//! 4. [`operator`]: the tests — regex, phrase lists, libinjection, IP sets, validations.
//! 5. [`rules`]: the rule model both rule languages translate into; [`rules::yaml`] is the YAML
//!    language.
//! 6. [`compile`](mod@compile): rules into one [`Program`] — shared transformation chains,
//!    Aho-Corasick literal gates in front of regexes.
//! 7. [`verdict`]: what was decided and why.
//! 8. [`profile`]: where the time of an inspection went, rule by rule.
//!
//! [`reference`] holds the slow, obviously-correct evaluator the compiled program is tested
//! against.
//!
//! # Example
//!
//! ```
//! use waf_core::{compile, Request, RuleSet};
//!
//! let rules = RuleSet::from_yaml_str(r#"
//! rules:
//!   - id: 942100
//!     message: SQL injection (libinjection)
//!     severity: critical
//!     targets: [args, request_cookies]
//!     except: [args:password]
//!     transforms: [url_decode_uni]
//!     match: detect_sqli
//! "#, "sqli.yaml")?;
//! let program = compile(&rules)?;
//!
//! let attack = Request::builder().uri("/authorize?state=1'%20OR%20'1'='1").build();
//! let verdict = program.inspect(&attack);
//! assert!(verdict.is_blocking());
//! assert_eq!(verdict.matches[0].values[0].target, "ARGS:state");
//!
//! // Passwords may look like SQL: this one is excluded from the rule.
//! let login = Request::builder()
//!     .method("POST")
//!     .uri("/login")
//!     .header("Content-Type", "application/x-www-form-urlencoded")
//!     .body("signInName=zoe&password=1'%20OR%20'1'='1")
//!     .build();
//! assert!(!program.inspect(&login).is_blocking());
//! # Ok::<(), waf_core::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod compile;
mod engine;
mod error;
pub mod operator;
pub mod parse;
pub mod profile;
pub mod reference;
pub mod request;
pub mod rules;
#[cfg(test)]
mod test_data;
pub mod transform;
pub mod verdict;

pub use compile::{compile, Program};
pub use error::{Error, ErrorKind};
pub use request::Request;
pub use rules::RuleSet;
pub use verdict::{Action, Verdict};
