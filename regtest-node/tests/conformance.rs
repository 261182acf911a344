//! Babylon's own transactions (made by @babylonlabs-io/btc-staking-ts 0.3.0, from
//! ../shared/research-data) against Bitcoin Core's script interpreter, through the exact
//! function `testmempoolaccept` uses, and the staking transaction through a real node.

mod testing;

use bitcoin::consensus::encode::deserialize_hex;
use bitcoin::{Amount, ScriptBuf, Transaction, TxOut};
use regtest_node::mempool::verify_scripts;
use std::path::PathBuf;

fn vectors() -> Option<serde_json::Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/research-data/btc-staking-ts-probe-default-output.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).expect("vector file is JSON")),
        Err(_) => {
            eprintln!(
                "SKIP: {} is absent (the conformance data lives beside the checkout in ../shared)",
                path.display()
            );
            None
        }
    }
}

fn tx(v: &serde_json::Value) -> Transaction {
    deserialize_hex(v.as_str().unwrap()).unwrap()
}

fn staking_output(v: &serde_json::Value) -> TxOut {
    TxOut {
        value: Amount::from_sat(v["staking"]["staking_output_value"].as_u64().unwrap()),
        script_pubkey: ScriptBuf::from_hex(v["staking"]["staking_output_script"].as_str().unwrap()).unwrap(),
    }
}

#[test]
fn babylon_unbonding_needs_the_covenant_quorum() {
    let Some(v) = vectors() else { return };
    let staking = staking_output(&v);
    let staker_only = tx(&v["unbonding"]["staker_only_tx_hex"]);
    let full = tx(&v["unbonding"]["fully_signed_tx_hex"]);
    let err = verify_scripts(&staker_only, &[staking.clone()]).expect_err("staker-only unbonding must fail");
    assert!(err.reason.starts_with("mandatory-script-verify-flag-failed ("), "{err:?}");
    eprintln!("staker-only unbonding rejected: {}", err.reason);
    verify_scripts(&full, &[staking.clone()]).expect("fully signed unbonding passes");
    // Tampering with one covenant signature breaks it again.
    let mut tampered = full.clone();
    let mut items: Vec<Vec<u8>> = tampered.input[0].witness.iter().map(|w| w.to_vec()).collect();
    let i = items.iter().position(|w| w.len() == 64).unwrap();
    items[i][0] ^= 1;
    tampered.input[0].witness = bitcoin::Witness::from_slice(&items);
    let err = verify_scripts(&tampered, &[staking]).unwrap_err();
    assert!(err.reason.starts_with("mandatory-script-verify-flag-failed"), "{err:?}");
}

#[test]
fn babylon_withdrawals_pass_with_their_sequences() {
    let Some(v) = vectors() else { return };
    let staking = staking_output(&v);
    let unbonding = tx(&v["unbonding"]["fully_signed_tx_hex"]);
    let expired = tx(&v["withdraw_expired"]["tx_hex"]);
    assert_eq!(expired.input[0].sequence.0 as u64, v["withdraw_expired"]["sequence"].as_u64().unwrap());
    verify_scripts(&expired, &[staking]).expect("staking-path withdrawal passes");
    let unbonded = tx(&v["withdraw_unbonded"]["tx_hex"]);
    assert_eq!(unbonded.input[0].sequence.0 as u64, v["withdraw_unbonded"]["sequence"].as_u64().unwrap());
    verify_scripts(&unbonded, &[unbonding.output[0].clone()]).expect("unbonding-path withdrawal passes");
    // One less than the timelock fails the CSV check in the script.
    let mut early = unbonded.clone();
    early.input[0].sequence = bitcoin::Sequence(early.input[0].sequence.0 - 1);
    assert!(verify_scripts(&early, &[unbonding.output[0].clone()]).is_err());
}

#[test]
fn babylon_staking_tx_spends_a_coin_this_chain_lacks() {
    let Some(v) = vectors() else { return };
    let staking = tx(&v["staking"]["tx_hex"]);
    assert_eq!(staking.compute_txid().to_string(), v["staking"]["txid"].as_str().unwrap());
    let node = testing::TestNode::start();
    let hex = serde_json::json!([v["staking"]["tx_hex"].as_str().unwrap()]);
    // Its nLockTime is 109: below that height Core checks finality first.
    assert_eq!(staking.lock_time.to_consensus_u32(), v["staking"]["locktime"].as_u64().unwrap() as u32);
    let res: serde_json::Value = node.call("testmempoolaccept", std::slice::from_ref(&hex));
    assert_eq!(res[0]["reject-reason"], "non-final");
    testing::mine_to(&node, &testing::Key::new(1), 110);
    let res: serde_json::Value = node.call("testmempoolaccept", &[hex]);
    assert_eq!(res[0]["allowed"], false);
    assert_eq!(res[0]["reject-reason"], "missing-inputs", "Core's testmempoolaccept wording");
    assert_eq!(res[0]["reject-details"], "bad-txns-inputs-missingorspent");
    let e = testing::rpc_error(bitcoincore_rpc::RpcApi::send_raw_transaction(&node.rpc, &staking).unwrap_err());
    assert_eq!(e, (-25, "bad-txns-inputs-missingorspent".to_string()));
}
