//! Generic webhook: one HTTP(S) POST per finding state, JSON body, signed with HMAC-SHA256.
//!
//! Headers on every request:
//! * `Content-Type: application/json`
//! * `X-Ward-Delivery`: the same id for the same finding state (the EventBridge event id), so a
//!   receiver can drop duplicates after a retry whose first try did arrive;
//! * with a secret (`--webhook-secret-file`): `X-Ward-Timestamp: <unix seconds>` and
//!   `X-Ward-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
//!
//! A receiver verifies by recomputing the HMAC over the timestamp header, a `.`, and the raw body
//! bytes as received, comparing in constant time, and refusing timestamps more than a few minutes
//! from its clock (replay); [`verify`] does exactly that.
//!
//! 2xx is delivered. 408, 429, 5xx, timeouts and connection failures are retried; any other answer
//! (4xx, a redirect: redirects are not followed) means this body will never be accepted, so it goes
//! to the dead-letter file at once. HTTPS uses the given CA (`--webhook-ca`), else the system's
//! CA bundle (`SSL_CERT_FILE` or the usual Debian/RHEL/Alpine paths), else Mozilla's roots.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use super::{BodyFormat, Output, SendError};
use crate::findings::{EventBridgeEvent, Finding};

pub const DELIVERY_HEADER: &str = "X-Ward-Delivery";
pub const TIMESTAMP_HEADER: &str = "X-Ward-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Ward-Signature";
const SIGNATURE_PREFIX: &str = "sha256=";

/// System CA bundles, tried in order when no CA is given.
const SYSTEM_CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// `sha256=<hex>` over `timestamp + "." + body`.
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mac = signing_mac(secret, timestamp, body);
    format!("{SIGNATURE_PREFIX}{:x}", mac.finalize().into_bytes())
}

/// Checks a delivery the way a receiver should: the signature matches (constant-time) and the
/// timestamp is within `tolerance` of `now_secs`.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    signature_header: &str,
    now_secs: u64,
    tolerance: Duration,
) -> bool {
    let Ok(sent) = timestamp.parse::<u64>() else {
        return false;
    };
    if sent.abs_diff(now_secs) > tolerance.as_secs() {
        return false;
    }
    let Some(hex) = signature_header.strip_prefix(SIGNATURE_PREFIX) else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    signing_mac(secret, timestamp, body)
        .verify_slice(&expected)
        .is_ok()
}

fn signing_mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

pub struct WebhookConfig {
    pub url: String,
    pub format: BodyFormat,
    /// HMAC key; without one, requests carry no signature.
    pub secret: Option<Vec<u8>>,
    /// PEM certificates to trust instead of the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// Whole-request time limit.
    pub timeout: Duration,
}

pub struct Webhook {
    agent: ureq::Agent,
    url: String,
    format: BodyFormat,
    secret: Option<Vec<u8>>,
}

impl Webhook {
    pub fn new(config: WebhookConfig) -> Result<Self, String> {
        let url = config.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "webhook URL {url:?} must start with http:// or https://"
            ));
        }
        let roots = match &config.ca_pem {
            Some(pem) => certificates(pem).map_err(|e| format!("--webhook-ca: {e}"))?,
            None => system_roots(),
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_connect(Some(config.timeout.min(Duration::from_secs(10))))
            .timeout_global(Some(config.timeout))
            .user_agent(concat!("ward-collector/", env!("CARGO_PKG_VERSION")))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .new_agent();
        Ok(Self {
            agent,
            url,
            format: config.format,
            secret: config.secret,
        })
    }
}

impl Output for Webhook {
    fn send(&mut self, finding: &Finding) -> Result<(), SendError> {
        let body = self.format.render(finding);
        let delivery = EventBridgeEvent::for_finding(finding.clone()).id;
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header(DELIVERY_HEADER, &delivery);
        if let Some(secret) = &self.secret {
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
                .to_string();
            let sig = signature(secret, &timestamp, &body);
            request = request
                .header(TIMESTAMP_HEADER, &timestamp)
                .header(SIGNATURE_HEADER, &sig);
        }
        let response = request
            .send(&body[..])
            .map_err(|e| SendError::retryable(format!("POST {}: {e}", self.url)))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let mut text = String::new();
        let _ = response
            .into_body()
            .into_reader()
            .take(512)
            .read_to_string(&mut text);
        let message = format!("POST {}: HTTP {status}: {}", self.url, text.trim());
        if status == 408 || status == 429 || status >= 500 {
            Err(SendError::retryable(message))
        } else {
            Err(SendError::permanent(message))
        }
    }
}

fn certificates(pem: &[u8]) -> Result<RootCerts, String> {
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("not PEM: {e}")),
        }
    }
    if certs.is_empty() {
        return Err("no CERTIFICATE block in the file".into());
    }
    Ok(RootCerts::Specific(Arc::new(certs)))
}

fn system_roots() -> RootCerts {
    let from_env = std::env::var_os("SSL_CERT_FILE");
    let candidates = from_env
        .iter()
        .map(Path::new)
        .chain(SYSTEM_CA_BUNDLES.iter().map(Path::new));
    for path in candidates {
        if let Ok(pem) = std::fs::read(path)
            && let Ok(roots) = certificates(&pem)
        {
            return roots;
        }
    }
    RootCerts::WebPki
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_and_rejects_tampering_and_stale_timestamps() {
        let secret = b"s3cret";
        let body = br#"{"id":"abc"}"#;
        let sig = signature(secret, "1700000000", body);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64, "{sig}");
        let five_min = Duration::from_secs(300);
        assert!(verify(
            secret,
            "1700000000",
            body,
            &sig,
            1_700_000_100,
            five_min
        ));
        assert!(!verify(
            secret,
            "1700000000",
            br#"{"id":"abd"}"#,
            &sig,
            1_700_000_100,
            five_min
        ));
        assert!(!verify(
            b"other",
            "1700000000",
            body,
            &sig,
            1_700_000_100,
            five_min
        ));
        assert!(!verify(
            secret,
            "1700000001",
            body,
            &sig,
            1_700_000_100,
            five_min
        ));
        assert!(!verify(
            secret,
            "1700000000",
            body,
            &sig,
            1_700_000_400,
            five_min
        ));
        assert!(!verify(
            secret,
            "1700000000",
            body,
            &sig[7..],
            1_700_000_100,
            five_min
        ));
    }

    #[test]
    fn signature_is_the_hmac_of_timestamp_dot_body() {
        // The HMAC itself against RFC 4231 test case 2 (key "Jefe")...
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            format!("{:x}", mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // ...and the signed bytes are exactly timestamp, '.', body (value from Python's hmac module:
        // hmac.new(b"Jefe", b'1700000000.{"a":1}', hashlib.sha256), as in the README's receiver).
        assert_eq!(
            signature(b"Jefe", "1700000000", br#"{"a":1}"#),
            "sha256=fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a"
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1700000000.{\"a\":1}");
        assert_eq!(
            format!("sha256={:x}", mac.finalize().into_bytes()),
            signature(b"Jefe", "1700000000", br#"{"a":1}"#)
        );
    }

    #[test]
    fn bad_urls_and_ca_files_are_refused_with_a_reason() {
        let config = |url: &str, ca: Option<&[u8]>| WebhookConfig {
            url: url.into(),
            format: BodyFormat::Finding,
            secret: None,
            ca_pem: ca.map(|c| c.to_vec()),
            timeout: Duration::from_secs(1),
        };
        let err = Webhook::new(config("ftp://x", None)).err().unwrap();
        assert!(err.contains("http://"), "{err}");
        let err = Webhook::new(config("https://127.0.0.1/", Some(b"hello")))
            .err()
            .unwrap();
        assert!(
            err.contains("--webhook-ca") && err.contains("CERTIFICATE"),
            "{err}"
        );
    }
}
