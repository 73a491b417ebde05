//! The stage with a real findings store (SQLite file), a real batch log, the real runtime engine
//! and the real foundational engine: persistence across a restart, and a log finding that
//! arrives before the runtime event it needs.

use std::path::PathBuf;

use ward_proto::prost::Message;
use ward_proto::v1::{self as pb, event::Kind};

use super::*;
use crate::detect::offline::Setup;
use crate::detect::{Engine, EngineConfig, HostIdentity};
use crate::event::{DnsQuery, Origin};
use crate::findings::Scope;
use crate::findings::time::format_millis;
use crate::foundational::engine::FoundationalEngine;
use crate::ingest::store::{BatchStore, FileLog, StoredBatch};
use crate::pipeline::state::{PipelineState, StoreState};
use crate::store::StoreConfig;

const AGENT: &str = "agent-1";
const INSTANCE: &str = "i-0123456789abcdef0";
const POOL: &str = "pool.supportxmr.com";
/// 2026-03-01T10:00:00Z
const T0: i64 = 1_772_359_200_000;

struct Fixture {
    dir: PathBuf,
    store: Store,
    log: PathBuf,
    log_len: u64,
    sequence: u64,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!(
            "ward-correlation-{name}-{}-{}",
            std::process::id(),
            T0
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("ward.db"), StoreConfig::default()).unwrap();
        Fixture {
            log: dir.join("ingest.log"),
            dir,
            store,
            log_len: 0,
            sequence: 0,
        }
    }

    fn stage(&self) -> Arc<CorrelationStage> {
        let mut correlate = CorrelateConfig::new(scope());
        correlate.activity.imds_endpoints = vec!["127.0.0.1:8099".parse().unwrap()];
        CorrelationStage::open(
            CorrelationConfig {
                correlate,
                hosts_file: None,
                log_path: self.log.clone(),
            },
            &self.store,
        )
        .unwrap()
    }

    /// Appends one batch with `events` to the log; returns its offset.
    fn append(&mut self, events: Vec<pb::Event>) -> u64 {
        let mut log = FileLog::new(&self.log);
        log.recover().unwrap();
        self.sequence += 1;
        let payload = pb::EventList { events }.encode_to_vec();
        log.append(&StoredBatch {
            agent_id: AGENT.into(),
            sequence: self.sequence,
            event_count: 1,
            compression: 0,
            payload: payload.into(),
            received_unix_nano: 0,
        })
        .unwrap();
        log.commit().unwrap();
        let offset = self.log_len;
        self.log_len = std::fs::metadata(&self.log).unwrap().len();
        offset
    }

    /// What the pipeline does with the batch at `offset`: engine, then the stage's commit.
    fn run_batch(&self, stage: &CorrelationStage, engine: &mut Engine, offset: u64) {
        let mut reader = LogReader::new(&self.log, offset);
        let (batch, end) = reader.next_batch(self.log_len).unwrap().unwrap();
        let mut input = RuntimeInput::default();
        let mut findings = Vec::new();
        for (i, wire) in decode_stored(&batch).unwrap().events.iter().enumerate() {
            let ev = convert::runtime_event(wire).unwrap();
            findings.extend(engine.process(&ev).into_iter().map(|e| e.finding));
            let origin = EventOrigin {
                offset,
                index: i as u32,
            };
            input.offer(AGENT, ev, origin);
        }
        let mut state = StoreState::new(self.store.clone());
        stage
            .commit_runtime(input, findings, end, |changed, ds| {
                state.commit(end, changed, ds)
            })
            .unwrap();
    }

    fn finding(&self, t: &str) -> Vec<Finding> {
        all_findings(&self.store)
            .unwrap()
            .into_iter()
            .filter(|f| f.finding_type_name == t)
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scope() -> Scope {
    Scope::new("123456789012", "eu-west-1", "ward")
}

fn hello() -> pb::HostIdentity {
    pb::HostIdentity {
        agent_id: AGENT.into(),
        hostname: "web-1".into(),
        instance_id: INSTANCE.into(),
        account_id: "123456789012".into(),
        region: "eu-west-1".into(),
        private_ips: vec!["10.0.1.5".into()],
        ..Default::default()
    }
}

fn runtime_engine() -> Engine {
    Setup {
        config: EngineConfig {
            scope: scope(),
            host: HostIdentity {
                instance_id: INSTANCE.into(),
                agent_id: Some(AGENT.into()),
                hostname: Some("web-1".into()),
            },
            ..EngineConfig::default()
        },
        ..Setup::default()
    }
    .build()
    .unwrap()
}

/// The miner's lookup of the pool, as the agent sends it.
fn pool_query(at_ms: i64) -> pb::Event {
    pb::Event {
        time_unix_nano: at_ms as u64 * 1_000_000,
        process: Some(pb::Process {
            pid: 4242,
            ppid: 4000,
            start_time_unix_nano: (T0 as u64 - 60_000) * 1_000_000,
            name: "xmrig".into(),
            executable: "/tmp/.x/xmrig".into(),
            args: vec!["/tmp/.x/xmrig".into(), "-o".into(), format!("{POOL}:443")],
            ..Default::default()
        }),
        kind: Some(Kind::Dns(pb::DnsEvent::default())),
        details_json: format!(
            r#"{{"dns":{{"id":7,"questions":[{{"name":"{POOL}","type":"A","class":"IN"}}],"transport":"udp"}}}}"#
        ),
        ..Default::default()
    }
}

fn foundational_engine() -> FoundationalEngine {
    #[derive(clap::Parser)]
    struct Defaults {
        #[command(flatten)]
        detection: crate::foundational::scan::DetectionArgs,
    }
    use clap::Parser;
    let mut d = Defaults::try_parse_from(["test"]).unwrap().detection;
    d.account_id = "123456789012".into();
    d.engine(Some("eu-west-1")).unwrap()
}

/// The Resolver's record of the pool lookup through the foundational engine and the stage.
fn resolver_log(
    stage: &CorrelationStage,
    store: &Store,
    engine: &mut FoundationalEngine,
    at_ms: i64,
) {
    let text = format!(
        r#"{{"version":"1.100000","account_id":"123456789012","region":"eu-west-1","vpc_id":"vpc-1",
        "query_timestamp":"{}","query_name":"{POOL}.","query_type":"A","query_class":"IN","rcode":"NOERROR",
        "answers":[],"srcaddr":"10.0.1.5","srcport":"40123","transport":"UDP","srcids":{{"instance":"{INSTANCE}"}}}}"#,
        format_millis(at_ms)
    );
    let q: DnsQuery = serde_json::from_str(&text).unwrap();
    let event = Event::new(
        Origin {
            object: "resolver.log",
            line: 1,
            index: None,
        },
        Record::Dns(&q),
    );
    let mut input = CloudInput::default();
    input.push(&event, engine.process(&event));
    stage
        .commit_cloud(input, |findings, detector_state| {
            store.commit(crate::store::WriteBatch {
                findings,
                detector_state,
                ..Default::default()
            })
        })
        .unwrap();
}

#[test]
fn a_restart_between_a_runtime_event_and_its_log_twin_still_links_them() {
    let mut fx = Fixture::new("restart");
    let stage = fx.stage();
    stage.hello(AGENT, &hello(), T0 - 60_000);
    let mut engine = runtime_engine();
    let offset = fx.append(vec![pool_query(T0)]);
    fx.run_batch(&stage, &mut engine, offset);
    let runtime = fx.finding("CryptoCurrency:Runtime/BitcoinTool.B!DNS");
    assert_eq!(runtime.len(), 1);
    let runtime_id = runtime[0].id.clone();
    drop(stage);

    // A new stage on the same store and log: state restored, runtime index replayed.
    let stage = fx.stage();
    resolver_log(&stage, &fx.store, &mut foundational_engine(), T0 + 40);
    let logs = fx.finding("CryptoCurrency:EC2/BitcoinTool.B!DNS");
    assert_eq!(logs.len(), 1, "{logs:#?}");
    let log = &logs[0];
    let ward = log.service.ward_details().unwrap();
    assert!(log.service.archived, "the twin is not a second alert");
    assert_eq!(ward.duplicate_of.as_deref(), Some(runtime_id.as_str()));
    assert_eq!(
        ward.process.as_ref().and_then(|p| p.pid),
        Some(4242),
        "the process came from the replayed log"
    );
    let runtime = &fx.finding("CryptoCurrency:Runtime/BitcoinTool.B!DNS")[0];
    assert!(!runtime.service.archived);
    assert_eq!(
        runtime.service.ward_details().unwrap().linked_finding_ids,
        std::slice::from_ref(&log.id)
    );
}

#[test]
fn a_log_finding_that_arrives_before_its_runtime_event_gets_the_process_later() {
    let mut fx = Fixture::new("late");
    let stage = fx.stage();
    stage.hello(AGENT, &hello(), T0 - 60_000);
    // The Resolver log is read first (an agent's spooled backlog arrives later).
    resolver_log(&stage, &fx.store, &mut foundational_engine(), T0 + 40);
    let log = &fx.finding("CryptoCurrency:EC2/BitcoinTool.B!DNS")[0];
    assert!(log.service.runtime_details.is_none(), "no process yet");
    let log_id = log.id.clone();
    // The waiting finding survives a restart too.
    drop(stage);
    let stage = fx.stage();

    let mut engine = runtime_engine();
    let offset = fx.append(vec![pool_query(T0)]);
    fx.run_batch(&stage, &mut engine, offset);
    let log = &fx.finding("CryptoCurrency:EC2/BitcoinTool.B!DNS")[0];
    assert_eq!(log.id, log_id);
    let ward = log.service.ward_details().unwrap();
    assert_eq!(ward.process.as_ref().and_then(|p| p.pid), Some(4242));
    assert!(!log.service.archived, "the first to arrive is the alert");
    // The runtime finding arrived second: it is the archived duplicate.
    let runtime = &fx.finding("CryptoCurrency:Runtime/BitcoinTool.B!DNS")[0];
    let runtime_ward = runtime.service.ward_details().unwrap();
    assert!(runtime.service.archived);
    assert_eq!(runtime_ward.duplicate_of.as_deref(), Some(log_id.as_str()));
}

#[test]
fn a_log_finding_stops_waiting_once_the_host_stream_passes_its_window() {
    let mut fx = Fixture::new("expire");
    let stage = fx.stage();
    stage.hello(AGENT, &hello(), T0 - 60_000);
    resolver_log(&stage, &fx.store, &mut foundational_engine(), T0 + 40);
    let mut engine = runtime_engine();
    // The pool query comes 10 minutes later than the logged one: outside the DNS slack.
    let offset = fx.append(vec![pool_query(T0 + 600_000)]);
    fx.run_batch(&stage, &mut engine, offset);
    let log = &fx.finding("CryptoCurrency:EC2/BitcoinTool.B!DNS")[0];
    assert!(
        log.service.runtime_details.is_none(),
        "a query outside the window is not this finding's process"
    );
    let inner = stage.lock();
    assert!(
        inner.correlator.state().pending_count() == 0,
        "the host's stream passed the window: the finding no longer waits"
    );
}
