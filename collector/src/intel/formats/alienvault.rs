//! `ALIEN_VAULT` (AlienVault IP reputation feed): `#`-separated
//! `indicator#reliability#risk#type#country#city#lat,lon#n`. The indicator is the first field.

use super::{ParsedList, numbered_lines};
use crate::intel::indicator::Indicator;

pub(super) fn parse(text: &str, out: &mut ParsedList) {
    for (line, content) in numbered_lines(text) {
        let mut fields = content.split('#');
        let indicator = fields.next().unwrap_or("").trim();
        if fields.next().is_none() {
            out.error(
                line,
                "expected `indicator#reliability#risk#type#country#city#lat,lon#n`",
            );
            continue;
        }
        if indicator.is_empty() {
            out.error(line, "missing indicator before the first `#`");
            continue;
        }
        out.push(
            line,
            super::network_only(Indicator::parse(indicator), "ALIEN_VAULT"),
        );
    }
}
