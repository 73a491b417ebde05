//! Continuous source over a local directory (for `serve`): each poll reads the files that are
//! new since the checkpoint, once they have stopped changing, in name order.
//!
//! A file counts as complete when its size and modification time are unchanged since the
//! previous poll, or it is older than `settle`: log shippers write a file, then leave it alone,
//! and reading one still being written would cut its last record.

use super::checkpoint::{Checkpoint, ObjectVersion};
use super::classify::skip_reason;
use super::scan::read_file;
use super::{Counts, Problem, ReadOptions, Sink};
use crate::event::SourceKind;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct DirSource {
    pub source: SourceKind,
    pub root: PathBuf,
    pub opts: ReadOptions,
    /// Files at least this old are read without waiting for a second poll.
    pub settle: Duration,
    /// (size, mtime) seen at the previous poll, for files not yet read.
    seen: HashMap<PathBuf, (u64, SystemTime)>,
}

impl DirSource {
    pub fn new(
        source: SourceKind,
        root: impl Into<PathBuf>,
        opts: ReadOptions,
        settle: Duration,
    ) -> Self {
        DirSource {
            source,
            root: root.into(),
            opts,
            settle,
            seen: HashMap::new(),
        }
    }

    /// One pass: reads every complete, not yet processed file; records each in `checkpoint`
    /// after the sink has received all its events.
    pub fn poll(&mut self, checkpoint: &mut Checkpoint, sink: &mut dyn Sink) -> io::Result<Counts> {
        let mut files = Vec::new();
        walk(&self.root, &mut files)?;
        let now = SystemTime::now();
        let mut total = Counts::default();
        let mut still_here = HashMap::new();
        for path in files {
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            }; // vanished meanwhile
            let mtime = meta.modified()?;
            let name = path.to_string_lossy().into_owned();
            let version = ObjectVersion {
                size: meta.len(),
                tag: Some(mtime_tag(mtime)),
            };
            if checkpoint.is_done(self.source, &name, &version) {
                continue;
            }
            let stable = self.seen.get(&path) == Some(&(meta.len(), mtime));
            let old = now
                .duration_since(mtime)
                .is_ok_and(|age| age >= self.settle);
            if !stable && !old {
                still_here.insert(path, (meta.len(), mtime));
                continue;
            }
            let rel = path
                .strip_prefix(&self.root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if let Some(reason) = skip_reason(self.source, &rel) {
                total.skipped += 1;
                sink.skipped(&Problem {
                    source: self.source,
                    object: &name,
                    line: None,
                    index: None,
                    message: reason.into(),
                });
            } else {
                total += read_file(self.source, &path, &self.opts, sink);
            }
            checkpoint.mark_done(self.source, &name, version)?;
        }
        self.seen = still_here;
        Ok(total)
    }
}

fn mtime_tag(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("mtime:{}.{:09}", d.as_secs(), d.subsec_nanos())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let ft = e.file_type()?;
        if ft.is_dir() {
            walk(&e.path(), out)?;
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}
