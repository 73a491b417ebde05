//! `ward-agent`: Ward's per-host sensor.

use std::collections::HashSet;
use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::bail;
use clap::{Parser, Subcommand};
use ward_agent::event::EventType;
use ward_agent::output::{Format, JsonSink};
use ward_agent::sensor::SensorConfig;
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
    /// Print every process event on this host as JSON, one object per line (needs root).
    Watch {
        /// One compact JSON object per line (the default).
        #[arg(long, conflicts_with = "pretty")]
        json: bool,
        /// Indented JSON, for people.
        #[arg(long)]
        pretty: bool,
        /// Comma-separated event types to print: process_exec, process_fork, process_exit.
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        /// Kernel ring buffer size in MiB (a power of two).
        #[arg(long, default_value_t = 16)]
        ring_mib: u32,
        /// Stop after this many seconds instead of waiting for SIGINT/SIGTERM.
        #[arg(long)]
        duration: Option<f64>,
    },
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
        Command::Watch {
            json: _,
            pretty,
            types,
            ring_mib,
            duration,
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
            runtime.block_on(watch::run(opts, sink))
        }
    }
}
