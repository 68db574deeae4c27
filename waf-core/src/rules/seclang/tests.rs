use super::*;
use crate::rules::{MacroPart, SetOp};

fn load(text: &str) -> Result<(RuleSet, Vec<Error>), Error> {
    let mut loader = Loader::new();
    loader.load_str(text, "t.conf", None)?;
    loader.finish()
}

fn rule(set: &RuleSet, id: u32) -> &Rule {
    set.rules().find(|r| r.id == id).expect("rule loaded")
}

#[test]
fn a_chain_becomes_one_rule_with_two_conditions() {
    let (set, notes) = load(
        r#"
SecDefaultAction "phase:2,log,auditlog,pass"
SecRule REQUEST_COOKIES|!REQUEST_COOKIES:/__utm/|ARGS_NAMES|ARGS "@rx ^(x)" \
    "id:10,phase:2,block,capture,t:none,t:urlDecodeUni,t:lowercase,msg:'M %{TX.1}',\
    logdata:'Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}',\
    tag:'attack-x',severity:'CRITICAL',chain"
    SecRule MATCHED_VARS "!@pm a b" "t:none,multiMatch,setvar:'tx.score=+%{tx.critical_anomaly_score}'"
SecRule TX:EXECUTING_PARANOIA_LEVEL "@lt 2" "id:11,phase:1,pass,nolog,skipAfter:END"
SecMarker "END"
"#,
    )
    .unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    let r = rule(&set, 10);
    assert_eq!(r.conditions.len(), 2);
    assert_eq!(r.action, Disruptive::Pass, "block follows SecDefaultAction");
    assert_eq!(r.severity, Some(Severity::Critical));
    assert_eq!(r.tags, ["attack-x"]);
    let first = &r.conditions[0];
    assert!(first.capture);
    assert_eq!(
        first.transforms,
        [Transform::UrlDecodeUni, Transform::Lowercase]
    );
    assert_eq!(first.targets.len(), 3);
    assert_eq!(
        first.targets[0].exclude,
        [Selector::Regex("__utm".to_string())]
    );
    let second = &r.conditions[1];
    assert!(second.negated && second.multi_match);
    assert_eq!(
        second.operator,
        Operator::Pm(vec![b"a".to_vec(), b"b".to_vec()])
    );
    let Effect::SetVar(sv) = &second.effects[0] else {
        panic!("{:?}", second.effects)
    };
    assert!(
        matches!(&sv.op, SetOp::Add(m) if matches!(&m.parts[0], MacroPart::Var { collection, .. } if collection == "tx"))
    );
    let skip = rule(&set, 11);
    assert_eq!(skip.phase, Phase::Headers);
    assert!(!skip.log);
    assert_eq!(skip.flow, Flow::SkipAfter("END".into()));
    assert!(set
        .items
        .iter()
        .any(|i| matches!(i, Item::Marker { name, .. } if name == "END")));
}

#[test]
fn what_cannot_work_here_is_noted_with_file_line_and_rule() {
    let (set, notes) = load(
        "SecRequestBodyLimit 13107200\n\
         SecRule ARGS|XML:/*|GEO:COUNTRY_CODE \"@rx a\" \"id:1,pass\"\n\
         SecRule REMOTE_ADDR \"@rbl sbl-xbl.spamhaus.org\" \"id:2,pass\"\n\
         SecRule ARGS \"@rx (?<n>a)\\k<n>\" \"id:3,pass\"\n\
         SecAction \"id:4,initcol:global=global,pass\"\n\
         SecRule RESPONSE_BODY \"@rx x\" \"id:5,phase:4,pass\"\n",
    )
    .unwrap();
    let text: Vec<String> = notes.iter().map(ToString::to_string).collect();
    assert!(
        text[0].starts_with("t.conf:1:1: SecRequestBodyLimit"),
        "{text:?}"
    );
    assert!(
        text[1].starts_with("t.conf:2:1: rule 1: target GEO:COUNTRY_CODE"),
        "{text:?}"
    );
    assert!(
        text[2].starts_with("t.conf:3:1: rule 2: operator @rbl"),
        "{text:?}"
    );
    assert!(
        text[3].contains("rule 3: @rx never matches here: backreference"),
        "{text:?}"
    );
    assert!(text[4].contains("rule 4: action `initcol`"), "{text:?}");
    assert!(
        text[5].contains("rule 5: response and logging phases"),
        "{text:?}"
    );
    assert!(notes.iter().all(|n| n.kind() == ErrorKind::Unsupported));
    assert_eq!(rule(&set, 1).conditions[0].targets.len(), 2);
    assert_eq!(rule(&set, 2).conditions[0].operator, Operator::NoMatch);
    assert_eq!(rule(&set, 3).conditions[0].operator, Operator::NoMatch);
    assert!(set.rules().all(|r| r.id != 5));
}

/// Lookaround, backreferences and possessive quantifiers (CRS 920120, 942130, 942260) go to
/// the bounded backtracking matcher, without a note: they take effect as written.
#[test]
fn patterns_that_need_backtracking_load_for_the_backtracking_matcher() {
    let (set, notes) = load(
        "SecRule ARGS \"@rx (?<!&amp);\" \"id:1,pass\"\n\
         SecRule ARGS \"@rx (\\w+)=\\1\" \"id:2,pass\"\n\
         SecRule ARGS \"@rx a*+b\" \"id:3,pass\"\n\
         SecRule ARGS \"@rx a*b\" \"id:4,pass\"\n",
    )
    .unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    for (id, pcre) in [(1, "(?<!&amp);"), (2, r"(\w+)=\1"), (3, "a*+b")] {
        assert_eq!(
            rule(&set, id).conditions[0].operator,
            Operator::RxBacktracking {
                pattern: format!("(?sm){pcre}"),
                step_limit: crate::operator::backtrack::BACKTRACK_LIMIT,
            },
            "rule {id}"
        );
    }
    assert_eq!(
        rule(&set, 4).conditions[0].operator,
        Operator::Rx("(?sm)a*b".into())
    );
}

/// `SecPcreMatchLimit` sets the step limit of the backtracking patterns after it, as it sets
/// PCRE's match limit in ModSecurity; a limit that is not a number is an error at its line.
#[test]
fn sec_pcre_match_limit_sets_the_step_limit_of_later_backtracking_patterns() {
    let (set, notes) = load(
        "SecRule ARGS \"@rx (\\w+)=\\1\" \"id:1,pass\"\n\
         SecPcreMatchLimit 50000\n\
         SecRule ARGS \"@rx (\\w+)=\\1\" \"id:2,pass\"\n",
    )
    .unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    let limit = |id| match &rule(&set, id).conditions[0].operator {
        Operator::RxBacktracking { step_limit, .. } => *step_limit,
        other => panic!("rule {id}: {other}"),
    };
    assert_eq!(limit(1), crate::operator::backtrack::BACKTRACK_LIMIT);
    assert_eq!(limit(2), 50_000);
    for bad in ["SecPcreMatchLimit lots\n", "SecPcreMatchLimit 0\n"] {
        let e = load(bad).unwrap_err().to_string();
        assert!(
            e.starts_with("t.conf:1:1: SecPcreMatchLimit takes a number"),
            "{e}"
        );
    }
}

/// ModSecurity 3 compiles `@rx` with PCRE_DOTALL and PCRE_MULTILINE. Without them a newline
/// hid an attack from anchored CRS patterns: `..%0A` passed 930110's `(?:^|[\\/])\.\.(?:[\\/]|$)`
/// and `http://evil/x?%0A` passed 931120's `\?+$`, both blocked by ModSecurity.
#[test]
fn a_newline_does_not_hide_a_value_from_anchored_patterns() {
    let (set, _) = load(concat!(
        r#"SecRule ARGS "@rx (?:^|[\\\\/])\\.\\.(?:[\\\\/]|$)" "id:1,phase:2,deny""#,
        "\n",
        r#"SecRule ARGS "@rx ^https?.*?\\?+$" "id:2,phase:2,deny""#,
        "\n",
        r#"SecRule ARGS "@rx (?<!x)^y$" "id:3,phase:2,deny""#,
        "\n",
    ))
    .unwrap();
    let program = crate::compile(&set).unwrap();
    let matched = |query: &str| {
        let request = crate::Request::builder()
            .uri(format!("/?a={query}"))
            .build();
        let verdict = program.inspect(&request);
        verdict
            .matches
            .iter()
            .map(|m| m.rule_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(matched("..%0A"), vec![1]);
    assert_eq!(matched("y%0A.."), vec![1]);
    assert_eq!(matched("http://evil/x%3F%0A"), vec![2]);
    assert_eq!(
        matched("http://evil/%0Ax%3F"),
        vec![2],
        "`.` matches a newline"
    );
    assert_eq!(
        matched("z%0Ay%0Az"),
        vec![3],
        "the backtracking matcher too"
    );
    assert_eq!(matched("a..b"), Vec::<u32>::new());
}

#[test]
fn mistakes_are_errors_with_file_line_and_rule() {
    let cases = [
        (
            "SecRule ARGS \"@rx a\" \"phase:2,pass\"",
            "t.conf:1:1: rule has no `id`",
        ),
        (
            "SecMarker A\nSecRule ARGS \"@rx a",
            "t.conf:2:1: unterminated double quote",
        ),
        (
            "SecRule ARGS \"@rx a\" \"id:9,chain\"",
            "t.conf:1:1: rule 9: `chain` with no rule",
        ),
        (
            "SecRule ARGS \"@rx a\" \"id:9,frobnicate\"",
            "t.conf:1:1: rule 9: unknown action",
        ),
        (
            "SecRule ARGS \"@rx (a\" \"id:9,pass\"",
            "t.conf:1:1: rule 9: @rx does not compile",
        ),
        (
            "SecRule ARGS \"@rx a\" \"id:9,chain\"\nSecMarker X",
            "t.conf:2:1: rule 9: `SecMarker` follows",
        ),
    ];
    for (text, want) in cases {
        let err = load(text).unwrap_err();
        assert!(err.to_string().starts_with(want), "{text}: {err}");
    }
}

/// Every broken rule of a file is reported, in order; the rest of a broken rule's chain is not
/// reported again as rules without an id, and the fine rules between still load.
#[test]
fn every_broken_rule_of_a_file_is_reported_once() {
    let text = "\
SecRule ARGS \"@rx a\" \"id:1,frobnicate,chain\"
    SecRule ARGS \"@rx b\" \"chain\"
    SecRule ARGS \"@rx c\" \"t:none\"
SecRule ARGS \"@rx fine\" \"id:2,phase:2,pass\"
SecRule ARGS \"@rx d\" \"id:3,chain\"
    SecRule ARGS \"@rx e\" \"id:4\"
SecRule ARGS \"@rx (f\" \"id:5,phase:2,pass\"
SecRule ARGS \"@rx g\" \"id:six\"
";
    let mut loader = Loader::new();
    let err = loader.load_str(text, "t.conf", None).unwrap_err();
    let all: Vec<String> = std::iter::once(&err)
        .chain(err.also())
        .map(ToString::to_string)
        .collect();
    let expected = [
        "t.conf:1:1: rule 1: unknown action `frobnicate`",
        "t.conf:6:5: rule 3: a chained rule cannot have an id",
        "t.conf:7:1: rule 5: @rx does not compile",
        "t.conf:8:1: rule id `six` is not a number",
    ];
    assert_eq!(all.len(), expected.len(), "{all:#?}");
    for (got, want) in all.iter().zip(expected) {
        assert!(got.starts_with(want), "{got}, not {want}: {all:#?}");
    }
    // Rule 2 loaded; no rule of a broken chain did.
    let ids: Vec<u32> = loader.ruleset_mut().rules().map(|r| r.id).collect();
    assert_eq!(ids, [2]);
}

#[test]
fn remove_and_update_directives_change_earlier_rules() {
    let (set, notes) = load(
        "SecRule ARGS \"@rx a\" \"id:1,pass,tag:'attack-a'\"\n\
         SecRule ARGS \"@rx b\" \"id:2,pass,tag:'attack-b'\"\n\
         SecRule ARGS \"@rx c\" \"id:3,pass\"\n\
         SecRuleRemoveById 1\n\
         SecRuleRemoveByTag attack-b\n\
         SecRuleUpdateTargetById 3 \"!ARGS:password|REQUEST_HEADERS:X-A\"\n",
    )
    .unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    let ids: Vec<u32> = set.rules().map(|r| r.id).collect();
    assert_eq!(ids, [3]);
    let targets = &rule(&set, 3).conditions[0].targets;
    assert_eq!(targets[0].exclude, [Selector::Name("password".into())]);
    assert_eq!(targets[1].to_string(), "REQUEST_HEADERS:X-A");
}

#[test]
fn includes_follow_globs_relative_to_the_including_file() {
    let dir = std::env::temp_dir().join(format!("waf-seclang-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(
        dir.join("rules/b.conf"),
        "SecRule ARGS \"@pmFromFile words.data\" \"id:2,pass\"",
    )
    .unwrap();
    std::fs::write(
        dir.join("rules/a.conf"),
        "SecAction \"id:1,pass,setvar:tx.x=1\"",
    )
    .unwrap();
    std::fs::write(dir.join("rules/words.data"), "# comment\nalpha\n\nbeta\n").unwrap();
    std::fs::write(
        dir.join("main.conf"),
        "Include rules/*.conf\nIncludeOptional missing/*.conf\n",
    )
    .unwrap();
    let mut loader = Loader::new();
    loader.load_file(&dir.join("main.conf")).unwrap();
    let (set, _) = loader.finish().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let ids: Vec<u32> = set.rules().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2], "sorted by file name");
    assert_eq!(
        rule(&set, 2).conditions[0].operator,
        Operator::Pm(vec![b"alpha".to_vec(), b"beta".to_vec()])
    );
}

#[test]
fn regex_selectors_may_contain_bars() {
    let (set, _) = load("SecRule ARGS:/^(?:a|b)$/|ARGS_NAMES \"@rx x\" \"id:1,pass\"").unwrap();
    let targets = &rule(&set, 1).conditions[0].targets;
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0].selector, Selector::Regex("^(?:a|b)$".into()));
}

#[test]
fn a_regex_built_from_a_tx_variable_follows_its_value() {
    let (set, notes) = load(
        "SecAction \"id:1,phase:1,pass,nolog,setvar:'tx.allowed=utf-8|iso-8859-1'\"\n\
         SecRule REQUEST_HEADERS:X-Charset \"!@rx ^%{tx.allowed}$\" \"id:2,phase:1,deny\"\n",
    )
    .unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    let program = crate::compile(&set).unwrap();
    let with = |charset: &str| {
        let request = crate::Request::builder()
            .header("X-Charset", charset)
            .build();
        program.inspect(&request).is_blocking()
    };
    assert!(!with("utf-8"));
    assert!(!with("iso-8859-1"));
    assert!(with("koi8-r"));
}

#[test]
fn a_tx_regex_selector_visits_the_variables_in_name_order() {
    let (set, notes) = load(
        "SecAction \"id:1,phase:1,pass,nolog,setvar:tx.b_2=x,setvar:tx.c_3=x,setvar:tx.a_1=x\"\n\
         SecRule TX:/^[abc]_/ \"@rx x\" \"id:2,phase:1,deny\"\n",
    )
    .unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    let program = crate::compile(&set).unwrap();
    let verdict = program.inspect(&crate::Request::builder().build());
    let targets: Vec<&str> = verdict.matches[0]
        .values
        .iter()
        .map(|v| v.target.as_str())
        .collect();
    assert_eq!(targets, ["TX:a_1", "TX:b_2", "TX:c_3"]);
}
