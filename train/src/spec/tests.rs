use super::*;

/// A small valid spec other tests break one field of.
const GOOD: &str = r#"
target = "fraud"

[gate]
f1_min = 0.5

[[features]]
name = "amount"
kind = "number"
min = 0
max = 10000
clip_min = 0

[[features]]
name = "country"
kind = "categorical"
case = "upper"
"#;

fn error(text: &str) -> String {
    ModelSpec::parse(text, "bad.toml").unwrap_err().to_string()
}

#[test]
fn the_committed_churn_spec_says_what_the_lab_says() {
    let spec = ModelSpec::churn();
    assert_eq!(spec.target, crate::CHURN_TARGET);
    assert_eq!(spec.names(), crate::CHURN_FEATURES);
    assert_eq!(spec.gate.f1_min, 0.70);
    let range = |name| spec.feature(name).unwrap().range();
    assert_eq!(range("tenure_months"), Some((0.0, 200.0)));
    assert_eq!(range("num_complaints"), Some((0.0, 50.0)));
    assert_eq!(range("avg_session_minutes"), Some((0.0, 500.0)));
    let minutes = spec.feature("avg_session_minutes").unwrap();
    assert_eq!((minutes.clip(-4.0), minutes.clip(12.5)), (0.0, 12.5));
    let tenure = spec.feature("tenure_months").unwrap();
    assert_eq!(tenure.clip(-4.0), -4.0, "only minutes are clipped");
    assert_eq!(
        spec.feature("plan_type").unwrap().case_rule(),
        CaseRule::Lower
    );
    assert_eq!(spec.feature("region").unwrap().case_rule(), CaseRule::Upper);
    let overrides = spec.kind_overrides();
    assert_eq!(
        overrides.numeric,
        ["tenure_months", "num_complaints", "avg_session_minutes"]
    );
    assert_eq!(overrides.categorical, ["plan_type", "region"]);
}

#[test]
fn a_valid_spec_reads() {
    let spec = ModelSpec::parse(GOOD, "good.toml").unwrap();
    assert_eq!(spec.target, "fraud");
    assert_eq!(spec.names(), ["amount", "country"]);
    assert_eq!(spec.features[0].kind, SpecKind::Number);
    assert_eq!(spec.features[1].case_rule(), CaseRule::Upper);
}

#[test]
fn syntax_and_unknown_fields_name_the_file_line_column_and_feature() {
    let typo = GOOD.replace("clip_min = 0", "clip_minimum = 0");
    let message = error(&typo);
    assert!(
        message.starts_with("spec bad.toml:12:1: feature `amount`: unknown field `clip_minimum`"),
        "{message}"
    );
    let message = error(&GOOD.replace("[gate]", "colour = \"red\"\n[gate]"));
    assert!(
        message.starts_with("spec bad.toml:4:1: unknown field `colour`"),
        "{message}"
    );
    let message = error(&GOOD.replace("kind = \"number\"", "kind = \"float\""));
    assert!(
        message.starts_with("spec bad.toml:9:8: feature `amount`: unknown variant `float`"),
        "{message}"
    );
    let message = error(&GOOD.replace("max = 10000", "max = \"lots\""));
    assert!(
        message.starts_with("spec bad.toml:11:7: feature `amount`: invalid type"),
        "{message}"
    );
    let message = error("target = \"x\"\n[gate\nf1_min = 1\n");
    assert!(message.starts_with("spec bad.toml:2:6: "), "{message}");
    let message = error(&GOOD.replace("[gate]\nf1_min = 0.5\n", ""));
    assert!(message.contains("missing field `gate`"), "{message}");
}

#[test]
fn invalid_values_name_the_feature_and_field() {
    let cases = [
        (
            GOOD.replace("max = 10000", "max = -1"),
            "spec bad.toml:7:1: feature `amount`: field `max`: must be above `min` (-1 <= 0)",
        ),
        (
            GOOD.replace("max = 10000\n", ""),
            "spec bad.toml:7:1: feature `amount`: field `max`: is required with `min`",
        ),
        (
            GOOD.replace("case = \"upper\"", "case = \"upper\"\nmin = 1\nmax = 2"),
            "spec bad.toml:14:1: feature `country`: field `min`: applies only to numeric kinds, not Categorical",
        ),
        (
            GOOD.replace("clip_min = 0", "case = \"lower\""),
            "spec bad.toml:7:1: feature `amount`: field `case`: applies only to categorical features, not Number",
        ),
        (
            GOOD.replace("clip_min = 0", "clip_min = nan"),
            "spec bad.toml:7:1: feature `amount`: field `clip_min`: must be finite, got NaN",
        ),
        (
            GOOD.replace("clip_min = 0", "clip_min = 5\nclip_max = 1"),
            "spec bad.toml:7:1: feature `amount`: field `clip_max`: must not be below `clip_min` (1 < 5)",
        ),
        (
            GOOD.replace("name = \"country\"", "name = \"amount\""),
            "spec bad.toml:14:1: feature `amount`: field `name`: is declared twice",
        ),
        (
            GOOD.replace("name = \"country\"", "name = \"fraud\""),
            "spec bad.toml:14:1: feature `fraud`: field `name`: is the target column",
        ),
        (
            GOOD.replace("name = \"country\"", "name = \" \""),
            "spec bad.toml:14:1: feature ` `: field `name`: must be 1-128 bytes",
        ),
        (
            GOOD.replace("f1_min = 0.5", "f1_min = 1.5"),
            "spec bad.toml:4:1: gate: field `f1_min`: must be from 0 to 1, got 1.5",
        ),
        (
            GOOD.replace("target = \"fraud\"", "target = \"\""),
            "spec bad.toml:2:10: field `target`: must be 1-128 bytes",
        ),
        (
            "target = \"x\"\nfeatures = []\n[gate]\nf1_min = 0\n".to_string(),
            "spec bad.toml:2:12: field `features`: must declare 1-4096 features, found 0",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(text, expected)| error(text) != *expected)
        .map(|(text, expected)| format!("expected {expected}\n     got {}", error(text)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn files_are_capped_and_errors_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.toml");
    std::fs::write(&big, " ".repeat(MAX_SPEC_BYTES as usize + 1)).unwrap();
    let message = ModelSpec::read(&big).unwrap_err().to_string();
    assert!(
        message.contains("big.toml: larger than 1048576 bytes"),
        "{message}"
    );
    let missing = dir.path().join("missing.toml");
    let message = ModelSpec::read(&missing).unwrap_err().to_string();
    assert!(message.contains("missing.toml: cannot read"), "{message}");
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, [0xff, 0xfe]).unwrap();
    let message = ModelSpec::read(&binary).unwrap_err().to_string();
    assert!(message.contains("binary.toml: not UTF-8"), "{message}");
}

#[test]
fn overrides_pick_features_and_change_kinds() {
    let spec = ModelSpec::churn()
        .with_overrides(&SpecOverrides {
            features: Some(vec!["region".into(), "tenure_months".into(), "zip".into()]),
            categorical: vec!["tenure_months".into()],
            gate_f1: Some(0.0),
            ..SpecOverrides::default()
        })
        .unwrap();
    assert_eq!(spec.names(), ["region", "tenure_months", "zip"]);
    assert_eq!(
        spec.features[0].case_rule(),
        CaseRule::Upper,
        "declared rules travel"
    );
    assert_eq!(spec.features[1].kind, SpecKind::Categorical);
    assert_eq!(spec.features[1].range(), None);
    assert_eq!(spec.features[2], FeatureRule::inferred("zip"));
    assert_eq!(spec.gate.f1_min, 0.0);
    let twice = SpecOverrides {
        features: Some(vec!["a".into(), "a".into()]),
        ..SpecOverrides::default()
    };
    assert_eq!(
        ModelSpec::churn()
            .with_overrides(&twice)
            .unwrap_err()
            .to_string(),
        "--features: `a` is named twice"
    );
    let target = SpecOverrides {
        target: Some("region".into()),
        ..SpecOverrides::default()
    };
    assert_eq!(
        ModelSpec::churn()
            .with_overrides(&target)
            .unwrap_err()
            .to_string(),
        "feature `region` is the target column"
    );
}

#[test]
fn every_cut_or_damaged_spec_is_an_error_naming_the_file_never_a_panic() {
    // Every prefix, every line left out and every byte replaced by a few hostile ones: each
    // parses or is refused with a message that starts with the file, and none panics.
    let text = CHURN_SPEC;
    let mut variants: Vec<String> = (0..text.len())
        .filter(|&i| text.is_char_boundary(i))
        .map(|i| text[..i].to_string())
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    for skip in 0..lines.len() {
        let kept: Vec<&str> = (0..lines.len())
            .filter(|&i| i != skip)
            .map(|i| lines[i])
            .collect();
        variants.push(kept.join("\n"));
    }
    for (i, c) in text.char_indices().step_by(7) {
        for hostile in ["\"", "[", "=", "\n", "é", "-1e999", "nan"] {
            let rest = &text[i + c.len_utf8()..];
            variants.push(format!("{}{hostile}{rest}", &text[..i]));
        }
    }
    for variant in &variants {
        if let Err(e) = ModelSpec::parse(variant, "cut.toml") {
            assert!(e.to_string().starts_with("spec cut.toml"), "{e}\n{variant}");
        }
    }
}
