//! GuardDuty-shaped findings: model, severity, aggregation.
