//! The database schema and its ordered migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Opening a file runs the missing ones,
//! each in its own transaction, so a crash mid-migration leaves the file at the previous version. A
//! file from a newer Ward (a version above [`CURRENT_VERSION`]) is refused rather than guessed at.

use rusqlite::Connection;

use super::StoreError;

/// Migration `i` (0-based) takes the schema from version `i` to `i + 1`. Append only: never edit a
/// migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // v1: findings with their history, checkpoints, detector state, suppression rules, lists.
    r#"
    CREATE TABLE findings (
        id TEXT NOT NULL PRIMARY KEY,
        type TEXT NOT NULL,
        severity REAL NOT NULL,
        account_id TEXT,
        region TEXT,
        resource_type TEXT,
        instance_id TEXT,
        -- The affected resource as one string (instance id, access key, cluster...), for grouping.
        resource_key TEXT,
        archived INTEGER NOT NULL,
        -- Epoch ms as GuardDuty filters compare them; MISSING_MILLIS when absent or unparseable.
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        count INTEGER NOT NULL,
        version INTEGER NOT NULL,
        json TEXT NOT NULL
    );
    CREATE INDEX findings_updated ON findings(updated_at_ms, id);
    CREATE INDEX findings_created ON findings(created_at_ms, id);
    CREATE INDEX findings_severity ON findings(severity, id);
    CREATE INDEX findings_type ON findings(type, id);
    CREATE INDEX findings_count ON findings(count, id);
    CREATE INDEX findings_instance ON findings(instance_id) WHERE instance_id IS NOT NULL;
    CREATE INDEX findings_archived_updated ON findings(archived, updated_at_ms, id);
    CREATE TABLE finding_history (
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        count INTEGER NOT NULL,
        archived INTEGER NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (id, version)
    ) WITHOUT ROWID;
    CREATE TABLE checkpoints (
        name TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE detector_state (
        name TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE suppression_rules (
        name TEXT NOT NULL PRIMARY KEY,
        rank INTEGER NOT NULL,
        json TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE lists (
        name TEXT NOT NULL PRIMARY KEY,
        role TEXT NOT NULL,
        kind TEXT NOT NULL,
        format TEXT NOT NULL,
        location TEXT,
        content TEXT,
        entries INTEGER NOT NULL,
        rejected TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // v2: the bounded window of raw events and which findings reference them; who archived a
    // finding (a user's archive is lifted by the next occurrence, a suppression rule's is not).
    r#"
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        time_ms INTEGER NOT NULL,
        stored_at_ms INTEGER NOT NULL,
        source TEXT NOT NULL,
        host TEXT,
        pid INTEGER,
        process_start TEXT,
        json TEXT NOT NULL
    );
    CREATE INDEX events_stored_at ON events(stored_at_ms);
    CREATE INDEX events_process ON events(host, pid, process_start) WHERE pid IS NOT NULL;
    CREATE TABLE finding_events (
        finding_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        PRIMARY KEY (finding_id, event_id)
    ) WITHOUT ROWID;
    ALTER TABLE findings ADD COLUMN archived_by TEXT;
    UPDATE findings SET archived_by = 'user' WHERE archived = 1;
    "#,
    // v3: write cost and list latency at 1M findings (`cargo xtask bench store`).
    // * `seq INTEGER PRIMARY KEY` (storage order, kept by VACUUM) is every index's tiebreak and
    //   the paging key after the sort value: a new finding lands at the end of each run of equal
    //   values instead of at a random place (ids are hashes), so an index on a few values
    //   (severity, type, count, archived) costs a page or two per commit, not one per finding.
    // * Composite indexes for "filter = value, newest first" (type, instance, archived), so those
    //   lists read 50 index entries instead of sorting every match.
    // * History keeps superseded versions only (the current one is the findings row), and the
    //   event links a finding's JSON already names (`ward.eventIds`) are no longer copied into
    //   `finding_events`: each was a second random-order write of every finding.
    r#"
    CREATE TABLE findings_v3 (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        type TEXT NOT NULL,
        severity REAL NOT NULL,
        account_id TEXT,
        region TEXT,
        resource_type TEXT,
        instance_id TEXT,
        resource_key TEXT,
        archived INTEGER NOT NULL,
        archived_by TEXT,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        count INTEGER NOT NULL,
        version INTEGER NOT NULL,
        json TEXT NOT NULL
    );
    INSERT INTO findings_v3 (id, type, severity, account_id, region, resource_type, instance_id,
            resource_key, archived, archived_by, created_at_ms, updated_at_ms, count, version, json)
        SELECT id, type, severity, account_id, region, resource_type, instance_id, resource_key,
            archived, archived_by, created_at_ms, updated_at_ms, count, version, json
        FROM findings ORDER BY updated_at_ms, id;
    DROP TABLE findings;
    ALTER TABLE findings_v3 RENAME TO findings;
    CREATE UNIQUE INDEX findings_id ON findings(id);
    CREATE INDEX findings_updated ON findings(updated_at_ms);
    CREATE INDEX findings_created ON findings(created_at_ms);
    CREATE INDEX findings_severity ON findings(severity);
    CREATE INDEX findings_type ON findings(type);
    CREATE INDEX findings_count ON findings(count);
    CREATE INDEX findings_type_updated ON findings(type, updated_at_ms);
    CREATE INDEX findings_instance_updated ON findings(instance_id, updated_at_ms)
        WHERE instance_id IS NOT NULL;
    CREATE INDEX findings_archived_updated ON findings(archived, updated_at_ms);
    DELETE FROM finding_history
        WHERE (id, version) IN (SELECT id, version FROM findings);
    "#,
];

/// The schema version this build writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

/// Epoch-ms columns hold this when the finding has no (parseable) time: it sorts first and is
/// excluded from time filters.
pub const MISSING_MILLIS: i64 = i64::MIN;

pub fn version(conn: &Connection) -> Result<u32, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get::<_, u32>(0))?)
}

/// Applies the missing migrations up to `target` (normally [`CURRENT_VERSION`]).
pub fn migrate(conn: &mut Connection, target: u32) -> Result<u32, StoreError> {
    let from = version(conn)?;
    if from > CURRENT_VERSION {
        return Err(StoreError::BadInput(format!(
            "database schema version {from} is newer than this build's {CURRENT_VERSION}: \
             open it with a newer ward-collector"
        )));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target as usize)
        .skip(from as usize)
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::BadInput(format!("migration to schema v{}: {e}", i + 1)))?;
        tx.pragma_update(None, "user_version", (i + 1) as u32)?;
        tx.commit()?;
    }
    version(conn)
}
