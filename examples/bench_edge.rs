//! The Edge as `benches/run.sh` drives it: `edge::serve` on a TCP port with the embedded DNS server, a lab CA
//! written to a directory (so `edgesim load --lab-cert-cn NAME --ca-dir DIR` gets a trusted certificate), and
//! limits opened up for load (the top of the rate range, 20 000 connections, 1 h idle timeout).
//!
//! DNS: `acano.steven.lab` → SRV `vcse.steven.lab` (INVITE from it: 504 with ms-diagnostics 1009, the seed's
//! mis-configuration); `steven.lab` → SRV `vcse.steven.lab` (OPTIONS with a `vcse.steven.lab` certificate: 200).
//!
//! Built from the one lab builder (`edgesim::lab::builder`), as the tests and the scenario runner are.
//!
//! Usage: `cargo run --release --example bench_edge -- [LISTEN_ADDR] [CA_DIR]` (defaults 127.0.0.1:0 and a
//! temporary directory); prints `listening on ADDR` and `ca-dir DIR`, serves until killed.

use std::sync::Arc;

use edgesim::config::{EdgeConfig, TlsVersion};
use edgesim::edge::EdgeParts;
use edgesim::lab::builder::{LabCerts, LabDns, RunningEdge, srv};
use edgesim::pki::TlsIdentity;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let ca_dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("edgesim-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&ca_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let certs = LabCerts::new("edgesim bench CA", "sip.skype.lab")?;
        certs.ca.save(&ca_dir)?;
        let dns = LabDns::with_records(&[
            srv("acano.steven.lab", "vcse.steven.lab", 5061),
            srv("steven.lab", "vcse.steven.lab", 5061),
        ])
        .await?;
        let lookup =
            edgesim::dns::HickoryLookup::new(edgesim::dns::ResolverSettings::server(dns.addr()))?;
        let mut config = EdgeConfig::default();
        config.limits.max_connections = 20_000;
        // The top of the range: no practical limit.
        config.limits.max_requests_per_sec = 1_000_000;
        config.limits.idle_timeout_ms = 3_600_000;
        config.limits.header_timeout_ms = 10_000;
        config.limits.handshake_timeout_ms = 10_000;
        // TLS 1.2 and 1.3, as the echo server and every earlier figure (benches/README.md): the default profile
        // (sfb2015) would offer TLS 1.2 only.
        config.tls.versions = Some(vec![TlsVersion::Tls12, TlsVersion::Tls13]);
        let edge = RunningEdge::start_on(
            EdgeParts {
                config,
                identity: TlsIdentity::from(&certs.edge),
                anchors: certs.anchors,
                lookup: Arc::new(lookup),
            },
            listen.parse()?,
        )
        .await?;
        println!("listening on {}", edge.addr);
        println!("ca-dir {}", ca_dir.display());
        edge.serve_forever().await?;
        dns.stop().await;
        Ok(())
    })
}
