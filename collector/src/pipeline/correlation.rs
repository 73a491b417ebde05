//! Correlation as a stage of `serve`: one [`Correlator`] between the engines and the store, fed
//! by both paths.
//!
//! ```text
//! agent Hello ───────────────────────────────┐ (host map)
//! runtime thread: batch → engine ──findings──┤
//!                 └─ net_connect/accept, dns_query (moved, not cloned) ─┤
//! cloud thread:   record → foundational ─findings─┤                     ├─▶ Correlator ─▶ store
//!                 └─ CloudTrail record ───────────┘                     │   (+ its state)
//! ```
//!
//! **One lock, one order, exactly once.** The correlator sits behind a mutex. Neither path feeds
//! it as it reads: each holds its inputs until its own commit, then, holding the lock, feeds them
//! and commits the correlator's outputs and state in the same store transaction as its progress.
//! The runtime path does this per group of batches (indexed events first, then the engines'
//! findings) with the batch-log offset; the cloud path per group of objects
//! ([`super::cloud`]: record order, each record's findings then its CloudTrail call) with the
//! objects' checkpoints and the foundational detectors' state. A saved state therefore reflects
//! exactly the committed progress of both paths, and a restart neither loses nor repeats an input
//! in the correlator.
//!
//! **Arrival order between the paths.** Every window is in event time, but which path reaches
//! the lock first is not: the runtime stream is normally minutes ahead of the logs, yet after a
//! restart, an agent's spooled backlog or a replay the logs can come first. What is done about it:
//! * A flow or DNS-log finding on a host with an agent that finds no process waits (per host,
//!   at most 1000) until that host's runtime events pass its evidence window (query time + DNS
//!   slack, flow end + look-ahead); when the process arrives in time the finding is re-sent with
//!   it ([`crate::correlate::Change::LateAttributed`]).
//! * Twins link whichever side comes first; the first is the alert, the second is stored
//!   archived as its duplicate. Which one that is can depend on arrival order.
//! * Not handled: a CloudTrail call of stolen instance credentials processed before the agent
//!   event of the IMDS fetch gets no process (the finding says so); sequence episodes use the
//!   signals' event times, but a signal arriving after its group's window closed starts a new
//!   episode as it would live.
//!
//! **Persistence** (`detector_state` row [`STATE_NAME`]): see [`crate::correlate::state`]. The
//! runtime index's connections and queries are rebuilt at start by replaying the batch log from
//! `replayFrom`, the first batch with an indexed event inside the retention (30 min) of the newest.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::correlate::activity::{Activity, EventOrigin};
use crate::correlate::state::CorrelatorState;
use crate::correlate::{CorrelateConfig, Correlated, Correlator};
use crate::detect::event::RuntimeEvent;
use crate::event::cloudtrail::UserIdentity;
use crate::event::json::Text;
use crate::event::{CloudTrailRecord, Event, Record};
use crate::findings::Finding;
use crate::findings::time::EpochMillis;
use crate::ingest::store::{LogReader, decode_stored};
use crate::store::{ListQuery, Store, StoreError};

use super::convert;
use super::state::LOG_CHECKPOINT;

#[cfg(test)]
#[path = "correlation_tests.rs"]
mod tests;

/// `detector_state` name of the correlator's state.
pub const STATE_NAME: &str = "correlate";

/// The stage's settings.
#[derive(Debug, Clone)]
pub struct CorrelationConfig {
    pub correlate: CorrelateConfig,
    /// Instances without agents (TOML or JSON, see [`crate::correlate::hosts`]); read at start.
    pub hosts_file: Option<PathBuf>,
    /// The agent batch log (fetch events are read back from it, and the index replayed).
    pub log_path: PathBuf,
}

/// Indexed agent events of one group of batches, held until the group is committed.
#[derive(Default)]
pub struct RuntimeInput {
    events: Vec<(String, RuntimeEvent, EventOrigin)>,
    /// Batch offset and newest indexed event time per batch with indexed events.
    batches: Vec<(u64, EpochMillis)>,
}

impl RuntimeInput {
    /// Keeps `ev` (moved) if the correlator indexes its type.
    pub fn offer(&mut self, agent_id: &str, ev: RuntimeEvent, origin: EventOrigin) {
        if !Activity::wants(ev.kind) {
            return;
        }
        let t = ev.time_millis().unwrap_or(EpochMillis::MIN);
        match self.batches.last_mut() {
            Some((offset, newest)) if *offset == origin.offset => *newest = (*newest).max(t),
            _ => self.batches.push((origin.offset, t)),
        }
        self.events.push((agent_id.to_owned(), ev, origin));
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

struct Inner {
    correlator: Correlator,
    /// Batches with indexed events still inside the retention: `(offset, newest event time)`.
    floor: VecDeque<(u64, EpochMillis)>,
    /// Where the log was read up to (the replay floor when `floor` is empty).
    log_end: u64,
    saved_at: Instant,
    saved_replay_from: u64,
}

pub struct CorrelationStage {
    inner: Mutex<Inner>,
}

fn store_io(e: StoreError) -> io::Error {
    io::Error::other(e.to_string())
}

/// The state is written at least this often while the replay floor moves (a correlator that does
/// not change otherwise would keep an old floor and replay more log than needed at restart).
const FLOOR_SAVE_EVERY: Duration = Duration::from_secs(60);

impl CorrelationStage {
    /// Restores the saved state (or starts empty), adds the hosts file, reads the credential
    /// fetches back from the log and replays the log up to the pipeline's committed offset.
    pub fn open(config: CorrelationConfig, store: &Store) -> io::Result<Arc<CorrelationStage>> {
        let saved = store
            .read(|r| r.detector_state(STATE_NAME))
            .map_err(store_io)?;
        let log_offset = store
            .read(|r| r.checkpoint(LOG_CHECKPOINT))
            .map_err(store_io)?
            .and_then(|v| v.get("offset").and_then(Value::as_u64))
            .unwrap_or(0);
        let (mut correlator, replay_from, fetches) = match saved {
            Some(v) => {
                let replay_from = v.get("replayFrom").and_then(Value::as_u64).unwrap_or(0);
                let state: CorrelatorState =
                    serde_json::from_value(v.get("correlator").cloned().unwrap_or(Value::Null))
                        .map_err(|e| invalid(format!("stored correlator state: {e}")))?;
                let fetches = state.fetches.clone();
                let findings = all_findings(store)?;
                let c = Correlator::restore(config.correlate.clone(), state, findings)
                    .map_err(|e| invalid(format!("stored correlator state: {e}")))?;
                (c, replay_from.min(log_offset), fetches)
            }
            None => (
                Correlator::new(
                    config.correlate.clone(),
                    crate::correlate::hosts::HostMap::new(),
                ),
                log_offset,
                Vec::new(),
            ),
        };
        if let Some(path) = &config.hosts_file {
            let n = correlator.hosts_mut().load_file(path).map_err(invalid)?;
            tracing::info!("correlation: {n} instances from {}", path.display());
        }
        let mut floor = VecDeque::new();
        for (instance, origin) in &fetches {
            if let Some(ev) = read_event(&config.log_path, *origin, log_offset)? {
                let agent = correlator
                    .hosts()
                    .host(instance)
                    .and_then(|h| h.agent_id.clone());
                if let Some(agent) = agent {
                    correlator.on_agent_event_at(&agent, &ev, Some(*origin));
                }
            }
        }
        let replayed = replay(
            &config.log_path,
            replay_from,
            log_offset,
            &mut correlator,
            &mut floor,
        )?;
        correlator.clear_touched();
        correlator.take_changed();
        if replayed > 0 || !fetches.is_empty() {
            tracing::info!(
                "correlation: runtime index rebuilt from {replayed} agent events (log bytes \
                 {replay_from}..{log_offset}) and {} credential fetches",
                fetches.len()
            );
        }
        let mut inner = Inner {
            correlator,
            floor,
            log_end: log_offset,
            saved_at: Instant::now(),
            saved_replay_from: replay_from,
        };
        inner.trim_floor();
        Ok(Arc::new(CorrelationStage {
            inner: Mutex::new(inner),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("correlation stage lock")
    }

    /// An agent's Hello (called before the agent's batches are stored).
    pub fn hello(&self, agent_id: &str, host: &ward_proto::v1::HostIdentity, at: EpochMillis) {
        self.lock().correlator.on_hello(agent_id, host, at);
    }

    /// The runtime path's commit: feeds the group's indexed events and the engines' findings,
    /// then calls `commit` with every finding to store (latest version per id, in order) and the
    /// state to save, while holding the lock. `log_end` is the log offset after the group.
    pub fn commit_runtime(
        &self,
        input: RuntimeInput,
        findings: Vec<Finding>,
        log_end: u64,
        commit: impl FnOnce(&[Finding], Vec<(String, Value)>) -> io::Result<()>,
    ) -> io::Result<u64> {
        let mut inner = self.lock();
        let c = &mut inner.correlator;
        for (agent, ev, origin) in &input.events {
            c.on_agent_event_at(agent, ev, Some(*origin));
        }
        let mut out = c.flush_runtime();
        for f in findings {
            out.extend(c.on_finding(f));
        }
        inner.floor.extend(input.batches);
        inner.log_end = log_end;
        inner.trim_floor();
        let state = inner.state_to_save(false);
        let changed = latest(out);
        commit(&changed, state)?;
        Ok(changed.len() as u64)
    }

    /// The runtime path while idle: saves the state if it changed (cloud records that raised
    /// nothing still move sequences and host data).
    pub fn save_if_changed(
        &self,
        commit: impl FnOnce(Vec<(String, Value)>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut inner = self.lock();
        let state = inner.state_to_save(false);
        if state.is_empty() {
            return Ok(());
        }
        commit(state)
    }

    /// The cloud path's commit: feeds a group's findings and CloudTrail calls (in record order),
    /// then calls `commit` with the correlator's outputs (latest version per id) and state while
    /// holding the lock (the group's checkpoints and findings go in the same transaction).
    pub fn commit_cloud<R>(
        &self,
        input: CloudInput,
        commit: impl FnOnce(Vec<Finding>, Vec<(String, Value)>) -> R,
    ) -> R {
        let mut inner = self.lock();
        let c = &mut inner.correlator;
        let mut out = Vec::new();
        for (findings, call) in input.records {
            for f in findings {
                out.extend(c.on_finding(f));
            }
            // After the engine's findings: when the foundational credential detector and the
            // correlator both judge this call, they file the same finding id, and the version
            // naming the process is the one stored.
            if let Some(call) = &call {
                out.extend(c.on_cloudtrail(call));
            }
        }
        let state = inner.state_to_save(true);
        commit(latest(out), state)
    }
}

/// What a cloud-log group hands the correlator: per record, the foundational findings and, for
/// CloudTrail calls the correlator reads, an owned copy of the fields it uses.
#[derive(Default)]
pub struct CloudInput {
    records: Vec<(Vec<Finding>, Option<CloudTrailRecord<'static>>)>,
}

impl CloudInput {
    pub fn push(&mut self, event: &Event<'_>, emitted: Vec<crate::suppression::Emitted>) {
        let call = match event.record {
            Record::CloudTrail(r) if Correlator::reads_call(r) => Some(call_copy(r)),
            _ => None,
        };
        if emitted.is_empty() && call.is_none() {
            return;
        }
        let findings = emitted.into_iter().map(|e| e.finding).collect();
        self.records.push((findings, call));
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// The fields of a CloudTrail record the correlator reads (identity, time, call, address).
fn call_copy(r: &CloudTrailRecord<'_>) -> CloudTrailRecord<'static> {
    let text = |t: &Option<Text<'_>>| t.clone().map(Text::into_owned);
    let identity = r.user_identity.as_ref().map(|u| UserIdentity {
        identity_type: text(&u.identity_type),
        principal_id: text(&u.principal_id),
        arn: text(&u.arn),
        account_id: text(&u.account_id),
        access_key_id: text(&u.access_key_id),
        user_name: text(&u.user_name),
        ..UserIdentity::default()
    });
    CloudTrailRecord {
        user_identity: identity,
        event_time: text(&r.event_time),
        event_source: text(&r.event_source),
        event_name: text(&r.event_name),
        aws_region: text(&r.aws_region),
        source_ip_address: text(&r.source_ip_address),
        user_agent: text(&r.user_agent),
        error_code: text(&r.error_code),
        event_id: text(&r.event_id),
        ..CloudTrailRecord::default()
    }
}

impl Inner {
    /// Drops floor entries older than the index's retention behind the newest event.
    fn trim_floor(&mut self) {
        let Some(newest) = self.correlator.activity().newest_overall() else {
            return;
        };
        let cutoff = newest - self.correlator.config().activity.retention_ms;
        while self.floor.front().is_some_and(|(_, t)| *t < cutoff) {
            self.floor.pop_front();
        }
    }

    fn replay_from(&self) -> u64 {
        self.floor.front().map_or(self.log_end, |(o, _)| *o)
    }

    /// The `detector_state` rows to write now: the state when it changed (or `force`), or when
    /// the replay floor moved and was last saved a while ago; nothing otherwise.
    fn state_to_save(&mut self, force: bool) -> Vec<(String, Value)> {
        let changed = self.correlator.take_changed();
        let replay_from = self.replay_from();
        let floor_due =
            replay_from != self.saved_replay_from && self.saved_at.elapsed() >= FLOOR_SAVE_EVERY;
        if !(changed || force || floor_due) {
            return Vec::new();
        }
        self.saved_at = Instant::now();
        self.saved_replay_from = replay_from;
        let state = self.correlator.state();
        vec![(
            STATE_NAME.to_owned(),
            json!({ "replayFrom": replay_from, "correlator": state }),
        )]
    }
}

/// The latest version of each finding, in the order each id first appeared.
fn latest(out: Vec<Correlated>) -> Vec<Finding> {
    let mut order: Vec<Finding> = Vec::with_capacity(out.len());
    let mut at: std::collections::HashMap<String, usize> = Default::default();
    for o in out {
        match at.get(&o.finding.id) {
            Some(&i) => order[i] = o.finding,
            None => {
                at.insert(o.finding.id.clone(), order.len());
                order.push(o.finding);
            }
        }
    }
    order
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn all_findings(store: &Store) -> io::Result<Vec<Finding>> {
    let mut findings = Vec::new();
    let mut query = ListQuery {
        max_results: 1000,
        ..ListQuery::default()
    };
    loop {
        let page = store.read(|r| r.list_findings(&query)).map_err(store_io)?;
        for raw in page.findings {
            findings.push(
                Finding::from_json_str(raw.get())
                    .map_err(|e| invalid(format!("stored finding: {e}")))?,
            );
        }
        match page.next_token {
            Some(t) => query.next_token = Some(t),
            None => return Ok(findings),
        }
    }
}

/// The event at `origin` (None if the batch no longer decodes there: logged, not fatal).
fn read_event(log: &Path, origin: EventOrigin, committed: u64) -> io::Result<Option<RuntimeEvent>> {
    let mut reader = LogReader::new(log, origin.offset);
    let Some((batch, _)) = reader.next_batch(committed)? else {
        return Ok(None);
    };
    let event = decode_stored(&batch)
        .ok()
        .and_then(|list| list.events.get(origin.index as usize).cloned())
        .and_then(|e| convert::runtime_event(&e).ok());
    if event.is_none() {
        tracing::warn!(
            "correlation: no agent event {} in the batch at byte {} of {}",
            origin.index,
            origin.offset,
            log.display()
        );
    }
    Ok(event)
}

/// Feeds the indexed events of the log from `from` to `to` to the correlator; returns how many.
fn replay(
    log: &Path,
    from: u64,
    to: u64,
    correlator: &mut Correlator,
    floor: &mut VecDeque<(u64, EpochMillis)>,
) -> io::Result<u64> {
    let mut reader = LogReader::new(log, from);
    let mut n = 0;
    loop {
        let offset = reader.offset();
        let Some((batch, _)) = reader.next_batch(to)? else {
            return Ok(n);
        };
        let Ok(list) = decode_stored(&batch) else {
            continue; // counted as malformed when the pipeline first read it
        };
        let mut input = RuntimeInput::default();
        for (i, wire) in list.events.iter().enumerate() {
            if let Ok(ev) = convert::runtime_event(wire) {
                input.offer(
                    &batch.agent_id,
                    ev,
                    EventOrigin {
                        offset,
                        index: i as u32,
                    },
                );
            }
        }
        for (agent, ev, origin) in &input.events {
            correlator.on_agent_event_at(agent, ev, Some(*origin));
            n += 1;
        }
        floor.extend(input.batches);
    }
}
