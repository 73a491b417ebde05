//! The indexed columns of a stored finding, derived from its JSON exactly the way the filter
//! semantics of [`crate::suppression`] read those fields (so an index answers a criterion the same
//! way the JSON evaluation would).

use crate::findings::Finding;
use crate::findings::time::parse_millis;

use super::schema::MISSING_MILLIS;

#[derive(Debug, Clone, PartialEq)]
pub struct FindingColumns {
    pub id: String,
    pub finding_type: String,
    pub severity: f64,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub resource_type: Option<String>,
    pub instance_id: Option<String>,
    pub resource_key: Option<String>,
    pub archived: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub count: i64,
}

/// A timestamp field as filters compare it: ISO time as epoch ms, else a plain number.
pub fn filter_millis(text: &str) -> i64 {
    parse_millis(text)
        .or_else(|| {
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        })
        .unwrap_or(MISSING_MILLIS)
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

impl FindingColumns {
    pub fn of(finding: &Finding) -> Self {
        let resource = &finding.resource;
        let instance_id = resource
            .instance_details
            .as_ref()
            .and_then(|d| d.instance_id.clone());
        let resource_key = instance_id
            .clone()
            .or_else(|| {
                resource
                    .access_key_details
                    .as_ref()
                    .and_then(|k| k.access_key_id.clone())
            })
            .or_else(|| {
                resource
                    .eks_cluster_details
                    .as_ref()
                    .and_then(|c| c.name.clone())
            })
            .or_else(|| {
                resource
                    .ecs_cluster_details
                    .as_ref()
                    .and_then(|c| c.name.clone())
            });
        Self {
            id: finding.id.clone(),
            finding_type: finding.finding_type_name.clone(),
            severity: finding.severity.0,
            account_id: non_empty(&finding.account_id),
            region: non_empty(&finding.region),
            resource_type: resource.resource_type.clone(),
            instance_id,
            resource_key,
            archived: finding.service.archived,
            created_at_ms: filter_millis(&finding.created_at),
            updated_at_ms: filter_millis(&finding.updated_at),
            count: finding.service.count as i64,
        }
    }
}
