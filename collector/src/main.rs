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
        Cli::Version => {
            println!("{}", ward_proto::PROTOCOL_VERSION);
            Ok(ExitCode::SUCCESS)
        }
        Cli::Scan(args) => scan(args),
    }
}
