//! Every CloudTrail field survives parse → serialise unchanged: the documented §9.1 fields (typed),
//! unknown fields, explicit nulls and oddly typed values (kept verbatim).

use serde_json::{Value, json};
use std::io::Cursor;
use ward_collector::event::cloudtrail::{CloudTrailRecord, UserIdentity};
use ward_collector::event::{Event, Record, SourceKind};
use ward_collector::logs::{Problem, ReadOptions, Sink, read_object};

#[derive(Default)]
struct RoundTrip {
    out: Vec<Value>,
    malformed: Vec<String>,
    check: Option<fn(&CloudTrailRecord<'_>)>,
}

impl Sink for RoundTrip {
    fn event(&mut self, e: &Event<'_>) {
        let Record::CloudTrail(r) = e.record else {
            panic!("not CloudTrail")
        };
        if let Some(c) = self.check {
            c(r);
        }
        self.out.push(serde_json::to_value(r).unwrap());
    }
    fn malformed(&mut self, p: &Problem<'_>) {
        self.malformed.push(p.to_string());
    }
}

fn roundtrip(data: Vec<u8>, check: Option<fn(&CloudTrailRecord<'_>)>) -> Vec<Value> {
    let mut sink = RoundTrip {
        check,
        ..RoundTrip::default()
    };
    read_object(
        SourceKind::CloudTrail,
        "t",
        Cursor::new(data),
        &ReadOptions::default(),
        &mut sink,
    );
    assert!(sink.malformed.is_empty(), "{:?}", sink.malformed);
    sink.out
}

fn full_record() -> Value {
    json!({
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:i-0123456789abcdef0",
            "arn": "arn:aws:sts::123456789012:assumed-role/Role/i-0123456789abcdef0",
            "accountId": "123456789012",
            "accessKeyId": "ASIAEXAMPLE",
            "userName": "Alice",
            "invokedBy": "ec2.amazonaws.com",
            "sessionContext": {
                "attributes": {"mfaAuthenticated": "false", "creationDate": "2024-01-01T00:00:00Z"},
                "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE", "arn": "arn:aws:iam::123456789012:role/Role", "accountId": "123456789012", "userName": "Role"},
                "webIdFederationData": {"federatedProvider": "arn:aws:iam::123456789012:oidc-provider/x", "attributes": {"aud": "a"}},
                "sourceIdentity": "alice@example.com",
                "ec2RoleDelivery": "1.0",
                "ec2IssuedInVPC": "vpc-1",
                "assumedRoot": "true",
                "futureSessionField": [1, 2]
            },
            "identityProvider": "idp",
            "credentialId": "cred",
            "onBehalfOf": {"userId": "u", "identityStoreArn": "arn:aws:identitystore::1:identitystore/d-1"},
            "inScopeOf": {"issuerType": "AWS::Lambda::Function"},
            "unknownIdentityField": {"nested": true}
        },
        "eventTime": "2024-01-01T00:00:00Z",
        "eventSource": "cloudtrail.amazonaws.com",
        "eventName": "StopLogging",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "08.1.250.216",
        "userAgent": "aws-cli/2.15.0 \"quoted\" \\ escaped \u{e9}",
        "errorCode": "AccessDenied",
        "errorMessage": "User: x is not authorized",
        "requestParameters": {"name": "trail", "list": [1, 2.5, null, {"deep": "x"}]},
        "responseElements": null,
        "additionalEventData": {"SignatureVersion": "SigV4"},
        "requestID": "req-1",
        "eventID": "ev-1",
        "eventType": "AwsApiCall",
        "apiVersion": "2013-11-01",
        "readOnly": false,
        "resources": [{"ARN": "arn:aws:cloudtrail:us-east-1:1:trail/t", "accountId": "1", "type": "AWS::CloudTrail::Trail"}],
        "recipientAccountId": "123456789012",
        "sharedEventID": "shared-1",
        "vpcEndpointId": "vpce-1",
        "vpcEndpointAccountId": "123456789012",
        "serviceEventDetails": {"x": 1},
        "managementEvent": true,
        "eventCategory": "Management",
        "addendum": {"reason": "DELIVERY_DELAY", "updatedFields": "f", "originalRequestID": "o", "originalEventID": "e"},
        "sessionCredentialFromConsole": "true",
        "edgeDeviceDetails": {"type": "Snowball"},
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": "cloudtrail.us-east-1.amazonaws.com"},
        "insightDetails": {"state": "Start"},
        "someFutureField": {"a": [true]},
        "anotherOne": 12.5
    })
}

#[test]
fn every_documented_field_is_typed_and_round_trips() {
    let rec = full_record();
    let out = roundtrip(
        format!("{{\"Records\":[{rec}]}}").into_bytes(),
        Some(|r| {
            // Each documented top-level key landed in its typed field, not in `extra`.
            let mut extra: Vec<&str> = r.extra.iter().map(|(k, _)| k.as_str()).collect();
            extra.sort();
            assert_eq!(
                extra,
                vec!["anotherOne", "responseElements", "someFutureField"],
                "null is kept verbatim in extra"
            );
            for key in CloudTrailRecord::KEYS {
                assert!(*key == "responseElements" || !extra.contains(key), "{key}");
            }
            let ui = r.user_identity.as_ref().unwrap();
            let ui_extra: Vec<&str> = ui.extra.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(ui_extra, vec!["unknownIdentityField"]);
            assert_eq!(UserIdentity::KEYS.len(), 12);
            let sc = ui.session_context.as_ref().unwrap();
            assert_eq!(
                sc.attributes
                    .as_ref()
                    .unwrap()
                    .mfa_authenticated
                    .as_ref()
                    .unwrap()
                    .as_bool(),
                Some(false)
            );
            assert_eq!(
                sc.session_issuer.as_ref().unwrap().issuer_type.as_deref(),
                Some("Role")
            );
            assert_eq!(r.ec2_role_delivery(), Some("1.0"));
            assert_eq!(r.read_only.as_ref().unwrap().as_bool(), Some(false));
            assert_eq!(
                r.session_credential_from_console
                    .as_ref()
                    .unwrap()
                    .as_bool(),
                Some(true)
            );
            assert_eq!(
                r.resources.as_ref().unwrap()[0].resource_type.as_deref(),
                Some("AWS::CloudTrail::Trail")
            );
            assert_eq!(
                r.tls_details.as_ref().unwrap().tls_version.as_deref(),
                Some("TLSv1.3")
            );
            assert_eq!(r.source_ip(), Some("8.1.250.216".parse().unwrap()));
            assert_eq!(r.time_ms(), Some(1_704_067_200_000));
            assert!(
                r.user_agent
                    .as_deref()
                    .unwrap()
                    .contains("\"quoted\" \\ escaped \u{e9}")
            );
        }),
    );
    assert_eq!(out, vec![rec]);
}

#[test]
fn mismatched_types_are_kept_not_rejected() {
    let rec = json!({
        "eventName": "X",
        "eventVersion": 1.08,
        "userIdentity": "not an object",
        "readOnly": "maybe",
        "resources": null,
        "eventTime": {"odd": 1},
        "awsRegion": "us-east-1",
        "awsRegion ": "key with a space"
    });
    let out = roundtrip(
        format!("{rec}\n").into_bytes(),
        Some(|r| {
            assert!(
                r.event_version.is_none() && r.user_identity.is_none() && r.resources.is_none()
            );
            assert_eq!(r.read_only.as_ref().unwrap().as_bool(), None);
            assert_eq!(r.aws_region.as_deref(), Some("us-east-1"));
        }),
    );
    assert_eq!(out, vec![rec]);
}

/// Every real record in the corpus serialises back to an equal JSON value.
#[test]
fn corpus_records_round_trip() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/stratus-red-team/detonation-logs"
    );
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let original: Vec<Value> = serde_json::from_slice(&data).unwrap();
        let out = roundtrip(data, None);
        assert_eq!(out, original, "{}", path.display());
        n += out.len();
    }
    assert_eq!(n, 310);

    let panther = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/panther-analysis/panther_rule_tests_cloudtrail.jsonl"
    );
    let mut originals = Vec::new();
    let mut data = Vec::new();
    for line in std::fs::read_to_string(panther).unwrap().lines() {
        let log = serde_json::from_str::<Value>(line).unwrap()["log"].clone();
        if ["eventName", "eventSource", "eventVersion"]
            .iter()
            .any(|k| log.get(k).is_some())
        {
            serde_json::to_writer(&mut data, &log).unwrap();
            data.push(b'\n');
            originals.push(log);
        }
    }
    let out = roundtrip(data, None);
    assert_eq!(out.len(), 460);
    assert_eq!(out, originals);
}
