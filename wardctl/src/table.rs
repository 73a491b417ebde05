//! Aligned columns for people: every column as wide as its widest cell, the last one unpadded.

pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let headers: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let last = row.len() - 1;
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if i < last {
                    line.extend(std::iter::repeat_n(
                        ' ',
                        widths[i] - cell.chars().count() + 2,
                    ));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Shortens free text (titles, descriptions) to `max` characters; control characters become spaces
/// so attacker-controlled fields cannot move the cursor or forge lines.
pub fn cell(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match clean.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &clean[..i]),
        None => clean,
    }
}

/// GuardDuty's severity bands (the collector's `SeverityLevel`; repeated here so wardctl stays a
/// small HTTP client without the collector's dependencies).
pub fn severity_label(severity: f64) -> &'static str {
    match severity {
        s if s >= 9.0 => "Critical",
        s if s >= 7.0 => "High",
        s if s >= 4.0 => "Medium",
        _ => "Low",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_cells_are_cleaned() {
        let mut t = Table::new(&["ID", "SEVERITY", "TITLE"]);
        t.row(vec!["a".into(), "High 8".into(), "x".into()]);
        t.row(vec![
            "bbbb".into(),
            "Low 2".into(),
            cell("evil\x1b[2Jtitle", 40),
        ]);
        assert_eq!(
            t.render(),
            "ID    SEVERITY  TITLE\na     High 8    x\nbbbb  Low 2     evil [2Jtitle\n"
        );
        assert_eq!(cell("abcdef", 3), "abc…");
        assert_eq!(severity_label(8.0), "High");
        assert_eq!(severity_label(9.0), "Critical");
        assert_eq!(severity_label(3.9), "Low");
    }
}
