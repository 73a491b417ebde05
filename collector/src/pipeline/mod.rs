//! Detections inside `ward-collector serve`: the agent batches the ingest service stored become
//! findings.
//!
//! ```text
//! ingest.log ──tail──▶ decode batch ──▶ convert (wire → RuntimeEvent) ──▶ Engine per agent
//!                                                                          │
//!              findings store: log offset + findings, one transaction ◀───┘
//!              (its committed changes feed the outputs)
//! ```
//!
//! * The ingest service acknowledges a batch once it is in the log; the pipeline reads the log on
//!   its own thread, only up to the committed length ([`crate::ingest::store::Committed`]), woken
//!   by each commit. Acknowledgement never waits for detection.
//! * One [`Engine`] per agent: an engine's state (process tables, learning periods) belongs to one
//!   host, and its findings are filed under the host the agent's Hello named ([`hosts`]) and the
//!   authenticated agent id.
//! * Exactly once across restarts: the read position and the findings it produced are committed
//!   together ([`state`]); after a crash the pipeline resumes at the committed position with the
//!   committed findings restored into the engines, so no acknowledged event is skipped and no
//!   occurrence is counted twice. Detector-internal state other than findings (reverse-shell
//!   stdio tables, NewBinaryExecuted baselines) starts afresh.

pub mod cloud;
pub mod convert;
pub mod correlation;
pub mod hosts;
pub mod live;
pub mod metrics;
pub mod state;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::correlate::activity::EventOrigin;
use crate::detect::offline::Setup;
use crate::detect::{Emitted, Engine, HostIdentity};
use crate::findings::{Finding, Scope};
use crate::ingest::store::{Committed, LogReader, StoredBatch, decode_stored};
use correlation::{CorrelationStage, RuntimeInput};
use hosts::HostBook;
use state::PipelineState;

/// Batches processed between two state commits, at most (bounds the work a crash repeats and the
/// delay before findings go out under a backlog).
const GROUP: usize = 256;
/// Problems logged individually before they are only counted.
const LOGGED_PROBLEMS: u64 = 20;

pub struct PipelineConfig {
    /// How every agent's engine is built (rule, list and suppression files, account, Region).
    /// Each agent's engine gets its host, and the account/Region its Hello named, if any.
    pub setup: Setup,
    /// The batch log and its committed length.
    pub log_path: PathBuf,
    pub committed: Arc<Committed>,
    pub hosts: Arc<HostBook>,
    pub state: Box<dyn PipelineState>,
    /// Lists and suppression rules changed through the API, picked up between batch groups.
    pub live: Option<live::Follower>,
    /// The correlation stage every finding passes through before it is stored (none: findings
    /// are stored as the engines raise them).
    pub correlation: Option<Arc<CorrelationStage>>,
}

/// Counters, readable while the pipeline runs. Batches and events count once the findings they
/// produced are committed, so a reader that sees them also finds those findings in the store.
#[derive(Debug, Default)]
pub struct PipelineStats {
    pub batches: AtomicU64,
    pub events: AtomicU64,
    /// Events that could not be converted, and stored batches that could not be decoded.
    pub malformed: AtomicU64,
    pub finding_changes: AtomicU64,
    /// Offset in the batch log of the first batch not yet committed as processed.
    pub log_offset: AtomicU64,
}

pub struct PipelineHandle {
    pub stats: Arc<PipelineStats>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<io::Result<()>>,
}

impl PipelineHandle {
    /// Processes what is committed in the log by now, commits, and stops. Stop the ingest service
    /// first so the log no longer grows.
    pub fn stop(self) -> io::Result<()> {
        self.stop.store(true, Relaxed);
        self.thread
            .join()
            .map_err(|_| io::Error::other("detection pipeline panicked"))?
    }

    /// True once the pipeline thread has ended (it only ends on its own after an error).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Restores the state, then follows the log on a thread of its own. Check the setup (build it once)
/// before: an engine that cannot be built later falls back to the built-in rules.
pub fn start(cfg: PipelineConfig) -> io::Result<PipelineHandle> {
    let mut runner = Runner::new(cfg)?;
    let stats = runner.stats.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ward-pipeline".into())
        .spawn(move || {
            let r = runner.run(&stopping);
            if let Err(e) = &r {
                tracing::error!("detection pipeline stopped: {e}");
            }
            r
        })?;
    Ok(PipelineHandle {
        stats,
        stop,
        thread,
    })
}

struct Runner {
    setup: Setup,
    committed: Arc<Committed>,
    hosts: Arc<HostBook>,
    state: Box<dyn PipelineState>,
    correlation: Option<Arc<CorrelationStage>>,
    reader: LogReader,
    engines: HashMap<String, Engine>,
    /// Findings restored from the state, by agent id, until that agent's engine is built.
    restored: HashMap<String, Vec<Finding>>,
    stats: Arc<PipelineStats>,
    live: Option<live::Follower>,
    /// The lists and rules every engine uses since the last change (None: the setup's files).
    detections: Option<live::Detections>,
    /// Batches and events processed since the last commit (added to `stats` at the commit).
    uncommitted: (u64, u64),
}

impl Runner {
    fn new(mut cfg: PipelineConfig) -> io::Result<Runner> {
        let restored = cfg.state.load()?;
        let committed_len = cfg.committed.len();
        if restored.log_offset > committed_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the pipeline state is at byte {} of {} but the log has only {committed_len} bytes \
                     (was the log replaced without its state?)",
                    restored.log_offset,
                    cfg.log_path.display()
                ),
            ));
        }
        let mut by_agent: HashMap<String, Vec<Finding>> = HashMap::new();
        let count = restored.findings.len();
        for f in restored.findings {
            if let Some(agent) = f.service.ward_details().and_then(|w| w.agent_id) {
                by_agent.entry(agent).or_default().push(f);
            }
        }
        if count > 0 || restored.log_offset > 0 {
            tracing::info!(
                "detection pipeline resumes at byte {} of {} with {count} findings",
                restored.log_offset,
                cfg.log_path.display()
            );
        }
        let stats = Arc::new(PipelineStats::default());
        stats.log_offset.store(restored.log_offset, Relaxed);
        Ok(Runner {
            setup: cfg.setup,
            committed: cfg.committed,
            hosts: cfg.hosts,
            state: cfg.state,
            correlation: cfg.correlation,
            reader: LogReader::new(&cfg.log_path, restored.log_offset),
            engines: HashMap::new(),
            restored: by_agent,
            stats,
            live: cfg.live,
            detections: None,
            uncommitted: (0, 0),
        })
    }

    fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        loop {
            // Read before waiting: a stop request then drains everything committed before it.
            let stopping = stop.load(Relaxed);
            let len = self
                .committed
                .wait_beyond(self.reader.offset(), Duration::from_millis(100));
            self.follow_changes();
            let mut emitted = Vec::new();
            let mut input = RuntimeInput::default();
            let mut batches = 0;
            while batches < GROUP {
                let offset = self.reader.offset();
                let Some((batch, _)) = self.reader.next_batch(len)? else {
                    break;
                };
                self.batch(&batch, offset, &mut emitted, &mut input);
                batches += 1;
            }
            let offset = self.reader.offset();
            if batches > 0 {
                let findings = emitted.into_iter().map(|e| e.finding);
                let stored = match self.correlation.clone() {
                    Some(stage) => {
                        let state = &mut self.state;
                        stage.commit_runtime(input, findings.collect(), offset, |changed, ds| {
                            state.commit(offset, changed, ds)
                        })?
                    }
                    None => {
                        let mut changed: HashMap<String, Finding> = HashMap::new();
                        for f in findings {
                            changed.insert(f.id.clone(), f);
                        }
                        let changed: Vec<Finding> = changed.into_values().collect();
                        self.state.commit(offset, &changed, Vec::new())?;
                        changed.len() as u64
                    }
                };
                self.stats.log_offset.store(offset, Relaxed);
                let (batches, events) = std::mem::take(&mut self.uncommitted);
                self.stats.batches.fetch_add(batches, Relaxed);
                self.stats.events.fetch_add(events, Relaxed);
                self.stats.finding_changes.fetch_add(stored, Relaxed);
            } else if let Some(stage) = self.correlation.clone() {
                let state = &mut self.state;
                stage.save_if_changed(|ds| state.commit(offset, &[], ds))?;
            }
            if stopping && self.reader.offset() >= self.committed.len() {
                return Ok(());
            }
        }
    }

    /// Lists or rules changed through the API: every engine switches to them, once per change.
    fn follow_changes(&mut self) {
        let Some(d) = self.live.as_mut().and_then(live::Follower::changed) else {
            return;
        };
        for engine in self.engines.values_mut() {
            engine.replace_intel(d.intel.clone(), d.suppression.clone());
        }
        self.detections = Some(d);
    }

    fn batch(
        &mut self,
        b: &StoredBatch,
        offset: u64,
        emitted: &mut Vec<Emitted>,
        input: &mut RuntimeInput,
    ) {
        self.uncommitted.0 += 1;
        let list = match decode_stored(b) {
            Ok(list) => list,
            Err(e) => {
                self.problem(format_args!(
                    "agent {:?} batch {}: stored batch does not decode: {e}",
                    b.agent_id, b.sequence
                ));
                return;
            }
        };
        let engine = self.engine(&b.agent_id);
        let mut problems = Vec::new();
        for (i, wire) in list.events.iter().enumerate() {
            match convert::runtime_event(wire) {
                Ok(ev) => {
                    emitted.extend(engine.process(&ev));
                    let origin = EventOrigin {
                        offset,
                        index: i as u32,
                    };
                    input.offer(&b.agent_id, ev, origin);
                }
                Err(e) => problems.push((i, e)),
            }
        }
        self.uncommitted.1 += (list.events.len() - problems.len()) as u64;
        for (i, e) in problems {
            self.problem(format_args!(
                "agent {:?} batch {} event {i}: {e}",
                b.agent_id, b.sequence
            ));
        }
    }

    fn problem(&self, what: std::fmt::Arguments<'_>) {
        let n = self.stats.malformed.fetch_add(1, Relaxed) + 1;
        if n <= LOGGED_PROBLEMS {
            tracing::warn!("detection pipeline: {what}");
        } else if n == LOGGED_PROBLEMS + 1 {
            tracing::warn!("detection pipeline: further malformed events are only counted");
        }
    }

    fn engine(&mut self, agent_id: &str) -> &mut Engine {
        if !self.engines.contains_key(agent_id) {
            let mut setup = self.setup.clone();
            let host = self.hosts.get(agent_id).unwrap_or_default();
            let scope = &setup.config.scope;
            let account = if host.account_id.is_empty() {
                scope.account_id.clone()
            } else {
                host.account_id.clone()
            };
            let region = if host.region.is_empty() {
                scope.region.clone()
            } else {
                host.region.clone()
            };
            setup.config.scope = Scope::new(account, region, scope.detector_id.clone());
            setup.config.host = HostIdentity {
                // Without a cloud identity the agent id is the host's name in findings: unique per
                // host, unlike a shared placeholder.
                instance_id: if host.instance_id.is_empty() {
                    agent_id.to_string()
                } else {
                    host.instance_id
                },
                agent_id: Some(agent_id.to_string()),
                hostname: (!host.hostname.is_empty()).then_some(host.hostname),
            };
            // The files were valid at start; if one has since become unreadable, this agent still
            // gets the built-in detections rather than none.
            let fallback = Setup {
                config: setup.config.clone(),
                ..Setup::default()
            };
            let mut engine = setup.build().unwrap_or_else(|e| {
                tracing::error!(
                    "engine for agent {agent_id:?}: {e}; using the built-in rules only"
                );
                fallback.build().expect("the built-in rules load")
            });
            if let Some(d) = &self.detections {
                engine.replace_intel(d.intel.clone(), d.suppression.clone());
            }
            engine.restore(self.restored.remove(agent_id).unwrap_or_default());
            self.engines.insert(agent_id.to_string(), engine);
        }
        self.engines.get_mut(agent_id).expect("just inserted")
    }
}
