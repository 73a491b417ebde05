//! `wardctl findings list|get|archive|unarchive`.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::{Map, Value, json};

use crate::client::{Client, Role, segment};
use crate::print_json_line;
use crate::table::{Table, cell, severity_label};

/// GuardDuty's limit of finding ids per archive/unarchive call.
const IDS_PER_CALL: usize = 50;

#[derive(clap::Subcommand)]
pub enum Command {
    /// List findings (active ones unless --archived or --all), newest update first.
    List(ListArgs),
    /// Show one finding with its process tree, history and the events that caused it.
    Get { id: String },
    /// Archive findings (admin).
    Archive {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Unarchive findings (admin).
    Unarchive {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Only this finding type (repeatable), e.g. Execution:Runtime/ReverseShell.
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// Lowest severity: a number (1-10) or low, medium, high, critical.
    #[arg(long, value_name = "N", value_parser = parse_severity)]
    severity_min: Option<f64>,
    /// Only archived findings.
    #[arg(long, conflicts_with = "all")]
    archived: bool,
    /// Active and archived findings.
    #[arg(long)]
    all: bool,
    /// Only findings about this EC2 instance.
    #[arg(long, value_name = "INSTANCE_ID")]
    instance: Option<String>,
    /// Most findings to print.
    #[arg(long, value_name = "N", default_value_t = 50)]
    limit: usize,
    /// Sort by updatedAt, createdAt, severity, type, count or id.
    #[arg(long, value_name = "FIELD", default_value = "updatedAt")]
    sort: String,
    /// Ascending instead of descending.
    #[arg(long)]
    asc: bool,
}

fn parse_severity(text: &str) -> Result<f64, String> {
    match text.to_ascii_lowercase().as_str() {
        "low" => Ok(1.0),
        "medium" => Ok(4.0),
        "high" => Ok(7.0),
        "critical" => Ok(9.0),
        other => other
            .parse::<f64>()
            .ok()
            .filter(|n| (0.0..=10.0).contains(n))
            .ok_or_else(|| {
                format!("{text:?}: a number from 1 to 10, or low, medium, high, critical")
            }),
    }
}

/// The `findingCriteria` the list flags mean.
fn criteria(args: &ListArgs) -> Value {
    let mut criterion = Map::new();
    if !args.all {
        criterion.insert(
            "service.archived".into(),
            json!({"equals": [args.archived.to_string()]}),
        );
    }
    if !args.types.is_empty() {
        criterion.insert("type".into(), json!({"equals": args.types}));
    }
    if let Some(min) = args.severity_min {
        criterion.insert("severity".into(), json!({"greaterThanOrEqual": min}));
    }
    if let Some(instance) = &args.instance {
        criterion.insert(
            "resource.instanceDetails.instanceId".into(),
            json!({"equals": [instance]}),
        );
    }
    json!({"criterion": criterion})
}

pub fn run(client: &Client, command: Command, as_json: bool) -> anyhow::Result<ExitCode> {
    match command {
        Command::List(args) => list(client, &args, as_json),
        Command::Get { id } => get(client, &id, as_json),
        Command::Archive { ids } => change(client, "archive", &ids, as_json),
        Command::Unarchive { ids } => change(client, "unarchive", &ids, as_json),
    }
}

fn list(client: &Client, args: &ListArgs, as_json: bool) -> anyhow::Result<ExitCode> {
    let mut findings: Vec<Value> = Vec::new();
    let mut next: Value = Value::Null;
    let criteria = criteria(args);
    while findings.len() < args.limit {
        let page = (args.limit - findings.len()).min(1000);
        let body = json!({
            "findingCriteria": criteria,
            "sortCriteria": {"attributeName": args.sort, "orderBy": if args.asc { "ASC" } else { "DESC" }},
            "maxResults": page,
            "nextToken": next,
        });
        let answer = client.post("/v1/findings/list", &body, Role::Read)?;
        let Some(got) = answer["findings"].as_array() else {
            bail!("POST /v1/findings/list: the answer has no findings array");
        };
        findings.extend(got.iter().take(args.limit - findings.len()).cloned());
        next = answer["nextToken"].clone();
        if next.is_null() || got.is_empty() {
            break;
        }
    }
    if as_json {
        findings.iter().for_each(print_json_line);
    } else {
        print!("{}", findings_table(&findings));
        if findings.is_empty() {
            eprintln!("no findings match");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `High 8.0`.
pub fn severity_cell(finding: &Value) -> String {
    match finding["severity"].as_f64() {
        Some(s) => format!("{} {s:.1}", severity_label(s)),
        None => "-".into(),
    }
}

/// The instance, container or resource type a finding is about.
pub fn resource_cell(finding: &Value) -> String {
    let r = &finding["resource"];
    if let Some(i) = r["instanceDetails"]["instanceId"].as_str() {
        return i.to_owned();
    }
    if let Some(c) = r["containerDetails"]["name"].as_str() {
        return format!("container {c}");
    }
    r["resourceType"].as_str().unwrap_or("-").to_owned()
}

fn findings_table(findings: &[Value]) -> String {
    let mut t = Table::new(&[
        "ID", "SEVERITY", "TYPE", "RESOURCE", "COUNT", "UPDATED", "TITLE",
    ]);
    for f in findings {
        let text = |key: &str| f[key].as_str().unwrap_or("-").to_owned();
        let archived = if f["service"]["archived"] == true {
            " (archived)"
        } else {
            ""
        };
        t.row(vec![
            text("id"),
            severity_cell(f),
            cell(&text("type"), 60),
            cell(&resource_cell(f), 40),
            f["service"]["count"].as_u64().unwrap_or(0).to_string(),
            text("updatedAt"),
            format!("{}{archived}", cell(&text("title"), 80)),
        ]);
    }
    t.render()
}

fn get(client: &Client, id: &str, as_json: bool) -> anyhow::Result<ExitCode> {
    let answer = client.get(&format!("/v1/findings/{}", segment(id)), Role::Read)?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let f = &answer["finding"];
    let s = |v: &Value| cell(v.as_str().unwrap_or("-"), 200);
    let mut t = Table::new(&["FIELD", "VALUE"]);
    for (name, value) in [
        ("id", s(&f["id"])),
        ("type", s(&f["type"])),
        ("severity", severity_cell(f)),
        ("title", s(&f["title"])),
        ("resource", resource_cell(f)),
        (
            "account / region",
            format!("{} / {}", s(&f["accountId"]), s(&f["region"])),
        ),
        ("count", f["service"]["count"].to_string()),
        ("first seen", s(&f["service"]["eventFirstSeen"])),
        ("last seen", s(&f["service"]["eventLastSeen"])),
        (
            "created / updated",
            format!("{} / {}", s(&f["createdAt"]), s(&f["updatedAt"])),
        ),
        ("archived", f["service"]["archived"].to_string()),
    ] {
        t.row(vec![name.to_owned(), value]);
    }
    print!("{}", t.render());
    if let Some(d) = f["description"].as_str() {
        println!("\n{}", cell(d, 1000));
    }
    if let Some(tree) = answer["processTree"].as_array().filter(|t| !t.is_empty()) {
        println!("\nProcess tree (root first):");
        for (depth, node) in tree.iter().enumerate() {
            println!(
                "{}{} pid {} {}{}",
                "  ".repeat(depth),
                cell(node["name"].as_str().unwrap_or("?"), 60),
                node["pid"],
                cell(node["executablePath"].as_str().unwrap_or(""), 120),
                node["user"]
                    .as_str()
                    .map(|u| format!(" user {}", cell(u, 40)))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(history) = answer["history"].as_array().filter(|h| !h.is_empty()) {
        println!("\nHistory:");
        let mut t = Table::new(&["VERSION", "UPDATED", "COUNT", "ARCHIVED"]);
        for h in history {
            t.row(vec![
                h["version"].to_string(),
                s(&h["updatedAt"]),
                h["count"].to_string(),
                h["archived"].to_string(),
            ]);
        }
        print!("{}", t.render());
    }
    if let Some(events) = answer["events"].as_array().filter(|e| !e.is_empty()) {
        println!("\nEvents ({}):", events.len());
        let mut t = Table::new(&["TIME", "SOURCE", "PID", "TYPE"]);
        for e in events {
            let kind = e["event"]["type"]
                .as_str()
                .or_else(|| e["event"]["eventName"].as_str())
                .unwrap_or("-");
            t.row(vec![
                s(&e["time"]),
                s(&e["source"]),
                e["pid"].to_string(),
                cell(kind, 60),
            ]);
        }
        print!("{}", t.render());
    }
    Ok(ExitCode::SUCCESS)
}

fn change(
    client: &Client,
    action: &str,
    ids: &[String],
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let mut changed = Vec::new();
    let mut unchanged = Vec::new();
    let mut unknown = Vec::new();
    for chunk in ids.chunks(IDS_PER_CALL) {
        let answer = client.post(
            &format!("/v1/findings/{action}"),
            &json!({"findingIds": chunk}),
            Role::Admin,
        )?;
        for (key, into) in [
            ("changed", &mut changed),
            ("unchanged", &mut unchanged),
            ("unknown", &mut unknown),
        ] {
            into.extend(answer[key].as_array().into_iter().flatten().cloned());
        }
    }
    if as_json {
        print_json_line(&json!({"changed": changed, "unchanged": unchanged, "unknown": unknown}));
    } else {
        let verb = if action == "archive" {
            "archived"
        } else {
            "unarchived"
        };
        let list = |v: &[Value]| {
            v.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        };
        if !changed.is_empty() {
            println!("{verb}: {}", list(&changed));
        }
        if !unchanged.is_empty() {
            println!("already {verb}: {}", list(&unchanged));
        }
        if !unknown.is_empty() {
            eprintln!("no such finding: {}", list(&unknown));
        }
    }
    Ok(if unknown.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ListArgs,
    }

    #[test]
    fn list_flags_become_guardduty_criteria() {
        let a = T::parse_from([
            "t",
            "--type",
            "A",
            "--type",
            "B",
            "--severity-min",
            "high",
            "--instance",
            "i-1",
        ])
        .a;
        assert_eq!(
            criteria(&a),
            json!({"criterion": {
                "service.archived": {"equals": ["false"]},
                "type": {"equals": ["A", "B"]},
                "severity": {"greaterThanOrEqual": 7.0},
                "resource.instanceDetails.instanceId": {"equals": ["i-1"]},
            }})
        );
        let a = T::parse_from(["t", "--archived"]).a;
        assert_eq!(
            criteria(&a),
            json!({"criterion": {"service.archived": {"equals": ["true"]}}})
        );
        let a = T::parse_from(["t", "--all"]).a;
        assert_eq!(criteria(&a), json!({"criterion": {}}));
        assert!(T::try_parse_from(["t", "--severity-min", "11"]).is_err());
    }
}
