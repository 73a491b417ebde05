//! Seals events into batches — at most `max_events` events or `max_bytes` encoded bytes, and never
//! older than `max_delay` — then compresses (LZ4) and spools them. Events arrive already encoded (the
//! sink encodes them as `EventList` entries), so a batch is built by appending bytes, its size is known
//! exactly, and no event is decoded or re-encoded here. It also turns spool loss (eviction, unreadable
//! batches) into `event_loss` events, so loss reaches the collector like any event.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::time::Instant;
use ward_proto::bytes::Bytes;
use ward_proto::framing;
use ward_proto::v1::event_loss::Reason;

use super::Chunk;
use super::convert;
use super::metrics::Metrics;
use super::spool::{Lost, Spool};

#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub max_events: usize,
    pub max_bytes: usize,
    pub max_delay: Duration,
}

impl Bounds {
    /// These bounds within the collector's limit on events per batch (0: not known yet).
    fn within(self, collector_max_events: usize) -> Bounds {
        Bounds {
            max_events: match collector_max_events {
                0 => self.max_events,
                n => self.max_events.min(n),
            },
            ..self
        }
    }
}

/// How often loss found by the sending side (unreadable batches) is checked while no events arrive.
const LOSS_CHECK: Duration = Duration::from_secs(1);

struct Pending {
    /// The encoded `EventList` being filled.
    buf: Vec<u8>,
    events: usize,
    /// Loss reported by `event_loss` events in `buf` (the spool carries it forward if the batch is
    /// evicted in turn), and how many such events there are.
    reporting: Lost,
    loss_events: u32,
    /// When the oldest pending event must be sealed.
    deadline: Option<Instant>,
    /// Reused compression buffer.
    compressed: Vec<u8>,
}

pub async fn run(
    rx: flume::Receiver<Chunk>,
    spool: Arc<Mutex<Spool>>,
    sealed: Arc<Notify>,
    metrics: Arc<Metrics>,
    configured: Bounds,
    // The collector's limit on events per batch, from its Welcome: a batch over it would be refused
    // every time it is sent.
    collector_max_events: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let bounds = || configured.within(collector_max_events.load(Relaxed));
    let mut p = Pending {
        buf: Vec::with_capacity(configured.max_bytes.min(8 << 20)),
        events: 0,
        reporting: Lost::default(),
        loss_events: 0,
        deadline: None,
        compressed: Vec::new(),
    };
    let mut loss_check = tokio::time::interval(LOSS_CHECK);
    loop {
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            chunk = rx.recv_async() => {
                let Ok(chunk) = chunk else { break };
                add_chunk(&mut p, &chunk, &spool, &sealed, &metrics, bounds())?;
            }
            _ = tokio::time::sleep_until(p.deadline.unwrap_or(far)), if p.deadline.is_some() => {
                seal(&mut p, &spool, &sealed, &metrics, bounds())?;
            }
            _ = loss_check.tick() => report_loss(&mut p, &spool, bounds()),
        }
    }
    // The pipeline stopped: seal what is left, including loss found while sealing it.
    seal(&mut p, &spool, &sealed, &metrics, bounds())?;
    if p.events > 0 {
        seal(&mut p, &spool, &sealed, &metrics, bounds())?;
    }
    Ok(())
}

/// Appends a chunk's events, sealing whenever a bound is reached. The chunk is copied whole when it
/// fits; otherwise it is split between entries.
fn add_chunk(
    p: &mut Pending,
    chunk: &Chunk,
    spool: &Mutex<Spool>,
    sealed: &Notify,
    metrics: &Metrics,
    bounds: Bounds,
) -> anyhow::Result<()> {
    let mut rest: &[u8] = &chunk.bytes;
    let mut left = chunk.events as usize;
    let mut at = 0;
    while left > 0 {
        if p.events >= bounds.max_events {
            // Full with loss reports added since the last chunk.
            seal(p, spool, sealed, metrics, bounds)?;
        }
        let fits =
            p.events + left <= bounds.max_events && p.buf.len() + rest.len() <= bounds.max_bytes;
        let (take_bytes, take_events) = if fits {
            (rest.len(), left)
        } else {
            // One entry at a time; an event alone larger than `max_bytes` still makes a batch.
            let len = framing::entry_len(rest, at)
                .map_err(|e| anyhow::anyhow!("sink handed over a malformed chunk: {e}"))?;
            if p.events > 0 && p.buf.len() + len > bounds.max_bytes {
                seal(p, spool, sealed, metrics, bounds)?;
                continue;
            }
            (len, 1)
        };
        if p.events == 0 {
            p.deadline = Some(Instant::now() + bounds.max_delay);
        }
        p.buf.extend_from_slice(&rest[..take_bytes]);
        p.events += take_events;
        rest = &rest[take_bytes..];
        at += take_bytes;
        left -= take_events;
        if p.events >= bounds.max_events || p.buf.len() >= bounds.max_bytes {
            seal(p, spool, sealed, metrics, bounds)?;
        }
    }
    Ok(())
}

/// Appends one event the batcher makes itself (loss reports).
fn add_event(p: &mut Pending, event: &ward_proto::v1::Event, bounds: Bounds) {
    if p.events == 0 {
        p.deadline = Some(Instant::now() + bounds.max_delay);
    }
    framing::append(&mut p.buf, event);
    p.events += 1;
}

fn seal(
    p: &mut Pending,
    spool: &Mutex<Spool>,
    sealed: &Notify,
    metrics: &Metrics,
    bounds: Bounds,
) -> anyhow::Result<()> {
    p.deadline = None;
    if p.events == 0 {
        return Ok(());
    }
    let count = p.events as u32;
    // LZ4 block with the decompressed size in front (what `Compression::Lz4` means on the wire),
    // compressed into a reused buffer and copied out once at its final size.
    let room = 4 + lz4_flex::block::get_maximum_output_size(p.buf.len());
    if p.compressed.len() < room {
        p.compressed.resize(room, 0);
    }
    p.compressed[..4].copy_from_slice(&(p.buf.len() as u32).to_le_bytes());
    let n = lz4_flex::block::compress_into(&p.buf, &mut p.compressed[4..])
        .map_err(|e| anyhow::anyhow!("LZ4 compression failed: {e}"))?;
    let payload = Bytes::copy_from_slice(&p.compressed[..4 + n]);
    let raw = p.buf.len();
    p.buf.clear();
    p.events = 0;
    {
        let mut spool = spool.lock().expect("spool lock");
        let seq = spool
            .push_reporting(
                count,
                convert::unix_nanos(SystemTime::now()),
                payload,
                std::mem::take(&mut p.reporting),
                std::mem::take(&mut p.loss_events),
            )
            .map_err(|e| anyhow::anyhow!("spool write failed: {e}"))?;
        tracing::trace!("sealed batch {seq}: {count} events, {raw} bytes");
        metrics.spool_bytes.store(spool.bytes(), Relaxed);
        metrics.spool_batches.store(spool.len() as u64, Relaxed);
        metrics
            .events_evicted
            .store(spool.evicted_events_total, Relaxed);
        metrics
            .batches_evicted
            .store(spool.evicted_batches_total, Relaxed);
        metrics
            .events_corrupt
            .store(spool.corrupt_events_total, Relaxed);
    }
    metrics.events_spooled.fetch_add(u64::from(count), Relaxed);
    metrics.batches_spooled.fetch_add(1, Relaxed);
    sealed.notify_one();
    report_loss(p, spool, bounds);
    Ok(())
}

/// Queues an `event_loss` event for loss the spool recorded since the last report.
fn report_loss(p: &mut Pending, spool: &Mutex<Spool>, bounds: Bounds) {
    let (evicted, corrupt) = spool.lock().expect("spool lock").take_lost();
    for (lost, reason) in [
        (evicted, Reason::SpoolEvicted),
        (corrupt, Reason::SpoolCorrupt),
    ] {
        if lost == Lost::default() {
            continue;
        }
        let event = convert::loss(
            reason,
            lost.events,
            lost.batches,
            Some((lost.first_seq, lost.last_seq)),
        );
        add_event(p, &event, bounds);
        p.reporting.merge(&lost);
        p.loss_events += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::super::spool::SpoolLimits;
    use super::*;
    use ward_proto::prost::Message;
    use ward_proto::v1 as pb;

    fn ev(i: u64) -> pb::Event {
        pb::Event {
            time_unix_nano: i,
            // Sizes vary from a few bytes to a few hundred.
            syscall: "x".repeat((i % 7 * 40) as usize),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn chunks_split_at_the_bounds_in_order() {
        let dir = std::env::temp_dir().join(format!("ward-batcher-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let spool = Mutex::new(
            Spool::open(
                &dir,
                SpoolLimits {
                    max_bytes: 1 << 30,
                    max_memory: 1 << 30,
                },
            )
            .unwrap(),
        );
        let (sealed, metrics) = (Notify::new(), Metrics::default());
        let bounds = Bounds {
            max_events: 300,
            max_bytes: 20_000,
            max_delay: Duration::from_secs(60),
        };
        let mut p = Pending {
            buf: Vec::new(),
            events: 0,
            reporting: Lost::default(),
            loss_events: 0,
            deadline: None,
            compressed: Vec::new(),
        };
        let mut next = 0u64;
        // Chunks of several sizes, one holding an event larger than max_bytes on its own.
        for size in [256u64, 1, 700, 50, 256] {
            let mut chunk = Chunk {
                bytes: Vec::new(),
                events: 0,
            };
            for _ in 0..size {
                let mut e = ev(next);
                if next == 600 {
                    e.details_json = "y".repeat(30_000);
                }
                framing::append(&mut chunk.bytes, &e);
                chunk.events += 1;
                next += 1;
            }
            add_chunk(&mut p, &chunk, &spool, &sealed, &metrics, bounds).unwrap();
        }
        seal(&mut p, &spool, &sealed, &metrics, bounds).unwrap();
        let mut spool = spool.into_inner().unwrap();
        let (mut got, mut cursor) = (Vec::new(), 0);
        while let Some((entry, payload)) = spool.next_from(cursor) {
            cursor = entry.seq + 1;
            let raw = lz4_flex::block::decompress_size_prepended(&payload).unwrap();
            let list = pb::EventList::decode(&raw[..]).unwrap();
            assert_eq!(list.events.len(), entry.events as usize);
            assert!(list.events.len() <= bounds.max_events);
            let huge = list.events.iter().any(|e| e.time_unix_nano == 600);
            assert!(
                raw.len() <= bounds.max_bytes || (huge && list.events.len() == 1),
                "batch {} of {} bytes",
                entry.seq,
                raw.len()
            );
            got.extend(list.events.iter().map(|e| e.time_unix_nano));
        }
        assert_eq!(got, (0..next).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
