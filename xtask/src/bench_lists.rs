//! `cargo xtask bench lists`: what it costs the running detections to pick up a threat list
//! changed through the query API. `serve` rebuilds its list index and rule set from the store once
//! per change (`ward_collector::pipeline::live`); this measures that rebuild with one stored list of
//! N entries (half IPv4 addresses, half domains) and ten suppression rules.
//!
//! Baseline in the same run: parsing the same list text into a lookup list, which `POST /v1/lists`
//! does anyway before storing it. The rebuild is reported as a ratio to it. Measured in a release
//! build of this program (`--inner`); the fastest of `--runs` is reported, with the median.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ward_collector::intel::{IntelIndex, IntelList, ListFormat, ListKind, ListRole};
use ward_collector::pipeline::live::{Generation, LiveConfig};
use ward_collector::store::{ListSpec, Store, StoreConfig};

#[derive(clap::Args)]
pub struct Args {
    /// Entries of the stored list.
    #[arg(long, default_value_t = 100_000)]
    entries: usize,
    /// Runs per measurement.
    #[arg(long, default_value_t = 7)]
    runs: u32,
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

/// One entry per line: a public IPv4 address or a domain, distinct, in a fixed order.
fn list_text(entries: usize) -> String {
    let mut text = String::with_capacity(entries * 20);
    for i in 0..entries {
        if i % 2 == 0 {
            let n = i as u32 / 2;
            // 11.0.0.0/8 onwards: publicly routable, never private.
            text.push_str(&format!(
                "{}.{}.{}.{}\n",
                11 + (n >> 24),
                (n >> 16) & 0xff,
                (n >> 8) & 0xff,
                n & 0xff
            ));
        } else {
            text.push_str(&format!("host-{i}.bad-{}.example\n", i % 997));
        }
    }
    text
}

/// (fastest, median) of `runs` timings of `f`.
fn time(runs: u32, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut all: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    all.sort();
    (all[0], all[all.len() / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn inner(args: &Args) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("ward-bench-lists-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir.join("ward.db"), StoreConfig::default())?;
    let text = list_text(args.entries);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let stored = rt.block_on(store.put_list(ListSpec {
        name: "bench".into(),
        role: ListRole::Threat,
        kind: ListKind::EntityList,
        format: ListFormat::Txt,
        location: None,
        content: Some(text.clone()),
    }))?;
    let put = started.elapsed();
    anyhow::ensure!(
        stored.entries == args.entries,
        "stored {} of {} entries",
        stored.entries,
        args.entries
    );
    for i in 0..10 {
        rt.block_on(store.put_rule(serde_json::json!({
            "name": format!("rule-{i}"), "action": "ARCHIVE", "rank": i + 1,
            "findingCriteria": {"criterion": {"resource.instanceDetails.instanceId": {"equals": [format!("i-{i:017}")]}}}
        })))?;
    }

    let (parse_min, parse_median) = time(args.runs, || {
        let list = IntelList::parse(
            "bench",
            ListRole::Threat,
            ListKind::EntityList,
            ListFormat::Txt,
            &text,
        );
        assert_eq!(list.report.loaded, args.entries);
    });
    let live = LiveConfig::new(
        store.clone(),
        Arc::new(Generation::default()),
        IntelIndex::default(),
    );
    let (rebuild_min, rebuild_median) = time(args.runs, || {
        let d = live.load().expect("rebuild");
        assert_eq!(d.entries, args.entries);
        assert_eq!(d.suppression.rules().len(), 10);
    });
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "list of {} entries ({} KiB), {} runs, release build",
        args.entries,
        text.len() / 1024,
        args.runs
    );
    println!("| step | fastest | median |");
    println!("|---|---|---|");
    println!(
        "| parse the list text (baseline) | {:.1} ms | {:.1} ms |",
        ms(parse_min),
        ms(parse_median)
    );
    println!(
        "| rebuild from the store (read + parse + index + 10 rules) | {:.1} ms | {:.1} ms |",
        ms(rebuild_min),
        ms(rebuild_median)
    );
    println!(
        "rebuild / parse = {:.2} (fastest runs); storing it through the API (check + commit): {:.1} ms",
        rebuild_min.as_secs_f64() / parse_min.as_secs_f64(),
        ms(put)
    );
    Ok(())
}
