//! Subcommands. Each returns the process exit code; `anyhow` lives only here and in `main`.

pub mod call;
pub mod certs;
pub mod check;
pub mod dns;
pub mod load;
pub mod scenario;
pub mod serve;

/// Exit code for bad usage or configuration (the message names the file, field and fix).
pub const EXIT_USAGE: u8 = 2;

/// A multi-thread tokio runtime for a subcommand.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
