//! The built-in test-domain table against spec §5.5: every indicator row maps to exactly the
//! finding types the spec names, for both the EC2 and the Runtime variants.

use std::collections::BTreeSet;

use ward_collector::findings::{AffectedResource, FindingType};
use ward_collector::intel::builtin::{test_domain_finding, test_domains};

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/spec/guardduty.md"
);

/// Expands `Trojan:{EC2,Runtime}/DropPoint!DNS` and `A / B` into type names.
fn expand_types(cell: &str) -> Vec<String> {
    let mut names = Vec::new();
    for part in cell.split(" / ") {
        let part = part.trim();
        match (part.find('{'), part.find('}')) {
            (Some(open), Some(close)) => {
                for variant in part[open + 1..close].split(',') {
                    names.push(format!(
                        "{}{}{}",
                        &part[..open],
                        variant.trim(),
                        &part[close + 1..]
                    ));
                }
            }
            _ => names.push(part.to_owned()),
        }
    }
    names
}

#[test]
fn builtin_test_domains_match_the_spec_table() {
    let spec = std::fs::read_to_string(SPEC).unwrap_or_else(|e| panic!("reading {SPEC}: {e}"));
    let start = spec
        .find("### 5.5 GuardDuty test indicators")
        .expect("§5.5");
    let section = &spec[start..start + spec[start..].find("\n## 6.").expect("§6")];
    let mut rows = 0;
    let mut spec_domains = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let domains: Vec<&str> = cells[1].split('`').skip(1).step_by(2).collect();
        let expected: BTreeSet<String> = expand_types(cells[2]).into_iter().collect();
        for domain in domains {
            spec_domains.insert(domain.to_owned());
            let ours: BTreeSet<String> = test_domains()
                .lookup(domain)
                .unwrap_or_else(|| panic!("{domain} missing from the built-in table"))
                .value()
                .iter()
                .map(|t| t.name().to_owned())
                .collect();
            assert_eq!(ours, expected, "{domain}");
            rows += 1;
        }
    }
    // The exfiltration row describes a behaviour, not a list entry: it has no backticked domain.
    assert_eq!(rows, 12);
    assert_eq!(
        test_domains().len(),
        spec_domains.len(),
        "no entries beyond the spec's"
    );
}

#[test]
fn every_test_domain_has_an_ec2_and_a_runtime_finding() {
    for domain in [
        "guarddutyc2activityb.com",
        "guarddutydgaactivity.com",
        "suspicious-rep.guarddutyc2activityb.com",
    ] {
        let ec2 = test_domain_finding(domain, AffectedResource::Ec2).unwrap();
        let runtime = test_domain_finding(domain, AffectedResource::Runtime).unwrap();
        assert_eq!(ec2.threat_family(), runtime.threat_family(), "{domain}");
        assert_ne!(ec2, runtime);
    }
    assert_eq!(
        test_domain_finding("GuardDutyDropPointActivity.com.", AffectedResource::Runtime),
        Some(FindingType::TrojanRuntimeDropPointDns)
    );
}
