//! `cargo xtask certs`: a development CA, a collector certificate and agent certificates (rcgen), for
//! running `ward-collector serve` and `ward-agent run` with mTLS locally.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Output directory.
    #[arg(long, default_value = "certs")]
    out: PathBuf,
    /// Agent ids to issue client certificates for (the certificate's common name), repeatable.
    #[arg(long = "agent", default_values_t = [String::from("dev-agent")])]
    agents: Vec<String>,
    /// DNS names and IP addresses the collector certificate is valid for, repeatable.
    #[arg(long = "server-name", default_values_t = [String::from("localhost"), String::from("127.0.0.1"), String::from("::1")])]
    server_names: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let names: Vec<&str> = args.server_names.iter().map(String::as_str).collect();
    let agents: Vec<&str> = args.agents.iter().map(String::as_str).collect();
    ward_collector::ingest::devcerts::write_dev_pki(&args.out, &names, &agents)?;
    let d = args.out.display();
    println!(
        "wrote {d}/ca.pem, {d}/collector.pem (+ keys) and agent certificates for: {}",
        agents.join(", ")
    );
    println!(
        "  ward-collector serve --tls-cert {d}/collector.pem --tls-key {d}/collector-key.pem --client-ca {d}/ca.pem"
    );
    if let Some(a) = agents.first() {
        println!(
            "  ward-agent run --collector https://localhost:7443 --ca {d}/ca.pem --cert {d}/{a}.pem --key {d}/{a}-key.pem --agent-id {a} --imds off"
        );
    }
    Ok(())
}
