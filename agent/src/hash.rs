//! SHA-256 of executables, off the hot path, cached by file identity.
//!
//! The enrich stage only opens the file (cheap, and it must happen before a short-lived process is gone);
//! reading and hashing run on blocking worker threads. The cache key is (device, inode, mtime, size), so a
//! binary replaced in place is hashed again while a thousand execs of `/bin/sh` are hashed once.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
    pub size: u64,
}

/// An executable opened for hashing.
pub struct OpenExe {
    file: File,
    pub key: FileKey,
}

#[derive(Debug, Default)]
pub struct HashStats {
    pub hashed: AtomicU64,
    pub cache_hits: AtomicU64,
    /// Files that could not be opened or read, or were larger than the size limit.
    pub skipped: AtomicU64,
}

pub struct ExeHasher {
    cache: Mutex<HashMap<FileKey, String>>,
    max_entries: usize,
    max_file_bytes: u64,
    pub stats: HashStats,
}

impl ExeHasher {
    /// `max_entries` bounds the cache (it is cleared when full: executables are few, so this is rare);
    /// files larger than `max_file_bytes` are not hashed.
    pub fn new(max_entries: usize, max_file_bytes: u64) -> Self {
        ExeHasher {
            cache: Mutex::new(HashMap::new()),
            max_entries,
            max_file_bytes,
            stats: HashStats::default(),
        }
    }

    /// Opens the image a process runs: `/proc/<pid>/exe` works across mount namespaces and for deleted or
    /// memfd files; when the process is already gone, `fallback` (its exec path) is tried.
    pub fn open(&self, pid: u32, fallback: &str) -> Option<OpenExe> {
        let file = File::open(format!("/proc/{pid}/exe")).or_else(|e| {
            if fallback.starts_with('/') {
                File::open(fallback)
            } else {
                Err(e)
            }
        });
        let opened = file.and_then(|file| {
            let m = file.metadata()?;
            let key = FileKey {
                dev: m.dev(),
                ino: m.ino(),
                mtime_sec: m.mtime(),
                mtime_nsec: m.mtime_nsec(),
                size: m.size(),
            };
            Ok(OpenExe { file, key })
        });
        if opened.is_err() {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
        }
        opened.ok()
    }

    pub fn cached(&self, key: &FileKey) -> Option<String> {
        let hit = self
            .cache
            .lock()
            .expect("hash cache lock")
            .get(key)
            .cloned();
        if hit.is_some() {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Reads and hashes the file (blocking), caching the result.
    pub fn hash(&self, mut exe: OpenExe) -> Option<String> {
        if exe.key.size > self.max_file_bytes {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match exe.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        let hex = hex(&hasher.finalize());
        let mut cache = self.cache.lock().expect("hash cache lock");
        if cache.len() >= self.max_entries {
            cache.clear();
        }
        cache.insert(exe.key, hex.clone());
        self.stats.hashed.fetch_add(1, Ordering::Relaxed);
        Some(hex)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_a_file_and_caches_by_identity() {
        let dir = std::env::temp_dir().join(format!("ward-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bin");
        std::fs::write(&path, b"abc").unwrap();
        let hasher = ExeHasher::new(16, 1 << 20);
        // pid 0 has no /proc entry: the fallback path is used.
        let exe = hasher.open(0, path.to_str().unwrap()).unwrap();
        let key = exe.key;
        assert!(hasher.cached(&key).is_none());
        let digest = hasher.hash(exe).unwrap();
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hasher.cached(&key).as_deref(), Some(digest.as_str()));

        // Rewritten in place: new size and mtime, so a new key and a new hash.
        std::fs::write(&path, b"abcd").unwrap();
        let exe = hasher.open(0, path.to_str().unwrap()).unwrap();
        assert_ne!(exe.key, key);
        assert_ne!(hasher.hash(exe).unwrap(), digest);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn oversized_and_missing_files_are_skipped() {
        let hasher = ExeHasher::new(16, 2);
        assert!(hasher.open(0, "/nonexistent/ward").is_none());
        assert!(hasher.open(0, "relative/path").is_none());
        let exe = hasher.open(std::process::id(), "").expect("our own exe");
        assert!(hasher.hash(exe).is_none(), "larger than 2 bytes");
        assert_eq!(hasher.stats.skipped.load(Ordering::Relaxed), 3);
    }
}
