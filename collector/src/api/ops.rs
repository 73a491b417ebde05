//! The API's operations, shared by the HTTP and gRPC front ends: request parsing and the calls
//! into the store. Both front ends only translate transport and errors.

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::ApiState;
use crate::store::{
    ArchiveOutcome, FindingDetail, ListQuery, ListRecord, ListSpec, SortAttribute, Store,
    StoreError,
};
use crate::suppression::FindingCriteria;

/// An API error: the HTTP status class and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    BadRequest(String),
    Unauthenticated,
    Forbidden,
    NotFound(String),
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BadRequest",
            Self::Unauthenticated => "Unauthenticated",
            Self::Forbidden => "Forbidden",
            Self::NotFound(_) => "NotFound",
            Self::Internal(_) => "Internal",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::BadRequest(m) | Self::NotFound(m) => m.clone(),
            Self::Unauthenticated => "a valid bearer token is required".into(),
            Self::Forbidden => "this token's role (read) may not change anything".into(),
            Self::Internal(m) => m.clone(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadInput(m) => Self::BadRequest(m),
            other => {
                tracing::error!(error = %other, "query API store error");
                Self::Internal(other.to_string())
            }
        }
    }
}

pub const MAX_RESULTS: usize = 1000;
pub const MAX_ARCHIVE_IDS: usize = 50;

fn member<'a>(object: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// Parses a `ListFindings`-shaped request body.
pub fn parse_list_request(body: &Value) -> Result<ListQuery, ApiError> {
    let bad = |m: String| ApiError::BadRequest(m);
    let empty = serde_json::Map::new();
    let object = match body {
        Value::Null => &empty,
        Value::Object(o) => o,
        _ => return Err(bad("request body must be a JSON object".into())),
    };
    if let Some(unknown) = object.keys().find(|k| {
        !["findingcriteria", "sortcriteria", "maxresults", "nexttoken"]
            .contains(&k.to_ascii_lowercase().as_str())
    }) {
        return Err(bad(format!(
            "unknown member {unknown:?} (expected findingCriteria, sortCriteria, maxResults, nextToken)"
        )));
    }
    let mut query = ListQuery::default();
    if let Some(criteria) = member(object, "findingCriteria") {
        let is_empty = criteria.as_object().is_some_and(|o| {
            o.is_empty()
                || o.iter().all(|(k, v)| {
                    k.eq_ignore_ascii_case("criterion")
                        && v.as_object().is_some_and(|c| c.is_empty())
                })
        });
        if !is_empty {
            query.criteria = Some(
                FindingCriteria::from_json(criteria)
                    .map_err(|e| bad(format!("findingCriteria: {e}")))?,
            );
            query.criteria_text = criteria.to_string();
        }
    }
    if let Some(sort) = member(object, "sortCriteria") {
        let sort = sort
            .as_object()
            .ok_or_else(|| bad("sortCriteria must be an object".into()))?;
        if let Some(name) = member(sort, "attributeName") {
            let name = name.as_str().unwrap_or_default();
            query.sort = SortAttribute::parse(name).ok_or_else(|| {
                bad(format!(
                    "sortCriteria.attributeName {name:?} is not sortable (updatedAt, createdAt, severity, type, service.count, id)"
                ))
            })?;
        }
        if let Some(order) = member(sort, "orderBy") {
            query.descending = match order.as_str().map(str::to_ascii_uppercase).as_deref() {
                Some("DESC") => true,
                Some("ASC") => false,
                _ => {
                    return Err(bad(format!(
                        "sortCriteria.orderBy must be ASC or DESC, found {order}"
                    )));
                }
            };
        }
    }
    if let Some(max) = member(object, "maxResults") {
        query.max_results = max
            .as_u64()
            .filter(|m| (1..=MAX_RESULTS as u64).contains(m))
            .ok_or_else(|| {
                bad(format!(
                    "maxResults must be 1 to {MAX_RESULTS}, found {max}"
                ))
            })? as usize;
    }
    if let Some(token) = member(object, "nextToken") {
        let token = token
            .as_str()
            .ok_or_else(|| bad("nextToken must be a string".into()))?;
        if !token.is_empty() {
            query.next_token = Some(token.to_owned());
        }
    }
    Ok(query)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    pub findings: Vec<Box<RawValue>>,
    pub next_token: Option<String>,
}

pub async fn list_findings(store: &Store, query: ListQuery) -> Result<ListResponse, ApiError> {
    let page = store.read_async(move |r| r.list_findings(&query)).await?;
    Ok(ListResponse {
        findings: page.findings,
        next_token: page.next_token,
    })
}

pub async fn get_finding(store: &Store, id: String) -> Result<FindingDetail, ApiError> {
    let shown = id.clone();
    store
        .read_async(move |r| r.detail(&id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no finding with id {shown:?}")))
}

/// Parses `{"findingIds": [...]}`.
pub fn parse_finding_ids(body: &Value) -> Result<Vec<String>, ApiError> {
    let ids = body
        .as_object()
        .and_then(|o| member(o, "findingIds"))
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::BadRequest("expected {\"findingIds\": [\"<id>\", ...]}".into()))?;
    if ids.is_empty() || ids.len() > MAX_ARCHIVE_IDS {
        return Err(ApiError::BadRequest(format!(
            "findingIds must hold 1 to {MAX_ARCHIVE_IDS} ids, found {}",
            ids.len()
        )));
    }
    ids.iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str().map(str::to_owned).ok_or_else(|| {
                ApiError::BadRequest(format!("findingIds[{i}] must be a string, found {v}"))
            })
        })
        .collect()
}

pub async fn archive(
    store: &Store,
    ids: Vec<String>,
    archived: bool,
) -> Result<ArchiveOutcome, ApiError> {
    Ok(store.archive(ids, archived).await?)
}

pub async fn list_rules(store: &Store) -> Result<Vec<Value>, ApiError> {
    Ok(store.read_async(|r| r.rules()).await?)
}

// Writes of rules and lists bump the generation once committed, so the running detections
// rebuild their lists and rules (`crate::pipeline::live`).

/// A rule's top-level members in the API's camelCase (`Name` -> `name`, `FindingCriteria` ->
/// `findingCriteria`, ...), so rules read back in one spelling whichever one created them. The
/// criteria inside are kept as given.
pub fn camel_case_rule(body: Value) -> Value {
    let Value::Object(object) = body else {
        return body;
    };
    const MEMBERS: [&str; 8] = [
        "name",
        "description",
        "action",
        "rank",
        "findingCriteria",
        "clientToken",
        "tags",
        "detectorId",
    ];
    Value::Object(
        object
            .into_iter()
            .map(|(k, v)| {
                let key = MEMBERS
                    .iter()
                    .find(|m| m.eq_ignore_ascii_case(&k))
                    .map_or(k, |m| (*m).to_owned());
                (key, v)
            })
            .collect(),
    )
}

pub async fn put_rule(state: &ApiState, body: Value) -> Result<String, ApiError> {
    let name = state.store.put_rule(camel_case_rule(body)).await?;
    state.changes.bump();
    Ok(name)
}

pub async fn delete_rule(state: &ApiState, name: String) -> Result<(), ApiError> {
    if state.store.delete_rule(name.clone()).await? {
        state.changes.bump();
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "no suppression rule named {name:?}"
        )))
    }
}

pub async fn list_lists(store: &Store) -> Result<Vec<ListRecord>, ApiError> {
    Ok(store.read_async(|r| r.lists()).await?)
}

pub async fn put_list(state: &ApiState, body: &Value) -> Result<ListRecord, ApiError> {
    let spec = ListSpec::from_json(body)?;
    let record = state.store.put_list(spec).await?;
    state.changes.bump();
    Ok(record)
}

pub async fn delete_list(state: &ApiState, name: String) -> Result<(), ApiError> {
    if state.store.delete_list(name.clone()).await? {
        state.changes.bump();
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no list named {name:?}")))
    }
}

/// One line of the change stream.
pub fn change_json(change: &crate::store::FindingChange) -> Value {
    let mut line = serde_json::json!({
        "change": change.kind,
        "finding": change.finding.to_json_value(),
    });
    if let Some(rule) = &change.suppressed_by {
        line["suppressedBy"] = Value::String(rule.clone());
    }
    line
}
