//! `edgesim check`: not written yet.

use std::process::ExitCode;

/// Arguments of `edgesim check`.
#[derive(clap::Args)]
pub struct CheckArgs {}

/// Runs `edgesim check`.
pub fn run(_args: CheckArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`edgesim check` is not available yet")
}
