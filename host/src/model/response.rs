//! The lab's `/predict` answer, shared by the HTTP handler and batch scoring (`modelhost
//! predict`), so that one scored row looks the same whichever way it was asked for.
//!
//! This module only shapes the answer: validation is [`schema`](super::schema), scoring is
//! [`Model::predict`](super::Model::predict).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};

use super::Model;
use super::schema::FieldError;

/// Longest id a caller may give a prediction, in characters: `/predict`'s `request_id` and the
/// v2 `id` alike. The id is echoed in the answer and written to every prediction-log line, so it
/// is bounded; characters (not bytes) because that is what the OpenAPI document's `maxLength`
/// counts.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The lab's response, fields in the lab's order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictResponse {
    pub request_id: String,
    pub model_version: String,
    pub prediction: u8,
    pub probability: f64,
    pub latency_ms: f64,
    pub features: Map<String, Value>,
    pub ts: u64,
}

impl PredictResponse {
    /// The answer for one row: the prediction by the model's threshold, the probability rounded
    /// to 6 decimals and the latency (in seconds) to 3 decimals of a millisecond.
    pub fn new(
        model: &Model,
        request_id: String,
        probability: f64,
        latency_seconds: f64,
        features: Map<String, Value>,
    ) -> Self {
        PredictResponse {
            request_id,
            model_version: model.version().to_string(),
            prediction: model.decide(probability),
            probability: round_to(probability, 6),
            latency_ms: round_to(latency_seconds * 1000.0, 3),
            features,
            ts: epoch_seconds(),
        }
    }
}

/// The caller's `request_id`, if it gave one: absent or null ⇒ `None`; otherwise it must be a
/// string of 1 to [`MAX_REQUEST_ID_LEN`] characters.
pub fn request_id(object: &Map<String, Value>) -> Result<Option<String>, FieldError> {
    match object.get("request_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if is_valid_id(id) => Ok(Some(id.clone())),
        Some(_) => Err(FieldError::new(
            "request_id",
            "type",
            id_bound("request_id"),
        )),
    }
}

/// Whether `id` is within the bound every caller-given prediction id has: 1 to
/// [`MAX_REQUEST_ID_LEN`] characters.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= MAX_REQUEST_ID_LEN
}

/// The error for an id field out of bounds, naming the field.
pub fn id_bound(field: &str) -> String {
    format!("field `{field}` must be a string of 1-{MAX_REQUEST_ID_LEN} characters")
}

/// `value` rounded to `decimals` decimal places.
pub fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// Seconds since the Unix epoch.
pub fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_ids_are_optional_strings_of_bounded_length() {
        let object = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(request_id(&object(json!({}))).unwrap(), None);
        assert_eq!(
            request_id(&object(json!({"request_id": null}))).unwrap(),
            None
        );
        assert_eq!(
            request_id(&object(json!({"request_id": "a"}))).unwrap(),
            Some("a".to_string())
        );
        let longest = "é".repeat(MAX_REQUEST_ID_LEN);
        assert_eq!(
            request_id(&object(json!({ "request_id": longest }))).unwrap(),
            Some(longest),
            "the bound counts characters, as the document's maxLength does"
        );
        for bad in [json!(""), json!(7), json!("x".repeat(129))] {
            let error = request_id(&object(json!({ "request_id": bad }))).unwrap_err();
            assert_eq!(error.field, "request_id");
        }
    }

    #[test]
    fn rounding_keeps_the_requested_decimals() {
        assert_eq!(round_to(0.123_456_789, 6), 0.123457);
        assert_eq!(round_to(1.23449, 3), 1.234);
    }
}
