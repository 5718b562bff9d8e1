//! Training-set statistics saved with a model, for the lab's drift check (which compares recent
//! request means with the training mean in units of the training standard deviation) and for
//! the server's range validation. The serialised shape is a superset of the model ABI's
//! `TrainingStats`, so the host can embed it directly; the extra `min`/`max` are ignored there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dataset::{ColumnData, Dataset};
use crate::fit::mean_and_std;

/// Summary of one numeric feature over the training rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NumericStats {
    /// Arithmetic mean.
    pub mean: f64,
    /// Population standard deviation (divisor n), as the lab's drift z-score uses.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// Statistics of the rows a model was trained on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingStats {
    /// Number of training rows.
    pub n_rows: u64,
    /// Per numeric feature.
    pub numeric: BTreeMap<String, NumericStats>,
    /// Per categorical feature, each category's fraction of the rows (ordered by category).
    pub categorical: BTreeMap<String, BTreeMap<String, f64>>,
}

impl TrainingStats {
    /// Computes the statistics of `data`. An empty dataset yields zeros rather than NaN, so the
    /// result always serialises to valid JSON.
    pub fn from_dataset(data: &Dataset) -> Self {
        let mut stats = TrainingStats {
            n_rows: data.n_rows() as u64,
            ..Default::default()
        };
        for column in &data.columns {
            match &column.data {
                ColumnData::Numeric(values) => {
                    let (mean, std) = mean_and_std(values);
                    let min = values.iter().copied().reduce(f64::min).unwrap_or(0.0);
                    let max = values.iter().copied().reduce(f64::max).unwrap_or(0.0);
                    stats.numeric.insert(
                        column.name.clone(),
                        NumericStats {
                            mean,
                            std,
                            min,
                            max,
                        },
                    );
                }
                ColumnData::Categorical(values) => {
                    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                    for value in values {
                        *counts.entry(value.clone()).or_default() += 1;
                    }
                    let n = values.len() as f64;
                    let fractions = counts
                        .into_iter()
                        .map(|(category, count)| (category, count as f64 / n))
                        .collect();
                    stats.categorical.insert(column.name.clone(), fractions);
                }
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Column;

    #[test]
    fn numeric_moments_and_category_fractions() {
        let data = Dataset::new(
            vec![
                Column::numeric("x", vec![2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]),
                Column::categorical(
                    "region",
                    ["EU", "NA", "EU", "AS", "EU", "NA", "EU", "EU"]
                        .map(String::from)
                        .to_vec(),
                ),
            ],
            vec![0; 8],
        )
        .unwrap();
        let stats = TrainingStats::from_dataset(&data);
        assert_eq!(stats.n_rows, 8);
        // The textbook example: mean 5, population standard deviation exactly 2.
        assert_eq!(
            stats.numeric["x"],
            NumericStats {
                mean: 5.0,
                std: 2.0,
                min: 2.0,
                max: 9.0
            }
        );
        let regions: Vec<(&str, f64)> = stats.categorical["region"]
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(regions, [("AS", 0.125), ("EU", 0.625), ("NA", 0.25)]);
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["numeric"]["x"]["std"], 2.0);
    }

    #[test]
    fn empty_data_gives_zeros() {
        let data = Dataset::new(vec![Column::numeric("x", vec![])], vec![]).unwrap();
        let stats = TrainingStats::from_dataset(&data);
        assert_eq!(stats.numeric["x"].mean, 0.0);
        assert!(serde_json::to_string(&stats).is_ok());
    }
}
