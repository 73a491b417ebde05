//! Listing findings: GuardDuty filter criteria answered from the indexed columns where they say
//! exactly the same thing, the rest evaluated on the stored JSON; keyset paging.
//!
//! Each criterion test on an indexed column becomes a SQL condition that selects exactly the rows
//! [`FindingCriteria::matches`] would (see `columns.rs` for how the columns are derived). A test
//! that cannot be said exactly in SQL is left out of the SQL and the whole criteria is evaluated on
//! every candidate row, so the result is always what the reference semantics give.
//!
//! Paging is keyset: a page ends at (sort value, storage sequence) of its last finding, and the next
//! page starts after it. Findings with equal sort values come in storage order (oldest first when
//! ascending, newest first when descending). Inserting findings while a client pages never shifts
//! pages (unlike OFFSET). Which index a list walks is chosen here, not by SQLite
//! ([`choose_index`]).

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::findings::Finding;
use crate::suppression::{Comparison, FindingCriteria, Test};

use super::StoreError;
use super::schema::MISSING_MILLIS;

/// Sortable attributes and their columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortAttribute {
    UpdatedAt,
    CreatedAt,
    Severity,
    Type,
    Count,
    Id,
}

impl SortAttribute {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "updatedAt" => Self::UpdatedAt,
            "createdAt" => Self::CreatedAt,
            "severity" => Self::Severity,
            "type" => Self::Type,
            "count" | "service.count" => Self::Count,
            "id" => Self::Id,
            _ => return None,
        })
    }

    fn column(self) -> &'static str {
        match self {
            Self::UpdatedAt => "updated_at_ms",
            Self::CreatedAt => "created_at_ms",
            Self::Severity => "severity",
            Self::Type => "type",
            Self::Count => "count",
            Self::Id => "id",
        }
    }
}

/// One list request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub criteria: Option<FindingCriteria>,
    /// Identifies the criteria in page tokens (any stable text of them, e.g. the request JSON).
    pub criteria_text: String,
    pub sort: SortAttribute,
    pub descending: bool,
    pub max_results: usize,
    pub next_token: Option<String>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            criteria: None,
            criteria_text: String::new(),
            sort: SortAttribute::UpdatedAt,
            descending: true,
            max_results: 50,
            next_token: None,
        }
    }
}

pub struct Page {
    /// Stored finding JSON, passed through unparsed.
    pub findings: Vec<Box<RawValue>>,
    pub next_token: Option<String>,
}

/// The position a page token carries.
#[derive(Debug, Serialize, Deserialize)]
struct Token {
    /// Sort value of the last finding returned (number or text).
    v: serde_json::Value,
    /// Its storage sequence: the tiebreak between equal sort values.
    s: i64,
    /// Fingerprint of criteria + sort, so a token is not replayed against another query.
    f: String,
}

fn fingerprint(query: &ListQuery) -> String {
    let mut h = Sha256::new();
    h.update(query.criteria_text.as_bytes());
    h.update([0, query.sort as u8, query.descending as u8]);
    let digest = h.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn encode_token(token: &Token) -> String {
    let json = serde_json::to_vec(token).expect("plain data serialises");
    json.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(text: &str) -> Option<Token> {
    if !text.len().is_multiple_of(2) || text.len() > 4096 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    serde_json::from_slice(&bytes?).ok()
}

/// SQL conditions for the criteria and whether they are exactly the criteria.
struct SqlFilter {
    clauses: Vec<Clause>,
    exact: bool,
}

/// One condition, with the index that can seek to the rows it selects, if any.
struct Clause {
    sql: String,
    params: Vec<SqlValue>,
    /// An index whose leading column this condition constrains (positive tests only: a negated
    /// test selects almost everything and cannot seek).
    seek: Option<&'static str>,
    /// The column it pins to one value (`type`, `instance_id`, `archived`), for the composite
    /// "value, newest first" indexes.
    pins: Option<&'static str>,
}

#[derive(Clone, Copy)]
enum Column {
    Text(&'static str),
    Severity,
    Millis(&'static str),
    Archived,
    Count,
}

fn indexed_column(path: &str) -> Option<Column> {
    Some(match path {
        "id" => Column::Text("id"),
        "type" => Column::Text("type"),
        "accountId" => Column::Text("account_id"),
        "region" => Column::Text("region"),
        "resource.resourceType" => Column::Text("resource_type"),
        "resource.instanceDetails.instanceId" => Column::Text("instance_id"),
        "severity" => Column::Severity,
        "createdAt" => Column::Millis("created_at_ms"),
        "updatedAt" => Column::Millis("updated_at_ms"),
        "service.archived" => Column::Archived,
        "service.count" => Column::Count,
        _ => return None,
    })
}

/// The index led by this column (see `schema.rs`, v3).
fn seek_index(column: Column) -> Option<&'static str> {
    Some(match column {
        Column::Text("id") => "findings_id",
        Column::Text("type") => "findings_type",
        Column::Text("instance_id") => "findings_instance_updated",
        Column::Text(_) => return None,
        Column::Severity => "findings_severity",
        Column::Millis("created_at_ms") => "findings_created",
        Column::Millis(_) => "findings_updated",
        Column::Archived => "findings_archived_updated",
        Column::Count => "findings_count",
    })
}

fn is_numeric(text: &str) -> bool {
    text.trim().parse::<f64>().is_ok()
}

fn op(c: Comparison) -> &'static str {
    match c {
        Comparison::Greater => ">",
        Comparison::GreaterOrEqual => ">=",
        Comparison::Less => "<",
        Comparison::LessOrEqual => "<=",
    }
}

/// `*` is the only wildcard of GuardDuty patterns; GLOB's `?` and `[` are made literal.
fn glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match c {
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            other => out.push(other),
        }
    }
    out
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The SQL condition selecting exactly the rows where `test` passes, if there is one.
fn push_down(column: Column, test: &Test, params: &mut Vec<SqlValue>) -> Option<String> {
    let negate = |clause: String| format!("NOT ({clause})");
    match (column, test) {
        (Column::Text(col), Test::EqualsAny(values) | Test::EqualsNone(values)) => {
            // A numeric value compares as a number (see `suppression::equals`): not a text IN.
            if values.iter().any(|v| is_numeric(v)) {
                return None;
            }
            params.extend(values.iter().map(|v| SqlValue::Text(v.clone())));
            let any = format!(
                "({col} IS NOT NULL AND {col} IN ({}))",
                placeholders(values.len())
            );
            Some(match test {
                Test::EqualsAny(_) => any,
                _ => negate(any),
            })
        }
        (Column::Text(col), Test::MatchesAny(patterns) | Test::MatchesNone(patterns)) => {
            params.extend(patterns.iter().map(|p| SqlValue::Text(glob(p))));
            let any = format!(
                "({col} IS NOT NULL AND ({}))",
                vec![format!("{col} GLOB ?"); patterns.len()].join(" OR ")
            );
            Some(match test {
                Test::MatchesAny(_) => any,
                _ => negate(any),
            })
        }
        (Column::Severity, Test::EqualsAny(values) | Test::EqualsNone(values)) => {
            // Equality on severity compares the whole part: "7" is [7, 8).
            let mut ranges = Vec::new();
            for v in values {
                if let Ok(want) = v.trim().parse::<f64>()
                    && want.fract() == 0.0
                {
                    params.push(SqlValue::Real(want));
                    params.push(SqlValue::Real(want + 1.0));
                    ranges.push("(severity >= ? AND severity < ?)".to_owned());
                }
            }
            let any = if ranges.is_empty() {
                "0".to_owned()
            } else {
                format!("({})", ranges.join(" OR "))
            };
            Some(match test {
                Test::EqualsAny(_) => any,
                _ => negate(any),
            })
        }
        (Column::Severity, Test::Compare(c, bound)) => {
            params.push(SqlValue::Real(*bound));
            Some(format!("severity {} ?", op(*c)))
        }
        (Column::Millis(col), Test::Compare(c, bound)) => {
            params.push(SqlValue::Real(*bound));
            params.push(SqlValue::Integer(MISSING_MILLIS));
            Some(format!("({col} {} ? AND {col} != ?)", op(*c)))
        }
        (Column::Millis(col), Test::EqualsAny(values) | Test::EqualsNone(values)) => {
            let numbers: Option<Vec<f64>> = values
                .iter()
                .map(|v| v.trim().parse::<f64>().ok())
                .collect();
            let numbers = numbers?;
            params.extend(numbers.iter().map(|n| SqlValue::Real(*n)));
            params.push(SqlValue::Integer(MISSING_MILLIS));
            let any = format!(
                "({col} IN ({}) AND {col} != ?)",
                placeholders(numbers.len())
            );
            Some(match test {
                Test::EqualsAny(_) => any,
                _ => negate(any),
            })
        }
        (Column::Archived, Test::EqualsAny(values) | Test::EqualsNone(values)) => {
            let mut states = Vec::new();
            for v in values {
                match v.as_str() {
                    "true" => states.push("archived = 1"),
                    "false" => states.push("archived = 0"),
                    _ => {}
                }
            }
            let any = if states.is_empty() {
                "0".to_owned()
            } else {
                format!("({})", states.join(" OR "))
            };
            Some(match test {
                Test::EqualsAny(_) => any,
                _ => negate(any),
            })
        }
        (Column::Count, Test::Compare(c, bound)) => {
            // A count of 0 is not written in the JSON: the field is absent and no test passes.
            params.push(SqlValue::Real(*bound));
            Some(format!("(count > 0 AND count {} ?)", op(*c)))
        }
        (Column::Count, Test::EqualsAny(values) | Test::EqualsNone(values)) => {
            let numbers: Vec<f64> = values
                .iter()
                .filter_map(|v| v.trim().parse::<f64>().ok())
                .collect();
            params.extend(numbers.iter().map(|n| SqlValue::Real(*n)));
            let any = if numbers.is_empty() {
                "0".to_owned()
            } else {
                format!("(count > 0 AND count IN ({}))", placeholders(numbers.len()))
            };
            Some(match test {
                Test::EqualsAny(_) => any,
                _ => negate(any),
            })
        }
        _ => None,
    }
}

fn sql_filter(criteria: Option<&FindingCriteria>) -> SqlFilter {
    let mut filter = SqlFilter {
        clauses: Vec::new(),
        exact: true,
    };
    let Some(criteria) = criteria else {
        return filter;
    };
    for (path, tests) in criteria.conditions() {
        let Some(column) = indexed_column(path) else {
            filter.exact = false;
            continue;
        };
        for test in tests {
            let mut params = Vec::new();
            let Some(sql) = push_down(column, test, &mut params) else {
                filter.exact = false;
                continue;
            };
            let positive = matches!(test, Test::EqualsAny(_) | Test::Compare(..));
            let pins = match (column, test) {
                (Column::Text(col @ ("type" | "instance_id")), Test::EqualsAny(values))
                    if values.len() == 1 =>
                {
                    Some(col)
                }
                (Column::Archived, Test::EqualsAny(values))
                    if values.len() == 1 && matches!(values[0].as_str(), "true" | "false") =>
                {
                    Some("archived")
                }
                _ => None,
            };
            filter.clauses.push(Clause {
                sql,
                params,
                seek: seek_index(column).filter(|_| positive),
                pins,
            });
        }
    }
    filter
}

/// The index that orders by the sort attribute (ties in storage order, `seq`).
fn sort_index(sort: SortAttribute) -> &'static str {
    match sort {
        SortAttribute::UpdatedAt => "findings_updated",
        SortAttribute::CreatedAt => "findings_created",
        SortAttribute::Severity => "findings_severity",
        SortAttribute::Type => "findings_type",
        SortAttribute::Count => "findings_count",
        SortAttribute::Id => "findings_id",
    }
}

/// A filter index is walked (and its matches sorted) rather than the sort index when it selects
/// fewer rows than this; sorting that many costs a few ms, while walking the sort index past rows
/// that do not match can cost a full scan.
const PROBE_LIMIT: usize = 4096;

/// Picks the index a list walks. SQLite's planner cannot see that a severity range or a time
/// window matches a third of the table (no STAT4 in the bundled build), and it ignores LIMIT when
/// it weighs sorting the matches against walking the sort index, so it chose to sort 100k+ rows
/// for a 50-row page. Here:
/// 1. sorted by updatedAt with `type`, an instance or `archived` pinned to one value: the
///    composite (value, updated_at_ms) index, which is already in page order;
/// 2. else the positive condition whose index selects fewest rows, if under [`PROBE_LIMIT`]
///    (counted on the index, at most that many entries read);
/// 3. else the sort index, filtering as it goes.
fn choose_index(
    conn: &Connection,
    clauses: &[Clause],
    sort: SortAttribute,
) -> Result<&'static str, StoreError> {
    if sort == SortAttribute::UpdatedAt {
        for (column, index) in [
            ("instance_id", "findings_instance_updated"),
            ("type", "findings_type_updated"),
            ("archived", "findings_archived_updated"),
        ] {
            if clauses.iter().any(|c| c.pins == Some(column)) {
                return Ok(index);
            }
        }
    }
    let by_sort = sort_index(sort);
    let mut best: Option<(usize, &'static str)> = None;
    for clause in clauses {
        let Some(index) = clause.seek.filter(|i| *i != by_sort) else {
            continue;
        };
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM findings INDEXED BY {index} WHERE {} LIMIT {PROBE_LIMIT})",
            clause.sql
        );
        // An index SQLite cannot use for this condition is simply not a candidate.
        let Ok(mut stmt) = conn.prepare_cached(&sql) else {
            continue;
        };
        let rows: i64 = stmt.query_row(rusqlite::params_from_iter(clause.params.iter()), |r| {
            r.get(0)
        })?;
        let rows = rows as usize;
        if rows < PROBE_LIMIT && best.is_none_or(|(n, _)| rows < n) {
            best = Some((rows, index));
        }
    }
    Ok(best.map_or(by_sort, |(_, index)| index))
}

fn sort_value(row: &rusqlite::Row<'_>, sort: SortAttribute) -> rusqlite::Result<serde_json::Value> {
    Ok(match sort {
        SortAttribute::UpdatedAt | SortAttribute::CreatedAt | SortAttribute::Count => {
            serde_json::Value::from(row.get::<_, i64>(2)?)
        }
        SortAttribute::Severity => serde_json::Value::from(row.get::<_, f64>(2)?),
        SortAttribute::Type | SortAttribute::Id => {
            serde_json::Value::from(row.get::<_, String>(2)?)
        }
    })
}

fn sql_value(value: &serde_json::Value) -> Option<SqlValue> {
    match value {
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(SqlValue::Integer)
            .or_else(|| n.as_f64().map(SqlValue::Real)),
        serde_json::Value::String(s) => Some(SqlValue::Text(s.clone())),
        _ => None,
    }
}

/// Rows read per round when the criteria need evaluating on the JSON.
const SCAN_CHUNK: usize = 512;

/// Where the previous page ended: its last finding's sort value and storage sequence.
type Cursor = (SqlValue, i64);

/// One round of a list: the SQL walking `index` (and the same without the index named, as a
/// fallback) with its parameters.
fn round_sql(
    filter: &SqlFilter,
    query: &ListQuery,
    index: &str,
    chunk: usize,
    after: Option<&Cursor>,
) -> (String, String, Vec<SqlValue>) {
    let col = query.sort.column();
    let (dir, cmp) = if query.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    let mut clauses: Vec<String> = filter.clauses.iter().map(|c| c.sql.clone()).collect();
    let mut params: Vec<SqlValue> = filter
        .clauses
        .iter()
        .flat_map(|c| c.params.iter().cloned())
        .collect();
    if let Some((value, seq)) = after {
        if query.sort == SortAttribute::Id {
            // Ids are unique: the id alone is the position.
            clauses.push(format!("id {cmp} ?"));
            params.push(value.clone());
        } else {
            clauses.push(format!("({col}, seq) {cmp} (?, ?)"));
            params.push(value.clone());
            params.push(SqlValue::Integer(*seq));
        }
    }
    let where_clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let order = if query.sort == SortAttribute::Id {
        format!("id {dir}")
    } else {
        format!("{col} {dir}, seq {dir}")
    };
    let select = |from: &str| {
        format!(
            "SELECT id, json, {col}, seq FROM {from} {where_clause} ORDER BY {order} LIMIT {chunk}"
        )
    };
    (
        select(&format!("findings INDEXED BY {index}")),
        select("findings"),
        params,
    )
}

/// How a list's first round runs: the index chosen and SQLite's `EXPLAIN QUERY PLAN` of it
/// (`cargo xtask bench store` prints it for every shape).
pub fn explain(conn: &Connection, query: &ListQuery) -> Result<String, StoreError> {
    let filter = sql_filter(query.criteria.as_ref());
    let index = choose_index(conn, &filter.clauses, query.sort)?;
    let (forced, free, params) = round_sql(&filter, query, index, query.max_results + 1, None);
    let (sql, note) = match conn.prepare(&forced) {
        Ok(_) => (forced, ""),
        Err(_) => (free, " (index not usable: SQLite's plan)"),
    };
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let steps: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(params.iter()), |r| {
            r.get::<_, String>(3)
        })?
        .collect::<Result<_, _>>()?;
    Ok(format!("{index}{note}: {}", steps.join("; ")))
}

pub fn list(conn: &Connection, query: &ListQuery) -> Result<Page, StoreError> {
    let fingerprint = fingerprint(query);
    let mut after: Option<Cursor> = match &query.next_token {
        None => None,
        Some(text) => {
            let token = decode_token(text)
                .filter(|t| t.f == fingerprint)
                .ok_or_else(|| {
                    StoreError::BadInput(
                        "nextToken is malformed or belongs to another query (criteria and sort must not change between pages)".into(),
                    )
                })?;
            let value = sql_value(&token.v)
                .ok_or_else(|| StoreError::BadInput("nextToken is malformed".into()))?;
            Some((value, token.s))
        }
    };
    let filter = sql_filter(query.criteria.as_ref());
    let index = choose_index(conn, &filter.clauses, query.sort)?;
    let want = query.max_results;
    // One extra match tells whether another page exists.
    let chunk = if filter.exact {
        want + 1
    } else {
        SCAN_CHUNK.max(want + 1)
    };
    let mut found: Vec<(Box<RawValue>, serde_json::Value, i64)> = Vec::new();
    loop {
        let (forced, free, params) = round_sql(&filter, query, index, chunk, after.as_ref());
        // Every chosen index is usable for these conditions (a sort index by a full walk, a
        // probed one by its probe); SQLite's own choice stands in should that ever fail.
        let mut stmt = match conn.prepare_cached(&forced) {
            Ok(stmt) => stmt,
            Err(_) => conn.prepare_cached(&free)?,
        };
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut seen = 0;
        let mut last: Option<Cursor> = None;
        while let Some(row) = rows.next()? {
            seen += 1;
            let id: String = row.get(0)?;
            let json: String = row.get(1)?;
            let value = sort_value(row, query.sort)?;
            let seq: i64 = row.get(3)?;
            last = Some((
                sql_value(&value).expect("sort values are numbers or text"),
                seq,
            ));
            let keep = filter.exact
                || match (&query.criteria, Finding::from_json_str(&json)) {
                    (Some(criteria), Ok(finding)) => criteria.matches(&finding),
                    (None, _) => true,
                    (Some(_), Err(e)) => {
                        return Err(StoreError::Corrupt(format!("stored finding {id:?}: {e}")));
                    }
                };
            if keep {
                let raw = RawValue::from_string(json)
                    .map_err(|e| StoreError::Corrupt(format!("stored finding {id:?}: {e}")))?;
                found.push((raw, value, seq));
                if found.len() > want {
                    break;
                }
            }
        }
        if found.len() > want || seen < chunk {
            break;
        }
        after = last;
    }
    let next_token = if found.len() > want {
        found.truncate(want);
        found.last().map(|(_, v, seq)| {
            encode_token(&Token {
                v: v.clone(),
                s: *seq,
                f: fingerprint.clone(),
            })
        })
    } else {
        None
    };
    Ok(Page {
        findings: found.into_iter().map(|(raw, _, _)| raw).collect(),
        next_token,
    })
}
