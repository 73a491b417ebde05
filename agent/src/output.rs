//! Writes enriched events in arrival order. An exec whose executable is still being hashed holds the line
//! for at most [`HASH_WAIT`], so output stays ordered and hashing never stalls the stages before it.

use std::io::Write;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::event::AgentEvent;

pub const HASH_WAIT: Duration = Duration::from_millis(250);

pub enum Pending {
    Ready(AgentEvent),
    /// The sender fires (or is dropped) when the hash is in the process's cell.
    Hashing(AgentEvent, oneshot::Receiver<()>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Pretty,
}

/// Runs until the sender side closes. A closed output (e.g. `| head`) ends it without error.
pub async fn write_loop(
    mut rx: mpsc::Receiver<Vec<Pending>>,
    mut out: impl Write,
    format: Format,
) -> std::io::Result<()> {
    while let Some(batch) = rx.recv().await {
        for pending in batch {
            let event = match pending {
                Pending::Ready(event) => event,
                Pending::Hashing(event, done) => {
                    let _ = tokio::time::timeout(HASH_WAIT, done).await;
                    event
                }
            };
            let written = match format {
                Format::JsonLines => serde_json::to_writer(&mut out, &event),
                Format::Pretty => serde_json::to_writer_pretty(&mut out, &event),
            };
            match written
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
            {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        if rx.is_empty() {
            match out.flush() {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                other => other?,
            }
        }
    }
    out.flush()
}
