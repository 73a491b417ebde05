//! The collector is unreachable while the agent produces more than its spool holds: the oldest batches
//! are evicted, the loss is counted, and it reaches the collector as an `event_loss` event once the
//! collector is up; everything not evicted arrives once, in order.

#[path = "transport_common.rs"]
mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;
use ward_proto::v1::event_loss::Reason;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_spool_evicts_oldest_and_reports_the_loss() {
    let pki = Pki::generate();
    let dir = TempDir::new("spool");
    let data = dir.path().join("data");
    // Nothing listens here yet: the agent retries with backoff and spools.
    let listen = free_port();
    let mut cfg = agent_config(
        listen,
        pki.client_tls("agent-s"),
        "agent-s",
        &dir.path().join("spool"),
    );
    cfg.max_batch_events = 100;
    cfg.spool.max_bytes = 64 << 10;
    cfg.spool.max_memory = 16 << 10;
    let (mut sink, handle) = start_agent(cfg);
    let metrics = handle.metrics.clone();
    const N: u64 = 20_000;
    for i in 0..N {
        sink.push(&event(3, i)).unwrap();
    }
    {
        use ward_agent::output::Sink;
        sink.flush().unwrap();
    }
    let m = metrics.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("all events spooled", Duration::from_secs(30), || {
            m.events_spooled.load(Relaxed) >= N
        })
    })
    .await
    .unwrap();
    assert!(
        metrics.events_evicted.load(Relaxed) > 0,
        "a 64 KiB spool cannot hold {N} events"
    );
    assert!(metrics.batches_evicted.load(Relaxed) > 0);
    assert!(metrics.spool_bytes.load(Relaxed) <= 64 << 10);
    assert_eq!(metrics.events_acked.load(Relaxed), 0);

    let server = start_collector(&pki, &data, listen).await;
    drop(sink);
    tokio::task::spawn_blocking(move || handle.join().expect("transport drains"))
        .await
        .unwrap();
    server.shutdown().await.unwrap();
    // Read after the drain: sealing the last batch (with the pending loss report) may evict once more.
    let evicted = metrics.events_evicted.load(Relaxed);

    let stored = stored_events(&data);
    let (idx, loss) = split_loss(&stored["agent-s"]);
    // The oldest were evicted: what arrived is the newest suffix, once each, in order.
    let first = idx[0];
    assert_eq!(
        idx,
        (first..N).collect::<Vec<_>>(),
        "stored events are not a contiguous suffix"
    );
    assert_eq!(
        first, evicted,
        "evicted count differs from the missing prefix"
    );
    // The loss is reported as event_loss event(s) whose counts add up to what is missing.
    assert!(!loss.is_empty(), "no event_loss event stored");
    assert!(loss.iter().all(|l| l.reason == Reason::SpoolEvicted as i32));
    assert_eq!(loss.iter().map(|l| l.events).sum::<u64>(), evicted);
    // Reports of evicted reports are carried forward, so ranges may arrive out of order; together they
    // start at the first batch.
    assert_eq!(
        loss.iter().map(|l| l.first_sequence).min(),
        Some(1),
        "the oldest batch was the first evicted: {loss:?}"
    );
    assert_eq!(
        loss.iter().map(|l| l.batches).sum::<u64>(),
        metrics.batches_evicted.load(Relaxed)
    );
}

/// A spool left by a previous run is delivered by the next one (agent restart with the collector down).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_survives_agent_restart() {
    let pki = Pki::generate();
    let dir = TempDir::new("spool-restart");
    let data = dir.path().join("data");
    let listen = free_port();
    let spool = dir.path().join("spool");
    let mut cfg = agent_config(listen, pki.client_tls("agent-t"), "agent-t", &spool);
    cfg.drain_timeout = Duration::from_millis(300);
    let (mut sink, handle) = start_agent(cfg.clone());
    for i in 0..3_000 {
        sink.push(&event(4, i)).unwrap();
    }
    drop(sink);
    tokio::task::spawn_blocking(move || handle.join().unwrap())
        .await
        .unwrap();
    let server = start_collector(&pki, &data, listen).await;
    cfg.drain_timeout = Duration::from_secs(30);
    let (mut sink, handle) = start_agent(cfg);
    for i in 3_000..4_000 {
        sink.push(&event(4, i)).unwrap();
    }
    drop(sink);
    tokio::task::spawn_blocking(move || handle.join().unwrap())
        .await
        .unwrap();
    server.shutdown().await.unwrap();
    let (idx, loss) = split_loss(&stored_events(&data)["agent-t"]);
    assert!(loss.is_empty());
    assert_eq!(idx, (0..4_000).collect::<Vec<u64>>());
}
