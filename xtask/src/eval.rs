//! `cargo xtask eval corpus`: runs the labelled corpus (`shared/corpus`, see its README) through
//! `ward-collector scan` and prints, per finding type and overall, true/false positives and
//! negatives. Every labelled test is accounted for: those with no Ward counterpart are listed as
//! such, with the reason.
//!
//! Labels and how they are scored:
//! * **Panther rule tests** (CloudTrail, Route 53, VPC Flow): `expected_result` is upstream. A rule
//!   is mapped to the Ward types closest to it ([`PANTHER_MAP`], our mapping, after the corpus
//!   README). A positive test is a TP when Ward raises one of the mapped types, else an FN; a
//!   negative test is a TN when it raises none of them, else an FP. Tests whose expectation rests
//!   on Panther's mocked enrichment (`mocks`) and tests of unmapped rules are listed, not scored.
//! * **Stratus Red Team detonations**: each file's expected types ([`STRATUS`]; upstream where the
//!   README says so, ours otherwise). Each expected type raised is a TP, missing an FN; any other
//!   type raised is an FP; a file expecting nothing that raises nothing is a TN.
//! * **GuardDuty tester definitions**: the DNS ones become one Route 53 query-log record for the
//!   indicator, queried by an instance; expected type upstream, scored like Stratus. The others
//!   have no log data in the corpus and are listed.
//!
//! The counts are recorded in `xtask/eval-corpus.json`; the run fails when a type's TP or TN falls
//! below, or its FP or FN rises above, the recorded count (`--record` rewrites the file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct Args {
    /// The corpus directory (default: WARD_CORPUS, else shared/corpus beside the checkout).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Rewrite the recorded counts instead of checking against them.
    #[arg(long)]
    record: bool,
    /// Print every scored case.
    #[arg(long)]
    verbose: bool,
}

const BASELINE: &str = "xtask/eval-corpus.json";

/// Panther rule → (Ward types, optional `eventSource` the mapping is limited to, note).
const PANTHER_MAP: &[(&str, &[&str], Option<&str>)] = &[
    (
        "AWS.CloudTrail.Stopped",
        &["Stealth:IAMUser/CloudTrailLoggingDisabled"],
        None,
    ),
    (
        "AWS.CloudTrail.SecurityConfigurationChange",
        &["Stealth:IAMUser/CloudTrailLoggingDisabled"],
        None,
    ),
    (
        "AWS.CloudTrail.EventSelectorsDisabled",
        &["Stealth:IAMUser/CloudTrailLoggingDisabled"],
        None,
    ),
    (
        "AWS.CloudTrail.IMDSCredentialExfiltration",
        &[
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS",
        ],
        None,
    ),
    (
        "AWS.Console.RootLogin",
        &["Policy:IAMUser/RootCredentialUsage"],
        None,
    ),
    (
        "AWS.Console.RootLoginFailed",
        &["Policy:IAMUser/RootCredentialUsage"],
        None,
    ),
    (
        "AWS.Root.Activity",
        &["Policy:IAMUser/RootCredentialUsage"],
        None,
    ),
    (
        "AWS.CloudTrail.RootAccessKeyCreated",
        &["Policy:IAMUser/RootCredentialUsage"],
        None,
    ),
    (
        "AWS.CloudTrail.RootPasswordChanged",
        &["Policy:IAMUser/RootCredentialUsage"],
        None,
    ),
    (
        "AWS.S3.DisableBucketLogging",
        &["Stealth:S3/ServerAccessLoggingDisabled"],
        None,
    ),
    (
        "AWS.S3.DeletePublicAccessBlock",
        &["Policy:S3/BucketBlockPublicAccessDisabled"],
        None,
    ),
    (
        "AWS.CloudTrail.ResourceMadePublic",
        &[
            "Policy:S3/BucketAnonymousAccessGranted",
            "Policy:S3/BucketPublicAccessGranted",
        ],
        Some("s3.amazonaws.com"),
    ),
    (
        "AWS.S3.BucketPolicyModified",
        &[
            "Policy:S3/BucketAnonymousAccessGranted",
            "Policy:S3/BucketPublicAccessGranted",
        ],
        None,
    ),
    (
        "AWS.IAMUser.ReconAccessDenied",
        &["Discovery:IAMUser/AnomalousBehavior"],
        None,
    ),
    (
        "AWS.CloudTrail.Account.Discovery",
        &["Discovery:IAMUser/AnomalousBehavior"],
        None,
    ),
    (
        "AWS.Bedrock.DeleteModelInvocationLoggingConfiguration",
        &["DefenseEvasion:IAMUser/BedrockLoggingDisabled"],
        None,
    ),
    (
        "Standard.ImpossibleTravel.Login",
        &["UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B"],
        None,
    ),
    (
        "AWS.DNS.Crypto.Domain",
        &["CryptoCurrency:EC2/BitcoinTool.B!DNS"],
        None,
    ),
    (
        "Standard.DNSBase64",
        &["Trojan:EC2/DNSDataExfiltration"],
        None,
    ),
    ("AWS.VPC.PortScanning", &["Recon:EC2/Portscan"], None),
];

/// Panther rules with no Ward counterpart for a reason more specific than "no GuardDuty type".
const PANTHER_NO_COUNTERPART: &[(&str, &str)] = &[(
    "AWS.CloudTrail.Password.Policy.Discovery",
    "reading the password policy (GetAccountPasswordPolicy) is discovery, which GuardDuty reports only as Discovery:IAMUser/AnomalousBehavior against a learned baseline; PasswordPolicyChange is about changing it",
)];

/// Why a scored case is a miss (FN) or a false alarm (FP) that is not a Ward bug: (case name
/// prefix, finding type, `fn` or `fp`, reason). Every FN and FP the run finds is printed with its
/// reason from here, or flagged as unexplained.
const EXPLAINED: &[(&str, &str, &str, &str)] = &[
    (
        "AWS.",
        "AnomalousBehavior",
        "fn",
        "one record: AnomalousBehavior needs a learned baseline of the principal's API use (7-day learning period), which a single test record cannot have",
    ),
    (
        "aws.",
        "AnomalousBehavior",
        "fn",
        "needs the principal's history: a detonation log is the principal's first day, which Ward learns (7-day learning period; `scan --state` carries baselines across scans). The corpus has no prior activity of these principals",
    ),
    (
        "AWS.DNS.Crypto.Domain",
        "CryptoCurrency:EC2/BitcoinTool.B!DNS",
        "fn",
        "the domain is on Panther's crypto IOC list, not on Ward's shipped mining-pool list (well-known pools only); operators load such IOCs as a `bitcoin=` threat list",
    ),
    (
        "Standard.DNSBase64",
        "Trojan:EC2/DNSDataExfiltration",
        "fn",
        "one query: DNSDataExfiltration is about volume (>= 20 distinct encoded names under one domain in 10 min; the GuardDuty tester sends 929), not one name with a base64 label",
    ),
    (
        "AWS.VPC.PortScanning",
        "Recon:EC2/Portscan",
        "fn",
        "one flow record: a port scan needs connections to >= 20 ports of one host (Panther counts 10 ports in its own aggregation, outside the test)",
    ),
    (
        "AWS.S3.BucketPolicyModified / S3 Bucket Policy Modified",
        "Policy:S3/BucketAnonymousAccessGranted",
        "fn",
        "label disagreement: Panther alerts on any ACL change; this one sets the ACL `private`, which grants nothing and GuardDuty does not report",
    ),
    (
        "AWS.",
        "Policy:IAMUser/RootCredentialUsage",
        "fp",
        "label disagreement: the Panther rule is narrower (failed sign-ins only, root's own keys only, or without read-only/service-linked-role calls); GuardDuty raises RootCredentialUsage for every call made with root credentials, failed ones included",
    ),
];

/// Stratus detonation → (expected types, who says so). Files whose README annotation names no
/// GuardDuty type expect nothing.
const STRATUS: &[(&str, &[&str], &str)] = &[
    (
        "aws.credential-access.ec2-get-password-data",
        &["CredentialAccess:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.credential-access.ec2-steal-instance-credentials",
        &["UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"],
        "upstream",
    ),
    (
        "aws.credential-access.secretsmanager-batch-retrieve-secrets",
        &["CredentialAccess:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.credential-access.secretsmanager-retrieve-secrets",
        &["CredentialAccess:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.credential-access.ssm-retrieve-securestring-parameters",
        &["CredentialAccess:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.defense-evasion.cloudtrail-delete",
        &["Stealth:IAMUser/CloudTrailLoggingDisabled"],
        "upstream",
    ),
    (
        "aws.defense-evasion.cloudtrail-event-selectors",
        &["Stealth:IAMUser/CloudTrailLoggingDisabled"],
        "ours (Ward extension; GuardDuty raises nothing)",
    ),
    (
        "aws.defense-evasion.cloudtrail-stop",
        &["Stealth:IAMUser/CloudTrailLoggingDisabled"],
        "upstream",
    ),
    (
        "aws.defense-evasion.dns-delete-logs",
        &[],
        "ours (no GuardDuty type)",
    ),
    (
        "aws.defense-evasion.organizations-leave",
        &[],
        "ours (no GuardDuty type)",
    ),
    (
        "aws.defense-evasion.vpc-remove-flow-logs",
        &[],
        "ours (no GuardDuty type)",
    ),
    (
        "aws.discovery.ec2-download-user-data",
        &["Discovery:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.execution.ec2-launch-unusual-instances",
        &["Impact:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.execution.ec2-user-data",
        &[],
        "ours (no GuardDuty type)",
    ),
    (
        "aws.execution.ssm-send-command",
        &[],
        "ours (no GuardDuty Execution:IAMUser type)",
    ),
    (
        "aws.execution.ssm-start-session",
        &[],
        "ours (no GuardDuty Execution:IAMUser type)",
    ),
    (
        "aws.exfiltration.ec2-security-group-open-port-22-ingress",
        &[],
        "ours (no GuardDuty type)",
    ),
    (
        "aws.exfiltration.ec2-share-ami",
        &["Exfiltration:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.exfiltration.ec2-share-ebs-snapshot",
        &["Exfiltration:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.exfiltration.rds-share-snapshot",
        &["Exfiltration:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.impact.bedrock-invoke-model",
        &[],
        "ours (out of scope)",
    ),
    (
        "aws.initial-access.console-login-without-mfa",
        &[],
        "ours (no GuardDuty type)",
    ),
    (
        "aws.lateral-movement.ec2-instance-connect",
        &[],
        "ours (no GuardDuty type)",
    ),
    (
        "aws.lateral-movement.ec2-serial-console-send-ssh-public-key",
        &[],
        "ours (no GuardDuty type)",
    ),
    (
        "aws.persistence.iam-backdoor-role",
        &["Persistence:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.persistence.iam-backdoor-user",
        &["Persistence:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.persistence.iam-create-admin-user",
        &["Persistence:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.persistence.iam-create-backdoor-role",
        &["Persistence:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.persistence.iam-create-user-login-profile",
        &["Persistence:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.persistence.lambda-backdoor-function",
        &["Persistence:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.persistence.lambda-layer-extension",
        &["Persistence:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.persistence.lambda-overwrite-code",
        &["Persistence:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.persistence.rolesanywhere-create-trust-anchor",
        &["Persistence:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.persistence.sts-federation-token",
        &["Persistence:IAMUser/AnomalousBehavior"],
        "ours",
    ),
    (
        "aws.privilege-escalation.iam-update-user-login-profile",
        &["PrivilegeEscalation:IAMUser/AnomalousBehavior"],
        "ours",
    ),
];

/// One run of `scan` and what it should raise.
struct Case {
    set: &'static str,
    name: String,
    /// `cloudtrail`, `dns` or `vpc-flow`: the scan option the file is given with.
    source: &'static str,
    file_name: String,
    content: String,
    scoring: Scoring,
}

enum Scoring {
    /// Panther: a positive needs one of `types`, a negative none of them.
    AnyOf { types: Vec<String>, positive: bool },
    /// Stratus / tester: exactly these types (others raised are FPs).
    Exactly(Vec<String>),
}

#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
struct Counts {
    tp: u64,
    fp: u64,
    tn: u64,
    fn_: u64,
}

impl Counts {
    fn to_json(self) -> Value {
        json!({ "tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn_ })
    }
    fn from_json(v: &Value) -> Self {
        let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        Self {
            tp: n("tp"),
            fp: n("fp"),
            tn: n("tn"),
            fn_: n("fn"),
        }
    }
    fn add(&mut self, o: Counts) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.tn += o.tn;
        self.fn_ += o.fn_;
    }
}

/// A labelled test that is not scored, and why.
struct Unscored {
    set: &'static str,
    what: String,
    tests: usize,
    reason: &'static str,
}

fn find_corpus(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let root = crate::workspace_root();
    let candidates = [
        given,
        std::env::var_os("WARD_CORPUS").map(PathBuf::from),
        std::env::var_os("WARD_CORPUS_DIR").map(PathBuf::from),
        Some(root.join("../shared/corpus")),
        Some(root.join("../../shared/corpus")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("README.md").is_file())
        .context("corpus not found: pass --corpus DIR or set WARD_CORPUS (CI copies shared/ beside the checkout)")
}

fn strip_panther_metadata(log: &Value) -> Value {
    match log {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with("p_"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A Panther-normalised flow record as a v5-style flow-log file (header + one line).
fn flow_file(log: &Value) -> String {
    let s = |k: &str, d: &str| match log.get(k) {
        Some(Value::String(v)) if v != "null" => v.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => d.to_owned(),
    };
    let direction = s("flowDirection", "-");
    format!(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status vpc-id subnet-id instance-id region flow-direction\n\
         5 123456789012 eni-0a1b2c3d {} {} {} {} 6 1 40 1700000000 1700000060 {} OK {} {} {} {} {}\n",
        s("srcAddr", "-"),
        s("dstAddr", "-"),
        s("srcPort", "-"),
        s("dstPort", "-"),
        s("action", "ACCEPT"),
        s("vpcId", "-"),
        s("subNetId", "-"),
        s("instanceId", "-"),
        s("region", "-"),
        direction,
    )
}

fn panther_cases(
    corpus: &Path,
    cases: &mut Vec<Case>,
    unscored: &mut Vec<Unscored>,
) -> anyhow::Result<()> {
    for (file, source) in [
        ("panther_rule_tests_cloudtrail.jsonl", "cloudtrail"),
        ("panther_rule_tests_route53_resolver.jsonl", "dns"),
        ("panther_rule_tests_vpcflow.jsonl", "vpc-flow"),
    ] {
        let path = corpus.join("panther-analysis").join(file);
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        let mut unmapped: BTreeMap<String, usize> = BTreeMap::new();
        let mut mocked: BTreeMap<String, usize> = BTreeMap::new();
        let mut other_service: BTreeMap<String, usize> = BTreeMap::new();
        let mut specific: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let t: Value = serde_json::from_str(line)
                .with_context(|| format!("{}:{}", path.display(), i + 1))?;
            let rule = t["rule_id"].as_str().unwrap_or("?").to_owned();
            let Some((_, types, only)) = PANTHER_MAP.iter().find(|(r, _, _)| *r == rule) else {
                match PANTHER_NO_COUNTERPART.iter().find(|(r, _)| *r == rule) {
                    Some((_, reason)) => *specific.entry((rule, *reason)).or_default() += 1,
                    None => *unmapped.entry(rule).or_default() += 1,
                }
                continue;
            };
            if !t["mocks"].is_null() {
                *mocked.entry(rule).or_default() += 1;
                continue;
            }
            let log = strip_panther_metadata(&t["log"]);
            if let Some(only) = only
                && log.get("eventSource").and_then(Value::as_str) != Some(*only)
            {
                *other_service.entry(rule).or_default() += 1;
                continue;
            }
            let content = match source {
                "vpc-flow" => flow_file(&log),
                _ => log.to_string(),
            };
            cases.push(Case {
                set: "panther",
                name: format!("{rule} / {}", t["test_name"].as_str().unwrap_or("?")),
                source,
                file_name: format!(
                    "panther-{source}-{i}.{}",
                    if source == "vpc-flow" { "log" } else { "json" }
                ),
                content,
                scoring: Scoring::AnyOf {
                    types: types.iter().map(|s| s.to_string()).collect(),
                    positive: t["expected_result"].as_bool().unwrap_or(false),
                },
            });
        }
        for ((rule, reason), n) in specific {
            unscored.push(Unscored {
                set: "panther",
                what: rule,
                tests: n,
                reason,
            });
        }
        for (map, reason) in [
            (
                unmapped,
                "no Ward counterpart (Panther rule with no GuardDuty finding type)",
            ),
            (mocked, "expectation rests on Panther's mocked enrichment"),
            (
                other_service,
                "rule also covers non-S3 resources Ward has no finding for",
            ),
        ] {
            for (rule, n) in map {
                unscored.push(Unscored {
                    set: "panther",
                    what: rule,
                    tests: n,
                    reason,
                });
            }
        }
    }
    Ok(())
}

fn stratus_cases(corpus: &Path, cases: &mut Vec<Case>) -> anyhow::Result<()> {
    let dir = corpus.join("stratus-red-team/detonation-logs");
    for (name, expected, _) in STRATUS {
        let path = dir.join(format!("{name}.json"));
        let content =
            std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        cases.push(Case {
            set: "stratus",
            name: name.to_string(),
            source: "cloudtrail",
            file_name: format!("{name}.json"),
            content,
            scoring: Scoring::Exactly(expected.iter().map(|s| s.to_string()).collect()),
        });
    }
    Ok(())
}

fn tester_cases(
    corpus: &Path,
    cases: &mut Vec<Case>,
    unscored: &mut Vec<Unscored>,
) -> anyhow::Result<()> {
    let path = corpus.join("amazon-guardduty-tester/definitions.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let defs: Value = serde_json::from_str(&text)?;
    let mut no_data: BTreeMap<String, usize> = BTreeMap::new();
    for (i, d) in defs["definitions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let t = d["findingType"].as_str().unwrap_or("?");
        let source = d["logSource"].as_str().unwrap_or("?");
        match (source, d["indicator"].as_str()) {
            ("dns", Some(domain)) => {
                let record = json!({
                    "version": "1.100000", "account_id": "123456789012", "region": "us-east-1",
                    "vpc_id": "vpc-0a1b2c3d", "query_timestamp": "2024-01-01T00:00:00Z",
                    "query_name": format!("{domain}."), "query_type": "A", "query_class": "IN",
                    "rcode": "NOERROR", "answers": [], "srcaddr": "10.0.0.5", "srcport": "53000",
                    "transport": "UDP", "srcids": { "instance": "i-0123456789abcdef0" }
                });
                cases.push(Case {
                    set: "tester",
                    name: format!("{t} ({domain})"),
                    source: "dns",
                    file_name: format!("tester-{i}.json"),
                    content: record.to_string(),
                    scoring: Scoring::Exactly(vec![t.to_owned()]),
                });
            }
            _ => *no_data.entry(format!("{source}: {t}")).or_default() += 1,
        }
    }
    for (what, n) in no_data {
        unscored.push(Unscored {
            set: "tester",
            what,
            tests: n,
            reason: "no log data in the corpus (the tester generates it live)",
        });
    }
    Ok(())
}

/// Runs one case; returns the finding types raised.
fn run_case(bin: &Path, dir: &Path, case: &Case) -> anyhow::Result<Vec<String>> {
    let file = dir.join(&case.file_name);
    std::fs::write(&file, &case.content)?;
    let out = Command::new(bin)
        .arg("scan")
        .arg(format!("--{}", case.source))
        .arg(&file)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{}: scan failed: {}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut types = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Value = serde_json::from_str(line)
            .with_context(|| format!("{}: finding is not JSON: {line}", case.name))?;
        if let Some(t) = f["type"].as_str() {
            types.push(t.to_owned());
        }
    }
    types.sort();
    types.dedup();
    Ok(types)
}

fn score(case: &Case, raised: &[String], per_type: &mut BTreeMap<String, Counts>) -> Counts {
    let mut total = Counts::default();
    let mut bump = |t: &str, f: &dyn Fn(&mut Counts)| {
        let c = per_type.entry(t.to_owned()).or_default();
        f(c);
        f(&mut total);
    };
    match &case.scoring {
        Scoring::AnyOf { types, positive } => {
            let hit: Vec<&String> = types.iter().filter(|t| raised.contains(t)).collect();
            match (positive, hit.is_empty()) {
                (true, false) => bump(hit[0], &|c| c.tp += 1),
                (true, true) => bump(&types[0], &|c| c.fn_ += 1),
                (false, true) => bump(&types[0], &|c| c.tn += 1),
                (false, false) => {
                    for t in hit {
                        bump(t, &|c| c.fp += 1);
                    }
                }
            }
        }
        Scoring::Exactly(expected) => {
            for t in expected {
                if raised.contains(t) {
                    bump(t, &|c| c.tp += 1);
                } else {
                    bump(t, &|c| c.fn_ += 1);
                }
            }
            for t in raised.iter().filter(|t| !expected.contains(t)) {
                bump(t, &|c| c.fp += 1);
            }
            if expected.is_empty() && raised.is_empty() {
                bump("(no finding expected)", &|c| c.tn += 1);
            }
        }
    }
    total
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let corpus = find_corpus(args.corpus)?;
    crate::cargo(
        &["build", "-p", "ward-collector", "--bin", "ward-collector"],
        &[],
    )?;
    let bin = crate::target_dir().join("debug/ward-collector");
    let mut cases = Vec::new();
    let mut unscored = Vec::new();
    panther_cases(&corpus, &mut cases, &mut unscored)?;
    stratus_cases(&corpus, &mut cases)?;
    tester_cases(&corpus, &mut cases, &mut unscored)?;

    let dir = std::env::temp_dir().join(format!("ward-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let started = std::time::Instant::now();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let results: Vec<anyhow::Result<Vec<String>>> = std::thread::scope(|s| {
        let chunks: Vec<_> = cases
            .chunks(cases.len().div_ceil(workers).max(1))
            .map(|chunk| {
                s.spawn(|| {
                    chunk
                        .iter()
                        .map(|c| run_case(&bin, &dir, c))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        chunks
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    });
    let _ = std::fs::remove_dir_all(&dir);

    let mut per_type: BTreeMap<String, Counts> = BTreeMap::new();
    let mut per_set: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut misses: Vec<String> = Vec::new();
    let mut unexplained = 0;
    for (case, raised) in cases.iter().zip(results) {
        let raised = raised?;
        let mut own: BTreeMap<String, Counts> = BTreeMap::new();
        score(case, &raised, &mut own);
        for (t, c) in &own {
            for (kind, n) in [("fn", c.fn_), ("fp", c.fp)] {
                if n == 0 {
                    continue;
                }
                let why = EXPLAINED
                    .iter()
                    .find(|(prefix, ty, k, _)| {
                        case.name.starts_with(prefix) && t.contains(ty) && *k == kind
                    })
                    .map(|e| e.3);
                if why.is_none() {
                    unexplained += 1;
                }
                misses.push(format!(
                    "- {} {}: {} `{t}`: {}",
                    case.set,
                    case.name,
                    kind.to_uppercase(),
                    why.unwrap_or("UNEXPLAINED (look at it: a Ward bug or a missing rule?)")
                ));
            }
        }
        let c = score(case, &raised, &mut per_type);
        per_set.entry(case.set).or_default().add(c);
        if args.verbose {
            println!(
                "{:8} {:60} raised {:?} -> {:?}",
                case.set, case.name, raised, c
            );
        }
    }
    let mut overall = Counts::default();
    for c in per_set.values() {
        overall.add(*c);
    }

    println!(
        "Corpus evaluation: {} scored cases in {:.1}s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    println!();
    println!("| finding type | TP | FP | TN | FN |");
    println!("|---|---|---|---|---|");
    for (t, c) in &per_type {
        println!("| {t} | {} | {} | {} | {} |", c.tp, c.fp, c.tn, c.fn_);
    }
    for (set, c) in &per_set {
        println!("| **{set}** | {} | {} | {} | {} |", c.tp, c.fp, c.tn, c.fn_);
    }
    println!(
        "| **overall** | {} | {} | {} | {} |",
        overall.tp, overall.fp, overall.tn, overall.fn_
    );
    println!();
    println!("Misses (FN) and false alarms (FP), and why ({unexplained} unexplained):");
    for m in &misses {
        println!("{m}");
    }
    println!();
    println!("Labelled tests not scored:");
    let mut by_reason: BTreeMap<(&str, &str), (usize, Vec<String>)> = BTreeMap::new();
    for u in &unscored {
        let e = by_reason.entry((u.set, u.reason)).or_default();
        e.0 += u.tests;
        e.1.push(format!("{} ({})", u.what, u.tests));
    }
    for ((set, reason), (n, items)) in &by_reason {
        println!("- {set}: {n} tests, {reason}: {}", items.join(", "));
    }
    println!(
        "Stratus labels: upstream for cloudtrail-stop, cloudtrail-delete, ec2-steal-instance-credentials; ours otherwise (see xtask/src/eval.rs)."
    );

    let path = crate::workspace_root().join(BASELINE);
    let current = json!({
        "overall": overall.to_json(),
        "types": per_type.iter().map(|(t, c)| (t.clone(), c.to_json())).collect::<serde_json::Map<_, _>>(),
    });
    if args.record {
        std::fs::write(&path, serde_json::to_string_pretty(&current)? + "\n")?;
        println!("recorded in {}", path.display());
        return Ok(());
    }
    let recorded: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?,
    )
    .with_context(|| format!("{}", path.display()))?;
    let mut regressions = Vec::new();
    let mut names: Vec<&String> = per_type.keys().collect();
    if let Some(m) = recorded["types"].as_object() {
        names.extend(m.keys());
    }
    names.sort();
    names.dedup();
    for t in names {
        let now = per_type.get(t).copied().unwrap_or_default();
        let was = Counts::from_json(&recorded["types"][t]);
        if now.tp < was.tp || now.tn < was.tn || now.fp > was.fp || now.fn_ > was.fn_ {
            regressions.push(format!("{t}: now {now:?}, recorded {was:?}"));
        }
    }
    if !regressions.is_empty() {
        bail!(
            "corpus evaluation regressed against {}:\n{}",
            path.display(),
            regressions.join("\n")
        );
    }
    println!("no regression against {}", path.display());
    Ok(())
}
