//! The foundational engine: cloud-log records in, findings out.
//!
//! Per record: the record's scope (account and Region it belongs to) is worked out and checked
//! against the configured scope filter; the detectors registered for its source see it (a
//! CloudTrail record, only those whose [`LogDetector::calls`] admit its call); every
//! occurrence about a trusted address or domain is dropped before a finding exists; the rest are
//! folded into their findings (one aggregator per account/Region) and suppression rules archive
//! what they match.
//!
//! Event time and lateness: the engine keeps the newest record time seen and a watermark
//! `newest - lateness`. Records are handed to detectors as they arrive, in any order; when the
//! watermark advances, detectors get [`LogDetector::on_time`] and close only windows that ended
//! before it (at most once per second of event time: detectors only free closed windows there,
//! and asking all of them on every record was a tenth of the cost of detection). So a record up
//! to `lateness` older than the newest one still lands in its window (CloudTrail delivers files
//! per account/Region every ~5 minutes, and a directory walk reads them in name order, not time
//! order). A record older than the watermark is still delivered (stateless detections and
//! aggregation do not depend on order: aggregation keeps the earliest and latest times whatever
//! the arrival order) and counted as `late`; a windowed detector may find its window already
//! closed. [`FoundationalEngine::finish`] closes every window at the end of the input.
//!
//! State: [`FoundationalEngine::save_state`] gives the watermark and every detector's learned
//! state as one JSON value; `restore_state` takes it back (unknown detectors are ignored, a
//! detector that rejects its state is an error naming it).

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::{Value, json};

use super::{Calls, LogContext, LogDetector, Settings};
use crate::event::{Event, Record, SourceKind};
use crate::findings::{Aggregator, Finding, Occurrence, Scope};
use crate::intel::{IntelIndex, Verdict};
use crate::suppression::{self, Emitted, RuleSet as SuppressionRules};

/// Detectors hear of the watermark when it has moved this far (ms) since they last did.
const TIME_STEP_MS: i64 = 1000;

/// Version of the saved-state document.
const STATE_VERSION: u64 = 1;

/// Which records are in scope, and where records that name no account/Region are filed.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Account, Region and detector id for records that do not name an account or Region.
    pub default_scope: Scope,
    /// Only these accounts (empty: all).
    pub only_accounts: Vec<String>,
    /// Only these Regions (empty: all).
    pub only_regions: Vec<String>,
    /// How far (ms of event time) a record may arrive behind the newest one and still be placed
    /// in its window.
    pub lateness_ms: i64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            default_scope: Scope::new("000000000000", "us-east-1", "ward"),
            only_accounts: Vec::new(),
            only_regions: Vec::new(),
            lateness_ms: 15 * 60 * 1000,
        }
    }
}

/// Counters for the summary line and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub records: u64,
    /// Records without a usable time (not analysed).
    pub untimed: u64,
    /// Records outside the configured accounts/Regions.
    pub out_of_scope: u64,
    /// Records older than the watermark when they arrived.
    pub late: u64,
    pub occurrences: u64,
    /// Occurrences about a trusted address or domain, dropped before becoming findings.
    pub trusted: u64,
    pub suppressed: u64,
    /// Occurrences the aggregator refused (a detection without the facts its type needs).
    pub dropped: u64,
}

pub struct FoundationalEngine {
    options: EngineOptions,
    settings: Settings,
    detectors: Vec<Box<dyn LogDetector>>,
    /// What each detector asked for when the engine was built (by index in `detectors`).
    wants: Vec<Wants>,
    /// The detectors of each route ([`route_of`]), worked out when its first record arrives.
    routes: Vec<Option<Route>>,
    intel: IntelIndex,
    suppression: SuppressionRules,
    aggregators: HashMap<(String, String), Aggregator>,
    newest_ms: Option<i64>,
    watermark_ms: i64,
    /// The watermark detectors were last given (`on_time`).
    told_ms: i64,
    pending: Vec<Occurrence>,
    /// Scope of the record being processed (reused between records).
    scope: Scope,
    /// Whether `scope` passes the account/Region filter (worked out when `scope` changes).
    scope_in: bool,
    stats: EngineStats,
}

/// What a detector asked for when the engine was built.
struct Wants {
    sources: &'static [SourceKind],
    calls: Calls,
    prefetches: bool,
}

/// The detectors a record of one route goes to, in registration order.
struct Route {
    /// Those whose [`LogDetector::prefetch`] does something.
    prefetch: Vec<usize>,
    detect: Vec<usize>,
}

/// Routes: one per VPC Flow and DNS, and one per CloudTrail API and identity ([`Calls::route`]),
/// so a CloudTrail record goes only to the detectors its call concerns.
const ROUTES: usize = 2 + Calls::route_count();

fn route_of(ev: &Event<'_>) -> usize {
    match ev.record {
        Record::Flow(_) => 0,
        Record::Dns(_) => 1,
        Record::CloudTrail(_) => 2 + ev.cloudtrail_call().map_or(0, |c| Calls::route(&c)),
    }
}

impl Route {
    /// The detectors that want `ev`'s records (all records of a route are alike to them).
    fn of(wants: &[Wants], ev: &Event<'_>) -> Route {
        let source = ev.source();
        let call = ev.cloudtrail_call();
        let detect: Vec<usize> = (0..wants.len())
            .filter(|&i| {
                let w = &wants[i];
                w.sources.contains(&source)
                    && call.is_none_or(|c| w.calls.admits(c.api, c.identity))
            })
            .collect();
        Route {
            prefetch: detect
                .iter()
                .copied()
                .filter(|&i| wants[i].prefetches)
                .collect(),
            detect,
        }
    }
}

impl FoundationalEngine {
    pub fn new(
        options: EngineOptions,
        settings: Settings,
        detectors: Vec<Box<dyn LogDetector>>,
        intel: IntelIndex,
        suppression: SuppressionRules,
    ) -> Self {
        let wants = detectors
            .iter()
            .map(|d| Wants {
                sources: d.sources(),
                calls: d.calls(),
                prefetches: d.prefetches(),
            })
            .collect();
        let scope = options.default_scope.clone();
        Self {
            scope_in: in_scope(&options, &scope.account_id, &scope.region),
            scope,
            options,
            settings,
            detectors,
            wants,
            routes: (0..ROUTES).map(|_| None).collect(),
            intel,
            suppression,
            aggregators: HashMap::new(),
            newest_ms: None,
            watermark_ms: i64::MIN,
            told_ms: i64::MIN,
            pending: Vec::new(),
            stats: EngineStats::default(),
        }
    }

    /// Switches to other lists and suppression rules (changed while the engine runs); learned
    /// state, windows and findings are kept.
    pub fn replace_intel(&mut self, intel: IntelIndex, suppression: SuppressionRules) {
        self.intel = intel;
        self.suppression = suppression;
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    pub fn watermark_ms(&self) -> i64 {
        self.watermark_ms
    }

    /// Every finding, all scopes, in its current state.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.aggregators.values().flat_map(Aggregator::findings)
    }

    /// Runs every detection for the record's source and returns the findings it created or
    /// updated (including any closed by the watermark moving).
    pub fn process(&mut self, ev: &Event<'_>) -> Vec<Emitted> {
        self.stats.records += 1;
        let Some(t) = ev.time_ms() else {
            self.stats.untimed += 1;
            return Vec::new();
        };
        let (account, region) = record_scope(&self.options.default_scope, ev);
        // Records of one account and Region come in runs (one log object each): the scope is
        // rebuilt, and checked against the filter, only when they change.
        if !same_text(&self.scope.account_id, account) || !same_text(&self.scope.region, region) {
            self.scope.account_id.replace_range(.., account);
            self.scope.region.replace_range(.., region);
            self.scope_in = in_scope(&self.options, account, region);
        }
        if !self.scope_in {
            self.stats.out_of_scope += 1;
            return Vec::new();
        }
        if t < self.watermark_ms {
            self.stats.late += 1;
        }
        {
            let ctx = LogContext {
                intel: &self.intel,
                scope: &self.scope,
                settings: &self.settings,
            };
            let route = self.routes[route_of(ev)].get_or_insert_with(|| Route::of(&self.wants, ev));
            for &i in &route.prefetch {
                self.detectors[i].prefetch(ev, &ctx);
            }
            for &i in &route.detect {
                self.detectors[i].on_event(ev, &ctx, &mut self.pending);
            }
        }
        let mut emitted = Vec::new();
        // The usual record raises nothing: then there is nothing to fold.
        if !self.pending.is_empty() {
            let mut out = std::mem::take(&mut self.pending);
            self.fold(&mut out, &mut emitted);
            self.pending = out;
        }
        if self.newest_ms.is_none_or(|n| t > n) {
            self.newest_ms = Some(t);
            let wm = t.saturating_sub(self.options.lateness_ms);
            self.watermark_ms = self.watermark_ms.max(wm);
            if wm >= self.told_ms.saturating_add(TIME_STEP_MS) {
                let mut out = std::mem::take(&mut self.pending);
                self.advance(wm, &mut out, &mut emitted);
                self.pending = out;
            }
        }
        emitted
    }

    /// End of input: closes every open window (nothing older can arrive in this run).
    pub fn finish(&mut self) -> Vec<Emitted> {
        let mut out = std::mem::take(&mut self.pending);
        let mut emitted = Vec::new();
        if let Some(newest) = self.newest_ms {
            self.advance(newest.saturating_add(1), &mut out, &mut emitted);
        }
        self.pending = out;
        emitted
    }

    fn advance(&mut self, wm: i64, out: &mut Vec<Occurrence>, emitted: &mut Vec<Emitted>) {
        self.watermark_ms = self.watermark_ms.max(wm);
        self.told_ms = self.watermark_ms;
        let ctx = LogContext {
            intel: &self.intel,
            scope: &self.options.default_scope,
            settings: &self.settings,
        };
        for d in &mut self.detectors {
            d.on_time(self.watermark_ms, &ctx, out);
        }
        self.fold(out, emitted);
    }

    fn fold(&mut self, out: &mut Vec<Occurrence>, emitted: &mut Vec<Emitted>) {
        for occ in out.drain(..) {
            self.stats.occurrences += 1;
            if is_trusted(&self.intel, &occ.details) {
                self.stats.trusted += 1;
                continue;
            }
            let d = &self.options.default_scope;
            let account = non_empty_or(&occ.details.account_id, &d.account_id);
            let region = non_empty_or(&occ.details.region, &d.region);
            let aggregator = self
                .aggregators
                .entry((account.clone(), region.clone()))
                .or_insert_with(|| {
                    Aggregator::new(Scope {
                        account_id: account,
                        region,
                        ..d.clone()
                    })
                });
            match suppression::record(aggregator, &self.suppression, occ) {
                Ok(e) => {
                    if e.suppressed_by.is_some() {
                        self.stats.suppressed += 1;
                    }
                    emitted.push(e);
                }
                Err(_) => self.stats.dropped += 1,
            }
        }
    }

    /// Seeds aggregation with stored findings (after a restart), each under its account and
    /// Region, so an issue keeps its finding and its count goes on from the stored one.
    pub fn restore_findings(&mut self, findings: impl IntoIterator<Item = Finding>) {
        let d = self.options.default_scope.clone();
        for f in findings {
            let account = non_empty_or(&f.account_id, &d.account_id);
            let region = non_empty_or(&f.region, &d.region);
            self.aggregators
                .entry((account.clone(), region.clone()))
                .or_insert_with(|| {
                    Aggregator::new(Scope {
                        account_id: account,
                        region,
                        ..d.clone()
                    })
                })
                .restore([f]);
        }
    }

    /// The watermark and every detector's learned state.
    pub fn save_state(&self) -> Value {
        let detectors: serde_json::Map<String, Value> = self
            .detectors
            .iter()
            .filter_map(|d| Some((d.name().to_owned(), d.save_state()?)))
            .collect();
        json!({
            "version": STATE_VERSION,
            "newestMs": self.newest_ms,
            "detectors": detectors,
        })
    }

    /// Restores what [`Self::save_state`] wrote. The watermark resumes where it was, so records
    /// older than it count as late.
    pub fn restore_state(&mut self, state: Value) -> Result<(), String> {
        let version = state.get("version").and_then(Value::as_u64);
        if version != Some(STATE_VERSION) {
            return Err(format!(
                "state version {version:?}, expected {STATE_VERSION}"
            ));
        }
        if let Some(n) = state.get("newestMs").and_then(Value::as_i64) {
            self.newest_ms = Some(n);
            self.watermark_ms = n.saturating_sub(self.options.lateness_ms);
        }
        let Some(Value::Object(saved)) = state.get("detectors") else {
            return Ok(());
        };
        for d in &mut self.detectors {
            if let Some(s) = saved.get(d.name()) {
                d.restore_state(s.clone())
                    .map_err(|e| format!("detector {}: {e}", d.name()))?;
            }
        }
        Ok(())
    }
}

fn in_scope(o: &EngineOptions, account: &str, region: &str) -> bool {
    (o.only_accounts.is_empty() || o.only_accounts.iter().any(|a| a == account))
        && (o.only_regions.is_empty() || o.only_regions.iter().any(|r| r == region))
}

/// `a == b`, without a call to `memcmp` for the 8 to 16 bytes account ids and Region names
/// have (two overlapping word compares): the engine compares both on every record.
fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if !(8..=16).contains(&n) {
        return a == b;
    }
    let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8)
}

/// The account and Region a record belongs to (`default`'s where it names none).
fn record_scope<'a>(default: &'a Scope, ev: &'a Event<'_>) -> (&'a str, &'a str) {
    let (account, region) = match ev.record {
        Record::CloudTrail(r) => (
            r.recipient_account_id.as_deref().or_else(|| {
                r.user_identity
                    .as_ref()
                    .and_then(|u| u.account_id.as_deref())
            }),
            r.aws_region.as_deref(),
        ),
        Record::Flow(r) => (r.account_id, r.region),
        Record::Dns(r) => (r.account_id.as_deref(), r.region.as_deref()),
    };
    let pick = |v: Option<&'a str>, fallback: &'a str| {
        v.filter(|s| !s.is_empty() && *s != "-").unwrap_or(fallback)
    };
    (
        pick(account, &default.account_id),
        pick(region, &default.region),
    )
}

fn non_empty_or(v: &str, default: &str) -> String {
    if v.is_empty() { default } else { v }.to_owned()
}

/// Whether the occurrence is about an address or domain on a trusted list: the caller of an API,
/// the remote side of a connection, every prober of a port probe, the domain of a DNS request.
fn is_trusted(intel: &IntelIndex, f: &Finding) -> bool {
    let Some(action) = &f.service.action else {
        return false;
    };
    let trusted_ip = |d: Option<&crate::findings::RemoteIpDetails>| {
        d.and_then(|d| d.ip_address_v4.as_deref())
            .and_then(|t| t.parse::<IpAddr>().ok())
            .is_some_and(|ip| match ip {
                IpAddr::V4(v4) => matches!(intel.check_ip(v4), Verdict::Trusted { .. }),
                IpAddr::V6(_) => false,
            })
    };
    if let Some(a) = &action.aws_api_call_action
        && trusted_ip(a.remote_ip_details.as_ref())
    {
        return true;
    }
    if let Some(a) = &action.network_connection_action
        && trusted_ip(a.remote_ip_details.as_ref())
    {
        return true;
    }
    if let Some(a) = &action.port_probe_action
        && !a.port_probe_details.is_empty()
        && a.port_probe_details
            .iter()
            .all(|p| trusted_ip(p.remote_ip_details.as_ref()))
    {
        return true;
    }
    if let Some(a) = &action.dns_request_action
        && let Some(domain) = a.domain.as_deref()
    {
        return matches!(
            intel.check_domain(domain.trim_end_matches('.')),
            Verdict::Trusted { .. }
        );
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Origin;
    use crate::event::cloudtrail::CloudTrailRecord;
    use crate::foundational::builtin;
    use crate::foundational::cloudtrail::testing::panther;
    use crate::intel::{IntelList, ListFormat, ListKind, ListRole};
    use std::sync::Arc;

    fn engine(intel: IntelIndex, suppression: &str, options: EngineOptions) -> FoundationalEngine {
        let suppression = if suppression.is_empty() {
            SuppressionRules::default()
        } else {
            SuppressionRules::from_json_str(suppression).unwrap()
        };
        FoundationalEngine::new(options, Settings::default(), builtin(), intel, suppression)
    }

    fn feed(e: &mut FoundationalEngine, records: &[Value]) -> Vec<Emitted> {
        let mut all = Vec::new();
        for (i, v) in records.iter().enumerate() {
            let text = v.to_string();
            let rec: CloudTrailRecord<'_> = serde_json::from_str(&text).unwrap();
            let ev = Event::new(
                Origin {
                    object: "t.json",
                    line: i as u64 + 1,
                    index: None,
                },
                Record::CloudTrail(&rec),
            );
            all.extend(e.process(&ev));
        }
        all.extend(e.finish());
        all
    }

    fn root_call(time: &str, ip: &str) -> Value {
        let mut r = panther("AWS.Root.Activity", "Root Activity");
        r["eventTime"] = time.into();
        r["sourceIPAddress"] = ip.into();
        r
    }

    fn list(role: ListRole, text: &str) -> Arc<IntelList> {
        Arc::new(IntelList::parse(
            "ops",
            role,
            ListKind::EntityList,
            ListFormat::Txt,
            text,
        ))
    }

    #[test]
    fn repeats_aggregate_out_of_order_and_late_records_are_counted() {
        let mut e = engine(IntelIndex::default(), "", EngineOptions::default());
        let out = feed(
            &mut e,
            &[
                root_call("2024-01-01T10:00:00Z", "198.51.100.1"),
                // 20 minutes earlier: behind the 15-minute lateness bound.
                root_call("2024-01-01T09:40:00Z", "198.51.100.2"),
                root_call("2024-01-01T09:55:00Z", "198.51.100.3"),
            ],
        );
        assert_eq!(out.len(), 3);
        assert_eq!(e.stats().late, 1);
        let f: Vec<&Finding> = e.findings().collect();
        assert_eq!(f.len(), 1, "one principal, one finding");
        assert_eq!(f[0].service.count, 3);
        assert_eq!(f[0].service.event_first_seen, "2024-01-01T09:40:00.000Z");
        assert_eq!(f[0].service.event_last_seen, "2024-01-01T10:00:00.000Z");
        let newest = f[0]
            .service
            .action
            .as_ref()
            .unwrap()
            .aws_api_call_action
            .as_ref()
            .unwrap();
        assert_eq!(
            newest
                .remote_ip_details
                .as_ref()
                .unwrap()
                .ip_address_v4
                .as_deref(),
            Some("198.51.100.1"),
            "details are the newest occurrence's, whatever the arrival order"
        );
        assert_eq!(
            f[0].account_id, "123456789012",
            "filed under the record's account"
        );
        assert_eq!(f[0].region, "us-west-2");
        let ward = f[0].service.ward_details().unwrap().log_record.unwrap();
        assert_eq!((ward.object.as_str(), ward.line), ("t.json", 1));
    }

    #[test]
    fn trusted_callers_raise_nothing_and_threat_entries_lose_to_them() {
        let mut intel = IntelIndex::default();
        intel.add(list(ListRole::Trusted, "198.51.100.1\n"));
        intel.add(list(ListRole::Threat, "198.51.100.1\n"));
        let mut e = engine(intel, "", EngineOptions::default());
        let out = feed(
            &mut e,
            &[
                root_call("2024-01-01T10:00:00Z", "198.51.100.1"),
                root_call("2024-01-01T10:01:00Z", "198.51.100.9"),
            ],
        );
        assert_eq!(out.len(), 1);
        assert!(e.stats().trusted >= 1);
        assert_eq!(e.findings().next().unwrap().service.count, 1);
    }

    #[test]
    fn suppression_archives_and_scope_filters_skip_records() {
        let rules = r#"[{"Name":"root-from-office","Action":"ARCHIVE","FindingCriteria":{"Criterion":{
            "service.action.awsApiCallAction.remoteIpDetails.ipAddressV4":{"Eq":["198.51.100.1"]}}}}]"#;
        let mut e = engine(IntelIndex::default(), rules, EngineOptions::default());
        let out = feed(&mut e, &[root_call("2024-01-01T10:00:00Z", "198.51.100.1")]);
        assert_eq!(out[0].suppressed_by.as_deref(), Some("root-from-office"));
        assert!(out[0].finding.service.archived);
        assert_eq!(e.stats().suppressed, 1);

        let options = EngineOptions {
            only_regions: vec!["eu-west-1".into()],
            ..EngineOptions::default()
        };
        let mut e = engine(IntelIndex::default(), "", options);
        assert!(feed(&mut e, &[root_call("2024-01-01T10:00:00Z", "198.51.100.1")]).is_empty());
        assert_eq!(e.stats().out_of_scope, 1);
    }

    #[test]
    fn state_round_trips_and_a_wrong_version_is_refused() {
        let mut e = engine(IntelIndex::default(), "", EngineOptions::default());
        let mut policy = root_call("2024-01-01T10:00:00Z", "198.51.100.1");
        policy["userIdentity"] = panther(
            "AWS.S3.DeletePublicAccessBlock",
            "Public Access Block Deletion Failed",
        )["userIdentity"]
            .clone();
        policy["eventSource"] = "iam.amazonaws.com".into();
        policy["eventName"] = "UpdateAccountPasswordPolicy".into();
        policy["requestParameters"] =
            serde_json::json!({"MinimumPasswordLength": 16, "RequireSymbols": true});
        feed(&mut e, &[policy.clone()]);
        let saved = e.save_state();
        assert_eq!(
            saved["detectors"]["ct.password-policy-change"]["lastPolicy"]["123456789012"]["MinimumPasswordLength"],
            16
        );
        let mut again = engine(IntelIndex::default(), "", EngineOptions::default());
        again.restore_state(saved.clone()).unwrap();
        let newest = saved["newestMs"].as_i64().unwrap();
        assert_eq!(
            again.watermark_ms(),
            newest - EngineOptions::default().lateness_ms,
            "the watermark resumes behind the newest record seen"
        );
        policy["eventTime"] = "2024-01-02T10:00:00Z".into();
        policy["requestParameters"] = serde_json::json!({"MinimumPasswordLength": 8});
        let out = feed(&mut again, &[policy]);
        let pw = out
            .iter()
            .find(|o| o.finding.finding_type_name == "Stealth:IAMUser/PasswordPolicyChange")
            .unwrap();
        assert_eq!(
            pw.finding.severity.label(),
            "Medium",
            "weakened against the restored policy"
        );
        let mut bad = saved;
        bad["version"] = 99.into();
        assert!(again.restore_state(bad).unwrap_err().contains("version"));
    }

    /// Records every `on_time` it is given.
    struct Clock(Arc<std::sync::Mutex<Vec<i64>>>);

    impl LogDetector for Clock {
        fn name(&self) -> &'static str {
            "clock"
        }
        fn sources(&self) -> &'static [SourceKind] {
            &[SourceKind::CloudTrail]
        }
        fn on_event(&mut self, _: &Event<'_>, _: &LogContext<'_>, _: &mut Vec<Occurrence>) {}
        fn on_time(&mut self, now_ms: i64, _: &LogContext<'_>, _: &mut Vec<Occurrence>) {
            self.0.lock().unwrap().push(now_ms);
        }
    }

    /// Logs `prefetch` and `on_event` calls, under its name: (name, prefetches, the calls it
    /// wants, the log).
    struct Order(
        &'static str,
        bool,
        Calls,
        Arc<std::sync::Mutex<Vec<String>>>,
    );

    impl Order {
        fn log(&self, what: &str, ev: &Event<'_>) {
            self.3
                .lock()
                .unwrap()
                .push(format!("{} {what} {}", self.0, ev.origin.line));
        }
    }

    impl LogDetector for Order {
        fn name(&self) -> &'static str {
            self.0
        }
        fn sources(&self) -> &'static [SourceKind] {
            &[SourceKind::CloudTrail]
        }
        fn calls(&self) -> Calls {
            self.2
        }
        fn prefetches(&self) -> bool {
            self.1
        }
        fn prefetch(&self, ev: &Event<'_>, _: &LogContext<'_>) {
            self.log("prefetch", ev);
        }
        fn on_event(&mut self, ev: &Event<'_>, _: &LogContext<'_>, _: &mut Vec<Occurrence>) {
            self.log("event", ev);
        }
    }

    #[test]
    fn prefetching_detectors_are_asked_before_any_detector_sees_the_record() {
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut e = FoundationalEngine::new(
            EngineOptions::default(),
            Settings::default(),
            vec![
                Box::new(Order("a", false, Calls::All, calls.clone())),
                Box::new(Order("b", true, Calls::All, calls.clone())),
            ],
            IntelIndex::default(),
            SuppressionRules::default(),
        );
        feed(
            &mut e,
            &[
                root_call("2024-01-01T00:00:00Z", "203.0.113.9"),
                root_call("2024-01-01T00:00:01Z", "203.0.113.9"),
            ],
        );
        assert_eq!(
            *calls.lock().unwrap(),
            [
                "b prefetch 1",
                "a event 1",
                "b event 1",
                "b prefetch 2",
                "a event 2",
                "b event 2"
            ],
            "only the detector that prefetches is asked, before every detector's on_event"
        );
    }

    #[test]
    fn cloudtrail_records_reach_only_the_detectors_their_call_concerns() {
        use crate::event::cloudtrail::{Api, Identity};
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let picky = |name, calls| -> Box<dyn LogDetector> {
            Box::new(Order(name, false, calls, seen.clone()))
        };
        let mut e = FoundationalEngine::new(
            EngineOptions::default(),
            Settings::default(),
            vec![
                picky("all", Calls::All),
                picky("login", Calls::Apis(&[Api::ConsoleLogin])),
                picky("root", Calls::Identity(Identity::Root)),
                picky("trail", Calls::Apis(&[Api::StopLogging, Api::DeleteTrail])),
            ],
            IntelIndex::default(),
            SuppressionRules::default(),
        );
        let root_login = {
            let mut r = root_call("2024-01-01T00:00:00Z", "203.0.113.9");
            r["eventName"] = "ConsoleLogin".into();
            r["eventSource"] = "signin.amazonaws.com".into();
            r
        };
        let role_stop = {
            let mut r = root_call("2024-01-01T00:00:01Z", "203.0.113.9");
            r["userIdentity"]["type"] = "AssumedRole".into();
            r["eventName"] = "StopLogging".into();
            r["eventSource"] = "cloudtrail.amazonaws.com".into();
            r
        };
        let root_describe = {
            let mut r = root_call("2024-01-01T00:00:02Z", "203.0.113.9");
            r["eventName"] = "DescribeInstances".into();
            r["eventSource"] = "ec2.amazonaws.com".into();
            r
        };
        // Each record twice: the second of a kind takes the route the first worked out.
        feed(
            &mut e,
            &[
                root_login.clone(),
                role_stop.clone(),
                root_describe.clone(),
                root_login,
                role_stop,
                root_describe,
            ],
        );
        let seen = seen.lock().unwrap().clone();
        let by = |name: &str| -> Vec<String> {
            seen.iter()
                .filter_map(|s| s.strip_prefix(&format!("{name} event ")).map(str::to_owned))
                .collect()
        };
        // `feed` numbers records from 1.
        assert_eq!(by("all"), ["1", "2", "3", "4", "5", "6"]);
        assert_eq!(by("login"), ["1", "4"]);
        assert_eq!(by("root"), ["1", "3", "4", "6"]);
        assert_eq!(by("trail"), ["2", "5"]);
    }

    #[test]
    fn detectors_hear_the_watermark_once_a_second_and_at_the_end() {
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut e = FoundationalEngine::new(
            EngineOptions {
                lateness_ms: 0,
                ..EngineOptions::default()
            },
            Settings::default(),
            vec![Box::new(Clock(calls.clone()))],
            IntelIndex::default(),
            SuppressionRules::default(),
        );
        // 2.5 s of records 100 ms apart, then one late record.
        let mut records: Vec<Value> = (0..25)
            .map(|i| {
                root_call(
                    &format!("2024-01-01T00:00:0{}.{}00Z", i / 10, i % 10),
                    "203.0.113.9",
                )
            })
            .collect();
        records.push(root_call("2024-01-01T00:00:00.500Z", "203.0.113.9"));
        feed(&mut e, &records);
        let t0 = 1_704_067_200_000;
        assert_eq!(
            *calls.lock().unwrap(),
            [t0, t0 + 1000, t0 + 2000, t0 + 2401],
            "first record, each further second, then the end of input (newest + 1 ms)"
        );
        assert_eq!(e.watermark_ms(), t0 + 2401);
        assert_eq!(e.stats().late, 1);
    }

    #[test]
    fn short_text_equality_is_equality() {
        let words = [
            "",
            "a",
            "1234567",
            "12345678",
            "123456789012",
            "123456789013",
            "023456789012",
            "us-east-1",
            "us-east-2",
            "eu-west-1",
            "ap-southeast-1",
            "ap-southeast-2",
            "bp-southeast-1",
            "ap-southeast-12",
            "1234567890123456",
            "1234567890123457",
            "12345678901234567",
            "12345678901234568",
            "ünïcode-région",
        ];
        for a in words {
            for b in words {
                assert_eq!(same_text(a, b), a == b, "{a:?} {b:?}");
            }
        }
        // Every single-byte change at every position of the lengths with the word path.
        for n in 8..=16 {
            let a: String = (0..n).map(|i| char::from(b'a' + i as u8)).collect();
            for at in 0..n {
                let mut b = a.clone().into_bytes();
                b[at] = b'Z';
                let b = String::from_utf8(b).unwrap();
                assert!(!same_text(&a, &b), "{a} {b}");
                assert!(same_text(&a, &a.clone()));
            }
        }
    }

    /// The scope and its filter verdict are remembered from one record to the next: records that
    /// switch between accounts and Regions (in and out of the filter, and back) are each counted
    /// and filed as their own.
    #[test]
    fn scope_changes_between_records_are_each_honoured() {
        let at = |account: &str, region: &str, ip: &str, second: u32| {
            let mut r = root_call(&format!("2024-01-01T10:00:{second:02}Z"), ip);
            r["recipientAccountId"] = account.into();
            r["awsRegion"] = region.into();
            r
        };
        let options = EngineOptions {
            only_accounts: vec!["111111111111".into(), "222222222222".into()],
            only_regions: vec!["us-east-1".into(), "eu-west-1".into()],
            ..EngineOptions::default()
        };
        let mut e = engine(IntelIndex::default(), "", options);
        let records = [
            at("111111111111", "us-east-1", "198.51.100.1", 0),
            at("111111111111", "us-east-1", "198.51.100.2", 1),
            at("111111111111", "us-west-2", "198.51.100.3", 2), // Region filtered
            at("111111111111", "us-west-2", "198.51.100.4", 3), // Region filtered
            at("333333333333", "us-east-1", "198.51.100.5", 4), // account filtered
            at("222222222222", "eu-west-1", "198.51.100.6", 5),
            at("111111111111", "us-east-1", "198.51.100.7", 6),
            at("222222222222", "us-east-1", "198.51.100.8", 7),
        ];
        let out = feed(&mut e, &records);
        assert_eq!(e.stats().out_of_scope, 3);
        assert_eq!(out.len(), 5);
        let mut filed: Vec<(String, String, u64)> = e
            .findings()
            .map(|f| (f.account_id.clone(), f.region.clone(), f.service.count))
            .collect();
        filed.sort();
        assert_eq!(
            filed,
            [
                ("111111111111".into(), "us-east-1".into(), 3),
                ("222222222222".into(), "eu-west-1".into(), 1),
                ("222222222222".into(), "us-east-1".into(), 1),
            ]
        );
        // A filter that excludes the default scope: a first record naming no account is out.
        let options = EngineOptions {
            only_accounts: vec!["111111111111".into()],
            ..EngineOptions::default()
        };
        let mut e = engine(IntelIndex::default(), "", options);
        let mut anonymous = root_call("2024-01-01T10:00:00Z", "198.51.100.1");
        anonymous["recipientAccountId"] = serde_json::Value::Null;
        anonymous["userIdentity"]["accountId"] = serde_json::Value::Null;
        let out = feed(
            &mut e,
            &[
                anonymous.clone(),
                at("111111111111", "us-east-1", "198.51.100.2", 1),
                anonymous,
            ],
        );
        assert_eq!(e.stats().out_of_scope, 2);
        assert_eq!(out.len(), 1);
    }
}
