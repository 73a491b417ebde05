//! The single writer thread: every change to the database goes through it, so SQLite never sees
//! two writers and commits can be grouped.
//!
//! Group commit: the thread takes the first queued job, then everything else already queued (up to
//! [`super::StoreConfig::max_rows_per_commit`] rows, waiting at most `linger` for more), and commits
//! them in one transaction: one fsync for all. Each job runs inside its own savepoint, so a job
//! with bad input fails alone and the others still commit; a job is answered only after the
//! transaction that holds it is durable.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::Value;
use tokio::sync::{broadcast, oneshot};

use crate::findings::Finding;
use crate::findings::time::format_millis;
use crate::suppression::{RuleSet, SuppressionRule};

use super::batch::{
    ArchiveOutcome, ChangeKind, CommitReceipt, FindingChange, StoredEvent, WriteBatch,
};
use super::columns::FindingColumns;
use super::lists::{ListRecord, ListSpec, RejectedLine, kind_name, role_name};
use super::{StoreConfig, StoreError, StoreMetrics, now_millis};

pub type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub enum Job {
    Commit(Box<WriteBatch>, Reply<CommitReceipt>),
    Archive {
        ids: Vec<String>,
        archived: bool,
        reply: Reply<ArchiveOutcome>,
    },
    PutRule {
        rule: Box<SuppressionRule>,
        json: Value,
        reply: Reply<String>,
    },
    DeleteRule {
        name: String,
        reply: Reply<bool>,
    },
    /// `checked`: what [`ListSpec::check`] reported (done by the caller: it may read a file).
    PutList {
        spec: ListSpec,
        checked: (usize, Vec<RejectedLine>),
        reply: Reply<ListRecord>,
    },
    DeleteList {
        name: String,
        reply: Reply<bool>,
    },
}

impl Job {
    fn rows(&self) -> usize {
        match self {
            Job::Commit(batch, _) => batch.rows().max(1),
            Job::Archive { ids, .. } => ids.len().max(1),
            _ => 1,
        }
    }
}

/// A job's answer, held until its transaction commits.
enum Answer {
    Commit(Reply<CommitReceipt>, Result<CommitReceipt, StoreError>),
    Archive(Reply<ArchiveOutcome>, Result<ArchiveOutcome, StoreError>),
    Name(Reply<String>, Result<String, StoreError>),
    Deleted(Reply<bool>, Result<bool, StoreError>),
    List(Reply<ListRecord>, Result<ListRecord, StoreError>),
}

impl Answer {
    fn fail(self, error: &StoreError) -> Self {
        let e = error.clone();
        match self {
            Answer::Commit(r, Ok(_)) => Answer::Commit(r, Err(e)),
            Answer::Archive(r, Ok(_)) => Answer::Archive(r, Err(e)),
            Answer::Name(r, Ok(_)) => Answer::Name(r, Err(e)),
            Answer::Deleted(r, Ok(_)) => Answer::Deleted(r, Err(e)),
            Answer::List(r, Ok(_)) => Answer::List(r, Err(e)),
            failed => failed,
        }
    }

    fn send(self) {
        // A caller that stopped waiting is not an error.
        match self {
            Answer::Commit(r, v) => drop(r.send(v)),
            Answer::Archive(r, v) => drop(r.send(v)),
            Answer::Name(r, v) => drop(r.send(v)),
            Answer::Deleted(r, v) => drop(r.send(v)),
            Answer::List(r, v) => drop(r.send(v)),
        }
    }
}

pub struct Writer {
    conn: Connection,
    config: StoreConfig,
    rules: RuleSet,
    changes: broadcast::Sender<FindingChange>,
    metrics: Arc<StoreMetrics>,
    last_age_sweep: Instant,
    commits_since_optimize: u32,
}

/// Group commits between two `PRAGMA optimize` runs (planner statistics kept current as the
/// findings table grows, so a query picks the sort index over a low-selectivity filter index).
const OPTIMIZE_EVERY: u32 = 1000;

/// Refreshes the planner's statistics where they are stale; bounded work (`analysis_limit`).
fn optimize(conn: &Connection, all_tables: bool) {
    let sql = if all_tables {
        "PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;"
    } else {
        "PRAGMA analysis_limit = 1000; PRAGMA optimize;"
    };
    if let Err(error) = conn.execute_batch(sql) {
        tracing::warn!(%error, "store: PRAGMA optimize failed");
    }
}

/// Who archived a stored finding (`findings.archived_by`).
const BY_USER: &str = "user";
const RULE_PREFIX: &str = "rule:";

impl Writer {
    pub fn new(
        conn: Connection,
        config: StoreConfig,
        changes: broadcast::Sender<FindingChange>,
        metrics: Arc<StoreMetrics>,
    ) -> Result<Self, StoreError> {
        let rules = load_rules(&conn)?;
        optimize(&conn, true);
        Ok(Self {
            conn,
            config,
            rules,
            changes,
            metrics,
            last_age_sweep: Instant::now() - Duration::from_secs(3600),
            commits_since_optimize: 0,
        })
    }

    /// Runs until every sender is dropped.
    pub fn run(mut self, jobs: Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            let mut rows = first.rows();
            let mut group = vec![first];
            let deadline = Instant::now() + self.config.linger;
            while rows < self.config.max_rows_per_commit {
                let next = match deadline.checked_duration_since(Instant::now()) {
                    Some(wait) if !wait.is_zero() => jobs.recv_timeout(wait).map_err(|e| match e {
                        RecvTimeoutError::Timeout => TryRecvError::Empty,
                        RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
                    }),
                    _ => jobs.try_recv(),
                };
                match next {
                    Ok(job) => {
                        rows += job.rows();
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(group);
        }
    }

    fn commit_group(&mut self, group: Vec<Job>) {
        let started = Instant::now();
        let mut answers = Vec::with_capacity(group.len());
        let mut changes = Vec::new();
        let mut rules_touched = false;
        let outcome = (|| -> Result<(), StoreError> {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut events_added = false;
            for job in group {
                let mut job_changes = Vec::new();
                let answer = run_job(
                    &tx,
                    &mut self.rules,
                    job,
                    &mut job_changes,
                    &mut rules_touched,
                    &mut events_added,
                );
                changes.extend(job_changes);
                answers.push(answer);
            }
            if events_added {
                let sweep_age = self.last_age_sweep.elapsed() >= Duration::from_secs(1);
                if sweep_age {
                    self.last_age_sweep = Instant::now();
                }
                let expired = sweep_events(&tx, &self.config, sweep_age)?;
                self.metrics.events_expired.add(expired);
            }
            tx.commit()?;
            Ok(())
        })();
        match outcome {
            Ok(()) => {
                self.metrics.commits.inc();
                self.commits_since_optimize += 1;
                if self.commits_since_optimize >= OPTIMIZE_EVERY {
                    self.commits_since_optimize = 0;
                    optimize(&self.conn, false);
                }
                self.metrics
                    .commit_latency
                    .observe(started.elapsed().as_secs_f64());
                // Published before the commits are answered: a caller that saw its commit
                // return finds its changes already on the stream.
                for change in changes {
                    match change.kind {
                        ChangeKind::Created => self.metrics.findings_created.inc(),
                        ChangeKind::Updated => self.metrics.findings_updated.inc(),
                        _ => {}
                    }
                    // No subscriber is fine.
                    let _ = self.changes.send(change);
                }
                for answer in answers {
                    answer.send();
                }
            }
            Err(error) => {
                tracing::error!(%error, "store commit failed");
                self.metrics.commit_failures.inc();
                for answer in answers {
                    answer.fail(&error).send();
                }
                if rules_touched {
                    // The in-memory rules ran ahead of a transaction that did not commit.
                    match load_rules(&self.conn) {
                        Ok(rules) => self.rules = rules,
                        Err(e) => tracing::error!(error = %e, "reloading suppression rules"),
                    }
                }
            }
        }
    }
}

/// Event retention, in the transaction that added events: by count every time (a range delete on
/// the sequence), by age when `sweep_age` (at most once a second). Returns the events removed.
fn sweep_events(
    tx: &Transaction<'_>,
    config: &StoreConfig,
    sweep_age: bool,
) -> Result<u64, StoreError> {
    let removed = tx.execute(
        "DELETE FROM events WHERE seq <= (SELECT max(seq) FROM events) - ?1",
        [config.event_max_count as i64],
    )?;
    let mut aged = 0;
    if sweep_age {
        let cutoff = now_millis() - config.event_max_age.as_millis() as i64;
        aged = tx.execute("DELETE FROM events WHERE stored_at_ms < ?1", [cutoff])?;
    }
    Ok((removed + aged) as u64)
}

fn load_rules(conn: &Connection) -> Result<RuleSet, StoreError> {
    let mut stmt = conn.prepare("SELECT name, json FROM suppression_rules ORDER BY rank, name")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut rules = Vec::new();
    for row in rows {
        let (name, json) = row?;
        let value: Value = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("suppression rule {name:?}: {e}")))?;
        rules.push(
            SuppressionRule::from_json(&value)
                .map_err(|e| StoreError::Corrupt(format!("suppression rule {name:?}: {e}")))?,
        );
    }
    RuleSet::new(rules).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Runs one job inside its own savepoint; its changes are reported only if it succeeded.
fn run_job(
    tx: &Transaction<'_>,
    rules: &mut RuleSet,
    job: Job,
    changes: &mut Vec<FindingChange>,
    rules_touched: &mut bool,
    events_added: &mut bool,
) -> Answer {
    let savepoint = |tx: &Transaction<'_>| tx.execute_batch("SAVEPOINT job");
    let finish = |tx: &Transaction<'_>, ok: bool| {
        if ok {
            tx.execute_batch("RELEASE job")
        } else {
            tx.execute_batch("ROLLBACK TO job; RELEASE job")
        }
    };
    if let Err(e) = savepoint(tx) {
        return fail_job(job, StoreError::from(e));
    }
    let mut local = Vec::new();
    let answer = match job {
        Job::Commit(batch, reply) => {
            let result = apply_batch(tx, rules, &batch, &mut local);
            if result.as_ref().is_ok_and(|r| r.events_stored > 0) {
                *events_added = true;
            }
            Answer::Commit(reply, result)
        }
        Job::Archive {
            ids,
            archived,
            reply,
        } => Answer::Archive(reply, set_archived(tx, &ids, archived, &mut local)),
        Job::PutRule { rule, json, reply } => {
            let result = put_rule(tx, rules, *rule, &json);
            *rules_touched |= result.is_ok();
            Answer::Name(reply, result)
        }
        Job::DeleteRule { name, reply } => {
            let result = delete_rule(tx, rules, &name);
            *rules_touched |= result.is_ok();
            Answer::Deleted(reply, result)
        }
        Job::PutList {
            spec,
            checked,
            reply,
        } => Answer::List(reply, put_list(tx, &spec, checked)),
        Job::DeleteList { name, reply } => Answer::Deleted(
            reply,
            tx.execute("DELETE FROM lists WHERE name = ?1", [&name])
                .map(|n| n > 0)
                .map_err(StoreError::from),
        ),
    };
    let ok = answer.is_ok();
    match finish(tx, ok) {
        Ok(()) if ok => {
            changes.extend(local);
            answer
        }
        Ok(()) => answer,
        Err(e) => answer.fail(&StoreError::from(e)),
    }
}

impl Answer {
    fn is_ok(&self) -> bool {
        match self {
            Answer::Commit(_, r) => r.is_ok(),
            Answer::Archive(_, r) => r.is_ok(),
            Answer::Name(_, r) => r.is_ok(),
            Answer::Deleted(_, r) => r.is_ok(),
            Answer::List(_, r) => r.is_ok(),
        }
    }
}

/// Answers `job` with `error` (its savepoint could not even start).
fn fail_job(job: Job, error: StoreError) -> Answer {
    match job {
        Job::Commit(_, r) => Answer::Commit(r, Err(error)),
        Job::Archive { reply, .. } => Answer::Archive(reply, Err(error)),
        Job::PutRule { reply, .. } => Answer::Name(reply, Err(error)),
        Job::DeleteRule { reply, .. } | Job::DeleteList { reply, .. } => {
            Answer::Deleted(reply, Err(error))
        }
        Job::PutList { reply, .. } => Answer::List(reply, Err(error)),
    }
}

fn apply_batch(
    tx: &Transaction<'_>,
    rules: &RuleSet,
    batch: &WriteBatch,
    changes: &mut Vec<FindingChange>,
) -> Result<CommitReceipt, StoreError> {
    let mut receipt = CommitReceipt::default();
    let now = now_millis();
    for (i, event) in batch.events.iter().enumerate() {
        receipt.events_stored += insert_event(tx, event, now)
            .map_err(|e| e.context(format!("event #{i} ({:?})", event.id)))?;
    }
    for (i, finding) in batch.findings.iter().enumerate() {
        let change = upsert_finding(tx, rules, finding.clone())
            .map_err(|e| e.context(format!("finding #{i} ({:?})", finding.id)))?;
        match change.kind {
            ChangeKind::Created => receipt.findings_created += 1,
            _ => receipt.findings_updated += 1,
        }
        if change.suppressed_by.is_some() {
            receipt.findings_suppressed += 1;
        }
        changes.push(change);
    }
    let mut link = tx.prepare_cached(
        "INSERT OR IGNORE INTO finding_events (finding_id, event_id) VALUES (?1, ?2)",
    )?;
    for (finding_id, event_id) in &batch.finding_events {
        link.execute([finding_id, event_id])?;
    }
    let mut checkpoint = tx.prepare_cached(
        "INSERT INTO checkpoints (name, value, updated_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms",
    )?;
    for (name, value) in &batch.checkpoints {
        checkpoint.execute(params![name, value.to_string(), now])?;
    }
    let mut state = tx.prepare_cached(
        "INSERT INTO detector_state (name, value, updated_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms",
    )?;
    for (name, value) in &batch.detector_state {
        state.execute(params![name, value.to_string(), now])?;
    }
    Ok(receipt)
}

fn insert_event(tx: &Transaction<'_>, event: &StoredEvent, now: i64) -> Result<usize, StoreError> {
    if event.id.is_empty() {
        return Err(StoreError::BadInput("event without an id".into()));
    }
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO events (event_id, time_ms, stored_at_ms, source, host, pid, process_start, json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    Ok(stmt.execute(params![
        event.id,
        event.time_ms,
        now,
        event.source,
        event.host,
        event.pid,
        event.process_start_time,
        event.event.to_string(),
    ])?)
}

struct Existing {
    seq: i64,
    version: i64,
    archived_by: Option<String>,
}

/// The stored finding's `createdAt` (kept when an update comes without one).
fn stored_created_at(tx: &Transaction<'_>, seq: i64) -> Result<String, StoreError> {
    let json: String = tx
        .prepare_cached("SELECT json FROM findings WHERE seq = ?1")?
        .query_row([seq], |r| r.get(0))?;
    Ok(serde_json::from_str::<Value>(&json)
        .ok()
        .and_then(|v| v.get("createdAt")?.as_str().map(str::to_owned))
        .unwrap_or_default())
}

/// Moves the current version of a finding into its history, before it is overwritten. (The
/// current version itself lives only in `findings`: a new finding writes its JSON once.)
fn supersede(tx: &Transaction<'_>, seq: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO finding_history (id, version, updated_at_ms, count, archived, json)
         SELECT id, version, updated_at_ms, count, archived, json FROM findings WHERE seq = ?1",
    )?
    .execute([seq])?;
    Ok(())
}

fn upsert_finding(
    tx: &Transaction<'_>,
    rules: &RuleSet,
    mut finding: Finding,
) -> Result<FindingChange, StoreError> {
    if finding.id.is_empty() {
        return Err(StoreError::BadInput("finding without an id".into()));
    }
    if finding.finding_type_name.is_empty() {
        return Err(StoreError::BadInput("finding without a type".into()));
    }
    let existing = tx
        .prepare_cached("SELECT seq, version, archived_by FROM findings WHERE id = ?1")?
        .query_row([&finding.id], |r| {
            Ok(Existing {
                seq: r.get(0)?,
                version: r.get(1)?,
                archived_by: r.get(2)?,
            })
        })
        .optional()?;
    if let Some(old) = &existing
        && finding.created_at.is_empty()
    {
        finding.created_at = stored_created_at(tx, old.seq)?;
    }
    // Suppression first; otherwise GuardDuty's rule: a user's archive is lifted by a new
    // occurrence, a rule's archive is not.
    let suppressed_by = rules.suppressing_rule(&finding).map(|r| r.name.clone());
    let archived_by = match (&suppressed_by, &existing) {
        (Some(rule), _) => Some(format!("{RULE_PREFIX}{rule}")),
        (None, Some(old)) if old.archived_by.as_deref() == Some(BY_USER) => None,
        (None, Some(old)) if old.archived_by.is_some() => old.archived_by.clone(),
        (None, _) if finding.service.archived => Some(BY_USER.to_owned()),
        (None, _) => None,
    };
    finding.service.archived = archived_by.is_some();
    let json = serde_json::to_string(&finding).map_err(|e| StoreError::BadInput(e.to_string()))?;
    let c = FindingColumns::of(&finding);
    match &existing {
        None => {
            tx.prepare_cached(
                "INSERT INTO findings (id, type, severity, account_id, region, resource_type,
                     instance_id, resource_key, archived, created_at_ms, updated_at_ms, count,
                     version, json, archived_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1, ?13, ?14)",
            )?
            .execute(params![
                c.id,
                c.finding_type,
                c.severity,
                c.account_id,
                c.region,
                c.resource_type,
                c.instance_id,
                c.resource_key,
                c.archived,
                c.created_at_ms,
                c.updated_at_ms,
                c.count,
                json,
                archived_by,
            ])?;
        }
        Some(old) => {
            supersede(tx, old.seq)?;
            tx.prepare_cached(
                "UPDATE findings SET type = ?2, severity = ?3, account_id = ?4, region = ?5,
                     resource_type = ?6, instance_id = ?7, resource_key = ?8, archived = ?9,
                     created_at_ms = ?10, updated_at_ms = ?11, count = ?12, version = ?13,
                     json = ?14, archived_by = ?15
                 WHERE seq = ?1",
            )?
            .execute(params![
                old.seq,
                c.finding_type,
                c.severity,
                c.account_id,
                c.region,
                c.resource_type,
                c.instance_id,
                c.resource_key,
                c.archived,
                c.created_at_ms,
                c.updated_at_ms,
                c.count,
                old.version + 1,
                json,
                archived_by,
            ])?;
        }
    }
    // The events the finding's JSON names (`ward.eventIds`) are found from the JSON when it is
    // read (`Reader::finding_events`); only links beyond those go to `finding_events`.
    Ok(FindingChange {
        kind: if existing.is_some() {
            ChangeKind::Updated
        } else {
            ChangeKind::Created
        },
        finding: Arc::new(finding),
        suppressed_by,
    })
}

fn set_archived(
    tx: &Transaction<'_>,
    ids: &[String],
    archived: bool,
    changes: &mut Vec<FindingChange>,
) -> Result<ArchiveOutcome, StoreError> {
    let mut outcome = ArchiveOutcome::default();
    for id in ids {
        let row = tx
            .prepare_cached("SELECT seq, version, archived, json FROM findings WHERE id = ?1")?
            .query_row([id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .optional()?;
        let Some((seq, version, was, json)) = row else {
            outcome.unknown.push(id.clone());
            continue;
        };
        if was == archived {
            outcome.unchanged.push(id.clone());
            continue;
        }
        let mut finding = Finding::from_json_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("stored finding {id:?}: {e}")))?;
        finding.service.archived = archived;
        let json =
            serde_json::to_string(&finding).map_err(|e| StoreError::BadInput(e.to_string()))?;
        supersede(tx, seq)?;
        tx.prepare_cached(
            "UPDATE findings SET archived = ?2, archived_by = ?3, version = ?4, json = ?5 WHERE seq = ?1",
        )?
        .execute(params![
            seq,
            archived,
            archived.then_some(BY_USER),
            version + 1,
            json
        ])?;
        outcome.changed.push(id.clone());
        changes.push(FindingChange {
            kind: if archived {
                ChangeKind::Archived
            } else {
                ChangeKind::Unarchived
            },
            finding: Arc::new(finding),
            suppressed_by: None,
        });
    }
    Ok(outcome)
}

fn put_rule(
    tx: &Transaction<'_>,
    rules: &mut RuleSet,
    rule: SuppressionRule,
    json: &Value,
) -> Result<String, StoreError> {
    let mut all: Vec<SuppressionRule> = rules
        .rules()
        .iter()
        .filter(|r| r.name != rule.name)
        .cloned()
        .collect();
    all.push(rule.clone());
    let next = RuleSet::new(all).map_err(|e| StoreError::BadInput(e.to_string()))?;
    tx.execute(
        "INSERT INTO suppression_rules (name, rank, json) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET rank = excluded.rank, json = excluded.json",
        params![rule.name, rule.rank, json.to_string()],
    )?;
    *rules = next;
    Ok(rule.name)
}

fn delete_rule(tx: &Transaction<'_>, rules: &mut RuleSet, name: &str) -> Result<bool, StoreError> {
    let deleted = tx.execute("DELETE FROM suppression_rules WHERE name = ?1", [name])? > 0;
    if deleted {
        let rest = rules
            .rules()
            .iter()
            .filter(|r| r.name != name)
            .cloned()
            .collect();
        *rules = RuleSet::new(rest).map_err(|e| StoreError::BadInput(e.to_string()))?;
    }
    Ok(deleted)
}

fn put_list(
    tx: &Transaction<'_>,
    spec: &ListSpec,
    (entries, rejected): (usize, Vec<RejectedLine>),
) -> Result<ListRecord, StoreError> {
    let now = now_millis();
    tx.execute(
        "INSERT OR REPLACE INTO lists (name, role, kind, format, location, content, entries, rejected, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            spec.name,
            role_name(spec.role),
            kind_name(spec.kind),
            spec.format.name(),
            spec.location,
            spec.content,
            entries as i64,
            serde_json::to_string(&rejected).expect("plain data serialises"),
            now
        ],
    )?;
    Ok(ListRecord {
        name: spec.name.clone(),
        role: role_name(spec.role),
        kind: kind_name(spec.kind),
        format: spec.format.name(),
        location: spec.location.clone(),
        entries,
        rejected_lines: rejected,
        updated_at: format_millis(now),
    })
}
