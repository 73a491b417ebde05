//! `TXT`: one IPv4 address, CIDR block, domain or `*.` wildcard domain per line; Ward also takes a
//! file's SHA-256 (64 hex digits), as operators keep malware hash lists in the same plain form.
//!
//! Ward also skips lines starting with `#`, so curated files can carry a header explaining them.

use super::{ParsedList, numbered_lines};
use crate::intel::indicator::Indicator;

pub(super) fn parse(text: &str, out: &mut ParsedList) {
    for (line, content) in numbered_lines(text) {
        if content.starts_with('#') {
            continue;
        }
        out.push(line, Indicator::parse(content));
    }
}
