//! What one agent may send: per-batch size and count limits (a batch over them is refused with a
//! status that says which), and a per-agent rate (a stream over it is slowed down, not refused: the
//! agent keeps the excess in its spool, and other agents are unaffected).

use std::time::{Duration, Instant};

use prost::Message;
use ward_proto::prost;
use ward_proto::v1::{self as pb, Compression};

use super::metrics::Refusal;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest gRPC message (so a compressed batch) accepted; larger ones fail before being buffered.
    pub max_message_bytes: usize,
    /// Largest decompressed payload.
    pub max_decompressed_bytes: usize,
    pub max_batch_events: u32,
    /// Per agent: sustained events per second and bytes per second (compressed), with bursts of
    /// [`Limits::burst`] worth.
    pub events_per_sec: f64,
    pub bytes_per_sec: f64,
    pub burst: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 8 << 20,
            max_decompressed_bytes: 32 << 20,
            max_batch_events: 10_000,
            events_per_sec: 2_000_000.0,
            bytes_per_sec: 512.0 * 1024.0 * 1024.0,
            burst: Duration::from_secs(2),
        }
    }
}

/// A refused batch: the reason (for metrics) and the message sent back in the status.
#[derive(Debug)]
pub struct Refused(pub Refusal, pub String);

/// Decompresses and decodes a batch's payload, checking it against the limits and its declared count.
pub fn open_batch(b: &pb::Batch, limits: &Limits) -> Result<pb::EventList, Refused> {
    if b.sequence == 0 {
        return Err(Refused(
            Refusal::BadSequence,
            "batch sequence must be at least 1".into(),
        ));
    }
    if b.event_count > limits.max_batch_events {
        return Err(Refused(
            Refusal::Oversized,
            format!(
                "batch {} declares {} events, over the limit of {}",
                b.sequence, b.event_count, limits.max_batch_events
            ),
        ));
    }
    let raw;
    let bytes: &[u8] = match Compression::try_from(b.compression) {
        Ok(Compression::None) => &b.payload,
        Ok(Compression::Lz4) => {
            let Some(prefix) = b.payload.get(..4) else {
                return Err(Refused(
                    Refusal::Malformed,
                    format!(
                        "batch {}: LZ4 payload shorter than its length prefix",
                        b.sequence
                    ),
                ));
            };
            let len = u32::from_le_bytes(prefix.try_into().expect("4 bytes")) as usize;
            // Checked before decompressing: the prefix is what an attacker would inflate.
            if len > limits.max_decompressed_bytes {
                return Err(Refused(
                    Refusal::Oversized,
                    format!(
                        "batch {}: decompresses to {len} bytes, over the limit of {}",
                        b.sequence, limits.max_decompressed_bytes
                    ),
                ));
            }
            raw = lz4_flex::block::decompress(&b.payload[4..], len).map_err(|e| {
                Refused(
                    Refusal::Malformed,
                    format!("batch {}: corrupt LZ4 payload: {e}", b.sequence),
                )
            })?;
            &raw
        }
        Err(_) => {
            return Err(Refused(
                Refusal::Malformed,
                format!(
                    "batch {}: unknown compression {}",
                    b.sequence, b.compression
                ),
            ));
        }
    };
    let list = pb::EventList::decode(bytes).map_err(|e| {
        Refused(
            Refusal::Malformed,
            format!("batch {}: undecodable event list: {e}", b.sequence),
        )
    })?;
    if list.events.len() != b.event_count as usize {
        return Err(Refused(
            Refusal::CountMismatch,
            format!(
                "batch {} declares {} events but holds {}",
                b.sequence,
                b.event_count,
                list.events.len()
            ),
        ));
    }
    Ok(list)
}

/// Token bucket over events and bytes. Callers wait [`RateLimiter::take`]'s answer before going on.
pub struct RateLimiter {
    events: f64,
    bytes: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(limits: &Limits) -> Self {
        RateLimiter {
            events: limits.events_per_sec * limits.burst.as_secs_f64(),
            bytes: limits.bytes_per_sec * limits.burst.as_secs_f64(),
            last: Instant::now(),
        }
    }

    /// Spends the tokens of a batch and says how long to wait before accepting it (zero when within
    /// the rate). Debt is allowed so a batch larger than the burst still passes, only later.
    pub fn take(&mut self, limits: &Limits, events: u64, bytes: u64) -> Duration {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        let cap_e = limits.events_per_sec * limits.burst.as_secs_f64();
        let cap_b = limits.bytes_per_sec * limits.burst.as_secs_f64();
        self.events = (self.events + dt * limits.events_per_sec).min(cap_e) - events as f64;
        self.bytes = (self.bytes + dt * limits.bytes_per_sec).min(cap_b) - bytes as f64;
        let wait_e = if self.events < 0.0 {
            -self.events / limits.events_per_sec
        } else {
            0.0
        };
        let wait_b = if self.bytes < 0.0 {
            -self.bytes / limits.bytes_per_sec
        } else {
            0.0
        };
        Duration::from_secs_f64(wait_e.max(wait_b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_proto::bytes::Bytes;

    fn lz4_batch(events: usize, declared: u32) -> pb::Batch {
        let list = pb::EventList {
            events: vec![pb::Event::default(); events],
        };
        pb::Batch {
            sequence: 1,
            event_count: declared,
            compression: Compression::Lz4 as i32,
            payload: Bytes::from(lz4_flex::block::compress_prepend_size(
                &list.encode_to_vec(),
            )),
            sealed_unix_nano: 0,
        }
    }

    #[test]
    fn valid_batch_opens() {
        assert_eq!(
            open_batch(&lz4_batch(3, 3), &Limits::default())
                .unwrap()
                .events
                .len(),
            3
        );
    }

    #[test]
    fn refusals_say_why() {
        let l = Limits::default();
        assert_eq!(
            open_batch(&lz4_batch(3, 4), &l).unwrap_err().0,
            Refusal::CountMismatch
        );
        let mut b = lz4_batch(3, 3);
        b.sequence = 0;
        assert_eq!(open_batch(&b, &l).unwrap_err().0, Refusal::BadSequence);
        let mut b = lz4_batch(3, 3);
        b.payload = Bytes::from_static(&[0xff, 0xff, 0xff, 0x7f, 1, 2, 3]);
        let r = open_batch(&b, &l).unwrap_err();
        assert_eq!(r.0, Refusal::Oversized, "{}", r.1);
        b.payload = Bytes::from_static(&[10, 0, 0, 0, 0xf0, 1, 2]);
        assert_eq!(open_batch(&b, &l).unwrap_err().0, Refusal::Malformed);
        b.compression = 9;
        assert_eq!(open_batch(&b, &l).unwrap_err().0, Refusal::Malformed);
        let mut b = lz4_batch(0, 0);
        b.compression = Compression::None as i32;
        b.payload = Bytes::from_static(b"\x0a\xff\xff\xff\xff\x0f");
        assert_eq!(open_batch(&b, &l).unwrap_err().0, Refusal::Malformed);
        let mut l2 = l;
        l2.max_batch_events = 2;
        assert_eq!(
            open_batch(&lz4_batch(3, 3), &l2).unwrap_err().0,
            Refusal::Oversized
        );
    }

    #[test]
    fn rate_limit_waits_in_proportion() {
        let l = Limits {
            events_per_sec: 1000.0,
            bytes_per_sec: 1e12,
            burst: Duration::from_secs(1),
            ..Limits::default()
        };
        let mut r = RateLimiter::new(&l);
        assert_eq!(r.take(&l, 1000, 0), Duration::ZERO);
        let w = r.take(&l, 500, 0);
        assert!(
            w > Duration::from_millis(450) && w <= Duration::from_millis(500),
            "{w:?}"
        );
    }
}
