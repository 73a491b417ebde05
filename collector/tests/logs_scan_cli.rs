//! `ward-collector scan` end to end: directories in the S3 key layout, skipping with counts, the
//! stderr summary, and (until detections exist) no findings on stdout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ward-logs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::File::create(path)
        .unwrap()
        .write_all(data)
        .unwrap();
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn scan_directories_prints_summary() {
    let root = temp_dir("scan");
    let ct = root.join("ct/AWSLogs/123456789012");
    write(
        &ct.join("CloudTrail/us-east-1/2024/01/02/123456789012_CloudTrail_us-east-1_20240102T0000Z_a.json.gz"),
        &gzip(br#"{"Records":[{"eventName":"A","eventVersion":"1.08"},{"eventName":"B","eventVersion":"1.08"}]}"#),
    );
    write(
        &ct.join("CloudTrail-Digest/us-east-1/2024/01/02/d.json.gz"),
        &gzip(b"{}"),
    );
    write(
        &ct.join("vpcflowlogs/us-east-1/2024/01/02/f.log.gz"),
        &gzip(b"version\n"),
    );
    write(&root.join("ct/README.md"), b"# not a log");

    let flow = root.join("flow");
    write(
        &flow.join("a.log"),
        b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
          2 1 eni-1 10.0.0.1 10.0.0.2 1 22 6 1 1 1 2 ACCEPT OK\n\
          2 1 eni-1 10.0.0.1 10.0.0.2 1 22 6 1 1 1 2 ACCEPT\n",
    );
    // Parquet is read for flow logs; this one is only the magic, so it is a malformed object.
    write(&flow.join("b.parquet"), b"PAR1");
    let dns = root.join("q.json");
    write(&dns, b"{\"query_name\":\"a.example.\"}\n{\"query_name\":\"b.example.\"}\n{\"query_name\":\"c.example.\"}\n");

    let out = Command::new(env!("CARGO_BIN_EXE_ward-collector"))
        .arg("scan")
        .arg("--cloudtrail")
        .arg(root.join("ct"))
        .arg("--vpc-flow")
        .arg(&flow)
        .arg("--dns")
        .arg(&dns)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "no detections yet, so no findings");
    // The findings summary follows it since detections run in scan.
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("scan summary: "))
        .unwrap_or_else(|| panic!("no scan summary: {stderr}"));
    assert!(
        summary.contains("cloudtrail: objects=1 bytes=93 records=2 skipped=3 malformed=0"),
        "{summary}"
    );
    assert!(
        summary.contains("vpc-flow: objects=2 bytes=")
            && summary.contains("records=1 skipped=0 malformed=2"),
        "{summary}"
    );
    assert!(
        summary.contains("dns: objects=1 bytes=84 records=3 skipped=0 malformed=0"),
        "{summary}"
    );
    assert!(
        stderr.contains("a.log:3: 13 fields, the format has 14"),
        "{stderr}"
    );
    assert!(stderr.contains("CloudTrail digest file"), "{stderr}");
    assert!(
        stderr.contains("b.parquet: not a readable Parquet file"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn scan_missing_path_fails() {
    let out = Command::new(env!("CARGO_BIN_EXE_ward-collector"))
        .args(["scan", "--dns", "/nonexistent/ward/path"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: dns: /nonexistent/ward/path"),
        "{stderr}"
    );
}
