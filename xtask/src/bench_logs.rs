//! `cargo xtask bench logs`: cloud-log parse throughput (owned by the log-ingestion work).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("bench logs is not implemented yet")
}
