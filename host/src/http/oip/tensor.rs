//! Tensors as the Open Inference Protocol sends them: an input's `data` (flat or nested JSON, or
//! raw little-endian bytes with the binary tensor extension) becomes one column of JSON values,
//! one per row, ready for the same schema check `/predict` runs. Outputs are encoded back to
//! bytes here too.
//!
//! Every input the models take is one value per row, so an input's shape must be `[n]` or
//! `[n, 1, ...]`: the first dimension is the batch. Errors name the input and, where one is at
//! fault, the element.

use serde_json::{Map, Number, Value};

/// The element types this server reads. Booleans and half-precision floats are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Fp32,
    Fp64,
    Bytes,
}

impl Datatype {
    /// Parses a protocol datatype name.
    pub fn parse(name: &str) -> Result<Datatype, String> {
        Ok(match name {
            "INT8" => Datatype::Int8,
            "INT16" => Datatype::Int16,
            "INT32" => Datatype::Int32,
            "INT64" => Datatype::Int64,
            "UINT8" => Datatype::Uint8,
            "UINT16" => Datatype::Uint16,
            "UINT32" => Datatype::Uint32,
            "UINT64" => Datatype::Uint64,
            "FP32" => Datatype::Fp32,
            "FP64" => Datatype::Fp64,
            "BYTES" => Datatype::Bytes,
            "BOOL" | "FP16" | "BF16" => return Err(format!("datatype {name} is not supported")),
            _ => return Err(format!("unknown datatype {name:?}")),
        })
    }

    /// Whether elements are numbers (everything but `BYTES`).
    pub fn is_numeric(self) -> bool {
        self != Datatype::Bytes
    }

    fn is_integer(self) -> bool {
        !matches!(self, Datatype::Fp32 | Datatype::Fp64 | Datatype::Bytes)
    }

    /// Bytes per element in binary data; `None` for `BYTES` (length-prefixed).
    fn width(self) -> Option<usize> {
        match self {
            Datatype::Int8 | Datatype::Uint8 => Some(1),
            Datatype::Int16 | Datatype::Uint16 => Some(2),
            Datatype::Int32 | Datatype::Uint32 | Datatype::Fp32 => Some(4),
            Datatype::Int64 | Datatype::Uint64 | Datatype::Fp64 => Some(8),
            Datatype::Bytes => None,
        }
    }
}

/// The rows an input's shape describes: its first dimension, provided every other is 1.
pub fn batch_size(name: &str, shape: &[i64]) -> Result<usize, String> {
    let shown = || format!("{shape:?}");
    let Some((&rows, rest)) = shape.split_first() else {
        return Err(format!(
            "input `{name}` has an empty shape; expected [n] with n rows"
        ));
    };
    if rows < 0 || rest.iter().any(|&d| d < 0) {
        return Err(format!(
            "input `{name}` has shape {}: dimensions must not be negative",
            shown()
        ));
    }
    if rest.iter().any(|&d| d != 1) {
        return Err(format!(
            "input `{name}` has shape {}: every row holds one value, so the shape must be [n] or [n, 1]",
            shown()
        ));
    }
    usize::try_from(rows).map_err(|_| format!("input `{name}` has too many rows"))
}

/// The values of input `name` from its JSON `data`, flattened in row-major order.
pub fn from_json(name: &str, datatype: Datatype, data: &Value) -> Result<Vec<Value>, String> {
    let Value::Array(_) = data else {
        return Err(format!("input `{name}`: `data` must be an array"));
    };
    let mut values = Vec::new();
    flatten(data, &mut values);
    for (i, value) in values.iter().enumerate() {
        let fits = match value {
            Value::Number(n) if datatype.is_integer() => n.is_i64() || n.is_u64(),
            Value::Number(_) => datatype.is_numeric(),
            Value::String(_) => !datatype.is_numeric(),
            _ => false,
        };
        if !fits {
            let expected = if !datatype.is_numeric() {
                "a string"
            } else if datatype.is_integer() {
                "an integer"
            } else {
                "a number"
            };
            return Err(format!(
                "input `{name}` element {i}: expected {expected} for its datatype, got {value}"
            ));
        }
    }
    Ok(values)
}

fn flatten(value: &Value, out: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, out)),
        other => out.push(other.clone()),
    }
}

/// The values of input `name` from its binary data (little-endian; `BYTES` elements are each a
/// 4-byte little-endian length followed by that many bytes of UTF-8).
pub fn from_binary(name: &str, datatype: Datatype, bytes: &[u8]) -> Result<Vec<Value>, String> {
    let Some(width) = datatype.width() else {
        return strings_from_binary(name, bytes);
    };
    if !bytes.len().is_multiple_of(width) {
        return Err(format!(
            "input `{name}`: {} bytes of binary data is not a whole number of {width}-byte elements",
            bytes.len()
        ));
    }
    bytes
        .chunks_exact(width)
        .enumerate()
        .map(|(i, chunk)| {
            let mut wide = [0u8; 8];
            wide[..width].copy_from_slice(chunk);
            let number = match datatype {
                Datatype::Int8 => Number::from(chunk[0] as i8),
                Datatype::Int16 => Number::from(i16::from_le_bytes([chunk[0], chunk[1]])),
                Datatype::Int32 => Number::from(i32::from_le_bytes(wide[..4].try_into().unwrap())),
                Datatype::Int64 => Number::from(i64::from_le_bytes(wide)),
                Datatype::Uint8 | Datatype::Uint16 | Datatype::Uint32 | Datatype::Uint64 => {
                    Number::from(u64::from_le_bytes(wide))
                }
                Datatype::Fp32 => {
                    let x = f32::from_le_bytes(wide[..4].try_into().unwrap());
                    finite(name, i, f64::from(x))?
                }
                Datatype::Fp64 => finite(name, i, f64::from_le_bytes(wide))?,
                Datatype::Bytes => unreachable!("BYTES has no fixed width"),
            };
            Ok(Value::Number(number))
        })
        .collect()
}

/// Integer elements (gRPC's typed contents), as JSON numbers.
pub fn from_integers<T: Into<Number>>(values: impl Iterator<Item = T>) -> Vec<Value> {
    values.map(|x| Value::Number(x.into())).collect()
}

/// Floating-point elements (gRPC's typed contents), each required to be finite.
pub fn from_floats(name: &str, values: impl Iterator<Item = f64>) -> Result<Vec<Value>, String> {
    values
        .enumerate()
        .map(|(i, x)| finite(name, i, x).map(Value::Number))
        .collect()
}

/// `BYTES` elements (gRPC's typed contents), each required to be UTF-8.
pub fn from_byte_strings<'a>(
    name: &str,
    values: impl Iterator<Item = &'a [u8]>,
) -> Result<Vec<Value>, String> {
    values
        .enumerate()
        .map(|(i, bytes)| utf8(name, i, bytes))
        .collect()
}

fn utf8(name: &str, i: usize, bytes: &[u8]) -> Result<Value, String> {
    std::str::from_utf8(bytes)
        .map(|text| Value::String(text.to_string()))
        .map_err(|_| format!("input `{name}` element {i} is not valid UTF-8"))
}

fn finite(name: &str, i: usize, x: f64) -> Result<Number, String> {
    Number::from_f64(x).ok_or_else(|| format!("input `{name}` element {i} is not a finite number"))
}

fn strings_from_binary(name: &str, mut bytes: &[u8]) -> Result<Vec<Value>, String> {
    let mut values = Vec::new();
    while !bytes.is_empty() {
        let i = values.len();
        let truncated = || format!("input `{name}` element {i}: binary BYTES data is truncated");
        let (prefix, rest) = bytes.split_first_chunk::<4>().ok_or_else(truncated)?;
        let len = u32::from_le_bytes(*prefix) as usize;
        if rest.len() < len {
            return Err(truncated());
        }
        let (text, rest) = rest.split_at(len);
        values.push(utf8(name, i, text)?);
        bytes = rest;
    }
    Ok(values)
}

/// `binary_data_size` from an input's or output's parameters, if present.
pub fn binary_data_size(
    name: &str,
    parameters: Option<&Map<String, Value>>,
) -> Result<Option<usize>, String> {
    match parameters.and_then(|p| p.get("binary_data_size")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().map(|n| n as usize)),
        Some(other) => Err(format!(
            "input `{name}`: parameter `binary_data_size` must be a byte count, got {other}"
        )),
    }
}

/// Little-endian bytes of `FP64` elements.
pub fn fp64_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian bytes of `INT64` elements.
pub fn int64_bytes(values: &[i64]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_and_flat_data_give_the_same_column() {
        let flat = from_json("x", Datatype::Int64, &json!([1, 2, 3])).unwrap();
        let nested = from_json("x", Datatype::Int64, &json!([[1], [2], [3]])).unwrap();
        assert_eq!(flat, nested);
        assert_eq!(flat, vec![json!(1), json!(2), json!(3)]);
    }

    #[test]
    fn json_elements_must_fit_the_datatype() {
        let err = from_json("tenure", Datatype::Int64, &json!([1, 2.5])).unwrap_err();
        assert_eq!(
            err,
            "input `tenure` element 1: expected an integer for its datatype, got 2.5"
        );
        let err = from_json("plan", Datatype::Bytes, &json!(["basic", 3])).unwrap_err();
        assert!(err.contains("`plan` element 1: expected a string"), "{err}");
        let err = from_json("minutes", Datatype::Fp64, &json!(["12"])).unwrap_err();
        assert!(err.contains("expected a number"), "{err}");
        assert!(from_json("minutes", Datatype::Fp64, &json!(3)).is_err());
    }

    #[test]
    fn binary_numbers_are_little_endian() {
        let bytes = fp64_bytes(&[12.5, 0.25]);
        assert_eq!(
            from_binary("m", Datatype::Fp64, &bytes).unwrap(),
            vec![json!(12.5), json!(0.25)]
        );
        let bytes = int64_bytes(&[-3, 7]);
        assert_eq!(
            from_binary("t", Datatype::Int64, &bytes).unwrap(),
            vec![json!(-3), json!(7)]
        );
        let bytes: Vec<u8> = [6i32, 200].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(
            from_binary("t", Datatype::Int32, &bytes).unwrap(),
            vec![json!(6), json!(200)]
        );
        assert_eq!(
            from_binary("t", Datatype::Fp32, &1.5f32.to_le_bytes()).unwrap(),
            vec![json!(1.5)]
        );
        assert!(
            from_binary("t", Datatype::Int64, &[0; 12])
                .unwrap_err()
                .contains("12 bytes")
        );
        let nan = f64::NAN.to_le_bytes();
        assert!(
            from_binary("m", Datatype::Fp64, &nan)
                .unwrap_err()
                .contains("not a finite number")
        );
    }

    #[test]
    fn binary_strings_are_length_prefixed() {
        let mut bytes = Vec::new();
        for word in ["basic", "AF"] {
            bytes.extend((word.len() as u32).to_le_bytes());
            bytes.extend(word.as_bytes());
        }
        assert_eq!(
            from_binary("plan", Datatype::Bytes, &bytes).unwrap(),
            vec![json!("basic"), json!("AF")]
        );
        let err = from_binary("plan", Datatype::Bytes, &bytes[..bytes.len() - 1]).unwrap_err();
        assert_eq!(
            err,
            "input `plan` element 1: binary BYTES data is truncated"
        );
    }

    #[test]
    fn shapes_are_a_batch_of_single_values() {
        assert_eq!(batch_size("x", &[3]).unwrap(), 3);
        assert_eq!(batch_size("x", &[3, 1]).unwrap(), 3);
        assert!(batch_size("x", &[]).unwrap_err().contains("empty shape"));
        assert!(batch_size("x", &[2, 3]).unwrap_err().contains("[2, 3]"));
        assert!(batch_size("x", &[-1]).unwrap_err().contains("negative"));
    }

    #[test]
    fn datatypes_outside_the_supported_set_are_named() {
        assert_eq!(Datatype::parse("FP64").unwrap(), Datatype::Fp64);
        assert_eq!(
            Datatype::parse("FP16").unwrap_err(),
            "datatype FP16 is not supported"
        );
        assert_eq!(
            Datatype::parse("float").unwrap_err(),
            "unknown datatype \"float\""
        );
    }
}
