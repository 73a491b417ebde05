//! The query API over TLS and mTLS on loopback, against a real store file: a client trusting the
//! API's CA gets answers (tokens keep working), one trusting another CA is refused at the
//! handshake; with client certificates the role comes from the certificate (a read certificate
//! gets 403 on archive, an admin certificate archives, a certificate naming no role gets 401, one
//! from another CA or none at all is refused); gRPC works over the same TLS port.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use ward_collector::api::{self, Access, ApiConfig, ApiHandle, ApiTls};
use ward_collector::findings::Finding;
use ward_collector::ingest::devcerts::{DevCa, Pem};
use ward_collector::store::{Store, StoreConfig, WriteBatch};
use ward_proto::tonic::transport::{Certificate as GrpcCert, ClientTlsConfig, Endpoint, Identity};
use ward_proto::v1::query_client::QueryClient;
use ward_proto::v1::{FindingIds, ListFindingsRequest};

const ADMIN_TOKEN: &str = "tls-admin-token";

struct Pki {
    ca: DevCa,
    server: Pem,
    admin: Pem,
    read: Pem,
    /// A client certificate of the same CA that names no role (an agent's).
    agent: Pem,
    /// Another CA, with a client certificate claiming admin.
    other: DevCa,
    other_admin: Pem,
}

impl Pki {
    fn new() -> Pki {
        let ca = DevCa::new("api test CA").unwrap();
        let other = DevCa::new("someone else's CA").unwrap();
        Pki {
            server: ca.server(&["localhost", "127.0.0.1"]).unwrap(),
            admin: ca.api_client("ops", "admin").unwrap(),
            read: ca.api_client("grafana", "read").unwrap(),
            agent: ca.agent("i-0abc").unwrap(),
            other_admin: other.api_client("intruder", "admin").unwrap(),
            ca,
            other,
        }
    }
}

struct Server {
    rt: tokio::runtime::Runtime,
    api: Option<ApiHandle>,
    base: String,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(api) = self.api.take() {
            self.rt.block_on(api.shutdown()).unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn finding(id: &str) -> Finding {
    Finding::from_json_str(
        &json!({"schemaVersion": "2.0", "accountId": "123456789012", "region": "us-east-1",
                "id": id, "type": "Recon:EC2/Portscan", "severity": 2.0,
                "createdAt": "2026-11-29T10:00:00.000Z", "updatedAt": "2026-11-29T10:00:00.000Z",
                "service": {"archived": false, "count": 1}})
        .to_string(),
    )
    .unwrap()
}

fn start(name: &str, pki: &Pki, access: Access, client_ca: bool) -> Server {
    let dir = std::env::temp_dir().join(format!("ward-api-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir.join("ward.db"), StoreConfig::default()).unwrap();
    store
        .commit(WriteBatch {
            findings: vec![finding("f1"), finding("f2")],
            ..WriteBatch::default()
        })
        .unwrap();
    let require_client_cert = matches!(&access, Access::Tokens(t) if t.is_empty());
    let mut config = ApiConfig::new("127.0.0.1:0".parse().unwrap(), access);
    config.tls = Some(ApiTls {
        cert_pem: pki.server.cert.clone().into_bytes(),
        key_pem: pki.server.key.clone().into_bytes(),
        client_ca_pem: client_ca.then(|| pki.ca.pem.cert.clone().into_bytes()),
        require_client_cert,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let api = rt.block_on(api::start(store, config)).unwrap();
    Server {
        base: format!("https://127.0.0.1:{}", api.addr.port()),
        rt,
        api: Some(api),
        dir,
    }
}

fn agent(trusted_ca: &DevCa, client: Option<&Pem>) -> ureq::Agent {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
    let ca = Certificate::from_pem(trusted_ca.pem.cert.as_bytes()).unwrap();
    let mut tls = TlsConfig::builder().root_certs(RootCerts::Specific(Arc::new(vec![ca])));
    if let Some(c) = client {
        let cert = Certificate::from_pem(c.cert.as_bytes()).unwrap();
        let key = PrivateKey::from_pem(c.key.as_bytes()).unwrap();
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&[cert], key)));
    }
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .tls_config(tls.build())
        .build()
        .into()
}

/// `Ok((status, body))`, or the transport error's text (a refused handshake).
fn call(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    let result = match body {
        None => {
            let mut r = agent.get(url);
            if let Some(t) = token {
                r = r.header("Authorization", format!("Bearer {t}"));
            }
            r.call()
        }
        Some(body) => {
            let mut r = agent.post(url).header("Content-Type", "application/json");
            if let Some(t) = token {
                r = r.header("Authorization", format!("Bearer {t}"));
            }
            r.send(body.to_string())
        }
    };
    let mut response = result.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn hex_sha256(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn tls_serves_clients_that_trust_its_ca_and_tokens_keep_working() {
    let pki = Pki::new();
    let tokens = Access::parse(&format!("admin {}\n", hex_sha256(ADMIN_TOKEN)), "t").unwrap();
    let s = start("tokens", &pki, tokens, false);
    let list = format!("{}/v1/findings/list", s.base);
    let ok = agent(&pki.ca, None);
    let (status, page) = call(&ok, &list, Some(ADMIN_TOKEN), Some(json!({}))).unwrap();
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["findings"].as_array().unwrap().len(), 2);
    assert_eq!(
        call(&ok, &list, None, Some(json!({}))).unwrap().0,
        401,
        "TLS does not replace the token"
    );
    let err = call(&agent(&pki.other, None), &list, Some(ADMIN_TOKEN), None).unwrap_err();
    assert!(
        err.contains("UnknownIssuer") || err.contains("certificate"),
        "a client trusting another CA refuses the API: {err}"
    );
    // Plain HTTP to the TLS port is not answered as HTTP.
    let plain = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    assert!(plain.get(list.replacen("https", "http", 1)).call().is_err());
}

#[test]
fn mtls_roles_come_from_the_client_certificate() {
    let pki = Pki::new();
    let s = start("mtls", &pki, Access::certificates_only(), true);
    let list = format!("{}/v1/findings/list", s.base);
    let archive = format!("{}/v1/findings/archive", s.base);
    let ids = json!({"findingIds": ["f1"]});

    let reader = agent(&pki.ca, Some(&pki.read));
    assert_eq!(call(&reader, &list, None, Some(json!({}))).unwrap().0, 200);
    let (status, body) = call(&reader, &archive, None, Some(ids.clone())).unwrap();
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "Forbidden");

    let admin = agent(&pki.ca, Some(&pki.admin));
    let (status, body) = call(&admin, &archive, None, Some(ids.clone())).unwrap();
    assert_eq!((status, &body["changed"]), (200, &json!(["f1"])), "{body}");

    // Same CA, no role named: 401. Another CA, or no certificate: refused at the handshake.
    let no_role = agent(&pki.ca, Some(&pki.agent));
    assert_eq!(call(&no_role, &list, None, Some(json!({}))).unwrap().0, 401);
    assert!(
        call(
            &agent(&pki.ca, Some(&pki.other_admin)),
            &archive,
            None,
            Some(ids.clone())
        )
        .is_err()
    );
    assert!(call(&agent(&pki.ca, None), &list, None, Some(json!({}))).is_err());
    // A token is no way in when the API accepts certificates only.
    assert_eq!(
        call(&reader, &list, Some(ADMIN_TOKEN), Some(json!({})))
            .unwrap()
            .0,
        401
    );
}

#[test]
fn mtls_with_tokens_accepts_either_and_grpc_works_over_tls() {
    let pki = Pki::new();
    let tokens = Access::parse(&format!("admin {}\n", hex_sha256(ADMIN_TOKEN)), "t").unwrap();
    let s = start("both", &pki, tokens, true);
    let list = format!("{}/v1/findings/list", s.base);
    // Without a client certificate the token still works; with one, so does the certificate.
    let no_cert = agent(&pki.ca, None);
    assert_eq!(
        call(&no_cert, &list, Some(ADMIN_TOKEN), Some(json!({})))
            .unwrap()
            .0,
        200
    );
    assert_eq!(call(&no_cert, &list, None, Some(json!({}))).unwrap().0, 401);
    let reader = agent(&pki.ca, Some(&pki.read));
    assert_eq!(call(&reader, &list, None, Some(json!({}))).unwrap().0, 200);

    // gRPC (HTTP/2 by ALPN) on the same TLS port, roles from the certificate.
    let grpc = |client: &Pem| {
        let tls = ClientTlsConfig::new()
            .ca_certificate(GrpcCert::from_pem(&pki.ca.pem.cert))
            .identity(Identity::from_pem(&client.cert, &client.key))
            .domain_name("localhost");
        Endpoint::from_shared(s.base.clone())
            .unwrap()
            .tls_config(tls)
            .unwrap()
    };
    s.rt.block_on(async {
        let mut admin = QueryClient::new(grpc(&pki.admin).connect().await.unwrap());
        let page = admin
            .list_findings(ListFindingsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.findings_json.len(), 2);
        let mut read = QueryClient::new(grpc(&pki.read).connect().await.unwrap());
        let refused = read
            .archive_findings(FindingIds {
                finding_ids: vec!["f2".into()],
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), ward_proto::tonic::Code::PermissionDenied);
        let done = admin
            .archive_findings(FindingIds {
                finding_ids: vec!["f2".into()],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(done.changed, ["f2"]);
    });
}
