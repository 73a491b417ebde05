//! Threat/trusted lists and suppression rules that change while `serve` runs.
//!
//! The findings store is the truth: the query API writes lists and rules there, then bumps a
//! [`Generation`]. Each detection thread holds a [`Follower`]; between batches (runtime pipeline)
//! or records (cloud logs) it compares the generation with the one it last built from, and only
//! when it moved reads the store and rebuilds the lookup index and the rule set once, for every
//! engine it runs. Checking costs one atomic load; nothing is rebuilt per event.
//!
//! What the detections see after a rebuild ([`Detections`]):
//! * lists: those of the `--threat-list`/`--trusted-list` files (loaded once at start), then every
//!   list stored through the API; a stored list replaces a file list of the same name. Stored lists
//!   with an `s3://` or `https://` location are not fetched by `serve` (a warning says so).
//! * suppression rules: the store's. `serve` installs the rules of its `--suppression` files into
//!   the store at start ([`install_rule_files`]), so the engines and the store's own check (which
//!   archives a finding as it is stored) apply one and the same set.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::Value;

use crate::intel::{IntelIndex, IntelList, ListFormat, ListSource};
use crate::store::lists::{parse_kind, parse_role};
use crate::store::{ListOrigin, ListRecord, Store, StoreError};
use crate::suppression::{RuleSet, SuppressionRule};

/// Bumped after every committed change of lists or rules. Shared by the API and the pipelines.
#[derive(Debug, Default)]
pub struct Generation(AtomicU64);

impl Generation {
    /// Call after the change is committed: a follower that sees the new value reads it.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }

    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// What the engines use from the lists and rules at one generation.
#[derive(Debug, Clone)]
pub struct Detections {
    pub intel: IntelIndex,
    pub suppression: RuleSet,
    /// Lists loaded from the store (the file lists not counted).
    pub stored_lists: usize,
    /// Entries of every list in `intel`.
    pub entries: usize,
}

/// Builds [`Detections`] from the store and the lists of the command line.
pub struct LiveConfig {
    store: Store,
    generation: Arc<Generation>,
    /// The lists of the `--threat-list` / `--trusted-list` files (and the private-address setting
    /// every index gets), loaded once.
    file_intel: IntelIndex,
}

impl LiveConfig {
    pub fn new(store: Store, generation: Arc<Generation>, file_intel: IntelIndex) -> Arc<Self> {
        Arc::new(Self {
            store,
            generation,
            file_intel,
        })
    }

    pub fn generation(&self) -> &Arc<Generation> {
        &self.generation
    }

    /// Reads the stored lists and rules now and builds the index and rule set. A stored list that
    /// cannot be loaded any more (its file was removed) is left out with a warning, the rest still
    /// apply; rules that do not parse are an error (the caller keeps what it had).
    pub fn load(&self) -> Result<Detections, StoreError> {
        let (lists, rules) = self.store.read(|r| {
            let mut lists = Vec::new();
            for record in r.lists()? {
                if let Some(origin) = r.list_origin(&record.name)? {
                    lists.push((record, origin));
                }
            }
            Ok((lists, r.rules()?))
        })?;
        let mut intel = self.file_intel.clone();
        let mut stored_lists = 0;
        for (record, origin) in &lists {
            match load_stored_list(record, origin) {
                Ok(list) => {
                    intel.replace(Arc::new(list));
                    stored_lists += 1;
                }
                Err(why) => tracing::warn!("list {:?} not applied: {why}", record.name),
            }
        }
        let suppression = rule_set(&rules)?;
        let entries = intel.lists().iter().map(|l| l.report.loaded).sum();
        Ok(Detections {
            intel,
            suppression,
            stored_lists,
            entries,
        })
    }

    /// A follower that builds its first [`Detections`] on its first [`Follower::changed`] call.
    pub fn follower(self: &Arc<Self>) -> Follower {
        Follower {
            live: self.clone(),
            seen: None,
        }
    }
}

fn load_stored_list(record: &ListRecord, origin: &ListOrigin) -> Result<IntelList, String> {
    let role = parse_role(record.role).ok_or("bad role")?;
    let kind = parse_kind(record.kind).ok_or("bad kind")?;
    let format: ListFormat = record.format.parse()?;
    match (&origin.content, &origin.location) {
        (Some(text), _) => Ok(IntelList::parse(
            record.name.clone(),
            role,
            kind,
            format,
            text,
        )),
        (None, Some(location))
            if location.starts_with("s3://") || location.starts_with("https://") =>
        {
            Err(format!(
                "{location}: serve does not fetch s3:// or https:// list locations yet (store the content, or a local path)"
            ))
        }
        (None, Some(location)) => ListSource {
            name: record.name.clone(),
            path: location.into(),
            format,
            kind,
            role,
        }
        .load()
        .map_err(|e| e.to_string()),
        (None, None) => Err("neither a location nor content is stored".into()),
    }
}

fn rule_set(rules: &[Value]) -> Result<RuleSet, StoreError> {
    let rules = rules
        .iter()
        .map(|json| {
            SuppressionRule::from_json(json)
                .map_err(|e| StoreError::Corrupt(format!("stored suppression rule: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    RuleSet::new(rules).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// One detection thread's view of the generation.
pub struct Follower {
    live: Arc<LiveConfig>,
    /// The generation the last build was made from (None: nothing built yet).
    seen: Option<u64>,
}

impl Follower {
    /// The detections to switch to when lists or rules changed since the last call (always on the
    /// first call), else None. A failed rebuild is logged and retried at the next change.
    pub fn changed(&mut self) -> Option<Detections> {
        // Read before loading: a change committed during the load bumps it again, so it is
        // picked up on the next call rather than lost.
        let now = self.live.generation.current();
        if self.seen == Some(now) {
            return None;
        }
        self.seen = Some(now);
        let started = Instant::now();
        match self.live.load() {
            Ok(d) => {
                tracing::info!(
                    generation = now,
                    stored_lists = d.stored_lists,
                    entries = d.entries,
                    rules = d.suppression.rules().len(),
                    millis = started.elapsed().as_millis() as u64,
                    "lists and suppression rules loaded from the store"
                );
                Some(d)
            }
            Err(e) => {
                tracing::error!("reloading lists and suppression rules from the store: {e}");
                None
            }
        }
    }
}

// The cloud-log detections switch to changed lists and rules before the next record in
// `super::cloud` (their sink holds a `Follower`).

/// Installs the rules of `--suppression` files into the store (created, or replaced by name), so
/// that the store's check as findings are stored applies them like rules created through the API.
/// Returns how many were installed.
pub async fn install_rule_files(
    store: &Store,
    paths: &[std::path::PathBuf],
) -> anyhow::Result<usize> {
    let mut installed = 0;
    for path in paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("--suppression {}: {e}", path.display()))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("--suppression {}: {e}", path.display()))?;
        let Some(items) = value.as_array() else {
            anyhow::bail!(
                "--suppression {}: expected a JSON array of rules",
                path.display()
            );
        };
        for (i, item) in items.iter().enumerate() {
            let rule = crate::api::ops::camel_case_rule(item.clone());
            store.put_rule(rule).await.map_err(|e| {
                anyhow::anyhow!("--suppression {} rule #{}: {e}", path.display(), i + 1)
            })?;
            installed += 1;
        }
    }
    Ok(installed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::{ListKind, ListRole, Verdict};
    use crate::store::{ListSpec, StoreConfig};

    fn temp_store(name: &str) -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("ward-live-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir.join("ward.db"), StoreConfig::default()).unwrap();
        (store, dir)
    }

    fn spec(name: &str, role: ListRole, content: &str) -> ListSpec {
        ListSpec {
            name: name.into(),
            role,
            kind: ListKind::EntityList,
            format: ListFormat::Txt,
            location: None,
            content: Some(content.into()),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn follower_rebuilds_only_when_the_generation_moves() {
        let (store, dir) = temp_store("follow");
        let generation = Arc::new(Generation::default());
        let file_list = IntelList::parse(
            "from-file",
            ListRole::Threat,
            ListKind::EntityList,
            ListFormat::Txt,
            "198.51.100.9\n",
        );
        let live = LiveConfig::new(
            store.clone(),
            generation.clone(),
            IntelIndex::new([Arc::new(file_list)]),
        );
        let mut follower = live.follower();
        let first = tokio::task::block_in_place(|| follower.changed()).expect("first build");
        assert_eq!(first.stored_lists, 0);
        assert!(matches!(
            first.intel.check_ip("198.51.100.9".parse().unwrap()),
            Verdict::Threat { .. }
        ));
        assert!(tokio::task::block_in_place(|| follower.changed()).is_none());

        store
            .put_list(spec("api", ListRole::Threat, "203.0.113.7\nevil.example\n"))
            .await
            .unwrap();
        store
            .put_rule(
                serde_json::json!({"name": "quiet", "action": "ARCHIVE", "rank": 1,
                "findingCriteria": {"criterion": {"type": {"equals": ["Recon:EC2/Portscan"]}}}}),
            )
            .await
            .unwrap();
        // Committed but not announced: nothing is rebuilt yet.
        assert!(tokio::task::block_in_place(|| follower.changed()).is_none());
        generation.bump();
        let d = tokio::task::block_in_place(|| follower.changed()).expect("rebuilt");
        assert_eq!(d.stored_lists, 1);
        assert_eq!(d.entries, 3);
        assert!(matches!(
            d.intel.check_ip("203.0.113.7".parse().unwrap()),
            Verdict::Threat { .. }
        ));
        assert!(matches!(
            d.intel.check_domain("evil.example"),
            Verdict::Threat { .. }
        ));
        assert_eq!(d.suppression.rules()[0].name, "quiet");

        // A stored trusted list of the file list's name replaces it.
        store
            .put_list(spec("from-file", ListRole::Trusted, "198.51.100.9\n"))
            .await
            .unwrap();
        assert!(store.delete_list("api".into()).await.unwrap());
        generation.bump();
        let d = tokio::task::block_in_place(|| follower.changed()).expect("rebuilt");
        assert!(matches!(
            d.intel.check_ip("198.51.100.9".parse().unwrap()),
            Verdict::Trusted { .. }
        ));
        assert_eq!(
            d.intel.check_ip("203.0.113.7".parse().unwrap()),
            Verdict::Clean
        );
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stored_list_whose_file_is_gone_is_left_out_and_the_rest_apply() {
        let (store, dir) = temp_store("gone");
        let path = dir.join("ips.txt");
        std::fs::write(&path, "203.0.113.8\n").unwrap();
        let mut by_file = spec("by-file", ListRole::Threat, "");
        by_file.content = None;
        by_file.location = Some(path.display().to_string());
        store.put_list(by_file).await.unwrap();
        store
            .put_list(spec("inline", ListRole::Threat, "203.0.113.9\n"))
            .await
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let live = LiveConfig::new(
            store.clone(),
            Arc::new(Generation::default()),
            IntelIndex::default(),
        );
        let d = tokio::task::block_in_place(|| live.load()).unwrap();
        assert_eq!(d.stored_lists, 1);
        assert!(matches!(
            d.intel.check_ip("203.0.113.9".parse().unwrap()),
            Verdict::Threat { .. }
        ));
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rule_files_are_installed_into_the_store_with_file_and_rule_in_errors() {
        let (store, dir) = temp_store("install");
        let good = dir.join("rules.json");
        std::fs::write(
            &good,
            r#"[{"Name": "lab", "Action": "ARCHIVE", "Rank": 2,
                 "FindingCriteria": {"Criterion": {"type": {"Eq": ["Recon:EC2/Portscan"]}}}}]"#,
        )
        .unwrap();
        assert_eq!(
            install_rule_files(&store, std::slice::from_ref(&good))
                .await
                .unwrap(),
            1
        );
        let rules = store.read_async(|r| r.rules()).await.unwrap();
        assert_eq!(rules.len(), 1);
        // Read back in the API's spelling, the criteria as written.
        assert_eq!(rules[0]["name"], "lab");
        assert_eq!(
            rules[0]["findingCriteria"]["Criterion"]["type"]["Eq"][0],
            "Recon:EC2/Portscan"
        );
        let bad = dir.join("bad.json");
        std::fs::write(&bad, r#"[{"Name": "x", "FindingCriteria": 3}]"#).unwrap();
        let err = install_rule_files(&store, std::slice::from_ref(&bad))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&bad.display().to_string()) && err.contains("rule #1"),
            "{err}"
        );
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}
