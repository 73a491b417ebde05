//! S3 event notifications as they arrive on an SQS queue: directly from S3, or wrapped in an SNS
//! notification (`{"Type":"Notification","Message":"<S3 event JSON>"}`) when a topic fans out.

use serde::Deserialize;

/// An object announced as created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectEvent {
    pub bucket: String,
    /// Decoded key (notifications carry it URL-encoded, `+` for space).
    pub key: String,
    pub size: Option<u64>,
    pub etag: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Notice {
    Objects(Vec<ObjectEvent>),
    /// A message with nothing to read (S3's test event, deletions, ...), and why.
    Nothing(String),
}

#[derive(Deserialize)]
struct S3Event {
    #[serde(rename = "Records")]
    records: Option<Vec<EventRecord>>,
    #[serde(rename = "Event")]
    event: Option<String>,
    // SNS envelope
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
}

#[derive(Deserialize)]
struct EventRecord {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: Option<S3Entity>,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: Named,
    object: ObjectEntity,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
struct ObjectEntity {
    key: String,
    size: Option<u64>,
    #[serde(rename = "eTag")]
    etag: Option<String>,
}

/// Parses one SQS message body.
pub fn parse_message(body: &str) -> Result<Notice, String> {
    parse_level(body, 0)
}

fn parse_level(body: &str, depth: u8) -> Result<Notice, String> {
    let ev: S3Event =
        serde_json::from_str(body).map_err(|e| format!("not an S3 event notification: {e}"))?;
    if ev.kind.as_deref() == Some("Notification") && depth == 0 {
        let inner = ev.message.ok_or("SNS notification without Message")?;
        return parse_level(&inner, 1);
    }
    if let Some(e) = ev.event.filter(|e| e == "s3:TestEvent") {
        return Ok(Notice::Nothing(e));
    }
    let records = ev
        .records
        .ok_or("not an S3 event notification: no Records")?;
    let mut objects = Vec::new();
    let mut others = Vec::new();
    for r in records {
        let Some(s3) = r.s3 else {
            return Err(format!("record {:?} without s3 entity", r.event_name));
        };
        if !r.event_name.starts_with("ObjectCreated:") {
            others.push(r.event_name);
            continue;
        }
        objects.push(ObjectEvent {
            bucket: s3.bucket.name,
            key: decode_key(&s3.object.key)?,
            size: s3.object.size,
            etag: s3.object.etag.map(|e| e.trim_matches('"').to_owned()),
        });
    }
    if objects.is_empty() {
        return Ok(Notice::Nothing(format!(
            "no object created ({})",
            others.join(", ")
        )));
    }
    Ok(Notice::Objects(objects))
}

/// Decodes a notification key: `%XX` escapes and `+` for a space (form encoding).
pub fn decode_key(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad %-escape in key {s:?}"))?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("key {s:?} is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S3_EVENT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3",
        "awsRegion":"us-east-1","eventTime":"2024-01-02T00:05:00.000Z","eventName":"ObjectCreated:Put",
        "s3":{"s3SchemaVersion":"1.0","bucket":{"name":"trail-logs","arn":"arn:aws:s3:::trail-logs"},
        "object":{"key":"AWSLogs/123/CloudTrail/us-east-1/2024/01/02/a+b%2Bc%C3%A9.json.gz",
        "size":1024,"eTag":"0123abcd","sequencer":"0A1B"}}}]}"#;

    fn expected() -> Notice {
        Notice::Objects(vec![ObjectEvent {
            bucket: "trail-logs".into(),
            key: "AWSLogs/123/CloudTrail/us-east-1/2024/01/02/a b+cé.json.gz".into(),
            size: Some(1024),
            etag: Some("0123abcd".into()),
        }])
    }

    #[test]
    fn direct_and_sns_wrapped() {
        assert_eq!(parse_message(S3_EVENT).unwrap(), expected());
        let sns = serde_json::json!({
            "Type": "Notification",
            "MessageId": "m-1",
            "TopicArn": "arn:aws:sns:us-east-1:123:logs",
            "Message": S3_EVENT,
        })
        .to_string();
        assert_eq!(parse_message(&sns).unwrap(), expected());
    }

    #[test]
    fn nothing_to_read() {
        let t = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-01-02T00:00:00Z","Bucket":"b"}"#;
        assert!(matches!(parse_message(t).unwrap(), Notice::Nothing(_)));
        let del = S3_EVENT.replace("ObjectCreated:Put", "ObjectRemoved:Delete");
        assert!(
            matches!(parse_message(&del).unwrap(), Notice::Nothing(m) if m.contains("ObjectRemoved"))
        );
    }

    #[test]
    fn garbage() {
        for body in [
            "",
            "hello",
            "{}",
            r#"{"Records":[{"eventName":"ObjectCreated:Put"}]}"#,
        ] {
            assert!(parse_message(body).is_err(), "{body:?}");
        }
        assert!(decode_key("a%2").is_err());
        assert!(decode_key("a%zz").is_err());
        assert!(decode_key("%FF").is_err());
    }
}
