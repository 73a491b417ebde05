//! The `ward.v1.Ingest/Stream` handler. Per stream: authenticate (certificate CN), take the agent's slot
//! (closing an older stream of the same agent), Welcome with the highest stored sequence, then for each
//! batch: validate, rate-limit, drop duplicates, store, acknowledge in order once durable.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{OwnedMutexGuard, mpsc, oneshot};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use ward_proto::tonic::{self, Request, Response, Status, Streaming};
use ward_proto::v1::{self as pb, agent_message, collector_message, ingest_server::Ingest};

use super::identity;
use super::limits::{Limits, RateLimiter, Refused, check_batch};
use super::metrics::{Metrics, Refusal};
use super::store::{Committer, StoredBatch};

const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Batches received but not yet acknowledged, per stream (bounds memory per agent).
const PIPELINE: usize = 256;

/// Per-agent state shared by its streams (one at a time).
struct AgentSlot {
    /// Held by the agent's active stream until all its commits have completed, so a replacement
    /// stream reads a final high-water mark.
    active: Arc<tokio::sync::Mutex<()>>,
    /// Closes the active stream when the agent reconnects (the old one may be half-dead).
    kick: Option<oneshot::Sender<()>>,
    rate: RateLimiter,
}

pub struct IngestService {
    /// Highest durably stored sequence per agent.
    accepted: Arc<Mutex<HashMap<String, u64>>>,
    slots: Arc<Mutex<HashMap<String, AgentSlot>>>,
    committer: Committer,
    limits: Limits,
    metrics: Arc<Metrics>,
    /// Plain text: no certificate, so the Hello's agent id is taken as is (logged at start).
    insecure: bool,
    on_hello: Option<HelloHook>,
}

/// Called with the authenticated agent id and what its Hello says about its host, before the
/// Welcome (so it has run before any batch of that stream is stored).
pub type HelloHook = Arc<dyn Fn(&str, &pb::HostIdentity) + Send + Sync>;

impl IngestService {
    pub fn new(
        committer: Committer,
        recovered: HashMap<String, u64>,
        limits: Limits,
        metrics: Arc<Metrics>,
        insecure: bool,
    ) -> Self {
        IngestService {
            accepted: Arc::new(Mutex::new(recovered)),
            slots: Arc::default(),
            committer,
            limits,
            metrics,
            insecure,
            on_hello: None,
        }
    }

    pub fn with_hello_hook(mut self, hook: Option<HelloHook>) -> Self {
        self.on_hello = hook;
        self
    }
}

type Outbound = mpsc::Sender<Result<pb::CollectorMessage, Status>>;

/// What the acknowledging task does next, in stream order.
enum Step {
    /// Acknowledge `seq` once the store has it (`rx` resolves then).
    Commit {
        seq: u64,
        events: u32,
        bytes: u64,
        received: Instant,
        rx: oneshot::Receiver<std::io::Result<()>>,
    },
    /// Already stored: acknowledge again (after everything before it).
    Duplicate { seq: u64 },
    /// End the stream with this status (after acknowledging what came before).
    Fail(Status),
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[tonic::async_trait]
impl Ingest for IngestService {
    type StreamStream = Pin<Box<dyn Stream<Item = Result<pb::CollectorMessage, Status>> + Send>>;

    async fn stream(
        &self,
        request: Request<Streaming<pb::AgentMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let metrics = self.metrics.clone();
        // Identity comes from the verified certificate, before anything the agent says is read.
        let cert_id = match request.peer_certs() {
            Some(certs) => match certs.first().map(|c| identity::agent_id_from_cert(c)) {
                Some(Ok(id)) => Some(id),
                Some(Err(e)) => {
                    metrics.refuse(Refusal::BadHello);
                    return Err(Status::unauthenticated(e));
                }
                None => None,
            },
            None => None,
        };
        if cert_id.is_none() && !self.insecure {
            metrics.refuse(Refusal::BadHello);
            return Err(Status::unauthenticated("a client certificate is required"));
        }
        let mut inbound = request.into_inner();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
            Err(_) => return Err(refuse(&metrics, Refusal::BadHello, "no Hello within 10 s")),
            Ok(Err(s)) => {
                metrics.stream_errors.inc();
                return Err(s);
            }
            Ok(Ok(None)) => {
                return Err(refuse(
                    &metrics,
                    Refusal::BadHello,
                    "stream ended before Hello",
                ));
            }
            Ok(Ok(Some(pb::AgentMessage {
                msg: Some(agent_message::Msg::Hello(h)),
            }))) => h,
            Ok(Ok(Some(_))) => {
                return Err(refuse(
                    &metrics,
                    Refusal::BadHello,
                    "the first message must be Hello",
                ));
            }
        };
        if hello.protocol != ward_proto::PROTOCOL_VERSION {
            return Err(refuse(
                &metrics,
                Refusal::BadHello,
                &format!(
                    "protocol {:?} is not supported; this collector speaks {}",
                    hello.protocol,
                    ward_proto::PROTOCOL_VERSION
                ),
            ));
        }
        let host = hello.host.unwrap_or_default();
        let agent_id = match cert_id {
            Some(id) => {
                if !host.agent_id.is_empty() && host.agent_id != id {
                    tracing::warn!(
                        "agent with certificate {id:?} claims to be {:?}: refused",
                        host.agent_id
                    );
                    metrics.refuse(Refusal::IdentityMismatch);
                    return Err(Status::permission_denied(format!(
                        "Hello claims agent id {:?} but the client certificate is for {id:?}",
                        host.agent_id
                    )));
                }
                id
            }
            None => {
                if let Err(e) = identity::valid_agent_id(&host.agent_id) {
                    return Err(refuse(&metrics, Refusal::BadHello, &e));
                }
                host.agent_id.clone()
            }
        };

        if let Some(hook) = &self.on_hello {
            hook(&agent_id, &host);
        }

        // Take the agent's slot: close its previous stream and wait until that one's commits are done.
        let (kick_tx, kick_rx) = oneshot::channel();
        let active = {
            let mut slots = self.slots.lock().expect("slots lock");
            let slot = slots.entry(agent_id.clone()).or_insert_with(|| AgentSlot {
                active: Arc::default(),
                kick: None,
                rate: RateLimiter::new(&self.limits),
            });
            if let Some(old) = slot.kick.replace(kick_tx)
                && old.send(()).is_ok()
            {
                metrics.streams_replaced.inc();
            }
            slot.active.clone()
        };
        let guard = active.lock_owned().await;
        let last = self
            .accepted
            .lock()
            .expect("accepted lock")
            .get(&agent_id)
            .copied()
            .unwrap_or(0);
        tracing::info!(
            "agent {agent_id:?} connected (host {:?}, instance {:?}, region {:?}); stored through sequence {last}",
            host.hostname,
            host.instance_id,
            host.region
        );

        let (out_tx, out_rx) = mpsc::channel(PIPELINE + 4);
        out_tx
            .try_send(Ok(pb::CollectorMessage {
                msg: Some(collector_message::Msg::Welcome(pb::Welcome {
                    agent_id: agent_id.clone(),
                    last_accepted_sequence: last,
                    max_batch_bytes: self.limits.max_message_bytes as u32,
                    max_batch_events: self.limits.max_batch_events,
                })),
            }))
            .expect("fresh channel has room");
        let (step_tx, step_rx) = mpsc::channel(PIPELINE);
        metrics.streams_total.inc();
        metrics.streams_active.inc();
        tokio::spawn(acknowledge(
            step_rx,
            out_tx,
            agent_id.clone(),
            self.accepted.clone(),
            metrics.clone(),
            guard,
        ));
        tokio::spawn(receive(
            inbound,
            step_tx,
            kick_rx,
            Receiver {
                agent_id,
                last,
                slots: self.slots.clone(),
                committer: self.committer.clone(),
                limits: self.limits,
                metrics,
            },
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }
}

fn refuse(metrics: &Metrics, r: Refusal, msg: &str) -> Status {
    metrics.refuse(r);
    Status::invalid_argument(msg.to_string())
}

struct Receiver {
    agent_id: String,
    /// Highest sequence handed to the store by this stream (or stored before it).
    last: u64,
    slots: Arc<Mutex<HashMap<String, AgentSlot>>>,
    committer: Committer,
    limits: Limits,
    metrics: Arc<Metrics>,
}

thread_local! {
    /// Decompression buffer for validating batches, one per worker thread rather than per stream, so
    /// thousands of idle agent streams hold no batch-sized buffers.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A scratch buffer kept past this size is released after use (one odd huge batch does not pin it).
const SCRATCH_KEEP: usize = 8 << 20;

fn check(batch: &pb::Batch, limits: &Limits) -> Result<(), Refused> {
    SCRATCH.with_borrow_mut(|scratch| {
        let r = check_batch(batch, limits, scratch);
        if scratch.capacity() > SCRATCH_KEEP {
            *scratch = Vec::new();
        }
        r
    })
}

/// Reads batches until the stream ends, fails, or is replaced; feeds the acknowledging task in order.
async fn receive(
    mut inbound: Streaming<pb::AgentMessage>,
    steps: mpsc::Sender<Step>,
    mut kick: oneshot::Receiver<()>,
    mut r: Receiver,
) {
    let fail = |status: Status| Step::Fail(status);
    loop {
        let msg = tokio::select! {
            m = inbound.message() => m,
            _ = &mut kick => {
                let _ = steps.send(fail(Status::aborted("replaced by a newer stream of the same agent"))).await;
                return;
            }
        };
        let batch = match msg {
            Ok(None) => return,
            Err(status) => {
                // Framing, size and transport errors all arrive here; tonic's status says which.
                let oversized = status.code() == tonic::Code::OutOfRange
                    || status.code() == tonic::Code::ResourceExhausted
                    || status.message().contains("too large");
                if oversized {
                    r.metrics.refuse(Refusal::Oversized);
                } else {
                    r.metrics.stream_errors.inc();
                }
                tracing::info!(
                    "agent {:?}: stream error: {}: {}",
                    r.agent_id,
                    status.code(),
                    status.message()
                );
                let _ = steps.send(fail(status)).await;
                return;
            }
            Ok(Some(pb::AgentMessage {
                msg: Some(agent_message::Msg::Batch(b)),
            })) => b,
            Ok(Some(_)) => {
                let s = refuse(
                    &r.metrics,
                    Refusal::Malformed,
                    "only Batch messages may follow Hello",
                );
                let _ = steps.send(fail(s)).await;
                return;
            }
        };
        if batch.sequence <= r.last {
            // Resent after a reconnect: already stored. Acknowledge without storing again.
            r.metrics.batches_duplicate.inc();
            r.metrics.events_duplicate.add(u64::from(batch.event_count));
            if steps
                .send(Step::Duplicate {
                    seq: batch.sequence,
                })
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        let received = Instant::now();
        if let Err(Refused(reason, msg)) = check(&batch, &r.limits) {
            tracing::warn!("agent {:?}: refused batch: {msg}", r.agent_id);
            r.metrics.refuse(reason);
            let _ = steps.send(fail(Status::invalid_argument(msg))).await;
            return;
        }
        let bytes = batch.payload.len() as u64;
        let wait = {
            let mut slots = r.slots.lock().expect("slots lock");
            match slots.get_mut(&r.agent_id) {
                Some(slot) => slot
                    .rate
                    .take(&r.limits, u64::from(batch.event_count), bytes),
                None => Duration::ZERO,
            }
        };
        if !wait.is_zero() {
            // Not reading is the back-pressure: HTTP/2 flow control stops the agent, which spools.
            r.metrics.throttled_micros.add(wait.as_micros() as u64);
            tokio::time::sleep(wait).await;
        }
        r.last = batch.sequence;
        let events = batch.event_count;
        let rx = r.committer.submit(StoredBatch {
            agent_id: r.agent_id.clone(),
            sequence: batch.sequence,
            event_count: events,
            compression: batch.compression,
            payload: batch.payload,
            received_unix_nano: unix_nanos(),
        });
        let step = Step::Commit {
            seq: batch.sequence,
            events,
            bytes,
            received,
            rx,
        };
        if steps.send(step).await.is_err() {
            return;
        }
    }
}

/// Acknowledges in stream order, each only once the store has it; ends the stream on the first failure.
async fn acknowledge(
    mut steps: mpsc::Receiver<Step>,
    out: Outbound,
    agent_id: String,
    accepted: Arc<Mutex<HashMap<String, u64>>>,
    metrics: Arc<Metrics>,
    // Released when this task ends: every commit of this stream has completed by then.
    _active: OwnedMutexGuard<()>,
) {
    let ack = |seq| {
        Ok(pb::CollectorMessage {
            msg: Some(collector_message::Msg::Ack(pb::Ack { sequence: seq })),
        })
    };
    while let Some(step) = steps.recv().await {
        match step {
            Step::Commit {
                seq,
                events,
                bytes,
                received,
                rx,
            } => match rx.await {
                Ok(Ok(())) => {
                    {
                        let mut a = accepted.lock().expect("accepted lock");
                        let h = a.entry(agent_id.clone()).or_insert(0);
                        *h = (*h).max(seq);
                    }
                    metrics.batches_accepted.inc();
                    metrics.events_accepted.add(u64::from(events));
                    metrics.bytes_accepted.add(bytes);
                    metrics
                        .batch_latency
                        .observe(received.elapsed().as_secs_f64());
                    // The agent may be gone; its acknowledgements are then simply not needed.
                    let _ = out.send(ack(seq)).await;
                }
                Ok(Err(e)) => {
                    metrics.refuse(Refusal::StoreFailed);
                    let _ = out
                        .send(Err(Status::unavailable(format!(
                            "collector could not store batch {seq}: {e}"
                        ))))
                        .await;
                    break;
                }
                Err(_) => {
                    metrics.refuse(Refusal::StoreFailed);
                    let _ = out
                        .send(Err(Status::unavailable("collector store stopped")))
                        .await;
                    break;
                }
            },
            Step::Duplicate { seq } => {
                let _ = out.send(ack(seq)).await;
            }
            Step::Fail(status) => {
                let _ = out.send(Err(status)).await;
                break;
            }
        }
    }
    // Let pending commits finish before releasing the slot, so a replacement stream sees them.
    steps.close();
    while let Some(step) = steps.recv().await {
        if let Step::Commit {
            seq, events, rx, ..
        } = step
            && let Ok(Ok(())) = rx.await
        {
            let mut a = accepted.lock().expect("accepted lock");
            let h = a.entry(agent_id.clone()).or_insert(0);
            *h = (*h).max(seq);
            metrics.batches_accepted.inc();
            metrics.events_accepted.add(u64::from(events));
        }
    }
    metrics.streams_active.dec();
}
