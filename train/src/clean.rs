//! The lab's cleaning and quality gate, turning a [`RawTable`] into a trainable [`Dataset`].
//!
//! Checks, in order, each failing the run with an error that names the column (and row) at
//! fault: required columns present; at most [`MAX_NULL_FRACTION`] nulls per column; target 0/1.
//! The lab's third check, "numeric columns are numeric", is made while reading, by forcing those
//! columns with [`crate::csvdata::KindOverrides`] (see [`ModelSpec::kind_overrides`]); a column
//! the spec declares `integer` must also hold only whole numbers.
//!
//! Cleaning follows the model's [`ModelSpec`], never a column name: numeric values are clipped
//! to the feature's `clip_min..=clip_max` (the churn spec clips `avg_session_minutes` at 0, the
//! lab's fix for negative durations), and categorical values are trimmed and then case-folded
//! by the feature's case rule (the churn spec lower-cases `plan_type` and upper-cases `region`).
//! A column the spec does not declare is kept as written.
//!
//! The lab's scikit-learn pipeline had no imputer, so a null would have crashed its fit; here
//! rows that still hold a null after the null-fraction check are dropped and counted in
//! [`DataSummary::n_dropped`].

use serde::{Deserialize, Serialize};

use crate::csvdata::{DataError, RawData, RawTable};
use crate::dataset::{Column, ColumnData, Dataset, FeatureKind};

/// Largest tolerated fraction of null cells in any one column (the lab's 5 %).
pub const MAX_NULL_FRACTION: f64 = 0.05;

/// How a categorical value is normalised: the model ABI's own rule, so training data and
/// requests are normalised by one piece of code.
pub use modelhost_abi::info::CaseRule;

use crate::spec::{FeatureRule, ModelSpec, SpecKind};

/// One column of a [`DataSummary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnSummary {
    /// Column name.
    pub name: String,
    /// Kind after cleaning.
    pub kind: FeatureKind,
    /// Fraction of the input rows that were null in this column.
    pub null_fraction: f64,
}

/// What the data looked like after cleaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// Rows kept.
    pub n_rows: usize,
    /// Rows dropped because they held a null.
    pub n_dropped: usize,
    /// Fraction of kept rows whose target is 1.
    pub churn_rate: f64,
    /// Feature columns in order.
    pub columns: Vec<ColumnSummary>,
}

impl DataSummary {
    /// The summary of a dataset that needed no cleaning (for example synthetic data).
    pub fn of(dataset: &Dataset) -> Self {
        DataSummary {
            n_rows: dataset.n_rows(),
            n_dropped: 0,
            churn_rate: dataset.positive_rate(),
            columns: dataset
                .columns
                .iter()
                .map(|c| ColumnSummary {
                    name: c.name.clone(),
                    kind: c.kind(),
                    null_fraction: 0.0,
                })
                .collect(),
        }
    }
}

/// Parses a target cell: `0` or `1`, also written as a float such as `1.0`.
fn parse_target(text: &str) -> Option<u8> {
    match text.trim().parse::<f64>() {
        Ok(0.0) => Some(0),
        Ok(1.0) => Some(1),
        _ => None,
    }
}

/// Runs the lab's checks and cleaning on `raw` (see the module documentation). Every feature of
/// `spec` must be present; the target is always required.
pub fn clean_and_check(
    raw: RawTable,
    spec: &ModelSpec,
) -> Result<(Dataset, DataSummary), DataError> {
    let n = raw.n_rows();
    if n == 0 {
        return Err(DataError::NoRows);
    }
    for name in spec.names() {
        if name != raw.target_name && !raw.columns.iter().any(|c| c.name == name) {
            return Err(DataError::MissingColumn {
                column: name.to_string(),
            });
        }
    }

    // Integer arithmetic makes "exactly 5 %" pass on every platform: nulls / n > 0.05.
    let too_many = |nulls: usize| nulls * 100 > n * 5;
    for column in &raw.columns {
        let nulls = column.data.null_count();
        if too_many(nulls) {
            return Err(DataError::TooManyNulls {
                column: column.name.clone(),
                fraction: nulls as f64 / n as f64,
            });
        }
    }
    let target_nulls = raw.target.iter().filter(|t| t.is_none()).count();
    if too_many(target_nulls) {
        return Err(DataError::TooManyNulls {
            column: raw.target_name.clone(),
            fraction: target_nulls as f64 / n as f64,
        });
    }

    let mut target = Vec::with_capacity(n);
    for (row, cell) in raw.target.iter().enumerate() {
        target.push(match cell {
            None => None,
            Some(text) => Some(parse_target(text).ok_or_else(|| DataError::BadTarget {
                column: raw.target_name.clone(),
                row: row + 1,
                value: text.clone(),
            })?),
        });
    }

    let mut keep: Vec<bool> = target.iter().map(Option::is_some).collect();
    for column in &raw.columns {
        for (row, kept) in keep.iter_mut().enumerate() {
            let null = match &column.data {
                RawData::Numeric(values) => values[row].is_none(),
                RawData::Categorical(values) => values[row].is_none(),
            };
            *kept &= !null;
        }
    }
    let n_kept = keep.iter().filter(|&&k| k).count();
    if n_kept == 0 {
        return Err(DataError::NoRowsLeft);
    }

    let mut summaries = Vec::with_capacity(raw.columns.len());
    let mut columns = Vec::with_capacity(raw.columns.len());
    for column in raw.columns {
        let null_fraction = column.data.null_count() as f64 / n as f64;
        let rule = spec
            .feature(&column.name)
            .cloned()
            .unwrap_or_else(|| FeatureRule::inferred(&column.name));
        let data = match column.data {
            RawData::Numeric(values) => {
                if rule.kind == SpecKind::Integer
                    && let Some((row, value)) = values
                        .iter()
                        .enumerate()
                        .find_map(|(row, v)| v.filter(|v| v.fract() != 0.0).map(|v| (row, v)))
                {
                    return Err(DataError::NotInteger {
                        column: column.name,
                        row: row + 1,
                        value,
                    });
                }
                ColumnData::Numeric(
                    values
                        .into_iter()
                        .zip(&keep)
                        .filter_map(|(v, &k)| if k { v } else { None })
                        .map(|v| rule.clip(v))
                        .collect(),
                )
            }
            RawData::Categorical(values) => {
                let rule = rule.case_rule();
                ColumnData::Categorical(
                    values
                        .into_iter()
                        .zip(&keep)
                        .filter_map(|(v, &k)| if k { v } else { None })
                        .map(|v| rule.apply(&v))
                        .collect(),
                )
            }
        };
        let column = Column {
            name: column.name,
            data,
        };
        summaries.push(ColumnSummary {
            name: column.name.clone(),
            kind: column.kind(),
            null_fraction,
        });
        columns.push(column);
    }
    let target: Vec<u8> = target
        .into_iter()
        .zip(&keep)
        .filter_map(|(t, &k)| if k { t } else { None })
        .collect();
    // Reading already guaranteed equal lengths, unique names and finite numbers, so this cannot
    // fail; the check stays so a future change that breaks those guarantees is caught here.
    let dataset = Dataset::new(columns, target)?;
    let summary = DataSummary {
        n_rows: n_kept,
        n_dropped: n - n_kept,
        churn_rate: dataset.positive_rate(),
        columns: summaries,
    };
    Ok((dataset, summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csvdata::{KindOverrides, read_csv_from};

    fn raw(text: &str) -> RawTable {
        read_csv_from(text.as_bytes(), "churn", &KindOverrides::default()).unwrap()
    }

    /// The churn spec's rules for the columns these tests use, none required.
    fn rules(names: &[&str]) -> ModelSpec {
        let names = names.iter().map(|n| n.to_string()).collect();
        ModelSpec::churn()
            .with_overrides(&crate::spec::SpecOverrides {
                features: Some(names),
                ..Default::default()
            })
            .unwrap()
    }

    /// The rules of [`twenty_rows`]' columns.
    fn twenty_rules() -> ModelSpec {
        rules(&["avg_session_minutes", "plan_type", "region"])
    }

    /// 20 rows so that one null is exactly 5 % and two are 10 %.
    fn twenty_rows(first_minutes: &str, second_minutes: &str) -> String {
        let mut text = String::from("avg_session_minutes,plan_type,region,churn\n");
        text.push_str(&format!("{first_minutes}, Premium ,na,1\n"));
        text.push_str(&format!("{second_minutes},BASIC, eu ,0\n"));
        for i in 0..18 {
            text.push_str(&format!("{}.5,basic,AF,{}\n", i, i % 2));
        }
        text
    }

    #[test]
    fn cleaning_clips_minutes_and_folds_case_but_keeps_na() {
        let (ds, summary) =
            clean_and_check(raw(&twenty_rows("-4", "12")), &twenty_rules()).unwrap();
        assert_eq!(summary.n_rows, 20);
        let ColumnData::Numeric(minutes) = &ds.columns[0].data else {
            panic!("minutes should be numeric");
        };
        assert_eq!(minutes[..2], [0.0, 12.0]);
        let ColumnData::Categorical(plans) = &ds.columns[1].data else {
            panic!("plan should be categorical");
        };
        assert_eq!(plans[..2], ["premium", "basic"]);
        let ColumnData::Categorical(regions) = &ds.columns[2].data else {
            panic!("region should be categorical");
        };
        assert_eq!(regions[..2], ["NA", "EU"]);
        assert_eq!(summary.columns[0].kind, FeatureKind::Number);
        assert!((summary.churn_rate - 10.0 / 20.0).abs() < 1e-12);
    }

    #[test]
    fn five_percent_nulls_pass_and_the_row_is_dropped() {
        let (ds, summary) = clean_and_check(raw(&twenty_rows("", "12")), &twenty_rules()).unwrap();
        assert_eq!((summary.n_rows, summary.n_dropped), (19, 1));
        assert_eq!(ds.n_rows(), 19);
        assert!((summary.columns[0].null_fraction - 0.05).abs() < 1e-12);
    }

    #[test]
    fn more_than_five_percent_nulls_fail_naming_column_and_fraction() {
        let err = clean_and_check(raw(&twenty_rows("", "")), &twenty_rules()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column `avg_session_minutes` is 10.00% null, more than the 5% allowed"
        );
    }

    #[test]
    fn missing_required_column_and_bad_target_are_named() {
        let err = clean_and_check(raw("a,churn\n1,0\n"), &rules(&["a", "region"])).unwrap_err();
        assert_eq!(err.to_string(), "required column `region` is missing");
        let err = clean_and_check(raw("a,churn\n1,0\n2,1.0\n3,yes\n"), &rules(&["a"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "target column `churn` must be 0 or 1 but row 3 holds \"yes\""
        );
        assert!(matches!(
            clean_and_check(raw("a,churn\n"), &rules(&["a"])),
            Err(DataError::NoRows)
        ));
    }

    #[test]
    fn rules_follow_the_spec_not_the_column_name() {
        // Another spec's `duration_minutes` is not clipped unless it says so, its `region` is
        // kept as written, and an `integer` column refuses a fraction, naming column and row.
        let spec = ModelSpec::parse(
            "target = \"churn\"\n[gate]\nf1_min = 0\n\
             [[features]]\nname = \"duration_minutes\"\nkind = \"numeric\"\n\
             [[features]]\nname = \"region\"\nkind = \"categorical\"\n\
             [[features]]\nname = \"visits\"\nkind = \"integer\"\nclip_max = 3\n",
            "other.toml",
        )
        .unwrap();
        let text = "duration_minutes,region,visits,churn\n-4,eu,7,1\n2.5,Af,1,0\n";
        let (ds, _) = clean_and_check(raw(text), &spec).unwrap();
        assert_eq!(ds.columns[0].data, ColumnData::Numeric(vec![-4.0, 2.5]));
        assert_eq!(
            ds.columns[1].data,
            ColumnData::Categorical(vec!["eu".into(), "Af".into()])
        );
        assert_eq!(ds.columns[2].data, ColumnData::Numeric(vec![3.0, 1.0]));
        let fraction = "duration_minutes,region,visits,churn\n1,eu,7,1\n2,Af,1.5,0\n";
        let err = clean_and_check(raw(fraction), &spec).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column `visits` must hold whole numbers but row 2 holds 1.5"
        );
    }

    #[test]
    fn case_rules_trim_and_fold() {
        let spec = rules(&[
            "plan_type",
            "region",
            "colour",
            "avg_session_minutes",
            "tenure_months",
        ]);
        let case = |name: &str| spec.feature(name).unwrap().case_rule();
        assert_eq!(case("plan_type").apply("  Premium "), "premium");
        assert_eq!(case("region").apply("eu"), "EU");
        assert_eq!(case("colour").apply(" Mixed "), "Mixed");
        let clip = |name: &str| spec.feature(name).unwrap().clip(-1.0);
        assert!(clip("avg_session_minutes") == 0.0 && clip("tenure_months") == -1.0);
        assert_eq!(
            serde_json::to_string(&CaseRule::Upper).unwrap(),
            "\"upper\""
        );
    }
}
