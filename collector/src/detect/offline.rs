//! Building an engine from files and running JSON lines through it: what `ward-collector detect`
//! does, and what tests, benchmarks and the scenario runner reuse.

use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use super::config::{EngineConfig, ThreatCategory};
use super::engine::{Emitted, Engine};
use super::event::RuntimeEvent;
use super::rules::{BUILTIN_RULES, BUILTIN_RULES_NAME, RuleSet};
use crate::intel::{IntelIndex, ListFormat, ListKind, ListRole, ListSource};
use crate::suppression::RuleSet as SuppressionRules;

/// A list given on the command line: `[CATEGORY=]PATH[@FORMAT]` (format TXT by default; the list
/// is named after the file stem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSpec {
    pub category: Option<ThreatCategory>,
    pub path: PathBuf,
    pub format: ListFormat,
}

impl FromStr for ListSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (category, rest) = match text.split_once('=') {
            Some((c, rest)) if !c.contains('/') => (Some(c.parse::<ThreatCategory>()?), rest),
            _ => (None, text),
        };
        let (path, format) = match rest.rsplit_once('@') {
            Some((p, f)) => (p, f.parse::<ListFormat>()?),
            None => (rest, ListFormat::Txt),
        };
        if path.is_empty() {
            return Err(format!(
                "{text:?}: no path (expected [CATEGORY=]PATH[@FORMAT])"
            ));
        }
        Ok(Self {
            category,
            path: path.into(),
            format,
        })
    }
}

impl ListSpec {
    pub fn name(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

/// Everything an engine is built from.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    pub config: EngineConfig,
    /// Operator rule files, loaded after the built-in catalogue.
    pub rule_files: Vec<PathBuf>,
    pub threat_lists: Vec<ListSpec>,
    pub trusted_lists: Vec<ListSpec>,
    /// JSON arrays of GuardDuty filters (`ARCHIVE` ones suppress).
    pub suppression_files: Vec<PathBuf>,
    /// Apply lists to private addresses too (lab setups; GuardDuty applies them to public ones).
    pub intel_private_addresses: bool,
}

/// Why an engine could not be built; every variant names the file.
#[derive(Debug)]
pub struct SetupError(pub String);

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

fn read(path: &Path) -> Result<String, SetupError> {
    std::fs::read_to_string(path).map_err(|e| SetupError(format!("{}: {e}", path.display())))
}

impl Setup {
    pub fn build(mut self) -> Result<Engine, SetupError> {
        let texts = self
            .rule_files
            .iter()
            .map(|p| Ok((p.display().to_string(), read(p)?)))
            .collect::<Result<Vec<_>, SetupError>>()?;
        let mut files: Vec<(&str, &str)> = vec![(BUILTIN_RULES_NAME, BUILTIN_RULES)];
        files.extend(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())));
        let rules = RuleSet::load(&files).map_err(|e| SetupError(e.to_string()))?;

        let (intel, categories) = load_lists(
            &self.threat_lists,
            &self.trusted_lists,
            self.intel_private_addresses,
        )?;
        self.config.threat_categories.extend(categories);
        let suppression = load_suppression(&self.suppression_files)?;
        Ok(Engine::new(self.config, rules, intel, suppression))
    }
}

/// Loads threat and trusted lists into one index; returns it with the category of every threat
/// list given one (`cnc=PATH`). Shared by `detect` and `scan`.
pub fn load_lists(
    threat_lists: &[ListSpec],
    trusted_lists: &[ListSpec],
    intel_private_addresses: bool,
) -> Result<(IntelIndex, HashMap<String, ThreatCategory>), SetupError> {
    let mut intel = IntelIndex::default().with_public_only(!intel_private_addresses);
    let mut categories = HashMap::new();
    for (role, specs) in [
        (ListRole::Threat, threat_lists),
        (ListRole::Trusted, trusted_lists),
    ] {
        for spec in specs {
            let source = ListSource {
                name: spec.name(),
                path: spec.path.clone(),
                format: spec.format,
                kind: ListKind::EntityList,
                role,
            };
            let list = source.load().map_err(|e| SetupError(e.to_string()))?;
            if let Some(first) = list.report.errors.first() {
                return Err(SetupError(format!(
                    "{}:{}: {} ({})",
                    spec.path.display(),
                    first.line,
                    first.message,
                    list.report
                )));
            }
            if let Some(category) = spec.category {
                categories.insert(list.name.clone(), category);
            }
            intel.add(Arc::new(list));
        }
    }
    Ok((intel, categories))
}

/// Loads suppression rule files (JSON arrays of GuardDuty filters) into one rule set.
pub fn load_suppression(paths: &[PathBuf]) -> Result<SuppressionRules, SetupError> {
    let mut suppression = Vec::new();
    for path in paths {
        let set = SuppressionRules::from_json_str(&read(path)?)
            .map_err(|e| SetupError(format!("{}: {e}", path.display())))?;
        suppression.extend(set.rules().iter().cloned());
    }
    SuppressionRules::new(suppression).map_err(|e| SetupError(e.to_string()))
}

/// What [`run_lines`] saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineCounts {
    pub lines: u64,
    pub events: u64,
    pub malformed: u64,
}

/// Feeds JSON lines to the engine, calling `emit` for each finding created or updated and
/// `malformed` for each line that is not an agent event (line number, reason). Blank lines are
/// skipped.
pub fn run_lines(
    input: impl BufRead,
    engine: &mut Engine,
    mut emit: impl FnMut(Emitted) -> std::io::Result<()>,
    mut malformed: impl FnMut(u64, &str),
) -> std::io::Result<LineCounts> {
    let mut counts = LineCounts::default();
    for line in input.lines() {
        let line = line?;
        counts.lines += 1;
        if line.trim().is_empty() {
            continue;
        }
        match RuntimeEvent::from_json(&line) {
            Ok(ev) => {
                counts.events += 1;
                for e in engine.process(&ev) {
                    emit(e)?;
                }
            }
            Err(e) => {
                counts.malformed += 1;
                malformed(counts.lines, &e.0);
            }
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_specs() {
        let s: ListSpec = "cnc=/tmp/c2.txt".parse().unwrap();
        assert_eq!(s.category, Some(ThreatCategory::CommandAndControl));
        assert_eq!(s.name(), "c2");
        let s: ListSpec = "/tmp/x.csv@OTX_CSV".parse().unwrap();
        assert_eq!((s.category, s.format), (None, ListFormat::OtxCsv));
        assert!(
            "bogus=/tmp/x"
                .parse::<ListSpec>()
                .unwrap_err()
                .contains("unknown threat category")
        );
        assert!("/tmp/x@NOPE".parse::<ListSpec>().is_err());
    }
}
