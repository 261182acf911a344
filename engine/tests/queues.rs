//! Acceptance tests of the outbox against a real RabbitMQ broker: a `regtest-node` process, an
//! `engine run` process with the `emit` test plugin (Phase-1's legacy queue format) and two sinks
//! (`rabbitmq` and `jsonl`), and a private RabbitMQ node per test (see `testing/rabbit.rs`).
//!
//! Needs RabbitMQ (`bash scripts/install-deps.sh`). Run:
//! `cargo test --release -p engine --test queues`.

mod testing;

use lapin::types::AMQPValue;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};
use testing::rabbit::{self, Broker, Msg};
use testing::*;

const ACTIVE: &str = "active_staking_queue";
const BTC_INFO: &str = "btc_info_queue";
const DLX: &str = "common_dlx";
/// Active staking events per block (the emit plugin adds one BtcInfoEvent per block).
const PER_BLOCK: u64 = 100;
/// Blocks mined; the plugin starts at height 1, so it indexes exactly heights 1..=BLOCKS.
const BLOCKS: u32 = 100;
const START_HEIGHT: u32 = 1;
/// How long the outbox may take to drain once the plugin is at the tip.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// The legacy consumer's view: staking-queue-client v0.4.1's Go structs (spec section 5.2),
// which have no `schema_version`. Unknown fields are refused, every field is required.

/// `client.ActiveStakingEvent` (v0.4.1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ActiveStakingEvent {
    event_type: i64,
    staking_tx_hash_hex: String,
    staker_pk_hex: String,
    finality_provider_pk_hex: String,
    staking_value: u64,
    staking_start_height: u64,
    staking_start_timestamp: i64,
    staking_timelock: u64,
    staking_output_index: u64,
    staking_tx_hex: String,
    is_overflow: bool,
}

/// `client.BtcInfoEvent` (v0.4.1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BtcInfoEvent {
    event_type: i64,
    height: u64,
    confirmed_tvl: u64,
    unconfirmed_tvl: u64,
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

// ---------------------------------------------------------------------------------------------
// Setup and expectations

/// The emit plugin from height 1 with 100 active events per block.
fn emit_plugin() -> PluginDef {
    let mut p = PluginDef::test("emit").with(&format!("config = {{ per_block = {PER_BLOCK} }}"));
    p.start_height = START_HEIGHT;
    p
}

fn sinks(broker: &Broker, jsonl: &Path) -> String {
    format!(
        "\n[[sink]]\ntype = \"rabbitmq\"\nurl = \"{}\"\n\n[[sink]]\ntype = \"jsonl\"\ndir = \"{}\"\n",
        broker.url(),
        jsonl.display()
    )
}

/// A broker, a node and a configured (not started) engine with both sinks; the broker boots
/// while the node starts and the plugin builds.
fn setup() -> (Broker, Node, Engine, tempfile::TempDir) {
    let booting = std::thread::spawn(Broker::start);
    let node = Node::start();
    let plugin = emit_plugin();
    let broker = booting.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
    let jsonl = tempfile::Builder::new().prefix("acceptance-jsonl").tempdir().unwrap();
    let e = Engine::configure_with(&node, &[plugin], &sinks(&broker, jsonl.path()));
    (broker, node, e, jsonl)
}

/// One indexed block as the node has it.
struct Block {
    height: u32,
    hash: String,
    time: i64,
}

fn blocks(node: &Node) -> Vec<Block> {
    assert_eq!(node.height(), BLOCKS);
    (START_HEIGHT..=BLOCKS)
        .map(|height| {
            let hash = node.hash_at(height);
            let time = node.call("getblockheader", json!([hash, true]))["time"].as_i64().unwrap();
            Block { height, hash, time }
        })
        .collect()
}

/// The expected message ids per queue in block order: `emit:<height>:<hash>:<n>` where `n` is
/// the plugin's running message number (it counts every message of every block: 100 active
/// events, then the BtcInfoEvent).
fn expected_ids(blocks: &[Block]) -> (Vec<String>, Vec<String>) {
    let mut active = Vec::new();
    let mut info = Vec::new();
    for (k, b) in blocks.iter().enumerate() {
        let base = k as u64 * (PER_BLOCK + 1);
        for i in 0..PER_BLOCK {
            active.push(format!("emit:{}:{}:{}", b.height, b.hash, base + i));
        }
        info.push(format!("emit:{}:{}:{}", b.height, b.hash, base + PER_BLOCK));
    }
    (active, info)
}

/// `engine_outbox_depth` from `GET /metrics`.
fn outbox_depth(e: &Engine) -> Option<u64> {
    let r = minreq::get(format!("http://127.0.0.1:{}/metrics", e.port)).with_timeout(10).send().ok()?;
    if r.status_code != 200 {
        return None;
    }
    let text = r.as_str().ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("engine_outbox_depth "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// `engine_sink_unconfirmed_publishes` of the rabbitmq sink from `GET /metrics`.
fn rabbit_in_flight(e: &Engine) -> Option<u64> {
    let r = minreq::get(format!("http://127.0.0.1:{}/metrics", e.port)).with_timeout(10).send().ok()?;
    let text = r.as_str().ok()?;
    text.lines()
        .filter(|l| l.starts_with("engine_sink_unconfirmed_publishes{") && l.contains("sink=\"rabbitmq"))
        .find_map(|l| l.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Waits (up to `timeout`) until the rabbitmq sink has publishes awaiting their confirm, so that
/// what comes next hits messages in flight; says whether it saw any.
fn wait_in_flight(e: &Engine, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if rabbit_in_flight(e).is_some_and(|n| n > 0) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// Waits until the plugin is at the node's tip and every sink took every message.
fn wait_drained(e: &mut Engine, node: &Node) {
    let t = Instant::now();
    e.wait_synced(node, "emit");
    e.wait_for("the outbox to drain (engine_outbox_depth 0)", DRAIN_TIMEOUT, |e| outbox_depth(e).filter(|d| *d == 0));
    eprintln!("synced and drained {:?} after the last block", t.elapsed());
}

fn ids(msgs: &[Msg]) -> Vec<String> {
    msgs.iter().map(|m| m.message_id.clone().expect("every message has a message_id")).collect()
}

/// The AMQP properties the legacy consumers expect (plus the id).
fn assert_properties(queue: &str, msgs: &[Msg]) {
    let want_headers: BTreeMap<String, AMQPValue> =
        [("x-processing-attempts".to_string(), AMQPValue::LongInt(0))].into_iter().collect();
    for m in msgs {
        let id = m.message_id.as_deref().unwrap_or("<none>");
        assert_eq!(m.content_type.as_deref(), Some("text/plain"), "{queue} {id}: content_type");
        assert_eq!(m.delivery_mode, Some(2), "{queue} {id}: delivery_mode (persistent)");
        assert_eq!(m.headers, want_headers, "{queue} {id}: headers (x-processing-attempts must be int32 0)");
    }
}

/// First mismatch between two id sequences, for readable failures.
fn first_difference(got: &[String], want: &[String]) -> String {
    let i = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
    format!(
        "{} ids, {} expected; first difference at index {i}: got {:?}, expected {:?}",
        got.len(),
        want.len(),
        got.get(i),
        want.get(i)
    )
}

fn assert_no_duplicates(queue: &str, ids: &[String]) {
    let mut seen = HashSet::new();
    let dups: Vec<&String> = ids.iter().filter(|id| !seen.insert(*id)).collect();
    assert!(dups.is_empty(), "{queue}: {} duplicate message ids, e.g. {:?}", dups.len(), &dups[..dups.len().min(5)]);
}

/// Decodes every body with the legacy structs and checks the values against the blocks: the
/// active events of block k are events (height, 0..100); each BtcInfoEvent carries the block's
/// height and the running sum of the non-overflow staking values received so far.
fn assert_legacy_bodies(blocks: &[Block], active: &[Msg], info: &[Msg]) {
    assert_eq!(active.len(), blocks.len() * PER_BLOCK as usize);
    assert_eq!(info.len(), blocks.len());
    let mut tvl = 0u64;
    for (k, b) in blocks.iter().enumerate() {
        for i in 0..PER_BLOCK {
            let m = &active[k * PER_BLOCK as usize + i as usize];
            let what = format!("{ACTIVE} {:?}", m.message_id);
            let raw: Value = serde_json::from_slice(&m.body).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
            assert!(raw.get("schema_version").is_none(), "{what}: carries schema_version: {}", m.body_str());
            let ev: ActiveStakingEvent = serde_json::from_slice(&m.body)
                .unwrap_or_else(|e| panic!("{what}: not a v0.4.1 ActiveStakingEvent ({e}): {}", m.body_str()));
            assert_eq!(ev.event_type, 1, "{what}");
            for (f, v) in [
                ("staking_tx_hash_hex", &ev.staking_tx_hash_hex),
                ("staker_pk_hex", &ev.staker_pk_hex),
                ("finality_provider_pk_hex", &ev.finality_provider_pk_hex),
            ] {
                assert!(is_hex64(v), "{what}: {f} is not 64 lowercase hex: {v:?}");
            }
            assert_eq!(ev.staking_start_height, b.height as u64, "{what}: staking_start_height");
            assert_eq!(ev.staking_start_timestamp, b.time, "{what}: staking_start_timestamp (block header time)");
            assert_eq!(ev.staking_value, b.height as u64 * 1000 + i, "{what}: staking_value");
            assert_eq!(ev.is_overflow, i % 2 == 1, "{what}: is_overflow");
            if !ev.is_overflow {
                tvl += ev.staking_value;
            }
        }
        let m = &info[k];
        let what = format!("{BTC_INFO} {:?}", m.message_id);
        let raw: Value = serde_json::from_slice(&m.body).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
        assert!(raw.get("schema_version").is_none(), "{what}: carries schema_version: {}", m.body_str());
        let ev: BtcInfoEvent = serde_json::from_slice(&m.body)
            .unwrap_or_else(|e| panic!("{what}: not a v0.4.1 BtcInfoEvent ({e}): {}", m.body_str()));
        assert_eq!(ev.event_type, 6, "{what}");
        assert_eq!(ev.height, b.height as u64, "{what}: height");
        assert_eq!(ev.confirmed_tvl, tvl, "{what}: confirmed_tvl is not the running non-overflow sum");
        assert_eq!(ev.unconfirmed_tvl, 0, "{what}: unconfirmed_tvl");
    }
}

/// The lines of `<dir>/<queue>.jsonl`: (message id, body), checking `queue` and rising `seq`.
fn jsonl_lines(dir: &Path, queue: &str) -> Vec<(String, Vec<u8>)> {
    let path = dir.join(format!("{queue}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut last_seq = None;
    text.lines()
        .map(|l| {
            let line: engine::outbox::jsonl::Line =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: bad line {l:?}: {e}", path.display()));
            assert_eq!(line.queue, queue, "{}: line of another queue", path.display());
            assert!(last_seq.is_none_or(|s| line.seq > s), "{}: seq {} after {last_seq:?}", path.display(), line.seq);
            last_seq = Some(line.seq);
            let body = line.body.unwrap_or_else(|| panic!("{}: a non-UTF-8 body: {l}", path.display()));
            (line.message_id, body.into_bytes())
        })
        .collect()
}

/// The jsonl file of `queue` holds exactly `want` (id, body) in order, each once.
fn assert_jsonl_matches(dir: &Path, queue: &str, want: &[Msg]) {
    let lines = jsonl_lines(dir, queue);
    let got_ids: Vec<String> = lines.iter().map(|(id, _)| id.clone()).collect();
    assert_no_duplicates(&format!("{queue}.jsonl"), &got_ids);
    let want_ids = ids(want);
    assert!(got_ids == want_ids, "{queue}.jsonl vs RabbitMQ: {}", first_difference(&got_ids, &want_ids));
    for ((id, body), m) in lines.iter().zip(want) {
        assert!(
            body == &m.body,
            "{queue}.jsonl: {id}: body differs from RabbitMQ's\n{}\n{}",
            String::from_utf8_lossy(body),
            m.body_str()
        );
    }
}

/// Phase-1's topology (spec 5.3) on the broker, checked over AMQP and with rabbitmqctl.
fn assert_legacy_topology(broker: &Broker) {
    let url = broker.url();
    assert!(rabbit::passive_queue(&url, "no_such_queue").is_err(), "a passive declare of a missing queue succeeded");
    rabbit::passive_exchange(&url, DLX).unwrap_or_else(|e| panic!("exchange {DLX} is missing: {e}"));
    rabbit::declare_exchange(&url, DLX, true).unwrap_or_else(|e| panic!("{DLX} is not a durable direct exchange: {e}"));
    for q in [ACTIVE, BTC_INFO] {
        let delay = format!("{q}_delay");
        let key = format!("{q}_routing_key");
        rabbit::passive_queue(&url, q).unwrap_or_else(|e| panic!("queue {q} is missing: {e}"));
        rabbit::passive_queue(&url, &delay).unwrap_or_else(|e| panic!("queue {delay} is missing: {e}"));
        // Redeclaring with the legacy arguments succeeds only if they are equivalent ...
        rabbit::declare_queue_with(
            &url,
            q,
            &[("x-queue-type", "quorum"), ("x-dead-letter-exchange", DLX), ("x-dead-letter-routing-key", &key)],
        )
        .unwrap_or_else(|e| panic!("{q} is not declared like Phase-1's main queue: {e}"));
        rabbit::declare_queue_with(
            &url,
            &delay,
            &[("x-queue-type", "quorum"), ("x-dead-letter-exchange", ""), ("x-dead-letter-routing-key", q)],
        )
        .unwrap_or_else(|e| panic!("{delay} is not declared like Phase-1's delay queue: {e}"));
        // ... and a classic declaration is refused (the queue is a quorum queue).
        let classic = rabbit::declare_queue_with(
            &url,
            q,
            &[("x-queue-type", "classic"), ("x-dead-letter-exchange", DLX), ("x-dead-letter-routing-key", &key)],
        );
        assert!(
            classic.as_ref().is_err_and(|e| e.contains("PRECONDITION_FAILED") || e.contains("inequivalent")),
            "{q}: declaring it as a classic queue was not refused: {classic:?}"
        );
    }
    // The broker's own listing: types, durability and the delay bindings.
    let queues: Value = serde_json::from_str(&broker.ctl(&[
        "list_queues",
        "name",
        "type",
        "durable",
        "arguments",
        "--formatter",
        "json",
    ]))
    .expect("rabbitmqctl list_queues JSON");
    let bindings: Value = serde_json::from_str(&broker.ctl(&[
        "list_bindings",
        "source_name",
        "destination_name",
        "routing_key",
        "--formatter",
        "json",
    ]))
    .expect("rabbitmqctl list_bindings JSON");
    for q in [ACTIVE, BTC_INFO] {
        for name in [q.to_string(), format!("{q}_delay")] {
            let row = queues
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == json!(name))
                .unwrap_or_else(|| panic!("rabbitmqctl list_queues does not list {name}: {queues}"));
            assert_eq!(row["type"], json!("quorum"), "{name}: {row}");
            assert_eq!(row["durable"], json!(true), "{name}: {row}");
        }
        let bound = bindings.as_array().unwrap().iter().any(|b| {
            b["source_name"] == json!(DLX)
                && b["destination_name"] == json!(format!("{q}_delay"))
                && b["routing_key"] == json!(format!("{q}_routing_key"))
        });
        assert!(bound, "{q}_delay is not bound to {DLX} with {q}_routing_key: {bindings}");
    }
}

/// The retry path the API uses: a copy published to `common_dlx` with `Q_routing_key` and a
/// per-message expiration lands in `Q_delay`, expires and dead-letters back to `Q`.
fn assert_retry_path(url: &str, queue: &str) {
    let body = br#"{"retry":"probe"}"#;
    let props = lapin::BasicProperties::default().with_expiration("1".into()).with_delivery_mode(2);
    rabbit::publish(url, DLX, &format!("{queue}_routing_key"), body, props)
        .unwrap_or_else(|e| panic!("publishing to {DLX} with {queue}_routing_key: {e}"));
    let back = wait_until(
        &format!("the probe to come back from {queue}_delay to {queue}"),
        Duration::from_secs(20),
        String::new,
        || rabbit::passive_queue(url, queue).ok().filter(|n| *n == 1),
    );
    assert_eq!(back, 1);
    let msgs = rabbit::drain(url, queue);
    assert_eq!(msgs.len(), 1, "{queue}: after the retry probe");
    assert_eq!(msgs[0].body, body.to_vec());
    assert_eq!(rabbit::passive_queue(url, &format!("{queue}_delay")), Ok(0));
}

// ---------------------------------------------------------------------------------------------

/// 100 blocks × (100 active events + 1 BtcInfoEvent) reach RabbitMQ exactly once each, in block
/// order, with the legacy properties and bodies; the jsonl sink holds the same, line for line.
#[test]
fn ten_thousand_messages_arrive_exactly_once_in_block_order() {
    let t0 = Instant::now();
    let (broker, node, mut e, jsonl) = setup();
    e.spawn();
    e.wait_ready();
    let mined = Instant::now();
    node.generate(BLOCKS);
    wait_drained(&mut e, &node);
    eprintln!("100 blocks mined, indexed and delivered to both sinks in {:?}", mined.elapsed());

    let url = broker.url();
    let t = Instant::now();
    let active = rabbit::drain(&url, ACTIVE);
    let info = rabbit::drain(&url, BTC_INFO);
    eprintln!("drained {} + {} messages in {:?}", active.len(), info.len(), t.elapsed());

    let blocks = blocks(&node);
    let (want_active, want_info) = expected_ids(&blocks);
    assert_eq!(want_active.len(), 10_000);
    for (queue, msgs, want) in [(ACTIVE, &active, &want_active), (BTC_INFO, &info, &want_info)] {
        let got = ids(msgs);
        assert_eq!(got.len(), want.len(), "{queue}: message count");
        assert_no_duplicates(queue, &got);
        assert!(&got == want, "{queue}: not exactly the expected ids in block order: {}", first_difference(&got, want));
        assert!(msgs.iter().all(|m| !m.redelivered), "{queue}: a message was redelivered");
        assert_properties(queue, msgs);
    }
    assert_legacy_bodies(&blocks, &active, &info);
    assert_jsonl_matches(jsonl.path(), ACTIVE, &active);
    assert_jsonl_matches(jsonl.path(), BTC_INFO, &info);

    assert_legacy_topology(&broker);
    assert_retry_path(&url, ACTIVE);
    e.stop();
    eprintln!("total {:?}", t0.elapsed());
}

/// Two broker restarts and two kill -9 of the engine while 100 blocks stream in: RabbitMQ gets
/// every message at least once (duplicates byte-identical, same id), in block order once
/// duplicates are dropped; the jsonl sink gets every message exactly once, in order.
#[test]
fn broker_restarts_and_kill9_lose_nothing_and_keep_ids() {
    let t0 = Instant::now();
    let mut rng = Rng::new("broker_restarts_and_kill9");
    let (mut broker, node, mut e, jsonl) = setup();
    e.spawn();
    e.wait_ready();
    let mut events = Vec::new();
    let note = |e: &Engine, what: &str, events: &mut Vec<String>| {
        let s = format!("{what} (outbox depth {:?})", outbox_depth(e));
        eprintln!("{s}");
        events.push(s);
    };
    for step in 0..10 {
        node.generate(BLOCKS / 10);
        eprintln!("tip {}", (step + 1) * BLOCKS / 10);
        match step {
            // Broker down while the step's messages are being published.
            1 => {
                let hit = wait_in_flight(&e, Duration::from_secs(10));
                note(&e, &format!("stopping the broker (publishes in flight: {hit})"), &mut events);
                broker.stop();
            }
            // This step's blocks were mined with the broker down.
            2 => {
                std::thread::sleep(Duration::from_millis(300));
                note(&e, "starting the broker", &mut events);
                broker.restart();
            }
            // kill -9 mid-delivery (the sink may first have to come out of its reconnect backoff).
            3 => {
                let hit = wait_in_flight(&e, Duration::from_secs(10));
                std::thread::sleep(Duration::from_millis(rng.range(0, 20)));
                note(&e, &format!("kill -9 of the engine (publishes in flight: {hit})"), &mut events);
                e.kill9();
                e.spawn();
            }
            // kill -9 mid-delivery, then the broker goes down before the engine is back.
            5 => {
                let hit = wait_in_flight(&e, Duration::from_secs(10));
                std::thread::sleep(Duration::from_millis(rng.range(0, 20)));
                note(
                    &e,
                    &format!("kill -9 of the engine, then stopping the broker (publishes in flight: {hit})"),
                    &mut events,
                );
                e.kill9();
                broker.stop();
                e.spawn();
            }
            6 => {
                std::thread::sleep(Duration::from_millis(300));
                note(&e, "starting the broker", &mut events);
                broker.restart();
            }
            _ => std::thread::sleep(Duration::from_millis(rng.range(50, 250))),
        }
    }
    wait_drained(&mut e, &node);

    let url = broker.url();
    let active = rabbit::drain(&url, ACTIVE);
    let info = rabbit::drain(&url, BTC_INFO);
    let blocks = blocks(&node);
    let (want_active, want_info) = expected_ids(&blocks);
    let mut dedup = BTreeMap::new();
    for (queue, msgs, want) in [(ACTIVE, &active, &want_active), (BTC_INFO, &info, &want_info)] {
        assert_properties(queue, msgs);
        let mut first: HashMap<String, &Msg> = HashMap::new();
        let mut unique: Vec<Msg> = Vec::new();
        let mut dups = 0;
        for m in msgs.iter() {
            let id = m.message_id.clone().expect("a message_id");
            match first.get(&id) {
                Some(f) => {
                    dups += 1;
                    assert!(
                        f.body == m.body,
                        "{queue}: duplicate {id} with a different body:\n{}\n{}",
                        f.body_str(),
                        m.body_str()
                    );
                }
                None => {
                    first.insert(id, m);
                    unique.push(m.clone());
                }
            }
        }
        let got = ids(&unique);
        let missing: Vec<&String> = want.iter().filter(|id| !first.contains_key(*id)).collect();
        assert!(
            missing.is_empty(),
            "{queue}: {} messages lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        assert!(
            &got == want,
            "{queue}: after dropping duplicates not the expected ids in block order: {}",
            first_difference(&got, want)
        );
        eprintln!("{queue}: {} deliveries, {} unique, {dups} duplicates", msgs.len(), unique.len());
        dedup.insert(queue, (unique, dups));
    }
    let (active_u, active_dups) = &dedup[ACTIVE];
    let (info_u, info_dups) = &dedup[BTC_INFO];
    assert_legacy_bodies(&blocks, active_u, info_u);
    assert_jsonl_matches(jsonl.path(), ACTIVE, active_u);
    assert_jsonl_matches(jsonl.path(), BTC_INFO, info_u);
    eprintln!("events: {events:#?}");
    eprintln!("RabbitMQ duplicates: {active_dups} on {ACTIVE}, {info_dups} on {BTC_INFO}; jsonl: none");
    e.stop();
    eprintln!("total {:?}", t0.elapsed());
}
