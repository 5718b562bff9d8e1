//! A `ModelInferRequest`'s inputs as the per-feature columns the REST route builds: typed
//! contents in the field the datatype names (`int64_contents` for `INT64`, `bytes_contents` for
//! `BYTES`, ...), or `raw_input_contents` (little-endian, as Triton's binary tensors), read by
//! the same `oip::tensor` functions. Everything else — matching inputs to features, datatypes,
//! shapes against the element count — is `oip::feature_columns`, as for JSON.
//!
//! Nothing is allocated from a declared shape: the elements present (bounded by the message
//! size) are converted, then compared with the shape.

use serde_json::Value;

use super::inference::InferTensorContents;
use super::inference::ModelInferRequest;
use super::inference::model_infer_request::InferInputTensor;
use crate::http::oip;
use crate::http::oip::tensor::{self, Datatype};
use crate::model::Model;

oip::input_header!(InferInputTensor);

/// One column per feature from the request's inputs; the error names the input at fault.
pub fn input_columns(
    model: &Model,
    request: &ModelInferRequest,
) -> Result<Vec<Vec<Value>>, String> {
    let raw = &request.raw_input_contents;
    if !raw.is_empty() && raw.len() != request.inputs.len() {
        return Err(format!(
            "raw_input_contents holds {} entries for {} inputs; give every input's elements there, in input order, or none",
            raw.len(),
            request.inputs.len()
        ));
    }
    oip::feature_columns(model, &request.inputs, |position, input, datatype| {
        let name = input.name.as_str();
        let contents = input
            .contents
            .as_ref()
            .filter(|c| filled(c).next().is_some());
        match (raw.get(position), contents) {
            (Some(_), Some(_)) => Err(format!(
                "input `{name}` has both `contents` and an entry in `raw_input_contents`"
            )),
            (Some(bytes), None) => tensor::from_binary(name, datatype, bytes),
            (None, Some(contents)) => typed(name, &input.datatype, datatype, contents),
            // An empty tensor is the shape's business (a 0-row shape is refused later).
            (None, None) => Ok(Vec::new()),
        }
    })
}

/// The contents fields holding elements, by name.
fn filled(contents: &InferTensorContents) -> impl Iterator<Item = &'static str> {
    [
        ("bool_contents", contents.bool_contents.len()),
        ("int_contents", contents.int_contents.len()),
        ("int64_contents", contents.int64_contents.len()),
        ("uint_contents", contents.uint_contents.len()),
        ("uint64_contents", contents.uint64_contents.len()),
        ("fp32_contents", contents.fp32_contents.len()),
        ("fp64_contents", contents.fp64_contents.len()),
        ("bytes_contents", contents.bytes_contents.len()),
    ]
    .into_iter()
    .filter(|(_, len)| *len > 0)
    .map(|(field, _)| field)
}

/// The contents field the protocol gives a datatype's elements.
fn field_of(datatype: Datatype) -> &'static str {
    match datatype {
        Datatype::Int8 | Datatype::Int16 | Datatype::Int32 => "int_contents",
        Datatype::Int64 => "int64_contents",
        Datatype::Uint8 | Datatype::Uint16 | Datatype::Uint32 => "uint_contents",
        Datatype::Uint64 => "uint64_contents",
        Datatype::Fp32 => "fp32_contents",
        Datatype::Fp64 => "fp64_contents",
        Datatype::Bytes => "bytes_contents",
    }
}

fn typed(
    name: &str,
    shown: &str,
    datatype: Datatype,
    contents: &InferTensorContents,
) -> Result<Vec<Value>, String> {
    let field = field_of(datatype);
    if let Some(other) = filled(contents).find(|f| *f != field) {
        return Err(format!(
            "input `{name}` has datatype {shown}, whose elements go in `{field}`, but holds `{other}`"
        ));
    }
    let c = contents;
    Ok(match datatype {
        Datatype::Int8 | Datatype::Int16 | Datatype::Int32 => {
            tensor::from_integers(c.int_contents.iter().copied())
        }
        Datatype::Int64 => tensor::from_integers(c.int64_contents.iter().copied()),
        Datatype::Uint8 | Datatype::Uint16 | Datatype::Uint32 => {
            tensor::from_integers(c.uint_contents.iter().copied())
        }
        Datatype::Uint64 => tensor::from_integers(c.uint64_contents.iter().copied()),
        Datatype::Fp32 => tensor::from_floats(name, c.fp32_contents.iter().map(|&x| f64::from(x)))?,
        Datatype::Fp64 => tensor::from_floats(name, c.fp64_contents.iter().copied())?,
        Datatype::Bytes => {
            tensor::from_byte_strings(name, c.bytes_contents.iter().map(Vec::as_slice))?
        }
    })
}
