//! Request validation against a model's input schema, shared by every model and every route.
//!
//! A JSON object becomes one matrix row (numbers as given, categories as vocabulary indices,
//! unknown ⇒ −1) plus the normalised features echoed in the response and the prediction log.
//! Every problem is reported with the field it concerns; fields the schema does not name are
//! ignored, as the lab's API ignores them.

use modelhost_abi::UNKNOWN_CATEGORY;
use modelhost_abi::info::{FeatureKind, GoldenValue, ModelInfo};
use serde_json::{Map, Number, Value};

/// Longest category value a request may send, in characters.
pub const MAX_CATEGORY_CHARS: usize = 256;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldError {
    /// The field at fault.
    pub field: String,
    /// A short machine-readable kind: `missing`, `type`, `range`, `not_finite`.
    pub kind: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

impl FieldError {
    /// An error about `field` of the given kind (`type`, `range`, `missing`, …).
    pub(crate) fn new(field: &str, kind: &'static str, message: String) -> Self {
        FieldError {
            field: field.to_string(),
            kind,
            message,
        }
    }
}

/// A validated request row.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRow {
    /// One value per schema feature, in schema order.
    pub row: Vec<f64>,
    /// The normalised inputs, in schema order, as they are echoed back.
    pub features: Map<String, Value>,
}

/// Why a request body cannot be read as a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyError {
    /// Not JSON (or JSON nested deeper than the parser allows).
    Malformed(String),
    /// JSON, but not an object; the message names what it is.
    NotAnObject(String),
    /// Valid JSON whose fields hold numbers no `f64` can represent (`1e999`), by field.
    NotFinite(Vec<FieldError>),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Malformed(message) | BodyError::NotAnObject(message) => f.write_str(message),
            BodyError::NotFinite(errors) => {
                let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
                f.write_str(&messages.join("; "))
            }
        }
    }
}

/// Reads a request body as one JSON object.
///
/// `1e999` is valid JSON, but the parser refuses it as if it were a syntax error; such a body is
/// read again field by field so the error names the fields at fault, as for any other value a
/// schema cannot take.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, BodyError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(BodyError::NotAnObject(format!(
            "request body must be a JSON object, got {}",
            type_name(&other)
        ))),
        Err(error) => Err(not_finite_fields(body)
            .unwrap_or_else(|| BodyError::Malformed(format!("malformed JSON: {error}")))),
    }
}

/// The top-level fields of a JSON object whose values hold a number beyond `f64`, if the body
/// is an otherwise valid object and there are any.
fn not_finite_fields(body: &[u8]) -> Option<BodyError> {
    let fields: std::collections::BTreeMap<String, Box<serde_json::value::RawValue>> =
        serde_json::from_slice(body).ok()?;
    let errors: Vec<FieldError> = fields
        .iter()
        .filter(|(_, raw)| {
            // Only a number out of range; a value nested too deep stays a malformed body.
            serde_json::from_str::<Value>(raw.get())
                .is_err_and(|e| e.to_string().starts_with("number out of range"))
        })
        .map(|(name, raw)| {
            let message = if raw.get().len() <= 40 {
                format!("field `{name}` must be a finite number, got {}", raw.get())
            } else {
                format!("field `{name}` holds a number too large to represent")
            };
            FieldError::new(name, "not_finite", message)
        })
        .collect();
    (!errors.is_empty()).then_some(BodyError::NotFinite(errors))
}

/// Validates `object` against the schema in `info`. All field errors are returned at once.
pub fn prepare_row(
    info: &ModelInfo,
    object: &Map<String, Value>,
) -> Result<PreparedRow, Vec<FieldError>> {
    let mut row = Vec::with_capacity(info.features.len());
    let mut features = Map::with_capacity(info.features.len());
    let mut errors = Vec::new();
    for spec in &info.features {
        let name = spec.name.as_str();
        let Some(value) = object.get(name).filter(|v| !v.is_null()) else {
            errors.push(FieldError::new(
                name,
                "missing",
                format!("field `{name}` is required"),
            ));
            continue;
        };
        match prepare_value(name, &spec.kind, value) {
            Ok((x, echoed)) => {
                row.push(x);
                features.insert(name.to_string(), echoed);
            }
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(PreparedRow { row, features })
    } else {
        Err(errors)
    }
}

/// Encodes one golden row (the artifact builder's and the load-time self-test's) exactly as a
/// request with those values is encoded: the same checks, ranges and normalisation, so a
/// self-test that passes has exercised the request path. Errors name the field.
pub fn prepare_golden(info: &ModelInfo, input: &[GoldenValue]) -> Result<Vec<f64>, String> {
    if input.len() != info.features.len() {
        return Err(format!(
            "{} values for {} features",
            input.len(),
            info.features.len()
        ));
    }
    let mut object = Map::with_capacity(input.len());
    for (value, spec) in input.iter().zip(&info.features) {
        let value = match value {
            GoldenValue::Number(x) => Number::from_f64(*x).map_or(Value::Null, Value::Number),
            GoldenValue::Category(word) => Value::String(word.clone()),
        };
        object.insert(spec.name.clone(), value);
    }
    prepare_row(info, &object)
        .map(|prepared| prepared.row)
        .map_err(|errors| {
            errors
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("; ")
        })
}

fn prepare_value(
    name: &str,
    kind: &FeatureKind,
    value: &Value,
) -> Result<(f64, Value), FieldError> {
    match kind {
        FeatureKind::Integer { min, max } => {
            let x = number(name, value, "an integer")?;
            if x.fract() != 0.0 {
                return Err(FieldError::new(
                    name,
                    "type",
                    format!("field `{name}` must be an integer, got {x}"),
                ));
            }
            check_range(name, x, *min, *max)?;
            Ok((x, Value::Number(Number::from(x as i64))))
        }
        FeatureKind::Number { min, max } => {
            let x = number(name, value, "a number")?;
            check_range(name, x, *min, *max)?;
            let echoed = Number::from_f64(x).map_or(Value::Null, Value::Number);
            Ok((x, echoed))
        }
        FeatureKind::Categorical { vocabulary, case } => {
            let Value::String(raw) = value else {
                return Err(FieldError::new(
                    name,
                    "type",
                    format!("field `{name}` must be a string, got {}", type_name(value)),
                ));
            };
            // Characters, as the OpenAPI document's `maxLength` counts them.
            if raw.chars().count() > MAX_CATEGORY_CHARS {
                return Err(FieldError::new(
                    name,
                    "range",
                    format!("field `{name}` is longer than {MAX_CATEGORY_CHARS} characters"),
                ));
            }
            let word = case.apply(raw);
            let index = vocabulary
                .iter()
                .position(|v| *v == word)
                .map_or(UNKNOWN_CATEGORY, |i| i as f64);
            Ok((index, Value::String(word)))
        }
    }
}

fn number(name: &str, value: &Value, expected: &str) -> Result<f64, FieldError> {
    match value {
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
            FieldError::new(
                name,
                "not_finite",
                format!("field `{name}` must be a finite number"),
            )
        }),
        other => Err(FieldError::new(
            name,
            "type",
            format!(
                "field `{name}` must be {expected}, got {}",
                type_name(other)
            ),
        )),
    }
}

fn check_range(name: &str, x: f64, min: f64, max: f64) -> Result<(), FieldError> {
    if (min..=max).contains(&x) {
        Ok(())
    } else {
        Err(FieldError::new(
            name,
            "range",
            format!("field `{name}` must be between {min} and {max}, got {x}"),
        ))
    }
}

/// "a number", "a string", …: how errors name a JSON value's type.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelhost_abi::info::{CaseRule, FeatureSpec};
    use serde_json::json;

    fn info() -> ModelInfo {
        serde_json::from_value(json!({
            "name": "churn", "version": "t", "task": "binary-classification",
            "features": [
                {"name": "tenure_months", "kind": "integer", "min": 0, "max": 200},
                {"name": "avg_session_minutes", "kind": "number", "min": 0, "max": 500},
                {"name": "region", "kind": "categorical", "vocabulary": ["AF", "EU"], "case": "upper"}
            ],
            "outputs": ["probability"], "threshold": 0.5, "golden": []
        }))
        .unwrap()
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_valid_request_becomes_a_row_and_normalised_features() {
        let prepared = prepare_row(
            &info(),
            &object(json!({"tenure_months": 6.0, "avg_session_minutes": 12.5, "region": " eu ", "extra": 1})),
        )
        .unwrap();
        assert_eq!(prepared.row, vec![6.0, 12.5, 1.0]);
        assert_eq!(
            Value::Object(prepared.features).to_string(),
            r#"{"tenure_months":6,"avg_session_minutes":12.5,"region":"EU"}"#
        );
    }

    #[test]
    fn unknown_categories_are_encoded_as_minus_one() {
        let prepared = prepare_row(
            &info(),
            &object(json!({"tenure_months": 1, "avg_session_minutes": 1, "region": "Mars"})),
        )
        .unwrap();
        assert_eq!(prepared.row[2], UNKNOWN_CATEGORY);
        assert_eq!(prepared.features["region"], "MARS");
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = prepare_row(
            &info(),
            &object(json!({"tenure_months": 6.5, "avg_session_minutes": 501, "region": 3})),
        )
        .unwrap_err();
        let named: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.kind)).collect();
        assert_eq!(
            named,
            [
                ("tenure_months", "type"),
                ("avg_session_minutes", "range"),
                ("region", "type")
            ]
        );
        let errors = prepare_row(&info(), &object(json!({"tenure_months": "6"}))).unwrap_err();
        assert_eq!(errors.len(), 3);
        assert_eq!(errors[1].kind, "missing");
        assert!(errors[1].message.contains("avg_session_minutes"));
    }

    #[test]
    fn bodies_that_are_not_objects_are_told_apart() {
        assert!(
            matches!(parse_object(b"{not json"), Err(BodyError::Malformed(m)) if m.starts_with("malformed JSON"))
        );
        assert!(matches!(parse_object(b""), Err(BodyError::Malformed(_))));
        assert!(matches!(parse_object(b"NaN"), Err(BodyError::Malformed(_))));
        assert_eq!(
            parse_object(b"[1, 2]"),
            Err(BodyError::NotAnObject(
                "request body must be a JSON object, got an array".into()
            ))
        );
        let deep = "[".repeat(100_000);
        assert!(matches!(
            parse_object(deep.as_bytes()),
            Err(BodyError::Malformed(_))
        ));
        let deep = format!(r#"{{"a": {}1{}}}"#, "[".repeat(1000), "]".repeat(1000));
        assert!(
            matches!(parse_object(deep.as_bytes()), Err(BodyError::Malformed(m)) if m.contains("recursion"))
        );
        assert_eq!(parse_object(br#"{"a": 1}"#).unwrap()["a"], 1);
    }

    #[test]
    fn numbers_beyond_f64_name_their_field() {
        let Err(BodyError::NotFinite(errors)) =
            parse_object(br#"{"tenure_months": 1e999, "region": "EU", "x": [-1e400]}"#)
        else {
            panic!("expected a field error");
        };
        let named: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.kind)).collect();
        assert_eq!(
            named,
            [("tenure_months", "not_finite"), ("x", "not_finite")]
        );
        assert_eq!(
            errors[0].message,
            "field `tenure_months` must be a finite number, got 1e999"
        );
        // Still malformed when something else is wrong too.
        assert!(matches!(
            parse_object(br#"{"tenure_months": 1e999,"#),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    fn case_rule_is_taken_from_the_schema() {
        let mut info = info();
        info.features[2] = FeatureSpec {
            name: "region".into(),
            kind: FeatureKind::Categorical {
                vocabulary: vec!["af".into()],
                case: CaseRule::Lower,
            },
        };
        let prepared = prepare_row(
            &info,
            &object(json!({"tenure_months": 0, "avg_session_minutes": 0, "region": "AF"})),
        )
        .unwrap();
        assert_eq!(prepared.row[2], 0.0);
    }

    #[test]
    fn golden_rows_are_encoded_and_checked_exactly_like_requests() {
        let info = info();
        let golden = [
            GoldenValue::Number(6.0),
            GoldenValue::Number(12.5),
            GoldenValue::Category(" eu ".to_string()),
        ];
        let request = prepare_row(
            &info,
            &object(json!({"tenure_months": 6, "avg_session_minutes": 12.5, "region": " eu "})),
        )
        .unwrap();
        assert_eq!(prepare_golden(&info, &golden).unwrap(), request.row);

        // The range and kind checks of the request path apply to golden rows too.
        let out_of_range = [
            GoldenValue::Number(6.5),
            GoldenValue::Number(501.0),
            GoldenValue::Category("AF".to_string()),
        ];
        let problem = prepare_golden(&info, &out_of_range).unwrap_err();
        assert!(
            problem.contains("`tenure_months` must be an integer"),
            "{problem}"
        );
        assert!(
            problem.contains("`avg_session_minutes` must be between 0 and 500"),
            "{problem}"
        );
        let problem = prepare_golden(&info, &golden[..2]).unwrap_err();
        assert_eq!(problem, "2 values for 3 features");
    }
}
