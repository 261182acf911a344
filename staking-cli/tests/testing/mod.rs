//! Helpers shared by the tests: test keys and params, running the `staking-cli` binary, the
//! research data (skipped when absent) and a real `regtest-node` process (helpers copied from
//! `engine/tests/testing/mod.rs`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use staking_cli::bitcoin::hashes::Hash;
use staking_cli::bitcoin::secp256k1::{Keypair, SecretKey};
use staking_cli::bitcoin::{
    absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, TapSighash, Transaction, TxIn, Witness,
    XOnlyPublicKey,
};
use staking_cli::phase1_primitives::GlobalParams;
use staking_cli::rpc::RpcClient;

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
// The node

pub const USER: &str = "u";
pub const PASS: &str = "p";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// The `regtest-node` binary (built once if missing).
pub fn node_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = target_dir().join("release").join("regtest-node");
        if !bin.is_file() {
            let status = Command::new(env!("CARGO"))
                .current_dir(workspace_root())
                .args(["build", "--release", "-p", "regtest-node"])
                .status()
                .expect("running cargo");
            assert!(status.success(), "building regtest-node failed ({status})");
        }
        bin
    })
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `f` until it returns `Some`, or panics after `timeout`.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `regtest-node` process (txindex on, its default) on a free loopback port with its own
/// datadir. Dropping it kills the process.
pub struct Node {
    child: Option<Child>,
    pub datadir: PathBuf,
    pub port: u16,
    _tmp: tempfile::TempDir,
}

impl Node {
    pub fn start() -> Node {
        let tmp = tempfile::Builder::new().prefix("staking-cli-node").tempdir().unwrap();
        let datadir = tmp.path().join("node");
        std::fs::create_dir_all(&datadir).unwrap();
        let port = free_port();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(datadir.join("node.log")).unwrap();
        let child = Command::new(node_binary())
            .args([
                "-regtest".to_string(),
                format!("-datadir={}", datadir.display()),
                format!("-rpcport={port}"),
                format!("-rpcuser={USER}"),
                format!("-rpcpassword={PASS}"),
                "-fallbackfee=0.0002".to_string(),
                "-txindex=1".to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("regtest-node runs");
        let node = Node { child: Some(child), datadir, port, _tmp: tmp };
        wait_until(
            "the node to answer RPC",
            Duration::from_secs(60),
            || node.log_tail(),
            || node.rpc("getblockcount", json!([])).ok(),
        );
        node
    }

    pub fn log_tail(&self) -> String {
        let p = self.datadir.join("node.log");
        format!("--- node log tail ({}) ---\n{}", p.display(), tail(&p, 20))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn client(&self, wallet: Option<&str>) -> RpcClient {
        let url = match wallet {
            Some(w) => format!("{}/wallet/{w}", self.url()),
            None => self.url(),
        };
        RpcClient::new(&url, Some(USER), Some(PASS))
    }

    /// One call; `Err` carries the node's error message.
    pub fn rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        self.client(None).call(method, params).map_err(|e| e.to_string())
    }

    pub fn call(&self, method: &str, params: Value) -> Value {
        self.rpc(method, params).unwrap_or_else(|e| panic!("node RPC failed: {e}\n{}", self.log_tail()))
    }

    pub fn wallet(&self, wallet: &str, method: &str, params: Value) -> Value {
        self.client(Some(wallet))
            .call(method, params)
            .unwrap_or_else(|e| panic!("wallet RPC failed: {e}\n{}", self.log_tail()))
    }

    pub fn height(&self) -> u64 {
        self.call("getblockcount", json!([])).as_u64().unwrap()
    }

    /// Mines `n` blocks to `address`.
    pub fn generate(&self, n: u64, address: &str) -> Vec<String> {
        let v = self.call("generatetoaddress", json!([n, address]));
        v.as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_string()).collect()
    }

    /// Height of the block that includes `txid`.
    pub fn tx_height(&self, txid: &str) -> u64 {
        let tx = self.call("getrawtransaction", json!([txid, true]));
        let block = tx["blockhash"].as_str().expect("confirmed");
        self.call("getblockheader", json!([block]))["height"].as_u64().unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}
