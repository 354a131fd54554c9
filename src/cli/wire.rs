//! The "seeing the wire" flags shared by the subcommands (`--keylog`, `--pcap`, `--hep`, `--metrics`) and
//! their start-up: each opens its sink or fails with a message naming the flag and the fix. What the sinks do
//! is in `edgesim::wire`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use edgesim::wire::hep::{HepConfig, HepSender, HepTarget};
use edgesim::wire::keylog::{self, KeyLogSource};
use edgesim::wire::metrics::EdgeMetrics;
use edgesim::wire::pcap::{PcapLimits, PcapWriter};
use tokio_util::sync::CancellationToken;

/// `--keylog FILE` (and `SSLKEYLOGFILE`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KeylogArg {
    /// Append the TLS secrets of every connection to FILE, in the NSS key log format Wireshark and tshark
    /// decrypt with (`tshark -o tls.keylog_file:FILE`); without the flag, $SSLKEYLOGFILE is used when set.
    /// Whoever reads FILE can decrypt every captured connection it covers, SIP bodies and all: it is created
    /// with mode 0600 (an existing one is narrowed to 0600, a symbolic link is refused); delete it after use.
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<PathBuf>,
}

impl KeylogArg {
    /// Opens the key log (flag, else `SSLKEYLOGFILE`) and makes every TLS configuration built from now on
    /// write to it. Returns the note to print, if a key log is on. Call before any TLS configuration is built.
    pub fn install(&self) -> anyhow::Result<Option<String>> {
        let Some((writer, source)) =
            keylog::from_flag_or_env(self.keylog.as_deref()).map_err(|e| match self.keylog {
                Some(_) => anyhow::anyhow!("--keylog: {e}"),
                None => anyhow::anyhow!(
                    "{}: {e} (unset {} to run without a key log)",
                    keylog::ENV_VAR,
                    keylog::ENV_VAR
                ),
            })?
        else {
            return Ok(None);
        };
        let path = writer.path().display().to_string();
        keylog::install_process_wide(writer);
        let from = match source {
            KeyLogSource::Flag => "--keylog",
            KeyLogSource::Env => keylog::ENV_VAR,
        };
        Ok(Some(format!(
            "TLS key log ({from}): {path} (mode 0600) — it decrypts every connection of this run; \
             tshark -o tls.keylog_file:{path} reads it; delete it after use"
        )))
    }
}

/// `--pcap FILE` and its bounds.
#[derive(clap::Args, Debug, Clone)]
pub struct PcapArgs {
    /// Write every SIP message in and out, decrypted, to FILE as pcapng, with synthetic TCP between the real
    /// addresses and ports: Wireshark, tshark and sngrep show the ladder without keys (mode 0600: it holds
    /// what the TLS protected). The TLS peer's certificate name names its address (`tshark -N n`).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Close the pcapng file at this size in MB (1 MB = 1,000,000 bytes) and rotate it (see --pcap-keep).
    #[arg(long, value_name = "MB", default_value_t = 100, requires = "pcap")]
    pub pcap_max_mb: u64,
    /// Rotated files kept besides FILE (FILE.1 … FILE.N, newest first, like logrotate); 0 stops writing at
    /// --pcap-max-mb instead of rotating.
    #[arg(long, value_name = "N", default_value_t = 4, requires = "pcap")]
    pub pcap_keep: usize,
}

impl PcapArgs {
    /// Opens the pcapng writer, if `--pcap` was given, and the note saying where it writes.
    pub fn open(&self) -> anyhow::Result<Option<(PcapWriter, String)>> {
        let Some(path) = &self.pcap else {
            return Ok(None);
        };
        if self.pcap_max_mb == 0 {
            anyhow::bail!(
                "--pcap-max-mb 0: give the size in MB at which a pcapng file is closed, 1 or more"
            );
        }
        let limits = PcapLimits {
            max_bytes: self.pcap_max_mb.saturating_mul(1_000_000),
            keep: self.pcap_keep,
            ..PcapLimits::default()
        };
        let writer = PcapWriter::open(path, limits).map_err(|e| anyhow::anyhow!("--pcap: {e}"))?;
        let bound = match self.pcap_keep {
            0 => format!("writing stops at {} MB", self.pcap_max_mb),
            n => format!(
                "rotated at {} MB, {n} older file(s) kept as {}.1 …",
                self.pcap_max_mb,
                path.display()
            ),
        };
        Ok(Some((
            writer,
            format!(
                "decrypted SIP as pcapng: {} ({bound}; mode 0600)",
                path.display()
            ),
        )))
    }
}

/// `--hep udp:HOST:PORT` / `tcp:HOST:PORT` and its capture id.
#[derive(clap::Args, Debug, Clone)]
pub struct HepArgs {
    /// Send every SIP message as HEP3 to a Homer or sngrep collector: udp:HOST:PORT or tcp:HOST:PORT (an
    /// IPv6 host in brackets), e.g. udp:127.0.0.1:9060. The Call-ID is the correlation id.
    #[arg(long, value_name = "udp|tcp:HOST:PORT", value_parser = parse_hep)]
    pub hep: Option<HepTarget>,
    /// The HEP capture agent id (Homer shows it as the capture node).
    #[arg(long, value_name = "ID", default_value_t = HepConfig::default().capture_id, requires = "hep")]
    pub hep_capture_id: u32,
}

fn parse_hep(s: &str) -> Result<HepTarget, String> {
    s.parse()
        .map_err(|e: edgesim::wire::WireError| e.to_string())
}

impl HepArgs {
    /// No HEP (a command without `--hep`).
    pub fn off() -> HepArgs {
        HepArgs {
            hep: None,
            hep_capture_id: HepConfig::default().capture_id,
        }
    }

    /// Starts the HEP sender, if `--hep` was given, and the note saying where it sends.
    pub async fn start(&self) -> anyhow::Result<Option<(HepSender, String)>> {
        let Some(target) = &self.hep else {
            return Ok(None);
        };
        let config = HepConfig {
            capture_id: self.hep_capture_id,
            ..HepConfig::default()
        };
        let sender = HepSender::start(target, config)
            .await
            .map_err(|e| anyhow::anyhow!("--hep: {e}"))?;
        Ok(Some((
            sender,
            format!(
                "sending every SIP message as HEP3 to {target} (capture id {})",
                self.hep_capture_id
            ),
        )))
    }
}

/// Binds `--metrics ADDR`; the listener is served by [`serve_metrics`].
pub async fn bind_metrics(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "--metrics {addr}: the address is already in use — pick another --metrics"
            )
        } else {
            anyhow::anyhow!("--metrics {addr}: cannot listen: {e} — pick another --metrics")
        }
    })
}

/// Serves `GET /metrics` on `listener` until `shutdown`.
pub fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: Arc<EdgeMetrics>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = edgesim::wire::metrics::serve(listener, metrics, shutdown).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    })
}

/// Writes out and closes the taps' files at the end of a run; an error names what failed.
pub async fn shutdown_taps(taps: &edgesim::wire::Taps) -> anyhow::Result<()> {
    taps.shutdown().await.context("--pcap")
}

/// The sinks of `serve` (and `call`): opened in order, each failing with its flag named.
pub struct Opened {
    /// The taps to hand to the Edge or the outbound context.
    pub taps: edgesim::wire::Taps,
    /// `--metrics`: the bound listener and the registry it serves.
    pub metrics: Option<(tokio::net::TcpListener, Arc<EdgeMetrics>)>,
    /// One line per sink that is on, for the start-up report.
    pub notes: Vec<String>,
}

/// Opens `--pcap`, starts `--hep`, binds `--metrics`, and joins them with the web view's hub into taps.
pub async fn open_taps(
    pcap: &PcapArgs,
    hep: &HepArgs,
    metrics: Option<SocketAddr>,
    ui: Option<edgesim::ui::UiHub>,
) -> anyhow::Result<Opened> {
    let mut notes = Vec::new();
    let pcap = pcap.open()?.map(|(w, note)| {
        notes.push(note);
        w
    });
    let hep = hep.start().await?.map(|(s, note)| {
        notes.push(note);
        s
    });
    let metrics = match metrics {
        Some(addr) => {
            let listener = bind_metrics(addr).await?;
            let bound = listener.local_addr()?;
            notes.push(format!("Prometheus metrics on http://{bound}/metrics"));
            Some((listener, Arc::new(EdgeMetrics::new())))
        }
        None => None,
    };
    let taps = edgesim::wire::Taps::new(edgesim::wire::TapSinks {
        pcap,
        hep,
        metrics: metrics.as_ref().map(|(_, m)| m.clone()),
        ui,
    });
    Ok(Opened {
        taps,
        metrics,
        notes,
    })
}
