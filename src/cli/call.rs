//! `edgesim call`: not written yet.

use std::process::ExitCode;

/// Arguments of `edgesim call`.
#[derive(clap::Args)]
pub struct CallArgs {}

/// Runs `edgesim call`.
pub fn run(_args: CallArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`edgesim call` is not available yet")
}
