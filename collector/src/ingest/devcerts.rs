//! Development certificates: a CA, a collector server certificate and one client certificate per agent
//! id (its common name is the agent id the collector records). For `cargo xtask certs` and the tests;
//! production deployments bring their own PKI.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its private key, PEM-encoded.
#[derive(Clone, Debug)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

pub struct DevCa {
    pub pem: Pem,
    issuer: Issuer<'static, KeyPair>,
}

impl DevCa {
    pub fn new(name: &str) -> Result<DevCa, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let pem = Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        };
        Ok(DevCa {
            pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// The collector's certificate, valid for the given DNS names and IP addresses.
    pub fn server(&self, names: &[&str]) -> Result<Pem, rcgen::Error> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "ward-collector");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// An agent's client certificate: subject common name = `agent_id`.
    pub fn agent(&self, agent_id: &str) -> Result<Pem, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, agent_id);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    /// A query API client's certificate: subject `CN=name, OU=role` and SAN URI `ward:role:ROLE`
    /// (`role`: `admin` or `read`; see `crate::api::tls`).
    pub fn api_client(&self, name: &str, role: &str) -> Result<Pem, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, role);
        params.subject_alt_names = vec![rcgen::SanType::URI(rcgen::string::Ia5String::try_from(
            format!("ward:role:{role}"),
        )?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, mut params: CertificateParams) -> Result<Pem, rcgen::Error> {
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// Writes `ca.pem` (+ `ca-key.pem`), `collector.pem`/`collector-key.pem` and `<agent>.pem`/
/// `<agent>-key.pem` for each agent id into `dir`. Keys are written with mode 0600.
pub fn write_dev_pki(dir: &Path, server_names: &[&str], agents: &[&str]) -> anyhow::Result<()> {
    write_dev_pki_with_api_clients(dir, server_names, agents, &[])
}

/// [`write_dev_pki`], plus a query API client certificate `<name>.pem`/`<name>-key.pem` per
/// `(name, role)` ([`DevCa::api_client`]).
pub fn write_dev_pki_with_api_clients(
    dir: &Path,
    server_names: &[&str],
    agents: &[&str],
    api_clients: &[(&str, &str)],
) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let ca = DevCa::new("Ward development CA")?;
    write_pair(dir, "ca", &ca.pem)?;
    write_pair(dir, "collector", &ca.server(server_names)?)?;
    for a in agents {
        if a.is_empty() || a.contains(['/', '\\']) || a.starts_with('.') {
            anyhow::bail!("agent id {a:?} cannot be used as a file name");
        }
        write_pair(dir, a, &ca.agent(a)?)?;
    }
    for (name, role) in api_clients {
        write_pair(dir, name, &ca.api_client(name, role)?)?;
    }
    Ok(())
}

fn write_pair(dir: &Path, name: &str, pem: &Pem) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::write(dir.join(format!("{name}.pem")), &pem.cert)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dir.join(format!("{name}-key.pem")))?;
    f.write_all(pem.key.as_bytes())?;
    Ok(())
}
