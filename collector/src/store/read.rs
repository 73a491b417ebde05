//! Reads on a connection of their own (WAL: readers never wait for the writer).

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::findings::Finding;
use crate::findings::time::format_millis;

use super::StoreError;
use super::lists::{ListRecord, RejectedLine};
use super::query::{self, ListQuery, Page};

pub struct Reader {
    pub(super) conn: Connection,
}

/// One version of a finding.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub version: i64,
    pub updated_at: Option<String>,
    pub count: i64,
    pub archived: bool,
    pub finding: Box<RawValue>,
}

/// A stored list's location or inline content (one of them is set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOrigin {
    pub location: Option<String>,
    pub content: Option<String>,
}

/// A stored event as the API returns it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    pub id: String,
    pub time: String,
    pub source: String,
    pub host: Option<String>,
    pub pid: Option<i64>,
    pub process_start_time: Option<String>,
    pub event: Box<RawValue>,
}

/// One process of a finding's process tree.
#[derive(Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProcessNode {
    pub pid: Option<i64>,
    pub name: Option<String>,
    pub executable_path: Option<String>,
    pub executable_sha256: Option<String>,
    pub command_line: Vec<String>,
    pub user: Option<String>,
    pub start_time: Option<String>,
    pub uuid: Option<String>,
    pub parent_uuid: Option<String>,
    /// Stored events of this process (same host, pid and start time).
    pub event_ids: Vec<String>,
}

/// A finding with everything the detail view shows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingDetail {
    pub finding: Box<RawValue>,
    pub history: Vec<HistoryEntry>,
    pub events: Vec<EventRecord>,
    pub process_tree: Vec<ProcessNode>,
}

/// A suppression rule as stored (the `CreateFilter` JSON it was created with).
#[derive(Debug, Serialize)]
pub struct RuleRecord {
    #[serde(flatten)]
    pub json: Value,
}

fn raw(text: String, what: &str) -> Result<Box<RawValue>, StoreError> {
    RawValue::from_string(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn time_text(ms: i64) -> Option<String> {
    (ms != super::schema::MISSING_MILLIS).then(|| format_millis(ms))
}

impl Reader {
    pub fn list_findings(&self, query: &ListQuery) -> Result<Page, StoreError> {
        query::list(&self.conn, query)
    }

    /// The index a list walks and SQLite's plan for it.
    pub fn explain_list(&self, query: &ListQuery) -> Result<String, StoreError> {
        query::explain(&self.conn, query)
    }

    /// The stored finding.
    pub fn finding(&self, id: &str) -> Result<Option<Finding>, StoreError> {
        let json: Option<String> = self
            .conn
            .prepare_cached("SELECT json FROM findings WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        json.map(|j| {
            Finding::from_json_str(&j)
                .map_err(|e| StoreError::Corrupt(format!("stored finding {id:?}: {e}")))
        })
        .transpose()
    }

    pub fn finding_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM findings", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    pub fn event_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    pub fn detail(&self, id: &str) -> Result<Option<FindingDetail>, StoreError> {
        let json: Option<String> = self
            .conn
            .prepare_cached("SELECT json FROM findings WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let Some(json) = json else {
            return Ok(None);
        };
        let finding = Finding::from_json_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("stored finding {id:?}: {e}")))?;
        let history = self.history(id)?;
        let events = self.finding_events(id)?;
        let process_tree = self.process_tree(&finding)?;
        Ok(Some(FindingDetail {
            finding: raw(json, "stored finding")?,
            history,
            events,
            process_tree,
        }))
    }

    pub fn history(&self, id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT version, updated_at_ms, count, archived, json FROM finding_history WHERE id = ?1
             UNION ALL
             SELECT version, updated_at_ms, count, archived, json FROM findings WHERE id = ?1
             ORDER BY version",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (version, updated, count, archived, json) = row?;
            Ok(HistoryEntry {
                version,
                updated_at: time_text(updated),
                count,
                archived,
                finding: raw(json, "finding history")?,
            })
        })
        .collect()
    }

    /// The stored events the finding references, oldest first: those its versions name in
    /// `service.additionalInfo.ward.eventIds`, and those linked to it in `finding_events`.
    pub fn finding_events(&self, id: &str) -> Result<Vec<EventRecord>, StoreError> {
        let mut ids: BTreeSet<String> = BTreeSet::new();
        let mut versions = self.conn.prepare_cached(
            "SELECT json FROM finding_history WHERE id = ?1
             UNION ALL SELECT json FROM findings WHERE id = ?1",
        )?;
        let jsons = versions.query_map([id], |r| r.get::<_, String>(0))?;
        for json in jsons {
            let json = json?;
            let value: Value = serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("stored finding {id:?}: {e}")))?;
            if let Some(named) = value
                .pointer("/service/additionalInfo/ward/eventIds")
                .and_then(Value::as_array)
            {
                ids.extend(named.iter().filter_map(Value::as_str).map(str::to_owned));
            }
        }
        let mut links = self
            .conn
            .prepare_cached("SELECT event_id FROM finding_events WHERE finding_id = ?1")?;
        for link in links.query_map([id], |r| r.get::<_, String>(0))? {
            ids.insert(link?);
        }
        let mut event = self.conn.prepare_cached(
            "SELECT event_id, time_ms, source, host, pid, process_start, json, seq
             FROM events WHERE event_id = ?1",
        )?;
        let mut found = Vec::new();
        for event_id in &ids {
            let row = event
                .query_row([event_id], |r| Ok((event_row(r)?, r.get::<_, i64>(7)?)))
                .optional()?;
            // An event past the retention window is simply no longer there.
            if let Some((row, seq)) = row {
                found.push((row.1, seq, row));
            }
        }
        found.sort_by_key(|(time, seq, _)| (*time, *seq));
        found
            .into_iter()
            .map(|(_, _, row)| event_record(row))
            .collect()
    }

    /// Process and ancestry, root first, from the finding's runtime details and Ward details,
    /// each with the ids of stored events of that process.
    pub fn process_tree(&self, finding: &Finding) -> Result<Vec<ProcessNode>, StoreError> {
        let ward = finding.service.ward_details();
        let runtime = finding
            .service
            .runtime_details
            .as_ref()
            .and_then(|r| r.process.as_ref());
        let host = ward
            .as_ref()
            .and_then(|w| w.agent_id.clone().or_else(|| w.hostname.clone()));
        let mut nodes = Vec::new();
        if let Some(p) = runtime {
            nodes.push(ProcessNode {
                pid: p.pid,
                name: p.name.clone(),
                executable_path: p.executable_path.clone(),
                executable_sha256: p.executable_sha256.clone(),
                user: p.user.clone(),
                start_time: p.start_time.clone(),
                uuid: p.uuid.clone(),
                parent_uuid: p.parent_uuid.clone(),
                ..ProcessNode::default()
            });
            for l in &p.lineage {
                nodes.push(ProcessNode {
                    pid: l.pid,
                    name: l.name.clone(),
                    executable_path: l.executable_path.clone(),
                    start_time: l.start_time.clone(),
                    uuid: l.uuid.clone(),
                    parent_uuid: l.parent_uuid.clone(),
                    ..ProcessNode::default()
                });
            }
        }
        if let Some(w) = &ward {
            // Ward's process and ancestry add argv, and stand in when runtimeDetails is absent.
            for (i, wp) in w.process.iter().chain(w.ancestry.iter()).enumerate() {
                match nodes.get_mut(i) {
                    Some(node) if node.pid == wp.pid || node.pid.is_none() => {
                        node.command_line = wp.command_line.clone();
                        if node.start_time.is_none() {
                            node.start_time = wp.start_time.clone();
                        }
                    }
                    Some(_) => {}
                    None => nodes.push(ProcessNode {
                        pid: wp.pid,
                        name: wp.name.clone(),
                        executable_path: wp.executable_path.clone(),
                        command_line: wp.command_line.clone(),
                        start_time: wp.start_time.clone(),
                        uuid: wp.uuid.clone(),
                        ..ProcessNode::default()
                    }),
                }
            }
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT event_id FROM events WHERE pid = ?1 AND (?2 IS NULL OR host = ?2)
             AND (?3 IS NULL OR process_start = ?3) ORDER BY seq LIMIT 1000",
        )?;
        for node in &mut nodes {
            if let Some(pid) = node.pid {
                node.event_ids = stmt
                    .query_map(params![pid, host, node.start_time], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
            }
        }
        nodes.reverse();
        Ok(nodes)
    }

    pub fn rules(&self) -> Result<Vec<Value>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, json FROM suppression_rules ORDER BY rank, name")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.map(|row| {
            let (name, json) = row?;
            serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("suppression rule {name:?}: {e}")))
        })
        .collect()
    }

    pub fn lists(&self) -> Result<Vec<ListRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, role, kind, format, location, entries, rejected, updated_at_ms FROM lists ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })?;
        rows.map(|row| {
            let (name, role, kind, format, location, entries, rejected, updated) = row?;
            let corrupt = |what: &str| StoreError::Corrupt(format!("list {name:?}: bad {what}"));
            let role = super::lists::parse_role(&role)
                .map(super::lists::role_name)
                .ok_or_else(|| corrupt("role"))?;
            let kind = super::lists::parse_kind(&kind)
                .map(super::lists::kind_name)
                .ok_or_else(|| corrupt("kind"))?;
            let format = format
                .parse::<crate::intel::ListFormat>()
                .map_err(|_| corrupt("format"))?
                .name();
            let rejected_lines: Vec<RejectedLine> =
                serde_json::from_str(&rejected).map_err(|_| corrupt("rejected lines"))?;
            Ok(ListRecord {
                name,
                role,
                kind,
                format,
                location,
                entries: entries as usize,
                rejected_lines,
                updated_at: format_millis(updated),
            })
        })
        .collect()
    }

    /// Where a stored list's entries come from, for loading it.
    pub fn list_origin(&self, name: &str) -> Result<Option<ListOrigin>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT location, content FROM lists WHERE name = ?1")?
            .query_row([name], |r| {
                Ok(ListOrigin {
                    location: r.get(0)?,
                    content: r.get(1)?,
                })
            })
            .optional()?)
    }

    pub fn checkpoint(&self, name: &str) -> Result<Option<Value>, StoreError> {
        self.named_json("checkpoints", name)
    }

    pub fn detector_state(&self, name: &str) -> Result<Option<Value>, StoreError> {
        self.named_json("detector_state", name)
    }

    fn named_json(&self, table: &str, name: &str) -> Result<Option<Value>, StoreError> {
        let text: Option<String> = self
            .conn
            .prepare_cached(&format!("SELECT value FROM {table} WHERE name = ?1"))?
            .query_row([name], |r| r.get(0))
            .optional()?;
        text.map(|t| {
            serde_json::from_str(&t)
                .map_err(|e| StoreError::Corrupt(format!("{table} {name:?}: {e}")))
        })
        .transpose()
    }

    /// Every checkpoint (name -> value), for a pipeline resuming all its sources.
    pub fn checkpoints(&self) -> Result<Vec<(String, Value)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, value FROM checkpoints ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.map(|row| {
            let (name, text) = row?;
            let value = serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("checkpoint {name:?}: {e}")))?;
            Ok((name, value))
        })
        .collect()
    }

    /// The checkpoints whose name starts with `prefix` (name -> value), in name order.
    pub fn checkpoints_under(&self, prefix: &str) -> Result<Vec<(String, Value)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, value FROM checkpoints WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
        )?;
        let rows = stmt.query_map([prefix], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (name, text) = row?;
            let value = serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("checkpoint {name:?}: {e}")))?;
            Ok((name, value))
        })
        .collect()
    }

    /// SQLite's own consistency check (`PRAGMA quick_check`): `ok` or the problems found.
    pub fn quick_check(&self) -> Result<String, StoreError> {
        let mut stmt = self.conn.prepare("PRAGMA quick_check")?;
        let lines: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(lines.join("\n"))
    }
}

type EventRow = (
    String,
    i64,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    String,
);

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn event_record(row: EventRow) -> Result<EventRecord, StoreError> {
    let (id, time_ms, source, host, pid, process_start_time, json) = row;
    Ok(EventRecord {
        event: raw(json, "stored event")?,
        time: format_millis(time_ms),
        source,
        host,
        pid,
        process_start_time,
        id,
    })
}
