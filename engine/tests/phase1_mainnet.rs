//! The phase1-staking plugin in the engine on real mainnet data: block 864790 (the first block
//! of Phase-1's cap-2 window) with the real `bbn-1` global parameters must emit exactly the 337
//! `active_staking_queue` messages Phase-1's indexer derived for it, in order, byte for byte.
//!
//! Depth 10 means block 864790 confirms at tip 864799, so nine synthetic blocks are chained on
//! top of it. The run starts at 864790 from the state Phase-1 had there: the cap-1 window had
//! filled its 1,000 BTC cap (`start_confirmed_tvl`); cap-2 is time-capped, so its decisions do
//! not depend on that number, but the TVL arithmetic is checked against it.
//!
//! Skipped with a message when `../shared/research-data` is absent.

use std::path::Path;

use bitcoin::Block;
use engine::follower::catch_up;
use engine::runner::PluginRunner;
use engine::source::ReplaySource;
use engine::store::{Store, StoreConfig};
use engine::wasm::{Limits, WasmHost};

const HEIGHT: u32 = 864790;
const START_TVL: u64 = 100_000_000_000;

fn read(dir: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(rel).display()))
}

#[test]
fn block_864790_emits_the_337_expected_active_staking_events() {
    let Some(data) = engine::testing::research_data() else {
        println!("SKIP: ../shared/research-data not found (mainnet block 864790 replay)");
        return;
    };
    let raw = read(&data, "mainnet/block-864790.bin");
    let params = String::from_utf8(read(&data, "networks-bbn-1/global-params.json")).unwrap();
    let expected_text =
        String::from_utf8(read(&data, "mainnet/block-864790-expected-active-staking-events.jsonl")).unwrap();
    let expected: Vec<&str> = expected_text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(expected.len(), 337);

    // 864790 itself, then nine blocks on top so that it gets its 10 confirmations.
    let blocks = tempfile::tempdir().unwrap();
    std::fs::write(blocks.path().join("000.bin"), &raw).unwrap();
    let mainnet: Block = bitcoin::consensus::deserialize(&raw).unwrap();
    let mut prev = mainnet.block_hash();
    for i in 1..=9u32 {
        let b = engine::testing::block(prev, 0x5eed_0000 + i);
        prev = b.block_hash();
        std::fs::write(blocks.path().join(format!("{i:03}.bin")), bitcoin::consensus::serialize(&b)).unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(&dir.path().join("state"), StoreConfig { undo_window: 144 }).unwrap();
    let host = WasmHost::new(&dir.path().join("cache"), Limits::default()).unwrap();
    let wasm = engine::testing::workspace_plugin("phase1-staking");
    let config = serde_json::json!({ "global_params": params, "start_confirmed_tvl": START_TVL }).to_string();
    let mut runner = PluginRunner::start(&host, &store, "phase1-staking", &wasm, &config, HEIGHT).unwrap();
    let mut source = ReplaySource::open(blocks.path(), HEIGHT, true).unwrap();
    catch_up(&mut source, &mut runner, HEIGHT).unwrap();
    assert_eq!(runner.confirmed_height().unwrap(), Some(HEIGHT));

    let outbox = store.outbox_pending(usize::MAX).unwrap();
    let active: Vec<String> = outbox
        .iter()
        .filter(|e| e.queue == "active_staking_queue")
        .map(|e| String::from_utf8(e.body.clone()).unwrap())
        .collect();
    assert_eq!(active.len(), expected.len(), "number of active_staking_queue messages");
    for (i, (got, want)) in active.iter().zip(&expected).enumerate() {
        let g: serde_json::Value = serde_json::from_str(got).unwrap();
        let w: serde_json::Value = serde_json::from_str(want).unwrap();
        assert_eq!(g, w, "message {i}: JSON values differ");
        assert_eq!(got, want, "message {i}: same values but different bytes (field order or formatting)");
    }
    for e in outbox.iter().filter(|e| e.queue == "active_staking_queue") {
        assert_eq!(e.height, 864799, "the block's events commit with the tip that confirmed it");
    }

    // Confirmed TVL: the start plus every (non-overflow) stake of the block.
    let sum: u64 = expected
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["staking_value"].as_u64().unwrap())
        .sum();
    let btc_info: Vec<serde_json::Value> = outbox
        .iter()
        .filter(|e| e.queue == "btc_info_queue")
        .map(|e| serde_json::from_slice(&e.body).unwrap())
        .collect();
    let last = btc_info.last().expect("btc_info messages");
    assert_eq!(last["height"], 864799);
    assert_eq!(last["confirmed_tvl"].as_u64().unwrap(), START_TVL + sum);
    assert_eq!(last["unconfirmed_tvl"].as_u64().unwrap(), START_TVL + sum, "the synthetic blocks carry no stake");
    // Before 864790 confirmed, the window already counted its stake as unconfirmed TVL.
    assert_eq!(btc_info[0]["confirmed_tvl"].as_u64().unwrap(), START_TVL);
    assert_eq!(btc_info[0]["unconfirmed_tvl"].as_u64().unwrap(), START_TVL + sum);
}
