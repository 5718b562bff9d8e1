//! The document as the serving model makes it: the request bodies follow the model's own schema
//! (feature names in model order, kinds, ranges, case rules, vocabularies), so a client or a
//! fuzzer reading `/openapi.json` sends what this model takes, whatever its features.
//!
//! The compiled-in document ([`super::document`]) carries the lab's examples, written for the
//! default model and checked against it to the last digit. For that model they stay; for any
//! other they would not be true, so the examples of `POST /predict` and of v2 infer are made
//! from the model's own golden rows and its answers to them (one model call, once per model),
//! the documented version and model name are replaced by the live ones, and every other
//! example naming a feature this model does not have is left out.
//!
//! Generic code: the feature names here come from the model's `info` or from the document's
//! own examples, never from a list of columns.

use serde_json::{Map, Value, json};

use modelhost_abi::info::{CaseRule, FeatureKind, FeatureSpec, GoldenValue};

use crate::model::Model;
use crate::model::response::PredictResponse;
use crate::model::schema::{MAX_CATEGORY_CHARS, prepare_row};

/// Golden rows the examples are made of: one for a single request, two for a batch.
const EXAMPLE_ROWS: usize = 2;

/// The lab's example ids, kept for every model.
const ONE_ID: &str = "req-001";
const BATCH_ID: &str = "batch-7";

/// What the compiled-in document's examples were written for: the version and model name its
/// `/predict` answer example names, and the fields of its request example.
struct Documented {
    version: String,
    name: String,
    features: Vec<String>,
}

fn documented(document: &Value) -> Documented {
    let predict = &document["paths"]["/predict"]["post"];
    let answer = &predict["responses"]["200"]["content"]["application/json"]["examples"]["one customer"]
        ["value"];
    let request =
        &predict["requestBody"]["content"]["application/json"]["examples"]["one customer"]["value"];
    let name = document["paths"]["/v2/models/{name}"]["get"]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "name")
        .and_then(|p| p["example"].as_str())
        .unwrap_or_default();
    Documented {
        version: answer["model_version"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        name: name.to_string(),
        features: request
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .filter(|k| k != "request_id")
            .collect(),
    }
}

/// The example rows of a model that is not the documented one: its first golden inputs, as a
/// request sends them, and the model's probability for each. Runs the model once; call it off
/// the async executor.
pub fn example_rows(model: &Model) -> Vec<(Map<String, Value>, f64)> {
    let info = model.info();
    let objects: Vec<Map<String, Value>> = info
        .golden
        .iter()
        .take(EXAMPLE_ROWS)
        .map(|pair| {
            info.features
                .iter()
                .zip(&pair.input)
                .map(|(feature, value)| (feature.name.clone(), request_value(feature, value)))
                .collect()
        })
        .collect();
    let mut matrix = Vec::new();
    for object in &objects {
        match prepare_row(info, object) {
            Ok(prepared) => matrix.extend(prepared.row),
            // The model's own golden rows passed its self-test, so this does not happen; an
            // example that would not be true is left out rather than shown.
            Err(_) => return Vec::new(),
        }
    }
    match model.predict(&matrix) {
        Ok(probabilities) => objects.into_iter().zip(probabilities).collect(),
        Err(_) => Vec::new(),
    }
}

/// A golden value as a request would send it: whole numbers as JSON integers for an integer
/// feature.
fn request_value(feature: &FeatureSpec, value: &GoldenValue) -> Value {
    match (value, &feature.kind) {
        (GoldenValue::Number(x), FeatureKind::Integer { .. })
            if x.fract() == 0.0 && x.abs() < 9.0e15 =>
        {
            json!(*x as i64)
        }
        (GoldenValue::Number(x), _) => json!(x),
        (GoldenValue::Category(s), _) => json!(s),
    }
}

/// A bound as JSON: an integer when it is whole, so `0` reads as the lab's `0`.
fn bound(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// The JSON Schema of one feature's value in a `/predict` body.
pub fn feature_schema(feature: &FeatureSpec) -> Value {
    match &feature.kind {
        FeatureKind::Integer { min, max } => json!({
            "type": "integer", "format": "int64", "maximum": bound(*max), "minimum": bound(*min)
        }),
        FeatureKind::Number { min, max } => json!({
            "type": "number", "format": "double", "maximum": bound(*max), "minimum": bound(*min)
        }),
        FeatureKind::Categorical { vocabulary, case } => {
            let rule = match case {
                CaseRule::Lower => "Trimmed and lower-cased",
                CaseRule::Upper => "Trimmed and upper-cased",
                CaseRule::Keep => "Trimmed",
            };
            let words: Vec<String> = vocabulary.iter().map(|w| format!("`{w}`")).collect();
            let trained = match words.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
                None => String::new(),
            };
            json!({
                "type": "string",
                "description": format!("{rule}; trained on {trained}, others are accepted."),
                "maxLength": MAX_CATEGORY_CHARS
            })
        }
    }
}

/// `document` for `model`, served as `model_name`; `rows` are [`example_rows`] (used only when
/// the model is not the one the document's examples were written for).
pub fn for_model(
    mut document: Value,
    model: &Model,
    model_name: &str,
    rows: &[(Map<String, Value>, f64)],
) -> Value {
    let info = model.info();
    let schemas = &mut document["components"]["schemas"];
    let request = &mut schemas["PredictRequest"];
    let mut properties = Map::new();
    properties.insert(
        "request_id".to_string(),
        request["properties"]["request_id"].take(),
    );
    for feature in &info.features {
        properties.insert(feature.name.clone(), feature_schema(feature));
    }
    request["properties"] = Value::Object(properties);
    request["required"] = json!(info.features.iter().map(|f| &f.name).collect::<Vec<_>>());
    schemas["InferRequest"]["properties"]["inputs"] =
        serde_json::to_value(super::schemas::infer_inputs_for(&info.features))
            .expect("the inputs schema serialises");

    let documented = documented(&document);
    let names: Vec<&str> = info.features.iter().map(|f| f.name.as_str()).collect();
    if model.version() == documented.version && names == documented.features {
        return document;
    }
    let missing: Vec<String> = documented
        .features
        .iter()
        .filter(|f| !names.contains(&f.as_str()))
        .flat_map(|f| [format!("\"{f}\""), format!("`{f}`")])
        .collect();
    let renames = [
        (documented.version.as_str(), model.version()),
        (documented.name.as_str(), model_name),
    ];
    rewrite_examples(&mut document, &missing, &renames);
    if !rows.is_empty() {
        add_examples(&mut document, model, model_name, rows);
    }
    document
}

/// In every `example` and `examples` of the document: leaves out those that name one of
/// `missing` (feature names, quoted as JSON or in backticks as in error messages), and replaces each string equal to a `renames` source.
fn rewrite_examples(value: &mut Value, missing: &[String], renames: &[(&str, &str)]) {
    match value {
        Value::Object(object) => {
            for key in ["example", "examples"] {
                let drop = object.get(key).is_some_and(|example| {
                    let text = example.to_string();
                    missing.iter().any(|name| text.contains(name.as_str()))
                });
                if drop {
                    object.remove(key);
                } else if let Some(example) = object.get_mut(key) {
                    rename(example, renames);
                }
            }
            for (key, child) in object.iter_mut() {
                if key != "example" && key != "examples" {
                    rewrite_examples(child, missing, renames);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_examples(item, missing, renames)),
        _ => {}
    }
}

fn rename(value: &mut Value, renames: &[(&str, &str)]) {
    match value {
        Value::String(s) => {
            if let Some((_, to)) = renames
                .iter()
                .find(|(from, _)| !from.is_empty() && s == from)
            {
                *s = to.to_string();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename(v, renames)),
        Value::Object(object) => object.values_mut().for_each(|v| rename(v, renames)),
        _ => {}
    }
}

/// `POST /models/{name}/predict` has `/predict`'s contract: it documents `/predict`'s examples
/// (its path's example name is the default model's).
pub fn mirror_predict_examples(document: &mut Value) {
    const JSON: &str = "application/json";
    let predict = document["paths"]["/predict"]["post"].clone();
    let named = &mut document["paths"]["/models/{name}/predict"]["post"];
    named["requestBody"]["content"][JSON]["examples"] =
        predict["requestBody"]["content"][JSON]["examples"].clone();
    named["responses"]["200"]["content"][JSON]["examples"] =
        predict["responses"]["200"]["content"][JSON]["examples"].clone();
}

/// The examples of `/predict` (one row and a batch) and of v2 infer, from `rows` and the
/// model's answers to them, built as the handlers build their answers.
fn add_examples(
    document: &mut Value,
    model: &Model,
    model_name: &str,
    rows: &[(Map<String, Value>, f64)],
) {
    let answer = |id: String, (object, probability): &(Map<String, Value>, f64)| {
        let features = prepare_row(model.info(), object)
            .map(|prepared| prepared.features)
            .unwrap_or_default();
        serde_json::to_value(PredictResponse::new(
            model,
            id,
            *probability,
            0.000349,
            features,
        ))
        .expect("an answer serialises")
    };
    let mut one = rows[0].0.clone();
    one.insert("request_id".to_string(), json!(ONE_ID));
    let one = Value::Object(one);
    let one_answer = answer(ONE_ID.to_string(), &rows[0]);
    let batch = json!({
        "request_id": BATCH_ID,
        "instances": rows.iter().map(|(object, _)| object).collect::<Vec<_>>(),
    });
    let batch_answer = json!({"predictions": rows
        .iter()
        .enumerate()
        .map(|(i, row)| answer(format!("{BATCH_ID}/{i}"), row))
        .collect::<Vec<_>>()});

    let predict = &mut document["paths"]["/predict"]["post"];
    predict["requestBody"]["content"]["application/json"]["examples"] = json!({
        "one customer": {"value": one}, "a batch": {"value": batch}
    });
    predict["responses"]["200"]["content"]["application/json"]["examples"] = json!({
        "one customer": {"value": one_answer}, "a batch": {"value": batch_answer}
    });
    mirror_predict_examples(document);
    let schemas = &mut document["components"]["schemas"];
    schemas["PredictRequest"]["example"] = one;
    schemas["BatchRequest"]["example"] = batch;
    schemas["PredictResponse"]["example"] = one_answer;

    let (object, probability) = &rows[0];
    let inputs: Vec<Value> = model
        .info()
        .features
        .iter()
        .map(|feature| {
            json!({
                "name": feature.name, "shape": [1],
                "datatype": crate::http::oip::datatype_of(&feature.kind),
                "data": [object[&feature.name]],
            })
        })
        .collect();
    schemas["InferRequest"]["example"] = json!({"id": ONE_ID, "inputs": inputs});
    schemas["InferResponse"]["example"] = json!({
        "model_name": model_name, "model_version": model.version(), "id": ONE_ID,
        "outputs": [
            {"name": "probability", "datatype": "FP64", "shape": [1], "data": [probability]},
            {"name": "prediction", "datatype": "INT64", "shape": [1], "data": [model.decide(*probability)]}
        ]
    });
}
