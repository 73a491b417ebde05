//! Well-known public DNS resolvers and their DNS-over-TLS / DNS-over-HTTPS endpoints, shipped as
//! data (`collector/intel/public-resolvers.txt`, which says what it holds and where it comes
//! from), and what kind of DNS a flow to a remote address and port is.

use std::net::Ipv4Addr;
use std::sync::OnceLock;

use foldhash::{HashMap, HashMapExt};
use serde::{Deserialize, Serialize};

use crate::findings::FindingType;

const PUBLIC_RESOLVERS: &str = include_str!("../../../intel/public-resolvers.txt");

/// How an instance talks to a resolver outside its VPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsKind {
    /// Plain DNS (UDP or TCP 53) to a public resolver.
    Dns,
    /// DNS over TLS (TCP 853).
    Dot,
    /// DNS over HTTPS (TCP or UDP 443) to a resolver's DoH endpoint.
    Doh,
}

impl DnsKind {
    fn bit(self) -> u8 {
        match self {
            Self::Dns => 1,
            Self::Dot => 2,
            Self::Doh => 4,
        }
    }

    pub fn finding_type(self) -> FindingType {
        match self {
            Self::Dns => FindingType::DefenseEvasionEc2UnusualDnsResolver,
            Self::Dot => FindingType::DefenseEvasionEc2UnusualDotActivity,
            Self::Doh => FindingType::DefenseEvasionEc2UnusualDohActivity,
        }
    }

    /// As in titles and the `remote` aggregation fact.
    pub fn label(self) -> &'static str {
        match self {
            Self::Dns => "DNS",
            Self::Dot => "DoT",
            Self::Doh => "DoH",
        }
    }
}

/// Address → the kinds (bits of [`DnsKind`]) the resolver offers there.
fn parse(text: &str) -> Result<HashMap<u32, u8>, String> {
    let mut table = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |m: String| format!("public-resolvers.txt line {}: {m}", index + 1);
        let mut words = line.split_whitespace();
        let ip: Ipv4Addr = words
            .next()
            .expect("non-empty line has a word")
            .parse()
            .map_err(|e| at(format!("{e}")))?;
        let kinds = words
            .next()
            .ok_or_else(|| at("no protocols after the address".into()))?;
        let mut bits = 0;
        for kind in kinds.split(',') {
            bits |= match kind {
                "dns" => DnsKind::Dns.bit(),
                "dot" => DnsKind::Dot.bit(),
                "doh" => DnsKind::Doh.bit(),
                other => return Err(at(format!("unknown protocol {other:?}"))),
            };
        }
        if words.next().is_none() {
            return Err(at("no operator after the protocols".into()));
        }
        table.insert(u32::from(ip), bits);
    }
    Ok(table)
}

fn table() -> &'static HashMap<u32, u8> {
    static TABLE: OnceLock<HashMap<u32, u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        parse(PUBLIC_RESOLVERS).expect("embedded resolver list is valid (checked by tests)")
    })
}

/// What kind of DNS a connection from the instance to `remote:port` over `protocol` is, if any:
/// TCP 853 to any address is DoT; 53 and 443 count only for the listed resolvers.
pub fn classify(remote: Ipv4Addr, protocol: u8, port: u16) -> Option<DnsKind> {
    let kind = match (protocol, port) {
        (6, 853) => return Some(DnsKind::Dot),
        (6 | 17, 53) => DnsKind::Dns,
        (6 | 17, 443) => DnsKind::Doh,
        _ => return None,
    };
    let offered = *table().get(&u32::from(remote))?;
    (offered & kind.bit() != 0).then_some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_list_parses_and_classifies_by_port() {
        let t = parse(PUBLIC_RESOLVERS).unwrap();
        assert!(t.len() >= 40, "{} resolvers", t.len());
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(classify(ip("8.8.8.8"), 17, 53), Some(DnsKind::Dns));
        assert_eq!(classify(ip("1.1.1.1"), 6, 443), Some(DnsKind::Doh));
        assert_eq!(classify(ip("1.1.1.1"), 17, 443), Some(DnsKind::Doh));
        assert_eq!(classify(ip("198.51.100.7"), 6, 853), Some(DnsKind::Dot));
        // An ordinary web server, or a resolver's address on another port.
        assert_eq!(classify(ip("198.51.100.7"), 6, 443), None);
        assert_eq!(classify(ip("198.51.100.7"), 17, 53), None);
        assert_eq!(classify(ip("8.8.8.8"), 6, 80), None);
        // Level3 offers plain DNS only; Mullvad encrypted DNS only.
        assert_eq!(classify(ip("4.2.2.2"), 6, 443), None);
        assert_eq!(classify(ip("194.242.2.2"), 17, 53), None);
        assert_eq!(classify(ip("194.242.2.2"), 6, 443), Some(DnsKind::Doh));
    }

    #[test]
    fn bad_lines_name_their_line() {
        let e = parse("# c\n8.8.8.8 dns Google\n8.8.8 dns Google\n").unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        let e = parse("8.8.8.8 dns,ftp Google\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("ftp"), "{e}");
        let e = parse("8.8.8.8 dns\n").unwrap_err();
        assert!(e.contains("operator"), "{e}");
    }
}
