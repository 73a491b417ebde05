//! The ListObjectsV2 answer: object keys, sizes and ETags, and where the next page starts.

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;

/// One listed object. `etag` is without the surrounding quotes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub etag: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<ObjectInfo>,
    /// Set when the listing continues on another page.
    pub next_token: Option<String>,
    /// "Directories" (`CommonPrefixes`) of a listing with a delimiter, each ending with it.
    pub common_prefixes: Vec<String>,
}

/// Parses a `ListBucketResult` document.
pub fn parse_list(xml: &str) -> Result<ListPage, String> {
    let mut reader = Reader::from_str(xml);
    let mut page = ListPage::default();
    let mut truncated = false;
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut current: Option<(Option<String>, Option<u64>, Option<String>)> = None;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| format!("malformed XML at byte {}: {e}", reader.error_position()))?;
        match ev {
            Event::Start(e) => {
                let name = e.local_name().into_inner().to_owned();
                if name == "Contents" && path.len() == 1 {
                    current = Some((None, None, None));
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => match r.resolve_char_ref() {
                Ok(Some(c)) => text.push(c),
                _ => match resolve_predefined_entity(&r) {
                    Some(s) => text.push_str(s),
                    None => return Err(format!("unknown XML entity &{};", &*r)),
                },
            },
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                match (path.len(), name.as_str()) {
                    (1, "IsTruncated") => truncated = text.trim() == "true",
                    (1, "NextContinuationToken") => page.next_token = Some(text.clone()),
                    (2, "Prefix") if path[1] == "CommonPrefixes" => {
                        page.common_prefixes.push(text.clone());
                    }
                    (2, "Key") => {
                        if let Some(c) = current.as_mut() {
                            c.0 = Some(text.clone());
                        }
                    }
                    (2, "Size") => {
                        if let Some(c) = current.as_mut() {
                            let size = text
                                .trim()
                                .parse()
                                .map_err(|_| format!("bad object size {text:?}"))?;
                            c.1 = Some(size);
                        }
                    }
                    (2, "ETag") => {
                        if let Some(c) = current.as_mut() {
                            c.2 = Some(text.trim().trim_matches('"').to_owned());
                        }
                    }
                    (1, "Contents") => {
                        if let Some((key, size, etag)) = current.take() {
                            let key = key.ok_or("listed object without a Key")?;
                            let size =
                                size.ok_or_else(|| format!("{key}: listed without a Size"))?;
                            page.objects.push(ObjectInfo {
                                key,
                                size,
                                etag: etag.unwrap_or_default(),
                            });
                        }
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if truncated && page.next_token.is_none() {
        return Err("truncated listing without NextContinuationToken".into());
    }
    if !truncated {
        page.next_token = None;
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_with_continuation() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>logs</Name><Prefix>AWSLogs/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>AWSLogs/1/a &amp; b.json.gz</Key><LastModified>2024-01-02T00:00:00.000Z</LastModified>
    <ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>1234</Size>
    <Owner><ID>x</ID></Owner><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>AWSLogs/1/b.json</Key><ETag>"e-2"</ETag><Size>0</Size></Contents>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>"#;
        let p = parse_list(xml).unwrap();
        assert_eq!(
            p.objects,
            vec![
                ObjectInfo {
                    key: "AWSLogs/1/a & b.json.gz".into(),
                    size: 1234,
                    etag: "9b2cf535f27731c974343645a3985328".into()
                },
                ObjectInfo {
                    key: "AWSLogs/1/b.json".into(),
                    size: 0,
                    etag: "e-2".into()
                },
            ]
        );
        assert_eq!(
            p.next_token.as_deref(),
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
        assert!(p.common_prefixes.is_empty());
    }

    #[test]
    fn common_prefixes_of_a_delimited_listing() {
        let xml = r#"<ListBucketResult><Prefix>AWSLogs/1/CloudTrail/</Prefix><Delimiter>/</Delimiter>
  <IsTruncated>false</IsTruncated>
  <Contents><Key>AWSLogs/1/CloudTrail/x.json</Key><Size>1</Size></Contents>
  <CommonPrefixes><Prefix>AWSLogs/1/CloudTrail/eu-west-1/</Prefix></CommonPrefixes>
  <CommonPrefixes><Prefix>AWSLogs/1/CloudTrail/us-east-1/</Prefix></CommonPrefixes>
</ListBucketResult>"#;
        let p = parse_list(xml).unwrap();
        assert_eq!(
            p.common_prefixes,
            [
                "AWSLogs/1/CloudTrail/eu-west-1/",
                "AWSLogs/1/CloudTrail/us-east-1/"
            ]
        );
        assert_eq!(p.objects.len(), 1);
        assert_eq!(p.objects[0].key, "AWSLogs/1/CloudTrail/x.json");
    }

    #[test]
    fn last_page_and_errors() {
        let p = parse_list("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>")
            .unwrap();
        assert_eq!(p, ListPage::default());
        assert!(
            parse_list("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>")
                .is_err()
        );
        assert!(parse_list("<ListBucketResult><Contents><Key>k</Key><Size>x</Size></Contents></ListBucketResult>").is_err());
        assert!(
            parse_list("<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>")
                .is_err()
        );
        assert!(parse_list("<a><b></a>").is_err());
    }
}
