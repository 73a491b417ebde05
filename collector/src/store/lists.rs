//! Threat and trusted lists as the store keeps them: where the list comes from (a location or
//! inline content), what it is, and what loading it reported.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::intel::{IntelList, ListFormat, ListKind, ListRole, ListSource};

use super::StoreError;

/// A list definition as the API receives it, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ListSpec {
    pub name: String,
    pub role: ListRole,
    pub kind: ListKind,
    pub format: ListFormat,
    pub location: Option<String>,
    pub content: Option<String>,
}

/// A stored list as the API shows it (inline content is not echoed).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRecord {
    pub name: String,
    pub role: &'static str,
    pub kind: &'static str,
    pub format: &'static str,
    pub location: Option<String>,
    pub entries: usize,
    pub rejected_lines: Vec<RejectedLine>,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RejectedLine {
    pub line: usize,
    pub message: String,
}

pub fn role_name(role: ListRole) -> &'static str {
    match role {
        ListRole::Threat => "THREAT",
        ListRole::Trusted => "TRUSTED",
    }
}

pub fn kind_name(kind: ListKind) -> &'static str {
    match kind {
        ListKind::IpList => "IP",
        ListKind::EntityList => "ENTITY",
    }
}

pub fn parse_role(text: &str) -> Option<ListRole> {
    match text.to_ascii_uppercase().as_str() {
        "THREAT" => Some(ListRole::Threat),
        "TRUSTED" => Some(ListRole::Trusted),
        _ => None,
    }
}

pub fn parse_kind(text: &str) -> Option<ListKind> {
    match text.to_ascii_uppercase().as_str() {
        "IP" => Some(ListKind::IpList),
        "ENTITY" => Some(ListKind::EntityList),
        _ => None,
    }
}

fn bad(message: impl Into<String>) -> StoreError {
    StoreError::BadInput(message.into())
}

impl ListSpec {
    /// Parses the API body `{"name", "role", "kind", "format", "location" | "content"}`.
    pub fn from_json(value: &Value) -> Result<Self, StoreError> {
        let object = value
            .as_object()
            .ok_or_else(|| bad("list: expected a JSON object"))?;
        if let Some(unknown) = object.keys().find(|k| {
            !["name", "role", "kind", "format", "location", "content"].contains(&k.as_str())
        }) {
            return Err(bad(format!("list: unknown member {unknown:?}")));
        }
        let text = |key: &str| object.get(key).and_then(Value::as_str);
        let name = text("name")
            .filter(|n| !n.is_empty() && n.len() <= 300)
            .ok_or_else(|| bad("list: \"name\" (1-300 characters) is required"))?
            .to_owned();
        let context = format!("list {name:?}");
        let role = text("role").and_then(parse_role).ok_or_else(|| {
            bad(format!(
                "{context}: \"role\" must be THREAT or TRUSTED, found {}",
                object.get("role").unwrap_or(&Value::Null)
            ))
        })?;
        let kind = text("kind").and_then(parse_kind).ok_or_else(|| {
            bad(format!(
                "{context}: \"kind\" must be IP or ENTITY, found {}",
                object.get("kind").unwrap_or(&Value::Null)
            ))
        })?;
        let format = text("format")
            .ok_or_else(|| bad(format!("{context}: \"format\" is required")))?
            .parse::<ListFormat>()
            .map_err(|e| bad(format!("{context}: {e}")))?;
        let location = text("location").map(str::to_owned);
        let content = text("content").map(str::to_owned);
        if location.is_some() == content.is_some() {
            return Err(bad(format!(
                "{context}: give exactly one of \"location\" and \"content\""
            )));
        }
        Ok(Self {
            name,
            role,
            kind,
            format,
            location,
            content,
        })
    }

    /// Parses the content (or reads a local location) now, so a list that cannot load is refused
    /// at the API rather than discovered later. Returns (entries, rejected lines).
    pub fn check(&self) -> Result<(usize, Vec<RejectedLine>), StoreError> {
        let context = format!("list {:?}", self.name);
        let list = match (&self.content, &self.location) {
            (Some(text), _) => {
                IntelList::parse(self.name.clone(), self.role, self.kind, self.format, text)
            }
            (None, Some(location)) if is_remote(location) => return Ok((0, Vec::new())),
            (None, Some(location)) => ListSource {
                name: self.name.clone(),
                path: PathBuf::from(location),
                format: self.format,
                kind: self.kind,
                role: self.role,
            }
            .load()
            .map_err(|e| bad(format!("{context}: {e}")))?,
            (None, None) => unreachable!("from_json requires one of them"),
        };
        let rejected: Vec<RejectedLine> = list
            .report
            .errors
            .iter()
            .map(|e| RejectedLine {
                line: e.line,
                message: e.message.clone(),
            })
            .collect();
        if list.report.loaded == 0 {
            let first = rejected
                .first()
                .map(|r| format!(" (line {}: {})", r.line, r.message))
                .unwrap_or_default();
            return Err(bad(format!(
                "{context}: no valid entry in {} format{first}",
                self.format.name()
            )));
        }
        Ok((list.report.loaded, rejected))
    }
}

/// S3 and HTTPS locations are loaded by the list source that supports them, not checked here.
fn is_remote(location: &str) -> bool {
    location.starts_with("s3://") || location.starts_with("https://")
}
