//! Lexical properties of DNS names used by the exfiltration and DGA analyses.

/// Second-level labels under which country-code TLDs register names (`example.co.uk`). An
/// approximation of the public-suffix list that covers the common cases without shipping it.
const CC_SECOND_LEVEL: &[&str] = &[
    "co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go", "gob", "mil", "nic",
];

/// The registrable domain of `name` (lower case, no trailing dot): the last two labels, or three
/// under a country-code second level (`a.b.example.co.uk` → `example.co.uk`). A name with fewer
/// labels is its own registrable domain.
pub fn registrable(name: &str) -> &str {
    let mut dots = memchr::memrchr_iter(b'.', name.as_bytes());
    let Some(last) = dots.next() else { return name };
    let Some(second) = dots.next() else {
        return name;
    };
    let tld = &name[last + 1..];
    let sld = &name[second + 1..last];
    if tld.len() == 2 && CC_SECOND_LEVEL.contains(&sld) {
        return match dots.next() {
            Some(third) => &name[third + 1..],
            None => name,
        };
    }
    &name[second + 1..]
}

/// The part of `name` in front of its registrable domain (without the joining dot), or "".
pub fn subdomain<'n>(name: &'n str, registrable: &str) -> &'n str {
    name.len()
        .checked_sub(registrable.len() + 1)
        .map_or("", |end| &name[..end])
}

/// Shannon entropy of the bytes of `text` that are not dots, in bits per character.
pub fn entropy(text: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in text.bytes().filter(|b| *b != b'.') {
        counts[usize::from(b)] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = f64::from(n);
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether a subdomain looks like encoded data: long (at least `min_len` characters without
/// dots) and close to random (at least `min_entropy` bits per character). Host names, CDN edge
/// names and service endpoints are short or repetitive; base32/base64/hex payloads are neither.
pub fn looks_encoded(sub: &str, min_len: usize, min_entropy: f64) -> bool {
    let len = sub.bytes().filter(|b| *b != b'.').count();
    len >= min_len && entropy(sub) >= min_entropy
}

/// Whether the label left of the public suffix looks machine-generated: long enough, few vowels
/// or mixed digits, and high entropy. Used only on names that did not resolve (NXDOMAIN).
pub fn looks_generated(registrable: &str) -> bool {
    let label = registrable.split('.').next().unwrap_or("");
    if label.len() < 10 {
        return false;
    }
    let vowels = label.bytes().filter(|b| b"aeiou".contains(b)).count();
    let digits = label.bytes().filter(u8::is_ascii_digit).count();
    let vowel_ratio = vowels as f64 / label.len() as f64;
    entropy(label) >= 3.0 && (vowel_ratio < 0.25 || digits * 4 >= label.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_domains() {
        assert_eq!(registrable("a.b.example.com"), "example.com");
        assert_eq!(registrable("example.com"), "example.com");
        assert_eq!(registrable("www.bbc.co.uk"), "bbc.co.uk");
        assert_eq!(registrable("co.uk"), "co.uk");
        assert_eq!(registrable("localhost"), "localhost");
        assert_eq!(subdomain("a.b.example.com", "example.com"), "a.b");
        assert_eq!(subdomain("example.com", "example.com"), "");
    }

    #[test]
    fn entropy_separates_payloads_from_host_names() {
        assert!(entropy("aaaa") < 0.01);
        assert!((entropy("abcd") - 2.0).abs() < 1e-9);
        assert!(looks_encoded(
            "0ubb0EnPJyobGCgvGSgK36CdGWkyY87aklIyGzJW3GuhS1TzzuqXaSiaPvenqJ.3gbIyxfIywjG3UHqwOIsjYrMzKDapb3doq",
            40,
            4.0
        ));
        for host in [
            "www",
            "d1a2b3c4d5e6f7.cloudfront",
            "ec2-54-12-34-56.compute-1",
            "e1234.dscb",
            "ip-10-0-1-23.us-west-2.compute",
            "my-load-balancer-1234567890.us-east-1.elb",
        ] {
            assert!(!looks_encoded(host, 40, 4.0), "{host}");
        }
    }

    #[test]
    fn generated_labels() {
        assert!(looks_generated("xjkqpwzvbtrm.com"));
        assert!(looks_generated("a8f3k29dk3l2m.net"));
        assert!(!looks_generated("wikipedia.org"));
        assert!(!looks_generated("example.com"));
        assert!(!looks_generated("internationalbusiness.com"));
    }
}
