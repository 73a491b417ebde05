//! The dead-letter file: finding states an output could not deliver, one JSON object per line,
//! with the output, the error and the number of attempts, so they can be inspected and replayed.
//!
//! Line shape: `{"time":"<when written>","output":"webhook:https://...","attempts":8,
//! "error":"HTTP 503 ...","finding":{...the finding JSON...}}`. The file is opened for append
//! and every line is fsynced before the write counts as done: dead letters are rare and are the
//! last copy. If even this write fails, the whole line goes to the log at error level.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::json;

use crate::findings::Finding;
use crate::findings::time::format_millis;

pub struct DeadLetter {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl DeadLetter {
    /// The file is created on the first dead letter, not before: a healthy setup leaves no file.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            file: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&self, output: &str, attempts: u32, error: &str, finding: &Finding) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let line = json!({
            "time": format_millis(now_ms),
            "output": output,
            "attempts": attempts,
            "error": error,
            "finding": finding,
        })
        .to_string();
        if let Err(e) = self.append(&line) {
            tracing::error!(
                path = %self.path.display(),
                error = %e,
                dead_letter = %line,
                "cannot write the dead-letter file; the undelivered finding is in this log line"
            );
        }
    }

    fn append(&self, line: &str) -> std::io::Result<()> {
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            *guard = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        let file = guard.as_mut().expect("opened above");
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        let result = file.write_all(&buf).and_then(|()| file.sync_data());
        if result.is_err() {
            // Reopen next time (the file may have been removed or the disk remounted).
            *guard = None;
        }
        result
    }
}
