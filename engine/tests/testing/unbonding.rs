//! The unbonding stack for tests and benches, every part real: the regtest node as the chain,
//! `regtest-node -walletonly` as the offline wallet holding the covenant keys (encrypted,
//! unlocked with `walletpassphrase`), one `covenant-signer` process per member signing only
//! through that wallet, and an engine running phase1-staking and the unbonding plugin; the
//! staker's requests and withdrawals come from the `staking-cli` binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_until, Engine, Node, PluginDef, PASS, USER};
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::key::{Keypair, Secp256k1};
use bitcoin::secp256k1::SecretKey;
use bitcoin::transaction::Version;
use bitcoin::{absolute, Amount, Transaction, TxOut, XOnlyPublicKey};
use phase1_primitives::params::GlobalParams;
use phase1_primitives::staking::StakingInfo;
use phase1_primitives::V0OpReturn;
use serde_json::{json, Value};
use test_support::workspace_binary;

pub const BTC: u64 = 100_000_000;
pub const PASSPHRASE: &str = "covenant wallet passphrase";
const QUEUES: &str = "capabilities = { queues = [\"active_staking_queue\", \"unbonding_staking_queue\", \
                      \"withdraw_staking_queue\", \"expired_staking_queue\", \"btc_info_queue\"] }";

/// A child process killed when dropped, with its log.
pub struct Process {
    child: Option<Child>,
    log: PathBuf,
    what: String,
}

impl Process {
    fn spawn(what: &str, cmd: &mut Command, log: PathBuf) -> Process {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = cmd
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
        Process { child: Some(child), log, what: what.to_string() }
    }

    fn tail(&self) -> String {
        format!("--- {} log tail ---\n{}", self.what, super::tail(&self.log, 30))
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.tail());
        }
    }
}

/// The offline wallet: `regtest-node -walletonly` with an encrypted descriptor wallet `covenant`.
pub struct OfflineWallet {
    pub node: Node,
}

impl OfflineWallet {
    fn start() -> OfflineWallet {
        OfflineWallet { node: Node::start_offline_wallet() }
    }

    pub fn call(&self, method: &str, params: Value) -> Value {
        self.node.wallet_call("covenant", method, params)
    }

    /// Creates the encrypted wallet with `n` keys; their compressed public keys.
    fn create_covenant_keys(&self, n: usize) -> Vec<String> {
        self.node.call("createwallet", json!(["covenant", false, false, PASSPHRASE]));
        (0..n)
            .map(|_| {
                let addr = self.call("getnewaddress", json!(["", "bech32"]));
                self.call("getaddressinfo", json!([addr]))["pubkey"].as_str().unwrap().to_string()
            })
            .collect()
    }
}

/// One `covenant-signer` process serving one member.
pub struct Signer {
    process: Option<Process>,
    port: u16,
    config: PathBuf,
    params: PathBuf,
    pub log: PathBuf,
}

impl Signer {
    fn configure(dir: &Path, i: usize, key: &str, node: &Node, wallet: &OfflineWallet, params: &Path) -> Signer {
        let port = free_port();
        let config = dir.join(format!("signer-{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "[btc-config]\nhost = \"127.0.0.1:{}\"\nuser = \"{USER}\"\npass = \"{PASS}\"\nnetwork = \"regtest\"\n\n\
                 [btc-signer-config]\nhost = \"127.0.0.1:{}/wallet/covenant\"\nuser = \"{USER}\"\npass = \"{PASS}\"\n\n\
                 [server-config]\nhost = \"127.0.0.1\"\nport = {port}\n\n\
                 [metrics-config]\nenabled = true\nhost = \"127.0.0.1\"\nport = {}\n\n\
                 [signer-app-config]\ncovenant-keys = [\"{key}\"]\n",
                node.port,
                wallet.node.port,
                free_port()
            ),
        )
        .unwrap();
        Signer { process: None, port, config, params: params.to_path_buf(), log: dir.join(format!("signer-{i}.log")) }
    }

    pub fn start(&mut self) {
        assert!(self.process.is_none());
        let mut cmd = Command::new(workspace_binary("covenant-signer", "covenant-signer"));
        cmd.arg("start").arg("--config").arg(&self.config).arg("--params").arg(&self.params);
        self.process = Some(Process::spawn("covenant signer", &mut cmd, self.log.clone()));
        let port = self.port;
        wait_until(
            "a covenant signer to listen",
            Duration::from_secs(30),
            || super::tail(&self.log, 20),
            || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
        );
    }

    pub fn stop(&mut self) {
        self.process.take().expect("the signer runs").kill();
    }

    fn url(&self, key: &str) -> String {
        format!("http://{key}@127.0.0.1:{}", self.port)
    }
}

/// Runs `staking-cli ARGS`; its stdout.
pub fn staking_cli(args: &[&str]) -> String {
    let out = Command::new(workspace_binary("staking-cli", "staking-cli")).args(args).output().unwrap();
    assert!(out.status.success(), "staking-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

pub struct World {
    pub node: Node,
    pub engine: Engine,
    pub wallet: OfflineWallet,
    pub signers: Vec<Signer>,
    pub params: GlobalParams,
    pub params_file: PathBuf,
    pub staker: Keypair,
    pub fp: XOnlyPublicKey,
    _dir: tempfile::TempDir,
}

/// A staking tx in the chain: its hex, txid, and inclusion height.
pub struct Stake {
    pub tx: Transaction,
    pub height: u32,
}

impl World {
    pub fn start() -> World {
        World::start_with(500)
    }

    /// The stack with the pipeline's job every `job_interval_ms`.
    pub fn start_with(job_interval_ms: u32) -> World {
        let dir = tempfile::tempdir().unwrap();
        let wallet = OfflineWallet::start();
        let keys = wallet.create_covenant_keys(3);
        // The keys stay in the wallet; it signs only while unlocked.
        wallet.call("walletpassphrase", json!([PASSPHRASE, 3600]));
        // The seed's demo parameters (activation 115, cap 10 BTC, 1–10 BTC, depth 2, quorum 2 of
        // 3, unbonding time 3, fee 500) with the wallet's covenant keys.
        let text = json!({ "versions": [
            { "version": 0, "activation_height": 115, "staking_cap": 10 * BTC, "tag": "62627434",
              "covenant_pks": keys, "covenant_quorum": 2, "unbonding_time": 3, "unbonding_fee": 500,
              "max_staking_amount": 10 * BTC, "min_staking_amount": BTC, "max_staking_time": 1000,
              "min_staking_time": 10, "confirmation_depth": 2 }
        ]})
        .to_string();
        let params = GlobalParams::parse(&text).unwrap();
        let params_file = dir.path().join("global-params.json");
        std::fs::write(&params_file, &text).unwrap();

        let node = Node::start();
        node.call("createwallet", json!(["staker"]));
        let addr = node.call("getnewaddress", json!([])).as_str().unwrap().to_string();
        node.call("generatetoaddress", json!([115, addr]));

        let mut signers: Vec<Signer> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Signer::configure(dir.path(), i, k, &node, &wallet, &params_file))
            .collect();
        for s in &mut signers {
            s.start();
        }
        let urls: Vec<String> = signers.iter().zip(&keys).map(|(s, k)| format!("\"{}\"", s.url(k))).collect();
        let staking = PluginDef {
            name: "phase1-staking".into(),
            wasm: engine::testing::workspace_plugin("phase1-staking"),
            start_height: 0,
            extra: String::new(),
        }
        .with(QUEUES)
        .with(&format!("config = {{ global_params_file = \"{}\" }}", params_file.display()));
        let signer_prefixes: Vec<String> =
            signers.iter().map(|s| format!("\"http://127.0.0.1:{}/\"", s.port)).collect();
        let unbonding = PluginDef {
            name: "unbonding".into(),
            wasm: engine::testing::workspace_plugin("unbonding"),
            start_height: 0,
            extra: String::new(),
        }
        .with(&format!(
            "config = {{ requests_url = \"http://127.0.0.1:ENGINE_PORT/plugins/phase1-staking/unbonding-requests\", \
                 global_params_file = \"{}\", covenant_signers = [{}], job_interval_ms = {job_interval_ms} }}",
            params_file.display(),
            urls.join(", ")
        ))
        .with("limits = { job_timeout_ms = 30_000 }")
        .with(&format!(
            "capabilities = {{ http = [\"http://127.0.0.1:ENGINE_PORT/plugins/phase1-staking/\", {}], \
                 bitcoind = [\"getrawtransaction\", \"getblockheader\", \"gettxout\", \"sendrawtransaction\"] }}",
            signer_prefixes.join(", ")
        ));
        let mut engine = Engine::configure(&node, &[staking, unbonding]);
        let text = std::fs::read_to_string(&engine.runtime).unwrap().replace("ENGINE_PORT", &engine.port.to_string());
        std::fs::write(&engine.runtime, text).unwrap();
        engine.spawn();
        engine.wait_all_synced(&node);

        let secp = Secp256k1::new();
        let staker = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[0x51; 32]).unwrap());
        let fp = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[0x77; 32]).unwrap()).x_only_public_key().0;
        World { node, engine, wallet, signers, params, params_file, staker, fp, _dir: dir }
    }

    pub fn mine(&mut self, n: u32) {
        self.node.generate(n);
        self.engine.wait_all_synced(&self.node);
    }

    /// Stakes `btc_sat` for 100 blocks (funded by the node's wallet) and mines it in.
    pub fn stake(&mut self, btc_sat: u64) -> Stake {
        let (_, p) = self.params.for_height(self.node.height() as u64 + 1).unwrap();
        let staker = self.staker.x_only_public_key().0;
        let info = StakingInfo::new(&staker, &[self.fp], p.committee(), 100).unwrap();
        let unsigned = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![],
            output: vec![
                TxOut { value: Amount::from_sat(btc_sat), script_pubkey: info.pk_script() },
                TxOut {
                    value: Amount::ZERO,
                    script_pubkey: V0OpReturn::new(p.tag_bytes(), staker, self.fp, 100).to_script(),
                },
            ],
        };
        let funded = self.node.call("fundrawtransaction", json!([serialize_hex(&unsigned)]));
        let signed = self.node.call("signrawtransactionwithwallet", json!([funded["hex"]]));
        let hex = signed["hex"].as_str().unwrap().to_string();
        self.node.call("sendrawtransaction", json!([hex]));
        self.mine(1);
        let height = self.node.height();
        self.mine(1); // confirmation depth 2: active in the API
        let tx: Transaction = bitcoin::consensus::encode::deserialize_hex(&hex).unwrap();
        assert_eq!(self.state(&tx), "active");
        Stake { tx, height }
    }

    /// `n` stakes of `btc_sat` each (staking times 100, 101, …: distinct transactions), mined
    /// in one block and confirmed.
    pub fn stake_many(&mut self, n: u16, btc_sat: u64) -> Vec<Stake> {
        let (_, p) = self.params.for_height(self.node.height() as u64 + 1).unwrap();
        let staker = self.staker.x_only_public_key().0;
        let mut txs = Vec::new();
        for i in 0..n {
            let t = 100 + i;
            let info = StakingInfo::new(&staker, &[self.fp], p.committee(), t).unwrap();
            let unsigned = Transaction {
                version: Version::TWO,
                lock_time: absolute::LockTime::ZERO,
                input: vec![],
                output: vec![
                    TxOut { value: Amount::from_sat(btc_sat), script_pubkey: info.pk_script() },
                    TxOut {
                        value: Amount::ZERO,
                        script_pubkey: V0OpReturn::new(p.tag_bytes(), staker, self.fp, t).to_script(),
                    },
                ],
            };
            let funded = self.node.call("fundrawtransaction", json!([serialize_hex(&unsigned)]));
            let signed = self.node.call("signrawtransactionwithwallet", json!([funded["hex"]]));
            let hex = signed["hex"].as_str().unwrap().to_string();
            self.node.call("sendrawtransaction", json!([hex]));
            txs.push(bitcoin::consensus::encode::deserialize_hex::<Transaction>(&hex).unwrap());
        }
        self.mine(1);
        let height = self.node.height();
        self.mine(1);
        txs.into_iter().map(|tx| Stake { tx, height }).collect()
    }

    pub fn api(&self, path: &str) -> (u16, Value) {
        let r = minreq::get(format!("http://127.0.0.1:{}{path}", self.engine.port)).with_timeout(30).send().unwrap();
        (r.status_code as u16, serde_json::from_slice(r.as_bytes()).unwrap_or(Value::Null))
    }

    pub fn state(&self, tx: &Transaction) -> String {
        let (status, body) = self.api(&format!("/v1/delegation?staking_tx_hash_hex={}", tx.compute_txid()));
        assert_eq!(status, 200, "{body}");
        body["data"]["state"].as_str().unwrap().to_string()
    }

    /// The staker's request (made by staking-cli), posted to the legacy API.
    pub fn request_unbonding(&self, s: &Stake) -> Value {
        let request = staking_cli(&[
            "create-unbonding-request",
            "--staker-key",
            &hex::encode(self.staker.secret_bytes()),
            "--staking-tx",
            &serialize_hex(&s.tx),
            "--params",
            self.params_file.to_str().unwrap(),
            "--height",
            &s.height.to_string(),
        ]);
        let r = minreq::post(format!("http://127.0.0.1:{}/v1/unbonding", self.engine.port))
            .with_header("Content-Type", "application/json")
            .with_body(request.trim())
            .with_timeout(30)
            .send()
            .unwrap();
        assert_eq!(r.status_code, 202, "{}", String::from_utf8_lossy(r.as_bytes()));
        assert_eq!(self.state(&s.tx), "unbonding_requested");
        serde_json::from_str(request.trim()).unwrap()
    }

    /// What to show when a wait times out: the request's progress, the logs.
    pub fn context(&self, s: &Stake) -> String {
        let signers: Vec<String> = self.signers.iter().map(|x| super::tail(&x.log, 10)).collect();
        format!("progress: {}\n{}\n--- signers ---\n{}", self.progress(s), self.engine.log_tail(), signers.join("\n"))
    }

    /// Prometheus text of the pipeline.
    pub fn metrics(&self) -> String {
        let r = minreq::get(format!("http://127.0.0.1:{}/plugins/unbonding/metrics", self.engine.port)).send().unwrap();
        String::from_utf8_lossy(r.as_bytes()).into_owned()
    }

    /// The pipeline's record of `s`'s request.
    pub fn progress(&self, s: &Stake) -> Value {
        let (status, body) = self.api(&format!("/plugins/unbonding/requests/{}", s.tx.compute_txid()));
        if status == 200 {
            body["data"].clone()
        } else {
            Value::Null
        }
    }

    /// Waits for the pipeline to send the request's transaction and the node to have it in its
    /// mempool; returns the signed transaction.
    pub fn wait_sent(&self, s: &Stake, unbonding_txid: &str) -> Transaction {
        let hex = wait_until(
            "the unbonding pipeline to send",
            Duration::from_secs(60),
            || self.context(s),
            || {
                let p = self.progress(s);
                (p["state"] == "SEND").then(|| p["signed_tx_hex"].as_str().unwrap().to_string())
            },
        );
        let mempool = self.node.call("getrawmempool", json!([]));
        assert!(mempool.as_array().unwrap().iter().any(|t| t == unbonding_txid), "{unbonding_txid} not in {mempool}");
        bitcoin::consensus::encode::deserialize_hex(&hex).unwrap()
    }
}
