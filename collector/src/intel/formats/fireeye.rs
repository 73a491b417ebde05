//! `FIRE_EYE` (FireEye iSIGHT CSV export): a 47-column header; network indicators sit in the
//! `cidr`, `ip` and `domain` columns. Rows without any (file or e-mail indicators) are skipped.
//! A row whose column count differs from the header's is an error: its values would land in the
//! wrong columns.

use super::csv::split_fields;
use super::{ParsedList, numbered_lines};
use crate::intel::indicator::Indicator;

const NETWORK_COLUMNS: [&str; 3] = ["cidr", "ip", "domain"];

pub(super) fn parse(text: &str, out: &mut ParsedList) {
    let mut lines = numbered_lines(text);
    let Some((header_line, header)) = lines.next() else {
        return;
    };
    let header = match split_fields(header) {
        Ok(fields) => fields,
        Err(message) => {
            out.error(header_line, format!("header: {message}"));
            return;
        }
    };
    let columns: Vec<(usize, &str)> = header
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            NETWORK_COLUMNS
                .iter()
                .find(|c| c.eq_ignore_ascii_case(name))
                .map(|c| (i, *c))
        })
        .collect();
    if columns.is_empty() {
        out.error(
            header_line,
            "header has none of the columns `cidr`, `ip`, `domain`; is this a FIRE_EYE file?",
        );
        return;
    }
    for (line, content) in lines {
        let fields = match split_fields(content) {
            Ok(fields) => fields,
            Err(message) => {
                out.error(line, message);
                continue;
            }
        };
        if fields.len() != header.len() {
            out.error(
                line,
                format!("{} columns, the header has {}", fields.len(), header.len()),
            );
            continue;
        }
        let mut found = false;
        for &(index, column) in &columns {
            let value = fields[index].as_str();
            if value.is_empty() {
                continue;
            }
            found = true;
            let result = Indicator::parse(value).and_then(|indicator| {
                if indicator.is_domain() == (column == "domain") {
                    Ok(indicator)
                } else {
                    Err(format!(
                        "{value:?} does not belong in the `{column}` column"
                    ))
                }
            });
            out.push(line, result);
        }
        if !found {
            out.skipped += 1;
        }
    }
}
