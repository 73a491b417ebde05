//! What Ward treats as "inside AWS": the address ranges AWS publishes in `ip-ranges.json`
//! (<https://ip-ranges.amazonaws.com/ip-ranges.json>), given with `scan --aws-ip-ranges FILE`.
//!
//! GuardDuty knows which AWS account owns every AWS address; Ward does not. It uses the published
//! ranges instead: an address inside any published prefix (any service: EC2, AMAZON, ...) is inside
//! AWS, every other publicly routable address is outside. Without the file Ward cannot tell, and
//! treats every public address as outside AWS (so instance credentials used from any public address
//! that is not the instance's raise the `.OutsideAWS` type). Private and other non-routable
//! addresses never reach that question: they are inside the VPC the call came from.

use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

use crate::intel::{Indicator, IpSet, IpSetBuilder};

#[derive(Debug, Clone, Default)]
pub struct AwsRanges {
    v4: IpSet,
    /// (network, prefix length); the IPv6 list is short enough (a few thousand) to scan.
    v6: Vec<(u128, u8)>,
    loaded: bool,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    prefixes: Vec<V4Prefix>,
    #[serde(default)]
    ipv6_prefixes: Vec<V6Prefix>,
}

#[derive(Deserialize)]
struct V4Prefix {
    ip_prefix: String,
}

#[derive(Deserialize)]
struct V6Prefix {
    ipv6_prefix: String,
}

impl AwsRanges {
    /// Parses `ip-ranges.json`; a bad prefix is an error naming its index.
    pub fn from_json_str(text: &str) -> Result<Self, String> {
        let file: File = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let mut v4 = IpSetBuilder::default();
        for (i, p) in file.prefixes.iter().enumerate() {
            let indicator = Indicator::parse(&p.ip_prefix)
                .map_err(|e| format!("prefixes[{i}] {:?}: {e}", p.ip_prefix))?;
            if !v4.add(&indicator) {
                return Err(format!("prefixes[{i}] {:?}: not an address", p.ip_prefix));
            }
        }
        let mut v6 = Vec::with_capacity(file.ipv6_prefixes.len());
        for (i, p) in file.ipv6_prefixes.iter().enumerate() {
            let bad = || format!("ipv6_prefixes[{i}] {:?}: not an IPv6 CIDR", p.ipv6_prefix);
            let (net, len) = p.ipv6_prefix.split_once('/').ok_or_else(bad)?;
            let net: std::net::Ipv6Addr = net.parse().map_err(|_| bad())?;
            let len: u8 = len.parse().ok().filter(|l| *l <= 128).ok_or_else(bad)?;
            v6.push((u128::from(net) & mask(len), len));
        }
        Ok(Self {
            v4: v4.build(),
            v6,
            loaded: true,
        })
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_json_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Whether ranges were given at all.
    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Inside a published AWS prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.v4.contains(v4),
            IpAddr::V6(v6) => {
                let a = u128::from(v6);
                self.v6.iter().any(|&(net, len)| a & mask(len) == net)
            }
        }
    }
}

fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    }
}

/// Publicly routable (IPv4 by GuardDuty's list rule; IPv6: global unicast, not ULA/link-local).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => crate::intel::is_publicly_routable(v4),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xff00) == 0xff00)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_prefixes_are_inside_and_bad_ones_are_named() {
        let r = AwsRanges::from_json_str(
            r#"{"syncToken":"1","prefixes":[{"ip_prefix":"52.42.0.0/16","region":"us-west-2","service":"EC2"}],
                "ipv6_prefixes":[{"ipv6_prefix":"2600:1f00::/24","service":"AMAZON"}]}"#,
        )
        .unwrap();
        assert!(r.is_loaded());
        assert!(r.contains("52.42.146.205".parse().unwrap()));
        assert!(!r.contains("45.33.32.156".parse().unwrap()));
        assert!(r.contains("2600:1f14::1".parse().unwrap()));
        assert!(!r.contains("2a00::1".parse().unwrap()));
        let e =
            AwsRanges::from_json_str(r#"{"prefixes":[{"ip_prefix":"1.2.3.0/40"}]}"#).unwrap_err();
        assert!(e.contains("prefixes[0]"), "{e}");
        assert!(!AwsRanges::default().is_loaded());
        assert!(is_public("45.33.32.156".parse().unwrap()));
        assert!(!is_public("10.0.1.50".parse().unwrap()));
        assert!(!is_public("fd00::1".parse().unwrap()));
    }
}
