//! Reading one S3 object into a reader: streamed, resumed after a dropped connection, recorded in
//! the checkpoint only once every record has reached the sink.

use super::SourceError;
use super::client::S3Client;
use super::http::AwsError;
use crate::event::SourceKind;
use crate::logs::checkpoint::{Checkpoint, ObjectVersion};
use crate::logs::classify::skip_reason;
use crate::logs::{Counts, Problem, ReadOptions, Sink, read_object};
use std::cell::RefCell;
use std::io::{self, Read};
use std::rc::Rc;
use std::sync::Arc;

/// A known object version (from a listing or an event notification).
#[derive(Clone, Debug)]
pub struct Known {
    pub size: u64,
    pub etag: String,
}

fn version(size: u64, etag: &str) -> ObjectVersion {
    ObjectVersion {
        size,
        tag: (!etag.is_empty()).then(|| format!("etag:{etag}")),
    }
}

/// Reads `s3://bucket/key` as `source` unless the checkpoint already has this version, then
/// records it there. Content problems are reported to the sink (with the object's name and line)
/// and the object counts as done; an object that could not be fetched (server gone, throttled,
/// replaced while being read) is returned as an error and left for the next poll. Records
/// delivered before such a failure are delivered again then: at-least-once for that one object.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ingest_object(
    client: &Arc<S3Client>,
    source: SourceKind,
    opts: &ReadOptions,
    bucket: &str,
    key: &str,
    known: Option<&Known>,
    mut checkpoint: Option<&mut Checkpoint>,
    sink: &mut dyn Sink,
) -> Result<Counts, SourceError> {
    let name = format!("s3://{bucket}/{key}");
    let done = |c: &Option<&mut Checkpoint>, v: &ObjectVersion| {
        c.as_ref().is_some_and(|c| c.is_done(source, &name, v))
    };
    if let Some(k) = known
        && done(&checkpoint, &version(k.size, &k.etag))
    {
        return Ok(Counts::default());
    }
    if let Some(reason) = skip_reason(source, key) {
        sink.skipped(&problem(source, &name, reason.to_owned()));
        if let (Some(c), Some(k)) = (checkpoint.as_deref_mut(), known) {
            c.mark_done(source, &name, version(k.size, &k.etag))?;
        }
        return Ok(Counts {
            skipped: 1,
            ..Counts::default()
        });
    }
    let (head, resp) = match client.get_object(bucket, key, 0, None) {
        Ok(r) => r,
        Err(e) if e.code() == Some("NoSuchKey") => {
            // Deleted after it was listed or announced: there is nothing left to read.
            sink.skipped(&problem(source, &name, "object no longer exists".into()));
            return Ok(Counts {
                skipped: 1,
                ..Counts::default()
            });
        }
        Err(e) if !e.is_transient() => {
            // Access denied and the like: reported every time it is tried, never marked done,
            // so fixing the permission later still gets the object read.
            sink.malformed(&problem(source, &name, format!("cannot read: {e}")));
            return Ok(Counts {
                malformed: 1,
                ..Counts::default()
            });
        }
        Err(e) => return Err(e.into()),
    };
    let size = head.length.or(known.map(|k| k.size)).unwrap_or_default();
    let v = version(size, &head.etag);
    if done(&checkpoint, &v) {
        return Ok(Counts::default());
    }
    let failure = Rc::new(RefCell::new(None));
    let body = Resuming {
        client: Arc::clone(client),
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        etag: head.etag.clone(),
        size: head.length,
        offset: 0,
        body: Some(resp.into_body().into_reader()),
        failure: Rc::clone(&failure),
    };
    let counts = read_object(source, &name, body, opts, sink);
    if let Some(e) = failure.borrow_mut().take() {
        return Err(e.into());
    }
    if let Some(c) = checkpoint {
        c.mark_done(source, &name, v)?;
    }
    Ok(counts)
}

fn problem(source: SourceKind, object: &str, message: String) -> Problem<'_> {
    Problem {
        source,
        object,
        line: None,
        index: None,
        message,
    }
}

/// An object body that survives a dropped connection: the rest is requested with a `Range`
/// from the last byte received, pinned to the same ETag. A failure that outlasts the retries is
/// left in `failure` (the reader only sees an I/O error, which it reports as a cut input).
struct Resuming {
    client: Arc<S3Client>,
    bucket: String,
    key: String,
    etag: String,
    size: Option<u64>,
    offset: u64,
    body: Option<ureq::BodyReader<'static>>,
    failure: Rc<RefCell<Option<AwsError>>>,
}

impl Resuming {
    fn fail(&mut self, e: AwsError) -> io::Error {
        let err = io::Error::other(e.to_string());
        *self.failure.borrow_mut() = Some(e);
        err
    }
}

impl Read for Resuming {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut breaks = 0;
        let mut last = String::new();
        loop {
            if self.body.is_none() {
                if breaks > self.client.http.retry.attempts {
                    let e = AwsError::Unavailable {
                        what: format!("GetObject s3://{}/{}", self.bucket, self.key),
                        endpoint: "S3".into(),
                        attempts: breaks,
                        last: format!("connection broke at byte {}: {last}", self.offset),
                    };
                    return Err(self.fail(e));
                }
                let etag = (!self.etag.is_empty()).then_some(self.etag.as_str());
                match self
                    .client
                    .get_object(&self.bucket, &self.key, self.offset, etag)
                {
                    Ok((_, resp)) => self.body = Some(resp.into_body().into_reader()),
                    Err(e) => return Err(self.fail(e)),
                }
            }
            let body = self.body.as_mut().expect("opened above");
            match body.read(buf) {
                Ok(0) if self.size.is_some_and(|s| self.offset < s) => {
                    last = "body ended early".into();
                }
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => last = e.to_string(),
            }
            self.body = None;
            breaks += 1;
        }
    }
}
