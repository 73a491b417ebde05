//! Generates the Rust types and the gRPC client/server of `ward/v1/*.proto`. `protox` parses the
//! .proto files in Rust, so building needs no `protoc` on the machine.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let files = [
        "ward/v1/host.proto",
        "ward/v1/event.proto",
        "ward/v1/ingest.proto",
        "ward/v1/query.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(files, [&root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Payloads stay `bytes::Bytes`: the spool and the collector's log pass them on without copying.
        .bytes(".ward.v1.Batch.payload")
        .compile_fds(fds)?;
    Ok(())
}
