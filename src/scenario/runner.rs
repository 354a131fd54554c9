//! Running a scenario: every case in its own lab (own DNS server, own Edge or peer server, all on 127.0.0.1:0),
//! so cases run concurrently; certificates are issued once per file.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use tokio::net::TcpListener;

use super::expect::{Observed, compare, summarize_expect, summarize_observed};
use super::format::{Case, DEFAULT_SIP_TLS_PORT, Direction, ScenarioFile};
use super::lab::{CaseDns, LabPki, case_zones};
use super::{ScenarioError, seed_lab};

/// How many cases of one file run at once (each holds a DNS server, an Edge or peer server, and a client).
const CONCURRENT_CASES: usize = 8;

/// A case that takes longer than this is reported as an error, not waited for.
const CASE_DEADLINE: Duration = Duration::from_secs(15);

/// One case's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case name.
    pub name: String,
    /// Inbound or outbound.
    pub direction: Direction,
    /// The case's description.
    pub description: Option<String>,
    /// The expectation, summarised (`504 · 1009 · 0xc3e93d6f`).
    pub expected: String,
    /// The observation, summarised the same way.
    pub got: String,
    /// Every expectation held.
    pub pass: bool,
    /// The differences (empty on PASS).
    pub detail: Vec<String>,
    /// The Edge's explanation of a rejection.
    pub explanation: Option<String>,
    /// Everything observed.
    pub observed: Observed,
    /// Wall time of the case, ms.
    pub elapsed_ms: u64,
}

/// All results of one scenario file.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// The file.
    pub path: String,
    /// Its title.
    pub title: Option<String>,
    /// One result per case, in file order.
    pub cases: Vec<CaseResult>,
    /// Wall time of the file, ms.
    pub elapsed_ms: u64,
}

impl ScenarioReport {
    /// True when every case passed.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.pass)
    }

    /// Number of failed cases.
    pub fn failures(&self) -> usize {
        self.cases.iter().filter(|c| !c.pass).count()
    }
}

/// Loads and runs a scenario file.
pub async fn run_file(path: &Path) -> Result<ScenarioReport, ScenarioError> {
    run_scenario(&ScenarioFile::load(path)?).await
}

/// Runs the embedded seed lab.
pub async fn run_embedded() -> Result<ScenarioReport, ScenarioError> {
    run_scenario(&seed_lab()?).await
}

/// Runs every case of a parsed scenario.
pub async fn run_scenario(file: &ScenarioFile) -> Result<ScenarioReport, ScenarioError> {
    let started = Instant::now();
    let pki = LabPki::build(file)?;
    let cases = futures::stream::iter(file.scenario.cases.iter())
        .map(|case| run_case(file, &pki, case))
        .buffered(CONCURRENT_CASES)
        .collect::<Vec<_>>()
        .await;
    Ok(ScenarioReport {
        path: file.path.display().to_string(),
        title: file.scenario.title.clone(),
        cases,
        elapsed_ms: millis(started),
    })
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs one case and compares.
async fn run_case(file: &ScenarioFile, pki: &LabPki, case: &Case) -> CaseResult {
    let started = Instant::now();
    let observed = match tokio::time::timeout(CASE_DEADLINE, observe(file, pki, case)).await {
        Ok(o) => o,
        Err(_) => Observed {
            error: Some(format!(
                "the case took longer than {} s",
                CASE_DEADLINE.as_secs()
            )),
            ..Observed::default()
        },
    };
    let detail = compare(&case.expect, &observed);
    CaseResult {
        name: case.name().to_owned(),
        direction: case.direction(),
        description: case.description.clone(),
        expected: summarize_expect(&case.expect),
        got: summarize_observed(&observed),
        pass: detail.is_empty(),
        detail,
        explanation: observed.explanation.clone(),
        observed,
        elapsed_ms: millis(started),
    }
}

fn failed(error: String) -> Observed {
    Observed {
        error: Some(error),
        ..Observed::default()
    }
}

/// Builds the case's lab, runs it, and tears it down.
async fn observe(file: &ScenarioFile, pki: &LabPki, case: &Case) -> Observed {
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    // Outbound: the peer server's socket is bound first, so SRV port 0 can name it.
    let peer_listener = match case.direction() {
        Direction::Inbound => None,
        Direction::Outbound => match TcpListener::bind(loopback).await {
            Ok(l) => Some(l),
            Err(e) => return failed(format!("cannot bind the peer server on 127.0.0.1: {e}")),
        },
    };
    let case_port = match &peer_listener {
        Some(l) => match l.local_addr() {
            Ok(a) => a.port(),
            Err(e) => return failed(format!("peer server socket: {e}")),
        },
        None => DEFAULT_SIP_TLS_PORT,
    };
    let zones = match case_zones(&file.scenario.dns.records, case, case_port) {
        Ok(z) => z,
        Err(e) => return failed(e.to_string()),
    };
    let dns = match CaseDns::start(zones, file.scenario.dns.timeout_ms).await {
        Ok(d) => d,
        Err(e) => return failed(e),
    };
    let observed = match (case.direction(), peer_listener) {
        (Direction::Outbound, Some(listener)) => {
            drive::outbound(file, pki, case, &dns, listener).await
        }
        _ => drive::inbound(file, pki, case, &dns).await,
    };
    dns.stop().await;
    observed
}

/// The parts that talk to the Edge and the emulated Expressway-E.
mod drive {
    use super::*;

    /// The emulated Expressway-E sends the case's request to a fresh Edge.
    pub(super) async fn inbound(
        _file: &ScenarioFile,
        _pki: &LabPki,
        _case: &Case,
        _dns: &CaseDns,
    ) -> Observed {
        failed("inbound cases need edge::serve and peer::client, not merged yet".into())
    }

    /// A fresh Edge calls the emulated Expressway-E's server.
    pub(super) async fn outbound(
        _file: &ScenarioFile,
        _pki: &LabPki,
        _case: &Case,
        _dns: &CaseDns,
        _listener: TcpListener,
    ) -> Observed {
        failed("outbound cases need outbound::call and peer::server, not merged yet".into())
    }
}
