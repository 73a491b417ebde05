//! `wardctl` run as a process against a local HTTP server speaking the contract of `docs/api.md`
//! (auth roles, error shape, keyset paging, the NDJSON stream). The server records what wardctl
//! sent, so the tests check both directions: the request bodies and what wardctl prints.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

const ADMIN: &str = "admin-token";
const READ: &str = "read-token";

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    body: Value,
}

struct FakeApi {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn finding(id: &str, severity: f64, kind: &str, instance: &str, title: &str) -> Value {
    json!({
        "schemaVersion": "2.0", "id": id, "type": kind, "severity": severity, "title": title,
        "accountId": "111122223333", "region": "us-east-1",
        "createdAt": "2026-11-29T10:00:00.000Z", "updatedAt": "2026-11-29T10:05:00.000Z",
        "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": instance}},
        "service": {"archived": false, "count": 3},
    })
}

fn store() -> Vec<Value> {
    vec![
        finding(
            "aaa1",
            8.0,
            "Execution:Runtime/ReverseShell",
            "i-0abc",
            "Reverse shell from bash",
        ),
        finding(
            "bbb2",
            5.0,
            "Backdoor:Runtime/C&CActivity.B!DNS",
            "i-0abc",
            "C&C lookup",
        ),
        finding("ccc3", 2.0, "Recon:EC2/Portscan", "i-0def", "Port scan"),
    ]
}

impl FakeApi {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let log = log.clone();
                std::thread::spawn(move || serve(stream, &log));
            }
        });
        FakeApi { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn respond(stream: &mut TcpStream, status: u16, body: &Value) {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
        text.len()
    );
}

fn error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap().to_owned();
        let path = parts.next().unwrap().to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').unwrap();
            headers.insert(n.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
        let len: usize = headers
            .get("content-length")
            .map_or(0, |l| l.parse().unwrap());
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap()
        };
        log.lock().unwrap().push(Seen {
            method: method.clone(),
            path: path.clone(),
            body: body.clone(),
        });

        let role = match headers.get("authorization").map(String::as_str) {
            Some(a) if a == format!("Bearer {ADMIN}") => "admin",
            Some(a) if a == format!("Bearer {READ}") => "read",
            _ => {
                respond(
                    &mut stream,
                    401,
                    &error("Unauthenticated", "missing or unknown token"),
                );
                continue;
            }
        };
        let write = method != "GET" && path != "/v1/findings/list";
        if write && role != "admin" {
            respond(
                &mut stream,
                403,
                &error("Forbidden", "this call needs the admin role"),
            );
            continue;
        }
        match (method.as_str(), path.as_str()) {
            ("POST", "/v1/findings/list") => {
                // Pages of at most 2 whatever maxResults says, to make wardctl follow nextToken.
                let all = store();
                let start: usize = body["nextToken"].as_str().map_or(0, |t| t.parse().unwrap());
                let max = body["maxResults"].as_u64().unwrap() as usize;
                let end = (start + max.min(2)).min(all.len());
                let next = if end < all.len() {
                    json!(end.to_string())
                } else {
                    Value::Null
                };
                respond(
                    &mut stream,
                    200,
                    &json!({"findings": all[start..end], "nextToken": next}),
                );
            }
            ("GET", "/v1/findings/aaa1") => respond(
                &mut stream,
                200,
                &json!({
                    "finding": store()[0],
                    "history": [{"version": 1, "updatedAt": "2026-11-29T10:00:00.000Z", "count": 1, "archived": false}],
                    "events": [],
                    "processTree": [
                        {"pid": 1, "name": "systemd", "executablePath": "/usr/lib/systemd/systemd"},
                        {"pid": 4242, "name": "bash", "executablePath": "/usr/bin/bash", "user": "root"}
                    ],
                }),
            ),
            ("GET", p) if p.starts_with("/v1/findings/") && p != "/v1/findings/stream" => respond(
                &mut stream,
                404,
                &error("NotFound", "no finding with that id"),
            ),
            ("POST", "/v1/findings/archive") => {
                let ids = body["findingIds"].as_array().unwrap();
                let (known, unknown): (Vec<&Value>, Vec<&Value>) = ids
                    .iter()
                    .partition(|id| store().iter().any(|f| f["id"] == **id));
                respond(
                    &mut stream,
                    200,
                    &json!({"changed": known, "unchanged": [], "unknown": unknown}),
                );
            }
            ("POST", "/v1/suppression-rules") => {
                respond(&mut stream, 201, &json!({"name": body["name"]}))
            }
            ("GET", "/v1/findings/stream") => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n";
                let _ = stream.write_all(head.as_bytes());
                for line in [
                    json!({"change": "created", "finding": store()[0]}).to_string(),
                    String::new(),
                    json!({"change": "updated", "finding": store()[2], "suppressedBy": "lab"})
                        .to_string(),
                    json!({"change": "archived", "finding": store()[1]}).to_string(),
                ] {
                    let chunk = format!("{line}\n");
                    let _ = write!(stream, "{:x}\r\n{chunk}\r\n", chunk.len());
                }
                let _ = stream.flush();
                // Hold the stream open like a live server until wardctl is killed.
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
            _ => respond(&mut stream, 404, &error("NotFound", "no such route")),
        }
    }
}

fn wardctl(server: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wardctl"));
    cmd.args(["--server", server]).args(args);
    cmd.env_remove("WARD_SERVER").env_remove("WARD_TOKEN");
    if let Some(t) = token {
        cmd.env("WARD_TOKEN", t);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn findings_list_follows_pages_sends_the_criteria_and_prints_an_aligned_table() {
    let api = FakeApi::start();
    let out = wardctl(
        &api.url,
        Some(READ),
        &[
            "findings",
            "list",
            "--severity-min",
            "medium",
            "--instance",
            "i-0abc",
            "--limit",
            "3",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "header and three findings over two pages:\n{stdout}"
    );
    assert!(lines[0].starts_with("ID"));
    for column in ["SEVERITY", "TYPE", "RESOURCE", "COUNT", "UPDATED", "TITLE"] {
        let at = lines[0].find(column).unwrap();
        for row in &lines[1..] {
            let before = row.chars().nth(at - 1).unwrap();
            assert_eq!(
                before, ' ',
                "column {column} starts at {at} in every row:\n{stdout}"
            );
        }
    }
    assert!(lines[1].contains("High 8.0") && lines[1].contains("Execution:Runtime/ReverseShell"));
    assert!(lines[3].contains("Low 2.0") && lines[3].contains("i-0def"));
    let lists: Vec<Seen> = api
        .seen()
        .into_iter()
        .filter(|s| s.path == "/v1/findings/list")
        .collect();
    assert_eq!(lists.len(), 2);
    assert_eq!(
        lists[0].body["findingCriteria"],
        json!({"criterion": {
            "service.archived": {"equals": ["false"]},
            "severity": {"greaterThanOrEqual": 4.0},
            "resource.instanceDetails.instanceId": {"equals": ["i-0abc"]},
        }})
    );
    assert_eq!(
        lists[0].body["sortCriteria"],
        json!({"attributeName": "updatedAt", "orderBy": "DESC"})
    );
    assert_eq!(lists[0].body["maxResults"], 3);
    assert_eq!(lists[1].body["nextToken"], "2");
    assert_eq!(lists[1].body["maxResults"], 1);
}

#[test]
fn json_output_is_one_finding_per_line() {
    let api = FakeApi::start();
    let out = wardctl(
        &api.url,
        Some(READ),
        &["--json", "findings", "list", "--limit", "2"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ids: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["aaa1", "bbb2"]);
}

#[test]
fn get_shows_the_process_tree_and_unknown_ids_fail() {
    let api = FakeApi::start();
    let out = wardctl(&api.url, Some(READ), &["findings", "get", "aaa1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Process tree"), "{stdout}");
    assert!(
        stdout.contains("systemd pid 1")
            && stdout.contains("  bash pid 4242 /usr/bin/bash user root"),
        "{stdout}"
    );
    let out = wardctl(&api.url, Some(READ), &["findings", "get", "nope"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not found: no finding with that id"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn refusals_say_which_token_or_role_is_needed() {
    let api = FakeApi::start();
    let out = wardctl(&api.url, None, &["findings", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("401") && err.contains("--token") && err.contains("no token was given"),
        "{err}"
    );

    let out = wardctl(&api.url, Some("wrong"), &["findings", "list"]);
    assert!(
        text(&out.stderr).contains("not accepted"),
        "{}",
        text(&out.stderr)
    );

    let out = wardctl(&api.url, Some(READ), &["findings", "archive", "aaa1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("403") && err.contains("admin role"), "{err}");
}

#[test]
fn connection_refused_names_the_url() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = wardctl(&url, Some(READ), &["findings", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("connection refused") && err.contains(&url),
        "{err}"
    );
}

#[test]
fn archive_reports_unknown_ids_and_fails() {
    let api = FakeApi::start();
    let out = wardctl(
        &api.url,
        Some(ADMIN),
        &["findings", "archive", "aaa1", "zzz9"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).trim(), "archived: aaa1");
    assert!(text(&out.stderr).contains("no such finding: zzz9"));
    let sent = api
        .seen()
        .into_iter()
        .find(|s| s.path == "/v1/findings/archive")
        .unwrap();
    assert_eq!(sent.body, json!({"findingIds": ["aaa1", "zzz9"]}));
}

#[test]
fn suppress_add_sends_criteria_from_a_file_and_reports_json_errors_with_the_line() {
    let api = FakeApi::start();
    let path =
        std::env::temp_dir().join(format!("wardctl-test-criteria-{}.json", std::process::id()));
    std::fs::write(
        &path,
        r#"{"resource.instanceDetails.instanceId": {"equals": ["i-0lab"]}}"#,
    )
    .unwrap();
    let out = wardctl(
        &api.url,
        Some(ADMIN),
        &[
            "suppress",
            "add",
            "--name",
            "lab",
            "--criteria",
            path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "suppression rule lab saved");
    let sent = api
        .seen()
        .into_iter()
        .find(|s| s.path == "/v1/suppression-rules")
        .unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(
        sent.body,
        json!({"name": "lab", "action": "ARCHIVE", "findingCriteria": {"criterion": {"resource.instanceDetails.instanceId": {"equals": ["i-0lab"]}}}})
    );
    std::fs::write(&path, "{\n\"type\": [\n}").unwrap();
    let out = wardctl(
        &api.url,
        Some(ADMIN),
        &[
            "suppress",
            "add",
            "--name",
            "x",
            "--criteria",
            path.to_str().unwrap(),
        ],
    );
    std::fs::remove_file(&path).unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success() && err.contains("line 3"), "{err}");
}

#[test]
fn tail_prints_changes_as_they_arrive() {
    let api = FakeApi::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wardctl"))
        .args(["--server", &api.url, "--token", READ, "tail"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        first.contains("created") && first.contains("aaa1") && first.contains("High 8.0"),
        "{first}"
    );
    // The suppressed change is skipped without --suppressed; the archive comes next.
    assert!(
        second.contains("archived") && second.contains("bbb2"),
        "{second}"
    );
}
