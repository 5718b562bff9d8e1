//! Exports the lab's synthetic churn data as CSV, and optionally the probabilities this crate's
//! fit (C = 1, all rows) assigns to each row, as a JSON array. Together with
//! `tests/sklearn_check.py` this compares the Rust solver with scikit-learn on identical data:
//!
//! `cargo run -p modelhost-train --example export_synth -- 1200 42 churn.csv rust.json`

use std::path::Path;
use std::process::ExitCode;

use modelhost_train::{CHURN_TARGET, fit_logistic, synthetic_churn, write_csv};

fn run(args: &[String]) -> Result<(), String> {
    let [n_rows, seed, csv_path, rest @ ..] = args else {
        return Err("usage: export_synth N_ROWS SEED OUT.csv [PROBS.json]".to_string());
    };
    let n_rows: usize = n_rows
        .parse()
        .map_err(|_| format!("N_ROWS must be a non-negative integer, got {n_rows:?}"))?;
    let seed: u64 = seed
        .parse()
        .map_err(|_| format!("SEED must be a non-negative integer, got {seed:?}"))?;
    let data = synthetic_churn(n_rows, seed);
    write_csv(&data, CHURN_TARGET, Path::new(csv_path)).map_err(|e| e.to_string())?;
    if let [probs_path] = rest {
        let model = fit_logistic(&data, 1.0).map_err(|e| e.to_string())?;
        let probs = model.predict_dataset(&data).map_err(|e| e.to_string())?;
        let json = serde_json::to_string(&probs).map_err(|e| e.to_string())?;
        std::fs::write(probs_path, json)
            .map_err(|e| format!("cannot write `{probs_path}`: {e}"))?;
    } else if !rest.is_empty() {
        return Err("usage: export_synth N_ROWS SEED OUT.csv [PROBS.json]".to_string());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("export_synth: {message}");
            ExitCode::FAILURE
        }
    }
}
