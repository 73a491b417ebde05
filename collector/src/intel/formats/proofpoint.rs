//! `PROOF_POINT` (Proofpoint ET intelligence CSV):
//! `ip|domain, category, score, first_seen, last_seen, ports (|)`. Only the first column matters to
//! GuardDuty; the header's first cell says whether the file holds IPs or domains.

use super::csv::split_fields;
use super::{ParsedList, numbered_lines};
use crate::intel::indicator::Indicator;

#[derive(Clone, Copy, PartialEq)]
enum Column {
    Ip,
    Domain,
    /// No header line: accept either kind.
    Unknown,
}

pub(super) fn parse(text: &str, out: &mut ParsedList) {
    let mut column = Column::Unknown;
    let mut first = true;
    for (line, content) in numbered_lines(text) {
        let fields = match split_fields(content) {
            Ok(fields) => fields,
            Err(message) => {
                out.error(line, message);
                continue;
            }
        };
        if std::mem::take(&mut first) {
            match fields[0].to_ascii_lowercase().as_str() {
                "ip" => {
                    column = Column::Ip;
                    continue;
                }
                "domain" => {
                    column = Column::Domain;
                    continue;
                }
                _ => {}
            }
        }
        let value = &fields[0];
        let result = super::network_only(Indicator::parse(value), "PROOF_POINT").and_then(
            |indicator| match (column, indicator.is_domain()) {
                (Column::Ip, true) => Err(format!(
                    "{value:?} is a domain in a file whose header says `ip`"
                )),
                (Column::Domain, false) => Err(format!(
                    "{value:?} is an address in a file whose header says `domain`"
                )),
                _ => Ok(indicator),
            },
        );
        out.push(line, result);
    }
}
