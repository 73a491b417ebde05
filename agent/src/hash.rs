//! SHA-256 of executables, off the hot path, cached by file identity.
//!
//! The cache key is (device, inode, mtime, size) as the kernel reports it with the exec, so a cache hit
//! costs no system call and a binary replaced in place is hashed again. On a miss the enrich stage only
//! opens the file (it must, before a short-lived process is gone); reading and hashing run on blocking
//! worker threads.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

pub use ward_agent_ebpf::abi::FileId as FileKey;

/// The key of a file from its metadata, in the kernel's encoding (dev_t major in the top 12 bits).
pub fn file_key(m: &std::fs::Metadata) -> FileKey {
    let dev = m.dev();
    FileKey {
        ino: m.ino(),
        size: m.size(),
        mtime_sec: m.mtime(),
        mtime_nsec: m.mtime_nsec() as u32,
        dev: (libc::major(dev) << 20) | libc::minor(dev),
    }
}

/// An executable opened for hashing, with the key its hash is cached under.
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
        let cache = Mutex::new(HashMap::new());
        ExeHasher {
            cache,
            max_entries,
            max_file_bytes,
            stats: HashStats::default(),
        }
    }

    /// Opens the image a process runs, to be cached under `key`: `/proc/<pid>/exe` works across mount
    /// namespaces and for deleted or memfd files; when the process is already gone, `fallback` (its exec
    /// path) is tried.
    pub fn open(&self, pid: u32, fallback: &str, key: FileKey) -> Option<OpenExe> {
        let file =
            File::open(format!("/proc/{pid}/exe")).or_else(|e| match fallback.starts_with('/') {
                true => File::open(fallback),
                false => Err(e),
            });
        if file.is_err() {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
        }
        Some(OpenExe {
            file: file.ok()?,
            key,
        })
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

    /// Reads and hashes the file (blocking), caching the result. Files over the size limit (as read, not as
    /// announced) are skipped.
    pub fn hash(&self, exe: OpenExe) -> Option<String> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut file = exe.file.take(self.max_file_bytes + 1);
        let mut total = 0u64;
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    total += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => total = u64::MAX,
            }
            if total > self.max_file_bytes {
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        let hex = format!("{:x}", hasher.finalize());
        let mut cache = self.cache.lock().expect("hash cache lock");
        if cache.len() >= self.max_entries {
            cache.clear();
        }
        cache.insert(exe.key, hex.clone());
        self.stats.hashed.fetch_add(1, Ordering::Relaxed);
        Some(hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(path: &std::path::Path) -> FileKey {
        file_key(&std::fs::metadata(path).unwrap())
    }

    #[test]
    fn hashes_a_file_and_caches_by_identity() {
        let dir = std::env::temp_dir().join(format!("ward-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bin");
        std::fs::write(&path, b"abc").unwrap();
        let hasher = ExeHasher::new(16, 1 << 20);
        let key = key_of(&path);
        // pid 0 has no /proc entry: the fallback path is used.
        let exe = hasher.open(0, path.to_str().unwrap(), key).unwrap();
        assert!(hasher.cached(&key).is_none());
        let digest = hasher.hash(exe).unwrap();
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hasher.cached(&key).as_deref(), Some(digest.as_str()));

        // Rewritten in place: new size and mtime, so a new key and a new hash.
        std::fs::write(&path, b"abcd").unwrap();
        let new_key = key_of(&path);
        assert_ne!(new_key, key);
        assert!(hasher.cached(&new_key).is_none());
        let exe = hasher.open(0, path.to_str().unwrap(), new_key).unwrap();
        assert_ne!(hasher.hash(exe).unwrap(), digest);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_use_the_kernel_dev_encoding() {
        let m = std::fs::metadata("/proc/self/exe").unwrap();
        let key = file_key(&m);
        assert_eq!(key.dev >> 20, libc::major(m.dev()));
        assert_eq!(key.dev & 0xf_ffff, libc::minor(m.dev()));
    }

    #[test]
    fn oversized_and_missing_files_are_skipped() {
        let hasher = ExeHasher::new(16, 2);
        let key = FileKey::default();
        assert!(hasher.open(0, "/nonexistent/ward", key).is_none());
        assert!(hasher.open(0, "relative/path", key).is_none());
        let exe = hasher
            .open(std::process::id(), "", key)
            .expect("our own exe");
        assert!(hasher.hash(exe).is_none(), "larger than 2 bytes");
        assert_eq!(hasher.stats.skipped.load(Ordering::Relaxed), 3);
    }
}
