//! The `arflow` binary's library half (so end-to-end tests and benchmarks can start the same
//! server in-process).
//!
//! - [`cli`]: the command line: `serve`, `migrate`, `config`, `keys`, `claims`.
//! - [`serve`]: builds the enabled roles on one process: database, bus, relay, services,
//!   the shared gRPC server and the admin port.
//! - [`client`]: the gRPC client commands a billing team uses by hand (`arflow claims …`).
pub mod cli;
pub mod client;
pub mod serve;
