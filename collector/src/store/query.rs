//! Listing findings: GuardDuty filter criteria answered from the indexed columns where they say
//! exactly the same thing, the rest evaluated on the stored JSON; keyset paging.
//!
//! Each criterion test on an indexed column becomes a SQL condition that selects exactly the rows
//! [`FindingCriteria::matches`] would (see `columns.rs` for how the columns are derived). A test
//! that cannot be said exactly in SQL is left out of the SQL and the whole criteria is evaluated on
//! every candidate row, so the result is always what the reference semantics give.
//!
//! Paging is keyset: a page ends at (sort value, id) of its last finding, and the next page starts
//! after it. Inserting findings while a client pages never shifts pages (unlike OFFSET).

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
    i: String,
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
    clauses: Vec<String>,
    params: Vec<SqlValue>,
    exact: bool,
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
        params: Vec::new(),
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
            match push_down(column, test, &mut filter.params) {
                Some(clause) => filter.clauses.push(clause),
                None => filter.exact = false,
            }
        }
    }
    filter
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

pub fn list(conn: &Connection, query: &ListQuery) -> Result<Page, StoreError> {
    let fingerprint = fingerprint(query);
    let mut after: Option<(SqlValue, String)> = match &query.next_token {
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
            Some((value, token.i))
        }
    };
    let filter = sql_filter(query.criteria.as_ref());
    let col = query.sort.column();
    let (dir, cmp) = if query.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    let want = query.max_results;
    // One extra match tells whether another page exists.
    let chunk = if filter.exact {
        want + 1
    } else {
        SCAN_CHUNK.max(want + 1)
    };
    let mut found: Vec<(Box<RawValue>, serde_json::Value, String)> = Vec::new();
    loop {
        let mut clauses = filter.clauses.clone();
        let mut params = filter.params.clone();
        if let Some((value, id)) = &after {
            if query.sort == SortAttribute::Id {
                clauses.push(format!("id {cmp} ?"));
                params.push(SqlValue::Text(id.clone()));
            } else {
                clauses.push(format!("({col}, id) {cmp} (?, ?)"));
                params.push(value.clone());
                params.push(SqlValue::Text(id.clone()));
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
            format!("{col} {dir}, id {dir}")
        };
        let sql = format!(
            "SELECT id, json, {col} FROM findings {where_clause} ORDER BY {order} LIMIT {chunk}"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut seen = 0;
        let mut last: Option<(SqlValue, String)> = None;
        while let Some(row) = rows.next()? {
            seen += 1;
            let id: String = row.get(0)?;
            let json: String = row.get(1)?;
            let value = sort_value(row, query.sort)?;
            last = Some((
                sql_value(&value).expect("sort values are numbers or text"),
                id.clone(),
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
                found.push((raw, value, id));
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
        found.last().map(|(_, v, id)| {
            encode_token(&Token {
                v: v.clone(),
                i: id.clone(),
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
