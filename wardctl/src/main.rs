//! `wardctl`: findings, suppression rules, threat/trusted lists and live findings from a Ward
//! collector's query API (`docs/api.md`). Tables for people, `--json` for scripts.

mod client;
mod findings;
mod lists;
mod suppress;
mod table;
mod tail;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use client::Client;

/// Where `ward-collector serve --api-listen 127.0.0.1:8443` (its help's example) serves when
/// neither --server nor WARD_SERVER says otherwise.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8443";

#[derive(Parser)]
#[command(
    name = "wardctl",
    version,
    about = "Query and manage a Ward collector's findings"
)]
struct Cli {
    /// The collector's API URL.
    #[arg(long, global = true, env = "WARD_SERVER", default_value = DEFAULT_SERVER)]
    server: String,
    /// API token (role read or admin).
    #[arg(long, global = true, env = "WARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM CA certificate to trust for an https:// server.
    #[arg(long, global = true, value_name = "FILE", env = "WARD_CA")]
    ca: Option<PathBuf>,
    /// PEM client certificate for mTLS (its role: SAN URI ward:role:admin|read or OU=admin|read).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "WARD_CERT",
        requires = "key"
    )]
    cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "WARD_KEY",
        requires = "cert"
    )]
    key: Option<PathBuf>,
    /// Machine-readable output: JSON (one object per line for lists and tail).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List, show, archive and unarchive findings.
    #[command(subcommand)]
    Findings(findings::Command),
    /// Suppression rules: findings matching them are archived as they are stored.
    #[command(subcommand)]
    Suppress(suppress::Command),
    /// Threat and trusted lists (IPs, domains).
    #[command(subcommand)]
    Lists(lists::Command),
    /// Print findings live as they are created, updated, archived or unarchived.
    Tail(tail::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let identity = match (&cli.cert, &cli.key) {
        (Some(cert), Some(key)) => Some(client::Identity { cert, key }),
        _ => None,
    };
    let result = Client::new(&cli.server, cli.token.clone(), cli.ca.as_deref(), identity).and_then(
        |client| match cli.command {
            Command::Findings(c) => findings::run(&client, c, cli.json),
            Command::Suppress(c) => suppress::run(&client, c, cli.json),
            Command::Lists(c) => lists::run(&client, c, cli.json),
            Command::Tail(a) => tail::run(&client, a, cli.json),
        },
    );
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wardctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints one JSON value per line.
pub fn print_json_line(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string(value).expect("JSON values serialise")
    );
}
