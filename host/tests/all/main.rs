//! Integration tests of the modelhost crate: one binary, one module per area.

mod abi;
mod cli;
mod common;
mod http;
mod kernel;
mod swap;
mod train;
