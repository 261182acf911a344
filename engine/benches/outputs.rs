//! Output benchmarks (`cargo bench -p engine --bench outputs`), printed as one table of medians:
//!
//! - plugin HTTP route throughput and latency: the `api` test plugin's read route
//!   `GET /plugins/api/state` (fresh Wasm instance per request, three reads from a RocksDB
//!   snapshot), served by the engine's route layer on axum, against a native axum handler
//!   returning the same bytes, in the same run and on the same runtime; a keep-alive HTTP/1.1
//!   load generator with 8 connections (std threads), req/s and p50/p99 latency, ratio to native;
//! - outbox drain to a local RabbitMQ broker with publisher confirms (100,000 messages committed
//!   in 100 blocks, legacy topology, quorum queue), msgs/s, ratio to raw lapin publishing the
//!   same bodies with the same confirm window (no outbox) in the same run;
//! - block-mined-to-message-published latency at the tip: a real regtest node and a real
//!   `engine run` process with the `emit` plugin and the RabbitMQ sink at the default poll
//!   interval; `generatetoaddress 1` → the block's `btc_info_queue` message consumed, p50/p90.
//!
//! The broker parts print SKIP when RabbitMQ is not installed (`bash scripts/install-deps.sh`).

#[path = "common/http_load.rs"]
mod http_load;
#[path = "../tests/testing/mod.rs"]
mod testing;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::routing::get;
use axum::Router;
use engine::live::Live;
use engine::metrics::Metrics;
use engine::routes::RouteTable;
use engine::runner::PluginRunner;
use engine::store::Store;
use engine::wasm::{CallBudget, Limits, WasmHost};

const CONNECTIONS: usize = 8;
const ROUND: Duration = Duration::from_secs(3);
const ROUNDS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Drives `path` with CONNECTIONS keep-alive connections for ROUND: (req/s, p50, p99).
fn load(port: u16, path: &str) -> (f64, Duration, Duration) {
    http_load::load(port, &vec![path.to_string(); CONNECTIONS], ROUND)
}

fn route_bench(rows: &mut Vec<String>) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let store = Store::open(&tmp.path().join("state"))?;
    let host = WasmHost::new(&tmp.path().join("cache"), Limits::default())?;
    let mut runner = PluginRunner::start(&host, &store, "api", &engine::testing::test_plugin("api"), "", 0)?;
    let mut src = engine::testing::chain(20, 7);
    engine::follower::catch_up(&mut src, &mut runner, 0)?;
    let metrics = Arc::new(Metrics::new());
    let outbound = engine::call_context::Outbound {
        plugin: "api".into(),
        http_allow: vec![],
        bitcoind_allow: vec![],
        bitcoind: None,
        timeout: Duration::from_secs(1),
    };
    let budget = CallBudget { fuel: 1_000_000_000, timeout: Duration::from_secs(2) };
    let live =
        Arc::new(Live::new("api", runner.serving(), budget, budget, outbound, Arc::new(metrics.plugin("api")), 16));
    let table = Arc::new(RouteTable { lives: vec![live.clone()], metrics });

    // The bytes the plugin answers, served natively for the baseline.
    let serving = live.serving();
    let route = serving.manifest.routes.iter().find(|r| r.path == "/state").unwrap().clone();
    let req = engine::wasm::HttpRequest {
        method: "GET".into(),
        route: "/state".into(),
        path: "/plugins/api/state".into(),
        ..Default::default()
    };
    let bytes = engine::routes::run(&live, &serving, &route, &req).map_err(|e| anyhow::anyhow!("{e:?}"))?.body;
    println!("route body ({} bytes): {}", bytes.len(), String::from_utf8_lossy(&bytes));

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let plugin_app = Router::new().fallback(engine::routes::serve).with_state(table);
    let native_bytes = bytes.clone();
    let native_app = Router::new().route(
        "/plugins/api/state",
        get(move || {
            let b = native_bytes.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], b) }
        }),
    );
    let (pl, nl) = rt.block_on(async {
        (
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        )
    });
    let (pp, np) = (pl.local_addr()?.port(), nl.local_addr()?.port());
    rt.spawn(async move { axum::serve(pl, plugin_app).await });
    rt.spawn(async move { axum::serve(nl, native_app).await });

    let mut plugin = Vec::new();
    let mut native = Vec::new();
    for _ in 0..ROUNDS {
        native.push(load(np, "/plugins/api/state"));
        plugin.push(load(pp, "/plugins/api/state"));
    }
    let med = |v: &[(f64, Duration, Duration)]| {
        (
            median(v.iter().map(|x| x.0).collect()),
            median(v.iter().map(|x| x.1.as_secs_f64() * 1e3).collect()),
            median(v.iter().map(|x| x.2.as_secs_f64() * 1e3).collect()),
        )
    };
    let (pr, p50, p99) = med(&plugin);
    let (nr, n50, n99) = med(&native);
    rows.push(format!(
        "| plugin route GET /plugins/api/state | {pr:>9.0} req/s | p50 {p50:.2} ms, p99 {p99:.2} ms | {:.2} of native | >= 10,000 req/s, p99 < 10 ms: {} |",
        pr / nr,
        if pr >= 10_000.0 && p99 < 10.0 { "met" } else { "MISSED" }
    ));
    rows.push(format!("| native axum, same bytes | {nr:>9.0} req/s | p50 {n50:.2} ms, p99 {n99:.2} ms | 1.00 | |"));
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

fn main() -> Result<()> {
    let mut rows = vec![
        "| benchmark (median of rounds) | rate | latency | ratio | target |".to_string(),
        "|---|---|---|---|---|".to_string(),
    ];
    route_bench(&mut rows)?;
    for r in &rows {
        println!("{r}");
    }
    broker_benches(&mut rows)?;
    println!();
    for r in rows {
        println!("{r}");
    }
    Ok(())
}

const DRAIN_BLOCKS: u32 = 100;
const DRAIN_PER_BLOCK: usize = 1000;
const WINDOW: usize = 4096;
const LATENCY_SAMPLES: usize = 30;

/// A legacy ActiveStakingEvent body (~600 bytes), unique per (block, index).
fn body(h: u32, i: usize) -> Vec<u8> {
    format!(
        "{{\"event_type\":1,\"staking_tx_hash_hex\":\"{h:056x}{i:08x}\",\"staker_pk_hex\":\"{h:064x}\",\
         \"finality_provider_pk_hex\":\"{i:064x}\",\"staking_value\":{},\"staking_start_height\":{h},\
         \"staking_start_timestamp\":1700000000,\"staking_timelock\":150,\"staking_output_index\":0,\
         \"staking_tx_hex\":\"{}\",\"is_overflow\":false}}",
        h as u64 * 1000 + i as u64,
        "02".repeat(120)
    )
    .into_bytes()
}

/// Raw lapin: the same bodies, the same confirm window, no outbox. msgs/s.
fn raw_lapin(url: &str, queue: &str) -> Result<f64> {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
        let ch = conn.create_channel().await?;
        engine::outbox::rabbitmq::declare_queue(&ch, queue, "quorum").await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        let bodies: Vec<Vec<u8>> =
            (0..DRAIN_BLOCKS).flat_map(|h| (0..DRAIN_PER_BLOCK).map(move |i| body(h, i))).collect();
        let t0 = Instant::now();
        let mut inflight = std::collections::VecDeque::new();
        for b in &bodies {
            if inflight.len() >= WINDOW {
                let c: lapin::PublisherConfirm = inflight.pop_front().unwrap();
                anyhow::ensure!(c.await?.is_ack(), "nack");
            }
            let props = lapin::BasicProperties::default().with_content_type("text/plain".into()).with_delivery_mode(2);
            let opts = BasicPublishOptions { mandatory: true, ..Default::default() };
            inflight.push_back(ch.basic_publish("".into(), queue.into(), opts, b, props).await?);
        }
        for c in inflight {
            anyhow::ensure!(c.await?.is_ack(), "nack");
        }
        let rate = bodies.len() as f64 / t0.elapsed().as_secs_f64();
        ch.queue_delete(queue.into(), Default::default()).await?;
        Ok(rate)
    })
}

/// The engine's outbox: commit the bodies in blocks, then drain them with the rabbitmq sink.
fn outbox_drain(url: &str, queue: &str) -> Result<f64> {
    let tmp = tempfile::tempdir()?;
    let store = Store::open(&tmp.path().join("state"))?;
    let ns = store.plugin("bench");
    let mut src = engine::testing::chain(DRAIN_BLOCKS, 99);
    let mut parent = [0u8; 32];
    for h in 0..DRAIN_BLOCKS {
        use bitcoin::hashes::Hash;
        let hash = engine::source::BlockSource::hash_at(&mut src, h)?.unwrap().to_byte_array();
        let mut tx = ns.begin_block(engine::plugin_api::BlockRef { height: h, hash }, parent)?;
        for i in 0..DRAIN_PER_BLOCK {
            engine::plugin_api::BlockContext::publish(&mut tx, queue, &body(h, i)).map_err(anyhow::Error::msg)?;
        }
        tx.commit()?;
        parent = hash;
    }
    let n = (DRAIN_BLOCKS as usize * DRAIN_PER_BLOCK) as f64;
    let sink = engine::outbox::SinkConfig::Rabbitmq {
        url: url.to_string(),
        queue_type: "quorum".into(),
        max_in_flight: WINDOW,
    };
    let t0 = Instant::now();
    let publisher = engine::outbox::Publisher::start(&store, vec![sink], vec![queue.to_string()])?;
    while publisher.depth() > 0 {
        anyhow::ensure!(t0.elapsed() < Duration::from_secs(300), "the outbox did not drain in 300 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    let rate = n / t0.elapsed().as_secs_f64();
    publisher.shutdown(Duration::ZERO);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
        let ch = conn.create_channel().await?;
        ch.queue_delete(queue.into(), Default::default()).await?;
        anyhow::Ok(())
    })?;
    Ok(rate)
}

/// Mined-to-published latency at the tip with a real node and `engine run` at the default poll.
fn latency(url: &str) -> Result<(Vec<Duration>, u64)> {
    use testing::{Engine, Node, PluginDef};
    let node = Node::start();
    node.generate(1);
    let sink = format!("[[sink]]\ntype = \"rabbitmq\"\nurl = \"{url}\"\n");
    let mut e = Engine::configure_with(&node, &[PluginDef::test("emit").with("config = { per_block = 1 }")], &sink);
    // The default poll interval: drop the test helper's fast poll.
    let text = std::fs::read_to_string(&e.runtime)?;
    std::fs::write(&e.runtime, text.replace("poll_interval_ms = 50\n", ""))?;
    let poll = engine::runtime::Runtime::load(&e.runtime)?.engine.poll_interval_ms;
    e.spawn();
    e.wait_synced(&node, "emit");

    // A consumer on btc_info_queue reporting (arrival, height).
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, u64)>();
    let url2 = url.to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let consumer = std::thread::spawn(move || -> Result<()> {
        use futures_lite::StreamExt;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async move {
            let conn = lapin::Connection::connect(&url2, lapin::ConnectionProperties::default()).await?;
            let ch = conn.create_channel().await?;
            let mut c = ch
                .basic_consume(
                    "btc_info_queue".into(),
                    "bench".into(),
                    lapin::options::BasicConsumeOptions { no_ack: true, ..Default::default() },
                    Default::default(),
                )
                .await?;
            while !stop2.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(200), c.next()).await {
                    Ok(Some(Ok(d))) => {
                        let v: serde_json::Value = serde_json::from_slice(&d.data)?;
                        let _ = tx.send((Instant::now(), v["height"].as_u64().unwrap_or(0)));
                    }
                    Ok(_) => break,
                    Err(_) => {}
                }
            }
            anyhow::Ok(())
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    while rx.try_recv().is_ok() {}
    let mut lat = Vec::new();
    let mut rng = testing::Rng::new("latency");
    for _ in 0..LATENCY_SAMPLES {
        // Land at a random point of the poll cycle.
        std::thread::sleep(Duration::from_millis(rng.range(0, poll)));
        node.generate(1);
        let t0 = Instant::now();
        let h = node.height() as u64;
        loop {
            let (at, got) = rx.recv_timeout(Duration::from_secs(30))?;
            if got == h {
                lat.push(at.saturating_duration_since(t0));
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = consumer.join();
    e.stop();
    Ok((lat, poll))
}

fn broker_benches(rows: &mut Vec<String>) -> Result<()> {
    if !std::path::Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server").is_file() {
        rows.push(
            "| outbox drain, latency | SKIP: RabbitMQ not installed (bash scripts/install-deps.sh) | | | |".into(),
        );
        return Ok(());
    }
    let broker = testing::rabbit::Broker::start();
    let url = broker.url();
    let (mut raw, mut out) = (Vec::new(), Vec::new());
    for r in 0..ROUNDS {
        raw.push(raw_lapin(&url, &format!("raw_bench_{r}"))?);
        out.push(outbox_drain(&url, &format!("drain_bench_{r}"))?);
        eprintln!("round {r}: raw lapin {:.0} msgs/s, outbox {:.0} msgs/s", raw[r], out[r]);
    }
    let (raw, out) = (median(raw), median(out));
    rows.push(format!(
        "| outbox drain to RabbitMQ, confirms, quorum queue ({} msgs) | {out:>9.0} msgs/s | | {:.2} of raw lapin | >= 20,000 msgs/s: {} |",
        DRAIN_BLOCKS as usize * DRAIN_PER_BLOCK,
        out / raw,
        if out >= 20_000.0 { "met" } else { "MISSED" }
    ));
    rows.push(format!("| raw lapin, same bodies and confirm window | {raw:>9.0} msgs/s | | 1.00 | |"));
    let (mut lat, poll) = latency(&url)?;
    let p50 = percentile(&mut lat, 0.5).as_secs_f64() * 1e3;
    let p90 = percentile(&mut lat, 0.9).as_secs_f64() * 1e3;
    rows.push(format!(
        "| block mined → message published and consumed (poll {poll} ms, {LATENCY_SAMPLES} blocks) | | p50 {p50:.1} ms, p90 {p90:.1} ms | {:.2} of the poll interval | p50 < 150 ms: {} |",
        p50 / poll as f64,
        if p50 < 150.0 { "met" } else { "MISSED" }
    ));
    Ok(())
}
