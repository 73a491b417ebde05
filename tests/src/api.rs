//! The collector's query API from tests: plain HTTP/1.1 over loopback, std only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// `POST path` with a JSON body; the response status and JSON body.
pub fn post(api: SocketAddr, path: &str, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let mut s = TcpStream::connect(api).expect("connect to the query API");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    let value = serde_json::from_str(&body).unwrap_or(Value::Null);
    (status, value)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Every stored finding (archived ones included), through `POST /v1/findings/list`.
pub fn all_findings(api: SocketAddr) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token = Value::Null;
    loop {
        let (status, page) = post(
            api,
            "/v1/findings/list",
            &serde_json::json!({"maxResults": 1000, "nextToken": token}),
        );
        assert_eq!(status, 200, "findings/list: {page}");
        out.extend(page["findings"].as_array().cloned().unwrap_or_default());
        token = page["nextToken"].clone();
        if token.is_null() {
            return out;
        }
    }
}
