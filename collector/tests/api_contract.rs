//! Query API contract tests (docs/api.md) over real HTTP and gRPC on loopback, against a real
//! store file: filters, sorting, paging, detail, archive, suppression rules, lists, the change
//! stream, auth refusals, metrics, and gRPC answering like HTTP.

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use ward_collector::api::{self, Access, ApiConfig, ApiHandle};
use ward_collector::findings::Finding;
use ward_collector::findings::time::format_millis;
use ward_collector::store::{Store, StoreConfig, StoredEvent, WriteBatch};
use ward_proto::tonic::metadata::MetadataValue;
use ward_proto::tonic::transport::Endpoint;
use ward_proto::v1::query_client::QueryClient;
use ward_proto::v1::{FindingIds, ListFindingsRequest};

const ADMIN: &str = "admin-token-0123";
const READER: &str = "read-token-4567";
const BASE_MS: i64 = 1_700_000_000_000;

struct Server {
    rt: tokio::runtime::Runtime,
    api: Option<ApiHandle>,
    store: Store,
    base: String,
    agent: ureq::Agent,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(api) = self.api.take() {
            self.rt.block_on(api.shutdown()).unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn hex_sha256(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn finding(i: i64) -> Finding {
    let types = [
        "Recon:EC2/Portscan",
        "Backdoor:Runtime/C&CActivity.B",
        "Execution:Runtime/ReverseShell",
    ];
    let severity = [2.0, 5.0, 8.0, 7.5][(i % 4) as usize];
    Finding::from_json_str(
        &json!({
            "schemaVersion": "2.0", "accountId": "123456789012", "region": "us-east-1",
            "id": format!("{i:032x}"),
            "type": types[(i % 3) as usize],
            "severity": severity,
            "createdAt": format_millis(BASE_MS + i * 1000 - 500),
            "updatedAt": format_millis(BASE_MS + i * 1000),
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": format!("i-{}", i % 5)}},
            "service": {"archived": false, "count": 1 + (i % 3),
                "runtimeDetails": {"process": {"name": "nc", "pid": 4000 + i, "startTime": format_millis(BASE_MS),
                    "lineage": [{"name": "bash", "pid": 100, "startTime": format_millis(BASE_MS - 10_000)}]}},
                "additionalInfo": {"ward": {"eventIds": [format!("ev-{i}")], "agentId": "agent-1",
                    "process": {"pid": 4000 + i, "commandLine": ["nc", "-e", "/bin/sh"]}}}}
        })
        .to_string(),
    )
    .unwrap()
}

fn start(n: i64) -> Server {
    let dir = std::env::temp_dir().join(format!(
        "ward-api-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&dir.join("ward.db"), StoreConfig::default()).unwrap();
    store
        .commit(WriteBatch {
            findings: (0..n).map(finding).collect(),
            events: (0..n)
                .map(|i| StoredEvent {
                    id: format!("ev-{i}"),
                    time_ms: BASE_MS + i * 1000,
                    source: "agent".into(),
                    host: Some("agent-1".into()),
                    pid: Some(4000 + i),
                    process_start_time: Some(format_millis(BASE_MS)),
                    event: json!({"syscall": "connect", "i": i}),
                })
                .collect(),
            ..WriteBatch::default()
        })
        .unwrap();
    let tokens = format!(
        "admin {} ops\nread {} grafana\n",
        hex_sha256(ADMIN),
        hex_sha256(READER)
    );
    let access = Access::parse(&tokens, "tokens").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let api = rt
        .block_on(api::start(
            store.clone(),
            ApiConfig::new("127.0.0.1:0".parse().unwrap(), access),
        ))
        .unwrap();
    let base = format!("http://{}", api.addr);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    Server {
        rt,
        api: Some(api),
        store,
        base,
        agent,
        dir,
    }
}

impl Server {
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let auth = token.map(|t| format!("Bearer {t}"));
        let response = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            ("DELETE", _) => {
                let mut r = self.agent.delete(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            (_, body) => {
                let mut r = self
                    .agent
                    .post(&url)
                    .header("Content-Type", "application/json");
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send(body.unwrap_or(Value::Null).to_string())
            }
        };
        let mut response = response.unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    fn list(&self, body: Value) -> (u16, Value) {
        self.call("POST", "/v1/findings/list", Some(READER), Some(body))
    }
}

fn ids(response: &Value) -> Vec<String> {
    response["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

fn all_pages(s: &Server, mut body: Value) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let (status, page) = s.list(body.clone());
        assert_eq!(status, 200, "{page}");
        out.extend(ids(&page));
        match page["nextToken"].as_str() {
            Some(token) => body["nextToken"] = json!(token),
            None => return out,
        }
    }
}

#[test]
fn filters_sorting_and_paging() {
    let s = start(120);
    // Equals on severity: whole part (8 and 7.5 -> only 8 matches "8").
    let high = all_pages(
        &s,
        json!({"findingCriteria": {"criterion": {"severity": {"equals": ["8"]}}}, "maxResults": 7}),
    );
    let expected: Vec<String> = (0..120)
        .rev()
        .filter(|i| i % 4 == 2)
        .map(|i| format!("{i:032x}"))
        .collect();
    assert_eq!(
        high, expected,
        "Equals severity, default sort updatedAt DESC, 7 per page"
    );
    // NotEquals + GreaterThan on severity, GreaterThan on time, sorted by severity ASC.
    let (status, page) = s.list(json!({
        "findingCriteria": {"criterion": {
            "severity": {"notEquals": ["5"], "greaterThan": 3},
            "updatedAt": {"greaterThan": BASE_MS + 100_000}
        }},
        "sortCriteria": {"attributeName": "severity", "orderBy": "ASC"},
        "maxResults": 100
    }));
    assert_eq!(status, 200);
    let got = page["findings"].as_array().unwrap();
    let want: Vec<i64> = (101..120).filter(|i| [2, 3].contains(&(i % 4))).collect();
    assert_eq!(got.len(), want.len());
    let severities: Vec<f64> = got
        .iter()
        .map(|f| f["severity"].as_f64().unwrap())
        .collect();
    assert!(
        severities.windows(2).all(|w| w[0] <= w[1]),
        "{severities:?}"
    );
    assert!(severities.iter().all(|s| *s == 7.5 || *s == 8.0));
    // Paging through everything in 50s: 120 distinct ids, none missed.
    let every = all_pages(
        &s,
        json!({"sortCriteria": {"attributeName": "createdAt", "orderBy": "ASC"}}),
    );
    let want: Vec<String> = (0..120).map(|i| format!("{i:032x}")).collect();
    assert_eq!(every, want);
    // A filter on a field without an index (evaluated on the JSON) pages too.
    let by_process = all_pages(
        &s,
        json!({
            "findingCriteria": {"criterion": {"service.runtimeDetails.process.pid": {"lessThan": 4010}}},
            "maxResults": 3
        }),
    );
    assert_eq!(by_process.len(), 10);
    // Bad requests say what is wrong.
    let (status, err) =
        s.list(json!({"findingCriteria": {"criterion": {"Severity": {"eq": ["8"]}}}}));
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "BadRequest");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Severity"),
        "{err}"
    );
    let (status, _) = s.list(json!({"maxResults": 0}));
    assert_eq!(status, 400);
    let (status, err) = s.list(json!({"nextToken": "zz"}));
    assert_eq!(status, 400, "{err}");
}

#[test]
fn paging_under_concurrent_inserts_has_no_duplicates_or_misses() {
    let s = start(200);
    let mut body = json!({"maxResults": 30});
    let mut seen = Vec::new();
    let mut round = 0;
    loop {
        let (status, page) = s.list(body.clone());
        assert_eq!(status, 200);
        seen.extend(ids(&page));
        // Newer findings arrive between pages.
        round += 1;
        s.store
            .commit(WriteBatch {
                findings: (0..5).map(|k| finding(10_000 + round * 10 + k)).collect(),
                ..WriteBatch::default()
            })
            .unwrap();
        match page["nextToken"].as_str() {
            Some(t) => body["nextToken"] = json!(t),
            None => break,
        }
    }
    let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates across pages");
    for i in 0..200 {
        assert!(unique.contains(&format!("{i:032x}")), "finding {i} missed");
    }
}

#[test]
fn detail_archive_rules_lists_and_auth() {
    let s = start(12);
    let id = format!("{:032x}", 7);
    // Detail: finding, history, its event, the process tree root first.
    let (status, detail) = s.call("GET", &format!("/v1/findings/{id}"), Some(READER), None);
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["finding"]["id"], json!(id));
    assert_eq!(detail["history"].as_array().unwrap().len(), 1);
    assert_eq!(detail["events"][0]["id"], "ev-7");
    let tree = detail["processTree"].as_array().unwrap();
    assert_eq!(tree.len(), 2);
    assert_eq!(tree[0]["name"], "bash");
    assert_eq!(tree[1]["pid"], 4007);
    assert_eq!(tree[1]["commandLine"], json!(["nc", "-e", "/bin/sh"]));
    assert_eq!(tree[1]["eventIds"], json!(["ev-7"]));
    let (status, _) = s.call("GET", "/v1/findings/nope", Some(READER), None);
    assert_eq!(status, 404);

    // Auth: no token 401, bad token 401, read token on a write 403.
    assert_eq!(
        s.call("POST", "/v1/findings/list", None, Some(json!({}))).0,
        401
    );
    assert_eq!(
        s.call("POST", "/v1/findings/list", Some("wrong"), Some(json!({})))
            .0,
        401
    );
    let archive = json!({"findingIds": [id, "unknown-id"]});
    let (status, err) = s.call(
        "POST",
        "/v1/findings/archive",
        Some(READER),
        Some(archive.clone()),
    );
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("Forbidden"))
    );
    assert_eq!(
        s.call(
            "POST",
            "/v1/suppression-rules",
            Some(READER),
            Some(json!({}))
        )
        .0,
        403
    );
    assert_eq!(s.call("DELETE", "/v1/lists/x", Some(READER), None).0, 403);
    assert_eq!(s.call("GET", "/healthz", None, None).0, 200);
    assert_eq!(s.call("GET", "/metrics", None, None).0, 401);

    // Archive / unarchive and the filter on service.archived.
    let (status, outcome) = s.call("POST", "/v1/findings/archive", Some(ADMIN), Some(archive));
    assert_eq!(status, 200);
    assert_eq!(
        outcome,
        json!({"changed": [id], "unchanged": [], "unknown": ["unknown-id"]})
    );
    let active = |s: &Server| {
        all_pages(
            s,
            json!({"findingCriteria": {"criterion": {"service.archived": {"eq": ["false"]}}}}),
        )
    };
    assert_eq!(active(&s).len(), 11);
    let (status, outcome) = s.call(
        "POST",
        "/v1/findings/unarchive",
        Some(ADMIN),
        Some(json!({"findingIds": [id]})),
    );
    assert_eq!(
        (status, outcome["changed"].as_array().unwrap().len()),
        (200, 1)
    );
    assert_eq!(active(&s).len(), 12);
    let (_, detail) = s.call("GET", &format!("/v1/findings/{id}"), Some(ADMIN), None);
    let versions: Vec<bool> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["archived"].as_bool().unwrap())
        .collect();
    assert_eq!(versions, vec![false, true, false]);

    // Suppression rules: CRUD; a rule archives later matching findings, not stored ones.
    let rule = json!({"name": "port-scans", "action": "ARCHIVE", "rank": 1,
        "findingCriteria": {"criterion": {"type": {"eq": ["Recon:EC2/Portscan"]}}}});
    let (status, created) = s.call("POST", "/v1/suppression-rules", Some(ADMIN), Some(rule));
    assert_eq!((status, created), (201, json!({"name": "port-scans"})));
    let (status, bad) = s.call(
        "POST",
        "/v1/suppression-rules",
        Some(ADMIN),
        Some(json!({"name": "x", "findingCriteria": {"criterion": {"severity": {"gt": "high"}}}})),
    );
    assert_eq!(status, 400);
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("severity"),
        "{bad}"
    );
    let (_, rules) = s.call("GET", "/v1/suppression-rules", Some(READER), None);
    assert_eq!(rules["rules"].as_array().unwrap().len(), 1);
    assert_eq!(
        active(&s).len(),
        12,
        "a new rule leaves stored findings alone"
    );
    s.store
        .commit(WriteBatch {
            findings: vec![finding(300), finding(301)],
            ..WriteBatch::default()
        })
        .unwrap();
    let (_, scan) = s.call(
        "GET",
        &format!("/v1/findings/{:032x}", 300),
        Some(READER),
        None,
    );
    assert_eq!(
        scan["finding"]["service"]["archived"], true,
        "300 is a port scan"
    );
    let (_, other) = s.call(
        "GET",
        &format!("/v1/findings/{:032x}", 301),
        Some(READER),
        None,
    );
    assert_eq!(other["finding"]["service"]["archived"], false);
    assert_eq!(
        s.call(
            "DELETE",
            "/v1/suppression-rules/port-scans",
            Some(ADMIN),
            None
        )
        .0,
        204
    );
    assert_eq!(
        s.call(
            "DELETE",
            "/v1/suppression-rules/port-scans",
            Some(ADMIN),
            None
        )
        .0,
        404
    );

    // Lists: inline content with a bad line is stored with the line reported; nothing valid: 400.
    let list = json!({"name": "blocklist", "role": "THREAT", "kind": "IP", "format": "TXT",
        "content": "198.51.100.7\nnot an ip\n203.0.113.0/24\n"});
    let (status, created) = s.call("POST", "/v1/lists", Some(ADMIN), Some(list));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["entries"], 2);
    assert_eq!(created["rejectedLines"][0]["line"], 2);
    let (status, err) = s.call("POST", "/v1/lists", Some(ADMIN),
        Some(json!({"name": "empty", "role": "TRUSTED", "kind": "IP", "format": "TXT", "content": "nope\n"})));
    assert_eq!(status, 400, "{err}");
    let (status, err) = s.call("POST", "/v1/lists", Some(ADMIN),
        Some(json!({"name": "gone", "role": "THREAT", "kind": "IP", "format": "TXT", "location": "/nonexistent/list.txt"})));
    assert_eq!(status, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/list.txt")
    );
    let (_, lists) = s.call("GET", "/v1/lists", Some(READER), None);
    assert_eq!(lists["lists"].as_array().unwrap().len(), 1);
    assert_eq!(lists["lists"][0]["role"], "THREAT");
    assert!(lists["lists"][0].get("content").is_none());
    assert_eq!(
        s.call("DELETE", "/v1/lists/blocklist", Some(ADMIN), None).0,
        204
    );
    assert_eq!(
        s.call("DELETE", "/v1/lists/blocklist", Some(ADMIN), None).0,
        404
    );

    // Metrics: store and API counters, Prometheus text.
    let (status, metrics) = s.call("GET", "/metrics", Some(READER), None);
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("ward_store_findings_created_total 14"),
        "{text}"
    );
    assert!(
        text.contains("ward_api_requests_total{code=\"403\"} 3"),
        "{text}"
    );
}

#[test]
fn change_stream_delivers_new_and_archived_findings_as_json_lines() {
    let s = start(1);
    let response = s
        .agent
        .get(format!("{}/v1/findings/stream", s.base))
        .header("Authorization", format!("Bearer {READER}"))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut lines = BufReader::new(response.into_body().into_reader()).lines();
    // The subscription exists once the response head arrived; commit after it.
    s.store
        .commit(WriteBatch {
            findings: vec![finding(50)],
            ..WriteBatch::default()
        })
        .unwrap();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["change"], "created");
    assert_eq!(first["finding"]["id"], json!(format!("{:032x}", 50)));
    let (status, _) = s.call(
        "POST",
        "/v1/findings/archive",
        Some(ADMIN),
        Some(json!({"findingIds": [format!("{:032x}", 50)]})),
    );
    assert_eq!(status, 200);
    let second: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(second["change"], "archived");
}

#[test]
fn grpc_answers_like_http_and_enforces_the_same_roles() {
    let s = start(60);
    let criteria =
        json!({"criterion": {"severity": {"gte": 5}, "type": {"neq": ["Recon:EC2/Portscan"]}}});
    let http_ids = all_pages(
        &s,
        json!({"findingCriteria": criteria, "maxResults": 9,
        "sortCriteria": {"attributeName": "severity", "orderBy": "DESC"}}),
    );
    assert!(!http_ids.is_empty());
    let addr = s.base.clone();
    let Server { rt, .. } = &s;
    rt.block_on(async {
        let channel = Endpoint::from_shared(addr)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let token = |t: &str| -> MetadataValue<_> { format!("Bearer {t}").parse().unwrap() };
        let mut client = QueryClient::new(channel);
        let mut grpc_ids = Vec::new();
        let mut next_token = String::new();
        loop {
            let mut request = ward_proto::tonic::Request::new(ListFindingsRequest {
                finding_criteria_json: criteria.to_string(),
                sort_attribute: "severity".into(),
                order_by: "DESC".into(),
                max_results: 9,
                next_token: next_token.clone(),
            });
            request
                .metadata_mut()
                .insert("authorization", token(READER));
            let page = client.list_findings(request).await.unwrap().into_inner();
            for f in &page.findings_json {
                let v: Value = serde_json::from_str(f).unwrap();
                grpc_ids.push(v["id"].as_str().unwrap().to_owned());
            }
            if page.next_token.is_empty() {
                break;
            }
            next_token = page.next_token;
        }
        assert_eq!(grpc_ids, http_ids);
        // No token: UNAUTHENTICATED; read token archiving: PERMISSION_DENIED.
        let err = client
            .list_findings(ListFindingsRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ward_proto::tonic::Code::Unauthenticated);
        let mut request = ward_proto::tonic::Request::new(FindingIds {
            finding_ids: vec![http_ids[0].clone()],
        });
        request
            .metadata_mut()
            .insert("authorization", token(READER));
        let err = client.archive_findings(request).await.unwrap_err();
        assert_eq!(err.code(), ward_proto::tonic::Code::PermissionDenied);
        let mut request = ward_proto::tonic::Request::new(FindingIds {
            finding_ids: vec![http_ids[0].clone()],
        });
        request.metadata_mut().insert("authorization", token(ADMIN));
        let done = client.archive_findings(request).await.unwrap().into_inner();
        assert_eq!(done.changed, vec![http_ids[0].clone()]);
    });
    let _ = Arc::new(());
}
