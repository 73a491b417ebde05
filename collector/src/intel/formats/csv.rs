//! The small CSV subset the CSV-based list formats use: comma-separated fields on one line,
//! optionally double-quoted (with `""` for a quote inside), whitespace around fields trimmed.

/// Splits one line into trimmed fields, or says why the quoting is broken.
pub(super) fn split_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".into()),
                }
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => return Err(format!("unexpected {c:?} after a quoted field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim().to_owned());
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
            fields.push(field.trim().to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_fields;

    #[test]
    fn splits_plain_quoted_and_empty_fields() {
        assert_eq!(split_fields("a, b ,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            split_fields("198.51.100.1, 1, 100, 2000-01-01, 2000-01-01,")
                .unwrap()
                .len(),
            6
        );
        assert_eq!(
            split_fields(r#""x, y", "say ""hi""",z"#).unwrap(),
            ["x, y", r#"say "hi""#, "z"]
        );
        assert_eq!(split_fields("").unwrap(), [""]);
        assert_eq!(split_fields(",").unwrap(), ["", ""]);
    }

    #[test]
    fn reports_broken_quoting() {
        assert!(
            split_fields(r#""open, b"#)
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(
            split_fields(r#""a"b, c"#)
                .unwrap_err()
                .contains("after a quoted field")
        );
    }
}
