//! Address parsing that tolerates what real (and anonymised) logs contain.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses a dotted-quad IPv4 address, accepting leading zeros in an octet (`08.1.250.216`,
/// `255.090.254.5`). `std` rejects those because C's `inet_aton` would read them as octal; log
/// producers (and the anonymised corpus) mean decimal, so decimal it is. At most 3 digits per
/// octet, each octet <= 255.
///
/// Every CloudTrail record's caller address comes through here. The loop has no branch that
/// depends on the text (where the dots fall differs from one address to the next, so branching on
/// it mispredicted about once per octet): each byte updates the same state, and whether the text
/// was an address at all is decided once, at the end.
pub fn parse_ipv4_lenient(s: &[u8]) -> Option<Ipv4Addr> {
    if !(7..=15).contains(&s.len()) {
        return None;
    }
    let mut octets = [0u32; 4];
    // Dots so far, digits in the current octet, and whether anything was out of place.
    let (mut dots, mut run, mut bad) = (0usize, 0u32, false);
    for &c in s {
        let dot = c == b'.';
        let digit = c.wrapping_sub(b'0');
        // A dot must end an octet of at least one digit; anything else must be a digit.
        bad |= (dot & (run == 0)) | (!dot & (digit > 9));
        let octet = &mut octets[dots.min(3)];
        let value = octet.wrapping_mul(10).wrapping_add(u32::from(digit));
        *octet = if dot { *octet } else { value };
        run = if dot { 0 } else { run + 1 };
        bad |= run > 3;
        dots += usize::from(dot);
    }
    if bad || dots != 3 || run == 0 || octets.iter().any(|o| *o > 255) {
        return None;
    }
    Some(Ipv4Addr::new(
        octets[0] as u8,
        octets[1] as u8,
        octets[2] as u8,
        octets[3] as u8,
    ))
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

    /// The rule spelled out plainly: four dot-separated runs of 1 to 3 digits, each at most 255.
    fn by_the_rule(s: &str) -> Option<Ipv4Addr> {
        let parts: Vec<&str> = s.split('.').collect();
        let ok = parts.len() == 4
            && parts.iter().all(|p| {
                (1..=3).contains(&p.len())
                    && p.bytes().all(|c| c.is_ascii_digit())
                    && p.parse::<u32>().is_ok_and(|v| v <= 255)
            });
        ok.then(|| {
            let o: Vec<u8> = parts.iter().map(|p| p.parse().unwrap()).collect();
            Ipv4Addr::new(o[0], o[1], o[2], o[3])
        })
    }

    #[test]
    fn any_text_is_read_as_the_rule_says() {
        // Texts of digits, dots and a few other bytes, lengths 0 to 17, from a fixed seed: most
        // are near misses (a dot too many, an octet of four digits, 256, a stray byte).
        let alphabet = b"0123456789.....25/:a -";
        let mut rng = crate::test_rng::XorShift(0x9E37_79B9_7F4A_7C15);
        let mut next = || rng.next();
        let mut addresses = 0;
        for i in 0..200_000 {
            let text: String = if i % 2 == 0 {
                let len = (next() % 18) as usize;
                (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                    .collect()
            } else {
                // Dot-separated runs of digits: 3 to 5 runs of 1 to 4 digits, up to 299.
                let runs = 3 + next() % 3;
                (0..runs)
                    .map(|_| {
                        let digits = 1 + (next() % 4) as usize;
                        let v = next() % 300;
                        format!("{v:0digits$}")
                    })
                    .collect::<Vec<_>>()
                    .join(".")
            };
            let expected = by_the_rule(&text);
            addresses += usize::from(expected.is_some());
            assert_eq!(parse_ipv4_lenient(text.as_bytes()), expected, "{text:?}");
        }
        assert!(
            addresses > 2_000,
            "the texts include addresses: {addresses}"
        );
        for a in ["1.2.3.4", "255.255.255.255", "0.0.0.0", "10.000.01.9"] {
            assert_eq!(parse_ipv4_lenient(a.as_bytes()), by_the_rule(a), "{a}");
            assert!(by_the_rule(a).is_some());
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
