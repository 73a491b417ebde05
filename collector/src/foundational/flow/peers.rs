//! What an instance did with one remote address in the current windows.
//!
//! This is the state most flow records touch, and a fleet's worth of it does not stay in cache
//! (the streamed log text evicts it), so it is kept small: what ordinary traffic updates is inline
//! (128 bytes, 176 before the split), and what few peers need (threat-list hits, port scans, floods
//! of unusual protocols) is behind one pointer, allocated for the peers that need it.

use foldhash::HashMap;

/// An instance's peers, by remote address (IPv4 as a `u32`).
#[derive(Debug, Default)]
pub struct PeerMap {
    peers: HashMap<u32, Peer>,
    /// The sweep time (`FlowDetector::swept_at`) `peers` was last cleared for: until the next
    /// sweep, nothing more in it can have expired.
    swept: u64,
}

impl PeerMap {
    /// The state for `remote`, made if new. A full map is first cleared of the peers whose
    /// windows (brute force, scan and DoS of `window_secs`; volume hour) ended before the last
    /// sweep (at `swept`, Unix seconds), once per sweep, instead of growing.
    pub fn of(&mut self, remote: u32, window_secs: u64, swept: u64) -> &mut Peer {
        let peers = &mut self.peers;
        if self.swept < swept && peers.len() == peers.capacity() && !peers.contains_key(&remote) {
            peers.retain(|_, p| {
                (p.window + 1) * window_secs >= swept || (p.hour + 1) * 3600 >= swept
            });
            self.swept = swept;
        }
        peers.entry(remote).or_default()
    }

    /// Peers kept, and the room the map has.
    #[cfg(test)]
    pub fn kept(&self) -> (usize, usize) {
        (self.peers.len(), self.peers.capacity())
    }
}

/// What the instance did with one remote address in the current windows.
#[derive(Debug, Default)]
pub struct Peer {
    /// Brute-force findings reported this window, one bit per `brute` counter.
    pub brute_fired: u8,
    /// Denial-of-service findings reported this window, one bit per class.
    pub dos_fired: u8,
    pub volume_fired: bool,
    /// The remote address is on no threat list of the intel index this stamp was made from
    /// (`instance::unlisted_stamp` of its generation; 0: not checked): the usual record of a
    /// known peer skips the lookup, which missed the cache on every record.
    pub unlisted: u32,
    /// Current brute-force / scan / DoS window (index of `window_secs` periods).
    pub window: u64,
    /// Current hour (Unix seconds / 3600) of the volume analysis and the bytes sent in it.
    pub hour: u64,
    pub hour_bytes: u64,
    /// Connections per brute-force service: `[service][0 = inbound, 1 = outbound]`.
    pub brute: [[u32; 2]; 3],
    rare: Option<Box<RarePeer>>,
    /// Packets and bytes per denial-of-service class, but the last (unusual protocols: in
    /// `rare`).
    dos: [(u64, u64); DOS_INLINE],
}

const _: () = assert!(size_of::<Peer>() == 128);

/// DoS classes counted in [`Peer`] itself; the others are in [`RarePeer`].
const DOS_INLINE: usize = 4;

/// What few peers need.
#[derive(Debug, Default)]
struct RarePeer {
    /// Window + 1 of the last threat-list occurrence (0 = none): one per window, not per record.
    intel_window: u64,
    scan_ports: Vec<u16>,
    scan_fired: bool,
    dos_unusual: (u64, u64),
}

impl Peer {
    /// Moves to `window` if it is newer (the window counters start over; the threat-list and
    /// volume state do not); false for a record older than the current window.
    pub fn roll(&mut self, window: u64) -> bool {
        if window > self.window {
            self.window = window;
            self.brute = [[0; 2]; 3];
            self.brute_fired = 0;
            self.dos = [(0, 0); DOS_INLINE];
            self.dos_fired = 0;
            if let Some(rare) = &mut self.rare {
                rare.scan_ports.clear();
                rare.scan_fired = false;
                rare.dos_unusual = (0, 0);
            }
        }
        window == self.window
    }

    /// Window + 1 of the last threat-list occurrence, 0 if none.
    pub fn intel_window(&self) -> u64 {
        self.rare.as_ref().map_or(0, |r| r.intel_window)
    }

    pub fn set_intel_window(&mut self, value: u64) {
        self.rare().intel_window = value;
    }

    /// Counts a probe of `port` in the current window; the number of distinct ports when it
    /// first reaches `threshold`.
    pub fn scan_port(&mut self, port: u16, threshold: usize) -> Option<usize> {
        let rare = self.rare();
        if rare.scan_fired || rare.scan_ports.contains(&port) {
            return None;
        }
        rare.scan_ports.push(port);
        rare.scan_fired = rare.scan_ports.len() >= threshold;
        rare.scan_fired.then_some(rare.scan_ports.len())
    }

    /// Adds a record's packets and bytes to DoS class `class`; the window's totals.
    pub fn add_dos(&mut self, class: usize, packets: u64, bytes: u64) -> (u64, u64) {
        let counts = self.dos_mut(class);
        counts.0 += packets;
        counts.1 += bytes;
        *counts
    }

    /// Packets and bytes of DoS class `class` in the current window.
    fn dos_mut(&mut self, class: usize) -> &mut (u64, u64) {
        if class < DOS_INLINE {
            &mut self.dos[class]
        } else {
            &mut self.rare().dos_unusual
        }
    }

    fn rare(&mut self) -> &mut RarePeer {
        self.rare.get_or_insert_with(Box::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_window_starts_the_counters_over_but_not_intel_or_volume() {
        let mut p = Peer::default();
        assert!(p.roll(10));
        p.brute[0][1] = 7;
        p.brute_fired = 1;
        p.dos_mut(0).0 = 100;
        p.dos_fired = 1;
        p.hour = 3;
        p.hour_bytes = 99;
        p.volume_fired = true;
        p.set_intel_window(11);
        assert_eq!(p.scan_port(80, 2), None);
        assert_eq!(p.scan_port(80, 2), None, "the same port again");
        assert_eq!(p.scan_port(81, 2), Some(2));
        assert_eq!(p.scan_port(82, 2), None, "reported once");
        p.dos_mut(4).0 = 5;
        assert!(!p.roll(9), "an older record is too late");
        assert_eq!(p.dos_mut(0).0, 100);
        assert!(p.roll(11));
        assert_eq!((p.brute, p.brute_fired, p.dos_fired), ([[0; 2]; 3], 0, 0));
        assert_eq!((*p.dos_mut(0), *p.dos_mut(4)), ((0, 0), (0, 0)));
        assert_eq!((p.hour, p.hour_bytes, p.volume_fired), (3, 99, true));
        assert_eq!(p.intel_window(), 11);
        assert_eq!(p.scan_port(82, 2), None, "the scan starts over");
        assert_eq!(p.scan_port(80, 2), Some(2));
    }

    #[test]
    fn rare_state_is_allocated_only_by_what_needs_it() {
        let mut p = Peer::default();
        p.roll(1);
        for class in 0..DOS_INLINE {
            p.dos_mut(class).0 += 1;
        }
        p.brute[2][0] += 1;
        assert_eq!(p.intel_window(), 0);
        assert!(p.rare.is_none());
        // An unusual protocol after many ordinary records.
        p.dos_mut(4).1 += 40;
        assert!(p.rare.is_some());
        assert_eq!(*p.dos_mut(4), (0, 40));
        assert_eq!(*p.dos_mut(3), (1, 0));
    }
}
