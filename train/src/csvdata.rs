//! CSV in and out. Reading turns a file with a header row into a [`RawTable`]: every column
//! typed (numeric or categorical, inferred or forced by [`KindOverrides`]) with nulls still in
//! place, so that [`crate::clean::clean_and_check`] can apply the lab's checks to what the file
//! really held. Writing exports a [`Dataset`] (for example the synthetic data) so that other
//! tools, scikit-learn included, can read exactly the rows this crate trains on.
//!
//! Only a cell that is empty after trimming white space is null. Strings such as `NA` or `null`
//! are values: `NA` is the lab's North America region, and reading it as missing would silently
//! delete a quarter of the data.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::dataset::{ColumnData, Dataset, DatasetError};

/// Why data could not be read, checked, cleaned or written. Rows are 1-based data rows (the
/// header is not counted).
#[derive(Debug, Error)]
pub enum DataError {
    /// The file could not be opened or created.
    #[error("cannot access `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The CSV itself is malformed (ragged rows, bad UTF-8, ...).
    #[error("malformed csv: {0}")]
    Csv(#[from] csv::Error),
    /// The header has no columns.
    #[error("the csv has no header row")]
    NoHeader,
    /// A column name appears twice in the header.
    #[error("column `{column}` appears more than once in the header")]
    DuplicateColumn { column: String },
    /// A required column (or the target) is absent.
    #[error("required column `{column}` is missing")]
    MissingColumn { column: String },
    /// An override names a column the file does not have.
    #[error("override names column `{column}`, which is not in the file")]
    UnknownOverride { column: String },
    /// An override names the target column, whose type is fixed (0/1).
    #[error("column `{column}` is the target and cannot be overridden")]
    TargetOverride { column: String },
    /// A column is forced both numeric and categorical.
    #[error("column `{column}` is forced both numeric and categorical")]
    ConflictingOverride { column: String },
    /// A numeric column holds a value that is not a finite number.
    #[error("column `{column}` must be numeric but row {row} holds {value:?}")]
    NotNumeric {
        column: String,
        row: usize,
        value: String,
    },
    /// A column the spec declares `integer` holds a fraction.
    #[error("column `{column}` must hold whole numbers but row {row} holds {value}")]
    NotInteger {
        column: String,
        row: usize,
        value: f64,
    },
    /// A column has more nulls than the lab tolerates.
    #[error(
        "column `{column}` is {:.2}% null, more than the {:.0}% allowed",
        .fraction * 100.0,
        crate::clean::MAX_NULL_FRACTION * 100.0
    )]
    TooManyNulls { column: String, fraction: f64 },
    /// A target value is neither 0 nor 1.
    #[error("target column `{column}` must be 0 or 1 but row {row} holds {value:?}")]
    BadTarget {
        column: String,
        row: usize,
        value: String,
    },
    /// The file has a header but no data rows.
    #[error("the data has no rows")]
    NoRows,
    /// Every row had a null somewhere, so nothing is left to train on.
    #[error("no rows are left after dropping rows with nulls")]
    NoRowsLeft,
    /// The cleaned columns do not form a valid dataset.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

/// Columns whose inferred type the caller overrides: the spec's declared kinds
/// ([`crate::ModelSpec::kind_overrides`]), with the CLI's `--numeric` / `--categorical`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindOverrides {
    /// Columns that must be numeric; a non-numeric value is an error naming column and row.
    pub numeric: Vec<String>,
    /// Columns that are categorical even if every value looks like a number (e.g. zip codes).
    pub categorical: Vec<String>,
}

/// A typed column with nulls (`None`) still present.
#[derive(Debug, Clone, PartialEq)]
pub enum RawData {
    /// Finite numbers or nulls.
    Numeric(Vec<Option<f64>>),
    /// Strings exactly as in the file (untrimmed), or nulls.
    Categorical(Vec<Option<String>>),
}

impl RawData {
    /// Number of nulls in the column.
    pub fn null_count(&self) -> usize {
        match self {
            RawData::Numeric(values) => values.iter().filter(|v| v.is_none()).count(),
            RawData::Categorical(values) => values.iter().filter(|v| v.is_none()).count(),
        }
    }
}

/// A named raw column.
#[derive(Debug, Clone, PartialEq)]
pub struct RawColumn {
    /// Header name, trimmed.
    pub name: String,
    /// Values, one per data row.
    pub data: RawData,
}

/// What [`read_csv`] returns: typed feature columns and the unparsed target, nulls included.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTable {
    /// Feature columns in file order (the target excluded).
    pub columns: Vec<RawColumn>,
    /// Name of the target column.
    pub target_name: String,
    /// Target cells as written (trimmed), `None` when empty.
    pub target: Vec<Option<String>>,
}

impl RawTable {
    /// Number of data rows.
    pub fn n_rows(&self) -> usize {
        self.target.len()
    }
}

/// Reads a CSV file; see [`read_csv_from`].
pub fn read_csv(
    path: &Path,
    target: &str,
    overrides: &KindOverrides,
) -> Result<RawTable, DataError> {
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_csv_from(file, target, overrides)
}

/// Parses a finite number, ignoring surrounding white space. `NaN` and `inf` parse as floats in
/// Rust but cannot be trained on, so they count as non-numeric.
fn parse_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Reads CSV text with a header row. The `target` column is kept as text for
/// [`crate::clean::clean_and_check`] to validate; every other column is numeric when each of its
/// non-null cells parses as a finite number, else categorical, unless `overrides` says otherwise.
pub fn read_csv_from<R: Read>(
    reader: R,
    target: &str,
    overrides: &KindOverrides,
) -> Result<RawTable, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(reader);
    let names: Vec<String> = reader
        .headers()?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if names.is_empty() || names.iter().all(String::is_empty) {
        return Err(DataError::NoHeader);
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(DataError::DuplicateColumn {
                column: name.clone(),
            });
        }
    }
    let Some(target_index) = names.iter().position(|n| n == target) else {
        return Err(DataError::MissingColumn {
            column: target.to_string(),
        });
    };
    check_overrides(&names, target, overrides)?;

    let mut cells: Vec<Vec<Option<String>>> = vec![Vec::new(); names.len()];
    for record in reader.records() {
        let record = record?;
        for (column, field) in cells.iter_mut().zip(record.iter()) {
            column.push((!field.trim().is_empty()).then(|| field.to_string()));
        }
    }

    let mut columns = Vec::with_capacity(names.len() - 1);
    let mut target_cells = Vec::new();
    for (index, (name, values)) in names.into_iter().zip(cells).enumerate() {
        if index == target_index {
            target_cells = values
                .into_iter()
                .map(|v| v.map(|s| s.trim().to_string()))
                .collect();
            continue;
        }
        let data = type_column(&name, values, overrides)?;
        columns.push(RawColumn { name, data });
    }
    Ok(RawTable {
        columns,
        target_name: target.to_string(),
        target: target_cells,
    })
}

/// Rejects overrides that name no column, the target, or one column both ways.
fn check_overrides(
    names: &[String],
    target: &str,
    overrides: &KindOverrides,
) -> Result<(), DataError> {
    for column in overrides.numeric.iter().chain(&overrides.categorical) {
        if column == target {
            return Err(DataError::TargetOverride {
                column: column.clone(),
            });
        }
        if !names.contains(column) {
            return Err(DataError::UnknownOverride {
                column: column.clone(),
            });
        }
        if overrides.numeric.contains(column) && overrides.categorical.contains(column) {
            return Err(DataError::ConflictingOverride {
                column: column.clone(),
            });
        }
    }
    Ok(())
}

/// Decides a column's type and converts its cells.
fn type_column(
    name: &str,
    values: Vec<Option<String>>,
    overrides: &KindOverrides,
) -> Result<RawData, DataError> {
    let forced_numeric = overrides.numeric.iter().any(|c| c == name);
    let forced_categorical = overrides.categorical.iter().any(|c| c == name);
    let looks_numeric = values.iter().flatten().all(|v| parse_number(v).is_some());
    if forced_categorical || !(forced_numeric || looks_numeric) {
        return Ok(RawData::Categorical(values));
    }
    let mut numbers = Vec::with_capacity(values.len());
    for (row, value) in values.into_iter().enumerate() {
        match value {
            None => numbers.push(None),
            Some(text) => match parse_number(&text) {
                Some(number) => numbers.push(Some(number)),
                None => {
                    return Err(DataError::NotNumeric {
                        column: name.to_string(),
                        row: row + 1,
                        value: text,
                    });
                }
            },
        }
    }
    Ok(RawData::Numeric(numbers))
}

/// Writes `dataset` to a CSV file; see [`write_csv_to`].
pub fn write_csv(dataset: &Dataset, target: &str, path: &Path) -> Result<(), DataError> {
    let file = File::create(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    write_csv_to(dataset, target, file)
}

/// Writes a header (feature names, then `target`) and one line per row. Numbers use Rust's
/// shortest round-trip formatting, so integers print without a decimal point and every value
/// reads back bit-for-bit.
pub fn write_csv_to<W: Write>(dataset: &Dataset, target: &str, out: W) -> Result<(), DataError> {
    let mut writer = csv::Writer::from_writer(out);
    let mut header: Vec<&str> = dataset.names();
    header.push(target);
    writer.write_record(&header)?;
    let mut record: Vec<String> = Vec::with_capacity(header.len());
    for row in 0..dataset.n_rows() {
        record.clear();
        for column in &dataset.columns {
            record.push(match &column.data {
                ColumnData::Numeric(values) => values[row].to_string(),
                ColumnData::Categorical(values) => values[row].clone(),
            });
        }
        record.push(dataset.target[row].to_string());
        writer.write_record(&record)?;
    }
    writer.flush().map_err(csv::Error::from)?;
    Ok(())
}

// The tests live in `csvdata/tests.rs` to keep this file about the format itself.
#[cfg(test)]
mod tests;
