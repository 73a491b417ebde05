//! Signed HTTP calls to AWS-style endpoints, with retries for what is worth retrying.
//!
//! Blocking on purpose: the readers are synchronous `Read` consumers, and one object is read at a
//! time; `serve` runs a source on a blocking thread. Redirects are not followed (a redirected S3
//! request means a wrong region or endpoint, and the signature would not match anyway).

use super::sigv4::{self, Credentials};
use crate::event::time::format_amz_date;
use std::fmt;
use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Scheme and authority of a service endpoint, e.g. `http://127.0.0.1:5000`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    /// `host[:port]` exactly as sent in the `Host` header (and therefore signed).
    pub authority: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("endpoint {url:?}: expected http:// or https://"));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!(
                "endpoint {url:?}: expected scheme://host[:port] without a path"
            ));
        }
        // The Host header carries no default port; keep the signed value identical to it.
        let default_port = if https { ":443" } else { ":80" };
        let authority = authority
            .strip_suffix(default_port)
            .unwrap_or(authority)
            .to_ascii_lowercase();
        Ok(Endpoint { https, authority })
    }

    pub fn url(&self, path: &str, query: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        if query.is_empty() {
            format!("{scheme}://{}{path}", self.authority)
        } else {
            format!("{scheme}://{}{path}?{query}", self.authority)
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url("", ""))
    }
}

/// How often and how patiently a failed call is retried.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Total tries per call (1 = no retry).
    pub attempts: u32,
    /// Wait before the second try; doubled for each further one, capped by `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl Retry {
    fn delay(&self, failed_tries: u32) -> Duration {
        let f = 1u32 << failed_tries.saturating_sub(1).min(16);
        self.first_delay.saturating_mul(f).min(self.max_delay)
    }
}

/// A call that did not succeed. `what` names the operation and its target (bucket/key, queue).
#[derive(Debug)]
pub enum AwsError {
    /// No usable answer after every try: connection refused or reset, timeout, 5xx, throttling.
    /// Worth trying again later; nothing was consumed.
    Unavailable {
        what: String,
        endpoint: String,
        attempts: u32,
        last: String,
    },
    /// The service refused the request (4xx): retrying the same request will not help.
    Refused {
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    /// The answer could not be understood (bad XML/JSON).
    BadResponse { what: String, message: String },
}

impl AwsError {
    /// True if a later attempt may succeed without anything changing on our side.
    pub fn is_transient(&self) -> bool {
        matches!(self, AwsError::Unavailable { .. })
    }

    /// The service's error code, e.g. `NoSuchKey` (None for transport failures).
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AwsError::Unavailable {
                what,
                endpoint,
                attempts,
                last,
            } => write!(
                f,
                "{what}: {endpoint} unavailable after {attempts} attempt(s): {last}"
            ),
            AwsError::Refused {
                what,
                status,
                code,
                message,
            } => write!(f, "{what}: HTTP {status} {code}: {message}"),
            AwsError::BadResponse { what, message } => {
                write!(f, "{what}: unexpected response: {message}")
            }
        }
    }
}

impl std::error::Error for AwsError {}

/// One request, described in canonical form (see [`sigv4::Request`]).
pub struct Call<'a> {
    /// For error messages: operation and target.
    pub what: &'a str,
    pub service: &'a str,
    pub method: &'static str,
    pub endpoint: &'a Endpoint,
    pub path: &'a str,
    pub query: &'a str,
    /// Extra headers, lower-case names; all are signed.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

pub type Response = ureq::http::Response<ureq::Body>;

/// Signs and sends calls for one region and set of credentials.
pub struct AwsHttp {
    agent: ureq::Agent,
    credentials: Option<Credentials>,
    pub region: String,
    pub retry: Retry,
}

impl AwsHttp {
    pub fn new(region: &str, credentials: Option<Credentials>, retry: Retry) -> AwsHttp {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            // A stalled body read fails instead of hanging the source; the object reader resumes.
            .timeout_per_read(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        AwsHttp {
            agent,
            credentials,
            region: region.to_owned(),
            retry,
        }
    }

    /// Sends `call` (re-signed for every try) until it gets a 2xx answer, a non-retryable refusal,
    /// or the tries run out.
    pub fn send(&self, call: &Call<'_>) -> Result<Response, AwsError> {
        let mut last = String::new();
        for attempt in 1..=self.retry.attempts.max(1) {
            if attempt > 1 {
                std::thread::sleep(self.retry.delay(attempt - 1));
            }
            match self.send_once(call) {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let (code, message) = error_details(resp);
                    // 5xx and throttling are the service's momentary trouble; other 4xx are ours.
                    if status >= 500 || status == 429 || code == "SlowDown" || code == "Throttling"
                    {
                        last = format!("HTTP {status} {code}: {message}");
                        continue;
                    }
                    return Err(AwsError::Refused {
                        what: call.what.to_owned(),
                        status,
                        code,
                        message,
                    });
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(AwsError::Unavailable {
            what: call.what.to_owned(),
            endpoint: call.endpoint.to_string(),
            attempts: self.retry.attempts.max(1),
            last,
        })
    }

    fn send_once(&self, call: &Call<'_>) -> Result<Response, ureq::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        let amz_date = format_amz_date(now);
        let payload = sigv4::sha256_hex(call.body);
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(call.headers.len() + 4);
        headers.push(("host", &call.endpoint.authority));
        headers.push(("x-amz-date", &amz_date));
        headers.push(("x-amz-content-sha256", &payload));
        if let Some(token) = self
            .credentials
            .as_ref()
            .and_then(|c| c.session_token.as_deref())
        {
            headers.push(("x-amz-security-token", token));
        }
        headers.extend_from_slice(call.headers);
        let auth = self.credentials.as_ref().map(|c| {
            sigv4::authorization(
                c,
                &sigv4::Scope {
                    amz_date: &amz_date,
                    region: &self.region,
                    service: call.service,
                },
                &sigv4::Request {
                    method: call.method,
                    path: call.path,
                    query: call.query,
                    headers: &headers,
                    payload_sha256: &payload,
                },
            )
        });
        let url = call.endpoint.url(call.path, call.query);
        let mut req = ureq::http::Request::builder().method(call.method).uri(&url);
        // `host` is set by the client from the URL (same value as signed).
        for (n, v) in headers.iter().skip(1) {
            req = req.header(*n, *v);
        }
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let req = req.body(call.body.to_vec()).map_err(ureq::Error::Http)?;
        self.agent.run(req)
    }
}

/// Error code and message from an error body: S3's XML `<Error><Code>`, SQS's JSON `__type`.
fn error_details(resp: Response) -> (String, String) {
    let status = resp.status();
    let mut body = String::new();
    let _ = resp
        .into_body()
        .into_reader()
        .take(64 << 10)
        .read_to_string(&mut body);
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&format!("</{name}>"))? + start;
        Some(body[start..end].trim().to_owned())
    };
    if let (Some(code), msg) = (tag("Code"), tag("Message")) {
        return (code, msg.unwrap_or_default());
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
        let code = v["__type"].as_str().or(v["code"].as_str()).unwrap_or("");
        // "com.amazonaws.sqs#QueueDoesNotExist" → "QueueDoesNotExist"
        let code = code.rsplit('#').next().unwrap_or(code).to_owned();
        let msg = v["message"]
            .as_str()
            .or(v["Message"].as_str())
            .unwrap_or("");
        return (code, msg.to_owned());
    }
    let reason = status.canonical_reason().unwrap_or("error").to_owned();
    let snippet: String = body.chars().take(200).collect();
    (reason, snippet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:5000/").unwrap();
        assert_eq!(e.authority, "127.0.0.1:5000");
        assert_eq!(e.url("/b/k", "x=1"), "http://127.0.0.1:5000/b/k?x=1");
        assert_eq!(
            Endpoint::parse("https://S3.example:443").unwrap().authority,
            "s3.example"
        );
        assert!(Endpoint::parse("127.0.0.1:5000").is_err());
        assert!(Endpoint::parse("http://h/path").is_err());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let r = Retry {
            attempts: 10,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        let d: Vec<u128> = (1..6).map(|i| r.delay(i).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 500, 500]);
    }
}
