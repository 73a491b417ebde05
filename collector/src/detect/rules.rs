//! Single-event rules: the rule-file format (TOML), its compilation with file:line errors, and the
//! per-event-type index the engine evaluates.
//!
//! ```toml
//! disable = ["ward.discovery.webshell-recon"]  # turn rules off by id (top-level keys come first in TOML)
//!
//! [[rule]]
//! id = "ward.miner.name"                      # unique across all loaded files
//! finding = "Impact:Runtime/CryptoMinerExecuted"
//! events = ["process_exec"]                    # the index key: only these event types meet the rule
//! severity = "High"                            # optional: a level or a number (1.0-10.0)
//! containers_only = false                      # optional: see EngineConfig::container_rules_on_hosts
//! description = "A known miner ran."           # optional: finding description
//! when = { any = [
//!   { field = "process.exe_name", in = ["xmrig", "minerd"] },
//!   { field = "process.args", prefix = "stratum+tcp://" },
//! ] }
//! except = [ { field = "process.container.id", equals = "allowed" } ]   # optional
//! group_by = []                                # optional: extra fields splitting findings
//! tool_name = "…"; tool_category = "…"        # optional: runtime context for SuspiciousTool
//!
//! [[exception]]                                # add an exception to any loaded rule
//! rule = "ward.miner.name"
//! when = { field = "process.cwd", prefix = "/opt/benchmarks/" }
//! ```
//!
//! The condition language is in [`super::condition`]. Later files can add exceptions to or disable
//! rules of earlier ones (the built-in file loads first) but cannot redefine an id.

use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use super::condition::{Condition, LeafSpec, OneOrMany, Scalar, compile_leaf};
use super::event::{EVENT_TYPE_SLOTS, EventType, RuntimeEvent};
use super::fields::Field;
use crate::findings::{AggregationFamily, DataSource, FindingType, Severity, SeverityLevel};

/// The rule catalogue compiled into the binary.
pub const BUILTIN_RULES: &str = include_str!("../../rules/runtime.toml");
pub const BUILTIN_RULES_NAME: &str = "<builtin>/collector/rules/runtime.toml";

/// A rule-file problem: which file, which line (1-based; 0 when the file could not be read) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for RuleError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    exception: Vec<Spanned<RawException>>,
    #[serde(default)]
    disable: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    finding: Spanned<String>,
    events: Spanned<Vec<String>>,
    #[serde(default)]
    severity: Option<Spanned<RawSeverity>>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    containers_only: bool,
    when: Spanned<RawCond>,
    #[serde(default)]
    except: Vec<Spanned<RawCond>>,
    #[serde(default)]
    group_by: Vec<Spanned<String>>,
    #[serde(default)]
    tool_name: Option<String>,
    #[serde(default)]
    tool_category: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawException {
    rule: Spanned<String>,
    when: Spanned<RawCond>,
    #[serde(default)]
    #[allow(dead_code)] // documentation for people reading the file
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSeverity {
    Number(f64),
    Label(String),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCond {
    field: Option<Spanned<String>>,
    equals: Option<Scalar>,
    #[serde(rename = "in")]
    in_: Option<Vec<Scalar>>,
    prefix: Option<OneOrMany>,
    suffix: Option<OneOrMany>,
    contains: Option<OneOrMany>,
    glob: Option<OneOrMany>,
    regex: Option<String>,
    gt: Option<f64>,
    gte: Option<f64>,
    lt: Option<f64>,
    lte: Option<f64>,
    all_bits: Option<u64>,
    any_bits: Option<u64>,
    exists: Option<bool>,
    #[serde(default)]
    nocase: bool,
    all: Option<Vec<Spanned<RawCond>>>,
    any: Option<Vec<Spanned<RawCond>>>,
    not: Option<Box<Spanned<RawCond>>>,
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub id: String,
    pub finding_type: FindingType,
    pub severity: Option<Severity>,
    pub events: Vec<EventType>,
    pub containers_only: bool,
    pub title: Option<String>,
    pub description: Option<String>,
    pub when: Condition,
    pub except: Vec<Condition>,
    pub group_by: Vec<Field>,
    pub tool_name: Option<String>,
    pub tool_category: Option<String>,
    /// `file:line` of the rule, for messages.
    pub origin: String,
}

impl Rule {
    /// The rule fires on this event (its exceptions included; the event type is the caller's job).
    pub fn fires(&self, ev: &RuntimeEvent) -> bool {
        self.when.matches(ev) && !self.except.iter().any(|e| e.matches(ev))
    }
}

/// All loaded rules, indexed by the event types they name.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    by_type: Vec<Vec<u32>>,
}

/// Maps byte offsets of one file to lines.
struct Located<'a> {
    file: &'a str,
    text: &'a str,
}

impl Located<'_> {
    fn err(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> RuleError {
        let offset = span.start.min(self.text.len());
        RuleError {
            file: self.file.to_owned(),
            line: self.text[..offset].bytes().filter(|b| *b == b'\n').count() + 1,
            message: message.into(),
        }
    }
}

impl RuleSet {
    /// The built-in catalogue alone.
    pub fn builtin() -> Result<Self, RuleError> {
        Self::load(&[(BUILTIN_RULES_NAME, BUILTIN_RULES)])
    }

    /// Compiles files in order (`(name for messages, text)`); the first error stops loading.
    pub fn load(files: &[(&str, &str)]) -> Result<Self, RuleError> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut pending_exceptions = Vec::new();
        let mut disabled = Vec::new();
        for (file, text) in files {
            let at = Located { file, text };
            let raw: RawFile = toml::from_str(text)
                .map_err(|e| at.err(e.span().unwrap_or(0..0), e.message().trim_end().to_owned()))?;
            for spanned in raw.rule {
                let span = spanned.span();
                let rule = compile_rule(&at, span.clone(), spanned.into_inner())?;
                if let Some(other) = rules.iter().find(|r| r.id == rule.id) {
                    return Err(at.err(
                        span,
                        format!(
                            "rule id {:?} is already defined at {}; disable it and use a new id",
                            rule.id, other.origin
                        ),
                    ));
                }
                rules.push(rule);
            }
            for spanned in raw.exception {
                let RawException { rule, when, .. } = spanned.into_inner();
                let condition = compile_cond(&at, when)?;
                pending_exceptions.push((at.err(rule.span(), ""), rule.into_inner(), condition));
            }
            for id in raw.disable {
                disabled.push((at.err(id.span(), ""), id.into_inner()));
            }
        }
        for (mut place, id, condition) in pending_exceptions {
            let Some(rule) = rules.iter_mut().find(|r| r.id == id) else {
                place.message =
                    format!("exception names rule {id:?}, which no loaded file defines");
                return Err(place);
            };
            rule.except.push(condition);
        }
        for (mut place, id) in disabled {
            let before = rules.len();
            rules.retain(|r| r.id != id);
            if rules.len() == before {
                place.message = format!("disable names rule {id:?}, which no loaded file defines");
                return Err(place);
            }
        }
        let mut by_type = vec![Vec::new(); EVENT_TYPE_SLOTS];
        for (i, rule) in rules.iter().enumerate() {
            for t in &rule.events {
                by_type[t.index()].push(i as u32);
            }
        }
        Ok(Self { rules, by_type })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules indexed under this event's type.
    pub fn candidates(&self, kind: EventType) -> impl Iterator<Item = &Rule> {
        self.by_type[kind.index()]
            .iter()
            .map(|&i| &self.rules[i as usize])
    }
}

fn compile_rule(
    at: &Located<'_>,
    span: std::ops::Range<usize>,
    raw: RawRule,
) -> Result<Rule, RuleError> {
    let id_span = raw.id.span();
    let id = raw.id.into_inner();
    if id.trim().is_empty() {
        return Err(at.err(id_span, "rule id is empty"));
    }
    let finding_span = raw.finding.span();
    let finding_type: FindingType =
        raw.finding
            .get_ref()
            .parse()
            .map_err(|e: crate::findings::UnknownFindingType| {
                at.err(finding_span.clone(), format!("rule {id:?}: {e}"))
            })?;
    if finding_type.source() != DataSource::Runtime && !finding_type.is_custom_threat_list() {
        return Err(at.err(
            finding_span,
            format!("rule {id:?}: {finding_type} is not a runtime finding type"),
        ));
    }
    let events_span = raw.events.span();
    let mut events = Vec::new();
    for name in raw.events.into_inner() {
        let t = EventType::parse(&name).ok_or_else(|| {
            at.err(
                events_span.clone(),
                format!(
                    "rule {id:?}: unknown event type {name:?} (known: {})",
                    EventType::ALL
                        .iter()
                        .map(|t| t.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if !events.contains(&t) {
            events.push(t);
        }
    }
    if events.is_empty() {
        return Err(at.err(
            events_span,
            format!("rule {id:?}: events is empty; name the event types the rule applies to"),
        ));
    }
    let needs = match AggregationFamily::of(finding_type) {
        AggregationFamily::DomainIndicator => Some((EventType::DnsQuery, "a DNS name")),
        AggregationFamily::IpIndicator => Some((EventType::NetConnect, "a remote address")),
        _ => None,
    };
    if let Some((kind, what)) = needs
        && !events.iter().all(|e| e.family() == kind.family())
    {
        return Err(at.err(events_span, format!("rule {id:?}: {finding_type} findings are keyed by {what}, so events must all be {} events", kind.family().map(|f| f.key()).unwrap_or(""))));
    }
    let severity = match raw.severity {
        None => None,
        Some(s) => {
            let s_span = s.span();
            Some(match s.into_inner() {
                RawSeverity::Number(n) if (1.0..=10.0).contains(&n) => Severity(n),
                RawSeverity::Number(n) => return Err(at.err(s_span, format!("rule {id:?}: severity {n} is outside 1.0-10.0"))),
                RawSeverity::Label(label) => SeverityLevel::ALL
                    .into_iter()
                    .find(|l| l.label().eq_ignore_ascii_case(&label))
                    .map(SeverityLevel::default_severity)
                    .ok_or_else(|| at.err(s_span, format!("rule {id:?}: severity {label:?} is not Low, Medium, High, Critical or a number")))?,
            })
        }
    };
    let when_span = raw.when.span();
    let when = compile_cond(at, raw.when)?;
    let mut except = Vec::new();
    for e in raw.except {
        except.push(compile_cond(at, e)?);
    }
    let mut group_by = Vec::new();
    for g in raw.group_by {
        let g_span = g.span();
        group_by.push(
            Field::parse(g.get_ref())
                .map_err(|e| at.err(g_span, format!("rule {id:?}: group_by: {e}")))?,
        );
    }
    let mut used = Vec::new();
    when.fields(&mut used);
    except.iter().for_each(|c| c.fields(&mut used));
    used.extend(&group_by);
    for field in used {
        if !events.iter().any(|e| field.applies_to(*e)) {
            return Err(at.err(
                when_span.clone(),
                format!(
                    "rule {id:?}: field {} is never present on {} events",
                    field.path(),
                    events
                        .iter()
                        .map(|e| e.name())
                        .collect::<Vec<_>>()
                        .join("/")
                ),
            ));
        }
    }
    Ok(Rule {
        origin: {
            let e = at.err(span, "");
            format!("{}:{}", e.file, e.line)
        },
        id,
        finding_type,
        severity,
        events,
        containers_only: raw.containers_only,
        title: raw.title,
        description: raw.description,
        when,
        except,
        group_by,
        tool_name: raw.tool_name,
        tool_category: raw.tool_category,
    })
}

fn compile_cond(at: &Located<'_>, spanned: Spanned<RawCond>) -> Result<Condition, RuleError> {
    let span = spanned.span();
    let raw = spanned.into_inner();
    let combinators = usize::from(raw.all.is_some())
        + usize::from(raw.any.is_some())
        + usize::from(raw.not.is_some());
    if combinators > 0 {
        if combinators > 1 || raw.field.is_some() {
            return Err(at.err(
                span,
                "a condition is either a field test or one of all / any / not; split it",
            ));
        }
        if let Some(items) = raw.all {
            return compile_list(at, span, items).map(Condition::All);
        }
        if let Some(items) = raw.any {
            return compile_list(at, span, items).map(Condition::Any);
        }
        let inner = raw.not.expect("the one combinator left");
        return compile_cond(at, *inner).map(|c| Condition::Not(Box::new(c)));
    }
    let Some(field) = raw.field else {
        return Err(at.err(span, "condition has neither a field nor all / any / not"));
    };
    let field_span = field.span();
    let field = Field::parse(field.get_ref()).map_err(|e| at.err(field_span, e))?;
    let spec = LeafSpec {
        equals: raw.equals,
        in_: raw.in_,
        prefix: raw.prefix,
        suffix: raw.suffix,
        contains: raw.contains,
        glob: raw.glob,
        regex: raw.regex,
        gt: raw.gt,
        gte: raw.gte,
        lt: raw.lt,
        lte: raw.lte,
        all_bits: raw.all_bits,
        any_bits: raw.any_bits,
        exists: raw.exists,
        nocase: raw.nocase,
    };
    let test = compile_leaf(field, spec).map_err(|e| at.err(span, e))?;
    Ok(Condition::Test { field, test })
}

fn compile_list(
    at: &Located<'_>,
    span: std::ops::Range<usize>,
    items: Vec<Spanned<RawCond>>,
) -> Result<Vec<Condition>, RuleError> {
    if items.is_empty() {
        return Err(at.err(span, "all / any needs at least one condition"));
    }
    items.into_iter().map(|c| compile_cond(at, c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RuleSet, RuleError> {
        RuleSet::load(&[("ops.toml", text)])
    }

    #[test]
    fn builtin_catalogue_compiles() {
        let set = RuleSet::builtin().unwrap();
        assert!(set.len() >= 20, "{}", set.len());
        let exec_rules = set.candidates(EventType::ProcessExec).count();
        assert!(exec_rules > 0 && exec_rules < set.len());
        assert_eq!(set.candidates(EventType::EventLoss).count(), 0);
    }

    #[test]
    fn errors_carry_file_line_and_reason() {
        let cases = [
            (
                "[[rule]]\nid = \"a\"\nfinding = \"Impact:Runtime/CryptoMinerExecuted\"\nevents = [\"process_exec\"]\nwhen = { field = \"process.nmae\", equals = \"x\" }\n",
                5,
                "unknown field path \"process.nmae\"",
            ),
            (
                "\n[[rule]]\nid = \"a\"\nfinding = \"Impact:Runtime/Nope\"\nevents = [\"process_exec\"]\nwhen = { field = \"process.name\", equals = \"x\" }\n",
                4,
                "unknown finding type",
            ),
            (
                "[[rule]]\nid = \"a\"\nfinding = \"Impact:Runtime/CryptoMinerExecuted\"\nevents = [\"process_exec\"]\nwhen = { any = [\n  { field = \"process.name\", equals = \"x\" },\n  { field = \"process.name\", regex = \"(\" },\n] }\n",
                7,
                "bad regex",
            ),
            (
                "[[rule]]\nid = \"a\"\nfinding = \"Impact:Runtime/CryptoMinerExecuted\"\nevents = [\"process_exex\"]\nwhen = { field = \"process.name\", equals = \"x\" }\n",
                4,
                "unknown event type",
            ),
            (
                "[[rule]]\nid = \"a\"\nfinding = \"Impact:Runtime/CryptoMinerExecuted\"\nevents = [\"process_exec\"]\nwhen = { field = \"file.path\", equals = \"x\" }\n",
                5,
                "never present on process_exec",
            ),
            (
                "[[rule]]\nid = \"a\"\nfinding = \"Impact:Runtime/CryptoMinerExecuted\"\nevents = [\"process_exec\"]\nwhen = { field = \"process.name\", equal = \"x\" }\n",
                5,
                "unknown field `equal`",
            ),
            (
                "[[rule]]\nid = \"a\"\nfinding = \"Impact:Runtime/CryptoMinerExecuted\"\nevents = [\"process_exec\"]\nseverity = 11\nwhen = { field = \"process.name\", equals = \"x\" }\n",
                5,
                "outside",
            ),
            (
                "[[rule]]\nid = \"a\"\nfinding = \"Recon:EC2/Portscan\"\nevents = [\"process_exec\"]\nwhen = { field = \"process.name\", equals = \"x\" }\n",
                3,
                "not a runtime finding type",
            ),
            (
                "[[rule]]\nid = \"a\"\nfinding = \"Backdoor:Runtime/C&CActivity.B!DNS\"\nevents = [\"process_exec\"]\nwhen = { field = \"process.name\", equals = \"x\" }\n",
                4,
                "keyed by a DNS name",
            ),
            ("x = [\n", 1, ""),
            (
                "\n\n[[exception]]\nrule = \"nope\"\nwhen = { field = \"process.name\", equals = \"x\" }\n",
                4,
                "no loaded file defines",
            ),
        ];
        for (text, line, reason) in cases {
            let err = load(text).unwrap_err();
            assert_eq!(err.file, "ops.toml");
            assert_eq!(err.line, line, "{err}");
            assert!(err.message.contains(reason), "{err}");
            assert!(
                err.to_string().starts_with(&format!("ops.toml:{line}: ")),
                "{err}"
            );
        }
    }

    #[test]
    fn operators_extend_disable_and_cannot_redefine() {
        let builtin = (BUILTIN_RULES_NAME, BUILTIN_RULES);
        let extra = "disable = [\"ward.discovery.webshell-recon\"]\n\n[[exception]]\nrule = \"ward.miner.known-names\"\nwhen = { field = \"process.cwd\", prefix = \"/opt/bench\" }\n";
        let base = RuleSet::load(&[builtin]).unwrap();
        let set = RuleSet::load(&[builtin, ("ops.toml", extra)]).unwrap();
        assert_eq!(set.len(), base.len() - 1);
        let miner = |s: &RuleSet| {
            s.rules()
                .iter()
                .find(|r| r.id == "ward.miner.known-names")
                .unwrap()
                .except
                .len()
        };
        assert_eq!(miner(&set), miner(&base) + 1);
        let dup = "[[rule]]\nid = \"ward.miner.known-names\"\nfinding = \"Impact:Runtime/CryptoMinerExecuted\"\nevents = [\"process_exec\"]\nwhen = { field = \"process.name\", equals = \"x\" }\n";
        let err = RuleSet::load(&[builtin, ("ops.toml", dup)]).unwrap_err();
        assert_eq!(err.line, 1, "{err}");
        assert!(err.message.contains("already defined"), "{err}");
    }
}
