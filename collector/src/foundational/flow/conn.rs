//! A flow record seen from the instance: which side is local, who opened the connection, how much
//! went which way.
//!
//! A flow-log record is per network interface, per 5-tuple, per aggregation interval; `srcaddr` /
//! `dstaddr` are the packet's, so the interface's own address is either one. Which one:
//! 1. `flow-direction` (v5 formats) says it: ingress → destination, egress → source;
//! 2. else when exactly one side is publicly routable, the other one is the interface's;
//! 3. else the interface's address learned from earlier records: the address common to every record
//!    of an interface (two records with different peers settle it). Until then internal-only
//!    records of that interface are not attributed.
//!
//! Who opened the connection: with `tcp-flags`, a record carrying SYN without ACK is from the
//! opener and one carrying SYN-ACK is from the responder; otherwise the side with the higher
//! (ephemeral) port is taken as the client. Equal ports or port-less protocols leave it unknown.

use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv4Addr};

use foldhash::HashMap;

use super::finding::Ec2Target;
use crate::event::flow::{FlowAction, FlowDirection, FlowRecord, LogStatus};
use crate::foundational::StateKey;
use crate::intel::is_publicly_routable;

/// Who opened the connection a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// The remote side: an inbound connection.
    Remote,
    /// The instance: an outbound connection.
    Local,
    Unknown,
}

/// One record from the instance's point of view (IPv4 only: GuardDuty's flow findings do not
/// cover IPv6).
#[derive(Debug, Clone, Copy)]
pub struct Conn<'r> {
    pub target: Ec2Target<'r>,
    pub local: Ipv4Addr,
    pub remote: Ipv4Addr,
    pub local_port: u16,
    pub remote_port: u16,
    pub protocol: u8,
    pub opener: Opener,
    /// The packets of this record went from the instance to the remote side.
    pub sending: bool,
    pub packets: u64,
    pub bytes: u64,
    /// Unix seconds of the first packet.
    pub start: u64,
    pub accepted: bool,
    pub remote_public: bool,
}

/// What is known of an interface's own address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Learned {
    Known(Ipv4Addr),
    /// Both addresses of the first internal-only record seen; the next record with a different
    /// peer settles it.
    Either(Ipv4Addr, Ipv4Addr),
}

/// Per-interface address learning (step 3 of the module doc), and where each interface's instance
/// state is kept, so a record costs one keyed lookup of its interface. Bounded: at most
/// `MAX_INTERFACES` entries; beyond that, new interfaces are not learned (their internal-only
/// records stay unattributed) rather than growing without limit.
#[derive(Debug, Default)]
pub struct Interfaces {
    learned: HashMap<StateKey, Interface>,
}

/// One interface's entry.
#[derive(Debug)]
pub struct Interface {
    /// `None` only transiently, while the record that created the entry is being viewed.
    learned: Option<Learned>,
    /// Where the detector keeps the state of this interface's instance; the detector fills it in.
    pub slots: InstanceSlots,
}

/// Indexes of instance state the detector cached on an interface (`NO_SLOT`: not known yet).
#[derive(Debug, Clone, Copy)]
pub struct InstanceSlots {
    /// The state kept under the interface's own key: records naming only an interface or only an
    /// instance. That key never changes, so neither does this slot.
    pub own: u32,
    /// The state of the instance the interface was last seen on, for records naming both (an
    /// interface can move to another instance: the detector checks the instance's key).
    pub other: u32,
}

pub const NO_SLOT: u32 = u32::MAX;

const MAX_INTERFACES: usize = 1 << 20;

fn v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    }
}

impl Interfaces {
    /// The record seen from its interface, with the interface's entry (`None` when the table is
    /// full), or `None` for records without traffic (NODATA, SKIPDATA), IPv6, records naming
    /// neither an instance nor an interface, and internal-only records of interfaces whose
    /// address is not known yet.
    // Inlined: out of line, the ~140-byte `Conn` was returned through a copy on every record.
    #[inline]
    pub fn view<'r>(&mut self, r: &FlowRecord<'r>) -> Option<(Conn<'r>, Option<&mut Interface>)> {
        if matches!(r.log_status, Some(LogStatus::NoData | LogStatus::SkipData)) {
            return None;
        }
        let src = v4(r.srcaddr?)?;
        let dst = v4(r.dstaddr?)?;
        let key = r.interface_id.or(r.instance_id)?;
        // Every path below writes the interface's entry, so it is looked up (or made) once here.
        // Keys are interface and instance ids, short enough to be built without allocating.
        let room = self.learned.len() < MAX_INTERFACES;
        let mut iface = match self.learned.entry(StateKey::from(key)) {
            Entry::Occupied(o) => Some(o.into_mut()),
            Entry::Vacant(v) if room => Some(v.insert(Interface {
                learned: None,
                slots: InstanceSlots {
                    own: NO_SLOT,
                    other: NO_SLOT,
                },
            })),
            // Not learned: what this record would teach is dropped.
            Entry::Vacant(_) => None,
        };
        let mut unlearned = None;
        let learned = match &mut iface {
            Some(i) => &mut i.learned,
            None => &mut unlearned,
        };
        let local_is_src = match r.flow_direction {
            Some(FlowDirection::Egress) => true,
            Some(FlowDirection::Ingress) => false,
            None => match (is_publicly_routable(src), is_publicly_routable(dst)) {
                (false, true) => true,
                (true, false) => false,
                _ => resolve(learned, src, dst)?,
            },
        };
        let (local, remote) = if local_is_src { (src, dst) } else { (dst, src) };
        *learned = Some(Learned::Known(local));
        let (sport, dport) = (r.srcport.unwrap_or(0), r.dstport.unwrap_or(0));
        let (local_port, remote_port) = if local_is_src {
            (sport, dport)
        } else {
            (dport, sport)
        };
        let protocol = r.protocol.unwrap_or(0);
        let src_opened = opened_by_source(protocol, r.tcp_flags, sport, dport);
        let opener = match src_opened {
            Some(true) if local_is_src => Opener::Local,
            Some(false) if !local_is_src => Opener::Local,
            Some(_) => Opener::Remote,
            None => Opener::Unknown,
        };
        let conn = Conn {
            target: Ec2Target {
                instance_id: r.instance_id,
                eni: r.interface_id,
                vpc_id: r.vpc_id,
                subnet_id: r.subnet_id,
                local_ip: Some(IpAddr::V4(local)),
            },
            local,
            remote,
            local_port,
            remote_port,
            protocol,
            opener,
            sending: local_is_src,
            packets: r.packets.unwrap_or(0),
            bytes: r.bytes.unwrap_or(0),
            start: r.start.or(r.end).unwrap_or(0),
            accepted: r.action != Some(FlowAction::Reject),
            remote_public: is_publicly_routable(remote),
        };
        Some((conn, iface))
    }
}

/// Whether the interface's address is the source, from what earlier records taught (`learned`),
/// which this record updates.
fn resolve(learned: &mut Option<Learned>, src: Ipv4Addr, dst: Ipv4Addr) -> Option<bool> {
    match *learned {
        Some(Learned::Known(a)) if a == src => Some(true),
        Some(Learned::Known(a)) if a == dst => Some(false),
        Some(Learned::Known(_)) | None => {
            *learned = Some(Learned::Either(src, dst));
            None
        }
        Some(Learned::Either(a, b)) => {
            let in_record = |x: Ipv4Addr| x == src || x == dst;
            match (in_record(a), in_record(b)) {
                (true, false) => {
                    *learned = Some(Learned::Known(a));
                    Some(a == src)
                }
                (false, true) => {
                    *learned = Some(Learned::Known(b));
                    Some(b == src)
                }
                // Same pair again: still ambiguous.
                (true, true) => None,
                // No overlap: the interface changed address.
                (false, false) => {
                    *learned = Some(Learned::Either(src, dst));
                    None
                }
            }
        }
    }
}

/// Whether the record's source opened the connection (see the module doc), if it can be told.
fn opened_by_source(protocol: u8, tcp_flags: Option<u16>, sport: u16, dport: u16) -> Option<bool> {
    const SYN: u16 = 2;
    const SYN_ACK: u16 = 18;
    if protocol == 6
        && let Some(flags) = tcp_flags
    {
        if flags & SYN_ACK == SYN_ACK {
            return Some(false);
        }
        if flags & SYN == SYN {
            return Some(true);
        }
    }
    if sport == 0 || dport == 0 || sport == dport {
        return None;
    }
    Some(sport > dport)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::flow::FlowFormat;
    use crate::logs::vpcflow::parse_line;

    fn view(ifaces: &mut Interfaces, line: &str) -> Option<(String, String, Opener, bool)> {
        let rec = parse_line(line, &FlowFormat::v2_default()).unwrap();
        ifaces.view(&rec).map(|(c, _)| {
            (
                format!("{}:{}", c.local, c.local_port),
                format!("{}:{}", c.remote, c.remote_port),
                c.opener,
                c.sending,
            )
        })
    }

    #[test]
    fn public_peer_decides_the_local_side_and_ports_the_opener() {
        let mut i = Interfaces::default();
        assert_eq!(
            view(
                &mut i,
                "2 1 eni-a 198.51.100.7 10.0.0.5 40001 22 6 5 300 1000 1060 ACCEPT OK"
            ),
            Some((
                "10.0.0.5:22".into(),
                "198.51.100.7:40001".into(),
                Opener::Remote,
                false
            ))
        );
        assert_eq!(
            view(
                &mut i,
                "2 1 eni-a 10.0.0.5 198.51.100.7 22 40001 6 5 300 1000 1060 ACCEPT OK"
            )
            .map(|v| (v.2, v.3)),
            Some((Opener::Remote, true)),
            "the response of an inbound connection"
        );
        assert_eq!(
            view(&mut i, "2 1 eni-a - - - - - - - 1000 1060 - NODATA"),
            None
        );
    }

    #[test]
    fn internal_records_wait_until_the_interface_address_is_learned() {
        let mut i = Interfaces::default();
        let a = "2 1 eni-b 10.0.0.9 10.0.0.5 40001 22 6 5 300 1000 1060 ACCEPT OK";
        assert_eq!(
            view(&mut i, a),
            None,
            "either address could be the interface's"
        );
        assert_eq!(view(&mut i, a), None, "same pair: still ambiguous");
        let b = view(
            &mut i,
            "2 1 eni-b 10.0.0.5 10.0.1.1 50000 443 6 5 300 1000 1060 ACCEPT OK",
        )
        .unwrap();
        assert_eq!(b.0, "10.0.0.5:50000");
        assert_eq!(b.2, Opener::Local);
        assert_eq!(view(&mut i, a).unwrap().0, "10.0.0.5:22", "now attributed");
    }

    #[test]
    fn tcp_flags_beat_the_port_heuristic() {
        assert_eq!(opened_by_source(6, Some(2), 1000, 50000), Some(true));
        assert_eq!(opened_by_source(6, Some(19), 50000, 1000), Some(false));
        assert_eq!(opened_by_source(6, Some(0), 50000, 1000), Some(true));
        assert_eq!(opened_by_source(1, None, 0, 0), None);
    }
}
