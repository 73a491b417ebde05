//! VPC Flow Logs delivered as Parquet: files written here with the `parquet` crate's writer in the
//! schema AWS documents (columns named as the fields with `_`, INT32/INT64 integers, UTF-8
//! strings, null for `-`) read to exactly the records of the text delivery of the same data,
//! through the file reader, `ward-collector scan` and the directory source; a damaged Parquet
//! file is reported with its name and does not stop the other files.

use parquet::basic::{Compression, GzipLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use ward_collector::event::flow::FlowFormat;
use ward_collector::event::{Event, Record, SourceKind};
use ward_collector::logs::checkpoint::Checkpoint;
use ward_collector::logs::dirsource::DirSource;
use ward_collector::logs::scan::scan_path;
use ward_collector::logs::{Problem, ReadOptions, Sink};

/// v5 fields plus one this collector does not know (`future_field`), in a custom order.
const FIELDS: &[(&str, Kind)] = &[
    ("version", Kind::I32),
    ("account_id", Kind::Str),
    ("interface_id", Kind::Str),
    ("srcaddr", Kind::Str),
    ("dstaddr", Kind::Str),
    ("srcport", Kind::I32),
    ("dstport", Kind::I32),
    ("protocol", Kind::I32),
    ("packets", Kind::I64),
    ("bytes", Kind::I64),
    ("start", Kind::I64),
    ("end", Kind::I64),
    ("action", Kind::Str),
    ("log_status", Kind::Str),
    ("vpc_id", Kind::Str),
    ("subnet_id", Kind::Str),
    ("instance_id", Kind::Str),
    ("tcp_flags", Kind::I32),
    ("type", Kind::Str),
    ("pkt_srcaddr", Kind::Str),
    ("pkt_dstaddr", Kind::Str),
    ("region", Kind::Str),
    ("az_id", Kind::Str),
    ("sublocation_type", Kind::Str),
    ("sublocation_id", Kind::Str),
    ("pkt_src_aws_service", Kind::Str),
    ("pkt_dst_aws_service", Kind::Str),
    ("flow_direction", Kind::Str),
    ("traffic_path", Kind::I32),
    ("future_field", Kind::Str),
];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    I32,
    I64,
    Str,
}

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Int(i64),
    Str(String),
}

/// Row `i` of the generated data: `None` is a null (`-` in text).
fn row(i: usize) -> Vec<Option<Value>> {
    let s = |v: String| Some(Value::Str(v));
    let n = |v: i64| Some(Value::Int(v));
    let start = 1_700_000_000 + i as i64;
    if i % 50 == 7 {
        // NODATA: only the interface and the interval are known.
        let mut r = vec![None; FIELDS.len()];
        r[0] = n(5);
        r[1] = s("123456789012".into());
        r[2] = s(format!("eni-{i:017x}"));
        r[10] = n(start);
        r[11] = n(start + 60);
        r[13] = s("NODATA".into());
        return r;
    }
    let v6 = i.is_multiple_of(9);
    let (src, dst) = if v6 {
        (
            format!("2001:db8::{:x}", i + 1),
            "2001:db8:ffff::1".to_string(),
        )
    } else {
        (
            format!("10.0.{}.{}", (i / 250) % 256, 1 + i % 250),
            format!("198.51.100.{}", 1 + i % 200),
        )
    };
    vec![
        n(5),
        s("123456789012".into()),
        s(format!("eni-{i:017x}")),
        s(src.clone()),
        s(dst.clone()),
        n((1024 + i % 60000) as i64),
        n([22, 80, 443, 3389][i % 4]),
        n([6, 17, 1][i % 3]),
        n(1 + (i % 100) as i64),
        n(40 * (1 + (i % 100) as i64) + 5_000_000_000),
        n(start),
        n(start + 59),
        s(if i.is_multiple_of(10) {
            "REJECT"
        } else {
            "ACCEPT"
        }
        .into()),
        s("OK".into()),
        s("vpc-0abc".into()),
        s(format!("subnet-{:08x}", i % 4)),
        if i.is_multiple_of(3) {
            None
        } else {
            s(format!("i-{i:017x}"))
        },
        n([0, 2, 3, 18, 19][i % 5]),
        s(if v6 { "IPv6" } else { "IPv4" }.into()),
        s(src),
        if i.is_multiple_of(4) {
            s("203.0.113.9".into())
        } else {
            s(dst)
        },
        s("us-east-1".into()),
        s("use1-az4".into()),
        None,
        None,
        if i.is_multiple_of(6) {
            s("S3".into())
        } else {
            None
        },
        None,
        s(if i.is_multiple_of(2) {
            "ingress"
        } else {
            "egress"
        }
        .into()),
        if i.is_multiple_of(2) { None } else { n(8) },
        s(format!("f{i}")),
    ]
}

fn text_line(r: &[Option<Value>]) -> String {
    r.iter()
        .map(|v| match v {
            None => "-".to_string(),
            Some(Value::Int(n)) => n.to_string(),
            Some(Value::Str(s)) => s.clone(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn text_file(path: &Path, rows: &[Vec<Option<Value>>]) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let header: Vec<String> = FIELDS.iter().map(|(n, _)| n.replace('_', "-")).collect();
    writeln!(f, "{}", header.join(" ")).unwrap();
    for r in rows {
        writeln!(f, "{}", text_line(r)).unwrap();
    }
}

fn schema() -> String {
    let mut s = String::from("message flow_log {\n");
    for (name, kind) in FIELDS {
        let t = match kind {
            Kind::I32 => "INT32",
            Kind::I64 => "INT64",
            Kind::Str => "BYTE_ARRAY",
        };
        let ann = if *kind == Kind::Str { " (UTF8)" } else { "" };
        s.push_str(&format!("  OPTIONAL {t} {name}{ann};\n"));
    }
    s.push('}');
    s
}

/// Writes `rows` as Parquet, `per_group` rows per row group.
fn parquet_file(path: &Path, rows: &[Vec<Option<Value>>], per_group: usize, c: Compression) {
    let schema = Arc::new(parse_message_type(&schema()).unwrap());
    let props = Arc::new(WriterProperties::builder().set_compression(c).build());
    let file = std::fs::File::create(path).unwrap();
    let mut w = SerializedFileWriter::new(file, schema, props).unwrap();
    for group in rows.chunks(per_group) {
        let mut rg = w.next_row_group().unwrap();
        let mut col = 0;
        while let Some(mut cw) = rg.next_column().unwrap() {
            let defs: Vec<i16> = group.iter().map(|r| r[col].is_some() as i16).collect();
            let present = group.iter().filter_map(|r| r[col].as_ref());
            match FIELDS[col].1 {
                Kind::I32 => {
                    let v: Vec<i32> = present
                        .map(|v| match v {
                            Value::Int(n) => *n as i32,
                            Value::Str(_) => unreachable!(),
                        })
                        .collect();
                    cw.typed::<Int32Type>()
                        .write_batch(&v, Some(&defs), None)
                        .unwrap();
                }
                Kind::I64 => {
                    let v: Vec<i64> = present
                        .map(|v| match v {
                            Value::Int(n) => *n,
                            Value::Str(_) => unreachable!(),
                        })
                        .collect();
                    cw.typed::<Int64Type>()
                        .write_batch(&v, Some(&defs), None)
                        .unwrap();
                }
                Kind::Str => {
                    let v: Vec<ByteArray> = present
                        .map(|v| match v {
                            Value::Str(s) => ByteArray::from(s.as_str()),
                            Value::Int(_) => unreachable!(),
                        })
                        .collect();
                    cw.typed::<ByteArrayType>()
                        .write_batch(&v, Some(&defs), None)
                        .unwrap();
                }
            }
            cw.close().unwrap();
            col += 1;
        }
        rg.close().unwrap();
    }
    w.close().unwrap();
}

/// Every record as its full debug form with its index, plus every problem.
#[derive(Default)]
struct Collect {
    records: Vec<String>,
    future: Vec<Option<String>>,
    problems: Vec<String>,
    format: Option<FlowFormat>,
}

impl Sink for Collect {
    fn event(&mut self, e: &Event<'_>) {
        let Record::Flow(r) = e.record else {
            panic!("not a flow record")
        };
        self.records.push(format!("{r:?}"));
        let f = self.format.get_or_insert_with(|| {
            let names: Vec<String> = FIELDS.iter().map(|(n, _)| n.replace('_', "-")).collect();
            FlowFormat::parse(&names.join(" ")).unwrap()
        });
        self.future
            .push(r.field(f, "future-field").map(str::to_owned));
    }
    fn malformed(&mut self, p: &Problem<'_>) {
        self.problems.push(p.to_string());
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ward-parquet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn read(path: &Path) -> (Collect, ward_collector::logs::Counts) {
    let mut sink = Collect::default();
    let c = scan_path(
        SourceKind::VpcFlow,
        path,
        &ReadOptions::default(),
        &mut sink,
    )
    .unwrap();
    (sink, c)
}

#[test]
fn parquet_records_equal_the_text_records() {
    let dir = temp_dir("equal");
    // More rows than one decoding batch, in several row groups of uneven size.
    let rows: Vec<_> = (0..20_000).map(row).collect();
    text_file(&dir.join("flows.log"), &rows);
    let gz = Compression::GZIP(GzipLevel::default());
    parquet_file(&dir.join("flows.log.parquet"), &rows, 9_000, gz);
    parquet_file(
        &dir.join("flows-snappy.log.parquet"),
        &rows,
        20_000,
        Compression::SNAPPY,
    );

    let (text, tc) = read(&dir.join("flows.log"));
    assert_eq!(
        (tc.records, tc.malformed),
        (20_000, 0),
        "{:?}",
        text.problems
    );
    for name in ["flows.log.parquet", "flows-snappy.log.parquet"] {
        let (pq, pc) = read(&dir.join(name));
        assert_eq!(pc.malformed, 0, "{name}: {:?}", pq.problems);
        assert_eq!(pc.records, 20_000, "{name}");
        assert!(pq.records == text.records, "{name}: records differ");
        assert_eq!(pq.future[42].as_deref(), Some("f42"), "{name}");
        assert_eq!(pq.future, text.future, "{name}");
    }
    // Spot checks that the comparison is about real values.
    assert!(text.records[0].contains("srcaddr: Some(2001:db8::1)"));
    assert!(text.records[7].contains("log_status: Some(NoData)"));
    assert!(text.records[1].contains("bytes: Some(5000000080)"));

    // The gzip layer S3 delivery may add around the object is taken off first.
    let raw = std::fs::read(dir.join("flows.log.parquet")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&raw).unwrap();
    std::fs::write(dir.join("flows.log.parquet.gz"), enc.finish().unwrap()).unwrap();
    let (pq, pc) = read(&dir.join("flows.log.parquet.gz"));
    assert_eq!((pc.records, pc.malformed), (20_000, 0), "{:?}", pq.problems);
    assert!(pq.records == text.records);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_values_are_rows_not_files() {
    let dir = temp_dir("badrows");
    let mut rows: Vec<_> = (1..=5).map(row).collect();
    rows[1][5] = Some(Value::Int(70_000)); // srcport out of range
    rows[3][1] = Some(Value::Str("1234 5678".into())); // a space would split the text form
    let path = dir.join("bad.log.parquet");
    parquet_file(&path, &rows, 5, Compression::SNAPPY);
    let (seen, c) = read(&path);
    assert_eq!((c.records, c.malformed), (3, 2));
    assert!(
        seen.problems[0].contains("bad.log.parquet record #1: invalid srcport value \"70000\""),
        "{:?}",
        seen.problems
    );
    assert!(
        seen.problems[1].contains("record #3: column account_id: value \"1234 5678\""),
        "{:?}",
        seen.problems
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scan_reads_parquet_and_reports_damaged_files_by_name() {
    let dir = temp_dir("scan");
    let rows: Vec<_> = (0..3_000).map(row).collect();
    let good = dir.join("a-good.log.parquet");
    parquet_file(&good, &rows, 1_000, Compression::SNAPPY);
    let bytes = std::fs::read(&good).unwrap();
    // Cut in half: the footer (schema, row groups) is gone.
    std::fs::write(
        dir.join("b-truncated.log.parquet"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    // Footer intact, a data page overwritten: the first row group is damaged.
    let mut corrupt = bytes.clone();
    for b in &mut corrupt[200..1200] {
        *b = 0xA5;
    }
    std::fs::write(dir.join("c-corrupt.log.parquet"), &corrupt).unwrap();
    text_file(&dir.join("d-text.log"), &rows[..10]);

    let out = Command::new(env!("CARGO_BIN_EXE_ward-collector"))
        .args(["scan", "--vpc-flow"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("scan summary:"))
        .unwrap();
    let records: u64 = summary
        .split("records=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // All of the good file and the text file; what the corrupt file yields before its damage.
    assert!(
        (3_010..3_010 + 3_000).contains(&records),
        "{summary}\n{stderr}"
    );
    assert!(summary.contains("objects=4"), "{summary}");
    let problem = |name: &str| {
        stderr
            .lines()
            .find(|l| l.starts_with("malformed:") && l.contains(name))
            .unwrap_or_else(|| panic!("no problem reported for {name}:\n{stderr}"))
            .to_string()
    };
    assert!(problem("b-truncated.log.parquet").contains("not a readable Parquet file"));
    problem("c-corrupt.log.parquet");
    assert!(!stderr.contains("a-good.log.parquet:"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn directory_source_reads_parquet_once() {
    let root = temp_dir("dirsource");
    let logs = root.join("AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/01/02");
    std::fs::create_dir_all(&logs).unwrap();
    let rows: Vec<_> = (0..500).map(row).collect();
    parquet_file(
        &logs.join("123456789012_vpcflowlogs_us-east-1_fl-1_20240102T0000Z_ab.log.parquet"),
        &rows,
        500,
        Compression::GZIP(GzipLevel::default()),
    );
    let mut ckpt = Checkpoint::open(&root.join("ckpt.jsonl")).unwrap();
    let mut src = DirSource::new(
        SourceKind::VpcFlow,
        root.join("AWSLogs"),
        ReadOptions::default(),
        Duration::ZERO,
    );
    let mut sink = Collect::default();
    let c = src.poll(&mut ckpt, &mut sink).unwrap();
    assert_eq!((c.objects, c.records, c.malformed), (1, 500, 0));
    assert_eq!(src.poll(&mut ckpt, &mut sink).unwrap().records, 0);
    std::fs::remove_dir_all(&root).unwrap();
}
