//! `wardctl` end to end against the real query API of `ward-collector serve` (docs/api.md): findings
//! in the collector's SQLite store are listed, filtered, shown, archived and unarchived; suppression
//! rules and lists are created, listed and deleted; `tail` prints an archive made while it runs;
//! a read token is refused writes with the role named, an unknown token gets a 401. Over mTLS
//! (`serve --api-tls-cert --api-client-ca`), `wardctl --ca --cert --key` calls with the role its
//! certificate names.

#[path = "transport_common.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use ward_collector::findings::{Finding, InstanceDetails, Severity};
use ward_collector::store::{Store, WriteBatch};

const ADMIN: &str = "e2e-admin-token";
const READ: &str = "e2e-read-token";

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(text.as_bytes()))
}

fn finding(
    id: &str,
    kind: &str,
    severity: f64,
    instance: &str,
    count: u64,
    minute: u32,
) -> Finding {
    let mut f = Finding {
        schema_version: "2.0".into(),
        account_id: "111122223333".into(),
        region: "us-east-1".into(),
        partition: "aws".into(),
        id: id.into(),
        finding_type_name: kind.into(),
        severity: Severity(severity),
        title: format!("{kind} on {instance}"),
        created_at: format!("2026-11-29T10:{minute:02}:00.000Z"),
        updated_at: format!("2026-11-29T10:{minute:02}:30.000Z"),
        ..Finding::default()
    };
    f.resource.resource_type = Some("Instance".into());
    f.resource.instance_details = Some(InstanceDetails {
        instance_id: Some(instance.into()),
        ..InstanceDetails::default()
    });
    f.service.count = count;
    f
}

struct Ctl {
    server: String,
}

impl Ctl {
    fn run(&self, token: &str, args: &[&str]) -> Output {
        Command::new(ward_tests::workspace_bin("wardctl"))
            .args(["--server", &self.server, "--token", token])
            .args(args)
            .env_remove("WARD_SERVER")
            .env_remove("WARD_TOKEN")
            .output()
            .unwrap()
    }

    fn ok(&self, token: &str, args: &[&str]) -> String {
        let out = self.run(token, args);
        assert!(
            out.status.success(),
            "wardctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn ids(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.ok(READ, &all)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["id"].as_str().unwrap().to_owned()
            })
            .collect()
    }
}

#[test]
fn wardctl_drives_the_real_query_api() {
    let pki = Pki::generate();
    let dir = TempDir::new("wardctl-e2e");
    pki.write_server_files(dir.path());
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    {
        let store = Store::open(&data.join("ward.db"), Default::default()).unwrap();
        store
            .commit(WriteBatch {
                findings: vec![
                    finding("a1", "Execution:Runtime/ReverseShell", 8.0, "i-0aaa", 3, 1),
                    finding(
                        "b2",
                        "Impact:Runtime/CryptoMinerExecuted",
                        8.0,
                        "i-0bbb",
                        1,
                        2,
                    ),
                    finding("c3", "Recon:EC2/Portscan", 2.0, "i-0aaa", 7, 3),
                ],
                ..WriteBatch::default()
            })
            .unwrap();
    }
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        format!(
            "admin {} ops\nread {} dash\n",
            sha256_hex(ADMIN),
            sha256_hex(READ)
        ),
    )
    .unwrap();
    let api = free_port();
    let collector = CollectorProcess::start_with(
        dir.path(),
        &data,
        free_port(),
        &[
            "--api-listen",
            &api.to_string(),
            "--api-tokens",
            tokens.to_str().unwrap(),
        ],
    );
    let ctl = Ctl {
        server: format!("http://{api}"),
    };
    wait_until("the query API", Duration::from_secs(20), || {
        ctl.run(READ, &["findings", "list"]).status.success()
    });

    // Filters and sorting.
    assert_eq!(
        ctl.ids(&["findings", "list"]),
        ["c3", "b2", "a1"],
        "newest update first"
    );
    assert_eq!(
        ctl.ids(&["findings", "list", "--severity-min", "high"]),
        ["b2", "a1"]
    );
    assert_eq!(
        ctl.ids(&["findings", "list", "--instance", "i-0aaa", "--asc"]),
        ["a1", "c3"]
    );
    assert_eq!(
        ctl.ids(&["findings", "list", "--type", "Recon:EC2/Portscan"]),
        ["c3"]
    );
    assert_eq!(
        ctl.ids(&["findings", "list", "--sort", "count"]),
        ["c3", "a1", "b2"]
    );
    assert_eq!(ctl.ids(&["findings", "list", "--limit", "2"]).len(), 2);

    // The table for people.
    let table = ctl.ok(READ, &["findings", "list", "--severity-min", "7"]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows[0].starts_with("ID") && rows[0].contains("SEVERITY"),
        "{table}"
    );
    let at = rows[0].find("TYPE").unwrap();
    for row in &rows[1..] {
        assert!(row.contains("High 8.0"), "{table}");
        assert_eq!(&row[at - 2..at], "  ", "TYPE column aligned:\n{table}");
    }
    let shown = ctl.ok(READ, &["findings", "get", "a1"]);
    assert!(
        shown.contains("Execution:Runtime/ReverseShell") && shown.contains("i-0aaa"),
        "{shown}"
    );
    let missing = ctl.run(READ, &["findings", "get", "nope"]);
    assert!(!missing.status.success());

    // Roles.
    let refused = ctl.run(READ, &["findings", "archive", "a1"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("403") && err.contains("admin"),
        "{err}"
    );
    let refused = ctl.run("not-a-token", &["findings", "list"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("401") && err.contains("not accepted"), "{err}");

    // tail follows the archive made next.
    let mut tail = Command::new(ward_tests::workspace_bin("wardctl"))
        .args(["--server", &ctl.server, "--token", READ, "tail"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = tail.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    // The stream only carries changes committed after it was opened: give it a moment.
    std::thread::sleep(Duration::from_millis(700));

    assert_eq!(
        ctl.ok(ADMIN, &["findings", "archive", "a1"]).trim(),
        "archived: a1"
    );
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("tail printed the archive");
    let _ = tail.kill();
    let _ = tail.wait();
    assert!(
        line.contains("archived") && line.contains("a1") && line.contains("High 8.0"),
        "{line}"
    );
    assert_eq!(ctl.ids(&["findings", "list"]), ["c3", "b2"]);
    assert_eq!(ctl.ids(&["findings", "list", "--archived"]), ["a1"]);
    assert_eq!(ctl.ids(&["findings", "list", "--all"]).len(), 3);
    let unknown = ctl.run(ADMIN, &["findings", "unarchive", "a1", "zz"]);
    assert!(!unknown.status.success(), "an unknown id fails the command");
    assert_eq!(
        String::from_utf8_lossy(&unknown.stdout).trim(),
        "unarchived: a1"
    );
    assert_eq!(ctl.ids(&["findings", "list"]).len(), 3);

    // Suppression rules and lists.
    ctl.ok(
        ADMIN,
        &[
            "suppress",
            "add",
            "--name",
            "lab",
            "--criteria",
            r#"{"type": {"equals": ["Recon:EC2/Portscan"]}}"#,
        ],
    );
    let rules = ctl.ok(READ, &["--json", "suppress", "list"]);
    let rule: serde_json::Value = serde_json::from_str(rules.lines().next().unwrap()).unwrap();
    assert_eq!(rule["name"], "lab");
    assert_eq!(
        rule["findingCriteria"]["criterion"]["type"]["equals"][0],
        "Recon:EC2/Portscan"
    );
    assert!(ctl.ok(READ, &["suppress", "list"]).contains("lab"));
    ctl.ok(ADMIN, &["suppress", "delete", "lab"]);
    assert!(
        ctl.ok(READ, &["--json", "suppress", "list"])
            .trim()
            .is_empty()
    );
    let gone = ctl.run(ADMIN, &["suppress", "delete", "lab"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not found"));

    let list_file = dir.path().join("bad-ips.txt");
    std::fs::write(&list_file, "198.51.100.7\n203.0.113.0/24\n").unwrap();
    let saved = ctl.ok(
        ADMIN,
        &[
            "lists",
            "add",
            "--name",
            "bad-ips",
            "--role",
            "threat",
            "--file",
            list_file.to_str().unwrap(),
        ],
    );
    assert_eq!(saved.trim(), "list bad-ips saved: 2 entries");
    let lists = ctl.ok(READ, &["--json", "lists", "list"]);
    let mine: Vec<serde_json::Value> = lists
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["name"] == "bad-ips")
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["entries"], 2);
    assert_eq!(mine[0]["role"], "THREAT");
    ctl.ok(ADMIN, &["lists", "delete", "bad-ips"]);
    assert!(!ctl.ok(READ, &["lists", "list"]).contains("bad-ips"));

    collector.stop();
}

#[test]
fn wardctl_over_mtls_takes_its_role_from_the_client_certificate() {
    let pki = Pki::generate();
    let dir = TempDir::new("wardctl-mtls");
    pki.write_server_files(dir.path());
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    {
        let store = Store::open(&data.join("ward.db"), Default::default()).unwrap();
        store
            .commit(WriteBatch {
                findings: vec![finding("m1", "Recon:EC2/Portscan", 2.0, "i-0mmm", 1, 1)],
                ..WriteBatch::default()
            })
            .unwrap();
    }
    for (name, role) in [("admin", "admin"), ("reader", "read")] {
        let pem = pki.ca.api_client(name, role).unwrap();
        std::fs::write(dir.path().join(format!("{name}.pem")), pem.cert).unwrap();
        std::fs::write(dir.path().join(format!("{name}-key.pem")), pem.key).unwrap();
    }
    let api = free_port();
    let path = |f: &str| dir.path().join(f).display().to_string();
    let collector = CollectorProcess::start_with(
        dir.path(),
        &data,
        free_port(),
        &[
            "--api-listen",
            &api.to_string(),
            "--api-tls-cert",
            &path("collector.pem"),
            "--api-tls-key",
            &path("collector-key.pem"),
            "--api-client-ca",
            &path("ca.pem"),
        ],
    );
    let server = format!("https://localhost:{}", api.port());
    let wardctl = |who: Option<&str>, args: &[&str]| {
        let mut c = Command::new(ward_tests::workspace_bin("wardctl"));
        c.args(["--server", &server, "--ca", &path("ca.pem")]);
        if let Some(who) = who {
            c.args(["--cert", &path(&format!("{who}.pem"))]);
            c.args(["--key", &path(&format!("{who}-key.pem"))]);
        }
        c.args(args)
            .env_remove("WARD_SERVER")
            .env_remove("WARD_TOKEN")
            .env_remove("WARD_CA")
            .env_remove("WARD_CERT")
            .env_remove("WARD_KEY")
            .output()
            .unwrap()
    };
    wait_until("the query API", Duration::from_secs(20), || {
        wardctl(Some("reader"), &["findings", "list"])
            .status
            .success()
    });
    let listed = wardctl(Some("reader"), &["--json", "findings", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("\"m1\""));
    let refused = wardctl(Some("reader"), &["findings", "archive", "m1"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("403") && err.contains("admin"),
        "{err}"
    );
    let done = wardctl(Some("admin"), &["findings", "archive", "m1"]);
    assert_eq!(
        String::from_utf8_lossy(&done.stdout).trim(),
        "archived: m1",
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    // No certificate: the TLS handshake is refused (certificates are the only credential here).
    let anonymous = wardctl(None, &["findings", "list"]);
    assert!(!anonymous.status.success());
    // A certificate over plain http:// is a mistake wardctl names.
    let plain = Command::new(ward_tests::workspace_bin("wardctl"))
        .args(["--server", &format!("http://127.0.0.1:{}", api.port())])
        .args([
            "--cert",
            &path("admin.pem"),
            "--key",
            &path("admin-key.pem"),
        ])
        .args(["findings", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&plain.stderr).contains("https://"));
    collector.stop();
}
