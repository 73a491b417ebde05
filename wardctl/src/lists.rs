//! `wardctl lists list|add|delete`: threat and trusted lists.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;

use crate::client::{Client, Role, segment};
use crate::print_json_line;
use crate::table::{Table, cell};

#[derive(clap::Subcommand)]
pub enum Command {
    /// List the lists.
    List,
    /// Create a list, or replace the list of that name (admin).
    Add {
        #[arg(long)]
        name: String,
        /// THREAT (matches raise findings) or TRUSTED (matches never do).
        #[arg(long, value_parser = ["THREAT", "TRUSTED", "threat", "trusted"])]
        role: String,
        /// IP or ENTITY (domains).
        #[arg(long, default_value = "IP", value_parser = ["IP", "ENTITY", "ip", "entity"])]
        kind: String,
        /// TXT, STIX, OTX_CSV, ALIEN_VAULT, PROOF_POINT or FIRE_EYE.
        #[arg(long, default_value = "TXT")]
        format: String,
        /// Where the collector reads the list: a path on the collector's host or s3://...
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        location: Option<String>,
        /// A local file whose content is sent with the request.
        #[arg(long, value_name = "PATH")]
        file: Option<std::path::PathBuf>,
    },
    /// Delete a list (admin).
    Delete { name: String },
}

pub fn run(client: &Client, command: Command, as_json: bool) -> anyhow::Result<ExitCode> {
    match command {
        Command::List => {
            let answer = client.get("/v1/lists", Role::Read)?;
            let lists = answer["lists"].as_array().cloned().unwrap_or_default();
            if as_json {
                lists.iter().for_each(print_json_line);
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(&[
                "NAME", "ROLE", "KIND", "FORMAT", "ENTRIES", "REJECTED", "UPDATED", "LOCATION",
            ]);
            for l in &lists {
                let s = |k: &str| cell(l[k].as_str().unwrap_or("-"), 80);
                t.row(vec![
                    s("name"),
                    s("role"),
                    s("kind"),
                    s("format"),
                    l["entries"].to_string(),
                    l["rejectedLines"]
                        .as_array()
                        .map_or(0, Vec::len)
                        .to_string(),
                    s("updatedAt"),
                    s("location"),
                ]);
            }
            print!("{}", t.render());
            if lists.is_empty() {
                eprintln!("no lists");
            }
        }
        Command::Add {
            name,
            role,
            kind,
            format,
            location,
            file,
        } => {
            let mut body = json!({
                "name": name,
                "role": role.to_ascii_uppercase(),
                "kind": kind.to_ascii_uppercase(),
                "format": format.to_ascii_uppercase(),
            });
            match (location, file) {
                (Some(l), _) => body["location"] = json!(l),
                (None, Some(f)) => {
                    let content = std::fs::read_to_string(&f)
                        .with_context(|| format!("--file {}", f.display()))?;
                    body["content"] = json!(content);
                }
                (None, None) => unreachable!("clap requires one"),
            }
            let answer = client.post("/v1/lists", &body, Role::Admin)?;
            if as_json {
                print_json_line(&answer);
            } else {
                println!("list {name} saved: {} entries", answer["entries"]);
                for r in answer["rejectedLines"].as_array().into_iter().flatten() {
                    eprintln!(
                        "  line {} rejected: {}",
                        r["line"],
                        cell(r["message"].as_str().unwrap_or(""), 200)
                    );
                }
            }
        }
        Command::Delete { name } => {
            client.delete(&format!("/v1/lists/{}", segment(&name)), Role::Admin)?;
            if as_json {
                print_json_line(&json!({"deleted": name}));
            } else {
                println!("list {name} deleted");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
