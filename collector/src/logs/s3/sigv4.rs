//! AWS Signature Version 4 for the few requests the S3 and SQS sources make (header-based
//! signing, single-chunk payload). Written out by hand: the SDK crates cost minutes of compile
//! time on a 2-core build, and the algorithm is a page of hashing.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// Static or session credentials.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // The secret and the token never reach logs or error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("session_token", &self.session_token.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`. `Ok(None)` when no key
    /// id is set (requests then go unsigned, which public buckets and test servers accept); a key
    /// id without its secret is an error rather than a confusing 403 later.
    pub fn from_env() -> Result<Option<Credentials>, String> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        let Some(access_key_id) = var("AWS_ACCESS_KEY_ID") else {
            return Ok(None);
        };
        let secret_access_key = var("AWS_SECRET_ACCESS_KEY")
            .ok_or("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")?;
        Ok(Some(Credentials {
            access_key_id,
            secret_access_key,
            session_token: var("AWS_SESSION_TOKEN"),
        }))
    }
}

/// Everything a signature covers. Path and query must already be in canonical (URI-encoded) form
/// and must be sent exactly as given: S3 signs the path as sent, without re-encoding it.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Header names in lower case; must include `host` and `x-amz-date`.
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body (`UNSIGNED-PAYLOAD` is allowed by S3).
    pub payload_sha256: &'a str,
}

/// Where and when: `amz_date` is `YYYYMMDDTHHMMSSZ`, the same value as the `x-amz-date` header.
pub struct Scope<'a> {
    pub amz_date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// The `Authorization` header value for `req`.
pub fn authorization(creds: &Credentials, scope: &Scope<'_>, req: &Request<'_>) -> String {
    let mut headers: Vec<(&str, String)> = req
        .headers
        .iter()
        .map(|(n, v)| (*n, collapse_spaces(v)))
        .collect();
    headers.sort_by(|a, b| a.0.cmp(b.0));
    let signed_headers = headers.iter().map(|h| h.0).collect::<Vec<_>>().join(";");
    let mut canonical = format!("{}\n{}\n{}\n", req.method, req.path, req.query);
    for (n, v) in &headers {
        let _ = writeln!(canonical, "{n}:{v}");
    }
    let _ = write!(canonical, "\n{signed_headers}\n{}", req.payload_sha256);

    let date = &scope.amz_date[..8.min(scope.amz_date.len())];
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{credential_scope}\n{}",
        scope.amz_date,
        sha256_hex(canonical.as_bytes())
    );
    let k_date = hmac(
        format!("AWS4{}", creds.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex(&hmac(&k_signing, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
        creds.access_key_id
    )
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Header values are signed trimmed, with runs of spaces reduced to one.
fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// SigV4 URI encoding: every byte except `A-Za-z0-9-._~` as `%XX` (upper-case hex); `/` is kept
/// when encoding a path and encoded in query values.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The canonical query string of `params`: each name and value URI-encoded, sorted by name then
/// value, joined with `&`. The same string is sent on the wire so the server sees what was signed.
pub fn canonical_query(params: &[(&str, &str)]) -> String {
    let mut enc: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    enc.sort();
    enc.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn empty_payload_hash() {
        assert_eq!(sha256_hex(b""), EMPTY_SHA256);
    }

    /// The GET example of the SigV4 documentation (IAM ListUsers, 2015-08-30).
    #[test]
    fn documented_get_example() {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let query = canonical_query(&[("Version", "2010-05-08"), ("Action", "ListUsers")]);
        assert_eq!(query, "Action=ListUsers&Version=2010-05-08");
        let auth = authorization(
            &creds,
            &Scope {
                amz_date: "20150830T123600Z",
                region: "us-east-1",
                service: "iam",
            },
            &Request {
                method: "GET",
                path: "/",
                query: &query,
                headers: &[
                    ("host", "iam.amazonaws.com"),
                    (
                        "content-type",
                        "application/x-www-form-urlencoded; charset=utf-8",
                    ),
                    ("x-amz-date", "20150830T123600Z"),
                ],
                payload_sha256: EMPTY_SHA256,
            },
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    /// The S3 GetObject example of the S3 SigV4 documentation (range request, signed payload hash).
    #[test]
    fn documented_s3_get_object_example() {
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let auth = authorization(
            &creds,
            &Scope {
                amz_date: "20130524T000000Z",
                region: "us-east-1",
                service: "s3",
            },
            &Request {
                method: "GET",
                path: "/test.txt",
                query: "",
                headers: &[
                    ("host", "examplebucket.s3.amazonaws.com"),
                    ("range", "bytes=0-9"),
                    ("x-amz-content-sha256", EMPTY_SHA256),
                    ("x-amz-date", "20130524T000000Z"),
                ],
                payload_sha256: EMPTY_SHA256,
            },
        );
        assert!(
            auth.ends_with(
                "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
                 Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            ),
            "{auth}"
        );
    }

    #[test]
    fn encoding() {
        assert_eq!(uri_encode("a b/c~d+é", true), "a%20b/c~d%2B%C3%A9");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        assert_eq!(
            canonical_query(&[("prefix", "AWSLogs/1/"), ("list-type", "2")]),
            "list-type=2&prefix=AWSLogs%2F1%2F"
        );
        assert_eq!(collapse_spaces("  a   b "), "a b");
    }

    #[test]
    fn debug_hides_secret() {
        let c = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "SECRET".into(),
            session_token: Some("TOKEN".into()),
        };
        let d = format!("{c:?}");
        assert!(
            d.contains("AKID") && !d.contains("SECRET") && !d.contains("TOKEN"),
            "{d}"
        );
    }
}
