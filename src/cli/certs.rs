//! `edgesim certs`: not written yet.

use std::process::ExitCode;

/// Subcommands of `edgesim certs`.
#[derive(clap::Subcommand)]
pub enum CertsCommand {}

/// Runs `edgesim certs`.
pub fn run(command: CertsCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
