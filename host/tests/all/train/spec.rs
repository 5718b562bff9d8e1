//! `train --spec FILE`: a model that is not churn, trained through the real binary on a CSV
//! with other column names, served, and described by `/model` and `/openapi.json` as its spec
//! says; bad specs exit 64 naming the file, feature and field, and write nothing.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{cli, snapshot, train_passing};
use crate::common::{base_url, eventually, start_server_with};

/// A fraud model: other target, other columns, every kind and rule a spec can state.
const FRAUD_SPEC: &str = r#"
target = "fraud"

[gate]
f1_min = 0.0

[[features]]
name = "amount"
kind = "number"
min = 0
max = 5000
clip_min = 0

[[features]]
name = "country"
kind = "categorical"
case = "upper"

[[features]]
name = "visits"
kind = "integer"
min = 0
max = 100

[[features]]
name = "channel"
kind = "auto"
"#;

/// 400 deterministic rows with a learnable signal; a few amounts negative (clipped to 0) and
/// countries in mixed case (upper-cased).
fn fraud_csv(path: &Path) {
    let mut text = String::from("visits,channel,amount,country,fraud,ignored\n");
    let countries = ["us", "De", " fr ", "US"];
    for i in 0..400u32 {
        let amount = f64::from((i * 37) % 1000) + 0.25 - if i % 50 == 0 { 1200.0 } else { 0.0 };
        let visits = i % 20;
        let channel = if i % 3 == 0 { "app" } else { "web" };
        let fraud = u8::from(amount > 600.0 || visits > 16);
        let country = countries[(i % 4) as usize];
        text.push_str(&format!(
            "{visits},{channel},{amount},{country},{fraud},x\n"
        ));
    }
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn a_spec_trains_a_model_on_other_columns_and_the_server_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, data, registry) = (
        dir.path().join("fraud.toml"),
        dir.path().join("fraud.csv"),
        dir.path().join("registry"),
    );
    std::fs::write(&spec, FRAUD_SPEC).unwrap();
    fraud_csv(&data);
    let run = cli([
        "train",
        "--registry-dir",
        registry.to_str().unwrap(),
        "--model-name",
        "fraud",
        "--spec",
        spec.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let outcome = run.json();
    assert_eq!(outcome["gate"]["f1_min"], 0.0, "the spec's gate");
    let mut names: Vec<&str> = outcome["data"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["amount", "channel", "country", "visits"],
        "`ignored` is dropped"
    );

    let server = start_server_with(&registry, &[("model_name", "fraud")]).await;
    let url = base_url(&server);
    let ready = eventually(Duration::from_secs(10), || async {
        reqwest::get(format!("{url}/ready")).await.unwrap().status() == StatusCode::OK
    })
    .await;
    assert!(ready, "the fraud model never served");
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let request = client.get(format!("{url}{path}"));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let post = |path: &str, body: Value| {
        let request = client.post(format!("{url}{path}")).json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };

    // The served schema is the spec's: kinds, ranges, case rules; the vocabulary the data's.
    let model = get("/model").await;
    let schema = &model["schema"];
    assert_eq!(
        schema[0],
        json!({"name": "amount", "kind": "number", "min": 0.0, "max": 5000.0})
    );
    assert_eq!(
        schema[1],
        json!({"name": "country", "kind": "categorical", "vocabulary": ["DE", "FR", "US"], "case": "upper"})
    );
    assert_eq!(
        schema[2],
        json!({"name": "visits", "kind": "integer", "min": 0.0, "max": 100.0})
    );
    assert_eq!(
        schema[3],
        json!({"name": "channel", "kind": "categorical", "vocabulary": ["app", "web"], "case": "keep"})
    );
    assert_eq!(
        schema.as_array().unwrap().len(),
        4,
        "`ignored` is no feature"
    );

    // Requests are validated and normalised by it.
    let row = json!({"amount": 700.5, "country": " de ", "visits": 3, "channel": "web"});
    let (status, answer) = post("/predict", row.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["features"]["country"], "DE");
    let mut too_big = row.clone();
    too_big["amount"] = json!(5000.5);
    let (status, error) = post("/predict", too_big).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["detail"][0]["field"], "amount", "{error}");
    let mut fraction = row;
    fraction["visits"] = json!(2.5);
    let (status, _) = post("/predict", fraction).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "visits is an integer"
    );

    // The OpenAPI document describes this model's body, not the churn lab's.
    let document = get("/openapi.json").await;
    let request = &document["components"]["schemas"]["PredictRequest"];
    let fields: Vec<&String> = request["properties"].as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        ["request_id", "amount", "country", "visits", "channel"]
    );
    assert_eq!(
        request["required"],
        json!(["amount", "country", "visits", "channel"])
    );
    assert_eq!(request["properties"]["amount"]["maximum"], 5000);
    assert_eq!(request["properties"]["visits"]["type"], "integer");
    assert_eq!(
        request["properties"]["country"]["description"],
        "Trimmed and upper-cased; trained on `DE`, `FR` and `US`, others are accepted."
    );
    let inputs = &document["components"]["schemas"]["InferRequest"]["properties"]["inputs"];
    assert_eq!(inputs["minItems"], 4);
    let text = document.to_string();
    for churn in ["tenure_months", "plan_type", "v2eea169a56b4"] {
        assert!(!text.contains(churn), "the document still names {churn}");
    }

    // And every example it carries is what this model answers.
    let checked = crate::oip::openapi::check_every_example(&url).await;
    for expected in crate::oip::openapi::CHECKED_FOR_EVERY_MODEL {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected} unchecked: {checked:?}"
        );
    }
}

#[test]
fn a_bad_spec_exits_64_naming_file_feature_and_field_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    train_passing(&registry, 1);
    let before = snapshot(&registry);
    let cases = [
        (
            FRAUD_SPEC.replace("clip_min = 0", "clip_below = 0"),
            ":12:1: feature `amount`: unknown field `clip_below`",
        ),
        (
            FRAUD_SPEC.replace("max = 100", "max = -100"),
            ":19:1: feature `visits`: field `max`: must be above `min` (-100 <= 0)",
        ),
        (
            FRAUD_SPEC.replace("case = \"upper\"", "case = \"title\""),
            ":17:8: feature `country`: unknown variant `title`",
        ),
        (
            FRAUD_SPEC.replace("f1_min = 0.0", "f1_min = 2"),
            ":4:1: gate: field `f1_min`: must be from 0 to 1, got 2",
        ),
    ];
    let train_with = |spec: &Path| {
        cli([
            "train",
            "--registry-dir",
            registry.to_str().unwrap(),
            "--spec",
            spec.to_str().unwrap(),
            "--synthetic",
            "200",
        ])
    };
    for (text, expected) in cases {
        let spec = dir.path().join("bad.toml");
        std::fs::write(&spec, &text).unwrap();
        let run = train_with(&spec);
        assert_eq!(run.code, Some(64), "{expected}: {run:?}");
        let line = format!("modelhost: spec {}{expected}", spec.display());
        assert!(run.stderr.starts_with(&line), "{line}\n{}", run.stderr);
        assert!(
            snapshot(&registry) == before,
            "{expected}: the registry changed"
        );
    }

    // A valid spec whose features the lab's generator does not make is a data error.
    let spec = dir.path().join("fraud.toml");
    std::fs::write(&spec, FRAUD_SPEC).unwrap();
    let run = train_with(&spec);
    assert_eq!(run.code, Some(65), "{run:?}");
    assert!(
        run.stderr.contains("not the spec's feature `amount`"),
        "{}",
        run.stderr
    );
    assert!(snapshot(&registry) == before);
}
