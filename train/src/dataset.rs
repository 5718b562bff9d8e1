//! The in-memory table every other module works on: named feature columns, each either numeric
//! or categorical, plus a 0/1 target. This module owns the shape rules (equal lengths, unique
//! names, binary target), the feature kinds the server validates requests against, and row
//! selection; it knows nothing about files, cleaning or models.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The type of a feature as the server sees it.
///
/// A numeric column whose values are all whole numbers is [`FeatureKind::Integer`], so that the
/// server can reject `2.5` for a count such as `num_complaints`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    /// Numeric, every training value integral.
    Integer,
    /// Numeric with at least one fractional value.
    Number,
    /// A string category.
    Categorical,
}

/// The values of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ColumnData {
    /// Finite numbers.
    Numeric(Vec<f64>),
    /// Category labels, already normalised (see [`crate::clean::CaseRule`]).
    Categorical(Vec<String>),
}

impl ColumnData {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Numeric(values) => values.len(),
            ColumnData::Categorical(values) => values.len(),
        }
    }

    /// True when the column has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A named column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// The feature name, as it appears in CSV headers and requests.
    pub name: String,
    /// The values, one per row.
    pub data: ColumnData,
}

impl Column {
    /// A numeric column.
    pub fn numeric(name: impl Into<String>, values: Vec<f64>) -> Self {
        Column {
            name: name.into(),
            data: ColumnData::Numeric(values),
        }
    }

    /// A categorical column.
    pub fn categorical(name: impl Into<String>, values: Vec<String>) -> Self {
        Column {
            name: name.into(),
            data: ColumnData::Categorical(values),
        }
    }

    /// The column's feature kind. An empty numeric column counts as `Integer`, since no value
    /// contradicts it.
    pub fn kind(&self) -> FeatureKind {
        match &self.data {
            ColumnData::Categorical(_) => FeatureKind::Categorical,
            ColumnData::Numeric(values) => {
                if values.iter().all(|v| v.is_finite() && v.fract() == 0.0) {
                    FeatureKind::Integer
                } else {
                    FeatureKind::Number
                }
            }
        }
    }
}

/// One value of a row, borrowed from a dataset or a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// A numeric value.
    Number(f64),
    /// A category label.
    Category(&'a str),
}

/// Why a set of columns does not form a dataset.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DatasetError {
    /// A column's length differs from the target's.
    #[error("column `{column}` has {len} values but the target has {expected}")]
    Length {
        column: String,
        len: usize,
        expected: usize,
    },
    /// Two columns share a name.
    #[error("column `{column}` appears more than once")]
    Duplicate { column: String },
    /// A target value is neither 0 nor 1.
    #[error("target value at row {row} is {value}, expected 0 or 1")]
    Target { row: usize, value: u8 },
    /// A numeric value is NaN or infinite.
    #[error("column `{column}` holds a non-finite value at row {row}")]
    NonFinite { column: String, row: usize },
}

/// Feature columns plus a binary target, all of one length.
///
/// The fields are public so callers can build datasets directly; [`Dataset::new`] and
/// [`Dataset::validate`] check the invariants that fitting relies on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Feature columns, in schema order.
    pub columns: Vec<Column>,
    /// The label of each row: 1 = churned, 0 = stayed.
    pub target: Vec<u8>,
}

impl Dataset {
    /// Builds a dataset and checks it with [`Dataset::validate`].
    pub fn new(columns: Vec<Column>, target: Vec<u8>) -> Result<Self, DatasetError> {
        let dataset = Dataset { columns, target };
        dataset.validate()?;
        Ok(dataset)
    }

    /// Checks that every column matches the target's length, names are unique, numbers are
    /// finite and the target is 0/1. Rows in errors are 1-based.
    pub fn validate(&self) -> Result<(), DatasetError> {
        let expected = self.target.len();
        for (i, column) in self.columns.iter().enumerate() {
            if column.data.len() != expected {
                return Err(DatasetError::Length {
                    column: column.name.clone(),
                    len: column.data.len(),
                    expected,
                });
            }
            if self.columns[..i].iter().any(|c| c.name == column.name) {
                return Err(DatasetError::Duplicate {
                    column: column.name.clone(),
                });
            }
            if let ColumnData::Numeric(values) = &column.data
                && let Some(row) = values.iter().position(|v| !v.is_finite())
            {
                return Err(DatasetError::NonFinite {
                    column: column.name.clone(),
                    row: row + 1,
                });
            }
        }
        if let Some(row) = self.target.iter().position(|&t| t > 1) {
            return Err(DatasetError::Target {
                row: row + 1,
                value: self.target[row],
            });
        }
        Ok(())
    }

    /// Number of rows (the target's length; with no columns the target alone defines the rows).
    pub fn n_rows(&self) -> usize {
        self.target.len()
    }

    /// The column called `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Feature names in column order.
    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// Fraction of rows whose target is 1; zero for an empty dataset.
    pub fn positive_rate(&self) -> f64 {
        if self.target.is_empty() {
            return 0.0;
        }
        let positives = self.target.iter().filter(|&&t| t == 1).count();
        positives as f64 / self.target.len() as f64
    }

    /// The cells of row `index` in column order.
    ///
    /// # Panics
    /// If `index` is not below [`Dataset::n_rows`].
    pub fn row(&self, index: usize) -> Vec<Cell<'_>> {
        self.columns
            .iter()
            .map(|column| match &column.data {
                ColumnData::Numeric(values) => Cell::Number(values[index]),
                ColumnData::Categorical(values) => Cell::Category(&values[index]),
            })
            .collect()
    }

    /// A new dataset holding the given rows, in the order given (repeats allowed).
    ///
    /// # Panics
    /// If an index is not below [`Dataset::n_rows`].
    pub fn subset(&self, rows: &[usize]) -> Dataset {
        let columns = self
            .columns
            .iter()
            .map(|column| Column {
                name: column.name.clone(),
                data: match &column.data {
                    ColumnData::Numeric(values) => {
                        ColumnData::Numeric(rows.iter().map(|&r| values[r]).collect())
                    }
                    ColumnData::Categorical(values) => {
                        ColumnData::Categorical(rows.iter().map(|&r| values[r].clone()).collect())
                    }
                },
            })
            .collect();
        Dataset {
            columns,
            target: rows.iter().map(|&r| self.target[r]).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Dataset {
        Dataset::new(
            vec![
                Column::numeric("tenure_months", vec![3.0, 10.0, 24.0]),
                Column::numeric("avg_session_minutes", vec![30.5, 12.0, 40.25]),
                Column::categorical(
                    "plan_type",
                    vec!["basic".into(), "premium".into(), "basic".into()],
                ),
            ],
            vec![1, 0, 0],
        )
        .unwrap()
    }

    #[test]
    fn kinds_distinguish_integers_numbers_and_categories() {
        let ds = small();
        let kinds: Vec<_> = ds.columns.iter().map(Column::kind).collect();
        assert_eq!(
            kinds,
            [
                FeatureKind::Integer,
                FeatureKind::Number,
                FeatureKind::Categorical
            ]
        );
    }

    #[test]
    fn subset_selects_rows_in_order_across_all_columns() {
        let sub = small().subset(&[2, 0]);
        assert_eq!(sub.n_rows(), 2);
        assert_eq!(sub.target, [0, 1]);
        assert_eq!(sub.columns[0].data, ColumnData::Numeric(vec![24.0, 3.0]));
        assert_eq!(
            sub.columns[2].data,
            ColumnData::Categorical(vec!["basic".into(), "basic".into()])
        );
        assert_eq!(
            sub.row(1),
            [
                Cell::Number(3.0),
                Cell::Number(30.5),
                Cell::Category("basic")
            ]
        );
    }

    #[test]
    fn validation_names_the_column_or_row_at_fault() {
        let short = Dataset::new(vec![Column::numeric("a", vec![1.0])], vec![0, 1]);
        assert_eq!(
            short.unwrap_err().to_string(),
            "column `a` has 1 values but the target has 2"
        );
        let twice = Dataset::new(
            vec![
                Column::numeric("a", vec![1.0]),
                Column::numeric("a", vec![2.0]),
            ],
            vec![0],
        );
        assert!(matches!(twice, Err(DatasetError::Duplicate { column }) if column == "a"));
        let nan = Dataset::new(vec![Column::numeric("x", vec![1.0, f64::NAN])], vec![0, 1]);
        assert!(matches!(nan, Err(DatasetError::NonFinite { row: 2, .. })));
        let label = Dataset::new(vec![], vec![0, 2]);
        assert!(matches!(
            label,
            Err(DatasetError::Target { row: 2, value: 2 })
        ));
    }

    #[test]
    fn positive_rate_and_names() {
        let ds = small();
        assert!((ds.positive_rate() - 1.0 / 3.0).abs() < 1e-15);
        assert_eq!(
            ds.names(),
            ["tenure_months", "avg_session_minutes", "plan_type"]
        );
        assert!(ds.column("region").is_none());
        assert_eq!(Dataset::new(vec![], vec![]).unwrap().positive_rate(), 0.0);
    }
}
