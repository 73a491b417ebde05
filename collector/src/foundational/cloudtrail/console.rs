//! `UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B` (Medium): successful console sign-ins of
//! one principal from different places at about the same time.
//!
//! GuardDuty compares geolocations; Ward has no geolocation database and compares networks
//! instead: two successful `ConsoleLogin`s of the same principal (ARN, else principal id) within
//! 15 minutes of each other (event time), from public addresses in different /16 networks (IPv4)
//! or /32 prefixes (IPv6), raise the finding on the later one; the earlier sign-ins are listed in
//! `additionalInfo.otherLogins`.
//!
//! Out-of-order records: sign-ins are compared by the distance between their own times, not by
//! arrival, and each principal's sign-ins are kept until the engine's watermark (newest record
//! time minus the allowed lateness) is 15 minutes past them. So a sign-in that arrives late, within
//! the lateness, still meets the ones it overlaps.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::{Value, json};

use super::{Api, SOURCES, api_draft, record_call};
use crate::event::{Event, SourceKind};
use crate::findings::{FindingType, Occurrence};
use crate::foundational::aws_ranges::is_public;
use crate::foundational::{Calls, LogContext, LogDetector};

const WINDOW_MS: i64 = 15 * 60 * 1000;
/// Sign-ins kept per principal (a burst beyond this keeps the newest).
const MAX_PER_PRINCIPAL: usize = 64;

#[derive(Debug, Clone)]
struct Login {
    time_ms: i64,
    ip: IpAddr,
}

fn network(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4) >> 16),
        IpAddr::V6(v6) => (u128::from(v6) >> 96) | (1 << 127),
    }
}

#[derive(Default)]
pub struct ConsoleLogins {
    recent: HashMap<String, Vec<Login>>,
}

impl LogDetector for ConsoleLogins {
    fn name(&self) -> &'static str {
        "ct.console-login-success-b"
    }

    fn sources(&self) -> &'static [SourceKind] {
        SOURCES
    }

    fn calls(&self) -> Calls {
        Calls::Apis(&[Api::ConsoleLogin])
    }

    fn on_event(&mut self, ev: &Event<'_>, ctx: &LogContext<'_>, out: &mut Vec<Occurrence>) {
        let Some((rec, call)) = record_call(ev) else {
            return;
        };
        if call.api != Api::ConsoleLogin {
            return;
        }
        let success = rec
            .response_elements
            .and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
            .is_some_and(|v| v.get("ConsoleLogin").and_then(Value::as_str) == Some("Success"));
        let (Some(ip), Some(now)) = (ev.caller_ip().filter(|ip| is_public(*ip)), ev.time_ms())
        else {
            return;
        };
        if !success {
            return;
        }
        let ui = rec.user_identity.as_ref();
        let Some(who) = ui
            .and_then(|u| u.arn.as_deref().filter(|a| !a.is_empty()))
            .or_else(|| ui.and_then(|u| u.principal_id.as_deref()))
        else {
            return;
        };
        let logins = self.recent.entry(who.to_owned()).or_default();
        let others: Vec<&Login> = logins
            .iter()
            .filter(|l| (l.time_ms - now).abs() <= WINDOW_MS && network(l.ip) != network(ip))
            .collect();
        if !others.is_empty() {
            let listed: Vec<Value> = others
                .iter()
                .map(|l| {
                    json!({ "ipAddress": l.ip.to_string(),
                            "time": crate::findings::time::format_millis(l.time_ms) })
                })
                .collect();
            out.extend(
                api_draft(
                    FindingType::UnauthorizedAccessIamUserConsoleLoginSuccessB,
                    "ct.console-login-success-b",
                    ev,
                    rec,
                    ctx,
                    "Successful console sign-ins from different networks at about the same time",
                )
                .info("otherLogins", Value::Array(listed))
                .build(),
            );
        }
        if logins.len() >= MAX_PER_PRINCIPAL {
            logins.remove(0);
        }
        logins.push(Login { time_ms: now, ip });
    }

    fn on_time(&mut self, now_ms: i64, _ctx: &LogContext<'_>, _out: &mut Vec<Occurrence>) {
        let cutoff = now_ms.saturating_sub(WINDOW_MS);
        self.recent.retain(|_, logins| {
            logins.retain(|l| l.time_ms >= cutoff);
            !logins.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foundational::cloudtrail::testing::{run, stratus, types};

    fn login(time: &str, ip: &str) -> Value {
        let mut r = stratus("aws.initial-access.console-login-without-mfa")
            .into_iter()
            .find(|r| r["eventName"] == "ConsoleLogin")
            .unwrap();
        r["eventTime"] = time.into();
        r["sourceIPAddress"] = ip.into();
        r
    }

    #[test]
    fn one_real_sign_in_is_quiet_two_far_apart_networks_at_once_are_not() {
        let real = stratus("aws.initial-access.console-login-without-mfa");
        assert!(run(&mut ConsoleLogins::default(), &real).is_empty());
        let occ = run(
            &mut ConsoleLogins::default(),
            &[
                login("2024-01-01T10:00:00Z", "198.51.100.10"),
                login("2024-01-01T10:05:00Z", "198.51.100.20"),
                login("2024-01-01T10:06:00Z", "203.0.113.5"),
            ],
        );
        assert_eq!(
            types(&occ),
            ["UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B"]
        );
        let info = occ[0].details.service.additional_info_entries();
        assert_eq!(info["otherLogins"].as_array().unwrap().len(), 2);
        // An hour apart: a trip, not a stolen session.
        let far = run(
            &mut ConsoleLogins::default(),
            &[
                login("2024-01-01T10:00:00Z", "198.51.100.10"),
                login("2024-01-01T11:00:00Z", "203.0.113.5"),
            ],
        );
        assert!(far.is_empty());
    }

    #[test]
    fn a_late_sign_in_within_the_window_still_meets_its_partner() {
        let mut d = ConsoleLogins::default();
        let occ = run(
            &mut d,
            &[
                login("2024-01-01T10:10:00Z", "203.0.113.5"),
                login("2024-01-01T10:00:00Z", "198.51.100.10"),
            ],
        );
        assert_eq!(occ.len(), 1);
        assert_eq!(
            d.recent.values().map(Vec::len).sum::<usize>(),
            2,
            "kept while they can still meet"
        );
        let scope = crate::findings::Scope::new("1", "r", "d");
        let (intel, settings) = (
            crate::intel::IntelIndex::default(),
            crate::foundational::Settings::default(),
        );
        let ctx = LogContext {
            intel: &intel,
            scope: &scope,
            settings: &settings,
        };
        let after = crate::findings::time::parse_millis("2024-01-01T10:26:00Z").unwrap();
        d.on_time(after, &ctx, &mut Vec::new());
        assert!(
            d.recent.is_empty(),
            "dropped once the watermark is a window past them"
        );
    }
}
