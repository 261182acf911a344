//! The node-wallet staker against the real regtest node: the staker key stays in the node's
//! wallet, which funds and signs the stake, signs the unbonding request (which passes the API's
//! checks) and both withdrawals; the node accepts each withdrawal exactly when its timelock ends.

mod testing;

use serde_json::json;
use staking_cli::bitcoin::consensus::encode::serialize_hex;
use staking_cli::node_wallet::{NodeWallet, STAKER_LABEL};
use staking_cli::*;
use test_support::{PASS, USER};
use testing::*;

const WALLET: &str = "dashboard";

#[test]
fn a_wallet_held_staker_stakes_unbonds_and_withdraws() {
    let node = test_support::Node::start();
    let params = params();
    let w = NodeWallet::new(&node.url(), Some(USER), Some(PASS), WALLET);
    assert_eq!(w.chain().unwrap(), "regtest");
    w.ensure_loaded().unwrap(); // creates it
    w.ensure_loaded().unwrap(); // loaded: nothing to do
    let miner = node.wallet_call(WALLET, "getnewaddress", json!([])).as_str().unwrap().to_string();
    node.generate_to(101, &miner);

    // One staker key, the same on every call, under its label.
    let key = w.staker_key().unwrap();
    assert_eq!(w.staker_key().unwrap().key, key.key);
    let labelled = node.wallet_call(WALLET, "getaddressesbylabel", json!([STAKER_LABEL]));
    assert!(labelled.get(&key.address).is_some(), "{labelled}");
    assert!(w.balance_sat().unwrap() >= 5_000_000_000);

    let v0 = &params.versions[0];
    // A wallet without coins: refused before anything is built, saying how to fund it.
    let empty = NodeWallet::new(&node.url(), Some(USER), Some(PASS), "empty");
    empty.ensure_loaded().unwrap();
    let err = empty.stake(v0, &xonly(FP), 50_000, 10).unwrap_err();
    assert!(matches!(err, Error::Build(_)) && err.to_string().contains("fund it"), "{err}");

    // Out of range: refused before anything is built.
    let err = w.stake(v0, &xonly(FP), 5, 10).unwrap_err().to_string();
    assert!(err.contains("staking_value") && err.contains("[10000, 10000000000]"), "{err}");
    let err = w.stake(v0, &xonly(FP), 50_000, 1).unwrap_err().to_string();
    assert!(err.contains("staking_time") && err.contains("[2, 1000]"), "{err}");

    // Stake 1: withdrawn from the staking output after its timelock.
    let staking_time = 4u16;
    let txid1 = w.stake(v0, &xonly(FP), 2_000_000, staking_time).unwrap();
    let err = w.find_stake(&txid1, &params).unwrap_err().to_string();
    assert!(err.contains("not confirmed"), "{err}");
    node.generate_to(1, &miner);
    let stake1 = w.find_stake(&txid1, &params).unwrap();
    assert_eq!(stake1.staker(), key.x_only());
    assert_eq!(stake1.value(), 2_000_000);
    let err = w.withdraw(&stake1, 2_000).unwrap_err().to_string();
    assert!(err.contains("timelock of 4 blocks is not over"), "{err}");
    // Spendable in block h + staking_time: the tip must be h + staking_time - 1.
    node.generate_to(u64::from(staking_time) - 2, &miner);
    assert!(w.withdraw(&stake1, 2_000).unwrap_err().to_string().contains("not over"));
    node.generate_to(1, &miner);
    let wd1 = w.withdraw(&stake1, 2_000).unwrap();
    assert_eq!(wd1.from, WithdrawFrom::Staking);
    node.generate_to(1, &miner);
    assert!(node.call("getrawtransaction", json!([wd1.txid.to_string(), true]))["blockhash"].is_string());
    let err = w.withdraw(&stake1, 2_000).unwrap_err().to_string();
    assert!(err.contains("withdrawn already"), "{err}");

    // Stake 2: the wallet signs the unbonding request; with covenant signatures it is mined, and
    // the withdrawal from the unbonding output waits for unbonding_time blocks.
    let txid2 = w.stake(v0, &xonly(FP), 3_000_000, 100).unwrap();
    node.generate_to(1, &miner);
    let stake2 = w.find_stake(&txid2, &params).unwrap();
    let req = w.unbonding_request(&stake2).unwrap();
    assert_eq!(req.staking_tx_hash_hex, txid2.to_string());
    let unbonding = stake2.unbonding_tx().unwrap();
    assert_eq!(req.unbonding_tx_hex, serialize_hex(&unbonding));
    let sighash = unbonding_sighash(&stake2, &unbonding).unwrap();
    let staker_sig: [u8; 64] = staking_cli::bitcoin::hex::FromHex::from_hex(&req.staker_signed_signature_hex).unwrap();
    let signed = signed_unbonding_tx(&stake2, &staker_sig, &covenant_sigs(&sighash)).unwrap();
    let err = w.withdraw(&stake2, 2_000).unwrap_err().to_string();
    assert!(err.contains("not over"), "{err}");
    node.call("sendrawtransaction", json!([serialize_hex(&signed)]));
    let err = w.withdraw(&stake2, 2_000).unwrap_err().to_string();
    assert!(err.contains("not mined yet"), "{err}");
    node.generate_to(1, &miner);
    let err = w.withdraw(&stake2, 2_000).unwrap_err().to_string();
    assert!(err.contains("can be spent in block"), "{err}");
    node.generate_to(u64::from(UNBONDING_TIME) - 2, &miner);
    assert!(w.withdraw(&stake2, 2_000).unwrap_err().to_string().contains("can be spent in block"));
    node.generate_to(1, &miner);
    let wd2 = w.withdraw(&stake2, 2_000).unwrap();
    assert_eq!(wd2.from, WithdrawFrom::Unbonding);
    node.generate_to(1, &miner);
    assert!(node.call("getrawtransaction", json!([wd2.txid.to_string(), true]))["blockhash"].is_string());

    // Someone else's stake: refused, naming both keys.
    let other = staking_tx(&xonly(STAKER), &xonly(FP), 10, 50_000, v0).unwrap();
    let funded = node.wallet_call(WALLET, "fundrawtransaction", json!([serialize_hex(&other)]));
    let signed = node.wallet_call(WALLET, "signrawtransactionwithwallet", json!([funded["hex"]]));
    let other_id = node.call("sendrawtransaction", json!([signed["hex"]]));
    node.generate_to(1, &miner);
    let err = w.find_stake(&other_id.as_str().unwrap().parse().unwrap(), &params).unwrap_err().to_string();
    assert!(err.contains("not with this wallet's staker key"), "{err}");
}
