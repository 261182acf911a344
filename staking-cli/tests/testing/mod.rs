//! Helpers shared by the tests: test keys and params, running the `staking-cli` binary, the
//! research data (skipped when absent) and a real `regtest-node` process (from `test-support`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use staking_cli::bitcoin::hashes::Hash;
use staking_cli::bitcoin::secp256k1::{Keypair, SecretKey};
use staking_cli::bitcoin::{
    absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, TapSighash, Transaction, TxIn, Witness,
    XOnlyPublicKey,
};
use staking_cli::phase1_primitives::GlobalParams;

// ---------------------------------------------------------------------------------------------
// Keys and params

pub fn keypair(byte: u8) -> Keypair {
    Keypair::from_secret_key(staking_cli::signing::secp(), &SecretKey::from_slice(&[byte; 32]).unwrap())
}

pub fn xonly(byte: u8) -> XOnlyPublicKey {
    keypair(byte).x_only_public_key().0
}

/// The staker's secret as the CLI takes it.
pub fn secret_hex(byte: u8) -> String {
    format!("{byte:02x}").repeat(32)
}

pub const STAKER: u8 = 0x44;
pub const FP: u8 = 0x55;
pub const COVENANTS: [u8; 3] = [0xc1, 0xc2, 0xc3];
pub const TAG: &str = "01020304";
pub const UNBONDING_TIME: u16 = 5;
pub const UNBONDING_FEE: u64 = 1_000;
/// Version 1's tag: a version-0 stake read at a version-1 height is not a staking tx there.
pub const TAG_V1: &str = "01020305";

/// Two params versions with the test covenant committee (2 of 3): version 0 from height 100
/// (tag [`TAG`], unbonding time [`UNBONDING_TIME`]), version 1 from height 300 (tag [`TAG_V1`]).
pub fn params_json() -> String {
    let cov: Vec<String> = COVENANTS.iter().map(|b| keypair(*b).public_key().to_string()).collect();
    let version = |v: u64, activation: u64, tag: &str, unbonding_time: u16| {
        json!({
            "version": v, "activation_height": activation, "staking_cap": 100_000_000_000u64, "cap_height": 0,
            "tag": tag, "covenant_pks": cov, "covenant_quorum": 2,
            "unbonding_time": unbonding_time, "unbonding_fee": UNBONDING_FEE,
            "max_staking_amount": 10_000_000_000u64, "min_staking_amount": 10_000,
            "max_staking_time": 1000, "min_staking_time": 2, "confirmation_depth": 2
        })
    };
    let versions = [version(0, 100, TAG, UNBONDING_TIME), version(1, 300, TAG_V1, 7)];
    serde_json::to_string_pretty(&json!({ "versions": versions })).unwrap()
}

pub fn params() -> GlobalParams {
    GlobalParams::parse(&params_json()).unwrap()
}

/// Writes the params to `dir/global-params.json`.
pub fn write_params(dir: &Path) -> PathBuf {
    let p = dir.join("global-params.json");
    std::fs::write(&p, params_json()).unwrap();
    p
}

/// `tx` with one made-up funding input (a staking tx as a wallet would have funded it).
pub fn funded(mut tx: Transaction, seed: u8) -> Transaction {
    tx.input.push(TxIn {
        previous_output: OutPoint { txid: staking_cli::bitcoin::Txid::from_byte_array([seed; 32]), vout: 1 },
        script_sig: ScriptBuf::new(),
        sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
        witness: Witness::new(),
    });
    tx
}

pub fn sign(byte: u8, sighash: &TapSighash) -> [u8; 64] {
    staking_cli::sign_schnorr(&keypair(byte), sighash)
}

/// Covenant signatures of the first two test covenant members over `sighash`.
pub fn covenant_sigs(sighash: &TapSighash) -> Vec<(XOnlyPublicKey, [u8; 64])> {
    COVENANTS[..2].iter().map(|b| (xonly(*b), sign(*b, sighash))).collect()
}

pub fn empty_tx() -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![],
        output: vec![],
    }
}

pub fn sats(v: f64) -> Amount {
    Amount::from_btc(v).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The binary

pub fn cli_binary() -> &'static str {
    env!("CARGO_BIN_EXE_staking-cli")
}

/// Runs `staking-cli args...`.
pub fn cli(args: &[&str]) -> Output {
    Command::new(cli_binary()).args(args).output().expect("staking-cli runs")
}

/// Runs it and expects success; returns stdout parsed as JSON.
pub fn cli_json(args: &[&str]) -> Value {
    let out = cli(args);
    assert!(
        out.status.success(),
        "staking-cli {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("staking-cli {args:?} printed non-JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    })
}

/// Runs it and expects exit code `code`; returns stderr.
pub fn cli_fails(args: &[&str], code: i32) -> String {
    let out = cli(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(code),
        "staking-cli {args:?}: stdout {} stderr {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
    stderr
}

// ---------------------------------------------------------------------------------------------
// Research data

/// `<workspace>/../shared/research-data/<rel>`.
pub fn data_path(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/research-data/")).join(rel)
}

/// The file parsed as JSON, or `None` after printing a SKIP line when it is absent.
pub fn read_json(rel: &str) -> Option<Value> {
    let p = data_path(rel);
    match std::fs::read_to_string(&p) {
        Ok(s) => Some(serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: bad JSON: {e}", p.display()))),
        Err(_) => {
            eprintln!("SKIP: {} not found (research data absent; conformance test skipped)", p.display());
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The node (test-support's regtest-node process, with the calls these tests make)

#[allow(unused_imports)]
pub use test_support::{free_port, node_binary, tail, target_dir, wait_until, workspace_root, Node, PASS, USER};

pub trait NodeExt {
    /// A call to wallet `wallet`.
    fn wallet(&self, wallet: &str, method: &str, params: Value) -> Value;
    /// Mines `n` blocks to `address`.
    fn generate_to(&self, n: u64, address: &str) -> Vec<String>;
    /// Height of the block that includes `txid`.
    fn tx_height(&self, txid: &str) -> u64;
}

impl NodeExt for Node {
    fn wallet(&self, wallet: &str, method: &str, params: Value) -> Value {
        self.wallet_call(wallet, method, params)
    }

    fn generate_to(&self, n: u64, address: &str) -> Vec<String> {
        let v = self.call("generatetoaddress", json!([n, address]));
        v.as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_string()).collect()
    }

    fn tx_height(&self, txid: &str) -> u64 {
        let tx = self.call("getrawtransaction", json!([txid, true]));
        let block = tx["blockhash"].as_str().expect("confirmed");
        self.call("getblockheader", json!([block]))["height"].as_u64().unwrap()
    }
}
