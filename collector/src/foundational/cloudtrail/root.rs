//! `Policy:IAMUser/RootCredentialUsage` (Low): any API call, console sign-in included, made with
//! the root user's credentials (`userIdentity.type = Root`), except calls an AWS service made on
//! its behalf (`invokedBy`, service events). Calls with short-term root credentials obtained through
//! `sts:AssumeRoot` (`sessionContext.assumedRoot = true`) raise
//! `Policy:IAMUser/ShortTermRootCredentialUsage` instead. Failed calls count: they were still made
//! with root credentials.

use super::{Identity, SOURCES, api_draft, record_call};
use crate::event::{Event, SourceKind};
use crate::findings::{FindingType, Occurrence};
use crate::foundational::{Calls, LogContext, LogDetector};

pub struct RootUsage;

impl LogDetector for RootUsage {
    fn name(&self) -> &'static str {
        "ct.root-credential-usage"
    }

    fn sources(&self) -> &'static [SourceKind] {
        SOURCES
    }

    fn calls(&self) -> Calls {
        Calls::Identity(Identity::Root)
    }

    fn on_event(&mut self, ev: &Event<'_>, ctx: &LogContext<'_>, out: &mut Vec<Occurrence>) {
        let Some((rec, call)) = record_call(ev) else {
            return;
        };
        if call.identity != Identity::Root || call.by_aws_service {
            return;
        }
        let Some(ui) = rec.user_identity.as_ref() else {
            return;
        };
        let short_term = ui
            .session_context
            .as_ref()
            .and_then(|s| s.assumed_root.as_ref())
            .and_then(|b| b.as_bool())
            == Some(true);
        let (t, what) = if short_term {
            (
                FindingType::PolicyIamUserShortTermRootCredentialUsage,
                "Short-term root credentials were used",
            )
        } else {
            (
                FindingType::PolicyIamUserRootCredentialUsage,
                "Root credentials were used",
            )
        };
        out.extend(api_draft(t, "ct.root-credential-usage", ev, rec, ctx, what).build());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foundational::cloudtrail::testing::{panther, run, types};

    #[test]
    fn root_calls_raise_and_service_or_user_calls_do_not() {
        let pos = [
            panther("AWS.Root.Activity", "Root Activity"),
            panther("AWS.Root.Activity", "Successful Root Login"),
        ];
        let occ = run(&mut RootUsage, &pos);
        assert_eq!(
            types(&occ),
            [
                "Policy:IAMUser/RootCredentialUsage",
                "Policy:IAMUser/RootCredentialUsage"
            ]
        );
        assert_eq!(
            occ[0]
                .details
                .resource
                .access_key_details
                .as_ref()
                .unwrap()
                .user_name
                .as_deref(),
            Some("Root")
        );
        let console = panther(
            "AWS.CloudTrail.RootAccessKeyCreated",
            "Root Access Key Created",
        );
        assert_eq!(
            types(&run(&mut RootUsage, &[console])),
            ["Policy:IAMUser/RootCredentialUsage"],
            "invokedBy signin.amazonaws.com is the root user in the console"
        );
        let neg = [panther("AWS.Root.Activity", "IAMUser Activity")];
        assert!(run(&mut RootUsage, &neg).is_empty());
        let mut assumed = panther("AWS.Root.Activity", "Root Activity");
        assumed["userIdentity"]["sessionContext"]["assumedRoot"] = "true".into();
        assert_eq!(
            types(&run(&mut RootUsage, &[assumed])),
            ["Policy:IAMUser/ShortTermRootCredentialUsage"]
        );
        let mut by_service = panther("AWS.Root.Activity", "Root Activity");
        by_service["userIdentity"]["invokedBy"] = "cloudformation.amazonaws.com".into();
        assert!(run(&mut RootUsage, &[by_service]).is_empty());
    }
}
