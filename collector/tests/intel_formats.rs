//! List parsers against the format examples of the GuardDuty reference (spec §8.1), plus broken
//! input in every format: bad lines are reported with their numbers and the rest still loads.

use std::net::Ipv4Addr;

use ward_collector::intel::{Indicator, IntelList, ListFormat, ListKind, ListRole, ParsedList};

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/spec/guardduty.md"
);

/// The fenced block that follows `marker` in spec §8.1.
fn spec_example(marker: &str) -> String {
    let spec = std::fs::read_to_string(SPEC).unwrap_or_else(|e| panic!("reading {SPEC}: {e}"));
    let section = &spec[spec.find("### 8.1 Line formats").expect("§8.1")..];
    let after = &section[section
        .find(marker)
        .unwrap_or_else(|| panic!("marker {marker:?}"))..];
    let open = after.find("```").expect("opening fence");
    let body = &after[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").expect("closing fence")].to_owned()
}

fn ip(text: &str) -> Indicator {
    Indicator::Ip(text.parse::<Ipv4Addr>().unwrap())
}

fn cidr(text: &str, prefix: u8) -> Indicator {
    Indicator::Cidr(text.parse().unwrap(), prefix)
}

fn domain(text: &str) -> Indicator {
    Indicator::Domain(text.into())
}

fn indicators(parsed: &ParsedList) -> Vec<Indicator> {
    parsed.entries.iter().map(|e| e.indicator.clone()).collect()
}

fn assert_clean(parsed: &ParsedList) {
    assert!(
        parsed.errors.is_empty(),
        "unexpected errors: {:?}",
        parsed.errors
    );
}

#[test]
fn txt_example() {
    let parsed = ListFormat::Txt.parse_list(&spec_example("TXT — one entry per line"));
    assert_clean(&parsed);
    assert_eq!(
        indicators(&parsed),
        [
            ip("192.0.2.1"),
            cidr("192.0.2.0", 24),
            domain("example.com"),
            domain("example.org"),
            Indicator::WildcardDomain("example.org".into())
        ]
    );
    assert_eq!(
        parsed.entries.iter().map(|e| e.line).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
}

#[test]
fn otx_csv_example() {
    let parsed = ListFormat::OtxCsv.parse_list(&spec_example("OTX_CSV — header"));
    assert_clean(&parsed);
    assert_eq!(
        indicators(&parsed),
        [
            cidr("192.0.2.0", 24),
            ip("198.51.100.1"),
            ip("203.0.113.1"),
            domain("example.net")
        ]
    );
}

#[test]
fn proof_point_example() {
    let parsed =
        ListFormat::ProofPoint.parse_list(&spec_example("PROOF_POINT (Proofpoint ET CSV)"));
    assert_clean(&parsed);
    assert_eq!(indicators(&parsed), [ip("198.51.100.1"), ip("203.0.113.1")]);
    let domains = ListFormat::ProofPoint
        .parse_list("domain, category, score, first_seen, last_seen, ports (|)\nbad.example.com, 1, 100, 2000-01-01, 2000-01-01,\n");
    assert_clean(&domains);
    assert_eq!(indicators(&domains), [domain("bad.example.com")]);
}

#[test]
fn alien_vault_example() {
    let parsed = ListFormat::AlienVault
        .parse_list(&spec_example("ALIEN_VAULT (AlienVault reputation feed)"));
    assert_clean(&parsed);
    assert_eq!(
        indicators(&parsed),
        [
            ip("198.51.100.1"),
            ip("203.0.113.1"),
            domain("www.test.org"),
            ip("192.0.2.3")
        ]
    );
}

#[test]
fn fire_eye_example() {
    let parsed = ListFormat::FireEye.parse_list(&spec_example("FIRE_EYE (FireEye iSIGHT CSV)"));
    assert_clean(&parsed);
    assert_eq!(
        indicators(&parsed),
        [cidr("192.0.2.0", 24), ip("198.51.100.1")]
    );
    assert_eq!(
        parsed.entries.iter().map(|e| e.line).collect::<Vec<_>>(),
        [2, 3]
    );
}

#[test]
fn stix_example_fragment() {
    let parsed = ListFormat::Stix.parse_list(&spec_example("STIX (1.x XML)"));
    assert_clean(&parsed);
    assert_eq!(
        indicators(&parsed),
        [ip("198.51.100.1"), domain("bad.example.com")]
    );
    assert_eq!(
        parsed.entries.iter().map(|e| e.line).collect::<Vec<_>>(),
        [2, 5]
    );
}

const STIX_PACKAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<stix:STIX_Package xmlns:stix="http://stix.mitre.org/stix-1" xmlns:cybox="http://cybox.mitre.org/cybox-2"
    xmlns:AddressObj="http://cybox.mitre.org/objects#AddressObject-2" xmlns:DomainNameObj="http://cybox.mitre.org/objects#DomainNameObject-1"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.2">
  <stix:Observables cybox_major_version="2" cybox_minor_version="1">
    <cybox:Observable id="example:Observable-1">
      <cybox:Object>
        <cybox:Properties xsi:type="AddressObj:AddressObjectType" category="ipv4-addr">
          <AddressObj:Address_Value condition="InclusiveBetween">192.0.2.0##comma##192.0.2.255</AddressObj:Address_Value>
        </cybox:Properties>
      </cybox:Object>
    </cybox:Observable>
    <cybox:Observable>
      <cybox:Object>
        <cybox:Properties xsi:type="AddressObj:AddressObjectType" category="ipv4-addr">
          <AddressObj:Address_Value condition="Equals" apply_condition="ANY">198.51.100.1##comma##203.0.113.0/24##comma##not-an-ip</AddressObj:Address_Value>
        </cybox:Properties>
      </cybox:Object>
    </cybox:Observable>
  </stix:Observables>
  <stix:Indicators>
    <stix:Indicator>
      <indicator:Observable xmlns:indicator="http://stix.mitre.org/Indicator-2">
        <cybox:Object>
          <cybox:Properties xsi:type="DomainNameObj:DomainNameObjectType">
            <DomainNameObj:Value condition="Equals">Bad.Example.COM</DomainNameObj:Value>
          </cybox:Properties>
        </cybox:Object>
      </indicator:Observable>
    </stix:Indicator>
    <stix:Indicator>
      <cybox:Properties xsi:type="DomainNameObj:DomainNameObjectType">
        <DomainNameObj:Value condition="StartsWith">evil</DomainNameObj:Value>
      </cybox:Properties>
      <cybox:Properties xsi:type="DomainNameObj:DomainNameObjectType">
        <DomainNameObj:Value>a&amp;b.example.com</DomainNameObj:Value>
      </cybox:Properties>
    </stix:Indicator>
  </stix:Indicators>
</stix:STIX_Package>
"#;

#[test]
fn stix_package_with_ranges_lists_and_bad_values() {
    let parsed = ListFormat::Stix.parse_list(STIX_PACKAGE);
    assert_eq!(
        indicators(&parsed),
        [
            Indicator::Range("192.0.2.0".parse().unwrap(), "192.0.2.255".parse().unwrap()),
            ip("198.51.100.1"),
            cidr("203.0.113.0", 24),
            domain("bad.example.com"),
        ]
    );
    let errors: Vec<(usize, &str)> = parsed
        .errors
        .iter()
        .map(|e| (e.line, e.message.as_str()))
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(errors[0].0, 16);
    assert!(errors[0].1.contains("not-an-ip"));
    assert_eq!(errors[1].0, 33);
    assert!(errors[1].1.contains("StartsWith"));
    assert_eq!(errors[2].0, 36);
    assert!(errors[2].1.contains("not allowed"), "{}", errors[2].1);
}

#[test]
fn malformed_xml_reports_its_line_and_keeps_earlier_entries() {
    let text = "<r>\n<cybox:Properties xsi:type=\"AddressObj:AddressObjectType\">\n<AddressObj:Address_Value>198.51.100.1</AddressObj:Address_Value>\n</cybox:Properties>\n<oops></wrong>\n";
    let parsed = ListFormat::Stix.parse_list(text);
    assert_eq!(indicators(&parsed), [ip("198.51.100.1")]);
    assert_eq!(parsed.errors.len(), 1);
    assert_eq!(parsed.errors[0].line, 5, "{}", parsed.errors[0]);
    assert!(
        parsed.errors[0]
            .to_string()
            .starts_with("line 5: malformed XML")
    );
}

#[test]
fn bad_lines_are_numbered_and_the_rest_loads_in_every_format() {
    let cases: [(ListFormat, &str, &[usize], usize); 5] = [
        (
            ListFormat::Txt,
            "# comment\n198.51.100.1\n\n300.1.1.1\nexample.com\n2001:db8::1\n",
            &[4, 6],
            2,
        ),
        (
            ListFormat::OtxCsv,
            "Indicator type, Indicator, Description\nIPv4, 198.51.100.1, x\nIPv4, 198.51.100.0/24, wrong type\nURL, http://x.example/a, skipped\nIPv6, 2001:db8::1, no\n\"unterminated, x\nDomain name, ok.example, fine\n",
            &[3, 5, 6],
            2,
        ),
        (
            ListFormat::ProofPoint,
            "ip, category, score, first_seen, last_seen, ports (|)\n198.51.100.1, 1, 100, 2000-01-01, 2000-01-01,\nbad.example.com, 1, 100, 2000-01-01, 2000-01-01,\n203.0.113.1, 1, 100, 2000-01-01, 2000-01-01, 80\n",
            &[3],
            2,
        ),
        (
            ListFormat::AlienVault,
            "198.51.100.1#4#2#Malicious Host#US##0.0,0.0#3\nno-hash-here\n#4#2#x\n203.0.113.1#4#2####3\n",
            &[2, 3],
            2,
        ),
        (
            ListFormat::FireEye,
            "reportId, cidr, ip, domain\n1, 192.0.2.0/24, , \n2, , 198.51.100.1, bad.example.net\n3, , example.com, \n4, , \n5, , , \n",
            &[4, 5],
            3,
        ),
    ];
    for (format, text, error_lines, loaded) in cases {
        let parsed = format.parse_list(text);
        let lines: Vec<usize> = parsed.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, error_lines, "{format}: {:?}", parsed.errors);
        assert_eq!(
            parsed.entries.len(),
            loaded,
            "{format}: {:?}",
            parsed.entries
        );
    }
    // Skipped rows are counted, not reported as errors.
    let otx = ListFormat::OtxCsv.parse_list(cases[1].1);
    assert_eq!(otx.skipped, 1);
    let fire_eye = ListFormat::FireEye.parse_list(cases[4].1);
    assert_eq!(fire_eye.skipped, 1);
}

#[test]
fn fire_eye_without_network_columns_is_one_clear_error() {
    let parsed = ListFormat::FireEye.parse_list("reportId, md5\n1, abc\n");
    assert_eq!(parsed.errors.len(), 1);
    assert_eq!(parsed.errors[0].line, 1);
    assert!(parsed.errors[0].message.contains("cidr"));
}

#[test]
fn ip_lists_reject_domains_by_line_and_keep_the_rest() {
    let list = IntelList::parse(
        "corp-threats",
        ListRole::Threat,
        ListKind::IpList,
        ListFormat::Txt,
        "198.51.100.1\nexample.com\n192.0.2.0/24\n*.example.org\n",
    );
    assert_eq!(list.report.loaded, 2);
    let lines: Vec<usize> = list.report.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 4]);
    assert!(list.report.errors[0].message.contains("entity list"));
    assert!(list.contains_ip("192.0.2.77".parse().unwrap()));
    assert!(!list.contains_domain("example.com"));
    assert_eq!(
        list.report.to_string(),
        "2 entries loaded, 2 lines rejected, 0 rows skipped"
    );
}

#[test]
fn format_names_parse_in_any_case() {
    for format in ListFormat::ALL {
        assert_eq!(format.name().parse::<ListFormat>(), Ok(format));
        assert_eq!(
            format.name().to_lowercase().parse::<ListFormat>(),
            Ok(format)
        );
    }
    assert!("CSV".parse::<ListFormat>().unwrap_err().contains("OTX_CSV"));
}
