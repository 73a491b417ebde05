//! The export rules per finding: first state at once, later states at most once per update interval
//! (the latest one when the window opens), archived states never.
//!
//! GuardDuty publishes a new finding within minutes and later occurrences per its
//! `findingPublishingFrequency` (15 minutes, 1 hour or 6 hours). Ward keeps the window per finding:
//! a finding sent at 12:00 and updated at 12:01, 12:05 and 12:09 goes out again at 12:15 (with the
//! 12:09 state) when the interval is 15 minutes; an update after 12:15 with nothing pending goes out
//! at once. Time is passed in, so the rules are tested without sleeping.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{ChangeKind, FindingChange};
use crate::findings::Finding;

/// What to do with one offered change.
#[derive(Debug)]
pub enum Decision {
    Send(Arc<Finding>),
    /// An update inside its finding's window: kept as the pending state. `replaced` when it
    /// replaced an older pending state (which will now never go out on its own).
    Held {
        replaced: bool,
    },
    /// The finding is archived: nothing goes out, and a pending update of it is cancelled.
    Archived,
}

struct Entry {
    last_sent: Instant,
    pending: Option<Arc<Finding>>,
}

pub struct Throttle {
    interval: Duration,
    entries: HashMap<String, Entry>,
    /// When each pending update becomes due. Entries can be stale (the pending state was cancelled
    /// or already sent); they are checked against `entries` when popped.
    due: BinaryHeap<Reverse<(Instant, String)>>,
    prune_at: usize,
}

const MIN_PRUNE_AT: usize = 1024;

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            entries: HashMap::new(),
            due: BinaryHeap::new(),
            prune_at: MIN_PRUNE_AT,
        }
    }

    pub fn offer(&mut self, change: FindingChange, now: Instant) -> Decision {
        let finding = change.finding;
        if finding.service.archived {
            if let Some(entry) = self.entries.get_mut(&finding.id) {
                entry.pending = None;
            }
            return Decision::Archived;
        }
        if self.interval.is_zero() {
            return Decision::Send(finding);
        }
        self.prune(now);
        match self.entries.get_mut(&finding.id) {
            Some(entry)
                if change.kind == ChangeKind::Updated && now < entry.last_sent + self.interval =>
            {
                if entry.pending.is_none() {
                    self.due.push(Reverse((
                        entry.last_sent + self.interval,
                        finding.id.clone(),
                    )));
                }
                let replaced = entry.pending.replace(finding).is_some();
                Decision::Held { replaced }
            }
            Some(entry) => {
                entry.last_sent = now;
                entry.pending = None;
                Decision::Send(finding)
            }
            None => {
                self.entries.insert(
                    finding.id.clone(),
                    Entry {
                        last_sent: now,
                        pending: None,
                    },
                );
                Decision::Send(finding)
            }
        }
    }

    /// When the earliest pending update is due (possibly a cancelled one: waking early is harmless).
    pub fn next_due(&self) -> Option<Instant> {
        self.due.peek().map(|Reverse((at, _))| *at)
    }

    /// The pending updates whose window has opened, oldest first; each counts as sent now.
    pub fn take_due(&mut self, now: Instant) -> Vec<Arc<Finding>> {
        let mut out = Vec::new();
        while let Some(Reverse((at, _))) = self.due.peek() {
            if *at > now {
                break;
            }
            let Reverse((_, id)) = self.due.pop().expect("peeked");
            if let Some(entry) = self.entries.get_mut(&id)
                && let Some(finding) = entry.pending.take()
            {
                entry.last_sent = now;
                out.push(finding);
            }
        }
        out
    }

    /// Every pending update regardless of its window (shutdown: send what would otherwise be lost).
    pub fn drain_all(&mut self) -> Vec<Arc<Finding>> {
        self.due.clear();
        self.entries
            .values_mut()
            .filter_map(|e| e.pending.take())
            .collect()
    }

    /// Findings whose window has closed and that have nothing pending behave exactly as unknown
    /// ones (their next state goes out at once), so they are forgotten; memory stays proportional
    /// to the findings changed within one interval.
    fn prune(&mut self, now: Instant) {
        if self.entries.len() < self.prune_at {
            return;
        }
        let interval = self.interval;
        self.entries
            .retain(|_, e| e.pending.is_some() || now < e.last_sent + interval);
        self.prune_at = (self.entries.len() * 2).max(MIN_PRUNE_AT);
    }

    /// Findings currently remembered (for tests and memory checks).
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: ChangeKind, id: &str, count: u64, archived: bool) -> FindingChange {
        let mut f = Finding {
            id: id.into(),
            ..Finding::default()
        };
        f.service.count = count;
        f.service.archived = archived;
        FindingChange::new(kind, f)
    }

    fn sent_count(d: Decision) -> Option<u64> {
        match d {
            Decision::Send(f) => Some(f.service.count),
            _ => None,
        }
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn first_state_at_once_then_latest_state_when_the_window_opens() {
        let t0 = Instant::now();
        let mut t = Throttle::new(15 * MIN);
        assert_eq!(
            sent_count(t.offer(change(ChangeKind::Created, "a", 1, false), t0)),
            Some(1)
        );
        assert!(matches!(
            t.offer(change(ChangeKind::Updated, "a", 2, false), t0 + MIN),
            Decision::Held { replaced: false }
        ));
        assert!(matches!(
            t.offer(change(ChangeKind::Updated, "a", 3, false), t0 + 9 * MIN),
            Decision::Held { replaced: true }
        ));
        assert_eq!(t.next_due(), Some(t0 + 15 * MIN));
        assert!(t.take_due(t0 + 14 * MIN).is_empty());
        let due = t.take_due(t0 + 15 * MIN);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].service.count, 3, "the latest state goes out");
        // The window restarts at the send: an update 5 minutes later waits until 30 minutes.
        assert!(matches!(
            t.offer(change(ChangeKind::Updated, "a", 4, false), t0 + 20 * MIN),
            Decision::Held { .. }
        ));
        assert!(t.take_due(t0 + 29 * MIN).is_empty());
        assert_eq!(t.take_due(t0 + 30 * MIN).len(), 1);
        // Nothing pending and the window closed: the next update goes out at once.
        assert_eq!(
            sent_count(t.offer(change(ChangeKind::Updated, "a", 5, false), t0 + 46 * MIN)),
            Some(5)
        );
    }

    #[test]
    fn findings_have_their_own_windows() {
        let t0 = Instant::now();
        let mut t = Throttle::new(MIN);
        assert!(matches!(
            t.offer(change(ChangeKind::Created, "a", 1, false), t0),
            Decision::Send(_)
        ));
        assert!(matches!(
            t.offer(change(ChangeKind::Created, "b", 1, false), t0),
            Decision::Send(_)
        ));
        assert!(matches!(
            t.offer(change(ChangeKind::Updated, "a", 2, false), t0),
            Decision::Held { .. }
        ));
        // An update of a finding this output never sent (e.g. created archived, then unarchived).
        assert!(matches!(
            t.offer(change(ChangeKind::Updated, "c", 7, false), t0),
            Decision::Send(_)
        ));
    }

    #[test]
    fn archived_states_never_go_out_and_cancel_a_pending_update() {
        let t0 = Instant::now();
        let mut t = Throttle::new(MIN);
        assert!(matches!(
            t.offer(change(ChangeKind::Created, "x", 1, true), t0),
            Decision::Archived
        ));
        assert!(matches!(
            t.offer(change(ChangeKind::Created, "a", 1, false), t0),
            Decision::Send(_)
        ));
        assert!(matches!(
            t.offer(change(ChangeKind::Updated, "a", 2, false), t0),
            Decision::Held { .. }
        ));
        assert!(matches!(
            t.offer(change(ChangeKind::Updated, "a", 3, true), t0),
            Decision::Archived
        ));
        assert!(
            t.take_due(t0 + 2 * MIN).is_empty(),
            "the archived finding's update is cancelled"
        );
        assert!(t.drain_all().is_empty());
    }

    #[test]
    fn zero_interval_sends_every_state_and_remembers_nothing() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Duration::ZERO);
        for n in 1..=3 {
            assert_eq!(
                sent_count(t.offer(change(ChangeKind::Updated, "a", n, false), t0)),
                Some(n)
            );
        }
        assert_eq!(t.tracked(), 0);
    }

    #[test]
    fn memory_is_bounded_by_the_findings_changed_within_one_interval() {
        let t0 = Instant::now();
        let mut t = Throttle::new(MIN);
        for i in 0..10_000u64 {
            // One new finding every 10 ms: about 6000 within any one-minute window.
            let now = t0 + Duration::from_millis(i * 10);
            t.offer(change(ChangeKind::Created, &format!("f{i}"), 1, false), now);
        }
        assert!(t.tracked() <= 2 * 6000 + 1, "tracked {}", t.tracked());
    }

    #[test]
    fn drain_all_gives_every_pending_state() {
        let t0 = Instant::now();
        let mut t = Throttle::new(MIN);
        for id in ["a", "b"] {
            t.offer(change(ChangeKind::Created, id, 1, false), t0);
            t.offer(change(ChangeKind::Updated, id, 2, false), t0);
        }
        let mut ids: Vec<String> = t.drain_all().iter().map(|f| f.id.clone()).collect();
        ids.sort();
        assert_eq!(ids, ["a", "b"]);
        assert!(t.take_due(t0 + 2 * MIN).is_empty());
    }
}
