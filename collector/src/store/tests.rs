use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::findings::Finding;
use crate::suppression::FindingCriteria;

pub(crate) fn finding(
    id: &str,
    kind: &str,
    severity: f64,
    updated_ms: i64,
    instance: &str,
) -> Finding {
    Finding::from_json_str(
        &json!({
            "schemaVersion": "2.0",
            "accountId": "123456789012",
            "region": "eu-west-1",
            "id": id,
            "type": kind,
            "severity": severity,
            "createdAt": crate::findings::time::format_millis(updated_ms - 1000),
            "updatedAt": crate::findings::time::format_millis(updated_ms),
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": instance}},
            "service": {"archived": false, "count": 1, "additionalInfo": {"ward": {"eventIds": [format!("ev-{id}")]}}}
        })
        .to_string(),
    )
    .unwrap()
}

fn open(dir: &tempdir::Dir) -> Store {
    Store::open(&dir.path().join("ward.db"), StoreConfig::default()).unwrap()
}

/// A throwaway directory under the target dir's tmp (no extra crate).
pub(crate) mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "ward-store-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn event(id: &str, pid: i64) -> StoredEvent {
    StoredEvent {
        id: id.into(),
        time_ms: 1_700_000_000_000,
        source: "agent".into(),
        host: Some("i-1".into()),
        pid: Some(pid),
        process_start_time: None,
        event: json!({"syscall": "connect", "id": id}),
    }
}

#[test]
fn batch_commits_findings_events_and_checkpoint_together_and_updates_add_history() {
    let dir = tempdir::Dir::new("roundtrip");
    let store = open(&dir);
    let mut changes = store.subscribe();
    let f = finding(
        "a1",
        "Backdoor:Runtime/C&CActivity.B",
        8.0,
        1_700_000_000_000,
        "i-1",
    );
    let receipt = store
        .commit(WriteBatch {
            findings: vec![f.clone()],
            events: vec![event("ev-a1", 42), event("ev-other", 43)],
            checkpoints: vec![("agent:i-1".into(), json!({"sequence": 7}))],
            detector_state: vec![("baseline".into(), json!({"seen": ["sshd"]}))],
            ..WriteBatch::default()
        })
        .unwrap();
    assert_eq!(receipt.findings_created, 1);
    assert_eq!(receipt.events_stored, 2);
    let mut again = f.clone();
    again.service.count = 2;
    again.updated_at = crate::findings::time::format_millis(1_700_000_060_000);
    // The same event id again is ignored, not duplicated.
    let receipt = store
        .commit(WriteBatch {
            findings: vec![again],
            events: vec![event("ev-a1", 42)],
            ..WriteBatch::default()
        })
        .unwrap();
    assert_eq!((receipt.findings_updated, receipt.events_stored), (1, 0));
    let change = changes.try_recv().unwrap();
    assert_eq!(change.kind, ChangeKind::Created);
    assert_eq!(changes.try_recv().unwrap().kind, ChangeKind::Updated);

    store
        .read(|r| {
            assert_eq!(r.checkpoint("agent:i-1")?, Some(json!({"sequence": 7})));
            assert_eq!(
                r.detector_state("baseline")?,
                Some(json!({"seen": ["sshd"]}))
            );
            assert_eq!(r.checkpoint("nope")?, None);
            let detail = r.detail("a1")?.unwrap();
            assert_eq!(detail.history.len(), 2);
            assert_eq!(detail.history[1].count, 2);
            assert_eq!(detail.events.len(), 1, "only the referenced event");
            assert_eq!(detail.events[0].id, "ev-a1");
            let stored: Value = serde_json::from_str(detail.finding.get()).unwrap();
            assert_eq!(stored["service"]["count"], 2);
            // createdAt kept from the first occurrence.
            assert_eq!(stored["createdAt"], json!(f.created_at));
            assert_eq!(r.event_count()?, 2);
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_bad_batch_fails_alone_and_leaves_nothing_behind() {
    let dir = tempdir::Dir::new("bad");
    let store = open(&dir);
    let mut nameless = finding("x", "Recon:EC2/Portscan", 5.0, 1_700_000_000_000, "i-2");
    nameless.id.clear();
    let bad = WriteBatch {
        findings: vec![
            finding("ok-1", "Recon:EC2/Portscan", 5.0, 1, "i-2"),
            nameless,
        ],
        events: vec![event("ev-bad", 1)],
        checkpoints: vec![("src".into(), json!(99))],
        ..WriteBatch::default()
    };
    let good = WriteBatch {
        findings: vec![finding("ok-2", "Recon:EC2/Portscan", 5.0, 2, "i-2")],
        checkpoints: vec![("src".into(), json!(1))],
        ..WriteBatch::default()
    };
    let s2 = store.clone();
    let t = std::thread::spawn(move || s2.commit(bad));
    let good_result = store.commit(good);
    let err = t.join().unwrap().unwrap_err();
    assert!(
        matches!(&err, StoreError::BadInput(m) if m.contains("finding #1")),
        "{err}"
    );
    good_result.unwrap();
    store
        .read(|r| {
            assert!(r.finding("ok-1")?.is_none(), "no partial batch");
            assert!(r.finding("ok-2")?.is_some());
            assert_eq!(r.event_count()?, 0);
            assert_eq!(r.checkpoint("src")?, Some(json!(1)));
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn suppression_archives_as_stored_and_user_archive_is_lifted_by_a_new_occurrence() {
    let dir = tempdir::Dir::new("suppress");
    let store = open(&dir);
    store
        .put_rule(json!({"name": "scanners", "action": "ARCHIVE", "rank": 1,
            "findingCriteria": {"criterion": {"type": {"eq": ["Recon:EC2/Portscan"]}}}}))
        .await
        .unwrap();
    let mut changes = store.subscribe();
    let receipt = store
        .commit_async(WriteBatch {
            findings: vec![
                finding("s1", "Recon:EC2/Portscan", 5.0, 10_000, "i-1"),
                finding("u1", "Backdoor:Runtime/C&CActivity.B", 8.0, 10_000, "i-1"),
            ],
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(receipt.findings_suppressed, 1);
    let first = changes.recv().await.unwrap();
    assert_eq!(first.suppressed_by.as_deref(), Some("scanners"));
    assert!(first.finding.service.archived);
    assert!(changes.recv().await.unwrap().suppressed_by.is_none());

    let outcome = store
        .archive(vec!["u1".into(), "s1".into(), "zz".into()], true)
        .await
        .unwrap();
    assert_eq!(outcome.changed, vec!["u1"]);
    assert_eq!(outcome.unchanged, vec!["s1"]);
    assert_eq!(outcome.unknown, vec!["zz"]);
    // Rule deleted: the rule-archived finding stays archived on its next occurrence; the
    // user-archived one comes back.
    assert!(store.delete_rule("scanners".into()).await.unwrap());
    assert!(!store.delete_rule("scanners".into()).await.unwrap());
    let mut s1 = finding("s1", "Recon:EC2/Portscan", 5.0, 20_000, "i-1");
    s1.service.count = 2;
    let mut u1 = finding("u1", "Backdoor:Runtime/C&CActivity.B", 8.0, 20_000, "i-1");
    u1.service.count = 2;
    store
        .commit_async(WriteBatch {
            findings: vec![s1, u1],
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    let (s1, u1) = store
        .read_async(|r| Ok((r.finding("s1")?.unwrap(), r.finding("u1")?.unwrap())))
        .await
        .unwrap();
    assert!(s1.service.archived);
    assert!(!u1.service.archived);
    // History: created, archived, re-surfaced.
    let history = store.read_async(|r| r.history("u1")).await.unwrap();
    let archived: Vec<bool> = history.iter().map(|h| h.archived).collect();
    assert_eq!(archived, vec![false, true, false]);
}

#[test]
fn a_v1_file_is_migrated_with_its_findings() {
    let dir = tempdir::Dir::new("migrate");
    let path = dir.path().join("ward.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        assert_eq!(schema::migrate(&mut conn, 1).unwrap(), 1);
        let f = finding("old", "Recon:EC2/Portscan", 5.0, 5_000, "i-9");
        conn.execute(
            "INSERT INTO findings (id, type, severity, archived, created_at_ms, updated_at_ms, count, version, json)
             VALUES ('old', 'Recon:EC2/Portscan', 5.0, 1, 4000, 5000, 1, 1, ?1)",
            [serde_json::to_string(&f).unwrap()],
        )
        .unwrap();
        // The events table does not exist at v1.
        assert!(conn.prepare("SELECT * FROM events").is_err());
    }
    let store = open_at(&path);
    store
        .read(|r| {
            assert_eq!(schema::version(&r.conn)?, schema::CURRENT_VERSION);
            let archived_by: Option<String> = r.conn.query_row(
                "SELECT archived_by FROM findings WHERE id = 'old'",
                [],
                |row| row.get(0),
            )?;
            assert_eq!(archived_by.as_deref(), Some("user"));
            assert!(r.finding("old")?.is_some());
            assert_eq!(r.event_count()?, 0);
            Ok(())
        })
        .unwrap();
    drop(store);
    // A file from a newer build is refused, not guessed at.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", schema::CURRENT_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = Store::open(&path, StoreConfig::default()).err().unwrap();
    assert!(err.to_string().contains("newer than this build"), "{err}");
}

fn open_at(path: &std::path::Path) -> Store {
    Store::open(path, StoreConfig::default()).unwrap()
}

#[test]
fn event_window_keeps_the_newest_by_count() {
    let dir = tempdir::Dir::new("retention");
    let store = Store::open(
        &dir.path().join("ward.db"),
        StoreConfig {
            event_max_count: 10,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    for round in 0..5 {
        store
            .commit(WriteBatch {
                events: (0..4).map(|i| event(&format!("e{round}-{i}"), i)).collect(),
                ..WriteBatch::default()
            })
            .unwrap();
    }
    let ids: Vec<String> = store
        .read(|r| {
            let mut stmt = r.conn.prepare("SELECT event_id FROM events ORDER BY seq")?;
            let ids = stmt
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(ids)
        })
        .unwrap();
    assert_eq!(ids.len(), 10);
    assert_eq!(ids.first().unwrap(), "e2-2");
    assert_eq!(ids.last().unwrap(), "e4-3");
    assert_eq!(store.metrics().events_expired.get(), 10);
}

/// Many findings with varied fields, then for each criteria the store's answer (indexes + JSON)
/// must equal the reference semantics applied to every finding.
#[test]
fn list_answers_exactly_what_the_criteria_semantics_select() {
    let dir = tempdir::Dir::new("criteria");
    let store = open(&dir);
    let types = [
        "Recon:EC2/Portscan",
        "Backdoor:Runtime/C&CActivity.B",
        "CryptoCurrency:Runtime/BitcoinTool.B!DNS",
    ];
    let mut all = Vec::new();
    for i in 0..300i64 {
        let mut f = finding(
            &format!("f{i:04}"),
            types[(i % 3) as usize],
            [2.0, 5.0, 5.5, 7.0, 8.9][(i % 5) as usize],
            1_700_000_000_000 + i * 1000,
            &format!("i-{}", i % 7),
        );
        f.service.count = (i % 4) as u64;
        f.service.archived = i % 11 == 0;
        if i % 13 == 0 {
            f.resource.instance_details = None;
        }
        all.push(f);
    }
    store
        .commit(WriteBatch {
            findings: all.clone(),
            ..WriteBatch::default()
        })
        .unwrap();
    let stored: Vec<Finding> = store
        .read(|r| all.iter().map(|f| Ok(r.finding(&f.id)?.unwrap())).collect())
        .unwrap();
    let t = |i: i64| 1_700_000_000_000 + i * 1000;
    let cases = [
        json!({"severity": {"eq": ["5"]}}),
        json!({"severity": {"gte": 7}}),
        json!({"severity": {"neq": ["7", "8"]}, "service.archived": {"eq": ["false"]}}),
        json!({"updatedAt": {"gt": t(100), "lte": t(200)}}),
        json!({"createdAt": {"lessThan": t(50)}}),
        json!({"type": {"matches": ["Backdoor*"]}}),
        json!({"type": {"notMatches": ["*DNS"]}, "severity": {"lt": 6}}),
        json!({"type": {"notEquals": ["Recon:EC2/Portscan"]}}),
        json!({"resource.instanceDetails.instanceId": {"eq": ["i-3", "i-4"]}}),
        json!({"resource.instanceDetails.instanceId": {"neq": ["i-3"]}}),
        json!({"service.count": {"gt": 1}}),
        json!({"service.count": {"eq": ["0", "2"]}}),
        json!({"service.count": {"neq": ["2"]}}),
        json!({"service.archived": {"eq": ["true"]}}),
        json!({"accountId": {"eq": ["123456789012"]}, "region": {"eq": ["eu-west-1"]}}),
        // Not indexed: evaluated on the JSON.
        json!({"service.additionalInfo.ward.eventIds": {"eq": ["ev-f0042"]}}),
        json!({"resource.instanceDetails.instanceId": {"matches": ["i-[1]"]}}),
    ];
    for (n, criterion) in cases.iter().enumerate() {
        let criteria = FindingCriteria::from_json(&json!({ "criterion": criterion })).unwrap();
        let mut expected: Vec<&str> = stored
            .iter()
            .filter(|f| criteria.matches(f))
            .map(|f| f.id.as_str())
            .collect();
        expected.sort_unstable();
        expected.reverse();
        let query = ListQuery {
            criteria: Some(criteria.clone()),
            criteria_text: criterion.to_string(),
            sort: SortAttribute::Id,
            max_results: 1000,
            ..ListQuery::default()
        };
        let page = store.read(|r| r.list_findings(&query)).unwrap();
        let got: Vec<String> = page
            .findings
            .iter()
            .map(|raw| {
                serde_json::from_str::<Value>(raw.get()).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(got, expected, "case {n}: {criterion}");
        assert!(page.next_token.is_none());
    }
}

#[test]
fn keyset_paging_sees_every_finding_once_while_new_ones_arrive() {
    let dir = tempdir::Dir::new("paging");
    let store = open(&dir);
    let batch = |from: i64, to: i64| WriteBatch {
        findings: (from..to)
            .map(|i| {
                finding(
                    &format!("p{i:05}"),
                    "Recon:EC2/Portscan",
                    5.0,
                    1_000_000 + (i % 50) * 10,
                    "i-1",
                )
            })
            .collect(),
        ..WriteBatch::default()
    };
    store.commit(batch(0, 230)).unwrap();
    for (sort, descending) in [
        (SortAttribute::UpdatedAt, true),
        (SortAttribute::UpdatedAt, false),
        (SortAttribute::Severity, true),
        (SortAttribute::Id, false),
    ] {
        let mut token = None;
        let mut seen = std::collections::BTreeSet::new();
        let mut pages = 0;
        loop {
            let query = ListQuery {
                sort,
                descending,
                max_results: 40,
                next_token: token.take(),
                ..ListQuery::default()
            };
            let page = store.read(|r| r.list_findings(&query)).unwrap();
            pages += 1;
            for raw in &page.findings {
                let id = serde_json::from_str::<Value>(raw.get()).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                assert!(seen.insert(id.clone()), "{id} twice ({sort:?})");
            }
            // Newer findings (later updatedAt) arriving mid-way sort before the cursor in DESC.
            if pages == 2 && sort == SortAttribute::UpdatedAt && descending {
                store
                    .commit(WriteBatch {
                        findings: (0..20)
                            .map(|i| {
                                finding(
                                    &format!("new{i}"),
                                    "Recon:EC2/Portscan",
                                    5.0,
                                    9_000_000,
                                    "i-1",
                                )
                            })
                            .collect(),
                        ..WriteBatch::default()
                    })
                    .unwrap();
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let originals = seen.iter().filter(|id| id.starts_with('p')).count();
        assert_eq!(originals, 230, "{sort:?} {descending}");
    }
    // A token replayed with other criteria is refused.
    let first = store
        .read(|r| {
            r.list_findings(&ListQuery {
                max_results: 5,
                ..ListQuery::default()
            })
        })
        .unwrap();
    let err = store
        .read(|r| {
            r.list_findings(&ListQuery {
                max_results: 5,
                sort: SortAttribute::Severity,
                next_token: first.next_token.clone(),
                ..ListQuery::default()
            })
        })
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::BadInput(_)), "{err}");
    let _ = Duration::ZERO;
}

/// Every way `query::choose_index` can go (composite index, a probed filter index, the sort
/// index; exact and JSON-evaluated criteria), paged in 37s: the concatenated pages must be the
/// reference semantics' matches sorted by (sort value, storage order).
#[test]
fn every_access_path_pages_in_sort_then_storage_order() {
    use super::columns::filter_millis;
    let dir = tempdir::Dir::new("paths");
    let store = open(&dir);
    let types = [
        "Recon:EC2/Portscan",
        "Backdoor:Runtime/C&CActivity.B",
        "CryptoCurrency:Runtime/BitcoinTool.B!DNS",
    ];
    // More rows than query::PROBE_LIMIT, so a low-selectivity filter walks the sort index.
    let n = 5000i64;
    let all: Vec<Finding> = (0..n)
        .map(|i| {
            let mut f = finding(
                &format!("{:032x}", (i as u128) * 0x9E37_79B9_7F4A_7C15),
                types[(i % 3) as usize],
                [2.0, 5.0, 5.5, 7.0, 8.9][(i % 5) as usize],
                1_700_000_000_000 + ((i * 7919) % n) * 1000,
                &format!("i-{}", i % 50),
            );
            f.service.count = (i % 4) as u64;
            f.service.archived = i % 11 == 0;
            f
        })
        .collect();
    store
        .commit(WriteBatch {
            findings: all.clone(),
            ..WriteBatch::default()
        })
        .unwrap();
    let stored: Vec<Finding> = store
        .read(|r| all.iter().map(|f| Ok(r.finding(&f.id)?.unwrap())).collect())
        .unwrap();
    let cases = [
        // Composite (type, updated_at_ms).
        (
            json!({"type": {"eq": [types[1]]}}),
            SortAttribute::UpdatedAt,
            true,
        ),
        // Composite (instance, updated_at_ms) with a time window.
        (
            json!({"resource.instanceDetails.instanceId": {"eq": ["i-7"]},
                "updatedAt": {"gte": 1_700_000_000_000i64 + 2_000_000}}),
            SortAttribute::UpdatedAt,
            false,
        ),
        // Probed: one instance (100 rows) sorted by severity.
        (
            json!({"resource.instanceDetails.instanceId": {"eq": ["i-3"]}}),
            SortAttribute::Severity,
            true,
        ),
        // Probed: a severity range under the limit, sorted by createdAt.
        (
            json!({"severity": {"eq": ["5"]}, "type": {"neq": [types[0]]}}),
            SortAttribute::CreatedAt,
            false,
        ),
        // Sort index: active (over the limit) by severity, and by count.
        (
            json!({"service.archived": {"eq": ["false"]}}),
            SortAttribute::Severity,
            true,
        ),
        (json!({}), SortAttribute::Count, true),
        (
            json!({"type": {"eq": [types[0], types[2]]}}),
            SortAttribute::Type,
            false,
        ),
        // JSON-evaluated criteria, read in chunks.
        (
            json!({"service.additionalInfo.ward.eventIds": {"neq": ["nothing"]},
                "service.count": {"gt": 1}}),
            SortAttribute::UpdatedAt,
            true,
        ),
        (json!({"severity": {"gte": 7}}), SortAttribute::Id, false),
    ];
    for (n, (criterion, sort, descending)) in cases.iter().enumerate() {
        let criteria = criterion
            .as_object()
            .filter(|o| !o.is_empty())
            .map(|_| FindingCriteria::from_json(&json!({ "criterion": criterion })).unwrap());
        // Reference: filter, then sort by (value, storage order = position in the batch).
        let key = |f: &Finding| -> Value {
            match sort {
                SortAttribute::UpdatedAt => json!(filter_millis(&f.updated_at)),
                SortAttribute::CreatedAt => json!(filter_millis(&f.created_at)),
                SortAttribute::Severity => json!(f.severity.0),
                SortAttribute::Type => json!(f.finding_type_name),
                SortAttribute::Count => json!(f.service.count),
                SortAttribute::Id => json!(f.id),
            }
        };
        let mut expected: Vec<(usize, &Finding)> = stored
            .iter()
            .enumerate()
            .filter(|(_, f)| criteria.as_ref().is_none_or(|c| c.matches(f)))
            .collect();
        expected.sort_by(|(ia, a), (ib, b)| {
            let (va, vb) = (key(a), key(b));
            let by_value = match (&va, &vb) {
                (Value::String(x), Value::String(y)) => x.cmp(y),
                _ => va.as_f64().unwrap().total_cmp(&vb.as_f64().unwrap()),
            };
            let ordered = by_value.then(ia.cmp(ib));
            if *descending {
                ordered.reverse()
            } else {
                ordered
            }
        });
        let expected: Vec<&str> = expected.iter().map(|(_, f)| f.id.as_str()).collect();
        assert!(!expected.is_empty(), "case {n} selects nothing");
        let mut got = Vec::new();
        let mut token = None;
        loop {
            let query = ListQuery {
                criteria: criteria.clone(),
                criteria_text: criterion.to_string(),
                sort: *sort,
                descending: *descending,
                max_results: 37,
                next_token: token.take(),
            };
            let page = store.read(|r| r.list_findings(&query)).unwrap();
            assert!(page.findings.len() <= 37);
            for raw in &page.findings {
                let v: Value = serde_json::from_str(raw.get()).unwrap();
                got.push(v["id"].as_str().unwrap().to_owned());
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(got, expected, "case {n}: {criterion} by {sort:?}");
    }
}
