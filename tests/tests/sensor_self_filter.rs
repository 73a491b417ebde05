//! The kernel filters the agent's own activity by tgid: loaded in this test process with this process as
//! "the agent", a fork made here is not reported, while a second sensor without the filter sees it.

use std::process::Command;
use std::time::{Duration, Instant};

use aya::maps::{MapData, RingBuf};
use ward_agent::decode::{KernelEvent, decode};
use ward_agent::sensor::{Sensor, SensorConfig};
use ward_tests::can_load_ebpf;

fn forks_by(ring: &mut RingBuf<MapData>, parent: u32, window: Duration) -> Vec<u32> {
    let deadline = Instant::now() + window;
    let mut children = Vec::new();
    while Instant::now() < deadline {
        while let Some(item) = ring.next() {
            if let Ok(KernelEvent::Fork(f)) = decode(&item[..])
                && f.parent_tgid == parent
            {
                children.push(f.hdr.tgid);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    children
}

#[test]
fn agent_activity_is_filtered_in_the_kernel() {
    if !can_load_ebpf("agent_activity_is_filtered_in_the_kernel") {
        return;
    }
    let me = std::process::id();
    let mut as_agent = Sensor::load(SensorConfig {
        agent_tgid: me,
        ..SensorConfig::default()
    })
    .unwrap();
    let mut unfiltered = Sensor::load(SensorConfig {
        agent_tgid: 0,
        ..SensorConfig::default()
    })
    .unwrap();
    let (mut filtered_ring, mut open_ring) = (
        as_agent.take_ring().unwrap(),
        unfiltered.take_ring().unwrap(),
    );

    let child = Command::new("/bin/true").status().unwrap();
    assert!(child.success());
    let seen_unfiltered = forks_by(&mut open_ring, me, Duration::from_millis(300));
    let seen_filtered = forks_by(&mut filtered_ring, me, Duration::from_millis(300));
    assert!(
        !seen_unfiltered.is_empty(),
        "the unfiltered sensor must see this process fork"
    );
    assert!(
        seen_filtered.is_empty(),
        "the agent's own forks leaked: {seen_filtered:?}"
    );
    assert_eq!(as_agent.drops().unwrap().iter().sum::<u64>(), 0);
}
