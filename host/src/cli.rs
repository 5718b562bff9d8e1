//! The command line: subcommands and the `serve` flags, which are generated from
//! [`config::SETTINGS`](crate::config::SETTINGS) so that a flag, its environment variable and its
//! default are declared once.

use std::path::PathBuf;

use clap::{Arg, ArgMatches, Args, FromArgMatches, Parser, Subcommand};

use crate::config::{Flags, SETTINGS};

/// Serve machine-learning models compiled to WebAssembly.
///
/// Models are `model.wasm` files in a registry directory (REGISTRY_DIR/MODEL_NAME/model.wasm).
/// The server runs the selected one in a sandbox, answers POST /predict on port 8000, and
/// switches to a new artifact as soon as a complete, valid one lands in the registry.
#[derive(Debug, Parser)]
#[command(name = "modelhost", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve` is the default subcommand: its flags are accepted without it.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the model REGISTRY_DIR/MODEL_NAME/model.wasm over HTTP (the default).
    ///
    /// Settings come from defaults < --config FILE < environment < flags.
    /// A bad setting exits with status 64 and one line naming it.
    Serve(ServeArgs),
    /// Check a wasm file against the model ABI without serving it, and print its info.
    ///
    /// Runs every check the server runs before a model may serve: file type, imports, start
    /// function, exports, ABI version, info document, compile and self-test. Exits 0 if the
    /// server would accept the file, 1 with the reason if it would refuse it.
    Inspect(InspectArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// The wasm file to check.
    pub file: PathBuf,
    /// Print the full report as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// The `serve` flags: `--config` plus one flag per setting.
#[derive(Debug, Clone, Default)]
pub struct ServeArgs {
    /// TOML file with settings (keys as in `--help`, with underscores).
    pub config: Option<PathBuf>,
    /// Settings given as flags, by key.
    pub flags: Flags,
}

fn flag_name(key: &str) -> String {
    key.replace('_', "-")
}

impl Args for ServeArgs {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        cmd = cmd.arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("TOML file with settings; keys are the flag names with '_' for '-'"),
        );
        for setting in SETTINGS {
            let default = if setting.default.is_empty() {
                String::new()
            } else {
                format!(" [default: {}]", setting.default)
            };
            cmd = cmd.arg(
                Arg::new(setting.key)
                    .long(flag_name(setting.key))
                    .value_name(setting.env)
                    .help(format!("{} [env: {}]{default}", setting.help, setting.env)),
            );
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = ServeArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if let Some(path) = matches.get_one::<PathBuf>("config") {
            self.config = Some(path.clone());
        }
        for setting in SETTINGS {
            if let Some(value) = matches.get_one::<String>(setting.key) {
                self.flags.insert(setting.key, value.clone());
            }
        }
        Ok(())
    }
}

impl Cli {
    /// The subcommand to run, `serve` when none was named.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}
