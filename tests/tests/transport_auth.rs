//! Authentication: only clients with a certificate from the configured CA get a stream, and the agent
//! id is the certificate's, whatever the agent claims.

#[path = "transport_common.rs"]
mod common;

use std::time::Duration;

use common::*;
use tokio_stream_shim::once_then_pending;
use ward_proto::tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use ward_proto::tonic::{Code, Status};
use ward_proto::v1::{self as pb, agent_message, collector_message, ingest_client::IngestClient};

/// A Hello from `claimed`, over a client TLS config that may lack a certificate.
async fn hello(
    addr: std::net::SocketAddr,
    tls: ClientTlsConfig,
    claimed: &str,
) -> Result<pb::Welcome, Status> {
    let channel = Endpoint::from_shared(format!("https://127.0.0.1:{}", addr.port()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| Status::unavailable(format!("connect: {e:?}")))?;
    let msg = pb::AgentMessage {
        msg: Some(agent_message::Msg::Hello(pb::Hello {
            protocol: ward_proto::PROTOCOL_VERSION.into(),
            host: Some(pb::HostIdentity {
                agent_id: claimed.into(),
                ..Default::default()
            }),
        })),
    };
    let mut inbound = IngestClient::new(channel)
        .stream(once_then_pending(msg))
        .await?
        .into_inner();
    match inbound.message().await? {
        Some(pb::CollectorMessage {
            msg: Some(collector_message::Msg::Welcome(w)),
        }) => Ok(w),
        other => Err(Status::internal(format!("unexpected {other:?}"))),
    }
}

fn tls_with(pki: &Pki, identity: Option<(String, String)>) -> ClientTlsConfig {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca.pem.cert))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    tls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_a_valid_certificate_are_refused() {
    let pki = Pki::generate();
    let dir = TempDir::new("auth");
    let server = start_collector(&pki, dir.path(), "127.0.0.1:0".parse().unwrap()).await;

    // No client certificate at all: the handshake (or the first request) fails.
    let r = hello(server.addr, tls_with(&pki, None), "agent-x").await;
    assert!(r.is_err(), "a client without a certificate got {r:?}");

    // A certificate from another CA, with the name of a real agent.
    let rogue = Pki::generate();
    let pem = rogue.ca.agent("agent-a").unwrap();
    let r = hello(
        server.addr,
        tls_with(&pki, Some((pem.cert, pem.key))),
        "agent-a",
    )
    .await;
    assert!(r.is_err(), "a certificate from another CA got {r:?}");

    // A valid agent is still served.
    let pem = pki.ca.agent("agent-a").unwrap();
    let w = hello(
        server.addr,
        tls_with(&pki, Some((pem.cert, pem.key))),
        "agent-a",
    )
    .await
    .expect("valid agent");
    assert_eq!(w.agent_id, "agent-a");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_claiming_another_agents_id_is_not_believed() {
    let pki = Pki::generate();
    let dir = TempDir::new("impostor");
    let data = dir.path().join("data");
    let server = start_collector(&pki, &data, "127.0.0.1:0".parse().unwrap()).await;

    // agent-a sends some batches.
    let cfg = agent_config(
        server.addr,
        pki.client_tls("agent-a"),
        "agent-a",
        &dir.path().join("a"),
    );
    let (mut sink, handle) = start_agent(cfg);
    for i in 0..500 {
        sink.push(&event(1, i)).unwrap();
    }
    drop(sink);
    tokio::task::spawn_blocking(move || handle.join().unwrap())
        .await
        .unwrap();

    // agent-b's certificate, claiming to be agent-a: refused, and says why.
    let pem = pki.ca.agent("agent-b").unwrap();
    let err = hello(
        server.addr,
        tls_with(&pki, Some((pem.cert.clone(), pem.key.clone()))),
        "agent-a",
    )
    .await
    .expect_err("impostor accepted");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("agent-b"), "{}", err.message());
    assert_eq!(
        server
            .metrics
            .refused(ward_collector::ingest::metrics::Refusal::IdentityMismatch),
        1
    );

    // The same transport code with agent-b's certificate but agent-a's id in its Hello gets nowhere:
    // nothing it sends is stored as agent-a (or at all).
    let mut tls = pki.client_tls("agent-a");
    tls.cert_pem = pem.cert.into_bytes();
    tls.key_pem = pem.key.into_bytes();
    let mut cfg = agent_config(server.addr, tls, "agent-a", &dir.path().join("b"));
    cfg.drain_timeout = Duration::from_secs(1);
    let (mut sink, handle) = start_agent(cfg);
    for i in 0..100 {
        sink.push(&event(666, i)).unwrap();
    }
    drop(sink);
    tokio::task::spawn_blocking(move || handle.join().unwrap())
        .await
        .unwrap();
    server.shutdown().await.unwrap();
    let stored = stored_events(&data);
    assert_eq!(stored.keys().collect::<Vec<_>>(), vec!["agent-a"]);
    let (idx, _) = split_loss(&stored["agent-a"]);
    assert_eq!(idx, (0..500).collect::<Vec<u64>>());
    assert!(
        stored["agent-a"]
            .iter()
            .all(|e| e.process.as_ref().unwrap().pid == 1)
    );
}

/// A request stream that yields one message and then stays open (so the server's answer is awaited).
mod tokio_stream_shim {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub struct OnceThenPending<T>(Option<T>);

    impl<T: Unpin> ward_proto::tonic::codegen::tokio_stream::Stream for OnceThenPending<T> {
        type Item = T;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<T>> {
            match self.0.take() {
                Some(v) => Poll::Ready(Some(v)),
                None => Poll::Pending,
            }
        }
    }

    pub fn once_then_pending<T>(v: T) -> OnceThenPending<T> {
        OnceThenPending(Some(v))
    }
}
