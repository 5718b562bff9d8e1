//! The `modelhost` binary: parse the command line, resolve configuration, start logging, and
//! hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use modelhost::cli::{Cli, Command};
use modelhost::{EXIT_CONFIG, config, inspect, serve, telemetry};

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
                    eprintln!("modelhost: {e}");
                    return ExitCode::from(EXIT_CONFIG as u8);
                }
            };
            telemetry::init(&config.log_level, config.log_format);
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("modelhost: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("modelhost: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Inspect(args) => {
            match inspect::inspect(&args.file, modelhost::runtime::Limits::default()) {
                Ok(report) => {
                    if args.json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&report).unwrap_or_default()
                        );
                    } else {
                        print_inspect_summary(&report);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("modelhost: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn print_inspect_summary(report: &serde_json::Value) {
    let info = &report["info"];
    println!(
        "ok: {} would be accepted",
        report["path"].as_str().unwrap_or("?")
    );
    println!("  name       {}", info["name"].as_str().unwrap_or("?"));
    println!("  version    {}", info["version"].as_str().unwrap_or("?"));
    println!("  sha256     {}", report["sha256"].as_str().unwrap_or("?"));
    println!("  size       {} bytes", report["size_bytes"]);
    println!("  threshold  {}", info["threshold"]);
    println!(
        "  self-test  {}",
        report["self_test"].as_str().unwrap_or("?")
    );
    println!("  features:");
    for feature in info["features"].as_array().into_iter().flatten() {
        let detail = match feature["kind"].as_str() {
            Some("categorical") => format!("categories {}", feature["vocabulary"]),
            _ => format!("{}..{}", feature["min"], feature["max"]),
        };
        println!(
            "    {:<24} {:<12} {detail}",
            feature["name"].as_str().unwrap_or("?"),
            feature["kind"].as_str().unwrap_or("?")
        );
    }
    if let Some(metrics) = info["metrics"].as_object().filter(|m| !m.is_empty()) {
        println!("  metrics:");
        for (name, value) in metrics {
            println!("    {name:<24} {value}");
        }
    }
}
