//! `ward-collector`: receives agent streams and cloud logs, runs detections, emits findings.

use clap::Parser;

#[derive(Parser)]
#[command(name = "ward-collector", version, about = "Ward collector")]
enum Cli {
    /// Print the wire protocol version this collector speaks.
    Version,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Version => println!("{}", ward_proto::PROTOCOL_VERSION),
    }
    Ok(())
}
