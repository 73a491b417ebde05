//! Syslog (RFC 5424) over UDP (RFC 5426) or TCP with octet-counted framing (RFC 6587).
//!
//! One message per finding state:
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME ward PROCID finding [ward@32473 id="…" type="…" severity="8"
//!     severityLabel="High" count="3" accountId="…" region="…" instanceId="…"] MSG
//! ```
//!
//! * PRI = facility × 8 + severity, the finding's level mapped to syslog severities: Critical → 2
//!   (crit), High → 3 (err), Medium → 4 (warning), Low → 5 (notice). Facility: `--syslog-facility`
//!   (default `local0`).
//! * TIMESTAMP is when the message was made (UTC, milliseconds); the finding's own times are in
//!   the structured data's finding JSON.
//! * Structured data `ward@32473` (32473 is the enterprise number RFC 5612 reserves for
//!   documentation; Ward has none of its own) carries the fields a syslog router filters on;
//!   `instanceId` only when the finding has one. Values are escaped as RFC 5424 says (`"`, `\`, `]`).
//! * MSG is the finding JSON (or the EventBridge event, per the output's format) by default, or the
//!   finding's title with `--syslog-msg title`. No BOM is written. A UDP datagram larger than
//!   65 000 bytes cannot be sent, so such a finding goes out with its title as MSG instead.
//! * TCP frames are `LEN SP MESSAGE`. The connection is kept and re-made after an error; a
//!   connection the receiver closed is noticed before writing, not after a lost message.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use super::{BodyFormat, Output, SendError};
use crate::findings::time::format_millis;
use crate::findings::{Finding, SeverityLevel};

/// The structured-data id of Ward's element.
pub const SD_ID: &str = "ward@32473";
const MAX_UDP_MESSAGE: usize = 65_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What goes into MSG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MessageContent {
    /// The finding JSON, or its EventBridge event with the `eventbridge` format.
    #[default]
    Json,
    /// The finding's title (its type when it has none).
    Title,
}

/// Facility names and codes of RFC 5424 section 6.2.1.
pub const FACILITIES: [(&str, u8); 24] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("audit", 13),
    ("alert", 14),
    ("clock", 15),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

pub fn facility_code(name: &str) -> Option<u8> {
    FACILITIES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

/// Syslog severity for a finding's level.
pub fn syslog_severity(level: SeverityLevel) -> u8 {
    match level {
        SeverityLevel::Critical => 2,
        SeverityLevel::High => 3,
        SeverityLevel::Medium => 4,
        SeverityLevel::Low => 5,
    }
}

pub struct SyslogConfig {
    pub transport: Transport,
    /// `host:port`.
    pub address: String,
    pub facility: u8,
    pub content: MessageContent,
    pub format: BodyFormat,
}

pub struct Syslog {
    config: SyslogConfig,
    hostname: String,
    procid: String,
    udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
}

impl Syslog {
    /// Checks that the address resolves; connecting waits for the first finding.
    pub fn new(config: SyslogConfig) -> Result<Self, String> {
        resolve(&config.address)?;
        Ok(Self {
            config,
            hostname: hostname(),
            procid: std::process::id().to_string(),
            udp: None,
            tcp: None,
        })
    }

    /// The complete RFC 5424 message for one finding (without TCP framing).
    pub fn message(&self, finding: &Finding, title_only: bool) -> Vec<u8> {
        let pri = u16::from(self.config.facility) * 8
            + u16::from(syslog_severity(finding.severity.level()));
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut out = format!(
            "<{pri}>1 {} {} ward {} finding ",
            format_millis(now_ms),
            self.hostname,
            self.procid
        )
        .into_bytes();
        out.extend_from_slice(structured_data(finding).as_bytes());
        out.push(b' ');
        if title_only || self.config.content == MessageContent::Title {
            let title = if finding.title.is_empty() {
                &finding.finding_type_name
            } else {
                &finding.title
            };
            // MSG is free text, but one message is one line for line-based receivers.
            out.extend_from_slice(title.replace(['\r', '\n'], " ").as_bytes());
        } else {
            out.extend_from_slice(&self.config.format.render(finding));
        }
        out
    }

    fn send_udp(&mut self, finding: &Finding) -> Result<(), SendError> {
        let mut message = self.message(finding, false);
        if message.len() > MAX_UDP_MESSAGE {
            message = self.message(finding, true);
        }
        if self.udp.is_none() {
            let target = resolve(&self.config.address).map_err(SendError::retryable)?;
            let local: SocketAddr = if target.is_ipv4() {
                "0.0.0.0:0".parse().expect("literal")
            } else {
                "[::]:0".parse().expect("literal")
            };
            let socket = UdpSocket::bind(local)
                .and_then(|s| s.connect(target).map(|()| s))
                .map_err(|e| self.error(e))?;
            self.udp = Some(socket);
        }
        let socket = self.udp.as_ref().expect("made above");
        if let Err(e) = socket.send(&message) {
            // An ICMP port-unreachable from an earlier datagram surfaces here; re-make the socket.
            self.udp = None;
            return Err(self.error(e));
        }
        Ok(())
    }

    fn send_tcp(&mut self, finding: &Finding) -> Result<(), SendError> {
        let message = self.message(finding, false);
        let mut frame = format!("{} ", message.len()).into_bytes();
        frame.extend_from_slice(&message);
        if self.tcp.as_ref().is_some_and(peer_closed) {
            self.tcp = None;
        }
        if self.tcp.is_none() {
            let target = resolve(&self.config.address).map_err(SendError::retryable)?;
            let stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))
                .and_then(|s| {
                    s.set_write_timeout(Some(Duration::from_secs(10)))?;
                    s.set_nodelay(true)?;
                    Ok(s)
                })
                .map_err(|e| self.error(e))?;
            self.tcp = Some(stream);
        }
        let stream = self.tcp.as_mut().expect("made above");
        if let Err(e) = stream.write_all(&frame) {
            self.tcp = None;
            return Err(self.error(e));
        }
        Ok(())
    }

    fn error(&self, e: std::io::Error) -> SendError {
        let scheme = match self.config.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        };
        SendError::retryable(format!("syslog {scheme}://{}: {e}", self.config.address))
    }
}

impl Output for Syslog {
    fn send(&mut self, finding: &Finding) -> Result<(), SendError> {
        match self.config.transport {
            Transport::Udp => self.send_udp(finding),
            Transport::Tcp => self.send_tcp(finding),
        }
    }
}

/// `[ward@32473 id="…" …]`.
pub fn structured_data(finding: &Finding) -> String {
    let severity = finding.severity;
    let mut params: Vec<(&str, String)> = vec![
        ("id", finding.id.clone()),
        ("type", finding.finding_type_name.clone()),
        (
            "severity",
            serde_json::to_string(&severity).unwrap_or_default(),
        ),
        ("severityLabel", severity.label().to_owned()),
        ("count", finding.service.count.to_string()),
    ];
    for (name, value) in [
        ("accountId", Some(&finding.account_id)),
        ("region", Some(&finding.region)),
        (
            "instanceId",
            finding
                .resource
                .instance_details
                .as_ref()
                .and_then(|d| d.instance_id.as_ref()),
        ),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            params.push((name, v.clone()));
        }
    }
    let mut out = format!("[{SD_ID}");
    for (name, value) in params {
        out.push(' ');
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            if matches!(c, '"' | '\\' | ']') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push(']');
    out
}

fn resolve(address: &str) -> Result<SocketAddr, String> {
    address
        .to_socket_addrs()
        .map_err(|e| format!("syslog address {address:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("syslog address {address:?} resolves to nothing"))
}

/// Whether the receiver has closed the connection (EOF or error on a non-blocking peek).
fn peer_closed(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let closed = match stream.peek(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    closed || stream.set_nonblocking(false).is_err()
}

/// RFC 5424 HOSTNAME: printable ASCII without spaces, at most 255 characters, `-` if unknown.
fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if clean.is_empty() { "-".into() } else { clean }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Severity;

    #[test]
    fn structured_data_escapes_and_pri_follows_the_level() {
        let mut f = Finding {
            id: "abc".into(),
            finding_type_name: "Execution:Runtime/ReverseShell".into(),
            severity: Severity(8.0),
            title: "shell \"x\"]".into(),
            account_id: "111122223333".into(),
            ..Finding::default()
        };
        f.service.count = 3;
        let sd = structured_data(&f);
        assert_eq!(
            sd,
            r#"[ward@32473 id="abc" type="Execution:Runtime/ReverseShell" severity="8" severityLabel="High" count="3" accountId="111122223333"]"#
        );
        f.finding_type_name = r#"a"b\c]d"#.into();
        assert!(structured_data(&f).contains(r#"type="a\"b\\c\]d""#));
        let s = Syslog::new(SyslogConfig {
            transport: Transport::Udp,
            address: "127.0.0.1:9".into(),
            facility: facility_code("local0").unwrap(),
            content: MessageContent::Title,
            format: BodyFormat::Finding,
        })
        .unwrap();
        let msg = String::from_utf8(s.message(&f, false)).unwrap();
        assert!(
            msg.starts_with("<131>1 "),
            "local0 (16) * 8 + err (3): {msg}"
        );
        assert!(msg.ends_with(r#"] shell "x"]"#), "{msg}");
    }

    #[test]
    fn facilities_cover_rfc_5424() {
        assert_eq!(facility_code("kern"), Some(0));
        assert_eq!(facility_code("authpriv"), Some(10));
        assert_eq!(facility_code("local7"), Some(23));
        assert_eq!(facility_code("nope"), None);
    }
}
