//! `ward-collector`: receives agent streams and cloud logs, runs detections, emits findings.

use clap::Parser;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use ward_collector::event::{Event, SourceKind};
use ward_collector::logs::args::{LogSourceArgs, S3Args};
use ward_collector::logs::checkpoint::Checkpoint;
use ward_collector::logs::s3::sqs::{SqsClient, SqsSource};
use ward_collector::logs::s3::{S3Location, S3Source};
use ward_collector::logs::scan::{scan_path, summary_line};
use ward_collector::logs::{Counts, Problem, ReadOptions, Sink};
use ward_collector::pipeline::{self, PipelineConfig, hosts::HostBook, state::StoreState};

#[derive(Parser)]
#[command(name = "ward-collector", version, about = "Ward collector")]
enum Cli {
    /// Receive agent event streams (gRPC over mTLS) and store every batch durably, exactly once.
    Serve(Box<ServeArgs>),
    /// Print the wire protocol version this collector speaks.
    Version,
    /// Read cloud-log files or directories once, print findings as JSON lines, then exit.
    /// A summary (records read, skipped, malformed per source) is printed on stderr.
    Scan(Box<ScanArgs>),
    /// Run runtime detections over agent events (`ward-agent watch` JSON lines from a file or -)
    /// and print findings as JSON lines. A summary is printed on stderr.
    Detect(Box<ward_collector::detect::cli::DetectArgs>),
    /// Store crash test writer: commits batches until killed (used by tests/store_crash.rs).
    #[command(hide = true)]
    StoreCrashChild {
        db: PathBuf,
        #[arg(long, default_value_t = 4)]
        threads: usize,
    },
}

#[derive(clap::Args)]
struct ScanArgs {
    #[command(flatten)]
    sources: LogSourceArgs,
    /// How many individual problems (malformed / skipped) to print on stderr before only counting.
    #[arg(long, default_value_t = 100)]
    max_problems: u64,
    /// Only read and count records (no detections, no findings): checks that logs parse, and
    /// measures the readers alone (`cargo xtask bench logs`).
    #[arg(long)]
    parse_only: bool,
    #[command(flatten)]
    detection: ward_collector::foundational::scan::DetectionArgs,
}

/// Runs foundational detections on every record and prints problems.
struct ScanSink {
    printed: u64,
    max_printed: u64,
    stderr: std::io::Stderr,
    /// None with `--parse-only`: records are only counted (by the readers).
    detection: Option<ward_collector::foundational::scan::Detection>,
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
    fn event(&mut self, event: &Event<'_>) {
        if let Some(d) = &mut self.detection {
            d.event(event);
        }
    }
    fn malformed(&mut self, p: &Problem<'_>) {
        self.problem("malformed", p);
    }
    fn skipped(&mut self, p: &Problem<'_>) {
        self.problem("skipped", p);
    }
}

fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let src = &args.sources;
    if src.is_empty() {
        anyhow::bail!("nothing to scan: give --cloudtrail, --vpc-flow and/or --dns");
    }
    let opts = src.read_options().map_err(|e| anyhow::anyhow!(e))?;
    let detection = if args.parse_only {
        None
    } else {
        Some(
            args.detection
                .build(src.s3.region.as_deref())
                .map_err(|e| anyhow::anyhow!(e))?,
        )
    };
    let mut sink = ScanSink {
        printed: 0,
        max_printed: args.max_problems,
        stderr: std::io::stderr(),
        detection,
    };
    let mut totals = Vec::new();
    let mut failed = false;
    let mut s3_locations = Vec::new();
    for (source, paths) in [
        (SourceKind::CloudTrail, &src.cloudtrail),
        (SourceKind::VpcFlow, &src.vpc_flow),
        (SourceKind::Dns, &src.dns),
    ] {
        if paths.is_empty() {
            continue;
        }
        let mut total = Counts::default();
        for p in paths {
            if let Some(url) = p.to_str().filter(|s| s.starts_with("s3://")) {
                let loc = S3Location::parse(url).map_err(|e| anyhow::anyhow!("--{source}: {e}"))?;
                s3_locations.push((source, loc));
                continue;
            }
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
    if !s3_locations.is_empty() {
        failed |= scan_s3(&src.s3, s3_locations, &opts, &mut sink, &mut totals)?;
    } else if src.s3.sqs_queue.is_some() {
        anyhow::bail!("--sqs-queue needs at least one s3:// location to route objects to");
    }
    // Findings go to stdout as JSON lines, the summary to stderr.
    let detected = sink.detection.map(|d| d.finish()).transpose()?;
    eprintln!("{}", summary_line(&totals));
    if let Some((stats, findings, archived)) = detected {
        eprintln!(
            "{}",
            ward_collector::foundational::scan::summary(&stats, findings, archived)
        );
    }
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads the s3:// locations (listing them, or as announced on --sqs-queue) and adds their
/// counts to `totals`. Returns true if a location could not be read completely.
fn scan_s3(
    args: &S3Args,
    locations: Vec<(SourceKind, S3Location)>,
    opts: &ReadOptions,
    sink: &mut ScanSink,
    totals: &mut Vec<(SourceKind, Counts)>,
) -> anyhow::Result<bool> {
    let cfg = args.aws_config().map_err(|e| anyhow::anyhow!(e))?;
    let mut checkpoint = match &args.checkpoint {
        Some(p) => Some(
            Checkpoint::open(p)
                .map_err(|e| anyhow::anyhow!("--checkpoint {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let client = cfg.s3_client();
    let mut add =
        |source: SourceKind, c: Counts| match totals.iter_mut().find(|(s, _)| *s == source) {
            Some((_, t)) => *t += c,
            None => totals.push((source, c)),
        };
    let mut failed = false;
    if let Some(queue) = &args.sqs_queue {
        let sqs = SqsClient::new(&cfg, queue).map_err(|e| anyhow::anyhow!("--sqs-queue: {e}"))?;
        let mut src = SqsSource::new(sqs, client, locations, opts.clone());
        // A one-off scan drains what is queued now rather than waiting for more.
        src.wait_secs = 1;
        loop {
            match src.poll(checkpoint.as_mut(), sink) {
                Ok(p) if p.messages == 0 => break,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("error: sqs {queue}: {e}");
                    failed = true;
                    break;
                }
            }
        }
        for (s, c) in src.totals() {
            add(*s, *c);
        }
    } else {
        for (source, loc) in locations {
            let mut src = S3Source::new(source, loc, opts.clone(), client.clone());
            if let Err(e) = src.poll(checkpoint.as_mut(), sink) {
                eprintln!("error: {source}: {}: {e}", src.location);
                failed = true;
            }
            add(source, src.totals());
        }
    }
    Ok(failed)
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse() {
        Cli::Serve(args) => serve(*args),
        Cli::Version => {
            println!("{}", ward_proto::PROTOCOL_VERSION);
            Ok(ExitCode::SUCCESS)
        }
        Cli::Scan(args) => scan(*args),
        Cli::Detect(args) => ward_collector::detect::cli::run(*args),
        Cli::StoreCrashChild { db, threads } => {
            ward_collector::store::crash_child::run(&db, threads)?;
            Ok(ExitCode::SUCCESS)
        }
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
    /// Detections run on every agent event; these flags build the engines as for `detect`.
    #[command(flatten)]
    engine: ward_collector::detect::cli::EngineArgs,
    /// Where findings go (runtime and cloud-log ones alike).
    #[command(flatten)]
    outputs: ward_collector::outputs::OutputArgs,
    /// Cloud-log sources, read continuously: directories are watched for new files, s3:// prefixes
    /// listed (or read as --sqs-queue announces objects); a checkpoint keeps restarts from reading
    /// an object twice or skipping one.
    #[command(flatten)]
    logs: LogSourceArgs,
    /// Seconds between two passes over the cloud-log sources.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    cloud_poll_secs: f64,
    /// Serve the query API (HTTP/JSON and gRPC, docs/api.md) on ADDR, e.g. 127.0.0.1:8443.
    #[arg(long)]
    api_listen: Option<std::net::SocketAddr>,
    /// Query API bearer tokens: `ROLE SHA256-HEX [NAME]` lines (ROLE read or admin). Without it
    /// (and without --api-client-ca) the API only listens on loopback and every caller is admin.
    #[arg(long)]
    api_tokens: Option<PathBuf>,
    /// Serve the query API over TLS with this certificate (PEM); needs --api-tls-key.
    #[arg(long, requires = "api_tls_key", requires = "api_listen")]
    api_tls_cert: Option<PathBuf>,
    /// The query API's private key (PEM).
    #[arg(long, requires = "api_tls_cert")]
    api_tls_key: Option<PathBuf>,
    /// CA (PEM) of query API client certificates (mTLS): a certificate's role is its SAN URI
    /// ward:role:admin|read, else its subject OU=admin|read. Needs --api-tls-cert.
    #[arg(long, requires = "api_tls_cert")]
    api_client_ca: Option<PathBuf>,
    /// Instances without an agent for correlation's host map (TOML `[[instance]]` tables or a
    /// JSON array: instance_id, private_ips, public_ips, enis, instance_profile_arn, ...).
    #[arg(long, value_name = "FILE")]
    correlate_hosts: Option<PathBuf>,
    /// Where instance metadata answers, for correlation: an agent's connect there is a
    /// credential fetch (default 169.254.169.254:80 and [fd00:ec2::254]:80; tests use loopback).
    #[arg(long, value_name = "IP:PORT")]
    correlate_imds: Vec<std::net::SocketAddr>,
}

/// Hands the store's committed finding changes to the outputs: what goes out is what is stored,
/// after the store's own suppression rules (those added through the API included).
struct Forwarder {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<ward_collector::outputs::Outputs>,
}

impl Forwarder {
    /// Forwards what is committed by now, then returns the outputs.
    fn stop(self) -> ward_collector::outputs::Outputs {
        self.stop.store(true, Relaxed);
        self.thread.join().expect("output forwarder panicked")
    }
}

fn forward_to_outputs(
    store: &ward_collector::store::Store,
    outputs: ward_collector::outputs::Outputs,
) -> anyhow::Result<Forwarder> {
    use tokio::sync::broadcast::error::TryRecvError;
    use ward_collector::outputs::{ChangeKind, FindingChange};
    use ward_collector::store::ChangeKind as Stored;
    let mut changes = store.subscribe();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ward-outputs-feed".into())
        .spawn(move || {
            loop {
                match changes.try_recv() {
                    Ok(c) => outputs.publish(FindingChange {
                        kind: match c.kind {
                            Stored::Created => ChangeKind::Created,
                            // An archived finding is not sent; it cancels a held update.
                            Stored::Updated | Stored::Archived => ChangeKind::Updated,
                            // GuardDuty does not export an unarchive: the finding goes out again
                            // with its next occurrence.
                            Stored::Unarchived => continue,
                        },
                        finding: c.finding,
                    }),
                    Err(TryRecvError::Empty) => {
                        if stopping.load(Relaxed) {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Err(TryRecvError::Lagged(n)) => {
                        tracing::warn!("outputs fell {n} finding changes behind the store");
                    }
                    Err(TryRecvError::Closed) => break,
                }
            }
            outputs
        })?;
    Ok(Forwarder { stop, thread })
}

/// The cloud-log sources of `serve` with the foundational detections, started (None without any).
/// The detections share the runtime engine's lists, suppression rules, account and detector id;
/// their other settings are `scan`'s defaults, their state is kept in the data directory.
fn start_cloud_sources(
    args: &ServeArgs,
    region: &str,
    store: &ward_collector::store::Store,
    live: &Arc<pipeline::live::LiveConfig>,
    correlation: &Arc<pipeline::correlation::CorrelationStage>,
) -> anyhow::Result<Option<pipeline::cloud::CloudHandle>> {
    use clap::Parser;
    use pipeline::cloud::{self, CloudConfig, CloudDetections, Location};
    use ward_collector::foundational::scan::DetectionArgs;
    let logs = &args.logs;
    if logs.is_empty() {
        if logs.s3.sqs_queue.is_some() {
            anyhow::bail!("--sqs-queue needs at least one s3:// location to route objects to");
        }
        return Ok(None);
    }
    let mut sources = Vec::new();
    for (kind, paths) in [
        (SourceKind::CloudTrail, &logs.cloudtrail),
        (SourceKind::VpcFlow, &logs.vpc_flow),
        (SourceKind::Dns, &logs.dns),
    ] {
        for p in paths {
            let location = Location::parse(&p.to_string_lossy())
                .map_err(|e| anyhow::anyhow!("--{kind} {}: {e}", p.display()))?;
            sources.push((kind, location));
        }
    }
    let on_s3 = sources.iter().any(|(_, l)| matches!(l, Location::S3(_)));
    let aws = if on_s3 {
        Some(logs.s3.aws_config().map_err(|e| anyhow::anyhow!(e))?)
    } else {
        None
    };
    let checkpoint = logs
        .s3
        .checkpoint
        .clone()
        .unwrap_or_else(|| args.data_dir.join("cloud-logs.checkpoint"));
    #[derive(Parser)]
    struct Defaults {
        #[command(flatten)]
        detection: DetectionArgs,
    }
    let mut detection = Defaults::try_parse_from(["serve"])?.detection;
    let e = &args.engine;
    detection.lists.clone_from(&e.lists);
    detection.account_id.clone_from(&e.account_id);
    detection.detector_id.clone_from(&e.detector_id);
    // The detectors' state is kept in the store (with the findings and checkpoints it goes
    // with); an earlier version's state file is imported once.
    let legacy_state = args.data_dir.join("foundational-state.json");
    let engine = detection
        .engine(Some(region))
        .map_err(|e| anyhow::anyhow!(e))?;
    let handle = cloud::start(
        CloudConfig {
            sources,
            opts: logs.read_options().map_err(|e| anyhow::anyhow!(e))?,
            aws,
            sqs_queue: logs.s3.sqs_queue.clone(),
            checkpoint,
            poll_every: std::time::Duration::from_secs_f64(args.cloud_poll_secs.max(0.05)),
            settle: std::time::Duration::from_secs(10),
        },
        CloudDetections {
            engine,
            store: store.clone(),
            legacy_state: Some(legacy_state),
            follower: Some(live.follower()),
            correlation: Some(correlation.clone()),
        },
    )?;
    Ok(Some(handle))
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
        let p = p
            .as_ref()
            .with_context(|| format!("--{what} is required without --insecure"))?;
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
    // Findings are filed under --region (the AWS variables' Region without it) unless an agent
    // names its own.
    let region = args
        .logs
        .s3
        .aws_config()
        .map_or_else(|_| "us-east-1".to_string(), |c| c.region);
    let setup = args
        .engine
        .setup(ward_collector::detect::HostIdentity::default(), &region);
    // A bad rule, list or suppression file stops serve before it listens.
    setup.clone().build().map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("--data-dir {}", args.data_dir.display()))?;
    // The findings store (findings, rules, lists, checkpoints) next to the batch log.
    let store_path = args.data_dir.join("ward.db");
    let store = ward_collector::store::Store::open(&store_path, Default::default())
        .with_context(|| format!("opening the findings store {}", store_path.display()))?;
    // Lists and rules: the store is the truth. The --suppression files' rules are installed into
    // it; the list files stay the base every rebuild starts from (pipeline::live).
    let installed = rt.block_on(pipeline::live::install_rule_files(
        &store,
        &args.engine.lists.suppression,
    ))?;
    if installed > 0 {
        eprintln!(
            "ward-collector: {installed} suppression rules from --suppression installed in the store"
        );
    }
    let (file_intel, _) = ward_collector::detect::offline::load_lists(
        &args.engine.lists.threat_lists,
        &args.engine.lists.trusted_lists,
        args.engine.lists.intel_private_addresses,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let changes = Arc::new(pipeline::live::Generation::default());
    let live = pipeline::live::LiveConfig::new(store.clone(), changes.clone(), file_intel);
    let outputs = ward_collector::outputs::start(&args.outputs, &args.data_dir)?;
    let output_metrics = Arc::new(outputs.metrics());
    let forwarder = forward_to_outputs(&store, outputs)?;
    // Correlation: restored from the store (and the batch log) before either path starts.
    let mut correlate = ward_collector::correlate::CorrelateConfig::new(setup.config.scope.clone());
    if !args.correlate_imds.is_empty() {
        correlate
            .activity
            .imds_endpoints
            .clone_from(&args.correlate_imds);
    }
    let correlation = pipeline::correlation::CorrelationStage::open(
        pipeline::correlation::CorrelationConfig {
            correlate,
            hosts_file: args.correlate_hosts.clone(),
            log_path: ingest::log_path(&args.data_dir),
        },
        &store,
    )
    .context("restoring the correlation stage")?;
    let cloud = start_cloud_sources(&args, &region, &store, &live, &correlation)?;
    let hosts = Arc::new(HostBook::open(&args.data_dir.join("hosts.json"))?);
    let book = hosts.clone();
    let stage = correlation.clone();
    let on_hello: ingest::HelloHook = Arc::new(move |agent, host| {
        if let Err(e) = book.record(agent, host.into()) {
            tracing::error!("recording the host of agent {agent:?}: {e}");
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        stage.hello(agent, host, now);
    });
    let api_access = match (&args.api_tokens, &args.api_client_ca) {
        (Some(path), _) => ward_collector::api::Access::load(path).map_err(anyhow::Error::msg)?,
        (None, Some(_)) => ward_collector::api::Access::certificates_only(),
        (None, None) => ward_collector::api::Access::Open,
    };
    let api_tls = match (&args.api_tls_cert, &args.api_tls_key) {
        (Some(cert), Some(key)) => Some(ward_collector::api::ApiTls {
            cert_pem: std::fs::read(cert)
                .with_context(|| format!("--api-tls-cert {}", cert.display()))?,
            key_pem: std::fs::read(key)
                .with_context(|| format!("--api-tls-key {}", key.display()))?,
            client_ca_pem: match &args.api_client_ca {
                Some(ca) => Some(
                    std::fs::read(ca)
                        .with_context(|| format!("--api-client-ca {}", ca.display()))?,
                ),
                None => None,
            },
            // Without tokens a client certificate is the only way in.
            require_client_cert: args.api_tokens.is_none(),
        }),
        _ => None,
    };
    let pipeline_failed = rt.block_on(async {
        let server = ingest::start_hooked(cfg, Some(on_hello)).await?;
        let pipeline = pipeline::start(PipelineConfig {
            setup,
            log_path: ingest::log_path(&args.data_dir),
            committed: server.committed.clone().expect("the default store is a FileLog"),
            hosts,
            state: Box::new(StoreState::new(store.clone())),
            live: Some(live.follower()),
            correlation: Some(correlation.clone()),
        })
        .context("starting the detection pipeline")?;
        let api = match args.api_listen {
            Some(listen) => {
                let scheme = if api_tls.is_some() { "https" } else { "http" };
                let mut metrics: Vec<Arc<dyn ward_collector::api::MetricsSource>> =
                    vec![server.metrics.clone(), pipeline.stats.clone(), output_metrics];
                if let Some(cloud) = &cloud {
                    metrics.push(cloud.stats.clone());
                }
                let api_config = ward_collector::api::ApiConfig {
                    listen,
                    access: api_access,
                    tls: api_tls,
                    metrics,
                    changes,
                };
                let api = ward_collector::api::start(store.clone(), api_config).await?;
                eprintln!("ward-collector: query API on {scheme}://{}", api.addr);
                Some(api)
            }
            None => None,
        };
        // Tests and scripts read the bound address (with --listen ...:0) from this line.
        eprintln!("ward-collector: listening on {}", server.addr);
        if let Some(m) = server.metrics_addr {
            eprintln!("ward-collector: metrics on http://{m}/metrics");
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let pipeline_down = async {
            while !pipeline.is_finished() {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        };
        let failed = tokio::select! {
            r = tokio::signal::ctrl_c() => { r?; false }
            _ = term.recv() => false,
            _ = pipeline_down => true,
        };
        eprintln!("ward-collector: stopping");
        if let Some(api) = api {
            api.shutdown().await?;
        }
        server.shutdown().await?;
        // Ingest has stopped: the pipeline drains what was acknowledged, commits, and ends.
        let stats = pipeline.stats.clone();
        let stopped = tokio::task::spawn_blocking(move || pipeline.stop()).await?;
        eprintln!(
            "ward-collector: pipeline processed {} batches, {} events ({} malformed), {} finding changes",
            stats.batches.load(Relaxed),
            stats.events.load(Relaxed),
            stats.malformed.load(Relaxed),
            stats.finding_changes.load(Relaxed)
        );
        if let Err(e) = stopped {
            eprintln!("ward-collector: detection pipeline: {e}");
            return Ok(true);
        }
        anyhow::Ok(failed)
    })?;
    if let Some(cloud) = cloud {
        let stats = cloud.stats.clone();
        cloud.stop();
        eprintln!(
            "ward-collector: cloud logs: {} objects, {} records ({} malformed, {} skipped)",
            stats.objects.load(Relaxed),
            stats.records.load(Relaxed),
            stats.malformed.load(Relaxed),
            stats.skipped.load(Relaxed)
        );
    }
    // Both producers have stopped: hand the last committed changes on, then deliver what is queued.
    let outputs = forwarder.stop();
    for (name, stats) in outputs.shutdown(std::time::Duration::from_secs(5)) {
        eprintln!("ward-collector: output {name}: {stats:?}");
    }
    Ok(if pipeline_failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
