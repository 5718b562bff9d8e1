//! Integration tests of the modelhost crate: one binary, one module per area.

mod abi;
mod cli;
mod common;
mod console;
mod fuzz;
mod grpc;
mod hostile;
mod http;
mod import;
mod k8s;
mod k8s_e2e;
mod kernel;
mod kserve;
mod models;
mod monitoring;
mod oip;
mod ops;
mod readme;
mod records;
mod registry;
mod startup;
mod swap;
mod train;
