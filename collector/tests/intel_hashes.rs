//! File SHA-256s in operator lists: which formats carry them (TXT, OTX_CSV, FIRE_EYE), which reject
//! them with the line number (IP lists, network-only formats), and how lookups answer.

use std::sync::Arc;

use ward_collector::intel::{
    Indicator, IntelIndex, IntelList, ListFormat, ListKind, ListRole, Verdict,
};

const EVIL: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const OTHER: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

fn entity(role: ListRole, format: ListFormat, text: &str) -> IntelList {
    IntelList::parse("ops", role, ListKind::EntityList, format, text)
}

#[test]
fn txt_lines_hold_hashes_next_to_network_entries() {
    let text = format!(
        "# malware seen in incident 42\n{}\nevil.example.org\n{OTHER}\nd41d8cd98f00b204e9800998ecf8427e\n",
        EVIL.to_ascii_uppercase()
    );
    let list = entity(ListRole::Threat, ListFormat::Txt, &text);
    assert_eq!(list.report.loaded, 3, "{:?}", list.report);
    assert_eq!(list.report.errors.len(), 1);
    assert_eq!(list.report.errors[0].line, 5);
    assert!(
        list.report.errors[0].message.contains("MD5 or SHA-1"),
        "{}",
        list.report.errors[0].message
    );
    assert!(list.contains_sha256(EVIL), "stored lower-case");
    assert!(list.contains_sha256(OTHER));
    assert!(list.contains_domain("evil.example.org"));
    assert!(!list.contains_sha256(&EVIL[..63]));
    assert_eq!(
        Indicator::parse(EVIL).unwrap(),
        Indicator::Sha256(EVIL.into())
    );
    // 64 characters that are not all hex stay what they were (here: not a valid domain).
    assert!(Indicator::parse(&format!("{}zz", &EVIL[..62])).is_err());
}

#[test]
fn ip_lists_refuse_hashes_with_the_line() {
    let list = IntelList::parse(
        "ips",
        ListRole::Threat,
        ListKind::IpList,
        ListFormat::Txt,
        &format!("198.51.100.1\n{EVIL}\n"),
    );
    assert_eq!(list.report.loaded, 1);
    assert_eq!(list.report.errors.len(), 1);
    assert_eq!(list.report.errors[0].line, 2);
    assert!(list.report.errors[0].message.contains("entity list"));
    assert!(!list.contains_sha256(EVIL));
}

#[test]
fn otx_csv_loads_sha256_rows_and_skips_other_hashes() {
    let text = format!(
        "Indicator type, Indicator, Description\n\
         FileHash-SHA256, {EVIL}, dropper\n\
         FileHash-MD5, d41d8cd98f00b204e9800998ecf8427e, same dropper\n\
         FileHash-SHA256, evil.example.org, wrong type\n\
         IPv4, 198.51.100.1, c2\n"
    );
    let list = entity(ListRole::Threat, ListFormat::OtxCsv, &text);
    assert_eq!(list.report.loaded, 2, "{:?}", list.report);
    assert_eq!(list.report.skipped, 1);
    assert_eq!(list.report.errors.len(), 1);
    assert_eq!(list.report.errors[0].line, 4);
    assert!(list.contains_sha256(EVIL));
}

#[test]
fn fire_eye_sha256_column() {
    const HEADER: &str = "reportId, title, threatScape, audience, intelligenceType, publishDate, reportLink, webLink, emailIdentifier, senderAddress, senderName, sourceDomain, sourceIp, subject, recipient, emailLanguage, fileName, fileSize, fuzzyHash, fileIdentifier, md5, sha1, sha256, description, fileType, packer, userAgent, registry, fileCompilationDateTime, filePath, asn, cidr, domain, domainTimeOfLookup, networkIdentifier, ip, port, protocol, registrantEmail, registrantName, networkType, url, malwareFamily, malwareFamilyId, actor, actorId, observationTime";
    let columns: Vec<&str> = HEADER.split(", ").collect();
    let row = |sha256: &str, md5: &str| {
        columns
            .iter()
            .map(|c| match *c {
                "reportId" => "01-00000003",
                "sha256" => sha256,
                "md5" => md5,
                _ => "",
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let text = format!(
        "{HEADER}\n{}\n{}\n{}\n",
        row(EVIL, ""),
        row("", "d41d8cd98f00b204e9800998ecf8427e"),
        row("198.51.100.1", "")
    );
    let list = entity(ListRole::Threat, ListFormat::FireEye, &text);
    assert_eq!(list.report.loaded, 1, "{:?}", list.report);
    assert_eq!(list.report.skipped, 1, "an MD5-only row");
    assert_eq!(list.report.errors.len(), 1);
    assert_eq!(list.report.errors[0].line, 4);
    assert!(list.report.errors[0].message.contains("`sha256`"));
    assert!(list.contains_sha256(EVIL));
}

#[test]
fn network_only_formats_reject_hashes() {
    let proofpoint = entity(
        ListRole::Threat,
        ListFormat::ProofPoint,
        &format!(
            "ip, category, score, first_seen, last_seen, ports (|)\n{EVIL}, 1, 100, 2000-01-01, 2000-01-01,\n"
        ),
    );
    assert_eq!(proofpoint.report.loaded, 0);
    assert_eq!(proofpoint.report.errors[0].line, 2);
    assert!(proofpoint.report.errors[0].message.contains("file hash"));
    let alienvault = entity(
        ListRole::Threat,
        ListFormat::AlienVault,
        &format!("{EVIL}#4#2#Malicious Host#US##0.0,0.0#3\n"),
    );
    assert_eq!(alienvault.report.loaded, 0);
    assert_eq!(alienvault.report.errors[0].line, 1);
}

#[test]
fn trusted_hash_lists_win_and_case_does_not_matter() {
    let threat = Arc::new(entity(
        ListRole::Threat,
        ListFormat::Txt,
        &format!("{EVIL}\n{OTHER}\n"),
    ));
    let trusted = Arc::new(IntelList::parse(
        "golden-images",
        ListRole::Trusted,
        ListKind::EntityList,
        ListFormat::Txt,
        &format!("{OTHER}\n"),
    ));
    let index = IntelIndex::new([threat, trusted]);
    assert_eq!(
        index.check_sha256(&EVIL.to_ascii_uppercase()),
        Verdict::Threat { lists: vec!["ops"] }
    );
    assert_eq!(
        index.check_sha256(OTHER),
        Verdict::Trusted {
            list: "golden-images"
        }
    );
    assert_eq!(index.check_sha256(&"0".repeat(64)), Verdict::Clean);
}
