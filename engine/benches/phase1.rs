//! Phase-1 staking plugin benchmarks (`cargo bench -p engine --bench phase1`), one table of medians:
//!
//! - replay of mainnet-shaped blocks through the plugin in the engine: block 864790 (5,043
//!   transactions, 337 staking transactions) copied `REPLAY_BLOCKS` times — each copy's
//!   transactions re-serialized with their own lock time so every copy carries 337 new staking
//!   transactions — through `ReplaySource` → `catch_up` → `PluginRunner` → RocksDB with the real
//!   `bbn-1` parameters (depth 10: every block is summarized once as unconfirmed and applied once
//!   when confirmed), blocks/s and ratio to `deserialize` + txids of the same bytes (target >= 0.5);
//! - the same rules natively vs in Wasm: `apply_block` of block 864790 on empty state, the plugin
//!   crate called natively through `guest_sdk::testing::TestHost` vs the component through the
//!   engine's host (both with in-memory state), ms (target Wasm <= 1.5x native);
//! - `/v1/stats` and `/v1/delegation` through the engine's route layer with 100,000 delegations
//!   stored (100 blocks of 1,000 staking transactions indexed by the plugin), 8 keep-alive
//!   connections, req/s and p50/p99 (target >= 10,000 req/s, p99 < 10 ms).
//!
//! Without `../shared/research-data` the mainnet figures print SKIP. `PHASE1_BENCH=replay,native,api`
//! picks parts (default: all).

#[path = "common/http_load.rs"]
mod http_load;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use bitcoin::hashes::Hash;
use bitcoin::key::{Keypair, Secp256k1};
use bitcoin::secp256k1::SecretKey;
use bitcoin::{absolute, Amount, Block, BlockHash, OutPoint, Transaction, TxIn, TxOut, Witness};
use engine::follower;
use engine::live::Live;
use engine::metrics::Metrics;
use engine::routes::RouteTable;
use engine::runner::PluginRunner;
use engine::source::{MemorySource, ReplaySource};
use engine::store::Store;
use engine::wasm::{BlockInfo, CallBudget, DecodedBlock, Limits, WasmHost};
use phase1_primitives::{GlobalParams, StakingInfo, V0OpReturn};

const REPLAY_BLOCKS: usize = 30;
const ROUNDS: usize = 3;
const API_BLOCKS: u32 = 100;
const API_STAKES_PER_BLOCK: u32 = 1_000;
const CONNECTIONS: usize = 8;
const LOAD_ROUND: Duration = Duration::from_secs(3);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let host = WasmHost::new(&dir.path().join("cache"), Limits::default())?;
    let wasm = engine::testing::workspace_plugin("phase1-staking");
    let mut rows: Vec<String> = Vec::new();
    let parts = std::env::var("PHASE1_BENCH").unwrap_or_else(|_| "replay,native,api".into());
    let part = |p: &str| parts.split(',').any(|x| x.trim() == p);
    match engine::testing::research_data() {
        None => println!("SKIP replay and native-vs-Wasm figures: ../shared/research-data not found"),
        Some(data) => {
            let raw = std::fs::read(data.join("mainnet/block-864790.bin"))?;
            let params = std::fs::read_to_string(data.join("networks-bbn-1/global-params.json"))?;
            if part("replay") {
                replay(&host, &wasm, &raw, &params, &mut rows)?;
            }
            if part("native") {
                native_vs_wasm(&host, &wasm, &raw, &params, &mut rows)?;
            }
        }
    }
    if part("api") {
        api(&host, &wasm, &mut rows)?;
    }
    println!();
    println!("| figure | median | ratio | target |");
    println!("|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

// --- replay ------------------------------------------------------------------------------------

fn replay(host: &WasmHost, wasm: &Path, raw: &[u8], params: &str, rows: &mut Vec<String>) -> Result<()> {
    let block: Block = bitcoin::consensus::deserialize(raw)?;
    let blocks = tempfile::tempdir()?;
    for i in 0..REPLAY_BLOCKS {
        let mut b = block.clone();
        if i > 0 {
            for tx in b.txdata.iter_mut().skip(1) {
                tx.lock_time = absolute::LockTime::from_consensus(i as u32);
            }
        }
        std::fs::write(blocks.path().join(format!("{i:06}.bin")), bitcoin::consensus::serialize(&b))?;
    }
    let files: Vec<Vec<u8>> = (0..REPLAY_BLOCKS)
        .map(|i| std::fs::read(blocks.path().join(format!("{i:06}.bin"))))
        .collect::<std::io::Result<_>>()?;
    let config = serde_json::json!({ "global_params": params, "start_confirmed_tvl": 100_000_000_000u64 }).to_string();
    let mut base = Vec::new();
    let mut plugin = Vec::new();
    replay_round(host, wasm, &config, blocks.path())?; // warm-up (compile cache, page cache)
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for f in &files {
            let b: Block = bitcoin::consensus::deserialize(std::hint::black_box(f))?;
            for tx in &b.txdata {
                std::hint::black_box(tx.compute_txid());
            }
        }
        base.push(files.len() as f64 / t.elapsed().as_secs_f64());
        plugin.push(replay_round(host, wasm, &config, blocks.path())?);
    }
    let (base, plugin) = (median(base), median(plugin));
    let r = plugin / base;
    rows.push(format!(
        "| phase1-staking replay, block 864790 shape x{REPLAY_BLOCKS} (337 new stakes each) | {plugin:.1} blocks/s | {r:.2} of deserialize+txid | >= 0.5: {} |",
        verdict(r >= 0.5)
    ));
    rows.push(format!("| deserialize + txid of the same bytes | {base:.1} blocks/s | 1.00 | |"));
    let floor = rules_floor(&block, params)?;
    rows.push(format!(
        "| floor: Steps A–C alone for the 337 staking txs, native, no state (2 key lifts + 1 Taproot tweak each) | {:.1} blocks/s | {:.2}: no plugin can exceed this | |",
        floor,
        floor / base
    ));
    Ok(())
}

/// Blocks/s of the least work Phase-1's rules allow: recognising the block's staking transactions
/// (Steps A–C: OP_RETURN keys lifted, the staking output's Taproot key derived), natively with
/// libsecp256k1, without storing, publishing or indexing anything.
fn rules_floor(block: &Block, params: &str) -> Result<f64> {
    let params = GlobalParams::parse(params).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (_, v) = params.for_height(864790).ok_or_else(|| anyhow::anyhow!("no params at 864790"))?;
    let (tag, committee) = (v.tag_bytes(), v.committee());
    let mut rounds = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let mut found = 0;
        for tx in &block.txdata {
            if phase1_primitives::is_possible_v0_staking_tx(tx, tag)
                && phase1_primitives::parse_v0_staking_tx(std::hint::black_box(tx), tag, committee).is_ok()
            {
                found += 1;
            }
        }
        anyhow::ensure!(found == 337, "{found} staking txs recognised natively");
        rounds.push(1.0 / t.elapsed().as_secs_f64());
    }
    Ok(median(rounds))
}

fn replay_round(host: &WasmHost, wasm: &Path, config: &str, blocks: &Path) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("store"))?;
    let mut runner = PluginRunner::start(host, &store, "phase1-staking", wasm, config, 864790)?;
    let mut source = ReplaySource::open(blocks, 864790, false)?;
    let t = Instant::now();
    let (applied, _) = follower::catch_up(&mut source, &mut runner, 864790)?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(applied as usize == REPLAY_BLOCKS, "applied {applied} of {REPLAY_BLOCKS} blocks");
    let active = store.outbox_pending(usize::MAX)?.iter().filter(|e| e.queue == "active_staking_queue").count();
    anyhow::ensure!(
        active == 337 * (REPLAY_BLOCKS - 9),
        "{active} staking events (depth 10 leaves 9 blocks unconfirmed)"
    );
    Ok(applied as f64 / secs)
}

// --- native vs Wasm ----------------------------------------------------------------------------

fn native_vs_wasm(host: &WasmHost, wasm: &Path, raw: &[u8], params: &str, rows: &mut Vec<String>) -> Result<()> {
    let config = serde_json::json!({ "global_params": params }).to_string();
    let block: Block = bitcoin::consensus::deserialize(raw)?;
    let info = BlockInfo::from_header(864790, &block.header);
    let mut plugin = host.load(wasm)?;
    let manifest = plugin.init(&config).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let decoded = DecodedBlock::parse(raw).map_err(|e| anyhow::anyhow!(e))?;
    let selected = decoded.select(&manifest, &mut engine::testing::MemoryContext::default());
    let txs: Vec<guest_sdk::Tx> = selected
        .iter()
        .map(|&i| guest_sdk::Tx {
            index: i as u32,
            txid: decoded.txid(i).to_byte_array().to_vec(),
            raw: decoded.tx_bytes(i).to_vec(),
        })
        .collect();
    let g_info = guest_sdk::BlockInfo {
        height: 864790,
        hash: info.hash.to_vec(),
        prev_hash: info.prev_hash.to_vec(),
        time: info.time,
    };
    let mut native = Vec::new();
    let mut in_wasm = Vec::new();
    for round in 0..=5 {
        let mut h = guest_sdk::testing::TestHost::new(&config);
        let t = Instant::now();
        h.apply_block::<phase1_staking::Phase1Staking>(&g_info, &txs).map_err(|e| anyhow::anyhow!(e))?;
        let n = t.elapsed().as_secs_f64() * 1e3;
        let mut ctx = engine::testing::MemoryContext::default();
        let t = Instant::now();
        plugin.apply_block(&mut ctx, &info, raw, &manifest).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let w = t.elapsed().as_secs_f64() * 1e3;
        anyhow::ensure!(ctx.published.len() == 337, "Wasm published {} messages", ctx.published.len());
        if round > 0 {
            native.push(n);
            in_wasm.push(w);
        }
    }
    let (n, w) = (median(native), median(in_wasm));
    rows.push(format!(
        "| apply_block 864790 in Wasm (engine host, incl. decode + prefilter) | {w:.2} ms | {:.2}x native | <= 1.5x: {} |",
        w / n,
        verdict(w / n <= 1.5)
    ));
    rows.push(format!("| apply_block 864790 native (TestHost, same {} txs) | {n:.2} ms | 1.00 | |", txs.len()));
    Ok(())
}

// --- API ---------------------------------------------------------------------------------------

/// Parameters for the API figures: one version from height 1, a cap no stake reaches.
fn api_params(covenants: &[Keypair]) -> String {
    let pks: Vec<String> = covenants.iter().map(|k| k.public_key().to_string()).collect();
    serde_json::json!({ "versions": [{
        "version": 0, "activation_height": 1, "staking_cap": 1u64 << 60, "tag": "62627434",
        "covenant_pks": pks, "covenant_quorum": 2, "unbonding_time": 3, "unbonding_fee": 500,
        "max_staking_amount": 10_000_000_000u64, "min_staking_amount": 100_000u64, "max_staking_time": 65535,
        "min_staking_time": 1, "confirmation_depth": 2 }]})
    .to_string()
}

fn api(host: &WasmHost, wasm: &Path, rows: &mut Vec<String>) -> Result<()> {
    let secp = Secp256k1::new();
    let kp = |n: u64| {
        let mut b = [0x11u8; 32];
        b[24..].copy_from_slice(&n.to_be_bytes());
        Keypair::from_secret_key(&secp, &SecretKey::from_slice(&b).expect("valid key"))
    };
    let covenants = [kp(1), kp(2), kp(3)];
    let params_text = api_params(&covenants);
    let params = GlobalParams::parse(&params_text)?;
    let p = &params.versions[0];
    let fps: Vec<_> = (0..50).map(|i| kp(1_000 + i).x_only_public_key().0).collect();
    let tag = p.tag_bytes();

    // 100 blocks of 1,000 staking transactions (stakers repeat every 5,000).
    let t = Instant::now();
    let mut source = MemorySource::new(&engine::testing::block(BlockHash::all_zeros(), 0));
    let mut hashes = Vec::new();
    let mut n = 0u64;
    for h in 1..=API_BLOCKS + 1 {
        let mut b = engine::testing::block(source.tip_hash(), h);
        if h <= API_BLOCKS {
            for _ in 0..API_STAKES_PER_BLOCK {
                n += 1;
                let staker = kp(10_000 + n % 5_000).x_only_public_key().0;
                let fp = fps[(n % fps.len() as u64) as usize];
                let info = StakingInfo::new(&staker, &[fp], p.committee(), 1000).expect("distinct keys");
                let tx = Transaction {
                    version: bitcoin::transaction::Version::TWO,
                    lock_time: absolute::LockTime::ZERO,
                    input: vec![TxIn {
                        previous_output: OutPoint::new(bitcoin::Txid::from_byte_array([7; 32]), n as u32),
                        witness: Witness::from_slice(&[[0u8; 64]]),
                        ..Default::default()
                    }],
                    output: vec![
                        TxOut { value: Amount::from_sat(100_000 + n), script_pubkey: info.pk_script() },
                        TxOut {
                            value: Amount::ZERO,
                            script_pubkey: V0OpReturn::new(tag, staker, fp, 1000).to_script(),
                        },
                    ],
                };
                hashes.push(tx.compute_txid().to_string());
                b.txdata.push(tx);
            }
            b.header.merkle_root = b.compute_merkle_root().expect("merkle root");
        }
        source.push(&b);
    }
    let built = t.elapsed();
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("state"))?;
    let config = serde_json::json!({ "global_params": params_text }).to_string();
    let mut runner = PluginRunner::start(host, &store, "phase1-staking", wasm, &config, 0)?;
    let t = Instant::now();
    follower::catch_up(&mut source, &mut runner, 0)?;
    println!(
        "API state: {} delegations indexed in {:.1} s (transactions built in {:.1} s)",
        hashes.len(),
        t.elapsed().as_secs_f64(),
        built.as_secs_f64()
    );

    let metrics = Arc::new(Metrics::new());
    let outbound = engine::call_context::Outbound {
        plugin: "phase1-staking".into(),
        http_allow: vec![],
        bitcoind_allow: vec![],
        bitcoind: None,
        timeout: Duration::from_secs(1),
    };
    let budget = CallBudget { fuel: 1_000_000_000, timeout: Duration::from_secs(2) };
    let live = Arc::new(Live::new(
        "phase1-staking",
        runner.serving(),
        budget,
        budget,
        outbound,
        Arc::new(metrics.plugin("phase1-staking")),
        16,
    ));
    let table = Arc::new(RouteTable { lives: vec![live], metrics });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let app = axum::Router::new().fallback(engine::routes::serve).with_state(table);
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let port = listener.local_addr()?.port();
    rt.spawn(async move { axum::serve(listener, app).await });

    // Each request instantiates the component afresh: its share of a request.
    let plugin = host.load(wasm)?;
    let mut inst: Vec<f64> =
        (0..2_000).map(|_| plugin.instantiate_only().map(|d| d.as_secs_f64() * 1e6)).collect::<Result<_>>()?;
    inst.drain(..200);
    rows.push(format!("| per-request instantiation (phase1-staking component) | {:.1} µs | | |", median(inst)));

    let stats_body = get_body(port, "/v1/stats")?;
    println!("/v1/stats: {stats_body}");
    anyhow::ensure!(stats_body.contains(&format!("\"total_delegations\":{}", hashes.len())), "stats count");
    let paths: Vec<String> = (0..CONNECTIONS)
        .map(|i| format!("/v1/delegation?staking_tx_hash_hex={}", hashes[i * 12_345 % hashes.len()]))
        .collect();
    get_body(port, &paths[0])?;
    for (name, paths) in [("/v1/stats", vec!["/v1/stats".to_string(); CONNECTIONS]), ("/v1/delegation", paths)] {
        let mut rate = Vec::new();
        let mut p50 = Vec::new();
        let mut p99 = Vec::new();
        for _ in 0..ROUNDS {
            let (r, a, b) = http_load::load(port, &paths, LOAD_ROUND);
            rate.push(r);
            p50.push(a.as_secs_f64() * 1e3);
            p99.push(b.as_secs_f64() * 1e3);
        }
        let (r, a, b) = (median(rate), median(p50), median(p99));
        rows.push(format!(
            "| GET {name} with 100,000 delegations | {r:.0} req/s | p50 {a:.2} ms, p99 {b:.2} ms | >= 10,000 req/s, p99 < 10 ms: {} |",
            verdict(r >= 10_000.0 && b < 10.0)
        ));
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// `GET path` answered 200; its body.
fn get_body(port: u16, path: &str) -> Result<String> {
    let resp = minreq::get(format!("http://127.0.0.1:{port}{path}")).with_timeout(30).send()?;
    let body = String::from_utf8_lossy(resp.as_bytes()).into_owned();
    anyhow::ensure!(resp.status_code == 200, "GET {path}: {} {body}", resp.status_code);
    Ok(body)
}
