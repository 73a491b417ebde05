//! The writer side of the store crash test (`ward-collector store-crash-child`, hidden): threads
//! commit numbered batches (findings + events + the thread's checkpoint) in a loop and print
//! `committed THREAD BATCH` after each commit returns, until killed. Each thread resumes after
//! its stored checkpoint, like a pipeline source restarting, so several kill rounds must produce
//! batches 0..=checkpoint for every thread with no gap, no partial batch and no duplicate.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::{Store, StoreConfig, StoreError, StoredEvent, WriteBatch};
use crate::findings::Finding;

/// Findings in every batch (the test checks each batch is all there or not at all).
pub const FINDINGS_PER_BATCH: usize = 5;

pub fn checkpoint_name(thread: usize) -> String {
    format!("crash-test:{thread}")
}

pub fn finding_id(thread: usize, batch: u64, n: usize) -> String {
    format!("t{thread}b{batch}n{n}")
}

fn batch(thread: usize, number: u64) -> WriteBatch {
    let findings = (0..FINDINGS_PER_BATCH)
        .map(|n| {
            let id = finding_id(thread, number, n);
            Finding::from_json_str(
                &json!({
                    "schemaVersion": "2.0", "id": id, "type": "Recon:EC2/Portscan", "severity": 5,
                    "updatedAt": crate::findings::time::format_millis(super::now_millis()),
                    "service": {"archived": false, "count": 1,
                                "additionalInfo": {"ward": {"eventIds": [format!("{id}-ev")]}}},
                    // Bulk, so commits have some size.
                    "description": "x".repeat(512),
                })
                .to_string(),
            )
            .expect("valid finding JSON")
        })
        .collect::<Vec<_>>();
    let events = findings
        .iter()
        .map(|f| StoredEvent {
            id: format!("{}-ev", f.id),
            time_ms: super::now_millis(),
            source: "agent".into(),
            host: Some(format!("host-{thread}")),
            pid: Some(number as i64),
            process_start_time: None,
            event: json!({"batch": number}),
        })
        .collect();
    WriteBatch {
        findings,
        events,
        checkpoints: vec![(checkpoint_name(thread), json!(number))],
        ..WriteBatch::default()
    }
}

pub fn run(path: &Path, threads: usize) -> Result<(), StoreError> {
    let store = Store::open(path, StoreConfig::default())?;
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let store = store.clone();
            let out = out.clone();
            std::thread::spawn(move || -> Result<(), StoreError> {
                let next = store
                    .read(|r| r.checkpoint(&checkpoint_name(thread)))?
                    .and_then(|v| v.as_u64())
                    .map_or(0, |n| n + 1);
                for number in next.. {
                    store.commit(batch(thread, number))?;
                    let mut out = out.lock().expect("stdout lock");
                    let _ = writeln!(out, "committed {thread} {number}");
                    let _ = out.flush();
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().expect("crash-test thread")?;
    }
    Ok(())
}
