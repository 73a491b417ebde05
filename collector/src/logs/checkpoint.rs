//! Which objects have been fully processed, so that a restarted collector neither re-reads nor
//! skips an object.
//!
//! `serve` keeps completions in its findings store instead ([`Checkpoint::with_log`]), committed
//! with the object's findings. `scan --checkpoint` uses the journal:
//! stored as an append-only journal (one JSON line per completed object, fsynced) rather than a
//! rewritten snapshot: recording a completion is O(1) however many objects a bucket or directory
//! holds. A line cut short by a crash is ignored on load (that object is then read again:
//! delivery is at-least-once for the single object in flight when the process died).

use crate::event::SourceKind;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Identity of a processed object version: its size and, when the store provides one, a version
/// tag (S3 ETag, or local modification time). A changed object is processed again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectVersion {
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    source: String,
    object: String,
    #[serde(flatten)]
    version: ObjectVersion,
}

/// Where completions are made durable other than the journal file: `serve` records them in its
/// findings store, in the same transaction as the findings the object produced
/// (`crate::pipeline::cloud`).
pub trait CompletionLog: Send {
    /// Records that the object has been fully processed; durable when this returns, or by the
    /// time the implementation's next commit returns.
    fn record(
        &mut self,
        source: SourceKind,
        object: &str,
        version: &ObjectVersion,
    ) -> io::Result<()>;
}

enum Backend {
    Journal(File),
    Log(Box<dyn CompletionLog>),
}

pub struct Checkpoint {
    path: PathBuf,
    backend: Backend,
    done: HashMap<(SourceKind, String), ObjectVersion>,
}

impl Checkpoint {
    /// Opens (creating if needed) the journal at `path` and loads what it records.
    pub fn open(path: &Path) -> io::Result<Checkpoint> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut done = HashMap::new();
        let mut valid_len = 0u64;
        if let Ok(f) = File::open(path) {
            let mut r = BufReader::new(f);
            let mut line = String::new();
            loop {
                line.clear();
                let n = r.read_line(&mut line)?;
                if n == 0 || !line.ends_with('\n') {
                    break; // end, or a last line cut short by a crash
                }
                let e: Entry = serde_json::from_str(&line).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: corrupt checkpoint line: {e}", path.display()),
                    )
                })?;
                let source = SourceKind::from_name(&e.source).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: unknown source {:?}", path.display(), e.source),
                    )
                })?;
                done.insert((source, e.object), e.version);
                valid_len += n as u64;
            }
        }
        let journal = OpenOptions::new().create(true).append(true).open(path)?;
        // Drop a torn last line so the next append starts on a fresh line.
        if journal.metadata()?.len() != valid_len {
            journal.set_len(valid_len)?;
        }
        Ok(Checkpoint {
            path: path.to_owned(),
            backend: Backend::Journal(journal),
            done,
        })
    }

    /// A checkpoint that starts from `done` and records completions in `log` (no journal file;
    /// `path` names where it lives, for messages).
    pub fn with_log(
        path: PathBuf,
        done: impl IntoIterator<Item = (SourceKind, String, ObjectVersion)>,
        log: Box<dyn CompletionLog>,
    ) -> Checkpoint {
        Checkpoint {
            path,
            backend: Backend::Log(log),
            done: done.into_iter().map(|(s, o, v)| ((s, o), v)).collect(),
        }
    }

    /// Every completed object with its version (in no particular order).
    pub fn completed(&self) -> impl Iterator<Item = (SourceKind, &str, &ObjectVersion)> {
        self.done.iter().map(|((s, o), v)| (*s, o.as_str(), v))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True if this exact version of the object was completed before.
    pub fn is_done(&self, source: SourceKind, object: &str, version: &ObjectVersion) -> bool {
        self.done.get(&(source, object.to_owned())) == Some(version)
    }

    /// Records that the object has been fully processed (durable when this returns; with a
    /// [`CompletionLog`], as that log says).
    pub fn mark_done(
        &mut self,
        source: SourceKind,
        object: &str,
        version: ObjectVersion,
    ) -> io::Result<()> {
        let journal = match &mut self.backend {
            Backend::Journal(file) => file,
            Backend::Log(log) => {
                log.record(source, object, &version)?;
                self.done.insert((source, object.to_owned()), version);
                return Ok(());
            }
        };
        let e = Entry {
            source: source.name().to_owned(),
            object: object.to_owned(),
            version,
        };
        let mut line = serde_json::to_vec(&e).map_err(io::Error::other)?;
        line.push(b'\n');
        journal.write_all(&line)?;
        journal.sync_data()?;
        self.done.insert((source, e.object), e.version);
        Ok(())
    }

    /// The completed objects of `source` (in no particular order).
    pub fn objects(&self, source: SourceKind) -> impl Iterator<Item = &str> {
        self.done
            .keys()
            .filter(move |(s, _)| *s == source)
            .map(|(_, o)| o.as_str())
    }

    pub fn len(&self) -> usize {
        self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }
}
