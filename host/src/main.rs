//! The `modelhost` binary: parse the command line, resolve configuration, start logging, and
//! hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use modelhost::cli::{Cli, Command};
use modelhost::commands::inspect;
use modelhost::commands::train::{self as training, DataSource, TrainError, TrainOptions};
use modelhost::commands::{self, CommandError};
use modelhost::output::eprint_line;
use modelhost::{
    EXIT_CONFIG, EXIT_DATA, EXIT_DRIFT, EXIT_GATE_REFUSED, config, error, output, serve, telemetry,
};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    match cli.into_command() {
        Command::Serve(args) => {
            let env = |key: &str| std::env::var(key).ok();
            let config = match config::resolve(args.config.as_deref(), &env, &args.flags) {
                Ok(config) => config,
                Err(e) => {
                    eprint_line(&format!("modelhost: {}", error::chain(&e)));
                    return ExitCode::from(EXIT_CONFIG as u8);
                }
            };
            telemetry::init(&config.log_level, config.log_format);
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprint_line(&format!(
                        "modelhost: cannot start the async runtime: {}",
                        error::chain(&e)
                    ));
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let message = error::chain(e.as_ref());
                    tracing::error!("{message}");
                    eprint_line(&format!("modelhost: {message}"));
                    ExitCode::FAILURE
                }
            }
        }
        Command::Train(args) => run_train(args),
        Command::Rollback(args) => finish(
            commands::rollback::rollback(&commands::rollback::RollbackOptions {
                target: args.registry.target(),
                to: args.to,
            }),
            args.json,
        ),
        Command::Versions(args) => finish(
            commands::versions::versions(&args.registry.target()),
            args.json,
        ),
        Command::Publish(args) => finish(
            commands::publish::publish(&commands::publish::PublishOptions {
                target: args.registry.target(),
                file: args.file,
            }),
            args.json,
        ),
        Command::Predict(args) => {
            let options = commands::predict::PredictOptions {
                model: args.model,
                input: args.input,
                output: args.output,
                format: args.format,
            };
            match commands::predict::predict(&options) {
                Ok(summary) => {
                    eprint_line(&format!("modelhost: {summary}"));
                    if summary.failed == 0 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(EXIT_DATA)
                    }
                }
                Err(e) => fail(&e),
            }
        }
        Command::Drift(args) => {
            let options = commands::drift::DriftOptions {
                logs: args.logs,
                model: match args.model {
                    Some(file) => commands::drift::ModelSource::File(file),
                    None => commands::drift::ModelSource::Registry(args.registry.target()),
                },
                window: args.window,
                thresholds: modelhost::telemetry::drift::Thresholds {
                    z: args.z_threshold,
                    psi: args.psi_threshold,
                },
            };
            finish_with(commands::drift::drift(&options), args.json, |summary| {
                if summary.report.drift {
                    ExitCode::from(EXIT_DRIFT)
                } else {
                    ExitCode::SUCCESS
                }
            })
        }
        Command::Inspect(args) => {
            match inspect::inspect(&args.file, modelhost::runtime::Limits::default()) {
                Ok(report) => {
                    let text = if args.json {
                        json_text(&report)
                    } else {
                        inspect_summary(&report)
                    };
                    print_report(&text, ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprint_line(&format!("modelhost: {}", error::chain(e.as_ref())));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Prints a command's report (as JSON with `--json`), or its error with its exit status.
fn finish<T: serde::Serialize + std::fmt::Display>(
    result: Result<T, CommandError>,
    json: bool,
) -> ExitCode {
    finish_with(result, json, |_| ExitCode::SUCCESS)
}

/// Like [`finish`], with the exit status of a printed report chosen by `status`.
fn finish_with<T: serde::Serialize + std::fmt::Display>(
    result: Result<T, CommandError>,
    json: bool,
    status: impl FnOnce(&T) -> ExitCode,
) -> ExitCode {
    match result {
        Ok(report) => {
            let text = if json {
                json_text(&report)
            } else {
                format!("{report}\n")
            };
            print_report(&text, status(&report))
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &CommandError) -> ExitCode {
    eprint_line(&format!("modelhost: {}", error::chain(e)));
    ExitCode::from(e.exit_code())
}

/// Every report reaches standard output here. A reader that went away (`| head -1`) is no
/// failure: the command keeps `status`, silently. Any other write error is one line and exit 1.
fn print_report(text: &str, status: ExitCode) -> ExitCode {
    match output::print(text) {
        Ok(()) => status,
        Err(e) => {
            eprint_line(&format!(
                "modelhost: cannot write to standard output: {}",
                error::chain(&e)
            ));
            ExitCode::FAILURE
        }
    }
}

/// `value` as pretty JSON and a newline.
fn json_text(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

fn run_train(args: Box<modelhost::cli::TrainArgs>) -> ExitCode {
    let args = *args;
    if !(0.0..=1.0).contains(&args.gate_f1) {
        eprint_line(&format!(
            "modelhost: invalid --gate-f1={}: expected a number from 0 to 1",
            args.gate_f1
        ));
        return ExitCode::from(EXIT_CONFIG as u8);
    }
    let source = match (&args.data, args.synthetic) {
        (Some(path), _) => DataSource::Csv {
            path: path.clone(),
            test_path: args.test_data.clone(),
        },
        (None, n_rows) => DataSource::Synthetic {
            n_rows: n_rows.unwrap_or(1200),
        },
    };
    let options = TrainOptions {
        registry_dir: args.registry.registry_dir,
        model_name: args.registry.model_name,
        source,
        target: args.target,
        features: args.features,
        numeric: args.numeric,
        categorical: args.categorical,
        seed: args.seed,
        gate_f1: args.gate_f1,
        export_data: args.export_data,
    };
    match training::train(&options) {
        Ok(outcome) => {
            let text = if args.json {
                json_text(&outcome)
            } else {
                train_summary(&outcome)
            };
            let status = if outcome.promoted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_GATE_REFUSED)
            };
            print_report(&text, status)
        }
        Err(e) => {
            eprint_line(&format!("modelhost: {}", error::chain(&e)));
            match e {
                TrainError::Data(_) => ExitCode::from(EXIT_DATA),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// The human summary of a train run.
fn train_summary(outcome: &training::TrainOutcome) -> String {
    let m = &outcome.metrics;
    let mut text = format!(
        "trained {} {} on {} rows, evaluated on {}\n",
        outcome.model_name, outcome.version, outcome.n_train, outcome.n_test
    );
    text.push_str(&format!(
        "  accuracy {:.3}  precision {:.3}  recall {:.3}  f1 {:.3}  roc_auc {}  baseline_f1 {:.3}  threshold {:.3}\n",
        m.accuracy,
        m.precision,
        m.recall,
        m.f1,
        m.roc_auc.map_or("n/a".to_string(), |a| format!("{a:.3}")),
        m.baseline_f1,
        m.threshold
    ));
    text.push_str(&format!(
        "  artifact {} ({} bytes, sha256 {})\n",
        outcome.artifact.display(),
        outcome.size_bytes,
        outcome.sha256
    ));
    if outcome.already_recorded {
        text.push_str(&format!(
            "  {} was already recorded: its record is kept, this run is in history.jsonl\n",
            outcome.version
        ));
    }
    if outcome.promoted {
        text.push_str(&format!(
            "  gate passed (f1 >= {}): promoted to model.wasm\n",
            outcome.gate.f1_min
        ));
    } else {
        text.push_str(&format!(
            "  gate refused (f1 {:.3} < {}): recorded, live model unchanged\n",
            outcome.gate.f1, outcome.gate.f1_min
        ));
    }
    text
}

/// The human summary of an `inspect` report.
fn inspect_summary(report: &serde_json::Value) -> String {
    let info = &report["info"];
    let mut lines = vec![
        format!(
            "ok: {} would be accepted",
            report["path"].as_str().unwrap_or("?")
        ),
        format!("  name       {}", info["name"].as_str().unwrap_or("?")),
        format!("  version    {}", info["version"].as_str().unwrap_or("?")),
        format!("  sha256     {}", report["sha256"].as_str().unwrap_or("?")),
        format!("  size       {} bytes", report["size_bytes"]),
        format!("  threshold  {}", info["threshold"]),
        format!(
            "  self-test  {}",
            report["self_test"].as_str().unwrap_or("?")
        ),
        "  features:".to_string(),
    ];
    for feature in info["features"].as_array().into_iter().flatten() {
        let detail = match feature["kind"].as_str() {
            Some("categorical") => format!("categories {}", feature["vocabulary"]),
            _ => format!("{}..{}", feature["min"], feature["max"]),
        };
        lines.push(format!(
            "    {:<24} {:<12} {detail}",
            feature["name"].as_str().unwrap_or("?"),
            feature["kind"].as_str().unwrap_or("?")
        ));
    }
    if let Some(metrics) = info["metrics"].as_object().filter(|m| !m.is_empty()) {
        lines.push("  metrics:".to_string());
        for (name, value) in metrics {
            lines.push(format!("    {name:<24} {value}"));
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}
