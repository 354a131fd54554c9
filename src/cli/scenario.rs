//! `edgesim scenario`: not written yet.

use std::process::ExitCode;

/// Subcommands of `edgesim scenario`.
#[derive(clap::Subcommand)]
pub enum ScenarioCommand {}

/// Runs `edgesim scenario`.
pub fn run(command: ScenarioCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
