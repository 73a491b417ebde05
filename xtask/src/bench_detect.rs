//! `cargo xtask bench detect`: events/s through the runtime detection engine with the full
//! built-in rule catalogue, every detector and 100k-entry threat and trusted lists, and the latency
//! from an event's arrival (its JSON line read) to its finding emitted.
//!
//! Measured in a release build of this program (`--inner`), single-threaded, so rates are per
//! core. The baseline in the same run is parsing the same lines into events without detecting:
//! the engine's cost is reported as a ratio to it, which carries over between machines better than
//! absolute numbers.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ward_collector::detect::{Engine, EngineConfig, RuleSet, RuntimeEvent};
use ward_collector::intel::{IntelIndex, IntelList, ListFormat, ListKind, ListRole};
use ward_collector::suppression::RuleSet as SuppressionRules;

#[derive(clap::Args)]
pub struct Args {
    /// Events per run.
    #[arg(long, default_value_t = 300_000)]
    events: usize,
    /// Entries in each of the threat and trusted lists (half IPv4 addresses, half domains).
    #[arg(long, default_value_t = 100_000)]
    list_entries: usize,
    /// Runs per measurement; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Percent of events that are attacks (and raise findings).
    #[arg(long, default_value_t = 1)]
    attack_percent: u32,
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

/// xorshift64*: a fixed-seed generator so every run sees the same events.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn public_ip(&mut self) -> String {
        let v = self.next();
        format!(
            "{}.{}.{}.{}",
            11 + (v & 0x7f),
            (v >> 8) & 0xff,
            (v >> 16) & 0xff,
            1 + ((v >> 24) & 0xfd)
        )
    }

    fn domain(&mut self) -> String {
        format!(
            "h{:x}.example{}.com",
            self.next() & 0xffff_ffff,
            self.below(50)
        )
    }
}

fn list(
    rng: &mut Rng,
    entries: usize,
    name: &str,
    role: ListRole,
) -> (Arc<IntelList>, Vec<String>) {
    let mut text = String::with_capacity(entries * 24);
    let mut ips = Vec::new();
    for i in 0..entries {
        if i % 2 == 0 {
            let ip = rng.public_ip();
            let _ = writeln!(text, "{ip}");
            if ips.len() < 1000 {
                ips.push(ip);
            }
        } else {
            let _ = writeln!(text, "{}", rng.domain());
        }
    }
    (
        Arc::new(IntelList::parse(
            name,
            role,
            ListKind::EntityList,
            ListFormat::Txt,
            &text,
        )),
        ips,
    )
}

fn process(rng: &mut Rng, name: &str, exe: &str, args: &str) -> String {
    let pid = 1000 + rng.below(30_000);
    format!(
        r#"{{"pid":{pid},"ppid":900,"ns_pid":{pid},"start_time":"2026-03-01T10:00:00.123456789Z","name":"{name}","executable":"{exe}","args":{args},"cwd":"/home/app","uid":1000,"euid":1000,"gid":1000,"egid":1000,"namespaces":{{"pid":4026531836,"mnt":4026531841,"net":4026531840}},"cgroup_id":7788,"cgroup":"/system.slice/app.service","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","ancestors":[{{"pid":900,"ns_pid":900,"start_time":"2026-03-01T09:00:00Z","name":"bash","executable":"/usr/bin/bash","uid":1000,"euid":1000}},{{"pid":800,"ns_pid":800,"start_time":"2026-03-01T08:00:00Z","name":"sshd","executable":"/usr/sbin/sshd","uid":0,"euid":0}},{{"pid":1,"ns_pid":1,"start_time":"2026-03-01T07:00:00Z","name":"systemd","executable":"/usr/lib/systemd/systemd","uid":0,"euid":0}}]}}"#
    )
}

/// A mix shaped like a busy host: execs, forks and exits, file writes, connections, DNS.
fn events(args: &Args, threat_ips: &[String]) -> Vec<String> {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let benign = [
        ("ls", "/usr/bin/ls"),
        ("cat", "/usr/bin/cat"),
        ("python3", "/usr/bin/python3"),
        ("git", "/usr/bin/git"),
        ("sh", "/bin/sh"),
    ];
    (0..args.events)
        .map(|i| {
            let time = format!("2026-03-01T10:{:02}:{:02}.{:09}Z", (i / 60_000) % 60, (i / 1000) % 60, i % 1000 * 1000);
            let attack = rng.below(100) < u64::from(args.attack_percent);
            let (name, exe) = benign[rng.below(benign.len() as u64) as usize];
            match rng.below(100) {
                _ if attack => match rng.below(3) {
                    0 => format!(r#"{{"type":"process_exec","time":"{time}","process":{},"exec":{{}}}}"#, process(&mut rng, "xmrig", "/tmp/xmrig", r#"["/tmp/xmrig","-o","stratum+tcp://p:3333"]"#)),
                    1 => format!(r#"{{"type":"dns_query","time":"{time}","process":{},"dns":{{"id":1,"questions":[{{"name":"guarddutyc2activityb.com","type":"A","class":"IN"}}],"server":{{"ip":"10.0.0.2","port":53}},"transport":"udp"}}}}"#, process(&mut rng, "curl", "/usr/bin/curl", r#"["curl"]"#)),
                    _ => {
                        let ip = &threat_ips[rng.below(threat_ips.len() as u64) as usize];
                        format!(r#"{{"type":"net_connect","time":"{time}","syscall":"connect","result":0,"process":{},"socket":{{"family":"inet","protocol":"tcp","local":{{"ip":"10.0.1.5","port":40000}},"remote":{{"ip":"{ip}","port":443}}}}}}"#, process(&mut rng, "curl", "/usr/bin/curl", r#"["curl"]"#))
                    }
                },
                0..35 => {
                    let args = format!(r#"["{name}","--flag","/home/app/file{}"]"#, rng.below(100));
                    format!(
                        r#"{{"type":"process_exec","time":"{time}","process":{},"exec":{{}}}}"#,
                        process(&mut rng, name, exe, &args)
                    )
                }
                35..50 => format!(r#"{{"type":"process_{}","time":"{time}","process":{}{}}}"#, if i % 2 == 0 { "fork" } else { "exit" }, process(&mut rng, name, exe, r#"["x"]"#), if i % 2 == 0 { "" } else { r#","exit":{"code":0,"core_dumped":false}"# }),
                50..72 => format!(r#"{{"type":"file_open","time":"{time}","syscall":"openat","result":3,"process":{},"file":{{"path":"/home/app/out{}.log","flags":["O_WRONLY","O_CREAT","O_APPEND"],"mode":"644","inode":{}}}}}"#, process(&mut rng, name, exe, r#"["x"]"#), rng.below(1000), rng.next() & 0xffffff),
                72..90 => {
                    let ip = rng.public_ip();
                    format!(r#"{{"type":"net_connect","time":"{time}","syscall":"connect","result":0,"process":{},"socket":{{"family":"inet","protocol":"tcp","local":{{"ip":"10.0.1.5","port":40000}},"remote":{{"ip":"{ip}","port":443}}}}}}"#, process(&mut rng, name, exe, r#"["x"]"#))
                }
                _ => {
                    let domain = rng.domain();
                    format!(r#"{{"type":"dns_query","time":"{time}","process":{},"dns":{{"id":7,"questions":[{{"name":"{domain}","type":"A","class":"IN"}}],"server":{{"ip":"10.0.0.2","port":53}},"transport":"udp"}}}}"#, process(&mut rng, name, exe, r#"["x"]"#))
                }
            }
        })
        .collect()
}

fn engine(threat: &Arc<IntelList>, trusted: &Arc<IntelList>) -> anyhow::Result<Engine> {
    let rules = RuleSet::builtin().map_err(|e| anyhow::anyhow!("{e}"))?;
    let intel = IntelIndex::new([threat.clone(), trusted.clone()]);
    Ok(Engine::new(
        EngineConfig::default(),
        rules,
        intel,
        SuppressionRules::default(),
    ))
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn inner(args: &Args) -> anyhow::Result<()> {
    let mut rng = Rng(42);
    let (threat, threat_ips) = list(
        &mut rng,
        args.list_entries,
        "bench-threats",
        ListRole::Threat,
    );
    let (trusted, _) = list(
        &mut rng,
        args.list_entries,
        "bench-trusted",
        ListRole::Trusted,
    );
    let lines = events(args, &threat_ips);
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let rules = RuleSet::builtin().map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "bench detect: {} events ({:.0} bytes/event), {}% attacks, {} rules, threat + trusted lists of {} entries each, best of {} runs, 1 thread",
        lines.len(),
        bytes as f64 / lines.len() as f64,
        args.attack_percent,
        rules.len(),
        args.list_entries,
        args.runs
    );

    let mut parse_best = Duration::MAX;
    let mut engine_best = Duration::MAX;
    let mut both_best = Duration::MAX;
    let mut latencies = Vec::new();
    let mut all_latencies = Vec::new();
    let mut findings = 0;
    for _ in 0..args.runs {
        // Baseline: JSON parse only (each event dropped after parsing, as the engine run does).
        let start = Instant::now();
        for line in &lines {
            let ev = RuntimeEvent::from_json(line).map_err(|e| anyhow::anyhow!("{e}"))?;
            std::hint::black_box(&ev);
        }
        parse_best = parse_best.min(start.elapsed());
        let parsed: Vec<RuntimeEvent> = lines
            .iter()
            .map(|l| RuntimeEvent::from_json(l))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("{e}"))?;

        // Engine alone, on parsed events.
        let mut e = engine(&threat, &trusted)?;
        let start = Instant::now();
        let mut emitted = 0;
        for ev in &parsed {
            emitted += e.process(ev).len();
        }
        engine_best = engine_best.min(start.elapsed());
        std::hint::black_box(emitted);

        // Arrival to finding: parse + detect per line, timed per event.
        let mut e = engine(&threat, &trusted)?;
        latencies.clear();
        all_latencies.clear();
        let start = Instant::now();
        for line in &lines {
            let arrived = Instant::now();
            let ev = RuntimeEvent::from_json(line).map_err(|e| anyhow::anyhow!("{e}"))?;
            let out = e.process(&ev);
            let took = arrived.elapsed();
            all_latencies.push(took);
            if !out.is_empty() {
                latencies.push(took);
            }
        }
        both_best = both_best.min(start.elapsed());
        findings = e.findings().count();
    }
    latencies.sort_unstable();
    all_latencies.sort_unstable();
    let n = lines.len();
    let parse = rate(n, parse_best);
    println!(
        "  baseline  JSON parse only        {:>10.0} events/s  {:>6.1} MB/s",
        parse,
        bytes as f64 / parse_best.as_secs_f64() / 1e6
    );
    println!(
        "  engine    detect (parsed events) {:>10.0} events/s  ({:.2}x the parse rate)",
        rate(n, engine_best),
        rate(n, engine_best) / parse
    );
    println!(
        "  total     parse + detect         {:>10.0} events/s  ({:.2}x the parse rate)",
        rate(n, both_best),
        rate(n, both_best) / parse
    );
    println!(
        "  latency   arrival -> finding     p50 {:?}  p99 {:?}  max {:?}  ({} events with findings, {} distinct findings)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
        latencies.len(),
        findings
    );
    println!(
        "  latency   every event            p50 {:?}  p99 {:?}",
        percentile(&all_latencies, 0.5),
        percentile(&all_latencies, 0.99)
    );
    Ok(())
}
