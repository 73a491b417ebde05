//! One list entry: an IPv4 address, a CIDR block, an address range, a domain, a `*.` wildcard
//! domain or a file's SHA-256, parsed and normalised the same way whichever file format it came from.

use std::fmt;
use std::net::Ipv4Addr;

/// A normalised list entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Indicator {
    Ip(Ipv4Addr),
    /// Network address (host bits cleared) and prefix length.
    Cidr(Ipv4Addr, u8),
    /// Inclusive range, as STIX's `InclusiveBetween` condition gives it.
    Range(Ipv4Addr, Ipv4Addr),
    /// Lower-case, no trailing dot.
    Domain(String),
    /// `*.example.org` stored as `example.org`: matches names strictly below it.
    WildcardDomain(String),
    /// A file's SHA-256, 64 lower-case hex digits (entity lists only: GuardDuty's IP lists hold
    /// addresses, and its runtime intel matches executables by SHA-256).
    Sha256(String),
}

impl Indicator {
    pub fn is_domain(&self) -> bool {
        matches!(self, Self::Domain(_) | Self::WildcardDomain(_))
    }

    pub fn is_file_hash(&self) -> bool {
        matches!(self, Self::Sha256(_))
    }

    /// Parses one entry as written in a TXT line or a CSV cell.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty entry".into());
        }
        if text.bytes().all(|b| b.is_ascii_hexdigit()) {
            match text.len() {
                64 => return Ok(Self::Sha256(text.to_ascii_lowercase())),
                32 | 40 => {
                    return Err(format!(
                        "{text:?} looks like an MD5 or SHA-1 hash; file hashes must be SHA-256"
                    ));
                }
                _ => {}
            }
        }
        if text.contains("://") {
            return Err(format!(
                "{text:?} is a URL; lists hold IPv4 addresses, CIDR blocks and domain names"
            ));
        }
        if text.contains(':') {
            return Err(format!(
                "{text:?} looks like IPv6, which GuardDuty lists do not support"
            ));
        }
        if let Some((address, prefix)) = text.split_once('/') {
            return parse_cidr(address, prefix, text);
        }
        if looks_numeric(text) {
            return parse_ipv4(text).map(Self::Ip);
        }
        if let Some(suffix) = text.strip_prefix("*.") {
            if !suffix.trim_end_matches('.').contains('.') {
                return Err(format!("{text:?} wildcards a whole top-level domain"));
            }
            return normalise_domain(suffix).map(Self::WildcardDomain);
        }
        if text.contains('*') {
            return Err(format!(
                "{text:?}: a wildcard is only allowed as the leading label (*.example.org)"
            ));
        }
        normalise_domain(text).map(Self::Domain)
    }

    /// An inclusive range; collapses to `Ip` when both ends are equal.
    pub fn range(start: &str, end: &str) -> Result<Self, String> {
        let (start, end) = (parse_ipv4(start.trim())?, parse_ipv4(end.trim())?);
        if u32::from(start) > u32::from(end) {
            return Err(format!("range start {start} is after its end {end}"));
        }
        Ok(if start == end {
            Self::Ip(start)
        } else {
            Self::Range(start, end)
        })
    }
}

impl fmt::Display for Indicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Cidr(ip, prefix) => write!(f, "{ip}/{prefix}"),
            Self::Range(start, end) => write!(f, "{start}-{end}"),
            Self::Domain(domain) => f.write_str(domain),
            Self::WildcardDomain(suffix) => write!(f, "*.{suffix}"),
            Self::Sha256(hash) => f.write_str(hash),
        }
    }
}

fn looks_numeric(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

fn parse_ipv4(text: &str) -> Result<Ipv4Addr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a valid IPv4 address"))
}

fn parse_cidr(address: &str, prefix: &str, whole: &str) -> Result<Indicator, String> {
    let ip = parse_ipv4(address.trim())?;
    let prefix: u8 = prefix
        .trim()
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("{whole:?}: CIDR prefix must be a number from 0 to 32"))?;
    if prefix == 32 {
        return Ok(Indicator::Ip(ip));
    }
    // Host bits are cleared rather than refused: `192.0.2.1/24` clearly means the /24.
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    Ok(Indicator::Cidr(
        Ipv4Addr::from(u32::from(ip) & mask),
        prefix,
    ))
}

/// Lower-cases, drops one trailing dot and checks the name is a plausible public DNS name.
pub fn normalise_domain(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if name.is_empty() {
        return Err("empty domain name".into());
    }
    if !name.is_ascii() {
        return Err(format!(
            "{name:?} is not ASCII; write internationalised names in punycode (xn--…)"
        ));
    }
    if name.len() > 253 {
        return Err(format!(
            "domain name is {} characters long; the DNS limit is 253",
            name.len()
        ));
    }
    let name = name.to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err(format!("{name:?} is a single label, not a domain name"));
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "{name:?} has an empty label or one longer than 63 characters"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "{name:?} contains characters not allowed in a domain name"
            ));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "{name:?} is neither a valid IPv4 address nor a domain name"
        ));
    }
    Ok(name)
}

/// Whether GuardDuty would apply a list entry to this address: lists apply to publicly routable
/// addresses only. Private, loopback, link-local, shared (CGNAT), multicast, reserved, benchmarking
/// and "this network" ranges are excluded. The documentation ranges (192.0.2.0/24, 198.51.100.0/24,
/// 203.0.113.0/24) are deliberately treated as routable: AWS's list examples and the GuardDuty
/// tester's fake command-and-control address use them.
pub fn is_publicly_routable(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || o[0] == 0
        || o[0] >= 240
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || (o[0] == 198 && (18..20).contains(&o[1]))
        || (o[0] == 192 && o[1] == 0 && o[2] == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            Indicator::parse("192.0.2.1"),
            Ok(Indicator::Ip(ip("192.0.2.1")))
        );
        assert_eq!(
            Indicator::parse(" 192.0.2.0/24 "),
            Ok(Indicator::Cidr(ip("192.0.2.0"), 24))
        );
        assert_eq!(
            Indicator::parse("192.0.2.77/24"),
            Ok(Indicator::Cidr(ip("192.0.2.0"), 24))
        );
        assert_eq!(
            Indicator::parse("205.0.0.0/8"),
            Ok(Indicator::Cidr(ip("205.0.0.0"), 8))
        );
        assert_eq!(
            Indicator::parse("198.51.100.1/32"),
            Ok(Indicator::Ip(ip("198.51.100.1")))
        );
        assert_eq!(
            Indicator::parse("Example.COM."),
            Ok(Indicator::Domain("example.com".into()))
        );
        assert_eq!(
            Indicator::parse("*.example.org"),
            Ok(Indicator::WildcardDomain("example.org".into()))
        );
        assert_eq!(
            Indicator::range("192.0.2.0", "192.0.2.255"),
            Ok(Indicator::Range(ip("192.0.2.0"), ip("192.0.2.255")))
        );
        assert_eq!(
            Indicator::range("192.0.2.5", "192.0.2.5"),
            Ok(Indicator::Ip(ip("192.0.2.5")))
        );
    }

    #[test]
    fn rejects_bad_entries_with_reasons() {
        let cases = [
            ("", "empty"),
            ("999.1.1.1", "not a valid IPv4"),
            ("1.2.3", "not a valid IPv4"),
            ("10.0.0.0/33", "prefix"),
            ("10.0.0.0/x", "prefix"),
            ("2001:db8::1", "IPv6"),
            ("http://bad.example.com/x", "URL"),
            ("*.com", "top-level"),
            ("bad.*.example.com", "leading label"),
            ("localhost", "single label"),
            ("exa mple.com", "not allowed"),
            ("a..b.com", "empty label"),
            ("bücher.de", "punycode"),
            ("192.0.2.10-192.0.2.1", "neither"),
        ];
        for (input, reason) in cases {
            let err = Indicator::parse(input).unwrap_err();
            assert!(err.contains(reason), "{input:?}: {err}");
        }
        assert!(
            Indicator::range("192.0.2.9", "192.0.2.1")
                .unwrap_err()
                .contains("after")
        );
    }

    #[test]
    fn routable_excludes_special_ranges_but_keeps_documentation_ranges() {
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "0.1.2.3",
            "255.255.255.255",
            "240.0.0.1",
            "198.18.0.1",
        ] {
            assert!(!is_publicly_routable(ip(private)), "{private}");
        }
        for public in [
            "8.8.8.8",
            "54.20.175.217",
            "203.0.113.1",
            "198.51.100.1",
            "192.0.2.1",
            "172.32.0.1",
            "100.128.0.1",
        ] {
            assert!(is_publicly_routable(ip(public)), "{public}");
        }
    }
}
