//! One thread per output: takes changes off the output's queue, applies the export rules
//! ([`super::throttle`]), sends, retries with backoff and jitter, and dead-letters what still fails.

use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::throttle::{Decision, Throttle};
use super::{DeadLetter, FindingChange, Output, OutputStats};
use crate::findings::Finding;

/// How often and how patiently a failed send is tried again.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Delay ceiling before the second try; doubles for every further try.
    pub base_delay: Duration,
    /// No delay is longer than this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 8 tries over about two minutes: 0.5 s, 1 s, 2 s, ... capped at 30 s.
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before try `attempt + 1` after `attempt` failed tries: exponential, capped, with
    /// "equal jitter" (half fixed, half random) so many collectors that lost the same receiver do
    /// not come back in lockstep, while no wait collapses to zero.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let ceiling = exp.min(self.max_delay);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Raised at shutdown once the grace period is over: backoff waits end at once and failed sends
/// go to the dead-letter file instead of being retried.
#[derive(Default)]
pub struct StopSignal {
    raised: Mutex<bool>,
    changed: Condvar,
}

impl StopSignal {
    pub fn raise(&self) {
        *self.raised.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.changed.notify_all();
    }

    pub fn is_raised(&self) -> bool {
        *self.raised.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps `timeout` unless raised first; returns whether it is raised.
    pub fn wait(&self, timeout: Duration) -> bool {
        let guard = self.raised.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |raised| !*raised)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }

    pub fn raise_after(&self, grace: Duration) {
        if !self.wait(grace) {
            self.raise();
        }
    }
}

pub struct Worker {
    pub name: String,
    pub output: Box<dyn Output>,
    pub receiver: Receiver<FindingChange>,
    pub stats: Arc<OutputStats>,
    pub throttle: Throttle,
    pub retry: RetryPolicy,
    pub dead_letter: Arc<DeadLetter>,
    pub stop: Arc<StopSignal>,
}

impl Worker {
    pub fn run(mut self) {
        loop {
            // Wait for the next change, or until the earliest held update is due.
            let first = match self.throttle.next_due() {
                Some(due) => {
                    let wait = due.saturating_duration_since(Instant::now());
                    match self.receiver.recv_timeout(wait) {
                        Ok(change) => Some(change),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match self.receiver.recv() {
                    Ok(change) => Some(change),
                    Err(_) => break,
                },
            };
            if let Some(change) = first {
                self.offer(change);
                // The rest of the burst, without waiting.
                loop {
                    match self.receiver.try_recv() {
                        Ok(change) => self.offer(change),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => break,
                    }
                }
            }
            for finding in self.throttle.take_due(Instant::now()) {
                self.deliver(&finding);
            }
            self.flush();
        }
        // Shutdown: what is held for its window would otherwise never go out.
        for finding in self.throttle.drain_all() {
            self.deliver(&finding);
        }
        self.flush();
    }

    fn offer(&mut self, change: FindingChange) {
        self.stats.take_queued();
        match self.throttle.offer(change, Instant::now()) {
            Decision::Send(finding) => self.deliver(&finding),
            Decision::Held { replaced } => {
                self.stats.add_throttled();
                if replaced {
                    self.stats.add_coalesced();
                }
            }
            Decision::Archived => self.stats.add_archived_skipped(),
        }
    }

    fn deliver(&mut self, finding: &Finding) {
        if self.stop.is_raised() {
            // Past the shutdown grace period: a send could block for its full timeout per finding.
            self.dead_letter.write(
                &self.name,
                0,
                "not sent: the collector stopped before this output caught up",
                finding,
            );
            self.stats.add_dead_lettered();
            return;
        }
        let mut attempt = 1;
        loop {
            match self.output.send(finding) {
                Ok(()) => {
                    self.stats.add_sent();
                    return;
                }
                Err(e)
                    if e.retryable
                        && attempt < self.retry.max_attempts
                        && !self.stop.wait(self.retry.delay(attempt)) =>
                {
                    tracing::debug!(output = %self.name, finding = %finding.id, attempt, error = %e, "send failed; retrying");
                    self.stats.add_retried();
                    attempt += 1;
                }
                Err(e) => {
                    tracing::warn!(
                        output = %self.name,
                        finding = %finding.id,
                        attempts = attempt,
                        error = %e,
                        dead_letter = %self.dead_letter.path().display(),
                        "finding not delivered; written to the dead-letter file"
                    );
                    self.dead_letter
                        .write(&self.name, attempt, &e.message, finding);
                    self.stats.add_dead_lettered();
                    return;
                }
            }
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.output.flush() {
            tracing::warn!(output = %self.name, error = %e, "output flush failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_stays_under_the_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..200 {
            let d1 = p.delay(1);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = p.delay(3);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d9 = p.delay(9);
            assert!(
                d9 >= Duration::from_millis(500) && d9 <= Duration::from_secs(1),
                "{d9:?}"
            );
        }
        let spread: std::collections::HashSet<Duration> = (0..50).map(|_| p.delay(4)).collect();
        assert!(spread.len() > 10, "jitter varies the delay");
        assert!(p.delay(u32::MAX) <= Duration::from_secs(1));
    }
}
