//! Ward collector library: cloud-log readers, the normalised event model, findings, lists and suppression.
//!
//! Data flows one way: sources (agent streams, cloud logs) → normalise → detect → findings → store/outputs.

pub mod api;
pub mod correlate;
pub mod detect;
pub mod event;
pub mod findings;
pub mod flat_set;
pub mod foundational;
pub mod ingest;
pub mod intel;
pub mod logs;
pub mod outputs;
pub mod pipeline;
pub mod store;
pub mod suppression;
#[cfg(test)]
mod test_rng;
