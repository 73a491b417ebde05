//! Durable acceptance of agent batches. A batch is acknowledged only after [`BatchStore::commit`] has
//! returned for it, so an acknowledged batch survives a crash; the highest stored sequence per agent is
//! recovered from the store at start, so a restart neither loses nor duplicates.
//!
//! [`FileLog`] is the first store: an append-only, checksummed, fsync'd log of the batches as received
//! (still compressed). A later store (SQLite) implements the same trait. [`Committer`] runs any store on
//! its own thread and commits in groups — one fsync for every batch that arrived meanwhile, from every
//! agent — which is what makes per-batch durability affordable.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use ward_proto::bytes::Bytes;

/// A batch the collector has validated and is about to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBatch {
    pub agent_id: String,
    pub sequence: u64,
    pub event_count: u32,
    /// `ward.v1.Compression` of the payload.
    pub compression: i32,
    /// The encoded `EventList`, compressed as received.
    pub payload: Bytes,
    pub received_unix_nano: u64,
}

pub trait BatchStore: Send + 'static {
    /// The highest stored sequence of every agent (called once, before any append).
    fn recover(&mut self) -> io::Result<HashMap<String, u64>>;
    /// Adds a batch; it need not be durable until [`BatchStore::commit`].
    fn append(&mut self, batch: &StoredBatch) -> io::Result<()>;
    /// Makes every appended batch durable.
    fn commit(&mut self) -> io::Result<()>;
}

const MAGIC: &[u8; 4] = b"WLG1";
/// Largest record body accepted when reading back (far above any batch the service accepts).
const MAX_RECORD: u32 = 256 << 20;

/// `ingest.log`: records of `magic, body length (u32 LE), CRC-32 of body, body`, where body is
/// `agent id length (u16), agent id, sequence (u64), event count (u32), compression (u8),
/// received time (u64), payload`. A torn tail (crash mid-append) is cut off at recovery.
pub struct FileLog {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    /// Bytes in the file once everything appended is flushed (known after recovery).
    len: u64,
    committed: Arc<Committed>,
}

/// How much of a log is durable: the length of its committed prefix. Readers that tail the log
/// (the detection pipeline) read only up to it, so they never see a batch that was not acknowledged
/// or could still be cut as a torn tail, and they wake up on each commit instead of polling.
#[derive(Debug, Default)]
pub struct Committed {
    len: Mutex<u64>,
    grew: Condvar,
}

impl Committed {
    pub fn len(&self) -> u64 {
        *self.len.lock().expect("committed lock")
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until the committed length is above `offset` or `timeout` passes; returns the length.
    pub fn wait_beyond(&self, offset: u64, timeout: Duration) -> u64 {
        let guard = self.len.lock().expect("committed lock");
        let (guard, _) = self
            .grew
            .wait_timeout_while(guard, timeout, |len| *len <= offset)
            .expect("committed lock");
        *guard
    }

    fn set(&self, len: u64) {
        *self.len.lock().expect("committed lock") = len;
        self.grew.notify_all();
    }
}

impl FileLog {
    pub fn new(path: &Path) -> FileLog {
        FileLog {
            path: path.to_path_buf(),
            out: None,
            len: 0,
            committed: Arc::default(),
        }
    }

    /// The committed length of this log, updated after recovery and after every commit.
    pub fn committed(&self) -> Arc<Committed> {
        self.committed.clone()
    }

    fn writer(&mut self) -> io::Result<&mut BufWriter<File>> {
        if self.out.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.out = Some(BufWriter::with_capacity(1 << 20, f));
        }
        Ok(self.out.as_mut().expect("just opened"))
    }
}

impl BatchStore for FileLog {
    fn recover(&mut self) -> io::Result<HashMap<String, u64>> {
        let mut highest = HashMap::new();
        let good = match File::open(&self.path) {
            Ok(f) => scan(f, |b| {
                let h = highest.entry(b.agent_id).or_insert(0);
                *h = (*h).max(b.sequence);
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.committed.set(0);
                return Ok(highest);
            }
            Err(e) => return Err(e),
        };
        self.len = good.torn_at.unwrap_or(good.end);
        self.committed.set(self.len);
        if let Some(good_len) = good.torn_at {
            tracing::warn!(
                "{}: cutting a torn record at byte {good_len} (a crash interrupted an append; it was never acknowledged)",
                self.path.display()
            );
            let f = OpenOptions::new().write(true).open(&self.path)?;
            f.set_len(good_len)?;
            f.sync_all()?;
        }
        Ok(highest)
    }

    fn append(&mut self, b: &StoredBatch) -> io::Result<()> {
        let id = b.agent_id.as_bytes();
        let id_len = u16::try_from(id.len()).map_err(|_| io::Error::other("agent id too long"))?;
        let body_len = 2 + id.len() + 8 + 4 + 1 + 8 + b.payload.len();
        let body_len = u32::try_from(body_len).map_err(|_| io::Error::other("batch too large"))?;
        let mut head = Vec::with_capacity(12 + 2 + id.len() + 21);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&body_len.to_le_bytes());
        head.extend_from_slice(&[0; 4]); // CRC, filled below
        head.extend_from_slice(&id_len.to_le_bytes());
        head.extend_from_slice(id);
        head.extend_from_slice(&b.sequence.to_le_bytes());
        head.extend_from_slice(&b.event_count.to_le_bytes());
        head.push(b.compression as u8);
        head.extend_from_slice(&b.received_unix_nano.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head[12..]);
        crc.update(&b.payload);
        head[8..12].copy_from_slice(&crc.finalize().to_le_bytes());
        let w = self.writer()?;
        w.write_all(&head)?;
        w.write_all(&b.payload)?;
        self.len += 12 + u64::from(body_len);
        Ok(())
    }

    fn commit(&mut self) -> io::Result<()> {
        let w = self.writer()?;
        w.flush()?;
        w.get_ref().sync_data()?;
        self.committed.set(self.len);
        Ok(())
    }
}

struct ScanEnd {
    /// Length of the valid prefix when the file ends in a torn or corrupt record.
    torn_at: Option<u64>,
    /// Offset after the last intact record.
    end: u64,
}

/// One step of reading a log.
enum Record {
    /// A batch and the length of its record in bytes.
    Batch(StoredBatch, u64),
    /// Clean end of the file.
    End,
    /// A torn or corrupt record starts here.
    Torn,
}

fn read_record(r: &mut impl Read) -> io::Result<Record> {
    let mut head = [0u8; 12];
    match read_full(r, &mut head)? {
        0 => return Ok(Record::End),
        12 => {}
        _ => return Ok(Record::Torn),
    }
    let len = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    if &head[..4] != MAGIC || !(23..=MAX_RECORD).contains(&len) {
        return Ok(Record::Torn);
    }
    let mut body = vec![0u8; len as usize];
    if read_full(r, &mut body)? != body.len() || crc32fast::hash(&body) != crc {
        return Ok(Record::Torn);
    }
    Ok(match parse_body(Bytes::from(body)) {
        Some(b) => Record::Batch(b, 12 + u64::from(len)),
        None => Record::Torn,
    })
}

fn scan(f: File, mut each: impl FnMut(StoredBatch)) -> io::Result<ScanEnd> {
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut offset = 0u64;
    loop {
        match read_record(&mut r)? {
            Record::Batch(b, len) => {
                each(b);
                offset += len;
            }
            Record::End => {
                return Ok(ScanEnd {
                    torn_at: None,
                    end: offset,
                });
            }
            Record::Torn => {
                return Ok(ScanEnd {
                    torn_at: Some(offset),
                    end: offset,
                });
            }
        }
    }
}

/// Reads a log from a byte offset, as far as its committed length: how the detection pipeline
/// follows the log while the service appends to it.
pub struct LogReader {
    path: PathBuf,
    reader: Option<BufReader<File>>,
    offset: u64,
}

impl LogReader {
    /// `offset` must be a record boundary (0, or an offset this reader returned before).
    pub fn new(path: &Path, offset: u64) -> LogReader {
        LogReader {
            path: path.to_path_buf(),
            reader: None,
            offset,
        }
    }

    /// Offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next batch if one ends at or before `committed`, with the offset after it.
    pub fn next_batch(&mut self, committed: u64) -> io::Result<Option<(StoredBatch, u64)>> {
        if self.offset >= committed {
            return Ok(None);
        }
        if self.reader.is_none() {
            let mut f = File::open(&self.path)?;
            f.seek(SeekFrom::Start(self.offset))?;
            self.reader = Some(BufReader::with_capacity(1 << 20, f));
        }
        let r = self.reader.as_mut().expect("just opened");
        match read_record(r)? {
            Record::Batch(b, len) => {
                self.offset += len;
                Ok(Some((b, self.offset)))
            }
            // Below the committed length every record is whole: anything else is damage on disk.
            Record::End | Record::Torn => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: no intact record at byte {} although {committed} bytes are committed",
                    self.path.display(),
                    self.offset
                ),
            )),
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn parse_body(body: Bytes) -> Option<StoredBatch> {
    let id_len = u16::from_le_bytes(body.get(..2)?.try_into().ok()?) as usize;
    let id = std::str::from_utf8(body.get(2..2 + id_len)?)
        .ok()?
        .to_string();
    let rest = 2 + id_len;
    let fixed = body.get(rest..rest + 21)?;
    Some(StoredBatch {
        agent_id: id,
        sequence: u64::from_le_bytes(fixed[..8].try_into().ok()?),
        event_count: u32::from_le_bytes(fixed[8..12].try_into().ok()?),
        compression: i32::from(fixed[12]),
        received_unix_nano: u64::from_le_bytes(fixed[13..21].try_into().ok()?),
        payload: body.slice(rest + 21..),
    })
}

/// Every intact batch of a log file, in the order stored (for tests, replay and export).
pub fn read_log(path: &Path) -> io::Result<Vec<StoredBatch>> {
    let mut out = Vec::new();
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(0))?;
    scan(f, |b| out.push(b))?;
    Ok(out)
}

/// The events of a stored batch (it was validated when received; this checks what is on disk).
pub fn decode_stored(b: &StoredBatch) -> Result<ward_proto::v1::EventList, String> {
    let batch = ward_proto::v1::Batch {
        sequence: b.sequence.max(1),
        event_count: b.event_count,
        compression: b.compression,
        payload: b.payload.clone(),
        sealed_unix_nano: 0,
    };
    let limits = super::Limits {
        max_batch_events: u32::MAX,
        max_decompressed_bytes: usize::MAX,
        ..super::Limits::default()
    };
    super::limits::open_batch(&batch, &limits).map_err(|r| r.1)
}

type Reply = oneshot::Sender<io::Result<()>>;

/// Runs a store on a dedicated thread; [`Committer::submit`] resolves when the batch is durable.
#[derive(Clone)]
pub struct Committer {
    tx: std::sync::mpsc::SyncSender<(StoredBatch, Reply)>,
}

/// Batches per group commit, at most (bounds the latency of the first one in a group).
const GROUP: usize = 512;

impl Committer {
    /// Recovers the store, then starts its thread. Returns the recovered per-agent high-water marks.
    pub fn start(
        mut store: Box<dyn BatchStore>,
        metrics: std::sync::Arc<super::metrics::Metrics>,
    ) -> io::Result<(Committer, HashMap<String, u64>)> {
        let recovered = store.recover()?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<(StoredBatch, Reply)>(4096);
        std::thread::Builder::new()
            .name("ward-ingest-commit".into())
            .spawn(move || {
                let mut group = Vec::with_capacity(GROUP);
                while let Ok(first) = rx.recv() {
                    group.push(first);
                    while group.len() < GROUP {
                        match rx.try_recv() {
                            Ok(item) => group.push(item),
                            Err(_) => break,
                        }
                    }
                    let started = Instant::now();
                    let result = group
                        .iter()
                        .try_for_each(|(b, _)| store.append(b))
                        .and_then(|()| store.commit());
                    metrics
                        .commit_latency
                        .observe(started.elapsed().as_secs_f64());
                    metrics.commits.inc();
                    if let Err(e) = &result {
                        tracing::error!("ingest store commit failed: {e}");
                    }
                    for (_, reply) in group.drain(..) {
                        let r = match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                        };
                        let _ = reply.send(r);
                    }
                }
            })?;
        Ok((Committer { tx }, recovered))
    }

    /// Queues a batch; the receiver resolves once it is durable (or the commit failed).
    pub fn submit(&self, batch: StoredBatch) -> oneshot::Receiver<io::Result<()>> {
        let (reply, rx) = oneshot::channel();
        // A full queue blocks this task's thread briefly: the store is the bottleneck, and waiting here
        // is the back-pressure that slows the agents down (they spool meanwhile).
        if let Err(std::sync::mpsc::SendError((_, reply))) = self.tx.send((batch, reply)) {
            let _ = reply.send(Err(io::Error::other("ingest store thread has stopped")));
        }
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(agent: &str, seq: u64, payload: &'static [u8]) -> StoredBatch {
        StoredBatch {
            agent_id: agent.into(),
            sequence: seq,
            event_count: 3,
            compression: 1,
            payload: Bytes::from_static(payload),
            received_unix_nano: 42,
        }
    }

    #[test]
    fn round_trip_recover_and_torn_tail() {
        let dir = std::env::temp_dir().join(format!("ward-filelog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ingest.log");
        let mut log = FileLog::new(&path);
        assert!(log.recover().unwrap().is_empty());
        let written = [
            batch("a", 1, b"x"),
            batch("b", 7, b"yy"),
            batch("a", 2, b""),
        ];
        for b in &written {
            log.append(b).unwrap();
        }
        log.commit().unwrap();
        drop(log);
        assert_eq!(read_log(&path).unwrap(), written);
        // A crash mid-append leaves a partial record: it is cut, the rest stays.
        let good_len = std::fs::metadata(&path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"WLG1\x40\x00\x00\x00garbage").unwrap();
        drop(f);
        let mut log = FileLog::new(&path);
        let hw = log.recover().unwrap();
        assert_eq!((hw["a"], hw["b"]), (2, 7));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
        log.append(&batch("b", 8, b"z")).unwrap();
        log.commit().unwrap();
        assert_eq!(read_log(&path).unwrap().len(), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The reader sees exactly what is committed: nothing before the commit, each batch once after,
    /// and it resumes from an offset it returned.
    #[test]
    fn log_reader_follows_the_committed_length() {
        let dir = std::env::temp_dir().join(format!("ward-logreader-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ingest.log");
        let mut log = FileLog::new(&path);
        log.recover().unwrap();
        let committed = log.committed();
        assert_eq!(committed.len(), 0);
        log.append(&batch("a", 1, b"one")).unwrap();
        let mut reader = LogReader::new(&path, 0);
        assert!(reader.next_batch(committed.len()).unwrap().is_none());
        assert_eq!(committed.wait_beyond(0, Duration::from_millis(10)), 0);
        log.commit().unwrap();
        let len = committed.wait_beyond(0, Duration::from_secs(1));
        assert_eq!(len, std::fs::metadata(&path).unwrap().len());
        let (b, after_first) = reader.next_batch(len).unwrap().unwrap();
        assert_eq!((b.agent_id.as_str(), b.sequence), ("a", 1));
        assert!(reader.next_batch(len).unwrap().is_none());
        log.append(&batch("b", 9, b"two")).unwrap();
        log.commit().unwrap();
        let (b, _) = reader.next_batch(committed.len()).unwrap().unwrap();
        assert_eq!(b.sequence, 9);
        let mut again = LogReader::new(&path, after_first);
        assert_eq!(
            again
                .next_batch(committed.len())
                .unwrap()
                .unwrap()
                .0
                .sequence,
            9
        );
        // A reopened log starts from what recovery found.
        drop(log);
        let mut log = FileLog::new(&path);
        log.recover().unwrap();
        assert_eq!(log.committed().len(), committed.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
