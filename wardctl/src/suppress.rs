//! `wardctl suppress list|add|delete`: suppression rules (GuardDuty filters with action ARCHIVE).

use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};

use crate::client::{Client, Role, segment};
use crate::print_json_line;
use crate::table::{Table, cell};

#[derive(clap::Subcommand)]
pub enum Command {
    /// List the rules in rank order.
    List,
    /// Create a rule, or replace the rule of that name (admin).
    Add {
        #[arg(long)]
        name: String,
        /// GuardDuty filter criteria as JSON text or a file holding it: {"criterion": {...}} or
        /// the bare criterion map, e.g. '{"type": {"equals": ["Recon:EC2/Portscan"]}}'.
        #[arg(long, value_name = "JSON|FILE")]
        criteria: String,
        #[arg(long)]
        description: Option<String>,
        /// Position among the rules (1 = first).
        #[arg(long)]
        rank: Option<u32>,
        /// ARCHIVE (suppress) or NOOP.
        #[arg(long, default_value = "ARCHIVE")]
        action: String,
    },
    /// Delete a rule (admin).
    Delete { name: String },
}

pub fn run(client: &Client, command: Command, as_json: bool) -> anyhow::Result<ExitCode> {
    match command {
        Command::List => {
            let answer = client.get("/v1/suppression-rules", Role::Read)?;
            let rules = answer["rules"].as_array().cloned().unwrap_or_default();
            if as_json {
                rules.iter().for_each(print_json_line);
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(&["NAME", "RANK", "ACTION", "CRITERIA", "DESCRIPTION"]);
            for r in &rules {
                t.row(vec![
                    cell(r["name"].as_str().unwrap_or("-"), 60),
                    r["rank"].to_string(),
                    r["action"].as_str().unwrap_or("-").to_owned(),
                    cell(&r["findingCriteria"]["criterion"].to_string(), 100),
                    cell(r["description"].as_str().unwrap_or(""), 60),
                ]);
            }
            print!("{}", t.render());
            if rules.is_empty() {
                eprintln!("no suppression rules");
            }
        }
        Command::Add {
            name,
            criteria,
            description,
            rank,
            action,
        } => {
            let criteria = read_criteria(&criteria)?;
            let mut body = json!({"name": name, "action": action.to_ascii_uppercase(), "findingCriteria": criteria});
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            if let Some(r) = rank {
                body["rank"] = json!(r);
            }
            let answer = client.post("/v1/suppression-rules", &body, Role::Admin)?;
            if as_json {
                print_json_line(&answer);
            } else {
                println!(
                    "suppression rule {} saved",
                    answer["name"].as_str().unwrap_or(&name)
                );
            }
        }
        Command::Delete { name } => {
            client.delete(
                &format!("/v1/suppression-rules/{}", segment(&name)),
                Role::Admin,
            )?;
            if as_json {
                print_json_line(&json!({"deleted": name}));
            } else {
                println!("suppression rule {name} deleted");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// JSON text when it starts with `{`, else a file; a bare criterion map is wrapped in
/// `{"criterion": ...}`.
fn read_criteria(arg: &str) -> anyhow::Result<Value> {
    let (text, source) = if arg.trim_start().starts_with('{') {
        (arg.to_owned(), "--criteria".to_owned())
    } else {
        let text = std::fs::read_to_string(arg).with_context(|| format!("--criteria {arg}"))?;
        (text, format!("--criteria {arg}"))
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{source}: line {} column {}: {e}", e.line(), e.column()))?;
    if !value.is_object() {
        anyhow::bail!("{source}: expected a JSON object of criteria");
    }
    if value.get("criterion").is_some() || value.get("Criterion").is_some() {
        Ok(value)
    } else {
        Ok(json!({"criterion": value}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_from_text_or_file_with_the_error_position() {
        let bare = read_criteria(r#"{"type": {"equals": ["X"]}}"#).unwrap();
        assert_eq!(bare, json!({"criterion": {"type": {"equals": ["X"]}}}));
        let wrapped = read_criteria(r#"{"criterion": {}}"#).unwrap();
        assert_eq!(wrapped, json!({"criterion": {}}));
        let path =
            std::env::temp_dir().join(format!("wardctl-criteria-{}.json", std::process::id()));
        std::fs::write(&path, "{\n  \"type\": {\"equals\": [\"X\"]},\n  oops\n}").unwrap();
        let err = read_criteria(path.to_str().unwrap())
            .unwrap_err()
            .to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(
            err.contains(path.to_str().unwrap()) && err.contains("line 3"),
            "{err}"
        );
    }
}
