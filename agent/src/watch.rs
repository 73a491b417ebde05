//! The agent's pipeline: sensor → ring reader → enrich → ordered [`Sink`]. `ward-agent watch` runs it
//! with a JSON sink on stdout.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use ward_agent_ebpf::{SYSCALL_HOOKS, abi::kind};

use crate::clock::{Clock, rfc3339};
use crate::enrich::{Enriched, Enricher, HashJob};
use crate::event::{AgentEvent, Details, EventType, LossFacts};
use crate::hash::ExeHasher;
use crate::output::{self, Pending, Sink};
use crate::procscan;
use crate::proctable::{Limits, ProcessTable};
use crate::ring::{self, RingStats};
use crate::sensor::{Sensor, SensorConfig};

pub struct WatchOptions {
    /// Only these event types are produced; kernel sensors that feed none of them are not even loaded.
    pub types: Option<HashSet<EventType>>,
    pub sensor: SensorConfig,
    /// Stop by itself after this long (for scripted runs); otherwise on SIGINT/SIGTERM.
    pub duration: Option<Duration>,
}

/// Executables hashed at the same time, at most.
const HASH_WORKERS: usize = 2;
/// How often kernel drop counters are checked and reported as `event_loss`.
const LOSS_CHECK: Duration = Duration::from_secs(1);

/// The family name of a kernel event kind, for loss reports.
pub fn kind_name(k: u16) -> String {
    match k {
        kind::EXEC => "process_exec".into(),
        kind::FORK => "process_fork".into(),
        kind::EXIT => "process_exit".into(),
        kind::DNS => "dns".into(),
        // Shares mmap with memory_exec; named after its event type.
        kind::LIBRARY_LOAD => "library_load".into(),
        k => {
            SYSCALL_HOOKS
                .iter()
                .find(|(_, hk)| *hk == k)
                .map_or(format!("kind {k}"), |(sys, _)| {
                    // Name the family by its first syscall (e.g. "open" for open/openat/openat2/creat).
                    sys.to_string()
                })
        }
    }
}

/// The kernel event kinds that feed the given output types.
fn kernel_kinds(types: &HashSet<EventType>) -> u64 {
    use EventType as T;
    let mut mask = 0u64;
    for t in types {
        let k = match t {
            T::DnsQuery | T::DnsResponse => kind::DNS,
            T::FileOpen => kind::OPEN,
            T::FileUnlink => kind::UNLINK,
            T::FileRename => kind::RENAME,
            T::FileLink => kind::LINK,
            T::FileSymlink => kind::SYMLINK,
            T::FileChmod => kind::CHMOD,
            T::FileChown => kind::CHOWN,
            T::FileTruncate => kind::TRUNCATE,
            T::FileSetxattr => kind::SETXATTR,
            T::NetConnect => kind::CONNECT,
            T::NetAccept => kind::ACCEPT,
            T::NetBind => kind::BIND,
            T::NetListen => kind::LISTEN,
            T::NetStdioSocket => kind::DUP,
            T::PrivSetid => kind::SETID,
            T::PrivCapset => kind::CAPSET,
            T::Ptrace => kind::PTRACE,
            T::ProcessVmAccess => kind::VM_ACCESS,
            T::MemfdCreate => kind::MEMFD,
            T::Userfaultfd => kind::USERFAULTFD,
            T::ModuleLoad => kind::MODULE,
            T::BpfLoad => kind::BPF,
            T::Mount => kind::MOUNT,
            T::Namespace => kind::NAMESPACE,
            T::MemoryExec => kind::MEMORY_EXEC,
            T::LibraryLoad => kind::LIBRARY_LOAD,
            // Lifecycle records are always on; `Other` is never asked for (only known names parse).
            T::ProcessExec | T::ProcessFork | T::ProcessExit | T::EventLoss | T::Other => continue,
        };
        mask |= 1 << k;
    }
    mask
}

/// Hands a hash job to the blocking pool; the returned receiver fires when the hash is in place.
fn spawn_hash(
    hasher: &Arc<ExeHasher>,
    slots: &Arc<Semaphore>,
    job: HashJob,
) -> oneshot::Receiver<()> {
    let (done_tx, done_rx) = oneshot::channel();
    let (hasher, slots) = (hasher.clone(), slots.clone());
    tokio::spawn(async move {
        let _slot = slots.acquire_owned().await;
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(hex) = hasher.hash(job.exe) {
                job.cell.set(hex);
            }
            let _ = done_tx.send(());
        })
        .await;
    });
    done_rx
}

pub async fn run(mut opts: WatchOptions, sink: impl Sink + Send + 'static) -> anyhow::Result<()> {
    let started = Instant::now();
    let clock = Clock::new();
    if let Some(types) = &opts.types {
        opts.sensor.kind_mask &= kernel_kinds(types);
    }
    let ring_mib = opts.sensor.ring_bytes >> 20;
    let mut sensor = Sensor::load(opts.sensor)?;
    for m in &sensor.mounts.mounted {
        eprintln!("ward-agent: mounted {m}");
    }
    for m in &sensor.mounts.failed {
        eprintln!("ward-agent: warning: could not mount {m}");
    }
    for hook in &sensor.missing {
        eprintln!(
            "ward-agent: warning: this kernel lacks a hook, its events are not collected: {hook}"
        );
    }
    let ring = sensor.take_ring()?;

    // Programs are attached before the scan, so nothing that happens during it is missed: the ring holds
    // those events until the table is seeded, and applying them after the scan corrects what it read.
    let mut table = ProcessTable::new(Limits::default());
    let proc_root = std::path::Path::new("/proc");
    let scan = procscan::seed(
        &mut table,
        proc_root,
        sensor.mounts.cgroup2.as_deref(),
        &clock,
    );
    eprintln!(
        "ward-agent: ready: {} programs attached, {} processes seeded from /proc ({} vanished mid-scan), {} sensitive files watched, ring {ring_mib} MiB",
        sensor.attached, scan.seeded, scan.vanished, sensor.sensitive_files,
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

    let mut counts = vec![0u64; EventType::ALL.len()];
    let hash_slots = Arc::new(Semaphore::new(HASH_WORKERS));
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let deadline = tokio::time::sleep(opts.duration.unwrap_or(Duration::MAX / 4));
    tokio::pin!(deadline);
    let mut loss_check = tokio::time::interval(LOSS_CHECK);
    let mut reported_drops = vec![0u64; kind::COUNT as usize];
    let wanted = |t: EventType| opts.types.as_ref().is_none_or(|types| types.contains(&t));
    let mut stopping = false;
    loop {
        let batch = tokio::select! {
            batch = kernel_rx.recv() => batch,
            _ = loss_check.tick() => {
                let loss = loss_event(&sensor, &mut reported_drops, &clock)?;
                if let Some(event) = loss.filter(|e| wanted(e.kind)) {
                    counts[event.kind.index()] += 1;
                    if out_tx.send(vec![Pending::Ready(event)]).await.is_err() { break }
                }
                continue;
            }
            _ = sigint.recv(), if !stopping => { stopping = true; let _ = stop_tx.send(true); continue }
            _ = sigterm.recv(), if !stopping => { stopping = true; let _ = stop_tx.send(true); continue }
            _ = &mut deadline, if !stopping => { stopping = true; let _ = stop_tx.send(true); continue }
        };
        // The reader drains the ring once more after a stop, then closes the channel.
        let Some(batch) = batch else { break };
        let mut out = Vec::with_capacity(batch.len());
        for event in batch {
            let Enriched { event, hash_job } = enricher.apply(event);
            counts[event.kind.index()] += 1;
            if !wanted(event.kind) {
                continue;
            }
            out.push(match hash_job {
                None => Pending::Ready(event),
                Some(job) => {
                    let deadline = tokio::time::Instant::now() + output::HASH_WAIT;
                    Pending::Hashing(event, spawn_hash(&hasher, &hash_slots, job), deadline)
                }
            });
        }
        if out_tx.send(out).await.is_err() {
            break;
        }
    }
    // The loop also ends when the output goes away (a closed pipe): the reader must then be told to stop
    // and its channel closed, or it would wait for a signal nobody is listening for any more.
    let _ = stop_tx.send(true);
    drop(kernel_rx);
    reader.await.context("ring reader task")??;
    drop(out_tx);
    writer.await.context("output task")??;

    let drops = sensor.drops()?;
    let by_type: Vec<String> = EventType::ALL
        .iter()
        .filter(|t| counts[t.index()] > 0 || t.index() < 3)
        .map(|t| format!("{} {}", t.name(), counts[t.index()]))
        .collect();
    let kinds_dropped: Vec<String> = drops
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{}: {n}", kind_name(k as u16)))
        .collect();
    let stats = &ring_stats;
    eprintln!(
        "ward-agent: stopped after {:.1}s: {} events ({}), kernel drops {}{}, malformed records {}, executables hashed {} (cache hits {}, skipped {}), processes tracked {} (pid reuse {}, swept {}, evicted {})",
        started.elapsed().as_secs_f64(),
        counts.iter().sum::<u64>(),
        by_type.join(", "),
        drops.iter().sum::<u64>(),
        if kinds_dropped.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds_dropped.join(", "))
        },
        stats
            .decode_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        hasher
            .stats
            .hashed
            .load(std::sync::atomic::Ordering::Relaxed),
        hasher
            .stats
            .cache_hits
            .load(std::sync::atomic::Ordering::Relaxed),
        hasher
            .stats
            .skipped
            .load(std::sync::atomic::Ordering::Relaxed),
        enricher.table.live_len(),
        enricher.table.stats.pid_reuse,
        enricher.table.stats.swept,
        enricher.table.stats.evicted,
    );
    Ok(())
}

/// An `event_loss` event when the kernel dropped records since the last check.
fn loss_event(
    sensor: &Sensor,
    reported: &mut [u64],
    clock: &Clock,
) -> anyhow::Result<Option<AgentEvent>> {
    let drops = sensor.drops()?;
    let mut dropped = BTreeMap::new();
    for (k, (now, before)) in drops.iter().zip(reported.iter_mut()).enumerate() {
        if *now > *before {
            *dropped.entry(kind_name(k as u16)).or_insert(0) += *now - *before;
            *before = *now;
        }
    }
    Ok((!dropped.is_empty()).then(|| AgentEvent {
        kind: EventType::EventLoss,
        time: rfc3339(clock.wall(Clock::now_boot_ns())),
        process: None,
        call: None,
        details: Some(Details::Loss(LossFacts { dropped })),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_filters_select_kernel_kinds() {
        let types: HashSet<EventType> = [
            EventType::FileOpen,
            EventType::DnsQuery,
            EventType::ProcessExec,
        ]
        .into();
        let mask = kernel_kinds(&types);
        assert_eq!(mask, (1 << kind::OPEN) | (1 << kind::DNS));
        assert_eq!(kind_name(kind::OPEN), "open");
        assert_eq!(kind_name(kind::EXEC), "process_exec");
    }
}
