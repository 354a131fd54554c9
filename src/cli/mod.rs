//! Subcommands. Each returns the process exit code; `anyhow` lives only here and in `main`.

use std::io::IsTerminal;

pub mod call;
pub mod certs;
pub mod check;
pub mod dns;
pub mod load;
pub mod man;
pub mod scenario;
pub mod serve;
pub mod wire;

/// Exit code for bad usage or configuration (the message names the file, field and fix).
pub const EXIT_USAGE: u8 = 2;

/// Columns that text written to stdout wraps at: the terminal's width, or 100 when stdout is not a terminal
/// (a file, a pipe) or its width is unknown.
pub fn output_width() -> usize {
    const NOT_A_TERMINAL: usize = 100;
    if !std::io::stdout().is_terminal() {
        return NOT_A_TERMINAL;
    }
    console::Term::stdout()
        .size_checked()
        .map_or(NOT_A_TERMINAL, |(_rows, cols)| usize::from(cols))
}

/// A multi-thread tokio runtime for a subcommand.
#[allow(dead_code)] // the network subcommands use it as they land
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
