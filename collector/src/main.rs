//! `ward-collector`: receives agent streams and cloud logs, runs detections, emits findings.

use clap::Parser;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use ward_collector::event::flow::FlowFormat;
use ward_collector::event::{Event, SourceKind};
use ward_collector::logs::scan::{scan_path, summary_line};
use ward_collector::logs::{Counts, Limits, Problem, ReadOptions, Sink};

#[derive(Parser)]
#[command(name = "ward-collector", version, about = "Ward collector")]
enum Cli {
    /// Receive agent event streams (gRPC over mTLS) and store every batch durably, exactly once.
    Serve(Box<ServeArgs>),
    /// Print the wire protocol version this collector speaks.
    Version,
    /// Read cloud-log files or directories once, print findings as JSON lines, then exit.
    /// A summary (records read, skipped, malformed per source) is printed on stderr.
    Scan(ScanArgs),
}

#[derive(clap::Args)]
struct ScanArgs {
    /// CloudTrail log file or directory (repeatable).
    #[arg(long = "cloudtrail", value_name = "PATH")]
    cloudtrail: Vec<PathBuf>,
    /// VPC Flow Logs file or directory (repeatable).
    #[arg(long = "vpc-flow", value_name = "PATH")]
    vpc_flow: Vec<PathBuf>,
    /// Route 53 Resolver query-log file or directory (repeatable).
    #[arg(long = "dns", value_name = "PATH")]
    dns: Vec<PathBuf>,
    /// Flow-log format for files without a header line, e.g.
    /// '${version} ${vpc-id} ${srcaddr} ...' or 'version vpc-id srcaddr ...' (default: v2).
    #[arg(long = "vpc-flow-format", value_name = "FORMAT")]
    vpc_flow_format: Option<String>,
    /// Longest accepted line / JSON record in bytes; longer ones are counted as malformed.
    #[arg(long, default_value_t = Limits::default().max_line)]
    max_line_bytes: usize,
    /// Largest whole-document object ({"Records":[...]} or JSON array) in bytes.
    #[arg(long, default_value_t = Limits::default().max_document)]
    max_document_bytes: usize,
    /// How many individual problems (malformed / skipped) to print on stderr before only counting.
    #[arg(long, default_value_t = 100)]
    max_problems: u64,
}

/// Counts events and prints problems. Detections plug in here later; until then no findings.
struct ScanSink {
    printed: u64,
    max_printed: u64,
    stderr: std::io::Stderr,
}

impl ScanSink {
    fn problem(&mut self, kind: &str, p: &Problem<'_>) {
        self.printed += 1;
        if self.printed <= self.max_printed {
            let _ = writeln!(self.stderr.lock(), "{kind}: {p}");
        } else if self.printed == self.max_printed + 1 {
            let _ = writeln!(
                self.stderr.lock(),
                "(further problems are only counted; see --max-problems)"
            );
        }
    }
}

impl Sink for ScanSink {
    fn event(&mut self, _event: &Event<'_>) {}
    fn malformed(&mut self, p: &Problem<'_>) {
        self.problem("malformed", p);
    }
    fn skipped(&mut self, p: &Problem<'_>) {
        self.problem("skipped", p);
    }
}

fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    if args.cloudtrail.is_empty() && args.vpc_flow.is_empty() && args.dns.is_empty() {
        anyhow::bail!("nothing to scan: give --cloudtrail, --vpc-flow and/or --dns");
    }
    let flow_format = match &args.vpc_flow_format {
        Some(f) => {
            Some(FlowFormat::parse(f).map_err(|e| anyhow::anyhow!("--vpc-flow-format: {e}"))?)
        }
        None => None,
    };
    let opts = ReadOptions {
        limits: Limits {
            max_line: args.max_line_bytes,
            max_document: args.max_document_bytes,
        },
        flow_format,
    };
    let mut sink = ScanSink {
        printed: 0,
        max_printed: args.max_problems,
        stderr: std::io::stderr(),
    };
    let mut totals = Vec::new();
    let mut failed = false;
    for (source, paths) in [
        (SourceKind::CloudTrail, &args.cloudtrail),
        (SourceKind::VpcFlow, &args.vpc_flow),
        (SourceKind::Dns, &args.dns),
    ] {
        if paths.is_empty() {
            continue;
        }
        let mut total = Counts::default();
        for p in paths {
            match scan_path(source, p, &opts, &mut sink) {
                Ok(c) => total += c,
                Err(e) => {
                    eprintln!("error: {source}: {}: {e}", p.display());
                    failed = true;
                }
            }
        }
        totals.push((source, total));
    }
    // Findings go to stdout as JSON lines; detections are not wired yet, so there are none.
    std::io::stdout().flush()?;
    eprintln!("{}", summary_line(&totals));
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse() {
        Cli::Serve(args) => serve(*args),
        Cli::Version => {
            println!("{}", ward_proto::PROTOCOL_VERSION);
            Ok(ExitCode::SUCCESS)
        }
        Cli::Scan(args) => scan(args),
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to accept agent streams on.
    #[arg(long, default_value = "0.0.0.0:7443")]
    listen: std::net::SocketAddr,
    /// The collector's certificate (PEM).
    #[arg(long, required_unless_present = "insecure")]
    tls_cert: Option<PathBuf>,
    /// The collector's private key (PEM).
    #[arg(long, required_unless_present = "insecure")]
    tls_key: Option<PathBuf>,
    /// CA (PEM) whose certificates agents must present; an agent's id is its certificate's common name.
    #[arg(long, required_unless_present = "insecure")]
    client_ca: Option<PathBuf>,
    /// Plain-text gRPC without client certificates: agents are identified by what they claim. For local
    /// experiments only.
    #[arg(long)]
    insecure: bool,
    /// Directory of the durable batch log.
    #[arg(long, default_value = "ward-data")]
    data_dir: PathBuf,
    /// Serve Prometheus metrics on http://ADDR/metrics, e.g. 127.0.0.1:9464.
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Largest batch message accepted, in bytes (compressed).
    #[arg(long, default_value_t = ward_collector::ingest::Limits::default().max_message_bytes)]
    max_batch_bytes: usize,
    /// Most events in one batch.
    #[arg(long, default_value_t = ward_collector::ingest::Limits::default().max_batch_events)]
    max_batch_events: u32,
    /// Sustained events per second accepted from one agent (excess is slowed down, not dropped).
    #[arg(long, default_value_t = ward_collector::ingest::Limits::default().events_per_sec)]
    agent_events_per_sec: f64,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    use ward_collector::ingest::{self, Limits, ServeConfig, ServerTls};
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let read = |p: &Option<PathBuf>, what: &str| -> anyhow::Result<Vec<u8>> {
        let p = p.as_ref().with_context(|| format!("--{what} is required without --insecure"))?;
        std::fs::read(p).with_context(|| format!("--{what} {}", p.display()))
    };
    let tls = if args.insecure {
        None
    } else {
        Some(ServerTls {
            cert_pem: read(&args.tls_cert, "tls-cert")?,
            key_pem: read(&args.tls_key, "tls-key")?,
            client_ca_pem: read(&args.client_ca, "client-ca")?,
        })
    };
    let cfg = ServeConfig {
        listen: args.listen,
        tls,
        data_dir: args.data_dir.clone(),
        limits: Limits {
            max_message_bytes: args.max_batch_bytes,
            max_batch_events: args.max_batch_events,
            events_per_sec: args.agent_events_per_sec,
            ..Limits::default()
        },
        metrics_listen: args.metrics_listen,
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.enable_all().build()?;
    rt.block_on(async {
        let server = ingest::start(cfg).await?;
        // Tests and scripts read the bound address (with --listen ...:0) from this line.
        eprintln!("ward-collector: listening on {}", server.addr);
        if let Some(m) = server.metrics_addr {
            eprintln!("ward-collector: metrics on http://{m}/metrics");
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        eprintln!("ward-collector: stopping");
        server.shutdown().await
    })?;
    Ok(ExitCode::SUCCESS)
}
