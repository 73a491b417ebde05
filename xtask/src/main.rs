//! Ward developer tasks. Run as `cargo xtask <task>`.

mod bench_agent;
mod bench_detect;
mod bench_foundational;
mod bench_lists;
mod bench_logs;
mod bench_store;
mod bench_transport;
mod build_ebpf;
mod certs;
mod cpu;
mod eval;
mod scenarios;
mod up;

use std::path::PathBuf;
use std::process::Command;

use anyhow::bail;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Ward developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Create a development CA, a collector certificate and agent certificates (for mTLS).
    Certs(certs::Args),
    /// Compile the eBPF C programs into the committed object (needs clang-19, llvm-19, libbpf-dev).
    BuildEbpf(build_ebpf::Args),
    /// Run every test of the workspace (eBPF tests need root; under CI=true they fail rather than skip).
    Test {
        /// Extra arguments for `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Self-test: trigger harmless versions of runtime threats on this host and report Ward's findings.
    Scenarios(scenarios::Args),
    /// Run Ward on this host: build, dev certificates, collector and agent over mTLS, findings
    /// printed live; Ctrl-C stops everything (needs root).
    Up(up::Args),
    /// Run benchmarks.
    Bench {
        #[command(subcommand)]
        which: Bench,
    },
    /// Evaluate detections against labelled data.
    Eval {
        #[command(subcommand)]
        which: Eval,
    },
}

#[derive(Subcommand)]
enum Eval {
    /// The labelled corpus (Panther tests, Stratus detonations, GuardDuty tester) through
    /// `ward-collector scan`: TP/FP/TN/FN per finding type; fails on a regression.
    Corpus(eval::Args),
}

#[derive(Subcommand)]
enum Bench {
    /// Agent -> collector transport: events/s over loopback mTLS with acks, collector CPU per 100k events.
    Transport(bench_transport::Args),
    /// Agent overhead and delivery: exec, fork and open storms with and without the agent.
    Agent(bench_agent::Args),
    /// Cloud-log parsing throughput against a Python baseline.
    Logs(bench_logs::Args),
    /// Runtime detection engine: events/s with the full rule catalogue and 100k-entry lists, latency to finding.
    Detect(bench_detect::Args),
    /// Findings store: findings and events written per second, list latency over 1M findings.
    Store(bench_store::Args),
    /// Foundational detections: records/s through cloud-log parsing plus detection, next to parse only.
    Foundational(bench_foundational::Args),
    /// Lists changed through the API: the running detections' rebuild of a 100k-entry list.
    Lists(bench_lists::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Certs(args) => certs::run(args),
        Task::BuildEbpf(args) => build_ebpf::run(args),
        Task::Test { args } => {
            // Integration tests run the real binaries, so build them first.
            cargo(&["build", "--workspace", "--bins"], &[])?;
            cargo(&["test", "--workspace"], &args)
        }
        Task::Scenarios(args) => scenarios::run(args),
        Task::Up(args) => up::run(args),
        Task::Eval {
            which: Eval::Corpus(args),
        } => eval::run(args),
        Task::Bench { which } => match which {
            Bench::Transport(args) => bench_transport::run(args),
            Bench::Agent(args) => bench_agent::run(args),
            Bench::Logs(args) => bench_logs::run(args),
            Bench::Detect(args) => bench_detect::run(args),
            Bench::Store(args) => bench_store::run(args),
            Bench::Foundational(args) => bench_foundational::run(args),
            Bench::Lists(args) => bench_lists::run(args),
        },
    }
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .to_path_buf()
}

/// Where cargo puts build output: `CARGO_TARGET_DIR` when set, else `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// For benchmarks that must measure optimised code: builds xtask in release and runs it again with
/// this process's own arguments plus `--inner`, which each such bench takes as "measure here".
pub fn rerun_in_release() -> anyhow::Result<()> {
    cargo(&["build", "--release", "-p", "xtask"], &[])?;
    let status = Command::new(target_dir().join("release").join("xtask"))
        .args(std::env::args_os().skip(1))
        .arg("--inner")
        .status()?;
    anyhow::ensure!(status.success(), "release bench failed");
    Ok(())
}

pub fn cargo(base: &[&str], extra: &[String]) -> anyhow::Result<()> {
    let status = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args(base)
        .args(extra)
        .status()?;
    if !status.success() {
        bail!("cargo {} failed", base.join(" "));
    }
    Ok(())
}
