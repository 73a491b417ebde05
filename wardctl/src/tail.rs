//! `wardctl tail`: the live finding stream, one line per change. A dropped stream is re-opened
//! (changes committed while disconnected are not replayed: `findings list` shows them).

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use crate::client::Client;
use crate::findings::{resource_cell, severity_cell};
use crate::table::cell;

#[derive(clap::Args)]
pub struct Args {
    /// Also show changes of findings a suppression rule archived as they were stored.
    #[arg(long)]
    suppressed: bool,
}

pub fn run(client: &Client, args: Args, as_json: bool) -> anyhow::Result<ExitCode> {
    // The first connection must work (a wrong URL or token is an error, not a retry loop).
    let mut reader = client.stream("/v1/findings/stream")?;
    if !as_json {
        eprintln!("following findings at {} (Ctrl-C stops)", client.base());
    }
    let mut delay = Duration::from_secs(1);
    loop {
        let ended = follow(&mut reader, &args, as_json);
        eprintln!("stream ended ({ended}); reconnecting");
        loop {
            std::thread::sleep(delay);
            match client.stream("/v1/findings/stream") {
                Ok(r) => {
                    reader = r;
                    delay = Duration::from_secs(1);
                    eprintln!(
                        "reconnected; changes while disconnected are in `wardctl findings list`"
                    );
                    break;
                }
                Err(e) => {
                    eprintln!("{e:#}");
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// Prints changes until the stream ends; returns why it ended.
fn follow(reader: &mut dyn BufRead, args: &Args, as_json: bool) -> String {
    let stdout = std::io::stdout();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return "closed by the server".into(),
            Ok(_) => {}
            Err(e) => return e.to_string(),
        }
        let text = line.trim();
        if text.is_empty() {
            continue; // keep-alive
        }
        let change: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("not JSON from the stream ({e}): {}", cell(text, 200));
                continue;
            }
        };
        if change["suppressedBy"].is_string() && !args.suppressed {
            continue;
        }
        let mut out = stdout.lock();
        let written = if as_json {
            writeln!(out, "{text}")
        } else if change["change"] == "lagged" {
            eprintln!(
                "(this reader fell behind: {} changes missed)",
                change["missed"]
            );
            Ok(())
        } else {
            writeln!(out, "{}", change_line(&change))
        };
        if written.and_then(|()| out.flush()).is_err() {
            // stdout closed (e.g. piped into head): stop quietly.
            std::process::exit(0);
        }
    }
}

/// `UPDATED  CHANGE  SEVERITY  TYPE  RESOURCE  ID  TITLE` in fixed-width columns.
pub fn change_line(change: &Value) -> String {
    let f = &change["finding"];
    let s = |v: &Value, max| cell(v.as_str().unwrap_or("-"), max);
    let kind = change["change"].as_str().unwrap_or("?");
    let suppressed = change["suppressedBy"]
        .as_str()
        .map(|r| format!(" [suppressed by {}]", cell(r, 60)))
        .unwrap_or_default();
    format!(
        "{:<24}  {:<10}  {:<13}  {:<44}  {:<19}  {}  {}{suppressed}",
        s(&f["updatedAt"], 24),
        kind,
        severity_cell(f),
        s(&f["type"], 60),
        cell(&resource_cell(f), 40),
        s(&f["id"], 64),
        s(&f["title"], 100),
    )
}
