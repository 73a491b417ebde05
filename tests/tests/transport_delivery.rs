//! Agent → collector over mTLS on loopback: every event arrives once and in order per agent, also when
//! the collector is killed mid-stream and comes back 5 s later.

#[path = "transport_common.rs"]
mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;

fn assert_exactly_once_in_order(got: &[u64], expected: u64, who: &str) {
    let missing = expected as usize
        - got
            .iter()
            .filter(|i| **i < expected)
            .count()
            .min(expected as usize);
    assert_eq!(
        got.len() as u64,
        expected,
        "{who}: {} events stored, {expected} sent ({missing} short)",
        got.len()
    );
    for (i, idx) in got.iter().enumerate() {
        assert_eq!(
            *idx, i as u64,
            "{who}: event {i} is #{idx} (duplicate, loss or reordering)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_every_event_once_in_order() {
    let pki = Pki::generate();
    let dir = TempDir::new("delivery");
    let data = dir.path().join("data");
    let server = start_collector(&pki, &data, "127.0.0.1:0".parse().unwrap()).await;
    const N: u64 = 25_000;
    let mut agents = Vec::new();
    for (n, id) in [(1u32, "agent-one"), (2, "agent-two")] {
        let mut cfg = agent_config(server.addr, pki.client_tls(id), id, &dir.path().join(id));
        cfg.max_batch_events = 700;
        agents.push(std::thread::spawn(move || {
            let (mut sink, handle) = start_agent(cfg);
            for i in 0..N {
                sink.push(&event(n, i)).unwrap();
                if i % 5000 == 0 {
                    // Let some batches go out by time, not only by size.
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
            drop(sink);
            let metrics = handle.metrics.clone();
            handle.join().expect("transport drains");
            metrics
        }));
    }
    let mut acked = 0;
    for a in agents {
        let m = tokio::task::spawn_blocking(move || a.join().unwrap())
            .await
            .unwrap();
        assert_eq!(m.events_acked.load(Relaxed), N);
        assert_eq!(m.events_evicted.load(Relaxed), 0);
        assert_eq!(m.spool_batches.load(Relaxed), 0);
        acked += m.events_acked.load(Relaxed);
    }
    assert_eq!(server.metrics.events_accepted.get(), acked);
    assert_eq!(server.metrics.batches_duplicate.get(), 0);
    // Metrics are served as Prometheus text.
    let text = http_get(server.metrics_addr.unwrap(), "/metrics").await;
    assert!(
        text.contains(&format!("ward_ingest_events_accepted_total {acked}")),
        "{text}"
    );
    server.shutdown().await.unwrap();

    let stored = stored_events(&data);
    assert_eq!(stored.len(), 2, "agents stored: {:?}", stored.keys());
    for (id, n) in [("agent-one", 1u32), ("agent-two", 2)] {
        let events = &stored[id];
        assert!(
            events.iter().all(|e| e.process.as_ref().unwrap().pid == n),
            "{id} holds another agent's events"
        );
        let (idx, loss) = split_loss(events);
        assert!(loss.is_empty(), "{id}: unexpected loss {loss:?}");
        assert_exactly_once_in_order(&idx, N, id);
    }
}

/// The collector process is SIGKILLed while the agent streams and restarted 5 s later on the same
/// address and data: nothing acknowledged is lost, nothing is stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_killed_and_restarted_loses_and_duplicates_nothing() {
    const N: u64 = 60_000;
    // Events flow steadily (≈ 6 k/s) for ~10 s, across the kill and the restart.
    let (stream, collector) = SteadyStream::start("restart", "agent-r", 500, N, |i| event(7, i));
    let (data, metrics) = (stream.data.clone(), stream.metrics.clone());
    stream.acked_at_least(5_000).await;
    collector.kill();
    let acked_at_kill = metrics.events_acked.load(Relaxed);
    tokio::time::sleep(Duration::from_secs(5)).await;
    // Meanwhile the agent kept spooling.
    assert!(
        metrics.spool_batches.load(Relaxed) > 0,
        "nothing spooled while the collector was down"
    );
    let collector = stream.restart_collector();
    let _dir = stream.finish().await;
    collector.stop();
    assert!(metrics.reconnects.load(Relaxed) >= 1);
    assert_eq!(metrics.events_acked.load(Relaxed), N);
    assert!(
        acked_at_kill < N,
        "the kill happened after everything was acknowledged"
    );
    let stored = stored_events(&data);
    let (idx, loss) = split_loss(&stored["agent-r"]);
    assert!(loss.is_empty(), "unexpected loss {loss:?}");
    assert_exactly_once_in_order(&idx, N, "agent-r");
    // Sequences strictly increase in the log: no batch stored twice.
    let seqs = &stored_sequences(&data)["agent-r"];
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequences not strictly increasing: {seqs:?}"
    );
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// An agent configured for larger batches than the collector accepts seals them at the collector's
/// limit (from its Welcome) instead of having every batch refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_follow_the_collectors_event_limit() {
    use ward_collector::ingest::{self, Limits, ServeConfig};
    let pki = Pki::generate();
    let dir = TempDir::new("limit");
    let data = dir.path().join("data");
    let server = ingest::start(ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(pki.server_tls()),
        data_dir: data.clone(),
        limits: Limits {
            max_batch_events: 300,
            ..Limits::default()
        },
        metrics_listen: None,
    })
    .await
    .unwrap();
    let mut cfg = agent_config(
        server.addr,
        pki.client_tls("agent-l"),
        "agent-l",
        &dir.path().join("spool"),
    );
    cfg.max_batch_events = 4096;
    const N: u64 = 5_000;
    let metrics = tokio::task::spawn_blocking(move || {
        let (mut sink, handle) = start_agent(cfg);
        let m = handle.metrics.clone();
        wait_until("connected", Duration::from_secs(20), || {
            m.connected.load(Relaxed) == 1
        });
        for i in 0..N {
            sink.push(&event(5, i)).unwrap();
        }
        drop(sink);
        handle.join().expect("transport drains");
        m
    })
    .await
    .unwrap();
    assert_eq!(metrics.events_acked.load(Relaxed), N);
    assert_eq!(metrics.reconnects.load(Relaxed), 0, "a batch was refused");
    server.shutdown().await.unwrap();
    let batches = ward_collector::ingest::store::read_log(&data.join("ingest.log")).unwrap();
    assert!(batches.iter().all(|b| b.event_count <= 300));
    assert!(batches.len() >= (N / 300) as usize);
    let (idx, _) = split_loss(&stored_events(&data)["agent-l"]);
    assert_exactly_once_in_order(&idx, N, "agent-l");
}
