//! Tests of CSV reading and writing, including a file round trip of the synthetic data.

use super::*;
use crate::synth::{CHURN_TARGET, synthetic_churn};

fn read(text: &str, overrides: &KindOverrides) -> Result<RawTable, DataError> {
    read_csv_from(text.as_bytes(), "churn", overrides)
}

#[test]
fn infers_types_and_keeps_na_as_a_category() {
    let raw = read(
        "tenure,region,zip,churn\n3,NA,02134,1\n,EU,10001,0\n7.5, na ,94105,\n",
        &KindOverrides::default(),
    )
    .unwrap();
    assert_eq!(raw.n_rows(), 3);
    assert_eq!(
        raw.columns[0].data,
        RawData::Numeric(vec![Some(3.0), None, Some(7.5)])
    );
    assert_eq!(
        raw.columns[1].data,
        RawData::Categorical(vec![
            Some("NA".into()),
            Some("EU".into()),
            Some(" na ".into())
        ])
    );
    assert_eq!(raw.columns[1].data.null_count(), 0);
    assert_eq!(raw.target, [Some("1".into()), Some("0".into()), None]);
    // Zip codes look numeric and are inferred so; overriding keeps their leading zero.
    let forced = KindOverrides {
        categorical: vec!["zip".into()],
        ..Default::default()
    };
    let raw = read("zip,churn\n02134,1\n", &forced).unwrap();
    assert_eq!(
        raw.columns[0].data,
        RawData::Categorical(vec![Some("02134".into())])
    );
}

#[test]
fn forced_numeric_column_reports_column_and_row() {
    let forced = KindOverrides {
        numeric: vec!["minutes".into()],
        ..Default::default()
    };
    let err = read("minutes,churn\n1.5,0\n2,1\nlots,0\n", &forced).unwrap_err();
    assert_eq!(
        err.to_string(),
        "column `minutes` must be numeric but row 3 holds \"lots\""
    );
    // Without the override the same column is simply categorical.
    let raw = read("minutes,churn\n1.5,0\nlots,0\n", &KindOverrides::default()).unwrap();
    assert!(matches!(raw.columns[0].data, RawData::Categorical(_)));
    // NaN is not a number one can train on.
    let err = read("minutes,churn\nNaN,0\n", &forced).unwrap_err();
    assert!(matches!(err, DataError::NotNumeric { row: 1, .. }));
}

#[test]
fn header_and_override_problems_name_the_column() {
    let none = KindOverrides::default();
    let err = read("a,b\n1,2\n", &none).unwrap_err();
    assert_eq!(err.to_string(), "required column `churn` is missing");
    let err = read("a,a,churn\n1,2,0\n", &none).unwrap_err();
    assert!(matches!(err, DataError::DuplicateColumn { column } if column == "a"));
    let ghost = KindOverrides {
        numeric: vec!["ghost".into()],
        ..Default::default()
    };
    let err = read("a,churn\n1,0\n", &ghost).unwrap_err();
    assert!(err.to_string().contains("`ghost`"));
    let both = KindOverrides {
        numeric: vec!["a".into()],
        categorical: vec!["a".into()],
    };
    let err = read("a,churn\n1,0\n", &both).unwrap_err();
    assert!(matches!(err, DataError::ConflictingOverride { .. }));
    let target = KindOverrides {
        categorical: vec!["churn".into()],
        ..Default::default()
    };
    let err = read("a,churn\n1,0\n", &target).unwrap_err();
    assert!(matches!(err, DataError::TargetOverride { .. }));
    let err = read("a,churn\n1,0\n1,0,9\n", &none).unwrap_err();
    assert!(matches!(err, DataError::Csv(_)));
}

#[test]
fn synthetic_data_round_trips_through_a_file() {
    let ds = synthetic_churn(300, 5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("churn.csv");
    write_csv(&ds, CHURN_TARGET, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with(
            "tenure_months,num_complaints,avg_session_minutes,plan_type,region,churn\n"
        )
    );
    let raw = read_csv(
        &path,
        CHURN_TARGET,
        &crate::ModelSpec::churn().kind_overrides(),
    )
    .unwrap();
    let (back, summary) = crate::clean::clean_and_check(raw, &crate::ModelSpec::churn()).unwrap();
    assert_eq!(back, ds);
    assert_eq!(summary.n_dropped, 0);
}

#[test]
fn missing_file_error_names_the_path() {
    let err = read_csv(
        Path::new("/nonexistent/x.csv"),
        "churn",
        &KindOverrides::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot access `/nonexistent/x.csv`")
    );
}
