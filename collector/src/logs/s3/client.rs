//! S3 calls the sources need: ListObjectsV2 pages and (ranged) GetObject, with path-style or
//! virtual-hosted addressing.

use super::http::{AwsError, AwsHttp, Call, Endpoint, Response};
use super::list::{ListPage, parse_list};
use super::sigv4::{canonical_query, uri_encode};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct S3Client {
    pub http: AwsHttp,
    /// ListObjectsV2 requests sent and keys they returned (for tests and metrics).
    list_requests: AtomicU64,
    listed_keys: AtomicU64,
    /// Custom endpoint (S3-compatible store, test server); None = AWS for the region.
    endpoint: Option<Endpoint>,
    path_style: bool,
}

/// What GetObject says about the object besides its bytes.
pub struct ObjectHead {
    /// Without quotes; empty if the server sent none.
    pub etag: String,
    /// Bytes of this response's body (the rest of the object for a ranged request).
    pub length: Option<u64>,
}

impl S3Client {
    /// `path_style` puts the bucket in the path (`host/bucket/key`) instead of the host name
    /// (`bucket.host/key`); S3-compatible stores and IP-address endpoints need it.
    pub fn new(http: AwsHttp, endpoint: Option<Endpoint>, path_style: bool) -> S3Client {
        S3Client {
            http,
            list_requests: AtomicU64::new(0),
            listed_keys: AtomicU64::new(0),
            endpoint,
            path_style,
        }
    }

    /// Endpoint and canonical path of `key` in `bucket` (`key` may be empty: the bucket itself).
    fn locate(&self, bucket: &str, key: &str) -> (Endpoint, String) {
        let base = self.endpoint.clone().unwrap_or_else(|| Endpoint {
            https: true,
            authority: format!("s3.{}.amazonaws.com", self.http.region),
        });
        // Dotted bucket names do not match the wildcard TLS certificate of virtual hosts.
        if self.path_style || bucket.contains('.') {
            (
                base,
                format!("/{}/{}", uri_encode(bucket, false), uri_encode(key, true)),
            )
        } else {
            let ep = Endpoint {
                https: base.https,
                authority: format!("{bucket}.{}", base.authority),
            };
            (ep, format!("/{}", uri_encode(key, true)))
        }
    }

    /// ListObjectsV2 requests sent by this client so far.
    pub fn list_requests(&self) -> u64 {
        self.list_requests.load(Ordering::Relaxed)
    }

    /// Keys (objects and common prefixes) those requests returned.
    pub fn listed_keys(&self) -> u64 {
        self.listed_keys.load(Ordering::Relaxed)
    }

    /// One page of the keys under `prefix`, in key order, starting after `start_after` or at a
    /// continuation token from the previous page.
    pub fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        continuation: Option<&str>,
        max_keys: u32,
    ) -> Result<ListPage, AwsError> {
        self.list(bucket, prefix, None, start_after, continuation, max_keys)
    }

    /// One page of a listing with `/` as delimiter: the objects directly under `prefix` and its
    /// sub-"directories" (`common_prefixes`).
    pub fn list_dir_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: u32,
    ) -> Result<ListPage, AwsError> {
        self.list(bucket, prefix, Some("/"), None, continuation, max_keys)
    }

    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        start_after: Option<&str>,
        continuation: Option<&str>,
        max_keys: u32,
    ) -> Result<ListPage, AwsError> {
        self.list_requests.fetch_add(1, Ordering::Relaxed);
        let (ep, path) = self.locate(bucket, "");
        let max_keys = max_keys.clamp(1, 1000).to_string();
        let mut params = vec![
            ("list-type", "2"),
            ("prefix", prefix),
            ("max-keys", &max_keys),
        ];
        if let Some(d) = delimiter {
            params.push(("delimiter", d));
        }
        if let Some(t) = continuation {
            params.push(("continuation-token", t));
        } else if let Some(s) = start_after {
            params.push(("start-after", s));
        }
        let query = canonical_query(&params);
        let what = format!("ListObjectsV2 s3://{bucket}/{prefix}");
        let resp = self.http.send(&Call {
            what: &what,
            service: "s3",
            method: "GET",
            endpoint: &ep,
            path: &path,
            query: &query,
            headers: &[],
            body: &[],
        })?;
        let mut xml = String::new();
        resp.into_body()
            .into_reader()
            .take(64 << 20)
            .read_to_string(&mut xml)
            .map_err(|e| AwsError::Unavailable {
                what: what.clone(),
                endpoint: ep.to_string(),
                attempts: 1,
                last: format!("reading the listing: {e}"),
            })?;
        let page = parse_list(&xml).map_err(|message| AwsError::BadResponse { what, message })?;
        self.listed_keys.fetch_add(
            (page.objects.len() + page.common_prefixes.len()) as u64,
            Ordering::Relaxed,
        );
        Ok(page)
    }

    /// GetObject from byte `from` on; `if_match` makes the server refuse (412) if the object was
    /// replaced since the ETag was seen, so a resumed read never splices two versions.
    pub fn get_object(
        &self,
        bucket: &str,
        key: &str,
        from: u64,
        if_match: Option<&str>,
    ) -> Result<(ObjectHead, Response), AwsError> {
        let (ep, path) = self.locate(bucket, key);
        let range = format!("bytes={from}-");
        let quoted = if_match.map(|e| format!("\"{e}\""));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if from > 0 {
            headers.push(("range", &range));
        }
        if let Some(q) = &quoted {
            headers.push(("if-match", q));
        }
        let what = format!("GetObject s3://{bucket}/{key}");
        let resp = self.http.send(&Call {
            what: &what,
            service: "s3",
            method: "GET",
            endpoint: &ep,
            path: &path,
            query: "",
            headers: &headers,
            body: &[],
        })?;
        let header = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok());
        let head = ObjectHead {
            etag: header("etag").unwrap_or("").trim_matches('"').to_owned(),
            length: header("content-length").and_then(|v| v.parse().ok()),
        };
        Ok((head, resp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::s3::http::Retry;

    fn client(endpoint: Option<&str>, path_style: bool) -> S3Client {
        S3Client::new(
            AwsHttp::new("eu-west-1", None, Retry::default()),
            endpoint.map(|e| Endpoint::parse(e).unwrap()),
            path_style,
        )
    }

    #[test]
    fn addressing() {
        let (ep, path) = client(None, false).locate("logs", "AWSLogs/1/a b+c.json.gz");
        assert_eq!(
            ep.url(&path, ""),
            "https://logs.s3.eu-west-1.amazonaws.com/AWSLogs/1/a%20b%2Bc.json.gz"
        );
        let (ep, path) = client(Some("http://127.0.0.1:9000"), true).locate("logs", "k");
        assert_eq!(ep.url(&path, ""), "http://127.0.0.1:9000/logs/k");
        let (ep, path) = client(None, false).locate("my.logs", "");
        assert_eq!(
            ep.url(&path, ""),
            "https://s3.eu-west-1.amazonaws.com/my.logs/"
        );
    }
}
