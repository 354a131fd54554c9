//! `edgesim call`: place a call as the Edge and print what the Skype client would see.
//!
//! Exit codes: 0 connected; 10 rejected by the peer; 11 no usable SRV (1008: none, lookup failed, or only
//! target `.`); 12 SRV target not in the domain (1009); 13 certificate does not name the target (1010
//! WRONG_PRINCIPAL); 14 certificate untrusted or expired (1010); 15 no address, connection failed or TLS reset
//! (1014/1046/1047); 16 blocked by policy (403); 17 no final response in time; 2 usage or configuration error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use edgesim::config::{EdgeConfig, Identity as EdgeIdentity, PolicyConfig};
use edgesim::dns::{HickoryLookup, Lookup, ResolverSettings};
use edgesim::outbound::{self, CallMethod, CallRequest, OutboundContext, Timeouts};
use edgesim::pki::{KeyType, LabCa, LeafSpec, TlsIdentity, TrustAnchors};
use edgesim::report::{Envelope, ErrorInfo, Line, Status, split_fix};
use edgesim::rules::Policy;

/// The Edge settings shared by `call` and `check`.
#[derive(clap::Args, Debug, Clone)]
pub struct EdgeArgs {
    /// Edge configuration file (TOML): identity, policy, tls, dns.resolver; its relative paths are relative to
    /// its directory.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// DNS server to ask: IP (port 53) or IP:PORT, e.g. edgesim's embedded server; default: the config's
    /// dns.resolver.server, else the system resolver (the nameservers of /etc/resolv.conf).
    #[arg(long, value_name = "IP[:PORT]", value_parser = edgesim::dns::parse_server)]
    pub dns: Option<SocketAddr>,
    /// Trusted CA file(s) for peer certificates (PEM); repeatable.
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// Also trust the system's root CAs (like tls.use_system_roots; SSL_CERT_FILE / SSL_CERT_DIR are honoured).
    #[arg(long)]
    pub system_roots: bool,
    /// Edge certificate chain (PEM), presented as TLS client certificate.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Edge private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The `serve` data directory with the lab CA and Edge certificate (ca.pem, edge.chain.pem, edge.key).
    #[arg(long, value_name = "DIR", default_value = "edgesim-data")]
    pub data_dir: PathBuf,
    /// Print one JSON document instead of text (the shared layout of docs/json.md; an ERROR document when the
    /// command cannot run).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub keylog: super::wire::KeylogArg,
}

const CALL_EXIT_CODES: &str = "Exit codes: 0 connected; 10 rejected by the peer (its status, 1034 added when it sent no ms-diagnostics); 11 no usable SRV record (1008: none, the lookup failed, or only a target of '.', RFC 2782 'decidedly not available'); 12 no SRV target in the domain (1009); 13 certificate does not name the SRV target (1010 SEC_E_WRONG_PRINCIPAL); 14 certificate untrusted or expired (1010); 15 no A record, connection failed or TLS reset (1014/1046/1047); 16 blocked by policy (403); 17 no final response in time; 2 usage or configuration error.";

/// Arguments of `edgesim call`.
#[derive(clap::Args, Debug)]
#[command(after_help = CALL_EXIT_CODES)]
pub struct CallArgs {
    /// Callee, e.g. sip:space@cms.steven.lab (its domain selects the federation route).
    pub target: String,
    /// Caller (the internal Skype user).
    #[arg(long, default_value = "sip:alice@skype.lab")]
    pub from: String,
    /// Seconds to hold an answered call before BYE.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub hold: f64,
    /// Send OPTIONS instead of INVITE.
    #[arg(long, conflicts_with_all = ["subscribe", "im"])]
    pub options: bool,
    /// Subscribe to the target's presence instead of calling: prints the 200 and each NOTIFY's state as a
    /// Skype client shows it, for --hold seconds, then unsubscribes (Expires: 0).
    #[arg(long, conflicts_with = "im")]
    pub subscribe: bool,
    /// Send an instant message instead of calling (session-mode IM, the text embedded in the INVITE): prints
    /// each reply received within --hold seconds, then BYE.
    #[arg(long, value_name = "TEXT")]
    pub im: Option<String>,
    /// Seconds to wait for the final response.
    #[arg(long, value_name = "SECS", default_value_t = 32.0)]
    pub timeout: f64,
    /// Also print every step the Edge took.
    #[arg(short, long)]
    pub verbose: bool,
    #[command(flatten)]
    pub edge: EdgeArgs,
    #[command(flatten)]
    pub pcap: super::wire::PcapArgs,
    #[command(flatten)]
    pub hep: super::wire::HepArgs,
}

fn secs(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| anyhow::anyhow!("--{flag} {value}: give a number of seconds, 0 or more"))
}

/// The outbound context from flags, config file and data dir, plus notes for the user (stderr / JSON).
pub(crate) fn build_context(
    args: &EdgeArgs,
    response_timeout: Duration,
) -> anyhow::Result<(OutboundContext, Vec<String>)> {
    let mut notes = Vec::new();
    // Before any TLS configuration is built: they all log to it.
    notes.extend(args.keylog.install()?);
    let cfg = match &args.config {
        Some(path) => Some(EdgeConfig::load(path)?),
        None => None,
    };
    let (policy, mut settings, cfg_cert, cfg_ca, cfg_system_roots) = match &cfg {
        Some(c) => (
            Policy::from_config(c),
            c.dns.resolver.clone(),
            c.tls.cert.clone().zip(c.tls.key.clone()),
            c.tls.ca.clone(),
            c.tls.use_system_roots,
        ),
        None => (
            Policy::new(&EdgeIdentity::default(), &PolicyConfig::default(), false),
            ResolverSettings::default(),
            None,
            Vec::new(),
            false,
        ),
    };
    if let Some(server) = args.dns {
        settings.server = Some(server);
    }
    let lookup = HickoryLookup::new(settings).context("DNS resolver")?;
    if lookup.is_system() {
        notes.push(format!(
            "resolving with {}; give --dns IP[:PORT] (or dns.resolver.server) to ask another DNS server",
            lookup.server()
        ));
    }
    let policy = policy.with_dns_server(lookup.server());

    let mut ca_files: Vec<PathBuf> = args.ca.clone();
    ca_files.extend(cfg_ca);
    let data_ca = args.data_dir.join("ca.pem");
    let data_cert = args.data_dir.join("edge.chain.pem");
    let data_key = args.data_dir.join("edge.key");
    let mut extra_anchor = None;
    let identity = if let Some((cert, key)) = args.cert.clone().zip(args.key.clone()).or(cfg_cert) {
        TlsIdentity::from_pem_files(&cert, &key)?
    } else if data_cert.is_file() && data_key.is_file() {
        if ca_files.is_empty() && data_ca.is_file() {
            ca_files.push(data_ca);
        }
        TlsIdentity::from_pem_files(&data_cert, &data_key)?
    } else {
        let ca = LabCa::generate("edgesim ephemeral lab CA", KeyType::EcdsaP256)?;
        let leaf = ca.issue(&LeafSpec::new(&policy.edge_fqdn))?;
        notes.push(format!(
            "no Edge certificate given and {} has none: using an ephemeral lab CA and a {} certificate made in memory; a peer will not trust it (run `edgesim serve` once, or give --cert/--key)",
            args.data_dir.display(),
            policy.edge_fqdn
        ));
        extra_anchor = Some(ca.cert_der().clone());
        TlsIdentity::from(&leaf)
    };
    let mut anchors = TrustAnchors::from_files(&ca_files)?;
    if let Some(der) = extra_anchor {
        anchors.add(&der, "ephemeral lab CA")?;
    }
    if args.system_roots || cfg_system_roots {
        let n = anchors
            .add_system_roots()
            .context("--system-roots / tls.use_system_roots")?;
        notes.push(format!("trusting {n} system root CAs"));
    }
    if anchors.is_empty() {
        notes.push(
            "no trusted CA given (--ca): every peer certificate chain will be reported untrusted"
                .to_string(),
        );
    }
    let edge_fqdn = policy.edge_fqdn.clone();
    Ok((
        OutboundContext {
            policy,
            identity,
            anchors,
            lookup: Arc::new(lookup),
            edge_fqdn,
            timeouts: Timeouts {
                response: response_timeout,
                ..Timeouts::default()
            },
            taps: Default::default(),
            proxy_port: 5061,
        },
        notes,
    ))
}

/// Prints the notes of [`build_context`] to stderr, one `note:` line each.
pub(crate) fn print_notes(notes: &[String]) {
    for n in notes {
        eprintln!("note: {n}");
    }
}

/// With `--json`, an error that stops `command` before its result is printed as the `ERROR` document
/// ([`edgesim::report::error_json`]) on stdout, as well as on stderr as without `--json`; the exit code stays 2.
/// A closed stdout is left to `main`.
pub(crate) fn json_errors(
    command: &'static str,
    json: bool,
    result: anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    json_errors_with(command, json, result, |e| {
        ErrorInfo::message(format!("{e:#}"))
    })
}

/// [`json_errors`] with the `error` object made by `info`.
pub(crate) fn json_errors_with(
    command: &'static str,
    json: bool,
    result: anyhow::Result<ExitCode>,
    info: impl FnOnce(&anyhow::Error) -> ErrorInfo,
) -> anyhow::Result<ExitCode> {
    let e = match result {
        Err(e) if json && !broken_pipe(&e) => e,
        other => return other,
    };
    println!("{}", edgesim::report::error_json(command, &info(&e))?);
    eprintln!("edgesim: {e:#}");
    Ok(ExitCode::from(super::EXIT_USAGE))
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The `command` of its `--json` document.
const COMMAND: &str = "call";

/// The fields of `call --json` between the envelope's `status` and its `lines` (one per step the Edge took,
/// then the `result`).
#[derive(serde::Serialize)]
struct CallJson<'a> {
    /// The callee.
    target: &'a str,
    /// The kind of result (`connected`, `srv-mismatch`, `cert-mismatch` …).
    class: outbound::OutcomeClass,
    /// The exit code.
    exit_code: u8,
    /// The final status the Skype client receives, and its reason phrase.
    final_status: u16,
    reason: &'a str,
    /// The `ms-diagnostics` the client receives.
    ms_diagnostics: Option<&'a str>,
    /// What happened, without the fix.
    explanation: String,
    /// What to change (the `Fix:` of the explanation).
    fix: Option<String>,
    /// The SRV target (or fixed FQDN) used, once known.
    srv_target: Option<&'a str>,
    /// Methods sent to the peer, in order.
    sent: &'a [String],
    /// The final response as the Skype client log shows it.
    response_text: &'a str,
    /// How the call ran (the DNS server asked, the certificates used).
    notes: &'a [String],
}

/// The `call --json` document: each step a line (a failed step is a FAIL, or a WARN after a connected call,
/// such as an unanswered BYE), then a `result` line with the explanation and its fix.
fn call_json(
    target: &str,
    out: &outbound::CallOutcome,
    notes: &[String],
) -> anyhow::Result<String> {
    let connected = out.class == outbound::OutcomeClass::Connected;
    let (explanation, fix) = split_fix(&out.explanation);
    let mut lines: Vec<Line> = out
        .steps
        .iter()
        .map(|s| {
            let status = match (s.ok, connected) {
                (true, _) => Status::Pass,
                (false, true) => Status::Warn,
                (false, false) => Status::Fail,
            };
            Line::new(status, &s.name, &s.detail, None)
        })
        .collect();
    lines.push(Line::new(
        Status::pass_if(connected),
        "result",
        format!("{} {}: {explanation}", out.final_status, out.reason),
        fix.clone(),
    ));
    let body = CallJson {
        target,
        class: out.class,
        exit_code: out.class.exit_code(),
        final_status: out.final_status,
        reason: &out.reason,
        ms_diagnostics: out.ms_diagnostics.as_deref(),
        explanation,
        fix,
        srv_target: out.target.as_deref(),
        sent: &out.sent,
        response_text: &out.response_text,
        notes,
    };
    Ok(Envelope::new(COMMAND, body, lines).to_json()?)
}

/// Runs `edgesim call`; with `--json`, a failure to start is an `ERROR` document too.
pub fn run(args: CallArgs) -> anyhow::Result<ExitCode> {
    let json = args.edge.json;
    json_errors(COMMAND, json, run_call(args))
}

fn run_call(args: CallArgs) -> anyhow::Result<ExitCode> {
    if outbound::target_domain(&args.target).is_none() {
        anyhow::bail!(
            "{}: not a SIP URI with a domain — give the callee as sip:user@domain",
            args.target
        );
    }
    let hold = secs(args.hold, "hold")?;
    let timeout = secs(args.timeout, "timeout")?;
    let (mut ctx, mut notes) = build_context(&args.edge, timeout)?;
    let rt = super::runtime()?;
    let wire = rt.block_on(super::wire::open_taps(&args.pcap, &args.hep, None, None))?;
    ctx.taps = wire.taps.clone();
    notes.extend(wire.notes);
    let req = CallRequest {
        target: args.target.clone(),
        from: args.from.clone(),
        method: if args.options {
            CallMethod::Options
        } else if args.subscribe {
            CallMethod::Subscribe
        } else if args.im.is_some() {
            CallMethod::Im
        } else {
            CallMethod::Invite
        },
        hold_ms: u64::try_from(hold.as_millis()).unwrap_or(u64::MAX),
        route: None,
        im_text: args.im.clone(),
    };
    // Notes first: which DNS server is asked (and other defaults) matter before the result does.
    if !args.edge.json {
        print_notes(&notes);
    }
    let out = rt.block_on(outbound::call(&ctx, &req));
    rt.block_on(super::wire::shutdown_taps(&wire.taps))?;
    if args.edge.json {
        println!("{}", call_json(&args.target, &out, &notes)?);
    } else {
        if args.verbose {
            for s in &out.steps {
                println!(
                    "[{}] {:<6} {}",
                    if s.ok { " ok " } else { "FAIL" },
                    s.name,
                    s.detail
                );
            }
            println!();
        }
        print!("{}", out.response_text.replace("\r\n", "\n"));
        for line in &out.seen {
            println!("{line}");
        }
        println!("{}", out.explanation);
    }
    Ok(ExitCode::from(out.class.exit_code()))
}
