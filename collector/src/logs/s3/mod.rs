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
pub mod partition;
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
use std::collections::HashMap;
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

/// Objects under a bucket prefix, found by listing. Each poll reads, in key order, every listed
/// object whose version the checkpoint does not have yet.
///
/// With a checkpoint, listing is incremental: the prefix is walked directory by directory
/// (ListObjectsV2 with a `/` delimiter) down to the date-partitioned roots
/// (`AWSLogs/<account>/<service>/<region>/`, see [`partition`]), and each root is listed with
/// `start-after` set to `lookback_days` before the newest day the checkpoint has for it, rather
/// than from its beginning. A root seen for the first time, and any key outside a date
/// partition, is listed in full. What this gives up: an object that appears in a day older than
/// the lookback (AWS delivers within minutes) is not found, and an object that could not be read
/// (e.g. access denied) is retried only while its day is within the lookback.
pub struct S3Source {
    pub source: SourceKind,
    pub location: S3Location,
    pub opts: ReadOptions,
    /// Keys per ListObjectsV2 page (1-1000).
    pub page_size: u32,
    /// List date-partitioned roots from the checkpoint's position (default true).
    pub incremental: bool,
    /// Days before the newest processed day that are listed again, for late deliveries.
    pub lookback_days: u32,
    client: Arc<S3Client>,
    totals: Counts,
    /// Newest day processed per date-partitioned root, loaded from the checkpoint on first use.
    newest: Option<HashMap<String, partition::Partition>>,
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
            incremental: true,
            lookback_days: 1,
            client,
            totals: Counts::default(),
            newest: None,
        }
    }

    /// Everything read since the source was created, including polls that stopped on an error.
    pub fn totals(&self) -> Counts {
        self.totals
    }

    /// The S3 client this source reads with (shared, with its request counters).
    pub fn client(&self) -> &Arc<S3Client> {
        &self.client
    }

    /// One pass over the prefix. Without a checkpoint every object is read (one-off scans).
    pub fn poll(
        &mut self,
        mut checkpoint: Option<&mut Checkpoint>,
        sink: &mut dyn Sink,
    ) -> Result<Counts, SourceError> {
        let mut counts = Counts::default();
        let result = match checkpoint.as_deref_mut() {
            Some(c) if self.incremental => {
                if self.newest.is_none() {
                    self.newest = Some(self.newest_from(c));
                }
                let prefix = self.location.prefix.clone();
                self.walk(&prefix, c, sink, &mut counts)
            }
            _ => self.list_all(&mut checkpoint, sink, &mut counts),
        };
        self.totals += counts;
        result.map(|()| counts)
    }

    /// The newest day per date-partitioned root among the checkpoint's objects of this location.
    fn newest_from(&self, c: &Checkpoint) -> HashMap<String, partition::Partition> {
        let base = format!("s3://{}/", self.location.bucket);
        let mut newest = HashMap::new();
        for name in c.objects(self.source) {
            let Some(key) = name.strip_prefix(&base) else {
                continue;
            };
            if key.starts_with(&self.location.prefix) {
                note_day(&mut newest, key);
            }
        }
        newest
    }

    fn list_all(
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
                *counts += self.ingest(o, checkpoint.as_deref_mut(), sink)?;
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => return Ok(()),
            }
        }
    }

    fn ingest(
        &self,
        o: &ObjectInfo,
        checkpoint: Option<&mut Checkpoint>,
        sink: &mut dyn Sink,
    ) -> Result<Counts, SourceError> {
        let known = Known {
            size: o.size,
            etag: o.etag.clone(),
        };
        object::ingest_object(
            &self.client,
            self.source,
            &self.opts,
            &self.location.bucket,
            &o.key,
            Some(&known),
            checkpoint,
            sink,
        )
    }

    /// Reads the objects directly under `prefix`, lists each date-partitioned root found below it
    /// from its newest day, and walks the other sub-directories the same way.
    fn walk(
        &mut self,
        prefix: &str,
        c: &mut Checkpoint,
        sink: &mut dyn Sink,
        counts: &mut Counts,
    ) -> Result<(), SourceError> {
        let bucket = self.location.bucket.clone();
        let mut token: Option<String> = None;
        let mut dirs = Vec::new();
        let mut dated = false;
        loop {
            let page =
                self.client
                    .list_dir_page(&bucket, prefix, token.as_deref(), self.page_size)?;
            for o in &page.objects {
                *counts += self.ingest(o, Some(&mut *c), sink)?;
            }
            for d in page.common_prefixes {
                let segment = d[..d.len() - 1].rsplit('/').next().unwrap_or("");
                // Year directories make `prefix` a root, listed as a whole below; a prefix that
                // does not end at a `/` (`s3://b/AWSLogs/1/Cloud`) is not a root itself.
                if prefix.ends_with('/') && partition::is_year_segment(segment) {
                    dated = true;
                } else {
                    dirs.push(d);
                }
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        if dated {
            self.list_root(prefix, c, sink, counts)?;
        }
        for d in dirs {
            self.walk(&d, c, sink, counts)?;
        }
        Ok(())
    }

    /// Lists a date-partitioned root from `lookback_days` before its newest processed day.
    fn list_root(
        &mut self,
        root: &str,
        c: &mut Checkpoint,
        sink: &mut dyn Sink,
        counts: &mut Counts,
    ) -> Result<(), SourceError> {
        let newest = self.newest.get_or_insert_with(HashMap::new);
        let start = newest
            .get(root)
            .map(|p| partition::start_after(root, p.style, p.day - i64::from(self.lookback_days)));
        let bucket = self.location.bucket.clone();
        let mut token: Option<String> = None;
        loop {
            let page = self.client.list_page(
                &bucket,
                root,
                start.as_deref(),
                token.as_deref(),
                self.page_size,
            )?;
            for o in &page.objects {
                // Objects directly in the root and its non-year sub-directories are the walk's.
                let rest = &o.key[root.len()..];
                match rest.split_once('/') {
                    Some((first, _)) if partition::is_year_segment(first) => {}
                    _ => continue,
                }
                *counts += self.ingest(o, Some(&mut *c), sink)?;
                note_day(self.newest.get_or_insert_with(HashMap::new), &o.key);
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => return Ok(()),
            }
        }
    }
}

/// Records `key`'s day as its root's newest if it is newer.
fn note_day(newest: &mut HashMap<String, partition::Partition>, key: &str) {
    if let Some(p) = partition::find(key) {
        let root = &key[..p.root_len];
        match newest.get_mut(root) {
            Some(n) if n.day >= p.day => {}
            Some(n) => *n = p,
            None => {
                newest.insert(root.to_owned(), p);
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
