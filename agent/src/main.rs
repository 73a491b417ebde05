//! `ward-agent`: Ward's per-host sensor.

use std::collections::HashSet;
use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::bail;
use clap::{Parser, Subcommand};
use ward_agent::event::EventType;
use ward_agent::output::{Format, JsonSink};
use ward_agent::sensor::{FileWatch, SensorConfig};
use ward_agent::watch::{self, WatchOptions};

#[derive(Parser)]
#[command(
    name = "ward-agent",
    version,
    about = "Ward agent: eBPF runtime sensor for Linux hosts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmark floor: attach the syscall hooks with programs that only count, until SIGINT/SIGTERM or
    /// --duration, then print the counts.
    #[command(hide = true)]
    CountOnly {
        #[arg(long)]
        duration: Option<f64>,
    },
    /// Stream every event on this host to a Ward collector over mTLS gRPC, through a disk spool (needs root).
    Run(Box<RunArgs>),
    /// Print every event on this host as JSON, one object per line (needs root).
    Watch {
        /// One compact JSON object per line (the default).
        #[arg(long, conflicts_with = "pretty")]
        json: bool,
        /// Indented JSON, for people.
        #[arg(long)]
        pretty: bool,
        /// Comma-separated event types to produce (see README); sensors feeding none of them are not
        /// loaded.
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        /// Kernel ring buffer size in MiB (a power of two).
        #[arg(long, default_value_t = 16)]
        ring_mib: u32,
        /// Stop after this many seconds instead of waiting for SIGINT/SIGTERM.
        #[arg(long)]
        duration: Option<f64>,
        #[command(flatten)]
        files: FileArgs,
    },
}

/// The file sensor's in-kernel filters.
#[derive(clap::Args)]
struct FileArgs {
    /// More files or directories (shell globs) whose reads are reported, beside the built-in set.
    #[arg(long = "sensitive", value_name = "GLOB")]
    sensitive: Vec<String>,
    /// Absolute path prefixes whose opens are never reported (dropped in the kernel).
    #[arg(long = "ignore-prefix", value_name = "PREFIX")]
    ignore_prefixes: Vec<String>,
}

impl FileArgs {
    fn watch(self) -> FileWatch {
        let mut watch = FileWatch::default();
        watch.sensitive.extend(self.sensitive);
        watch.ignore_prefixes.extend(self.ignore_prefixes);
        watch
    }
}

fn parse_types(names: &[String]) -> anyhow::Result<Option<HashSet<EventType>>> {
    if names.is_empty() {
        return Ok(None);
    }
    names
        .iter()
        .map(|n| match EventType::parse(n.trim()) {
            Some(t) => Ok(t),
            None => {
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
                bail!(
                    "unknown event type {n:?}; known types: {}",
                    known.join(", ")
                )
            }
        })
        .collect::<anyhow::Result<HashSet<_>>>()
        .map(Some)
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("ward-agent: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CountOnly { duration } => count_only(duration),
        Command::Run(args) => run_transport(*args),
        Command::Watch {
            json: _,
            pretty,
            types,
            ring_mib,
            duration,
            files,
        } => {
            let ring_bytes = ring_mib
                .checked_mul(1 << 20)
                .filter(|b| b.is_power_of_two());
            let Some(ring_bytes) = ring_bytes else {
                bail!("--ring-mib must be a power of two (got {ring_mib})")
            };
            let opts = WatchOptions {
                types: parse_types(&types)?,
                sensor: SensorConfig {
                    ring_bytes,
                    files: files.watch(),
                    ..SensorConfig::default()
                },
                duration: duration.map(Duration::from_secs_f64),
            };
            // One thread runs the pipeline (no cross-thread wake-up per batch); hashing runs on the
            // blocking pool.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let format = if pretty {
                Format::Pretty
            } else {
                Format::JsonLines
            };
            // Straight to fd 1 through a large buffer: std's Stdout would take a lock and scan for newlines
            // on every write.
            let stdout = std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
            let sink = JsonSink::new(std::io::BufWriter::with_capacity(1 << 16, stdout), format);
            let result = runtime.block_on(watch::run(opts, sink));
            // A hash still running belongs to an event already written: do not wait for it.
            runtime.shutdown_timeout(Duration::from_millis(100));
            result
        }
    }
}

/// `ward-agent run`: the `watch` pipeline with the collector transport as its sink.
#[derive(clap::Args)]
struct RunArgs {
    /// Collector URL: https://HOST:PORT (http://HOST:PORT with --insecure).
    #[arg(long)]
    collector: String,
    /// CA certificate (PEM) that signed the collector's certificate.
    #[arg(long, required_unless_present = "insecure")]
    ca: Option<std::path::PathBuf>,
    /// This agent's client certificate (PEM); its common name is the agent id the collector records.
    #[arg(long, required_unless_present = "insecure")]
    cert: Option<std::path::PathBuf>,
    /// This agent's private key (PEM).
    #[arg(long, required_unless_present = "insecure")]
    key: Option<std::path::PathBuf>,
    /// Name to verify in the collector's certificate (default: the URL's host).
    #[arg(long)]
    server_name: Option<String>,
    /// Plain-text gRPC without TLS: events are readable on the network and the collector must trust the
    /// claimed agent id. For local experiments only.
    #[arg(long)]
    insecure: bool,
    /// The agent id announced to the collector (must match the certificate's common name).
    #[arg(long)]
    agent_id: Option<String>,
    /// Directory of the disk spool of unacknowledged batches.
    #[arg(long, default_value = "/var/lib/ward/spool")]
    spool_dir: std::path::PathBuf,
    /// Size limit of the spool in MiB; past it the oldest batches are evicted and reported as event_loss.
    #[arg(long, default_value_t = 512)]
    spool_max_mib: u64,
    /// fsync every spooled batch before counting it as spooled, so the spool also survives a power loss
    /// (two fsyncs per batch). Without it the spool survives collector outages and agent restarts, and
    /// batches a power loss leaves unreadable are reported as event_loss.
    #[arg(long)]
    spool_fsync: bool,
    /// Events per batch, at most (the collector refuses batches over its own limit, 10000 by default).
    #[arg(long, default_value_t = 4096)]
    batch_events: usize,
    /// Longest time an event waits for its batch to fill, in milliseconds.
    #[arg(long, default_value_t = 200)]
    batch_delay_ms: u64,
    /// EC2 instance metadata: `off`, or the IMDS base URL (http://HOST[:PORT]).
    #[arg(long, default_value = ward_agent::transport::imds::EC2_ENDPOINT)]
    imds: String,
    /// Timeout for all instance-metadata requests together, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    imds_timeout_ms: u64,
    /// Instance id to report when IMDS is off or unreachable.
    #[arg(long, default_value = "")]
    instance_id: String,
    /// Region to report when IMDS is off or unreachable.
    #[arg(long, default_value = "")]
    region: String,
    /// Account id to report when IMDS is off or unreachable.
    #[arg(long, default_value = "")]
    account_id: String,
    /// Private IP to report when IMDS is off or unreachable (repeatable).
    #[arg(long = "private-ip")]
    private_ips: Vec<String>,
    /// Kubernetes node name (default: $NODE_NAME when set).
    #[arg(long, default_value = "")]
    kubernetes_node: String,
    /// Serve Prometheus metrics on http://ADDR/metrics, e.g. 127.0.0.1:9465.
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
    /// After stopping, how long to keep delivering spooled batches, in seconds.
    #[arg(long, default_value_t = 5.0)]
    drain_secs: f64,
    /// Comma-separated event types to send (all by default).
    #[arg(long, value_delimiter = ',')]
    types: Vec<String>,
    /// Kernel ring buffer size in MiB (a power of two).
    #[arg(long, default_value_t = 16)]
    ring_mib: u32,
    /// Stop after this many seconds instead of waiting for SIGINT/SIGTERM.
    #[arg(long)]
    duration: Option<f64>,
}

fn run_transport(args: RunArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    use ward_agent::transport::{self, ClientTls, TransportConfig, identity, imds::ImdsEndpoint};
    let ring_bytes = args
        .ring_mib
        .checked_mul(1 << 20)
        .filter(|b| b.is_power_of_two());
    let Some(ring_bytes) = ring_bytes else {
        bail!("--ring-mib must be a power of two (got {})", args.ring_mib)
    };
    let read = |p: &Option<std::path::PathBuf>, what: &str| -> anyhow::Result<Vec<u8>> {
        let p = p
            .as_ref()
            .with_context(|| format!("--{what} is required without --insecure"))?;
        std::fs::read(p).with_context(|| format!("--{what} {}", p.display()))
    };
    let tls = if args.insecure {
        tracing::warn!(
            "--insecure: events go to the collector in plain text, without authentication"
        );
        eprintln!("ward-agent: warning: --insecure: plain text, no authentication");
        None
    } else {
        Some(ClientTls {
            ca_pem: read(&args.ca, "ca")?,
            cert_pem: read(&args.cert, "cert")?,
            key_pem: read(&args.key, "key")?,
            server_name: args.server_name.clone(),
        })
    };
    let imds = ImdsEndpoint::parse(&args.imds)?;
    let agent_id = args.agent_id.clone().unwrap_or_else(identity::hostname);
    let configured = identity::ConfiguredIdentity {
        instance_id: args.instance_id.clone(),
        region: args.region.clone(),
        account_id: args.account_id.clone(),
        private_ips: args.private_ips.clone(),
        kubernetes_node: args.kubernetes_node.clone(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let host = runtime.block_on(identity::resolve(
        &agent_id,
        &imds,
        Duration::from_millis(args.imds_timeout_ms),
        &configured,
    ));
    let mut cfg = TransportConfig::new(args.collector.clone(), tls, host, args.spool_dir.clone());
    cfg.spool.max_bytes = args.spool_max_mib << 20;
    cfg.spool.max_memory = cfg.spool.max_memory.min(cfg.spool.max_bytes);
    cfg.max_batch_events = args.batch_events.max(1);
    if args.spool_fsync {
        cfg.spool_sync = transport::SpoolSync::Always;
    }
    cfg.max_batch_delay = Duration::from_millis(args.batch_delay_ms);
    cfg.metrics_addr = args.metrics_listen;
    cfg.drain_timeout = Duration::from_secs_f64(args.drain_secs);
    let (sink, handle) = transport::start(cfg)?;
    if let Some(addr) = handle.metrics_addr {
        eprintln!("ward-agent: metrics on http://{addr}/metrics");
    }
    let opts = WatchOptions {
        types: parse_types(&args.types)?,
        sensor: SensorConfig {
            ring_bytes,
            ..SensorConfig::default()
        },
        duration: args.duration.map(Duration::from_secs_f64),
    };
    let piped = runtime.block_on(watch::run(opts, sink));
    runtime.shutdown_timeout(Duration::from_millis(100));
    // The sink was dropped with the pipeline: the transport seals the last batch and drains.
    let sent = handle.join();
    piped?;
    sent
}

fn count_only(duration: Option<f64>) -> anyhow::Result<()> {
    let floor = ward_agent::sensor::CountOnly::load()?;
    eprintln!("ward-agent: ready: count-only floor attached");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let wait = tokio::time::sleep(duration.map_or(Duration::MAX / 4, Duration::from_secs_f64));
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            _ = wait => {}
        }
        anyhow::Ok(())
    })?;
    let [enter, exit] = floor.counts()?;
    eprintln!(
        "ward-agent: stopped: count-only floor counted {enter} syscall entries, {exit} exits"
    );
    Ok(())
}
