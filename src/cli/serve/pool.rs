//! `serve` as an Edge pool: the members from `--listen` (repeated: one name, one A record each — DNS load
//! balancing) or from `[[pool.members]]` (targets, SRV priorities and weights, initial fault modes), bound
//! before anything is announced, and the faults file (`--faults FILE`) applied at start and again on each
//! SIGUSR1.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use edgesim::config::EdgeConfig;
use edgesim::config::pool::{FaultMode, PoolMemberConfig, read_faults};
use edgesim::dns::{EdgeRecords, PoolMemberRecord};
use edgesim::edge::pool::{Pool, PoolMember};

/// The default `--listen`.
pub(super) const DEFAULT_LISTEN: &str = "127.0.0.1:5061";

/// What `serve` listens on: one Edge, or the members of a pool.
pub(super) struct Plan {
    /// The members, in order (one for a single Edge).
    pub members: Vec<PoolMemberConfig>,
    /// True for a pool (several members, `[[pool.members]]`, or `--faults`).
    pub pool: bool,
}

/// The members from the flags and the configuration; both at once is a usage error naming the file.
pub(super) fn plan(
    listen: &[SocketAddr],
    cfg: &EdgeConfig,
    config: Option<&Path>,
    faults: bool,
) -> anyhow::Result<Plan> {
    let configured = &cfg.pool.members;
    if !configured.is_empty() && !listen.is_empty() {
        anyhow::bail!(
            "--listen and [[pool.members]] in {} both name where the Edge listens: give the members either with --listen (repeated) or in [[pool.members]], not both",
            config.map_or("the configuration".into(), |p| p.display().to_string())
        );
    }
    let members: Vec<PoolMemberConfig> = if !configured.is_empty() {
        configured.clone()
    } else if listen.is_empty() {
        vec![PoolMemberConfig::new(DEFAULT_LISTEN.parse()?)]
    } else {
        // --listen twice on one address would fail to bind with a less helpful message.
        for (i, a) in listen.iter().enumerate() {
            if a.port() != 0 && listen[..i].contains(a) {
                anyhow::bail!(
                    "--listen {a} is given twice: give each pool member its own address (127.0.0.2, 127.0.0.3, … work on Linux loopback without set-up)"
                );
            }
        }
        listen.iter().copied().map(PoolMemberConfig::new).collect()
    };
    let pool = members.len() > 1 || !configured.is_empty() || faults;
    Ok(Plan { members, pool })
}

/// A member with its socket bound.
pub(super) struct Bound {
    /// The listening socket.
    pub listener: tokio::net::TcpListener,
    /// Its address (port 0 resolved).
    pub addr: SocketAddr,
    /// Its SRV target.
    pub target: String,
    /// How it was configured.
    pub config: PoolMemberConfig,
}

/// Binds every member; a member on port 0 that shares its target with an earlier one takes that member's
/// port, so that the target's one SRV record reaches them all.
pub(super) async fn bind_all(plan: &Plan, fqdn: &str) -> anyhow::Result<Vec<Bound>> {
    let mut bound: Vec<Bound> = Vec::new();
    for m in &plan.members {
        let target = m.target_or(fqdn);
        let mut addr = m.listen;
        if addr.port() == 0
            && let Some(first) = bound.iter().find(|b| b.target == target)
        {
            addr.set_port(first.addr.port());
        }
        let listener = super::bind(addr).await?;
        let addr = listener.local_addr()?;
        bound.push(Bound {
            listener,
            addr,
            target,
            config: m.clone(),
        });
    }
    Ok(bound)
}

/// The members as DNS publishes them; an unspecified listening address is published as the configured public
/// address, else the DNS server's own.
pub(super) fn records(
    cfg: &EdgeConfig,
    members: &[(SocketAddr, String, u16, u16)],
    dns: SocketAddr,
) -> Vec<PoolMemberRecord> {
    members
        .iter()
        .map(|(addr, target, priority, weight)| PoolMemberRecord {
            target: target.clone(),
            priority: *priority,
            weight: *weight,
            port: addr.port(),
            address: EdgeRecords::address_for(cfg.edge.public_address, *addr, dns),
        })
        .collect()
}

/// The start-up report's lines about the pool.
pub(super) fn report(pool: &Pool, faults: Option<&Path>) -> Vec<String> {
    let members = pool.members();
    let mut lines = vec![format!("Edge pool: {} members", members.len())];
    for m in &members {
        lines.push(format!(
            "pool member {} listening on tls (SRV target {}): {}",
            m.addr, m.target, m.fault
        ));
    }
    let addrs: Vec<SocketAddr> = members.iter().map(|m| m.addr).collect();
    match faults {
        Some(p) => lines.push(edgesim::config::pool::faults_file_help(p, &addrs)),
        None => lines.push(
            "pool faults: switch a member with `serve --faults FILE` and SIGUSR1, or Pool::set_fault from the library"
                .to_owned(),
        ),
    }
    lines
}

/// The pool's members to start.
pub(super) fn members(bound: Vec<Bound>) -> Vec<PoolMember> {
    bound
        .into_iter()
        .map(|b| PoolMember {
            listener: b.listener,
            target: b.target,
            fault: b.config.fault,
        })
        .collect()
}

/// Applies the faults file to the pool; the lines say what changed (or why nothing did).
pub(super) fn apply(pool: &Pool, path: &Path, via: &str) -> Result<Vec<String>, String> {
    let lines = match read_faults(path) {
        Ok(l) => l,
        Err(edgesim::config::ConfigError::Io { cause, .. })
            if cause.kind() == std::io::ErrorKind::NotFound =>
        {
            Vec::new()
        }
        Err(e) => return Err(e.to_string()),
    };
    let changes = pool
        .apply_faults(&lines, via)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(changes
        .iter()
        .map(|c| {
            format!(
                "pool member {}: {} -> {} ({via})",
                c.member, c.previous, c.fault
            )
        })
        .collect())
}

/// Re-reads the faults file on each SIGUSR1 until `stop`; what changed goes to stdout, a bad file to stderr
/// (and changes nothing). Without a faults file, SIGUSR1 only says so (instead of ending the process).
pub(super) fn on_sigusr1(
    pool: Pool,
    faults: Option<PathBuf>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use anyhow::Context;
        use tokio::signal::unix::{SignalKind, signal};
        let mut usr1 = signal(SignalKind::user_defined1()).context("cannot handle SIGUSR1")?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    r = usr1.recv() => if r.is_none() { return },
                }
                let Some(path) = &faults else {
                    eprintln!(
                        "SIGUSR1: no --faults FILE was given, so there is nothing to re-read; restart serve with --faults FILE"
                    );
                    continue;
                };
                let via = format!("faults file {}, SIGUSR1", path.display());
                match apply(&pool, path, &via) {
                    Ok(lines) => {
                        let mut out = std::io::stdout().lock();
                        if lines.is_empty() {
                            let _ = writeln!(out, "SIGUSR1: {} changes nothing", path.display());
                        }
                        for l in lines {
                            let _ = writeln!(out, "{l}");
                        }
                        let _ = out.flush();
                    }
                    Err(e) => eprintln!("SIGUSR1: {e}; the pool keeps its fault modes"),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (pool, faults, stop);
    Ok(())
}

/// True when a mode other than `accept` is configured for a member: the report warns that it starts faulty.
pub(super) fn starts_faulty(pool: &Pool) -> Vec<String> {
    pool.members()
        .iter()
        .filter(|m| m.fault != FaultMode::Accept)
        .map(|m| {
            format!(
                "note: pool member {} starts in fault mode {}: {}",
                m.addr,
                m.fault,
                m.fault.describe()
            )
        })
        .collect()
}
