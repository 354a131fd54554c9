//! `edgesim dns`: not written yet.

use std::process::ExitCode;

/// Subcommands of `edgesim dns`.
#[derive(clap::Subcommand)]
pub enum DnsCommand {}

/// Runs `edgesim dns`.
pub fn run(command: DnsCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
