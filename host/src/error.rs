//! How an error is printed: [`chain`], the one rule every command, `main` and the log use.
//!
//! The crate's own errors say their cause in their message and do not also expose it as
//! [`source`](std::error::Error::source), so their `Display` is complete on its own (HTTP bodies,
//! `last_error` and refusal logs use it as is). Errors from other crates and `anyhow` contexts
//! may instead keep their cause only as a source; [`chain`] adds those, and skips a cause whose
//! text the message already contains, so each cause is said exactly once either way.

use std::error::Error;

/// `error`'s message followed by each cause in its source chain that the text so far does not
/// already say, joined with `": "`.
pub fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(source) = cause {
        let said = source.to_string();
        if !said.is_empty() && !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = source.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read model.wasm")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read model.wasm: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn a_cause_kept_as_source_is_added_once() {
        let error = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(chain(&error), "cannot read model.wasm: disk on fire");
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let error = Repeats(std::io::Error::other("disk on fire"));
        assert_eq!(chain(&error), "cannot read model.wasm: disk on fire");
    }

    #[test]
    fn anyhow_contexts_are_walked_too() {
        let error = anyhow::Error::new(std::io::Error::other("address in use"))
            .context("cannot listen on 0.0.0.0:8000");
        assert_eq!(
            chain(error.as_ref()),
            "cannot listen on 0.0.0.0:8000: address in use"
        );
    }
}
