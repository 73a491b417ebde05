//! SQS-driven ingestion: S3 event notifications name the objects to read; a message is deleted
//! only after every object it names has been read and checkpointed, so a crash or an unreachable
//! S3 leaves it on the queue to come back after its visibility timeout.

use super::http::{AwsError, AwsHttp, Call, Endpoint};
use super::notification::{Notice, ObjectEvent, parse_message};
use super::object::{Known, ingest_object};
use super::{AwsConfig, S3Client, S3Location, SourceError};
use crate::event::SourceKind;
use crate::logs::checkpoint::Checkpoint;
use crate::logs::classify::skip_reason;
use crate::logs::{Counts, Problem, ReadOptions, Sink};
use serde::Deserialize;
use std::io::Read;
use std::sync::Arc;

/// ReceiveMessage / DeleteMessage over the SQS JSON protocol.
pub struct SqsClient {
    http: AwsHttp,
    endpoint: Endpoint,
    pub queue_url: String,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    #[serde(rename = "MessageId")]
    pub id: String,
    #[serde(rename = "ReceiptHandle")]
    pub receipt_handle: String,
    #[serde(rename = "Body")]
    pub body: String,
}

#[derive(Deserialize)]
struct Received {
    #[serde(rename = "Messages", default)]
    messages: Vec<Message>,
}

impl SqsClient {
    /// Requests go to `config.sqs_endpoint`, or to the scheme and host of `queue_url`.
    pub fn new(config: &AwsConfig, queue_url: &str) -> Result<SqsClient, String> {
        let endpoint = match &config.sqs_endpoint {
            Some(e) => e.clone(),
            None => {
                let after_scheme = queue_url.find("://").map_or(0, |i| i + 3);
                let end = queue_url[after_scheme..]
                    .find('/')
                    .map_or(queue_url.len(), |i| i + after_scheme);
                Endpoint::parse(&queue_url[..end])
                    .map_err(|e| format!("queue URL {queue_url:?}: {e}"))?
            }
        };
        Ok(SqsClient {
            http: AwsHttp::new(&config.region, config.credentials.clone(), config.retry),
            endpoint,
            queue_url: queue_url.to_owned(),
        })
    }

    fn call(&self, action: &str, body: serde_json::Value) -> Result<String, AwsError> {
        let what = format!("{action} {}", self.queue_url);
        let target = format!("AmazonSQS.{action}");
        let body = body.to_string();
        let resp = self.http.send(&Call {
            what: &what,
            service: "sqs",
            method: "POST",
            endpoint: &self.endpoint,
            path: "/",
            query: "",
            headers: &[
                ("content-type", "application/x-amz-json-1.0"),
                ("x-amz-target", &target),
            ],
            body: body.as_bytes(),
        })?;
        let mut text = String::new();
        resp.into_body()
            .into_reader()
            .take(16 << 20)
            .read_to_string(&mut text)
            .map_err(|e| AwsError::Unavailable {
                what: what.clone(),
                endpoint: self.endpoint.to_string(),
                attempts: 1,
                last: format!("reading the answer: {e}"),
            })?;
        Ok(text)
    }

    /// Up to `max` (1-10) messages, waiting up to `wait_secs` (0-20) for the first one.
    pub fn receive(&self, max: u32, wait_secs: u32) -> Result<Vec<Message>, AwsError> {
        let text = self.call(
            "ReceiveMessage",
            serde_json::json!({
                "QueueUrl": self.queue_url,
                "MaxNumberOfMessages": max.clamp(1, 10),
                "WaitTimeSeconds": wait_secs.min(20),
            }),
        )?;
        let r: Received = serde_json::from_str(&text).map_err(|e| AwsError::BadResponse {
            what: format!("ReceiveMessage {}", self.queue_url),
            message: e.to_string(),
        })?;
        Ok(r.messages)
    }

    pub fn delete(&self, receipt_handle: &str) -> Result<(), AwsError> {
        self.call(
            "DeleteMessage",
            serde_json::json!({"QueueUrl": self.queue_url, "ReceiptHandle": receipt_handle}),
        )
        .map(drop)
    }
}

/// What one poll of the queue did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SqsPoll {
    /// Messages received (0: the queue was empty for the whole wait).
    pub messages: usize,
    /// Messages deleted after processing.
    pub deleted: usize,
}

/// Objects announced on one queue, routed to the source whose `s3://bucket/prefix` contains them
/// (one queue may carry CloudTrail and flow-log notifications for several prefixes).
pub struct SqsSource {
    sqs: SqsClient,
    s3: Arc<S3Client>,
    routes: Vec<(SourceKind, S3Location)>,
    pub opts: ReadOptions,
    /// Long-poll wait per receive, seconds (0-20).
    pub wait_secs: u32,
    /// Messages per receive (1-10).
    pub batch: u32,
    totals: Vec<(SourceKind, Counts)>,
}

impl SqsSource {
    pub fn new(
        sqs: SqsClient,
        s3: Arc<S3Client>,
        routes: Vec<(SourceKind, S3Location)>,
        opts: ReadOptions,
    ) -> SqsSource {
        let mut totals: Vec<(SourceKind, Counts)> = Vec::new();
        for (s, _) in &routes {
            if !totals.iter().any(|(t, _)| t == s) {
                totals.push((*s, Counts::default()));
            }
        }
        SqsSource {
            sqs,
            s3,
            routes,
            opts,
            wait_secs: 20,
            batch: 10,
            totals,
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.sqs.queue_url
    }

    /// Per source, everything read since the source was created.
    pub fn totals(&self) -> &[(SourceKind, Counts)] {
        &self.totals
    }

    fn add(&mut self, source: SourceKind, c: Counts) {
        match self.totals.iter_mut().find(|(s, _)| *s == source) {
            Some((_, t)) => *t += c,
            None => self.totals.push((source, c)),
        }
    }

    /// The route for an object: the first location holding it whose source accepts the key,
    /// else the first location holding it (which then reports why it skips it).
    fn route(&self, o: &ObjectEvent) -> Option<SourceKind> {
        let holding = || {
            self.routes
                .iter()
                .filter(|(_, l)| l.contains(&o.bucket, &o.key))
        };
        holding()
            .find(|(s, _)| skip_reason(*s, &o.key).is_none())
            .or_else(|| holding().next())
            .map(|(s, _)| *s)
    }

    /// Receives one batch and processes it. Stops at the first object that cannot be fetched
    /// (its message and the rest of the batch stay on the queue for a later try).
    pub fn poll(
        &mut self,
        mut checkpoint: Option<&mut Checkpoint>,
        sink: &mut dyn Sink,
    ) -> Result<SqsPoll, SourceError> {
        let messages = self.sqs.receive(self.batch, self.wait_secs)?;
        let mut poll = SqsPoll {
            messages: messages.len(),
            deleted: 0,
        };
        let fallback = self.routes.first().map_or(SourceKind::CloudTrail, |r| r.0);
        for m in &messages {
            let name = format!("sqs message {} on {}", m.id, self.sqs.queue_url);
            let problem = |message: String| Problem {
                source: fallback,
                object: &name,
                line: None,
                index: None,
                message,
            };
            match parse_message(&m.body) {
                // Unreadable messages would come back forever; they are reported, then deleted.
                Err(e) => {
                    sink.malformed(&problem(e));
                    self.add(
                        fallback,
                        Counts {
                            malformed: 1,
                            ..Counts::default()
                        },
                    );
                }
                Ok(Notice::Nothing(why)) => {
                    sink.skipped(&problem(format!("nothing to read: {why}")));
                }
                Ok(Notice::Objects(objects)) => {
                    for o in &objects {
                        let Some(source) = self.route(o) else {
                            let obj = format!("s3://{}/{}", o.bucket, o.key);
                            sink.skipped(&Problem {
                                object: &obj,
                                ..problem("not under any configured s3:// location".into())
                            });
                            self.add(
                                fallback,
                                Counts {
                                    skipped: 1,
                                    ..Counts::default()
                                },
                            );
                            continue;
                        };
                        let known = match (o.size, &o.etag) {
                            (Some(size), Some(etag)) => Some(Known {
                                size,
                                etag: etag.clone(),
                            }),
                            _ => None,
                        };
                        let c = ingest_object(
                            &self.s3,
                            source,
                            &self.opts,
                            &o.bucket,
                            &o.key,
                            known.as_ref(),
                            checkpoint.as_deref_mut(),
                            sink,
                        )?;
                        self.add(source, c);
                    }
                }
            }
            self.sqs.delete(&m.receipt_handle)?;
            poll.deleted += 1;
        }
        Ok(poll)
    }
}
