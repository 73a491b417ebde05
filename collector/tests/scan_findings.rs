//! `ward-collector scan` raises foundational findings: JSON lines on stdout, the summary on
//! stderr, `--state` written and read back, bad options refused with the file named.

use std::path::PathBuf;
use std::process::Command;

fn corpus(rel: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = [
        std::env::var_os("WARD_CORPUS").map(PathBuf::from),
        std::env::var_os("WARD_CORPUS_DIR").map(PathBuf::from),
        Some(root.join("../shared/corpus")),
        Some(root.join("../../shared/corpus")),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_dir())
    .expect("corpus not found (set WARD_CORPUS; CI copies shared/ beside the checkout)");
    dir.join(rel)
}

fn scan(args: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ward-collector"))
        .arg("scan")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let findings = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        findings,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn stratus_cloudtrail_stop_prints_one_finding_pointing_at_its_record() {
    let file = corpus("stratus-red-team/detonation-logs/aws.defense-evasion.cloudtrail-stop.json");
    let (code, findings, stderr) = scan(&["--cloudtrail", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let logging: Vec<_> = findings
        .iter()
        .filter(|f| f["type"] == "Stealth:IAMUser/CloudTrailLoggingDisabled")
        .collect();
    assert_eq!(logging.len(), 1, "{findings:#?}");
    let f = logging[0];
    assert_eq!(
        f["service"]["action"]["awsApiCallAction"]["api"],
        "StopLogging"
    );
    assert_eq!(f["service"]["featureName"], "CloudTrail");
    let pointer = &f["service"]["additionalInfo"]["ward"]["logRecord"];
    assert_eq!(pointer["object"], file.to_str().unwrap());
    assert_eq!(pointer["index"], 0);
    assert!(stderr.contains("scan summary: cloudtrail:"), "{stderr}");
    assert!(stderr.contains("findings: "), "{stderr}");
}

#[test]
fn state_is_written_and_read_back_and_bad_state_is_refused() {
    let dir = std::env::temp_dir().join(format!("ward-scan-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    let file =
        corpus("stratus-red-team/detonation-logs/aws.persistence.iam-create-admin-user.json");
    let args = [
        "--cloudtrail",
        file.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ];
    let (code, _, stderr) = scan(&args);
    assert_eq!(code, 0, "{stderr}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["version"], 1);
    assert!(saved["newestMs"].as_i64().unwrap() > 0);
    let (code, _, stderr) = scan(&args);
    assert_eq!(code, 0, "second run reads the state: {stderr}");
    std::fs::write(&state, "not json").unwrap();
    let (code, _, stderr) = scan(&args);
    assert_ne!(code, 0);
    assert!(stderr.contains(state.to_str().unwrap()), "{stderr}");
    let (code, _, stderr) = scan(&[
        "--cloudtrail",
        file.to_str().unwrap(),
        "--aws-ip-ranges",
        "/nonexistent/ip-ranges.json",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("/nonexistent/ip-ranges.json"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
