//! `ward-collector detect`: agent events (JSON lines, as `ward-agent watch` prints them) in,
//! findings (GuardDuty JSON, one per line) out. For tests, replays and operators trying rules.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use super::config::EngineConfig;
use super::offline::{ListSpec, Setup, run_lines};
use super::signal::HostIdentity;
use crate::findings::{Finding, Scope};

#[derive(clap::Args, Debug)]
pub struct DetectArgs {
    /// File of agent events, one JSON object per line, or - for standard input.
    #[arg(long, value_name = "FILE|-", required_unless_present = "check")]
    pub events: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The instance the events come from (the agent's watch output does not name it).
    #[arg(long, default_value = "i-unknown")]
    pub instance_id: String,
    #[arg(long)]
    pub agent_id: Option<String>,
    /// Region findings are filed under.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Print every creation and update as it happens (for a live `ward-agent watch | …`);
    /// by default each finding is printed once, in its final state, at the end of the input.
    #[arg(long)]
    pub stream: bool,
    /// Also print findings a suppression rule archived.
    #[arg(long)]
    pub include_archived: bool,
    /// Only load and check the rule, list and suppression files, then exit.
    #[arg(long)]
    pub check: bool,
}

/// Threat and trusted lists and suppression rules: the same options for the runtime engine
/// (`detect`, `serve`) and the foundational one (`scan`, `serve`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ListArgs {
    /// Threat list, `[CATEGORY=]PATH[@FORMAT]` (repeatable). CATEGORY: custom (default), cnc,
    /// bitcoin, blackhole, droppoint, tor, dga, driveby, phishing, malware; FORMAT: TXT (default),
    /// STIX, OTX_CSV, ALIEN_VAULT, PROOF_POINT, FIRE_EYE. Uncategorised lists raise the `.Custom`
    /// types, `tor=` lists the TorIPCaller types, other categories the MaliciousIPCaller types.
    /// TXT, OTX_CSV (`FileHash-SHA256`) and FIRE_EYE (`sha256`) lists may hold executables'
    /// SHA-256s: MaliciousFileExecuted(.Custom).
    #[arg(long = "threat-list", value_name = "SPEC")]
    pub threat_lists: Vec<ListSpec>,
    /// Trusted list, `PATH[@FORMAT]` (repeatable): its addresses and domains raise nothing.
    #[arg(long = "trusted-list", value_name = "SPEC")]
    pub trusted_lists: Vec<ListSpec>,
    /// Suppression rules: a JSON array of GuardDuty filters (repeatable); ARCHIVE ones archive.
    #[arg(long = "suppression", value_name = "FILE")]
    pub suppression: Vec<PathBuf>,
    /// Apply lists to private and loopback addresses too (GuardDuty applies them to public ones).
    #[arg(long)]
    pub intel_private_addresses: bool,
}

/// How detection engines are built: shared by `detect` and `serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct EngineArgs {
    /// Extra rule file (TOML; repeatable), loaded after the built-in catalogue.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    #[command(flatten)]
    pub lists: ListArgs,
    /// Raise container-only types (NewBinaryExecuted, ContainerMountsHostDirectory,
    /// DockerSocketAccessed, RuncContainerEscape) for host processes as well.
    #[arg(long)]
    pub container_rules_on_hosts: bool,
    /// NewBinaryExecuted learning period per container / host, in seconds of event time.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub learning_period: u64,
    /// Account findings are filed under (an agent's own, from instance metadata, wins in `serve`).
    #[arg(long, default_value = "000000000000")]
    pub account_id: String,
    #[arg(long, default_value = "ward")]
    pub detector_id: String,
}

impl EngineArgs {
    /// `region`: where findings are filed (`serve` takes it from `--region`, shared with the S3
    /// sources, and an agent's own Region wins).
    pub fn setup(&self, host: HostIdentity, region: &str) -> Setup {
        Setup {
            config: EngineConfig {
                scope: Scope::new(&self.account_id, region, &self.detector_id),
                host,
                container_rules_on_hosts: self.container_rules_on_hosts,
                learning_period_ms: (self.learning_period as i64).saturating_mul(1000),
                ..EngineConfig::default()
            },
            rule_files: self.rules.clone(),
            threat_lists: self.lists.threat_lists.clone(),
            trusted_lists: self.lists.trusted_lists.clone(),
            suppression_files: self.lists.suppression.clone(),
            intel_private_addresses: self.lists.intel_private_addresses,
        }
    }
}

impl DetectArgs {
    pub fn setup(&self) -> Setup {
        self.engine.setup(
            HostIdentity {
                instance_id: self.instance_id.clone(),
                agent_id: self.agent_id.clone(),
                hostname: None,
            },
            &self.region,
        )
    }
}

fn print(out: &mut impl Write, finding: &Finding) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, finding)?;
    out.write_all(b"\n")
}

pub fn run(args: DetectArgs) -> anyhow::Result<ExitCode> {
    let mut engine = args.setup().build().map_err(|e| anyhow::anyhow!("{e}"))?;
    if args.check {
        eprintln!("rule, list and suppression files are valid");
        return Ok(ExitCode::SUCCESS);
    }
    let path = args
        .events
        .as_ref()
        .expect("clap requires --events without --check");
    let input: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file =
            std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut problems = 0u64;
    let counts = run_lines(
        input,
        &mut engine,
        |emitted| {
            if args.stream && (args.include_archived || emitted.suppressed_by.is_none()) {
                print(&mut out, &emitted.finding)?;
                out.flush()?;
            }
            Ok(())
        },
        |line, reason| {
            problems += 1;
            if problems <= 20 {
                eprintln!("{}:{line}: {reason}", path.display());
            }
        },
    )?;
    let mut findings: Vec<&Finding> = engine.findings().collect();
    findings.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    if !args.stream {
        for f in findings
            .iter()
            .filter(|f| args.include_archived || !f.service.archived)
        {
            print(&mut out, f)?;
        }
    }
    out.flush()?;
    let archived = findings.iter().filter(|f| f.service.archived).count();
    eprintln!(
        "detect: {} lines, {} events, {} malformed; {} findings ({archived} archived)",
        counts.lines,
        counts.events,
        counts.malformed,
        findings.len()
    );
    Ok(ExitCode::SUCCESS)
}
