//! Runtime detections: agent events in, GuardDuty findings out.
//!
//! * [`event`]: the agent's event JSON read back into typed structs (tolerant of new members).
//! * [`fields`], [`condition`], [`rules`]: single-event rules as data (TOML files, the built-in one
//!   embedded from `collector/rules/runtime.toml`), compiled once and indexed by event type.
//! * [`detectors`]: stateful detections in Rust behind one trait.
//! * [`signal`]: a detection turned into a finding occurrence (resource, process, lineage, key).
//! * [`engine`]: runs both, aggregates, applies suppression rules.
//! * [`offline`]: loading rule/intel/suppression files and streaming JSON lines through an engine
//!   (`ward-collector detect`, tests, benchmarks).

#[cfg(test)]
mod catalogue_tests;
pub mod cli;
pub mod condition;
pub mod config;
pub mod detectors;
pub mod engine;
pub mod event;
pub mod fields;
pub mod offline;
pub mod rules;
pub mod signal;

pub use config::{EngineConfig, ThreatCategory};
pub use engine::{Emitted, Engine, EngineStats};
pub use event::{EventType, RuntimeEvent};
pub use rules::{RuleError, RuleSet};
pub use signal::{HostIdentity, Signal};
