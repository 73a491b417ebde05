//! `ward-collector serve --cloudtrail DIR`: a watched directory is read continuously with the same
//! readers as `scan`, and its checkpoint makes a restart read only what is new: the file read
//! before the restart is not read again, the file added while the collector was down is read.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// A CloudTrail log file as delivered to S3 with `n` API calls (the last one `last_call`), and one
/// record that is not a CloudTrail record (counted as malformed, the rest still read).
fn cloudtrail_file(path: &Path, n: u64, last_call: &str) {
    let mut records: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "eventVersion": "1.08",
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/dev",
                                 "accountId": "123456789012", "userName": "dev"},
                "eventTime": format!("2026-01-01T00:00:{:02}Z", i % 60),
                "eventSource": if i + 1 == n && last_call == "StopLogging" { "cloudtrail.amazonaws.com" } else { "ec2.amazonaws.com" },
                "eventName": if i + 1 == n { last_call } else { "DescribeInstances" },
                "awsRegion": "us-east-1",
                "sourceIPAddress": "203.0.113.5",
                "userAgent": "aws-cli/2",
                "eventID": format!("00000000-0000-0000-0000-{i:012}"),
                "eventType": "AwsApiCall",
                "recipientAccountId": "123456789012"
            })
        })
        .collect();
    records.push(serde_json::json!(42));
    std::fs::write(path, serde_json::json!({ "Records": records }).to_string()).unwrap();
}

struct Serve {
    child: Child,
    lines: Receiver<String>,
    /// Findings printed on stdout (`--output stdout`).
    findings: Receiver<String>,
}

impl Serve {
    fn start(data: &Path, logs: &Path) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ward-collector"))
            .args(["serve", "--insecure", "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data)
            .arg("--cloudtrail")
            .arg(logs)
            .args(["--cloud-poll-secs", "0.2", "--output", "stdout"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ward-collector serve");
        let (tx, lines) = channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                eprintln!("[collector] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (ftx, findings) = channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = ftx.send(line);
            }
        });
        Serve {
            child,
            lines,
            findings,
        }
    }

    fn wait_line(&self, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line containing {what:?} within {timeout:?}"),
            }
        }
    }

    /// SIGTERM; returns the cloud-log summary line printed on the way out.
    fn stop(mut self) -> String {
        // SAFETY: kill(2) on our own child.
        unsafe { libc_kill(self.child.id() as i32, 15) };
        let line = self.wait_line("ward-collector: cloud logs:", Duration::from_secs(20));
        assert!(self.child.wait().unwrap().success());
        line
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn watched_directory_is_read_once_across_restarts() {
    let dir = std::env::temp_dir().join(format!("ward-serve-cloud-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (data, logs) = (dir.join("data"), dir.join("logs"));
    std::fs::create_dir_all(&logs).unwrap();

    let (n1, n2) = (7, 11);
    cloudtrail_file(&logs.join("first.json"), n1, "DescribeInstances");
    let serve = Serve::start(&data, &logs);
    let read = serve.wait_line(": read ", Duration::from_secs(20));
    assert!(
        read.contains(&format!("read 1 objects, {n1} records (1 malformed")),
        "{read}"
    );
    let summary = serve.stop();
    assert!(
        summary.contains(&format!("1 objects, {n1} records")),
        "{summary}"
    );

    // Added while the collector was down: read after the restart, the first file not again.
    cloudtrail_file(&logs.join("second.json"), n2, "StopLogging");
    let serve = Serve::start(&data, &logs);
    let read = serve.wait_line(": read ", Duration::from_secs(20));
    assert!(
        read.contains(&format!("read 1 objects, {n2} records (1 malformed")),
        "{read}"
    );
    // The foundational detections ran on the records: StopLogging raised its finding.
    let finding = serve
        .findings
        .recv_timeout(Duration::from_secs(10))
        .expect("a finding for StopLogging");
    assert!(
        finding.contains("\"type\":\"Stealth:IAMUser/CloudTrailLoggingDisabled\""),
        "{finding}"
    );
    // A few more passes: nothing else turns up.
    std::thread::sleep(Duration::from_millis(800));
    assert!(serve.findings.try_recv().is_err());
    let summary = serve.stop();
    assert!(
        summary.contains(&format!("1 objects, {n2} records")),
        "{summary}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
