//! Who is on the other end of a stream: the subject common name of the client certificate that the TLS
//! layer already verified against the configured CA. What the agent claims in its Hello is only
//! compared with it, never used instead of it.

use x509_parser::prelude::{FromDer, X509Certificate};

/// The agent id a verified client certificate names (its subject CN), if any.
pub fn agent_id_from_cert(der: &[u8]) -> Result<String, String> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("unparseable client certificate: {e}"))?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .ok_or("client certificate has no subject common name")?;
    let id = cn
        .as_str()
        .map_err(|e| format!("client certificate common name is not a string: {e}"))?;
    valid_agent_id(id)?;
    Ok(id.to_string())
}

/// Agent ids are names in logs, metrics and the store: printable, bounded.
pub fn valid_agent_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 253 {
        return Err(format!("agent id must be 1-253 bytes, got {}", id.len()));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b))
    {
        return Err(format!(
            "agent id {id:?} has characters outside [A-Za-z0-9-_.:@]"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::devcerts::DevCa;

    #[test]
    fn common_name_is_the_agent_id() {
        let ca = DevCa::new("test CA").unwrap();
        let pem = ca.agent("i-0abc.host-1").unwrap();
        let der = x509_parser::pem::parse_x509_pem(pem.cert.as_bytes())
            .unwrap()
            .1
            .contents;
        assert_eq!(agent_id_from_cert(&der).unwrap(), "i-0abc.host-1");
    }

    #[test]
    fn odd_ids_are_refused() {
        assert!(valid_agent_id("").is_err());
        assert!(valid_agent_id("a b").is_err());
        assert!(valid_agent_id("a\nb").is_err());
        assert!(valid_agent_id(&"x".repeat(254)).is_err());
        assert!(valid_agent_id("node-1.example:agent").is_ok());
    }
}
