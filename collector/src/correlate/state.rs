//! The correlator's state as it is persisted (`detector_state` row of the findings store, see
//! `pipeline::correlation`), and how it is rebuilt at start.
//!
//! What is saved: the host map, twin pairs and links, duplicate and sequence membership, the
//! outside calls of credential findings, the attack-sequence groups (episodes and signals), the
//! log findings waiting for their process, and where in the agent batch log the credential
//! fetches still kept are (their events are read back from the log instead of being copied).
//!
//! What is not saved, because the store or the log already holds it:
//! * the latest version of every finding (`known`) and the aggregated correlation findings: read
//!   from the findings store;
//! * the connections and DNS queries of the runtime index: the pipeline replays the batch log
//!   from the first batch still inside the index's retention (30 minutes of event time).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::activity::EventOrigin;
use super::attribution::TwinKey;
use super::hosts::HostMap;
use super::sequences::SequencesState;
use super::{CorrelateConfig, Correlator, TwinState};
use crate::findings::{Finding, WardApiCall};

/// Bumped when the layout changes incompatibly; a state of another version is not restored.
pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CorrelatorState {
    pub version: u32,
    hosts: HostMap,
    twins: Vec<(TwinKey, TwinState)>,
    links: BTreeMap<String, BTreeSet<String>>,
    duplicate_of: BTreeMap<String, String>,
    sequence_of: BTreeMap<String, String>,
    api_calls: BTreeMap<String, Vec<WardApiCall>>,
    sequences: SequencesState,
    pending: BTreeMap<String, Vec<String>>,
    /// `(instance, where the fetch event is in the batch log)`, oldest first per host.
    pub fetches: Vec<(String, EventOrigin)>,
}

impl CorrelatorState {
    /// Log findings waiting for their process.
    pub fn pending_count(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }
}

fn sorted<K: Ord + Clone, V: Clone>(m: &HashMap<K, V>) -> BTreeMap<K, V> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

impl Correlator {
    /// Everything [`Correlator::restore`] needs besides the store's findings and the batch log.
    pub fn state(&self) -> CorrelatorState {
        let mut twins: Vec<(TwinKey, TwinState)> = self
            .twins
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        twins.sort_by(|a, b| {
            (&a.0.instance_id, &a.0.family, &a.0.indicator).cmp(&(
                &b.0.instance_id,
                &b.0.family,
                &b.0.indicator,
            ))
        });
        CorrelatorState {
            version: STATE_VERSION,
            hosts: self.hosts.clone(),
            twins,
            links: sorted(&self.links),
            duplicate_of: sorted(&self.duplicate_of),
            sequence_of: sorted(&self.sequence_of),
            api_calls: sorted(&self.api_calls),
            sequences: self.sequences.state(),
            pending: self.pending.clone(),
            fetches: self.activity.fetch_origins(),
        }
    }

    /// A correlator from a saved state and every stored finding (their latest versions; the
    /// correlation stage's own findings resume aggregating). The credential fetches are not in
    /// `state`: feed them back with [`Correlator::on_agent_event_at`], oldest first, before the
    /// log replay.
    pub fn restore(
        config: CorrelateConfig,
        state: CorrelatorState,
        findings: impl IntoIterator<Item = Finding>,
    ) -> Result<Correlator, String> {
        if state.version != STATE_VERSION {
            return Err(format!(
                "correlator state version {} (this collector reads {STATE_VERSION})",
                state.version
            ));
        }
        let mut c = Correlator::new(config, state.hosts);
        c.twins = state.twins.into_iter().collect();
        c.links = state.links.into_iter().collect();
        c.duplicate_of = state.duplicate_of.into_iter().collect();
        c.sequence_of = state.sequence_of.into_iter().collect();
        c.api_calls = state.api_calls.into_iter().collect();
        c.sequences.restore(state.sequences)?;
        c.pending = state.pending;
        let mut own = Vec::new();
        for f in findings {
            let ours = f
                .service
                .ward_details()
                .and_then(|w| w.rule_id)
                .is_some_and(|r| r.starts_with("correlate."));
            if ours {
                own.push(f.clone());
            }
            c.known.insert(f.id.clone(), f);
        }
        c.aggregator.restore(own);
        Ok(c)
    }
}

/// Serde for the `&'static str` fields of signals (tactics, indicator keys, resource types): a
/// small closed set of names in practice, interned once each when read back.
pub mod interned {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn intern(s: &str) -> &'static str {
        static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
        let mut names = NAMES.lock().expect("interned names lock");
        if let Some(name) = names.get(s) {
            return name;
        }
        let name: &'static str = Box::leak(s.to_owned().into_boxed_str());
        names.insert(name);
        name
    }

    pub mod one {
        use super::*;
        pub fn serialize<S: Serializer>(v: &&'static str, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(v)
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
            Ok(intern(&String::deserialize(d)?))
        }
    }

    pub mod first {
        use super::*;
        type Item = (&'static str, String);
        pub fn serialize<S: Serializer>(v: &[Item], s: S) -> Result<S::Ok, S::Error> {
            v.serialize(s)
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Item>, D::Error> {
            let v: Vec<(String, String)> = Vec::deserialize(d)?;
            Ok(v.into_iter().map(|(a, b)| (intern(&a), b)).collect())
        }
    }

    pub mod middle {
        use super::*;
        type Item = (String, &'static str, String);
        pub fn serialize<S: Serializer>(v: &[Item], s: S) -> Result<S::Ok, S::Error> {
            v.serialize(s)
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Item>, D::Error> {
            let v: Vec<(String, String, String)> = Vec::deserialize(d)?;
            Ok(v.into_iter().map(|(a, b, c)| (a, intern(&b), c)).collect())
        }
    }
}
