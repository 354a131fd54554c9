//! `edgesim serve`: run the inbound Edge until Ctrl-C or SIGTERM.
//!
//! First run without configuration: a lab CA and the Edge certificate (the Edge FQDN, Server + Client
//! Authentication EKUs) are created under `--data-dir`, the Edge trusts that CA, and the CA's path is printed
//! so the engineer can import it into the Expressway-E (and issue the Expressway's certificate from it with
//! `edgesim certs issue`). Later runs reuse them, after checking that the Edge certificate still chains to
//! that CA (a replaced CA would make the printed advice wrong).
//!
//! Start-up loads and checks everything first — configuration, certificates and keys, trust anchors, DNS
//! zones, the listening socket, the log and events files — and prints nothing on stdout until all of it
//! worked. Then the first line is `edgesim Edge <fqdn> listening on tls <addr>` (scripts and tests parse it),
//! followed by what was created, which CAs the Edge trusts, whether ms-diagnostics go to the peer, the DNS
//! set-up, and warnings. A failure prints only the error (naming the file or setting and the fix) and exits 2.
//!
//! The default `--listen` is `127.0.0.1:5061` so that a first run exposes nothing; point an Expressway at the
//! Edge with `--listen 0.0.0.0:5061`. With `--serve-dns` (or `dns.serve`) and no resolver given, the Edge
//! resolves through its own embedded DNS server, so a lab's zones in the configuration are all it needs.
//!
//! Several `--listen` addresses, or `[[pool.members]]` in the configuration, make an Edge pool (`serve/pool.rs`):
//! the members are bound and published together, and `--faults FILE` switches their fault modes at start and on
//! each SIGUSR1.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use edgesim::config::EdgeConfig;
use edgesim::dns::{DnsServer, EdgeRecord, EdgeRecords, HickoryLookup, Lookup, ZoneSet};
use edgesim::edge::{Edge, EdgeParts};
use edgesim::pki::{
    CertFacts, ChainStatus, KeyType, LabCa, LeafSpec, TlsIdentity, TrustAnchors, Usage,
    load_pem_chain, verify_chain,
};
use tokio_util::sync::CancellationToken;

mod pool;

/// Arguments of `edgesim serve`.
#[derive(clap::Args)]
#[command(
    after_help = "Paths in --config files are relative to that file's directory; paths given as flags, to the working directory.\n\nVersion profiles ([edge] version) set the Server header and the TLS versions offered: lync2013 (Server: RTC/5.0; TLS 1.2), sfb2015 (RTC/6.0; TLS 1.2; the default), sfb2019 (RTC/7.0, inferred; TLS 1.2 and 1.3), sfbse (RTC/7.0, inferred; TLS 1.2 and 1.3, inferred). A real Lync 2013 / SfB 2015 Edge also offers TLS 1.0 and 1.1: rustls implements neither, so edgesim cannot. [tls] versions = [\"1.2\", \"1.3\"] overrides the profile's versions; the start-up report names the profile, the versions offered and where they came from.\n\nExit codes: 0 stopped on request (Ctrl-C); 2 usage, configuration, certificate or start error (the message names the file, the field and the fix)."
)]
pub struct ServeArgs {
    /// Edge configuration (TOML); without it, a lab Edge `sip.skype.lab` with partner discovery on.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Federation settings pasted from a real Edge: the `Format-List` output of Get-CsAccessEdgeConfiguration,
    /// Get-CsAllowedDomain or Get-CsBlockedDomain (UTF-8 or UTF-16; repeatable). Its Access Edge settings
    /// replace the configuration's; its domains join the configuration's lists.
    #[arg(long = "sfb-config", value_name = "FILE")]
    sfb_config: Vec<PathBuf>,
    /// Address to listen on (TLS SIP); port 0 picks a free port. Use 0.0.0.0:5061 to accept an Expressway.
    /// Repeated: an Edge pool, one member per address (127.0.0.2, 127.0.0.3 … on loopback), published as one
    /// name with an A record each (DNS load balancing); [[pool.members]] in --config gives SRV priorities.
    /// [default: 127.0.0.1:5061]
    #[arg(long, value_name = "ADDR")]
    listen: Vec<SocketAddr>,
    /// An Edge pool's faults file, applied at start and re-read on SIGUSR1: one line per member,
    /// `"127.0.0.2:5061" = "503"` (modes accept, refuse-tls, reset, silent, 503; members it does not name go
    /// back to their configured mode). Makes a single Edge a pool of one.
    #[arg(long, value_name = "FILE")]
    faults: Option<PathBuf>,
    /// DNS server the Edge resolves SRV records with: IP (port 53) or IP:PORT (default: the configuration's
    /// dns.resolver.server, else the embedded server of --serve-dns, else the system resolver).
    #[arg(long, value_name = "IP[:PORT]", value_parser = edgesim::dns::parse_server)]
    dns: Option<SocketAddr>,
    /// Serve DNS on this address (UDP and TCP), IP (port 53) or IP:PORT: the configuration's records plus
    /// the Edge's own SRV and A/AAAA records unless the configuration defines them. An Expressway's DNS
    /// server setting takes an address only and asks port 53, so for an Expressway use e.g. 0.0.0.0:53.
    #[arg(long, value_name = "IP[:PORT]", value_parser = edgesim::dns::parse_server)]
    serve_dns: Option<SocketAddr>,
    /// Send bare responses as a real Edge does (no ms-diagnostics toward the peer: `[edge] diagnostic_headers`
    /// defaults to "none" instead of "internal").
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
    /// Serve the live web view on this address (HTTP, e.g. 127.0.0.1:8080; port 0 picks one): decisions,
    /// DNS questions, connections and a ladder per Call-ID as they happen. No login: keep it on loopback.
    #[arg(long, value_name = "ADDR")]
    ui: Option<SocketAddr>,
    #[command(flatten)]
    keylog: super::wire::KeylogArg,
    #[command(flatten)]
    pcap: super::wire::PcapArgs,
    #[command(flatten)]
    hep: super::wire::HepArgs,
    /// Serve Prometheus metrics on this address (HTTP `GET /metrics`, OpenMetrics text; e.g. 127.0.0.1:9464,
    /// port 0 picks one): handshakes, requests, responses with ms-diagnostics codes, decision latency, open
    /// connections, DNS lookups, sink backlog. No login: keep it on loopback or behind the scraper's network.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
}

/// The Edge's identity and trust, loaded and checked.
struct Loaded {
    identity: TlsIdentity,
    anchors: TrustAnchors,
    /// One line per trusted CA (or group of system roots), for the start-up report.
    trusted: Vec<String>,
}

/// `CN=… (file)` for every CA certificate in `path`.
fn describe_ca_file(path: &Path) -> Vec<String> {
    load_pem_chain(path)
        .map(|certs| {
            certs
                .iter()
                .filter_map(|c| CertFacts::from_der(c.as_ref()).ok())
                .map(|f| format!("{} ({})", f.subject, path.display()))
                .collect()
        })
        .unwrap_or_default()
}

/// The Edge identity and the CAs it trusts, from the configuration or the data directory.
fn identity(cfg: &EdgeConfig, data_dir: &Path, notes: &mut Vec<String>) -> anyhow::Result<Loaded> {
    let mut anchors =
        TrustAnchors::from_files(&cfg.tls.ca).context("cannot load the trust anchors of tls.ca")?;
    let mut trusted: Vec<String> = cfg
        .tls
        .ca
        .iter()
        .flat_map(|p| describe_ca_file(p))
        .collect();
    if cfg.tls.use_system_roots {
        let n = anchors.add_system_roots().context("tls.use_system_roots")?;
        notes.push(format!(
            "trusting {n} system root CAs (tls.use_system_roots; not listed in the CertificateRequest)"
        ));
        trusted.push(format!("the {n} system root CAs"));
    }
    if let (Some(cert), Some(key)) = (&cfg.tls.cert, &cfg.tls.key) {
        let id = TlsIdentity::from_pem_files(cert, key)
            .context("cannot load the Edge certificate (tls.cert, tls.key)")?;
        edge_cert_warnings(cfg, &id, cert, notes);
        return Ok(Loaded {
            identity: id,
            anchors,
            trusted,
        });
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
        notes.push(format!("created a lab CA: {}", ca_pem.display()));
        ca
    };
    let chain = data_dir.join("edge.chain.pem");
    let key = data_dir.join("edge.key");
    if !(chain.exists() && key.exists()) {
        let fqdn = &cfg.edge.fqdn;
        let issued = ca.issue(&LeafSpec::new(fqdn).key(KeyType::default()))?;
        issued.write(data_dir, "edge")?;
        notes.push(format!(
            "created the Edge certificate for {fqdn} (Server + Client Authentication): {}",
            chain.display()
        ));
    }
    let id = TlsIdentity::from_pem_files(&chain, &key)?;
    check_chains_to_lab_ca(&id, &ca, &chain, &key, &ca_pem, data_dir)?;
    anchors.add(ca.cert_der(), &ca_pem.display().to_string())?;
    trusted.push(format!(
        "{} ({}, the lab CA)",
        CertFacts::from_der(ca.cert_der().as_ref())
            .map(|f| f.subject)
            .unwrap_or_default(),
        ca_pem.display()
    ));
    notes.push(format!(
        "lab CA: {} — import it into the Expressway-E trusted CA list; issue the Expressway certificate with \
         `edgesim certs issue --ca {} --out <dir> --name vcse --san <expressway fqdn> --key rsa`",
        ca_pem.display(),
        data_dir.display()
    ));
    Ok(Loaded {
        identity: id,
        anchors,
        trusted,
    })
}

/// What would make peers refuse the configured Edge certificate: not naming `edge.fqdn`, outside its validity
/// period, or missing an EKU federation needs (the Edge is TLS server inbound and TLS client outbound).
fn edge_cert_warnings(cfg: &EdgeConfig, id: &TlsIdentity, file: &Path, notes: &mut Vec<String>) {
    let Some(leaf) = id
        .chain
        .first()
        .and_then(|c| CertFacts::from_der(c.as_ref()).ok())
    else {
        return;
    };
    let file = file.display();
    let fqdn = &cfg.edge.fqdn;
    if !edgesim::rules::names_match(&leaf, fqdn, false).passes() {
        notes.push(format!(
            "warning: the Edge certificate {file} does not name edge.fqdn = {fqdn} (in its SAN): peers that connect to {fqdn} will refuse it. Fix: reissue it with {fqdn} in the SAN, or set edge.fqdn."
        ));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if edgesim::rules::cert::validity(&leaf, now, None).refuses() {
        notes.push(format!(
            "warning: the Edge certificate {file} is outside its validity period: peers will refuse it. Fix: renew it."
        ));
    }
    let eku = |role| edgesim::rules::eku_allows(&leaf, role);
    if !(eku(edgesim::rules::Role::Server) && eku(edgesim::rules::Role::Client)) {
        notes.push(format!(
            "warning: the Edge certificate {file} lacks the Server or the Client Authentication EKU: federation uses it both ways (TLS server inbound, TLS client outbound). Fix: issue it with both."
        ));
    }
}

/// The Edge certificate of the data directory must chain to the lab CA that `serve` tells the engineer to
/// import; otherwise every Expressway that followed the advice refuses the Edge.
fn check_chains_to_lab_ca(
    id: &TlsIdentity,
    ca: &LabCa,
    chain: &Path,
    key: &Path,
    ca_pem: &Path,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let lab = TrustAnchors::from_certs(&[ca.cert_der().clone()], &ca_pem.display().to_string())?;
    let status = verify_chain(
        &id.chain,
        &lab,
        Usage::Any,
        rustls_pki_types::UnixTime::now(),
    );
    let leaf = id
        .chain
        .first()
        .and_then(|c| CertFacts::from_der(c.as_ref()).ok())
        .unwrap_or_default();
    let ca_name = CertFacts::from_der(ca.cert_der().as_ref())
        .map(|f| f.subject)
        .unwrap_or_default();
    let reissue = format!(
        "Fix: delete {} and {} so that serve issues a new Edge certificate from {} (and import {} on the Expressway-E again if it changed)",
        chain.display(),
        key.display(),
        ca_pem.display(),
        ca_pem.display()
    );
    match status {
        ChainStatus::Trusted => Ok(()),
        ChainStatus::Expired | ChainStatus::NotYetValid => anyhow::bail!(
            "the Edge certificate {} is outside its validity period. {reissue}.",
            chain.display()
        ),
        _ => {
            let same_name = if leaf.issuer == ca_name {
                " — another CA with the same name"
            } else {
                ""
            };
            anyhow::bail!(
                "the Edge certificate {} does not chain to the lab CA {} that serve tells the Expressway-E to trust: it was issued by {}, and {} is {}{same_name}. The CA in {} was replaced (for example by `edgesim certs ca --out {}`). {reissue}, or put back the CA that issued it.",
                chain.display(),
                ca_pem.display(),
                leaf.issuer,
                ca_pem.display(),
                ca_name,
                data_dir.display(),
                data_dir.display()
            )
        }
    }
}

/// Warnings about the configuration that do not stop the Edge.
fn config_warnings(cfg: &EdgeConfig, trusted: &[String], notes: &mut Vec<String>) {
    if trusted.is_empty() {
        notes.push(
            "warning: the Edge trusts no CA (tls.ca is empty): every peer certificate will be refused as untrusted"
                .to_owned(),
        );
    }
    for (user, domain) in edgesim::edge::unreachable_users(cfg) {
        notes.push(format!(
            "warning: [[users]] user = \"{user}\" is in {domain}, not in the Edge's domain {}: the Edge answers only for {}, so nobody reaches this user. Fix: drop \"@{domain}\" or set edge.domain.",
            cfg.edge.domain, cfg.edge.domain
        ));
    }
}

/// What the start-up report says about ms-diagnostics (`[edge] diagnostic_headers`, `--faithful`).
fn diagnostics_line(cfg: &EdgeConfig) -> String {
    use edgesim::config::DiagnosticHeaders;
    match cfg.diagnostic_headers() {
        DiagnosticHeaders::None => "ms-diagnostics: withheld from the peer (faithful: bare responses, as a real Edge sends them; diagnostic_headers = \"none\"); they are in the log records and events".to_owned(),
        DiagnosticHeaders::Public => "ms-diagnostics: only ms-diagnostics-public (without source=) sent to the peer (diagnostic_headers = \"public\"); the full ones are in the log records and events".to_owned(),
        DiagnosticHeaders::Internal => "ms-diagnostics: sent to the peer on every Edge answer, with ms-diagnostics-public beside it (diagnostic_headers = \"internal\"; a real Edge withholds them; --faithful does too)".to_owned(),
    }
}

/// Binds the Edge's listening socket; "address in use" says what usually holds it.
async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "cannot listen on {addr}: the address is already in use — is another edgesim running? Stop it, or pick another --listen"
            )
        } else {
            anyhow::anyhow!("cannot listen on {addr}: {e} — pick another --listen")
        }
    })
}

/// Ctrl-C and SIGTERM, both stopping the Edge the same way. Installed before the Edge announces itself, so a
/// signal sent right after the "listening" line is already handled.
struct StopSignals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                int: signal(SignalKind::interrupt()).context("cannot handle Ctrl-C")?,
                term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => tracing::info!("Ctrl-C: shutting down"),
            _ = self.term.recv() => tracing::info!("SIGTERM: shutting down"),
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C: shutting down");
            }
        }
    }
}

/// `--serve-dns` / `dns.serve`: the configuration's zones plus the Edge's own SRV and address records, on
/// `addr`; prints every record served. Without a resolver given, the Edge then resolves through it.
async fn serve_dns_step(
    cfg: &mut EdgeConfig,
    serve_dns: Option<SocketAddr>,
    edge_addr: SocketAddr,
    members: Option<&[(SocketAddr, String, u16, u16)]>,
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
    let own = match members {
        Some(m) => zones.add_pool_records(&cfg.edge.domain, &pool::records(cfg, m, addr)),
        None => zones.add_edge_records(&edge),
    };
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
    let sfb_notes = if args.sfb_config.is_empty() {
        Vec::new()
    } else {
        cfg.apply_sfb_files(&args.sfb_config, args.config.as_deref())?
    };
    cfg.faithful |= args.faithful;
    if let Some(e) = args.events {
        cfg.events_file = Some(e);
    }
    if let Some(l) = args.log_file {
        cfg.log_file = Some(l);
    }
    let serve_dns = args.serve_dns.or(cfg.dns.serve);
    let plan = pool::plan(
        &args.listen,
        &cfg,
        args.config.as_deref(),
        args.faults.is_some(),
    )?;
    if let Some(d) = args.dns {
        cfg.dns.resolver.server = Some(d);
    }
    // Before any TLS configuration is built: they all log to it.
    let keylog_note = args.keylog.install()?;
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        // Lines for after the "listening" line: nothing is printed before everything loaded.
        let mut notes = Vec::new();
        notes.extend(keylog_note);

        // 1. Identity and trust.
        let Loaded {
            identity,
            anchors,
            trusted,
        } = identity(&cfg, &args.data_dir, &mut notes)?;
        notes.push(format!(
            "trusting peer certificates issued by: {}",
            if trusted.is_empty() {
                "no CA".to_owned()
            } else {
                trusted.join("; ")
            }
        ));
        notes.push(cfg.edge.version.describe(
            cfg.edge.server(),
            cfg.tls_versions(),
            cfg.tls_versions_source(),
        ));
        notes.push(diagnostics_line(&cfg));
        notes.extend(cfg.federation.report(args.config.as_deref()));
        notes.extend(sfb_notes);
        config_warnings(&cfg, &trusted, &mut notes);

        // 2. The listening socket (bound, not yet announced): the embedded DNS publishes its address.
        let mut bound = pool::bind_all(&plan, &cfg.edge.fqdn).await?;
        let addr = bound[0].addr;
        let fqdn = cfg.edge.fqdn.clone();
        let published: Vec<(SocketAddr, String, u16, u16)> = bound
            .iter()
            .map(|b| (b.addr, b.target.clone(), b.config.priority, b.config.weight))
            .collect();

        // 3. DNS: the embedded server (--serve-dns) and the resolver.
        let mut dns_lines = Vec::new();
        let members = plan.pool.then_some(published.as_slice());
        let dns_server = serve_dns_step(&mut cfg, serve_dns, addr, members, &mut dns_lines).await?;
        let lookup = resolver_step(&cfg, &mut dns_lines)?;
        let web = match args.ui {
            Some(a) => Some(edgesim::ui::WebView::bind(a, &fqdn).await?),
            None => None,
        };
        let lookup: Arc<dyn Lookup> = Arc::new(lookup);
        let lookup = match &web {
            Some(w) => w.observe(lookup),
            None => lookup,
        };
        let wire = super::wire::open_taps(
            &args.pcap,
            &args.hep,
            args.metrics,
            web.as_ref().map(|w| w.hub().clone()),
        )
        .await?;
        let lookup = wire.taps.count_lookups(lookup);
        notes.extend(
            String::from_utf8_lossy(&dns_lines)
                .lines()
                .map(str::to_owned),
        );

        // 4. The Edge (TLS configuration, log and events files).
        let edge = Arc::new(
            Edge::new(EdgeParts {
                config: cfg,
                identity,
                anchors,
                lookup,
            })?
            .with_taps(wire.taps),
        );
        notes.extend(wire.notes);
        if let Some(w) = &web {
            notes.push(format!("web view on http://{}", w.local_addr()?));
        }

        let signals = StopSignals::install()?;
        let shutdown = CancellationToken::new();
        let pool = if plan.pool {
            let (pool, task) = edgesim::edge::pool::start(
                edge.clone(),
                pool::members(std::mem::take(&mut bound)),
                shutdown.clone(),
            )?;
            let mut lines = pool::report(&pool, args.faults.as_deref());
            lines.extend(pool::starts_faulty(&pool));
            if let Some(f) = &args.faults {
                let via = format!("faults file {}, at start", f.display());
                lines.extend(pool::apply(&pool, f, &via).map_err(anyhow::Error::msg)?);
            }
            pool::on_sigusr1(pool.clone(), args.faults.clone(), shutdown.clone())?;
            notes.splice(0..0, lines);
            Some(task)
        } else {
            None
        };

        // 5. Everything loaded: announce.
        let mut out = std::io::stdout().lock();
        // First line: the bound address, so scripts and tests can use port 0.
        writeln!(out, "edgesim Edge {fqdn} listening on tls {addr}")?;
        for n in &notes {
            writeln!(out, "{n}")?;
        }
        out.flush()?;
        drop(out);

        // 6. Serve until Ctrl-C or SIGTERM, then stop the connections and flush the files.
        let stop = shutdown.clone();
        tokio::spawn(async move {
            signals.wait().await;
            stop.cancel();
        });
        // The Edge's taps publish to the page (connections, messages, decisions rule by rule).
        let web = web.map(|w| w.serve_page(shutdown.clone()));
        let metrics = wire
            .metrics
            .map(|(l, m)| super::wire::serve_metrics(l, m, shutdown.clone()));
        match pool {
            Some(task) => task.await??,
            None => match bound.pop() {
                Some(b) => edgesim::edge::serve(b.listener, edge.clone(), shutdown).await?,
                None => anyhow::bail!("no address to listen on: give --listen"),
            },
        }
        for line in edge.close_watch_list() {
            println!("{line}");
        }
        if let Some(w) = web {
            let _ = w.await;
        }
        if let Some(m) = metrics {
            let _ = m.await;
        }
        super::wire::shutdown_taps(edge.taps()).await?;
        // Bounded: the writer gets a few seconds to put every queued record and event on disk.
        let sinks = edge.flush();
        if sinks.records_written + sinks.events_written > 0 {
            tracing::info!(
                "wrote {} log record(s) and {} event(s)",
                sinks.records_written,
                sinks.events_written
            );
        }
        for problem in sinks.problems() {
            tracing::error!("{problem}");
        }
        if let Some(s) = dns_server {
            s.shutdown().await;
        }
        Ok(ExitCode::SUCCESS)
    })
}
