//! The shape every continuous cloud-log source has, so `serve` can drive them alike: poll, get
//! what was new handed to the sink and recorded in the checkpoint, wait, poll again.

use super::checkpoint::Checkpoint;
use super::dirsource::DirSource;
use super::s3::S3Source;
use super::s3::sqs::SqsSource;
use super::{Counts, Sink};

pub type PollError = Box<dyn std::error::Error + Send + Sync>;

pub trait LogSource {
    /// For logs and metrics: the directory, `s3://` location or queue.
    fn describe(&self) -> String;
    /// Reads what is new; an error leaves the rest for the next poll (nothing is marked done that
    /// was not fully delivered).
    fn poll(
        &mut self,
        checkpoint: &mut Checkpoint,
        sink: &mut dyn Sink,
    ) -> Result<Counts, PollError>;
}

impl LogSource for DirSource {
    fn describe(&self) -> String {
        format!("{} {}", self.source, self.root.display())
    }
    fn poll(
        &mut self,
        checkpoint: &mut Checkpoint,
        sink: &mut dyn Sink,
    ) -> Result<Counts, PollError> {
        Ok(DirSource::poll(self, checkpoint, sink)?)
    }
}

impl LogSource for S3Source {
    fn describe(&self) -> String {
        format!("{} {}", self.source, self.location)
    }
    fn poll(
        &mut self,
        checkpoint: &mut Checkpoint,
        sink: &mut dyn Sink,
    ) -> Result<Counts, PollError> {
        Ok(S3Source::poll(self, Some(checkpoint), sink)?)
    }
}

impl LogSource for SqsSource {
    fn describe(&self) -> String {
        format!("sqs {}", self.queue_url())
    }
    fn poll(
        &mut self,
        checkpoint: &mut Checkpoint,
        sink: &mut dyn Sink,
    ) -> Result<Counts, PollError> {
        let sum = |s: &SqsSource| {
            s.totals().iter().fold(Counts::default(), |mut a, (_, c)| {
                a += *c;
                a
            })
        };
        let before = sum(self);
        SqsSource::poll(self, Some(checkpoint), sink)?;
        let after = sum(self);
        Ok(Counts {
            objects: after.objects - before.objects,
            bytes: after.bytes - before.bytes,
            records: after.records - before.records,
            skipped: after.skipped - before.skipped,
            malformed: after.malformed - before.malformed,
        })
    }
}
