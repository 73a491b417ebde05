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

/// Checks a batch on the ingest path, before it is stored: what ingest calls malformed.
///
/// A batch is accepted when its sequence is set, it declares at most `max_batch_events` events, its
/// compression is known, its payload decompresses completely to exactly the size its LZ4 prefix declares
/// (at most `max_decompressed_bytes`), and the result is an `EventList` framed as exactly
/// `event_count` entries ([`ward_proto::framing`]) with no bytes left over. Each event's own fields are
/// not decoded here: that is the detection stage's work, which decodes each event on its own and counts
/// one that does not decode, without losing the rest of its batch. `scratch` is reused across calls.
pub fn check_batch(b: &pb::Batch, limits: &Limits, scratch: &mut Vec<u8>) -> Result<(), Refused> {
    let list = payload(b, limits, scratch)?;
    let n = ward_proto::framing::count(list).map_err(|e| {
        Refused(
            Refusal::Malformed,
            format!("batch {}: not an event list: {e}", b.sequence),
        )
    })?;
    if n != b.event_count as usize {
        return Err(Refused(
            Refusal::CountMismatch,
            format!(
                "batch {} declares {} events but holds {n}",
                b.sequence, b.event_count
            ),
        ));
    }
    Ok(())
}

/// [`check_batch`], then every event decoded: for readers of stored batches, tests and tools.
pub fn open_batch(b: &pb::Batch, limits: &Limits) -> Result<pb::EventList, Refused> {
    let mut scratch = Vec::new();
    check_batch(b, limits, &mut scratch)?;
    let list = payload(b, limits, &mut scratch)?;
    pb::EventList::decode(list).map_err(|e| {
        Refused(
            Refusal::Malformed,
            format!("batch {}: undecodable event: {e}", b.sequence),
        )
    })
}

/// The batch's encoded `EventList`: its payload, decompressed into `scratch` when compressed.
fn payload<'a>(
    b: &'a pb::Batch,
    limits: &Limits,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8], Refused> {
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
    match Compression::try_from(b.compression) {
        Ok(Compression::None) => Ok(&b.payload),
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
            // Grown only: the buffer is reused across batches and fully overwritten up to `len`.
            if scratch.len() < len {
                scratch.resize(len, 0);
            }
            let out = &mut scratch[..len];
            let got = lz4_flex::block::decompress_into(&b.payload[4..], out).map_err(|e| {
                Refused(
                    Refusal::Malformed,
                    format!("batch {}: corrupt LZ4 payload: {e}", b.sequence),
                )
            })?;
            if got != len {
                return Err(Refused(
                    Refusal::Malformed,
                    format!(
                        "batch {}: corrupt LZ4 payload: {got} bytes where its prefix declares {len}",
                        b.sequence
                    ),
                ));
            }
            Ok(&scratch[..len])
        }
        Err(_) => Err(Refused(
            Refusal::Malformed,
            format!(
                "batch {}: unknown compression {}",
                b.sequence, b.compression
            ),
        )),
    }
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
    fn ingest_checks_framing_and_count_not_event_fields() {
        let l = Limits::default();
        let mut scratch = Vec::new();
        let raw = |payload: &'static [u8], count| pb::Batch {
            sequence: 1,
            event_count: count,
            compression: Compression::None as i32,
            payload: Bytes::from_static(payload),
            sealed_unix_nano: 0,
        };
        // Two well-framed entries whose bodies are not Events (field 1 with an impossible wire type):
        // stored as received, refused only by a full decode.
        let b = raw(b"\x0a\x01\x0f\x0a\x01\x0f", 2);
        check_batch(&b, &l, &mut scratch).unwrap();
        assert_eq!(open_batch(&b, &l).unwrap_err().0, Refusal::Malformed);
        // Framing errors are malformed at ingest: another field, a cut entry.
        let r = check_batch(&raw(b"\x0a\x00\x12\x00", 2), &l, &mut scratch).unwrap_err();
        assert_eq!(r.0, Refusal::Malformed, "{}", r.1);
        assert!(r.1.contains("0x12"), "{}", r.1);
        let r = check_batch(&raw(b"\x0a\x05\x08\x01", 1), &l, &mut scratch).unwrap_err();
        assert_eq!(r.0, Refusal::Malformed, "{}", r.1);
        // An LZ4 prefix that overstates the decompressed size.
        let mut b = lz4_batch(3, 3);
        let mut p = b.payload.to_vec();
        let len = u32::from_le_bytes(p[..4].try_into().unwrap()) + 1;
        p[..4].copy_from_slice(&len.to_le_bytes());
        b.payload = Bytes::from(p);
        let r = check_batch(&b, &l, &mut scratch).unwrap_err();
        assert_eq!(r.0, Refusal::Malformed, "{}", r.1);
        // The scratch buffer is reused after a larger batch.
        check_batch(&lz4_batch(500, 500), &l, &mut scratch).unwrap();
        check_batch(&lz4_batch(2, 2), &l, &mut scratch).unwrap();
        assert_eq!(
            check_batch(&lz4_batch(2, 3), &l, &mut scratch)
                .unwrap_err()
                .0,
            Refusal::CountMismatch
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
