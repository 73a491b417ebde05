//! Batch reading of local files and directories (`ward-collector scan`).

use super::classify::skip_reason;
use super::{Counts, Problem, ReadOptions, Sink, read_object};
use crate::event::SourceKind;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Reads `path` as `source`. A file named explicitly is always read; files found by walking a
/// directory (recursively, in name order) are first filtered by [`skip_reason`].
pub fn scan_path(
    source: SourceKind,
    path: &Path,
    opts: &ReadOptions,
    sink: &mut dyn Sink,
) -> io::Result<Counts> {
    let meta = fs::metadata(path)?;
    if meta.is_dir() {
        let mut files = Vec::new();
        walk(path, &mut files)?;
        let mut total = Counts::default();
        for f in files {
            let rel = f
                .strip_prefix(path)
                .unwrap_or(&f)
                .to_string_lossy()
                .replace('\\', "/");
            if let Some(reason) = skip_reason(source, &rel) {
                total.skipped += 1;
                let name = f.to_string_lossy();
                sink.skipped(&Problem {
                    source,
                    object: &name,
                    line: None,
                    index: None,
                    message: reason.into(),
                });
                continue;
            }
            total += read_file(source, &f, opts, sink);
        }
        Ok(total)
    } else {
        Ok(read_file(source, path, opts, sink))
    }
}

/// Reads one local file; an unreadable file is reported as a malformed object.
pub fn read_file(
    source: SourceKind,
    path: &Path,
    opts: &ReadOptions,
    sink: &mut dyn Sink,
) -> Counts {
    let name = path.to_string_lossy();
    match fs::File::open(path) {
        Ok(f) => read_object(source, &name, f, opts, sink),
        Err(e) => {
            let p = Problem {
                source,
                object: &name,
                line: None,
                index: None,
                message: format!("cannot open: {e}"),
            };
            sink.malformed(&p);
            Counts {
                malformed: 1,
                ..Counts::default()
            }
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let ft = e.file_type()?;
        if ft.is_dir() {
            walk(&p, out)?;
        } else if ft.is_file() || (ft.is_symlink() && p.is_file()) {
            out.push(p);
        }
    }
    Ok(())
}

/// The end-of-run summary: records read, skipped and malformed per source, on one line.
pub fn summary_line(totals: &[(SourceKind, Counts)]) -> String {
    let parts: Vec<String> = totals
        .iter()
        .map(|(s, c)| {
            format!(
                "{s}: objects={} bytes={} records={} skipped={} malformed={}",
                c.objects, c.bytes, c.records, c.skipped, c.malformed
            )
        })
        .collect();
    format!("scan summary: {}", parts.join("; "))
}
