//! `edgesim dns`: serve lab zones over UDP and TCP, and query a server the way the Edge does.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use edgesim::dns::{DnsServer, HickoryLookup, Lookup, ResolverSettings, ZoneSet};

/// `edgesim dns --help`: the exit codes of both subcommands.
pub const EXIT_CODES: &str = "Exit codes: serve: 0 stopped with Ctrl-C; query: 0 answered, 1 the answer is a \
failure (NXDOMAIN, NODATA, SERVFAIL, REFUSED, timeout); 2 usage error, a zone file that does not load or an \
address that cannot be bound.";

/// Subcommands of `edgesim dns`.
#[derive(clap::Subcommand)]
pub enum DnsCommand {
    /// Serve zone files (UDP and TCP) until Ctrl-C; the first line printed is the bound address.
    #[command(
        after_help = "Exit codes: 0 stopped with Ctrl-C; 2 usage error, a zone file that does not load, or an address that cannot be bound."
    )]
    Serve {
        /// A master file ($ORIGIN, $TTL, SOA, NS, A, AAAA, SRV, CNAME, TXT); repeat for several.
        #[arg(long = "zone", value_name = "FILE", required = true)]
        zones: Vec<PathBuf>,
        /// Address for both UDP and TCP: IP (port 53) or IP:PORT; port 0 picks a free port. An Expressway's
        /// DNS server setting takes an address only and asks port 53: serve on port 53 for it.
        #[arg(long, value_name = "IP[:PORT]", default_value = "127.0.0.1:5353", value_parser = edgesim::dns::parse_server)]
        listen: SocketAddr,
    },
    /// Ask a DNS server one question, as the Edge would, and print the records or the distinct failure.
    #[command(
        after_help = "Exit codes: 0 answered with records; 1 the answer is a failure (NXDOMAIN, NODATA, SERVFAIL, REFUSED, timeout: the line says which); 2 usage error."
    )]
    Query {
        /// The name, e.g. `_sipfederationtls._tcp.acano.steven.lab`.
        name: String,
        /// Record type.
        #[arg(long = "type", value_enum, default_value = "srv")]
        rtype: QueryType,
        /// The server (UDP and TCP): IP (port 53) or IP:PORT; without it, the nameservers of /etc/resolv.conf.
        #[arg(long, value_name = "IP[:PORT]", value_parser = edgesim::dns::parse_server)]
        server: Option<SocketAddr>,
        /// Time to wait for an answer, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
}

/// The record types `edgesim dns query` asks for.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum QueryType {
    /// Service records (federation: `_sipfederationtls._tcp.<domain>`).
    #[value(name = "SRV", alias = "srv")]
    Srv,
    /// IPv4 addresses.
    #[value(name = "A", alias = "a")]
    A,
    /// IPv6 addresses.
    #[value(name = "AAAA", alias = "aaaa")]
    Aaaa,
}

/// Exit code when the DNS answer is a failure (NXDOMAIN, NODATA, SERVFAIL, REFUSED, timeout).
pub const EXIT_DNS_FAILURE: u8 = 1;

/// Runs `edgesim dns`.
pub fn run(command: DnsCommand) -> anyhow::Result<ExitCode> {
    match command {
        DnsCommand::Serve { zones, listen } => serve(zones, listen),
        DnsCommand::Query {
            name,
            rtype,
            server,
            timeout_ms,
        } => query(name, rtype, server, timeout_ms),
    }
}

fn serve(files: Vec<PathBuf>, listen: SocketAddr) -> anyhow::Result<ExitCode> {
    let mut zones = ZoneSet::new();
    for file in &files {
        zones.merge(ZoneSet::from_zone_file(file)?);
    }
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let server = DnsServer::bind(zones.clone(), listen)
            .await
            .with_context(|| {
                format!("cannot listen on {listen} (UDP and TCP); pick another --listen")
            })?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "serving DNS on udp+tcp {}", server.local_addr())?;
        print_zones(&mut out, &zones)?;
        out.flush()?;
        drop(out);
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        server.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Every record served, or that there is none (then every query is answered REFUSED).
pub(crate) fn print_zones(out: &mut impl Write, zones: &ZoneSet) -> std::io::Result<()> {
    let lines = zones.describe();
    if lines.is_empty() {
        writeln!(
            out,
            "no records to serve: every query is answered REFUSED (add [[dns.records]], [[dns.zones]] or zone files)"
        )?;
    }
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn query(
    name: String,
    rtype: QueryType,
    server: Option<SocketAddr>,
    timeout_ms: u64,
) -> anyhow::Result<ExitCode> {
    let settings = ResolverSettings {
        server,
        timeout_ms,
        attempts: 1,
        cache_max_entries: 0,
        ..ResolverSettings::default()
    };
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let lookup = HickoryLookup::new(settings)?;
        if lookup.is_system() {
            eprintln!("note: asking {}", lookup.server());
        }
        let lines: Result<Vec<String>, _> = match rtype {
            QueryType::Srv => lookup.srv(&name).await.map(|records| {
                records
                    .iter()
                    .map(|r| format!("SRV {} {} {} {}", r.priority, r.weight, r.port, r.target))
                    .collect()
            }),
            QueryType::A => lookup
                .ipv4(&name)
                .await
                .map(|ips| ips.iter().map(|ip| format!("A {ip}")).collect()),
            QueryType::Aaaa => lookup
                .ipv6(&name)
                .await
                .map(|ips| ips.iter().map(|ip| format!("AAAA {ip}")).collect()),
        };
        match lines {
            Ok(lines) => {
                for line in lines {
                    println!("{line}");
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(failure) => {
                println!("{}: {}", failure.tag(), failure.describe(&lookup.server()));
                Ok(ExitCode::from(EXIT_DNS_FAILURE))
            }
        }
    })
}
