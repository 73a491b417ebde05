//! Cloud-log readers (CloudTrail, VPC Flow Logs, Route 53 Resolver query logs).
