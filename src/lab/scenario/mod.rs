//! Lab scenarios: declarative TOML files that run a whole lab end to end over loopback (real DNS, real TLS, the
//! real Edge and the emulated Expressway-E) and compare each outcome with the expected one.
//!
//! - [`format`]: the file format (serde).
//! - [`parse`]: reading a file: the checks serde cannot express, every error naming the file, line and field.
//! - [`case`]: a case typed per direction (inbound or outbound).
//! - [`expect`]: comparing an observation with an expectation (pure).
//! - [`lab`]: certificates and per-case DNS.
//! - [`runner`]: running the cases → [`CaseResult`]s.
//! - [`report`]: the table and JSON output.
//!
//! The format is documented in `scenarios/README.md`.

pub mod case;
pub mod expect;
pub mod format;
pub mod lab;
pub mod parse;
pub mod report;
pub mod runner;

use std::path::PathBuf;

pub use case::{Case, CaseKind, InboundCase, OutboundCase};
pub use expect::Observed;
pub use format::{Direction, Expect, Scenario};
pub use parse::ScenarioFile;
pub use runner::{
    CaseResult, ScenarioReport, run_embedded, run_file, run_scenario, run_scenario_tapped,
};

/// The seed lab, embedded: `edgesim scenario run` without a file runs it.
pub const SEED_LAB: &str = include_str!("../../../scenarios/seed-lab.toml");

/// The name the embedded seed lab goes by in reports and errors.
pub const SEED_LAB_NAME: &str = "scenarios/seed-lab.toml (embedded)";

/// Why a scenario could not be loaded or its lab could not be built (a failing case is not an error).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{}: cannot read the scenario: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The TOML is malformed or a value does not fit the format.
    #[error("{}:{line}:{column}: {field}{message}\n  hint: {hint}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// `case #3 "name": field `x.y`: ` when known, else empty.
        field: String,
        /// toml's message (first line).
        message: String,
        /// What to change.
        hint: String,
    },
    /// The values parse but contradict each other or refer to nothing.
    #[error("{}:{line}:{column}: field `{field}`: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The offending key.
        field: String,
        /// What is wrong and the fix.
        message: String,
    },
    /// A certificate could not be issued or loaded.
    #[error("{}: certificate `{name}`: {cause}", path.display())]
    Cert {
        /// The file.
        path: PathBuf,
        /// The `[certs.NAME]`.
        name: String,
        /// The pki error (it says the fix).
        cause: Box<crate::pki::PkiError>,
    },
    /// Anything else that stops the lab from being built.
    #[error("{}: {message}", path.display())]
    Lab {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Parses the embedded seed lab.
pub fn seed_lab() -> Result<ScenarioFile, ScenarioError> {
    ScenarioFile::parse(SEED_LAB, std::path::Path::new(SEED_LAB_NAME), None)
}
