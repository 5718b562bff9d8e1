//! Training-set statistics saved with a model, for the lab's drift check (which compares recent
//! request means with the training mean in units of the training standard deviation) and for
//! the server's range validation. The part a model carries is the model ABI's own
//! [`TrainingStats`]; the numeric ranges, which only decide request ranges at training time,
//! sit beside it.

use std::collections::BTreeMap;

pub use modelhost_abi::info::{NumericStats, TrainingStats};

use crate::dataset::{ColumnData, Dataset};
use crate::fit::mean_and_std;

/// The smallest and largest training value of a numeric feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumericRange {
    pub min: f64,
    pub max: f64,
}

/// Statistics of the rows a model was trained on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetStats {
    /// What the model's info document carries (drift statistics).
    pub training: TrainingStats,
    /// Per numeric feature, its training range.
    pub ranges: BTreeMap<String, NumericRange>,
}

impl DatasetStats {
    /// Computes the statistics of `data`. An empty dataset yields zeros rather than NaN, so the
    /// result always serialises to valid JSON.
    pub fn from_dataset(data: &Dataset) -> Self {
        let mut stats = DatasetStats {
            training: TrainingStats {
                n_rows: data.n_rows() as u64,
                ..Default::default()
            },
            ranges: BTreeMap::new(),
        };
        for column in &data.columns {
            match &column.data {
                ColumnData::Numeric(values) => {
                    let (mean, std) = mean_and_std(values);
                    let min = values.iter().copied().reduce(f64::min).unwrap_or(0.0);
                    let max = values.iter().copied().reduce(f64::max).unwrap_or(0.0);
                    let name = column.name.clone();
                    stats
                        .training
                        .numeric
                        .insert(name.clone(), NumericStats { mean, std });
                    stats.ranges.insert(name, NumericRange { min, max });
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
                    stats
                        .training
                        .categorical
                        .insert(column.name.clone(), fractions);
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
        let DatasetStats {
            training: stats,
            ranges,
        } = DatasetStats::from_dataset(&data);
        assert_eq!(stats.n_rows, 8);
        // The textbook example: mean 5, population standard deviation exactly 2.
        assert_eq!(
            stats.numeric["x"],
            NumericStats {
                mean: 5.0,
                std: 2.0
            }
        );
        assert_eq!(ranges["x"], NumericRange { min: 2.0, max: 9.0 });
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
        let stats = DatasetStats::from_dataset(&data).training;
        assert_eq!(stats.numeric["x"].mean, 0.0);
        assert!(serde_json::to_string(&stats).is_ok());
    }
}
