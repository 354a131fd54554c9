//! The listener: accepts connections until shutdown, within the connection limit, each in its own task with a
//! tracing span (`remote`, `cid`, `peer_cert`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Edge, EdgeError, transport};

/// Accepts connections on `listener` until `shutdown` is cancelled, then stops the connection tasks
/// (giving them a moment to finish) and returns.
pub async fn serve(
    listener: TcpListener,
    edge: Arc<Edge>,
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
        let token = shutdown.child_token();
        tasks.spawn(
            async move {
                transport::run(stream, remote, cid, edge, token).await;
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
    Ok(())
}
