//! `edgesim load`: not written yet.

use std::process::ExitCode;

/// Arguments of `edgesim load`.
#[derive(clap::Args)]
pub struct LoadArgs {}

/// Runs `edgesim load`.
pub fn run(_args: LoadArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`edgesim load` is not available yet")
}
