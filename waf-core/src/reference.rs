//! The reference evaluator: every rule, one by one, the simplest way.
//!
//! It shares the driver with the compiled [`Program`](crate::Program) (rule order, chains,
//! actions, scoring) but none of its optimisations: each value is transformed from scratch for
//! each rule and each operator always runs. It exists so that tests can demand identical verdicts
//! from both, on generated and on real requests — which is what lets the compiler be optimised
//! without fear. It is slow on purpose; do not deploy it.
//!
//! ```
//! use waf_core::{compile, reference::Reference, Request, RuleSet};
//!
//! let set = RuleSet::from_yaml_str(
//!     "rules:\n  - id: 1\n    targets: [args]\n    transforms: [lowercase]\n    match: {contains: 'select'}\n",
//!     "inline.yaml",
//! ).unwrap();
//! let request = Request::builder().uri("/?q=SELECT").build();
//! let reference = Reference::new(&set).unwrap();
//! assert_eq!(reference.inspect(&request), compile(&set).unwrap().inspect(&request));
//! ```

use crate::engine::values::RequestData;
use crate::engine::{self, Evaluate, Plan, Probe};
use crate::error::Error;
use crate::operator::{Evidence, Lookup};
use crate::request::Request;
use crate::rules::RuleSet;
use crate::verdict::Verdict;

/// The naive evaluator.
#[derive(Debug)]
pub struct Reference {
    plan: Plan,
}

impl Reference {
    /// Prepares a ruleset (operators compiled, nothing else).
    pub fn new(set: &RuleSet) -> Result<Reference, Error> {
        Ok(Reference {
            plan: Plan::new(set)?,
        })
    }

    /// Inspects a request.
    pub fn inspect(&self, request: &Request) -> Verdict {
        engine::run(self, request)
    }
}

impl Evaluate for Reference {
    type Cache = ();

    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn test(
        &self,
        _cache: &mut (),
        _data: &RequestData<'_>,
        probe: Probe<'_>,
        lookup: &mut Lookup<'_>,
    ) -> Option<(Vec<u8>, usize, Evidence)> {
        let c = &self.plan.rules[probe.rule].conditions[probe.cond];
        let matcher = &self.plan.matchers[probe.rule][probe.cond];
        engine::test_stages(&c.transforms, c.multi_match, probe.value, |v| {
            let found = matcher.matches_with(v, lookup, c.capture);
            match (found, c.negated) {
                (Some(e), false) => Some(e),
                (None, true) => Some(Evidence::default()),
                _ => None,
            }
        })
    }
}
