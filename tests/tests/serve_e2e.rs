//! The quick start, end to end with the real binaries: `xtask up` builds nothing here (`--bin-dir`)
//! but starts `ward-collector serve` and `ward-agent run` (eBPF on this kernel) over mTLS on
//! loopback exactly as `cargo xtask up` does. A binary named like a miner is run; its finding must
//! be printed within two seconds and be in the collector's committed findings. SIGINT must then
//! stop everything: `up` exits 0 and neither child is left running.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

const FINDING: &str = "Impact:Runtime/CryptoMinerExecuted";

fn temp_dir(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("ward-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}

fn alive(pid: u32) -> bool {
    // A zombie is gone for our purposes only once reaped; `up` reaps its children.
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn quick_start_raises_a_live_finding_and_stops_cleanly() {
    if !ward_tests::can_load_ebpf("quick_start_raises_a_live_finding_and_stops_cleanly") {
        return;
    }
    let dir = temp_dir("up-e2e");
    let bins = ward_tests::workspace_bin("ward-collector")
        .parent()
        .unwrap()
        .to_path_buf();
    let mut up = Command::new(ward_tests::workspace_bin("xtask"))
        .arg("up")
        .arg("--bin-dir")
        .arg(&bins)
        .arg("--dir")
        .arg(dir.join("up"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn xtask up");
    let (tx, lines) = channel();
    let out = BufReader::new(up.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            println!("[up] {line}");
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let next_line = |timeout: Duration, want: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + timeout;
        while let Ok((at, line)) =
            lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if want(&line) {
                return Some((at, line));
            }
        }
        None
    };
    let Some((_, banner)) = next_line(Duration::from_secs(90), &|l| l.starts_with("Ward is up"))
    else {
        let _ = up.kill();
        panic!(
            "xtask up did not come up; logs in {}",
            dir.join("up").display()
        );
    };
    let pids: Vec<u32> = banner
        .split("(pid ")
        .skip(1)
        .filter_map(|s| s.split(')').next()?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 2, "{banner}");

    let miner = dir.join("xmrig");
    std::fs::copy("/bin/true", &miner).unwrap();
    let miner_path = miner.display().to_string();
    let started = Instant::now();
    assert!(Command::new(&miner).status().unwrap().success());
    let found = next_line(Duration::from_secs(10), &|l| {
        l.contains(FINDING) && l.contains(&miner_path)
    });

    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(up.id() as i32, libc::SIGINT) };
    let status = up.wait().unwrap();
    let (at, line) = found.expect("no finding line for the miner");
    let latency = at - started;
    println!("trigger to finding line: {latency:?}");
    assert!(latency < Duration::from_secs(2), "{latency:?}: {line}");
    assert!(line.contains("HIGH"), "{line}");
    assert!(status.success(), "xtask up exited with {status}");
    for pid in pids {
        assert!(!alive(pid), "child {pid} still running after up exited");
    }
    // The finding was committed to the collector's findings store, not only printed.
    let store = ward_collector::store::Store::open(
        &dir.join("up/data/ward.db"),
        ward_collector::store::StoreConfig::default(),
    )
    .unwrap();
    let page = store
        .read(|r| r.list_findings(&ward_collector::store::ListQuery::default()))
        .unwrap();
    assert!(
        page.findings
            .iter()
            .any(|f| f.get().contains(FINDING) && f.get().contains(&miner_path)),
        "the miner's finding is not in the store"
    );
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}
