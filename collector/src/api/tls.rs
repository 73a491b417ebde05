//! The API's listener: plain TCP, or TLS (rustls, the same ring provider ingest uses through
//! tonic) with optional client certificates (mTLS).
//!
//! Handshakes run on their own tasks, so a slow or silent client never holds up the others; the
//! connections that completed one are handed to axum with the [`Peer`] they came from. A client
//! certificate verified against `--api-client-ca` carries a role ([`role_from_cert`]):
//! * a SAN URI `ward:role:admin` or `ward:role:read`, else
//! * a subject `OU=admin` or `OU=read`;
//!
//! a certificate naming neither has no role (its requests are answered 401 unless they carry a
//! token).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::auth::Role;

/// PEM files of the API's TLS setup.
#[derive(Debug, Clone)]
pub struct ApiTls {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// CA of accepted client certificates (mTLS); `None`: no client certificates.
    pub client_ca_pem: Option<Vec<u8>>,
    /// Refuse connections without a client certificate (when there are no tokens to fall back to).
    pub require_client_cert: bool,
}

/// Where a connection came from and the role its verified client certificate names.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub cert_role: Option<Role>,
}

impl Connected<IncomingStream<'_, ApiListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, ApiListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A byte stream axum can serve: TCP or TLS over TCP.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

/// Accepted (and, with TLS, handshaken) connections.
pub struct ApiListener {
    ready: mpsc::Receiver<(Box<dyn Conn>, Peer)>,
    local: SocketAddr,
    accepting: JoinHandle<()>,
}

impl Drop for ApiListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for ApiListener {
    type Io = Box<dyn Conn>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Peer {
            addr: self.local,
            cert_role: None,
        })
    }
}

/// A handshake that has not finished by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses the PEM files into a rustls server configuration (errors name the flag).
pub fn server_config(tls: &ApiTls) -> anyhow::Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_slice_iter(&tls.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--api-tls-cert: {e}"))?;
    if certs.is_empty() {
        anyhow::bail!("--api-tls-cert: no CERTIFICATE block in the file");
    }
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem)
        .map_err(|e| anyhow::anyhow!("--api-tls-key: {e}"))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &tls.client_ca_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| anyhow::anyhow!("--api-client-ca: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| anyhow::anyhow!("--api-client-ca: {e}"))?;
            }
            if roots.is_empty() {
                anyhow::bail!("--api-client-ca: no CERTIFICATE block in the file");
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if tls.require_client_cert {
                verifier.build()
            } else {
                verifier.allow_unauthenticated().build()
            }
            .map_err(|e| anyhow::anyhow!("--api-client-ca: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("--api-tls-cert/--api-tls-key: {e}"))?;
    // HTTP/2 for gRPC clients (they require it by ALPN), HTTP/1.1 for everything else.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The role a client certificate names (see the module documentation), if any.
pub fn role_from_cert(der: &[u8]) -> Option<Role> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let parse = |text: &str| match text.to_ascii_lowercase().as_str() {
        "admin" => Some(Role::Admin),
        "read" => Some(Role::Read),
        _ => None,
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        let from_san = san.value.general_names.iter().find_map(|name| match name {
            GeneralName::URI(uri) => uri.strip_prefix("ward:role:").and_then(parse),
            _ => None,
        });
        if from_san.is_some() {
            return from_san;
        }
    }
    cert.subject()
        .iter_organizational_unit()
        .find_map(|ou| ou.as_str().ok().and_then(parse))
}

/// Starts accepting on `tcp`: with `tls`, every connection is handshaken on its own task first.
pub fn listen(tcp: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) -> ApiListener {
    let local = tcp
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let (tx, ready) = mpsc::channel::<(Box<dyn Conn>, Peer)>(64);
    let acceptor = tls.map(TlsAcceptor::from);
    let accepting = tokio::spawn(async move {
        loop {
            let (stream, addr) = match tcp.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("query API: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let Some(acceptor) = acceptor.clone() else {
                let peer = Peer {
                    addr,
                    cert_role: None,
                };
                if tx.send((Box::new(stream), peer)).await.is_err() {
                    return;
                }
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let tls =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(%addr, "query API: TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%addr, "query API: TLS handshake timed out");
                            return;
                        }
                    };
                let cert_role = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|cert| role_from_cert(cert));
                let _ = tx.send((Box::new(tls), Peer { addr, cert_role })).await;
            });
        }
    });
    ApiListener {
        ready,
        local,
        accepting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::devcerts::DevCa;

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn roles_come_from_the_san_uri_else_the_organizational_unit() {
        let ca = DevCa::new("test CA").unwrap();
        let admin = ca.api_client("ops", "admin").unwrap();
        assert_eq!(role_from_cert(&der(&admin.cert)), Some(Role::Admin));
        let read = ca.api_client("grafana", "read").unwrap();
        assert_eq!(role_from_cert(&der(&read.cert)), Some(Role::Read));
        // OU alone, and a SAN URI that wins over the OU.
        let make = |ou: &str, san: Option<&str>| {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationalUnitName, ou);
            if let Some(uri) = san {
                params.subject_alt_names = vec![rcgen::SanType::URI(uri.try_into().unwrap())];
            }
            let key = rcgen::KeyPair::generate().unwrap();
            params.self_signed(&key).unwrap().der().to_vec()
        };
        assert_eq!(role_from_cert(&make("Admin", None)), Some(Role::Admin));
        assert_eq!(role_from_cert(&make("ops", None)), None);
        assert_eq!(
            role_from_cert(&make("admin", Some("ward:role:read"))),
            Some(Role::Read)
        );
        // An agent's certificate (CN only) names no role.
        let agent = ca.agent("i-0abc").unwrap();
        assert_eq!(role_from_cert(&der(&agent.cert)), None);
        assert_eq!(role_from_cert(b"not a certificate"), None);
    }
}
