//! Alert outputs in the real `ward-collector serve`: agent batches stream in over mTLS (the agent's
//! transport, no eBPF), detections raise findings, and `--output file:...` receives each new finding
//! at once while its updates wait for the update interval; SIGTERM sends the held latest states.

#[path = "transport_common.rs"]
mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;
use ward_proto::v1 as pb;

const POOLS: u64 = 2;
const N: u64 = 400;

fn miner_event(i: u64) -> pb::Event {
    let mut e = event(9, i);
    e.time_unix_nano = 1_767_000_000_000_000_000 + i * 1_000;
    let p = e.process.as_mut().unwrap();
    p.name = "xmrig".into();
    p.executable = format!("/opt/pool{}/xmrig", i % POOLS);
    e
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_sends_new_findings_at_once_and_held_updates_at_shutdown() {
    let pki = Pki::generate();
    let dir = TempDir::new("serve-outputs");
    pki.write_server_files(dir.path());
    let data = dir.path().join("data");
    let out = dir.path().join("findings.jsonl");
    let spec = format!("file+eventbridge:{}", out.display());
    let collector = CollectorProcess::start_with(
        dir.path(),
        &data,
        free_port(),
        &["--output", &spec, "--output-update-interval", "1h"],
    );
    let mut cfg = agent_config(
        collector.addr,
        pki.client_tls("agent-o"),
        "agent-o",
        &dir.path().join("spool"),
    );
    cfg.max_batch_delay = Duration::from_millis(20);
    let (mut sink, handle) = start_agent(cfg);
    let metrics = handle.metrics.clone();
    let o = out.clone();
    tokio::task::spawn_blocking(move || {
        use ward_agent::output::Sink;
        // Half the events, then (once their findings are out) the rest: the store commits the
        // latest state per finding, so the updates come from the second half.
        for i in 0..N / 2 {
            sink.push(&miner_event(i)).unwrap();
        }
        sink.flush().unwrap();
        wait_until("one line per new finding", Duration::from_secs(20), || {
            lines(&o).len() as u64 == POOLS
        });
        for i in N / 2..N {
            sink.push(&miner_event(i)).unwrap();
        }
        sink.flush().unwrap();
        drop(sink);
        handle.join().expect("transport drains");
    })
    .await
    .unwrap();
    assert_eq!(metrics.events_acked.load(Relaxed), N);
    let o = out.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("one line per new finding", Duration::from_secs(20), || {
            lines(&o).len() as u64 == POOLS
        })
    })
    .await
    .unwrap();
    // The updates are held for an hour: nothing more arrives meanwhile.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let first = lines(&out);
    assert_eq!(first.len() as u64, POOLS, "updates wait for the interval");
    for e in &first {
        assert_eq!(e["detail-type"], "GuardDuty Finding");
        assert_eq!(e["detail"]["type"], "Impact:Runtime/CryptoMinerExecuted");
        assert_eq!(e["detail"]["service"]["archived"], false);
    }
    collector.stop();
    // At shutdown each finding's latest state went out: counts add up to every event sent.
    let all = lines(&out);
    assert_eq!(all.len() as u64, 2 * POOLS, "{all:#?}");
    let last: u64 = all[POOLS as usize..]
        .iter()
        .map(|e| e["detail"]["service"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(last, N);
    let ids = |v: &[serde_json::Value]| {
        let mut ids: Vec<String> = v
            .iter()
            .map(|e| e["detail"]["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&all[..POOLS as usize]), ids(&all[POOLS as usize..]));
}
