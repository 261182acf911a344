//! Helpers for the covenant signer's tests: real `regtest-node` processes (a full node and an
//! offline wallet), a real `covenant-signer` process with its config and params in a temporary
//! directory, Phase-1 stakes made and mined on the node, an in-memory [`Chain`] for the pure
//! check tests, and the research data (skipped when absent).
//!
//! When a test panics while a [`Node`] or [`SignerProcess`] is alive, its `Drop` prints the tail
//! of its log.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use covenant_signer::checks::{Chain, ChainError, TxStatus};
use phase1_primitives::bitcoin::consensus::encode::{deserialize, serialize_hex};
use phase1_primitives::bitcoin::hashes::Hash;
use phase1_primitives::bitcoin::key::{Keypair, Secp256k1};
use phase1_primitives::bitcoin::secp256k1::{rand, All, Message, PublicKey, SecretKey};
use phase1_primitives::bitcoin::transaction::Version;
use phase1_primitives::bitcoin::{
    absolute, Amount, BlockHash, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness, XOnlyPublicKey,
};
use phase1_primitives::sighash::unbonding_sighash;
use phase1_primitives::unbonding::build_unbonding_tx;
use phase1_primitives::{ParamsVersion, StakingInfo, V0OpReturn};
use serde_json::{json, Value};

#[allow(unused_imports)]
pub use test_support::{
    free_port, node_binary, rpc_at, tail, target_dir, wait_until, workspace_root, Node, PASS, USER,
};

pub fn secp() -> &'static Secp256k1<All> {
    static S: OnceLock<Secp256k1<All>> = OnceLock::new();
    S.get_or_init(Secp256k1::new)
}

/// `../shared/research-data/<rel>` relative to the workspace root, or `None` after a SKIP line.
pub fn research_json(rel: &str) -> Option<Value> {
    let p = workspace_root().join("../shared/research-data").join(rel);
    match std::fs::read_to_string(&p) {
        Ok(t) => Some(serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}: bad JSON: {e}", p.display()))),
        Err(_) => {
            eprintln!("SKIP: {} not found (the research data is not checked out next to the workspace)", p.display());
            None
        }
    }
}

/// The signer binary of this build.
pub fn signer_binary() -> &'static str {
    env!("CARGO_BIN_EXE_covenant-signer")
}

// ---------------------------------------------------------------------------------------------
// regtest-node

/// A new key of a wallet on `node` (bech32 address → getaddressinfo → 33-byte compressed pubkey).
pub trait NewWalletKey {
    fn new_wallet_key(&self, wallet: &str) -> PublicKey;
}

impl NewWalletKey for Node {
    fn new_wallet_key(&self, wallet: &str) -> PublicKey {
        let addr = self.wallet_call(wallet, "getnewaddress", json!(["", "bech32"]));
        let info = self.wallet_call(wallet, "getaddressinfo", json!([addr]));
        let hex_key = info["pubkey"].as_str().unwrap_or_else(|| panic!("getaddressinfo has no pubkey: {info}"));
        PublicKey::from_slice(&hex::decode(hex_key).unwrap()).unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// the signer process

/// A `covenant-signer start` process; dropping it kills it.
pub struct SignerProcess {
    child: Option<Child>,
    pub port: u16,
    pub metrics_port: u16,
    pub dir: PathBuf,
    pub log: PathBuf,
    _tmp: tempfile::TempDir,
}

/// The config text for a signer on `port`/`metrics_port`, full node `node`, wallet URL `wallet_url`.
pub fn signer_config(node: &Node, wallet_url: &str, port: u16, metrics_port: u16, extra_app: &str) -> String {
    format!(
        "[btc-config]\nhost = \"{}\"\nuser = \"{USER}\"\npass = \"{PASS}\"\nnetwork = \"regtest\"\n\n\
         [btc-signer-config]\nhost = \"{wallet_url}\"\nuser = \"{USER}\"\npass = \"{PASS}\"\n\n\
         [server-config]\nhost = \"127.0.0.1\"\nport = {port}\n\n\
         [metrics-config]\nhost = \"127.0.0.1\"\nport = {metrics_port}\n\n\
         [signer-app-config]\n{extra_app}\n",
        node.url()
    )
}

impl SignerProcess {
    /// Writes the files and runs `covenant-signer start`, waiting until it listens.
    pub fn start(config: impl Fn(u16, u16) -> String, params_json: &str) -> SignerProcess {
        let tmp = tempfile::Builder::new().prefix("cov-signer").tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let (port, metrics_port) = (free_port(), free_port());
        std::fs::write(dir.join("config.toml"), config(port, metrics_port)).unwrap();
        std::fs::write(dir.join("global-params.json"), params_json).unwrap();
        let log = dir.join("signer.log");
        let child = Command::new(signer_binary())
            .args(["start", "--config"])
            .arg(dir.join("config.toml"))
            .arg("--params")
            .arg(dir.join("global-params.json"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("covenant-signer runs");
        let mut p = SignerProcess { child: Some(child), port, metrics_port, dir, log, _tmp: tmp };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = p.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("covenant-signer exited with {status}\n{}", p.log_tail());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "covenant-signer did not listen within 30 s\n{}", p.log_tail());
            std::thread::sleep(Duration::from_millis(20));
        }
        p
    }

    pub fn log_tail(&self) -> String {
        format!("--- covenant-signer log ({}) ---\n{}", self.log.display(), tail(&self.log, 30))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/sign-unbonding-tx", self.port)
    }

    /// POSTs `body`; returns (status, JSON body).
    pub fn post_raw(&self, body: &str) -> (u16, Value) {
        let resp = minreq::post(self.url())
            .with_header("Content-Type", "application/json")
            .with_body(body.to_string())
            .with_timeout(60)
            .send()
            .unwrap_or_else(|e| panic!("POST failed: {e}\n{}", self.log_tail()));
        let v = serde_json::from_slice(resp.as_bytes()).unwrap_or_else(|_| json!(resp.as_str().unwrap_or("")));
        (resp.status_code as u16, v)
    }

    pub fn post(&self, req: &Value) -> (u16, Value) {
        self.post_raw(&req.to_string())
    }

    pub fn metrics(&self) -> String {
        minreq::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .with_timeout(10)
            .send()
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A metric's value (first sample whose name matches exactly).
    pub fn metric(&self, name: &str) -> f64 {
        metric_value(&self.metrics(), name)
    }

    /// Stops the process (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (n, v) = l.rsplit_once(' ')?;
            (n == name).then(|| v.parse().unwrap())
        })
        .unwrap_or(0.0)
}

impl Drop for SignerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
    }
}

/// Sends raw bytes to `port` and returns the whole answer (status line, headers, body).
pub fn raw_http(port: u16, request: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if let Some(i) = find(&out, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&out[..i]).to_lowercase();
                    if let Some(len) = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap()))
                    {
                        if out.len() >= i + 4 + len {
                            break;
                        }
                    }
                }
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

// ---------------------------------------------------------------------------------------------
// Phase-1 data

/// One params version in JSON (value-capped), built from the demo params' numbers.
pub fn version_json(version: u64, activation: u64, keys: &[PublicKey], quorum: u32, depth: u16) -> Value {
    json!({
        "version": version,
        "activation_height": activation,
        "staking_cap": 1_000_000_000_000u64,
        "cap_height": 0,
        "tag": "62627434",
        "covenant_pks": keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        "covenant_quorum": quorum,
        "unbonding_time": 3,
        "unbonding_fee": 500,
        "max_staking_amount": 1_000_000_000u64,
        "min_staking_amount": 100_000_000u64,
        "max_staking_time": 1000,
        "min_staking_time": 10,
        "confirmation_depth": depth
    })
}

pub fn random_key() -> SecretKey {
    SecretKey::new(&mut rand::thread_rng())
}

pub fn xonly(sk: &SecretKey) -> XOnlyPublicKey {
    sk.x_only_public_key(secp()).0
}

/// A stake: its transaction, the staker's key and the derived staking output.
#[derive(Clone)]
pub struct Stake {
    pub tx: Transaction,
    pub txid: Txid,
    pub vout: u32,
    pub value: u64,
    pub staker: SecretKey,
    pub fp: XOnlyPublicKey,
    pub info: StakingInfo,
}

impl Stake {
    /// The unsigned staking transaction (staking output, OP_RETURN), not funded.
    pub fn unsigned(
        p: &ParamsVersion,
        value: u64,
        staking_time: u16,
    ) -> (Transaction, SecretKey, XOnlyPublicKey, StakingInfo) {
        let staker = random_key();
        let fp = xonly(&random_key());
        let info = StakingInfo::new(&xonly(&staker), &[fp], p.committee(), staking_time).unwrap();
        let op_return = V0OpReturn::new(p.tag_bytes(), xonly(&staker), fp, staking_time).to_script();
        let tx = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![],
            output: vec![info.staking_output(value), TxOut { value: Amount::ZERO, script_pubkey: op_return }],
        };
        (tx, staker, fp, info)
    }

    /// Funds, signs and broadcasts a stake with the node's `wallet` (not mined).
    pub fn send(node: &Node, wallet: &str, p: &ParamsVersion, value: u64, staking_time: u16) -> Stake {
        let (unsigned, staker, fp, info) = Stake::unsigned(p, value, staking_time);
        let funded = node.wallet_call(wallet, "fundrawtransaction", json!([serialize_hex(&unsigned)]));
        let signed = node.wallet_call(wallet, "signrawtransactionwithwallet", json!([funded["hex"]]));
        assert_eq!(signed["complete"], true, "{signed}");
        let tx: Transaction = deserialize(&hex::decode(signed["hex"].as_str().unwrap()).unwrap()).unwrap();
        node.call("sendrawtransaction", json!([signed["hex"]]));
        Stake::from_tx(tx, staker, fp, info)
    }

    pub fn from_tx(tx: Transaction, staker: SecretKey, fp: XOnlyPublicKey, info: StakingInfo) -> Stake {
        let vout = tx.output.iter().position(|o| info.matches_pk_script(&o.script_pubkey)).unwrap() as u32;
        let value = tx.output[vout as usize].value.to_sat();
        Stake { txid: tx.compute_txid(), tx, vout, value, staker, fp, info }
    }

    pub fn outpoint(&self) -> OutPoint {
        OutPoint { txid: self.txid, vout: self.vout }
    }

    pub fn staking_output(&self) -> TxOut {
        self.tx.output[self.vout as usize].clone()
    }

    /// The canonical unbonding transaction for params `p`.
    pub fn unbonding_tx(&self, p: &ParamsVersion) -> Transaction {
        build_unbonding_tx(self.txid, self.vout, self.value, p, &xonly(&self.staker), &[self.fp], p.committee())
            .unwrap()
    }

    /// The staker's signature over `tx`'s unbonding sighash (by `signer`, normally the staker).
    /// (All zeros when `tx` has no single-input sighash, e.g. a two-input variant.)
    pub fn sign_with(&self, tx: &Transaction, signer: &SecretKey) -> [u8; 64] {
        let Ok(h) = unbonding_sighash(tx, &self.staking_output(), &self.info.unbonding_script()) else {
            return [0; 64];
        };
        let kp = Keypair::from_secret_key(secp(), signer);
        secp().sign_schnorr_no_aux_rand(&Message::from_digest(h.to_byte_array()), &kp).serialize()
    }

    pub fn staker_sig(&self, tx: &Transaction) -> [u8; 64] {
        self.sign_with(tx, &self.staker)
    }

    /// The legacy request body for `tx` signed by the staker, asking `key`.
    pub fn request(&self, tx: &Transaction, key: &PublicKey) -> Value {
        request_json(&self.staking_output().script_pubkey, tx, &self.staker_sig(tx), key)
    }
}

pub fn request_json(pk_script: &ScriptBuf, tx: &Transaction, sig: &[u8; 64], key: &PublicKey) -> Value {
    json!({
        "staking_output_pk_script_hex": hex::encode(pk_script.as_bytes()),
        "unbonding_tx_hex": serialize_hex(tx),
        "staker_unbonding_sig_hex": hex::encode(sig),
        "covenant_public_key": key.to_string(),
    })
}

/// A transaction spending `outpoint` with the canonical fields (for hand-made variants).
pub fn spend(outpoint: OutPoint, outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: outputs,
    }
}

// ---------------------------------------------------------------------------------------------
// an in-memory chain for the pure check tests

/// Transactions at heights, a mempool and a tip.
#[derive(Default)]
pub struct MemChain {
    pub confirmed: HashMap<Txid, (Transaction, u32)>,
    pub mempool: HashMap<Txid, Transaction>,
    pub stale: HashMap<Txid, BlockHash>,
    pub tip: u32,
    /// Every call fails (the node is down).
    pub down: bool,
}

impl MemChain {
    pub fn confirm(&mut self, tx: &Transaction, height: u32) {
        self.confirmed.insert(tx.compute_txid(), (tx.clone(), height));
        self.tip = self.tip.max(height);
    }
}

impl Chain for MemChain {
    fn tx_status(&self, txid: &Txid) -> Result<TxStatus, ChainError> {
        if self.down {
            return Err(ChainError("connection refused".into()));
        }
        if let Some((tx, height)) = self.confirmed.get(txid) {
            return Ok(TxStatus::InBlock { tx: tx.clone(), block_hash: BlockHash::all_zeros(), height: *height });
        }
        if let Some(b) = self.stale.get(txid) {
            return Ok(TxStatus::InStaleBlock { block_hash: *b });
        }
        if self.mempool.contains_key(txid) {
            return Ok(TxStatus::InMempool);
        }
        Ok(TxStatus::NotFound)
    }

    fn tip_height(&self) -> Result<u32, ChainError> {
        if self.down {
            return Err(ChainError("connection refused".into()));
        }
        Ok(self.tip)
    }
}
