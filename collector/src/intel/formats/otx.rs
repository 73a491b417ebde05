//! `OTX_CSV` (AlienVault OTX pulse export): `Indicator type, Indicator, Description`.
//!
//! Network types (`IPv4`, `CIDR`, `Domain name` / `domain` / `hostname`) and `FileHash-SHA256` are
//! loaded; other OTX types (URLs, MD5 and SHA-1 hashes, e-mail addresses, CVEs…) are skipped as not
//! applicable; `IPv6` is an error because GuardDuty lists do not support it.

use super::csv::split_fields;
use super::{ParsedList, numbered_lines};
use crate::intel::indicator::Indicator;

pub(super) fn parse(text: &str, out: &mut ParsedList) {
    let mut first = true;
    for (line, content) in numbered_lines(text) {
        let fields = match split_fields(content) {
            Ok(fields) => fields,
            Err(message) => {
                out.error(line, message);
                continue;
            }
        };
        if std::mem::take(&mut first) && fields[0].eq_ignore_ascii_case("indicator type") {
            continue;
        }
        if fields.len() < 2 {
            out.error(line, "expected `Indicator type, Indicator, Description`");
            continue;
        }
        let (kind, value) = (fields[0].to_ascii_lowercase(), fields[1].as_str());
        let parsed = Indicator::parse(value);
        let result = match kind.as_str() {
            "ipv4" => parsed.and_then(|i| match i {
                Indicator::Ip(_) => Ok(i),
                _ => Err(format!(
                    "{value:?} is not a single IPv4 address (type IPv4)"
                )),
            }),
            "cidr" => parsed.and_then(|i| match i {
                Indicator::Cidr(..) | Indicator::Ip(_) => Ok(i),
                _ => Err(format!("{value:?} is not a CIDR block (type CIDR)")),
            }),
            "domain name" | "domain" | "hostname" => parsed.and_then(|i| match i {
                Indicator::Domain(_) | Indicator::WildcardDomain(_) => Ok(i),
                _ => Err(format!(
                    "{value:?} is not a domain name (type {})",
                    fields[0]
                )),
            }),
            "filehash-sha256" => parsed.and_then(|i| match i {
                Indicator::Sha256(_) => Ok(i),
                _ => Err(format!("{value:?} is not a SHA-256 (type FileHash-SHA256)")),
            }),
            "ipv6" => Err("IPv6 indicators are not supported in GuardDuty lists".into()),
            "" => Err("missing indicator type".into()),
            _ => {
                out.skipped += 1;
                continue;
            }
        };
        out.push(line, result);
    }
}
