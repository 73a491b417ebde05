//! Lookups across lists (trusted wins over threat, IP lists stay out of DNS), reloading list files
//! when they change, and lists of 100k entries.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ward_collector::intel::{
    IntelIndex, IntelList, ListFormat, ListKind, ListRole, ListSource, LoadError, Verdict,
    WatchedList,
};

fn list(name: &str, role: ListRole, kind: ListKind, text: &str) -> Arc<IntelList> {
    let list = IntelList::parse(name, role, kind, ListFormat::Txt, text);
    assert!(
        list.report.errors.is_empty(),
        "{name}: {:?}",
        list.report.errors
    );
    Arc::new(list)
}

fn ip(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

fn index() -> IntelIndex {
    IntelIndex::new([
        list(
            "trusted-ips",
            ListRole::Trusted,
            ListKind::IpList,
            "203.0.113.7\n",
        ),
        list(
            "trusted-entities",
            ListRole::Trusted,
            ListKind::EntityList,
            "*.partner.example\n",
        ),
        list(
            "feed-a",
            ListRole::Threat,
            ListKind::IpList,
            "203.0.113.0/24\n198.51.100.1\n10.0.0.0/8\n",
        ),
        list(
            "feed-b",
            ListRole::Threat,
            ListKind::EntityList,
            "198.51.100.1\nbad.example\n*.partner.example\napi.partner.example\n",
        ),
    ])
}

#[test]
fn trusted_entries_win_over_threat_entries() {
    let index = index();
    assert_eq!(
        index.check_ip(ip("203.0.113.7")),
        Verdict::Trusted {
            list: "trusted-ips"
        }
    );
    assert_eq!(
        index.check_ip(ip("203.0.113.8")),
        Verdict::Threat {
            lists: vec!["feed-a"]
        }
    );
    assert_eq!(
        index.check_ip(ip("198.51.100.1")),
        Verdict::Threat {
            lists: vec!["feed-a", "feed-b"]
        }
    );
    assert_eq!(index.check_ip(ip("8.8.8.8")), Verdict::Clean);
    assert_eq!(
        index.check_domain("api.partner.example"),
        Verdict::Trusted {
            list: "trusted-entities"
        }
    );
    assert_eq!(
        index.check_domain("BAD.example."),
        Verdict::Threat {
            lists: vec!["feed-b"]
        }
    );
    assert_eq!(index.check_domain("good.example"), Verdict::Clean);
}

#[test]
fn lists_apply_to_public_addresses_unless_configured_otherwise() {
    assert_eq!(index().check_ip(ip("10.1.2.3")), Verdict::Clean);
    let lab = index().with_public_only(false);
    assert_eq!(
        lab.check_ip(ip("10.1.2.3")),
        Verdict::Threat {
            lists: vec!["feed-a"]
        }
    );
}

#[test]
fn ip_lists_do_not_apply_to_domains() {
    // An IP list cannot even load a domain; and an entity list's domains are the only ones used.
    let mut index = IntelIndex::default();
    index.add(Arc::new(IntelList::parse(
        "ips",
        ListRole::Threat,
        ListKind::IpList,
        ListFormat::Txt,
        "evil.example\n",
    )));
    assert_eq!(index.check_domain("evil.example"), Verdict::Clean);
    index.replace(list(
        "ips",
        ListRole::Threat,
        ListKind::EntityList,
        "evil.example\n",
    ));
    assert_eq!(
        index.lists().len(),
        1,
        "replace swaps the list with the same name"
    );
    assert_eq!(
        index.check_domain("evil.example"),
        Verdict::Threat { lists: vec!["ips"] }
    );
}

struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Self(std::env::temp_dir().join(format!(
            "ward-intel-{tag}-{}-{nanos}.txt",
            std::process::id()
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn reload_happens_only_when_the_file_changes() {
    let file = TempFile::new("reload");
    std::fs::write(&file.0, "198.51.100.1\n").unwrap();
    let source = ListSource {
        name: "watched".into(),
        path: file.0.clone(),
        format: ListFormat::Txt,
        kind: ListKind::EntityList,
        role: ListRole::Threat,
    };
    let mut watched = WatchedList::load(source).unwrap();
    assert!(watched.list().contains_ip(ip("198.51.100.1")));
    assert!(
        watched.reload_if_changed().unwrap().is_none(),
        "unchanged file is not re-read"
    );

    std::fs::write(&file.0, "203.0.113.9\nbad line here\n").unwrap();
    // Make the change visible even on file systems with coarse timestamps.
    let later = SystemTime::now() + Duration::from_secs(2);
    std::fs::File::options()
        .write(true)
        .open(&file.0)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let reloaded = watched
        .reload_if_changed()
        .unwrap()
        .expect("changed file reloads");
    assert!(reloaded.contains_ip(ip("203.0.113.9")));
    assert!(!reloaded.contains_ip(ip("198.51.100.1")));
    assert_eq!(reloaded.report.errors[0].line, 2);
    assert!(watched.reload_if_changed().unwrap().is_none());

    std::fs::remove_file(&file.0).unwrap();
    let err = watched.reload_if_changed().unwrap_err();
    assert!(matches!(err, LoadError::Io { .. }));
    assert!(err.to_string().contains("ward-intel-reload"), "{err}");
    assert!(
        watched.list().contains_ip(ip("203.0.113.9")),
        "a failed reload keeps the previous list"
    );
}

#[test]
fn non_utf8_files_are_refused() {
    let file = TempFile::new("binary");
    std::fs::write(&file.0, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let source = ListSource {
        name: "bin".into(),
        path: file.0.clone(),
        format: ListFormat::Txt,
        kind: ListKind::IpList,
        role: ListRole::Threat,
    };
    assert!(matches!(source.load(), Err(LoadError::NotUtf8 { .. })));
}

#[test]
fn hundred_thousand_entry_lists_load_and_answer() {
    let mut text = String::new();
    for i in 0..50_000u32 {
        let a = Ipv4Addr::from(0x0B00_0000 + i * 7);
        text.push_str(&format!("{a}\n"));
        text.push_str(&format!("host-{i}.feed.example\n"));
    }
    text.push_str("*.wild.example\n100.128.0.0/16\n");
    let list = Arc::new(IntelList::parse(
        "big",
        ListRole::Threat,
        ListKind::EntityList,
        ListFormat::Txt,
        &text,
    ));
    assert_eq!(list.report.loaded, 100_002);
    let index = IntelIndex::new([list]);
    let mut hits = 0;
    for i in 0..50_000u32 {
        if index.check_ip(Ipv4Addr::from(0x0B00_0000 + i * 7)) != Verdict::Clean {
            hits += 1;
        }
        if index.check_domain(&format!("host-{i}.feed.example")) != Verdict::Clean {
            hits += 1;
        }
    }
    assert_eq!(hits, 100_000);
    assert_eq!(
        index.check_ip(Ipv4Addr::from(0x0B00_0000 + 1)),
        Verdict::Clean
    );
    assert_ne!(index.check_ip(ip("100.128.200.1")), Verdict::Clean);
    assert_ne!(index.check_domain("x.y.wild.example"), Verdict::Clean);
    assert_eq!(
        index.check_domain("host-50000.feed.example"),
        Verdict::Clean
    );
}
