//! The sending side: one bidirectional stream to the collector at a time, reconnected with jittered
//! exponential backoff. Sends spooled batches in sequence order with at most `window` unacknowledged,
//! and deletes them from the spool when the collector's cumulative acknowledgement covers them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow, bail};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use ward_proto::tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use ward_proto::v1::{self as pb, agent_message, collector_message, ingest_client::IngestClient};

use super::TransportConfig;
use super::convert;
use super::metrics::Metrics;
use super::spool::Spool;

/// Largest message the agent accepts from the collector (acks and config are small).
const MAX_INBOUND: usize = 1 << 20;
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the channel endpoint (TLS material is parsed here, so bad files fail at start).
pub fn endpoint(cfg: &TransportConfig) -> anyhow::Result<Endpoint> {
    let url = &cfg.collector;
    let mut ep = Endpoint::from_shared(url.clone())
        .with_context(|| format!("collector URL {url:?}"))?
        .connect_timeout(cfg.connect_timeout)
        .tcp_nodelay(true)
        // A dead collector (host gone, no RST) is noticed within ~30 s instead of TCP's minutes.
        .http2_keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(15))
        .keep_alive_while_idle(true)
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(8 << 20));
    match &cfg.tls {
        Some(tls) => {
            if !url.starts_with("https://") {
                bail!("collector URL must be https:// with TLS (or use --insecure): {url}");
            }
            let mut tc = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&tls.ca_pem))
                .identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
            if let Some(name) = &tls.server_name {
                tc = tc.domain_name(name.clone());
            }
            ep = ep.tls_config(tc).context("TLS configuration")?;
        }
        None => {
            if !url.starts_with("http://") {
                bail!("plain-text transport needs an http:// collector URL: {url}");
            }
        }
    }
    Ok(ep)
}

/// Full-jitter exponential backoff: each wait is uniform in [0, min(max, base·2ⁿ)], so a fleet of agents
/// that lost the collector together does not reconnect in lockstep.
struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        let seed = convert::unix_nanos(SystemTime::now()) ^ (u64::from(std::process::id()) << 32);
        Backoff {
            min,
            max,
            attempt: 0,
            rng: seed | 1,
        }
    }

    fn next(&mut self) -> Duration {
        let cap = self
            .min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt += 1;
        // xorshift64: jitter needs no quality, only independence between agents.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let frac = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        self.min.min(cap).max(cap.mul_f64(frac))
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

enum End {
    /// Draining finished: everything was acknowledged, or the drain timeout passed.
    Done,
}

pub async fn run(
    cfg: TransportConfig,
    endpoint: Endpoint,
    spool: Arc<Mutex<Spool>>,
    sealed: Arc<Notify>,
    mut draining: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    collector_max_events: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let mut backoff = Backoff::new(cfg.backoff_min, cfg.backoff_max);
    let mut drain_deadline: Option<Instant> = None;
    let mut attempts = 0u64;
    loop {
        if *draining.borrow() && drain_deadline.is_none() {
            drain_deadline = Some(Instant::now() + cfg.drain_timeout);
        }
        if attempts > 0 {
            metrics.reconnects.fetch_add(1, Relaxed);
        }
        attempts += 1;
        let mut welcomed = false;
        let result = session(
            &cfg,
            &endpoint,
            &spool,
            &sealed,
            &mut draining,
            &mut drain_deadline,
            &metrics,
            &collector_max_events,
            &mut welcomed,
        )
        .await;
        metrics.connected.store(0, Relaxed);
        match result {
            Ok(End::Done) => return Ok(()),
            Err(e) => tracing::warn!("collector stream to {} ended: {e:#}", cfg.collector),
        }
        if welcomed {
            backoff.reset();
        }
        let wait = backoff.next();
        let wake = Instant::now() + wait;
        let until = drain_deadline.map_or(wake, |d| d.min(wake));
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = draining.changed(), if drain_deadline.is_none() => {}
        }
        if drain_deadline.is_some_and(|d| Instant::now() >= d) {
            return finish_drain(&spool);
        }
    }
}

fn finish_drain(spool: &Mutex<Spool>) -> anyhow::Result<()> {
    let spool = spool.lock().expect("spool lock");
    if !spool.is_empty() {
        tracing::warn!(
            "stopping with {} unacknowledged batches ({} bytes) in the spool; they are sent on the next run",
            spool.len(),
            spool.bytes()
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn session(
    cfg: &TransportConfig,
    endpoint: &Endpoint,
    spool: &Mutex<Spool>,
    sealed: &Notify,
    draining: &mut watch::Receiver<bool>,
    drain_deadline: &mut Option<Instant>,
    metrics: &Metrics,
    collector_max_events: &AtomicUsize,
    welcomed: &mut bool,
) -> anyhow::Result<End> {
    let far = || Instant::now() + Duration::from_secs(3600);
    let channel: Channel = tokio::select! {
        c = endpoint.connect() => c.context("connect")?,
        _ = tokio::time::sleep_until(drain_deadline.unwrap_or_else(far)), if drain_deadline.is_some() => {
            return finish_drain(spool).map(|_| End::Done);
        }
    };
    let mut client = IngestClient::new(channel)
        .max_decoding_message_size(MAX_INBOUND)
        .max_encoding_message_size(cfg.max_batch_bytes.max(1 << 20) * 2);
    let (tx, rx) = mpsc::channel(cfg.window + 1);
    tx.try_send(pb::AgentMessage {
        msg: Some(agent_message::Msg::Hello(pb::Hello {
            protocol: ward_proto::PROTOCOL_VERSION.into(),
            host: Some(cfg.host.clone()),
        })),
    })
    .expect("fresh channel has room");
    let mut inbound = client
        .stream(ReceiverStream::new(rx))
        .await
        .map_err(|s| {
            anyhow!(
                "collector refused the stream: {}: {}",
                s.code(),
                s.message()
            )
        })?
        .into_inner();
    let welcome = match tokio::time::timeout(WELCOME_TIMEOUT, inbound.message()).await {
        Err(_) => bail!("no Welcome within {WELCOME_TIMEOUT:?}"),
        Ok(Err(s)) => bail!(
            "collector refused the stream: {}: {}",
            s.code(),
            s.message()
        ),
        Ok(Ok(None)) => bail!("collector closed the stream before its Welcome"),
        Ok(Ok(Some(pb::CollectorMessage {
            msg: Some(collector_message::Msg::Welcome(w)),
        }))) => w,
        Ok(Ok(Some(other))) => bail!("expected Welcome, got {other:?}"),
    };
    *welcomed = true;
    metrics.connected.store(1, Relaxed);
    let limit = welcome.max_batch_events as usize;
    if limit > 0 && limit < cfg.max_batch_events {
        // Batches sealed from now on fit; one already spooled over the limit is refused (and stays
        // until the spool evicts it), so say why.
        tracing::warn!(
            "the collector accepts at most {limit} events per batch, fewer than the configured {}: batches are sealed at {limit}",
            cfg.max_batch_events
        );
    }
    collector_max_events.store(limit, Relaxed);
    tracing::info!(
        "connected to {} as agent {:?} (collector has through sequence {})",
        cfg.collector,
        welcome.agent_id,
        welcome.last_accepted_sequence
    );
    {
        let mut s = spool.lock().expect("spool lock");
        s.rebase(welcome.last_accepted_sequence)?;
        let acked = s.ack_through(welcome.last_accepted_sequence);
        account_acks(metrics, &acked, &s);
    }
    let mut in_flight: VecDeque<u64> = VecDeque::with_capacity(cfg.window);
    let mut cursor = 0u64;
    loop {
        // Fill the window from the spool.
        while in_flight.len() < cfg.window {
            let next = spool.lock().expect("spool lock").next_from(cursor);
            let Some((entry, payload)) = next else { break };
            cursor = entry.seq + 1;
            let msg = pb::AgentMessage {
                msg: Some(agent_message::Msg::Batch(pb::Batch {
                    sequence: entry.seq,
                    event_count: entry.events,
                    compression: pb::Compression::Lz4 as i32,
                    payload,
                    sealed_unix_nano: entry.sealed_unix_nano,
                })),
            };
            if tx.try_send(msg).is_err() {
                bail!("stream closed by the transport");
            }
            in_flight.push_back(entry.seq);
            metrics
                .events_sent
                .fetch_add(u64::from(entry.events), Relaxed);
            metrics.batches_sent.fetch_add(1, Relaxed);
        }
        let done = *draining.borrow()
            && in_flight.is_empty()
            && spool.lock().expect("spool lock").is_empty();
        if done {
            return Ok(End::Done);
        }
        if *draining.borrow() && drain_deadline.is_none() {
            *drain_deadline = Some(Instant::now() + cfg.drain_timeout);
        }
        tokio::select! {
            msg = inbound.message() => match msg {
                Ok(Some(pb::CollectorMessage { msg: Some(collector_message::Msg::Ack(ack)) })) => {
                    while in_flight.front().is_some_and(|s| *s <= ack.sequence) {
                        in_flight.pop_front();
                    }
                    let mut s = spool.lock().expect("spool lock");
                    let acked = s.ack_through(ack.sequence);
                    account_acks(metrics, &acked, &s);
                }
                Ok(Some(pb::CollectorMessage { msg: Some(collector_message::Msg::Config(c)) })) => {
                    // Applying pushed settings is future work; log so an operator sees they arrived.
                    tracing::info!("collector pushed configuration (not applied yet): {c:?}");
                }
                Ok(Some(other)) => tracing::warn!("unexpected message from the collector: {other:?}"),
                Ok(None) => bail!("collector closed the stream"),
                Err(s) => bail!("{}: {}", s.code(), s.message()),
            },
            _ = sealed.notified() => {}
            _ = draining.changed(), if !*draining.borrow() => {}
            _ = tokio::time::sleep_until(drain_deadline.unwrap_or_else(far)), if drain_deadline.is_some() => {
                return finish_drain(spool).map(|_| End::Done);
            }
        }
    }
}

fn account_acks(metrics: &Metrics, acked: &[super::spool::Entry], spool: &Spool) {
    let now = convert::unix_nanos(SystemTime::now());
    for e in acked {
        metrics.events_acked.fetch_add(u64::from(e.events), Relaxed);
        metrics.batches_acked.fetch_add(1, Relaxed);
        metrics
            .batch_latency
            .observe(now.saturating_sub(e.sealed_unix_nano) as f64 / 1e9);
    }
    metrics.spool_bytes.store(spool.bytes(), Relaxed);
    metrics.spool_batches.store(spool.len() as u64, Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let waits: Vec<Duration> = (0..12).map(|_| b.next()).collect();
        assert!(
            waits
                .iter()
                .all(|w| *w >= Duration::from_millis(100) && *w <= Duration::from_secs(2))
        );
        // Jitter: not all late waits equal the cap.
        assert!(waits[6..].windows(2).any(|w| w[0] != w[1]));
        b.reset();
        assert!(b.next() <= Duration::from_millis(100));
    }
}
