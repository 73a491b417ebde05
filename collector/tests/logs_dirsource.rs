//! Directory source with checkpoint: a restart neither re-reads nor skips a file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use ward_collector::event::{Event, SourceKind};
use ward_collector::logs::checkpoint::Checkpoint;
use ward_collector::logs::dirsource::DirSource;
use ward_collector::logs::{Problem, ReadOptions, Sink};

#[derive(Default)]
struct Seen {
    events: Vec<String>,
    skipped: Vec<String>,
}

impl Sink for Seen {
    fn event(&mut self, e: &Event<'_>) {
        let name = Path::new(e.origin.object)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        self.events.push(format!("{name}:{}", e.origin.line));
    }
    fn skipped(&mut self, p: &Problem<'_>) {
        self.skipped.push(p.object.to_owned());
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ward-logs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn flow_file(path: &Path, lines: usize) {
    let mut f = std::fs::File::create(path).unwrap();
    for i in 0..lines {
        writeln!(
            f,
            "2 1 eni-1 10.0.0.{} 10.0.0.2 1 22 6 1 1 1 2 ACCEPT OK",
            i + 1
        )
        .unwrap();
    }
}

fn source(dir: &Path, settle: Duration) -> DirSource {
    DirSource::new(SourceKind::VpcFlow, dir, ReadOptions::default(), settle)
}

#[test]
fn restart_neither_rereads_nor_skips() {
    let root = temp_dir("dirsrc");
    let logs = root.join("logs");
    std::fs::create_dir_all(logs.join("sub")).unwrap();
    let ckpt_path = root.join("state/checkpoint.jsonl");
    flow_file(&logs.join("a.log"), 2);
    flow_file(&logs.join("sub/b.log"), 3);
    std::fs::write(logs.join("notes.md"), "not a log").unwrap();

    // First run: everything present is read once.
    let mut seen = Seen::default();
    {
        let mut ckpt = Checkpoint::open(&ckpt_path).unwrap();
        let mut src = source(&logs, Duration::ZERO);
        let c = src.poll(&mut ckpt, &mut seen).unwrap();
        assert_eq!((c.records, c.skipped), (5, 1));
        // Polling again without changes reads nothing.
        let c = src.poll(&mut ckpt, &mut seen).unwrap();
        assert_eq!((c.objects, c.records, c.skipped), (0, 0, 0));
        assert_eq!(ckpt.len(), 3);
    }

    // "Restart": a new source and checkpoint handle. A file arrives while the collector is down.
    flow_file(&logs.join("c.log"), 1);
    let mut ckpt = Checkpoint::open(&ckpt_path).unwrap();
    let mut src = source(&logs, Duration::ZERO);
    let c = src.poll(&mut ckpt, &mut seen).unwrap();
    assert_eq!((c.objects, c.records, c.skipped), (1, 1, 0));

    // Every line of every file exactly once across both runs.
    let mut events = seen.events.clone();
    events.sort();
    assert_eq!(
        events,
        vec![
            "a.log:1", "a.log:2", "b.log:1", "b.log:2", "b.log:3", "c.log:1"
        ]
    );
    assert_eq!(seen.skipped.len(), 1);

    // A file that is rewritten (new size / mtime) is a new version and is read again.
    std::thread::sleep(Duration::from_millis(20));
    flow_file(&logs.join("a.log"), 4);
    let c = src.poll(&mut ckpt, &mut seen).unwrap();
    assert_eq!(c.records, 4);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn file_still_being_written_waits_for_a_stable_poll() {
    let root = temp_dir("dirsrc-settle");
    let mut ckpt = Checkpoint::open(&root.join("ckpt.jsonl")).unwrap();
    let logs = root.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut src = source(&logs, Duration::from_secs(3600));
    let mut seen = Seen::default();
    flow_file(&logs.join("x.log"), 1);
    assert_eq!(
        src.poll(&mut ckpt, &mut seen).unwrap().records,
        0,
        "new file: wait for it to settle"
    );
    // It grows before the next poll: still not read.
    std::thread::sleep(Duration::from_millis(20));
    flow_file(&logs.join("x.log"), 2);
    assert_eq!(src.poll(&mut ckpt, &mut seen).unwrap().records, 0);
    // Unchanged since the previous poll: read, whole.
    assert_eq!(src.poll(&mut ckpt, &mut seen).unwrap().records, 2);
    assert_eq!(src.poll(&mut ckpt, &mut seen).unwrap().records, 0);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn torn_checkpoint_line_is_dropped_and_that_object_read_again() {
    let root = temp_dir("dirsrc-torn");
    let logs = root.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    flow_file(&logs.join("a.log"), 1);
    flow_file(&logs.join("b.log"), 1);
    let ckpt_path = root.join("ckpt.jsonl");
    let mut seen = Seen::default();
    {
        let mut ckpt = Checkpoint::open(&ckpt_path).unwrap();
        source(&logs, Duration::ZERO)
            .poll(&mut ckpt, &mut seen)
            .unwrap();
    }
    // Simulate a crash in the middle of writing the second completion.
    let text = std::fs::read_to_string(&ckpt_path).unwrap();
    let cut = text.trim_end().rfind('\n').unwrap() + 1 + 10;
    std::fs::write(&ckpt_path, &text[..cut]).unwrap();

    let mut ckpt = Checkpoint::open(&ckpt_path).unwrap();
    assert_eq!(ckpt.len(), 1);
    let mut again = Seen::default();
    let c = source(&logs, Duration::ZERO)
        .poll(&mut ckpt, &mut again)
        .unwrap();
    assert_eq!(c.records, 1);
    assert_eq!(again.events, vec!["b.log:1"]);
    // The journal is well-formed again.
    assert_eq!(Checkpoint::open(&ckpt_path).unwrap().len(), 2);
    std::fs::remove_dir_all(&root).unwrap();
}
