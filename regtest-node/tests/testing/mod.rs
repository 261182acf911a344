//! Test helpers: a real `regtest-node` process on a free loopback port with its own datadir,
//! a `bitcoincore-rpc` client for it, and a taproot key that tests mine to and sign with.
#![allow(dead_code)]

use bitcoin::hashes::Hash;
use bitcoin::key::{Keypair, TapTweak};
use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::{
    Address, Amount, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness, XOnlyPublicKey,
};
use bitcoincore_rpc::{Auth, Client, RpcApi};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "test";
pub const PASS: &str = "test";

pub struct TestNode {
    pub child: Child,
    pub datadir: PathBuf,
    pub port: u16,
    pub rpc: Client,
    _tmp: Option<tempfile::TempDir>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl TestNode {
    pub fn start() -> TestNode {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut node = Self::start_in(&dir, &[]);
        node._tmp = Some(tmp);
        node
    }

    pub fn start_in(datadir: &Path, extra: &[&str]) -> TestNode {
        let port = free_port();
        let mut args = vec![
            "-regtest".to_string(),
            format!("-datadir={}", datadir.display()),
            format!("-rpcport={port}"),
            format!("-rpcuser={USER}"),
            format!("-rpcpassword={PASS}"),
            "-fallbackfee=0.0002".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = spawn(&args, datadir);
        let rpc = Client::new(&format!("http://127.0.0.1:{port}"), Auth::UserPass(USER.into(), PASS.into())).unwrap();
        let node = TestNode { child, datadir: datadir.to_path_buf(), port, rpc, _tmp: None };
        node.wait_ready();
        node
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn wallet(&self, name: &str) -> Client {
        Client::new(&format!("{}/wallet/{name}", self.url()), Auth::UserPass(USER.into(), PASS.into())).unwrap()
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // `uptime` is answered in both modes (a -walletonly node has no chain).
            if self.rpc.call::<u64>("uptime", &[]).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node did not answer RPC within 60 s; see {}/node.log",
                self.datadir.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `stop` over RPC, then wait for the process to exit cleanly.
    pub fn stop(mut self) -> Option<tempfile::TempDir> {
        let _: serde_json::Value = self.rpc.call("stop", &[]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "node exited with {status}");
                break;
            }
            assert!(Instant::now() < deadline, "node did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        self._tmp.take()
    }

    pub fn call(&self, method: &str, params: &[serde_json::Value]) -> serde_json::Value {
        self.rpc.call(method, params).unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn(args: &[String], datadir: &Path) -> Child {
    std::fs::create_dir_all(datadir).unwrap();
    let log = std::fs::OpenOptions::new().create(true).append(true).open(datadir.join("node.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_regtest-node"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("regtest-node binary runs")
}

/// Raw JSON-RPC over HTTP, for checking error shapes the typed client hides.
pub fn raw_post(port: u16, path: &str, body: &str, auth: Option<(&str, &str)>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth_header = auth
        .map(|(u, p)| {
            use base64::Engine;
            format!("Authorization: Basic {}\r\n", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
        })
        .unwrap_or_default();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth_header}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status: u16 = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// A taproot key-path key the tests mine to and spend from.
pub struct Key {
    pub keypair: Keypair,
}

impl Key {
    pub fn new(seed: u8) -> Key {
        let secp = Secp256k1::new();
        Key { keypair: Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[seed; 32]).unwrap()) }
    }

    pub fn xonly(&self) -> XOnlyPublicKey {
        self.keypair.x_only_public_key().0
    }

    pub fn address(&self) -> Address {
        Address::p2tr(&Secp256k1::new(), self.xonly(), None, Network::Regtest)
    }

    pub fn script(&self) -> ScriptBuf {
        self.address().script_pubkey()
    }

    /// Signs input `index` of `tx` (spending our key-path output) with SIGHASH_DEFAULT.
    pub fn sign_key_path(&self, tx: &mut Transaction, index: usize, prevouts: &[TxOut]) {
        let secp = Secp256k1::new();
        let sighash = SighashCache::new(&*tx)
            .taproot_key_spend_signature_hash(index, &Prevouts::All(prevouts), TapSighashType::Default)
            .unwrap();
        let tweaked = self.keypair.tap_tweak(&secp, None);
        let sig = secp.sign_schnorr_no_aux_rand(&Message::from_digest(sighash.to_byte_array()), &tweaked.to_keypair());
        tx.input[index].witness = Witness::from_slice(&[sig.as_ref()]);
    }

    /// Signs a BIP-340 signature of a script-path sighash with the untweaked key.
    pub fn sign_script_path(
        &self,
        tx: &Transaction,
        index: usize,
        prevouts: &[TxOut],
        leaf: &bitcoin::Script,
    ) -> Vec<u8> {
        let secp = Secp256k1::new();
        let leaf_hash = bitcoin::TapLeafHash::from_script(leaf, bitcoin::taproot::LeafVersion::TapScript);
        let sighash = SighashCache::new(tx)
            .taproot_script_spend_signature_hash(index, &Prevouts::All(prevouts), leaf_hash, TapSighashType::Default)
            .unwrap();
        secp.sign_schnorr_no_aux_rand(&Message::from_digest(sighash.to_byte_array()), &self.keypair).as_ref().to_vec()
    }
}

/// A version-2 transaction spending `inputs` (with sequences) to `outputs`.
pub fn tx(inputs: &[(OutPoint, Sequence)], outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: inputs
            .iter()
            .map(|(o, s)| TxIn {
                previous_output: *o,
                script_sig: ScriptBuf::new(),
                sequence: *s,
                witness: Witness::new(),
            })
            .collect(),
        output: outputs,
    }
}

pub fn out(value_sat: u64, script: ScriptBuf) -> TxOut {
    TxOut { value: Amount::from_sat(value_sat), script_pubkey: script }
}

/// Mines `n` blocks paying `key` and returns the coinbase outpoints and outputs of each.
pub fn mine_to(node: &TestNode, key: &Key, n: u64) -> Vec<(OutPoint, TxOut)> {
    let hashes = node.rpc.generate_to_address(n, &key.address()).unwrap();
    hashes
        .iter()
        .map(|h| {
            let block = node.rpc.get_block(h).unwrap();
            let cb = &block.txdata[0];
            (OutPoint::new(cb.compute_txid(), 0), cb.output[0].clone())
        })
        .collect()
}

/// The reject reason of a testmempoolaccept call on one transaction (None if allowed).
pub fn test_accept(node: &TestNode, tx: &Transaction) -> Option<String> {
    let res = node.rpc.test_mempool_accept(&[tx]).unwrap();
    let r = &res[0];
    if r.allowed {
        None
    } else {
        Some(r.reject_reason.clone().unwrap_or_default())
    }
}

pub fn rpc_error(e: bitcoincore_rpc::Error) -> (i32, String) {
    match e {
        bitcoincore_rpc::Error::JsonRpc(bitcoincore_rpc::jsonrpc::Error::Rpc(r)) => (r.code, r.message),
        other => panic!("expected an RPC error, got {other:?}"),
    }
}

pub fn txid_of(tx: &Transaction) -> bitcoin::Txid {
    tx.compute_txid()
}

pub fn block_hash_at(node: &TestNode, h: u64) -> bitcoin::BlockHash {
    node.rpc.get_block_hash(h).unwrap()
}

pub fn dummy_hash() -> bitcoin::BlockHash {
    bitcoin::BlockHash::all_zeros()
}
