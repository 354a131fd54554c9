//! `edgesim load`: mutual-TLS connections sending INVITEs or OPTIONS to an Edge (or any SIP-over-TLS
//! server), then a summary of statuses, ms-diagnostics codes, rates, latencies, handshakes and errors.
//!
//! Every request attempted counts, also when its connection is refused, so a run always ends; the exit status
//! says whether everything, something or nothing was answered.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use edgesim::lab::load::{self, LoadSpec, Outcome, Progress, RequestTemplate, Stop};
use edgesim::pki::{self, KeyType, LabCa, LeafSpec, TlsIdentity};
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
503 answers are explained in the summary, told apart by what they carry: Retry-After: 1 (limits.max_requests_per_sec per connection, or DiscoveredPartnerStandardRate per discovered partner), Retry-After: 5 (calls per connection), ms-diagnostics 1090 (pool member out of service).\n\nExit codes: 0 every \
request answered (whatever its status) and no error; 1 some requests unanswered or failed; 3 requests attempted \
and none answered (nothing listening, every handshake refused …); 2 usage error or a certificate that cannot be \
loaded.";

/// Arguments of `edgesim load`.
#[derive(clap::Args)]
#[command(
    after_help = LOAD_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct LoadArgs {
    #[command(subcommand)]
    command: Option<LoadCommand>,
    /// Server address, HOST:PORT.
    #[arg(long, required = true)]
    target: Option<String>,
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
    /// Run as shard I of N generator processes, I from 0 to N-1: this process opens its share of
    /// --connections, sends its share of --rate and of --requests (all three are the totals of the N
    /// shards) with Call-IDs of its own. Default: JOB_COMPLETION_INDEX and JOB_COMPLETIONS when set (a
    /// Kubernetes Indexed Job, deploy/k8s/load-job.yaml).
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    shard: Option<load::Shard>,
    /// Write the result (counts, timing window, latency histograms) to FILE for `edgesim load merge`; a
    /// directory (or a path ending in /) gets shard-I-of-N.json; `-` writes it to stdout as one line and the
    /// summary to stderr.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Also write every latency sample, µs, one a line (tests compare the histograms with the samples).
    #[arg(long, value_name = "FILE", hide = true)]
    raw_latencies: Option<PathBuf>,
    #[command(flatten)]
    keylog: super::wire::KeylogArg,
}

/// `edgesim load merge`.
#[derive(clap::Subcommand)]
pub enum LoadCommand {
    /// Merge the results of a sharded run (the files of `load --out`) into one summary: exact combined
    /// percentiles, rates and status counts.
    #[command(after_help = MERGE_HELP)]
    Merge(MergeArgs),
}

const MERGE_HELP: &str = "The shards' histograms are added bucket by bucket, so the percentiles are those of all \
the shards' samples pooled (never averaged percentiles); the rates are over the first shard's start to the last \
one's end.\n\nExit codes: 0 every request of every shard answered and no error; 1 some requests unanswered or \
failed, or a shard of the run missing; 3 requests attempted and none answered; 2 a file that cannot be read, or \
results that are not the shards of one run.";

/// Arguments of `edgesim load merge`.
#[derive(clap::Args)]
pub struct MergeArgs {
    /// Results written by `edgesim load --out`, or logs holding their lines (`--out -`, e.g. `kubectl logs`).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Print the merged summary as one JSON document (the shared layout of docs/json.md).
    #[arg(long)]
    json: bool,
}

fn parse_shard(s: &str) -> Result<load::Shard, String> {
    load::Shard::parse(s).map_err(|e| e.to_string())
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

fn identity(a: &LoadArgs) -> anyhow::Result<Option<TlsIdentity>> {
    if let (Some(cert), Some(key)) = (&a.cert, &a.key) {
        return Ok(Some(TlsIdentity::from_pem_files(cert, key)?));
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
    Ok(Some(TlsIdentity::from(&issued)))
}

/// The `command` of its `--json` document.
const COMMAND: &str = "load";

/// Runs `edgesim load`; with `--json`, a failure to start is an `ERROR` document too.
pub fn run(mut a: LoadArgs) -> anyhow::Result<ExitCode> {
    if let Some(LoadCommand::Merge(m)) = a.command.take() {
        let json = m.json;
        return super::call::json_errors(MERGE_COMMAND, json, run_merge(m));
    }
    let json = a.json;
    super::call::json_errors(COMMAND, json, run_load(a))
}

fn run_load(a: LoadArgs) -> anyhow::Result<ExitCode> {
    // Before any TLS configuration is built: they all log to it (one line per connection's secrets).
    if let Some(note) = a.keylog.install()? {
        eprintln!("note: {note}");
    }
    let rt = super::runtime()?;
    let target_arg = a.target.clone().context("--target HOST:PORT is required")?;
    let target = rt
        .block_on(tokio::net::lookup_host(&target_arg))
        .with_context(|| format!("--target {target_arg}: cannot resolve (give HOST:PORT)"))?
        .next()
        .with_context(|| format!("--target {target_arg}: no address"))?;
    let name = a.server_name.clone().unwrap_or_else(|| {
        target_arg
            .rsplit_once(':')
            .map_or(target_arg.as_str(), |(h, _)| h)
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
    spec.keep_samples = a.raw_latencies.is_some();
    let shard = match a.shard {
        Some(s) => Some(s),
        None => load::Shard::from_job_env(
            std::env::var("JOB_COMPLETION_INDEX").ok().as_deref(),
            std::env::var("JOB_COMPLETIONS").ok().as_deref(),
        )?,
    };
    if let Some(s) = shard {
        spec = spec.into_shard(s)?;
        eprintln!("{}", shard_note(&spec));
    }
    let stop = spec.stop;

    let progress = Arc::new(Progress::default());
    let cancel = CancellationToken::new();
    let load::RunOutput {
        report,
        result,
        samples,
    } = rt.block_on(async {
        let c = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                c.cancel();
            }
        });
        let bar = std::io::stderr()
            .is_terminal()
            .then(|| progress_bar(stop, progress.clone()));
        let report = load::run_with_result(spec, progress.clone(), cancel.clone()).await;
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
    if let Some(path) = &a.raw_latencies {
        let lines: String = samples
            .unwrap_or_default()
            .iter()
            .map(|us| format!("{us}\n"))
            .collect();
        std::fs::write(path, lines)
            .with_context(|| format!("--raw-latencies {}", path.display()))?;
    }
    let to_stdout = a.out.as_deref() == Some(Path::new("-"));
    if let Some(out) = a.out.as_deref().filter(|_| !to_stdout) {
        let path = out_path(out, &result)?;
        if let Err(e) = result.write(&path) {
            // The run's summary is not lost with its file.
            eprint!("{}", report.render());
            return Err(e.into());
        }
        eprintln!("edgesim load: result written to {}", path.display());
    }
    if to_stdout {
        eprint!("{text}");
        println!("{}", result.to_json_line()?);
        return Ok(exit_code(report.outcome()));
    }
    // A closed stdout (`| head`) is handled once, in main.
    std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
    Ok(match report.outcome() {
        Outcome::Complete => ExitCode::SUCCESS,
        Outcome::Partial => ExitCode::from(EXIT_PARTIAL),
        Outcome::NothingAnswered => ExitCode::from(EXIT_NOTHING_ANSWERED),
    })
}

/// The exit code of a run (or a merge) that ended so.
fn exit_code(outcome: Outcome) -> ExitCode {
    match outcome {
        Outcome::Complete => ExitCode::SUCCESS,
        Outcome::Partial => ExitCode::from(EXIT_PARTIAL),
        Outcome::NothingAnswered => ExitCode::from(EXIT_NOTHING_ANSWERED),
    }
}

/// What a shard does of the whole run, for stderr.
fn shard_note(spec: &LoadSpec) -> String {
    let Some(p) = spec.shard else {
        return String::new();
    };
    let requests = match (spec.stop, p.requests_total) {
        (Stop::Requests(n), Some(total)) => format!("{n} of {total} requests"),
        (Stop::Duration(d), _) => format!("for {} s", d.as_secs_f64()),
        (Stop::Requests(n), None) => format!("{n} requests"),
    };
    let rate = match (spec.rate, p.rate_total) {
        (Some(r), Some(total)) => format!("{r}/s of {total}/s"),
        _ => "as fast as possible".to_owned(),
    };
    format!(
        "edgesim load: shard {} (of shards 0..{}): {} of {} connections, {requests}, {rate}",
        p.shard(),
        p.count - 1,
        spec.connections,
        p.connections_total
    )
}

/// Where `--out` writes: `out` itself, or `out/shard-I-of-N.json` when `out` is a directory or ends in `/`
/// (created then).
fn out_path(out: &Path, result: &load::ShardResult) -> anyhow::Result<PathBuf> {
    let is_dir = out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/');
    if !is_dir {
        return Ok(out.to_owned());
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("--out {}: cannot create the directory", out.display()))?;
    Ok(out.join(result.shard().file_name()))
}

/// The `command` of the `--json` document of `load merge`.
const MERGE_COMMAND: &str = "load merge";

fn run_merge(m: MergeArgs) -> anyhow::Result<ExitCode> {
    let mut results = Vec::new();
    for file in &m.files {
        results.extend(load::read_results(file)?);
    }
    let merged = load::merge(results)?;
    let text = if m.json {
        let lines = merged.lines();
        format!(
            "{}\n",
            Envelope::new(MERGE_COMMAND, &merged, lines).to_json()?
        )
    } else {
        merged.render()
    };
    std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
    Ok(exit_code(merged.outcome()))
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
