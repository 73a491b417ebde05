//! The finding-type catalogue against the tables of the GuardDuty reference: every type named in
//! §3 (runtime), §5 (EC2, IAM, S3) and §10 (attack sequences) is in the catalogue with the severity
//! the table gives, nothing else is, and the retired names of §5.4 and §3's historical note match.

use std::collections::BTreeSet;

use ward_collector::findings::{FindingType, RETIRED_FINDING_TYPES, SeverityBasis, SeverityLevel};

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/spec/guardduty.md"
);

fn spec() -> String {
    std::fs::read_to_string(SPEC).unwrap_or_else(|e| panic!("reading {SPEC}: {e}"))
}

fn section<'a>(spec: &'a str, from: &str, to: &str) -> &'a str {
    let start = spec
        .find(from)
        .unwrap_or_else(|| panic!("heading {from:?}"));
    let end = start
        + spec[start..]
            .find(to)
            .unwrap_or_else(|| panic!("heading {to:?} after {from:?}"));
    &spec[start..end]
}

/// Expands `PenTest:S3/KaliLinux, ParrotLinux, PentooLinux`, `A/X / Y / Z` and `A/X|Y|Z` into full
/// type names sharing the `Purpose:Resource/` prefix.
fn expand(cell: &str) -> Vec<String> {
    let cell = cell.trim().trim_matches('`');
    let (prefix, families) = cell.split_once('/').expect("type names contain '/'");
    families
        .split([',', '|'])
        .flat_map(|part| part.split(" / "))
        .map(|family| format!("{prefix}/{}", family.trim()))
        .collect()
}

/// (type name, severity cell) for every table row whose first cell is a finding type.
fn table_rows(text: &str) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !line.starts_with('|') {
            continue;
        }
        let name = cells[1];
        if !name.contains(':') || !name.contains('/') || name.starts_with('`') {
            continue;
        }
        for expanded in expand(name) {
            rows.push((expanded, cells[2].to_owned()));
        }
    }
    rows
}

fn spec_rows() -> Vec<(String, String)> {
    let spec = spec();
    let mut rows = table_rows(section(
        &spec,
        "## 3. Runtime Monitoring finding types",
        "## 4.",
    ));
    rows.extend(table_rows(section(
        &spec,
        "## 5. Foundational findings",
        "### 5.4",
    )));
    rows.extend(table_rows(section(&spec, "## 10. Correlation", "## 11.")));
    rows
}

#[test]
fn catalogue_holds_exactly_the_spec_table_types() {
    let rows = spec_rows();
    assert!(
        rows.len() > 130,
        "parsed only {} rows; did the spec layout change?",
        rows.len()
    );
    let spec_names: BTreeSet<String> = rows.iter().map(|(n, _)| n.clone()).collect();
    let catalogue: BTreeSet<String> = FindingType::ALL
        .iter()
        .map(|t| t.name().to_owned())
        .collect();
    let missing: Vec<_> = spec_names.difference(&catalogue).collect();
    let extra: Vec<_> = catalogue.difference(&spec_names).collect();
    assert!(
        missing.is_empty(),
        "in the spec but not the catalogue: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "in the catalogue but not the spec: {extra:?}"
    );
}

#[test]
fn catalogue_severities_follow_the_spec_tables() {
    for (name, cell) in spec_rows() {
        let t: FindingType = name.parse().unwrap();
        let lower = cell.to_lowercase();
        if lower.contains("unverified") {
            assert_eq!(
                t.severity_basis(),
                SeverityBasis::Unverified,
                "{name}: {cell}"
            );
            continue;
        }
        let stated = SeverityLevel::ALL
            .into_iter()
            .find(|level| cell.starts_with(level.label()));
        let variable = cell.starts_with("Variable")
            || cell
                .split_whitespace()
                .next()
                .is_some_and(|w| w.ends_with('*'));
        if variable {
            assert_eq!(
                t.severity_basis(),
                SeverityBasis::Variable,
                "{name}: {cell}"
            );
        } else {
            assert_eq!(t.severity_basis(), SeverityBasis::Fixed, "{name}: {cell}");
        }
        if let Some(level) = stated {
            assert_eq!(t.default_level(), level, "{name}: {cell}");
        } else {
            assert!(
                variable,
                "{name}: severity cell {cell:?} names no level and is not variable"
            );
        }
    }
}

#[test]
fn retired_list_matches_the_spec() {
    let spec = spec();
    let mut spec_names = BTreeSet::new();
    let retired = section(&spec, "### 5.4 Retired types", "### 5.5");
    let body = retired.split_once('\n').unwrap().1;
    for entry in body
        .split([',', '\n'])
        .map(str::trim)
        .filter(|e| e.contains(':'))
    {
        let entry = entry.trim_end_matches('.');
        spec_names.extend(expand(entry));
    }
    // §3.2's note on historical runtime types names them in backticks.
    let historical = section(
        &spec,
        "Historical (tester used to exercise them",
        "The README of the tester",
    );
    for piece in historical.split('`').skip(1).step_by(2) {
        if piece.contains(":Runtime/") {
            spec_names.insert(piece.to_owned());
        }
    }
    let ours: BTreeSet<String> = RETIRED_FINDING_TYPES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(ours, spec_names);
    for name in RETIRED_FINDING_TYPES {
        assert!(
            name.parse::<FindingType>().is_err(),
            "{name} must not be emittable"
        );
    }
}
