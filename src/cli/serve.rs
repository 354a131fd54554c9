//! `edgesim serve`: not written yet.

use std::process::ExitCode;

/// Arguments of `edgesim serve`.
#[derive(clap::Args)]
pub struct ServeArgs {}

/// Runs `edgesim serve`.
pub fn run(_args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`edgesim serve` is not available yet")
}
