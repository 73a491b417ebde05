//! Route 53 Resolver query-log record (spec §9.3).

use super::json::{Field, Json, RawJson, ReadField, Text, extra_get, json_record, read_list_at};
use super::jsonread::{self, Reader};
use super::net::parse_ip_lenient;
use super::time::parse_iso8601_ms;
use serde::de::MapAccess;
use std::net::IpAddr;

json_record! {
    /// One DNS query as logged by the Route 53 Resolver.
    pub struct DnsQuery<'a> {
        "version" => version: Text<'a>,
        "account_id" => account_id: Text<'a>,
        "region" => region: Text<'a>,
        "vpc_id" => vpc_id: Text<'a>,
        "query_timestamp" => query_timestamp: Text<'a>,
        "query_name" => query_name: Text<'a>,
        "query_type" => query_type: Text<'a>,
        "query_class" => query_class: Text<'a>,
        "rcode" => rcode: Text<'a>,
        "answers" => answers: Answers<'a>,
        "srcaddr" => srcaddr: Text<'a>,
        /// A string in AWS output (`"56067"`); a number is kept in `extra`, see [`DnsQuery::src_port`].
        "srcport" => srcport: Text<'a>,
        "transport" => transport: Text<'a>,
        "srcids" => srcids: SrcIds<'a>,
        "firewall_rule_group_id" => firewall_rule_group_id: Text<'a>,
        "firewall_rule_action" => firewall_rule_action: Text<'a>,
        "firewall_domain_list_id" => firewall_domain_list_id: Text<'a>,
    }
}

json_record! {
    /// `srcids`: whichever of instance / resolver endpoint apply.
    pub struct SrcIds<'a> {
        "instance" => instance: Text<'a>,
        "resolver_endpoint" => resolver_endpoint: Text<'a>,
        "resolver_network_interface" => resolver_network_interface: Text<'a>,
    }
}

json_record! {
    /// One answer record.
    pub struct Answer<'a> {
        "Rdata" => rdata: Text<'a>,
        "Type" => answer_type: Text<'a>,
        "Class" => class: Text<'a>,
    }
}

/// `answers` is an array in AWS output; some exporters flatten a single answer to an object.
/// Both are accepted (and serialised back as an array).
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(transparent)]
pub struct Answers<'a>(pub Vec<Answer<'a>>);

impl<'a> Field<'a> for Answers<'a> {
    fn read<M: MapAccess<'a>>(map: &mut M) -> Result<Result<Self, Json<'a>>, M::Error> {
        let raw: RawJson<'a> = map.next_value()?;
        let parsed = if raw.get().starts_with('{') {
            serde_json::from_str::<Answer<'a>>(raw.get()).map(|a| Answers(vec![a]))
        } else {
            serde_json::from_str(raw.get()).map(Answers)
        };
        Ok(parsed.map_err(|_| Json::Raw(raw)))
    }
}

impl<'a> ReadField<'a> for Answers<'a> {
    fn read_field(
        slot: &mut Option<Self>,
        r: &mut Reader<'a>,
    ) -> jsonread::Result<Option<Json<'a>>> {
        if r.peek() == Some(b'{') {
            let mut one = None;
            let mismatch = Answer::read_field(&mut one, r)?;
            *slot = one.map(|a| Answers(vec![a]));
            return Ok(mismatch);
        }
        let mark = r.mark();
        Ok(match read_list_at(r)? {
            Some(v) => {
                *slot = Some(Answers(v));
                None
            }
            None => Some(Json::Raw(RawJson::from_checked(r.raw_from(mark)?))),
        })
    }
}

impl SrcIds<'_> {
    /// The resolver endpoint id; the AWS doc example spells the key `resolver-endpoint`.
    pub fn resolver_endpoint(&self) -> Option<&str> {
        if let Some(v) = &self.resolver_endpoint {
            return Some(v);
        }
        match extra_get(&self.extra, "resolver-endpoint")? {
            Json::Raw(r) => {
                let s = r.get();
                (s.len() >= 2 && s.starts_with('"') && !s.contains('\\'))
                    .then(|| &s[1..s.len() - 1])
            }
            Json::Value(v) => v.as_str(),
        }
    }
}

impl DnsQuery<'_> {
    pub fn time_ms(&self) -> Option<i64> {
        self.query_timestamp.as_deref().and_then(parse_iso8601_ms)
    }

    pub fn src_ip(&self) -> Option<IpAddr> {
        self.srcaddr.as_deref().and_then(parse_ip_lenient)
    }

    /// `srcport` whether it was written as a string or a number.
    pub fn src_port(&self) -> Option<u16> {
        match &self.srcport {
            Some(p) => p.trim().parse().ok(),
            None => match extra_get(&self.extra, "srcport")? {
                Json::Raw(r) => r.get().parse().ok(),
                Json::Value(v) => v.as_u64().and_then(|p| u16::try_from(p).ok()),
            },
        }
    }

    /// The instance that sent the query, when it came from one.
    pub fn instance_id(&self) -> Option<&str> {
        self.srcids.as_ref()?.instance.as_deref()
    }

    /// Query name without the trailing root dot, as detections compare domains.
    pub fn domain(&self) -> Option<&str> {
        self.query_name
            .as_deref()
            .map(|q| q.strip_suffix('.').unwrap_or(q))
    }

    pub fn looks_like_query(&self) -> bool {
        self.query_name.is_some()
    }
}
