//! Instance identity from a fake IMDSv2 server on loopback (never the real link-local endpoint): token
//! first, then the identity document and the interfaces; a silent endpoint times out quickly and the
//! configured identity is used instead.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use ward_agent::transport::identity::{ConfiguredIdentity, resolve};
use ward_agent::transport::imds::ImdsEndpoint;

const TOKEN: &str = "AQAEAFake-token==";

/// Answers like IMDSv2: PUT /latest/api/token returns a token; GETs without it get 401.
async fn fake_imds(log: Arc<Mutex<Vec<String>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut n = 0;
                while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    let k = sock.read(&mut buf[n..]).await.unwrap();
                    if k == 0 {
                        return;
                    }
                    n += k;
                }
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let line = req.lines().next().unwrap_or("").to_string();
                log.lock().unwrap().push(line.clone());
                let authed = req.contains(&format!("X-aws-ec2-metadata-token: {TOKEN}"));
                let (status, body) = match line.split_whitespace().take(2).collect::<Vec<_>>()[..] {
                    ["PUT", "/latest/api/token"] if req.contains("X-aws-ec2-metadata-token-ttl-seconds") => {
                        ("200 OK", TOKEN.to_string())
                    }
                    [_, _] if !authed => ("401 Unauthorized", String::new()),
                    ["GET", "/latest/dynamic/instance-identity/document"] => (
                        "200 OK",
                        r#"{"accountId":"123456789012","availabilityZone":"eu-west-1b","imageId":"ami-0abc","instanceId":"i-0123456789abcdef0","instanceType":"m5.large","privateIp":"10.0.1.5","region":"eu-west-1"}"#.to_string(),
                    ),
                    ["GET", "/latest/meta-data/network/interfaces/macs/"] => {
                        ("200 OK", "0a:00:00:00:00:01/\n0a:00:00:00:00:02/".to_string())
                    }
                    ["GET", p] if p.ends_with("/local-ipv4s") => {
                        let ips = if p.contains(":01/") { "10.0.1.5\n10.0.1.6" } else { "10.0.2.9" };
                        ("200 OK", ips.to_string())
                    }
                    ["GET", p] if p.ends_with("/public-ipv4s") && p.contains(":01/") => {
                        ("200 OK", "203.0.113.25".to_string())
                    }
                    ["GET", "/latest/meta-data/iam/info"] => (
                        "200 OK",
                        r#"{"Code":"Success","InstanceProfileArn":"arn:aws:iam::123456789012:instance-profile/web","InstanceProfileId":"AIPAEXAMPLE"}"#.to_string(),
                    ),
                    ["GET", p] if p.ends_with("/interface-id") => {
                        ("200 OK", if p.contains(":01/") { "eni-1" } else { "eni-2" }.to_string())
                    }
                    ["GET", p] if p.ends_with("/subnet-id") => ("200 OK", "subnet-9".to_string()),
                    ["GET", p] if p.ends_with("/vpc-id") => ("200 OK", "vpc-7".to_string()),
                    _ => ("404 Not Found", String::new()),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

fn configured() -> ConfiguredIdentity {
    ConfiguredIdentity {
        instance_id: "i-configured".into(),
        region: "us-east-2".into(),
        account_id: "999".into(),
        private_ips: vec!["192.0.2.10".into()],
        kubernetes_node: "node-a".into(),
    }
}

#[tokio::test]
async fn imds_v2_identity_from_a_fake_server() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let addr = fake_imds(log.clone()).await;
    let ep = ImdsEndpoint::parse(&format!("http://{addr}")).unwrap();
    let host = resolve("agent-1", &ep, Duration::from_secs(5), &configured()).await;
    assert_eq!(host.identity_source, "imds");
    assert_eq!(host.instance_id, "i-0123456789abcdef0");
    assert_eq!(host.region, "eu-west-1");
    assert_eq!(host.account_id, "123456789012");
    assert_eq!(host.availability_zone, "eu-west-1b");
    assert_eq!(host.instance_type, "m5.large");
    assert_eq!(host.private_ips, vec!["10.0.1.5", "10.0.1.6", "10.0.2.9"]);
    let enis: Vec<_> = host
        .interfaces
        .iter()
        .map(|i| (i.id.as_str(), i.subnet_id.as_str(), i.vpc_id.as_str()))
        .collect();
    assert_eq!(
        enis,
        vec![
            ("eni-1", "subnet-9", "vpc-7"),
            ("eni-2", "subnet-9", "vpc-7")
        ]
    );
    let public: Vec<_> = host
        .interfaces
        .iter()
        .map(|i| i.public_ips.clone())
        .collect();
    assert_eq!(public, vec![vec!["203.0.113.25".to_string()], vec![]]);
    assert_eq!(
        host.instance_profile_arn,
        "arn:aws:iam::123456789012:instance-profile/web"
    );
    assert_eq!(host.kubernetes_node, "node-a");
    assert_eq!(host.agent_id, "agent-1");
    assert!(!host.boot_id.is_empty() && !host.kernel_release.is_empty());
    // IMDSv2: the token is fetched first, and every GET carried it (the fake refuses GETs without it).
    let log = log.lock().unwrap();
    assert_eq!(log[0], "PUT /latest/api/token HTTP/1.1");
    assert!(log.iter().skip(1).all(|l| l.starts_with("GET ")), "{log:?}");
}

#[tokio::test]
async fn silent_or_absent_imds_falls_back_to_configuration_quickly() {
    // Accepts connections but never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let start = Instant::now();
    let ep = ImdsEndpoint::parse(&format!("http://{addr}")).unwrap();
    let host = resolve("agent-2", &ep, Duration::from_millis(300), &configured()).await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(
        (host.identity_source.as_str(), host.instance_id.as_str()),
        ("config", "i-configured")
    );
    assert_eq!(host.private_ips, vec!["192.0.2.10"]);

    // Nothing listening at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let ep = ImdsEndpoint::parse(&format!("http://{closed}")).unwrap();
    let host = resolve("agent-2", &ep, Duration::from_millis(300), &configured()).await;
    assert_eq!(host.region, "us-east-2");

    // Off: no request at all.
    let host = resolve(
        "agent-2",
        &ImdsEndpoint::Off,
        Duration::from_millis(300),
        &configured(),
    )
    .await;
    assert_eq!(
        (host.identity_source.as_str(), host.account_id.as_str()),
        ("config", "999")
    );
}
