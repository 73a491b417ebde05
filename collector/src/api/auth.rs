//! Bearer-token authentication: a file of SHA-256 token hashes with a role each.
//!
//! The file never holds a token, so reading it does not leak one. A presented token is hashed and
//! compared against every entry without stopping at the first difference (constant time in the
//! token's content).

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Read,
    Admin,
}

#[derive(Debug, Clone)]
pub struct Entry {
    hash: [u8; 32],
    role: Role,
}

/// Who may call the API.
#[derive(Debug, Clone)]
pub enum Access {
    /// Every caller is admin (no token file, no client CA; only allowed on a loopback listener).
    Open,
    /// A bearer token of this list, or a client certificate naming a role (mTLS). Empty: client
    /// certificates only.
    Tokens(Vec<Entry>),
}

/// What a request presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed(Role),
    /// No or unknown token: 401.
    Unauthenticated,
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Access {
    /// Parses a token file: `ROLE SHA256-HEX [NAME]` per line, `#` comments.
    pub fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let at = format!("{origin}:{}", i + 1);
            let mut words = line.split_whitespace();
            let role = match words.next() {
                Some("read") => Role::Read,
                Some("admin") => Role::Admin,
                Some(other) => return Err(format!("{at}: role {other:?} is not read or admin")),
                None => unreachable!("line is not empty"),
            };
            let hash = words.next().and_then(parse_hex).ok_or_else(|| {
                format!("{at}: expected the token's SHA-256 as 64 hex digits after the role (printf %s \"$TOKEN\" | sha256sum)")
            })?;
            entries.push(Entry { hash, role });
        }
        if entries.is_empty() {
            return Err(format!("{origin}: no tokens"));
        }
        Ok(Self::Tokens(entries))
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Client certificates (verified by the TLS layer) are the only credentials.
    pub fn certificates_only() -> Self {
        Self::Tokens(Vec::new())
    }

    /// Checks an `Authorization` header value and the role of the connection's verified client
    /// certificate. A bearer token, when presented, decides; without one the certificate does.
    pub fn check(&self, authorization: Option<&str>, cert_role: Option<Role>) -> Verdict {
        let entries = match self {
            Self::Open => return Verdict::Allowed(Role::Admin),
            Self::Tokens(entries) => entries,
        };
        let Some(token) = authorization.and_then(|h| {
            let (scheme, token) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        }) else {
            return cert_role.map_or(Verdict::Unauthenticated, Verdict::Allowed);
        };
        let presented = token_hash(token);
        let mut role = None;
        for entry in entries {
            if bool::from(entry.hash.ct_eq(&presented)) {
                role = role.max(Some(entry.role));
            }
        }
        role.map_or(Verdict::Unauthenticated, Verdict::Allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(hash: [u8; 32]) -> String {
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn token_file_roles_and_refusals() {
        let text = format!(
            "# ops\nadmin {} laptop\n\nread {}   # grafana\n",
            hex(token_hash("a-secret")),
            hex(token_hash("r-secret"))
        );
        let access = Access::parse(&text, "tokens").unwrap();
        assert_eq!(
            access.check(Some("Bearer a-secret"), None),
            Verdict::Allowed(Role::Admin)
        );
        assert_eq!(
            access.check(Some("bearer r-secret"), None),
            Verdict::Allowed(Role::Read)
        );
        assert_eq!(
            access.check(Some("Bearer nope"), None),
            Verdict::Unauthenticated
        );
        // A presented token decides even over a certificate's role.
        assert_eq!(
            access.check(Some("Bearer nope"), Some(Role::Admin)),
            Verdict::Unauthenticated
        );
        assert_eq!(
            access.check(Some("Bearer r-secret"), Some(Role::Admin)),
            Verdict::Allowed(Role::Read)
        );
        assert_eq!(
            access.check(None, Some(Role::Read)),
            Verdict::Allowed(Role::Read)
        );
        assert_eq!(
            Access::certificates_only().check(None, None),
            Verdict::Unauthenticated
        );
        assert_eq!(
            access.check(Some("Basic a-secret"), None),
            Verdict::Unauthenticated
        );
        assert_eq!(access.check(None, None), Verdict::Unauthenticated);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let err = Access::parse("admin abc\n", "t.txt").unwrap_err();
        assert!(err.starts_with("t.txt:1:"), "{err}");
        let err = Access::parse(&format!("# x\nroot {}\n", "0".repeat(64)), "t.txt").unwrap_err();
        assert!(err.starts_with("t.txt:2: role \"root\""), "{err}");
        assert!(Access::parse("# nothing\n", "t.txt").is_err());
    }
}
