//! The collector's normalised event model, shared by every cloud-log source.
//!
//! Each source (CloudTrail, VPC Flow Logs, Route 53 Resolver query logs) has its own typed record
//! in a submodule; [`Event`] ties a record to the [`Origin`] it was read from so that every
//! finding, error and checkpoint can point back to an object key / file and a line or record index.
//!
//! Records borrow from the reader's buffer (`'a`): parsing allocates almost nothing, and a
//! consumer that needs to keep a record past the callback copies what it needs.

pub mod cloudtrail;
pub mod dns;
pub mod flow;
pub mod json;
pub mod jsonread;
pub mod net;
pub mod time;

use std::cell::OnceCell;
use std::fmt;
use std::net::IpAddr;

pub use cloudtrail::CloudTrailRecord;
pub use dns::DnsQuery;
pub use flow::FlowRecord;

/// Which cloud-log source a record or a counter belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    CloudTrail,
    VpcFlow,
    Dns,
}

impl SourceKind {
    pub const ALL: [SourceKind; 3] = [SourceKind::CloudTrail, SourceKind::VpcFlow, SourceKind::Dns];

    /// The source a [`SourceKind::name`] names.
    pub fn from_name(name: &str) -> Option<SourceKind> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Stable lower-case name used in CLI output, checkpoints and summaries.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::CloudTrail => "cloudtrail",
            SourceKind::VpcFlow => "vpc-flow",
            SourceKind::Dns => "dns",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a record came from: the object (file path or `s3://bucket/key`), the 1-based line on
/// which its top-level JSON value / text line starts, and, for records inside an array
/// (`{"Records":[...]}`, a bare array, a CloudWatch `logEvents` batch), the 0-based index in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin<'a> {
    pub object: &'a str,
    pub line: u64,
    pub index: Option<u64>,
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.object, self.line)?;
        if let Some(i) = self.index {
            write!(f, " record #{i}")?;
        }
        Ok(())
    }
}

/// One normalised record, as handed to detections.
#[derive(Clone, Copy, Debug)]
pub enum Record<'a> {
    CloudTrail(&'a CloudTrailRecord<'a>),
    Flow(&'a FlowRecord<'a>),
    Dns(&'a DnsQuery<'a>),
}

/// A record plus its provenance.
#[derive(Clone, Debug)]
pub struct Event<'a> {
    pub origin: Origin<'a>,
    pub record: Record<'a>,
    /// [`Event::time_ms`], parsed on first use: the engine and several detectors ask for it, and
    /// a CloudTrail `eventTime` is text.
    time: OnceCell<Option<i64>>,
    /// [`Event::caller_ip`], parsed on first use: most CloudTrail detectors look at it.
    caller_ip: OnceCell<Option<IpAddr>>,
    /// [`Event::cloudtrail_call`], classified on first use: every CloudTrail detector asks.
    call: OnceCell<Option<cloudtrail::Call>>,
}

impl<'a> Event<'a> {
    pub fn new(origin: Origin<'a>, record: Record<'a>) -> Self {
        Self {
            origin,
            record,
            time: OnceCell::new(),
            caller_ip: OnceCell::new(),
            call: OnceCell::new(),
        }
    }

    pub fn source(&self) -> SourceKind {
        match self.record {
            Record::CloudTrail(_) => SourceKind::CloudTrail,
            Record::Flow(_) => SourceKind::VpcFlow,
            Record::Dns(_) => SourceKind::Dns,
        }
    }

    /// Event time in Unix milliseconds: CloudTrail `eventTime`, flow `start`, DNS `query_timestamp`.
    pub fn time_ms(&self) -> Option<i64> {
        *self.time.get_or_init(|| match self.record {
            Record::CloudTrail(r) => r.time_ms(),
            Record::Flow(r) => r.start.map(|s| s as i64 * 1000),
            Record::Dns(r) => r.time_ms(),
        })
    }

    /// A CloudTrail record's `sourceIPAddress` when it is an address (see
    /// [`CloudTrailRecord::source_ip`]); `None` for other sources.
    pub fn caller_ip(&self) -> Option<IpAddr> {
        *self.caller_ip.get_or_init(|| match self.record {
            Record::CloudTrail(r) => r.source_ip(),
            Record::Flow(_) | Record::Dns(_) => None,
        })
    }

    /// A CloudTrail record's service, API and the other facts every CloudTrail detector checks
    /// first (see [`cloudtrail::Call`]); `None` for other sources.
    pub fn cloudtrail_call(&self) -> Option<cloudtrail::Call> {
        *self.call.get_or_init(|| match self.record {
            Record::CloudTrail(r) => Some(cloudtrail::Call::of(r)),
            Record::Flow(_) | Record::Dns(_) => None,
        })
    }
}
