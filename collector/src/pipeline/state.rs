//! What the pipeline must find again after a crash: how far it has read the batch log, and the
//! findings it has produced (so aggregation goes on from them). Both are committed together, so a
//! restart resumes exactly after the last batch whose findings were kept: an acknowledged event is
//! never skipped and never counted twice.
//!
//! [`StoreState`] keeps both in the findings store: the offset is a store checkpoint written in
//! the same transaction as the findings ([`crate::store::WriteBatch`]).

use std::io;

use crate::findings::Finding;
use crate::store::{ListQuery, Store, StoreError, WriteBatch};

/// What [`PipelineState::load`] finds.
#[derive(Debug, Default)]
pub struct Restored {
    /// Byte offset in the batch log of the first batch not yet processed.
    pub log_offset: u64,
    /// Every finding kept, in its latest state.
    pub findings: Vec<Finding>,
}

pub trait PipelineState: Send {
    fn load(&mut self) -> io::Result<Restored>;
    /// Makes durable, all or nothing: the findings created or updated since the last commit, the
    /// log offset that processing brought the pipeline to, and detector state (the correlator's).
    fn commit(
        &mut self,
        log_offset: u64,
        changed: &[Finding],
        detector_state: Vec<(String, serde_json::Value)>,
    ) -> io::Result<()>;
}

/// The findings store as the pipeline's state: the log offset is a store checkpoint committed in
/// the same transaction as the findings it produced.
pub struct StoreState {
    store: Store,
}

/// Checkpoint name of the agent batch log's read position.
pub const LOG_CHECKPOINT: &str = "pipeline:ingest.log";

impl StoreState {
    pub fn new(store: Store) -> StoreState {
        StoreState { store }
    }
}

fn store_error(e: StoreError) -> io::Error {
    io::Error::other(e.to_string())
}

impl PipelineState for StoreState {
    fn load(&mut self) -> io::Result<Restored> {
        let log_offset = self
            .store
            .read(|r| r.checkpoint(LOG_CHECKPOINT))
            .map_err(store_error)?
            .and_then(|v| v.get("offset").and_then(serde_json::Value::as_u64))
            .unwrap_or(0);
        // Every stored finding, page by page; the pipeline keeps those of runtime agents.
        let mut findings = Vec::new();
        let mut query = ListQuery {
            max_results: 1000,
            ..ListQuery::default()
        };
        loop {
            let page = self
                .store
                .read(|r| r.list_findings(&query))
                .map_err(store_error)?;
            for raw in page.findings {
                let f = Finding::from_json_str(raw.get()).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("stored finding: {e}"))
                })?;
                findings.push(f);
            }
            match page.next_token {
                Some(t) => query.next_token = Some(t),
                None => break,
            }
        }
        Ok(Restored {
            log_offset,
            findings,
        })
    }

    fn commit(
        &mut self,
        log_offset: u64,
        changed: &[Finding],
        detector_state: Vec<(String, serde_json::Value)>,
    ) -> io::Result<()> {
        self.store
            .commit(WriteBatch {
                findings: changed.to_vec(),
                detector_state,
                checkpoints: vec![(
                    LOG_CHECKPOINT.into(),
                    serde_json::json!({ "offset": log_offset }),
                )],
                ..WriteBatch::default()
            })
            .map(|_| ())
            .map_err(store_error)
    }
}
