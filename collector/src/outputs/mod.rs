//! Alert outputs: findings leave Ward as JSON lines (stdout, file), webhook POSTs and syslog
//! messages, optionally wrapped in the EventBridge envelope GuardDuty consumers already parse.
//!
//! The detection path hands every finding change to [`Outputs::publish`], which never blocks: each
//! output has a bounded queue and its own thread. A worker thread applies the export rules and then
//! calls its [`Output`]:
//! * only active findings go out: a change whose finding is archived is not sent, and it cancels
//!   an update still waiting for its window;
//! * the first state of a finding goes out at once;
//! * later states of the same finding are rate-limited like GuardDuty's `findingPublishingFrequency`
//!   ([`throttle`]): at most one per update interval per finding, and when the window opens the
//!   latest state is sent, not every intermediate one;
//! * a failed send is retried with exponential backoff and jitter; when the attempts run out (or
//!   the target refuses the finding outright) it is written to the dead-letter file with the error
//!   ([`dead_letter`]), so nothing is silently lost.
//!
//! Counters per output (sent, retried, dead-lettered, dropped because the queue was full, updates
//! coalesced, archived skipped) are in [`OutputStats`].

pub mod config;
pub mod dead_letter;
pub mod format;
pub mod jsonl;
pub mod stats;
pub mod syslog;
pub mod throttle;
pub mod webhook;
mod worker;

use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::findings::{Finding, Outcome};

pub use config::{OutputArgs, OutputTarget, start};
pub use dead_letter::DeadLetter;
pub use format::BodyFormat;
pub use stats::{OutputStats, StatsSnapshot};
pub use worker::RetryPolicy;

/// Every output's counters by name, readable from anywhere.
pub struct OutputMetrics(Vec<(String, Arc<OutputStats>)>);

impl OutputMetrics {
    /// Appends the counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let snapshots: Vec<(String, StatsSnapshot)> = self
            .0
            .iter()
            .map(|(name, stats)| (name.clone(), stats.snapshot()))
            .collect();
        stats::render(out, &snapshots);
    }
}

/// Whether the detection path created the finding or updated an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
}

impl From<Outcome> for ChangeKind {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Created => Self::Created,
            Outcome::Updated { .. } => Self::Updated,
        }
    }
}

/// One finding state to publish. The finding is shared between the outputs, not copied per output.
#[derive(Debug, Clone)]
pub struct FindingChange {
    pub kind: ChangeKind,
    pub finding: Arc<Finding>,
}

impl FindingChange {
    pub fn new(kind: ChangeKind, finding: Finding) -> Self {
        Self {
            kind,
            finding: Arc::new(finding),
        }
    }
}

/// Why one send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub message: String,
    /// A momentary failure (connection refused or dropped, 5xx, 429, timeout) worth another try;
    /// false when trying again cannot help (a 4xx refusal of this very finding).
    pub retryable: bool,
}

impl SendError {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One destination. Implementations only send; queueing, rate limits, retries and dead letters are
/// the worker's, the same for every output.
pub trait Output: Send {
    /// Sends one finding state. Called again with the same finding after a retryable error.
    fn send(&mut self, finding: &Finding) -> Result<(), SendError>;

    /// The queue is momentarily empty: make what was sent durable (the file output fsyncs here, once
    /// per burst rather than once per line).
    fn flush(&mut self) -> Result<(), SendError> {
        Ok(())
    }
}

/// Settings every worker shares.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Changes waiting per output; beyond this, changes are dropped and counted.
    pub queue_capacity: usize,
    /// At most one update of a finding per this interval per output (0: every update goes out).
    pub update_interval: Duration,
    pub retry: RetryPolicy,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            update_interval: config::DEFAULT_UPDATE_INTERVAL,
            retry: RetryPolicy::default(),
        }
    }
}

struct Running {
    name: String,
    sender: SyncSender<FindingChange>,
    stats: Arc<OutputStats>,
    thread: JoinHandle<()>,
}

/// The running outputs. `publish` takes `&self` and never blocks, so one `Arc<Outputs>` can be
/// shared by every detection task, async or not.
pub struct Outputs {
    running: Vec<Running>,
    stop: Arc<worker::StopSignal>,
}

impl Outputs {
    /// Starts one worker thread per output. `outputs` pairs a display name (URL credentials already
    /// removed) with the output.
    pub fn spawn(
        outputs: Vec<(String, Box<dyn Output>)>,
        settings: WorkerSettings,
        dead_letter: Arc<DeadLetter>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(worker::StopSignal::default());
        let mut running = Vec::with_capacity(outputs.len());
        for (name, output) in outputs {
            let (sender, receiver) = std::sync::mpsc::sync_channel(settings.queue_capacity.max(1));
            let stats = Arc::new(OutputStats::default());
            let worker = worker::Worker {
                name: name.clone(),
                output,
                receiver,
                stats: stats.clone(),
                throttle: throttle::Throttle::new(settings.update_interval),
                retry: settings.retry.clone(),
                dead_letter: dead_letter.clone(),
                stop: stop.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("ward-output-{}", running.len()))
                .spawn(move || worker.run())?;
            running.push(Running {
                name,
                sender,
                stats,
                thread,
            });
        }
        Ok(Self { running, stop })
    }

    /// Hands a change to every output without waiting: a full queue drops it for that output and
    /// counts it in `dropped`.
    pub fn publish(&self, change: FindingChange) {
        for r in &self.running {
            // Counted before sending: the worker may take it off the queue at once.
            r.stats.add_queued();
            match r.sender.try_send(change.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    r.stats.take_queued();
                    let dropped = r.stats.add_dropped();
                    // Log the first drop and then every 1000th, not one line per finding.
                    if dropped % 1000 == 1 {
                        tracing::warn!(output = %r.name, dropped, "output queue full: finding dropped");
                    }
                }
                Err(TrySendError::Disconnected(_)) => {
                    r.stats.take_queued();
                    r.stats.add_dropped();
                }
            }
        }
    }

    /// Convenience for the detection engine's output.
    pub fn publish_finding(&self, outcome: Outcome, finding: &Finding) {
        self.publish(FindingChange::new(outcome.into(), finding.clone()));
    }

    /// Counters of every output, by name.
    pub fn stats(&self) -> Vec<(String, StatsSnapshot)> {
        self.running
            .iter()
            .map(|r| (r.name.clone(), r.stats.snapshot()))
            .collect()
    }

    /// The counters in Prometheus text format (`ward_output_*{output="..."}`).
    pub fn prometheus_text(&self) -> String {
        stats::prometheus_text(&self.stats())
    }

    /// A handle to the counters that outlives moving the outputs to another thread (for
    /// `/metrics`).
    pub fn metrics(&self) -> OutputMetrics {
        OutputMetrics(
            self.running
                .iter()
                .map(|r| (r.name.clone(), r.stats.clone()))
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Stops accepting changes and lets every worker finish: queued changes and updates still
    /// waiting for their window are sent now. A send still failing after `grace` goes to the dead
    /// letter file instead of being retried further. Returns the final counters.
    pub fn shutdown(self, grace: Duration) -> Vec<(String, StatsSnapshot)> {
        let mut finished = Vec::with_capacity(self.running.len());
        let mut threads = Vec::with_capacity(self.running.len());
        for r in self.running {
            drop(r.sender);
            threads.push(r.thread);
            finished.push((r.name, r.stats));
        }
        let stop = self.stop.clone();
        let timer = std::thread::spawn(move || stop.raise_after(grace));
        for t in threads {
            let _ = t.join();
        }
        // Wakes the timer so it does not hold shutdown for the rest of the grace period.
        self.stop.raise();
        let _ = timer.join();
        finished
            .into_iter()
            .map(|(name, stats)| (name, stats.snapshot()))
            .collect()
    }
}
