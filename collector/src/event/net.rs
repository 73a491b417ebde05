//! Address parsing that tolerates what real (and anonymised) logs contain.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses a dotted-quad IPv4 address, accepting leading zeros in an octet (`08.1.250.216`,
/// `255.090.254.5`). `std` rejects those because C's `inet_aton` would read them as octal; log
/// producers (and the anonymised corpus) mean decimal, so decimal it is. At most 3 digits per
/// octet, each octet <= 255.
pub fn parse_ipv4_lenient(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut idx = 0;
    let mut val: u32 = 0;
    let mut digits = 0;
    for &c in s {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                if digits > 3 {
                    return None;
                }
                val = val * 10 + u32::from(c - b'0');
            }
            b'.' => {
                if digits == 0 || val > 255 || idx == 3 {
                    return None;
                }
                octets[idx] = val as u8;
                idx += 1;
                val = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    if idx != 3 || digits == 0 || val > 255 {
        return None;
    }
    octets[3] = val as u8;
    Some(Ipv4Addr::from(octets))
}

/// IPv4 (lenient, see [`parse_ipv4_lenient`]) or IPv6 (`std` syntax, optional `[...]`).
pub fn parse_ip_lenient(s: &str) -> Option<IpAddr> {
    let b = s.as_bytes();
    if let Some(v4) = parse_ipv4_lenient(b) {
        return Some(IpAddr::V4(v4));
    }
    if !s.contains(':') {
        return None;
    }
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zero_quads_are_decimal() {
        assert_eq!(
            parse_ip_lenient("08.1.250.216"),
            Some("8.1.250.216".parse().unwrap())
        );
        assert_eq!(
            parse_ip_lenient("255.090.254.5"),
            Some("255.90.254.5".parse().unwrap())
        );
        assert_eq!(
            parse_ip_lenient("035.249.253.232"),
            Some("35.249.253.232".parse().unwrap())
        );
        assert_eq!(
            parse_ip_lenient("000.000.000.000"),
            Some("0.0.0.0".parse().unwrap())
        );
    }

    #[test]
    fn rejects_non_addresses() {
        for s in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.0004",
            "1..2.3",
            "1.2.3.4 ",
            "192.0.2e.44",
            "AWS Internal",
            "ec2.amazonaws.com",
            ".1.2.3",
            "1.2.3.",
        ] {
            assert_eq!(parse_ip_lenient(s), None, "{s:?}");
        }
    }

    #[test]
    fn ipv6_forms() {
        assert!(parse_ip_lenient("2001:db8:1234:a100:8d6e:3477:df66:f105").is_some());
        assert!(parse_ip_lenient("[::1]").is_some());
        assert!(parse_ip_lenient("::ffff:1.2.3.4").is_some());
        assert_eq!(parse_ip_lenient("2001:db8::g"), None);
    }
}
