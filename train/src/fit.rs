//! The lab's model, fitted and applied: standardise numeric columns, one-hot encode categorical
//! ones, then L2-regularised logistic regression, exactly as scikit-learn's
//! `Pipeline(ColumnTransformer(StandardScaler, OneHotEncoder(handle_unknown="ignore")),
//! LogisticRegression(C))` defines it. This module owns the encoding, the fitted parameters and
//! prediction; the optimisation itself lives in [`crate::solver`].

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::dataset::{Cell, ColumnData, Dataset, DatasetError, FeatureKind};
use crate::solver::{self, Design, sigmoid};

/// The largest model accepted, counting the intercept and every one-hot category. The solver
/// holds a dense Hessian of this size squared, and a column with thousands of categories is
/// almost certainly an identifier that should not be a feature.
pub const MAX_PARAMETERS: usize = 2_000;

/// Why a model could not be fitted.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FitError {
    /// `C` is zero, negative or not finite.
    #[error("regularisation strength `c` must be positive and finite, got {c}")]
    InvalidC { c: f64 },
    /// The dataset breaks a shape rule.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// There is nothing to fit.
    #[error("the training data has no rows")]
    Empty,
    /// Only one class is present, so the unpenalised intercept would run off to infinity.
    #[error("the target holds only class {class}; fitting needs both 0 and 1")]
    SingleClass { class: u8 },
    /// The one-hot encoding would be too wide.
    #[error(
        "column `{column}` has {categories} categories, pushing the model past {MAX_PARAMETERS} parameters"
    )]
    TooManyCategories { column: String, categories: usize },
    /// Newton's method stopped short of the optimum.
    #[error(
        "the solver did not converge after {iterations} iterations (gradient norm {gradient_norm:e})"
    )]
    NoConvergence {
        iterations: usize,
        gradient_norm: f64,
    },
}

/// Why a row could not be scored.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PredictError {
    /// The row has the wrong number of cells.
    #[error("row has {got} values but the model has {expected} features")]
    RowLength { expected: usize, got: usize },
    /// A cell's type does not match its feature.
    #[error("feature `{column}` expects a {expected} value")]
    WrongKind {
        column: String,
        expected: &'static str,
    },
    /// A numeric cell is NaN or infinite.
    #[error("feature `{column}` must be a finite number")]
    NonFinite { column: String },
    /// A dataset lacks one of the model's features.
    #[error("feature `{column}` is missing from the data")]
    MissingColumn { column: String },
}

/// One fitted feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FittedFeature {
    /// Contributes `(x − mean) / scale · coef`.
    Numeric {
        name: String,
        kind: FeatureKind,
        mean: f64,
        /// Population standard deviation, or 1 for a constant column (as `StandardScaler`).
        scale: f64,
        coef: f64,
    },
    /// Contributes `coefs[k]` for the k-th vocabulary entry and nothing for an unknown value.
    Categorical {
        name: String,
        /// Training categories, sorted by code point (as `OneHotEncoder`).
        vocabulary: Vec<String>,
        coefs: Vec<f64>,
    },
}

impl FittedFeature {
    /// The feature's column name.
    pub fn name(&self) -> &str {
        match self {
            FittedFeature::Numeric { name, .. } | FittedFeature::Categorical { name, .. } => name,
        }
    }

    /// This feature's additive contribution to the log-odds for one cell.
    fn contribution(&self, cell: Cell<'_>) -> Result<f64, PredictError> {
        match (self, cell) {
            (
                FittedFeature::Numeric {
                    mean, scale, coef, ..
                },
                Cell::Number(x),
            ) => {
                if !x.is_finite() {
                    return Err(PredictError::NonFinite {
                        column: self.name().to_string(),
                    });
                }
                Ok((x - mean) / scale * coef)
            }
            (
                FittedFeature::Categorical {
                    vocabulary, coefs, ..
                },
                Cell::Category(value),
            ) => Ok(vocabulary
                .binary_search_by(|probe| probe.as_str().cmp(value))
                .map_or(0.0, |k| coefs[k])),
            (FittedFeature::Numeric { .. }, Cell::Category(_)) => Err(PredictError::WrongKind {
                column: self.name().to_string(),
                expected: "numeric",
            }),
            (FittedFeature::Categorical { .. }, Cell::Number(_)) => Err(PredictError::WrongKind {
                column: self.name().to_string(),
                expected: "categorical",
            }),
        }
    }
}

/// How the solver finished.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Convergence {
    /// Newton steps taken.
    pub iterations: usize,
    /// Norm of the objective's gradient at the returned parameters.
    pub gradient_norm: f64,
}

/// A fitted pipeline: per-feature preprocessing and coefficients, plus the intercept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedPipeline {
    /// Features in the training dataset's column order.
    pub features: Vec<FittedFeature>,
    /// The unpenalised intercept.
    pub intercept: f64,
    /// Solver diagnostics.
    pub convergence: Convergence,
}

impl FittedPipeline {
    /// Feature names in order; a row for [`FittedPipeline::predict_proba`] follows this order.
    pub fn feature_names(&self) -> Vec<&str> {
        self.features.iter().map(FittedFeature::name).collect()
    }

    /// The log-odds for one row given in feature order. Categorical values must already be
    /// normalised by their feature's case rule ([`crate::FeatureRule::case_rule`]); a value outside the vocabulary contributes zero.
    pub fn decision(&self, row: &[Cell<'_>]) -> Result<f64, PredictError> {
        if row.len() != self.features.len() {
            return Err(PredictError::RowLength {
                expected: self.features.len(),
                got: row.len(),
            });
        }
        let mut z = self.intercept;
        for (feature, &cell) in self.features.iter().zip(row) {
            z += feature.contribution(cell)?;
        }
        Ok(z)
    }

    /// The churn probability for one row given in feature order.
    pub fn predict_proba(&self, row: &[Cell<'_>]) -> Result<f64, PredictError> {
        self.decision(row).map(sigmoid)
    }

    /// Probabilities for every row of `data`, whose columns are matched to features by name
    /// (extra columns are ignored).
    pub fn predict_dataset(&self, data: &Dataset) -> Result<Vec<f64>, PredictError> {
        let mut columns = Vec::with_capacity(self.features.len());
        for feature in &self.features {
            let column =
                data.column(feature.name())
                    .ok_or_else(|| PredictError::MissingColumn {
                        column: feature.name().to_string(),
                    })?;
            columns.push(column);
        }
        (0..data.n_rows())
            .map(|i| {
                let row: Vec<Cell<'_>> = columns
                    .iter()
                    .map(|column| match &column.data {
                        ColumnData::Numeric(values) => Cell::Number(values[i]),
                        ColumnData::Categorical(values) => Cell::Category(&values[i]),
                    })
                    .collect();
                self.predict_proba(&row)
            })
            .collect()
    }
}

/// Mean and population standard deviation (divisor n), two-pass for accuracy.
pub(crate) fn mean_and_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, variance.sqrt())
}

/// Fits the lab's pipeline to `data` with inverse regularisation strength `c` (1.0 in the lab).
pub fn fit_logistic(data: &Dataset, c: f64) -> Result<FittedPipeline, FitError> {
    if !(c > 0.0 && c.is_finite()) {
        return Err(FitError::InvalidC { c });
    }
    data.validate()?;
    let n = data.n_rows();
    if n == 0 {
        return Err(FitError::Empty);
    }
    let positives = data.target.iter().filter(|&&t| t == 1).count();
    if positives == 0 || positives == n {
        return Err(FitError::SingleClass {
            class: data.target[0],
        });
    }

    // Preprocessing parameters first, each feature taking the next block of parameter indices.
    let mut features = Vec::with_capacity(data.columns.len());
    let mut offsets = Vec::with_capacity(data.columns.len());
    let mut n_params = 1;
    for column in &data.columns {
        offsets.push(n_params);
        match &column.data {
            ColumnData::Numeric(values) => {
                let (mean, std) = mean_and_std(values);
                // A constant column must standardise to exact zeros so that it gets no weight:
                // its mean is taken as the constant itself (a computed mean can be off by an
                // ulp), and scale 1 avoids dividing by a zero deviation.
                let constant = values.iter().all(|&v| v == values[0]);
                features.push(FittedFeature::Numeric {
                    name: column.name.clone(),
                    kind: column.kind(),
                    mean: if constant { values[0] } else { mean },
                    scale: if constant { 1.0 } else { std },
                    coef: 0.0,
                });
                n_params += 1;
            }
            ColumnData::Categorical(values) => {
                let mut vocabulary: Vec<String> = values.clone();
                vocabulary.sort_unstable();
                vocabulary.dedup();
                n_params += vocabulary.len();
                if n_params > MAX_PARAMETERS {
                    return Err(FitError::TooManyCategories {
                        column: column.name.clone(),
                        categories: vocabulary.len(),
                    });
                }
                features.push(FittedFeature::Categorical {
                    name: column.name.clone(),
                    coefs: vec![0.0; vocabulary.len()],
                    vocabulary,
                });
            }
        }
    }

    let design = encode(data, &features, &offsets, n_params);
    let rate = positives as f64 / n as f64;
    let mut start = vec![0.0; n_params];
    // Starting at the intercept-only optimum saves a Newton step or two.
    start[0] = (rate / (1.0 - rate)).ln();
    let solution =
        solver::minimise(&design, &data.target, c, start).map_err(|e| FitError::NoConvergence {
            iterations: e.iterations,
            gradient_norm: e.gradient_norm,
        })?;

    for (feature, &offset) in features.iter_mut().zip(&offsets) {
        match feature {
            FittedFeature::Numeric { coef, .. } => *coef = solution.beta[offset],
            FittedFeature::Categorical { coefs, .. } => {
                let k = coefs.len();
                coefs.copy_from_slice(&solution.beta[offset..offset + k]);
            }
        }
    }
    Ok(FittedPipeline {
        features,
        intercept: solution.beta[0],
        convergence: Convergence {
            iterations: solution.iterations,
            gradient_norm: solution.gradient_norm,
        },
    })
}

/// Builds the sparse design: per row the intercept, one standardised value per numeric feature
/// and a single 1 at the row's category for each categorical feature.
fn encode(
    data: &Dataset,
    features: &[FittedFeature],
    offsets: &[usize],
    n_params: usize,
) -> Design {
    let width = 1 + features.len();
    let n = data.n_rows();
    let mut index = Vec::with_capacity(n * width);
    let mut value = Vec::with_capacity(n * width);
    for i in 0..n {
        index.push(0);
        value.push(1.0);
        for ((feature, column), &offset) in features.iter().zip(&data.columns).zip(offsets) {
            index.push(match (feature, &column.data) {
                (FittedFeature::Categorical { vocabulary, .. }, ColumnData::Categorical(v)) => {
                    // Every training value is in the vocabulary built from it.
                    offset + vocabulary.binary_search(&v[i]).unwrap_or(0)
                }
                _ => offset,
            });
            value.push(match (feature, &column.data) {
                (FittedFeature::Numeric { mean, scale, .. }, ColumnData::Numeric(v)) => {
                    (v[i] - mean) / scale
                }
                _ => 1.0,
            });
        }
    }
    Design {
        n_params,
        width,
        index,
        value,
    }
}

// The tests live in `fit/tests.rs` to keep this file about the model itself.
#[cfg(test)]
mod tests;
