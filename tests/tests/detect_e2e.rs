//! Runtime detection end to end: the real agent on this kernel records a reverse shell and a lookup of a
//! GuardDuty test C&C domain, and `ward-collector detect` turns the recording into GuardDuty findings
//! that name the process.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use ward_tests::{Agent, can_load_ebpf, marker, workspace_bin};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn reverse_shell_and_cnc_lookup_become_findings_with_the_process() {
    if !can_load_ebpf("reverse_shell_and_cnc_lookup_become_findings_with_the_process") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let agent = Agent::start(&[
        "--types",
        "process_exec,process_fork,process_exit,net_stdio_socket,dns_query",
    ]);
    let mark = marker("detect");

    // A reverse shell to a loopback listener (loopback peers must not be exempt).
    ward_tests::reverse_shell(&listener, &mark);

    // A lookup of one of GuardDuty's test C&C domains.
    let lookup_pid = ward_tests::dns_lookup("guarddutyc2activityb.com");

    let events = agent
        .events_until(WAIT, |e| {
            e["type"] == "dns_query" && e["process"]["pid"] == lookup_pid
        })
        .expect("the agent recorded the lookup");
    agent.stop();
    let shell_exec = events
        .iter()
        .find(|e| {
            e["type"] == "process_exec" && e["exec"]["stdio_socket"]["remote"]["port"] == port
        })
        .expect("the agent recorded the shell's exec")
        .clone();

    let recording = std::env::temp_dir().join(format!("{mark}.jsonl"));
    let mut file = std::fs::File::create(&recording).unwrap();
    for e in &events {
        writeln!(file, "{e}").unwrap();
    }
    drop(file);
    let out = Command::new(workspace_bin("ward-collector"))
        .args([
            "detect",
            "--events",
            recording.to_str().unwrap(),
            "--instance-id",
            "i-0123456789abcdef0",
        ])
        .output()
        .unwrap();
    std::fs::remove_file(&recording).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of_type = |t: &str| findings.iter().find(|f| f["type"] == t).cloned();

    let shell = of_type("Execution:Runtime/ReverseShell")
        .unwrap_or_else(|| panic!("no ReverseShell in {findings:#?}"));
    let process = &shell["service"]["runtimeDetails"]["process"];
    assert_eq!(process["pid"], shell_exec["process"]["pid"]);
    assert_eq!(process["name"], "bash");
    assert!(
        shell["severity"].as_f64().unwrap() >= 7.0,
        "High: {}",
        shell["severity"]
    );
    assert_eq!(
        shell["resource"]["instanceDetails"]["instanceId"],
        "i-0123456789abcdef0"
    );

    let cnc = of_type("Backdoor:Runtime/C&CActivity.B!DNS")
        .unwrap_or_else(|| panic!("no C&C finding in {findings:#?}"));
    assert_eq!(
        cnc["service"]["runtimeDetails"]["process"]["pid"],
        lookup_pid
    );
    assert_eq!(
        cnc["service"]["action"]["dnsRequestAction"]["domain"],
        "guarddutyc2activityb.com"
    );
}

#[test]
fn benign_workload_raises_nothing_of_medium_or_higher() {
    if !can_load_ebpf("benign_workload_raises_nothing_of_medium_or_higher") {
        return;
    }
    let mark = marker("benign");
    let dir = std::env::temp_dir().join(&mark);
    std::fs::create_dir_all(&dir).unwrap();
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = http.local_addr().unwrap().port();
    drop(http);
    let mut server = Command::new("/usr/bin/python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let agent = Agent::start(&[]);

    // What a developer or an image build does all day, under one shell so that its events can be told
    // from those of other tests running at the same time: use git, build and test a crate (in its own
    // target directory, the one of the cargo running this test may be locked), build, install and remove a
    // Debian package, and fetch from a local web server.
    let pkg = format!("ward-benign-{}", std::process::id());
    let script = format!(
        "set -e
git init -q repo && cd repo && echo hi > f && git add f
git -c user.name=w -c user.email=w@example.com commit -qm init && git log --oneline >/dev/null && cd ..
cargo new -q --vcs none hello && cd hello && export CARGO_TARGET_DIR=target
cargo build -q --offline && cargo test -q --offline >/dev/null && cd ..
mkdir -p deb/DEBIAN deb/usr/share/{pkg} && echo data > deb/usr/share/{pkg}/file
printf 'Package: {pkg}\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: w <w@example.com>\\nDescription: test\\n' > deb/DEBIAN/control
dpkg-deb -b deb {pkg}.deb >/dev/null && dpkg -i {pkg}.deb >/dev/null && dpkg -r {pkg} >/dev/null
for i in 1 2 3 4 5 6 7 8 9 10; do curl -sf http://127.0.0.1:{port}/ >/dev/null && break; sleep 0.3; done
/bin/echo {mark}"
    );
    let mut workload = Command::new("sh")
        .args(["-c", &script])
        .current_dir(&dir)
        .spawn()
        .unwrap();
    let workload_pid = workload.id();
    assert!(
        workload.wait().unwrap().success(),
        "the benign workload failed"
    );

    let events = agent
        .events_until(WAIT * 3, |e| {
            e["type"] == "process_exec" && e["process"]["args"][1] == mark.as_str()
        })
        .expect("the agent recorded the workload");
    agent.stop();
    server.kill().unwrap();
    server.wait().unwrap();
    let in_workload = |e: &Value| {
        e["process"]["pid"] == workload_pid
            || e["process"]["ancestors"]
                .as_array()
                .is_some_and(|a| a.iter().any(|p| p["pid"] == workload_pid))
    };
    let events: Vec<Value> = events.into_iter().filter(in_workload).collect();
    assert!(
        events.len() > 100,
        "the workload was recorded ({} events)",
        events.len()
    );

    let recording = dir.join("events.jsonl");
    let mut file = std::fs::File::create(&recording).unwrap();
    for e in &events {
        writeln!(file, "{e}").unwrap();
    }
    drop(file);
    let out = Command::new(workspace_bin("ward-collector"))
        .args(["detect", "--events", recording.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let serious: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|f| f["severity"].as_f64().unwrap() >= 4.0)
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    let summary: Vec<String> = serious
        .iter()
        .map(|f| {
            format!(
                "{} ({}) by {}",
                f["type"],
                f["severity"],
                f["service"]["runtimeDetails"]["process"]["executablePath"]
            )
        })
        .collect();
    assert!(
        serious.is_empty(),
        "benign work raised Medium+ findings: {summary:#?}"
    );
}
