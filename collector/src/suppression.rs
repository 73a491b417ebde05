//! Suppression rules: GuardDuty filter criteria that auto-archive matching findings.
//!
//! A criterion maps dotted finding-JSON paths (`service.action.dnsRequestAction.domain`) to a
//! condition (`{"Eq": ["test.example.com"]}`). Semantics, following GuardDuty's filter rules:
//! * AND across fields, and across several operators given for one field;
//! * OR across the values of one operator;
//! * a path resolves through arrays: `resource.instanceDetails.tags.key` yields every tag's key,
//!   and a positive test passes when any resolved value passes;
//! * negative tests (`neq` / `notEquals` / `notMatches`) pass when no resolved value matches any
//!   listed value, so a missing field passes them (the exact complement of the positive test);
//! * `gt`… `lessThanOrEqual` compare numbers; timestamps (ISO strings in the finding) compare as
//!   epoch milliseconds, the unit GuardDuty's filters use for them;
//! * `eq` on `severity` compares the whole part, so the documented convention High = `["7","8"]`
//!   matches 7.0–8.9;
//! * `matches` / `notMatches` patterns use `*` for any run of characters; matching is
//!   case-sensitive like equality.
//!
//! Operators are accepted in the API's camelCase (`eq`, `notEquals`) and in the capitalised forms
//! the CLI and console documentation print (`Eq`, `NotEquals`): the name is compared without case.
//! `service.additionalInfo` is read with the API's `{"value": "<json>", "type": "default"}` wrapper
//! unwrapped, so `service.additionalInfo.threatListName` works for either shape.

use std::fmt;

use serde_json::Value;

use crate::findings::time::parse_millis;
use crate::findings::{AggregationError, Aggregator, Finding, Occurrence, Outcome};

/// GuardDuty limits: 1–50 fields per filter, at most 50 values per list operator, patterns of
/// 1–512 characters, at most 100 filters per detector, ranks 1–100.
const MAX_FIELDS: usize = 50;
const MAX_VALUES: usize = 50;
const MAX_PATTERN_LEN: usize = 512;
const MAX_RULES: usize = 100;

const OPERATOR_NAMES: &str = "eq, neq, gt, gte, lt, lte, equals, notEquals, greaterThan, greaterThanOrEqual, lessThan, lessThanOrEqual, matches, notMatches";

/// Top-level members of a finding; a path must start with one of them.
const FINDING_MEMBERS: &[&str] = &[
    "accountId",
    "arn",
    "associatedAttackSequenceArn",
    "confidence",
    "createdAt",
    "description",
    "id",
    "partition",
    "region",
    "resource",
    "schemaVersion",
    "service",
    "severity",
    "title",
    "type",
    "updatedAt",
];

/// A criteria, rule or rule-set problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriteriaError {
    /// What the error is about, e.g. `criterion "service.archived"` or `rule "bastions"`.
    pub context: String,
    pub message: String,
}

impl CriteriaError {
    fn new(context: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            context: context.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for CriteriaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.message)
    }
}

impl std::error::Error for CriteriaError {}

/// A numeric comparison (`gt`, `gte`, `lt`, `lte`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

/// One operator of a field condition, as parsed (values as given, timestamps as epoch ms).
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    EqualsAny(Vec<String>),
    EqualsNone(Vec<String>),
    Compare(Comparison, f64),
    MatchesAny(Vec<String>),
    MatchesNone(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
struct FieldCondition {
    path: String,
    segments: Vec<String>,
    tests: Vec<Test>,
}

/// Parsed `FindingCriteria`.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingCriteria {
    conditions: Vec<FieldCondition>,
}

impl FindingCriteria {
    /// Parses `{"Criterion": {...}}` (CLI / console), `{"criterion": {...}}` (API) or a bare
    /// criterion map.
    pub fn from_json(value: &Value) -> Result<Self, CriteriaError> {
        let object = value
            .as_object()
            .ok_or_else(|| CriteriaError::new("finding criteria", "expected a JSON object"))?;
        let criterion = match object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("criterion"))
        {
            Some((_, inner)) if object.len() == 1 => inner.as_object().ok_or_else(|| {
                CriteriaError::new(
                    "finding criteria",
                    "\"Criterion\" must be an object of field conditions",
                )
            })?,
            Some(_) => {
                return Err(CriteriaError::new(
                    "finding criteria",
                    "\"Criterion\" must be the only member",
                ));
            }
            None => object,
        };
        if criterion.is_empty() || criterion.len() > MAX_FIELDS {
            return Err(CriteriaError::new(
                "finding criteria",
                format!(
                    "a filter needs 1 to {MAX_FIELDS} fields, found {}",
                    criterion.len()
                ),
            ));
        }
        let conditions = criterion
            .iter()
            .map(|(path, condition)| parse_field(path, condition))
            .collect::<Result<_, _>>()?;
        Ok(Self { conditions })
    }

    pub fn from_json_str(text: &str) -> Result<Self, CriteriaError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| CriteriaError::new("finding criteria", format!("invalid JSON: {e}")))?;
        Self::from_json(&value)
    }

    /// Each field path with its tests (all must pass), for a store that answers some of them
    /// from indexes; [`FindingCriteria::matches`] stays the reference semantics.
    pub fn conditions(&self) -> impl Iterator<Item = (&str, &[Test])> {
        self.conditions
            .iter()
            .map(|c| (c.path.as_str(), c.tests.as_slice()))
    }

    pub fn matches(&self, finding: &Finding) -> bool {
        self.matches_json(&filter_view(finding))
    }

    /// Evaluates against a finding already rendered as JSON (see [`filter_view`]).
    pub fn matches_json(&self, finding: &Value) -> bool {
        self.conditions.iter().all(|condition| {
            let values = resolve(finding, &condition.segments);
            condition
                .tests
                .iter()
                .all(|test| evaluate(test, &condition.path, &values))
        })
    }
}

fn parse_field(path: &str, condition: &Value) -> Result<FieldCondition, CriteriaError> {
    let context = format!("criterion {path:?}");
    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
    if segments.iter().any(String::is_empty) {
        return Err(CriteriaError::new(
            context,
            "field path has an empty segment",
        ));
    }
    if !FINDING_MEMBERS.contains(&segments[0].as_str()) {
        let hint = FINDING_MEMBERS
            .iter()
            .find(|m| m.eq_ignore_ascii_case(&segments[0]))
            .map(|m| format!(" (paths are camelCase: did you mean {m:?}?)"))
            .unwrap_or_default();
        return Err(CriteriaError::new(
            context,
            format!("{:?} is not a finding member{hint}", segments[0]),
        ));
    }
    let operators = condition.as_object().ok_or_else(|| {
        CriteriaError::new(
            &context,
            "condition must be an object such as {\"Eq\": [\"value\"]}",
        )
    })?;
    if operators.is_empty() {
        return Err(CriteriaError::new(context, "condition has no operator"));
    }
    let tests = operators
        .iter()
        .map(|(operator, value)| parse_test(&context, operator, value))
        .collect::<Result<_, _>>()?;
    Ok(FieldCondition {
        path: path.to_owned(),
        segments,
        tests,
    })
}

fn parse_test(field_context: &str, operator: &str, value: &Value) -> Result<Test, CriteriaError> {
    let context = format!("{field_context} operator {operator:?}");
    let comparison = |op| number(&context, value).map(|n| Test::Compare(op, n));
    match operator.to_ascii_lowercase().as_str() {
        "eq" | "equals" => string_list(&context, value).map(Test::EqualsAny),
        "neq" | "notequals" => string_list(&context, value).map(Test::EqualsNone),
        "gt" | "greaterthan" => comparison(Comparison::Greater),
        "gte" | "greaterthanorequal" => comparison(Comparison::GreaterOrEqual),
        "lt" | "lessthan" => comparison(Comparison::Less),
        "lte" | "lessthanorequal" => comparison(Comparison::LessOrEqual),
        "matches" => patterns(&context, value).map(Test::MatchesAny),
        "notmatches" => patterns(&context, value).map(Test::MatchesNone),
        _ => Err(CriteriaError::new(
            field_context,
            format!("unknown operator {operator:?} (expected one of: {OPERATOR_NAMES})"),
        )),
    }
}

fn string_list(context: &str, value: &Value) -> Result<Vec<String>, CriteriaError> {
    let items = value.as_array().ok_or_else(|| {
        CriteriaError::new(context, format!("expected a list of values, found {value}"))
    })?;
    if items.is_empty() || items.len() > MAX_VALUES {
        return Err(CriteriaError::new(
            context,
            format!("expected 1 to {MAX_VALUES} values, found {}", items.len()),
        ));
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(CriteriaError::new(
                context,
                format!("values must be strings, numbers or booleans, found {other}"),
            )),
        })
        .collect()
}

fn number(context: &str, value: &Value) -> Result<f64, CriteriaError> {
    value.as_f64().ok_or_else(|| {
        CriteriaError::new(
            context,
            format!("expected a number (timestamps as epoch milliseconds), found {value}"),
        )
    })
}

fn patterns(context: &str, value: &Value) -> Result<Vec<String>, CriteriaError> {
    let patterns = string_list(context, value)?;
    if let Some(bad) = patterns
        .iter()
        .find(|p| p.is_empty() || p.chars().count() > MAX_PATTERN_LEN)
    {
        return Err(CriteriaError::new(
            context,
            format!("patterns must be 1 to {MAX_PATTERN_LEN} characters, found {bad:?}"),
        ));
    }
    Ok(patterns)
}

/// The finding as filters see it: its JSON with `service.additionalInfo` unwrapped.
pub fn filter_view(finding: &Finding) -> Value {
    let mut json = finding.to_json_value();
    if finding.service.additional_info.is_some() {
        json["service"]["additionalInfo"] =
            Value::Object(finding.service.additional_info_entries());
    }
    json
}

/// Every leaf value at `segments`, descending into arrays at each step and at the end.
fn resolve<'a>(root: &'a Value, segments: &[String]) -> Vec<&'a Value> {
    let mut current = vec![root];
    for segment in segments {
        let mut next = Vec::new();
        for value in current {
            collect_member(value, segment, &mut next);
        }
        current = next;
    }
    let mut leaves = Vec::new();
    for value in current {
        flatten_arrays(value, &mut leaves);
    }
    leaves
}

fn collect_member<'a>(value: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => out.extend(map.get(key)),
        Value::Array(items) => items.iter().for_each(|item| collect_member(item, key, out)),
        _ => {}
    }
}

fn flatten_arrays<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten_arrays(item, out)),
        Value::Null => {}
        other => out.push(other),
    }
}

/// The text a value is compared as.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        }),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The number a value is compared as: numbers, numeric strings (`"209"`), and ISO timestamps as
/// epoch milliseconds.
fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_millis(s)
            .map(|ms| ms as f64)
            .or_else(|| s.trim().parse::<f64>().ok().filter(|f| f.is_finite())),
        _ => None,
    }
}

fn equals(path: &str, field: &Value, wanted: &str) -> bool {
    if let (Some(have), Ok(want)) = (as_number(field), wanted.trim().parse::<f64>()) {
        let have = if path == "severity" {
            have.floor()
        } else {
            have
        };
        return have == want;
    }
    as_text(field).is_some_and(|text| text == wanted)
}

fn evaluate(test: &Test, path: &str, values: &[&Value]) -> bool {
    let any_equal = |wanted: &[String]| {
        values
            .iter()
            .any(|v| wanted.iter().any(|w| equals(path, v, w)))
    };
    let any_match = |patterns: &[String]| {
        values
            .iter()
            .filter_map(|v| as_text(v))
            .any(|text| patterns.iter().any(|p| wildcard_match(p, &text)))
    };
    match test {
        Test::EqualsAny(wanted) => any_equal(wanted),
        Test::EqualsNone(wanted) => !any_equal(wanted),
        Test::MatchesAny(patterns) => any_match(patterns),
        Test::MatchesNone(patterns) => !any_match(patterns),
        Test::Compare(op, bound) => values
            .iter()
            .filter_map(|v| as_number(v))
            .any(|n| match op {
                Comparison::Greater => n > *bound,
                Comparison::GreaterOrEqual => n >= *bound,
                Comparison::Less => n < *bound,
                Comparison::LessOrEqual => n <= *bound,
            }),
    }
}

/// `*` matches any run of characters (including none); everything else matches itself.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Position of the last `*` seen and the text position it is currently absorbing up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star, absorbed)) = backtrack {
            p = star + 1;
            t = absorbed + 1;
            backtrack = Some((star, absorbed + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// `FilterAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterAction {
    /// A saved filter: matches nothing automatically.
    Noop,
    /// A suppression rule: matching findings are archived as they are generated.
    Archive,
}

/// A saved filter, in the shape of GuardDuty's `CreateFilter` request.
#[derive(Debug, Clone, PartialEq)]
pub struct SuppressionRule {
    pub name: String,
    pub description: Option<String>,
    pub action: FilterAction,
    /// Evaluation order, lowest first.
    pub rank: u32,
    pub criteria: FindingCriteria,
}

impl SuppressionRule {
    /// Parses a `CreateFilter`-shaped object: `Name`, `Action` (`ARCHIVE` / `NOOP`, default
    /// `NOOP`), `Rank`, `Description` and `FindingCriteria`, in either capitalised (CLI) or
    /// camelCase (API) member names.
    pub fn from_json(value: &Value) -> Result<Self, CriteriaError> {
        let object = value
            .as_object()
            .ok_or_else(|| CriteriaError::new("rule", "expected a JSON object"))?;
        let get = |name: &str| {
            object
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        if let Some((unknown, _)) = object.iter().find(|(k, _)| {
            ![
                "name",
                "description",
                "action",
                "rank",
                "findingcriteria",
                "clienttoken",
                "tags",
                "detectorid",
            ]
            .contains(&k.to_ascii_lowercase().as_str())
        }) {
            return Err(CriteriaError::new(
                "rule",
                format!("unknown member {unknown:?}"),
            ));
        }
        let name = get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| CriteriaError::new("rule", "\"Name\" (a non-empty string) is required"))?
            .to_owned();
        let context = format!("rule {name:?}");
        let action = match get("action") {
            None => FilterAction::Noop,
            Some(Value::String(a)) if a.eq_ignore_ascii_case("ARCHIVE") => FilterAction::Archive,
            Some(Value::String(a)) if a.eq_ignore_ascii_case("NOOP") => FilterAction::Noop,
            Some(other) => {
                return Err(CriteriaError::new(
                    context,
                    format!("\"Action\" must be ARCHIVE or NOOP, found {other}"),
                ));
            }
        };
        let rank = match get("rank") {
            None => MAX_RULES as u32,
            Some(value) => value
                .as_u64()
                .filter(|r| (1..=MAX_RULES as u64).contains(r))
                .map(|r| r as u32)
                .ok_or_else(|| {
                    CriteriaError::new(
                        &context,
                        format!("\"Rank\" must be an integer from 1 to {MAX_RULES}, found {value}"),
                    )
                })?,
        };
        let description = get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let criteria = get("findingcriteria")
            .ok_or_else(|| CriteriaError::new(&context, "\"FindingCriteria\" is required"))
            .and_then(|c| {
                FindingCriteria::from_json(c)
                    .map_err(|e| CriteriaError::new(format!("{context} {}", e.context), e.message))
            })?;
        Ok(Self {
            name,
            description,
            action,
            rank,
            criteria,
        })
    }
}

/// The rules of one detector, evaluated in rank order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleSet {
    rules: Vec<SuppressionRule>,
}

impl RuleSet {
    pub fn new(mut rules: Vec<SuppressionRule>) -> Result<Self, CriteriaError> {
        if rules.len() > MAX_RULES {
            return Err(CriteriaError::new(
                "rule set",
                format!(
                    "{} rules; GuardDuty allows at most {MAX_RULES}",
                    rules.len()
                ),
            ));
        }
        rules.sort_by(|a, b| a.rank.cmp(&b.rank).then_with(|| a.name.cmp(&b.name)));
        if let Some(dup) = rules
            .iter()
            .enumerate()
            .find_map(|(i, r)| rules[..i].iter().find(|o| o.name == r.name))
        {
            return Err(CriteriaError::new(
                "rule set",
                format!("two rules are named {:?}", dup.name),
            ));
        }
        Ok(Self { rules })
    }

    /// Parses a JSON array of `CreateFilter`-shaped rules.
    pub fn from_json_str(text: &str) -> Result<Self, CriteriaError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| CriteriaError::new("rule set", format!("invalid JSON: {e}")))?;
        let items = value
            .as_array()
            .ok_or_else(|| CriteriaError::new("rule set", "expected a JSON array of rules"))?;
        let rules = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                SuppressionRule::from_json(item).map_err(|e| {
                    CriteriaError::new(format!("rule #{} ({})", i + 1, e.context), e.message)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(rules)
    }

    /// Rules in evaluation order.
    pub fn rules(&self) -> &[SuppressionRule] {
        &self.rules
    }

    /// The first ARCHIVE rule, in rank order, that matches.
    pub fn suppressing_rule(&self, finding: &Finding) -> Option<&SuppressionRule> {
        let archive_rules = self
            .rules
            .iter()
            .filter(|r| r.action == FilterAction::Archive);
        let mut view: Option<Value> = None;
        for rule in archive_rules {
            let json = view.get_or_insert_with(|| filter_view(finding));
            if rule.criteria.matches_json(json) {
                return Some(rule);
            }
        }
        None
    }

    /// Archives the finding when an ARCHIVE rule matches (`service.archived = true`) and returns
    /// that rule. A finding no rule matches is left as it is.
    pub fn apply(&self, finding: &mut Finding) -> Option<&SuppressionRule> {
        let rule = self.suppressing_rule(finding)?;
        finding.service.archived = true;
        Some(rule)
    }
}

/// One finding created or updated by an occurrence.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub outcome: Outcome,
    /// The finding after this occurrence (archived when a suppression rule matched).
    pub finding: Finding,
    /// The suppression rule that archived it.
    pub suppressed_by: Option<String>,
}

/// Folds one occurrence into its finding and archives the result when a rule matches (the
/// archived state is written back, so later occurrences stay archived). Every engine — runtime
/// and foundational — records occurrences this way.
pub fn record(
    aggregator: &mut Aggregator,
    rules: &RuleSet,
    occurrence: Occurrence,
) -> Result<Emitted, AggregationError> {
    let (outcome, finding) = aggregator.record(occurrence)?;
    let mut finding = finding.clone();
    let suppressed_by = rules.apply(&mut finding).map(|r| r.name.clone());
    if suppressed_by.is_some() {
        aggregator.restore([finding.clone()]);
    }
    Ok(Emitted {
        outcome,
        finding,
        suppressed_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("i-*", "i-0abc"));
        assert!(!wildcard_match("i-*", "x-i-0abc"));
        assert!(wildcard_match("*.example.com", "a.b.example.com"));
        assert!(!wildcard_match("*.example.com", "example.com"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(wildcard_match("a*b*c", "abbbc"));
        assert!(!wildcard_match("a*b*c", "acb"));
        assert!(wildcard_match("exact", "exact"));
        assert!(!wildcard_match("exact", "Exact"), "case-sensitive");
        assert!(wildcard_match("**x", "x"));
        assert!(wildcard_match("ü*ß", "üxyß"));
    }

    #[test]
    fn resolve_descends_through_arrays() {
        let json = serde_json::json!({"resource": {"tags": [{"key": "a"}, {"key": "b"}], "list": [[1, 2], [3]]}});
        let segments = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        let keys: Vec<_> = resolve(&json, &segments("resource.tags.key"))
            .into_iter()
            .cloned()
            .collect();
        assert_eq!(keys, [serde_json::json!("a"), serde_json::json!("b")]);
        assert_eq!(resolve(&json, &segments("resource.list")).len(), 3);
        assert!(resolve(&json, &segments("resource.missing.deeper")).is_empty());
    }
}
