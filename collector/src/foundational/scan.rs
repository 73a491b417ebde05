//! Foundational detection inside `ward-collector scan`: the command-line options, building the
//! engine from them, loading and saving `--state`, and printing findings as JSON lines.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::engine::{EngineOptions, EngineStats, FoundationalEngine};
use super::{AwsRanges, Settings, builtin};
use crate::detect::cli::ListArgs;
use crate::detect::offline::{load_lists, load_suppression};
use crate::event::Event;
use crate::findings::{Finding, Scope};
use crate::suppression::Emitted;

#[derive(clap::Args, Debug, Clone)]
pub struct DetectionArgs {
    #[command(flatten)]
    pub lists: ListArgs,
    /// AWS's ip-ranges.json: addresses in it count as inside AWS (InstanceCredentialExfiltration
    /// .InsideAWS vs .OutsideAWS). Without it every public address counts as outside AWS.
    #[arg(long, value_name = "FILE")]
    pub aws_ip_ranges: Option<PathBuf>,
    /// Only records of this account (repeatable; default: all).
    #[arg(long = "only-account", value_name = "ID")]
    pub only_accounts: Vec<String>,
    /// Only records of this Region (repeatable; default: all).
    #[arg(long = "only-region", value_name = "REGION")]
    pub only_regions: Vec<String>,
    /// Account findings are filed under when a record names none (flow logs without account-id).
    #[arg(long, default_value = "000000000000")]
    pub account_id: String,
    /// Region findings are filed under when a record names none (default: --region, else
    /// us-east-1).
    #[arg(long)]
    pub default_region: Option<String>,
    #[arg(long, default_value = "ward")]
    pub detector_id: String,
    /// How long (seconds of event time) baselines learn before deviations raise findings.
    #[arg(long, value_name = "SECS", default_value_t = 7 * 24 * 3600)]
    pub learning_period: u64,
    /// How far (seconds of event time) a record may arrive behind the newest one and still be
    /// placed in its time window.
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    pub lateness: u64,
    /// Detector state (baselines, watermark): read at start when the file exists, written at the
    /// end, so consecutive scans continue learning.
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Print every creation and update as it happens; by default each finding is printed once,
    /// in its final state, at the end.
    #[arg(long)]
    pub stream: bool,
    /// Also print findings a suppression rule archived.
    #[arg(long)]
    pub include_archived: bool,
}

/// The engine plus the output it writes to.
pub struct Detection {
    engine: FoundationalEngine,
    stream: bool,
    include_archived: bool,
    state: Option<PathBuf>,
    out: std::io::BufWriter<std::io::Stdout>,
    error: Option<std::io::Error>,
}

impl DetectionArgs {
    /// Builds the engine; `region` (the shared `--region`) is the default Region when
    /// `--default-region` is not given.
    pub fn build(&self, region: Option<&str>) -> Result<Detection, String> {
        Ok(Detection {
            engine: self.engine(region)?,
            stream: self.stream,
            include_archived: self.include_archived,
            state: self.state.clone(),
            out: std::io::BufWriter::new(std::io::stdout()),
            error: None,
        })
    }

    /// The engine alone, its `--state` loaded (what `serve` runs on its cloud-log sources).
    pub fn engine(&self, region: Option<&str>) -> Result<FoundationalEngine, String> {
        let (intel, threat_categories) = load_lists(
            &self.lists.threat_lists,
            &self.lists.trusted_lists,
            self.lists.intel_private_addresses,
        )
        .map_err(|e| e.to_string())?;
        let suppression = load_suppression(&self.lists.suppression).map_err(|e| e.to_string())?;
        let aws_ranges = match &self.aws_ip_ranges {
            Some(p) => AwsRanges::load(p).map_err(|e| format!("--aws-ip-ranges {e}"))?,
            None => AwsRanges::default(),
        };
        let settings = Settings {
            threat_categories,
            aws_ranges,
            learning_period_ms: (self.learning_period as i64).saturating_mul(1000),
        };
        let options = EngineOptions {
            default_scope: Scope::new(
                &self.account_id,
                self.default_region
                    .as_deref()
                    .or(region)
                    .unwrap_or("us-east-1"),
                &self.detector_id,
            ),
            only_accounts: self.only_accounts.clone(),
            only_regions: self.only_regions.clone(),
            lateness_ms: (self.lateness as i64).saturating_mul(1000),
        };
        let mut engine = FoundationalEngine::new(options, settings, builtin(), intel, suppression);
        if let Some(path) = &self.state {
            load_state(&mut engine, path)?;
        }
        Ok(engine)
    }
}

fn load_state(engine: &mut FoundationalEngine, path: &Path) -> Result<(), String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("--state {}: {e}", path.display())),
    };
    let value = serde_json::from_str(&text)
        .map_err(|e| format!("--state {}: not a Ward state file: {e}", path.display()))?;
    engine
        .restore_state(value)
        .map_err(|e| format!("--state {}: {e}", path.display()))
}

/// Writes `state` to `path` atomically (temporary file, then rename).
pub fn save_state(engine: &FoundationalEngine, path: &Path) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_vec(&engine.save_state()).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

impl Detection {
    pub fn event(&mut self, ev: &Event<'_>) {
        let emitted = self.engine.process(ev);
        self.emit(emitted);
    }

    fn emit(&mut self, emitted: Vec<Emitted>) {
        if !self.stream || self.error.is_some() {
            return;
        }
        for e in emitted {
            if (self.include_archived || e.suppressed_by.is_none())
                && let Err(err) = print(&mut self.out, &e.finding)
            {
                self.error = Some(err);
                return;
            }
        }
    }

    /// Closes open windows, prints the findings (unless streamed), saves `--state`, and returns
    /// the engine's counters.
    pub fn finish(mut self) -> std::io::Result<(EngineStats, usize, usize)> {
        let emitted = self.engine.finish();
        self.emit(emitted);
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut findings: Vec<&Finding> = self.engine.findings().collect();
        findings.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        if !self.stream {
            for f in findings
                .iter()
                .filter(|f| self.include_archived || !f.service.archived)
            {
                print(&mut self.out, f)?;
            }
        }
        self.out.flush()?;
        let archived = findings.iter().filter(|f| f.service.archived).count();
        let total = findings.len();
        if let Some(path) = &self.state {
            save_state(&self.engine, path).map_err(|e| {
                std::io::Error::new(e.kind(), format!("--state {}: {e}", path.display()))
            })?;
        }
        Ok((self.engine.stats().clone(), total, archived))
    }
}

fn print(out: &mut impl Write, finding: &Finding) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, finding)?;
    out.write_all(b"\n")
}

/// The detection part of the end-of-run summary.
pub fn summary(stats: &EngineStats, findings: usize, archived: usize) -> String {
    format!(
        "findings: {findings} ({archived} archived); records analysed={} late={} out-of-scope={} untimed={} occurrences={} trusted={} suppressed={} dropped={}",
        stats.records - stats.untimed - stats.out_of_scope,
        stats.late,
        stats.out_of_scope,
        stats.untimed,
        stats.occurrences,
        stats.trusted,
        stats.suppressed,
        stats.dropped
    )
}
