//! The bounded disk spool: every sealed batch is written here before it is sent, and deleted when the
//! collector acknowledges it. When the collector is slow or down the spool grows up to its size limit,
//! then the oldest batches are deleted and counted as lost (the agent reports the loss as an
//! `event_loss` event) — the pipeline never waits for the network.
//!
//! Layout: one file per batch, `<sequence, 20 digits>.wsb` (header + compressed payload), written to a
//! temporary name and renamed so a crash never leaves a half-written batch under a real name, plus `seq`,
//! the highest sequence number reserved so far. Sequences are reserved in blocks ([`SEQ_BLOCK`]) so that
//! they keep increasing across restarts without a disk write per batch.
//!
//! Durability is a choice ([`SpoolSync`]): by default batch files are left to the page cache, which
//! survives the collector being away and the agent crashing or restarting, but not the host losing
//! power; `SpoolSync::Always` fsyncs each batch file and the directory before the batch counts as
//! spooled. Either way, a batch file found unreadable at the next start (what a power loss can leave
//! without fsync) is not dropped silently: it is reported as `event_loss` (`SPOOL_CORRUPT`).

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ward_proto::bytes::Bytes;

const MAGIC: &[u8; 4] = b"WSB1";
const HEADER: usize = 4 + 4 + 8 + 4;
const EXT: &str = "wsb";
pub const SEQ_BLOCK: u64 = 100_000;

/// A sealed batch waiting for its acknowledgement.
#[derive(Clone, Debug)]
pub struct Entry {
    pub seq: u64,
    pub events: u32,
    pub sealed_unix_nano: u64,
    /// Bytes on disk.
    pub size: u64,
    /// Kept in memory while the spool's memory budget allows, so the usual path never reads disk.
    payload: Option<Bytes>,
    /// Loss this batch reports (its `event_loss` events, `loss_events` of its `events`). If the batch is
    /// evicted in turn, that loss is carried into the next report instead of being lost with it.
    carried: Lost,
    loss_events: u32,
}

/// What eviction or corruption lost, not yet reported as an `event_loss` event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lost {
    pub events: u64,
    pub batches: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

impl Lost {
    /// Counts an evicted batch: its ordinary events, plus the loss it was carrying.
    fn add(&mut self, e: &Entry) {
        self.merge(&Lost {
            events: u64::from(e.events - e.loss_events),
            batches: 1,
            first_seq: e.seq,
            last_seq: e.seq,
        });
        self.merge(&e.carried);
    }

    pub fn merge(&mut self, other: &Lost) {
        if other.batches == 0 && other.events == 0 {
            return;
        }
        if self.batches == 0 && self.events == 0 {
            *self = *other;
            return;
        }
        self.events += other.events;
        self.batches += other.batches;
        self.first_seq = self.first_seq.min(other.first_seq);
        self.last_seq = self.last_seq.max(other.last_seq);
    }
}

#[derive(Clone, Copy, Debug)]
pub struct SpoolLimits {
    /// Bytes of batches on disk, at most (the newest batch is always kept).
    pub max_bytes: u64,
    /// Bytes of payloads also kept in memory.
    pub max_memory: u64,
}

/// When spooled batches reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpoolSync {
    /// Written, not fsync'd: survives network outages and agent crashes or restarts. After a power
    /// loss the newest batches (those the kernel had not flushed yet, typically seconds' worth) may be
    /// missing or unreadable; the unreadable ones are reported as lost.
    #[default]
    Never,
    /// Each batch file, then the directory entry of its rename, is fsync'd before the batch counts as
    /// spooled: survives power loss, at the cost of two fsyncs per batch on the transport thread (at
    /// high rates that is fewer, larger batches only if the disk keeps up; a slow disk slows sealing).
    Always,
}

pub struct Spool {
    dir: PathBuf,
    sync: SpoolSync,
    /// The spool directory, open for fsync when `sync` is `Always`.
    dir_handle: Option<fs::File>,
    limits: SpoolLimits,
    entries: VecDeque<Entry>,
    bytes: u64,
    memory: u64,
    next_seq: u64,
    reserved_through: u64,
    /// True when the spool had no sequence state: the collector may know this agent from a previous
    /// install, so the first Welcome may move the numbering forward ([`Spool::rebase`]).
    fresh: bool,
    evicted: Lost,
    corrupt: Lost,
    /// Totals since start, for metrics.
    pub evicted_events_total: u64,
    pub evicted_batches_total: u64,
    pub corrupt_events_total: u64,
}

fn file_name(seq: u64) -> String {
    format!("{seq:020}.{EXT}")
}

impl Spool {
    /// Opens (or creates) the spool in `dir` and re-indexes the batches a previous run left.
    pub fn open(dir: &Path, limits: SpoolLimits) -> io::Result<Spool> {
        Spool::open_with(dir, limits, SpoolSync::Never)
    }

    /// [`Spool::open`] with a durability choice.
    pub fn open_with(dir: &Path, limits: SpoolLimits, sync: SpoolSync) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let state = dir.join("seq");
        let (reserved, fresh) = match fs::read_to_string(&state) {
            Ok(s) => (
                s.trim().parse::<u64>().map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", state.display()),
                    )
                })?,
                false,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, true),
            Err(e) => return Err(e),
        };
        let mut entries = Vec::new();
        let mut unreadable = Lost::default();
        for item in fs::read_dir(dir)? {
            let path = item?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") {
                // A batch whose write was interrupted: it was never acknowledged nor fully spooled.
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(seq) = name
                .strip_suffix(&format!(".{EXT}"))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            match read_header(&path) {
                Ok((events, sealed, size)) => entries.push(Entry {
                    seq,
                    events,
                    sealed_unix_nano: sealed,
                    size,
                    payload: None,
                    carried: Lost::default(),
                    loss_events: 0,
                }),
                Err(e) => {
                    // Its event count is unreadable too: reported as a lost batch of unknown size.
                    tracing::warn!("spool: dropping unreadable batch {}: {e}", path.display());
                    unreadable.merge(&Lost {
                        events: 0,
                        batches: 1,
                        first_seq: seq,
                        last_seq: seq,
                    });
                    let _ = fs::remove_file(&path);
                }
            }
        }
        entries.sort_by_key(|e| e.seq);
        let highest = entries.last().map_or(0, |e| e.seq);
        let dir_handle = match sync {
            SpoolSync::Always => Some(fs::File::open(dir)?),
            SpoolSync::Never => None,
        };
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            sync,
            dir_handle,
            limits,
            bytes: entries.iter().map(|e| e.size).sum(),
            entries: entries.into(),
            memory: 0,
            // Everything reserved by the previous run may have been used: start after it.
            next_seq: reserved.max(highest) + 1,
            reserved_through: reserved.max(highest),
            fresh,
            evicted: Lost::default(),
            corrupt: unreadable,
            evicted_events_total: 0,
            evicted_batches_total: 0,
            corrupt_events_total: 0,
        };
        spool.evict_over_limit();
        Ok(spool)
    }

    /// Writes a sealed batch and returns its sequence number. Evicts the oldest batches past the limit.
    pub fn push(&mut self, events: u32, sealed_unix_nano: u64, payload: Bytes) -> io::Result<u64> {
        self.push_reporting(events, sealed_unix_nano, payload, Lost::default(), 0)
    }

    /// [`Spool::push`] for a batch whose `loss_events` `event_loss` events report `carried`.
    pub fn push_reporting(
        &mut self,
        events: u32,
        sealed_unix_nano: u64,
        payload: Bytes,
        carried: Lost,
        loss_events: u32,
    ) -> io::Result<u64> {
        if self.next_seq > self.reserved_through {
            self.reserve(self.next_seq + SEQ_BLOCK - 1)?;
        }
        let seq = self.next_seq;
        let path = self.dir.join(file_name(seq));
        let tmp = path.with_extension("tmp");
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(MAGIC);
        header[4..8].copy_from_slice(&events.to_le_bytes());
        header[8..16].copy_from_slice(&sealed_unix_nano.to_le_bytes());
        header[16..20].copy_from_slice(&crc32(&payload).to_le_bytes());
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&header)?;
            f.write_all(&payload)?;
            if self.sync == SpoolSync::Always {
                f.sync_data()?;
            }
        }
        fs::rename(&tmp, &path)?;
        if let Some(d) = &self.dir_handle {
            // The rename itself must be durable, or the file may be absent under its real name.
            d.sync_all()?;
        }
        self.next_seq += 1;
        let size = (HEADER + payload.len()) as u64;
        let keep = self.memory + payload.len() as u64 <= self.limits.max_memory;
        if keep {
            self.memory += payload.len() as u64;
        }
        self.entries.push_back(Entry {
            seq,
            events,
            sealed_unix_nano,
            size,
            payload: keep.then_some(payload),
            carried,
            loss_events: loss_events.min(events),
        });
        self.bytes += size;
        self.evict_over_limit();
        Ok(seq)
    }

    fn reserve(&mut self, through: u64) -> io::Result<()> {
        let state = self.dir.join("seq");
        let tmp = self.dir.join("seq.tmp");
        let mut f = fs::File::create(&tmp)?;
        writeln!(f, "{through}")?;
        // The reservation must survive a crash, or a restart could reuse acknowledged numbers.
        f.sync_all()?;
        fs::rename(&tmp, &state)?;
        self.reserved_through = through;
        Ok(())
    }

    fn evict_over_limit(&mut self) {
        while self.bytes > self.limits.max_bytes && self.entries.len() > 1 {
            let e = self.entries.pop_front().expect("len > 1");
            tracing::warn!(
                "spool full ({} bytes > {}): evicting batch {} ({} events)",
                self.bytes,
                self.limits.max_bytes,
                e.seq,
                e.events
            );
            self.evicted.add(&e);
            self.evicted_events_total += u64::from(e.events - e.loss_events);
            self.evicted_batches_total += 1;
            self.forget(e);
        }
    }

    fn forget(&mut self, e: Entry) {
        self.bytes -= e.size;
        if let Some(p) = &e.payload {
            self.memory -= p.len() as u64;
        }
        if let Err(err) = fs::remove_file(self.dir.join(file_name(e.seq)))
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!("spool: could not delete batch {}: {err}", e.seq);
        }
    }

    /// Drops every batch up to and including `seq` (the collector has it); returns them.
    pub fn ack_through(&mut self, seq: u64) -> Vec<Entry> {
        let mut acked = Vec::new();
        while self.entries.front().is_some_and(|e| e.seq <= seq) {
            let e = self.entries.pop_front().expect("front exists");
            acked.push(Entry {
                payload: None,
                ..e.clone()
            });
            self.forget(e);
        }
        acked
    }

    /// The first batch with a sequence at or after `seq`, with its payload (read from disk when it is
    /// not in memory). A batch that cannot be read back is dropped and counted as lost.
    pub fn next_from(&mut self, seq: u64) -> Option<(Entry, Bytes)> {
        loop {
            let idx = self.entries.partition_point(|e| e.seq < seq);
            let e = self.entries.get(idx)?.clone();
            if let Some(p) = &e.payload {
                return Some((e.clone(), p.clone()));
            }
            match read_payload(&self.dir.join(file_name(e.seq))) {
                Ok(p) => return Some((e, p)),
                Err(err) => {
                    tracing::warn!("spool: batch {} unreadable, dropped: {err}", e.seq);
                    let e = self.entries.remove(idx).expect("index valid");
                    self.corrupt.add(&e);
                    self.corrupt_events_total += u64::from(e.events - e.loss_events);
                    self.forget(e);
                }
            }
        }
    }

    /// Called with the collector's highest accepted sequence on each Welcome. A fresh spool (no
    /// sequence state: a new install, or a wiped spool directory) whose numbers the collector has
    /// already seen renumbers its batches after them, instead of having them dropped as duplicates.
    pub fn rebase(&mut self, last_accepted: u64) -> io::Result<()> {
        if !std::mem::take(&mut self.fresh) {
            return Ok(());
        }
        let first = self.entries.front().map_or(self.next_seq, |e| e.seq);
        if first > last_accepted {
            return Ok(());
        }
        let shift = last_accepted + 1 - first;
        // Highest first, so a rename never lands on a name still in use.
        for e in self.entries.iter_mut().rev() {
            fs::rename(
                self.dir.join(file_name(e.seq)),
                self.dir.join(file_name(e.seq + shift)),
            )?;
            e.seq += shift;
        }
        self.next_seq += shift;
        self.reserve(self.next_seq + SEQ_BLOCK - 1)?;
        tracing::info!(
            "spool: new agent state, batches renumbered after the collector's {last_accepted}"
        );
        Ok(())
    }

    /// Loss not yet reported, and forgets it (the caller reports it).
    pub fn take_lost(&mut self) -> (Lost, Lost) {
        (
            std::mem::take(&mut self.evicted),
            std::mem::take(&mut self.corrupt),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn first_seq(&self) -> Option<u64> {
        self.entries.front().map(|e| e.seq)
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.entries.back().map(|e| e.seq)
    }
}

fn read_header(path: &Path) -> io::Result<(u32, u64, u64)> {
    use std::io::Read;
    let mut f = fs::File::open(path)?;
    let size = f.metadata()?.len();
    let mut h = [0u8; HEADER];
    f.read_exact(&mut h)?;
    if &h[..4] != MAGIC {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad magic"));
    }
    let events = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes"));
    let sealed = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
    Ok((events, sealed, size))
}

fn read_payload(path: &Path) -> io::Result<Bytes> {
    let data = fs::read(path)?;
    if data.len() < HEADER || &data[..4] != MAGIC {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad header"));
    }
    let crc = u32::from_le_bytes(data[16..20].try_into().expect("4 bytes"));
    let payload = Bytes::from(data).slice(HEADER..);
    if crc32(&payload) != crc {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "checksum mismatch",
        ));
    }
    Ok(payload)
}

fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ward-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    const BIG: SpoolLimits = SpoolLimits {
        max_bytes: 1 << 30,
        max_memory: 1 << 30,
    };

    #[test]
    fn survives_reopen_and_keeps_numbering() {
        let dir = tmpdir("reopen");
        let mut s = Spool::open(&dir, BIG).unwrap();
        assert_eq!(s.push(3, 7, Bytes::from_static(b"abc")).unwrap(), 1);
        assert_eq!(s.push(4, 8, Bytes::from_static(b"defg")).unwrap(), 2);
        s.ack_through(1);
        drop(s);
        let mut s = Spool::open(&dir, BIG).unwrap();
        assert_eq!(s.len(), 1);
        let (e, p) = s.next_from(0).unwrap();
        assert_eq!(
            (e.seq, e.events, e.sealed_unix_nano, &p[..]),
            (2, 4, 8, &b"defg"[..])
        );
        // New numbers continue after the reserved block, never reusing one.
        assert_eq!(
            s.push(1, 9, Bytes::from_static(b"h")).unwrap(),
            SEQ_BLOCK + 1
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn evicts_oldest_and_counts_loss() {
        let dir = tmpdir("evict");
        let limits = SpoolLimits {
            max_bytes: 3 * (HEADER as u64 + 10),
            max_memory: 0,
        };
        let mut s = Spool::open(&dir, limits).unwrap();
        for i in 0..5u32 {
            s.push(i + 1, 0, Bytes::from(vec![i as u8; 10])).unwrap();
        }
        assert_eq!(s.len(), 3);
        assert_eq!(s.first_seq(), Some(3));
        let (evicted, corrupt) = s.take_lost();
        assert_eq!(
            evicted,
            Lost {
                events: 1 + 2,
                batches: 2,
                first_seq: 1,
                last_seq: 2
            }
        );
        assert_eq!(corrupt, Lost::default());
        // Payloads come back from disk (no memory budget).
        let (e, p) = s.next_from(4).unwrap();
        assert_eq!((e.seq, &p[..]), (4, &[3u8; 10][..]));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loss_reported_by_an_evicted_batch_is_carried_forward() {
        let dir = tmpdir("carry");
        let limits = SpoolLimits {
            max_bytes: 2 * (HEADER as u64 + 10),
            max_memory: 0,
        };
        let mut s = Spool::open(&dir, limits).unwrap();
        s.push(10, 0, Bytes::from(vec![0; 10])).unwrap();
        s.push(10, 0, Bytes::from(vec![1; 10])).unwrap();
        s.push(10, 0, Bytes::from(vec![2; 10])).unwrap(); // evicts 1
        let (lost, _) = s.take_lost();
        assert_eq!((lost.events, lost.first_seq), (10, 1));
        // Batch 4 reports that loss with one event_loss event among its 5, then is evicted itself.
        s.push_reporting(5, 0, Bytes::from(vec![3; 10]), lost, 1)
            .unwrap(); // evicts 2
        s.push(10, 0, Bytes::from(vec![4; 10])).unwrap(); // evicts 3
        s.push(10, 0, Bytes::from(vec![5; 10])).unwrap(); // evicts 4
        let (lost, _) = s.take_lost();
        // Ordinary events of batches 1-4 (10 + 10 + 10 + 4), the event_loss event not counted as lost.
        assert_eq!(
            lost,
            Lost {
                events: 34,
                batches: 4,
                first_seq: 1,
                last_seq: 4
            }
        );
        assert_eq!(s.evicted_events_total, 34);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_batch_is_dropped_and_counted() {
        let dir = tmpdir("corrupt");
        let limits = SpoolLimits {
            max_bytes: 1 << 20,
            max_memory: 0,
        };
        let mut s = Spool::open(&dir, limits).unwrap();
        s.push(5, 0, Bytes::from_static(b"0123456789")).unwrap();
        s.push(6, 0, Bytes::from_static(b"abcdefghij")).unwrap();
        let path = dir.join(file_name(1));
        let mut data = fs::read(&path).unwrap();
        data[HEADER + 2] ^= 0xff;
        fs::write(&path, data).unwrap();
        let (e, _) = s.next_from(0).unwrap();
        assert_eq!(e.seq, 2);
        assert_eq!(s.take_lost().1.events, 5);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fresh_spool_renumbers_after_collector_state() {
        let dir = tmpdir("rebase");
        let mut s = Spool::open(&dir, BIG).unwrap();
        s.push(1, 0, Bytes::from_static(b"a")).unwrap();
        s.push(1, 0, Bytes::from_static(b"b")).unwrap();
        s.rebase(500).unwrap();
        assert_eq!((s.first_seq(), s.last_seq()), (Some(501), Some(502)));
        assert_eq!(s.push(1, 0, Bytes::from_static(b"c")).unwrap(), 503);
        // Only once, and only for a fresh spool.
        s.rebase(10_000).unwrap();
        assert_eq!(s.first_seq(), Some(501));
        drop(s);
        let mut s = Spool::open(&dir, BIG).unwrap();
        assert_eq!(s.next_from(0).unwrap().1, Bytes::from_static(b"a"));
        s.rebase(10_000).unwrap();
        assert_eq!(s.first_seq(), Some(501));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unreadable_batch_at_open_is_reported_as_lost() {
        let dir = tmpdir("unreadable");
        let mut s = Spool::open_with(&dir, BIG, SpoolSync::Always).unwrap();
        s.push(5, 0, Bytes::from_static(b"abc")).unwrap();
        s.push(6, 0, Bytes::from_static(b"def")).unwrap();
        drop(s);
        // What a power loss can leave without fsync: the file exists, its content does not.
        fs::write(dir.join(file_name(1)), b"").unwrap();
        let mut s = Spool::open(&dir, BIG).unwrap();
        assert_eq!((s.len(), s.first_seq()), (1, Some(2)));
        let (_, corrupt) = s.take_lost();
        assert_eq!(
            corrupt,
            Lost {
                events: 0,
                batches: 1,
                first_seq: 1,
                last_seq: 1
            }
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn crc_matches_reference() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
