//! Suppression rules: GuardDuty filter criteria that auto-archive matching findings.
