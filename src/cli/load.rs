//! `edgesim load`: mutual-TLS connections sending INVITEs or OPTIONS to an Edge (or any SIP-over-TLS
//! server), then a summary of statuses, ms-diagnostics codes, rates, latencies, handshakes and errors.
//!
//! Every request attempted counts, also when its connection is refused, so a run always ends; the exit status
//! says whether everything, something or nothing was answered.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use edgesim::lab::load::{self, LoadSpec, Outcome, Progress, RequestTemplate, Stop};
use edgesim::pki::{self, Identity, KeyType, LabCa, LeafSpec};
use edgesim::report::Envelope;
use rustls_pki_types::ServerName;
use tokio_util::sync::CancellationToken;

/// Request method to send.
#[derive(Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum MethodArg {
    Invite,
    Options,
}

/// Exit code when some requests went unanswered or failed.
pub const EXIT_PARTIAL: u8 = 1;

/// Exit code when requests were attempted and none was answered.
pub const EXIT_NOTHING_ANSWERED: u8 = 3;

const LOAD_HELP: &str = "Every request attempted counts, also when its connection is refused: a run always ends. \
503 answers are explained in the summary (limits.max_requests_per_sec, Retry-After).\n\nExit codes: 0 every \
request answered (whatever its status) and no error; 1 some requests unanswered or failed; 3 requests attempted \
and none answered (nothing listening, every handshake refused …); 2 usage error or a certificate that cannot be \
loaded.";

/// Arguments of `edgesim load`.
#[derive(clap::Args)]
#[command(after_help = LOAD_HELP)]
pub struct LoadArgs {
    /// Server address, HOST:PORT.
    #[arg(long)]
    target: String,
    /// TLS server name (SNI); default: the target's host.
    #[arg(long)]
    server_name: Option<String>,
    /// Client certificate chain file (PEM, leaf first); needs --key. Without it or --lab-cert-cn, no client
    /// certificate is presented (an Edge that requires one refuses the handshake).
    #[arg(long, requires = "key", conflicts_with = "lab_cert_cn")]
    cert: Option<PathBuf>,
    /// Private key of --cert (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Issue a client certificate (CN and SAN = NAME, EKU server+client) from the lab CA in --ca-dir,
    /// or from an in-memory CA when that directory has none (a real Edge will not trust that one).
    #[arg(long, value_name = "NAME")]
    lab_cert_cn: Option<String>,
    /// Directory holding the lab CA (ca.pem, ca.key) for --lab-cert-cn: the one `edgesim serve` creates.
    #[arg(
        long,
        alias = "data-dir",
        value_name = "DIR",
        default_value = "./edgesim-data"
    )]
    ca_dir: PathBuf,
    /// From URI: its domain is the one the Edge looks up.
    #[arg(long, default_value = "sip:2000@acano.steven.lab")]
    from: String,
    /// To URI (also the Request-URI).
    #[arg(long, default_value = "sip:stejanss@skype.lab")]
    to: String,
    /// Request method.
    #[arg(long, value_enum, ignore_case = true, default_value = "INVITE")]
    method: MethodArg,
    /// Concurrent TLS connections.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Requests in flight per connection (1: one at a time).
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Requests per second over all connections (`500` or `500/s`); default: as fast as possible.
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// Send for this many seconds.
    #[arg(long, conflicts_with = "requests")]
    duration: Option<f64>,
    /// Send this many requests (default 1000 when --duration is not given).
    #[arg(long)]
    requests: Option<u64>,
    /// Open a new TLS connection for every request.
    #[arg(long)]
    new_connection_per_request: bool,
    /// Time to wait for an answer or a handshake, ms.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Keep each connection open, idle, this many seconds after its last answer.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    hold: f64,
    /// Print the summary as one JSON document (the shared layout of docs/json.md).
    #[arg(long)]
    json: bool,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let n = s.trim().trim_end_matches("/s");
    match n.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!(
            "`{s}` is not a rate: give requests per second, e.g. 500 or 500/s"
        )),
    }
}

fn identity(a: &LoadArgs) -> anyhow::Result<Option<Identity>> {
    if let (Some(cert), Some(key)) = (&a.cert, &a.key) {
        return Ok(Some(Identity::from_pem_files(cert, key)?));
    }
    let Some(cn) = &a.lab_cert_cn else {
        eprintln!(
            "edgesim load: no client certificate: an Edge with tls.client_cert = \"required\" (the default) \
             refuses the handshake; pass --lab-cert-cn NAME (issued from the lab CA in {}) or --cert FILE --key FILE",
            a.ca_dir.display()
        );
        return Ok(None);
    };
    let ca = if a.ca_dir.join("ca.pem").exists() {
        LabCa::load_dir(&a.ca_dir)
            .with_context(|| format!("loading the lab CA from {}", a.ca_dir.display()))?
    } else {
        eprintln!(
            "edgesim load: no lab CA in {} (ca.pem, ca.key): issuing from an in-memory CA the server will not trust",
            a.ca_dir.display()
        );
        LabCa::generate("edgesim load in-memory CA", KeyType::EcdsaP256)?
    };
    let issued = ca.issue(&LeafSpec::new(cn))?;
    Ok(Some(Identity::from(&issued)))
}

/// The `command` of its `--json` document.
const COMMAND: &str = "load";

/// Runs `edgesim load`; with `--json`, a failure to start is an `ERROR` document too.
pub fn run(a: LoadArgs) -> anyhow::Result<ExitCode> {
    let json = a.json;
    super::call::json_errors(COMMAND, json, run_load(a))
}

fn run_load(a: LoadArgs) -> anyhow::Result<ExitCode> {
    let rt = super::runtime()?;
    let target = rt
        .block_on(tokio::net::lookup_host(&a.target))
        .with_context(|| format!("--target {}: cannot resolve (give HOST:PORT)", a.target))?
        .next()
        .with_context(|| format!("--target {}: no address", a.target))?;
    let name = a.server_name.clone().unwrap_or_else(|| {
        a.target
            .rsplit_once(':')
            .map_or(a.target.as_str(), |(h, _)| h)
            .trim_matches(|c| c == '[' || c == ']')
            .to_owned()
    });
    let server_name = ServerName::try_from(name.clone())
        .with_context(|| format!("--server-name {name}: not a DNS name or IP address"))?;
    let id = identity(&a)?;
    let tls = pki::client_config(id.as_ref())?;
    let stop = match (a.duration, a.requests) {
        (Some(d), _) if d > 0.0 && d.is_finite() => Stop::Duration(Duration::from_secs_f64(d)),
        (Some(d), _) => bail!("--duration {d}: give a positive number of seconds"),
        (None, Some(n)) => Stop::Requests(n),
        (None, None) => Stop::Requests(1000),
    };
    let method = match a.method {
        MethodArg::Invite => "INVITE",
        MethodArg::Options => "OPTIONS",
    };
    let mut spec = LoadSpec::new(
        target,
        server_name,
        tls,
        RequestTemplate::new(method, &a.from, &a.to),
    );
    spec.connections = a.connections.max(1);
    spec.window = a.window.max(1);
    spec.rate = a.rate;
    spec.stop = stop;
    spec.new_connection_per_request = a.new_connection_per_request;
    spec.timeout = Duration::from_millis(a.timeout_ms.max(1));
    if !(a.hold >= 0.0 && a.hold.is_finite()) {
        bail!("--hold {}: give a number of seconds, 0 or more", a.hold);
    }
    spec.hold = Duration::from_secs_f64(a.hold);

    let progress = Arc::new(Progress::default());
    let cancel = CancellationToken::new();
    let report = rt.block_on(async {
        let c = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                c.cancel();
            }
        });
        let bar = std::io::stderr()
            .is_terminal()
            .then(|| progress_bar(stop, progress.clone()));
        let report = load::run(spec, progress.clone(), cancel.clone()).await;
        if let Some((bar, task)) = bar {
            task.abort();
            bar.finish_and_clear();
        }
        report
    });
    let text = if a.json {
        let lines = report.lines();
        format!("{}\n", Envelope::new(COMMAND, &report, lines).to_json()?)
    } else {
        report.render()
    };
    // A closed stdout (`| head`) is handled once, in main.
    std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
    Ok(match report.outcome() {
        Outcome::Complete => ExitCode::SUCCESS,
        Outcome::Partial => ExitCode::from(EXIT_PARTIAL),
        Outcome::NothingAnswered => ExitCode::from(EXIT_NOTHING_ANSWERED),
    })
}

/// A progress bar on stderr (no colours), updated five times a second from the live counters.
fn progress_bar(
    stop: Stop,
    progress: Arc<Progress>,
) -> (indicatif::ProgressBar, tokio::task::JoinHandle<()>) {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let (len, by_time) = match stop {
        Stop::Requests(n) => (n, false),
        Stop::Duration(d) => (u64::try_from(d.as_millis()).unwrap_or(u64::MAX), true),
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {elapsed_precise} {msg}") {
        bar.set_style(style);
    }
    let start = tokio::time::Instant::now();
    let drawn = bar.clone();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            let (sent, answered, errors) = progress.snapshot();
            let secs = start.elapsed().as_secs_f64().max(1e-3);
            bar.set_position(if by_time {
                u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
            } else {
                answered + errors
            });
            bar.set_message(format!(
                "sent {sent} answered {answered} errors {errors} ({:.0}/s)",
                answered as f64 / secs
            ));
        }
    });
    (drawn, task)
}
