//! Trusted and threat lists (GuardDuty's IP lists and entity lists in its six formats), the
//! lookup structures behind them, and Ward's built-in intel.
//!
//! Flow: a file ([`source`]) is parsed by its format ([`formats`]) into entries with line numbers;
//! an [`IntelList`] indexes them ([`ipset`], [`domainset`]) and reports rejected lines; an
//! [`IntelIndex`] combines the active lists and answers lookups with trusted-over-threat
//! precedence.

pub mod builtin;
pub mod classify;
pub mod domainset;
pub mod formats;
pub mod index;
pub mod indicator;
pub mod ipset;
pub mod list;
pub mod source;

pub use domainset::{DomainMatch, DomainQuery, DomainSet, has_ascii_uppercase};
pub use formats::{Entry, LineError, ListFormat, ParsedList};
pub use index::{IntelIndex, Verdict};
pub use indicator::{Indicator, is_publicly_routable};
pub use ipset::{IpSet, IpSetBuilder};
pub use list::{IntelList, ListKind, ListRole, LoadReport};
pub use source::{ListSource, LoadError, MAX_LIST_FILE_BYTES, WatchedList};
