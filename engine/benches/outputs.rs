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

#[path = "../tests/testing/mod.rs"]
#[allow(dead_code)]
mod testing;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
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

/// One keep-alive HTTP/1.1 GET; returns the body length.
fn get_once(reader: &mut BufReader<TcpStream>, path: &str) -> std::io::Result<usize> {
    reader.get_mut().write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes())?;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if !line.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("status line {line:?}")));
    }
    let mut len = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    Ok(len)
}

/// Drives `path` with CONNECTIONS keep-alive connections for ROUND: (req/s, p50, p99).
fn load(port: u16, path: &str) -> (f64, Duration, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let stop = stop.clone();
            let path = path.to_string();
            std::thread::spawn(move || {
                let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_nodelay(true).unwrap();
                let mut r = BufReader::new(s);
                let mut lat = Vec::with_capacity(100_000);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    get_once(&mut r, &path).unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(ROUND);
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let rate = all.len() as f64 / t0.elapsed().as_secs_f64();
    (rate, percentile(&mut all, 0.5), percentile(&mut all, 0.99))
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
    let live = Arc::new(Live::new("api", runner.serving(), budget, budget, outbound, Arc::new(metrics.plugin("api")), 16));
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
    broker_benches(&mut rows)?;
    println!();
    for r in rows {
        println!("{r}");
    }
    Ok(())
}

fn broker_benches(rows: &mut Vec<String>) -> Result<()> {
    rows.push("| outbox drain / latency | SKIP: not written yet | | | |".into());
    Ok(())
}
