//! Hands enriched events to a [`Sink`] in arrival order. An exec whose executable is still being hashed
//! holds the line for at most [`HASH_WAIT`], so output stays ordered and hashing never stalls the stages
//! before it.

use std::io::Write;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::event::AgentEvent;

pub const HASH_WAIT: Duration = Duration::from_millis(250);

pub enum Pending {
    Ready(AgentEvent),
    /// The sender fires (or is dropped) when the hash is in the process's cell; the event waits for it
    /// until the deadline at most, which is [`HASH_WAIT`] after the event was produced (not after the
    /// writer reaches it, so a run of slow hashes never adds up).
    Hashing(AgentEvent, oneshot::Receiver<()>, tokio::time::Instant),
}

/// Where enriched events go: stdout for `watch`, the collector transport for `run`.
pub trait Sink {
    fn write(&mut self, event: &AgentEvent) -> std::io::Result<()>;
    /// Called when no more events are immediately pending.
    fn flush(&mut self) -> std::io::Result<()>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Pretty,
}

/// JSON objects, one per line (or indented), to any writer.
pub struct JsonSink<W: Write> {
    out: W,
    format: Format,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W, format: Format) -> Self {
        JsonSink { out, format }
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn write(&mut self, event: &AgentEvent) -> std::io::Result<()> {
        match self.format {
            Format::JsonLines => serde_json::to_writer(&mut self.out, event)?,
            Format::Pretty => serde_json::to_writer_pretty(&mut self.out, event)?,
        }
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Runs until the sender side closes. A sink that reports a broken pipe (e.g. `| head`) ends it quietly.
pub async fn write_loop(
    mut rx: mpsc::Receiver<Vec<Pending>>,
    mut sink: impl Sink,
) -> std::io::Result<()> {
    let quiet_on_broken_pipe = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(None),
        Err(e) => Err(Some(e)),
        Ok(()) => Ok(()),
    };
    while let Some(batch) = rx.recv().await {
        for pending in batch {
            let event = match pending {
                Pending::Ready(event) => event,
                Pending::Hashing(event, done, deadline) => {
                    let _ = tokio::time::timeout_at(deadline, done).await;
                    event
                }
            };
            if let Err(e) = quiet_on_broken_pipe(sink.write(&event)) {
                return e.map_or(Ok(()), Err);
            }
        }
        if rx.is_empty()
            && let Err(e) = quiet_on_broken_pipe(sink.flush())
        {
            return e.map_or(Ok(()), Err);
        }
    }
    sink.flush()
}
