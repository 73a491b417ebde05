//! Decides from an object key / file path whether an object belongs to a source, so a directory
//! or bucket holding several kinds of objects can be scanned without feeding digests, READMEs or
//! another service's logs to a parser. Decisions are counted as "skipped", never silent.

use crate::event::SourceKind;

/// `Some(reason)` if the object at `key` should be skipped for `source`.
pub fn skip_reason(source: SourceKind, key: &str) -> Option<&'static str> {
    let name = key.rsplit('/').next().unwrap_or(key);
    if name.is_empty() {
        return Some("directory marker");
    }
    if name.starts_with('.') {
        return Some("hidden file");
    }
    if let Some(service) = awslogs_service(key) {
        let ours = match source {
            SourceKind::CloudTrail => match service {
                "CloudTrail" | "CloudTrail-Insight" => true,
                "CloudTrail-Digest" => return Some("CloudTrail digest file"),
                _ => false,
            },
            SourceKind::VpcFlow => service == "vpcflowlogs",
            SourceKind::Dns => service == "vpcdnsquerylogs",
        };
        if !ours {
            return Some("another service's AWSLogs object");
        }
    }
    if source == SourceKind::CloudTrail && name.contains("CloudTrail-Digest") {
        return Some("CloudTrail digest file");
    }
    let lower = name.to_ascii_lowercase();
    let stem = lower.strip_suffix(".gz").unwrap_or(&lower);
    if stem.ends_with(".parquet") {
        return match source {
            SourceKind::VpcFlow => None,
            _ => Some("Parquet objects are only read for VPC flow logs"),
        };
    }
    let ext = match stem.rsplit_once('.') {
        Some((_, ext)) => ext,
        None => return None, // Firehose objects have no extension
    };
    let allowed: &[&str] = match source {
        SourceKind::CloudTrail => &["json", "jsonl", "ndjson", "log", "txt"],
        SourceKind::VpcFlow => &["log", "txt"],
        SourceKind::Dns => &["json", "jsonl", "ndjson", "log", "txt"],
    };
    if allowed.contains(&ext) {
        None
    } else {
        Some("not a log file (extension)")
    }
}

/// The service segment of an `AWSLogs/<account>/<service>/...` key (also organisation trails
/// `AWSLogs/<o-id>/<account>/<service>/...` and Hive-style `aws-service=<service>` partitions).
fn awslogs_service(key: &str) -> Option<&str> {
    let mut parts = key.split('/').skip_while(|p| *p != "AWSLogs");
    parts.next()?;
    let first = parts.next()?;
    let seg = if first.starts_with("o-") {
        parts.nth(1)?
    } else {
        parts.next()?
    };
    Some(seg.strip_prefix("aws-service=").unwrap_or(seg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use SourceKind::*;

    #[test]
    fn cloudtrail_layout() {
        let k = "b/AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/02/123456789012_CloudTrail_us-east-1_20240102T0000Z_abc.json.gz";
        assert_eq!(skip_reason(CloudTrail, k), None);
        let org = "AWSLogs/o-abc123/123456789012/CloudTrail/eu-west-1/2024/01/02/x.json.gz";
        assert_eq!(skip_reason(CloudTrail, org), None);
        let d = "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/01/02/123456789012_CloudTrail-Digest_us-east-1_t_20240102T0000Z.json.gz";
        assert_eq!(skip_reason(CloudTrail, d), Some("CloudTrail digest file"));
        let vpc = "AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/01/02/x.log.gz";
        assert!(skip_reason(CloudTrail, vpc).is_some());
        assert_eq!(skip_reason(VpcFlow, vpc), None);
        let hive = "AWSLogs/aws-account-id=1/aws-service=vpcflowlogs/aws-region=us-east-1/x.log.gz";
        assert_eq!(skip_reason(VpcFlow, hive), None);
    }

    #[test]
    fn extensions() {
        assert!(skip_reason(CloudTrail, "corpus/README.md").is_some());
        assert!(skip_reason(VpcFlow, "x/v3.format").is_some());
        assert_eq!(skip_reason(VpcFlow, "x/flows.log.parquet"), None);
        assert!(skip_reason(Dns, "x/flows.log.parquet").is_some());
        assert_eq!(
            skip_reason(Dns, "x/PUT-S3-abc-1-2021-02-04-17-51-55-uuid"),
            None
        );
        assert_eq!(skip_reason(Dns, "x/q.json.gz"), None);
        assert!(skip_reason(Dns, "x/.hidden.json").is_some());
    }
}
