//! The agent's pipeline: sensor → ring reader → enrich → ordered [`Sink`]. `ward-agent watch` runs it
//! with a JSON sink on stdout.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::enrich::{Enriched, Enricher};
use crate::event::EventType;
use crate::hash::ExeHasher;
use crate::output::{self, Pending, Sink};
use crate::procscan;
use crate::proctable::{Limits, ProcessTable};
use crate::ring::{self, RingStats};
use crate::sensor::{Sensor, SensorConfig};

pub struct WatchOptions {
    /// Only these event types are printed (all are still tracked).
    pub types: Option<HashSet<EventType>>,
    pub sensor: SensorConfig,
    /// Stop by itself after this long (for scripted runs); otherwise on SIGINT/SIGTERM.
    pub duration: Option<Duration>,
}

/// Executables hashed at the same time, at most.
const HASH_WORKERS: usize = 2;

pub async fn run(opts: WatchOptions, sink: impl Sink + Send + 'static) -> anyhow::Result<()> {
    let started = Instant::now();
    let clock = Clock::new();
    let mut sensor = Sensor::load(opts.sensor)?;
    for m in &sensor.mounts.mounted {
        eprintln!("ward-agent: mounted {m}");
    }
    for m in &sensor.mounts.failed {
        eprintln!("ward-agent: warning: could not mount {m}");
    }
    let ring = sensor.take_ring()?;

    // Programs are attached before the scan, so nothing that happens during it is missed: the ring holds
    // those events until the table is seeded, and applying them after the scan corrects what it read.
    let mut table = ProcessTable::new(Limits::default());
    let scan = procscan::seed(
        &mut table,
        std::path::Path::new("/proc"),
        sensor.mounts.cgroup2.as_deref(),
        &clock,
    );
    eprintln!(
        "ward-agent: ready: {} processes seeded from /proc ({} vanished mid-scan), ring {} MiB",
        scan.seeded,
        scan.vanished,
        opts.sensor.ring_bytes >> 20
    );

    let hasher = Arc::new(ExeHasher::new(16_384, 256 << 20));
    let mut enricher = Enricher::new(table, clock, hasher.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (kernel_tx, mut kernel_rx) = mpsc::channel(256);
    let (out_tx, out_rx) = mpsc::channel(256);
    let ring_stats = Arc::new(RingStats::default());
    let reader = tokio::spawn(ring::read_loop(
        ring,
        kernel_tx,
        stop_rx,
        ring_stats.clone(),
    ));
    let writer = tokio::spawn(output::write_loop(out_rx, sink));

    let counts: [AtomicU64; 3] = Default::default();
    let hash_slots = Arc::new(Semaphore::new(HASH_WORKERS));
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let deadline = tokio::time::sleep(opts.duration.unwrap_or(Duration::MAX / 4));
    tokio::pin!(deadline);
    let mut stopping = false;
    loop {
        let batch = tokio::select! {
            batch = kernel_rx.recv() => batch,
            _ = sigint.recv(), if !stopping => { stopping = true; let _ = stop_tx.send(true); continue }
            _ = sigterm.recv(), if !stopping => { stopping = true; let _ = stop_tx.send(true); continue }
            _ = &mut deadline, if !stopping => { stopping = true; let _ = stop_tx.send(true); continue }
        };
        // The reader drains the ring once more after a stop, then closes the channel.
        let Some(batch) = batch else { break };
        let mut out = Vec::with_capacity(batch.len());
        for event in batch {
            let Enriched { event, hash_job } = enricher.apply(event);
            counts[event.kind as usize].fetch_add(1, Ordering::Relaxed);
            if opts
                .types
                .as_ref()
                .is_some_and(|t| !t.contains(&event.kind))
            {
                continue;
            }
            let pending = match hash_job {
                None => Pending::Ready(event),
                Some(job) => {
                    let (done_tx, done_rx) = oneshot::channel();
                    let (hasher, slots) = (hasher.clone(), hash_slots.clone());
                    tokio::spawn(async move {
                        let _slot = slots.acquire_owned().await;
                        let _ = tokio::task::spawn_blocking(move || {
                            if let Some(hex) = hasher.hash(job.exe) {
                                let _ = job.cell.set(hex);
                            }
                            let _ = done_tx.send(());
                        })
                        .await;
                    });
                    Pending::Hashing(event, done_rx)
                }
            };
            out.push(pending);
        }
        if out_tx.send(out).await.is_err() {
            break;
        }
    }
    reader.await.context("ring reader task")??;
    drop(out_tx);
    writer.await.context("output task")??;

    let drops = sensor.drops()?;
    let total_drops: u64 = drops.iter().sum();
    let by_type: Vec<String> = EventType::ALL
        .iter()
        .map(|t| {
            format!(
                "{} {}",
                t.name(),
                counts[*t as usize].load(Ordering::Relaxed)
            )
        })
        .collect();
    let kinds_dropped: Vec<String> = drops
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("kind {k}: {n}"))
        .collect();
    eprintln!(
        "ward-agent: stopped after {:.1}s: {} events ({}), kernel drops {}{}, malformed records {}, executables hashed {} (cache hits {}, skipped {}), processes tracked {} (pid reuse {}, swept {}, evicted {})",
        started.elapsed().as_secs_f64(),
        counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>(),
        by_type.join(", "),
        total_drops,
        if kinds_dropped.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds_dropped.join(", "))
        },
        ring_stats.decode_errors.load(Ordering::Relaxed),
        hasher.stats.hashed.load(Ordering::Relaxed),
        hasher.stats.cache_hits.load(Ordering::Relaxed),
        hasher.stats.skipped.load(Ordering::Relaxed),
        enricher.table.live_len(),
        enricher.table.stats.pid_reuse,
        enricher.table.stats.swept,
        enricher.table.stats.evicted,
    );
    Ok(())
}
