//! A bare rustls TLS echo server, the baseline `edgesim load` is compared with in `benches/`.
//!
//! Same TLS as the Edge (`pki::server_config`: TLS 1.2 + 1.3, client certificate required, accept-any
//! verifier, no resumption), no SIP: it writes back whatever it reads, so the load generator counts each
//! echoed request as an `echo` answer.
//!
//! Usage: `cargo run --release --example tls_echo -- [LISTEN_ADDR] [ecdsa|rsa]` (defaults 127.0.0.1:0 and
//! ecdsa: the key type of its CA and certificate); prints `listening on ADDR` and serves until killed.

use edgesim::pki::{self, ClientAuthMode, KeyType, LabCa, LeafSpec, TlsIdentity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let key = match args.next().as_deref() {
        None | Some("ecdsa") => KeyType::EcdsaP256,
        Some("rsa") => KeyType::Rsa2048,
        Some(other) => return Err(format!("key type {other}: give ecdsa or rsa").into()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let ca = LabCa::generate("tls_echo CA", key)?;
        let identity = TlsIdentity::from(&ca.issue(&LeafSpec::new("sip.skype.lab").key(key))?);
        let config = pki::server_config(&identity, ClientAuthMode::Required, Vec::new())?;
        let acceptor = TlsAcceptor::from(config);
        let listener = TcpListener::bind(&listen).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (tcp, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait and go on, as a server would.
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                // 8 KB, like the Edge's read buffer, so idle-connection memory compares like for like.
                let mut buf = vec![0u8; 8 * 1024];
                loop {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tls.write_all(&buf[..n]).await.is_err() || tls.flush().await.is_err()
                            {
                                break;
                            }
                        }
                    }
                }
                let _ = tls.shutdown().await;
            });
        }
        #[allow(unreachable_code)]
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
