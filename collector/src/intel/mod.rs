//! Trusted and threat lists (IP and entity lists in GuardDuty's six formats).
