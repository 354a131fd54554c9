//! The `edgesim` command line: one subcommand per job, each in `cli/`.
//!
//! Here, once for every command: the tracing subscriber (colour only on a terminal without `NO_COLOR`; the DNS
//! and TLS libraries' chatter below `info` unless `--log`/`RUST_LOG` say otherwise), the exit status of an
//! error, and a closed output (`edgesim … | head -1`), which ends the command quietly with status 0.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes every command shares, shown by `edgesim --help`.
const EXIT_CODES: &str = "Exit codes: each command's --help lists its own; 2 is always a usage or configuration \
error (the message names the file, the field and the fix). When the reader of the output goes away \
(`edgesim … | head -1`), the command stops quietly with status 0.";

/// A Microsoft Lync / Skype for Business Edge server in federation, for Cisco Expressway labs.
#[derive(Parser)]
#[command(name = "edgesim", version, about, long_about = None, after_help = EXIT_CODES)]
struct Args {
    /// Log filter (tracing syntax, e.g. `debug` or `edgesim=debug`); RUST_LOG works too.
    // A bare level keeps the DNS and TLS libraries' chatter out (`log_filter`); naming them shows it.
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Edge, inbound: a mutual-TLS SIP listener that applies the federation rules.
    Serve(cli::serve::ServeArgs),
    /// Place a call as the Edge, outbound, and show what the Skype client would see.
    Call(cli::call::CallArgs),
    /// Federation-readiness report for a domain (DNS, certificate, TLS, SIP OPTIONS).
    Check(cli::check::CheckArgs),
    /// Lab PKI: create a CA, issue certificates, inspect a certificate against the Edge rules.
    #[command(subcommand, after_help = cli::certs::EXIT_CODES)]
    Certs(cli::certs::CertsCommand),
    /// Embedded authoritative DNS server for lab zones.
    #[command(subcommand, after_help = cli::dns::EXIT_CODES)]
    Dns(cli::dns::DnsCommand),
    /// Run lab scenarios end to end over loopback.
    #[command(subcommand, after_help = cli::scenario::EXIT_CODES)]
    Scenario(cli::scenario::ScenarioCommand),
    /// Load generator: mutual-TLS connections sending INVITEs or OPTIONS to an Edge.
    Load(cli::load::LoadArgs),
    /// Write the manual pages, one per command, generated from these definitions (for packaging).
    #[command(hide = true)]
    Man(cli::man::ManArgs),
}

/// The log filter when neither `--log` nor `RUST_LOG` gives one: `info`, with the per-query lines of the DNS
/// libraries and rustls' per-connection warnings (a peer closing without close_notify) kept out.
const DEFAULT_LOG: &str = "info,hickory_server=warn,hickory_proto=warn,hickory_net=warn,hickory_resolver=warn,rustls=error";

/// What a bare `--log LEVEL` adds: the libraries stay as quiet as by default unless the filter names them.
const QUIET_LIBRARIES: &str =
    "hickory_server=warn,hickory_proto=warn,hickory_net=warn,hickory_resolver=warn,rustls=error";

/// The filter for `--log FILTER`: a bare level (`info`, `debug`) applies to edgesim, the libraries stay quiet.
fn log_filter(log: &str) -> String {
    if log.contains('=') || log.contains(',') {
        log.to_string()
    } else {
        format!("{log},{QUIET_LIBRARIES}")
    }
}

/// `scenario` logs errors only: its table already shows every Edge record and explanation.
const SCENARIO_LOG: &str = "error";

/// Whether to colour what goes to stderr: a terminal, and no `NO_COLOR` (<https://no-color.org>: set and not
/// empty).
fn colour_stderr() -> bool {
    colour(
        std::env::var_os("NO_COLOR"),
        std::io::stderr().is_terminal(),
    )
}

fn colour(no_color: Option<std::ffi::OsString>, terminal: bool) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Ends the process quietly when printing fails because the reader went away: `println!` panics on EPIPE
/// (Rust ignores SIGPIPE), and every command prints with it.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Whether `e` comes from writing to a closed pipe.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let args = Args::parse();
    let default_log = match args.command {
        Command::Scenario(_) => SCENARIO_LOG,
        _ => DEFAULT_LOG,
    };
    let filter = match &args.log {
        Some(log) => tracing_subscriber::EnvFilter::new(log_filter(log)),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log)),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_stderr())
        .with_writer(std::io::stderr)
        .init();
    let result = match args.command {
        Command::Serve(a) => cli::serve::run(a),
        Command::Call(a) => cli::call::run(a),
        Command::Check(a) => cli::check::run(a),
        Command::Certs(a) => cli::certs::run(a),
        Command::Dns(a) => cli::dns::run(a),
        Command::Scenario(a) => cli::scenario::run(a),
        Command::Load(a) => cli::load::run(a),
        Command::Man(a) => cli::man::run(a, <Args as clap::CommandFactory>::command()),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgesim: {e:#}");
            ExitCode::from(cli::EXIT_USAGE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(None, true));
        assert!(!colour(None, false));
        assert!(!colour(Some("1".into()), true));
        // NO_COLOR set but empty does not count (no-color.org).
        assert!(colour(Some("".into()), true));
        assert!(!colour(Some("".into()), false));
    }

    #[test]
    fn a_broken_pipe_anywhere_in_the_chain_is_recognised() {
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(
            &anyhow::Error::from(pipe).context("writing the report")
        ));
        let other = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(!is_broken_pipe(&anyhow::Error::from(other)));
    }
}
