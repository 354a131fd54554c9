//! `edgesim scenario`: run lab scenario files end to end over loopback and print the verdict table.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use edgesim::lab::scenario::format::MsDiagExpect;
use edgesim::lab::scenario::report::{self, render_json, render_table_width};
use edgesim::lab::scenario::{CaseKind, ScenarioFile};
use edgesim::lab::scenario::{ScenarioError, ScenarioReport, run_scenario_tapped, seed_lab};
use edgesim::report::ErrorInfo;

/// Exit code when a case's outcome differs from its expectation.
pub const EXIT_MISMATCH: u8 = 1;

/// `edgesim scenario --help`: exit codes and the log default of every `scenario` subcommand.
pub const EXIT_CODES: &str = "Exit codes: 0 every case as expected; 1 run: a case's outcome differs from its \
expectation; 2 a scenario file that does not load or a lab that cannot be built (the message names the file, the \
line and the field).\n\nLogs: only errors unless --log or RUST_LOG say otherwise; the table already shows every \
Edge record and explanation.";

const RUN_EXIT_CODES: &str = "Exit codes: 0 every case as expected; 1 a case's outcome differs from its \
expectation; 2 a scenario file that does not load or a lab that cannot be built (the message names the file, the \
line and the field).\n\nThe table fits 100 columns; explanations wrap to the terminal's width (100 columns when \
the output is not a terminal). Logs: only errors unless --log or RUST_LOG say otherwise.";

const READ_EXIT_CODES: &str = "Exit codes: 0 printed; 2 a scenario file that does not load (the message names the \
file, the line and the field).";

/// Subcommands of `edgesim scenario`.
#[derive(clap::Subcommand)]
pub enum ScenarioCommand {
    /// Run scenario files (or every *.toml in a directory); none: the embedded seed lab.
    #[command(after_help = RUN_EXIT_CODES)]
    Run {
        /// Scenario files or directories.
        #[arg(value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
        /// Print one JSON document (for CI) instead of the table: the shared layout of docs/json.md, an ERROR
        /// document naming the file, line and field when a scenario does not load.
        #[arg(long)]
        json: bool,
        /// Run only the cases whose name contains this text (case-insensitive).
        #[arg(long = "case", value_name = "TEXT")]
        only: Option<String>,
        #[command(flatten)]
        keylog: super::wire::KeylogArg,
        #[command(flatten)]
        pcap: super::wire::PcapArgs,
    },
    /// List the cases of scenario files; none: the embedded seed lab.
    #[command(after_help = READ_EXIT_CODES)]
    List {
        /// Scenario files or directories.
        #[arg(value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
    },
    /// Print a scenario's lab: Edge, policy, certificates, DNS and cases; none: the embedded seed lab.
    #[command(after_help = READ_EXIT_CODES)]
    Show {
        /// The scenario file.
        #[arg(value_name = "FILE")]
        path: Option<PathBuf>,
    },
}

/// Runs `edgesim scenario`.
pub fn run(command: ScenarioCommand) -> anyhow::Result<ExitCode> {
    match command {
        // With --json, a file that does not load (or a lab that cannot be built) is an ERROR document.
        ScenarioCommand::Run {
            paths,
            json,
            only,
            keylog,
            pcap,
        } => super::call::json_errors_with(
            report::COMMAND,
            json,
            keylog_note(&keylog, json)
                .and_then(|()| run_files(&paths, json, only.as_deref(), &pcap)),
            |e| match e.downcast_ref::<ScenarioError>() {
                Some(se) => report::error_info(se),
                None => ErrorInfo::message(format!("{e:#}")),
            },
        ),
        ScenarioCommand::List { paths } => {
            for file in load_all(&paths)? {
                println!("{}", file.path.display());
                for case in &file.cases {
                    println!("  {:<8} {}", case.direction().to_string(), case.name);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ScenarioCommand::Show { path } => {
            let file = match path {
                Some(p) => ScenarioFile::load(&p)?,
                None => seed_lab()?,
            };
            print!("{}", show(&file));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Installs `--keylog` / `SSLKEYLOGFILE` before the labs build their TLS configurations (the Edges' and
/// the emulated peers': one file has the secrets of both ends), and says so on stderr.
fn keylog_note(keylog: &super::wire::KeylogArg, json: bool) -> anyhow::Result<()> {
    if let Some(note) = keylog.install()?
        && !json
    {
        eprintln!("note: {note}");
    }
    Ok(())
}

/// The scenario files named by `paths` (directories: their *.toml, sorted); none: the seed lab.
fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{}: cannot list the directory", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            if found.is_empty() {
                anyhow::bail!(
                    "{}: no *.toml scenario files in this directory",
                    p.display()
                );
            }
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Parses every file first, so a typo in the last file stops the run before any lab starts.
fn load_all(paths: &[PathBuf]) -> anyhow::Result<Vec<ScenarioFile>> {
    if paths.is_empty() {
        return Ok(vec![seed_lab()?]);
    }
    expand(paths)?
        .iter()
        .map(|p| ScenarioFile::load(p).map_err(anyhow::Error::from))
        .collect()
}

fn run_files(
    paths: &[PathBuf],
    json: bool,
    only: Option<&str>,
    pcap: &super::wire::PcapArgs,
) -> anyhow::Result<ExitCode> {
    let mut files = load_all(paths)?;
    if let Some(text) = only {
        let text = text.to_lowercase();
        for f in &mut files {
            f.cases.retain(|c| c.name.to_lowercase().contains(&text));
        }
        files.retain(|f| !f.cases.is_empty());
        if files.is_empty() {
            anyhow::bail!(
                "no case name contains \"{text}\"; `edgesim scenario list` shows the names"
            );
        }
    }
    let runtime = super::runtime()?;
    // Every case's messages (the Edges' inbound, the outbound calls') go to one pcapng file.
    let wire = runtime.block_on(super::wire::open_taps(
        pcap,
        &super::wire::HepArgs::off(),
        None,
        None,
    ))?;
    if !json {
        for n in &wire.notes {
            eprintln!("note: {n}");
        }
    }
    let cols = super::output_width();
    let mut reports: Vec<ScenarioReport> = Vec::new();
    for file in &files {
        let report = runtime.block_on(run_scenario_tapped(file, &wire.taps))?;
        if !json {
            if !reports.is_empty() {
                println!();
            }
            print!("{}", render_table_width(&report, cols));
        }
        reports.push(report);
    }
    runtime.block_on(super::wire::shutdown_taps(&wire.taps))?;
    if json {
        println!("{}", render_json(&reports)?);
    } else if reports.len() > 1 {
        let cases: usize = reports.iter().map(|r| r.cases.len()).sum();
        let failures: usize = reports.iter().map(ScenarioReport::failures).sum();
        println!();
        println!("{} files, {cases} cases, {failures} failed", reports.len());
    }
    Ok(if reports.iter().all(ScenarioReport::passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_MISMATCH)
    })
}

/// A plain description of the lab.
fn show(file: &ScenarioFile) -> String {
    use std::fmt::Write as _;
    let s = &file.scenario;
    let mut out = String::new();
    let _ = writeln!(out, "{}", file.path.display());
    if let Some(t) = &s.title {
        let _ = writeln!(out, "  {t}");
    }
    let _ = writeln!(
        out,
        "\nEdge {} (domain {}), certificate: {}",
        s.edge.fqdn,
        s.edge.domain,
        s.edge_cert
            .as_ref()
            .map_or("issued by the lab CA for the Edge FQDN".to_owned(), |c| c
                .get_ref()
                .clone())
    );
    let p = &s.policy;
    let _ = writeln!(
        out,
        "Policy: partner discovery {}, blocked [{}], allowed [{}], apex target {}, wildcards {}, clientAuth EKU {}{}",
        on(p.partner_discovery),
        p.blocked_domains.join(", "),
        p.allowed_domains
            .iter()
            .map(|a| match &a.proxy_fqdn {
                Some(f) => format!("{} via {f}", a.domain),
                None => a.domain.clone(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        on(p.accept_apex_target),
        on(p.allow_wildcard),
        if p.require_client_auth_eku {
            "required"
        } else {
            "not required"
        },
        if s.faithful {
            ", faithful (bare responses)"
        } else {
            ""
        }
    );
    for u in &s.users {
        let _ = writeln!(
            out,
            "User {}: {:?}, rings {} ms",
            u.user, u.action, u.ring_ms
        );
    }
    let _ = writeln!(out, "\nCertificates:");
    for (name, c) in &s.certs {
        match &c.file {
            Some(f) => {
                let _ = writeln!(out, "  {name}: file {}", f.display());
            }
            None => {
                let _ = writeln!(
                    out,
                    "  {name}: CN {}, SAN [{}], EKU {:?}, issuer {:?}{}{}",
                    c.cn.as_deref().unwrap_or("(none)"),
                    c.san.clone().unwrap_or_default().join(", "),
                    c.eku,
                    c.issuer,
                    if c.expired { ", expired" } else { "" },
                    if c.not_yet_valid {
                        ", not yet valid"
                    } else {
                        ""
                    },
                );
            }
        }
    }
    let _ = writeln!(out, "\nDNS (every case):");
    for r in &s.dns.records {
        let _ = writeln!(out, "  {}", record(r));
    }
    for case in &file.cases {
        let _ = writeln!(out, "\n[{}] {}", case.direction(), case.name);
        if let Some(d) = &case.description {
            let _ = writeln!(out, "  {d}");
        }
        for r in &case.dns {
            let _ = writeln!(out, "  dns: {}", record(r));
        }
        match &case.kind {
            CaseKind::Inbound(i) => {
                let from = match &i.from_display {
                    Some(d) => format!("\"{d}\" <{}>", i.from),
                    None => i.from.clone(),
                };
                let _ = writeln!(
                    out,
                    "  {} from {from} to {}{}, client cert {}",
                    i.method,
                    i.to,
                    i.pai
                        .as_ref()
                        .map(|p| format!(" (PAI {p})"))
                        .unwrap_or_default(),
                    i.cert.as_deref().unwrap_or("none"),
                );
            }
            CaseKind::Outbound(o) => {
                let _ = writeln!(
                    out,
                    "  call {} → peer server cert {}, {}{}",
                    o.target,
                    o.cert.as_deref().unwrap_or("none"),
                    o.behaviour,
                    o.peer_ms_diagnostics
                        .as_ref()
                        .map(|d| format!(" with ms-diagnostics {d}"))
                        .unwrap_or_default()
                );
            }
        }
        let e = &case.expect;
        let mut want = Vec::new();
        if let Some(h) = e.handshake {
            want.push(format!("handshake {h:?}").to_lowercase());
        }
        if let Some(s) = e.status {
            want.push(format!("status {s}"));
        }
        match &e.ms_diagnostics {
            Some(MsDiagExpect::Absent) => want.push("no ms-diagnostics".into()),
            Some(MsDiagExpect::Exact(x)) => want.push(format!("ms-diagnostics {x}")),
            Some(MsDiagExpect::Code { code, params }) => want.push(format!(
                "ms-diagnostics {code}{}",
                params
                    .iter()
                    .map(|(k, v)| format!(";{k}=\"{v}\""))
                    .collect::<String>()
            )),
            None => {}
        }
        if let Some(r) = &e.result_code {
            want.push(format!("result code {r}"));
        }
        if let Some(d) = &e.log_data {
            want.push(format!("Data {d}"));
        }
        let _ = writeln!(out, "  expect: {}", want.join(", "));
    }
    out
}

fn on(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn record(r: &edgesim::lab::scenario::format::ScenarioRecord) -> String {
    use edgesim::lab::scenario::format::ScenarioRecord as R;
    match r {
        R::Srv {
            name,
            priority,
            weight,
            port,
            target,
            ..
        } => format!(
            "{name} SRV {priority} {weight} {} {target}",
            if *port == 0 {
                "<case port>".to_owned()
            } else {
                port.to_string()
            }
        ),
        R::A { name, address, .. } => format!("{name} A {address}"),
        R::Aaaa { name, address, .. } => format!("{name} AAAA {address}"),
        R::Cname { name, target, .. } => format!("{name} CNAME {target}"),
        R::Txt { name, text, .. } => format!("{name} TXT \"{text}\""),
        R::Fault { name, kind } => format!("{name} FAULT {kind:?}"),
    }
}
