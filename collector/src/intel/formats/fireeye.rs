//! `FIRE_EYE` (FireEye iSIGHT CSV export): a 47-column header; network indicators sit in the
//! `cidr`, `ip` and `domain` columns, a file's SHA-256 in `sha256`. Rows without any (MD5-only
//! file or e-mail indicators) are skipped.
//! A row whose column count differs from the header's is an error: its values would land in the
//! wrong columns.

use super::csv::split_fields;
use super::{ParsedList, numbered_lines};
use crate::intel::indicator::Indicator;

const INDICATOR_COLUMNS: [&str; 4] = ["cidr", "ip", "domain", "sha256"];

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
            INDICATOR_COLUMNS
                .iter()
                .find(|c| c.eq_ignore_ascii_case(name))
                .map(|c| (i, *c))
        })
        .collect();
    if columns.is_empty() {
        out.error(
            header_line,
            "header has none of the columns `cidr`, `ip`, `domain`, `sha256`; is this a FIRE_EYE file?",
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
                let expected = match column {
                    "domain" => indicator.is_domain(),
                    "sha256" => indicator.is_file_hash(),
                    _ => !indicator.is_domain() && !indicator.is_file_hash(),
                };
                if expected {
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
