//! Cloud-log sources inside `serve`: CloudTrail, VPC Flow Log and Route 53 Resolver logs read
//! continuously with the same readers as `scan` (`crate::logs`): directories watched for new
//! files, S3 prefixes listed, or the objects S3 event notifications announce on an SQS queue.
//!
//! One thread polls every source in turn, then waits. Records go through the foundational
//! detections ([`CloudDetections`]); every poll that read something is logged with its counts.
//!
//! Exactly once across a crash: which objects are done (the checkpoint), the findings they
//! produced and the detectors' learned state are committed to the findings store in one
//! transaction ([`crate::store::WriteBatch`]). Objects are grouped: a commit follows at most
//! [`GROUP_OBJECTS`] completed objects or [`GROUP_DELAY`] after the first, and the end of every
//! source's poll. After `kill -9`, the objects of an uncommitted group are read again from the
//! committed state (findings restored into aggregation, detectors' state as committed with
//! them), so each record counts once. Checkpoint journals and state files of earlier versions
//! are imported into the store on first start; the store is the truth from then on.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::event::{Event, SourceKind};
use crate::findings::Finding;
use crate::foundational::engine::FoundationalEngine;
use crate::logs::checkpoint::{Checkpoint, CompletionLog, ObjectVersion};
use crate::logs::dirsource::DirSource;
use crate::logs::s3::sqs::{SqsClient, SqsSource};
use crate::logs::s3::{AwsConfig, S3Location, S3Source};
use crate::logs::{Counts, Problem, ReadOptions, Sink};
use crate::store::{ListQuery, Store, StoreError, WriteBatch};
use crate::suppression::Emitted;

use super::correlation::{CloudInput, CorrelationStage};
use super::live::Follower;

/// Completed objects committed together, at most.
pub const GROUP_OBJECTS: usize = 64;
/// Longest a completed object waits for the commit of its group.
pub const GROUP_DELAY: Duration = Duration::from_secs(1);
/// Store checkpoint names: `cloud:<source>:<object>` for each completed object.
const CHECKPOINT_PREFIX: &str = "cloud:";
/// Store checkpoint saying the journal file of an earlier version was imported.
pub const JOURNAL_IMPORTED: &str = "cloud-import:journal";
/// Store detector-state name of the foundational detections.
pub const STATE_NAME: &str = "foundational";

/// Where one source's logs are.
#[derive(Debug, Clone)]
pub enum Location {
    Dir(PathBuf),
    S3(S3Location),
}

impl Location {
    /// A path, or `s3://bucket/prefix`.
    pub fn parse(text: &str) -> Result<Location, String> {
        if text.starts_with("s3://") {
            S3Location::parse(text).map(Location::S3)
        } else {
            Ok(Location::Dir(text.into()))
        }
    }
}

pub struct CloudConfig {
    pub sources: Vec<(SourceKind, Location)>,
    pub opts: ReadOptions,
    /// Needed when a location is on S3.
    pub aws: Option<AwsConfig>,
    /// Read the S3 locations as announced on this queue instead of listing them.
    pub sqs_queue: Option<String>,
    /// The checkpoint journal of an earlier version: imported into the store on first start,
    /// then no longer read or written.
    pub checkpoint: PathBuf,
    /// Pause between two passes over every source.
    pub poll_every: Duration,
    /// A local file this old is read without waiting to see it unchanged on a second pass.
    pub settle: Duration,
}

/// Totals since start, readable while the sources run.
#[derive(Debug, Default)]
pub struct CloudStats {
    pub objects: AtomicU64,
    pub records: AtomicU64,
    pub skipped: AtomicU64,
    pub malformed: AtomicU64,
    /// Passes over every source completed.
    pub passes: AtomicU64,
    /// Store commits of (objects' checkpoints, their findings, detector state).
    pub commits: AtomicU64,
    /// Time spent in those commits, and the part of it spent saving the detectors' state (µs).
    pub commit_micros: AtomicU64,
    pub state_micros: AtomicU64,
    /// Size of the detector state last committed (bytes of JSON).
    pub state_bytes: AtomicU64,
}

pub struct CloudHandle {
    pub stats: Arc<CloudStats>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl CloudHandle {
    /// Finishes the object being read (it is then checkpointed) and stops.
    pub fn stop(self) {
        self.stop.store(true, Relaxed);
        let _ = self.thread.join();
    }
}

enum Polled {
    Dir(DirSource),
    S3(S3Source),
}

/// Resumes from the store (importing an earlier version's journal and state file once), opens
/// the S3/SQS clients (errors name the flag's value), then polls on a thread of its own.
pub fn start(cfg: CloudConfig, detections: CloudDetections) -> io::Result<CloudHandle> {
    let CloudDetections {
        mut engine,
        store,
        legacy_state,
        follower,
        correlation,
    } = detections;
    let done = resume_checkpoints(&store, &cfg.checkpoint)?;
    restore_engine(&mut engine, &store, legacy_state.as_deref())?;
    let s3_routes: Vec<(SourceKind, S3Location)> = cfg
        .sources
        .iter()
        .filter_map(|(s, l)| match l {
            Location::S3(loc) => Some((*s, loc.clone())),
            Location::Dir(_) => None,
        })
        .collect();
    let aws = match (&cfg.aws, s3_routes.is_empty()) {
        (Some(a), _) => Some(a.clone()),
        (None, true) => None,
        (None, false) => return Err(io::Error::other("s3:// sources need an AWS configuration")),
    };
    let mut polled = Vec::new();
    for (source, location) in &cfg.sources {
        match location {
            Location::Dir(dir) => polled.push(Polled::Dir(DirSource::new(
                *source,
                dir.clone(),
                cfg.opts.clone(),
                cfg.settle,
            ))),
            Location::S3(loc) if cfg.sqs_queue.is_none() => {
                let client = aws.as_ref().expect("checked above").s3_client();
                polled.push(Polled::S3(S3Source::new(
                    *source,
                    loc.clone(),
                    cfg.opts.clone(),
                    client,
                )));
            }
            Location::S3(_) => {}
        }
    }
    let mut sqs = match (&cfg.sqs_queue, &aws) {
        (Some(queue), Some(aws)) if !s3_routes.is_empty() => {
            let client = SqsClient::new(aws, queue)
                .map_err(|e| io::Error::other(format!("--sqs-queue {queue}: {e}")))?;
            let mut src = SqsSource::new(client, aws.s3_client(), s3_routes, cfg.opts.clone());
            // Short waits keep shutdown prompt; an empty queue ends the pass.
            src.wait_secs = 1;
            Some(src)
        }
        (Some(_), _) => {
            return Err(io::Error::other(
                "--sqs-queue needs at least one s3:// location to route objects to",
            ));
        }
        _ => None,
    };
    let stats = Arc::new(CloudStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (st, halt) = (stats.clone(), stop.clone());
    let group = Arc::new(Mutex::new(Uncommitted {
        engine,
        follower,
        correlation,
        correlate: CloudInput::default(),
        store: store.clone(),
        findings: Vec::new(),
        positions: HashMap::new(),
        checkpoints: Vec::new(),
        first_done: None,
        stats: stats.clone(),
    }));
    let mut checkpoint = Checkpoint::with_log(
        store.path().to_owned(),
        done,
        Box::new(StoreLog {
            group: group.clone(),
        }),
    );
    let mut sink = CountingSink {
        inner: Box::new(DetectionSink {
            group: group.clone(),
        }),
        stats: stats.clone(),
        logged: 0,
    };
    let commit = move || lock(&group).commit();
    let thread = std::thread::Builder::new()
        .name("ward-cloud-logs".into())
        .spawn(move || {
            while !halt.load(Relaxed) {
                for p in &mut polled {
                    if halt.load(Relaxed) {
                        break;
                    }
                    let (name, result) = match p {
                        Polled::Dir(d) => (
                            format!("{} {}", d.source, d.root.display()),
                            d.poll(&mut checkpoint, &mut sink)
                                .map_err(|e| e.to_string()),
                        ),
                        Polled::S3(s) => (
                            format!("{} {}", s.source, s.location),
                            s.poll(Some(&mut checkpoint), &mut sink)
                                .map_err(|e| e.to_string()),
                        ),
                    };
                    report(&name, result, &st);
                    commit();
                }
                if let Some(q) = &mut sqs {
                    let before = total(q);
                    while !halt.load(Relaxed) {
                        match q.poll(Some(&mut checkpoint), &mut sink) {
                            Ok(p) if p.messages == 0 => break,
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!("cloud logs: sqs {}: {e}", q.queue_url());
                                break;
                            }
                        }
                    }
                    let after = total(q);
                    report(
                        &format!("sqs {}", q.queue_url()),
                        Ok(difference(after, before)),
                        &st,
                    );
                    commit();
                }
                st.passes.fetch_add(1, Relaxed);
                let until = Instant::now() + cfg.poll_every;
                while !halt.load(Relaxed) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            // The object being read when stop was asked has completed: commit its group.
            commit();
        })?;
    Ok(CloudHandle {
        stats,
        stop,
        thread,
    })
}

fn total(q: &SqsSource) -> Counts {
    q.totals()
        .iter()
        .fold(Counts::default(), |mut sum, (_, c)| {
            sum += *c;
            sum
        })
}

fn difference(a: Counts, b: Counts) -> Counts {
    Counts {
        objects: a.objects - b.objects,
        bytes: a.bytes - b.bytes,
        records: a.records - b.records,
        skipped: a.skipped - b.skipped,
        malformed: a.malformed - b.malformed,
    }
}

fn report(name: &str, result: Result<Counts, String>, stats: &CloudStats) {
    match result {
        Ok(c) if c.objects > 0 => {
            stats.objects.fetch_add(c.objects, Relaxed);
            // Scripts and tests follow progress on this line.
            eprintln!(
                "ward-collector: {name}: read {} objects, {} records ({} malformed, {} skipped)",
                c.objects, c.records, c.malformed, c.skipped
            );
        }
        Ok(_) => {}
        // A source that fails (unreadable directory, S3 down) is retried on the next pass.
        Err(e) => tracing::warn!("cloud logs: {name}: {e}"),
    }
}

/// Counts records and problems, logs the first problems, and hands records on.
struct CountingSink {
    inner: Box<dyn Sink + Send>,
    stats: Arc<CloudStats>,
    logged: u64,
}

impl CountingSink {
    fn problem(&mut self, kind: &str, p: &Problem<'_>) {
        self.logged += 1;
        if self.logged <= 100 {
            tracing::warn!("cloud logs: {kind}: {p}");
        }
    }
}

impl Sink for CountingSink {
    fn event(&mut self, event: &Event<'_>) {
        self.stats.records.fetch_add(1, Relaxed);
        self.inner.event(event);
    }
    fn malformed(&mut self, p: &Problem<'_>) {
        self.stats.malformed.fetch_add(1, Relaxed);
        self.problem("malformed", p);
        self.inner.malformed(p);
    }
    fn skipped(&mut self, p: &Problem<'_>) {
        self.stats.skipped.fetch_add(1, Relaxed);
        self.problem("skipped", p);
        self.inner.skipped(p);
    }
}

/// The foundational detections of `serve` and where their results go.
pub struct CloudDetections {
    pub engine: FoundationalEngine,
    pub store: Store,
    /// The state file of an earlier version (`foundational-state.json`): imported when the store
    /// has no detector state yet.
    pub legacy_state: Option<PathBuf>,
    /// Lists and rules changed through the API, switched to before the next record.
    pub follower: Option<Follower>,
    /// Correlation: the group's records and findings go through it at the group's commit, and
    /// its outputs and state are committed with the group.
    pub correlation: Option<Arc<CorrelationStage>>,
}

fn store_error(e: StoreError) -> io::Error {
    io::Error::other(e.to_string())
}

fn checkpoint_name(source: SourceKind, object: &str) -> String {
    format!("{CHECKPOINT_PREFIX}{}:{object}", source.name())
}

fn parse_checkpoint(name: &str, value: &Value) -> Option<(SourceKind, String, ObjectVersion)> {
    let (source, object) = name.strip_prefix(CHECKPOINT_PREFIX)?.split_once(':')?;
    let source = SourceKind::from_name(source)?;
    let version = serde_json::from_value(value.clone()).ok()?;
    Some((source, object.to_owned(), version))
}

/// The completed objects as committed in the store, after importing `journal` (an earlier
/// version's checkpoint file) if that was never done.
fn resume_checkpoints(
    store: &Store,
    journal: &Path,
) -> io::Result<Vec<(SourceKind, String, ObjectVersion)>> {
    let imported = store
        .read(|r| r.checkpoint(JOURNAL_IMPORTED))
        .map_err(store_error)?;
    if imported.is_none() && journal.exists() {
        let old = Checkpoint::open(journal)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", journal.display())))?;
        let mut checkpoints: Vec<(String, Value)> = old
            .completed()
            .map(|(source, object, version)| (checkpoint_name(source, object), json!(version)))
            .collect();
        let objects = checkpoints.len();
        checkpoints.push((
            JOURNAL_IMPORTED.into(),
            json!({"path": journal.display().to_string(), "objects": objects}),
        ));
        store
            .commit(WriteBatch {
                checkpoints,
                ..WriteBatch::default()
            })
            .map_err(store_error)?;
        tracing::info!(
            "cloud logs: imported {objects} completed objects from {} into the store (the file is no longer used)",
            journal.display()
        );
    }
    let rows = store
        .read(|r| r.checkpoints_under(CHECKPOINT_PREFIX))
        .map_err(store_error)?;
    rows.into_iter()
        .map(|(name, value)| {
            parse_checkpoint(&name, &value).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: checkpoint {name:?} is not a cloud-log object version: {value}",
                        store.path().display()
                    ),
                )
            })
        })
        .collect()
}

/// The detectors' state as last committed (or an earlier version's state file), and the
/// stored cloud-log findings back into aggregation.
fn restore_engine(
    engine: &mut FoundationalEngine,
    store: &Store,
    legacy_state: Option<&Path>,
) -> io::Result<()> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    match store
        .read(|r| r.detector_state(STATE_NAME))
        .map_err(store_error)?
    {
        Some(state) => engine.restore_state(state).map_err(|e| {
            bad(format!(
                "{}: detector state {STATE_NAME:?}: {e}",
                store.path().display()
            ))
        })?,
        None => {
            if let Some(path) = legacy_state.filter(|p| p.exists()) {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                let state: Value = serde_json::from_str(&text)
                    .map_err(|e| bad(format!("{}: {e}", path.display())))?;
                engine
                    .restore_state(state)
                    .map_err(|e| bad(format!("{}: {e}", path.display())))?;
                tracing::info!(
                    "cloud logs: detector state imported from {} (kept in the store from now on)",
                    path.display()
                );
            }
        }
    }
    // Runtime findings (they name the agent) belong to the agent pipeline's engines.
    let mut findings = Vec::new();
    let mut query = ListQuery {
        max_results: 1000,
        ..ListQuery::default()
    };
    loop {
        let page = store
            .read(|r| r.list_findings(&query))
            .map_err(store_error)?;
        for raw in page.findings {
            let f = Finding::from_json_str(raw.get())
                .map_err(|e| bad(format!("{}: stored finding: {e}", store.path().display())))?;
            if f.service.ward_details().and_then(|w| w.agent_id).is_none() {
                findings.push(f);
            }
        }
        match page.next_token {
            Some(t) => query.next_token = Some(t),
            None => break,
        }
    }
    engine.restore_findings(findings);
    Ok(())
}

fn lock(group: &Mutex<Uncommitted>) -> std::sync::MutexGuard<'_, Uncommitted> {
    // Only the cloud-log thread takes it; a panic there ends the thread anyway.
    group
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the cloud-log thread has processed since its last commit: the detections (their state
/// moves with every record), the findings they emitted (latest version of each) and the
/// objects completed.
struct Uncommitted {
    engine: FoundationalEngine,
    follower: Option<Follower>,
    correlation: Option<Arc<CorrelationStage>>,
    /// With correlation: the group's findings and CloudTrail calls, in order, for the stage.
    correlate: CloudInput,
    store: Store,
    findings: Vec<Finding>,
    /// Finding id -> index in `findings`.
    positions: HashMap<String, usize>,
    checkpoints: Vec<(String, Value)>,
    /// When the first object of this group completed.
    first_done: Option<Instant>,
    stats: Arc<CloudStats>,
}

impl Uncommitted {
    fn add(&mut self, emitted: Vec<Emitted>) {
        for e in emitted {
            self.add_finding(e.finding);
        }
    }

    fn add_finding(&mut self, finding: Finding) {
        match self.positions.get(&finding.id) {
            Some(&i) => self.findings[i] = finding,
            None => {
                self.positions
                    .insert(finding.id.clone(), self.findings.len());
                self.findings.push(finding);
            }
        }
    }

    fn due(&self) -> bool {
        self.checkpoints.len() >= GROUP_OBJECTS
            || self.first_done.is_some_and(|t| t.elapsed() >= GROUP_DELAY)
    }

    /// Commits the group (findings, checkpoints, detector state) in one transaction. On failure
    /// everything stays pending for the next commit: nothing is marked done that is not stored,
    /// and a crash meanwhile reads those objects again.
    fn commit(&mut self) {
        if self.checkpoints.is_empty() && self.findings.is_empty() && self.correlate.is_empty() {
            return;
        }
        let started = Instant::now();
        let state = self.engine.save_state();
        let state_time = started.elapsed();
        let state_bytes = state.to_string().len();
        let detector_state = vec![(STATE_NAME.into(), state)];
        let result = match self.correlation.clone() {
            // The correlator's outputs join the group's findings (kept there if the commit
            // fails, for the retry), its state the detectors'.
            Some(stage) => {
                let input = std::mem::take(&mut self.correlate);
                stage.commit_cloud(input, |outputs, correlator_state| {
                    for f in outputs {
                        self.add_finding(f);
                    }
                    let mut detector_state = detector_state;
                    detector_state.extend(correlator_state);
                    self.store.commit(WriteBatch {
                        findings: self.findings.clone(),
                        checkpoints: self.checkpoints.clone(),
                        detector_state,
                        ..WriteBatch::default()
                    })
                })
            }
            None => self.store.commit(WriteBatch {
                findings: self.findings.clone(),
                checkpoints: self.checkpoints.clone(),
                detector_state,
                ..WriteBatch::default()
            }),
        };
        match result {
            Ok(_) => {
                // Tests follow commits on this line (RUST_LOG=ward_collector::pipeline::cloud=debug).
                tracing::debug!(
                    "cloud logs: committed {} objects, {} findings, detector state of {state_bytes} bytes",
                    self.checkpoints.len(),
                    self.findings.len()
                );
                self.findings.clear();
                self.positions.clear();
                self.checkpoints.clear();
                self.first_done = None;
                let s = &self.stats;
                s.commits.fetch_add(1, Relaxed);
                s.commit_micros
                    .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
                s.state_micros
                    .fetch_add(state_time.as_micros() as u64, Relaxed);
                s.state_bytes.store(state_bytes as u64, Relaxed);
            }
            Err(e) => tracing::error!(
                "cloud logs: committing {} objects and {} findings: {e} (kept, retried with the next commit)",
                self.checkpoints.len(),
                self.findings.len()
            ),
        }
    }
}

/// Cloud-log records into the foundational detections; their findings wait for the commit of
/// the objects they came from.
struct DetectionSink {
    group: Arc<Mutex<Uncommitted>>,
}

impl Sink for DetectionSink {
    fn event(&mut self, event: &Event<'_>) {
        let mut group = lock(&self.group);
        if let Some(d) = group.follower.as_mut().and_then(Follower::changed) {
            group.engine.replace_intel(d.intel, d.suppression);
        }
        let emitted = group.engine.process(event);
        if group.correlation.is_some() {
            group.correlate.push(event, emitted);
        } else if !emitted.is_empty() {
            group.add(emitted);
        }
    }
}

/// Completed objects into the store, with the findings and state of their group.
struct StoreLog {
    group: Arc<Mutex<Uncommitted>>,
}

impl CompletionLog for StoreLog {
    fn record(
        &mut self,
        source: SourceKind,
        object: &str,
        version: &ObjectVersion,
    ) -> io::Result<()> {
        let mut group = lock(&self.group);
        group
            .checkpoints
            .push((checkpoint_name(source, object), json!(version)));
        group.first_done.get_or_insert_with(Instant::now);
        if group.due() {
            group.commit();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;

    #[test]
    fn the_journal_is_imported_once_then_the_store_is_the_truth() {
        let dir = std::env::temp_dir().join(format!("ward-cloud-import-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let journal = dir.join("cloud-logs.checkpoint");
        let v = |size| ObjectVersion {
            size,
            tag: Some(format!("etag-{size}")),
        };
        {
            let mut old = Checkpoint::open(&journal).unwrap();
            old.mark_done(SourceKind::CloudTrail, "s3://b/AWSLogs/a.json.gz", v(10))
                .unwrap();
            // A ':' in the object name survives the store's `cloud:<source>:<object>` names.
            old.mark_done(SourceKind::VpcFlow, "/logs/flow:1.log", v(20))
                .unwrap();
        }
        let store = Store::open(&dir.join("ward.db"), StoreConfig::default()).unwrap();
        let mut done = resume_checkpoints(&store, &journal).unwrap();
        done.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(
            done,
            vec![
                (SourceKind::VpcFlow, "/logs/flow:1.log".to_string(), v(20)),
                (
                    SourceKind::CloudTrail,
                    "s3://b/AWSLogs/a.json.gz".to_string(),
                    v(10)
                ),
            ]
        );
        let marker = store
            .read(|r| r.checkpoint(JOURNAL_IMPORTED))
            .unwrap()
            .unwrap();
        assert_eq!(marker["objects"], 2);
        // Written to the journal after the import: the store is the truth, it is not read again.
        Checkpoint::open(&journal)
            .unwrap()
            .mark_done(SourceKind::Dns, "/dns/late.log", v(1))
            .unwrap();
        assert_eq!(resume_checkpoints(&store, &journal).unwrap().len(), 2);
        // A damaged row is named, not skipped.
        store
            .commit(WriteBatch {
                checkpoints: vec![("cloud:nosuchsource:/x".into(), json!({"size": 1}))],
                ..WriteBatch::default()
            })
            .unwrap();
        let err = resume_checkpoints(&store, &journal)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ward.db") && err.contains("cloud:nosuchsource:/x"),
            "{err}"
        );
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
