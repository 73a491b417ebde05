//! Hostile input to the ingest service over loopback: garbage bytes instead of TLS, a truncated gRPC
//! frame, an undecodable message, a corrupt batch, a payload that is not an event list, and a 100 MB
//! batch. Each is refused with a clear status (or a closed connection) and counted, and the server keeps
//! serving well-behaved agents.
//!
//! What ingest calls malformed is the batch and its framing (see `limits::check_batch`): events whose
//! own fields do not decode are stored as received, for the detection stage to count one by one.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ward_collector::ingest::devcerts::{DevCa, Pem};
use ward_collector::ingest::metrics::Refusal;
use ward_collector::ingest::{self, IngestHandle, Limits, ServeConfig, ServerTls};
use ward_proto::bytes::Bytes;
use ward_proto::prost::Message;
use ward_proto::tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use ward_proto::tonic::{Code, Status};
use ward_proto::v1::{self as pb, agent_message, collector_message, ingest_client::IngestClient};

struct Setup {
    ca: DevCa,
    server: IngestHandle,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn setup(name: &str) -> Setup {
    let ca = DevCa::new("abuse CA").unwrap();
    let server_pem: Pem = ca.server(&["localhost", "127.0.0.1"]).unwrap();
    let dir = std::env::temp_dir().join(format!("ward-abuse-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = ingest::start(ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(ServerTls {
            cert_pem: server_pem.cert.into_bytes(),
            key_pem: server_pem.key.into_bytes(),
            client_ca_pem: ca.pem.cert.clone().into_bytes(),
        }),
        data_dir: dir.clone(),
        limits: Limits::default(),
        metrics_listen: None,
    })
    .await
    .unwrap();
    Setup {
        ca,
        server,
        _dir: TempDir(dir),
    }
}

async fn channel(s: &Setup, agent: &str) -> Channel {
    let pem = s.ca.agent(agent).unwrap();
    Endpoint::from_shared(format!("https://127.0.0.1:{}", s.server.addr.port()))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&s.ca.pem.cert))
                .identity(Identity::from_pem(pem.cert, pem.key))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn hello(agent: &str) -> pb::AgentMessage {
    pb::AgentMessage {
        msg: Some(agent_message::Msg::Hello(pb::Hello {
            protocol: ward_proto::PROTOCOL_VERSION.into(),
            host: Some(pb::HostIdentity {
                agent_id: agent.into(),
                ..Default::default()
            }),
        })),
    }
}

fn batch(seq: u64, events: usize) -> pb::AgentMessage {
    let list = pb::EventList {
        events: vec![
            pb::Event {
                time_unix_nano: seq,
                ..Default::default()
            };
            events
        ],
    };
    pb::AgentMessage {
        msg: Some(agent_message::Msg::Batch(pb::Batch {
            sequence: seq,
            event_count: events as u32,
            compression: pb::Compression::Lz4 as i32,
            payload: Bytes::from(lz4_flex::block::compress_prepend_size(
                &list.encode_to_vec(),
            )),
            sealed_unix_nano: 0,
        })),
    }
}

/// Sends `msgs` on one stream and returns the acks received, or the status the stream ended with.
async fn exchange(ch: Channel, msgs: Vec<pb::AgentMessage>) -> Result<Vec<u64>, Status> {
    let want = msgs
        .iter()
        .filter(|m| matches!(m.msg, Some(agent_message::Msg::Batch(_))))
        .count();
    let (tx, rx) = tokio::sync::mpsc::channel(msgs.len() + 1);
    for m in msgs {
        tx.send(m).await.unwrap();
    }
    let mut client = IngestClient::new(ch).max_encoding_message_size(256 << 20);
    let mut inbound = client
        .stream(ward_proto::tonic::codegen::tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    let mut acks = Vec::new();
    while acks.len() < want {
        match tokio::time::timeout(Duration::from_secs(20), inbound.message()).await {
            Err(_) => return Err(Status::deadline_exceeded("no answer")),
            Ok(m) => match m? {
                Some(pb::CollectorMessage {
                    msg: Some(collector_message::Msg::Ack(a)),
                }) => acks.push(a.sequence),
                Some(_) => {}
                None => break,
            },
        }
    }
    drop(tx);
    Ok(acks)
}

/// The server still works: a fresh agent gets its batches stored and acknowledged.
async fn still_serves(s: &Setup, agent: &str) {
    let acks = exchange(
        channel(s, agent).await,
        vec![hello(agent), batch(1, 10), batch(2, 10)],
    )
    .await
    .expect("a well-behaved agent is served");
    assert_eq!(acks, vec![1, 2]);
}

fn grpc_frame(msg: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8];
    f.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    f.extend_from_slice(msg);
    f
}

/// A raw gRPC request whose body is exactly `body`; returns the grpc-status and message.
async fn raw_stream(ch: Channel, body: Vec<u8>) -> (Option<i32>, String) {
    let req = http::Request::builder()
        .method("POST")
        .uri("https://localhost/ward.v1.Ingest/Stream")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(ward_proto::tonic::body::Body::new(
            http_body_util::Full::new(Bytes::from(body)),
        ))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(ch, req)
        .await
        .expect("HTTP/2 response");
    let (parts, body) = resp.into_parts();
    let status_of = |h: &http::HeaderMap| {
        let code = h
            .get("grpc-status")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let msg = h
            .get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (code, msg)
    };
    if let (Some(c), m) = status_of(&parts.headers) {
        return (Some(c), m);
    }
    let collected = tokio::time::timeout(Duration::from_secs(20), body.collect())
        .await
        .expect("the server ends the stream")
        .expect("body");
    collected
        .trailers()
        .map(status_of)
        .unwrap_or((None, String::new()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_instead_of_tls_are_dropped() {
    let s = setup("garbage").await;
    for attempt in 0..3u8 {
        let mut sock = tokio::net::TcpStream::connect(s.server.addr).await.unwrap();
        // Deterministic junk, including what a confused plain-HTTP/2 client would send.
        let mut junk = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let mut x = 0x9e37_79b9u32.wrapping_mul(u32::from(attempt) + 1);
        for _ in 0..64 * 1024 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            junk.push(x as u8);
        }
        let _ = sock.write_all(&junk).await;
        let mut buf = vec![0u8; 4096];
        // The server answers with a TLS alert at most, then closes.
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "server kept a garbage connection open");
    }
    still_serves(&s, "agent-ok").await;
    s.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_undecodable_frames_are_refused() {
    let s = setup("frames").await;
    // Hello, then a frame header announcing 1000 bytes followed by 10 and the end of the stream.
    let mut body = grpc_frame(&hello("agent-t").encode_to_vec());
    body.extend_from_slice(&[0, 0, 0, 0x03, 0xe8]);
    body.extend_from_slice(&[7u8; 10]);
    let (code, msg) = raw_stream(channel(&s, "agent-t").await, body).await;
    assert!(
        code.is_some_and(|c| c != 0),
        "truncated frame ended with {code:?} {msg:?}"
    );

    // A complete frame whose bytes are not an AgentMessage.
    let mut body = grpc_frame(&hello("agent-u").encode_to_vec());
    body.extend_from_slice(&grpc_frame(&[0xff; 64]));
    let (code, msg) = raw_stream(channel(&s, "agent-u").await, body).await;
    assert!(
        code.is_some_and(|c| c != 0),
        "undecodable message ended with {code:?} {msg:?}"
    );
    assert!(s.server.metrics.stream_errors.get() >= 2);

    // Garbage as the first message: no Hello.
    let (code, _) = raw_stream(
        channel(&s, "agent-v").await,
        grpc_frame(&[0x12, 0x03, 1, 2, 3]),
    )
    .await;
    assert!(code.is_some_and(|c| c != 0));

    still_serves(&s, "agent-ok").await;
    s.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_lying_batches_are_refused_with_a_reason() {
    let s = setup("corrupt").await;
    let mut bad = batch(2, 5);
    if let Some(agent_message::Msg::Batch(b)) = &mut bad.msg {
        b.payload = Bytes::from_static(&[0x40, 0, 0, 0, 0xff, 0xff, 0xff]);
    }
    let err = exchange(
        channel(&s, "agent-c").await,
        vec![hello("agent-c"), batch(1, 5), bad],
    )
    .await
    .expect_err("corrupt batch accepted");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("LZ4"), "{}", err.message());
    assert_eq!(s.server.metrics.refused(Refusal::Malformed), 1);

    let mut lying = batch(3, 5);
    if let Some(agent_message::Msg::Batch(b)) = &mut lying.msg {
        b.event_count = 500;
    }
    let err = exchange(channel(&s, "agent-c").await, vec![hello("agent-c"), lying])
        .await
        .expect_err("lying batch accepted");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(s.server.metrics.refused(Refusal::CountMismatch), 1);
    // Batch 1 of agent-c was stored before the corrupt one; the agent resumes after it.
    assert_eq!(s.server.metrics.batches_accepted.get(), 1);
    still_serves(&s, "agent-ok").await;
    s.server.shutdown().await.unwrap();
}

fn raw_batch(seq: u64, count: u32, payload: &'static [u8]) -> pb::AgentMessage {
    pb::AgentMessage {
        msg: Some(agent_message::Msg::Batch(pb::Batch {
            sequence: seq,
            event_count: count,
            compression: pb::Compression::Lz4 as i32,
            payload: Bytes::from(lz4_flex::block::compress_prepend_size(payload)),
            sealed_unix_nano: 0,
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_that_is_not_an_event_list_is_refused() {
    let s = setup("framing").await;
    // A valid LZ4 block whose content is not a run of EventList entries (field 2 instead of 1).
    let err = exchange(
        channel(&s, "agent-f").await,
        vec![
            hello("agent-f"),
            batch(1, 5),
            raw_batch(2, 1, b"\x12\x03abc"),
        ],
    )
    .await
    .expect_err("not an event list, accepted");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("not an event list"),
        "{}",
        err.message()
    );
    // An entry claiming more bytes than the payload holds.
    let err = exchange(
        channel(&s, "agent-f").await,
        vec![hello("agent-f"), raw_batch(2, 1, b"\x0a\x40abc")],
    )
    .await
    .expect_err("cut entry accepted");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(s.server.metrics.refused(Refusal::Malformed), 2);
    // Well framed, but the events themselves do not decode: stored as received (ingest does not decode
    // events), and the stored batch still tells its reader it is undecodable.
    let acks = exchange(
        channel(&s, "agent-f").await,
        vec![
            hello("agent-f"),
            raw_batch(2, 2, b"\x0a\x01\x0f\x0a\x01\x0f"),
        ],
    )
    .await
    .expect("well-framed batch accepted");
    assert_eq!(acks, vec![2]);
    assert_eq!(s.server.metrics.batches_accepted.get(), 2);
    still_serves(&s, "agent-ok").await;
    s.server.shutdown().await.unwrap();
    let stored = ward_collector::ingest::store::read_log(&s._dir.0.join("ingest.log")).unwrap();
    let f: Vec<_> = stored.iter().filter(|b| b.agent_id == "agent-f").collect();
    assert_eq!(f.iter().map(|b| b.sequence).collect::<Vec<_>>(), [1, 2]);
    ward_collector::ingest::store::decode_stored(f[0]).expect("batch 1 decodes");
    let e = ward_collector::ingest::store::decode_stored(f[1]).unwrap_err();
    assert!(e.contains("undecodable event"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_batch_is_refused_and_the_server_still_serves() {
    let s = setup("huge").await;
    let huge = pb::AgentMessage {
        msg: Some(agent_message::Msg::Batch(pb::Batch {
            sequence: 1,
            event_count: 1,
            compression: pb::Compression::None as i32,
            payload: Bytes::from(vec![0x5a; 100 << 20]),
            sealed_unix_nano: 0,
        })),
    };
    // Meanwhile another agent streams normally on its own connection.
    let other = {
        let ch = channel(&s, "agent-bystander").await;
        tokio::spawn(async move {
            let msgs: Vec<_> = std::iter::once(hello("agent-bystander"))
                .chain((1..=50).map(|i| batch(i, 100)))
                .collect();
            exchange(ch, msgs).await
        })
    };
    let err = exchange(channel(&s, "agent-h").await, vec![hello("agent-h"), huge])
        .await
        .expect_err("100 MB batch accepted");
    assert!(
        matches!(
            err.code(),
            Code::OutOfRange | Code::ResourceExhausted | Code::InvalidArgument
        ),
        "{err:?}"
    );
    assert_eq!(s.server.metrics.refused(Refusal::Oversized), 1, "{err:?}");
    let acks = other.await.unwrap().expect("the other agent is unaffected");
    assert_eq!(acks, (1..=50).collect::<Vec<u64>>());
    still_serves(&s, "agent-ok").await;
    let _: SocketAddr = s.server.addr;
    s.server.shutdown().await.unwrap();
}
