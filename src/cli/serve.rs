//! `edgesim serve`: run the inbound Edge until Ctrl-C.
//!
//! First run without configuration: a lab CA and the Edge certificate (the Edge FQDN, Server + Client
//! Authentication EKUs) are created under `--data-dir`, the Edge trusts that CA, and the CA's path is printed
//! so the engineer can import it into the Expressway-E (and issue the Expressway's certificate from it with
//! `edgesim certs issue`). Later runs reuse them.
//!
//! The default `--listen` is `127.0.0.1:5061` so that a first run exposes nothing; point an Expressway at the
//! Edge with `--listen 0.0.0.0:5061`. With `--serve-dns` (or `dns.serve`) and no resolver given, the Edge
//! resolves through its own embedded DNS server, so a lab's zones in the configuration are all it needs.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use edgesim::config::EdgeConfig;
use edgesim::dns::{DnsServer, EdgeRecord, EdgeRecords, HickoryLookup, Lookup, ZoneSet};
use edgesim::edge::{Edge, EdgeParts};
use edgesim::pki::{Identity, KeyType, LabCa, LeafSpec, TrustAnchors};
use tokio_util::sync::CancellationToken;

/// Arguments of `edgesim serve`.
#[derive(clap::Args)]
#[command(
    after_help = "Paths in --config files are relative to that file's directory; paths given as flags, to the working directory.\n\nExit codes: 0 stopped on request (Ctrl-C); 2 usage, configuration, certificate or start error (the message names the file, the field and the fix)."
)]
pub struct ServeArgs {
    /// Edge configuration (TOML); without it, a lab Edge `sip.skype.lab` with partner discovery on.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (TLS SIP); port 0 picks a free port. Use 0.0.0.0:5061 to accept an Expressway.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5061")]
    listen: SocketAddr,
    /// DNS server the Edge resolves SRV records with: IP (port 53) or IP:PORT (default: the configuration's
    /// dns.resolver.server, else the embedded server of --serve-dns, else the system resolver).
    #[arg(long, value_name = "IP[:PORT]", value_parser = edgesim::dns::parse_server)]
    dns: Option<SocketAddr>,
    /// Serve DNS on this address (UDP and TCP), IP (port 53) or IP:PORT: the configuration's records plus
    /// the Edge's own SRV and A/AAAA records unless the configuration defines them. An Expressway's DNS
    /// server setting takes an address only and asks port 53, so for an Expressway use e.g. 0.0.0.0:53.
    #[arg(long, value_name = "IP[:PORT]", value_parser = edgesim::dns::parse_server)]
    serve_dns: Option<SocketAddr>,
    /// Send bare responses as a real Edge does (no ms-diagnostics toward the peer).
    #[arg(long)]
    faithful: bool,
    /// Write one JSON line per decision to this file.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Append Edge log records (the SfB trace layout) to this file.
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// Where the lab CA and the Edge certificate are created on first run and found afterwards.
    #[arg(long, value_name = "DIR", default_value = "./edgesim-data")]
    data_dir: PathBuf,
}

/// The Edge identity and the CAs it trusts, from the configuration or the data directory.
fn identity(
    cfg: &EdgeConfig,
    data_dir: &Path,
    out: &mut impl Write,
) -> anyhow::Result<(Identity, TrustAnchors)> {
    let mut anchors =
        TrustAnchors::from_files(&cfg.tls.ca).context("cannot load the trust anchors of tls.ca")?;
    if cfg.tls.use_system_roots {
        let n = anchors.add_system_roots().context("tls.use_system_roots")?;
        writeln!(
            out,
            "trusting {n} system root CAs (tls.use_system_roots; not listed in the CertificateRequest)"
        )?;
    }
    if let (Some(cert), Some(key)) = (&cfg.tls.cert, &cfg.tls.key) {
        let id = Identity::from_pem_files(cert, key)
            .context("cannot load the Edge certificate (tls.cert, tls.key)")?;
        if anchors.is_empty() {
            writeln!(
                out,
                "warning: tls.ca is empty: every peer certificate will be refused as untrusted"
            )?;
        }
        return Ok((id, anchors));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let ca_pem = data_dir.join("ca.pem");
    let ca = if ca_pem.exists() {
        LabCa::load_dir(data_dir)
            .with_context(|| format!("cannot load the lab CA in {}", data_dir.display()))?
    } else {
        // RSA: what Expressway and Windows accept everywhere.
        let ca = LabCa::generate_lab(KeyType::default())?;
        ca.save(data_dir)?;
        writeln!(out, "created a lab CA: {}", ca_pem.display())?;
        ca
    };
    let chain = data_dir.join("edge.chain.pem");
    let key = data_dir.join("edge.key");
    if !(chain.exists() && key.exists()) {
        let fqdn = &cfg.edge.fqdn;
        let issued = ca.issue(&LeafSpec::new(fqdn).key(KeyType::default()))?;
        issued.write(data_dir, "edge")?;
        writeln!(
            out,
            "created the Edge certificate for {fqdn} (Server + Client Authentication): {}",
            chain.display()
        )?;
    }
    let id = Identity::from_pem_files(&chain, &key)?;
    anchors.add(ca.cert_der(), &ca_pem.display().to_string())?;
    writeln!(
        out,
        "lab CA: {} — import it into the Expressway-E trusted CA list; issue the Expressway certificate with \
         `edgesim certs issue --ca {} --out <dir> --name vcse --san <expressway fqdn> --key rsa`",
        ca_pem.display(),
        data_dir.display()
    )?;
    Ok((id, anchors))
}

/// `--serve-dns` / `dns.serve`: the configuration's zones plus the Edge's own SRV and address records, on
/// `addr`; prints every record served. Without a resolver given, the Edge then resolves through it.
async fn serve_dns_step(
    cfg: &mut EdgeConfig,
    serve_dns: Option<SocketAddr>,
    edge_addr: SocketAddr,
    out: &mut impl Write,
) -> anyhow::Result<Option<DnsServer>> {
    let Some(addr) = serve_dns else {
        return Ok(None);
    };
    let mut zones = ZoneSet::from_config(&cfg.dns.zones_config(), None)
        .context("cannot load the [dns] zones")?;
    let edge = EdgeRecords {
        domain: cfg.edge.domain.clone(),
        fqdn: cfg.edge.fqdn.clone(),
        port: edge_addr.port(),
        address: EdgeRecords::address_for(cfg.edge.public_address, edge_addr, addr),
    };
    let own = zones.add_edge_records(&edge);
    let server = DnsServer::bind(zones.clone(), addr)
        .await
        .with_context(|| {
            format!("cannot serve DNS on {addr} (UDP and TCP); pick another --serve-dns")
        })?;
    let bound = server.local_addr();
    writeln!(out, "serving DNS on udp+tcp {bound}")?;
    if bound.port() != edgesim::dns::DNS_PORT {
        writeln!(
            out,
            "note: an Expressway's DNS server setting takes an address only and asks port 53; to point one at this server use --serve-dns {}:53",
            bound.ip()
        )?;
    }
    match own {
        Ok(done) => {
            for d in done {
                match d {
                    EdgeRecord::Added(r) => writeln!(
                        out,
                        "adding the Edge's own {} {} record (the configuration has none)",
                        r.name,
                        r.record_type()
                    )?,
                    EdgeRecord::Defined { what } => writeln!(
                        out,
                        "the configuration defines {what}: the Edge's own record is not added"
                    )?,
                    EdgeRecord::NoAddress { fqdn } => writeln!(
                        out,
                        "warning: no A/AAAA record for {fqdn}: the Edge listens on {edge_addr} and the DNS server on {bound}; set [edge] public_address to the address peers reach the Edge at"
                    )?,
                }
            }
        }
        Err(e) => writeln!(
            out,
            "warning: the Edge's own DNS records are not served: {e}"
        )?,
    }
    super::dns::print_zones(out, &zones)?;
    if cfg.dns.resolver.server.is_none() {
        // Served on every address: the Edge asks it on loopback.
        let ip = match bound.ip() {
            ip if !ip.is_unspecified() => ip,
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        };
        cfg.dns.resolver.server = Some(SocketAddr::new(ip, bound.port()));
    }
    Ok(Some(server))
}

/// The Edge's resolver, and a line saying which DNS server it asks (and that it is the system's, if so).
fn resolver_step(cfg: &EdgeConfig, out: &mut impl Write) -> anyhow::Result<HickoryLookup> {
    let lookup =
        HickoryLookup::new(cfg.dns.resolver.clone()).context("cannot set up the DNS resolver")?;
    if lookup.is_system() {
        writeln!(
            out,
            "resolving SRV records with {}; give --dns IP[:PORT] (or dns.resolver.server) to ask another DNS server",
            lookup.server()
        )?;
    } else {
        writeln!(out, "resolving SRV records with {}", lookup.server())?;
    }
    Ok(lookup)
}

/// Runs `edgesim serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // EdgeConfig::load resolves the file's relative paths against its directory; flags stay relative to the cwd.
    let mut cfg = match &args.config {
        Some(p) => EdgeConfig::load(p)?,
        None => EdgeConfig::default(),
    };
    cfg.faithful |= args.faithful;
    if let Some(e) = args.events {
        cfg.events_file = Some(e);
    }
    if let Some(l) = args.log_file {
        cfg.log_file = Some(l);
    }
    let serve_dns = args.serve_dns.or(cfg.dns.serve);
    if let Some(d) = args.dns {
        cfg.dns.resolver.server = Some(d);
    }
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}; pick another --listen", args.listen))?;
        let mut out = std::io::stdout().lock();
        // First line: the bound address, so scripts and tests can use port 0.
        writeln!(
            out,
            "edgesim Edge {} listening on tls {}",
            cfg.edge.fqdn,
            listener.local_addr()?
        )?;
        let edge_addr = listener.local_addr()?;
        let dns_server = serve_dns_step(&mut cfg, serve_dns, edge_addr, &mut out).await?;
        let (identity, anchors) = identity(&cfg, &args.data_dir, &mut out)?;
        let lookup = resolver_step(&cfg, &mut out)?;
        out.flush()?;
        drop(out);
        let edge = Arc::new(Edge::new(EdgeParts {
            config: cfg,
            identity,
            anchors,
            lookup: Arc::new(lookup),
        })?);
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C: shutting down");
            }
            stop.cancel();
        });
        edgesim::edge::serve(listener, edge, shutdown).await?;
        if let Some(s) = dns_server {
            s.shutdown().await;
        }
        Ok(ExitCode::SUCCESS)
    })
}
