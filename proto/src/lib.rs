//! Ward's wire contract between agent and collector.
//!
//! The protobuf definitions (`ward/v1/*.proto`) and their generated code land here with the transport
//! work; until then this crate only names the protocol version so both sides can agree on it.

/// Version of the agent <-> collector protocol.
pub const PROTOCOL_VERSION: &str = "ward.v1";
