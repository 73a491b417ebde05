//! Who is calling: the caller's address on a threat list or a Tor list, or a penetration-testing
//! distribution in the user agent.
//!
//! Address findings (any API call from a public address, not made by an AWS service):
//!
//! | list the address is on | management API | S3 data-event API |
//! |---|---|---|
//! | `tor=` list | `Recon:IAMUser/TorIPCaller` for List*/Describe*, else `UnauthorizedAccess:IAMUser/TorIPCaller` | `Discovery:S3/TorIPCaller` for discovery APIs, else `UnauthorizedAccess:S3/TorIPCaller` |
//! | categorised list (`cnc=`, ...: curated intel) | `Recon:` / `UnauthorizedAccess:IAMUser/MaliciousIPCaller` | `Discovery:` / `Exfiltration:` / `Impact:S3/MaliciousIPCaller` by API |
//! | uncategorised operator list | `Recon:` / `UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom` | `Discovery:S3/MaliciousIPCaller.Custom`, else `UnauthorizedAccess:S3/MaliciousIPCaller.Custom` |
//!
//! The GuardDuty tester shows the Recon/UnauthorizedAccess split: `aws s3 ls` (ListBuckets) raises
//! the Recon type, `aws iam get-user` the UnauthorizedAccess one, so only List*/Describe* count as
//! reconnaissance.
//!
//! `PenTest:IAMUser/KaliLinux`, `ParrotLinux`, `PentooLinux` (and `PenTest:S3/*` for S3 data
//! events): the user agent names the distribution (the tester's
//! `md/distrib#kali.2025`, or a kernel/OS string such as `6.12-kali-amd64`), matched as a word.

use std::net::IpAddr;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

use super::{Call, SOURCES, Service, api_draft, record_call};
use crate::event::cloudtrail::CloudTrailRecord;
use crate::event::{Event, SourceKind};
use crate::findings::{FindingType, Occurrence};
use crate::foundational::aws_ranges::is_public;
use crate::foundational::{IpIntel, LogContext, LogDetector};

/// S3 object-level (data-event) APIs and their GuardDuty tactic.
#[derive(Clone, Copy, PartialEq, Eq)]
enum S3Data {
    Discovery,
    Exfiltration,
    Impact,
}

fn s3_data(rec: &CloudTrailRecord<'_>, call: Call) -> Option<S3Data> {
    if call.service != Service::S3 {
        return None;
    }
    let data_event = call.s3_data_event;
    let name = rec.event_name.as_deref().unwrap_or("");
    let tactic = match name {
        "GetObject"
        | "CopyObject"
        | "GetObjectTorrent"
        | "SelectObjectContent"
        | "RestoreObject" => S3Data::Exfiltration,
        "PutObject"
        | "PutObjectAcl"
        | "DeleteObject"
        | "DeleteObjects"
        | "PutObjectTagging"
        | "PutObjectRetention"
        | "PutObjectLegalHold"
        | "UploadPart"
        | "CompleteMultipartUpload" => S3Data::Impact,
        "GetObjectAcl"
        | "ListObjects"
        | "ListObjectsV2"
        | "ListObjectVersions"
        | "HeadObject"
        | "GetObjectTagging"
        | "GetObjectAttributes"
        | "ListParts"
        | "ListMultipartUploads" => S3Data::Discovery,
        _ if data_event => S3Data::Discovery,
        _ => return None,
    };
    Some(tactic)
}

fn is_recon(rec: &CloudTrailRecord<'_>) -> bool {
    let name = rec.event_name.as_deref().unwrap_or("");
    name.starts_with("List") || name.starts_with("Describe")
}

/// The public caller address of a call the principal made itself.
fn caller_ip(ev: &Event<'_>, call: Call) -> Option<IpAddr> {
    if call.by_aws_service {
        return None;
    }
    ev.caller_ip().filter(|ip| is_public(*ip))
}

pub struct CallerIntel;

const CALLER_INTEL: &str = "ct.caller-intel";

impl LogDetector for CallerIntel {
    fn name(&self) -> &'static str {
        CALLER_INTEL
    }

    fn sources(&self) -> &'static [SourceKind] {
        SOURCES
    }

    fn prefetches(&self) -> bool {
        true
    }

    /// The caller's address is looked up on every list for nearly every record, and the lists'
    /// address tables are too large to stay in cache next to the log text: the lookup's slot
    /// starts loading now.
    fn prefetch(&self, ev: &Event<'_>, ctx: &LogContext<'_>) {
        if let Some((_, call)) = record_call(ev)
            && let Some(IpAddr::V4(ip)) = caller_ip(ev, call)
        {
            ctx.intel.prefetch_ip(ip);
        }
    }

    fn on_event(&mut self, ev: &Event<'_>, ctx: &LogContext<'_>, out: &mut Vec<Occurrence>) {
        let Some((rec, call)) = record_call(ev) else {
            return;
        };
        let Some(ip) = caller_ip(ev, call) else {
            return;
        };
        let intel = ctx.ip_intel(ip);
        if matches!(intel, IpIntel::Clean | IpIntel::Trusted) {
            return;
        }
        raise_listed_caller(intel, ev, rec, call, ctx, out);
    }
}

/// The finding about a caller on a threat list (kept out of [`CallerIntel`]'s `on_event`, whose
/// usual record raises nothing).
#[cold]
#[inline(never)]
fn raise_listed_caller(
    intel: IpIntel,
    ev: &Event<'_>,
    rec: &CloudTrailRecord<'_>,
    call: Call,
    ctx: &LogContext<'_>,
    out: &mut Vec<Occurrence>,
) {
    use FindingType as T;
    let s3 = s3_data(rec, call);
    let recon = is_recon(rec);
    let (t, lists, what) = match intel {
        IpIntel::Clean | IpIntel::Trusted => return,
        IpIntel::Tor { lists } => {
            let t = match s3 {
                Some(S3Data::Discovery) => T::DiscoveryS3TorIpCaller,
                Some(_) => T::UnauthorizedAccessS3TorIpCaller,
                None if recon => T::ReconIamUserTorIpCaller,
                None => T::UnauthorizedAccessIamUserTorIpCaller,
            };
            (t, lists, "An API was called from a Tor exit node")
        }
        IpIntel::Curated { lists } => {
            let t = match s3 {
                Some(S3Data::Discovery) => T::DiscoveryS3MaliciousIpCaller,
                Some(S3Data::Exfiltration) => T::ExfiltrationS3MaliciousIpCaller,
                Some(S3Data::Impact) => T::ImpactS3MaliciousIpCaller,
                None if recon => T::ReconIamUserMaliciousIpCaller,
                None => T::UnauthorizedAccessIamUserMaliciousIpCaller,
            };
            (t, lists, "An API was called from a known malicious address")
        }
        IpIntel::Custom { lists } => {
            let t = match s3 {
                Some(S3Data::Discovery) => T::DiscoveryS3MaliciousIpCallerCustom,
                Some(_) => T::UnauthorizedAccessS3MaliciousIpCallerCustom,
                None if recon => T::ReconIamUserMaliciousIpCallerCustom,
                None => T::UnauthorizedAccessIamUserMaliciousIpCallerCustom,
            };
            (
                t,
                lists,
                "An API was called from an address on a custom threat list",
            )
        }
    };
    out.extend(
        api_draft(t, CALLER_INTEL, ev, rec, ctx, what)
            .threat(lists)
            .build(),
    );
}

/// Which penetration-testing distribution a user agent names, if any (case-insensitive, as a
/// word). Looked at for every record, so it allocates nothing.
pub fn pentest_distribution(user_agent: &str) -> Option<&'static str> {
    const WORDS: [&str; 3] = ["kali", "parrot", "pentoo"];
    const NAMES: [&str; 3] = ["Kali", "Parrot", "Pentoo"];
    // Every record's user agent is checked. Case-insensitive matching would leave the matcher
    // without a vectorised prefilter (the words' first letters in both cases are four bytes,
    // common ones), so the user agent is lower-cased into a stack buffer and searched for the
    // lower-case words, which the matcher finds many bytes at a time.
    static MATCHER: OnceLock<AhoCorasick> = OnceLock::new();
    let matcher = MATCHER.get_or_init(|| AhoCorasick::new(WORDS).expect("three literal words"));
    let ua = user_agent.as_bytes();
    let mut buf = [0u8; 512];
    let owned;
    let lower: &[u8] = if ua.len() <= buf.len() {
        for (d, s) in buf.iter_mut().zip(ua) {
            *d = s.to_ascii_lowercase();
        }
        &buf[..ua.len()]
    } else {
        owned = ua.to_ascii_lowercase();
        &owned
    };
    let mut found = [false; 3];
    for m in matcher.find_iter(lower) {
        let (i, end) = (m.start(), m.end());
        if (i == 0 || !ua[i - 1].is_ascii_alphanumeric())
            && ua.get(end).is_none_or(|c| !c.is_ascii_alphabetic())
        {
            found[m.pattern().as_usize()] = true;
        }
    }
    // Kali first, then Parrot, then Pentoo, whatever order they appear in.
    found.iter().position(|f| *f).map(|i| NAMES[i])
}

/// Slots of [`AgentVerdicts`] (direct-mapped, a power of two).
const AGENT_SLOTS: usize = 256;
/// Longer user agents are not remembered (they are checked every time).
const MAX_REMEMBERED_AGENT: usize = 512;

/// [`pentest_distribution`]'s answer for recently seen user agents. A fleet's calls come from a
/// few SDK and CLI builds, so nearly every record's user agent is one seen moments ago: its
/// answer is then a hash of the text and one comparison with the remembered text, not a search.
/// Exact: a user agent is only answered from a slot holding that very text.
#[derive(Default)]
struct AgentVerdicts {
    /// Indexed by the user agent's hash (top bits).
    slots: Vec<Option<Verdict>>,
}

#[derive(Clone)]
struct Verdict {
    hash: u64,
    agent: Box<str>,
    distribution: Option<&'static str>,
}

impl AgentVerdicts {
    fn distribution(&mut self, agent: &str) -> Option<&'static str> {
        if agent.len() > MAX_REMEMBERED_AGENT {
            return pentest_distribution(agent);
        }
        if self.slots.is_empty() {
            self.slots.resize(AGENT_SLOTS, None);
        }
        let hash = agent_fingerprint(agent);
        let slot = &mut self.slots[(hash >> (64 - AGENT_SLOTS.trailing_zeros())) as usize];
        if let Some(v) = slot
            && v.hash == hash
            && *v.agent == *agent
        {
            return v.distribution;
        }
        let distribution = pentest_distribution(agent);
        *slot = Some(Verdict {
            hash,
            agent: agent.into(),
            distribution,
        });
        distribution
    }
}

/// Where [`AgentVerdicts`] looks a user agent up: a hash of its length and 40 of its bytes (the
/// first 16, 8 from the middle, the last 16) rather than of all of it, which took as long as the
/// rest of the lookup. A slot answers only for the very text it holds, so this decides speed, not
/// answers; a fleet's user agents differ in their versions (near the start) and in the command
/// or SDK details (at the end).
fn agent_fingerprint(agent: &str) -> u64 {
    use std::hash::BuildHasher;
    let hasher = foldhash::fast::FixedState::with_seed(0x5045_4e54);
    let b = agent.as_bytes();
    let n = b.len();
    if n < 16 {
        return hasher.hash_one(agent);
    }
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    hasher.hash_one((
        n,
        word(0),
        word(8),
        word(n / 2 - 4),
        word(n - 16),
        word(n - 8),
    ))
}

#[derive(Default)]
pub struct PenTest {
    agents: AgentVerdicts,
}

impl LogDetector for PenTest {
    fn name(&self) -> &'static str {
        "ct.pentest-user-agent"
    }

    fn sources(&self) -> &'static [SourceKind] {
        SOURCES
    }

    fn on_event(&mut self, ev: &Event<'_>, ctx: &LogContext<'_>, out: &mut Vec<Occurrence>) {
        let Some((rec, call)) = record_call(ev) else {
            return;
        };
        if call.by_aws_service {
            return;
        }
        let Some(agent) = rec.user_agent.as_deref() else {
            return;
        };
        if let Some(distro) = self.agents.distribution(agent) {
            raise_pentest(distro, ev, rec, call, ctx, out);
        }
    }
}

/// The finding about a pentest distribution's call (kept out of [`PenTest`]'s `on_event`).
#[cold]
#[inline(never)]
fn raise_pentest(
    distro: &str,
    ev: &Event<'_>,
    rec: &CloudTrailRecord<'_>,
    call: Call,
    ctx: &LogContext<'_>,
    out: &mut Vec<Occurrence>,
) {
    use FindingType as T;
    let s3 = s3_data(rec, call).is_some();
    let t = match (distro, s3) {
        ("Kali", false) => T::PenTestIamUserKaliLinux,
        ("Parrot", false) => T::PenTestIamUserParrotLinux,
        ("Pentoo", false) => T::PenTestIamUserPentooLinux,
        ("Kali", true) => T::PenTestS3KaliLinux,
        ("Parrot", true) => T::PenTestS3ParrotLinux,
        (_, true) => T::PenTestS3PentooLinux,
        _ => return,
    };
    let what = format!("An API was called from a {distro} Linux machine");
    out.extend(api_draft(t, "ct.pentest-user-agent", ev, rec, ctx, &what).build());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::config::ThreatCategory;
    use crate::foundational::Settings;
    use crate::foundational::cloudtrail::testing::{run, run_with, stratus, types};
    use crate::intel::{IntelIndex, IntelList, ListFormat, ListKind, ListRole};
    use serde_json::Value;
    use std::sync::Arc;

    /// Real Stratus calls with their (anonymised) caller address.
    fn calls() -> Vec<Value> {
        stratus("aws.credential-access.ec2-steal-instance-credentials")
    }

    fn with_list(category: Option<ThreatCategory>, ip: &str) -> (IntelIndex, Settings) {
        let mut intel = IntelIndex::default();
        intel.add(Arc::new(IntelList::parse(
            "ops-list",
            ListRole::Threat,
            ListKind::EntityList,
            ListFormat::Txt,
            ip,
        )));
        let mut settings = Settings::default();
        if let Some(c) = category {
            settings.threat_categories.insert("ops-list".into(), c);
        }
        (intel, settings)
    }

    #[test]
    fn listed_callers_raise_recon_or_unauthorized_access_by_api() {
        let records = calls();
        let describe = records
            .iter()
            .find(|r| r["eventName"] == "DescribeInstances")
            .unwrap()
            .clone();
        let ip = describe["sourceIPAddress"].as_str().unwrap().to_owned();
        let mut get = describe.clone();
        get["eventName"] = "GetUser".into();
        get["eventSource"] = "iam.amazonaws.com".into();
        let (intel, settings) = with_list(None, &ip);
        let occ = run_with(
            &mut CallerIntel,
            &[describe.clone(), get.clone()],
            &intel,
            &settings,
        );
        assert_eq!(
            types(&occ),
            [
                "Recon:IAMUser/MaliciousIPCaller.Custom",
                "UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom"
            ]
        );
        let info = occ[0].details.service.additional_info_entries();
        assert_eq!(info["threatListName"], "ops-list");
        let (intel, settings) = with_list(Some(ThreatCategory::TorNode), &ip);
        let occ = run_with(
            &mut CallerIntel,
            &[describe.clone(), get],
            &intel,
            &settings,
        );
        assert_eq!(
            types(&occ),
            [
                "Recon:IAMUser/TorIPCaller",
                "UnauthorizedAccess:IAMUser/TorIPCaller"
            ]
        );
        let (intel, settings) = with_list(Some(ThreatCategory::CommandAndControl), &ip);
        assert_eq!(
            types(&run_with(
                &mut CallerIntel,
                std::slice::from_ref(&describe),
                &intel,
                &settings
            )),
            ["Recon:IAMUser/MaliciousIPCaller"]
        );
        let mut object = describe.clone();
        object["eventSource"] = "s3.amazonaws.com".into();
        object["eventName"] = "GetObject".into();
        object["eventCategory"] = "Data".into();
        assert_eq!(
            types(&run_with(&mut CallerIntel, &[object], &intel, &settings)),
            ["Exfiltration:S3/MaliciousIPCaller"]
        );
        // Unlisted addresses and an empty index raise nothing.
        assert!(run(&mut CallerIntel, &records).is_empty());
        let (intel, settings) = with_list(None, "203.0.113.77");
        assert!(run_with(&mut CallerIntel, &records, &intel, &settings).is_empty());
    }

    #[test]
    fn remembered_user_agents_get_the_answer_a_search_gives() {
        let mut verdicts = AgentVerdicts::default();
        // More distinct agents than slots, so slots are taken over, each asked several times
        // in a shuffled order; some name a distribution, some nearly do.
        let agents: Vec<String> = (0..1_000)
            .map(|i| match i % 5 {
                0 => format!("aws-cli/2.{i} os/linux#6.1-kali-amd64"),
                1 => format!("aws-cli/2.{i} md/distrib#xkali.{i}"),
                2 => format!("Boto3/1.{i} Linux/5.10-PARROT"),
                3 => format!("aws-sdk-go/1.{i} (pentooz)"),
                _ => format!("aws-sdk-java/1.{i} Linux/5.10"),
            })
            .collect();
        let long = format!("{} kali", "md/x#y ".repeat(100));
        for round in 0..3 {
            for i in 0..agents.len() {
                let a = &agents[(i * 7 + round * 13) % agents.len()];
                assert_eq!(verdicts.distribution(a), pentest_distribution(a), "{a}");
            }
            assert_eq!(verdicts.distribution(&long), Some("Kali"));
        }
        assert_eq!(verdicts.distribution(&agents[0]), Some("Kali"));
        assert_eq!(verdicts.distribution(&agents[1]), None);
        assert_eq!(verdicts.distribution(&agents[2]), Some("Parrot"));
        assert_eq!(verdicts.distribution(&agents[3]), None);
        // Same length and same sampled bytes (see `agent_fingerprint`), so the same slot: each
        // is still answered for its own text.
        let twin = |word: &str| format!("aws-cli/2.15.30 x {word} {}", "y".repeat(37));
        let (kali, kalx) = (twin("kali"), twin("kalx"));
        assert_eq!(agent_fingerprint(&kali), agent_fingerprint(&kalx));
        for _ in 0..2 {
            assert_eq!(verdicts.distribution(&kali), Some("Kali"));
            assert_eq!(verdicts.distribution(&kalx), None);
        }
    }

    #[test]
    fn pentest_distributions_are_matched_as_words() {
        let tester = "aws-cli/2.23.6 md/awscrt#1.0.0.dev0 ua/2.0 os/linux#6.12.13-cloud-amd64 md/arch#x86_64 lang/python#3.13.2 md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/distrib#kali.2025 md/prompt#off md/command#iam.get-user";
        assert_eq!(pentest_distribution(tester), Some("Kali"));
        assert_eq!(
            pentest_distribution("Boto3/1.9 Linux/5.10-parrot-amd64"),
            Some("Parrot")
        );
        assert_eq!(
            pentest_distribution("aws-cli/2 os/linux#pentoo"),
            Some("Pentoo")
        );
        assert_eq!(pentest_distribution("aws-sdk-go/1.44 (kalium build)"), None);
        assert_eq!(pentest_distribution("Linux/6.1-KALI"), Some("Kali"));
        assert_eq!(pentest_distribution("kali"), Some("Kali"));
        assert_eq!(pentest_distribution("os/xkali kal k"), None);
        assert_eq!(pentest_distribution("py/pentoo-2 parrot"), Some("Parrot"));
        assert_eq!(pentest_distribution("Pentoo"), Some("Pentoo"));
        assert_eq!(pentest_distribution("aws-cli/2 md/distrib#ubuntu.22"), None);
        // Longer than the stack buffer: the same answers.
        let padding = "md/x#y ".repeat(80);
        assert_eq!(
            pentest_distribution(&format!("{padding}Linux/6.1-PARROT")),
            Some("Parrot")
        );
        assert_eq!(pentest_distribution(&format!("{padding}xkali")), None);
        let mut records = calls();
        let real = run(&mut PenTest::default(), &records);
        assert!(
            real.is_empty(),
            "stratus user agents are not pentest distributions"
        );
        records[0]["userAgent"] = tester.into();
        assert_eq!(
            types(&run(&mut PenTest::default(), &records[..1])),
            ["PenTest:IAMUser/KaliLinux"]
        );
        records[0]["eventSource"] = "s3.amazonaws.com".into();
        records[0]["eventName"] = "GetObject".into();
        records[0]["userAgent"] = "aws-cli/2 os/linux#6.1-parrot-amd64".into();
        assert_eq!(
            types(&run(&mut PenTest::default(), &records[..1])),
            ["PenTest:S3/ParrotLinux"]
        );
    }
}
