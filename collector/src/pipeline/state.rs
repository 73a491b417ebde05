//! What the pipeline must find again after a crash: how far it has read the batch log, and the
//! findings it has produced (so aggregation goes on from them). Both are committed together, so a
//! restart resumes exactly after the last batch whose findings were kept: an acknowledged event is
//! never skipped and never counted twice.
//!
//! [`StateFile`] keeps both in one JSON file replaced atomically at each commit. It is the stand-in
//! until the findings store commits findings and the checkpoint in one transaction; the store then
//! implements [`PipelineState`] too.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::hosts::write_atomically;
use crate::findings::Finding;

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
    /// Makes durable, all or nothing: the findings created or updated since the last commit, and
    /// the log offset that processing brought the pipeline to.
    fn commit(&mut self, log_offset: u64, changed: &[Finding]) -> io::Result<()>;
}

#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Contents {
    log_offset: u64,
    findings: BTreeMap<String, Finding>,
}

/// `pipeline-state.json`: the log offset and every finding, rewritten whole at each commit.
pub struct StateFile {
    path: PathBuf,
    contents: Contents,
}

impl StateFile {
    pub fn new(path: &Path) -> StateFile {
        StateFile {
            path: path.to_path_buf(),
            contents: Contents::default(),
        }
    }
}

impl PipelineState for StateFile {
    fn load(&mut self) -> io::Result<Restored> {
        self.contents = match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", self.path.display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Contents::default(),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("{}: {e}", self.path.display()),
                ));
            }
        };
        Ok(Restored {
            log_offset: self.contents.log_offset,
            findings: self.contents.findings.values().cloned().collect(),
        })
    }

    fn commit(&mut self, log_offset: u64, changed: &[Finding]) -> io::Result<()> {
        self.contents.log_offset = log_offset;
        for f in changed {
            self.contents.findings.insert(f.id.clone(), f.clone());
        }
        let json = serde_json::to_vec(&self.contents).map_err(io::Error::other)?;
        write_atomically(&self.path, &json)
    }
}
