//! Ward's wire contract between agent and collector: the protobuf messages of `ward/v1/*.proto` and the
//! generated gRPC client and server (`ingest_client`, `ingest_server`), built at compile time by `protox`
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
