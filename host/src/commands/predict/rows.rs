//! Batch input: a CSV file with a header row, or JSON lines, read one row at a time into the
//! JSON objects `POST /predict` takes.
//!
//! CSV cells become JSON values by the model's schema: cells of numeric features that parse as
//! finite numbers become numbers, every other cell a string, and empty cells are left out (so
//! a required feature is reported missing). A row that cannot be read (a ragged CSV record,
//! a JSONL line that is not a JSON object, bad UTF-8) is a row error, not a fatal one; blank
//! JSONL lines are skipped but still counted, so row `n` of a JSONL file is its line `n`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use modelhost_abi::info::{FeatureKind, ModelInfo};
use serde_json::{Map, Number, Value};

use crate::commands::CommandError;

/// The two input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl InputFormat {
    /// The format a file's extension names: `.csv`, or `.jsonl` / `.ndjson`.
    pub fn from_path(path: &Path) -> Option<InputFormat> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Some(InputFormat::Csv),
            "jsonl" | "ndjson" => Some(InputFormat::Jsonl),
            _ => None,
        }
    }
}

/// One input row: its 1-based number and its fields, or why it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub number: usize,
    pub object: Result<Map<String, Value>, String>,
}

/// The rows of `file`, lazily. An `Err` item is fatal (the file could not be read further).
pub fn read(
    format: InputFormat,
    file: File,
    path: &Path,
    info: &ModelInfo,
) -> Result<Box<dyn Iterator<Item = Result<Row, CommandError>>>, CommandError> {
    match format {
        InputFormat::Jsonl => Ok(Box::new(jsonl(file, path))),
        InputFormat::Csv => Ok(Box::new(csv_rows(file, path, info)?)),
    }
}

fn jsonl(file: File, path: &Path) -> impl Iterator<Item = Result<Row, CommandError>> + use<> {
    let path = path.to_path_buf();
    BufReader::new(file)
        .lines()
        .enumerate()
        .filter_map(move |(i, line)| {
            let number = i + 1;
            let object = match line {
                Ok(line) if line.trim().is_empty() => return None,
                Ok(line) => match serde_json::from_str::<Value>(&line) {
                    Ok(Value::Object(object)) => Ok(object),
                    Ok(other) => Err(format!(
                        "expected a JSON object, got {}",
                        crate::model::schema::type_name(&other)
                    )),
                    Err(e) => Err(format!("malformed JSON: {e}")),
                },
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    Err("the line is not valid UTF-8".to_string())
                }
                Err(e) => {
                    return Some(Err(CommandError::Io {
                        path: path.clone(),
                        error: e,
                    }));
                }
            };
            Some(Ok(Row { number, object }))
        })
}

/// How a CSV column's cells are turned into JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    Number,
    Text,
}

fn csv_rows(
    file: File,
    path: &Path,
    info: &ModelInfo,
) -> Result<impl Iterator<Item = Result<Row, CommandError>> + use<>, CommandError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(file);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| CommandError::Data(format!("{}: unreadable header: {e}", path.display())))?
        .iter()
        .map(|name| name.trim().to_string())
        .collect();
    for (i, name) in header.iter().enumerate() {
        if header[..i].contains(name) {
            return Err(CommandError::Data(format!(
                "{}: column `{name}` appears more than once in the header",
                path.display()
            )));
        }
    }
    let cells: Vec<Cell> = header
        .iter()
        .map(|name| {
            let numeric = info.features.iter().any(|f| {
                f.name == *name
                    && matches!(
                        f.kind,
                        FeatureKind::Integer { .. } | FeatureKind::Number { .. }
                    )
            });
            if numeric { Cell::Number } else { Cell::Text }
        })
        .collect();
    let path = path.to_path_buf();
    Ok(reader.into_records().enumerate().map(move |(i, record)| {
        let number = i + 1;
        let record = match record {
            Ok(record) => record,
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                return Err(CommandError::Io {
                    path: path.clone(),
                    error: std::io::Error::other(e.to_string()),
                });
            }
            Err(e) => {
                let problem = match e.kind() {
                    csv::ErrorKind::UnequalLengths { len, .. } => {
                        format!("has {len} fields but the header has {}", header.len())
                    }
                    csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_string(),
                    _ => format!("is malformed: {e}"),
                };
                return Ok(Row {
                    number,
                    object: Err(format!("the record {problem}")),
                });
            }
        };
        let mut object = Map::with_capacity(header.len());
        for ((name, cell), text) in header.iter().zip(&cells).zip(record.iter()) {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                continue;
            }
            let value = match cell {
                Cell::Number => number_value(trimmed).unwrap_or_else(|| text.into()),
                Cell::Text if name == "request_id" => trimmed.into(),
                Cell::Text => text.into(),
            };
            object.insert(name.clone(), value);
        }
        Ok(Row {
            number,
            object: Ok(object),
        })
    }))
}

/// A finite number as JSON, integral values as integers.
fn number_value(text: &str) -> Option<Value> {
    let x = text.parse::<f64>().ok().filter(|x| x.is_finite())?;
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Some(Value::Number(Number::from(x as i64)))
    } else {
        Number::from_f64(x).map(Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_numbers_and_everything_else_stays_text() {
        assert_eq!(number_value("6"), Some(Value::from(6)));
        assert_eq!(number_value("12.5"), Some(Value::from(12.5)));
        assert_eq!(number_value("-0"), Some(Value::from(0)));
        assert_eq!(number_value("NaN"), None);
        assert_eq!(number_value("inf"), None);
        assert_eq!(number_value("six"), None);
    }

    #[test]
    fn formats_are_told_by_extension() {
        assert_eq!(
            InputFormat::from_path(Path::new("a/b.CSV")),
            Some(InputFormat::Csv)
        );
        assert_eq!(
            InputFormat::from_path(Path::new("b.ndjson")),
            Some(InputFormat::Jsonl)
        );
        assert_eq!(InputFormat::from_path(Path::new("b.json")), None);
        assert_eq!(InputFormat::from_path(Path::new("b")), None);
    }
}
