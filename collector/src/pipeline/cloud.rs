//! Cloud-log sources inside `serve`: CloudTrail, VPC Flow Log and Route 53 Resolver logs read
//! continuously with the same readers as `scan` (`crate::logs`): directories watched for new
//! files, S3 prefixes listed, or the objects S3 event notifications announce on an SQS queue.
//!
//! One thread polls every source in turn, then waits. What has been read is recorded in a
//! checkpoint journal (`crate::logs::checkpoint`) after the sink has received every record of an
//! object, so a restart neither reads an object again nor skips one. Records go to the sink the
//! caller gives ([`FoundationalSink`]: the foundational detections); every poll that read something
//! is logged with its counts.
//!
//! Cloud-log findings are committed to the findings store as they are raised, before the object's
//! checkpoint. The checkpoint journal and the detectors' state are not (yet) in the same
//! transaction: a crash after an object's findings were stored and before its checkpoint reads the
//! object again (its findings then count twice), and the detectors' state is saved at stop only.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::event::{Event, SourceKind};
use crate::foundational::engine::FoundationalEngine;
use crate::logs::checkpoint::Checkpoint;
use crate::logs::dirsource::DirSource;
use crate::logs::s3::sqs::{SqsClient, SqsSource};
use crate::logs::s3::{AwsConfig, S3Location, S3Source};
use crate::logs::{Counts, Problem, ReadOptions, Sink};
use crate::store::{Store, WriteBatch};

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
    /// The checkpoint journal.
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

/// Opens the checkpoint and the S3/SQS clients (errors name the flag's value), then polls on a
/// thread of its own, handing records to `sink`.
pub fn start(cfg: CloudConfig, sink: Box<dyn Sink + Send>) -> io::Result<CloudHandle> {
    let mut checkpoint = Checkpoint::open(&cfg.checkpoint)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", cfg.checkpoint.display())))?;
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
    let mut sink = CountingSink {
        inner: sink,
        stats: stats.clone(),
        logged: 0,
    };
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
                }
                st.passes.fetch_add(1, Relaxed);
                let until = Instant::now() + cfg.poll_every;
                while !halt.load(Relaxed) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
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

/// Cloud-log records into the foundational detections; their findings are committed to the
/// findings store (whose committed changes feed the outputs). The detectors' state (baselines,
/// watermark) is saved when the sources stop.
pub struct FoundationalSink {
    pub engine: FoundationalEngine,
    pub store: Store,
    /// Where the state is saved.
    pub state: PathBuf,
}

impl Sink for FoundationalSink {
    fn event(&mut self, event: &Event<'_>) {
        let emitted = self.engine.process(event);
        if emitted.is_empty() {
            return;
        }
        let batch = WriteBatch {
            findings: emitted.into_iter().map(|e| e.finding).collect(),
            ..WriteBatch::default()
        };
        if let Err(e) = self.store.commit(batch) {
            tracing::error!("storing cloud-log findings: {e}");
        }
    }
}

impl Drop for FoundationalSink {
    fn drop(&mut self) {
        if let Err(e) = crate::foundational::scan::save_state(&self.engine, &self.state) {
            tracing::error!(
                "saving the foundational detectors' state to {}: {e}",
                self.state.display()
            );
        }
    }
}
