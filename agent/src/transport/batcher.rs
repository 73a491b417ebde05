//! Seals events into batches — at most `max_events` events or `max_bytes` encoded bytes, and never
//! older than `max_delay` — then encodes, compresses (LZ4) and spools them. It also turns spool loss
//! (eviction, unreadable batches) into `event_loss` events, so loss reaches the collector like any event.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use prost::Message;
use tokio::sync::Notify;
use tokio::time::Instant;
use ward_proto::bytes::Bytes;
use ward_proto::prost;
use ward_proto::v1::{self as pb, event_loss::Reason};

use super::convert;
use super::metrics::Metrics;
use super::spool::{Lost, Spool};

#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub max_events: usize,
    pub max_bytes: usize,
    pub max_delay: Duration,
}

/// How often loss found by the sending side (unreadable batches) is checked while no events arrive.
const LOSS_CHECK: Duration = Duration::from_secs(1);

struct Pending {
    events: Vec<pb::Event>,
    /// Loss reported by `event_loss` events among `events` (the spool carries it forward if the batch
    /// is evicted in turn), and how many such events there are.
    reporting: Lost,
    loss_events: u32,
    bytes: usize,
    /// When the oldest pending event must be sealed.
    deadline: Option<Instant>,
    /// Reused encode buffer.
    buf: Vec<u8>,
}

pub async fn run(
    rx: flume::Receiver<Vec<pb::Event>>,
    spool: Arc<Mutex<Spool>>,
    sealed: Arc<Notify>,
    metrics: Arc<Metrics>,
    bounds: Bounds,
) -> anyhow::Result<()> {
    let mut p = Pending {
        events: Vec::with_capacity(bounds.max_events),
        reporting: Lost::default(),
        loss_events: 0,
        bytes: 0,
        deadline: None,
        buf: Vec::with_capacity(bounds.max_bytes),
    };
    let mut loss_check = tokio::time::interval(LOSS_CHECK);
    loop {
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            chunk = rx.recv_async() => {
                let Ok(chunk) = chunk else { break };
                for event in chunk {
                    add(&mut p, event, bounds);
                    if p.events.len() >= bounds.max_events || p.bytes >= bounds.max_bytes {
                        seal(&mut p, &spool, &sealed, &metrics, bounds)?;
                    }
                }
            }
            _ = tokio::time::sleep_until(p.deadline.unwrap_or(far)), if p.deadline.is_some() => {
                seal(&mut p, &spool, &sealed, &metrics, bounds)?;
            }
            _ = loss_check.tick() => report_loss(&mut p, &spool, bounds),
        }
    }
    // The pipeline stopped: seal what is left, including loss found while sealing it.
    seal(&mut p, &spool, &sealed, &metrics, bounds)?;
    if !p.events.is_empty() {
        seal(&mut p, &spool, &sealed, &metrics, bounds)?;
    }
    Ok(())
}

fn add(p: &mut Pending, event: pb::Event, bounds: Bounds) {
    // Length-delimited field overhead (tag + varint length) is at most 6 bytes here.
    p.bytes += event.encoded_len() + 6;
    p.events.push(event);
    if p.deadline.is_none() {
        p.deadline = Some(Instant::now() + bounds.max_delay);
    }
}

fn seal(
    p: &mut Pending,
    spool: &Mutex<Spool>,
    sealed: &Notify,
    metrics: &Metrics,
    bounds: Bounds,
) -> anyhow::Result<()> {
    p.deadline = None;
    if p.events.is_empty() {
        return Ok(());
    }
    let list = pb::EventList {
        events: std::mem::take(&mut p.events),
    };
    p.buf.clear();
    list.encode(&mut p.buf).expect("Vec grows as needed");
    let count = list.events.len() as u32;
    // Hand the vector back (emptied) so its capacity is reused.
    p.events = list.events;
    p.events.clear();
    p.bytes = 0;
    let payload = Bytes::from(lz4_flex::block::compress_prepend_size(&p.buf));
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
        tracing::trace!("sealed batch {seq}: {count} events, {} bytes", p.buf.len());
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
        add(p, event, bounds);
        p.reporting.merge(&lost);
        p.loss_events += 1;
    }
}
