//! `cargo xtask bench store`: the findings store's write rates and list-query latency at scale.
//!
//! In a release build of this program (`--inner`), against a fresh database file in a temporary
//! directory:
//! * findings written per second through `Store::commit` (new findings, nine indexes,
//!   `synchronous = FULL`), in batches, in the order a collector stores them (`updatedAt`
//!   advancing; `--random-order` for a bulk import in random time order), then updates (a new
//!   occurrence of a stored finding, its previous version kept in the history); baselines in the
//!   same run over the same finding JSON and batch size: (1) JSON lines appended to a file with one `fsync` per batch, the floor for
//!   any durable log of these bytes, and (2) plain SQLite INSERTs of (id, json) into a table
//!   without indexes, same transaction size and sync mode: the cost of SQLite itself;
//! * events written per second (batches of events only, each from one host as an agent sends
//!   them), against the JSON-lines baseline;
//! * p50/p99 latency of filtered `list` queries (50 results) over the stored findings (1M by
//!   default), each query shape run repeatedly on a store that is otherwise idle, and one
//!   no-index baseline: the first query answered by scanning the JSON-lines file with the same
//!   criteria.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use ward_collector::findings::Finding;
use ward_collector::findings::time::format_millis;
use ward_collector::store::{
    ListQuery, SortAttribute, Store, StoreConfig, StoredEvent, WriteBatch,
};
use ward_collector::suppression::FindingCriteria;

#[derive(clap::Args)]
pub struct Args {
    /// Findings stored (and queried over).
    #[arg(long, default_value_t = 1_000_000)]
    findings: usize,
    /// Events written in the event-rate measurement.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Rows per commit.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Rows written by each baseline (rates are per row, so fewer than --findings is enough).
    #[arg(long, default_value_t = 200_000)]
    baseline_rows: usize,
    /// Runs of each query shape.
    #[arg(long, default_value_t = 200)]
    query_runs: usize,
    /// Updates (new occurrences of stored findings) in the update-rate measurement.
    #[arg(long, default_value_t = 100_000)]
    updates: usize,
    /// Store the findings with updatedAt in random order instead of the order a collector
    /// stores them in (time order with jitter): the worst case for the time indexes.
    #[arg(long)]
    random_order: bool,
    /// Directory for the database, kept afterwards for inspection (default: a new one under the
    /// system temp dir, removed).
    #[arg(long)]
    dir: Option<PathBuf>,
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

/// xorshift64*: fixed seed, so every run stores the same findings.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const TYPES: [&str; 8] = [
    "Backdoor:Runtime/C&CActivity.B!DNS",
    "CryptoCurrency:Runtime/BitcoinTool.B!DNS",
    "Execution:Runtime/ReverseShell",
    "Execution:Runtime/NewBinaryExecuted",
    "PrivilegeEscalation:Runtime/UserfaultfdUsage",
    "Recon:EC2/Portscan",
    "UnauthorizedAccess:EC2/SSHBruteForce",
    "DefenseEvasion:Runtime/FilelessExecution",
];
const SEVERITIES: [f64; 6] = [2.0, 5.0, 5.0, 8.0, 7.0, 8.5];
/// Findings span 30 days.
const T0: i64 = 1_760_000_000_000;
const SPAN_MS: i64 = 30 * 86_400_000;
const INSTANCES: u64 = 2000;

/// Finding `i` of `total`. With `in_time_order` the findings arrive as a collector stores them:
/// `updatedAt` advances with `i` across the 30 days (plus up to 10 minutes of jitter: cloud logs
/// arrive late), `createdAt` up to a day earlier. Otherwise `updatedAt` is uniform over the 30
/// days in every batch (a bulk import in random order: the worst case for the time indexes).
fn finding(rng: &mut Rng, i: usize, total: usize, in_time_order: bool) -> Finding {
    let updated = if in_time_order {
        T0 + (i as i128 * SPAN_MS as i128 / total.max(1) as i128) as i64 + rng.below(600_000) as i64
    } else {
        T0 + rng.below(SPAN_MS as u64) as i64
    };
    let instance = format!("i-{:017x}", rng.below(INSTANCES));
    let pid = 1000 + rng.below(60_000);
    Finding::from_json_str(
        &json!({
            "schemaVersion": "2.0", "accountId": "123456789012", "region": "eu-west-1", "partition": "aws",
            "id": format!("{:032x}", (i as u128) * 0x9E37_79B9_7F4A_7C15),
            "type": TYPES[rng.below(TYPES.len() as u64) as usize],
            "severity": SEVERITIES[rng.below(SEVERITIES.len() as u64) as usize],
            "title": "A process on the instance communicated with a known command and control server.",
            "createdAt": format_millis(updated - rng.below(86_400_000) as i64),
            "updatedAt": format_millis(updated),
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": instance,
                "instanceType": "m5.large", "platform": "Linux"}},
            "service": {"serviceName": "guardduty", "archived": rng.below(10) == 0,
                "count": 1 + rng.below(20), "featureName": "RuntimeMonitoring",
                "eventFirstSeen": format_millis(updated - 60_000), "eventLastSeen": format_millis(updated),
                "runtimeDetails": {"process": {"name": "curl", "executablePath": "/usr/bin/curl",
                    "pid": pid, "startTime": format_millis(updated - 5000),
                    "uuid": format!("{:032x}", rng.next()),
                    "lineage": [{"name": "bash", "pid": pid - 1, "executablePath": "/usr/bin/bash"}]}},
                "additionalInfo": {"ward": {"eventIds": [format!("ev-{i}")], "ruleId": "ward.c2.dns",
                    "agentId": instance}}}
        })
        .to_string(),
    )
    .expect("valid finding")
}

/// Event `i` as agents deliver them: each batch of `batch` events from one host, spread over 200
/// of its processes.
fn event(i: usize, batch: usize) -> StoredEvent {
    let host = (i / batch.max(1)) as u64 % INSTANCES;
    StoredEvent {
        id: format!("ev-{i}"),
        time_ms: T0 + i as i64,
        source: "agent".into(),
        host: Some(format!("i-{host:017x}")),
        pid: Some(1000 + (i * 7919 % 200) as i64),
        process_start_time: Some(format_millis(T0)),
        event: json!({"type": "dns", "query": "pool.example.invalid", "pid": 1000 + i * 7919 % 200,
            "comm": "curl", "exe": "/usr/bin/curl", "uid": 0, "timeUnixNano": (T0 as u64 + i as u64) * 1_000_000}),
    }
}

fn rate(rows: usize, elapsed: Duration) -> f64 {
    rows as f64 / elapsed.as_secs_f64()
}

/// Baseline 1: JSON lines, one fsync per batch.
fn jsonl_baseline(path: &Path, lines: &[String], batch: usize) -> anyhow::Result<f64> {
    let file = File::create(path)?;
    let mut out = BufWriter::new(file);
    let started = Instant::now();
    for chunk in lines.chunks(batch) {
        for line in chunk {
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        out.get_ref().sync_data()?;
    }
    Ok(rate(lines.len(), started.elapsed()))
}

/// Baseline 2: plain SQLite, (id, json) without indexes, same batches and sync mode.
fn sqlite_baseline(path: &Path, rows: &[(String, String)], batch: usize) -> anyhow::Result<f64> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch("CREATE TABLE plain (id TEXT, json TEXT)")?;
    let started = Instant::now();
    for chunk in rows.chunks(batch) {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO plain (id, json) VALUES (?1, ?2)")?;
            for (id, json) in chunk {
                stmt.execute([id, json])?;
            }
        }
        tx.commit()?;
    }
    Ok(rate(rows.len(), started.elapsed()))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Shape {
    name: &'static str,
    criterion: Value,
    sort: SortAttribute,
    descending: bool,
    /// Fetch page 2 (with the token of page 1) rather than page 1.
    second_page: bool,
}

fn inner(args: &Args) -> anyhow::Result<()> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("ward-bench-store-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = measure(args, &dir);
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn measure(args: &Args, dir: &Path) -> anyhow::Result<()> {
    println!(
        "bench store: {} findings ({}), {} events, {} rows per commit, dir {}",
        args.findings,
        if args.random_order {
            "updatedAt in random order"
        } else {
            "in time order"
        },
        args.events,
        args.batch,
        dir.display()
    );
    const SEED: u64 = 0x5EED_1234_ABCD_0001;
    // Baselines on the first rows (rates are per row).
    let mut rng = Rng(SEED);
    let n_base = args.baseline_rows.min(args.findings);
    let in_time_order = !args.random_order;
    let base: Vec<Finding> = (0..n_base)
        .map(|i| finding(&mut rng, i, args.findings, in_time_order))
        .collect();
    let lines: Vec<String> = base
        .iter()
        .map(|f| serde_json::to_string(f).expect("serialises"))
        .collect();
    let avg_bytes = lines.iter().map(String::len).sum::<usize>() / lines.len().max(1);
    println!("  {avg_bytes} bytes of JSON per finding on average");
    let jsonl_rate = jsonl_baseline(&dir.join("findings.jsonl"), &lines, args.batch)?;
    let rows: Vec<(String, String)> = base
        .iter()
        .zip(&lines)
        .map(|(f, l)| (f.id.clone(), l.clone()))
        .collect();
    let sqlite_rate = sqlite_baseline(&dir.join("plain.db"), &rows, args.batch)?;
    drop((base, lines, rows));

    // The store: findings generated batch by batch (not timed) so 1M need not sit in memory; the
    // same findings go to a JSON-lines file for the no-index query baseline.
    let store = Store::open(&dir.join("ward.db"), StoreConfig::default())?;
    let mut rng = Rng(SEED);
    let jsonl = dir.join("all.jsonl");
    let mut all_lines = BufWriter::new(File::create(&jsonl)?);
    let mut committing = Duration::ZERO;
    let mut last_report = Instant::now();
    let mut stored = 0;
    while stored < args.findings {
        let n = args.batch.min(args.findings - stored);
        let chunk: Vec<Finding> = (stored..stored + n)
            .map(|i| finding(&mut rng, i, args.findings, in_time_order))
            .collect();
        for f in &chunk {
            serde_json::to_writer(&mut all_lines, f)?;
            all_lines.write_all(b"\n")?;
        }
        let started = Instant::now();
        store.commit(WriteBatch {
            findings: chunk,
            ..WriteBatch::default()
        })?;
        committing += started.elapsed();
        stored += n;
        if last_report.elapsed() > Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!("  ... {stored} findings stored");
        }
    }
    all_lines.flush()?;
    drop(all_lines);
    let store_rate = rate(args.findings, committing);
    println!("findings written per second (batches of {}):", args.batch);
    println!("  store (new findings, 9 indexes)         {store_rate:>10.0}/s");
    println!(
        "  baseline: plain SQLite INSERT, no index {sqlite_rate:>10.0}/s  (store = {:.2}x)",
        store_rate / sqlite_rate
    );
    println!(
        "  baseline: JSON lines + fsync per batch  {jsonl_rate:>10.0}/s  (store = {:.2}x)",
        store_rate / jsonl_rate
    );

    // Updates: a new occurrence of stored findings (the oldest first, as a long-running
    // finding is), each keeping its previous version in the history.
    let updates = args.updates.min(args.findings);
    let mut rng = Rng(SEED);
    let mut updating = Duration::ZERO;
    let mut done = 0;
    while done < updates {
        let n = args.batch.min(updates - done);
        let chunk: Vec<Finding> = (done..done + n)
            .map(|i| {
                let mut f = finding(&mut rng, i, args.findings, in_time_order);
                f.service.count += 1;
                f.updated_at = format_millis(T0 + SPAN_MS + i as i64);
                f
            })
            .collect();
        let started = Instant::now();
        store.commit(WriteBatch {
            findings: chunk,
            ..WriteBatch::default()
        })?;
        updating += started.elapsed();
        done += n;
    }
    if updates > 0 {
        let update_rate = rate(updates, updating);
        println!(
            "  store (updates: new occurrence + history) {update_rate:>8.0}/s  ({updates} updates)"
        );
    }

    // Events.
    let events: Vec<StoredEvent> = (0..args.events).map(|i| event(i, args.batch)).collect();
    let event_lines: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).expect("serialises"))
        .collect();
    let event_jsonl = jsonl_baseline(&dir.join("events.jsonl"), &event_lines, args.batch)?;
    let started = Instant::now();
    for chunk in events.chunks(args.batch) {
        store.commit(WriteBatch {
            events: chunk.to_vec(),
            ..WriteBatch::default()
        })?;
    }
    let event_rate = rate(events.len(), started.elapsed());
    println!("events written per second (batches of {}):", args.batch);
    println!("  store (event window, 3 indexes)        {event_rate:>10.0}/s");
    println!(
        "  baseline: JSON lines + fsync per batch  {event_jsonl:>10.0}/s  (store = {:.2}x)",
        event_rate / event_jsonl
    );
    drop(events);
    drop(event_lines);

    // Queries.
    let day = 86_400_000;
    let instance = format!("i-{:017x}", 7);
    let shapes = [
        Shape {
            name: "severity >= 7, active, by updatedAt DESC",
            criterion: json!({"severity": {"gte": 7}, "service.archived": {"eq": ["false"]}}),
            sort: SortAttribute::UpdatedAt,
            descending: true,
            second_page: false,
        },
        Shape {
            name: "type = ReverseShell, by updatedAt DESC, page 2",
            criterion: json!({"type": {"eq": ["Execution:Runtime/ReverseShell"]}}),
            sort: SortAttribute::UpdatedAt,
            descending: true,
            second_page: true,
        },
        Shape {
            name: "one instance, by updatedAt DESC",
            criterion: json!({"resource.instanceDetails.instanceId": {"eq": [instance]}}),
            sort: SortAttribute::UpdatedAt,
            descending: true,
            second_page: false,
        },
        Shape {
            name: "last day, by severity DESC",
            criterion: json!({"updatedAt": {"gt": T0 + SPAN_MS - day}}),
            sort: SortAttribute::Severity,
            descending: true,
            second_page: false,
        },
        Shape {
            name: "severity eq 5 (Medium), not Portscan, by createdAt ASC",
            criterion: json!({"severity": {"eq": ["5"]}, "type": {"neq": ["Recon:EC2/Portscan"]}}),
            sort: SortAttribute::CreatedAt,
            descending: false,
            second_page: false,
        },
        Shape {
            name: "no filter (console default), by updatedAt DESC",
            criterion: json!({}),
            sort: SortAttribute::UpdatedAt,
            descending: true,
            second_page: false,
        },
        Shape {
            name: "type = NewBinaryExecuted, by updatedAt DESC",
            criterion: json!({"type": {"eq": ["Execution:Runtime/NewBinaryExecuted"]}}),
            sort: SortAttribute::UpdatedAt,
            descending: true,
            second_page: false,
        },
        Shape {
            name: "active, by severity DESC, page 2",
            criterion: json!({"service.archived": {"eq": ["false"]}}),
            sort: SortAttribute::Severity,
            descending: true,
            second_page: true,
        },
        Shape {
            name: "archived, by updatedAt DESC",
            criterion: json!({"service.archived": {"eq": ["true"]}}),
            sort: SortAttribute::UpdatedAt,
            descending: true,
            second_page: false,
        },
        Shape {
            name: "one instance, last 7 days, by updatedAt DESC",
            criterion: json!({"resource.instanceDetails.instanceId": {"eq": [instance]},
                "updatedAt": {"gte": T0 + SPAN_MS - 7 * day}}),
            sort: SortAttribute::UpdatedAt,
            descending: true,
            second_page: false,
        },
        Shape {
            name: "one instance, by severity DESC",
            criterion: json!({"resource.instanceDetails.instanceId": {"eq": [instance]}}),
            sort: SortAttribute::Severity,
            descending: true,
            second_page: false,
        },
        Shape {
            name: "severity >= 7, active, last 7 days, by createdAt DESC",
            criterion: json!({"severity": {"gte": 7}, "service.archived": {"eq": ["false"]},
                "updatedAt": {"gte": T0 + SPAN_MS - 7 * day}}),
            sort: SortAttribute::CreatedAt,
            descending: true,
            second_page: false,
        },
        Shape {
            name: "type = ReverseShell, high severity, by count DESC",
            criterion: json!({"type": {"eq": ["Execution:Runtime/ReverseShell"]},
                "severity": {"gte": 7}}),
            sort: SortAttribute::Count,
            descending: true,
            second_page: false,
        },
        Shape {
            name: "two types, by type ASC, page 2",
            criterion: json!({"type": {"eq": ["Recon:EC2/Portscan", "UnauthorizedAccess:EC2/SSHBruteForce"]}}),
            sort: SortAttribute::Type,
            descending: false,
            second_page: true,
        },
        Shape {
            name: "severity >= 7 + JSON-only field (ruleId), by updatedAt DESC",
            criterion: json!({"severity": {"gte": 7}, "service.additionalInfo.ward.ruleId": {"eq": ["ward.c2.dns"]}}),
            sort: SortAttribute::UpdatedAt,
            descending: true,
            second_page: false,
        },
    ];
    println!(
        "list query latency over {} findings (50 per page, {} runs each):",
        args.findings, args.query_runs
    );
    let mut all = Vec::new();
    for shape in &shapes {
        let criteria = if shape.criterion.as_object().is_some_and(|o| o.is_empty()) {
            None
        } else {
            Some(
                FindingCriteria::from_json(&json!({ "criterion": shape.criterion }))
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            )
        };
        let base = ListQuery {
            criteria,
            criteria_text: shape.criterion.to_string(),
            sort: shape.sort,
            descending: shape.descending,
            max_results: 50,
            next_token: None,
        };
        let plan = store.read(|r| r.explain_list(&base))?;
        let token = if shape.second_page {
            store.read(|r| r.list_findings(&base))?.next_token
        } else {
            None
        };
        let mut times = Vec::with_capacity(args.query_runs);
        let mut returned = 0;
        for _ in 0..args.query_runs {
            let query = ListQuery {
                next_token: token.clone(),
                ..base.clone()
            };
            let started = Instant::now();
            let page = store.read(|r| r.list_findings(&query))?;
            times.push(started.elapsed());
            returned = page.findings.len();
        }
        times.sort();
        println!(
            "  {:<58} p50 {:>7.2} ms  p99 {:>7.2} ms  ({} results)",
            shape.name,
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            returned
        );
        println!("      plan: {plan}");
        all.extend(times);
    }
    all.sort();
    println!(
        "  all shapes                                                 p50 {:>7.2} ms  p99 {:>7.2} ms  (target p99 < 50 ms)",
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99))
    );
    // No-index baseline: the first shape by scanning the JSON lines of all findings.
    let criteria = FindingCriteria::from_json(&json!({ "criterion": shapes[0].criterion }))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    let mut best: Vec<(i64, String)> = Vec::new();
    for line in BufReader::new(File::open(&jsonl)?).lines() {
        let finding = Finding::from_json_str(&line?)?;
        if criteria.matches(&finding) {
            best.push((
                ward_collector::store::columns::filter_millis(&finding.updated_at),
                finding.id,
            ));
        }
    }
    best.sort_unstable_by(|a, b| b.cmp(a));
    best.truncate(50);
    let scan = started.elapsed();
    println!(
        "  baseline: scan of JSON lines for shape 1 (no index)         {:>7.0} ms  (store p50 = {:.4}x of it)",
        ms(scan),
        ms(percentile(&all, 0.5)) / ms(scan)
    );
    Ok(())
}
