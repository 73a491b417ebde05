//! Ward developer tasks. Run as `cargo xtask <task>`.

mod bench_logs;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Ward developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run benchmarks.
    Bench {
        #[command(subcommand)]
        which: Bench,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// Cloud-log parsing throughput against a Python baseline.
    Logs(bench_logs::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Bench { which } => match which {
            Bench::Logs(args) => bench_logs::run(args),
        },
    }
}
