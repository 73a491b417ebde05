//! Lists loaded from local files, reloaded when the file changes. (S3 locations come later and
//! will feed the same [`IntelList`] parser.)

use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use super::formats::ListFormat;
use super::list::{IntelList, ListKind, ListRole};

/// GuardDuty refuses list files over 35 MB; so does Ward, before reading them.
pub const MAX_LIST_FILE_BYTES: u64 = 35 * 1024 * 1024;

/// Where a list comes from and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSource {
    pub name: String,
    pub path: PathBuf,
    pub format: ListFormat,
    pub kind: ListKind,
    pub role: ListRole,
}

#[derive(Debug)]
pub enum LoadError {
    Io { path: PathBuf, error: io::Error },
    TooLarge { path: PathBuf, bytes: u64 },
    NotUtf8 { path: PathBuf },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, error } => write!(f, "{}: {error}", path.display()),
            Self::TooLarge { path, bytes } => {
                write!(
                    f,
                    "{}: {bytes} bytes is over the {MAX_LIST_FILE_BYTES}-byte list size limit",
                    path.display()
                )
            }
            Self::NotUtf8 { path } => write!(f, "{}: not UTF-8 text", path.display()),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Modification time and size: what tells us the file changed without re-reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// A list file and its last loaded contents.
#[derive(Debug)]
pub struct WatchedList {
    source: ListSource,
    stamp: Stamp,
    list: Arc<IntelList>,
}

impl ListSource {
    /// Reads and parses the file now.
    pub fn load(&self) -> Result<IntelList, LoadError> {
        self.read().map(|(_, list)| list)
    }

    fn stamp(&self) -> Result<Stamp, LoadError> {
        let meta = fs::metadata(&self.path).map_err(|error| LoadError::Io {
            path: self.path.clone(),
            error,
        })?;
        Ok(Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        })
    }

    fn read(&self) -> Result<(Stamp, IntelList), LoadError> {
        let stamp = self.stamp()?;
        if stamp.len > MAX_LIST_FILE_BYTES {
            return Err(LoadError::TooLarge {
                path: self.path.clone(),
                bytes: stamp.len,
            });
        }
        let bytes = fs::read(&self.path).map_err(|error| LoadError::Io {
            path: self.path.clone(),
            error,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8 {
            path: self.path.clone(),
        })?;
        let list = IntelList::parse(self.name.clone(), self.role, self.kind, self.format, &text);
        Ok((stamp, list))
    }
}

impl WatchedList {
    pub fn load(source: ListSource) -> Result<Self, LoadError> {
        let (stamp, list) = source.read()?;
        Ok(Self {
            source,
            stamp,
            list: Arc::new(list),
        })
    }

    pub fn list(&self) -> &Arc<IntelList> {
        &self.list
    }

    pub fn source(&self) -> &ListSource {
        &self.source
    }

    /// Re-reads the file if its modification time or size changed since the last load. Returns
    /// the new list when it reloaded, `None` when nothing changed. On error the previous contents
    /// stay in force (a list being rewritten must not vanish).
    pub fn reload_if_changed(&mut self) -> Result<Option<Arc<IntelList>>, LoadError> {
        if self.source.stamp()? == self.stamp {
            return Ok(None);
        }
        let (stamp, list) = self.source.read()?;
        self.stamp = stamp;
        self.list = Arc::new(list);
        Ok(Some(Arc::clone(&self.list)))
    }
}
