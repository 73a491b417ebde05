//! S3 and SQS sources: objects listed under a bucket prefix, or announced by S3 event
//! notifications on an SQS queue, streamed through the same readers as local files and recorded
//! in the checkpoint once fully processed.
//!
//! AWS access is done by hand (SigV4 over a small blocking HTTP client) rather than with the SDK
//! crates, whose compile time dwarfs the rest of the collector.

mod client;
pub mod http;
mod list;
pub mod notification;
mod object;
pub mod sigv4;
pub mod sqs;

pub use client::S3Client;
pub use http::{AwsError, Endpoint, Retry};
pub use list::ObjectInfo;
pub use sigv4::Credentials;

use crate::event::SourceKind;
use crate::logs::checkpoint::Checkpoint;
use crate::logs::{Counts, ReadOptions, Sink};
use http::AwsHttp;
use object::Known;
use std::fmt;
use std::io;
use std::sync::Arc;

/// `s3://bucket/prefix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// May be empty (whole bucket). Matched as a plain key prefix, like ListObjectsV2 does.
    pub prefix: String,
}

impl S3Location {
    pub fn parse(url: &str) -> Result<S3Location, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url:?}: expected s3://bucket/prefix"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{url:?}: no bucket name"));
        }
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    pub fn contains(&self, bucket: &str, key: &str) -> bool {
        self.bucket == bucket && key.starts_with(&self.prefix)
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Where and how to reach S3 and SQS.
#[derive(Clone, Debug)]
pub struct AwsConfig {
    pub region: String,
    pub credentials: Option<Credentials>,
    /// S3-compatible endpoint; None = AWS S3 in `region`.
    pub s3_endpoint: Option<Endpoint>,
    /// SQS endpoint; None = the scheme and host of the queue URL.
    pub sqs_endpoint: Option<Endpoint>,
    /// Bucket in the path rather than in the host name.
    pub path_style: bool,
    pub retry: Retry,
}

impl AwsConfig {
    /// Region from `AWS_REGION` / `AWS_DEFAULT_REGION` (default `us-east-1`), credentials from
    /// the `AWS_*` variables (see [`Credentials::from_env`]).
    pub fn from_env() -> Result<AwsConfig, String> {
        let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| "us-east-1".to_owned());
        Ok(AwsConfig {
            region,
            credentials: Credentials::from_env()?,
            s3_endpoint: None,
            sqs_endpoint: None,
            path_style: false,
            retry: Retry::default(),
        })
    }

    /// Sets a custom S3 endpoint; an IP-address or `localhost` endpoint implies path-style
    /// addressing (no DNS name can carry the bucket).
    pub fn with_s3_endpoint(mut self, url: &str) -> Result<AwsConfig, String> {
        let ep = Endpoint::parse(url)?;
        let host = ep
            .authority
            .rsplit_once(':')
            .map_or(ep.authority.as_str(), |(h, _)| h);
        if host == "localhost"
            || host.starts_with('[')
            || host.parse::<std::net::Ipv4Addr>().is_ok()
        {
            self.path_style = true;
        }
        self.s3_endpoint = Some(ep);
        Ok(self)
    }

    fn http(&self) -> AwsHttp {
        AwsHttp::new(&self.region, self.credentials.clone(), self.retry)
    }

    pub fn s3_client(&self) -> Arc<S3Client> {
        Arc::new(S3Client::new(
            self.http(),
            self.s3_endpoint.clone(),
            self.path_style,
        ))
    }
}

/// Why a poll stopped early. What was processed before is checkpointed; the rest is retried on
/// the next poll.
#[derive(Debug)]
pub enum SourceError {
    Aws(AwsError),
    Checkpoint(io::Error),
}

impl SourceError {
    /// True if polling again later may succeed (the service was unreachable or busy).
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::Aws(e) if e.is_transient())
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Aws(e) => e.fmt(f),
            SourceError::Checkpoint(e) => write!(f, "checkpoint: {e}"),
        }
    }
}

impl std::error::Error for SourceError {}

impl From<AwsError> for SourceError {
    fn from(e: AwsError) -> Self {
        SourceError::Aws(e)
    }
}

impl From<io::Error> for SourceError {
    fn from(e: io::Error) -> Self {
        SourceError::Checkpoint(e)
    }
}

/// Objects under a bucket prefix, found by listing. Each poll lists the prefix and reads, in key
/// order, every object whose version the checkpoint does not have yet.
pub struct S3Source {
    pub source: SourceKind,
    pub location: S3Location,
    pub opts: ReadOptions,
    /// Keys per ListObjectsV2 page (1-1000).
    pub page_size: u32,
    client: Arc<S3Client>,
    totals: Counts,
}

impl S3Source {
    pub fn new(
        source: SourceKind,
        location: S3Location,
        opts: ReadOptions,
        client: Arc<S3Client>,
    ) -> S3Source {
        S3Source {
            source,
            location,
            opts,
            page_size: 1000,
            client,
            totals: Counts::default(),
        }
    }

    /// Everything read since the source was created, including polls that stopped on an error.
    pub fn totals(&self) -> Counts {
        self.totals
    }

    /// One pass over the prefix. Without a checkpoint every object is read (one-off scans).
    pub fn poll(
        &mut self,
        mut checkpoint: Option<&mut Checkpoint>,
        sink: &mut dyn Sink,
    ) -> Result<Counts, SourceError> {
        let mut counts = Counts::default();
        let result = self.poll_into(&mut checkpoint, sink, &mut counts);
        self.totals += counts;
        result.map(|()| counts)
    }

    fn poll_into(
        &self,
        checkpoint: &mut Option<&mut Checkpoint>,
        sink: &mut dyn Sink,
        counts: &mut Counts,
    ) -> Result<(), SourceError> {
        let loc = &self.location;
        let mut token: Option<String> = None;
        loop {
            let page = self.client.list_page(
                &loc.bucket,
                &loc.prefix,
                None,
                token.as_deref(),
                self.page_size,
            )?;
            for o in &page.objects {
                let known = Known {
                    size: o.size,
                    etag: o.etag.clone(),
                };
                *counts += object::ingest_object(
                    &self.client,
                    self.source,
                    &self.opts,
                    &loc.bucket,
                    &o.key,
                    Some(&known),
                    checkpoint.as_deref_mut(),
                    sink,
                )?;
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let l = S3Location::parse("s3://logs/AWSLogs/123/CloudTrail/").unwrap();
        assert_eq!(l.bucket, "logs");
        assert_eq!(l.prefix, "AWSLogs/123/CloudTrail/");
        assert!(l.contains("logs", "AWSLogs/123/CloudTrail/us-east-1/x.json.gz"));
        assert!(!l.contains("other", "AWSLogs/123/CloudTrail/x"));
        assert_eq!(S3Location::parse("s3://b").unwrap().prefix, "");
        assert!(S3Location::parse("s3:///x").is_err());
        assert!(S3Location::parse("/tmp/x").is_err());
    }

    #[test]
    fn local_endpoints_use_path_style() {
        let base = AwsConfig {
            region: "us-east-1".into(),
            credentials: None,
            s3_endpoint: None,
            sqs_endpoint: None,
            path_style: false,
            retry: Retry::default(),
        };
        assert!(
            base.clone()
                .with_s3_endpoint("http://127.0.0.1:1")
                .unwrap()
                .path_style
        );
        assert!(
            base.clone()
                .with_s3_endpoint("http://localhost:1")
                .unwrap()
                .path_style
        );
        assert!(
            !base
                .with_s3_endpoint("https://minio.example")
                .unwrap()
                .path_style
        );
    }
}
