//! Ward's wire contract between agent and collector: the protobuf messages of `ward/v1/*.proto` and the
//! generated gRPC clients and servers (`ingest_client`, `ingest_server`, and the query API's `query_client`, `query_server`), built at compile time by `protox`
//! (no `protoc` needed).

/// Version of the agent <-> collector protocol.
pub const PROTOCOL_VERSION: &str = "ward.v1";

/// Generated from `ward/v1/*.proto`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("ward.v1");
}

pub use prost;
pub use prost::bytes;
pub use tonic;

/// The framing of an encoded [`v1::EventList`]: a run of entries, each the key of field 1 with wire type
/// 2 (one byte, `0x0a`), the event's length as a varint, and the encoded [`v1::Event`]. The agent
/// builds batches by appending entries and the collector validates a batch by walking them, so neither
/// side decodes (or re-encodes) whole events on the hot path.
pub mod framing {
    use prost::Message;

    /// `EventList.events`: field 1, length-delimited.
    pub const EVENT_KEY: u8 = 0x0a;

    /// Appends `event` as one entry of an encoded `EventList`; returns the entry's size in bytes.
    pub fn append(buf: &mut Vec<u8>, event: &crate::v1::Event) -> usize {
        let start = buf.len();
        buf.push(EVENT_KEY);
        // Computes the encoded length once, writes it as a varint, then the event.
        event
            .encode_length_delimited(buf)
            .expect("a Vec grows as needed");
        buf.len() - start
    }

    /// Why a buffer is not a well-framed `EventList`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum FramingError {
        /// Byte `at` should start an entry (`0x0a`) but holds another key.
        UnexpectedKey { at: usize, key: u8 },
        /// The length varint at `at` is cut off or longer than 10 bytes.
        BadLength { at: usize },
        /// The entry at `at` claims `len` bytes but only `left` remain.
        Truncated { at: usize, len: u64, left: usize },
    }

    impl std::fmt::Display for FramingError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                FramingError::UnexpectedKey { at, key } => write!(
                    f,
                    "byte {at}: key {key:#04x} where an event entry (0x0a) must start"
                ),
                FramingError::BadLength { at } => {
                    write!(f, "byte {at}: event length varint is malformed")
                }
                FramingError::Truncated { at, len, left } => write!(
                    f,
                    "byte {at}: event of {len} bytes but only {left} bytes remain"
                ),
            }
        }
    }

    impl std::error::Error for FramingError {}

    /// Size of the entry at the start of `buf` (key, length and event), checked against `buf`.
    /// `at` is `buf`'s offset in the whole list, for the error.
    pub fn entry_len(buf: &[u8], at: usize) -> Result<usize, FramingError> {
        entry(buf, at).map(|(head, body)| head + body)
    }

    /// The entry at the start of `buf`: the size of its key and length varint, and of its event.
    fn entry(buf: &[u8], at: usize) -> Result<(usize, usize), FramingError> {
        match buf.first() {
            Some(&EVENT_KEY) => {}
            Some(&key) => return Err(FramingError::UnexpectedKey { at, key }),
            None => return Err(FramingError::BadLength { at }),
        }
        let mut len: u64 = 0;
        let mut head = 1;
        loop {
            // A u64 varint has at most 10 bytes.
            let Some(&b) = buf.get(head).filter(|_| head <= 10) else {
                return Err(FramingError::BadLength { at: at + 1 });
            };
            len |= u64::from(b & 0x7f) << (7 * (head - 1));
            head += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        let left = buf.len() - head;
        if len > left as u64 {
            return Err(FramingError::Truncated {
                at: at + head,
                len,
                left,
            });
        }
        Ok((head, len as usize))
    }

    /// Counts the entries of an encoded `EventList`, checking that they cover it exactly.
    pub fn count(buf: &[u8]) -> Result<usize, FramingError> {
        let (mut at, mut n) = (0, 0);
        while at < buf.len() {
            at += entry_len(&buf[at..], at)?;
            n += 1;
        }
        Ok(n)
    }

    /// The encoded events of an `EventList`, each decodable on its own with `Event::decode` (so one
    /// undecodable event does not take the others with it). Stops after the first framing error.
    pub fn events(buf: &[u8]) -> impl Iterator<Item = Result<&[u8], FramingError>> {
        let mut at = 0;
        std::iter::from_fn(move || {
            if at >= buf.len() {
                return None;
            }
            match entry(&buf[at..], at) {
                Ok((head, body)) => {
                    let event = &buf[at + head..at + head + body];
                    at += head + body;
                    Some(Ok(event))
                }
                Err(e) => {
                    at = buf.len();
                    Some(Err(e))
                }
            }
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::v1::{Event, EventList};

        fn ev(t: u64, name: &str) -> Event {
            Event {
                time_unix_nano: t,
                syscall: name.into(),
                ..Default::default()
            }
        }

        #[test]
        fn appended_entries_are_an_event_list() {
            let events = vec![ev(1, "a"), ev(2, &"x".repeat(300)), Event::default()];
            let mut buf = Vec::new();
            let sizes: Vec<usize> = events.iter().map(|e| append(&mut buf, e)).collect();
            assert_eq!(sizes.iter().sum::<usize>(), buf.len());
            assert_eq!(
                buf,
                EventList {
                    events: events.clone()
                }
                .encode_to_vec()
            );
            assert_eq!(count(&buf), Ok(3));
            assert_eq!(entry_len(&buf, 0), Ok(sizes[0]));
            let each: Vec<Event> = events_of(&buf);
            assert_eq!(each, events);
        }

        fn events_of(buf: &[u8]) -> Vec<Event> {
            super::events(buf)
                .map(|e| Event::decode(e.unwrap()).unwrap())
                .collect()
        }

        #[test]
        fn malformed_framing_says_where() {
            let mut buf = Vec::new();
            append(&mut buf, &ev(1, "abc"));
            let good = buf.len();
            // Another field of EventList.
            let mut b = buf.clone();
            b.extend_from_slice(&[0x12, 0x00]);
            assert_eq!(
                count(&b),
                Err(FramingError::UnexpectedKey {
                    at: good,
                    key: 0x12
                })
            );
            // Cut inside the last event.
            assert!(matches!(
                count(&buf[..good - 1]),
                Err(FramingError::Truncated { .. })
            ));
            // Key without a length, and a length varint that never ends.
            assert_eq!(count(&[0x0a]), Err(FramingError::BadLength { at: 1 }));
            assert!(matches!(
                count(&[
                    0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
                ]),
                Err(FramingError::BadLength { .. })
            ));
            // A huge length is caught, not trusted.
            assert!(matches!(
                count(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
                Err(FramingError::Truncated { .. })
            ));
            assert_eq!(count(&[]), Ok(0));
            let mut it = super::events(&b);
            assert!(it.next().unwrap().is_ok());
            assert!(it.next().unwrap().is_err());
            assert!(it.next().is_none());
        }
    }
}
