//! Parsers for the six list formats GuardDuty accepts (`TXT`, `STIX`, `OTX_CSV`, `ALIEN_VAULT`,
//! `PROOF_POINT`, `FIRE_EYE`). Each turns a file's text into entries tagged with their line
//! number; a bad line becomes a numbered error and the rest of the file still loads.

mod alienvault;
mod csv;
mod fireeye;
mod otx;
mod proofpoint;
mod stix;
mod txt;

use std::fmt;
use std::str::FromStr;

use super::indicator::Indicator;

/// GuardDuty's `format` enum for IP sets, threat-intel sets and entity sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListFormat {
    Txt,
    Stix,
    OtxCsv,
    AlienVault,
    ProofPoint,
    FireEye,
}

impl ListFormat {
    pub const ALL: [ListFormat; 6] = [
        Self::Txt,
        Self::Stix,
        Self::OtxCsv,
        Self::AlienVault,
        Self::ProofPoint,
        Self::FireEye,
    ];

    /// The API spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Txt => "TXT",
            Self::Stix => "STIX",
            Self::OtxCsv => "OTX_CSV",
            Self::AlienVault => "ALIEN_VAULT",
            Self::ProofPoint => "PROOF_POINT",
            Self::FireEye => "FIRE_EYE",
        }
    }

    pub fn parse_list(self, text: &str) -> ParsedList {
        let mut out = ParsedList::default();
        match self {
            Self::Txt => txt::parse(text, &mut out),
            Self::Stix => stix::parse(text, &mut out),
            Self::OtxCsv => otx::parse(text, &mut out),
            Self::AlienVault => alienvault::parse(text, &mut out),
            Self::ProofPoint => proofpoint::parse(text, &mut out),
            Self::FireEye => fireeye::parse(text, &mut out),
        }
        out
    }
}

impl fmt::Display for ListFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ListFormat {
    type Err = String;

    /// Accepts the API spelling in any case (`TXT`, `otx_csv`, …).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| format!("unknown list format {text:?} (expected one of TXT, STIX, OTX_CSV, ALIEN_VAULT, PROOF_POINT, FIRE_EYE)"))
    }
}

/// One accepted entry and the 1-based line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub indicator: Indicator,
}

/// A rejected line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// What a parser produced: entries, numbered errors, and how many well-formed rows carried no
/// network indicator (e.g. a file-hash row in an OTX export) and were skipped on purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedList {
    pub entries: Vec<Entry>,
    pub errors: Vec<LineError>,
    pub skipped: usize,
}

impl ParsedList {
    fn push(&mut self, line: usize, parsed: Result<Indicator, String>) {
        match parsed {
            Ok(indicator) => self.entries.push(Entry { line, indicator }),
            Err(message) => self.errors.push(LineError { line, message }),
        }
    }

    fn error(&mut self, line: usize, message: impl Into<String>) {
        self.errors.push(LineError {
            line,
            message: message.into(),
        });
    }
}

/// Non-blank lines with their 1-based numbers; a UTF-8 byte-order mark and `\r` are dropped.
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty())
}

/// For formats whose indicators are network ones only: a file hash there is a mistake.
pub(super) fn network_only(
    parsed: Result<Indicator, String>,
    format: &str,
) -> Result<Indicator, String> {
    match parsed {
        Ok(Indicator::Sha256(hash)) => Err(format!(
            "{hash} is a file hash; {format} lists carry addresses and domains (put hashes in a TXT, OTX_CSV or FIRE_EYE list)"
        )),
        other => other,
    }
}
