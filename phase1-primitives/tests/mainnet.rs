//! Real Bitcoin mainnet Phase-1 staking transactions with the real `bbn-1` params: Step A/B/C,
//! the §11 derived values of tx 7d90210b…, and a full scan of mainnet block 864790 against the
//! staking indexer's own export of that block.

mod common;

use std::collections::BTreeMap;

use common::*;
use phase1_primitives::bitcoin::consensus::encode::deserialize;
use phase1_primitives::bitcoin::hashes::Hash;
use phase1_primitives::bitcoin::{Block, OutPoint};
use phase1_primitives::params::GlobalParams;
use phase1_primitives::staking_tx::validate_staking_amount_time;
use phase1_primitives::unbonding::{build_unbonding_tx_for, UnbondingParams};
use phase1_primitives::{is_possible_v0_staking_tx, parse_v0_staking_tx, Leaf};

const PARAMS: &str = "networks-bbn-1/global-params.json";

/// Inclusion heights of the three transactions (all three are in the staking indexer's export of
/// block 864790, `mainnet/block-864790-staking-indexer-records.json`, checked below).
const HEIGHT: u64 = 864790;

#[test]
fn mainnet_staking_txs_parse_with_bbn1_params() {
    let params = GlobalParams::parse(&text_or_skip!(PARAMS)).unwrap();
    let raw = json_or_skip!("mainnet/staking-txs-raw.json");
    let records = common::read_json("mainnet/block-864790-staking-indexer-records.json");
    let (idx, v) = params.for_height(HEIGHT).unwrap();
    assert_eq!((idx, v.version), (1, 1), "height 864790 is the first block of cap-2 (version 1)");
    // The tag and the covenant set are equal across the three mainnet versions.
    for w in &params.versions {
        assert_eq!(w.tag_bytes(), v.tag_bytes());
        assert_eq!(w.committee(), v.committee());
    }
    for t in raw["transactions"].as_array().unwrap() {
        let txid = str_of(t, "txid");
        let tx = tx(str_of(t, "tx_hex"));
        assert_eq!(tx.compute_txid().to_string(), txid);
        assert!(is_possible_v0_staking_tx(&tx, v.tag_bytes()), "{txid}: Step A");
        let parsed = parse_v0_staking_tx(&tx, v.tag_bytes(), v.committee()).unwrap_or_else(|e| panic!("{txid}: {e}"));
        assert_eq!(parsed.staking_output_index, 0, "{txid}");
        assert_eq!(parsed.op_return_index, 1, "{txid}");
        assert_eq!(parsed.op_return.staking_time, 64000, "{txid}");
        validate_staking_amount_time(parsed.staking_value, parsed.op_return.staking_time, v)
            .unwrap_or_else(|e| panic!("{txid}: Step C under v1: {e}"));
        if let Some(records) = &records {
            let r = records.as_array().unwrap().iter().find(|r| r["transaction_hash"] == txid).expect("in the export");
            assert_eq!(u64_of(r, "inclusion_height"), HEIGHT);
            assert_eq!(u64_of(r, "staking_output_index"), u64::from(parsed.staking_output_index));
            assert_eq!(u64_of(r, "staking_value"), parsed.staking_value);
            assert_eq!(str_of(r, "staker_public_key"), parsed.op_return.staker_pk.to_string());
            assert_eq!(str_of(r, "finality_provider_public_key"), parsed.op_return.fp_pk.to_string());
        }
        if txid.starts_with("2aeeddb9") {
            // 4 994 180 sat also fits v0's amount range; the tx parses identically under v0.
            let v0 = &params.versions[0];
            assert_eq!(parse_v0_staking_tx(&tx, v0.tag_bytes(), v0.committee()).unwrap(), parsed);
            validate_staking_amount_time(parsed.staking_value, 64000, v0).unwrap();
            assert_eq!(tx.input[0].sequence.0, 0xffffff46);
            assert_eq!(
                to_hex(tx.output[0].script_pubkey.as_bytes()),
                "5120db09240cf52111e39179e50f5cf6c910a5478659ef94c29d668ebb9f46947545"
            );
        }
        if txid.starts_with("a5daf25b") {
            assert_eq!(tx.input.len(), 4);
            assert_eq!(parsed.staking_value, 11_600_000_000);
        }
    }
}

#[test]
fn mainnet_7d90210b_derived_values() {
    let params = GlobalParams::parse(&text_or_skip!(PARAMS)).unwrap();
    let raw = json_or_skip!("mainnet/staking-txs-raw.json");
    let t = raw["transactions"].as_array().unwrap().iter().find(|t| str_of(t, "txid").starts_with("7d90210b")).unwrap();
    let tx = tx(str_of(t, "tx_hex"));
    let v1 = &params.versions[1];
    let p = parse_v0_staking_tx(&tx, v1.tag_bytes(), v1.committee()).unwrap();
    assert_eq!(p.staking_value, 30_000_400_000);
    assert_eq!(tx.lock_time.to_consensus_u32(), 864789);
    assert_eq!(
        to_hex(tx.output[1].script_pubkey.as_bytes()),
        "6a4762626e31000b93d2d388a2b89c2ba2ef28e99c0cfc20735b693cb8b2350fe8aceca2d0f393db9160428e401753dc1a9952ffd4fa3386c7609cf8411d2b6d79c42323ca9923fa00"
    );
    assert_eq!(to_hex(p.op_return.to_script()), to_hex(tx.output[1].script_pubkey.as_bytes()));
    let i = &p.info;
    assert_eq!(to_hex(i.pk_script()), "512082f93ece9366a9e680d152dbc0c487e181accbba145b5b72d00c820545064d44");
    let h = |x: &[u8]| to_hex(x);
    assert_eq!(
        h(i.timelock_leaf_hash().as_byte_array()),
        "8a5d0707718a8f13727dd0c2f6976cf7c8b929ce9cf44976c8cb823d51128d37"
    );
    assert_eq!(
        h(i.unbonding_leaf_hash().as_byte_array()),
        "978de2a0026f47964f2226a80e49ea411f8808e12232f5c3855a031f47e9a68d"
    );
    assert_eq!(
        h(i.slashing_leaf_hash().as_byte_array()),
        "b353de074de82811f0bd7560f1bb2651ebc4c33f7552e2704b834eee4ace4d72"
    );
    assert_eq!(
        h(i.timelock_unbonding_branch().as_byte_array()),
        "4eabc9c11a098facdcdb44cea3aa01d4d7239117e939521e063909b6cdf75ce4"
    );
    assert_eq!(h(i.merkle_root().as_byte_array()), "811bee4d39726a13c1be975bae24f38558b5298560fedc1a4b793054f39441e8");
    assert_eq!(i.output_key_parity(), phase1_primitives::bitcoin::secp256k1::Parity::Even);
    let nums = "c050929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0";
    assert_eq!(
        h(&i.control_block(Leaf::Timelock).serialize()),
        format!("{nums}978de2a0026f47964f2226a80e49ea411f8808e12232f5c3855a031f47e9a68db353de074de82811f0bd7560f1bb2651ebc4c33f7552e2704b834eee4ace4d72")
    );
    assert_eq!(
        h(&i.control_block(Leaf::Unbonding).serialize()),
        format!("{nums}8a5d0707718a8f13727dd0c2f6976cf7c8b929ce9cf44976c8cb823d51128d37b353de074de82811f0bd7560f1bb2651ebc4c33f7552e2704b834eee4ace4d72")
    );
    assert_eq!(
        h(&i.control_block(Leaf::Slashing).serialize()),
        format!("{nums}4eabc9c11a098facdcdb44cea3aa01d4d7239117e939521e063909b6cdf75ce4")
    );
    // rooch's assertions on the sorted covenant keys and the 6-of-9 multisig tail.
    let sorted: Vec<String> =
        v1.committee().keys_xonly_sorted().iter().map(|k| k.to_string()[..4].to_owned()).collect();
    assert_eq!(sorted, ["23b2", "4b15", "8242", "cbdd", "d3c7", "d45c", "de13", "e362", "f178"]);
    assert!(to_hex(v1.committee().multisig_script().as_bytes()).ends_with("ba569c"));

    // Expected unbonding output with v1 params (fee 32000, time 1008).
    let params_v1 = UnbondingParams::from(v1);
    assert_eq!(params_v1, UnbondingParams { unbonding_fee: 32000, unbonding_time: 1008 });
    let ub =
        build_unbonding_tx_for(i, OutPoint { txid: tx.compute_txid(), vout: 0 }, p.staking_value, params_v1).unwrap();
    assert_eq!(ub.output[0].value.to_sat(), 30_000_368_000);
    assert_eq!(
        to_hex(ub.output[0].script_pubkey.as_bytes()),
        "51208c7f2fbee561d29060d911fa733886f16e4a74f3b4a62799ed05736a59232e25"
    );
    assert_eq!(
        to_hex(i.unbonding_info(1008).timelock_script()),
        "200b93d2d388a2b89c2ba2ef28e99c0cfc20735b693cb8b2350fe8aceca2d0f393ad02f003b2"
    );
}

/// Every transaction of mainnet block 864790 through Step A and B with version 1: exactly the 337
/// staking transactions the real indexer exported, with the same output index, keys, time, value.
#[test]
fn mainnet_block_864790_matches_indexer_export() {
    let params = GlobalParams::parse(&text_or_skip!(PARAMS)).unwrap();
    let Some(bytes) = common::read_bytes("mainnet/block-864790.bin") else { return };
    let records = json_or_skip!("mainnet/block-864790-staking-indexer-records.json");
    let block: Block = deserialize(&bytes).expect("block decodes");
    assert_eq!(block.block_hash().to_string(), "00000000000000000002ed810ff436d5c72dec82602487b7512af5b5d6d23da6");
    let (_, v) = params.for_height(864790).unwrap();
    let (tag, committee) = (v.tag_bytes(), v.committee());

    let start = std::time::Instant::now();
    let mut found = BTreeMap::new();
    let (mut step_a, mut step_b_rejects) = (0usize, 0usize);
    for tx in &block.txdata {
        if !is_possible_v0_staking_tx(tx, tag) {
            continue;
        }
        step_a += 1;
        match parse_v0_staking_tx(tx, tag, committee) {
            Ok(p) => {
                validate_staking_amount_time(p.staking_value, p.op_return.staking_time, v).unwrap();
                found.insert(tx.compute_txid().to_string(), p);
            }
            Err(_) => step_b_rejects += 1,
        }
    }
    let elapsed = start.elapsed();
    eprintln!(
        "block 864790: {} txs, {step_a} pass Step A, {} staking txs, {step_b_rejects} rejected by Step B, scan took {elapsed:?}",
        block.txdata.len(),
        found.len()
    );

    let records = records.as_array().unwrap();
    assert_eq!(found.len(), records.len(), "same number of staking transactions as the indexer export");
    for r in records {
        let txid = str_of(r, "transaction_hash");
        let p = found.get(txid).unwrap_or_else(|| panic!("{txid} not recognised"));
        assert_eq!(u64_of(r, "staking_output_index"), u64::from(p.staking_output_index), "{txid}");
        assert_eq!(u64_of(r, "staking_value"), p.staking_value, "{txid}");
        assert_eq!(u64_of(r, "staking_time"), u64::from(p.op_return.staking_time), "{txid}");
        assert_eq!(str_of(r, "staker_public_key"), p.op_return.staker_pk.to_string(), "{txid}");
        assert_eq!(str_of(r, "finality_provider_public_key"), p.op_return.fp_pk.to_string(), "{txid}");
        assert_eq!(r["is_overflow"], false, "height 864790 <= cap_height 864799");
    }
}
