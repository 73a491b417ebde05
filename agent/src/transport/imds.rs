//! EC2 instance metadata (IMDSv2): PUT a session token, then GET the identity document and the network
//! interfaces. A deliberately small HTTP/1.1 client (one request per connection, `Content-Length`
//! bodies) with a short timeout, because the agent asks only at start and must start quickly off EC2.
//!
//! The endpoint is always explicit ([`ImdsEndpoint`]): tests point it at a fake server on loopback.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ward_proto::v1::{HostIdentity, NetworkInterface};

/// EC2's link-local metadata address: the production default of `--imds`, never used by tests.
pub const EC2_ENDPOINT: &str = "http://169.254.169.254";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImdsEndpoint {
    Off,
    /// `host:port` of an `http://` URL.
    Http(String),
}

impl ImdsEndpoint {
    /// `off`, or an `http://HOST[:PORT]` URL.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        if s == "off" {
            return Ok(ImdsEndpoint::Off);
        }
        let Some(rest) = s.strip_prefix("http://") else {
            bail!("--imds must be `off` or an http:// URL, got {s:?}")
        };
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            bail!("--imds URL must have no path, got {s:?}");
        }
        // IPv6 literals are bracketed; a port follows the last colon outside brackets.
        let has_port = host.rsplit_once(':').is_some_and(|(h, p)| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']'))
        });
        Ok(ImdsEndpoint::Http(if has_port {
            host.to_string()
        } else {
            format!("{host}:80")
        }))
    }
}

/// What IMDS told us, merged into the host identity.
pub async fn fetch(endpoint: &str, timeout: Duration) -> anyhow::Result<HostIdentity> {
    tokio::time::timeout(timeout, fetch_inner(endpoint))
        .await
        .with_context(|| {
            format!("instance metadata at {endpoint} did not answer within {timeout:?}")
        })?
}

async fn fetch_inner(endpoint: &str) -> anyhow::Result<HostIdentity> {
    let token = request(
        endpoint,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", "300")],
    )
    .await
    .context("IMDSv2 token")?;
    let token = token.trim().to_string();
    let auth = [("X-aws-ec2-metadata-token", token.as_str())];
    let doc = request(
        endpoint,
        "GET",
        "/latest/dynamic/instance-identity/document",
        &auth,
    )
    .await
    .context("instance identity document")?;
    let doc: serde_json::Value =
        serde_json::from_str(&doc).context("instance identity document is not JSON")?;
    let field = |k: &str| {
        doc.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let mut host = HostIdentity {
        cloud_provider: "aws".into(),
        instance_id: field("instanceId"),
        instance_type: field("instanceType"),
        region: field("region"),
        availability_zone: field("availabilityZone"),
        account_id: field("accountId"),
        image_id: field("imageId"),
        identity_source: "imds".into(),
        ..Default::default()
    };
    if host.instance_id.is_empty() {
        bail!("instance identity document has no instanceId");
    }
    // Interfaces are best-effort: an instance identity without them is still worth having.
    let base = "/latest/meta-data/network/interfaces/macs/";
    if let Ok(macs) = request(endpoint, "GET", base, &auth).await {
        for mac in macs
            .lines()
            .map(|l| l.trim().trim_end_matches('/'))
            .filter(|l| !l.is_empty())
        {
            let get = |leaf: &'static str| {
                let path = format!("{base}{mac}/{leaf}");
                async move {
                    request(endpoint, "GET", &path, &auth)
                        .await
                        .unwrap_or_default()
                }
            };
            let ips: Vec<String> = get("local-ipv4s")
                .await
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            host.private_ips.extend(ips.iter().cloned());
            host.interfaces.push(NetworkInterface {
                id: get("interface-id").await.trim().to_string(),
                mac: mac.to_string(),
                private_ips: ips,
                subnet_id: get("subnet-id").await.trim().to_string(),
                vpc_id: get("vpc-id").await.trim().to_string(),
                public_ips: get("public-ipv4s")
                    .await
                    .lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect(),
            });
        }
    }
    // The instance profile (not its credentials: iam/info holds only the ARN and id).
    if let Ok(info) = request(endpoint, "GET", "/latest/meta-data/iam/info", &auth).await
        && let Ok(info) = serde_json::from_str::<serde_json::Value>(&info)
    {
        host.instance_profile_arn = info
            .get("InstanceProfileArn")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
    }
    if host.private_ips.is_empty() {
        let ip = field("privateIp");
        if !ip.is_empty() {
            host.private_ips.push(ip);
        }
    }
    Ok(host)
}

/// One HTTP/1.1 request; the body of a 200 answer, an error otherwise. Bodies over 1 MiB are refused.
async fn request(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<String> {
    let mut sock = TcpStream::connect(endpoint).await?;
    let host = endpoint.rsplit_once(':').map_or(endpoint, |(h, _)| h);
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    sock.write_all(req.as_bytes()).await?;
    let mut resp = Vec::new();
    (&mut sock).take(1 << 20).read_to_end(&mut resp).await?;
    let text = String::from_utf8(resp).context("answer is not UTF-8")?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("answer has no header end")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!("{method} {path}: HTTP {status}");
    }
    // Connection: close, so the body is everything after the head unless a length says otherwise.
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(body.len());
    Ok(body.get(..len).unwrap_or(body).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_parsing() {
        assert_eq!(ImdsEndpoint::parse("off").unwrap(), ImdsEndpoint::Off);
        assert_eq!(
            ImdsEndpoint::parse("http://127.0.0.1:8080/").unwrap(),
            ImdsEndpoint::Http("127.0.0.1:8080".into())
        );
        assert_eq!(
            ImdsEndpoint::parse(EC2_ENDPOINT).unwrap(),
            ImdsEndpoint::Http("169.254.169.254:80".into())
        );
        assert_eq!(
            ImdsEndpoint::parse("http://[::1]:9").unwrap(),
            ImdsEndpoint::Http("[::1]:9".into())
        );
        assert_eq!(
            ImdsEndpoint::parse("http://[::1]").unwrap(),
            ImdsEndpoint::Http("[::1]:80".into())
        );
        assert!(ImdsEndpoint::parse("https://x").is_err());
        assert!(ImdsEndpoint::parse("http://x/latest").is_err());
    }
}
