//! JSON lines on stdout or appended to a file: one finding (or EventBridge event) per line.
//!
//! The file is opened with `O_APPEND`, each line is one `write`, and the file is fsynced at the end
//! of every burst (when the output's queue is empty), so a crash loses at most the lines of the
//! burst being written, while a flood of findings does not cost one fsync each. After a burst the
//! path is checked: if it now names another file (logrotate renamed ours) the new path is opened
//! for the next line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::{BodyFormat, Output, SendError};
use crate::findings::Finding;

pub struct StdoutOutput {
    format: BodyFormat,
}

impl StdoutOutput {
    pub fn new(format: BodyFormat) -> Self {
        Self { format }
    }
}

impl Output for StdoutOutput {
    fn send(&mut self, finding: &Finding) -> Result<(), SendError> {
        let mut line = self.format.render(finding);
        line.push(b'\n');
        let mut out = std::io::stdout().lock();
        out.write_all(&line)
            .and_then(|()| out.flush())
            .map_err(|e| SendError::retryable(format!("stdout: {e}")))
    }
}

pub struct FileOutput {
    path: PathBuf,
    format: BodyFormat,
    file: Option<File>,
    unsynced: bool,
}

impl FileOutput {
    /// Opens (creating) the file now, so a wrong path is reported at start-up.
    pub fn open(path: PathBuf, format: BodyFormat) -> std::io::Result<Self> {
        let file = Self::open_append(&path)?;
        Ok(Self {
            path,
            format,
            file: Some(file),
            unsynced: false,
        })
    }

    fn open_append(path: &std::path::Path) -> std::io::Result<File> {
        OpenOptions::new().create(true).append(true).open(path)
    }

    fn error(&self, e: std::io::Error) -> SendError {
        SendError::retryable(format!("{}: {e}", self.path.display()))
    }
}

impl Output for FileOutput {
    fn send(&mut self, finding: &Finding) -> Result<(), SendError> {
        let mut line = self.format.render(finding);
        line.push(b'\n');
        if self.file.is_none() {
            self.file = Some(Self::open_append(&self.path).map_err(|e| self.error(e))?);
        }
        let file = self.file.as_mut().expect("opened above");
        if let Err(e) = file.write_all(&line) {
            self.file = None;
            return Err(self.error(e));
        }
        self.unsynced = true;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SendError> {
        let Some(file) = self.file.as_ref() else {
            return Ok(());
        };
        if self.unsynced {
            if let Err(e) = file.sync_data() {
                self.file = None;
                return Err(self.error(e));
            }
            self.unsynced = false;
        }
        let ours = file.metadata().map(|m| (m.dev(), m.ino())).ok();
        let at_path = std::fs::metadata(&self.path)
            .map(|m| (m.dev(), m.ino()))
            .ok();
        if ours != at_path {
            self.file = None;
        }
        Ok(())
    }
}
