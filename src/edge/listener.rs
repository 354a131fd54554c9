//! The listener: accepts connections until shutdown, within the connection limit, each in its own task with a
//! tracing span (`remote`, `cid`, `peer_cert`). A pool member's loop ([`super::pool`]) hands each new connection
//! to the member's fault mode instead when it is not `accept`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::pool::{FaultMode, Pool};
use super::{Edge, EdgeError, pool, transport};

/// Accepts connections on `listener` until `shutdown` is cancelled, then stops the connection tasks
/// (giving them a moment to finish) and returns.
pub async fn serve(
    listener: TcpListener,
    edge: Arc<Edge>,
    shutdown: CancellationToken,
) -> Result<(), EdgeError> {
    serve_member(listener, edge, None, shutdown).await
}

/// [`serve`] for one listener; `member`: the pool and the index of the member it is.
pub(super) async fn serve_member(
    listener: TcpListener,
    edge: Arc<Edge>,
    member: Option<(Pool, usize)>,
    shutdown: CancellationToken,
) -> Result<(), EdgeError> {
    let limit = Arc::new(Semaphore::new(edge.config.limits.max_connections));
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        // Reap finished tasks so the set does not grow with the connection count.
        while tasks.try_join_next().is_some() {}
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and friends: do not spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%remote, max = edge.config.limits.max_connections, "connection limit reached: closing the new connection");
            drop(stream);
            continue;
        };
        let cid = edge.next_cid.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!("conn", %remote, cid = %format!("{cid:X}"), peer_cert = tracing::field::Empty);
        let edge = edge.clone();
        let (fault, token) = match &member {
            Some((pool, i)) => pool.admit(*i),
            None => (FaultMode::Accept, shutdown.child_token()),
        };
        tasks.spawn(
            async move {
                match fault {
                    FaultMode::Accept => transport::run(stream, remote, cid, edge, token).await,
                    mode => pool::faulty(mode, stream, remote, cid, edge, token).await,
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
    // Give open calls a moment to see the cancellation, then stop the stragglers.
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(2), drain)
        .await
        .is_err()
    {
        tasks.abort_all();
    }
    // What the closing connections handed to the Edge's own connections (the final NOTIFYs) leaves first.
    if !edge.pool.drain(Duration::from_secs(2)).await {
        tracing::warn!("the Edge's own connections did not send everything queued within 2 s");
    }
    Ok(())
}
