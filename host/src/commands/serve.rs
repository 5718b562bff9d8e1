//! `modelhost serve` (the default command): runs the server ([`crate::serve::run`]) on its own
//! async runtime until it is stopped.

use super::{CommandError, Exit};
use crate::config::Config;
use crate::error::chain;

/// Serves `config` until SIGTERM or Ctrl-C; an error that stops the server is logged too, so it
/// is in the log as well as on standard error.
pub fn serve(config: Config) -> Result<Exit, CommandError> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| {
        CommandError::Failed(format!("cannot start the async runtime: {}", chain(&e)))
    })?;
    runtime.block_on(crate::serve::run(config)).map_err(|e| {
        let message = chain(e.as_ref());
        tracing::error!("{message}");
        CommandError::Failed(message)
    })?;
    Ok(Exit::Success)
}
