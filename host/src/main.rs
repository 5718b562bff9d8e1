//! The `modelhost` binary: parse the command line, resolve configuration, start logging, and
//! call one command of the library ([`modelhost::commands`]). Every command returns a report
//! that prints itself, or one error type that knows its exit status.

use std::process::ExitCode;

use clap::Parser;
use modelhost::cli::{Cli, Command};
use modelhost::commands::{self, CommandError, Exit, Report};
use modelhost::output::eprint_line;
use modelhost::{config, error, telemetry};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors.
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Success
            }
            .into();
        }
    };
    match run(cli.into_command()) {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprint_line(&format!("modelhost: {}", error::chain(&e)));
            e.exit().into()
        }
    }
}

fn run(command: Command) -> Result<Exit, CommandError> {
    match command {
        Command::Serve(args) => {
            let env = |key: &str| std::env::var(key).ok();
            let config = config::resolve(args.config.as_deref(), &env, &args.flags)?;
            telemetry::init(&config.log_level, config.log_format);
            commands::serve::serve(config)
        }
        Command::Train(args) => commands::train::train(&args.options()?)?.print(args.json),
        Command::Inspect(args) => {
            commands::inspect::inspect(&args.file, modelhost::runtime::Limits::default())?
                .print(args.json)
        }
        Command::Rollback(args) => commands::rollback::rollback(&args.options())?.print(args.json),
        Command::Versions(args) => {
            commands::versions::versions(&args.registry.target())?.print(args.json)
        }
        Command::Publish(args) => commands::publish::publish(&args.options())?.print(args.json),
        Command::Import(args) => commands::import::import(&args.options())?.print(args.json),
        Command::Predict(args) => commands::predict::predict(&args.options())?.print(false),
        Command::Drift(args) => commands::drift::drift(&args.options())?.print(args.json),
    }
}
