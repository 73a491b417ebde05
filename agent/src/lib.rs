//! Ward agent: loads the eBPF sensors, reads their ring buffer, keeps a process table, enriches every event
//! with its process, ancestry, container and binary hash, and hands the result on (stdout for `watch`).
//!
//! Data flows one way: [`sensor`] (kernel) → [`ring`] (bytes) → [`decode`] (typed records) → [`enrich`]
//! (process table, containers, hashes) → [`output`] (ordered JSON).

pub mod clock;
pub mod container;
pub mod decode;
pub mod dns;
pub mod enrich;
pub mod event;
pub mod hash;
pub mod interpret;
pub mod mounts;
pub mod output;
pub mod procscan;
pub mod proctable;
pub mod ring;
pub mod sensor;
pub mod transport;
pub mod watch;
