//! Reads the kernel ring buffer on the tokio runtime: drains everything pending on each wake-up or poll
//! tick, decodes it and hands it on in batches. It never blocks the kernel: when the next stage is slow the
//! ring absorbs the burst, and what does not fit is counted by the kernel as drops.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};

use crate::decode::{self, KernelEvent};

/// The kernel wakes the reader only when much is pending; this tick bounds the latency otherwise.
pub const POLL_TICK: Duration = Duration::from_millis(10);
const MAX_BATCH: usize = 1024;

#[derive(Debug, Default)]
pub struct RingStats {
    pub records: AtomicU64,
    pub decode_errors: AtomicU64,
}

/// Runs until `stop` turns true (then drains once more) or the receiver goes away.
pub async fn read_loop(
    ring: RingBuf<MapData>,
    tx: mpsc::Sender<Vec<KernelEvent>>,
    mut stop: watch::Receiver<bool>,
    stats: Arc<RingStats>,
) -> anyhow::Result<()> {
    // SAFETY: the RingBuf owns its map fd for the whole life of the AsyncFd, which owns the RingBuf.
    let mut fd = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    loop {
        let stopping = *stop.borrow();
        if !stopping {
            tokio::select! {
                guard = fd.readable_mut() => guard?.clear_ready(),
                _ = tokio::time::sleep(POLL_TICK) => {}
                _ = stop.changed() => {}
            }
        }
        let mut batch = Vec::new();
        while let Some(item) = fd.get_mut().next() {
            stats.records.fetch_add(1, Ordering::Relaxed);
            let decoded = decode::decode(&item[..]);
            drop(item);
            match decoded {
                Ok(event) => batch.push(event),
                Err(e) => {
                    stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("dropping malformed ring record: {e}");
                }
            }
            if batch.len() >= MAX_BATCH && tx.send(std::mem::take(&mut batch)).await.is_err() {
                return Ok(());
            }
        }
        if !batch.is_empty() && tx.send(batch).await.is_err() {
            return Ok(());
        }
        if stopping {
            return Ok(());
        }
    }
}
