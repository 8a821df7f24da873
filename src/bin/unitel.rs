//! `unitel`: show everything that happened in one trace, from unitel's JSON log files.
//!
//! ```text
//! unitel traces logs/                      # the traces, one line each
//! unitel logs logs/ --trace 4bf92f35       # one trace: its spans as a tree, logs nested
//! unitel logs api/ payments/ --trace 4bf92f35 --follow
//! ```
//!
//! Built with the `cli` feature: `cargo install unitel --features cli`. See `docs/cli.md`.

#[path = "../cli/mod.rs"]
mod cli;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse())
}
