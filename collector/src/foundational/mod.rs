//! Foundational detections: GuardDuty's agentless findings (EC2, IAM, S3) from CloudTrail
//! management events, VPC Flow Logs and Route 53 Resolver query logs.
//!
//! Every detector sees normalised cloud-log [`Event`]s in event-time order (within a bounded
//! lateness) and turns what it recognises into aggregation [`Occurrence`]s; the engine that drives
//! them ([`engine`]) folds occurrences into findings, drops those about trusted addresses and
//! domains, applies suppression and persists learned state. Time is always the record's, never the
//! clock, so a week of replayed logs gives the same findings as the same records received live.
//!
//! Layout: [`engine`] (routing, event time, aggregation, state), [`occurrence`] (the shared
//! builder every detector uses: resource, evidence, pointer to the record), [`resource`] (access
//! key / instance / bucket resources, remote-IP and API-call evidence), [`aws_ranges`] (what Ward
//! treats as inside AWS), [`cloudtrail`] (IAM and S3 detections), [`scan`] (`ward-collector scan`).

pub mod aws_ranges;
pub mod cloudtrail;
pub mod dns;
pub mod engine;
pub mod flow;
pub mod occurrence;
pub mod resource;
pub mod scan;

use std::collections::HashMap;
use std::net::IpAddr;

use crate::detect::config::ThreatCategory;
use crate::event::{Event, SourceKind};
use crate::findings::{Occurrence, Scope};
use crate::intel::{IntelIndex, Verdict};

pub use crate::event::cloudtrail::Calls;
pub use aws_ranges::AwsRanges;

/// Asks the CPU to start loading the cache line of `value` (a hint; nothing on other targets):
/// detectors call it for state the record will need, so the miss overlaps other work.
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and has no effect but on the cache; SSE, which has it, is
    // part of the x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Settings every detector may read (built once per engine).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Category of each operator threat list given one (`tor=PATH`, `cnc=PATH`); lists without
    /// one raise the `.Custom` types.
    pub threat_categories: HashMap<String, ThreatCategory>,
    /// AWS's published address ranges (`ip-ranges.json`), when given.
    pub aws_ranges: AwsRanges,
    /// How long (event time) a baseline learns before deviations from it raise findings.
    pub learning_period_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            threat_categories: HashMap::new(),
            aws_ranges: AwsRanges::default(),
            learning_period_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

/// Key of per-resource detector state (instance, interface and access-key ids). Ids of up to 24
/// bytes, which these are, are stored in the table itself rather than behind a pointer: a lookup
/// then costs no extra cache miss, and the readers stream log data through the caches between
/// two lookups of the same id.
pub type StateKey = compact_str::CompactString;

/// What every detector may consult: threat/trusted lists and the account/Region findings are filed
/// under.
pub struct LogContext<'a> {
    pub intel: &'a IntelIndex,
    pub scope: &'a Scope,
    pub settings: &'a Settings,
}

/// What the lists say about a caller address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpIntel {
    Clean,
    /// On a trusted list: nothing is raised about it (the engine drops such occurrences too).
    Trusted,
    /// On a list categorised `tor`.
    Tor {
        lists: Vec<String>,
    },
    /// On a categorised list (curated intel such as `cnc=`): GuardDuty's non-`.Custom` types.
    Curated {
        lists: Vec<String>,
    },
    /// On an uncategorised operator list: the `.Custom` types.
    Custom {
        lists: Vec<String>,
    },
}

impl LogContext<'_> {
    /// Looks an address up in the lists (IPv4 only, as GuardDuty's lists are).
    pub fn ip_intel(&self, ip: IpAddr) -> IpIntel {
        let IpAddr::V4(v4) = ip else {
            return IpIntel::Clean;
        };
        match self.intel.check_ip(v4) {
            Verdict::Clean => IpIntel::Clean,
            Verdict::Trusted { .. } => IpIntel::Trusted,
            Verdict::Threat { lists } => {
                let category = |l: &&str| self.settings.threat_categories.get(*l).copied();
                let names = |pick: &dyn Fn(Option<ThreatCategory>) -> bool| -> Vec<String> {
                    lists
                        .iter()
                        .filter(|l| pick(category(l)))
                        .map(|l| l.to_string())
                        .collect()
                };
                let tor = names(&|c| c == Some(ThreatCategory::TorNode));
                if !tor.is_empty() {
                    return IpIntel::Tor { lists: tor };
                }
                let custom = names(&|c| matches!(c, None | Some(ThreatCategory::Custom)));
                if !custom.is_empty() {
                    return IpIntel::Custom { lists: custom };
                }
                IpIntel::Curated {
                    lists: lists.iter().map(|l| l.to_string()).collect(),
                }
            }
        }
    }
}

/// One foundational detection (or a family of closely related ones).
pub trait LogDetector: Send {
    /// Stable name, used as `additionalInfo.ward.ruleId` and as the key of persisted state.
    fn name(&self) -> &'static str;

    /// The sources whose records this detector wants.
    fn sources(&self) -> &'static [SourceKind];

    /// The CloudTrail calls this detector can act on (asked once, when the engine is built): the
    /// engine does not show it the others. Detectors of other sources leave it at `All`.
    fn calls(&self) -> Calls {
        Calls::All
    }

    /// One record; push zero or more occurrences.
    fn on_event(&mut self, event: &Event<'_>, ctx: &LogContext<'_>, out: &mut Vec<Occurrence>);

    /// Whether [`LogDetector::prefetch`] does anything (asked once, when the engine is built, so
    /// the others cost nothing).
    fn prefetches(&self) -> bool {
        false
    }

    /// The engine calls this for each record before any detector's [`LogDetector::on_event`]
    /// for it: a detector whose usual record reads a large table starts loading the cache line
    /// it will read (its own tables, or the lists' through `ctx.intel`), so that miss overlaps
    /// the other detectors' work. A hint: it changes no state and raises nothing.
    fn prefetch(&self, _event: &Event<'_>, _ctx: &LogContext<'_>) {}

    /// Event time has advanced to `now_ms` (Unix milliseconds, the newest record time minus the
    /// allowed lateness): windowed detectors close the windows that ended before it. The engine
    /// calls it when the watermark has moved at least a second since the last call, and at the
    /// end of the input. Occurrences
    /// pushed here are filed under the account and Region set in their `details`
    /// (`accountId`, `region`), else under `ctx.scope`.
    fn on_time(&mut self, _now_ms: i64, _ctx: &LogContext<'_>, _out: &mut Vec<Occurrence>) {}

    /// Learned state (baselines, learning-period start) to persist across restarts.
    fn save_state(&self) -> Option<serde_json::Value> {
        None
    }

    /// State saved by [`LogDetector::save_state`] in an earlier run.
    fn restore_state(&mut self, _state: serde_json::Value) -> Result<(), String> {
        Ok(())
    }
}

/// Every built-in foundational detector. The VPC Flow and DNS families add theirs here.
pub fn builtin() -> Vec<Box<dyn LogDetector>> {
    let mut all = cloudtrail::detectors();
    all.push(Box::new(flow::FlowDetector::default()));
    all.push(Box::new(dns::DnsDetector::default()));
    all.shrink_to_fit();
    all
}
