//! The query API over HTTP: one request helper that turns every failure into a sentence saying what
//! to do (which URL could not be reached, which role a refusal needs).

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
    /// No overall time limit: `tail` reads for as long as the user wants.
    stream_agent: ureq::Agent,
}

/// What a call needs, for the 403 message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Read,
    Admin,
}

/// A client certificate and its key (mTLS): the collector takes the role from the certificate.
pub struct Identity<'a> {
    pub cert: &'a std::path::Path,
    pub key: &'a std::path::Path,
}

fn client_cert(identity: &Identity<'_>) -> anyhow::Result<ClientCert> {
    let (cert_path, key_path) = (identity.cert, identity.key);
    let pem =
        std::fs::read(cert_path).with_context(|| format!("--cert {}", cert_path.display()))?;
    let mut chain: Vec<Certificate<'static>> = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::Certificate(c) =
            item.map_err(|e| anyhow::anyhow!("--cert {}: not PEM: {e}", cert_path.display()))?
        {
            chain.push(c);
        }
    }
    if chain.is_empty() {
        bail!(
            "--cert {}: no CERTIFICATE block in the file",
            cert_path.display()
        );
    }
    let pem = std::fs::read(key_path).with_context(|| format!("--key {}", key_path.display()))?;
    let key = PrivateKey::from_pem(&pem)
        .map_err(|e| anyhow::anyhow!("--key {}: {e}", key_path.display()))?;
    Ok(ClientCert::new_with_certs(&chain, key))
}

impl Client {
    pub fn new(
        server: &str,
        token: Option<String>,
        ca: Option<&std::path::Path>,
        identity: Option<Identity<'_>>,
    ) -> anyhow::Result<Self> {
        let base = server.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!(
                "--server {server:?}: give a URL such as http://127.0.0.1:8443 or https://HOST:PORT"
            );
        }
        let roots = match ca {
            Some(path) => {
                let pem =
                    std::fs::read(path).with_context(|| format!("--ca {}", path.display()))?;
                let mut certs: Vec<Certificate<'static>> = Vec::new();
                for item in ureq::tls::parse_pem(&pem) {
                    if let PemItem::Certificate(c) =
                        item.map_err(|e| anyhow::anyhow!("--ca {}: not PEM: {e}", path.display()))?
                    {
                        certs.push(c);
                    }
                }
                if certs.is_empty() {
                    bail!("--ca {}: no CERTIFICATE block in the file", path.display());
                }
                RootCerts::Specific(Arc::new(certs))
            }
            None => RootCerts::WebPki,
        };
        let cert = match identity {
            Some(identity) => {
                if base.starts_with("http://") {
                    bail!("--cert/--key need an https:// --server (got {server})");
                }
                Some(client_cert(&identity)?)
            }
            None => None,
        };
        let build = |global: Option<Duration>| {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(10)))
                .timeout_global(global)
                .tls_config(
                    TlsConfig::builder()
                        .root_certs(roots.clone())
                        .client_cert(cert.clone())
                        .build(),
                )
                .user_agent(concat!("wardctl/", env!("CARGO_PKG_VERSION")))
                .build()
                .new_agent()
        };
        Ok(Self {
            base,
            token,
            agent: build(Some(Duration::from_secs(60))),
            stream_agent: build(None),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn get(&self, path: &str, role: Role) -> anyhow::Result<Value> {
        self.call("GET", path, None, role)
    }

    pub fn post(&self, path: &str, body: &Value, role: Role) -> anyhow::Result<Value> {
        self.call("POST", path, Some(body), role)
    }

    pub fn delete(&self, path: &str, role: Role) -> anyhow::Result<Value> {
        self.call("DELETE", path, None, role)
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        role: Role,
    ) -> anyhow::Result<Value> {
        let response = self.send(&self.agent, method, path, body)?;
        let status = response.status().as_u16();
        let mut text = String::new();
        response
            .into_body()
            .into_reader()
            .take(256 << 20)
            .read_to_string(&mut text)
            .with_context(|| format!("{method} {}{path}: reading the answer", self.base))?;
        if !(200..300).contains(&status) {
            return Err(self.refusal(method, path, status, &text, role));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{method} {}{path}: HTTP {status} but the body is not JSON: {}",
                self.base,
                clip(&text)
            )
        })
    }

    /// Opens the finding stream; lines are read by the caller.
    pub fn stream(&self, path: &str) -> anyhow::Result<impl std::io::BufRead> {
        let response = self.send(&self.stream_agent, "GET", path, None)?;
        let status = response.status().as_u16();
        if status != 200 {
            let mut text = String::new();
            let _ = response
                .into_body()
                .into_reader()
                .take(64 << 10)
                .read_to_string(&mut text);
            return Err(self.refusal("GET", path, status, &text, Role::Read));
        }
        Ok(std::io::BufReader::new(response.into_body().into_reader()))
    }

    fn send(
        &self,
        agent: &ureq::Agent,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<ureq::http::Response<ureq::Body>> {
        let url = format!("{}{path}", self.base);
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let payload = match body {
            Some(v) => {
                request = request.header("Content-Type", "application/json");
                serde_json::to_vec(v).expect("JSON values serialise")
            }
            None => Vec::new(),
        };
        let request = request
            .body(payload)
            .with_context(|| format!("bad URL {url}"))?;
        agent.run(request).map_err(|e| self.unreachable(&url, e))
    }

    fn unreachable(&self, url: &str, e: ureq::Error) -> anyhow::Error {
        let text = e.to_string();
        let hint = if matches!(&e, ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused)
            || text.contains("onnection refused")
        {
            format!(
                "connection refused at {}: is `ward-collector serve --api-listen ...` running there? \
                 (set --server or WARD_SERVER)",
                self.base
            )
        } else if text.contains("certificate") || text.contains("UnknownIssuer") {
            format!(
                "TLS to {}: {text} (give the server's CA with --ca FILE)",
                self.base
            )
        } else {
            format!("cannot reach {}: {text}", self.base)
        };
        anyhow::anyhow!("{hint}\n  (request: {url})")
    }

    fn refusal(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &str,
        role: Role,
    ) -> anyhow::Error {
        let (code, message) = match serde_json::from_str::<Value>(body) {
            Ok(v) => (
                v["error"]["code"].as_str().unwrap_or("").to_owned(),
                v["error"]["message"].as_str().unwrap_or("").to_owned(),
            ),
            Err(_) => (String::new(), clip(body)),
        };
        let detail = if message.is_empty() {
            String::new()
        } else {
            format!(": {message}")
        };
        let what = format!("{method} {path}");
        match status {
            401 => anyhow::anyhow!(
                "{what}: 401 Unauthenticated{detail}. Give a token of the {} role with --token or \
                 WARD_TOKEN, or a client certificate naming that role with --cert/--key ({}).",
                role_name(role),
                if self.token.is_some() {
                    "the token given is not accepted"
                } else {
                    "no token was given"
                }
            ),
            403 => anyhow::anyhow!(
                "{what}: 403 Forbidden{detail}. This needs the admin role; the token or \
                 certificate given has only the read role."
            ),
            404 => anyhow::anyhow!("{what}: not found{detail}"),
            _ => {
                let code = if code.is_empty() {
                    String::new()
                } else {
                    format!(" {code}")
                };
                anyhow::anyhow!("{what}: HTTP {status}{code}{detail}")
            }
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Read => "read (or admin)",
        Role::Admin => "admin",
    }
}

fn clip(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_owned(),
    }
}

/// Percent-encodes one path segment (finding ids are hex, but rule and list names are free text).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
