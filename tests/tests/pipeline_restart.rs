//! Detections in `ward-collector serve` across a SIGKILL: agent batches stream over mTLS into the
//! real collector binary, which is killed mid-ingest and restarted on the same data. Every
//! acknowledged event must reach the engine exactly once: each event is one CryptoMinerExecuted
//! occurrence, so the findings' counts must add up to the events sent (a replayed batch would add
//! too much, a skipped one too little, a finding restarted from scratch would lose its count). The
//! five findings also form one attack sequence, updated once per new member.

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

/// (log offset, [(finding id, type, count)]) as committed in the findings store. Only opened
/// while no collector runs.
fn committed_state(data: &Path) -> (u64, Vec<(String, String, u64)>) {
    use ward_collector::pipeline::state::LOG_CHECKPOINT;
    use ward_collector::store::{ListQuery, Store, StoreConfig};
    let store = Store::open(&data.join("ward.db"), StoreConfig::default()).expect("store opens");
    let offset = store
        .read(|r| r.checkpoint(LOG_CHECKPOINT))
        .unwrap()
        .and_then(|v| v["offset"].as_u64())
        .unwrap_or(0);
    let page = store
        .read(|r| {
            r.list_findings(&ListQuery {
                max_results: 1000,
                ..ListQuery::default()
            })
        })
        .unwrap();
    assert!(page.next_token.is_none());
    let findings = page
        .findings
        .iter()
        .map(|raw| {
            let f: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
            (
                f["id"].as_str().unwrap().to_string(),
                f["type"].as_str().unwrap().to_string(),
                f["service"]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    (offset, findings)
}

fn log_len(data: &Path) -> u64 {
    std::fs::metadata(data.join("ingest.log")).map_or(0, |m| m.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_collector_resumes_detection_without_loss_or_duplicates() {
    const N: u64 = 30_000;
    // ≈ 6 k events/s for ~5 s, across the kill and the restart.
    let (stream, collector) =
        SteadyStream::start("pipeline-restart", "agent-p", 200, N, miner_event);
    let (data, metrics) = (stream.data.clone(), stream.metrics.clone());
    stream.acked_at_least(5_000).await;
    // Detection follows acknowledgement within milliseconds; let it commit some findings.
    tokio::time::sleep(Duration::from_millis(300)).await;
    collector.kill();
    let acked_at_kill = metrics.events_acked.load(Relaxed);
    let (_, at_kill) = committed_state(&data);
    let counted_at_kill: u64 = at_kill.iter().map(|f| f.2).sum();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let collector = stream.restart_collector();
    let _dir = stream.finish().await;
    assert_eq!(metrics.events_acked.load(Relaxed), N);
    // SIGTERM: ingest stops, the pipeline processes everything acknowledged, commits, exits.
    collector.stop();

    assert!(
        acked_at_kill < N && counted_at_kill > 0 && counted_at_kill < N,
        "the kill came after everything was processed ({acked_at_kill} acked, {counted_at_kill} counted)"
    );
    let (offset, findings) = committed_state(&data);
    assert_eq!(
        offset,
        log_len(&data),
        "the pipeline stopped before the end of the log"
    );
    let (miners, others): (Vec<_>, Vec<_>) = findings
        .iter()
        .partition(|f| f.1 == "Impact:Runtime/CryptoMinerExecuted");
    assert_eq!(miners.len() as u64, POOLS, "{findings:?}");
    for (id, _, count) in &miners {
        assert_eq!(*count, N / POOLS, "finding {id}: {findings:?}");
    }
    // Five findings on one host are one attack sequence (correlation, also exactly once across
    // the kill): raised at the third distinct finding, updated by the fourth and the fifth.
    assert_eq!(others.len(), 1, "{findings:?}");
    assert_eq!(others[0].1, "AttackSequence:EC2/CompromisedInstanceGroup");
    assert_eq!(others[0].2, POOLS - 2, "{findings:?}");
    // The log itself holds every event once (the transport's guarantee the pipeline builds on).
    let stored = stored_events(&data);
    assert_eq!(stored["agent-p"].len() as u64, N);
}
