//! `cargo xtask bench logs`: cloud-log parse throughput of `ward-collector scan --parse-only` (the
//! readers alone), side by side with the Python script a user would otherwise write (`json` / `csv`
//! modules) on the same files, plus gzipped CloudTrail and Parquet flow-log rows.
//!
//! Detection is not measured here: the generated records are nearly all findings (instance
//! credentials used from random addresses), so a plain `scan` would time the JSON output of a
//! finding flood. `cargo xtask bench foundational` measures detection on realistic logs.
//!
//! Files are generated into a temporary directory from a fixed seed (realistic shapes: CloudTrail
//! S3 envelopes with assumed-role identities and request parameters, v2 flow logs with the S3
//! header line, Resolver query logs as JSON Lines). `scan` is single-threaded, so its throughput is
//! per core; the CPU time (user + sys of the child) is reported next to the wall time.

use anyhow::{Context, bail};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Megabytes of CloudTrail logs to generate (S3 envelopes, ~20 MB per file).
    #[arg(long, default_value_t = 200)]
    cloudtrail_mb: u64,
    /// Megabytes of VPC flow logs to generate (v2 with header, ~50 MB per file).
    #[arg(long, default_value_t = 200)]
    vpc_flow_mb: u64,
    /// Megabytes of Route 53 Resolver query logs to generate (JSON Lines, ~50 MB per file).
    #[arg(long, default_value_t = 100)]
    dns_mb: u64,
    /// Runs per measurement; the fastest is reported (for both Rust and Python).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Seed for the generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory for the generated files (default: a fresh temp dir, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Skip the Python baseline.
    #[arg(long)]
    no_python: bool,
    /// Measure this `ward-collector` binary instead of building the workspace's (e.g. an older
    /// build, for a before/after comparison on the same files).
    #[arg(long)]
    exe: Option<PathBuf>,
    /// Skip the gzipped CloudTrail row.
    #[arg(long)]
    no_gzip: bool,
    /// Skip the Parquet flow-log row.
    #[arg(long)]
    no_parquet: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let (dir, remove) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("ward-bench-logs-{}", std::process::id())),
            true,
        ),
    };
    let result = bench(&args, &root, &dir);
    if remove {
        let _ = fs::remove_dir_all(&dir);
    }
    result
}

fn bench(args: &Args, root: &Path, dir: &Path) -> anyhow::Result<()> {
    let exe = match &args.exe {
        Some(exe) => exe.clone(),
        None => build_collector(root)?,
    };

    let mut rng = Rng(args.seed);
    let sources = [
        ("cloudtrail", "--cloudtrail", args.cloudtrail_mb, 20u64),
        ("vpc-flow", "--vpc-flow", args.vpc_flow_mb, 50),
        ("dns", "--dns", args.dns_mb, 50),
    ];
    let t = Instant::now();
    for (name, _, mb, per_file) in sources {
        generate(name, &dir.join(name), mb << 20, per_file << 20, &mut rng)?;
    }
    eprintln!(
        "generated files in {} ({:.1} s, seed {})",
        dir.display(),
        t.elapsed().as_secs_f64(),
        args.seed
    );

    // CloudTrail is delivered gzipped: the same files compressed measure decompression too.
    let gz = if args.no_gzip {
        None
    } else {
        gzip_copy(&dir.join("cloudtrail"), &dir.join("cloudtrail-gz"))?
    };

    // VPC flow logs can be delivered as Parquet: the same records, converted.
    let parquet = if args.no_parquet {
        None
    } else {
        let t = Instant::now();
        let out = dir.join("vpc-flow-parquet");
        parquet_copy(&dir.join("vpc-flow"), &out)?;
        eprintln!(
            "converted flow logs to Parquet in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        Some(out)
    };

    let python = if args.no_python { None } else { find_python() };
    if python.is_none() && !args.no_python {
        eprintln!("python3 not found: baseline skipped");
    }

    // (label, scan flag, directory, python kind, python's directory)
    let mut cases: Vec<(String, &str, PathBuf, &str, PathBuf)> = Vec::new();
    for (name, flag, _, _) in sources {
        let plain = dir.join(name);
        cases.push((name.to_string(), flag, plain.clone(), name, plain.clone()));
        if let Some(gz) = gz.as_ref().filter(|_| name == "cloudtrail") {
            cases.push(("cloudtrail .gz".into(), flag, gz.clone(), name, gz.clone()));
        }
        if let Some(pq) = parquet.as_ref().filter(|_| name == "vpc-flow") {
            // Python's baseline stays csv on the text form of the same records.
            cases.push(("vpc-flow parquet".into(), flag, pq.clone(), name, plain));
        }
    }

    let mut rows = Vec::new();
    let mut py_cache: Vec<(PathBuf, f64)> = Vec::new();
    for (label, flag, sub, kind, py_dir) in &cases {
        let bytes = dir_bytes(&dir.join(kind))?;
        let mut best: Option<Measure> = None;
        let mut records = 0;
        for _ in 0..args.runs {
            let mut cmd = Command::new(&exe);
            cmd.arg("scan").arg(flag).arg(sub).arg("--parse-only");
            let (m, stderr) = time_child(&mut cmd)?;
            records =
                parse_records(&stderr, kind).with_context(|| format!("scan output: {stderr}"))?;
            best = Some(best.map_or(m, |b: Measure| b.min(m)));
        }
        let rust = best.unwrap();
        let cached = py_cache.iter().find(|(p, _)| p == py_dir).map(|(_, s)| *s);
        let py = match (&python, cached) {
            (Some(_), Some(secs)) => Some(secs),
            (Some(py), None) => {
                let secs = python_baseline(py, kind, py_dir, args.runs, records)?;
                py_cache.push((py_dir.clone(), secs));
                Some(secs)
            }
            (None, _) => None,
        };
        rows.push((label.clone(), bytes, records, rust, py));
    }

    let mut out = String::new();
    writeln!(
        out,
        "\ncloud-log throughput, one core (`ward-collector scan --parse-only`: the readers into a counting sink; best of {} runs each; python on the same files, best of {} runs)",
        args.runs, args.runs
    )?;
    writeln!(
        out,
        "{:<18} {:>8} {:>10} | {:>9} {:>11} {:>9} | {:>9} {:>11} | {:>7}",
        "source",
        "MB",
        "records",
        "rust MB/s",
        "rust rec/s",
        "cpu MB/s",
        "py MB/s",
        "py rec/s",
        "x py"
    )?;
    for (name, bytes, records, rust, py) in &rows {
        let mb = *bytes as f64 / 1e6;
        let (py_mbs, py_rps, ratio) = match py {
            Some(s) => (
                format!("{:.1}", mb / s),
                format!("{:.0}", *records as f64 / s),
                format!("{:.1}", s / rust.wall),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        // CPU time comes in 10 ms ticks: too coarse for tiny inputs.
        let cpu = if rust.cpu >= 0.05 {
            format!("{:.1}", mb / rust.cpu)
        } else {
            "-".into()
        };
        writeln!(
            out,
            "{:<18} {:>8.1} {:>10} | {:>9.1} {:>11.0} {:>9} | {:>9} {:>11} | {:>7}",
            name,
            mb,
            records,
            mb / rust.wall,
            *records as f64 / rust.wall,
            cpu,
            py_mbs,
            py_rps,
            ratio
        )?;
    }
    writeln!(
        out,
        "(MB = 10^6 bytes of uncompressed input (.gz row: the same data compressed; parquet row: the same records as Parquet, python = csv on their text form); rust MB/s and rec/s from wall time of the single-threaded scan, cpu MB/s from its user+sys time; x py = python time / rust time)"
    )?;
    print!("{out}");
    Ok(())
}

/// Builds `ward-collector` in release and returns its path.
fn build_collector(root: &Path) -> anyhow::Result<PathBuf> {
    eprintln!("building ward-collector (release)...");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "-p", "ward-collector"])
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release/ward-collector"))
}

/// Seconds of the fastest of `runs` Python baseline runs over `dir`; its record count must match.
fn python_baseline(
    py: &Path,
    kind: &str,
    dir: &Path,
    runs: u32,
    records: u64,
) -> anyhow::Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..runs {
        let out = Command::new(py)
            .arg("-c")
            .arg(PY_BASELINE)
            .arg(kind)
            .arg(dir)
            .output()?;
        if !out.status.success() {
            bail!(
                "python baseline failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text.split_whitespace();
        let secs: f64 = it.next().context("python output")?.parse()?;
        let n: u64 = it.next().context("python output")?.parse()?;
        if n != records {
            bail!(
                "{}: python counted {n} records, ward-collector {records}",
                dir.display()
            );
        }
        best = best.min(secs);
    }
    Ok(best)
}

/// Gzips every file of `from` into `to` with the `gzip` tool (default level, as AWS writes).
/// None when `gzip` is not installed.
fn gzip_copy(from: &Path, to: &Path) -> anyhow::Result<Option<PathBuf>> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let out = fs::File::create(to.join(format!("{}.gz", e.file_name().to_string_lossy())))?;
        let status = match Command::new("gzip")
            .arg("-c")
            .arg(e.path())
            .stdout(out)
            .status()
        {
            Ok(s) => s,
            Err(_) => {
                eprintln!("gzip not found: .gz row skipped");
                return Ok(None);
            }
        };
        if !status.success() {
            bail!("gzip {} failed", e.path().display());
        }
    }
    Ok(Some(to.to_path_buf()))
}

#[derive(Clone, Copy)]
struct Measure {
    wall: f64,
    cpu: f64,
}

impl Measure {
    fn min(self, o: Measure) -> Measure {
        if o.wall < self.wall { o } else { self }
    }
}

/// Runs `cmd`, returning wall time, the child's CPU time and its stderr.
fn time_child(cmd: &mut Command) -> anyhow::Result<(Measure, String)> {
    let before = crate::cpu::children_secs()?;
    let t = Instant::now();
    let out = cmd.output()?;
    let wall = t.elapsed().as_secs_f64();
    let cpu = crate::cpu::children_secs()? - before;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("scan failed: {stderr}");
    }
    Ok((Measure { wall, cpu }, stderr))
}

fn parse_records(stderr: &str, source: &str) -> anyhow::Result<u64> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("scan summary:"))
        .context("no summary")?;
    let part = line
        .split(';')
        .find(|p| p.contains(&format!("{source}:")))
        .context("source missing")?;
    let malformed: u64 = field(part, "malformed=")?;
    if malformed != 0 {
        bail!("{source}: {malformed} malformed records in generated data");
    }
    field(part, "records=")
}

fn field(part: &str, key: &str) -> anyhow::Result<u64> {
    let i = part.find(key).context("field")? + key.len();
    Ok(part[i..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or("")
        .parse()?)
}

fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut n = 0;
    for e in fs::read_dir(dir)? {
        n += e?.metadata()?.len();
    }
    Ok(n)
}

fn find_python() -> Option<PathBuf> {
    let ok = Command::new("python3")
        .arg("-c")
        .arg("pass")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then(|| PathBuf::from("python3"))
}

/// What a user would script: `json.load` on each CloudTrail file, `csv.reader` on flow logs,
/// `json.loads` per DNS line. It touches one field per record so nothing is optimised away, and
/// does less work than the collector (no typing, no address parsing), which favours Python.
const PY_BASELINE: &str = r#"
import csv, gzip, json, os, sys, time
kind, d = sys.argv[1], sys.argv[2]
files = sorted(os.path.join(d, f) for f in os.listdir(d))
t = time.perf_counter()
n = 0
for p in files:
    if kind == "cloudtrail":
        with (gzip.open if p.endswith(".gz") else open)(p, "rb") as f:
            for r in json.load(f)["Records"]:
                r.get("eventName"); n += 1
    elif kind == "vpc-flow":
        with open(p, newline="") as f:
            rows = csv.reader(f, delimiter=" ")
            next(rows)
            for row in rows:
                row[3]; n += 1
    else:
        with open(p, "rb") as f:
            for line in f:
                json.loads(line).get("query_name"); n += 1
print(time.perf_counter() - t, n)
"#;

/// Writes every flow-log text file of `from` (v2 default fields with a header line) as a Parquet
/// file in `to`, in the schema AWS delivers (columns named with `_`, INT32 / INT64 integers,
/// UTF-8 strings, null for `-`; gzip pages).
fn parquet_copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    use parquet::basic::{Compression, GzipLevel};
    use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use std::sync::Arc;
    // Column type: 0 = INT32, 1 = INT64, 2 = string.
    const COLS: [(&str, u8); 14] = [
        ("version", 0),
        ("account_id", 2),
        ("interface_id", 2),
        ("srcaddr", 2),
        ("dstaddr", 2),
        ("srcport", 0),
        ("dstport", 0),
        ("protocol", 0),
        ("packets", 1),
        ("bytes", 1),
        ("start", 1),
        ("end", 1),
        ("action", 2),
        ("log_status", 2),
    ];
    let mut message = String::from("message flow_log {\n");
    for (name, t) in COLS {
        let t = ["INT32", "INT64", "BYTE_ARRAY"][t as usize];
        let ann = if t == "BYTE_ARRAY" { " (UTF8)" } else { "" };
        let _ = writeln!(message, "  OPTIONAL {t} {name}{ann};");
    }
    message.push('}');
    let schema = Arc::new(parquet::schema::parser::parse_message_type(&message)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::GZIP(GzipLevel::default()))
            .build(),
    );
    fs::create_dir_all(to)?;
    let mut files: Vec<_> = fs::read_dir(from)?.collect::<Result<_, _>>()?;
    files.sort_by_key(|e| e.file_name());
    for e in files {
        let text = fs::read_to_string(e.path())?;
        let name = format!("{}.parquet", e.file_name().to_string_lossy());
        let out = fs::File::create(to.join(name))?;
        let mut w = SerializedFileWriter::new(out, schema.clone(), props.clone())?;
        let lines: Vec<&str> = text.lines().skip(1).collect();
        for group in lines.chunks(256 * 1024) {
            let rows: Vec<Vec<&str>> = group.iter().map(|l| l.split(' ').collect()).collect();
            let mut rg = w.next_row_group()?;
            for (c, (_, t)) in COLS.iter().enumerate() {
                let mut cw = rg.next_column()?.context("column writer")?;
                let defs: Vec<i16> = rows.iter().map(|r| i16::from(r[c] != "-")).collect();
                let present = rows.iter().map(|r| r[c]).filter(|v| *v != "-");
                match t {
                    0 => {
                        let v = present.map(str::parse).collect::<Result<Vec<i32>, _>>()?;
                        cw.typed::<Int32Type>().write_batch(&v, Some(&defs), None)?;
                    }
                    1 => {
                        let v = present.map(str::parse).collect::<Result<Vec<i64>, _>>()?;
                        cw.typed::<Int64Type>().write_batch(&v, Some(&defs), None)?;
                    }
                    _ => {
                        let v: Vec<ByteArray> = present.map(ByteArray::from).collect();
                        cw.typed::<ByteArrayType>()
                            .write_batch(&v, Some(&defs), None)?;
                    }
                }
                cw.close()?;
            }
            rg.close()?;
        }
        w.close()?;
    }
    Ok(())
}

/// SplitMix64: tiny, deterministic, good enough to vary generated fields.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub(crate) fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    pub(crate) fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            let _ = write!(s, "{:016x}", self.next());
        }
        s.truncate(len);
        s
    }
    pub(crate) fn ip(&mut self) -> String {
        let v = self.next();
        format!(
            "{}.{}.{}.{}",
            1 + (v & 0xff) % 223,
            (v >> 8) & 0xff,
            (v >> 16) & 0xff,
            1 + ((v >> 24) & 0xff) % 254
        )
    }
}

fn generate(
    kind: &str,
    dir: &Path,
    total: u64,
    per_file: u64,
    rng: &mut Rng,
) -> anyhow::Result<()> {
    fs::create_dir_all(dir)?;
    let mut written = 0u64;
    let mut file_no = 0;
    while written < total {
        let path = dir.join(match kind {
            "cloudtrail" => format!(
                "123456789012_CloudTrail_us-east-1_20240101T{file_no:04}Z_{}.json",
                rng.hex(16)
            ),
            "vpc-flow" => format!(
                "123456789012_vpcflowlogs_us-east-1_fl-{}_20240101T{file_no:04}Z_{}.log",
                rng.hex(17),
                rng.hex(8)
            ),
            _ => format!("vpcdnsquerylogs_{file_no:04}.log"),
        });
        let mut w = BufWriter::with_capacity(1 << 20, fs::File::create(&path)?);
        let target = per_file.min(total - written);
        let mut n = 0u64;
        let mut buf = String::with_capacity(4096);
        match kind {
            "cloudtrail" => {
                w.write_all(b"{\"Records\":[")?;
                n += 12;
                let mut first = true;
                while n < target {
                    buf.clear();
                    if !first {
                        buf.push(',');
                    }
                    first = false;
                    cloudtrail_record(rng, &mut buf);
                    w.write_all(buf.as_bytes())?;
                    n += buf.len() as u64;
                }
                w.write_all(b"]}")?;
                n += 2;
            }
            "vpc-flow" => {
                let header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n";
                w.write_all(header.as_bytes())?;
                n += header.len() as u64;
                while n < target {
                    buf.clear();
                    flow_line(rng, &mut buf);
                    w.write_all(buf.as_bytes())?;
                    n += buf.len() as u64;
                }
            }
            _ => {
                while n < target {
                    buf.clear();
                    dns_line(rng, &mut buf);
                    w.write_all(buf.as_bytes())?;
                    n += buf.len() as u64;
                }
            }
        }
        w.flush()?;
        written += n;
        file_no += 1;
    }
    Ok(())
}

const EVENTS: &[(&str, &str)] = &[
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("ec2.amazonaws.com", "RunInstances"),
    ("s3.amazonaws.com", "GetBucketAcl"),
    ("s3.amazonaws.com", "ListBuckets"),
    ("sts.amazonaws.com", "AssumeRole"),
    ("sts.amazonaws.com", "GetCallerIdentity"),
    ("iam.amazonaws.com", "ListRoles"),
    ("iam.amazonaws.com", "CreateAccessKey"),
    ("kms.amazonaws.com", "Decrypt"),
    ("cloudtrail.amazonaws.com", "LookupEvents"),
    ("ssm.amazonaws.com", "GetParameters"),
    ("lambda.amazonaws.com", "ListFunctions20150331"),
];

const AGENTS: &[&str] = &[
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.debian.12 prompt/off command/ec2.describe-instances",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-go-v2/1.25.2 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.150.0",
    "console.amazonaws.com",
    "[aws-sdk-java/1.12.675 Linux/5.10.210 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS java/17.0.10 vendor/Amazon.com_Inc.]",
];

/// IAM roles of the generated CloudTrail callers.
pub(crate) const ROLES: &[&str] = &[
    "AdminRole",
    "ci-deployer",
    "app-backend",
    "OrganizationAccountAccessRole",
];

pub(crate) fn cloudtrail_record(rng: &mut Rng, s: &mut String) {
    let (source, name) = EVENTS[rng.below(EVENTS.len() as u64) as usize];
    let acct = "123456789012";
    let role = rng.pick(ROLES);
    let session = format!("i-0{}", rng.hex(16));
    let key = format!("ASIA{}", rng.hex(16).to_uppercase());
    let ip = rng.ip();
    let t = rng.below(86_400);
    let (h, m, sec) = (t / 3600, t / 60 % 60, t % 60);
    let read_only =
        name.starts_with("Describe") || name.starts_with("Get") || name.starts_with("List");
    let _ = write!(
        s,
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"AssumedRole","principalId":"AROA{pid}:{session}","arn":"arn:aws:sts::{acct}:assumed-role/{role}/{session}","accountId":"{acct}","accessKeyId":"{key}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROA{pid}","arn":"arn:aws:iam::{acct}:role/{role}","accountId":"{acct}","userName":"{role}"}},"attributes":{{"creationDate":"2024-01-01T{h:02}:{m:02}:{sec:02}Z","mfaAuthenticated":"false"}},"ec2RoleDelivery":"2.0"}}}},"eventTime":"2024-01-01T{h:02}:{m:02}:{sec:02}Z","eventSource":"{source}","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"{ip}","userAgent":"{agent}","#,
        pid = rng.hex(17).to_uppercase(),
        agent = rng.pick(AGENTS),
    );
    if rng.below(10) == 0 {
        let _ = write!(
            s,
            r#""errorCode":"AccessDenied","errorMessage":"User: arn:aws:sts::{acct}:assumed-role/{role}/{session} is not authorized to perform: {name} because no identity-based policy allows the action","#
        );
    }
    match rng.below(3) {
        0 => {
            let _ = write!(
                s,
                r#""requestParameters":{{"instancesSet":{{"items":[{{"instanceId":"i-0{}"}},{{"instanceId":"i-0{}"}}]}},"filterSet":{{}},"includeAllInstances":false}},"responseElements":null,"#,
                rng.hex(16),
                rng.hex(16)
            );
        }
        1 => {
            let _ = write!(
                s,
                r#""requestParameters":{{"roleArn":"arn:aws:iam::{acct}:role/{role}","roleSessionName":"{session}","durationSeconds":3600}},"responseElements":{{"credentials":{{"accessKeyId":"{key}","sessionToken":"{}","expiration":"Jan 1, 2024, 1:00:00 PM"}},"assumedRoleUser":{{"assumedRoleId":"AROA:{session}","arn":"arn:aws:sts::{acct}:assumed-role/{role}/{session}"}}}},"#,
                rng.hex(120)
            );
        }
        _ => s.push_str(r#""requestParameters":null,"responseElements":null,"#),
    }
    let _ = write!(
        s,
        r#""requestID":"{}","eventID":"{}","readOnly":{read_only},"resources":[{{"accountId":"{acct}","type":"AWS::IAM::Role","ARN":"arn:aws:iam::{acct}:role/{role}"}}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{acct}","eventCategory":"Management","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{}"}}}}"#,
        rng.hex(32),
        rng.hex(32),
        source.replace(".amazonaws.com", ".us-east-1.amazonaws.com")
    );
}

pub(crate) fn flow_line(rng: &mut Rng, s: &mut String) {
    let start = 1_704_067_200 + rng.below(86_400);
    match rng.below(200) {
        0 => {
            let _ = writeln!(
                s,
                "2 123456789012 eni-0{} - - - - - - - {start} {} - NODATA",
                rng.hex(16),
                start + 60
            );
        }
        _ => {
            let v = rng.next();
            let (src, dst) = if v & 1 == 0 {
                (
                    format!("10.0.{}.{}", (v >> 8) & 0xff, 1 + (v >> 16) % 254),
                    rng.ip(),
                )
            } else {
                (
                    rng.ip(),
                    format!("10.0.{}.{}", (v >> 8) & 0xff, 1 + (v >> 16) % 254),
                )
            };
            let proto = [6, 6, 6, 17, 17, 1][(v >> 24) as usize % 6];
            let packets = 1 + rng.below(500);
            let _ = writeln!(
                s,
                "2 123456789012 eni-0{} {src} {dst} {} {} {proto} {packets} {} {start} {} {} OK",
                rng.hex(16),
                rng.below(65_536),
                [22u64, 80, 443, 53, 3389, 8080][(v >> 32) as usize % 6],
                packets * (40 + rng.below(1400)),
                start + rng.below(60),
                if (v >> 40).is_multiple_of(10) {
                    "REJECT"
                } else {
                    "ACCEPT"
                }
            );
        }
    }
}

pub(crate) fn dns_line(rng: &mut Rng, s: &mut String) {
    let t = rng.below(86_400);
    let name = format!(
        "{}.{}",
        rng.pick(&[
            "www",
            "api",
            "cdn",
            "login",
            "s3",
            "ec2",
            "updates",
            "telemetry"
        ]),
        rng.pick(&[
            "example.com",
            "amazonaws.com",
            "github.com",
            "ubuntu.com",
            "debian.org",
            "internal.corp"
        ])
    );
    let _ = writeln!(
        s,
        r#"{{"version":"1.100000","account_id":"123456789012","region":"us-east-1","vpc_id":"vpc-0{}","query_timestamp":"2024-01-01T{:02}:{:02}:{:02}.{:03}Z","query_name":"{name}.","query_type":"{}","query_class":"IN","rcode":"NOERROR","answers":[{{"Rdata":"{}","Type":"A","Class":"IN"}},{{"Rdata":"{}","Type":"A","Class":"IN"}}],"srcaddr":"10.0.{}.{}","srcport":"{}","transport":"UDP","srcids":{{"instance":"i-0{}"}}}}"#,
        rng.hex(16),
        t / 3600,
        t / 60 % 60,
        t % 60,
        rng.below(1000),
        rng.pick(&["A", "AAAA", "A", "TXT"]),
        rng.ip(),
        rng.ip(),
        rng.below(256),
        1 + rng.below(254),
        1024 + rng.below(60_000),
        rng.hex(16)
    );
}
