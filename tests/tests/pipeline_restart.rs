//! Detections in `ward-collector serve` across a SIGKILL: agent batches stream over mTLS into the
//! real collector binary, which is killed mid-ingest and restarted on the same data. Every
//! acknowledged event must reach the engine exactly once: each event is one CryptoMinerExecuted
//! occurrence, so the findings' counts must add up to the events sent (a replayed batch would add
//! too much, a skipped one too little, a finding restarted from scratch would lose its count).

#[path = "transport_common.rs"]
mod common;

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;
use ward_proto::v1 as pb;

/// Pools the miner events are spread over: one finding each (aggregated by executable).
const POOLS: u64 = 5;

fn miner_event(i: u64) -> pb::Event {
    let mut e = event(7, i);
    e.time_unix_nano = 1_767_000_000_000_000_000 + i * 1_000;
    let p = e.process.as_mut().unwrap();
    p.name = "xmrig".into();
    p.executable = format!("/opt/pool{}/xmrig", i % POOLS);
    p.args = vec!["xmrig".into(), "-o".into(), format!("pool-{i}")];
    e
}

/// (log offset, finding id → count) of the pipeline state as committed.
fn committed_state(data: &Path) -> (u64, Vec<(String, String, u64)>) {
    let Ok(bytes) = std::fs::read(data.join("pipeline-state.json")) else {
        return (0, Vec::new());
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("state is JSON");
    let findings = v["findings"]
        .as_object()
        .expect("findings map")
        .iter()
        .map(|(id, f)| {
            assert_eq!(f["id"], id.as_str());
            (
                id.clone(),
                f["type"].as_str().unwrap().to_string(),
                f["service"]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    (v["logOffset"].as_u64().unwrap(), findings)
}

fn log_len(data: &Path) -> u64 {
    std::fs::metadata(data.join("ingest.log")).map_or(0, |m| m.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_collector_resumes_detection_without_loss_or_duplicates() {
    let pki = Pki::generate();
    let dir = TempDir::new("pipeline-restart");
    pki.write_server_files(dir.path());
    let data = dir.path().join("data");
    let listen = free_port();
    let collector = CollectorProcess::start(dir.path(), &data, listen);
    let mut cfg = agent_config(
        collector.addr,
        pki.client_tls("agent-p"),
        "agent-p",
        &dir.path().join("spool"),
    );
    cfg.max_batch_events = 200;
    cfg.max_batch_delay = Duration::from_millis(20);
    let (mut sink, handle) = start_agent(cfg);
    let metrics = handle.metrics.clone();
    const N: u64 = 30_000;
    // ≈ 6 k events/s for ~5 s, across the kill and the restart.
    let producer = std::thread::spawn(move || {
        for i in 0..N {
            sink.push(&miner_event(i)).unwrap();
            if i % 600 == 599 {
                use ward_agent::output::Sink;
                sink.flush().unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        drop(sink);
    });
    let (m, d) = (metrics.clone(), data.clone());
    tokio::task::spawn_blocking(move || {
        wait_until(
            "acknowledgements and first findings",
            Duration::from_secs(30),
            || m.events_acked.load(Relaxed) >= 5_000 && committed_state(&d).0 > 0,
        )
    })
    .await
    .unwrap();
    collector.kill();
    let acked_at_kill = metrics.events_acked.load(Relaxed);
    let (_, at_kill) = committed_state(&data);
    let counted_at_kill: u64 = at_kill.iter().map(|f| f.2).sum();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let collector = CollectorProcess::start(dir.path(), &data, listen);
    tokio::task::spawn_blocking(move || {
        producer.join().unwrap();
        handle.join().expect("transport drains");
    })
    .await
    .unwrap();
    assert_eq!(metrics.events_acked.load(Relaxed), N);
    let d = data.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(
            "the pipeline to reach the end of the log",
            Duration::from_secs(30),
            || committed_state(&d).0 == log_len(&d),
        )
    })
    .await
    .unwrap();
    collector.stop();

    assert!(
        acked_at_kill < N && counted_at_kill < N,
        "the kill came after everything was processed ({acked_at_kill} acked, {counted_at_kill} counted)"
    );
    let (_, findings) = committed_state(&data);
    assert_eq!(findings.len() as u64, POOLS, "{findings:?}");
    for (id, ty, count) in &findings {
        assert_eq!(ty, "Impact:Runtime/CryptoMinerExecuted", "{id}");
        assert_eq!(*count, N / POOLS, "finding {id}: {findings:?}");
    }
    // The log itself holds every event once (the transport's guarantee the pipeline builds on).
    let stored = stored_events(&data);
    assert_eq!(stored["agent-p"].len() as u64, N);
}
