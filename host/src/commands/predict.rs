//! `modelhost predict`: batch scoring of a CSV or JSONL file through the same sandbox, checks
//! and request validation as `POST /predict`.
//!
//! The model is checked like `inspect` ([`check_file`](crate::commands::inspect::check_file)). Rows are
//! read one at a time (see [`rows`]), validated with [`prepare_row`], and scored [`BATCH_ROWS`] at a time with one
//! model call per batch, run as the server runs its calls: on a call thread of an [`Executor`]
//! (one thread, as a batch waits for its answer before the next is read). Every input row gives exactly one output line, in input
//! order: the `/predict` response ([`PredictResponse`]), or `{"row": n, "error": ...}` naming
//! the row (1-based data row: CSV records after the header, JSONL lines) and the fields at
//! fault. Invalid rows do not stop the run; the caller learns how many there were from the
//! [`PredictSummary`] (the binary exits 65 if any). With an output file, the lines go to a temp
//! file renamed into place at the end, so a failed run never leaves a partial output file.

mod rows;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::CommandError;
use crate::model::Model;
use crate::model::executor::Executor;
use crate::model::response::{self, PredictResponse};
use crate::model::schema::{FieldError, prepare_row};
use crate::registry::AtomicFile;

pub use rows::InputFormat;

/// Input rows per model call.
pub const BATCH_ROWS: usize = 1000;

/// How many row errors a [`PredictSummary`] keeps for display.
pub const MAX_REPORTED_ERRORS: usize = 10;

/// What `predict` needs.
#[derive(Debug, Clone)]
pub struct PredictOptions {
    /// The artifact to score with.
    pub model: PathBuf,
    /// The rows.
    pub input: PathBuf,
    /// Where the JSON lines go; `None` for standard output.
    pub output: Option<PathBuf>,
    /// The input format; `None` to tell it by the input's extension.
    pub format: Option<InputFormat>,
}

/// What a batch run did.
#[derive(Debug, Clone, Serialize)]
pub struct PredictSummary {
    pub model_name: String,
    pub model_version: String,
    /// Input rows read (one output line each).
    pub rows: usize,
    pub scored: usize,
    pub failed: usize,
    /// The first [`MAX_REPORTED_ERRORS`] row errors, as written in the output.
    pub errors: Vec<String>,
    pub output: Option<PathBuf>,
}

impl fmt::Display for PredictSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scored {} of {} with {} {}",
            self.scored,
            n_rows(self.rows),
            self.model_name,
            self.model_version
        )?;
        if let Some(output) = &self.output {
            write!(f, " into {}", output.display())?;
        }
        if self.failed > 0 {
            let (rows, each) = if self.failed == 1 {
                ("row", "an error line")
            } else {
                ("rows", "an error line each")
            };
            write!(f, "; {} invalid {rows} ({each}):", self.failed)?;
            for error in &self.errors {
                write!(f, "\n  {error}")?;
            }
            if self.failed > self.errors.len() {
                write!(f, "\n  ... and {} more", self.failed - self.errors.len())?;
            }
        }
        Ok(())
    }
}

impl super::Report for PredictSummary {
    /// Any invalid row is a data error: every line was written, the errors are listed.
    fn exit(&self) -> super::Exit {
        if self.failed == 0 {
            super::Exit::Success
        } else {
            super::Exit::Data
        }
    }

    /// Standard output holds the scored lines, so the summary goes to standard error.
    fn print(&self, _json: bool) -> Result<super::Exit, CommandError> {
        crate::output::eprint_line(&format!("modelhost: {self}"));
        Ok(self.exit())
    }
}

/// "1 row", "2 rows".
fn n_rows(n: usize) -> String {
    if n == 1 {
        "1 row".to_string()
    } else {
        format!("{n} rows")
    }
}

/// Scores every row of `options.input`. Errors are for the run as a whole (model refused, input
/// unreadable, output unwritable, a model call failed); invalid rows are counted in the summary.
pub fn predict(options: &PredictOptions) -> Result<PredictSummary, CommandError> {
    let format = match options.format {
        Some(format) => format,
        None => InputFormat::from_path(&options.input).ok_or_else(|| {
            CommandError::Usage(format!(
                "cannot tell the format of {} from its name: use a .csv or .jsonl file, or --format",
                options.input.display()
            ))
        })?,
    };
    let runtime = super::runtime()?;
    let (_, model) = super::check_model(&options.model, &runtime)?;
    let model = Arc::new(model);
    // Stopped (its thread joined) when dropped, whichever way the run ends.
    let executor = Executor::start(1, None)
        .map_err(|e| CommandError::Failed(format!("cannot start the model executor: {e}")))?;
    let input = std::fs::File::open(&options.input)
        .map_err(|e| CommandError::Data(format!("cannot read {}: {e}", options.input.display())))?;
    let rows = rows::read(format, input, &options.input, model.info())?;

    match &options.output {
        Some(path) => {
            let mut file = AtomicFile::create(path).map_err(CommandError::io(path))?;
            let mut summary = score(&model, &executor, rows, &mut file, path)?;
            file.commit().map_err(CommandError::io(path))?;
            summary.output = Some(path.clone());
            Ok(summary)
        }
        None => {
            // A reader that goes away (`| head`) ends the output, not the run: the rows are
            // still scored and counted, so the exit status is the run's own.
            let mut out = std::io::BufWriter::new(crate::output::Stdout::lock());
            let summary = score(
                &model,
                &executor,
                rows,
                &mut out,
                Path::new("standard output"),
            )?;
            out.flush()
                .map_err(CommandError::io(Path::new("standard output")))?;
            Ok(summary)
        }
    }
}

/// One input row on its way through a batch.
enum Pending {
    Valid {
        row: usize,
        request_id: String,
        features: Map<String, Value>,
        prepared_in: f64,
    },
    Invalid(Value),
}

/// Validates, scores and writes every row, [`BATCH_ROWS`] at a time.
fn score(
    model: &Arc<Model>,
    executor: &Executor,
    rows: impl Iterator<Item = Result<rows::Row, CommandError>>,
    out: &mut dyn Write,
    out_path: &Path,
) -> Result<PredictSummary, CommandError> {
    let info = model.info();
    let mut summary = PredictSummary {
        model_name: info.name.clone(),
        model_version: info.version.clone(),
        rows: 0,
        scored: 0,
        failed: 0,
        errors: Vec::new(),
        output: None,
    };
    let mut batch: Vec<Pending> = Vec::with_capacity(BATCH_ROWS);
    let mut matrix: Vec<f64> = Vec::with_capacity(BATCH_ROWS * info.features.len());
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        batch.clear();
        matrix.clear();
        for row in rows.by_ref().take(BATCH_ROWS) {
            let row = row?;
            summary.rows += 1;
            let pending = validate(model, row, &mut matrix);
            if let Pending::Invalid(line) = &pending {
                summary.failed += 1;
                if summary.errors.len() < MAX_REPORTED_ERRORS {
                    summary
                        .errors
                        .push(line["error"].as_str().unwrap_or("").to_string());
                }
            }
            batch.push(pending);
        }
        let valid = batch
            .iter()
            .filter(|p| matches!(p, Pending::Valid { .. }))
            .count();
        let call_started = Instant::now();
        let probabilities = if valid == 0 {
            Vec::new()
        } else {
            let matrix = std::mem::take(&mut matrix);
            executor.call_blocking(model.clone(), matrix).map_err(|e| {
                CommandError::Failed(format!(
                    "the model failed on the batch ending at row {}: {e}",
                    summary.rows
                ))
            })?
        };
        let call_share = call_started.elapsed().as_secs_f64() / valid.max(1) as f64;
        let mut probabilities = probabilities.into_iter();
        for pending in batch.drain(..) {
            let line = match pending {
                Pending::Invalid(line) => line,
                Pending::Valid {
                    request_id,
                    features,
                    prepared_in,
                    row,
                } => {
                    let probability = probabilities.next().ok_or_else(|| {
                        CommandError::Failed(format!(
                            "the model returned no probability for row {row}"
                        ))
                    })?;
                    summary.scored += 1;
                    let answer = PredictResponse::new(
                        model,
                        request_id,
                        probability,
                        prepared_in + call_share,
                        features,
                    );
                    serde_json::to_value(answer).unwrap_or_default()
                }
            };
            serde_json::to_writer(&mut *out, &line)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(CommandError::io(out_path))?;
        }
    }
    Ok(summary)
}

/// Validates one row; a valid one appends its values to `matrix`.
fn validate(model: &Model, row: rows::Row, matrix: &mut Vec<f64>) -> Pending {
    let started = Instant::now();
    let number = row.number;
    let object = match row.object {
        Ok(object) => object,
        Err(problem) => {
            return Pending::Invalid(json!({
                "row": number,
                "error": format!("row {number}: {problem}"),
            }));
        }
    };
    let mut errors: Vec<FieldError> = Vec::new();
    let request_id = response::request_id(&object).unwrap_or_else(|error| {
        errors.push(error);
        None
    });
    match prepare_row(model.info(), &object) {
        Ok(prepared) if errors.is_empty() => {
            matrix.extend_from_slice(&prepared.row);
            Pending::Valid {
                row: number,
                request_id: request_id.unwrap_or_else(|| format!("row-{number}")),
                features: prepared.features,
                prepared_in: started.elapsed().as_secs_f64(),
            }
        }
        Ok(_) => field_errors(number, request_id, errors),
        Err(more) => {
            errors.extend(more);
            field_errors(number, request_id, errors)
        }
    }
}

/// An error line: `fields` has one entry per field at fault, named as in the HTTP 422 body
/// (`loc`, `type`, `msg`, plus `field`), with the data row in `loc` where HTTP has the body.
fn field_errors(row: usize, request_id: Option<String>, errors: Vec<FieldError>) -> Pending {
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    let fields: Vec<Value> = errors
        .iter()
        .map(|e| json!({ "loc": [row, e.field], "field": e.field, "type": e.kind, "msg": e.message }))
        .collect();
    let mut line = Map::new();
    line.insert("row".to_string(), json!(row));
    if let Some(id) = request_id {
        line.insert("request_id".to_string(), json!(id));
    }
    line.insert(
        "error".to_string(),
        json!(format!("row {row}: {}", messages.join("; "))),
    );
    line.insert("fields".to_string(), Value::Array(fields));
    Pending::Invalid(Value::Object(line))
}
