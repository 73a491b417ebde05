//! The findings store: an embedded SQLite database (one file, WAL) holding findings with their
//! history, suppression rules, threat/trusted lists, detector state, source checkpoints and a
//! bounded window of recent raw events.
//!
//! SQLite because it was the only embedded store measured to survive `kill -9` in every mode while
//! giving SQL (`shared/spec/engines.md` §3); `cargo xtask bench store` measures this one.
//!
//! # API for the pipeline
//!
//! ```no_run
//! # use ward_collector::store::{Store, StoreConfig, WriteBatch};
//! # fn demo(findings: Vec<ward_collector::findings::Finding>) -> Result<(), ward_collector::store::StoreError> {
//! let store = Store::open("ward-data/ward.db".as_ref(), StoreConfig::default())?;
//! // At start: where each source stopped (committed together with its findings).
//! let resume = store.read(|r| r.checkpoint("cloudtrail:s3://bucket/prefix"))?;
//! // Per source batch: findings, raw events and the new checkpoint, in one transaction.
//! store.commit(WriteBatch {
//!     findings,
//!     checkpoints: vec![("cloudtrail:s3://bucket/prefix".into(), serde_json::json!({"key": "..."}))],
//!     ..WriteBatch::default()
//! })?; // returns once durable (fsync'd); `commit_async(batch).await` from async code
//! let mut changes = store.subscribe(); // committed finding changes, for outputs
//! # let _ = (resume, &mut changes); Ok(()) }
//! ```
//!
//! * [`Store::commit`] / [`Store::commit_async`]: a [`WriteBatch`] commits whole or not at all; it
//!   is answered after the transaction is durable, so "commit returned" = survives `kill -9` and
//!   power loss (`synchronous = FULL`). Findings are upserts by id: an update moves the version it
//!   replaces into the history (the current version is stored once), and ARCHIVE suppression
//!   rules are applied as it is stored.
//! * [`Store::read`] / [`Store::read_async`]: queries on a pooled read-only connection
//!   ([`Reader`]: list with GuardDuty criteria, detail, checkpoints, detector state, rules, lists).
//! * [`Store::subscribe`]: [`FindingChange`]s after they commit (broadcast; a slow receiver lags).
//! * Admin writes used by the API: [`Store::archive`], [`Store::put_rule`], [`Store::delete_rule`],
//!   [`Store::put_list`], [`Store::delete_list`].
//!
//! Layout: [`schema`] (tables, migrations), [`writer`] (the one writer thread, group commit),
//! [`query`] (criteria to SQL, the index a list walks, keyset paging), [`read`] (reads),
//! [`columns`] (indexed columns), [`batch`] (what a commit carries), [`lists`] (list definitions).
//!
//! Performance (`cargo xtask bench store`, README): every index ends in the storage sequence, so a
//! finding stored now lands at the end of each run of equal values (a page or two per commit for
//! severity, type, count, archived), not at a random place; only the id and instance indexes take
//! random-order inserts. The writer keeps a large page cache and checkpoints the WAL every 64 MB.

pub mod batch;
pub mod columns;
pub mod crash_child;
pub mod lists;
pub mod query;
pub mod read;
pub mod schema;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use tokio::sync::{broadcast, oneshot};

use crate::ingest::metrics::{Counter, Histogram, write_scalar};
use crate::suppression::SuppressionRule;

pub use batch::{
    ArchiveOutcome, ChangeKind, CommitReceipt, FindingChange, StoredEvent, WriteBatch,
};
pub use lists::{ListRecord, ListSpec, RejectedLine};
pub use query::{ListQuery, Page, SortAttribute};
pub use read::{EventRecord, FindingDetail, HistoryEntry, ListOrigin, ProcessNode, Reader};

use writer::{Job, Writer};

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Raw events older than this (since they were stored) are removed.
    pub event_max_age: Duration,
    /// At most this many raw events are kept (oldest removed first).
    pub event_max_count: u64,
    /// A group commit stops taking queued jobs at this many rows.
    pub max_rows_per_commit: usize,
    /// How long the writer waits for more jobs after the first before committing. 0: commit what
    /// is queued now (jobs arriving during a commit form the next group anyway).
    pub linger: Duration,
    /// `synchronous = FULL` (durable against power loss) rather than `NORMAL` (durable against a
    /// process crash, the last commits may be lost on power loss).
    pub sync_full: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            event_max_age: Duration::from_secs(24 * 3600),
            event_max_count: 1_000_000,
            max_rows_per_commit: 4096,
            linger: Duration::ZERO,
            sync_full: true,
        }
    }
}

#[derive(Debug, Clone)]
pub enum StoreError {
    /// SQLite failed (I/O, disk full, ...).
    Sqlite(String),
    /// The input was refused; nothing of the job was written.
    BadInput(String),
    /// Stored data that does not parse (a bug or a damaged file).
    Corrupt(String),
    /// The writer thread is gone.
    Closed,
}

impl StoreError {
    fn context(self, what: impl fmt::Display) -> Self {
        match self {
            Self::BadInput(m) => Self::BadInput(format!("{what}: {m}")),
            Self::Sqlite(m) => Self::Sqlite(format!("{what}: {m}")),
            Self::Corrupt(m) => Self::Corrupt(format!("{what}: {m}")),
            Self::Closed => Self::Closed,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(m) => write!(f, "store: {m}"),
            Self::BadInput(m) => write!(f, "{m}"),
            Self::Corrupt(m) => write!(f, "store data is damaged: {m}"),
            Self::Closed => write!(f, "store is closed"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e.to_string())
    }
}

#[derive(Default)]
pub struct StoreMetrics {
    pub commits: Counter,
    pub commit_failures: Counter,
    pub commit_latency: Histogram,
    pub findings_created: Counter,
    pub findings_updated: Counter,
    pub events_expired: Counter,
}

impl StoreMetrics {
    /// Appends the store's metrics in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let scalars: [(&str, &str, &Counter); 5] = [
            (
                "ward_store_commits_total",
                "Group commits of the findings store.",
                &self.commits,
            ),
            (
                "ward_store_commit_failures_total",
                "Group commits that failed (their jobs were answered with the error).",
                &self.commit_failures,
            ),
            (
                "ward_store_findings_created_total",
                "Findings stored for the first time.",
                &self.findings_created,
            ),
            (
                "ward_store_findings_updated_total",
                "Stored findings updated (new occurrence, archive, unarchive).",
                &self.findings_updated,
            ),
            (
                "ward_store_events_expired_total",
                "Raw events removed by retention.",
                &self.events_expired,
            ),
        ];
        for (name, help, counter) in scalars {
            write_scalar(out, name, help, "counter", counter.get());
        }
        self.commit_latency.render(
            out,
            "ward_store_commit_seconds",
            "Duration of a group commit (write + fsync).",
        );
    }
}

pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

struct Inner {
    path: PathBuf,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    changes: broadcast::Sender<FindingChange>,
    metrics: Arc<StoreMetrics>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer after it has committed what was queued.
        self.jobs.lock().map(|mut j| j.take()).ok();
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
}

/// A handle to the store; cheap to clone, shared by the pipeline and the API.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// Page cache of the writer connection (KiB). The indexes of 1M findings are ~100 MB; with
/// SQLite's default 2 MB nearly every index insert first read its page back from the OS.
const WRITER_CACHE_KIB: i64 = 128 * 1024;
/// WAL pages before an automatic checkpoint (SQLite's default is 1,000 = 4 MB, less than one
/// commit of 1,000 findings: every commit was followed by a checkpoint that wrote and fsynced the
/// same hot index pages again). A checkpoint copies each page once however many commits changed it.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 16 * 1024;

fn configure(conn: &Connection, sync_full: bool) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", false)?;
    conn.pragma_update(
        None,
        "synchronous",
        if sync_full { "FULL" } else { "NORMAL" },
    )?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database at `path`, migrates it to the current schema and
    /// starts the writer thread.
    pub fn open(path: &Path, config: StoreConfig) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Sqlite(format!("{}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path)
            .map_err(|e| StoreError::Sqlite(format!("{}: {e}", path.display())))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Sqlite(format!(
                "{}: WAL journal mode unavailable (got {mode})",
                path.display()
            )));
        }
        configure(&conn, config.sync_full)?;
        schema::migrate(&mut conn, schema::CURRENT_VERSION)
            .map_err(|e| e.context(path.display()))?;
        let (changes, _) = broadcast::channel(4096);
        let metrics = Arc::new(StoreMetrics::default());
        let writer = Writer::new(conn, config, changes.clone(), metrics.clone())?;
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("ward-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Sqlite(format!("starting the writer thread: {e}")))?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                jobs: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                readers: Mutex::new(Vec::new()),
                changes,
                metrics,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn metrics(&self) -> &StoreMetrics {
        &self.inner.metrics
    }

    fn submit<T>(
        &self,
        make: impl FnOnce(writer::Reply<T>) -> Job,
    ) -> oneshot::Receiver<Result<T, StoreError>> {
        let (reply, answer) = oneshot::channel();
        let job = make(reply);
        if let Ok(jobs) = self.inner.jobs.lock()
            && let Some(jobs) = jobs.as_ref()
        {
            // On a send error the job (and its reply sender) is dropped: the receiver sees Closed.
            let _ = jobs.send(job);
        }
        answer
    }

    fn wait<T>(answer: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
        answer.blocking_recv().unwrap_or(Err(StoreError::Closed))
    }

    async fn wait_async<T>(
        answer: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        answer.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Commits the batch atomically and returns once it is durable. Blocking: from async code use
    /// [`Store::commit_async`].
    pub fn commit(&self, batch: WriteBatch) -> Result<CommitReceipt, StoreError> {
        Self::wait(self.submit(|r| Job::Commit(Box::new(batch), r)))
    }

    pub async fn commit_async(&self, batch: WriteBatch) -> Result<CommitReceipt, StoreError> {
        Self::wait_async(self.submit(|r| Job::Commit(Box::new(batch), r))).await
    }

    /// Archives (or unarchives) findings by id, as a user does.
    pub async fn archive(
        &self,
        ids: Vec<String>,
        archived: bool,
    ) -> Result<ArchiveOutcome, StoreError> {
        Self::wait_async(self.submit(|reply| Job::Archive {
            ids,
            archived,
            reply,
        }))
        .await
    }

    /// Creates or replaces a suppression rule (GuardDuty `CreateFilter` JSON); returns its name.
    pub async fn put_rule(&self, json: Value) -> Result<String, StoreError> {
        let rule =
            SuppressionRule::from_json(&json).map_err(|e| StoreError::BadInput(e.to_string()))?;
        Self::wait_async(self.submit(|reply| Job::PutRule {
            rule: Box::new(rule),
            json,
            reply,
        }))
        .await
    }

    /// Deletes a rule; false if there was none of that name.
    pub async fn delete_rule(&self, name: String) -> Result<bool, StoreError> {
        Self::wait_async(self.submit(|reply| Job::DeleteRule { name, reply })).await
    }

    /// Creates or replaces a list after checking that it loads.
    pub async fn put_list(&self, spec: ListSpec) -> Result<ListRecord, StoreError> {
        let (spec, checked) = tokio::task::spawn_blocking(move || {
            let checked = spec.check();
            checked.map(|c| (spec, c))
        })
        .await
        .map_err(|e| StoreError::Sqlite(format!("list check: {e}")))??;
        Self::wait_async(self.submit(|reply| Job::PutList {
            spec,
            checked,
            reply,
        }))
        .await
    }

    pub async fn delete_list(&self, name: String) -> Result<bool, StoreError> {
        Self::wait_async(self.submit(|reply| Job::DeleteList { name, reply })).await
    }

    /// Committed finding changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<FindingChange> {
        self.inner.changes.subscribe()
    }

    fn open_reader(&self) -> Result<Reader, StoreError> {
        let conn = Connection::open_with_flags(
            &self.inner.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // Each list shape is its own SQL text (and each probe): keep them all prepared.
        conn.set_prepared_statement_cache_capacity(128);
        Ok(Reader { conn })
    }

    /// Runs `f` on a pooled read connection (blocking).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Reader) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.inner.readers.lock().ok().and_then(|mut p| p.pop());
        let reader = match pooled {
            Some(conn) => Reader { conn },
            None => self.open_reader()?,
        };
        let result = f(&reader);
        if let Ok(mut pool) = self.inner.readers.lock()
            && pool.len() < 16
        {
            pool.push(reader.conn);
        }
        result
    }

    /// [`Store::read`] on the blocking thread pool.
    pub async fn read_async<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Reader) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read(f))
            .await
            .map_err(|e| StoreError::Sqlite(format!("read task: {e}")))?
    }
}

#[cfg(test)]
mod tests;
