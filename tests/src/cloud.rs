//! A fake EC2 host for the correlation tests: instance metadata (IMDSv2) on loopback naming one
//! instance, its addresses and role, and the Route 53 Resolver and CloudTrail records AWS would
//! write about that instance.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};

pub const TOKEN: &str = "AQAEAFake-correlate-token==";
pub const INSTANCE: &str = "i-0c0ffee0c0ffee0c0";
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "eu-west-1";
pub const PRIVATE_IP: &str = "10.0.1.5";
pub const PUBLIC_IP: &str = "203.0.113.25";
pub const ROLE: &str = "web-role";
pub const ACCESS_KEY: &str = "ASIAE2EFAKEKEY";

/// IMDSv2 on 127.0.0.1 (a free port): token, identity document, one interface, the instance
/// profile and the role credentials (fake values). Serves until the process ends.
pub fn fake_imds() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 2048];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let req = String::from_utf8_lossy(&buf).to_string();
            let line = req.lines().next().unwrap_or("").to_string();
            // Header names are case-insensitive (Python's urllib sends `X-aws-ec2-metadata-token`).
            let authed = req.lines().any(|l| {
                l.split_once(':').is_some_and(|(k, v)| {
                    k.eq_ignore_ascii_case("x-aws-ec2-metadata-token") && v.trim() == TOKEN
                })
            });
            let parts: Vec<&str> = line.split_whitespace().take(2).collect();
            let mac = "/latest/meta-data/network/interfaces/macs/0a:00:00:00:00:01/";
            let (status, body) = match parts[..] {
                ["PUT", "/latest/api/token"] => ("200 OK", TOKEN.to_string()),
                [_, _] if !authed => ("401 Unauthorized", String::new()),
                ["GET", "/latest/dynamic/instance-identity/document"] => (
                    "200 OK",
                    format!(
                        r#"{{"accountId":"{ACCOUNT}","availabilityZone":"eu-west-1a","imageId":"ami-0abc","instanceId":"{INSTANCE}","instanceType":"m5.large","privateIp":"{PRIVATE_IP}","region":"{REGION}"}}"#
                    ),
                ),
                ["GET", "/latest/meta-data/network/interfaces/macs/"] => {
                    ("200 OK", "0a:00:00:00:00:01/".to_string())
                }
                ["GET", p] if p == format!("{mac}local-ipv4s") => {
                    ("200 OK", PRIVATE_IP.to_string())
                }
                ["GET", p] if p == format!("{mac}public-ipv4s") => {
                    ("200 OK", PUBLIC_IP.to_string())
                }
                ["GET", p] if p == format!("{mac}interface-id") => {
                    ("200 OK", "eni-0e2e".to_string())
                }
                ["GET", p] if p == format!("{mac}vpc-id") => ("200 OK", "vpc-0e2e".to_string()),
                ["GET", "/latest/meta-data/iam/info"] => (
                    "200 OK",
                    format!(
                        r#"{{"Code":"Success","InstanceProfileArn":"arn:aws:iam::{ACCOUNT}:instance-profile/web","InstanceProfileId":"AIPAE2E"}}"#
                    ),
                ),
                ["GET", p] if p == format!("/latest/meta-data/iam/security-credentials/{ROLE}") => {
                    (
                        "200 OK",
                        format!(
                            r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"{ACCESS_KEY}","SecretAccessKey":"fake","Token":"fake"}}"#
                        ),
                    )
                }
                _ => ("404 Not Found", String::new()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes());
        }
    });
    addr
}

/// The Resolver query-log line for a query of `name` by the instance at `time` (RFC 3339), as
/// Route 53 writes it (JSON Lines).
pub fn resolver_record(name: &str, time: &str) -> String {
    format!(
        r#"{{"version":"1.100000","account_id":"{ACCOUNT}","region":"{REGION}","vpc_id":"vpc-0e2e","query_timestamp":"{time}","query_name":"{name}.","query_type":"A","query_class":"IN","rcode":"NOERROR","answers":[{{"Rdata":"192.0.2.7","Type":"A","Class":"IN"}}],"srcaddr":"{PRIVATE_IP}","srcport":"40123","transport":"UDP","srcids":{{"instance":"{INSTANCE}"}}}}"#
    )
}

/// A CloudTrail record of the instance role's session calling IAM `name` from `ip` at `time`
/// (RFC 3339).
pub fn instance_role_call(time: &str, ip: &str, name: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROAE2E:{INSTANCE}","arn":"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/{INSTANCE}","accountId":"{ACCOUNT}","accessKeyId":"{ACCESS_KEY}","sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::{ACCOUNT}:role/{ROLE}"}},"ec2RoleDelivery":"2.0"}}}},"eventTime":"{time}","eventSource":"iam.amazonaws.com","eventName":"{name}","awsRegion":"{REGION}","sourceIPAddress":"{ip}","userAgent":"aws-cli/2.15.0","eventID":"e2e-{name}-{time}","eventType":"AwsApiCall","recipientAccountId":"{ACCOUNT}"}}"#
    )
}

/// Writes `content` to `dir/name` in one step (a file watcher never sees it half-written): written
/// next to `dir`, then renamed into it.
pub fn drop_file(dir: &std::path::Path, name: &str, content: &str) {
    let tmp = dir
        .parent()
        .expect("a watched directory has a parent")
        .join(format!("{name}.tmp"));
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}
