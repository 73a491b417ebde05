//! VPC Flow Logs delivered as Parquet (the S3 destination's "Parquet" file format): one column
//! per flow-log field, named as the field with `-` written `_` (`log_status`, `pkt_srcaddr`),
//! integers as INT32/INT64 and everything else as UTF-8 strings, null for `-`.
//!
//! Each row is rendered back into the text form (fields in column order, space-separated, `-`
//! for null) and parsed by the text reader's line parser. A Parquet record is therefore exactly
//! the record the text delivery of the same data gives, with the same validation (a port that
//! does not fit, an address that is not one), and [`FlowRecord::line`] stays the way to reach
//! columns this collector does not know.
//!
//! Columns are read in batches with the low-level column readers (no Arrow, no row objects), so
//! memory stays at one batch of values per column beyond the object itself. A file that cannot
//! be opened as Parquet (truncated, corrupt footer) is one malformed object; a damaged column
//! chunk stops the object at that row, keeping the rows before it.

use super::Ctx;
use super::vpcflow::parse_line;
use crate::event::Record;
use crate::event::flow::FlowFormat;
use bytes::Bytes;
use parquet::column::reader::ColumnReader;
use parquet::data_type::ByteArray;
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::SerializedFileReader;
use std::fmt::Write as _;

/// First (and last) four bytes of every Parquet file.
pub(crate) const MAGIC: &[u8; 4] = b"PAR1";

/// Rows decoded per column at a time.
const BATCH: usize = 8192;

/// Reads one Parquet object. Records are reported at line 1 with their 0-based row index.
pub(crate) fn read(data: Bytes, ctx: &mut Ctx<'_>) {
    let reader = match SerializedFileReader::new(data) {
        Ok(r) => r,
        Err(e) => {
            ctx.malformed(None, None, format_args!("not a readable Parquet file: {e}"));
            return;
        }
    };
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let mut columns = Vec::with_capacity(schema.num_columns());
    for c in schema.columns() {
        if c.max_rep_level() > 0 || c.path().parts().len() != 1 {
            ctx.malformed(
                None,
                None,
                format_args!(
                    "column {} is nested or repeated: not a flow-log Parquet file",
                    c.path()
                ),
            );
            return;
        }
        columns.push(c.name().to_owned());
    }
    let fields: Vec<String> = columns.iter().map(|c| c.replace('_', "-")).collect();
    let format = match FlowFormat::parse(&fields.join(" ")) {
        Ok(f) => f,
        Err(e) => {
            ctx.malformed(
                None,
                None,
                format_args!("columns are not flow-log fields: {e}"),
            );
            return;
        }
    };
    let mut row = 0u64;
    let mut line = String::new();
    for g in 0..reader.num_row_groups() {
        if let Err(e) = read_group(&reader, g, &format, &columns, ctx, &mut row, &mut line) {
            ctx.malformed(
                None,
                Some(row),
                format_args!("Parquet data unreadable from this row on (row group {g}): {e}"),
            );
            return;
        }
    }
}

/// Reads row group `g`, emitting its rows. `row` counts rows across the file; `names` are the
/// Parquet column names (for messages).
fn read_group(
    reader: &SerializedFileReader<Bytes>,
    g: usize,
    format: &FlowFormat,
    names: &[String],
    ctx: &mut Ctx<'_>,
    row: &mut u64,
    line: &mut String,
) -> Result<(), String> {
    let rg = reader.get_row_group(g).map_err(|e| e.to_string())?;
    let mut columns = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let max_def = rg.metadata().column(i).column_descr().max_def_level();
        let reader = rg.get_column_reader(i).map_err(|e| e.to_string())?;
        columns.push(Column::new(name, reader, max_def)?);
    }
    let mut left = usize::try_from(rg.metadata().num_rows()).map_err(|e| e.to_string())?;
    while left > 0 {
        let want = left.min(BATCH);
        for c in &mut columns {
            c.fill(want)?;
        }
        for _ in 0..want {
            line.clear();
            let mut bad = None;
            for (j, c) in columns.iter_mut().enumerate() {
                if j > 0 {
                    line.push(' ');
                }
                if let Err(e) = c.write_next(line) {
                    bad.get_or_insert(e);
                }
            }
            match bad {
                Some(e) => ctx.malformed(None, Some(*row), e),
                None => match parse_line(line, format) {
                    Ok(rec) => ctx.emit(1, Some(*row), Record::Flow(&rec)),
                    Err(e) => ctx.malformed(None, Some(*row), e),
                },
            }
            *row += 1;
        }
        left -= want;
    }
    Ok(())
}

/// One column's reader and its current batch.
struct Column<'n> {
    name: &'n str,
    reader: ColumnReader,
    max_def: i16,
    defs: Vec<i16>,
    values: Values,
    /// Next definition level / next non-null value of the batch.
    at_def: usize,
    at_value: usize,
}

enum Values {
    Bool(Vec<bool>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<ByteArray>),
}

impl<'n> Column<'n> {
    fn new(name: &'n str, reader: ColumnReader, max_def: i16) -> Result<Self, String> {
        let values = match &reader {
            ColumnReader::BoolColumnReader(_) => Values::Bool(Vec::new()),
            ColumnReader::Int32ColumnReader(_) => Values::I32(Vec::new()),
            ColumnReader::Int64ColumnReader(_) => Values::I64(Vec::new()),
            ColumnReader::FloatColumnReader(_) => Values::F32(Vec::new()),
            ColumnReader::DoubleColumnReader(_) => Values::F64(Vec::new()),
            ColumnReader::ByteArrayColumnReader(_) => Values::Bytes(Vec::new()),
            ColumnReader::Int96ColumnReader(_) | ColumnReader::FixedLenByteArrayColumnReader(_) => {
                return Err(format!(
                    "column {name} has a type flow logs do not use (INT96 / fixed-length bytes)"
                ));
            }
        };
        Ok(Column {
            name,
            reader,
            max_def,
            defs: Vec::new(),
            values,
            at_def: 0,
            at_value: 0,
        })
    }

    /// Decodes the next `rows` rows of this column.
    fn fill(&mut self, rows: usize) -> Result<(), String> {
        self.defs.clear();
        self.at_def = 0;
        self.at_value = 0;
        let defs = (self.max_def > 0).then_some(&mut self.defs);
        macro_rules! read {
            ($r:expr, $v:expr) => {{
                $v.clear();
                $r.read_records(rows, defs, None, $v)
            }};
        }
        let (got, _, _) = match (&mut self.reader, &mut self.values) {
            (ColumnReader::BoolColumnReader(r), Values::Bool(v)) => read!(r, v),
            (ColumnReader::Int32ColumnReader(r), Values::I32(v)) => read!(r, v),
            (ColumnReader::Int64ColumnReader(r), Values::I64(v)) => read!(r, v),
            (ColumnReader::FloatColumnReader(r), Values::F32(v)) => read!(r, v),
            (ColumnReader::DoubleColumnReader(r), Values::F64(v)) => read!(r, v),
            (ColumnReader::ByteArrayColumnReader(r), Values::Bytes(v)) => read!(r, v),
            _ => unreachable!("values match the reader's type (Column::new)"),
        }
        .map_err(|e| format!("column {}: {e}", self.name))?;
        if got != rows {
            return Err(format!(
                "column {} has {got} of the row group's remaining {rows} rows",
                self.name
            ));
        }
        Ok(())
    }

    /// Appends the next row's value in text form (`-` for null). A value that cannot be a
    /// flow-log field (not UTF-8, containing whitespace) is an error for the row; the batch
    /// position still advances.
    fn write_next(&mut self, out: &mut String) -> Result<(), String> {
        if self.max_def > 0 {
            let def = self.defs[self.at_def];
            self.at_def += 1;
            if def < self.max_def {
                out.push('-');
                return Ok(());
            }
        }
        let i = self.at_value;
        self.at_value += 1;
        match &self.values {
            Values::Bool(v) => out.push_str(if v[i] { "true" } else { "false" }),
            Values::I32(v) => {
                let _ = write!(out, "{}", v[i]);
            }
            Values::I64(v) => {
                let _ = write!(out, "{}", v[i]);
            }
            Values::F32(v) => {
                let _ = write!(out, "{}", v[i]);
            }
            Values::F64(v) => {
                let _ = write!(out, "{}", v[i]);
            }
            Values::Bytes(v) => {
                let text = std::str::from_utf8(v[i].data())
                    .map_err(|e| format!("column {}: value is not UTF-8: {e}", self.name))?;
                if text.is_empty() {
                    // An empty string carries no value: the text form's `-`.
                    out.push('-');
                } else if text.bytes().any(|b| b <= b' ') {
                    out.push('-');
                    return Err(format!(
                        "column {}: value {:?} contains whitespace or control characters",
                        self.name,
                        text.chars().take(64).collect::<String>()
                    ));
                } else {
                    out.push_str(text);
                }
            }
        }
        Ok(())
    }
}
