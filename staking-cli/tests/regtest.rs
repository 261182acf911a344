//! End to end against the real regtest node (Bitcoin Core consensus through libbitcoinkernel):
//! a staking tx made by the CLI and funded by the node's wallet; the staking-path withdrawal is
//! refused before its timelock (non-BIP68-final) and accepted exactly when it ends; an unbonding
//! tx (the CLI's request + test covenant signatures) is mined, and the unbonding-path withdrawal
//! likewise waits for `unbonding_time` blocks.

mod testing;

use std::str::FromStr;

use serde_json::{json, Value};
use staking_cli::bitcoin::consensus::encode::deserialize_hex;
use staking_cli::bitcoin::hex::FromHex;
use staking_cli::bitcoin::{Transaction, Txid};
use staking_cli::phase1_primitives::unbonding::{
    check_unbonding_request, classify_staking_spend, classify_unbonding_spend, StakingSpend, UnbondingRequest,
    UnbondingSpend,
};
use staking_cli::*;
use testing::*;

const WALLET: &str = "w";

/// Creates a staking tx with the CLI, funds and signs it with the node's wallet, mines it.
/// Returns (signed tx hex, tx, inclusion height).
fn stake(node: &Node, params: &str, staking_time: u16, amount: u64, miner: &str) -> (String, Transaction, u64) {
    let out = cli_json(&[
        "create-staking-tx",
        "--staker-key",
        &secret_hex(STAKER),
        "--fp-pk",
        &xonly(FP).to_string(),
        "--staking-time",
        &staking_time.to_string(),
        "--amount",
        &amount.to_string(),
        "--params",
        params,
        "--height",
        &(u64::from(node.height()) + 1).to_string(),
    ]);
    let unfunded = out["staking_tx_hex"].as_str().unwrap();
    let funded = node.wallet(WALLET, "fundrawtransaction", json!([unfunded]));
    let signed = node.wallet(WALLET, "signrawtransactionwithwallet", json!([funded["hex"]]));
    assert_eq!(signed["complete"], json!(true), "{signed}");
    let hex = signed["hex"].as_str().unwrap().to_string();
    let txid = node.call("sendrawtransaction", json!([hex]));
    node.generate_to(1, miner);
    let height = node.tx_height(txid.as_str().unwrap());
    let tx: Transaction = deserialize_hex(&hex).unwrap();
    (hex, tx, height)
}

fn send(node: &Node, hex: &str) -> Result<Value, String> {
    node.rpc("sendrawtransaction", json!([hex]))
}

/// The block at `height`'s transaction `txid`.
fn mined(node: &Node, txid: &str) -> Transaction {
    let hex = node.call("getrawtransaction", json!([txid]));
    assert!(node.call("getrawtransaction", json!([txid, true]))["blockhash"].is_string(), "{txid} is mined");
    deserialize_hex(hex.as_str().unwrap()).unwrap()
}

#[test]
fn staking_unbonding_and_withdrawals_on_regtest() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let params_path = write_params(dir.path());
    let params_file = params_path.display().to_string();
    let key_file = dir.path().join("staker.key");
    std::fs::write(&key_file, secret_hex(STAKER)).unwrap();
    let key_arg = format!("@{}", key_file.display());
    let params = params();

    node.call("createwallet", json!([WALLET]));
    let miner = node.wallet(WALLET, "getnewaddress", json!([])).as_str().unwrap().to_string();
    node.generate_to(101, &miner); // mature coinbase; version 0 is active from height 100
    let dest = node.wallet(WALLET, "getnewaddress", json!([])).as_str().unwrap().to_string();
    let rpc_url = node.url();

    // ---- Stake 1: withdrawal from the staking output after staking_time blocks.
    let staking_time: u16 = 10;
    let (hex1, tx1, h1) = stake(&node, &params_file, staking_time, 1_000_000, &miner);
    let stake1 = Stake::new(tx1.clone(), &params, h1).unwrap();
    let withdraw_staking = |height_args: &[&str]| -> String {
        let mut args = vec![
            "create-withdraw-tx",
            "--from",
            "staking",
            "--staker-key",
            &key_arg,
            "--staking-tx",
            &hex1,
            "--params",
            &params_file,
            "--to",
            &dest,
            "--fee",
            "2000",
        ];
        args.extend_from_slice(height_args);
        cli_json(&args)["withdraw_tx_hex"].as_str().unwrap().to_string()
    };
    let h1s = h1.to_string();
    let w1 = withdraw_staking(&["--height", &h1s]);
    // The height looked up over RPC gives the same transaction.
    assert_eq!(w1, withdraw_staking(&["--rpc-url", &rpc_url, "--rpc-user", USER, "--rpc-password", PASS]));

    // Spendable in a block at height >= h1 + staking_time, i.e. once the tip is h1 + staking_time - 1.
    let err = send(&node, &w1).expect_err("refused right after the stake is mined");
    assert!(err.contains("non-BIP68-final"), "{err}");
    node.generate_to(u64::from(staking_time) - 2, &miner);
    assert_eq!(u64::from(node.height()), h1 + u64::from(staking_time) - 2);
    let err = send(&node, &w1).expect_err("refused one block before the timelock ends");
    assert!(err.contains("non-BIP68-final"), "{err}");
    node.generate_to(1, &miner);
    let wtxid = send(&node, &w1).expect("accepted once the next block reaches the timelock");
    node.generate_to(1, &miner);
    let w1_mined = mined(&node, wtxid.as_str().unwrap());
    assert_eq!(
        classify_staking_spend(&w1_mined, 0, stake1.info(), stake1.outpoint(), stake1.value(), stake1.params()),
        StakingSpend::Withdrawal
    );
    assert!(node.call("gettxout", json!([stake1.txid().to_string(), stake1.outpoint().vout])).is_null());

    // ---- Stake 2: on-demand unbonding, then withdrawal from the unbonding output.
    let (hex2, tx2, h2) = stake(&node, &params_file, 500, 2_000_000, &miner);
    let stake2 = Stake::new(tx2.clone(), &params, h2).unwrap();
    let request = |height_args: &[&str]| -> UnbondingRequestJson {
        let mut args =
            vec!["create-unbonding-request", "--staker-key", &key_arg, "--staking-tx", &hex2, "--params", &params_file];
        args.extend_from_slice(height_args);
        serde_json::from_value(cli_json(&args)).unwrap()
    };
    let req = request(&["--rpc-url", &rpc_url, "--rpc-user", USER, "--rpc-password", PASS]);
    assert_eq!(req, request(&["--height", &h2.to_string()]));
    assert_eq!(req.staking_tx_hash_hex, tx2.compute_txid().to_string());
    let ub: Transaction = deserialize_hex(&req.unbonding_tx_hex).unwrap();
    let staker_sig: [u8; 64] = Vec::<u8>::from_hex(&req.staker_signed_signature_hex).unwrap().try_into().unwrap();
    let check = UnbondingRequest {
        unbonding_tx: &ub,
        unbonding_txid: Txid::from_str(&req.unbonding_tx_hash_hex).unwrap(),
        staker_signature: &staker_sig,
    };
    check_unbonding_request(&check, stake2.info(), stake2.outpoint(), stake2.value(), stake2.params(), true).unwrap();

    // The covenant committee (test keys) co-signs; the node accepts the unbonding tx.
    let sighash = unbonding_sighash(&stake2, &ub).unwrap();
    let signed_ub = signed_unbonding_tx(&stake2, &staker_sig, &covenant_sigs(&sighash)).unwrap();
    let ub_hex = tx_hex(&signed_ub);
    let ubtxid = send(&node, &ub_hex).expect("the unbonding tx is accepted");
    assert_eq!(ubtxid.as_str().unwrap(), req.unbonding_tx_hash_hex);
    node.generate_to(1, &miner);
    let u = node.tx_height(&req.unbonding_tx_hash_hex);
    let ub_mined = mined(&node, &req.unbonding_tx_hash_hex);
    assert_eq!(
        classify_staking_spend(&ub_mined, 0, stake2.info(), stake2.outpoint(), stake2.value(), stake2.params()),
        StakingSpend::ValidUnbonding
    );

    let withdraw_unbonding = |extra: &[&str]| -> String {
        let mut args = vec![
            "create-withdraw-tx",
            "--from",
            "unbonding",
            "--staker-key",
            &key_arg,
            "--staking-tx",
            &hex2,
            "--params",
            &params_file,
            "--rpc-url",
            &rpc_url,
            "--rpc-user",
            USER,
            "--rpc-password",
            PASS,
            "--to",
            &dest,
            "--fee",
            "1500",
        ];
        args.extend_from_slice(extra);
        cli_json(&args)["withdraw_tx_hex"].as_str().unwrap().to_string()
    };
    let w2 = withdraw_unbonding(&["--unbonding-tx", &ub_hex]);
    assert_eq!(w2, withdraw_unbonding(&[]), "the canonical rebuild has the mined unbonding tx's txid");
    let err = send(&node, &w2).expect_err("refused right after unbonding");
    assert!(err.contains("non-BIP68-final"), "{err}");
    node.generate_to(u64::from(UNBONDING_TIME) - 2, &miner);
    assert_eq!(u64::from(node.height()), u + u64::from(UNBONDING_TIME) - 2);
    let err = send(&node, &w2).expect_err("refused one block before the unbonding timelock ends");
    assert!(err.contains("non-BIP68-final"), "{err}");
    node.generate_to(1, &miner);
    let w2txid = send(&node, &w2).expect("accepted once the next block reaches the unbonding timelock");
    node.generate_to(1, &miner);
    let w2_mined = mined(&node, w2txid.as_str().unwrap());
    assert_eq!(classify_unbonding_spend(&w2_mined, 0, &stake2.unbonding_info()), UnbondingSpend::Withdrawal);
    assert_eq!(w2_mined.output[0].value.to_sat(), 2_000_000 - UNBONDING_FEE - 1500);

    // The staking path of stake 2 is gone with the unbonding: the node refuses a double spend.
    let late = cli_json(&[
        "create-withdraw-tx",
        "--from",
        "staking",
        "--staker-key",
        &key_arg,
        "--staking-tx",
        &hex2,
        "--params",
        &params_file,
        "--height",
        &h2.to_string(),
        "--to",
        &dest,
        "--fee",
        "2000",
    ]);
    let err = send(&node, late["withdraw_tx_hex"].as_str().unwrap()).expect_err("the staking output is spent");
    assert!(err.contains("missing") || err.contains("spent"), "{err}");
}
