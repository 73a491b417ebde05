//! Store crash test: a child process commits batches (findings + events + checkpoint) from four
//! threads and is killed with SIGKILL mid-stream, three times. After each kill the file must pass
//! `quick_check`, hold every batch whose commit returned before the kill, no partial batch, no
//! duplicate, and each thread's checkpoint must be exactly its last stored batch (so a restart
//! resumes with no gap and no repeat).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ward_collector::store::crash_child::{FINDINGS_PER_BATCH, checkpoint_name};
use ward_collector::store::{Store, StoreConfig};

const THREADS: usize = 4;

/// Runs the child until it has acknowledged at least `min_commits` batches, kills it with
/// SIGKILL, and returns every acknowledged (thread, batch).
fn run_and_kill(db: &Path, min_commits: usize) -> BTreeSet<(usize, u64)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward-collector"))
        .args(["store-crash-child", "--threads", &THREADS.to_string()])
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the crash child");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut words = line.split_whitespace().skip(1);
            let thread: usize = words.next().unwrap().parse().unwrap();
            let batch: u64 = words.next().unwrap().parse().unwrap();
            if tx.send((thread, batch)).is_err() {
                break;
            }
        }
    });
    let mut acked = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.len() < min_commits {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(ack) => {
                acked.insert(ack);
            }
            Err(e) => panic!(
                "child stopped acknowledging after {} commits: {e}",
                acked.len()
            ),
        }
    }
    // std's Child::kill is SIGKILL on Unix: no chance to flush or roll back anything.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed");
    reader.join().unwrap();
    // Lines written before the kill are still in the pipe: they were acknowledged too.
    acked.extend(rx.try_iter());
    acked
}

#[test]
fn kill_9_mid_commit_loses_no_acknowledged_batch_and_leaves_no_partial_one() {
    let dir = std::env::temp_dir().join(format!("ward-store-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("ward.db");
    let mut all_acked = BTreeSet::new();
    for round in 0..3 {
        let acked = run_and_kill(&db, 40 + round * 25);
        all_acked.extend(acked);
        let store = Store::open(&db, StoreConfig::default()).unwrap();
        let (check, ids, checkpoints) = store
            .read(|r| {
                let check = r.quick_check()?;
                let ids: Vec<String> = {
                    let page = r.list_findings(&ward_collector::store::ListQuery {
                        sort: ward_collector::store::SortAttribute::Id,
                        max_results: 1_000_000,
                        ..Default::default()
                    })?;
                    page.findings
                        .iter()
                        .map(|raw| {
                            serde_json::from_str::<serde_json::Value>(raw.get()).unwrap()["id"]
                                .as_str()
                                .unwrap()
                                .to_owned()
                        })
                        .collect()
                };
                let checkpoints: Vec<Option<u64>> = (0..THREADS)
                    .map(|t| {
                        r.checkpoint(&checkpoint_name(t))
                            .map(|v| v.and_then(|v| v.as_u64()))
                    })
                    .collect::<Result<_, _>>()?;
                Ok((check, ids, checkpoints))
            })
            .unwrap();
        assert_eq!(check, "ok", "round {round}: quick_check");
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "round {round}: duplicate finding ids"
        );
        // Findings per (thread, batch).
        let mut per_batch: BTreeMap<(usize, u64), usize> = BTreeMap::new();
        for id in &ids {
            let (t, rest) = id[1..].split_once('b').unwrap();
            let (b, _) = rest.split_once('n').unwrap();
            *per_batch
                .entry((t.parse().unwrap(), b.parse().unwrap()))
                .or_default() += 1;
        }
        for (batch, n) in &per_batch {
            assert_eq!(
                *n, FINDINGS_PER_BATCH,
                "round {round}: partial batch {batch:?}"
            );
        }
        for ack in &all_acked {
            assert!(
                per_batch.contains_key(ack),
                "round {round}: acknowledged batch {ack:?} lost"
            );
        }
        for (t, checkpoint) in checkpoints.iter().enumerate() {
            let stored: Vec<u64> = per_batch
                .keys()
                .filter(|(bt, _)| *bt == t)
                .map(|(_, b)| *b)
                .collect();
            let expected: Vec<u64> = match checkpoint {
                Some(c) => (0..=*c).collect(),
                None => Vec::new(),
            };
            assert_eq!(
                stored, expected,
                "round {round}, thread {t}: batches vs checkpoint"
            );
        }
        drop(store);
    }
    assert!(all_acked.len() >= 40 + 65);
    let _ = std::fs::remove_dir_all(&dir);
}
