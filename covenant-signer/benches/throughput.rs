//! Throughput of the running signer with a real wallet behind it.
//!
//! A `regtest-node` full node with stakes on it, a `regtest-node -walletonly` offline wallet with
//! the covenant keys, and the `covenant-signer` binary between them. Measured:
//!
//! * signatures/s with 1 client (sequential) and with 8 concurrent clients, median of the rounds;
//! * median request latency (client side);
//! * the share of the signer's request time spent in `walletprocesspsbt` (from its histograms);
//! * the §8.2 checks alone, in process over an in-memory chain (the floor without any RPC).
//!
//! `cargo bench -p covenant-signer --bench throughput` (env: `ROUNDS`, `REQUESTS` per round).

#[path = "../tests/testing/mod.rs"]
mod testing;

use std::sync::Arc;
use std::time::Instant;

use covenant_signer::checks::{check_signing_request, Policy};
use covenant_signer::request::parse_request;
use phase1_primitives::bitcoin::secp256k1::PublicKey;
use phase1_primitives::GlobalParams;
use serde_json::{json, Value};
use testing::*;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return 0.0;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

struct Round {
    sigs_per_s: f64,
    latencies_ms: Vec<f64>,
    wallet_share: f64,
}

/// `clients` threads share `requests` requests; returns throughput, latencies and wallet share.
fn round(signer: &SignerProcess, bodies: &Arc<Vec<String>>, requests: usize, clients: usize) -> Round {
    let m0 = signer.metrics();
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let bodies = bodies.clone();
            let url = signer.url();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut i = c;
                while i < requests {
                    let body = &bodies[i % bodies.len()];
                    let t = Instant::now();
                    let r = minreq::post(&url).with_body(body.as_str()).with_timeout(60).send().expect("POST");
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    assert_eq!(r.status_code, 200, "{}", r.as_str().unwrap_or(""));
                    i += clients;
                }
                lat
            })
        })
        .collect();
    let mut latencies_ms = Vec::new();
    for h in handles {
        latencies_ms.extend(h.join().unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let m1 = signer.metrics();
    let d = |name: &str| metric_value(&m1, name) - metric_value(&m0, name);
    let wallet_share = d("signer_wallet_duration_seconds_sum") / d("signer_request_duration_seconds_sum").max(1e-9);
    Round { sigs_per_s: requests as f64 / elapsed, latencies_ms, wallet_share }
}

fn main() {
    let rounds = env_usize("ROUNDS", 5);
    let requests = env_usize("REQUESTS", 200);
    eprintln!("setting up: full node, offline wallet, stakes ...");
    let node = Node::start();
    node.call("createwallet", json!(["staker"]));
    let addr = node.wallet_call("staker", "getnewaddress", json!([]));
    node.call("generatetoaddress", json!([130, addr]));
    let wallet_node = Node::start_offline_wallet();
    wallet_node.call("createwallet", json!(["covenant"]));
    let cov: Vec<PublicKey> = (0..3).map(|_| wallet_node.new_wallet_key("covenant")).collect();
    let params_json = json!({ "versions": [version_json(0, 1, &cov, 2, 2)] }).to_string();
    let params = GlobalParams::parse(&params_json).unwrap();
    let v0 = &params.versions[0];
    let stakes: Vec<Stake> = (0..16).map(|_| Stake::send(&node, "staker", v0, 150_000_000, 500)).collect();
    node.generate(2);
    // every (stake, member) pair: 48 distinct requests
    let requests_json: Vec<Value> = stakes
        .iter()
        .flat_map(|s| {
            let ub = s.unbonding_tx(v0);
            cov.iter().map(move |k| s.request(&ub, k)).collect::<Vec<_>>()
        })
        .collect();
    let bodies = Arc::new(requests_json.iter().map(|v| v.to_string()).collect::<Vec<_>>());

    let wallet_url = wallet_node.wallet_url("covenant");
    let signer = SignerProcess::start(|p, m| signer_config(&node, &wallet_url, p, m, ""), &params_json);
    // warm-up
    round(&signer, &bodies, 20, 1);

    let mut table = Vec::new();
    for clients in [1usize, 8] {
        let mut tput = Vec::new();
        let mut lat = Vec::new();
        let mut share = Vec::new();
        for _ in 0..rounds {
            let r = round(&signer, &bodies, requests, clients);
            tput.push(r.sigs_per_s);
            lat.extend(r.latencies_ms);
            share.push(r.wallet_share);
        }
        let mut lat99 = lat.clone();
        lat99.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let p99 = lat99[((lat99.len() as f64) * 0.99) as usize - 1];
        table.push((
            if clients == 1 { "sequential (1 client)".to_string() } else { format!("{clients} concurrent clients") },
            median(&mut tput),
            median(&mut lat),
            p99,
            median(&mut share) * 100.0,
        ));
    }

    // the checks alone: in process, over an in-memory chain serving the same stakes
    let mut chain = MemChain::default();
    for s in &stakes {
        chain.confirm(&s.tx, 200);
    }
    chain.tip = 201;
    let decoded: Vec<_> = bodies.iter().map(|b| parse_request(b.as_bytes()).unwrap()).collect();
    let mut check_rates = Vec::new();
    for _ in 0..rounds {
        let n = 2000;
        let t = Instant::now();
        for i in 0..n {
            check_signing_request(&decoded[i % decoded.len()], &params, &Policy::default(), &chain).unwrap();
        }
        check_rates.push(n as f64 / t.elapsed().as_secs_f64());
    }
    let checks_rate = median(&mut check_rates);

    println!();
    println!(
        "covenant-signer throughput ({} rounds x {requests} requests, 48 distinct requests, offline wallet: {})",
        rounds,
        if wallet_node.wallet_only { "regtest-node -walletonly" } else { "regtest-node wallet" }
    );
    println!(
        "| {:<24} | {:>12} | {:>16} | {:>12} | {:>22} |",
        "load", "sigs/s (med)", "latency med (ms)", "p99 (ms)", "walletprocesspsbt share"
    );
    println!("|{:-<26}|{:-<14}|{:-<18}|{:-<14}|{:-<24}|", "", "", "", "", "");
    for (load, tput, lat, p99, share) in &table {
        println!("| {load:<24} | {tput:>12.0} | {lat:>16.2} | {p99:>12.2} | {:>21.0}% |", share);
    }
    println!(
        "| {:<24} | {:>12.0} | {:>16.3} | {:>12} | {:>22} |",
        "checks only (no RPC)",
        checks_rate,
        1000.0 / checks_rate,
        "-",
        "-"
    );
}
