//! Command-line configuration of the outputs (flags of `ward-collector serve`) and [`start`], which
//! turns them into running [`Outputs`].
//!
//! `--output KIND[+FORMAT]:TARGET`, repeatable:
//!
//! | spec | output |
//! |---|---|
//! | `stdout` | JSON lines on standard output |
//! | `file:/var/log/ward/findings.jsonl` | JSON lines appended to a file |
//! | `webhook:https://example.com/hook` | HTTP(S) POST per finding |
//! | `syslog:udp://127.0.0.1:514`, `syslog:tcp://logs:601` | RFC 5424 syslog |
//!
//! `+eventbridge` (e.g. `webhook+eventbridge:https://…`) wraps each finding in the EventBridge
//! envelope; `+finding` forces the plain finding; without either, `--output-format` decides.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::jsonl::{FileOutput, StdoutOutput};
use super::syslog::{self, MessageContent, Syslog, SyslogConfig, Transport};
use super::webhook::{Webhook, WebhookConfig};
use super::{BodyFormat, DeadLetter, Output, Outputs, RetryPolicy, WorkerSettings};

/// GuardDuty's shortest publishing frequency. Its default is 6 hours, made for a console people
/// look at daily; an alerting pipeline that sees a reverse shell's finding at 12:00 should learn
/// that it kept going well before 18:00.
pub const DEFAULT_UPDATE_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// The default dead-letter file name inside the collector's data directory.
pub const DEAD_LETTER_FILE: &str = "outputs-dead-letter.jsonl";

#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// Send findings to KIND:TARGET (repeatable): stdout, file:PATH, webhook:URL,
    /// syslog:udp://HOST:PORT, syslog:tcp://HOST:PORT. KIND+eventbridge:TARGET wraps each finding
    /// in the EventBridge "GuardDuty Finding" envelope. Only active (non-archived) findings go out.
    #[arg(long = "output", value_name = "KIND:TARGET", value_parser = OutputTarget::parse)]
    pub outputs: Vec<OutputTarget>,
    /// Body of JSON outputs without a +FORMAT: the finding, or the EventBridge event.
    #[arg(long, value_enum, default_value_t = BodyFormat::Finding)]
    pub output_format: BodyFormat,
    /// At most one update of the same finding per this interval per output, the latest state when
    /// the window opens (GuardDuty's export frequency: 15m, 1h or 6h). New findings go out at once.
    /// Any duration is accepted (e.g. 30s, 0 for every update).
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub output_update_interval: Duration,
    /// Changes queued per output; beyond this they are dropped and counted (detection never waits).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub output_queue: usize,
    /// Tries per finding and output before it goes to the dead-letter file.
    #[arg(long, value_name = "N", default_value_t = RetryPolicy::default().max_attempts)]
    pub output_max_attempts: u32,
    /// First retry delay; doubles per try, with jitter.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_duration)]
    pub output_retry_delay: Duration,
    /// Longest retry delay.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub output_retry_max_delay: Duration,
    /// Where undeliverable findings are written as JSON lines with the error
    /// (default: DATA_DIR/outputs-dead-letter.jsonl).
    #[arg(long, value_name = "PATH")]
    pub output_dead_letter: Option<PathBuf>,
    /// File holding the HMAC-SHA256 key for the X-Ward-Signature header of webhook requests
    /// (surrounding whitespace ignored). Without it, webhook requests are unsigned.
    #[arg(long, value_name = "PATH")]
    pub webhook_secret_file: Option<PathBuf>,
    /// PEM CA certificate(s) to trust for https:// webhooks instead of the system's.
    #[arg(long, value_name = "PATH")]
    pub webhook_ca: Option<PathBuf>,
    /// Time limit of one webhook request.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub webhook_timeout: Duration,
    /// Syslog facility (kern, user, daemon, auth, authpriv, local0 ... local7, ...).
    #[arg(long, value_name = "NAME", default_value = "local0", value_parser = parse_facility)]
    pub syslog_facility: u8,
    /// Syslog MSG: the finding JSON or its title.
    #[arg(long, value_enum, default_value_t = MessageContent::Json)]
    pub syslog_msg: MessageContent,
}

impl OutputArgs {
    /// Parses output flags alone (tests, embedding): `["--output", "stdout", ...]`.
    pub fn parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            outputs: OutputArgs,
        }
        let argv = std::iter::once(std::ffi::OsString::from("outputs"))
            .chain(args.into_iter().map(Into::into));
        <Only as clap::Parser>::try_parse_from(argv).map(|o| o.outputs)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputKind {
    Stdout,
    File(PathBuf),
    Webhook(String),
    Syslog(Transport, String),
}

/// One `--output` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputTarget {
    pub kind: OutputKind,
    /// `+FORMAT` when given.
    pub format: Option<BodyFormat>,
}

impl OutputTarget {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (head, target) = match spec.split_once(':') {
            Some((head, target)) => (head, Some(target)),
            None => (spec, None),
        };
        let (kind, format) = match head.split_once('+') {
            Some((kind, format)) => {
                let format = BodyFormat::parse(format).ok_or_else(|| {
                    format!("{spec:?}: unknown format {format:?} (finding or eventbridge)")
                })?;
                (kind, Some(format))
            }
            None => (head, None),
        };
        let need = |what: &str| {
            target
                .filter(|t| !t.is_empty())
                .ok_or_else(|| format!("{spec:?}: {kind} needs a target: {kind}:{what}"))
        };
        let kind = match kind {
            "stdout" => match target {
                None | Some("") | Some("-") => OutputKind::Stdout,
                Some(t) => return Err(format!("{spec:?}: stdout takes no target, got {t:?}")),
            },
            "file" => OutputKind::File(PathBuf::from(need("PATH")?)),
            "webhook" => {
                let url = need("https://HOST/PATH")?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!(
                        "{spec:?}: the webhook URL must start with http:// or https://"
                    ));
                }
                OutputKind::Webhook(url.to_owned())
            }
            "syslog" => {
                let target = need("udp://HOST:PORT")?;
                let (transport, address) = if let Some(a) = target.strip_prefix("udp://") {
                    (Transport::Udp, a)
                } else if let Some(a) = target.strip_prefix("tcp://") {
                    (Transport::Tcp, a)
                } else {
                    return Err(format!(
                        "{spec:?}: syslog target must be udp://HOST:PORT or tcp://HOST:PORT"
                    ));
                };
                if address
                    .rsplit_once(':')
                    .is_none_or(|(_, p)| p.parse::<u16>().is_err())
                {
                    return Err(format!("{spec:?}: syslog address needs HOST:PORT"));
                }
                OutputKind::Syslog(transport, address.to_owned())
            }
            other => {
                return Err(format!(
                    "{spec:?}: unknown output kind {other:?} (stdout, file, webhook, syslog)"
                ));
            }
        };
        Ok(Self { kind, format })
    }

    /// How logs and metrics name this output: the spec without URL credentials or query.
    pub fn display_name(&self) -> String {
        let format = self
            .format
            .map(|f| format!("+{}", f.name()))
            .unwrap_or_default();
        match &self.kind {
            OutputKind::Stdout => format!("stdout{format}"),
            OutputKind::File(p) => format!("file{format}:{}", p.display()),
            OutputKind::Webhook(url) => format!("webhook{format}:{}", redact_url(url)),
            OutputKind::Syslog(Transport::Udp, a) => format!("syslog{format}:udp://{a}"),
            OutputKind::Syslog(Transport::Tcp, a) => format!("syslog{format}:tcp://{a}"),
        }
    }
}

/// Drops `user:password@` and the query string, which may carry tokens.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let path = match path.split_once('?') {
        Some((p, _)) => format!("{p}?…"),
        None => path.to_owned(),
    };
    format!("{scheme}://{authority}{path}")
}

/// `500ms`, `30s`, `15m`, `1h`, `6h`, `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit, e.g. 30s, 15m, 1h"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a whole number then ms, s, m or h"))?;
    let ms_per_unit = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    n.checked_mul(ms_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?}: too long"))
}

fn parse_facility(name: &str) -> Result<u8, String> {
    syslog::facility_code(name).ok_or_else(|| {
        let names: Vec<&str> = syslog::FACILITIES.iter().map(|(n, _)| *n).collect();
        format!(
            "unknown syslog facility {name:?} (one of {})",
            names.join(", ")
        )
    })
}

/// Builds and starts the outputs `args` name. `data_dir` holds the dead-letter file unless
/// `--output-dead-letter` says otherwise. With no `--output`, the result publishes to nothing.
pub fn start(args: &OutputArgs, data_dir: &Path) -> anyhow::Result<Outputs> {
    if args.output_max_attempts == 0 {
        anyhow::bail!("--output-max-attempts must be at least 1");
    }
    let secret = match &args.webhook_secret_file {
        Some(path) => {
            let text = std::fs::read(path)
                .with_context(|| format!("--webhook-secret-file {}", path.display()))?;
            let key = text.trim_ascii();
            if key.is_empty() {
                anyhow::bail!(
                    "--webhook-secret-file {}: the file is empty",
                    path.display()
                );
            }
            Some(key.to_vec())
        }
        None => None,
    };
    let ca_pem = match &args.webhook_ca {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("--webhook-ca {}", path.display()))?)
        }
        None => None,
    };
    let mut outputs: Vec<(String, Box<dyn Output>)> = Vec::with_capacity(args.outputs.len());
    for target in &args.outputs {
        let name = target.display_name();
        let format = target.format.unwrap_or(args.output_format);
        let output: Box<dyn Output> = match &target.kind {
            OutputKind::Stdout => Box::new(StdoutOutput::new(format)),
            OutputKind::File(path) => Box::new(
                FileOutput::open(path.clone(), format)
                    .with_context(|| format!("--output {name}"))?,
            ),
            OutputKind::Webhook(url) => {
                if secret.is_none() {
                    tracing::warn!(output = %name, "webhook requests are unsigned: no --webhook-secret-file");
                }
                Box::new(
                    Webhook::new(WebhookConfig {
                        url: url.clone(),
                        format,
                        secret: secret.clone(),
                        ca_pem: ca_pem.clone(),
                        timeout: args.webhook_timeout,
                    })
                    .map_err(|e| anyhow::anyhow!("--output {name}: {e}"))?,
                )
            }
            OutputKind::Syslog(transport, address) => Box::new(
                Syslog::new(SyslogConfig {
                    transport: *transport,
                    address: address.clone(),
                    facility: args.syslog_facility,
                    content: args.syslog_msg,
                    format,
                })
                .map_err(|e| anyhow::anyhow!("--output {name}: {e}"))?,
            ),
        };
        outputs.push((name, output));
    }
    let dead_letter = args
        .output_dead_letter
        .clone()
        .unwrap_or_else(|| data_dir.join(DEAD_LETTER_FILE));
    let settings = WorkerSettings {
        queue_capacity: args.output_queue.max(1),
        update_interval: args.output_update_interval,
        retry: RetryPolicy {
            max_attempts: args.output_max_attempts,
            base_delay: args.output_retry_delay,
            max_delay: args.output_retry_max_delay,
        },
    };
    Outputs::spawn(outputs, settings, Arc::new(DeadLetter::new(dead_letter)))
        .context("starting the output threads")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_specs_parse_with_formats_and_refuse_mistakes_with_the_reason() {
        let t = OutputTarget::parse("stdout").unwrap();
        assert_eq!((t.kind, t.format), (OutputKind::Stdout, None));
        let t = OutputTarget::parse("file+eventbridge:/tmp/x.jsonl").unwrap();
        assert_eq!(t.kind, OutputKind::File("/tmp/x.jsonl".into()));
        assert_eq!(t.format, Some(BodyFormat::Eventbridge));
        let t = OutputTarget::parse("webhook:https://u:p@h.example/hook?token=1").unwrap();
        assert_eq!(t.display_name(), "webhook:https://h.example/hook?…");
        let t = OutputTarget::parse("syslog:tcp://127.0.0.1:601").unwrap();
        assert_eq!(
            t.kind,
            OutputKind::Syslog(Transport::Tcp, "127.0.0.1:601".into())
        );
        for (bad, why) in [
            ("pager:x", "unknown output kind"),
            ("file", "needs a target"),
            ("webhook:ftp://x", "http://"),
            ("syslog:127.0.0.1:514", "udp://HOST:PORT"),
            ("syslog:udp://host", "HOST:PORT"),
            ("stdout+xml", "unknown format"),
            ("stdout:/x", "no target"),
        ] {
            let err = OutputTarget::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn durations_take_the_units_guardduty_uses_and_smaller_ones() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(21_600)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("15").unwrap_err().contains("unit"));
        assert!(parse_duration("1d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn flags_have_sane_defaults() {
        let args = OutputArgs::parse_from(["--output", "stdout"]).unwrap();
        assert_eq!(args.output_update_interval, DEFAULT_UPDATE_INTERVAL);
        assert_eq!(args.syslog_facility, 16);
        assert_eq!(args.output_format, BodyFormat::Finding);
        let err = OutputArgs::parse_from(["--syslog-facility", "local9"]).unwrap_err();
        assert!(err.to_string().contains("local7"), "{err}");
    }
}
