//! `cargo xtask bench foundational`: records/s through cloud-log parsing plus the foundational
//! detectors, per source, next to the parse-only rate of the same objects in the same run, so the
//! cost of detection is visible as a ratio (target: detection adds under 30 % to parse time).
//!
//! Logs come from the generators of `bench logs` (same shapes), made realistic for stateful
//! detection: flow records name 2,000 network interfaces and DNS queries 2,000 instances (instead
//! of a new one per record; `--fleet` sets the number), CloudTrail callers are 2,000 instances'
//! role sessions (one role each), and event time advances through the run (one hour per source)
//! instead of jumping around a day. Threat lists of `--list-entries` entries (half addresses,
//! half domains) are loaded, so every remote address and queried name is looked up as in
//! production.
//!
//! Detection is the foundational engine with every built-in detector (`foundational::builtin()`),
//! as `scan` and `serve` run it: routing, event time, aggregation and suppression included.
//!
//! Measured in a release build of this program (`--inner`), single-threaded: rates are per core of
//! CPU time (this thread's, so time the shared machine gave other processes does not count), summed
//! over `--runs`, each object read parse-only and parse + detect in turn (see [`measure`]). The
//! `wall/cpu` column shows how contended the machine was (1.0: not at all). `det ns/rec` is
//! detection's own CPU time per record: the ratio alone moves when the readers get faster, this
//! does not.

use anyhow::Context as _;
use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ward_collector::event::{Event, SourceKind};
use ward_collector::foundational::engine::{EngineOptions, FoundationalEngine};
use ward_collector::foundational::{AwsRanges, Settings, builtin};
use ward_collector::intel::{IntelIndex, IntelList, ListFormat, ListKind, ListRole};
use ward_collector::logs::{Problem, ReadOptions, Sink, read_object};
use ward_collector::suppression::RuleSet;

use crate::bench_logs::{ROLES, Rng, cloudtrail_record, dns_line, flow_line};

#[derive(clap::Args)]
pub struct Args {
    /// Records per source.
    #[arg(long, default_value_t = 400_000)]
    records: usize,
    /// Entries in the threat list (half IPv4 addresses, half domains).
    #[arg(long, default_value_t = 100_000)]
    list_entries: usize,
    /// Runs per measurement (times summed; each run starts a new engine).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Instances (flow: network interfaces) in the generated fleet. Their state, and their
    /// peers', outgrows the CPU caches at the default; a fleet of 20 keeps it cached, which shows
    /// how much of detection's cost is waiting for memory.
    #[arg(long, default_value_t = 2_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    fleet: u64,
    /// Gzip each object first, as AWS delivers CloudTrail, VPC Flow Logs and Resolver query logs
    /// to S3: parse time then includes decompression, as it does when Ward reads a bucket.
    #[arg(long)]
    gzip: bool,
    /// Only this source (cloudtrail, vpc-flow or dns): to profile one detector family.
    #[arg(long)]
    source: Option<String>,
    /// Run the measurement in this process (what the release build is started with).
    #[arg(long, hide = true)]
    inner: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.inner {
        return inner(&args);
    }
    crate::rerun_in_release()
}

/// Regular peers of one interface (see [`flow_objects`]).
const PEERS: u64 = 32;
/// 2024-01-01T00:00:00Z, the day the `bench logs` generators write.
const T0: u64 = 1_704_067_200;
const SPAN_SECS: u64 = 3_600;
/// Records per generated object (file).
const PER_OBJECT: usize = 50_000;

fn fleet_id(rng: &mut Rng, fleet: u64) -> String {
    let k = rng.below(fleet);
    format!("{:016x}", k.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// `bench logs` flow lines, on a fleet of interfaces with stable addresses and regular peers, in
/// time order.
fn flow_objects(rng: &mut Rng, n: usize, fleet: u64) -> Vec<Vec<u8>> {
    let header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n";
    let mut objects = Vec::new();
    let mut text = String::from(header);
    let mut line = String::new();
    for i in 0..n {
        line.clear();
        flow_line(rng, &mut line);
        let mut f: Vec<&str> = line.split_ascii_whitespace().collect();
        let k = rng.below(fleet);
        let eni = format!("eni-0{:016x}", k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // The interface keeps its private address, and most of its traffic goes to a few peers
        // of its own (services, partners, regular clients); one record in ten is with anyone.
        let own = format!("10.{}.{}.{}", k >> 16, (k >> 8) & 0xff, 1 + (k & 0xfe));
        let peer = if rng.below(10) == 0 {
            rng.ip()
        } else {
            let p = k.wrapping_mul(31).wrapping_add(rng.below(PEERS));
            format!("52.{}.{}.{}", (p >> 16) & 0xff, (p >> 8) & 0xff, p & 0xff)
        };
        if f.len() > 4 && f[3] != "-" {
            let (local, remote) = if f[3].starts_with("10.") {
                (3, 4)
            } else {
                (4, 3)
            };
            f[local] = &own;
            f[remote] = &peer;
        }
        let start = T0 + i as u64 * SPAN_SECS / n as u64;
        let duration = f[11]
            .parse::<u64>()
            .unwrap_or(0)
            .saturating_sub(f[10].parse::<u64>().unwrap_or(0));
        let (start, end) = (start.to_string(), (start + duration).to_string());
        f[2] = &eni;
        f[10] = &start;
        f[11] = &end;
        text.push_str(&f.join(" "));
        text.push('\n');
        if (i + 1) % PER_OBJECT == 0 {
            objects.push(std::mem::replace(&mut text, header.to_owned()).into_bytes());
        }
    }
    if text.len() > header.len() {
        objects.push(text.into_bytes());
    }
    objects
}

/// `bench logs` Resolver query lines, from a fleet of instances, in time order.
fn dns_objects(rng: &mut Rng, n: usize, fleet: u64) -> Vec<Vec<u8>> {
    let mut objects = Vec::new();
    let mut text = String::new();
    let mut line = String::new();
    for i in 0..n {
        line.clear();
        dns_line(rng, &mut line);
        let at = |line: &str, key: &str| line.find(key).map(|p| p + key.len());
        let instance = at(&line, r#""instance":"i-0"#).expect("generator writes srcids.instance");
        let id = fleet_id(rng, fleet);
        line.replace_range(instance..instance + 16, &id);
        let ts = at(&line, r#""query_timestamp":""#).expect("generator writes query_timestamp");
        let ms = i as u64 * SPAN_SECS * 1000 / n as u64;
        let stamp = format!(
            "2024-01-01T{:02}:{:02}:{:02}.{:03}Z",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        );
        line.replace_range(ts..ts + stamp.len(), &stamp);
        text.push_str(&line);
        if (i + 1) % PER_OBJECT == 0 {
            objects.push(std::mem::take(&mut text).into_bytes());
        }
    }
    if !text.is_empty() {
        objects.push(text.into_bytes());
    }
    objects
}

/// `bench logs` CloudTrail records as S3 envelopes of 5,000 records, made realistic: the callers
/// are the role sessions of a fleet of instances (instead of a new principal per record), each
/// calling from its own address, which lies inside the AWS ranges the run loads ([`aws_ranges`]),
/// and event time advances through the run. One record in `HIT_EVERY` comes from a Kali user agent
/// (`PenTest:IAMUser/KaliLinux`), so the finding path is exercised too.
fn cloudtrail_objects(rng: &mut Rng, n: usize, fleet: u64) -> Vec<Vec<u8>> {
    let mut objects = Vec::new();
    let mut done = 0;
    let mut record = String::new();
    while done < n {
        let count = (n - done).min(5_000);
        let mut text = String::from(r#"{"Records":["#);
        for i in 0..count {
            if i > 0 {
                text.push(',');
            }
            record.clear();
            cloudtrail_record(rng, &mut record);
            realistic_cloudtrail(rng, &mut record, done + i, n, fleet);
            text.push_str(&record);
        }
        text.push_str("]}");
        objects.push(text.into_bytes());
        done += count;
    }
    objects
}

/// One Kali user agent among this many CloudTrail records.
const HIT_EVERY: usize = 5_000;

/// Rewrites one generated record (see [`cloudtrail_objects`]): the session and its role are a
/// fleet instance's, the caller address that instance's, the time the `i`th of `n` in an hour.
fn realistic_cloudtrail(rng: &mut Rng, record: &mut String, i: usize, n: usize, fleet: u64) {
    let value_at = |record: &str, key: &str| -> (usize, usize) {
        let start = record.find(key).expect("generator writes the key") + key.len();
        let len = record[start..].find('"').expect("string value ends");
        (start, start + len)
    };
    let (s, e) = value_at(record, r#""principalId":"AROA"#);
    let session = record[s..e]
        .split_once(':')
        .expect("role-session principal")
        .1
        .to_owned();
    let k = rng.below(fleet);
    let fleet_session = format!("i-0{:016x}", k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    *record = record.replace(&session, &fleet_session);
    // An instance has one instance profile, so its sessions are always of the same role.
    let (s, e) = value_at(record, r#""userName":""#);
    let role = record[s..e].to_owned();
    let fleet_role = ROLES[(k % ROLES.len() as u64) as usize];
    *record = record
        .replace(&format!("role/{role}"), &format!("role/{fleet_role}"))
        .replace(
            &format!(r#""userName":"{role}""#),
            &format!(r#""userName":"{fleet_role}""#),
        );
    let (s, e) = value_at(record, r#""sourceIPAddress":""#);
    record.replace_range(
        s..e,
        &format!("3.{}.{}.{}", k >> 16, (k >> 8) & 0xff, k & 0xff),
    );
    let secs = i as u64 * SPAN_SECS / n.max(1) as u64;
    let (s, e) = value_at(record, r#""eventTime":""#);
    record.replace_range(
        s..e,
        &format!(
            "2024-01-01T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        ),
    );
    if i % HIT_EVERY == HIT_EVERY - 1 {
        let (s, e) = value_at(record, r#""userAgent":""#);
        record.replace_range(
            s..e,
            "aws-cli/2.23.6 ua/2.0 os/linux#6.12.13-cloud-amd64 md/distrib#kali.2025",
        );
    }
}

/// The AWS ranges of the run: the fleet's addresses (3.0.0.0/8) are inside AWS, as instances'
/// public addresses are.
fn aws_ranges() -> AwsRanges {
    AwsRanges::from_json_str(r#"{"prefixes":[{"ip_prefix":"3.0.0.0/8"}]}"#)
        .expect("static ranges parse")
}

fn threat_list(rng: &mut Rng, entries: usize) -> Arc<IntelList> {
    let mut text = String::with_capacity(entries * 24);
    for i in 0..entries {
        if i % 2 == 0 {
            text.push_str(&rng.ip());
        } else {
            text.push_str(&format!("h{}.example{}.com", rng.hex(8), rng.below(50)));
        }
        text.push('\n');
    }
    Arc::new(IntelList::parse(
        "bench-threats",
        ListRole::Threat,
        ListKind::EntityList,
        ListFormat::Txt,
        &text,
    ))
}

/// Counts records and, with an engine, runs them through it.
struct Bench {
    engine: Option<FoundationalEngine>,
    records: u64,
    malformed: u64,
}

impl Sink for Bench {
    fn event(&mut self, event: &Event<'_>) {
        self.records += 1;
        if let Some(engine) = &mut self.engine {
            std::hint::black_box(engine.process(event));
        }
    }

    fn malformed(&mut self, _problem: &Problem<'_>) {
        self.malformed += 1;
    }
}

/// Time one stage took, summed over objects and runs.
#[derive(Default)]
struct Spent {
    /// CPU time of this thread (what the ratio is computed from: the machine is shared, and wall
    /// time includes the time other processes had the CPU).
    cpu: Duration,
    wall: Duration,
}

impl Spent {
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let (wall, cpu) = (Instant::now(), thread_cpu());
        let out = f();
        self.cpu += thread_cpu() - cpu;
        self.wall += wall.elapsed();
        out
    }
}

/// Both stages over every object, `runs` times.
struct Measure {
    /// Parse only.
    parse: Spent,
    /// Parse, then the engine with every built-in detector (routing, event time, aggregation,
    /// suppression): what `scan` and `serve` do.
    both: Spent,
    /// Records read per stage and run.
    records: u64,
    /// Findings of the last run.
    findings: usize,
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Reads every object twice per run, parse only and parse + detect (one engine per run, fed the
/// objects in order), the two in turn object by object and in alternating order. The machine is
/// shared and its speed drifts from second to second; measured this way, a slow spell falls on
/// both stages alike (whole-run timings of one stage against the other moved the ratio by tens of
/// percent), and so does whichever pass finds the object already in cache.
fn measure(
    source: SourceKind,
    objects: &[Vec<u8>],
    intel: &IntelIndex,
    runs: u32,
) -> anyhow::Result<Measure> {
    let opts = ReadOptions::default();
    let mut m = Measure {
        parse: Spent::default(),
        both: Spent::default(),
        records: 0,
        findings: 0,
    };
    for _ in 0..runs {
        let mut parse = Bench {
            engine: None,
            records: 0,
            malformed: 0,
        };
        let mut both = Bench {
            engine: Some(FoundationalEngine::new(
                EngineOptions::default(),
                Settings {
                    aws_ranges: aws_ranges(),
                    ..Settings::default()
                },
                builtin(),
                intel.clone(),
                RuleSet::default(),
            )),
            records: 0,
            malformed: 0,
        };
        for (i, object) in objects.iter().enumerate() {
            let name = format!("bench-{i}");
            // The reader takes ownership of its input: copies are made outside the timing.
            let (a, b) = (object.clone(), object.clone());
            let read = |sink: &mut Bench, text: Vec<u8>| {
                read_object(source, &name, Cursor::new(text), &opts, sink)
            };
            if i % 2 == 0 {
                m.parse.time(|| read(&mut parse, a));
                m.both.time(|| read(&mut both, b));
            } else {
                m.both.time(|| read(&mut both, a));
                m.parse.time(|| read(&mut parse, b));
            }
        }
        let engine = both.engine.as_mut().expect("engine stage");
        m.both.time(|| std::hint::black_box(engine.finish()));
        anyhow::ensure!(
            parse.malformed == 0 && both.malformed == 0,
            "{source}: {} malformed records",
            parse.malformed.max(both.malformed)
        );
        anyhow::ensure!(parse.records == both.records, "record counts differ");
        m.records = parse.records;
        m.findings = engine.findings().count();
    }
    Ok(m)
}

/// `object` gzip-compressed at the default level.
fn gzip(object: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(object).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

fn inner(args: &Args) -> anyhow::Result<()> {
    let mut rng = Rng(42);
    let intel = IntelIndex::new([threat_list(&mut rng, args.list_entries)]);
    let only =
        match args.source.as_deref() {
            None => None,
            Some(s) => Some(SourceKind::from_name(s).with_context(|| {
                format!("--source {s}: expected one of cloudtrail, vpc-flow, dns")
            })?),
        };
    // Every generator runs (in a fixed order from one seed), so one source's logs are the same
    // whether or not the others are measured.
    let sources = [
        (
            SourceKind::CloudTrail,
            cloudtrail_objects(&mut rng, args.records, args.fleet),
        ),
        (
            SourceKind::VpcFlow,
            flow_objects(&mut rng, args.records, args.fleet),
        ),
        (
            SourceKind::Dns,
            dns_objects(&mut rng, args.records, args.fleet),
        ),
    ];
    let sources: Vec<_> = sources
        .into_iter()
        .filter(|(k, _)| only.is_none_or(|o| o == *k))
        .map(|(k, objects)| {
            let objects = if args.gzip {
                objects.iter().map(|o| gzip(o)).collect()
            } else {
                objects
            };
            (k, objects)
        })
        .collect();
    println!(
        "bench foundational: {} records per source, fleet of {}, threat list of {} entries, {} runs, 1 thread{}",
        args.records,
        args.fleet,
        args.list_entries,
        args.runs,
        if args.gzip {
            ", objects gzip-compressed (MB: compressed; parse includes decompression)"
        } else {
            ""
        }
    );
    println!(
        "  {:<11} {:>9} {:>10} {:>14} {:>14} {:>10} {:>11} {:>9} {:>12}",
        "source",
        "records",
        "MB",
        "parse rec/s",
        "+detect rec/s",
        "detection",
        "det ns/rec",
        "findings",
        "wall/cpu"
    );
    for (source, objects) in &sources {
        let bytes: usize = objects.iter().map(Vec::len).sum();
        let m = measure(*source, objects, &intel, args.runs)?;
        let detectors = builtin()
            .iter()
            .filter(|d| d.sources().contains(source))
            .count();
        let read = m.records as f64 * f64::from(args.runs);
        let rate = |s: &Spent| read / s.cpu.as_secs_f64();
        let added = if detectors == 0 {
            "no detectors".to_owned()
        } else {
            format!(
                "{:+.1} %",
                (m.both.cpu.as_secs_f64() / m.parse.cpu.as_secs_f64() - 1.0) * 100.0
            )
        };
        let detection_ns = (m.both.cpu.as_secs_f64() - m.parse.cpu.as_secs_f64()) * 1e9 / read;
        println!(
            "  {:<11} {:>9} {:>10.1} {:>14.0} {:>14.0} {:>10} {:>11.0} {:>9} {:>12}",
            source.name(),
            m.records,
            bytes as f64 / 1e6,
            rate(&m.parse),
            rate(&m.both),
            added,
            detection_ns,
            m.findings,
            format!(
                "{:.2}/{:.2}",
                m.parse.wall.as_secs_f64() / m.parse.cpu.as_secs_f64(),
                m.both.wall.as_secs_f64() / m.both.cpu.as_secs_f64()
            )
        );
    }
    Ok(())
}
