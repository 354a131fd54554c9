//! The `edgesim` command line: one subcommand per job, each in `cli/`.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// A Microsoft Lync / Skype for Business Edge server in federation, for Cisco Expressway labs.
#[derive(Parser)]
#[command(name = "edgesim", version, about, long_about = None)]
struct Args {
    /// Log filter (tracing syntax), e.g. `info` or `edgesim=debug`; also read from RUST_LOG. Default `info`
    /// (`error` for `scenario`, whose table already shows every Edge record and explanation).
    #[arg(long, global = true)]
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
    #[command(subcommand)]
    Certs(cli::certs::CertsCommand),
    /// Embedded authoritative DNS server for lab zones.
    #[command(subcommand)]
    Dns(cli::dns::DnsCommand),
    /// Run lab scenarios end to end over loopback.
    #[command(subcommand)]
    Scenario(cli::scenario::ScenarioCommand),
    /// Load generator: mutual-TLS connections sending INVITEs or OPTIONS to an Edge.
    Load(cli::load::LoadArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let default_log = match args.command {
        Command::Scenario(_) => "error",
        _ => "info",
    };
    let log = args.log.as_deref().unwrap_or(default_log);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edgesim: {e:#}");
            ExitCode::from(cli::EXIT_USAGE)
        }
    }
}
