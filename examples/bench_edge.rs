//! The Edge as `benches/run.sh` drives it: `edge::serve` on a TCP port with the embedded DNS server, a lab CA
//! written to a directory (so `edgesim load --lab-cert-cn NAME --ca-dir DIR` gets a trusted certificate), and
//! limits opened up for load (the top of the rate range, 20 000 connections, 1 h idle timeout).
//!
//! DNS: `acano.steven.lab` → SRV `vcse.steven.lab` (INVITE from it: 504 with ms-diagnostics 1009, the seed's
//! mis-configuration); `steven.lab` → SRV `vcse.steven.lab` (OPTIONS with a `vcse.steven.lab` certificate: 200).
//!
//! Usage: `cargo run --release --example bench_edge -- [LISTEN_ADDR] [CA_DIR]` (defaults 127.0.0.1:0 and a
//! temporary directory); prints `listening on ADDR` and `ca-dir DIR`, serves until killed.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use edgesim::config::EdgeConfig;
use edgesim::dns::{DnsServer, HickoryLookup, RecordSpec, ResolverSettings, ZoneSet};
use edgesim::edge::{Edge, EdgeParts};
use edgesim::pki::{Identity, KeyType, LabCa, LeafSpec, TrustAnchors};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn srv(name: &str, target: &str) -> RecordSpec {
    RecordSpec::Srv {
        name: name.into(),
        priority: 10,
        weight: 10,
        port: 5061,
        target: target.into(),
        ttl: 3600,
    }
}

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
        let ca = LabCa::generate("edgesim bench CA", KeyType::EcdsaP256)?;
        ca.save(&ca_dir)?;
        let edge_cert = ca.issue(&LeafSpec::new("sip.skype.lab"))?;
        let anchors = TrustAnchors::from_certs(&[ca.cert_der().clone()], "bench CA")?;
        let zones = ZoneSet::from_records(&[
            srv("_sipfederationtls._tcp.acano.steven.lab", "vcse.steven.lab"),
            srv("_sipfederationtls._tcp.steven.lab", "vcse.steven.lab"),
        ])?;
        let dns = DnsServer::bind(zones, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let lookup = HickoryLookup::new(ResolverSettings::server(dns.local_addr()))?;
        let mut config = EdgeConfig::default();
        config.limits.max_connections = 20_000;
        // The top of the range: no practical limit.
        config.limits.max_requests_per_sec = 1_000_000;
        config.limits.idle_timeout_ms = 3_600_000;
        config.limits.header_timeout_ms = 10_000;
        config.limits.handshake_timeout_ms = 10_000;
        let edge = Arc::new(Edge::new(EdgeParts {
            config,
            identity: Identity::from(&edge_cert),
            anchors,
            lookup: Arc::new(lookup),
        })?);
        let listener = TcpListener::bind(&listen).await?;
        println!("listening on {}", listener.local_addr()?);
        println!("ca-dir {}", ca_dir.display());
        edgesim::edge::serve(listener, edge, CancellationToken::new()).await?;
        dns.shutdown().await;
        Ok(())
    })
}
