//! The lab's synthetic churn generator, reproduced column by column and made deterministic: the
//! same `(n_rows, seed)` always yields the same data. The random stream is ChaCha8, whose output
//! is fixed by its specification, rather than `StdRng`, whose algorithm may change between `rand`
//! releases. The samplers on top of the stream (`rand`'s uniform integers, `rand_distr`'s
//! Poisson and Normal) are value-stable within their minor versions; a test pins known rows so
//! that an upgrade which changes them is noticed rather than silently changing every dataset.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};

use crate::dataset::{Column, Dataset};
use crate::solver::sigmoid;

/// Name of the target column the lab uses.
pub const CHURN_TARGET: &str = "churn";

/// The lab's feature columns, in schema order.
pub const CHURN_FEATURES: [&str; 5] = [
    "tenure_months",
    "num_complaints",
    "avg_session_minutes",
    "plan_type",
    "region",
];

/// Plan types with their probabilities.
const PLANS: [(&str, f64); 2] = [("basic", 0.72), ("premium", 0.28)];

/// Regions with their probabilities. `NA` is North America, a real category and not a null.
const REGIONS: [(&str, f64); 4] = [("NA", 0.25), ("EU", 0.30), ("AF", 0.25), ("AS", 0.20)];

/// The lab's true churn log-odds for one customer.
fn churn_logit(tenure: f64, complaints: f64, session: f64, plan: &str, region: &str) -> f64 {
    let premium = if plan == "premium" { 1.0 } else { 0.0 };
    let eu = if region == "EU" { 1.0 } else { 0.0 };
    let af = if region == "AF" { 1.0 } else { 0.0 };
    1.2 + 0.55 * complaints - 0.03 * tenure - 0.02 * session - 0.35 * premium - 0.05 * eu
        + 0.08 * af
}

/// Draws one label from a small weighted list; the weights sum to one.
fn pick<'a>(rng: &mut ChaCha8Rng, choices: &[(&'a str, f64)]) -> &'a str {
    let u: f64 = rng.random();
    let mut cumulative = 0.0;
    for &(label, weight) in choices {
        cumulative += weight;
        if u < cumulative {
            return label;
        }
    }
    // Rounding can leave the cumulative sum a hair below one; the last label takes that sliver.
    choices[choices.len() - 1].0
}

/// Generates `n_rows` customers the way the lab did, deterministically from `seed`.
///
/// Columns, in order: `tenure_months` (uniform integers 1..=59), `num_complaints`
/// (Poisson(1.2)), `avg_session_minutes` (Normal(35, 12) clipped to [1, 120] and rounded to two
/// decimals), `plan_type` (basic 0.72 / premium 0.28) and `region` (NA 0.25 / EU 0.30 /
/// AF 0.25 / AS 0.20). The target is Bernoulli(sigmoid(1.2 + 0.55·complaints − 0.03·tenure −
/// 0.02·session − 0.35·\[premium\] − 0.05·\[EU\] + 0.08·\[AF\])).
///
/// Each column is drawn in full before the next, as the lab's vectorised code did, so a column's
/// values do not depend on how many draws another column's sampler happens to consume.
pub fn synthetic_churn(n_rows: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let poisson = Poisson::new(1.2).expect("1.2 is a valid Poisson rate");
    let normal = Normal::new(35.0, 12.0).expect("12 is a valid standard deviation");

    let tenure: Vec<f64> = (0..n_rows)
        .map(|_| f64::from(rng.random_range(1..=59_u32)))
        .collect();
    let complaints: Vec<f64> = (0..n_rows).map(|_| poisson.sample(&mut rng)).collect();
    let session: Vec<f64> = (0..n_rows)
        .map(|_| {
            let minutes: f64 = normal.sample(&mut rng);
            (minutes.clamp(1.0, 120.0) * 100.0).round() / 100.0
        })
        .collect();
    let plans: Vec<String> = (0..n_rows)
        .map(|_| pick(&mut rng, &PLANS).to_string())
        .collect();
    let regions: Vec<String> = (0..n_rows)
        .map(|_| pick(&mut rng, &REGIONS).to_string())
        .collect();
    let target: Vec<u8> = (0..n_rows)
        .map(|i| {
            let p = sigmoid(churn_logit(
                tenure[i],
                complaints[i],
                session[i],
                &plans[i],
                &regions[i],
            ));
            let u: f64 = rng.random();
            u8::from(u < p)
        })
        .collect();

    let [
        tenure_name,
        complaints_name,
        session_name,
        plan_name,
        region_name,
    ] = CHURN_FEATURES;
    Dataset {
        columns: vec![
            Column::numeric(tenure_name, tenure),
            Column::numeric(complaints_name, complaints),
            Column::numeric(session_name, session),
            Column::categorical(plan_name, plans),
            Column::categorical(region_name, regions),
        ],
        target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{ColumnData, FeatureKind};

    fn numbers<'a>(ds: &'a Dataset, name: &str) -> &'a [f64] {
        match &ds.column(name).unwrap().data {
            ColumnData::Numeric(values) => values,
            ColumnData::Categorical(_) => panic!("{name} should be numeric"),
        }
    }

    fn frequency(ds: &Dataset, name: &str, label: &str) -> f64 {
        match &ds.column(name).unwrap().data {
            ColumnData::Categorical(values) => {
                values.iter().filter(|v| *v == label).count() as f64 / values.len() as f64
            }
            ColumnData::Numeric(_) => panic!("{name} should be categorical"),
        }
    }

    fn mean(values: &[f64]) -> f64 {
        values.iter().sum::<f64>() / values.len() as f64
    }

    #[test]
    fn columns_have_the_lab_schema_and_ranges() {
        let ds = synthetic_churn(2_000, 7);
        ds.validate().unwrap();
        assert_eq!(ds.names(), CHURN_FEATURES);
        let kinds: Vec<_> = ds.columns.iter().map(|c| c.kind()).collect();
        assert_eq!(
            kinds,
            [
                FeatureKind::Integer,
                FeatureKind::Integer,
                FeatureKind::Number,
                FeatureKind::Categorical,
                FeatureKind::Categorical
            ]
        );
        let tenure = numbers(&ds, "tenure_months");
        assert!(tenure.iter().all(|&t| (1.0..=59.0).contains(&t)));
        // Both ends of the inclusive range must be reachable in 2 000 draws.
        assert!(tenure.contains(&1.0) && tenure.contains(&59.0));
        let session = numbers(&ds, "avg_session_minutes");
        assert!(session.iter().all(|&s| (1.0..=120.0).contains(&s)));
        assert!(
            session
                .iter()
                .all(|&s| ((s * 100.0).round() - s * 100.0).abs() < 1e-6)
        );
        assert!(numbers(&ds, "num_complaints").iter().all(|&c| c >= 0.0));
    }

    #[test]
    fn distributions_match_the_lab_on_20000_rows() {
        let ds = synthetic_churn(20_000, 42);
        // Standard errors at n = 20 000: tenure 0.12, complaints 0.008, session 0.085,
        // frequencies about 0.0033; the tolerances below are roughly four of them.
        assert!((mean(numbers(&ds, "tenure_months")) - 30.0).abs() < 0.5);
        assert!((mean(numbers(&ds, "num_complaints")) - 1.2).abs() < 0.035);
        assert!((mean(numbers(&ds, "avg_session_minutes")) - 35.0).abs() < 0.35);
        assert!((frequency(&ds, "plan_type", "premium") - 0.28).abs() < 0.013);
        for (region, p) in REGIONS {
            assert!(
                (frequency(&ds, "region", region) - p).abs() < 0.013,
                "{region}"
            );
        }
        // The label must follow the stated model: its rate matches the mean true probability.
        let expected: f64 = (0..ds.n_rows())
            .map(|i| {
                let row = ds.row(i);
                let [
                    crate::Cell::Number(t),
                    crate::Cell::Number(c),
                    crate::Cell::Number(s),
                    crate::Cell::Category(plan),
                    crate::Cell::Category(region),
                ] = row[..]
                else {
                    panic!("unexpected row shape");
                };
                sigmoid(churn_logit(t, c, s, plan, region))
            })
            .sum::<f64>()
            / ds.n_rows() as f64;
        assert!((ds.positive_rate() - expected).abs() < 0.015);
    }

    #[test]
    fn seed_42_starts_with_the_pinned_rows() {
        // Recorded from this generator; the scikit-learn comparison in `fit` uses the same data.
        let ds = synthetic_churn(1_200, 42);
        assert_eq!(
            ds.row(0),
            [
                crate::Cell::Number(14.0),
                crate::Cell::Number(1.0),
                crate::Cell::Number(24.56),
                crate::Cell::Category("premium"),
                crate::Cell::Category("AF"),
            ]
        );
        assert_eq!(ds.target[..2], [1, 0]);
        assert_eq!(
            ds.row(1),
            [
                crate::Cell::Number(41.0),
                crate::Cell::Number(2.0),
                crate::Cell::Number(43.41),
                crate::Cell::Category("basic"),
                crate::Cell::Category("NA"),
            ]
        );
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        assert_eq!(synthetic_churn(500, 42), synthetic_churn(500, 42));
        assert_ne!(synthetic_churn(500, 42), synthetic_churn(500, 43));
    }
}
