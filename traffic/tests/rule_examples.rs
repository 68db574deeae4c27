//! Every rule of `rules/` carries at least two example requests it must match and two it must
//! not (`waf rules test rules/` runs them; this holds the count).

use std::path::Path;

use waf_core::RuleSet;

#[test]
fn every_rule_has_two_examples_each_way() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let set = RuleSet::from_yaml_paths(&[rules]).expect("rules/ loads");
    let short: Vec<String> = set
        .rules()
        .filter(|r| r.tests.matching.len() < 2 || r.tests.not_matching.len() < 2)
        .map(|r| {
            format!(
                "{}: rule {}: {} match, {} no_match",
                r.source,
                r.id,
                r.tests.matching.len(),
                r.tests.not_matching.len()
            )
        })
        .collect();
    assert!(set.rules().count() > 50);
    assert!(short.is_empty(), "{}", short.join("\n"));
}
